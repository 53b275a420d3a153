"""Random search (NNI's ``RandomTuner``): every parameter drawn from its prior."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import BaseTuner, random_vector
from ._constraints import ConstrainedTuner

__all__ = ["RandomTuner"]


class RandomTuner(ConstrainedTuner, BaseTuner):   # ConstrainedTuner: feasible results rank first
    """Samples each parameter independently from its distribution.

    ``optimize_mode`` is accepted for config compatibility and does not change the
    proposals.  In a finite space no parameter set is proposed twice.
    """

    _repeated_in_nni2 = True   # NNI 2.x's hyperopt-based version (multi-phase experiments)

    def __init__(self, seed: Any = None, optimize_mode: Any = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)

    def _propose(self) -> np.ndarray:
        return random_vector(self._dims, self._rng)
