"""Training services: where trial commands run (local machine now; SSH and Ray next)."""

from .base import TrainingService, TrialEnded, TrialSpec

__all__ = ["TrainingService", "TrialEnded", "TrialSpec", "create_training_service"]


def create_training_service(config) -> TrainingService:
    """The training service for a canonical experiment config's ``training_service``."""
    platform = config.training_service.platform
    if platform == "local":
        from .local import LocalTrainingService
        return LocalTrainingService(config)
    raise ValueError(f"trainingService.platform: {platform!r} is not supported; supported: 'local'")
