"""Multi-phase experiments: many parameter sets per trial job."""

from .multi_phase_tuner import MultiPhaseTuner

__all__ = ["MultiPhaseTuner"]
