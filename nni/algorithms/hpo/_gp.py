"""Gaussian-process machinery shared by the GP and Metis tuners (private, numpy only).

* :class:`UnitSpace` maps a flat numeric search space (``choice`` of numbers, ``randint``,
  ``uniform``, ``quniform``, ``loguniform``, ``qloguniform``) to the unit cube and back;
  discrete dims snap to their allowed positions.
* :class:`GaussianProcess` is a Matern GP (``nu`` 0.5, 1.5, 2.5 or inf) with one length
  scale per dim, a signal variance and a noise variance (at least ``alpha``), fitted by
  maximizing the log marginal likelihood with Adam on analytic gradients (warm-started from
  the previous fit, so refitting after each new result is cheap).  Optionally, chosen dims
  are warped first by a learned Kumaraswamy CDF (input warping, Snoek et al. 2014), fitted
  with the kernel's hyperparameters: a stationary kernel then follows a loss that changes
  fast near one end of a range and slowly elsewhere.
* :func:`maximize` maximizes an acquisition over the unit cube: random warm-up points, then
  a vectorized local search from the best of them plus random starting points.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nni.search_space._flat import Dim

from ._parzen import norm_cdf

_SUPPORTED = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform")
_NUS = (0.5, 1.5, 2.5, math.inf)
_FIT_MAX = 240   # most points the hyperparameter fit looks at
#: Most points the posterior is conditioned on.  Above it the model keeps the best third of the
#: results and a seeded random sample of the rest (a subset-of-data GP): its Cholesky costs
#: O(m^3) and its memory O(m^2) however long the history grows (5,000 results exactly would
#: need ~1 GB and ~10 s per suggestion).
POSTERIOR_MAX = 1000
_WARM_STEPS = 10   # Adam steps of a warm-started fit above _FIT_MAX points
_SOLVE_BLOCK = 256   # rows per block of the triangular solves
_PREDICT_CELLS = 1 << 21   # query points x model points per kernel block (16 MB per temporary)


def check_numeric_space(dims: list[Dim], tuner: str) -> None:
    """Refuse what a GP cannot model, naming the parameter and what would be accepted."""
    hint = "use TPE, Random, Anneal or Evolution for nested spaces"
    for dim in dims:
        if dim.parent is not None:
            raise ValueError(f"{tuner} does not support nested search spaces (parameter {dim.display!r} is "
                             f"inside a choice option); {hint}")
    for dim in dims:
        if dim.type == "choice" and any(dim.nested):
            raise ValueError(f"{tuner} does not support nested search spaces (choice {dim.display!r} has "
                             f"sub-space options); {hint}")
        if dim.type not in _SUPPORTED:
            raise ValueError(f"{tuner} does not support {dim.type!r} (parameter {dim.display!r}); "
                             f"supported types: {', '.join(_SUPPORTED)}")
        if dim.type == "choice":
            # A bool is the number 0 or 1 (NNI's GP takes it too); it comes back as the bool given.
            for opt in dim.value:
                if not isinstance(opt, (int, float)) or not math.isfinite(opt):
                    raise ValueError(f"{tuner} needs numeric choice values; parameter {dim.display!r} has "
                                     f"{opt!r} (use TPE, Random, Anneal or Evolution for categorical choices)")


class UnitSpace:
    """Internal vectors (see ``_flat``) <-> points of ``[0, 1]^d``."""

    def __init__(self, dims: list[Dim]) -> None:
        self.dims = dims
        self.d = len(dims)
        # per dim: sorted unit positions of a discrete dim (None for continuous) and its internal values
        self.grid: list[np.ndarray | None] = []
        self.grid_internal: list[np.ndarray | None] = []
        for dim in dims:
            if dim.categorical:
                if dim.type == "choice":
                    vals = np.array([float(v) for v in dim.value])
                else:
                    vals = np.arange(dim.size, dtype=float)
                lo, hi = vals.min(), vals.max()
                pos = (vals - lo) / (hi - lo) if hi > lo else np.full(len(vals), 0.5)
                order = np.argsort(pos, kind="stable")
                self.grid.append(pos[order])
                self.grid_internal.append(order.astype(float))
            else:
                self.grid.append(None)
                self.grid_internal.append(None)

    def to_unit(self, X: np.ndarray) -> np.ndarray:
        """Rows of internal vectors -> unit points."""
        X = np.atleast_2d(X)
        U = np.empty(X.shape)
        for j, dim in enumerate(self.dims):
            if self.grid[j] is not None:
                # grid_internal[k] is the index whose unit position is grid[k]
                inv = np.empty(len(self.grid[j]))
                inv[self.grid_internal[j].astype(int)] = self.grid[j]
                U[:, j] = inv[X[:, j].astype(int)]
            else:
                U[:, j] = (X[:, j] - dim.low) / (dim.high - dim.low)
        return U

    def snap(self, U: np.ndarray) -> np.ndarray:
        """Move discrete coordinates to their nearest allowed position (others clipped to [0, 1])."""
        U = np.clip(U, 0.0, 1.0)
        for j, g in enumerate(self.grid):
            if g is not None:
                k = np.clip(np.searchsorted(g, U[:, j]), 1, len(g) - 1) if len(g) > 1 else np.zeros(len(U), int)
                if len(g) > 1:
                    k = np.where(np.abs(U[:, j] - g[k - 1]) <= np.abs(U[:, j] - g[k]), k - 1, k)
                U[:, j] = g[k]
        return U

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """One unit point -> an internal vector."""
        u = self.snap(np.atleast_2d(u))[0]
        vec = np.empty(self.d)
        for j, dim in enumerate(self.dims):
            g = self.grid[j]
            if g is not None:
                vec[j] = self.grid_internal[j][int(np.argmin(np.abs(g - u[j])))]
            else:
                vec[j] = dim.low + u[j] * (dim.high - dim.low)
        return vec

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform unit points, snapped."""
        return self.snap(rng.random((n, self.d)))


def solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``L^-1 B`` for a lower-triangular ``L`` by blocked forward substitution.

    numpy has no triangular solve (that is scipy's); forming ``L^-1`` instead costs another
    n x n matrix and its rounding.  Each diagonal block is solved on its own (small), the
    rest is matrix products.
    """
    n = len(L)
    X = np.array(B, dtype=float, copy=True)
    vector = X.ndim == 1
    if vector:
        X = X[:, None]
    for s in range(0, n, _SOLVE_BLOCK):
        e = min(n, s + _SOLVE_BLOCK)
        if s:
            X[s:e] -= L[s:e, :s] @ X[:s]
        X[s:e] = np.linalg.solve(L[s:e, s:e], X[s:e])
    return X[:, 0] if vector else X


def solve_upper(U: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``U^-1 B`` for an upper-triangular ``U`` (backward substitution, as :func:`solve_lower`)."""
    return solve_lower(U[::-1, ::-1], np.asarray(B)[::-1])[::-1]


def _matern(r: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """Correlation f(r) and g(r) = -f'(r) / r (finite at r = 0 except for nu = 0.5)."""
    if nu == 0.5:
        e = np.exp(-r)
        return e, e / np.maximum(r, 1e-12)
    if nu == 1.5:
        s = math.sqrt(3.0) * r
        e = np.exp(-s)
        return (1.0 + s) * e, 3.0 * e
    if nu == 2.5:
        s = math.sqrt(5.0) * r
        e = np.exp(-s)
        return (1.0 + s + s * s / 3.0) * e, (5.0 / 3.0) * (1.0 + s) * e
    e = np.exp(-0.5 * r * r)
    return e, e


#: bounds of a warp's log a and log b (a = b = 1: the identity)
_LOG_WARP = (math.log(0.2), math.log(5.0))
#: variance of the weak normal prior on log a and log b, centred on the identity
_WARP_PRIOR_VAR = 0.75 ** 2
_WARP_EPS = 1e-9   # unit coordinates are clipped this far inside (0, 1) for the warp's logs


def kumaraswamy(u: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The Kumaraswamy CDF ``1 - (1 - u^a)^b`` per column: monotone, maps [0, 1] onto [0, 1],
    the identity at a = b = 1; a < 1 stretches the low end of the range, b < 1 the high end."""
    u = np.clip(u, 0.0, 1.0)
    return 1.0 - (1.0 - u ** a) ** b


def _kumaraswamy_grad(u: np.ndarray, a: np.ndarray, b: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The warp and its derivatives by log a and log b (columns of ``u``)."""
    u = np.clip(u, _WARP_EPS, 1.0 - _WARP_EPS)
    ua = u ** a
    one = np.maximum(1.0 - ua, _WARP_EPS)
    ob = one ** b
    z = 1.0 - ob
    dz_dloga = a * b * (ob / one) * ua * np.log(u)    # a * dz/da
    dz_dlogb = -b * ob * np.log(one)                   # b * dz/db
    return z, dz_dloga, dz_dlogb


class GaussianProcess:
    """Matern GP regression on unit-cube inputs with standardized targets."""

    # bounds of the log hyperparameters: length scales, signal variance, noise variance
    _LOG_LS = (math.log(0.01), math.log(20.0))
    _LOG_SF = (math.log(0.05), math.log(20.0))

    def __init__(self, nu: float = 2.5, alpha: float = 1e-6, warp: np.ndarray | None = None) -> None:
        """``warp``: a boolean per dim, True where the inputs are warped (None: none)."""
        if nu not in _NUS:
            raise ValueError(f"nu must be one of 0.5, 1.5, 2.5 or inf (Matern smoothness), got {nu!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"alpha must be a positive number (noise added to the kernel diagonal), got {alpha!r}")
        self.nu = float(nu)
        self.alpha = float(alpha)
        self._theta: np.ndarray | None = None   # warm start: [log ls..., log sf2, log sn2, log a..., log b...]
        self.warp = None if warp is None or not np.any(warp) else np.asarray(warp, dtype=bool)
        # fitted warp parameters, one per warped dim (None until a fit)
        self.warp_a: np.ndarray | None = None
        self.warp_b: np.ndarray | None = None

    def warped(self, U: np.ndarray) -> np.ndarray:
        """Unit points through the fitted input warp (the same points when there is none)."""
        U = np.atleast_2d(np.asarray(U, dtype=float))
        if self.warp is None or self.warp_a is None:
            return U
        Z = U.copy()
        Z[:, self.warp] = kumaraswamy(U[:, self.warp], self.warp_a, self.warp_b)
        return Z

    # ---- kernel --------------------------------------------------------------------------------
    def _cov(self, A: np.ndarray, B: np.ndarray, ls: np.ndarray, sf2: float) -> np.ndarray:
        a, b = A / ls, B / ls
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        r = np.sqrt(np.maximum(d2, 0.0))
        return sf2 * _matern(r, self.nu)[0]

    def _lml_grad(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        d = X.shape[1]
        ls, sf2, sn2 = np.exp(theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1])
        if self.warp is not None:
            w = int(self.warp.sum())
            wa, wb = np.exp(theta[d + 2:d + 2 + w]), np.exp(theta[d + 2 + w:])
            Z = X.copy()
            Z[:, self.warp], dza, dzb = _kumaraswamy_grad(X[:, self.warp], wa, wb)
            X = Z
        diff2 = ((X[:, None, :] - X[None, :, :]) / ls) ** 2          # n x n x d
        r = np.sqrt(diff2.sum(-1))
        f, g = _matern(r, self.nu)
        Kf = sf2 * f
        K = Kf + (sn2 + 1e-10) * np.eye(len(y))
        try:
            L = np.linalg.cholesky(K)
        except np.linalg.LinAlgError:
            return -math.inf, np.zeros_like(theta)
        Linv = np.linalg.inv(L)
        Kinv = Linv.T @ Linv
        a = Kinv @ y
        lml = -0.5 * y @ a - np.log(np.diag(L)).sum() - 0.5 * len(y) * math.log(2 * math.pi)
        W = np.outer(a, a) - Kinv
        grad = np.empty_like(theta)
        M = W * (sf2 * g)
        grad[:d] = 0.5 * np.einsum("ij,ijk->k", M, diff2)
        grad[d] = 0.5 * (W * Kf).sum()
        grad[d + 1] = 0.5 * np.trace(W) * sn2
        # weak log-normal prior on the length scales keeps them away from degenerate fits
        lml -= 0.5 * ((theta[:d] - math.log(0.3)) ** 2).sum() / 4.0
        grad[:d] -= (theta[:d] - math.log(0.3)) / 4.0
        if self.warp is not None:
            # d lml / d z_ij = -sum_k M_ik (z_ij - z_kj) / ls_j^2 (K and W symmetric; the diagonal
            # adds nothing, z_ij - z_ij = 0), then the chain rule through the warp
            Zw = X[:, self.warp]
            G = -(Zw * M.sum(1)[:, None] - M @ Zw) / ls[self.warp] ** 2
            grad[d + 2:d + 2 + w] = (G * dza).sum(0)
            grad[d + 2 + w:] = (G * dzb).sum(0)
            # weak normal prior on log a, log b around the identity: warp only what the data asks
            lml -= 0.5 * (theta[d + 2:] ** 2).sum() / _WARP_PRIOR_VAR
            grad[d + 2:] -= theta[d + 2:] / _WARP_PRIOR_VAR
        return float(lml), grad

    def fit(self, X: np.ndarray, y: np.ndarray, steps: int = 40,
            warm_steps: int | None = None) -> "GaussianProcess":
        """Fit to unit points ``X`` and losses ``y`` (non-finite losses become the worst finite one).

        ``steps`` Adam steps from the default hyperparameters on the first fit; a later fit on
        as many dims starts from the previous optimum and, when ``warm_steps`` is given, takes
        only that many (one more result moves the optimum little).
        """
        y = np.asarray(y, dtype=float).copy()
        finite = np.isfinite(y)
        y[~finite] = y[finite].max() if finite.any() else 0.0
        self.y_mean = float(y.mean())
        self.y_std = float(y.std()) or 1.0
        ys = (y - self.y_mean) / self.y_std
        self.X = np.asarray(X, dtype=float)
        d = X.shape[1]
        if self.warp is not None and len(self.warp) != d:
            raise ValueError(f"warp has {len(self.warp)} flags for {d} dims")
        w = 0 if self.warp is None else int(self.warp.sum())
        lo = np.array([self._LOG_LS[0]] * d + [self._LOG_SF[0], math.log(max(self.alpha, 1e-10))]
                      + [_LOG_WARP[0]] * 2 * w)
        hi = np.array([self._LOG_LS[1]] * d + [self._LOG_SF[1], math.log(1.0)] + [_LOG_WARP[1]] * 2 * w)
        warm = self._theta is not None and len(self._theta) == d + 2 + 2 * w
        theta = self._theta if warm else np.array([math.log(0.3)] * d + [0.0, math.log(max(self.alpha, 1e-3))]
                                                  + [0.0] * 2 * w)   # the warp starts as the identity
        if warm and warm_steps is not None:
            steps = min(steps, warm_steps)
        if warm and len(ys) > _FIT_MAX:
            # the fit sees a _FIT_MAX subset and starts from the last optimum: one more result
            # moves it little, so a few steps follow it (a suggestion stays well under a second)
            steps = min(steps, _WARM_STEPS)
        theta = np.clip(theta, lo, hi)
        # Adam on the log marginal likelihood; keep the best iterate
        # Above _FIT_MAX points the hyperparameters are fitted on a subset (the best third plus a
        # random rest): the fit costs O(steps * n^3), the posterior below only one O(n^3).
        Xf, yf = self.X, ys
        if len(ys) > _FIT_MAX:
            order = np.argsort(ys, kind="stable")
            keep = order[: _FIT_MAX // 3]
            rest = np.random.default_rng(len(ys)).choice(order[_FIT_MAX // 3:], _FIT_MAX - len(keep), replace=False)
            idx = np.concatenate([keep, rest])
            Xf, yf = self.X[idx], ys[idx]
        best_theta = self._ascend(theta, steps, Xf, yf, lo, hi)
        self._theta = best_theta
        self.ls = np.exp(best_theta[:d])
        self.sf2 = math.exp(best_theta[d])
        self.sn2 = max(math.exp(best_theta[d + 1]), self.alpha)
        if self.warp is not None:
            self.warp_a = np.exp(best_theta[d + 2:d + 2 + w])
            self.warp_b = np.exp(best_theta[d + 2 + w:])
        return self._condition(self.X, ys)

    def _ascend(self, theta: np.ndarray, steps: int, X: np.ndarray, y: np.ndarray,
                lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Adam on the log marginal likelihood from ``theta``: the best iterate."""
        m = np.zeros_like(theta)
        v = np.zeros_like(theta)
        best, best_theta = -math.inf, theta.copy()
        for t in range(1, steps + 1):
            lml, grad = self._lml_grad(theta, X, y)
            if lml > best:
                best, best_theta = lml, theta.copy()
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            step = 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
            theta = np.clip(theta + step, lo, hi)
        return best_theta

    def condition(self, X: np.ndarray, y: np.ndarray) -> "GaussianProcess":
        """The posterior on points ``X`` with losses ``y`` (raw units: standardized as in the last
        :meth:`fit`), keeping that fit's hyperparameters: for believed values at pending points."""
        ys = (np.asarray(y, dtype=float) - self.y_mean) / self.y_std
        return self._condition(np.asarray(X, dtype=float), ys)

    def _condition(self, X: np.ndarray, ys: np.ndarray) -> "GaussianProcess":
        # the posterior: on at most POSTERIOR_MAX points (see there)
        self.X = X
        self.kept = self._posterior_subset(ys)   # None: every point
        if self.kept is not None:
            self.X, ys = self.X[self.kept], ys[self.kept]
        self._Z = self.warped(self.X)   # the kernel's inputs
        K = self._cov(self._Z, self._Z, self.ls, self.sf2)
        K[np.diag_indices_from(K)] += self.sn2 + 2e-10
        jitter = 1e-10
        while True:
            try:
                L = np.linalg.cholesky(K)
                break
            except np.linalg.LinAlgError:
                K[np.diag_indices_from(K)] += jitter * 99
                jitter *= 100
        del K
        self._L = L
        self._a = solve_upper(L.T, solve_lower(L, ys))
        # L^-1 once per fit (m x m, m <= POSTERIOR_MAX): each prediction is then one matrix
        # product, ~3x faster than a triangular solve per batch of query points
        self._Linv = solve_lower(L, np.eye(len(L)))
        self.ys = ys
        return self

    @staticmethod
    def _posterior_subset(ys: np.ndarray) -> np.ndarray | None:
        """Indices of the points the posterior keeps (None: all): the best third, then a random
        sample of the rest seeded by the history's length (the same history, the same model)."""
        n = len(ys)
        if n <= POSTERIOR_MAX:
            return None
        order = np.argsort(ys, kind="stable")
        best = order[: POSTERIOR_MAX // 3]
        rest = np.random.default_rng(n).choice(order[POSTERIOR_MAX // 3:], POSTERIOR_MAX - len(best), replace=False)
        return np.sort(np.concatenate([best, rest]))

    def predict(self, U: np.ndarray, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at unit points (standardized unless ``raw``)."""
        U = self.warped(U)
        mu, var = np.empty(len(U)), np.empty(len(U))
        rows = max(1, _PREDICT_CELLS // max(1, len(self.X)))   # bounded temporaries
        for s in range(0, len(U), rows):
            Ks = self._cov(U[s:s + rows], self._Z, self.ls, self.sf2)
            mu[s:s + rows] = Ks @ self._a
            V = Ks @ self._Linv.T                   # rows of (L^-1 Ks^T)^T
            var[s:s + rows] = self.sf2 - np.einsum("ij,ij->i", V, V)
        sd = np.sqrt(np.maximum(var, 1e-12))
        if raw:
            return mu * self.y_std + self.y_mean, sd * self.y_std
        return mu, sd

    def predict_mean(self, U: np.ndarray) -> np.ndarray:
        """Posterior mean only (standardized): O(n) per point, no solve."""
        U = self.warped(U)
        mu = np.empty(len(U))
        rows = max(1, _PREDICT_CELLS // max(1, len(self.X)))
        for s in range(0, len(U), rows):
            mu[s:s + rows] = self._cov(U[s:s + rows], self._Z, self.ls, self.sf2) @ self._a
        return mu

    def loo(self) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-out predictive mean and sd of every observation the posterior holds (standardized)."""
        dinv = np.einsum("ij,ij->j", self._Linv, self._Linv)     # diag(K^-1) = diag(L^-T L^-1)
        mu = self.ys - self._a / dinv
        return mu, np.sqrt(1.0 / dinv)


_YJ_LAMBDAS = np.linspace(-2.0, 3.0, 51)


def yeo_johnson(y: np.ndarray) -> np.ndarray:
    """Standardized ``y`` through the Yeo-Johnson power transform whose exponent maximizes the
    normal likelihood (as HEBO warps its targets): a few very bad results (a diverged fit's
    loss) no longer flatten the rest of the model's targets.  Monotone, so the order is kept."""
    y = np.asarray(y, dtype=float)
    sd = y.std()
    if len(y) < 3 or not sd > 0:
        return y
    z = (y - y.mean()) / sd
    pos = z >= 0
    lp, ln = np.log1p(z[pos]), np.log1p(-z[~pos])
    best, best_t = -math.inf, z
    for lam in _YJ_LAMBDAS:
        t = np.empty_like(z)
        t[pos] = lp if abs(lam) < 1e-9 else np.expm1(lam * lp) / lam
        t[~pos] = -ln if abs(lam - 2) < 1e-9 else -np.expm1((2 - lam) * ln) / (2 - lam)
        var = t.var()
        if not var > 0 or not np.isfinite(var):
            continue
        ll = -0.5 * len(z) * math.log(var) + (lam - 1) * (lp.sum() - ln.sum())
        if ll > best:
            best, best_t = ll, t
    return best_t


def utility(kind: str, mu: np.ndarray, sd: np.ndarray, best: float, kappa: float, xi: float) -> np.ndarray:
    """Acquisition value to *maximize* for a loss model (lower is better)."""
    if kind == "ucb":
        return -(mu - kappa * sd)
    imp = best - mu - xi
    z = imp / sd
    if kind == "poi":
        return norm_cdf(z)
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return imp * norm_cdf(z) + sd * pdf


def maximize(fn: Callable[[np.ndarray], np.ndarray], space: UnitSpace, rng: np.random.Generator,
             n_warm_up: int, n_starts: int, rounds: int = 20, chunk: int = 4096,
             seeds: np.ndarray | None = None) -> np.ndarray:
    """Approximate argmax of ``fn`` (vectorized over rows of unit points) on the unit cube.

    ``n_warm_up`` random points are scored in chunks; the best of them, the ``seeds`` (unit
    points worth starting from, e.g. the best results: the acquisition often peaks near them)
    and random points (``n_starts`` starts in all, besides the seeds) are then improved
    together by a shrinking random local search (a gradient-free stand-in for L-BFGS-B,
    which would need scipy).
    """
    pool_u, pool_v = [], []
    left = max(1, n_warm_up)
    while left > 0:
        U = space.sample(rng, min(chunk, left))
        left -= len(U)
        v = fn(U)
        k = min(len(U), max(1, n_starts // 2))
        top = np.argpartition(-v, k - 1)[:k]
        pool_u.append(U[top])
        pool_v.append(v[top])
    U = np.vstack(pool_u)
    v = np.concatenate(pool_v)
    k = min(len(U), max(1, n_starts // 2))
    top = np.argsort(-v)[:k]
    extra = [space.sample(rng, max(0, n_starts - k))]
    if seeds is not None and len(seeds):
        extra.append(space.snap(np.atleast_2d(seeds)))
    more = np.vstack(extra)
    starts = np.vstack([U[top], more])
    vals = np.concatenate([v[top], fn(more)]) if len(more) else v[top]
    step = np.full(len(starts), 0.1)
    for _ in range(rounds):
        prop = space.snap(starts + rng.normal(size=starts.shape) * step[:, None])
        pv = fn(prop)
        better = pv > vals
        # a start scored -inf (a point the caller excludes) takes any move without widening its
        # step: the first move away from it says nothing about the acquisition's slope
        grow = better & np.isfinite(vals)
        starts[better], vals[better] = prop[better], pv[better]
        step = np.where(grow, np.minimum(step * 1.5, 0.3), np.where(better, step, np.maximum(step * 0.6, 1e-4)))
    return starts[int(np.argmax(vals))]
