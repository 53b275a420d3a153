"""Training services: where trial commands run (this machine, SSH machines, a Ray cluster)."""

import importlib.util

from .base import GpuNeeds, InterruptedTrial, ServiceContext, TrainingService, TrialEnded, TrialSpec

__all__ = ["GpuNeeds", "InterruptedTrial", "ServiceContext", "TrainingService", "TrialEnded", "TrialSpec",
           "create_training_service"]


def create_training_service(context: ServiceContext) -> TrainingService:
    """The training service for ``context.service`` (the canonical config's ``trainingService``).

    The remote and Ray services are imported only when used, so neither asyncssh nor ray is
    loaded by ``import nni.training_service`` (nor by the local platform).
    """
    platform = context.service.platform
    if platform == "local":
        from .local import LocalTrainingService
        return LocalTrainingService(context)
    if platform == "remote":
        if importlib.util.find_spec("asyncssh") is None:
            raise ValueError("trainingService.platform 'remote' needs asyncssh: "
                             "pip install 'nni[remote]' (or pip install asyncssh)") from None
        from .remote import RemoteTrainingService
        return RemoteTrainingService(context)
    if platform == "ray":
        if importlib.util.find_spec("ray") is None:   # found, not imported: importing ray is slow
            raise ValueError("trainingService.platform 'ray' needs ray: "
                             "pip install 'nni[ray]' (or pip install 'ray[default]')") from None
        from .ray import RayTrainingService
        return RayTrainingService(context)
    raise ValueError(f"trainingService.platform: {platform!r} is not supported; "
                     "supported: 'local', 'remote', 'ray'")
