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
from typing import Callable

import numpy as np

from nni.search_space._flat import Dim, is_active

from ._base import sample_prior

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorized error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    x = np.asarray(x, dtype=float)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    # Horner's rule in place: each step a pass over the array, no temporaries
    poly = t * 1.061405429
    poly -= 1.453152027
    poly *= t
    poly += 1.421413741
    poly *= t
    poly -= 0.284496736
    poly *= t
    poly += 0.254829592
    poly *= t
    a *= a
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly)


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
        if math.isfinite(self.low):
            return _draw_within(rng, self.mus[comp], self.sig[comp], self.low, self.high)
        return rng.normal(self.mus[comp], self.sig[comp])

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


# ---- joint (multivariate) Parzen estimator ---------------------------------------------------

def _gap_bandwidths(dim: Dim, x: np.ndarray) -> np.ndarray:
    """Per-observation bandwidths of a numeric dim (the univariate neighbour-gap rule)."""
    if len(x) == 0:
        return np.zeros(0)
    pe = NumericParzen(dim, x, np.ones(len(x)), 1.0)
    return pe.sig[:-1]


class JointParzen:
    """A mixture over whole observations: component k is observation k (every dim a kernel
    around its value) plus one prior component.

    A dim inactive in an observation uses the dim's prior in that component, so nested
    spaces work: a candidate is scored on the dims active in it.  Numeric kernels are
    normals truncated to the bounds with neighbour-gap bandwidths; categorical kernels keep
    the observed option with probability ``1 - eps`` and spread ``eps`` uniformly.
    """

    def __init__(self, dims: list[Dim], X: np.ndarray, w: np.ndarray, prior_weight: float) -> None:
        self.dims = dims
        self.X = X
        n = len(X)
        weights = np.append(np.asarray(w, dtype=float), prior_weight)
        self.p = weights / weights.sum()
        self.log_w = np.log(self.p)
        self._cum_p = np.cumsum(self.p)
        self.sig = np.full(X.shape, np.nan)
        self.log_mass = np.zeros(X.shape)
        self.eps = np.zeros(X.shape[1])
        batch: list[tuple[int, float, float, float]] = []   # fully active bounded dims, fitted at once
        active = ~np.isnan(X)
        some_active, all_active = active.any(axis=0), active.all(axis=0)
        for dim in dims:
            j = dim.index
            if dim.categorical and not _ordinal(dim):
                # an observed option keeps most of its component's mass; the rest is spread evenly
                self.eps[j] = CATEGORICAL_EPS
                continue
            if not some_active[j]:
                continue
            act = active[:, j]
            if _ordinal(dim):
                # randint: a normal kernel over the integers 0..size-1, rounded (order matters)
                low, high, floor = -0.5, dim.size - 0.5, 0.5
            else:
                # the univariate neighbour-gap rule beat Scott-style and mixed rules on the
                # benchmark problems (docs/benchmarks.md)
                _, _, low, high = prior_of(dim)
                floor = 0.0
                if not math.isfinite(low):
                    self.sig[act, j] = _gap_bandwidths(dim, X[act, j])
                    continue
            if all_active[j]:
                batch.append((j, low, high, floor))
                continue
            sig, log_mass = _bounded_kernels(X[act, j][:, None], np.array([low]), np.array([high]), np.array([floor]))
            self.sig[act, j], self.log_mass[act, j] = sig[:, 0], log_mass[:, 0]
        if batch:
            # one vectorized fit for every fully active bounded dim: per-dim Python overhead
            # dominated a suggestion's time at ~100 results
            cols = [b[0] for b in batch]
            lows, highs, floors = (np.array([b[k] for b in batch]) for k in (1, 2, 3))
            self.sig[:, cols], self.log_mass[:, cols] = _bounded_kernels(X[:, cols], lows, highs, floors)
        self.n = n
        # per-kernel constants of the numeric log densities
        self._inv_s = 1.0 / self.sig
        self._coef = -np.log(self.sig) - _LOG_SQRT_2PI - self.log_mass
        # The common case, continuous bounded dims active in every observation, is scored and
        # sampled for all those dims at once: per-dim numpy calls were most of a suggestion's
        # time at ~100 results (flat spaces have nothing else).
        by_index = {d.index: d for d in dims}
        flat = [b for b in batch if not _ordinal(by_index[b[0]])] if n else []
        self._flat = np.array([b[0] for b in flat], dtype=int)
        self._flat_dims = {b[0] for b in flat}
        if flat:
            cols = self._flat
            self._flat_x = X[:, cols]
            self._flat_inv = self._inv_s[:, cols]
            self._flat_coef = self._coef[:, cols].sum(axis=1)
            self._flat_prior = -float(np.log(np.maximum([b[2] - b[1] for b in flat], 1e-300)).sum())
            self._flat_low = np.array([b[1] for b in flat])
            self._flat_high = np.array([b[2] for b in flat])
            # sampled at once only when no flat dim hangs on a choice sampled in this estimator
            self._flat_free = all(by_index[j].parent not in by_index for j in cols)
            # the flat dims whose sampled values need rounding to what a trial gets (a plain
            # uniform's values are final once inside its bounds)
            self._flat_rounded = [d for d in (by_index[j] for j in cols)
                                  if d.log or d.q is not None or d.integer
                                  or (d.clip is not None and d.clip != (d.low, d.high))]

    def sample(self, rng: np.random.Generator, m: int, only: int | None = None, scale: float = 1.0,
               censored: float = 0.0) -> np.ndarray:
        """``m`` candidates (internal vectors, canonical, NaN for inactive dims); ``only``: all
        from that observation's component (a local search around it).

        ``censored``: the share of a numeric kernel's draws beyond a bound that are put on the
        bound instead of drawn again, so that candidates exactly at a bound are proposed (an
        optimum at the end of a range is common: the largest C, the most trees)."""
        comp = np.full(m, only) if only is not None else _choose(rng, self._cum_p, m)
        C = np.full((m, self.X.shape[1]), np.nan)
        inside = {d.index for d in self.dims}
        from_obs = comp < self.n
        safe = np.where(from_obs, comp, 0)
        done: set[int] = set()
        if len(self._flat) and self._flat_free:
            # every flat dim at once: a truncated normal around the component's observation,
            # the prior (uniform) for rows of the prior component
            cols = self._flat
            mu = self._flat_x[safe]
            sig = self.sig[safe][:, cols] * scale
            low, high = self._flat_low, self._flat_high
            vals = _draw_within(rng, mu, sig, low, high, censored)
            if not from_obs.all():
                prior_rows = ~from_obs
                vals[prior_rows] = rng.uniform(low, high, size=(int(prior_rows.sum()), len(cols)))
            C[:, cols] = vals
            for dim in self._flat_rounded:
                C[:, dim.index] = canonical_array(dim, C[:, dim.index])
            done = self._flat_dims
        for dim in self.dims:
            j = dim.index
            if j in done:
                continue
            if dim.parent is None or dim.parent not in inside:
                active = np.ones(m, bool)   # the caller only models dims whose context is active
            else:
                pv = C[:, dim.parent]
                active = ~np.isnan(pv) & (np.nan_to_num(pv, nan=-1).astype(int) == dim.parent_option)
            if not active.any():
                continue
            base = np.where(from_obs, self.X[safe, j], np.nan) if self.n else np.full(m, np.nan)
            kern = active & ~np.isnan(base)
            prior = active & np.isnan(base)
            vals = np.full(m, np.nan)
            if prior.any():
                vals[prior] = sample_prior(dim, rng, int(prior.sum()))
            if kern.any():
                b = base[kern]
                if _ordinal(dim):
                    # an integer's end values are drawn without censoring
                    v = _draw_within(rng, b, self.sig[safe[kern], j] * scale, -0.5, dim.size - 0.5)
                    vals[kern] = np.clip(np.round(v), 0, dim.size - 1)
                elif dim.categorical:
                    flip = rng.random(len(b)) < self.eps[j]
                    b = np.where(flip, rng.integers(0, dim.size, size=len(b)), b)
                    vals[kern] = b
                else:
                    s = self.sig[safe[kern], j] * scale
                    vals[kern] = _truncnorm(dim, rng, b, s, censored)
            if not dim.categorical:
                vals[active] = canonical_array(dim, vals[active])
            C[:, j] = vals
        return C

    def log_pdf(self, C: np.ndarray) -> np.ndarray:
        """Log density of each candidate row, over the dims active in it."""
        m = len(C)
        terms = np.empty((m, self.n + 1))
        terms[:] = self.log_w
        done: set[int] = set()
        if len(self._flat):
            cf = C[:, self._flat]
            if not np.isnan(cf).any():
                z = (cf[:, None, :] - self._flat_x[None, :, :]) * self._flat_inv[None, :, :]
                terms[:, :-1] += self._flat_coef - 0.5 * np.einsum("mnd,mnd->mn", z, z)
                terms[:, -1] += self._flat_prior
                done = self._flat_dims
        for dim in self.dims:
            j = dim.index
            if j in done:
                continue
            cj = C[:, j]
            act_c = ~np.isnan(cj)
            if not act_c.any():
                continue
            all_c = bool(act_c.all())
            c = cj if all_c else cj[act_c]
            lp = _prior_log_pdf(dim, c)     # the prior component, and observations without this dim
            t = np.empty((len(c), self.n + 1))
            t[:, -1] = lp
            if self.n:
                xo = self.X[:, j]
                act_o = ~np.isnan(xo)
                all_o = bool(act_o.all())
                k = self._kernel(dim, c, xo if all_o else xo[act_o], act_o, all_o)
                if all_o:
                    t[:, :-1] = k
                else:
                    t[:, :-1] = lp[:, None]
                    t[:, np.flatnonzero(act_o)] = k
            if all_c:
                terms += t
            else:
                terms[act_c] += t
        top = terms.max(axis=1)
        return top + np.log(np.exp(terms - top[:, None]).sum(axis=1))

    def _kernel(self, dim: Dim, c: np.ndarray, xo: np.ndarray, act_o: np.ndarray, all_o: bool) -> np.ndarray:
        """Log kernel densities (candidates x active observations) of one dim."""
        j = dim.index
        cc = c[:, None]
        xr = xo[None, :]
        if dim.categorical and not _ordinal(dim):
            e = self.eps[j]
            return np.where(cc == xr, math.log(1 - e + e / dim.size), math.log(e / dim.size))
        s = (self.sig[:, j] if all_o else self.sig[act_o, j])[None, :]
        lm = (self.log_mass[:, j] if all_o else self.log_mass[act_o, j])[None, :]
        if _ordinal(dim):
            # both ends of the integer's cell through one call of the error function
            z = (cc - xr) / s
            half = 0.5 / s
            cdf = norm_cdf(np.stack([z + half, z - half]))
            return np.log(np.maximum(cdf[0] - cdf[1], 1e-300)) - lm
        inv = (self._inv_s[:, j] if all_o else self._inv_s[act_o, j])[None, :]
        coef = (self._coef[:, j] if all_o else self._coef[act_o, j])[None, :]
        z = (cc - xr) * inv
        return coef - 0.5 * z * z


#: Share of a categorical kernel spread evenly over the options (the rest stays on the observed one).
CATEGORICAL_EPS = 0.25


def _choose(rng: np.random.Generator, cum_p: np.ndarray, m: int) -> np.ndarray:
    """``m`` component indices drawn with the probabilities whose cumulative sums are ``cum_p``
    (``rng.choice(p=...)`` checks and sums ``p`` on every call: most of a small draw's time)."""
    return np.minimum(np.searchsorted(cum_p, rng.random(m) * cum_p[-1], side="right"), len(cum_p) - 1)


def _ordinal(dim: Dim) -> bool:
    return dim.categorical and dim.type == "randint" and dim.size > 1


def _gaps(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Neighbour-gap bandwidths of values in [low, high] (the middle counts as a neighbour),
    clipped to [range / min(100, n + 1), range]."""
    span = high - low
    mus = np.append(x, (low + high) / 2)
    order = np.argsort(mus, kind="stable")
    s = mus[order]
    gaps = np.diff(s)
    left = np.concatenate([[s[0] - low], gaps])
    right = np.concatenate([gaps, [high - s[-1]]])
    sig = np.empty(len(mus))
    sig[order] = np.maximum(left, right)
    return np.clip(sig, span / min(100.0, len(x) + 1.0), span)[:-1]


def _bounded_kernels(Xa: np.ndarray, lows: np.ndarray, highs: np.ndarray,
                     floors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour-gap bandwidths (as :func:`_gaps`, at least ``floors``) and log truncation
    masses of the kernels of several bounded dims at once (columns of ``Xa``, no NaN)."""
    n = len(Xa)
    span = highs - lows
    mus = np.concatenate([Xa, ((lows + highs) / 2)[None, :]])
    order = np.argsort(mus, axis=0, kind="stable")
    col = np.arange(mus.shape[1])[None, :]
    s = mus[order, col]
    gaps = np.diff(s, axis=0)
    left = np.concatenate([s[:1] - lows, gaps])
    right = np.concatenate([gaps, highs - s[-1:]])
    sig = np.empty_like(mus)
    sig[order, col] = np.maximum(left, right)
    sig = np.maximum(np.clip(sig, span / min(100.0, n + 1.0), span)[:-1], floors)
    # both truncation points through one call of the error function
    cdf = norm_cdf(np.concatenate([(highs - Xa) / sig, (lows - Xa) / sig]))
    mass = cdf[:n] - cdf[n:]
    return sig, np.log(np.maximum(mass, 1e-300))


def _prior_log_pdf(dim: Dim, c: np.ndarray) -> np.ndarray:
    if dim.categorical:
        return np.full(len(c), -math.log(dim.size))
    if dim.normal:
        z = (c - dim.mu) / dim.sigma
        return -0.5 * z * z - math.log(dim.sigma) - _LOG_SQRT_2PI
    return np.full(len(c), -math.log(max(dim.high - dim.low, 1e-300)))


def _truncnorm(dim: Dim, rng: np.random.Generator, mu: np.ndarray, sig: np.ndarray,
               censored: float = 0.0) -> np.ndarray:
    if dim.normal:
        return rng.normal(mu, sig)
    return _draw_within(rng, mu, sig, dim.low, dim.high, censored)


def _draw_within(rng: np.random.Generator, mu: np.ndarray, sig: np.ndarray,
                 low: float | np.ndarray, high: float | np.ndarray, censored: float = 0.0) -> np.ndarray:
    """Normal draws around ``mu`` truncated to ``[low, high]``: a draw beyond a bound is drawn
    again (up to 100 times, then clipped), except a share ``censored`` of them, which are put
    on the bound (see :meth:`JointParzen.sample`)."""
    vals = rng.normal(mu, sig)
    stay = rng.random(vals.shape) < censored if censored else np.False_
    for _ in range(100):
        bad = ((vals < low) | (vals > high)) & ~stay
        if not bad.any():
            break
        vals[bad] = rng.normal(mu[bad], sig[bad])
    return np.clip(vals, low, high)


def propose_independent(dims: list[Dim], Xg: np.ndarray, wg: np.ndarray, Xb: np.ndarray, wb: np.ndarray,
                        rng: np.random.Generator, n_candidates: int, prior_weight: float,
                        taken: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray | None:
    """Univariate TPE step: each dim (parents first) gets the candidate maximising l/g of its own
    estimators, fitted on the observations where the dim was active.

    ``taken`` (a finite space without nested choices) marks the parameter sets already tried
    or running: if the best combination is one, the best untried combination of the dims'
    candidates is proposed (``None`` when every one scored was taken)."""
    vec = np.full(len(dims), np.nan)
    scored: list[tuple[int, np.ndarray, np.ndarray]] = []   # each dim's index, candidates and their scores
    for dim in dims:
        if not is_active(dim, vec):
            continue
        j = dim.index
        xg, xb = Xg[:, j], Xb[:, j]
        mg, mb = ~np.isnan(xg), ~np.isnan(xb)
        if dim.categorical:
            lo = CategoricalParzen(dim.size, xg[mg], wg[mg], prior_weight)
            hi = CategoricalParzen(dim.size, xb[mb], wb[mb], prior_weight)
            cand = lo.sample(rng, n_candidates)
        else:
            lo = NumericParzen(dim, xg[mg], wg[mg], prior_weight)
            hi = NumericParzen(dim, xb[mb], wb[mb], prior_weight)
            cand = canonical_array(dim, lo.sample(rng, n_candidates))
        score = lo.log_pdf(cand) - hi.log_pdf(cand)
        vec[j] = cand[int(np.argmax(score))]
        scored.append((j, cand, score))
    if taken is None or not taken(vec[None, :])[0]:
        return vec
    return _best_untried(vec, scored, taken)


def _best_untried(best: np.ndarray, scored: list[tuple[int, np.ndarray, np.ndarray]],
                  taken: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    """The best-scored combination that is not ``taken``, among those that change one dim of
    ``best`` (every dim's best candidate) to another of its candidates (dims independent: a
    combination scores the sum of its dims' scores)."""
    combos, loss = [], []
    for j, cand, score in scored:
        top = score.max()
        for value, s in zip(cand, score):
            if value != best[j]:
                combo = best.copy()
                combo[j] = value
                combos.append(combo)
                loss.append(top - s)
    if not combos:
        return None
    C = np.array(combos)
    order = np.argsort(loss, kind="stable")
    free = ~taken(C[order])
    return C[order[int(np.argmax(free))]] if free.any() else None
