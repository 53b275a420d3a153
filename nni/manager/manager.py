"""The experiment manager: schedules trials, talks to the tuner and assessor, stores every fact.

Everything runs on one asyncio loop and reacts to events (a trial exited, a metric
arrived, the user changed a limit); nothing polls. Each state change is written to the
store before anyone is told about it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import os
import secrets
import string
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import NniError, NoMoreTrialError
from ..records import SOURCE_ALGORITHM, SOURCE_RESUMED, ParameterRecord
from ..multi_phase import MultiPhaseTuner
from ..status import EXPERIMENT_ENDED, TRIAL_ACTIVE, TRIAL_ENDED, ExperimentStatus, TrialStatus
from ..training_service import ServiceContext, TrainingService, TrialEnded, TrialSpec, create_training_service
from ..utils import extract_scalar_reward
from . import _objectives
from .dispatcher import AlgorithmError, SerialRunner
from .experiment_dir import ExperimentDir
from .read_model import optimize_mode
from .store import insert_metric

_logger = logging.getLogger("nni.manager")

ACTIVE_STATES = TRIAL_ACTIVE
FINISHED_TRIAL_STATES = TRIAL_ENDED
# A trial the manager lost while it ran (it was killed); NNI's name for a system-side cancel.
INTERRUPTED = TrialStatus.SYS_CANCELED.value
# States in which the manager still starts trials / has finished for good.
SCHEDULING_STATES = (ExperimentStatus.RUNNING.value,)
ENDED_STATES = EXPERIMENT_ENDED
# Default of maxFailedTrialsAtStart: this many failures before any trial succeeds end the experiment.
DEFAULT_MAX_FAILED_TRIALS_AT_START = 5
# Defaults of maxTrialRetries and trialLeaseTimeout (seconds). A lease is renewed every quarter
# of its timeout, so a few lost renewals (a busy machine) do not declare a trial lost.
DEFAULT_MAX_TRIAL_RETRIES = 2
DEFAULT_LEASE_TIMEOUT = 60.0
LEASE_RENEWALS_PER_TIMEOUT = 4
# The kill status of an attempt the manager declared lost (its lease lapsed): never recorded as
# a trial state; the trial runs again or, out of retries, ends FAILED.
LOST = "LOST"
# Trials a user may run again (``rerun_trials``): ended without a result and not by the assessor.
RERUNNABLE_STATES = ("FAILED", "USER_CANCELED")


class RerunError(NniError, ValueError):
    """A re-run request that cannot be honoured; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class DuplicateFinal(NniError, ValueError):
    """A second, different final result for a parameter set that already has one (HTTP 409)."""


def new_id(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(slots=True)    # slots: 100,000 of these after a resume, no per-object __dict__
class TrialState:
    trial_id: str
    sequence_id: int
    trial_dir: str
    token: str
    records: list[dict[str, Any]] = field(default_factory=list)
    status: str = "WAITING"
    kill_status: str | None = None      # the state to record when our own kill ends it
    kill_message: str = ""
    history: dict[int | None, list[Any]] = field(default_factory=dict)   # intermediate values per parameter
    finals: set[int | None] = field(default_factory=set)
    result_note: str = ""               # why a final result was not given to the tuner (multi-objective)
    timer: asyncio.TimerHandle | None = None
    # Attempts: each run of this trial (same id, parameters and directory). Earlier attempts'
    # tokens are fenced: a late report from one is refused (409), never stored.
    attempt: int = 1
    old_tokens: frozenset[str] = frozenset()    # replaced, not mutated: most trials never have one
    queued: bool = False                # an attempt waiting for a slot, not yet given to the service
    machine: str | None = None          # where the current attempt runs, when known
    sequence_offset: int = 0            # added to this attempt's metric sequence numbers
    lease_deadline: float | None = None   # loop time; None: no lease taken (yet)
    lease_timer: asyncio.TimerHandle | None = None
    tuner_closed: bool = False          # the tuner already had trial_end (or an earlier manager ran it)


class ExperimentManager:
    """One experiment: its tuner, assessor, training service, store and limits."""

    def __init__(self, config: Any, experiment_id: str, experiment_dir: Path, *,
                 tuner: Any = None, assessor: Any = None, port: int = 8080, resume: bool = False) -> None:
        self.config = config            # canonical ExperimentConfig
        self.id = experiment_id
        self.dir = Path(experiment_dir)
        self.port = port
        self.store = ExperimentDir(self.dir).open_store()
        self.status = "INITIALIZED"
        self.errors: list[str] = []
        self.trials: dict[str, TrialState] = {}
        self.start_time = time.time()
        self.end_time: float | None = None
        self._tuner_obj = tuner
        self._assessor_obj = assessor
        self._tuner: SerialRunner | None = None
        self._assessor: SerialRunner | None = None
        self._service: TrainingService | None = None
        self._next_parameter_id = 0
        self._next_sequence_id = 0
        self._parameter_sets = 0          # parameter sets given out (multi-phase: several per trial job)
        self._counted_trials = 0          # trials that count against maxTrialNumber (not interrupted ones)
        self._resume = resume
        self._reruns: list[dict[str, Any]] = []   # parameters of interrupted trials, run again first
        self._tuner_exhausted = False
        self._asking = 0                  # multiThread: tuner calls in flight, one per slot
        # The tuner gave fewer parameter sets than asked while trials were running: it may be
        # waiting for their results (Hyperband rungs, PBT generations), so it is asked again
        # after the next result or trial end, and is exhausted only if it gives nothing while
        # no trial runs (NNI's TUNER_NO_MORE_TRIAL semantics).
        self._tuner_waiting = False
        self._duration_timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self.version = 0
        self.stopped = asyncio.Event()
        self._scheduler: asyncio.Task | None = None
        self.optimize_mode = "maximize"
        self.best: tuple[float, str, Any] | None = None   # (reward, trial id, raw value)
        self._failures = _FailureWatch(getattr(config, "max_failed_trials_at_start", None))
        self._pending: list[TrialState] = []   # attempts waiting for a slot (retries, user re-runs)
        retries = getattr(config, "max_trial_retries", None)
        self.max_trial_retries = DEFAULT_MAX_TRIAL_RETRIES if retries is None else retries
        self.lease_timeout = getattr(config, "trial_lease_timeout", None) or DEFAULT_LEASE_TIMEOUT
        # multi-objective experiments (config `objectives`); None for every other experiment
        self.objectives = _objectives.experiment_objectives(config)

    # -- start and stop --------------------------------------------------------------------
    async def start(self) -> None:
        """Build the algorithms and the training service, then begin scheduling."""
        config = self.config
        from .secret import private_dir
        private_dir(self.dir / "trials")
        private_dir(self.dir / "checkpoint")
        # Where built-in tuners such as PBT keep checkpoints (NNI's variable); set per experiment.
        os.environ["NNI_CHECKPOINT_DIRECTORY"] = str(self.dir / "checkpoint")
        if self._resume:
            # Limits carry on: the time already spent counts against maxExperimentDuration.
            self.start_time = time.time() - self._elapsed_before()
        self.store.set_meta(id=self.id, config=config.to_dict(), start_time=self.start_time,
                            status="INITIALIZED", port=self.port, pid=os.getpid())
        self._record_event("EXPERIMENT_RESUMED" if self._resume else "EXPERIMENT_CREATED",
                           f"experiment {self.id} {'resumed' if self._resume else 'created'}")
        try:
            tuner = self._tuner_obj or _create_algorithm("tuner", config.tuner)
            assessor = self._assessor_obj or (
                _create_algorithm("assessor", config.assessor) if config.assessor else None)
            self.optimize_mode = optimize_mode(config.to_dict(), tuner)   # multi-objective: the first one's
            if self.objectives:
                refusal = _objectives.refuse_tuner(tuner)
                if refusal:
                    raise ValueError(refusal)
            self.store.set_meta(optimize_mode=self.optimize_mode)   # read by `nnictl view`
            self._tuner = SerialRunner(tuner, "tuner")
            self._assessor = SerialRunner(assessor, "assessor") if assessor is not None else None
            if self.objectives and hasattr(tuner, "set_objectives"):
                await self._tuner.call("set_objectives", [o.to_dict() for o in self.objectives])
            await self._tuner.call("update_search_space", config.search_space)
            await self._tell_trial_budget()
            self._service = create_training_service(ServiceContext.from_config(
                config, experiment_id=self.id, experiment_dir=self.dir, port=self.port))
            self._service.on_trial_start = self._on_trial_start
            self._service.on_trial_waiting = self._on_trial_waiting
            self._service.on_trial_end = self._on_trial_end
            await self._service.start()
            if self._resume:
                await self._restore()
        except Exception as exc:
            self._fail(str(exc))
            return
        self._set_status("RUNNING")
        if config.max_experiment_duration:
            self._duration_timer = asyncio.get_running_loop().call_later(
                config.max_experiment_duration, lambda: asyncio.ensure_future(self._on_duration_reached()))
        self._scheduler = asyncio.create_task(self._schedule_loop())
        self._wake.set()

    async def stop(self) -> None:
        """Cancel every active trial, record them USER_CANCELED and end the experiment."""
        if self.stopped.is_set():
            return
        if self.status not in ("ERROR", "DONE"):
            self._set_status("STOPPING")
        await self._cancel_active("USER_CANCELED", "experiment stopped")
        if self._service is not None:
            await self._service.stop()
        for runner in (self._tuner, self._assessor):
            if runner is not None:
                runner.shutdown()
        if self._duration_timer:
            self._duration_timer.cancel()
        if self._scheduler:
            self._scheduler.cancel()
        if self.status not in ("ERROR", "DONE"):
            self._set_status("STOPPED")
        self.end_time = self.end_time or time.time()
        self.store.set_meta(end_time=self.end_time)
        self.stopped.set()
        await self._notify()

    # -- resume ----------------------------------------------------------------------------
    def _elapsed_before(self) -> float:
        """Seconds the experiment ran before this resume (up to its end or its last event)."""
        meta = self.store.all_meta()
        started = meta.get("start_time")
        if started is None:
            return 0.0
        events = self.store.events(limit=1)
        last = max([meta.get("end_time") or 0.0] + [e["timestamp"] for e in events])
        return max(0.0, last - started)

    def _load_trials(self) -> tuple[dict[tuple[str, int | None], Any], list[TrialState]]:
        """Resume: every stored trial as a TrialState; returns the final results by (trial id,
        parameter id) and the trials that were active when the previous manager stopped.

        Lean on purpose (100,000 trials resume in seconds and well under 300 MB): rows are read
        as plain tuples from cursors, never as lists of dicts, and final results are kept in
        one flat dict by parameter set.
        """
        records: dict[str, list[dict[str, Any]]] = {}
        for trial_id, parameter_id, source, parameters, index in self.store.parameter_rows():
            records.setdefault(trial_id, []).append(
                ParameterRecord(parameter_id, source, json.loads(parameters), index).to_wire())
        # Only final results are read back: intermediate ones feed the assessor of a running
        # trial, and after a resume no trial of the old manager runs any more (a million
        # stored intermediate results would cost seconds and hundreds of MB for nothing).
        finals: dict[tuple[str, int | None], Any] = {
            (trial_id, parameter_id): json.loads(value) for trial_id, parameter_id, value in self.store.final_values()}
        trial_finals: dict[str, set[int | None]] = {}
        for trial_id, parameter_id in finals:
            trial_finals.setdefault(trial_id, set()).add(parameter_id)
        attempts = self.store.last_attempts()
        # No process of the old manager's trials reports to this one (active ones are ended
        # below), so restored trials share one token that is never given to anybody: a
        # re-run fences it and gets a token of its own, as any new attempt does.
        unused_token = secrets.token_urlsafe(24)
        interrupted: list[TrialState] = []
        for trial_id, sequence_id, status, trial_dir, message in self.store.trial_rows():
            if status == "FAILED":   # what the all-failed note quotes (rows come in sequence order)
                self._failures.last = failure_line(message)
            elif status in ("SUCCEEDED", "EARLY_STOPPED"):
                self._failures.armed = False    # it has worked before: later failures are not a broken setup
            trial = TrialState(trial_id, sequence_id, trial_dir, unused_token, records.get(trial_id, []),
                               status=status)
            trial.finals = trial_finals.pop(trial_id, set())
            trial.attempt = attempts.get(trial_id, 1)
            trial.tuner_closed = True    # this tuner instance did not run it: results reach it as imports
            self.trials[trial.trial_id] = trial
            if trial.status in ACTIVE_STATES:
                interrupted.append(trial)
        return finals, interrupted

    async def _restore(self) -> None:
        """Rebuild state from the store: trials, counters, best result, and the tuner's history.

        Trials that were running when the previous manager died are ended (their leftover
        processes killed) and recorded SYS_CANCELED; their parameters run again first. A
        trial that had already reported its final result keeps it and counts as SUCCEEDED.
        """
        assert self._service is not None and self._tuner is not None
        with _no_cyclic_gc():
            finals, interrupted = self._load_trials()
        await self._service.cleanup_interrupted([(t.trial_id, t.trial_dir) for t in interrupted])
        for trial in interrupted:
            complete = bool(trial.records) and all(r["parameter_id"] in trial.finals for r in trial.records)
            if complete and not self.config.multi_phase:
                status, message = "SUCCEEDED", "the manager stopped after this trial's final result"
            else:
                status = INTERRUPTED
                message = "interrupted: the experiment manager stopped while this trial ran"
                if not self.config.multi_phase and trial.records:
                    self._reruns.append(trial.records[0]["parameters"])
                    message += "; its parameters run again in a new trial"
            trial.status = status
            self.store.update_trial(trial.trial_id, status=status, end_time=time.time(), message=message)
            self.store.update_attempt(trial.trial_id, trial.attempt, status=status, end_time=time.time(),
                                      reason=message)
            for record in trial.records:
                if record["parameter_id"] not in trial.finals:
                    self.store.set_parameter_status(record["parameter_id"], status)
            self._record_event("TRIAL_" + status, message, trial.trial_id)
        with _no_cyclic_gc():
            data = []
            for trial in self.trials.values():
                for record in trial.records:
                    if record["parameter_id"] not in trial.finals:
                        continue
                    value = finals[trial.trial_id, record["parameter_id"]]
                    if self.objectives:
                        fed, _ = _objectives.check_final(value, self.objectives)
                        if fed is not None:
                            data.append({"parameter": record["parameters"], "value": fed})
                            self._update_best(trial.trial_id, fed[self.objectives[0].metric])
                    elif finite_metric(value):
                        data.append({"parameter": record["parameters"], "value": value})
                        self._update_best(trial.trial_id, value)
        data += self.store.imported()
        if data and hasattr(self._tuner.algorithm, "import_data"):
            # Queued, not awaited: the tuner thread runs calls in order, so every later
            # generate/receive call sees this history, while the REST API answers at once
            # (100,000 results take the tuner seconds). A failure sets ERROR as any tuner error.
            # multiThread runs some calls beside the queue: there the import is awaited.
            imported = self._tuner.call("import_data", data)
            if getattr(self.config, "multi_thread", False):
                await imported
            else:
                self._feed(imported)
        self._next_parameter_id = self.store.max_parameter_id() + 1
        self._next_sequence_id = max((t.sequence_id for t in self.trials.values()), default=-1) + 1
        self._counted_trials = sum(t.status != INTERRUPTED for t in self.trials.values())
        self._parameter_sets = sum(1 for t in self.trials.values() for r in t.records
                                   if t.status != INTERRUPTED or r["parameter_id"] in t.finals)
        _logger.info("resumed with %d trials (%d interrupted), %d results given to the tuner",
                     len(self.trials), len(interrupted), len(data))

    async def import_data(self, data: list[dict[str, Any]]) -> int:
        """Give the tuner prior results ({'parameter': ..., 'value': ...}); kept for resume too."""
        assert self._tuner is not None
        rows = [d for d in data if isinstance(d, dict) and "parameter" in d and "value" in d]
        if len(rows) != len(data):
            raise ValueError("each imported entry must be an object with 'parameter' and 'value'")
        await self._tuner.call("import_data", rows)
        self.store.add_imported(rows)   # appended: an import costs O(its own rows)
        self._record_event("DATA_IMPORTED", f"{len(rows)} results imported")
        await self._notify()
        return len(rows)

    # -- scheduling ------------------------------------------------------------------------
    def active_trials(self) -> list[TrialState]:
        return [t for t in self.trials.values() if t.status in ACTIVE_STATES]

    def _budget_left(self) -> float:
        """How many more trial jobs maxTrialNumber allows (multi-phase too, as in NNI)."""
        limit = self.config.max_trial_number
        if limit is None:
            return math.inf
        return limit - self._counted_trials

    def _limit_reached(self) -> bool:
        return self._budget_left() <= 0

    async def _schedule_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._fill_slots()
            except AlgorithmError as exc:
                self._fail(str(exc))
            except Exception as exc:  # a bug of ours must not leave the experiment silently RUNNING
                _logger.exception("scheduler failed")
                self._fail(f"manager error: {type(exc).__name__}: {exc}")
            self._update_completion()
            await self._notify()

    def _running_count(self) -> int:
        """Active trials that hold a slot (handed to the service; not attempts still queued here)."""
        return sum(1 for t in self.active_trials() if not t.queued)

    async def _start_pending(self) -> None:
        """Hand queued attempts (retries, re-runs) to the service first: they are already counted."""
        while self._pending and self.status in SCHEDULING_STATES + ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL"):
            if self._running_count() >= self.config.trial_concurrency:
                return
            trial = self._pending.pop(0)
            if trial.queued and trial.status == "WAITING":
                trial.queued = False
                await self._submit(trial)

    async def _fill_slots(self) -> None:
        await self._start_pending()
        while self.status == "RUNNING":
            if self._limit_reached() or self._tuner_exhausted:
                self._set_status("TUNER_NO_MORE_TRIAL" if self._tuner_exhausted else "NO_MORE_TRIAL")
                return
            free = min(self.config.trial_concurrency - self._running_count(), self._budget_left()) - self._asking
            if free <= 0:
                return
            if self._tuner_waiting and not self._reruns:
                return
            if self._reruns:
                parameter_id = self._next_parameter_id
                self._next_parameter_id += 1
                self._parameter_sets += 1
                await self._launch(parameter_id, self._reruns.pop(0), source=SOURCE_RESUMED)
                continue
            if getattr(self.config, "multi_thread", False) and not self.config.multi_phase:
                self._ask_per_slot(free)
                return
            # A multi-phase tuner is told which trial job a parameter set is for, so the
            # trial id exists before its first parameters do.
            trial_id = self._new_trial_id() if self.config.multi_phase else None
            batch = await self._generate(1 if trial_id else int(free), trial_id)
            if self.status != "RUNNING":  # stopped or failed while the tuner was thinking
                return
            for parameter_id, parameters in batch:
                await self._launch(parameter_id, parameters, trial_id)

    def _ask_per_slot(self, free: float) -> None:
        """multiThread: one concurrent tuner call per free slot, each launching its own trial.

        A slot whose call is still running counts as taken, so a blocking
        ``generate_parameters`` holds back only its own slot (NNI's multiThread).
        """
        for _ in range(int(free)):
            self._asking += 1
            asyncio.ensure_future(self._ask_one())

    async def _ask_one(self) -> None:
        try:
            batch = await self._generate(1, None, concurrent=True)
            if self.status == "RUNNING":
                for parameter_id, parameters in batch:
                    await self._launch(parameter_id, parameters)
        except AlgorithmError as exc:
            self._fail(str(exc))
        except asyncio.CancelledError:
            return
        finally:
            self._asking -= 1
        self._wake.set()

    async def _generate(self, count: int, trial_id: str | None,
                        concurrent: bool = False) -> list[tuple[int, dict[str, Any]]]:
        """Ask the tuner for ``count`` parameter sets; fewer back means it has no more."""
        assert self._tuner is not None
        ids = list(range(self._next_parameter_id, self._next_parameter_id + count))
        self._next_parameter_id += count
        self._parameter_sets += count   # reserved now: concurrent phase requests see the budget
        kwargs = {"trial_job_id": trial_id} if self.config.multi_phase else {}
        try:
            call = self._tuner.call_concurrent if concurrent else self._tuner.call
            batch = list(await call("generate_multiple_parameters", ids, **kwargs) or [])
        except NoMoreTrialError:
            batch = []
        self._parameter_sets -= count - len(batch)
        if len(batch) < count and not self._tuner_exhausted:
            if batch or self._asking > 1 or any(t.trial_id != trial_id for t in self.active_trials()):
                self._tuner_waiting = True
            else:
                self._tuner_exhausted = True
                self._record_event("TUNER_NO_MORE_TRIAL", "the tuner has no more parameters")
        return list(zip(ids, batch))

    def _new_trial_id(self) -> str:
        trial_id = new_id(5)
        while trial_id in self.trials:
            trial_id = new_id(5)
        return trial_id

    async def _launch(self, parameter_id: int, parameters: dict[str, Any], trial_id: str | None = None,
                      source: str = SOURCE_ALGORITHM) -> None:
        sequence_id = self._next_sequence_id
        self._next_sequence_id += 1
        self._counted_trials += 1
        trial_id = trial_id or self._new_trial_id()
        trial_dir = self.dir / "trials" / trial_id
        record = ParameterRecord(parameter_id, source, parameters, 0).to_wire()
        trial = TrialState(trial_id, sequence_id, str(trial_dir), secrets.token_urlsafe(24), [record])
        self.trials[trial_id] = trial
        self.store.add_trial(trial_id, sequence_id, str(trial_dir), parameter_id, parameters, source)
        self.store.add_attempt(trial_id, 1)
        self._record_event("TRIAL_SUBMITTED", f"parameter {parameter_id}", trial_id)
        await self._submit(trial)

    async def _submit(self, trial: TrialState) -> None:
        """Hand the trial's current attempt to the training service."""
        spec = TrialSpec(trial_id=trial.trial_id, sequence_id=trial.sequence_id, command=self.config.trial_command,
                         code_dir=self.config.trial_code_directory, trial_dir=trial.trial_dir,
                         env=self._trial_env(trial), gpu_number=self.config.trial_gpu_number or 0,
                         attempt=trial.attempt)
        assert self._service is not None
        try:
            await self._service.submit(spec)
        except Exception as exc:
            await self._finish_trial(trial, "FAILED", None, f"could not start the trial: {exc}")

    async def _on_trial_start(self, trial_id: str, machine: str | None = None) -> None:
        trial = self.trials.get(trial_id)
        if trial is None or trial.status != "WAITING" or trial.queued:
            return
        trial.status = "RUNNING"
        now = time.time()
        if trial.attempt == 1:
            self.store.update_trial(trial_id, status="RUNNING", start_time=now, message=None)
        else:   # the trial's start stays its first attempt's; the message says which attempt runs
            self.store.update_trial(trial_id, status="RUNNING", message=f"attempt {trial.attempt} running")
        trial.machine = machine
        self.store.update_attempt(trial_id, trial.attempt, status="RUNNING", start_time=now, machine=machine)
        limit = self.config.max_trial_duration
        if limit:
            trial.timer = asyncio.get_running_loop().call_later(
                limit, lambda: asyncio.ensure_future(
                    self.kill_trial(trial_id, "FAILED", f"exceeded maxTrialDuration ({limit:g} s)")))
        await self._notify()

    async def _on_trial_waiting(self, trial_id: str, reason: str) -> None:
        """A submitted trial cannot start yet: say why in its record instead of staying silent."""
        if trial_id in self.trials:
            self.store.update_trial(trial_id, message=reason)
            self._record_event("TRIAL_WAITING", reason, trial_id)
            await self._notify()

    def _trial_env(self, trial: TrialState) -> dict[str, str]:
        host = self.config.nni_manager_ip or "127.0.0.1"
        output_dir = trial.trial_dir
        return {
            "NNI_PLATFORM": self.config.training_service.platform,
            "NNI_EXP_ID": self.id,
            "NNI_TRIAL_JOB_ID": trial.trial_id,
            "NNI_SYS_DIR": trial.trial_dir,
            "NNI_OUTPUT_DIR": output_dir,
            "NNI_TRIAL_SEQ_ID": str(trial.sequence_id),
            "NNI_TRIAL_CHANNEL": f"http://{host}:{self.port}",
            "NNI_TRIAL_TOKEN": trial.token,
            # nni-ng: which run of this trial this is (1, 2, ...); a re-run keeps the id and directory.
            "NNI_TRIAL_ATTEMPT": str(trial.attempt),
            **({"NNI_TRIAL_LEASE_INTERVAL": f"{self.lease_timeout / LEASE_RENEWALS_PER_TIMEOUT:g}"}
               if self.config.training_service.platform in ("remote", "ray") else {}),
        }

    def _update_completion(self) -> None:
        if self.status in ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL") and not self.active_trials():
            self._set_status("DONE")
            self.end_time = time.time()
            self.store.set_meta(end_time=self.end_time)
            _logger.info("Experiment done.")   # NNI's line; CI scripts grep nnimanager.log for it

    # -- trial events ----------------------------------------------------------------------
    async def _on_trial_end(self, ended: TrialEnded) -> None:
        trial = self.trials.get(ended.trial_id)
        if trial is None or trial.status not in ACTIVE_STATES or trial.queued:
            return
        if ended.attempt is not None and ended.attempt != trial.attempt:
            return   # an earlier attempt's late end: that attempt was already accounted for
        if ended.machine:
            trial.machine = ended.machine
            self.store.update_attempt(trial.trial_id, trial.attempt, machine=ended.machine)
        lost = False
        if trial.kill_status == LOST:
            status, message, lost = "FAILED", trial.kill_message, True
        elif trial.kill_status:
            status, message = trial.kill_status, trial.kill_message
        elif ended.exit_code == 0:
            status, message = "SUCCEEDED", ""
        else:
            status, message, lost = "FAILED", ended.message, ended.lost
        # Not with multiPhase: a new attempt would ask for phase 0 again and could report a
        # second final result for a phase that has one. Not once the experiment has failed.
        retryable = not self.config.multi_phase and self.status in SCHEDULING_STATES + (
            "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL")
        if retryable and status == "FAILED" and (
                lost or (self.config.retry_failed_trials and not trial.kill_status)):
            complete = bool(trial.records) and all(r["parameter_id"] in trial.finals for r in trial.records)
            if lost and complete:
                # Its result is in; only the exit was lost. Nothing to run again.
                status, message = "SUCCEEDED", f"{message} (after its final result)"
            elif trial.attempt <= self.max_trial_retries:
                await self._retry(trial, "LOST" if lost else "FAILED", message)
                return
            elif self.max_trial_retries:
                message = f"{message} (attempt {trial.attempt}, no retries left: maxTrialRetries is " \
                          f"{self.max_trial_retries})"
        await self._finish_trial(trial, status, ended.exit_code, message)

    async def _retry(self, trial: TrialState, attempt_status: str, reason: str) -> None:
        """Close the current attempt (lost, or failed with retryFailedTrials) and queue the next."""
        self._end_attempt(trial, attempt_status, reason)
        self._record_event(f"TRIAL_ATTEMPT_{attempt_status}", f"attempt {trial.attempt}: {reason}", trial.trial_id)
        _logger.info("trial %s attempt %d %s (%s); running it again", trial.trial_id, trial.attempt,
                     attempt_status.lower(), reason)
        word = "lost" if attempt_status == "LOST" else "failed"
        await self._queue_attempt(trial, f"attempt {trial.attempt} {word}: {reason}")

    def _end_attempt(self, trial: TrialState, status: str, reason: str) -> None:
        if trial.timer:
            trial.timer.cancel()
            trial.timer = None
        if trial.lease_timer:
            trial.lease_timer.cancel()
            trial.lease_timer = None
        trial.lease_deadline = None
        self.store.update_attempt(trial.trial_id, trial.attempt, status=status, end_time=time.time(),
                                  reason=reason or None)

    def _fence(self, trial: TrialState) -> None:
        """Retire the current token: whatever still holds it gets 409 from now on."""
        trial.old_tokens = trial.old_tokens | {trial.token}
        trial.token = secrets.token_urlsafe(24)

    async def _queue_attempt(self, trial: TrialState, why: str) -> None:
        """Make the next attempt of ``trial``: new token, same parameters and directory, queued for a slot."""
        self._fence(trial)
        trial.attempt += 1
        trial.status, trial.queued, trial.machine = "WAITING", True, None
        trial.kill_status, trial.kill_message = None, ""
        trial.history = {}
        # The new attempt numbers its metrics from 0 again; stored after the earlier ones.
        trial.sequence_offset = self.store.max_sequence(trial.trial_id) + 1
        message = f"waiting to run attempt {trial.attempt}; {why}"
        self.store.add_attempt(trial.trial_id, trial.attempt, cause=why)
        self.store.update_trial(trial.trial_id, status="WAITING", end_time=None, exit_code=None, message=message)
        for record in trial.records:
            if record["parameter_id"] not in trial.finals:
                self.store.set_parameter_status(record["parameter_id"], "RUNNING")
        self._record_event("TRIAL_ATTEMPT_QUEUED", message, trial.trial_id)
        self._pending.append(trial)
        self._wake.set()
        await self._notify()

    async def _finish_trial(self, trial: TrialState, status: str, exit_code: int | None, message: str) -> None:
        if trial in self._pending:
            self._pending.remove(trial)
        trial.queued = False
        self._end_attempt(trial, status, message)
        trial.status = status
        message = "; ".join(m for m in (message, trial.result_note) if m)
        self.store.update_trial(trial.trial_id, status=status, end_time=time.time(), exit_code=exit_code,
                                message=message or None)
        self._record_event("TRIAL_" + status, message, trial.trial_id)
        if self._failures.trial_ended(status, message, produced_result=bool(trial.finals)):
            self._fail(self._failures.stop_message())
        success = status == "SUCCEEDED"
        for record in trial.records:
            # Phases that never got a final result end with the trial (a crash mid-phase
            # fails only the open phase; finished ones keep SUCCEEDED).
            if record["parameter_id"] not in trial.finals:
                self.store.set_parameter_status(record["parameter_id"], status)
        closed, trial.tuner_closed = trial.tuner_closed, True
        if closed:
            pass   # a re-run: the tuner and assessor were told of this trial's end already
        elif self._tuner is not None:
            if isinstance(self._tuner.algorithm, MultiPhaseTuner):
                self._feed(self._tuner.call("trial_end", trial.trial_id, success))
            else:
                for record in trial.records:
                    self._feed(self._tuner.call("trial_end", record["parameter_id"], success,
                                                **self._phase_kwargs(trial)))
        if self._assessor is not None and not closed:
            self._feed(self._assessor.call("trial_end", trial.trial_id, success))
        self._tuner_waiting = False
        self._wake.set()
        await self._notify()

    def has_builtin_tuner(self) -> bool:
        """Whether the tuner is one of nni-ng's (they take NNI's search-space format and scalar results)."""
        return self._tuner is not None and type(self._tuner.algorithm).__module__.startswith("nni.algorithms.")

    def _phase_kwargs(self, trial: TrialState) -> dict[str, Any]:
        return {"trial_job_id": trial.trial_id} if self.config.multi_phase else {}

    def _feed(self, future: asyncio.Future) -> None:
        """Let a tuner/assessor call run; if it raises, the experiment goes to ERROR."""
        def done(f: asyncio.Future) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if isinstance(exc, AlgorithmError):
                self._fail(str(exc))
        future.add_done_callback(done)

    async def kill_trial(self, trial_id: str, status: str = "USER_CANCELED", message: str = "") -> bool:
        """End a trial's processes and record it with ``status``; False if it was not active."""
        trial = self.trials.get(trial_id)
        if trial is None or trial.status not in ACTIVE_STATES:
            return False
        if trial.queued:   # an attempt not handed to the service yet: nothing runs to be killed
            await self._finish_trial(trial, status, None, message or "canceled before it started")
            return True
        if trial.kill_status == LOST and status != LOST:
            trial.kill_status, trial.kill_message = None, ""   # the user's (or a limit's) kill wins
        trial.kill_status = trial.kill_status or status
        trial.kill_message = trial.kill_message or message or {
            "USER_CANCELED": "canceled by the user", "EARLY_STOPPED": "stopped early by the assessor"}.get(status, "")
        assert self._service is not None
        await self._service.kill(trial_id)
        return True

    async def _cancel_active(self, status: str, message: str) -> None:
        await asyncio.gather(*(self.kill_trial(t.trial_id, status, message) for t in self.active_trials()))
        # Trials whose end the training service has not reported yet are recorded now.
        for trial in self.active_trials():
            await self._finish_trial(trial, status, None, message)

    async def _on_duration_reached(self) -> None:
        if self.status not in SCHEDULING_STATES + ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL"):
            return
        limit = self.config.max_experiment_duration
        self._record_event("MAX_DURATION", f"maxExperimentDuration ({limit:g} s) reached")
        self._set_status("NO_MORE_TRIAL")
        await self._cancel_active("USER_CANCELED", f"maxExperimentDuration ({limit:g} s) reached")
        self._update_completion()
        await self._notify()

    # -- the trial channel -----------------------------------------------------------------
    def authenticate(self, trial_id: str, token: str) -> TrialState | None:
        trial = self.trials.get(trial_id)
        if trial is None or not secrets.compare_digest(trial.token, token):
            return None
        return trial

    def fenced(self, trial_id: str, token: str) -> bool:
        """Whether ``token`` belonged to an earlier attempt of the trial (its reports are refused)."""
        trial = self.trials.get(trial_id)
        return trial is not None and any(secrets.compare_digest(old, token) for old in trial.old_tokens)

    # -- leases (remote and Ray trials) ----------------------------------------------------------
    def renew_lease(self, trial: TrialState, machine: str | None = None) -> float:
        """The current attempt is alive: extend its lease; returns the lease timeout in seconds.

        The first renewal takes the lease; from then on, ``trialLeaseTimeout`` seconds without
        a renewal declare the attempt lost (see :meth:`_check_lease`).
        """
        if trial.status != "RUNNING":
            return self.lease_timeout
        loop = asyncio.get_running_loop()
        trial.lease_deadline = loop.time() + self.lease_timeout
        if machine and machine != trial.machine:
            trial.machine = machine
            self.store.update_attempt(trial.trial_id, trial.attempt, machine=machine)
        if trial.lease_timer is None:
            trial.lease_timer = loop.call_at(trial.lease_deadline, self._check_lease, trial)
        return self.lease_timeout

    def _check_lease(self, trial: TrialState) -> None:
        # One timer per trial, moved forward lazily: a renewal only pushes the deadline.
        trial.lease_timer = None
        if trial.status != "RUNNING" or trial.lease_deadline is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < trial.lease_deadline:
            trial.lease_timer = loop.call_at(trial.lease_deadline, self._check_lease, trial)
            return
        asyncio.ensure_future(self._lease_lapsed(trial))

    async def _lease_lapsed(self, trial: TrialState) -> None:
        where = f" on {trial.machine}" if trial.machine else ""
        reason = f"its lease lapsed: no renewal for {self.lease_timeout:g} s (attempt {trial.attempt}{where})"
        trial.lease_deadline = None
        self._fence(trial)   # at once: a late report of this attempt is refused even before it is killed
        self._record_event("TRIAL_LEASE_LAPSED", reason, trial.trial_id)
        _logger.warning("trial %s: %s", trial.trial_id, reason)
        await self.kill_trial(trial.trial_id, LOST, reason)

    # -- re-runs --------------------------------------------------------------------------------
    async def rerun_trials(self, trial_ids: list[str] | None = None, status: str | None = None,
                           extend_budget: bool = True) -> dict[str, Any]:
        """Run chosen ended trials again, as new attempts of the same trials (same ids and parameters).

        ``trial_ids`` or ``status`` (one of :data:`RERUNNABLE_STATES`) choose them. Trials that
        cannot run again (still active, succeeded, with a final result) are listed in
        ``skipped`` with the reason. ``extend_budget`` False: each re-run uses one trial of what
        ``maxTrialNumber`` has left (refused when not enough is left); True: they come on top.
        A DONE experiment starts scheduling again. Results reach the tuner.
        """
        if self.status in ("ERROR", "STOPPING", "STOPPED", "INITIALIZED"):
            raise RerunError(f"cannot re-run trials: the experiment is {self.status}", 409)
        if self.config.multi_phase:
            raise RerunError("re-running trials is not supported with multiPhase: true", 409)
        if (trial_ids is None) == (status is None):
            raise RerunError("give either trialJobIds or status")
        if status is not None:
            if status not in RERUNNABLE_STATES:
                raise RerunError(f"status: trials in {', '.join(RERUNNABLE_STATES)} can be re-run, got {status!r}")
            candidates = [t for t in self.trials.values() if t.status == status]
        else:
            unknown = [t for t in trial_ids or [] if t not in self.trials]
            if unknown:
                raise RerunError(f"trialJobIds: no trial {', '.join(map(repr, unknown))} in this experiment", 404)
            candidates = [self.trials[t] for t in dict.fromkeys(trial_ids or [])]
        chosen, skipped = [], []
        for trial in candidates:
            if trial.status not in RERUNNABLE_STATES:
                skipped.append({"trialJobId": trial.trial_id, "reason": f"it is {trial.status}"})
            elif trial.finals:
                skipped.append({"trialJobId": trial.trial_id, "reason": "it has a final result"})
            elif not trial.records:
                skipped.append({"trialJobId": trial.trial_id, "reason": "it has no parameters"})
            else:
                chosen.append(trial)
        if chosen and not extend_budget:
            left = self._budget_left()
            if left < len(chosen):
                raise RerunError(f"extendBudget is false but maxTrialNumber leaves {left:g} trial(s) for "
                                 f"{len(chosen)} re-run(s); raise maxTrialNumber or extend the budget", 409)
            self._counted_trials += len(chosen)
        for trial in chosen:
            await self._queue_attempt(trial, f"re-run requested by the user (it was {trial.status})")
        if chosen:
            self._record_event("TRIALS_RERUN", f"{len(chosen)} trial(s) run again: "
                               f"{', '.join(t.trial_id for t in chosen)}")
            if self.status in ("DONE", "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL"):
                # Scheduling resumes; the status goes back to what the budget and tuner say.
                self._set_status("RUNNING")
                self.end_time = None
                self.store.set_meta(end_time=None)
            self._wake.set()
            await self._notify()
        return {"rerun": [t.trial_id for t in chosen], "skipped": skipped}

    async def next_parameter(self, trial: TrialState, index: int) -> dict[str, Any] | None:
        """Parameter record ``index`` of a trial; None when a multi-phase trial gets no more.

        Asking again for an index already given returns the same record, so a retried
        request cannot consume a second parameter set. In single-phase mode a trial has
        one record and every later index gets it again (NNI's behaviour).
        """
        if index < len(trial.records):
            return trial.records[index]
        if not self.config.multi_phase:
            return trial.records[-1] if trial.records else None
        if index > len(trial.records):
            raise ValueError(f"trial {trial.trial_id} asked for phase {index} before phase {len(trial.records)}")
        # A running job may take more parameter sets after maxTrialNumber jobs were started
        # (NNI counts jobs); it gets None once the tuner has no more or the experiment ended.
        if self.status not in ("RUNNING", "NO_MORE_TRIAL") or trial.status != "RUNNING" or self._tuner_exhausted:
            return None
        batch = await self._generate(1, trial.trial_id)
        if not batch or trial.status != "RUNNING":
            return None
        parameter_id, parameters = batch[0]
        record = ParameterRecord(parameter_id, SOURCE_ALGORITHM, parameters, index).to_wire()
        trial.records.append(record)
        self.store.add_parameter(trial.trial_id, parameter_id, index, parameters)
        self._record_event("PARAMETER_GIVEN", f"parameter {parameter_id} (phase {index})", trial.trial_id)
        await self._notify()
        return record

    async def report_metric(self, trial: TrialState, parameter_id: int | None, metric_type: str,
                            sequence: int, value: str) -> None:
        """Store a metric the trial sent, then give it to the tuner (final) or assessor (intermediate)."""
        known = {r["parameter_id"] for r in trial.records}
        if parameter_id not in known:
            raise ValueError(f"parameter id {parameter_id} was not given to trial {trial.trial_id}")
        if metric_type not in ("FINAL", "PERIODICAL"):
            raise ValueError(f"metric type must be FINAL or PERIODICAL, got {metric_type!r}")
        parsed = json.loads(value)
        sequence += trial.sequence_offset
        if metric_type == "FINAL" and parameter_id in trial.finals:
            # One final result per parameter set. The same one again is a retried request
            # (already stored and acted upon); a different one is refused, not stored.
            stored = self.store.final_metric(trial.trial_id, parameter_id)
            if stored is not None and stored["sequence"] == sequence and stored["value"] == value:
                return
            raise DuplicateFinal(f"parameter set {parameter_id} of trial {trial.trial_id} already has its "
                                 "final result; only the first report_final_result() counts")
        # Group commit: this metric shares a transaction with the others that arrived in the
        # same loop turn, and the request is answered only after that transaction committed.
        inserted = await self.store.group_commit(
            lambda db: insert_metric(db, trial.trial_id, parameter_id, metric_type, sequence, value))
        if not inserted:
            if metric_type == "FINAL":
                # Two different finals raced into the same group: only the stored one counts.
                stored = self.store.final_metric(trial.trial_id, parameter_id)
                if stored is not None and (stored["sequence"], stored["value"]) != (sequence, value):
                    raise DuplicateFinal(f"parameter set {parameter_id} of trial {trial.trial_id} already has "
                                         "its final result; only the first report_final_result() counts")
            return  # a retried request: already stored and acted upon
        if metric_type == "FINAL":
            trial.finals.add(parameter_id)
            if self.objectives:
                # the tuner gets the dict only when it holds every objective as a finite number
                parsed, note = _objectives.check_final(parsed, self.objectives)
                if note:
                    trial.result_note = note
                    self.store.update_trial(trial.trial_id, message=note)
                    self._record_event("RESULT_NOT_USED", note, trial.trial_id)
                else:
                    self._update_best(trial.trial_id, parsed[self.objectives[0].metric])
            else:
                self._update_best(trial.trial_id, parsed)
            record = next(r for r in trial.records if r["parameter_id"] == parameter_id)
            # (its parameter set was marked SUCCEEDED in the same transaction: insert_metric)
            # Built-in tuners get finite scalars only (multi-objective: a dict with every objective);
            # a custom tuner gets any JSON value, as in NNI.
            if self.objectives:
                usable = parsed is not None
            else:
                usable = finite_metric(parsed) or not self.has_builtin_tuner()
            if self._tuner is not None and usable:
                if record["parameter_source"] == SOURCE_RESUMED or trial.tuner_closed:
                    # This tuner instance never generated these parameters (they are re-run
                    # after a resume), or it was told the trial ended (a user re-run), so the
                    # result reaches it as imported data.
                    self._feed(self._tuner.call("import_data", [{"parameter": record["parameters"],
                                                                 "value": parsed}]))
                else:
                    self._feed(self._tuner.call("receive_trial_result", parameter_id, record["parameters"],
                                                parsed, **self._phase_kwargs(trial)))
                if self._tuner_waiting:
                    self._tuner_waiting = False
                    self._wake.set()
        else:
            history = trial.history.setdefault(parameter_id, [])
            history.append(parsed)
            if self._assessor is not None and trial.status == "RUNNING":
                # multi-objective: the assessor sees the first objective
                seen = _objectives.assessor_view(history, self.objectives) if self.objectives else list(history)
                asyncio.ensure_future(self._assess(trial, parameter_id, seen))
        await self._notify()

    async def _assess(self, trial: TrialState, parameter_id: int | None, history: list[Any]) -> None:
        assert self._assessor is not None
        try:
            verdict = await self._assessor.call("assess_trial", trial.trial_id, history)
        except AlgorithmError as exc:
            self._fail(str(exc))
            return
        if getattr(verdict, "value", verdict) is False and trial.status == "RUNNING":
            last = history[-1]
            if self.objectives:   # the tuner learns from the whole last result, if it fits
                raw = trial.history.get(parameter_id, [])
                last, _ = _objectives.check_final(raw[len(history) - 1] if len(raw) >= len(history) else None,
                                                  self.objectives)
            if parameter_id not in trial.finals and self._tuner is not None and last is not None \
                    and (self.objectives or finite_metric(last)):
                # As NNI does: the tuner learns from the last intermediate result of a stopped trial.
                record = next(r for r in trial.records if r["parameter_id"] == parameter_id)
                self._feed(self._tuner.call("receive_trial_result", parameter_id, record["parameters"], last,
                                            **self._phase_kwargs(trial)))
            await self.kill_trial(trial.trial_id, "EARLY_STOPPED")

    async def _tell_trial_budget(self) -> None:
        """Tell a tuner that sizes itself by the budget (built-in TPE) about maxTrialNumber."""
        if self._tuner is not None and hasattr(self._tuner.algorithm, "set_trial_budget"):
            await self._tuner.call("set_trial_budget", self.config.max_trial_number)

    # -- user updates ----------------------------------------------------------------------
    async def update(self, *, trial_concurrency: int | None = None, max_trial_number: int | None = None,
                     max_experiment_duration: float | None = None, search_space: dict | None = None) -> None:
        """Change limits or the search space while the experiment runs or after it is DONE.

        Raising ``max_trial_number`` or ``max_experiment_duration`` past what is used
        continues an experiment that stopped on that limit (``NO_MORE_TRIAL`` or ``DONE``),
        as NNI does. A ``max_trial_number`` below the trials already done is refused
        (ValueError, answered 400): it cannot be honoured and would end the run silently.
        """
        if max_trial_number is not None:
            done = self.progress()["limitDone"]
            if max_trial_number < done:
                unit = "parameter sets" if self.config.multi_phase else "trials"
                raise ValueError(f"maxTrialNumber: {done} {unit} are already done; "
                                 f"the limit cannot be lowered below {done} (got {max_trial_number})")
        if trial_concurrency is not None:
            self.config.trial_concurrency = trial_concurrency
        if max_trial_number is not None:
            self.config.max_trial_number = max_trial_number
            await self._tell_trial_budget()
        if max_experiment_duration is not None:
            self.config.max_experiment_duration = max_experiment_duration
        if max_trial_number is not None or max_experiment_duration is not None:
            continued = self._continue_if_limits_allow()
            if (max_experiment_duration is not None or continued) and self.config.max_experiment_duration:
                # The start time may have moved (continued): the timer follows the limit.
                if self._duration_timer:
                    self._duration_timer.cancel()
                remaining = max(0.0, self.start_time + self.config.max_experiment_duration - time.time())
                self._duration_timer = asyncio.get_running_loop().call_later(
                    remaining, lambda: asyncio.ensure_future(self._on_duration_reached()))
        if search_space is not None:
            assert self._tuner is not None
            await self._tuner.call("update_search_space", search_space)
            self.config.search_space = search_space
            self._tuner_exhausted = self._tuner_waiting = False
            if self.status == "TUNER_NO_MORE_TRIAL":
                self._set_status("RUNNING")
        self.store.set_meta(config=self.config.to_dict())
        self._record_event("EXPERIMENT_UPDATED", "")
        self._wake.set()
        await self._notify()

    def _continue_if_limits_allow(self) -> bool:
        """Back to RUNNING when the limits that ended scheduling were raised past what is used.

        A DONE experiment continues too. The time it sat DONE does not count against
        ``maxExperimentDuration`` (as for ``nnictl resume``): the start time moves forward by it.
        """
        if self.status not in ("NO_MORE_TRIAL", "DONE") or self._tuner_exhausted:
            return False
        if self._limit_reached():
            return False
        limit = self.config.max_experiment_duration
        now = time.time()
        idle = (now - self.end_time) if self.status == "DONE" and self.end_time else 0.0
        if limit and (self.start_time + idle + limit) <= now:
            return False
        if self.status == "DONE":
            self.start_time += idle
            self.end_time = None
            self.store.set_meta(start_time=self.start_time, end_time=None)
            self._record_event("EXPERIMENT_CONTINUED", "a raised limit continues the experiment")
        self._set_status("RUNNING")
        return True

    # -- status and progress ---------------------------------------------------------------
    def _set_status(self, status: str) -> None:
        if status == self.status:
            return
        self.status = status
        self.store.set_meta(status=status, errors=self.errors, warnings=self.warnings())
        self._record_event("STATUS", status)
        self.version += 1

    def _fail(self, message: str) -> None:
        if self.status == "ERROR":
            return
        _logger.error("experiment failed: %s", message)
        self.errors.append(message)
        self._set_status("ERROR")
        self.end_time = time.time()
        self.store.set_meta(end_time=self.end_time)
        asyncio.ensure_future(self._notify())

    def _record_event(self, kind: str, message: str = "", trial_id: str | None = None) -> None:
        self.store.add_event(kind, message, trial_id)

    def _update_best(self, trial_id: str, value: Any) -> None:
        if not finite_metric(value):
            return
        reward = extract_scalar_reward(value)
        better = self.best is None or (reward > self.best[0] if self.optimize_mode == "maximize"
                                       else reward < self.best[0])
        if better:
            self.best = (reward, trial_id, value)

    async def _notify(self) -> None:
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def wait_for_change(self, since: int, timeout: float, *, until_ended: bool = False) -> None:
        """Return as soon as ``version`` passes ``since`` (or, ``until_ended``, once the
        experiment has ended), or after ``timeout`` seconds."""
        if until_ended:
            predicate = lambda: self.status in ENDED_STATES  # noqa: E731
        else:
            predicate = lambda: self.version > since  # noqa: E731
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except asyncio.TimeoutError:
                pass

    def warnings(self) -> list[str]:
        """Plain-language notes on an outcome that is not an error but that no one should miss.

        Today one: every trial that ended on its own failed (``all 4 trials failed; last:
        exit code 127: /bin/sh: 1: nosuchcommand_xyz: not found``), which would otherwise
        hide behind a ``DONE``. Shown by check-status, ``/progress``, ``nnictl experiment
        status`` and the last line of ``Experiment.run()``; kept in the store for stopped ones.
        """
        if self._failures.stopped_experiment:
            return []    # the error already says it
        note = self._failures.all_failed_note(self.trials.values(), so_far=self.status not in ENDED_STATES)
        return [note] if note else []

    def progress(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for trial in self.trials.values():
            counts[trial.status] = counts.get(trial.status, 0) + 1
        finished = sum(counts.get(s, 0) for s in FINISHED_TRIAL_STATES)
        end = self.end_time if self.status in ENDED_STATES else None
        return {
            "version": self.version,
            "status": self.status,
            "errors": self.errors,
            "warnings": self.warnings(),
            "limitUnit": "trials",   # maxTrialNumber counts trial jobs, multi-phase too (NNI)
            "limitDone": finished,
            "trialsDone": finished,
            "trialsSubmitted": len(self.trials),
            "maxTrialNumber": self.config.max_trial_number,
            "counts": counts,
            "optimizeMode": self.optimize_mode,
            "bestMetric": self.best[0] if self.best else None,
            "bestTrialId": self.best[1] if self.best else None,
            "elapsed": (end or time.time()) - self.start_time,
            "maxExperimentDuration": self.config.max_experiment_duration,
        }


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Bulk loading (a resume builds ~10 objects per stored trial): the cyclic collector would
    walk the growing heap again and again for garbage that cannot exist yet (a third of the
    time of a 100,000-trial resume). Reference counting still frees everything as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def failure_line(message: str | None) -> str:
    """A failed trial's message on one line: ``exit code 127: <last line of its stderr>``."""
    message = (message or "").strip()
    head, _, tail = message.partition("; stderr tail:\n")
    head = head.replace("; stderr was empty", " (stderr was empty)").strip() or "failed"
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    text = f"{head}: {lines[-1]}" if lines else head
    return text if len(text) <= 300 else text[:297] + "..."


class _FailureWatch:
    """Notices an experiment whose trials all fail: usually a wrong trialCommand or path.

    ``maxFailedTrialsAtStart`` (default 5, 0 turns it off): when that many trials have failed
    before any trial succeeded (or reported a final result, or was stopped early by the
    assessor, which needs a result), the experiment ends in ERROR instead of spending its
    whole budget on the same failure. On a resume the count starts again, unless a trial
    has succeeded before.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = DEFAULT_MAX_FAILED_TRIALS_AT_START if limit is None else limit
        self.failed = 0
        self.armed = True          # until a trial succeeds
        self.last = ""
        self.stopped_experiment = False

    def trial_ended(self, status: str, message: str, produced_result: bool) -> bool:
        """Record a trial's end; True when the experiment should stop for its failures."""
        if status == "FAILED":
            self.last = failure_line(message)
        if produced_result or status in ("SUCCEEDED", "EARLY_STOPPED"):
            self.armed = False
        elif status == "FAILED" and self.armed:
            self.failed += 1
            if self.limit and self.failed >= self.limit and not self.stopped_experiment:
                self.stopped_experiment = True
                return True
        return False

    def stop_message(self) -> str:
        return (f"the first {self.failed} trials all failed, so no more are started "
                f"(maxFailedTrialsAtStart: {self.limit}; 0 turns this off); last: {self.last}")

    def all_failed_note(self, trials: Iterable[TrialState], so_far: bool = False) -> str | None:
        """``all N trials failed; last: ...`` when every trial that ended by itself failed."""
        trials = list(trials)
        ended = [t for t in trials if t.status in ("SUCCEEDED", "FAILED", "EARLY_STOPPED")]
        if not ended or any(t.status != "FAILED" for t in ended):
            return None
        canceled = sum(t.status in ("USER_CANCELED", "SYS_CANCELED") for t in trials)
        what = f"finished trials{' so far' if so_far else ''} failed ({canceled} canceled)" if canceled \
            else f"trials{' so far' if so_far else ''} failed"
        return f"all {len(ended)} {what}; last: {self.last or 'see the trials stderr'}"


def finite_metric(value: Any) -> bool:
    """The NaN/inf rule (docs/rest_api.md): only metrics whose scalar is a finite float reach the
    tuner and the best result; NaN, +-inf and integers beyond a float (10**400) are only stored."""
    try:
        return math.isfinite(float(extract_scalar_reward(value)))
    except (RuntimeError, TypeError, ValueError, OverflowError):
        return False


def _create_algorithm(kind: str, algo: Any) -> Any:
    from ..algorithms.registry import create_algorithm
    return create_algorithm(kind, name=getattr(algo, "name", None), class_name=getattr(algo, "class_name", None),
                            code_directory=getattr(algo, "code_directory", None),
                            class_args=dict(getattr(algo, "class_args", None) or {}))

