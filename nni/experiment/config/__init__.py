"""Experiment configuration (NNI's config v2 format).

YAML/JSON files use camelCase keys; the Python objects use snake_case attributes::

    config = ExperimentConfig('local')
    config.trial_command = 'python3 main.py'
    config.search_space = {'lr': {'_type': 'loguniform', '_value': [1e-4, 0.1]}}
    config.tuner.name = 'TPE'
    config.trial_concurrency = 2

    config = ExperimentConfig.load('config.yml')   # v2, or NNI v1 (converted)
    canonical = config.canonical_copy()            # validated and normalised
"""

from __future__ import annotations

from ._algorithm import AlgorithmConfig, CustomAlgorithmConfig
from ._base import ConfigError, parse_duration
from ._experiment import ExperimentConfig
from ._training_service import (
    LocalConfig,
    RayConfig,
    RemoteConfig,
    RemoteMachineConfig,
    TrainingServiceConfig,
    register_training_service,
    supported_platforms,
)
from ._unsupported import (  # NNI's names for what nni-ng does not provide: importable, refused when built
    AdlConfig,
    AmlConfig,
    AzureBlobConfig,
    DlcConfig,
    FrameworkControllerConfig,
    HybridConfig,
    KubeflowConfig,
    NfsConfig,
    OpenpaiConfig,
    SharedStorageConfig,
)

__all__ = [
    "AlgorithmConfig",
    "ConfigError",
    "CustomAlgorithmConfig",
    "ExperimentConfig",
    "LocalConfig",
    "RayConfig",
    "RemoteConfig",
    "RemoteMachineConfig",
    "TrainingServiceConfig",
    "parse_duration",
    "register_training_service",
    "supported_platforms",
]
