"""NNI's ``nni.parameter_expressions``: draw one value of a search-space type.

Each function takes the type's ``_value`` items and a ``random_state`` (a
``numpy.random.RandomState``, or anything with ``randint``, ``uniform`` and ``normal``),
as NNI's do; ``json2parameter`` and users' tuners call them.  numpy-free by itself.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["choice", "randint", "uniform", "quniform", "loguniform", "qloguniform",
           "normal", "qnormal", "lognormal", "qlognormal"]


def _clip(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)


def choice(options: list, random_state: Any) -> Any:
    """One of ``options``, uniformly."""
    return options[int(random_state.randint(len(options)))]


def randint(lower: int, upper: int, random_state: Any) -> int:
    """An int in ``[lower, upper)``."""
    if lower >= upper:
        raise ValueError(f"randint needs lower < upper, got [{lower}, {upper})")
    return int(random_state.randint(lower, upper))


def uniform(low: float, high: float, random_state: Any) -> float:
    """A float in ``[low, high]``."""
    if low > high:
        raise ValueError(f"uniform needs low <= high, got [{low}, {high}]")
    return float(random_state.uniform(low, high))


def quniform(low: float, high: float, q: float, random_state: Any) -> float:
    """``clip(round(uniform(low, high) / q) * q, low, high)``."""
    return float(_clip(round(uniform(low, high, random_state) / q) * q, low, high))


def loguniform(low: float, high: float, random_state: Any) -> float:
    """``exp(uniform(log(low), log(high)))``."""
    if low <= 0:
        raise ValueError(f"loguniform needs low > 0, got {low}")
    return float(math.exp(uniform(math.log(low), math.log(high), random_state)))


def qloguniform(low: float, high: float, q: float, random_state: Any) -> float:
    """``clip(round(loguniform(low, high) / q) * q, low, high)``."""
    return float(_clip(round(loguniform(low, high, random_state) / q) * q, low, high))


def normal(mu: float, sigma: float, random_state: Any) -> float:
    """A normal draw with mean ``mu`` and standard deviation ``sigma``."""
    return float(random_state.normal(mu, sigma))


def qnormal(mu: float, sigma: float, q: float, random_state: Any) -> float:
    """``round(normal(mu, sigma) / q) * q``."""
    return float(round(normal(mu, sigma, random_state) / q) * q)


def lognormal(mu: float, sigma: float, random_state: Any) -> float:
    """``exp(normal(mu, sigma))``."""
    return float(math.exp(normal(mu, sigma, random_state)))


def qlognormal(mu: float, sigma: float, q: float, random_state: Any) -> float:
    """``round(lognormal(mu, sigma) / q) * q``."""
    return float(round(lognormal(mu, sigma, random_state) / q) * q)
