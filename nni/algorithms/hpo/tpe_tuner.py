"""Tree-structured Parzen Estimator tuner (NNI's ``TpeTuner``), vectorized on numpy.

Observations are split by loss into a "good" group (the best ``ceil(gamma * n)``,
at most 25) and a "bad" group; Parzen estimators ``l(x)`` and ``g(x)`` are fitted to
them, ``n_ei_candidates`` samples are drawn from ``l`` and the one maximizing
``l(x) / g(x)`` is kept.

By default (``multivariate``) the search space is cut into *contexts*: the top level and
each branch of a nested ``choice``.  Each context gets one joint estimator over its own
parameters, fitted only on the trials that took that branch and split by their own
ranking, and contexts are proposed top-down along the branches chosen.  A nested choice
picks its branch at random in a share of proposals (``BRANCH_EXPLORATION``) so that a
narrow, better branch is not abandoned on a few early results.  With
``multivariate: false`` every parameter has its own estimator (NNI's classic TPE).
Three quarters of the proposals (``LOCAL_SEARCH_SHARE``) search locally: their candidates
come from the incumbent's kernel only, with a narrowed bandwidth, and a quarter of its draws
beyond a bound on the bound (``LOCAL_SEARCH_AT_BOUNDS``).
Pending trials are imputed with a constant liar so parallel suggestions spread out;
the random start-up phase is sized by the trial budget when one is known.  Tied results
are not ranked by their order: while every result ties the proposals stay random.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

import numpy as np

from nni.search_space._flat import Dim, decode

from ._base import BaseTuner, canonical, params_key, random_vector
from ._constraints import ConstrainedTuner
from ._parzen import JointParzen, forgetting_weights, propose_independent

__all__ = ["TpeTuner", "TpeArguments"]

_logger = logging.getLogger(__name__)

_MAX_GOOD = 25

#: Parameter-set keys of candidate vectors kept by a tuner on a finite space (a cache: cleared when full).
_KEYS_KEPT = 100_000


class TpeArguments:
    """Hyperparameters of :class:`TpeTuner` (NNI's ``tpe_args``)."""

    DEFAULTS = {
        "constant_liar_type": "worst",   # NNI: "best" (docs/tuners.md)
        "n_startup_jobs": None,      # None: chosen from the trial budget (see auto_startup_jobs)
        "n_ei_candidates": 24,
        "linear_forgetting": 25,
        "prior_weight": 1.0,
        "gamma": 0.15,              # NNI: 0.25 (docs/tuners.md)
        # nni-ng extension (not in NNI): sample all dims jointly from whole good observations
        "multivariate": True,
    }

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"tpe_args: unknown key(s) {', '.join(map(repr, unknown))}; "
                             f"valid keys: {', '.join(self.DEFAULTS)}")
        args = {**self.DEFAULTS, **kwargs}
        liar = args["constant_liar_type"]
        if liar not in ("best", "worst", "mean", None):
            raise ValueError(f"tpe_args['constant_liar_type'] must be 'best', 'worst', 'mean' or None, got {liar!r}")
        for key in ("n_startup_jobs", "n_ei_candidates", "linear_forgetting"):
            v = args[key]
            if v is None and key == "n_startup_jobs":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if key == "n_ei_candidates" else 0):
                kind = "positive" if key == "n_ei_candidates" else "non-negative"
                raise ValueError(f"tpe_args[{key!r}] must be a {kind} int, got {v!r}")
        if isinstance(args["prior_weight"], bool) or not isinstance(args["prior_weight"], (int, float)) \
                or not args["prior_weight"] > 0:
            raise ValueError(f"tpe_args['prior_weight'] must be a positive number, got {args['prior_weight']!r}")
        g = args["gamma"]
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 < g < 1:
            raise ValueError(f"tpe_args['gamma'] must be a number in (0, 1), got {g!r}")
        self.constant_liar_type: str | None = liar
        self.n_startup_jobs: int | None = args["n_startup_jobs"]
        self.n_ei_candidates: int = args["n_ei_candidates"]
        self.linear_forgetting: int = args["linear_forgetting"]
        self.prior_weight: float = float(args["prior_weight"])
        self.gamma: float = float(g)
        if not isinstance(args["multivariate"], bool):
            raise ValueError(f"tpe_args['multivariate'] must be true or false, got {args['multivariate']!r}")
        self.multivariate: bool = args["multivariate"]


def _split(y: np.ndarray, args: TpeArguments) -> tuple[np.ndarray, np.ndarray]:
    """Indices (time order) of the good group (best ``ceil(gamma * n)``, at most 25) and the rest.

    Results tied across that boundary are not told apart by their order: only the results
    strictly better than the tied value are good or, when the best value itself is tied,
    every result that has it (at most 25)."""
    order = np.argsort(y, kind="stable")
    n_good = max(1, min(int(math.ceil(args.gamma * len(y))), _MAX_GOOD))
    if n_good < len(y) and y[order[n_good - 1]] == y[order[n_good]]:
        tied = y[order[n_good]]
        below = int(np.count_nonzero(y < tied))
        n_good = below if below else min(int(np.count_nonzero(y == tied)), _MAX_GOOD)
    return np.sort(order[:n_good]), np.sort(order[n_good:])


def _all_tied(y: np.ndarray) -> bool:
    """Whether every result is the same: a plateau (a model that predicts the class prior, a
    training that reports the same cap), which gives TPE nothing to rank by."""
    return len(y) > 0 and bool((y == y[0]).all())


#: Share of proposals in which a nested ``choice`` picks its branch uniformly at random (the
#: branch's own parameters are still chosen by its model).  TPE's ratio l/g favours a branch
#: whose trials are reliably fair (a wide flat floor) over one whose best region is narrow
#: and whose typical trial looks worst; without this it settled in the worse branch for good
#: (docs/benchmarks.md: on the tuning half's three conditional problems 0.5 beat 0, 0.2, 0.25, 0.33).
BRANCH_EXPLORATION = 0.5

#: Share of proposals that search locally around the incumbent: in each context the EI
#: candidates are drawn from the kernel of that context's best trial only (not from the whole
#: good mixture), with its bandwidth narrowed by ``LOCAL_SEARCH_BANDWIDTH``, and still scored
#: by ``l(x) / g(x)``.  Plain TPE stops refining once the good group's bandwidths stop
#: shrinking.  On the benchmark's tuning half 0.75 (with bandwidth 0.25) beat shares 0 to 0.5
#: and 0.9, and bandwidth 0.25 beat 1, 0.5 and 0.1, at 60 and 200 trials (docs/benchmarks.md).
LOCAL_SEARCH_SHARE = 0.75

#: Factor on the incumbent's kernel bandwidth in a local proposal.
LOCAL_SEARCH_BANDWIDTH = 0.25

#: Share of a local proposal's kernel draws beyond a bound that are put on the bound (the rest
#: are drawn again: a normal truncated to the range).  A truncated kernel never proposes the
#: bound itself, so TPE crept towards an optimum at the end of a range (Bayesmark's linear-iris,
#: best at the largest C) where a GP's optimizer stops on the bound.  0.25 closed most of that
#: gap and left the synthetic problems level; 1 and 0.5 cost a little there (docs/benchmarks.md).
LOCAL_SEARCH_AT_BOUNDS = 0.25


def contexts(dims: list[Dim]) -> dict[tuple, list[Dim]]:
    """Dims grouped by the context that activates them: ``(None, None)`` for the top level,
    ``(choice index, option)`` for the parameters of a nested ``choice`` branch."""
    groups: dict[tuple, list[Dim]] = {}
    for dim in dims:
        groups.setdefault((dim.parent, dim.parent_option), []).append(dim)
    return groups


def tpe_propose_joint(dims: list[Dim], X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                      args: TpeArguments, taken: Callable[[np.ndarray], np.ndarray] | None = None
                      ) -> np.ndarray | None:
    """Multivariate, tree-structured TPE.

    The space is decomposed into contexts (the top level, and each branch of a nested
    ``choice``), visited top-down along the branches taken.  Each context is one joint
    Parzen estimator over its own dims, fitted only on the trials in which the context was
    active, so a parameter of another branch never enters it; its good group is the best
    ``gamma`` share *of those trials* (the branch's own ranking), so a branch chosen for
    its promise is searched towards its own best region.  Candidates are drawn from the
    good mixture and the one maximizing ``l(x) / g(x)`` is kept.

    ``taken`` (only for a space without nested choices: one context, whole vectors) marks the
    candidates already evaluated or running; they are passed over, and ``None`` is returned
    when every candidate was.
    """
    groups = contexts(dims)
    vec = np.full(len(dims), np.nan)
    todo: list[tuple] = [(None, None)]
    while todo:
        key = todo.pop()
        gdims = groups.get(key)
        if not gdims:
            continue
        if key[0] is None:
            rows = np.arange(len(y))
        else:
            rows = np.flatnonzero(X[:, key[0]] == key[1])   # NaN (inactive parent) never matches
        g, b = _split(y[rows], args) if len(rows) else (rows, rows)
        good, bad = rows[g], rows[b]
        lo = JointParzen(gdims, X[good], forgetting_weights(len(good), args.linear_forgetting), args.prior_weight)
        hi = JointParzen(gdims, X[bad], forgetting_weights(len(bad), args.linear_forgetting), args.prior_weight)
        # a local proposal: around the incumbent (the good group's best), with a narrower kernel
        local = len(good) > 0 and rng.random() < LOCAL_SEARCH_SHARE
        incumbent = int(np.argmin(y[good])) if len(good) else 0
        cand = (lo.sample(rng, args.n_ei_candidates, only=incumbent, scale=LOCAL_SEARCH_BANDWIDTH,
                          censored=LOCAL_SEARCH_AT_BOUNDS)
                if local else lo.sample(rng, args.n_ei_candidates))
        score = lo.log_pdf(cand) - hi.log_pdf(cand)
        if local and len(groups) == 1:
            # With draws put on the bounds, an incumbent in a corner is drawn again exactly; a
            # repeat of the whole set is passed over (a nested context's values may repeat).
            score[(cand == X[good[incumbent]]).all(axis=1)] = -np.inf
        if taken is not None:
            # On a finite space the best-scored candidates are mostly sets already tried (a local
            # proposal's narrow kernel rounds back to the incumbent): the best untried one is kept,
            # and if none is untried, candidates from the whole good mixture are scored.
            score[taken(cand)] = -np.inf
            if np.isneginf(score).all():
                cand = lo.sample(rng, 4 * args.n_ei_candidates)
                score = lo.log_pdf(cand) - hi.log_pdf(cand)
                score[taken(cand)] = -np.inf
                if np.isneginf(score).all():
                    return None
        best = cand[int(np.argmax(score))]
        for dim in gdims:
            if dim.categorical and any(dim.nested) and rng.random() < BRANCH_EXPLORATION:
                best = best.copy()
                best[dim.index] = float(rng.integers(dim.size))
        for dim in gdims:
            vec[dim.index] = best[dim.index]
            if dim.categorical and any(dim.nested):
                todo.append((dim.index, int(best[dim.index])))
    return vec


def tpe_propose(dims: list[Dim], X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                args: TpeArguments, taken: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray | None:
    """One TPE suggestion (internal vector) from observations ``X`` (n x d, NaN = inactive) and losses ``y``;
    ``None`` when ``taken`` (a space without nested choices; see :func:`tpe_propose_joint` and
    :func:`propose_independent`) marked every candidate."""
    if args.multivariate:
        return tpe_propose_joint(dims, X, y, rng, args, taken)
    good, bad = _split(y, args)   # time order, for linear forgetting
    w_good = forgetting_weights(len(good), args.linear_forgetting)
    w_bad = forgetting_weights(len(bad), args.linear_forgetting)
    return propose_independent(dims, X[good], w_good, X[bad], w_bad, rng, args.n_ei_candidates, args.prior_weight,
                               taken)


def auto_startup_jobs(budget: int | None) -> int:
    """Random start-up trials when ``n_startup_jobs`` is not given: a tenth of the trial budget,
    at least 5 and at most NNI's 20 (20 when the budget is unknown).

    NNI's fixed 20 is two thirds of a 30-trial budget and a third of a 60-trial one; the model
    needs only a few points to start from (docs/benchmarks.md compares 10, 20 and this rule)."""
    if budget is None:
        return 20
    return max(5, min(20, budget // 10))


class TpeTuner(ConstrainedTuner, BaseTuner):   # ConstrainedTuner: feasible results rank first
    """TPE tuner.

    Parameters
    ----------
    optimize_mode
        ``'minimize'`` (default) or ``'maximize'``.
    seed
        Seed of the random generator; the same seed gives the same suggestions.
    tpe_args
        Advanced settings, see :class:`TpeArguments` (``constant_liar_type``,
        ``n_startup_jobs``, ``n_ei_candidates``, ``linear_forgetting``, ``prior_weight``, ``gamma``).
    """

    _repeated_in_nni2 = True   # NNI 2.x's hyperopt-based version (multi-phase experiments)
    takes_partial_results = True   # a parameter missing from a result: its prior in that component

    def __init__(self, optimize_mode: Any = "minimize", seed: Any = None, tpe_args: dict | None = None) -> None:
        super().__init__(optimize_mode=optimize_mode, seed=seed)
        self._trial_budget: int | None = None
        if tpe_args is not None and not isinstance(tpe_args, dict):
            raise ValueError(f"tpe_args must be a dict, got {type(tpe_args).__name__}")
        self.args = TpeArguments(**(tpe_args or {}))
        self._keys_of_vectors: dict[bytes, str] = {}
        self._nested = False

    def _on_space_updated(self) -> None:
        self._keys_of_vectors = {}
        self._nested = any(dim.parent is not None for dim in self._dims)

    def set_trial_budget(self, max_trials: int | None) -> None:
        """Learn the experiment's trial budget (``maxTrialNumber``; ``None``: unlimited).

        Only used to size the random start-up phase when ``n_startup_jobs`` is not given."""
        self._trial_budget = max_trials if isinstance(max_trials, int) and max_trials > 0 else None

    @property
    def n_startup_jobs(self) -> int:
        """Random trials before the model is used: the explicit ``n_startup_jobs`` or, when it
        is not given, :func:`auto_startup_jobs` of the trial budget."""
        if self.args.n_startup_jobs is not None:
            return self.args.n_startup_jobs
        return auto_startup_jobs(getattr(self, "_trial_budget", None))

    def _propose(self) -> np.ndarray:
        X, y, n_done = self._observations(self.args.constant_liar_type)
        # While every result ties, an estimator would be fitted to the order the results came in.
        if n_done < max(1, self.n_startup_jobs) or _all_tied(y[:n_done]):
            return random_vector(self._dims, self._rng)
        # On a finite space a proposal skips the sets already tried; a nested space's candidates
        # are partial vectors (one per context): there BaseTuner's re-ask of a repeat stays.
        taken = self._taken if self.is_finite and not self._nested and len(self._seen) < self._size else None
        vec = tpe_propose(self._dims, X, y, self._rng, self.args, taken)
        return self._pick_unused() if vec is None else vec

    def _taken(self, candidates: np.ndarray) -> np.ndarray:
        """Which candidates (rows of internal vectors) are parameter sets already tried or running."""
        # A finite space's candidates repeat: each one's key (~7 us to build) is kept, by its vector.
        keys = self._keys_of_vectors
        taken = np.empty(len(candidates), dtype=bool)
        for i, candidate in enumerate(candidates):
            vec = canonical(self._dims, candidate)
            key = keys.get(vec.tobytes())
            if key is None:
                if len(keys) >= _KEYS_KEPT:
                    keys.clear()
                key = keys[vec.tobytes()] = params_key(decode(self._dims, list(vec)))
            taken[i] = key in self._seen
        return taken
