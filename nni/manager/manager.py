"""The experiment manager: lifecycle, scheduling, trial events, updates, status and progress.

Everything runs on one asyncio loop and reacts to events (a trial exited, a metric
arrived, the user changed a limit); nothing polls. Each state change is written to the
store before anyone is told about it.

The manager composes private parts, each with one job:

* ``_trials.TrialBook``: the trial table, ids, counters, budget, best result, failure watch;
* ``_algorithms.Algorithms``: the tuner and assessor on their threads, every call's shape;
* ``_channel.TrialRequests``: what trials ask (tokens, leases, parameters, metrics, assessing);
* ``_resume``: the state a resumed experiment continues from, read from the store;
* ``_tasks.BackgroundTasks``: every task and timer, held, logged, ended on stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable

from ..errors import NniError
from ..records import SOURCE_ALGORITHM, SOURCE_RESUMED, ParameterRecord
from ..status import EXPERIMENT_ENDED, TRIAL_ACTIVE, TRIAL_ENDED, ExperimentStatus, TrialStatus
from ..training_service import (InterruptedTrial, ServiceContext, TrainingService, TrialEnded, TrialSpec,
                                create_training_service)
from ..training_service.base import trial_channel_url
from . import _objectives, _resume, _warm_start
from ._algorithms import Algorithms
from ._channel import LOST, DuplicateFinal, TrialRequests, first_parameter_env
from ._tasks import BackgroundTasks
from ._trials import STOPPED_WITH_EXPERIMENT, TrialBook, TrialState, finite_metric, new_token
from .serial_runner import AlgorithmError
from .experiment_dir import ExperimentDir

if TYPE_CHECKING:
    from ..experiment.config import ExperimentConfig

# DuplicateFinal and finite_metric are answered / applied by the REST routes too.
__all__ = ["ExperimentManager", "RerunError", "DuplicateFinal", "finite_metric"]

_logger = logging.getLogger("nni.manager")

ACTIVE_STATES = TRIAL_ACTIVE
FINISHED_TRIAL_STATES = TRIAL_ENDED
# States in which the manager still starts trials / has finished for good.
SCHEDULING_STATES = (ExperimentStatus.RUNNING.value,)
ENDED_STATES = EXPERIMENT_ENDED
# Where queued attempts (retries, re-runs) may still start: they are counted already.
_ATTEMPT_STATES = SCHEDULING_STATES + ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL")
# Defaults of maxTrialRetries and trialLeaseTimeout (seconds). A lease is renewed every quarter
# of its timeout, so a few lost renewals (a busy machine) do not declare a trial lost.
DEFAULT_MAX_TRIAL_RETRIES = 2
DEFAULT_LEASE_TIMEOUT = 60.0
LEASE_RENEWALS_PER_TIMEOUT = 4
# Trials a user may run again (``rerun_trials``): ended without a result and not by the assessor.
RERUNNABLE_STATES = ("FAILED", "USER_CANCELED")


class RerunError(NniError, ValueError):
    """A re-run request that cannot be honoured; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ExperimentManager:
    """One experiment: its tuner, assessor, training service, store and limits.

    ``tuner`` / ``assessor``: algorithm objects to use instead of the configured ones
    (``Experiment(tuner, 'local')``); ``training_service``: a service to use instead of the
    one the config names (embedding, tests).
    """

    def __init__(self, config: ExperimentConfig, experiment_id: str, experiment_dir: Path, *,
                 tuner: Any = None, assessor: Any = None, port: int = 8080, resume: bool = False,
                 training_service: TrainingService | None = None) -> None:
        self.config = config            # canonical ExperimentConfig
        self.id = experiment_id
        self.dir = Path(experiment_dir)
        self.port = port
        self.store = ExperimentDir(self.dir).open_store()
        self.status = "INITIALIZED"
        self.errors: list[str] = []
        self.start_time = time.time()
        self.end_time: float | None = None
        self._tuner_obj = tuner
        self._assessor_obj = assessor
        self._algorithms: Algorithms | None = None
        self._service: TrainingService | None = None
        self._service_obj = training_service
        self._resume = resume
        self._reruns: list[dict[str, Any]] = []   # parameters of interrupted trials, run again first
        self.tuner_exhausted = False
        self._asking = 0                  # multiThread: tuner calls in flight, one per slot
        # The tuner gave fewer parameter sets than asked while trials were running: it may be
        # waiting for their results (Hyperband rungs, PBT generations), so it is asked again
        # after the next result or trial end, and is exhausted only if it gives nothing while
        # no trial runs (NNI's TUNER_NO_MORE_TRIAL semantics).
        self._tuner_waiting = False
        # Results and trial ends the tuner was told of: a "no more" given while one of them was
        # on its way to the tuner was an answer to older news, so the tuner is asked again.
        self._tuner_news = 0
        self._duration_timer: Any = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        # Set while the status is an ended one: who waits for the end (Experiment.wait()) is
        # woken by that alone, not by each of the two changes every trial makes.
        self._ended = asyncio.Event()
        # The change counter starts at the start time in microseconds, so a resumed manager's
        # versions are above its predecessor's: a client still holding an old version (a web
        # page, `nnictl experiment watch`) gets an answer at once instead of a held request.
        self.version = time.time_ns() // 1000
        self.stopped = asyncio.Event()
        self._stopping = False   # a stop is under way: a second one waits for it
        # Tasks and timers (scheduler, limits, leases, assessments): a failure of one is logged
        # with its traceback; the ones that talk to the algorithms handle AlgorithmError themselves.
        self._tasks = BackgroundTasks()
        self.book = TrialBook(config.max_failed_trials_at_start)
        self._warned_no_final = False   # the log says once that a trial ended without a final result
        self._pending: list[TrialState] = []   # attempts waiting for a slot (retries, user re-runs)
        retries = config.max_trial_retries
        self.max_trial_retries = DEFAULT_MAX_TRIAL_RETRIES if retries is None else retries
        self.lease_timeout = float(config.trial_lease_timeout or DEFAULT_LEASE_TIMEOUT)
        # multi-objective experiments (config `objectives`); None for every other experiment
        self.objectives = _objectives.experiment_objectives(config)
        self.constraints = _objectives.experiment_constraints(config)   # config `constraints`; None: none
        self.channel = TrialRequests(self, self.book, self.store, self._tasks, lease_timeout=self.lease_timeout,
                                    objectives=self.objectives, constraints=self.constraints)

    # The trial table and best result live in the book; read by the REST API and web UI.
    @property
    def trials(self) -> dict[str, TrialState]:
        return self.book.trials

    @property
    def best(self) -> tuple[float, str, Any] | None:
        return self.book.best

    @property
    def optimize_mode(self) -> str:
        return self.book.optimize_mode

    @optimize_mode.setter
    def optimize_mode(self, mode: str) -> None:
        self.book.optimize_mode = mode

    # -- start and stop --------------------------------------------------------------------
    async def start(self) -> None:
        """Build the algorithms and the training service, then begin scheduling."""
        config = self.config
        from .secret import private_dir
        directory = ExperimentDir(self.dir)
        private_dir(directory.trials)
        private_dir(directory.checkpoint)
        if self._resume:
            # Limits carry on: the time already spent counts against maxExperimentDuration.
            self.start_time = time.time() - _resume.elapsed_before(self.store)
        self.store.set_meta(id=self.id, config=config.to_dict(), start_time=self.start_time,
                            status="INITIALIZED", port=self.port, pid=os.getpid())
        self.record_event("EXPERIMENT_RESUMED" if self._resume else "EXPERIMENT_CREATED",
                          f"experiment {self.id} {'resumed' if self._resume else 'created'}")
        try:
            # The algorithms get the checkpoint directory through their own context, not
            # os.environ: this may be the user's process (Experiment.start()); see nni.recoverable.
            self._algorithms, self.optimize_mode = Algorithms.build(
                config, checkpoint_dir=directory.checkpoint, objectives=self.objectives, on_error=self.fail,
                tuner=self._tuner_obj, assessor=self._assessor_obj)
            self.channel.algorithms = self._algorithms
            self.store.set_meta(optimize_mode=self.optimize_mode)   # read by `nnictl view`
            await self._algorithms.prepare(config.search_space, self.objectives, config.max_trial_number,
                                           self.constraints)
            if not self._resume:   # a resumed one has them in its store (``imported``) already
                await self._warm_start()
            self._service = self._service_obj or create_training_service(ServiceContext.from_config(
                config, experiment_id=self.id, experiment_dir=self.dir, port=self.port))
            self._service.on_trial_start = self._on_trial_start
            self._service.on_trial_waiting = self._on_trial_waiting
            self._service.on_trial_end = self._on_trial_end
            await self._service.start()
            if self._resume:
                await self._restore()
        except Exception as exc:
            self.fail(str(exc))
            return
        self._set_status("RUNNING")
        if config.max_experiment_duration:
            # What is left of it: a resumed experiment's earlier time counts (start_time moved back).
            self._start_duration_timer(max(0.0, self.start_time + config.max_experiment_duration - time.time()))
        self._tasks.spawn(self._schedule_loop(), "scheduler")
        self._wake.set()

    async def stop(self) -> None:
        """Cancel every active trial, record them USER_CANCELED and end the experiment.

        Every step runs even when an earlier one raised (a kill that fails because a Ray
        cluster or an SSH machine is gone, a service whose clean-up fails): the error is logged
        and recorded as an event, and the experiment still ends ``STOPPED`` (or keeps its
        ``ERROR`` / ``DONE``) with ``stopped`` set. A second call waits for the first.
        """
        if self.stopped.is_set():
            return
        if self._stopping:
            await self.stopped.wait()
            return
        self._stopping = True
        try:
            if self.status not in (ExperimentStatus.ERROR, ExperimentStatus.DONE):
                self._set_status(ExperimentStatus.STOPPING.value)
            await self._stop_step("canceling the trials",
                                  self._cancel_active(TrialStatus.USER_CANCELED.value, STOPPED_WITH_EXPERIMENT))
            if self._service is not None:
                await self._stop_step("stopping the training service", self._service.stop())
            if self._algorithms is not None:
                await self._stop_step("shutting down the algorithms", self._shutdown_algorithms())
            # the scheduler, timers, assessments, pending notifications
            await self._stop_step("ending the background tasks", self._tasks.close())
        finally:
            # Even a stop that was itself canceled leaves a final state: nobody waits on STOPPING.
            try:
                if self.status not in (ExperimentStatus.ERROR, ExperimentStatus.DONE):
                    self._set_status(ExperimentStatus.STOPPED.value)
                self.end_time = self.end_time or time.time()
                self.store.set_meta(end_time=self.end_time)
            finally:
                self.stopped.set()
        await self.notify()

    async def _stop_step(self, what: str, step: Awaitable[Any]) -> None:
        """Run one step of :meth:`stop`; an exception is logged and recorded, and the stop goes on."""
        try:
            await step
        except Exception as exc:
            _logger.exception("stop: %s failed", what)
            self._record_error_event("STOP_STEP_FAILED", f"{what} failed: {type(exc).__name__}: {exc}")

    async def _shutdown_algorithms(self) -> None:
        assert self._algorithms is not None
        self._algorithms.shutdown()

    def _record_error_event(self, kind: str, message: str, trial_id: str | None = None) -> None:
        try:
            self.record_event(kind, message, trial_id)
        except Exception:   # the store itself may be what failed; the log has the error already
            _logger.exception("could not record %s", kind)

    # -- resume ----------------------------------------------------------------------------
    async def _restore(self) -> None:
        """Continue from the store (``_resume``): trials, counters, best result, the tuner's history.

        Trials that were running when the previous manager died are ended (their leftover
        processes killed by the training service) before anything new starts.
        """
        assert self._service is not None and self._algorithms is not None
        state = await _resume.read_resume_in_thread(self.store, multi_phase=bool(self.config.multi_phase),
                                                    objectives=self.objectives, constraints=self.constraints)
        book = self.book
        for trial in state.trials:
            book.add(trial)
        book.failures.last, book.failures.armed = state.failures_last, state.failures_armed
        await self._service.cleanup_interrupted([
            InterruptedTrial(i.trial.trial_id, i.trial.trial_dir, i.process) for i in state.interrupted])
        _resume.close_interrupted(self.store, state)
        self._reruns = state.reruns
        for trial_id, value in state.results:
            book.update_best(trial_id, value)
        await self._algorithms.restore(state.tuner_data)
        book.next_parameter_id, book.next_sequence_id = state.next_parameter_id, state.next_sequence_id
        book.counted, book.parameter_sets = state.counted, state.parameter_sets
        _logger.info("resumed with %d trials (%d interrupted), %d results given to the tuner",
                     len(state.trials), len(state.interrupted), len(state.tuner_data))

    async def import_data(self, data: list[dict[str, Any]], source: str | None = None,
                          partial: bool = False) -> int:
        """Give the tuner prior results ({'parameter': ..., 'value': ...}); kept for resume too.

        ``source``: the experiment a warm start took them from (None: the user imported them),
        recorded with the batch; ``partial``: rows may lack parameters added since (warm start)."""
        assert self._algorithms is not None
        rows = [d for d in data if isinstance(d, dict) and "parameter" in d and "value" in d]
        if len(rows) != len(data):
            raise ValueError("each imported entry must be an object with 'parameter' and 'value'")
        await self._algorithms.import_data(rows, partial=partial)
        self.store.add_imported(rows, source=source)   # appended: an import costs O(its own rows)
        self.record_event("DATA_IMPORTED", f"{len(rows)} results imported" + (f" from {source}" if source else ""))
        await self.notify()
        return len(rows)

    async def _warm_start(self) -> None:
        """``warmStart``: the finished results of the named experiments, fitted to this search
        space, go to the tuner before the first trial (``_warm_start``), one import per source."""
        assert self._algorithms is not None
        ids = _warm_start.experiment_ids(self.config.warm_start)
        if not ids:
            return
        sources = await asyncio.to_thread(
            _warm_start.load, ids, self.config.search_space or {}, own_id=self.id, objectives=self.objectives,
            takes_partial=self._algorithms.takes_partial_results)
        for source in sources:
            if source.rows:
                await self.import_data(source.rows, source=source.summary.experiment, partial=True)
            _logger.info("warm start %s", source.summary.line())
            self.record_event("WARM_START", source.summary.line())
        self.store.set_meta(**{_warm_start.META_KEY: [s.summary.to_json() for s in sources]})

    # -- scheduling ------------------------------------------------------------------------
    def active_trials(self) -> list[TrialState]:
        return self.book.active()

    def _budget_left(self) -> float:
        """How many more trial jobs maxTrialNumber allows (multi-phase too, as in NNI)."""
        return self.book.budget_left(self.config.max_trial_number)

    def _limit_reached(self) -> bool:
        return self._budget_left() <= 0

    def _out_of_time(self) -> bool:
        """Whether ``maxExperimentDuration`` is used up (new trials may not start)."""
        limit = self.config.max_experiment_duration
        return bool(limit) and time.time() >= self.start_time + limit

    async def _schedule_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._fill_slots()
            except AlgorithmError as exc:
                self.fail(str(exc))
            except Exception as exc:  # a bug of ours must not leave the experiment silently RUNNING
                _logger.exception("scheduler failed")
                self.fail(f"manager error: {type(exc).__name__}: {exc}")
            self._update_completion()
            await self.notify()

    async def _start_pending(self) -> None:
        """Hand queued attempts (retries, re-runs) to the service first: they are already counted."""
        while self._pending and self.status in _ATTEMPT_STATES:
            if self.book.running_count() >= self.config.trial_concurrency:
                return
            trial = self._pending.pop(0)
            if trial.queued and trial.status == "WAITING":
                trial.queued = False
                await self._submit(trial)

    async def _fill_slots(self) -> None:
        await self._start_pending()
        while self.status == "RUNNING":
            # The one place that decides whether a new trial may start: budget, tuner and time.
            # (A re-run asked for after maxExperimentDuration ended the run sets RUNNING again;
            # its attempts start above, but no new trial does.)
            if self._limit_reached() or self.tuner_exhausted or self._out_of_time():
                self._set_status("TUNER_NO_MORE_TRIAL" if self.tuner_exhausted else "NO_MORE_TRIAL")
                return
            free = min(self.config.trial_concurrency - self.book.running_count(), self._budget_left()) - self._asking
            if free <= 0:
                return
            if self._tuner_waiting and not self._reruns:
                return
            if self._reruns:
                [parameter_id] = self.book.reserve_parameter_ids(1)
                await self._launch(parameter_id, self._reruns.pop(0), source=SOURCE_RESUMED)
                continue
            if self.config.multi_thread and not self.config.multi_phase:
                self._ask_per_slot(free)
                return
            # A multi-phase tuner is told which trial job a parameter set is for, so the
            # trial id exists before its first parameters do.
            trial_id = self.book.new_trial_id() if self.config.multi_phase else None
            batch = await self.generate(1 if trial_id else int(free), trial_id)
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
            if self._tasks.spawn(self._ask_one(), "multiThread tuner call") is None:
                self._asking -= 1   # stopping: no call was started

    async def _ask_one(self) -> None:
        try:
            batch = await self.generate(1, None, concurrent=True)
            if self.status == "RUNNING":
                for parameter_id, parameters in batch:
                    await self._launch(parameter_id, parameters)
        except AlgorithmError as exc:
            self.fail(str(exc))
        except asyncio.CancelledError:
            return
        finally:
            self._asking -= 1
        self._wake.set()

    async def generate(self, count: int, trial_id: str | None,
                       concurrent: bool = False) -> list[tuple[int, dict[str, Any]]]:
        """Ask the tuner for ``count`` parameter sets, with fresh ids; fewer back means it has no more
        for now (trials still run: it may wait for their results) or at all (none runs)."""
        assert self._algorithms is not None
        ids = self.book.reserve_parameter_ids(count)   # reserved now: concurrent phase requests see the budget
        news = self._tuner_news
        batch = await self._algorithms.generate(ids, trial_id, concurrent)
        self.book.unreserve(count - len(batch))
        if len(batch) < count and not self.tuner_exhausted and self._tuner_news == news:
            if batch or self._asking > 1 or any(t.trial_id != trial_id for t in self.active_trials()):
                self._tuner_waiting = True
            else:
                self.tuner_exhausted = True
                self.record_event("TUNER_NO_MORE_TRIAL", "the tuner has no more parameters")
        return list(zip(ids, batch))

    def result_arrived(self) -> None:
        """A result reached the tuner: one that waited for results may give more now."""
        self._tuner_news += 1
        if self._tuner_waiting:
            self._tuner_waiting = False
            self._wake.set()

    async def _launch(self, parameter_id: int, parameters: dict[str, Any], trial_id: str | None = None,
                      source: str = SOURCE_ALGORITHM) -> None:
        sequence_id = self.book.new_sequence_id()
        self.book.counted += 1
        trial_id = trial_id or self.book.new_trial_id()
        trial_dir = self.dir / "trials" / trial_id
        record = ParameterRecord(parameter_id, source, parameters, 0).to_wire()
        trial = TrialState(trial_id, sequence_id, str(trial_dir), new_token(), [record])
        self.book.add(trial)
        with self.store.transaction():   # one commit a trial event (here: the trial, its first attempt, the event)
            self.store.add_trial(trial_id, sequence_id, str(trial_dir), parameter_id, parameters, source)
            self.store.add_attempt(trial_id, 1)
            self.record_event("TRIAL_SUBMITTED", f"parameter {parameter_id}", trial_id)
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

    def _trial_env(self, trial: TrialState) -> dict[str, str]:
        output_dir = trial.trial_dir
        return {
            "NNI_PLATFORM": self.config.training_service.platform,
            "NNI_EXP_ID": self.id,
            "NNI_TRIAL_JOB_ID": trial.trial_id,
            "NNI_SYS_DIR": trial.trial_dir,
            "NNI_OUTPUT_DIR": output_dir,
            "NNI_TRIAL_SEQ_ID": str(trial.sequence_id),
            "NNI_TRIAL_CHANNEL": trial_channel_url(self.config.nni_manager_ip, self.port),
            "NNI_TRIAL_TOKEN": trial.token,
            # nni-ng: which run of this trial this is (1, 2, ...); a re-run keeps the id and directory.
            "NNI_TRIAL_ATTEMPT": str(trial.attempt),
            **first_parameter_env(trial),   # NNI_TRIAL_PARAMETER: the first get_next_parameter() asks nothing
            **({"NNI_TRIAL_LEASE_INTERVAL": f"{self.lease_timeout / LEASE_RENEWALS_PER_TIMEOUT:g}"}
               if self.config.training_service.platform in ("remote", "ray") else {}),
        }

    def _update_completion(self) -> None:
        if self.status in ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL") and not self.active_trials():
            self._set_status("DONE")
            self.end_time = time.time()
            self.store.set_meta(end_time=self.end_time)
            _logger.info("Experiment done.")   # NNI's line; CI scripts grep nnimanager.log for it

    # -- trial events (from the training service) --------------------------------------------------
    async def _on_trial_start(self, trial_id: str, machine: str | None = None, process: str | None = None) -> None:
        trial = self.book.get(trial_id)
        if trial is None or trial.status != "WAITING" or trial.queued:
            return
        trial.status = "RUNNING"
        now = time.time()
        with self.store.transaction():
            if trial.attempt == 1:
                self.store.update_trial(trial_id, status="RUNNING", start_time=now, message=None)
            else:   # the trial's start stays its first attempt's; the message says which attempt runs
                self.store.update_trial(trial_id, status="RUNNING", message=f"attempt {trial.attempt} running")
            # process: the service's record of it, for a resume after a crash (no file of its own per trial)
            self.store.update_attempt(trial_id, trial.attempt, status="RUNNING", start_time=now, machine=machine,
                                      process=process)
        trial.machine = machine
        limit = self.config.max_trial_duration
        if limit:
            trial.timer = self._tasks.later(
                limit, lambda: self.kill_trial(trial_id, "FAILED", f"exceeded maxTrialDuration ({limit:g} s)"),
                f"maxTrialDuration of trial {trial_id}")
        await self.notify()

    async def _on_trial_waiting(self, trial_id: str, reason: str) -> None:
        """A submitted trial cannot start yet: say why in its record instead of staying silent."""
        if trial_id in self.book:
            self.store.update_trial(trial_id, message=reason)
            self.record_event("TRIAL_WAITING", reason, trial_id)
            await self.notify()

    async def _on_trial_end(self, ended: TrialEnded) -> None:
        trial = self.book.get(ended.trial_id)
        if trial is None or not trial.active or trial.queued:
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
        retryable = not self.config.multi_phase and self.status in _ATTEMPT_STATES
        if retryable and status == "FAILED" and (
                lost or (self.config.retry_failed_trials and not trial.kill_status)):
            if lost and trial.complete:
                # Its result is in; only the exit was lost. Nothing to run again.
                status, message = "SUCCEEDED", f"{message} (after its final result)"
            elif trial.attempt <= self.max_trial_retries:
                await self._retry(trial, "LOST" if lost else "FAILED", message)
                return
            elif self.max_trial_retries:
                message = f"{message} (attempt {trial.attempt}, no retries left: maxTrialRetries is " \
                          f"{self.max_trial_retries})"
        await self._finish_trial(trial, status, ended.exit_code, message)

    # -- attempts ------------------------------------------------------------------------------
    async def _retry(self, trial: TrialState, attempt_status: str, reason: str) -> None:
        """Close the current attempt (lost, or failed with retryFailedTrials) and queue the next."""
        self._end_attempt(trial, attempt_status, reason)
        self.record_event(f"TRIAL_ATTEMPT_{attempt_status}", f"attempt {trial.attempt}: {reason}", trial.trial_id)
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

    async def _queue_attempt(self, trial: TrialState, why: str) -> None:
        """Make the next attempt of ``trial``: new token, same parameters and directory, queued for a slot."""
        trial.fence()
        trial.attempt += 1
        trial.status, trial.queued, trial.machine = "WAITING", True, None
        self.book.revived(trial)
        trial.kill_status, trial.kill_message = None, ""
        trial.history = None
        # The new attempt numbers its metrics from 0 again; stored after the earlier ones.
        trial.sequence_offset = self.store.max_sequence(trial.trial_id) + 1
        message = f"waiting to run attempt {trial.attempt}; {why}"
        self.store.add_attempt(trial.trial_id, trial.attempt, cause=why, log_offsets=_log_sizes(trial.trial_dir))
        self.store.update_trial(trial.trial_id, status="WAITING", end_time=None, exit_code=None, message=message)
        for record in trial.records:
            if record["parameter_id"] not in trial.finals:
                self.store.set_parameter_status(record["parameter_id"], "RUNNING")
        self.record_event("TRIAL_ATTEMPT_QUEUED", message, trial.trial_id)
        self._pending.append(trial)
        self._wake.set()
        await self.notify()

    async def _finish_trial(self, trial: TrialState, status: str, exit_code: int | None, message: str) -> None:
        if trial in self._pending:
            self._pending.remove(trial)
        trial.queued = False
        trial.status = status
        reason, message = message, "; ".join(m for m in (message, trial.result_note) if m)
        with self.store.transaction():   # the attempt, the trial, the event and its open phases end together
            self._end_attempt(trial, status, reason)
            self.store.update_trial(trial.trial_id, status=status, end_time=time.time(), exit_code=exit_code,
                                    message=message or None)
            self.record_event("TRIAL_" + status, message, trial.trial_id)
            if self.book.failures.trial_ended(status, message, produced_result=bool(trial.finals)):
                self.fail(self.book.failures.stop_message())
            for record in trial.records:
                # Phases that never got a final result end with the trial (a crash mid-phase
                # fails only the open phase; finished ones keep SUCCEEDED).
                if record["parameter_id"] not in trial.finals:
                    self.store.set_parameter_status(record["parameter_id"], status)
        if status == "SUCCEEDED" and not trial.finals and not self._warned_no_final:
            # Its tuner learns nothing from it, and nothing else would say so (issue 30, item 3).
            self._warned_no_final = True
            _logger.warning("trial %s ended without report_final_result(): the tuner learned nothing from it "
                            "(later ones are counted in 'nnictl experiment status')", trial.trial_id)
        closed, trial.tuner_closed = trial.tuner_closed, True
        # A re-run's end is not told again: the tuner and assessor heard of this trial already.
        if not closed and self._algorithms is not None:
            self._algorithms.trial_ended(trial, status == "SUCCEEDED")
        self._tuner_news += 1
        self._tuner_waiting = False
        self._wake.set()
        await self.notify()

    def has_builtin_tuner(self) -> bool:
        """Whether the tuner is one of nni-ng's (they take NNI's search-space format and scalar results)."""
        return self._algorithms is not None and self._algorithms.is_builtin_tuner()

    async def kill_trial(self, trial_id: str, status: str = "USER_CANCELED", message: str = "") -> bool:
        """End a trial's processes and record it with ``status``; False if it was not active."""
        trial = self.book.get(trial_id)
        if trial is None or not trial.active:
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
        """Kill every active trial and record it ``status``; a kill that raises does not stop the others.

        A trial whose kill raised is recorded all the same (its service could not reach it: a
        lost cluster or machine), with the error in its message, so it holds no slot and the
        experiment can end.
        """
        trials = self.active_trials()
        results = await asyncio.gather(*(self.kill_trial(t.trial_id, status, message) for t in trials),
                                       return_exceptions=True)
        failed: dict[str, str] = {}
        for trial, result in zip(trials, results):
            if isinstance(result, Exception):
                _logger.error("killing trial %s failed", trial.trial_id, exc_info=result)
                failed[trial.trial_id] = f"{message}; its kill failed: {type(result).__name__}: {result}"
                self._record_error_event("TRIAL_KILL_FAILED", failed[trial.trial_id], trial.trial_id)
            elif isinstance(result, BaseException):
                raise result
        # Trials whose end the training service has not reported yet are recorded now.
        for trial in self.active_trials():
            await self._finish_trial(trial, status, None, failed.get(trial.trial_id, message))

    def _start_duration_timer(self, remaining: float) -> None:
        if self._duration_timer:
            self._duration_timer.cancel()
        self._duration_timer = self._tasks.later(remaining, self._on_duration_reached, "maxExperimentDuration")

    async def _on_duration_reached(self) -> None:
        if self.status not in _ATTEMPT_STATES:
            return
        limit = self.config.max_experiment_duration
        self.record_event("MAX_DURATION", f"maxExperimentDuration ({limit:g} s) reached")
        self._set_status("NO_MORE_TRIAL")
        await self._cancel_active("USER_CANCELED", f"maxExperimentDuration ({limit:g} s) reached")
        self._update_completion()
        await self.notify()

    # -- the trial channel (``_channel``; called by the REST routes for trials) ------------------------
    def authenticate(self, trial_id: str, token: str) -> TrialState | None:
        """The trial whose current attempt holds ``token``, or None."""
        return self.channel.authenticate(trial_id, token)

    def fenced(self, trial_id: str, token: str) -> bool:
        """Whether ``token`` belonged to an earlier attempt of the trial (its reports are refused)."""
        return self.channel.fenced(trial_id, token)

    def renew_lease(self, trial: TrialState, machine: str | None = None) -> float:
        """The current attempt is alive: extend its lease; returns the lease timeout in seconds."""
        return self.channel.renew_lease(trial, machine)

    async def next_parameter(self, trial: TrialState, index: int) -> dict[str, Any] | None:
        """Parameter record ``index`` of a trial (see ``TrialRequests.next_parameter``)."""
        return await self.channel.next_parameter(trial, index)

    async def report_metric(self, trial: TrialState, parameter_id: int | None, metric_type: str,
                            sequence: int, value: str) -> str | None:
        """Store a metric the trial sent, then act on it (see ``TrialRequests.report_metric``); returns
        a warning for the trial's log, or None."""
        return await self.channel.report_metric(trial, parameter_id, metric_type, sequence, value)

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
            unknown = [t for t in trial_ids or [] if t not in self.book]
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
            self.book.counted += len(chosen)
        for trial in chosen:
            await self._queue_attempt(trial, f"re-run requested by the user (it was {trial.status})")
        if chosen:
            self.record_event("TRIALS_RERUN", f"{len(chosen)} trial(s) run again: "
                              f"{', '.join(t.trial_id for t in chosen)}")
            if self.status in ("DONE", "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL"):
                # Scheduling resumes; the status goes back to what the budget and tuner say.
                self._set_status("RUNNING")
                self.end_time = None
                self.store.set_meta(end_time=None)
            self._wake.set()
            await self.notify()
        return {"rerun": [t.trial_id for t in chosen], "skipped": skipped}

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
                # (trial jobs, multi-phase too: what maxTrialNumber counts)
                raise ValueError(f"maxTrialNumber: {done} trials are already done; "
                                 f"the limit cannot be lowered below {done} (got {max_trial_number})")
        if trial_concurrency is not None:
            self.config.trial_concurrency = trial_concurrency
        if max_trial_number is not None:
            self.config.max_trial_number = max_trial_number
            if self._algorithms is not None:
                await self._algorithms.tell_trial_budget(max_trial_number)
        if max_experiment_duration is not None:
            self.config.max_experiment_duration = max_experiment_duration
        if max_trial_number is not None or max_experiment_duration is not None:
            continued = self._continue_if_limits_allow()
            if (max_experiment_duration is not None or continued) and self.config.max_experiment_duration:
                # The start time may have moved (continued): the timer follows the limit.
                self._start_duration_timer(
                    max(0.0, self.start_time + self.config.max_experiment_duration - time.time()))
        if search_space is not None:
            assert self._algorithms is not None
            await self._algorithms.update_search_space(search_space)
            self.config.search_space = search_space
            self.tuner_exhausted = self._tuner_waiting = False
            if self.status == "TUNER_NO_MORE_TRIAL":
                self._set_status("RUNNING")
        self.store.set_meta(config=self.config.to_dict())
        self.record_event("EXPERIMENT_UPDATED", "")
        self._wake.set()
        await self.notify()

    def _continue_if_limits_allow(self) -> bool:
        """Back to RUNNING when the limits that ended scheduling were raised past what is used.

        A DONE experiment continues too. The time it sat DONE does not count against
        ``maxExperimentDuration`` (as for ``nnictl resume``): the start time moves forward by it.
        """
        if self.status not in ("NO_MORE_TRIAL", "DONE") or self.tuner_exhausted:
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
            self.record_event("EXPERIMENT_CONTINUED", "a raised limit continues the experiment")
        self._set_status("RUNNING")
        return True

    # -- status and progress ---------------------------------------------------------------
    def _set_status(self, status: str) -> None:
        if status == self.status:
            return
        self.status = status
        if status in ENDED_STATES:
            self._ended.set()
        else:   # a stopped experiment may run again (resume, a raised limit)
            self._ended.clear()
        silent = self.trials_without_final_result()
        self.store.set_meta(status=status, errors=self.errors, warnings=self.warnings(silent),
                            trials_without_final_result=silent)
        self.record_event("STATUS", status)
        self.version += 1

    def fail(self, message: str) -> None:
        """End the experiment in ERROR with ``message`` (the first failure wins)."""
        if self.status == "ERROR":
            return
        _logger.error("experiment failed: %s", message)
        self.errors.append(message)
        self._set_status("ERROR")
        self.end_time = time.time()
        self.store.set_meta(end_time=self.end_time)
        self._tasks.spawn(self.notify(), "notify")

    def record_event(self, kind: str, message: str = "", trial_id: str | None = None) -> None:
        self.store.add_event(kind, message, trial_id)

    async def notify(self) -> None:
        """Wake whoever waits for a change (``wait_for_change``, ``GET /progress``)."""
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def wait_for_change(self, since: int, timeout: float, *, until_ended: bool = False) -> None:
        """Return as soon as ``version`` passes ``since`` (or, ``until_ended``, once the
        experiment has ended), or after ``timeout`` seconds."""
        try:
            if until_ended:
                await asyncio.wait_for(self._ended.wait(), timeout)
                return
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version > since), timeout)
        except asyncio.TimeoutError:
            pass

    def warnings(self, silent: int | None = None) -> list[str]:
        """Plain-language notes on an outcome that is not an error but that no one should miss.

        Every trial that ended on its own failed (``all 4 trials failed; last: exit code 127:
        /bin/sh: 1: nosuchcommand_xyz: not found``), and trials that SUCCEEDED without a final
        result (``4 trials ended without report_final_result() (...)``): both would otherwise
        hide behind a ``DONE``. ``silent`` is that second count, when the caller has it. Shown by check-status, ``/progress``, ``nnictl experiment
        status`` and the last line of ``Experiment.run()``; kept in the store for stopped ones.
        """
        notes = self.book.warnings(so_far=self.status not in ENDED_STATES)
        if silent is None:      # the count, when the caller has it already (a scan of every trial)
            silent = self.trials_without_final_result()
        if silent:
            notes.append(f"{silent} trial{'s' if silent != 1 else ''} ended without report_final_result() "
                         f"(SUCCEEDED with no final result: the tuner learned nothing from "
                         f"{'them' if silent != 1 else 'it'})")
        return notes

    def trials_without_final_result(self) -> int:
        """Trials that SUCCEEDED but never reported a final result (a trial script that forgot
        ``nni.report_final_result()``): shown as a warning and as ``trialsWithoutFinalResult``."""
        return sum(1 for t in self.book.trials.values() if t.status == "SUCCEEDED" and not t.finals)

    def progress(self) -> dict[str, Any]:
        counts = self.book.counts()
        finished = self.book.finished(counts)
        end = self.end_time if self.status in ENDED_STATES else None
        best = self.book.best
        silent = self.trials_without_final_result()
        return {
            "version": self.version,
            "status": self.status,
            "errors": self.errors,
            "warnings": self.warnings(silent),
            "trialsWithoutFinalResult": silent,
            "limitUnit": "trials",   # maxTrialNumber counts trial jobs, multi-phase too (NNI)
            "limitDone": finished,
            "trialsDone": finished,
            "trialsSubmitted": len(self.book.trials),
            "maxTrialNumber": self.config.max_trial_number,
            "counts": counts,
            "optimizeMode": self.optimize_mode,
            "bestMetric": best[0] if best else None,
            "bestTrialId": best[1] if best else None,
            "elapsed": (end or time.time()) - self.start_time,
            "maxExperimentDuration": self.config.max_experiment_duration,
        }


def _log_sizes(trial_dir: str) -> tuple[int, int]:
    """The sizes of a trial's stdout and stderr files (0 for one not written yet): where the
    next attempt's output starts in them, so the web UI can show each attempt's own part."""
    sizes = []
    for name in ("stdout", "stderr"):
        try:
            sizes.append(os.stat(os.path.join(trial_dir, name)).st_size)
        except OSError:
            sizes.append(0)
    return sizes[0], sizes[1]
