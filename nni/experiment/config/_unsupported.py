"""NNI's config classes for platforms and storage nni-ng does not provide (importable names).

NNI users' scripts import them (``from nni.experiment.config import OpenpaiConfig``); a
module that only imports them still loads.  Building one raises :class:`ConfigError`
naming what nni-ng offers instead (local, remote over SSH, ray).
"""

from __future__ import annotations

from typing import Any

from ._base import ConfigError

__all__ = ["AdlConfig", "AmlConfig", "AzureBlobConfig", "DlcConfig", "FrameworkControllerConfig",
           "HybridConfig", "KubeflowConfig", "NfsConfig", "OpenpaiConfig", "SharedStorageConfig"]


class _Unsupported:
    _what = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigError(f"{type(self).__name__}: {self._what} is not supported by nni-ng; "
                          f"use the local, remote (SSH) or ray training service (see docs/compatibility.md)")


def _make(name: str, what: str) -> type:
    return type(name, (_Unsupported,), {"_what": what, "__doc__": f"NNI's {what} config (not supported)."})


OpenpaiConfig = _make("OpenpaiConfig", "the OpenPAI training service")
AmlConfig = _make("AmlConfig", "the AzureML training service")
DlcConfig = _make("DlcConfig", "the Alibaba DLC training service")
KubeflowConfig = _make("KubeflowConfig", "the Kubeflow training service")
FrameworkControllerConfig = _make("FrameworkControllerConfig", "the FrameworkController training service")
AdlConfig = _make("AdlConfig", "the AdaptDL training service")
HybridConfig = _make("HybridConfig", "the hybrid training service (a list of platforms)")
SharedStorageConfig = _make("SharedStorageConfig", "shared storage (sharedStorage)")
NfsConfig = _make("NfsConfig", "NFS shared storage (sharedStorage)")
AzureBlobConfig = _make("AzureBlobConfig", "Azure Blob shared storage (sharedStorage)")
