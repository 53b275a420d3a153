"""Vectorized Parzen estimators used by the TPE tuner (private).

Numeric dims live in the tuner's internal space (log for log types).  A Parzen
estimator is a mixture of normals: one per observation (weights from linear
forgetting) plus a prior component (the dim's prior, weight ``prior_weight``).  Each
observation's bandwidth is the larger of the gaps to its neighbours (the prior mean
counts as a neighbour; the bounds close the ends), clipped to
``[prior_sigma / min(100, n + 1), prior_sigma]``.  Bounded dims use normals truncated
to the bounds.
"""

from __future__ import annotations

import math

import numpy as np

from nni.search_space._flat import Dim

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorized error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    x = np.asarray(x, dtype=float)
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def norm_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + erf(np.asarray(z) / math.sqrt(2.0)))


def prior_of(dim: Dim) -> tuple[float, float, float, float]:
    """(mu, sigma, low, high) of a numeric dim's prior in internal space."""
    if dim.normal:
        return dim.mu, dim.sigma, -math.inf, math.inf
    return (dim.low + dim.high) / 2.0, dim.high - dim.low, dim.low, dim.high


class NumericParzen:
    def __init__(self, dim: Dim, x: np.ndarray, w: np.ndarray, prior_weight: float) -> None:
        pmu, psig, low, high = prior_of(dim)
        self.low, self.high = low, high
        n = len(x)
        mus = np.append(x, pmu)
        order = np.argsort(mus, kind="stable")
        s = mus[order]
        gaps = np.diff(s)
        if math.isfinite(low):
            left = np.concatenate([[s[0] - low], gaps])
            right = np.concatenate([gaps, [high - s[-1]]])
        else:
            left = np.concatenate([[gaps[0] if gaps.size else psig], gaps])
            right = np.concatenate([gaps, [gaps[-1] if gaps.size else psig]])
        sig = np.empty(n + 1)
        sig[order] = np.maximum(left, right)
        sig = np.clip(sig, psig / min(100.0, n + 1.0), psig)
        sig[-1] = psig
        weights = np.append(np.asarray(w, dtype=float), prior_weight)
        self.mus, self.sig = mus, sig
        self.weights = weights / weights.sum()
        if math.isfinite(low):
            mass = norm_cdf((high - mus) / sig) - norm_cdf((low - mus) / sig)
            self.log_mass = np.log(np.maximum(mass, 1e-300))
        else:
            self.log_mass = np.zeros(n + 1)
        self._log_coef = np.log(self.weights) - np.log(sig) - _LOG_SQRT_2PI - self.log_mass

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        comp = rng.choice(len(self.mus), size=m, p=self.weights)
        out = rng.normal(self.mus[comp], self.sig[comp])
        if math.isfinite(self.low):
            for _ in range(100):
                bad = (out < self.low) | (out > self.high)
                if not bad.any():
                    break
                out[bad] = rng.normal(self.mus[comp[bad]], self.sig[comp[bad]])
            out = np.clip(out, self.low, self.high)
        return out

    def log_pdf(self, c: np.ndarray) -> np.ndarray:
        z = (c[:, None] - self.mus[None, :]) / self.sig[None, :]
        terms = self._log_coef[None, :] - 0.5 * z * z
        top = terms.max(axis=1)
        return top + np.log(np.exp(terms - top[:, None]).sum(axis=1))


class CategoricalParzen:
    def __init__(self, size: int, idx: np.ndarray, w: np.ndarray, prior_weight: float) -> None:
        counts = np.bincount(idx.astype(int), weights=w, minlength=size)[:size] + prior_weight
        self.p = counts / counts.sum()

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        return rng.choice(len(self.p), size=m, p=self.p).astype(float)

    def log_pdf(self, c: np.ndarray) -> np.ndarray:
        return np.log(self.p[c.astype(int)])


def canonical_array(dim: Dim, c: np.ndarray) -> np.ndarray:
    """Vectorized version of ``encode_numeric(decode_numeric(x))`` for a numeric dim."""
    v = np.exp(c) if dim.log else c.copy()
    if dim.q is not None:
        v = np.round(v / dim.q) * dim.q
    if dim.clip is not None:
        v = np.clip(v, dim.clip[0], dim.clip[1])
    if dim.integer:
        v = np.clip(np.round(v), dim.lower, dim.lower + dim.size - 1)
    if dim.log:
        v = np.log(np.maximum(v, (dim.q or 1e-12) / 2))
    return v


def forgetting_weights(n: int, linear_forgetting: int) -> np.ndarray:
    """Weights of ``n`` observations in time order: the newest ``linear_forgetting`` get 1,
    older ones ramp linearly from ``1/n`` up to 1."""
    w = np.ones(n)
    if linear_forgetting and n > linear_forgetting:
        w[: n - linear_forgetting] = np.linspace(1.0 / n, 1.0, n - linear_forgetting)
    return w
