"""Launch and control experiments from Python: ``from nni.experiment import Experiment``."""

from .config import (AlgorithmConfig, CustomAlgorithmConfig, ExperimentConfig, LocalConfig, RayConfig, RemoteConfig,
                     RemoteMachineConfig)
from .data import TrialHyperParameters, TrialJob, TrialMetricData, TrialResult
from .experiment import Experiment

__all__ = [
    "AlgorithmConfig",
    "CustomAlgorithmConfig",
    "Experiment",
    "ExperimentConfig",
    "LocalConfig",
    "RayConfig",
    "RemoteConfig",
    "RemoteMachineConfig",
    "TrialHyperParameters",
    "TrialJob",
    "TrialMetricData",
    "TrialResult",
]
