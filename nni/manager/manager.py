"""The experiment manager: schedules trials, talks to the tuner and assessor, stores every fact.

Everything runs on one asyncio loop and reacts to events (a trial exited, a metric
arrived, the user changed a limit); nothing polls. Each state change is written to the
store before anyone is told about it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import secrets
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NoMoreTrialError
from ..multi_phase import MultiPhaseTuner
from ..training_service import TrainingService, TrialEnded, TrialSpec, create_training_service
from ..utils import extract_scalar_reward
from .dispatcher import AlgorithmError, SerialRunner
from .store import Store

_logger = logging.getLogger("nni.manager")

ACTIVE_STATES = ("WAITING", "RUNNING")
FINISHED_TRIAL_STATES = ("SUCCEEDED", "FAILED", "USER_CANCELED", "EARLY_STOPPED", "SYS_CANCELED")
# A trial the manager lost while it ran (it was killed); NNI's name for a system-side cancel.
INTERRUPTED = "SYS_CANCELED"
# States in which the manager still starts trials / has finished for good.
SCHEDULING_STATES = ("RUNNING",)
ENDED_STATES = ("DONE", "STOPPED", "ERROR")


class DuplicateFinal(ValueError):
    """A second, different final result for a parameter set that already has one (HTTP 409)."""


def new_id(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
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
    timer: asyncio.TimerHandle | None = None


class ExperimentManager:
    """One experiment: its tuner, assessor, training service, store and limits."""

    def __init__(self, config: Any, experiment_id: str, experiment_dir: Path, *,
                 tuner: Any = None, assessor: Any = None, port: int = 8080, resume: bool = False) -> None:
        self.config = config            # canonical ExperimentConfig
        self.id = experiment_id
        self.dir = Path(experiment_dir)
        self.port = port
        self.store = Store(self.dir / "db" / "nni.sqlite")
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
        self._parameter_sets = 0          # parameter sets given out (the multi-phase budget unit)
        self._counted_trials = 0          # trials that count against maxTrialNumber (not interrupted ones)
        self._resume = resume
        self._reruns: list[dict[str, Any]] = []   # parameters of interrupted trials, run again first
        self._tuner_exhausted = False
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
        self.store.set_meta(id=self.id, config=config.json(), start_time=self.start_time,
                            status="INITIALIZED", port=self.port, pid=os.getpid())
        self._record_event("EXPERIMENT_RESUMED" if self._resume else "EXPERIMENT_CREATED",
                           f"experiment {self.id} {'resumed' if self._resume else 'created'}")
        try:
            tuner = self._tuner_obj or _create_algorithm("tuner", config.tuner)
            assessor = self._assessor_obj or (
                _create_algorithm("assessor", config.assessor) if config.assessor else None)
            self.optimize_mode = _optimize_mode(config.tuner, tuner)
            self.store.set_meta(optimize_mode=self.optimize_mode)   # read by `nnictl view`
            self._tuner = SerialRunner(tuner, "tuner")
            self._assessor = SerialRunner(assessor, "assessor") if assessor is not None else None
            await self._tuner.call("update_search_space", config.search_space)
            self._service = create_training_service(config)
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

    async def _restore(self) -> None:
        """Rebuild state from the store: trials, counters, best result, and the tuner's history.

        Trials that were running when the previous manager died are ended (their leftover
        processes killed) and recorded SYS_CANCELED; their parameters run again first. A
        trial that had already reported its final result keeps it and counts as SUCCEEDED.
        """
        assert self._service is not None and self._tuner is not None
        records: dict[str, list[dict[str, Any]]] = {}
        for p in self.store.parameters():
            records.setdefault(p["trial_id"], []).append(
                {"parameter_id": p["parameter_id"], "parameter_source": p["source"],
                 "parameters": p["parameters"], "parameter_index": p["parameter_index"]})
        finals: dict[str, dict[int | None, Any]] = {}
        history: dict[str, dict[int | None, list[Any]]] = {}
        for m in self.store.metrics():
            if m["type"] == "FINAL":
                finals.setdefault(m["trial_id"], {})[m["parameter_id"]] = json.loads(m["value"])
            else:
                history.setdefault(m["trial_id"], {}).setdefault(m["parameter_id"], []).append(
                    json.loads(m["value"]))
        interrupted: list[TrialState] = []
        for row in self.store.trials():
            trial = TrialState(row["trial_id"], row["sequence_id"], row["trial_dir"], secrets.token_urlsafe(24),
                               records.get(row["trial_id"], []), status=row["status"])
            trial.finals = set(finals.get(trial.trial_id, {}))
            trial.history = history.get(trial.trial_id, {})
            self.trials[trial.trial_id] = trial
            if trial.status in ACTIVE_STATES:
                interrupted.append(trial)
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
            for record in trial.records:
                if record["parameter_id"] not in trial.finals:
                    self.store.set_parameter_status(record["parameter_id"], status)
            self._record_event("TRIAL_" + status, message, trial.trial_id)
        data = []
        for trial in self.trials.values():
            for record in trial.records:
                value = finals.get(trial.trial_id, {}).get(record["parameter_id"])
                if record["parameter_id"] in trial.finals and finite_metric(value):
                    data.append({"parameter": record["parameters"], "value": value})
                    self._update_best(trial.trial_id, value)
        data += self.store.imported()
        if data and hasattr(self._tuner.algorithm, "import_data"):
            await self._tuner.call("import_data", data)
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
        """How many more trials (multi-phase: parameter sets) maxTrialNumber allows."""
        limit = self.config.max_trial_number
        if limit is None:
            return math.inf
        used = self._parameter_sets if self.config.multi_phase else self._counted_trials
        return limit - used

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

    async def _fill_slots(self) -> None:
        while self.status == "RUNNING":
            if self._limit_reached() or self._tuner_exhausted:
                self._set_status("TUNER_NO_MORE_TRIAL" if self._tuner_exhausted else "NO_MORE_TRIAL")
                return
            free = min(self.config.trial_concurrency - len(self.active_trials()), self._budget_left())
            if free <= 0:
                return
            if self._tuner_waiting and not self._reruns:
                return
            if self._reruns:
                parameter_id = self._next_parameter_id
                self._next_parameter_id += 1
                self._parameter_sets += 1
                await self._launch(parameter_id, self._reruns.pop(0), source="resumed")
                continue
            # A multi-phase tuner is told which trial job a parameter set is for, so the
            # trial id exists before its first parameters do.
            trial_id = self._new_trial_id() if self.config.multi_phase else None
            batch = await self._generate(1 if trial_id else int(free), trial_id)
            if self.status != "RUNNING":  # stopped or failed while the tuner was thinking
                return
            for parameter_id, parameters in batch:
                await self._launch(parameter_id, parameters, trial_id)

    async def _generate(self, count: int, trial_id: str | None) -> list[tuple[int, dict[str, Any]]]:
        """Ask the tuner for ``count`` parameter sets; fewer back means it has no more."""
        assert self._tuner is not None
        ids = list(range(self._next_parameter_id, self._next_parameter_id + count))
        self._next_parameter_id += count
        self._parameter_sets += count   # reserved now: concurrent phase requests see the budget
        kwargs = {"trial_job_id": trial_id} if self.config.multi_phase else {}
        try:
            batch = list(await self._tuner.call("generate_multiple_parameters", ids, **kwargs) or [])
        except NoMoreTrialError:
            batch = []
        self._parameter_sets -= count - len(batch)
        if len(batch) < count and not self._tuner_exhausted:
            if batch or any(t.trial_id != trial_id for t in self.active_trials()):
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
                      source: str = "algorithm") -> None:
        sequence_id = self._next_sequence_id
        self._next_sequence_id += 1
        self._counted_trials += 1
        trial_id = trial_id or self._new_trial_id()
        trial_dir = self.dir / "trials" / trial_id
        record = {"parameter_id": parameter_id, "parameter_source": source,
                  "parameters": parameters, "parameter_index": 0}
        trial = TrialState(trial_id, sequence_id, str(trial_dir), secrets.token_urlsafe(24), [record])
        self.trials[trial_id] = trial
        self.store.add_trial(trial_id, sequence_id, str(trial_dir), parameter_id, parameters, source)
        self._record_event("TRIAL_SUBMITTED", f"parameter {parameter_id}", trial_id)
        spec = TrialSpec(trial_id=trial_id, sequence_id=sequence_id, command=self.config.trial_command,
                         code_dir=self.config.trial_code_directory, trial_dir=str(trial_dir),
                         env=self._trial_env(trial), gpu_number=self.config.trial_gpu_number or 0)
        assert self._service is not None
        try:
            await self._service.submit(spec)
        except Exception as exc:
            await self._finish_trial(trial, "FAILED", None, f"could not start the trial: {exc}")

    async def _on_trial_start(self, trial_id: str) -> None:
        trial = self.trials.get(trial_id)
        if trial is None or trial.status != "WAITING":
            return
        trial.status = "RUNNING"
        self.store.update_trial(trial_id, status="RUNNING", start_time=time.time(), message=None)
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
        }

    def _update_completion(self) -> None:
        if self.status in ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL") and not self.active_trials():
            self._set_status("DONE")
            self.end_time = time.time()
            self.store.set_meta(end_time=self.end_time)

    # -- trial events ----------------------------------------------------------------------
    async def _on_trial_end(self, ended: TrialEnded) -> None:
        trial = self.trials.get(ended.trial_id)
        if trial is None or trial.status not in ACTIVE_STATES:
            return
        if trial.kill_status:
            status, message = trial.kill_status, trial.kill_message
        elif ended.exit_code == 0:
            status, message = "SUCCEEDED", ""
        else:
            status, message = "FAILED", ended.message
        await self._finish_trial(trial, status, ended.exit_code, message)

    async def _finish_trial(self, trial: TrialState, status: str, exit_code: int | None, message: str) -> None:
        if trial.timer:
            trial.timer.cancel()
        trial.status = status
        self.store.update_trial(trial.trial_id, status=status, end_time=time.time(), exit_code=exit_code,
                                message=message or None)
        self._record_event("TRIAL_" + status, message, trial.trial_id)
        success = status == "SUCCEEDED"
        for record in trial.records:
            # Phases that never got a final result end with the trial (a crash mid-phase
            # fails only the open phase; finished ones keep SUCCEEDED).
            if record["parameter_id"] not in trial.finals:
                self.store.set_parameter_status(record["parameter_id"], status)
        if self._tuner is not None:
            if isinstance(self._tuner.algorithm, MultiPhaseTuner):
                self._feed(self._tuner.call("trial_end", trial.trial_id, success))
            else:
                for record in trial.records:
                    self._feed(self._tuner.call("trial_end", record["parameter_id"], success,
                                                **self._phase_kwargs(trial)))
        if self._assessor is not None:
            self._feed(self._assessor.call("trial_end", trial.trial_id, success))
        self._tuner_waiting = False
        self._wake.set()
        await self._notify()

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
        if self.status != "RUNNING" or trial.status != "RUNNING" or self._limit_reached() or self._tuner_exhausted:
            return None
        batch = await self._generate(1, trial.trial_id)
        if not batch or trial.status != "RUNNING":
            return None
        parameter_id, parameters = batch[0]
        record = {"parameter_id": parameter_id, "parameter_source": "algorithm",
                  "parameters": parameters, "parameter_index": index}
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
        if metric_type == "FINAL" and parameter_id in trial.finals:
            # One final result per parameter set. The same one again is a retried request
            # (already stored and acted upon); a different one is refused, not stored.
            stored = self.store.final_metric(trial.trial_id, parameter_id)
            if stored is not None and stored["sequence"] == sequence and stored["value"] == value:
                return
            raise DuplicateFinal(f"parameter set {parameter_id} of trial {trial.trial_id} already has its "
                                 "final result; only the first report_final_result() counts")
        if not self.store.add_metric(trial.trial_id, parameter_id, metric_type, sequence, value):
            return  # a retried request: already stored and acted upon
        if metric_type == "FINAL":
            trial.finals.add(parameter_id)
            self._update_best(trial.trial_id, parsed)
            record = next(r for r in trial.records if r["parameter_id"] == parameter_id)
            self.store.set_parameter_status(parameter_id, "SUCCEEDED")
            if self._tuner is not None and finite_metric(parsed):
                if record["parameter_source"] == "resumed":
                    # This tuner instance never generated these parameters (they are re-run
                    # after a resume), so the result reaches it as imported data.
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
                asyncio.ensure_future(self._assess(trial, parameter_id, list(history)))
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
            if parameter_id not in trial.finals and self._tuner is not None and finite_metric(last):
                # As NNI does: the tuner learns from the last intermediate result of a stopped trial.
                record = next(r for r in trial.records if r["parameter_id"] == parameter_id)
                self._feed(self._tuner.call("receive_trial_result", parameter_id, record["parameters"], last,
                                            **self._phase_kwargs(trial)))
            await self.kill_trial(trial.trial_id, "EARLY_STOPPED")

    # -- user updates ----------------------------------------------------------------------
    async def update(self, *, trial_concurrency: int | None = None, max_trial_number: int | None = None,
                     max_experiment_duration: float | None = None, search_space: dict | None = None) -> None:
        if trial_concurrency is not None:
            self.config.trial_concurrency = trial_concurrency
        if max_trial_number is not None:
            self.config.max_trial_number = max_trial_number
            if self.status == "NO_MORE_TRIAL" and not self._limit_reached():
                self._set_status("RUNNING")
        if max_experiment_duration is not None:
            self.config.max_experiment_duration = max_experiment_duration
            if self._duration_timer:
                self._duration_timer.cancel()
            remaining = max(0.0, self.start_time + max_experiment_duration - time.time())
            self._duration_timer = asyncio.get_running_loop().call_later(
                remaining, lambda: asyncio.ensure_future(self._on_duration_reached()))
        if search_space is not None:
            assert self._tuner is not None
            await self._tuner.call("update_search_space", search_space)
            self.config.search_space = search_space
            self._tuner_exhausted = self._tuner_waiting = False
            if self.status == "TUNER_NO_MORE_TRIAL":
                self._set_status("RUNNING")
        self.store.set_meta(config=self.config.json())
        self._record_event("EXPERIMENT_UPDATED", "")
        self._wake.set()
        await self._notify()

    # -- status and progress ---------------------------------------------------------------
    def _set_status(self, status: str) -> None:
        if status == self.status:
            return
        self.status = status
        self.store.set_meta(status=status, errors=self.errors)
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

    def progress(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for trial in self.trials.values():
            counts[trial.status] = counts.get(trial.status, 0) + 1
        finished = sum(counts.get(s, 0) for s in FINISHED_TRIAL_STATES)
        end = self.end_time if self.status in ENDED_STATES else None
        if self.config.multi_phase:
            # maxTrialNumber counts parameter sets here: a set is done once its final result
            # is in or its trial has ended.
            done = sum(len(t.records) if t.status in FINISHED_TRIAL_STATES else len(t.finals)
                       for t in self.trials.values())
        else:
            done = finished
        return {
            "version": self.version,
            "status": self.status,
            "errors": self.errors,
            "limitUnit": "parameter sets" if self.config.multi_phase else "trials",
            "limitDone": done,
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


def _optimize_mode(algo_config: Any, tuner: Any) -> str:
    """Which direction is 'better' for the best-so-far figure shown to users."""
    mode = (getattr(algo_config, "class_args", None) or {}).get("optimize_mode") if algo_config else None
    mode = mode or getattr(tuner, "optimize_mode", None)
    mode = getattr(mode, "value", mode)
    return "minimize" if str(mode).lower() == "minimize" else "maximize"
