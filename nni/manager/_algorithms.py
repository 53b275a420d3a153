"""The experiment's tuner and assessor (private): how they are built, and the shape of every call.

Each algorithm runs on its own thread (:class:`SerialRunner`), inside a :mod:`contextvars`
context that carries the experiment's checkpoint directory (``nni.recoverable``), so nothing
is set in the process environment. What differs with ``multiPhase`` in talking to the
tuner (``trial_job_id=`` on each call, ``trial_end`` per job) is decided here, once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .._constraints import Constraint, Feasibility
from .._objectives import Objective
from ..errors import BadRequest, NoMoreTrialError
from ..multi_phase import MultiPhaseTuner
from ..records import SOURCE_RESUMED
from ..recoverable import algorithm_context
from . import _objectives, read_model
from ._trials import TrialState
from .serial_runner import AlgorithmError, SerialRunner

if TYPE_CHECKING:
    from ..experiment.config import ExperimentConfig

_logger = logging.getLogger("nni.manager")


class Algorithms:
    """The tuner (and optional assessor) of one experiment, each behind its :class:`SerialRunner`.

    ``on_error`` gets the message of a call that raised and whose result nobody awaits
    (results, trial ends): the manager sets the experiment to ERROR with it.
    """

    def __init__(self, tuner: SerialRunner, assessor: SerialRunner | None, *, multi_phase: bool,
                 multi_thread: bool, on_error: Callable[[str], None]) -> None:
        self.tuner = tuner
        self.assessor = assessor
        self.multi_phase = multi_phase
        self.multi_thread = multi_thread
        self._on_error = on_error

    @classmethod
    def build(cls, config: ExperimentConfig, *, checkpoint_dir: Path, objectives: list[Objective] | None,
              on_error: Callable[[str], None], tuner: Any = None, assessor: Any = None) -> tuple[Algorithms, str]:
        """The configured algorithms (or the objects given) and the optimize mode; raises on a bad config.

        Built-in and custom algorithms are constructed inside the experiment's context, so a
        constructor that reads its checkpoint directory (NNI's PBT does) finds it.
        """
        context = algorithm_context(checkpoint_dir)
        tuner = tuner or context.run(_create_algorithm, "tuner", config.tuner)
        assessor = assessor or (context.run(_create_algorithm, "assessor", config.assessor)
                                if config.assessor else None)
        if config.multi_phase and hasattr(tuner, "repeat_when_used_up"):
            tuner.repeat_when_used_up()     # NNI 2.x's rule; multi-phase jobs may share a configuration
        optimize_mode = read_model.optimize_mode(config.to_dict(), tuner)   # multi-objective: the first one's
        if objectives:
            refusal = _objectives.refuse_tuner(tuner)
            if refusal:
                raise ValueError(refusal)
        runners = cls(SerialRunner(tuner, "tuner", context),
                      SerialRunner(assessor, "assessor", context.copy()) if assessor is not None else None,
                      multi_phase=bool(config.multi_phase), multi_thread=bool(config.multi_thread),
                      on_error=on_error)
        return runners, optimize_mode

    # -- set-up and updates ---------------------------------------------------------------------
    async def prepare(self, search_space: dict[str, Any], objectives: list[Objective] | None,
                      max_trial_number: int | None, constraints: list[Constraint] | None = None) -> None:
        """The first calls: objectives (multi-objective tuners), constraints, the search space, the budget."""
        if objectives and hasattr(self.tuner.algorithm, "set_objectives"):
            await self.tuner.call("set_objectives", [o.to_dict() for o in objectives])
        if constraints and hasattr(self.tuner.algorithm, "set_constraints"):
            await self.tuner.call("set_constraints", [c.to_dict() for c in constraints])
        await self.tuner.call("update_search_space", search_space)
        await self.tell_trial_budget(max_trial_number)

    async def tell_trial_budget(self, max_trial_number: int | None) -> None:
        """Tell a tuner that sizes itself by the budget (built-in TPE) about maxTrialNumber."""
        if hasattr(self.tuner.algorithm, "set_trial_budget"):
            await self.tuner.call("set_trial_budget", max_trial_number)

    async def update_search_space(self, search_space: dict[str, Any]) -> None:
        """A new search space from the user; BadRequest (the tuner's message) when the tuner refuses it."""
        await self._user_call("update_search_space", "this search space", search_space)

    @property
    def takes_partial_results(self) -> bool:
        """Whether the tuner takes results lacking parameters (``import_data(..., partial=True)``)."""
        return bool(getattr(self.tuner.algorithm, "takes_partial_results", False))

    async def import_data(self, rows: list[dict[str, Any]], partial: bool = False) -> None:
        """Results the user imports; BadRequest (the tuner's message) when the tuner refuses them.

        ``partial``: rows may lack parameters added since (a warm start); only a tuner that
        takes partial results is told so (others get NNI's plain call)."""
        kwargs = {"partial": True} if partial and self.takes_partial_results else {}
        await self._user_call("import_data", "the imported data", rows, **kwargs)

    async def _user_call(self, method: str, what: str, *args: Any, **kwargs: Any) -> None:
        # What the user sent is what this tuner cannot take (a space it does not support, rows
        # that do not fit the space): the user's to fix, so a 400 with the tuner's own message,
        # and the experiment goes on with what it had. The traceback goes to the log.
        try:
            await self.tuner.call(method, *args, **kwargs)
        except AlgorithmError as exc:
            cause = exc.__cause__ or exc
            name = type(self.tuner.algorithm).__name__
            _logger.warning("tuner %s refused %s: %s", name, what, exc)
            raise BadRequest(f"the tuner {name} refused {what} ({method} raised "
                             f"{type(cause).__name__}: {cause})") from exc

    async def restore(self, data: list[dict[str, Any]]) -> None:
        """Give a resumed tuner its history (``import_data``), ahead of every later call.

        Queued, not awaited: the tuner thread runs calls in order, so every later
        generate/receive call sees this history, while the REST API answers at once
        (100,000 results take the tuner seconds). A failure sets ERROR as any tuner error.
        multiThread runs some calls beside the queue: there the import is awaited.
        """
        if not data or not hasattr(self.tuner.algorithm, "import_data"):
            return
        # A warm start's rows that lack new parameters were taken (partial) the first time too.
        kwargs = {"partial": True} if self.takes_partial_results else {}
        if self.multi_thread:
            await self.tuner.call("import_data", data, **kwargs)
        else:
            self._post(self.tuner, "import_data", data, **kwargs)

    def is_builtin_tuner(self) -> bool:
        """Whether the tuner is one of nni-ng's (they take NNI's search-space format and scalar results)."""
        return type(self.tuner.algorithm).__module__.startswith("nni.algorithms.")

    def shutdown(self) -> None:
        for runner in (self.tuner, self.assessor):
            if runner is not None:
                runner.shutdown()

    # -- the calls of a trial's life ------------------------------------------------------------
    async def generate(self, parameter_ids: list[int], trial_id: str | None,
                       concurrent: bool = False) -> list[dict[str, Any]]:
        """Parameter sets for ``parameter_ids`` (fewer, or none, when the tuner has no more).

        A multi-phase tuner is told which trial job a set is for (``trial_job_id``).
        """
        kwargs = {"trial_job_id": trial_id} if self.multi_phase else {}
        call = self.tuner.call_concurrent if concurrent else self.tuner.call
        try:
            return list(await call("generate_multiple_parameters", parameter_ids, **kwargs) or [])
        except NoMoreTrialError:
            return []

    def tell_result(self, trial: TrialState, record: dict[str, Any], value: Any,
                    feasible: Feasibility | None = None) -> None:
        """A final result for ``record``: as a result of this tuner's own set, or as imported data."""
        if record["parameter_source"] == SOURCE_RESUMED or trial.tuner_closed:
            # This tuner instance never generated these parameters (they are re-run after a
            # resume), or it was told the trial ended (a user re-run): it gets imported data.
            self._post(self.tuner, "import_data", [{"parameter": record["parameters"], "value": value}])
        else:
            self.tell_stopped_result(trial, record, value, feasible)

    def tell_stopped_result(self, trial: TrialState, record: dict[str, Any], value: Any,
                            feasible: Feasibility | None = None) -> None:
        """``receive_trial_result`` (also the last intermediate result of a trial stopped early, as NNI does);
        with ``constraints=`` (docs/constraints.md) in a constrained experiment."""
        self._post(self.tuner, "receive_trial_result", record["parameter_id"], record["parameters"], value,
                   **self._phase_kwargs(trial), **_objectives.feasibility_kwargs(self.tuner.algorithm, feasible))

    def tell_intermediate(self, trial: TrialState, record: dict[str, Any], value: Any) -> None:
        """An intermediate result, to a tuner that reads them (Hyperband/BOHB rank a run that ends
        without a final result by its last one, as NNI's advisors do)."""
        if hasattr(self.tuner.algorithm, "receive_intermediate_result") and \
                record["parameter_source"] != SOURCE_RESUMED and not trial.tuner_closed:
            self._post(self.tuner, "receive_intermediate_result", record["parameter_id"], value)

    def trial_ended(self, trial: TrialState, success: bool) -> None:
        """``trial_end`` to the tuner (per parameter set; a MultiPhaseTuner once per job) and the assessor."""
        if isinstance(self.tuner.algorithm, MultiPhaseTuner):
            self._post(self.tuner, "trial_end", trial.trial_id, success)
        else:
            for record in trial.records:
                self._post(self.tuner, "trial_end", record["parameter_id"], success, **self._phase_kwargs(trial))
        if self.assessor is not None:
            self._post(self.assessor, "trial_end", trial.trial_id, success)

    async def assess(self, trial_id: str, history: list[Any]) -> bool:
        """Whether the assessor says ``Bad`` (stop the trial); raises :class:`AlgorithmError`."""
        assert self.assessor is not None
        verdict = await self.assessor.call("assess_trial", trial_id, history)
        return getattr(verdict, "value", verdict) is False

    def _phase_kwargs(self, trial: TrialState) -> dict[str, Any]:
        return {"trial_job_id": trial.trial_id} if self.multi_phase else {}

    def _post(self, runner: SerialRunner, method: str, *args: Any, **kwargs: Any) -> None:
        """A tuner/assessor call nobody awaits; if it raises, the experiment goes to ERROR."""
        runner.post(self._failed, method, *args, **kwargs)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, AlgorithmError):
            self._on_error(str(exc))


def _create_algorithm(kind: str, algo: Any) -> Any:
    from ..algorithms.registry import create_algorithm
    return create_algorithm(kind, name=getattr(algo, "name", None), class_name=getattr(algo, "class_name", None),
                            code_directory=getattr(algo, "code_directory", None),
                            class_args=dict(getattr(algo, "class_args", None) or {}))

