"""The manager's behaviour in seconds: the real ExperimentManager and a real Store on a temp dir.

No subprocess and no HTTP: trials run in-process on :class:`FakeService`, a training service
whose "trial" is a coroutine that does what ``nni.get_next_parameter()`` /
``nni.report_*_result()`` do through the REST handlers (authenticate with the trial's token,
then ``next_parameter`` / ``report_metric``) and then exits with a code. The tuner and
assessor are small real algorithms on the manager's algorithm threads. What is asserted is
what users see: stored trial rows and statuses, attempts, the experiment status and
progress, what the tuner was told.

The end-to-end suites (test_local_experiment.py, test_multi_phase.py, test_retry.py, ...)
cover the same rules through real processes and HTTP; these pin the manager's logic fast.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from nni.assessor import AssessResult, Assessor
from nni.errors import NoMoreTrialError
from nni.experiment.config import CustomAlgorithmConfig, ExperimentConfig
from nni.manager.manager import ExperimentManager
from nni.multi_phase import MultiPhaseTuner
from nni.training_service import InterruptedTrial, TrainingService, TrialEnded, TrialSpec
from nni.tuner import Tuner

#: Generous: the machine may be loaded (CI); a passing test takes a fraction of a second.
WAIT = 30.0


# -- algorithms --------------------------------------------------------------------------------
class CountingTuner(Tuner):
    """Gives ``{"x": <parameter id>}``; ``limit`` sets in all, then NoMoreTrialError. Records calls."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.given = 0
        self.results: list[tuple[int, Any]] = []
        self.imported: list[dict[str, Any]] = []
        self.ended: list[tuple[int, bool]] = []
        self.lock = threading.Lock()

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            if self.limit is not None and self.given >= self.limit:
                raise NoMoreTrialError("exhausted")
            self.given += 1
        return {"x": parameter_id}

    def receive_trial_result(self, parameter_id: int, parameters: dict, value: Any, **kwargs: Any) -> None:
        self.results.append((parameter_id, value))

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        self.ended.append((parameter_id, success))

    def update_search_space(self, search_space: dict) -> None:
        self.space = search_space

    def import_data(self, data: list[dict[str, Any]]) -> None:
        self.imported.extend(data)


class PhaseTuner(MultiPhaseTuner):
    """Multi-phase: ``{"trial": <job id>, "n": <phase of that job>}``; remembers the job of each call."""

    def __init__(self) -> None:
        self.phases: dict[str, int] = {}
        self.results: list[tuple[int, Any, str | None]] = []
        self.ended: list[tuple[str, bool]] = []

    def generate_parameters(self, parameter_id: int, trial_job_id: str | None = None) -> dict[str, Any]:
        n = self.phases.get(trial_job_id, 0)
        self.phases[trial_job_id] = n + 1
        return {"trial": trial_job_id, "n": n}

    def receive_trial_result(self, parameter_id: int, parameters: dict, value: Any,
                             trial_job_id: str | None = None) -> None:
        self.results.append((parameter_id, value, trial_job_id))

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        self.ended.append((trial_job_id, success))

    def update_search_space(self, search_space: dict) -> None:
        pass


class ThresholdAssessor(Assessor):
    """Bad as soon as an intermediate result is below ``threshold``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.ended: list[tuple[str, bool]] = []

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        return AssessResult.Bad if trial_history[-1] < self.threshold else AssessResult.Good

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        self.ended.append((trial_job_id, success))


# -- the in-process training service ----------------------------------------------------------------
class FakeTrial:
    """One attempt of a trial, talking to the manager as the trial API does over HTTP."""

    def __init__(self, manager: ExperimentManager, spec: TrialSpec) -> None:
        self.manager = manager
        self.spec = spec
        self.token = spec.env["NNI_TRIAL_TOKEN"]
        self.parameter_id: int | None = None
        self.sequence = 0

    def _trial(self) -> Any:
        trial = self.manager.authenticate(self.spec.trial_id, self.token)
        assert trial is not None, "the trial's token was refused"
        return trial

    async def parameters(self, index: int = 0) -> dict[str, Any] | None:
        record = await self.manager.next_parameter(self._trial(), index)
        if record is not None:
            self.parameter_id = record["parameter_id"]
            return record["parameters"]
        return None

    async def report(self, value: Any, final: bool = False) -> None:
        await self.manager.report_metric(self._trial(), self.parameter_id, "FINAL" if final else "PERIODICAL",
                                         self.sequence, json.dumps(value))
        self.sequence += 1


Behaviour = Callable[[FakeTrial], Awaitable[int]]


async def report_x(trial: FakeTrial) -> int:
    """The plain trial: its parameter ``x`` is its final result."""
    params = await trial.parameters()
    await trial.report(float(params["x"]), final=True)
    return 0


async def hang(trial: FakeTrial) -> int:
    """A trial that takes its parameters and runs until it is killed."""
    await trial.parameters()
    await asyncio.sleep(3600)
    return 0


class FakeService(TrainingService):
    """Runs each submitted trial as a coroutine on the manager's loop; ``kill`` cancels it."""

    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__()
        self.behaviour = behaviour
        self.manager: ExperimentManager | None = None
        self.specs: list[TrialSpec] = []
        self.running: dict[str, asyncio.Task] = {}
        self.most_at_once = 0
        self.cleaned: list[str] = []
        self.cleaned_processes: list[str | None] = []   # what each cleaned trial's start reported
        self.crashed = False

    async def cleanup_interrupted(self, trials: list[InterruptedTrial]) -> None:
        self.cleaned += [trial.trial_id for trial in trials]
        self.cleaned_processes += [trial.process for trial in trials]

    async def submit(self, spec: TrialSpec) -> None:
        self.specs.append(spec)
        self.running[spec.trial_id] = asyncio.ensure_future(self._run(spec))
        self.most_at_once = max(self.most_at_once, len(self.running))

    async def _run(self, spec: TrialSpec) -> None:
        assert self.manager is not None and self.on_trial_start and self.on_trial_end
        await self.on_trial_start(spec.trial_id, process=f"fake process of {spec.trial_id}")
        work = asyncio.ensure_future(self.behaviour(FakeTrial(self.manager, spec)))
        self.running[spec.trial_id + "/work"] = work
        try:
            code, message = await work, ""
        except asyncio.CancelledError:
            if self.crashed:
                return
            code, message = -9, "killed by signal 9"
        except Lost as exc:
            self._forget(spec.trial_id)
            await self.on_trial_end(TrialEnded(spec.trial_id, None, str(exc), lost=True, attempt=spec.attempt))
            return
        self._forget(spec.trial_id)
        message = message or (f"exit code {code}" if code else "")
        await self.on_trial_end(TrialEnded(spec.trial_id, code, message, attempt=spec.attempt))

    def _forget(self, trial_id: str) -> None:
        self.running.pop(trial_id, None)
        self.running.pop(trial_id + "/work", None)

    async def kill(self, trial_id: str) -> None:
        work = self.running.get(trial_id + "/work")
        if work is not None:
            work.cancel()

    async def stop(self) -> None:
        for key, task in list(self.running.items()):
            if key.endswith("/work"):
                task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    def crash(self) -> None:
        """The machine goes away with the manager: trials vanish without an end report."""
        self.crashed = True
        for task in self.running.values():
            task.cancel()
        self.running.clear()


class Lost(Exception):
    """Raised by a behaviour: its machine was lost (the service reports ``lost=True``)."""


# -- harness ----------------------------------------------------------------------------------
def make_config(tmp_path: Path, **fields: Any) -> Any:
    config = ExperimentConfig("local")
    config.trial_command = "unused: trials run in-process"
    config.trial_code_directory = str(tmp_path)
    config.search_space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    config.trial_concurrency = 2
    config.max_trial_number = 4
    config.experiment_working_directory = str(tmp_path)
    config.tuner = CustomAlgorithmConfig(class_name="tests.CountingTuner")
    for key, value in fields.items():
        setattr(config, key, value)
    return config.canonical_copy()


class Run:
    """One manager on ``tmp_path/exp`` with a fake service; use inside a coroutine."""

    def __init__(self, tmp_path: Path, behaviour: Behaviour = report_x, *, tuner: Any = None,
                 assessor: Any = None, resume: bool = False, **fields: Any) -> None:
        self.tuner = tuner if tuner is not None else CountingTuner()
        self.service = FakeService(behaviour)
        self.manager = ExperimentManager(make_config(tmp_path, **fields), "unit1", tmp_path / "exp",
                                         tuner=self.tuner, assessor=assessor, port=1, resume=resume,
                                         training_service=self.service)
        self.service.manager = self.manager

    async def __aenter__(self) -> "Run":
        await self.manager.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.manager.stop()
        self.manager.store.close()

    async def until(self, predicate: Callable[[], Any], what: str) -> Any:
        """Wait (on the manager's change signal) until ``predicate()`` is truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not (value := predicate()):
            assert loop.time() < deadline, f"timed out waiting for {what}; status {self.manager.status}"
            await self.manager.wait_for_change(self.manager.version, 0.05)
        return value

    async def until_done(self) -> None:
        await self.until(lambda: self.manager.status in ("DONE", "ERROR"), "the experiment to end")

    def rows(self) -> list[dict[str, Any]]:
        return self.manager.store.trials()

    def statuses(self) -> list[str]:
        return [row["status"] for row in self.rows()]


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 4 * WAIT))


# -- scheduling, limits ------------------------------------------------------------------------------
def test_runs_max_trial_number_trials_and_gives_every_result_to_the_tuner(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, max_trial_number=5, trial_concurrency=2) as r:
            await r.until_done()
            assert r.statuses() == ["SUCCEEDED"] * 5
            await r.until(lambda: len(r.tuner.ended) == 5, "the tuner to hear of every trial")
            assert sorted(pid for pid, _ in r.tuner.results) == [0, 1, 2, 3, 4]
            assert all(value == float(pid) for pid, value in r.tuner.results)   # the trial's own parameters
            assert sorted(r.tuner.ended) == [(i, True) for i in range(5)]
            progress = r.manager.progress()
            assert (progress["trialsDone"], progress["bestMetric"], progress["limitDone"]) == (5, 4.0, 5)
            assert [row["sequence_id"] for row in r.rows()] == [0, 1, 2, 3, 4]
    run(scenario())


def test_never_runs_more_trials_at_once_than_trial_concurrency(tmp_path):
    async def slow(trial: FakeTrial) -> int:
        await asyncio.sleep(0.02)
        return await report_x(trial)

    async def scenario() -> None:
        async with Run(tmp_path, slow, max_trial_number=9, trial_concurrency=3) as r:
            await r.until_done()
            assert r.service.most_at_once == 3
            assert r.statuses() == ["SUCCEEDED"] * 9
    run(scenario())


def test_minimize_mode_keeps_the_lowest_result_as_best(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, tuner=CountingTuner(), max_trial_number=3) as r:
            r.manager.optimize_mode = "minimize"
            await r.until_done()
            assert r.manager.progress()["bestMetric"] == 0.0
    run(scenario())


def test_an_exhausted_tuner_ends_the_experiment_tuner_no_more_trial_then_done(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, tuner=CountingTuner(limit=3), max_trial_number=10) as r:
            await r.until_done()
            assert r.statuses() == ["SUCCEEDED"] * 3
            kinds = [e["kind"] for e in r.manager.store.events(limit=100)]
            assert "TUNER_NO_MORE_TRIAL" in kinds
    run(scenario())


class SlowRungTuner(Tuner):
    """Two sets a rung (``x`` = the rung), the next rung once both results are in; two rungs.

    Its first "no more for now" takes until ``release`` is set: the news it waits for (the
    rung's last result, the last trial's end) reach the manager while the call runs.
    """

    def __init__(self) -> None:
        self.results: list[Any] = []
        self.given = 0
        self.blocked = threading.Event()
        self.release = threading.Event()

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
        rung = len(self.results) // 2
        if rung == 2 or self.given == 2 * (rung + 1):
            if not self.blocked.is_set():
                self.blocked.set()
                self.release.wait(WAIT)
            raise NoMoreTrialError("waiting for the rung's results")
        self.given += 1
        return {"x": rung}

    def receive_trial_result(self, parameter_id: int, parameters: dict, value: Any, **kwargs: Any) -> None:
        self.results.append(value)

    def update_search_space(self, search_space: dict) -> None:
        pass


def test_a_no_more_that_answered_older_news_is_asked_again_not_taken_as_the_end(tmp_path):
    # Hyperband-like: the tuner says "no more" while the rung's last trial reports and ends;
    # taking that answer as final ended the experiment TUNER_NO_MORE_TRIAL after one rung.
    tuner = SlowRungTuner()
    second_may_report = asyncio.Event()
    started = 0

    async def second_waits(trial: FakeTrial) -> int:
        nonlocal started
        started += 1
        if started == 2:
            await second_may_report.wait()
        return await report_x(trial)

    async def scenario() -> None:
        async with Run(tmp_path, second_waits, tuner=tuner, max_trial_number=10) as r:
            await r.until(tuner.blocked.is_set, "the tuner's call after the first result")
            second_may_report.set()
            await r.until(lambda: r.statuses() == ["SUCCEEDED"] * 2, "the rung's last trial to end")
            tuner.release.set()
            await r.until_done()
            assert r.manager.status == "DONE"
            assert sorted(p["parameters"]["x"] for p in r.manager.store.parameters()) == [0, 0, 1, 1]
            assert r.statuses() == ["SUCCEEDED"] * 4
    run(scenario())


def test_raising_max_trial_number_continues_a_done_experiment(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, max_trial_number=2) as r:
            await r.until_done()
            with pytest.raises(ValueError, match="cannot be lowered below 2"):
                await r.manager.update(max_trial_number=1)
            await r.manager.update(max_trial_number=4)
            assert r.manager.status == "RUNNING"
            await r.until(lambda: len(r.rows()) == 4 and r.manager.status == "DONE", "two more trials")
            assert r.statuses() == ["SUCCEEDED"] * 4
    run(scenario())


def test_max_trial_duration_fails_a_trial_that_runs_too_long(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, hang, max_trial_number=1, max_trial_duration=0.2) as r:
            await r.until_done()
            [row] = r.rows()
            assert row["status"] == "FAILED"
            assert "exceeded maxTrialDuration (0.2 s)" in row["message"]
    run(scenario())


def test_max_experiment_duration_cancels_running_trials_and_ends_done(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, hang, max_trial_number=10, max_experiment_duration=0.3) as r:
            await r.until_done()
            assert r.manager.status == "DONE"
            assert r.statuses() == ["USER_CANCELED"] * 2
            assert all("maxExperimentDuration (0.3 s) reached" in row["message"] for row in r.rows())
            assert not r.service.running
    run(scenario())


def test_stop_cancels_active_trials_and_shuts_the_algorithms_down(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, hang, max_trial_number=10) as r:
            await r.until(lambda: r.statuses() == ["RUNNING", "RUNNING"], "two running trials")
            await r.manager.stop()
            assert r.manager.status == "STOPPED"
            assert r.statuses() == ["USER_CANCELED"] * 2
            assert not r.service.running
    run(scenario())


def test_a_user_kill_is_recorded_user_canceled(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, hang, max_trial_number=1) as r:
            await r.until(lambda: r.statuses() == ["RUNNING"], "the trial to run")
            trial_id = r.rows()[0]["trial_id"]
            assert await r.manager.kill_trial(trial_id)
            await r.until_done()
            assert r.statuses() == ["USER_CANCELED"]
            assert not await r.manager.kill_trial(trial_id)   # not active any more
    run(scenario())


# -- failures and retries ----------------------------------------------------------------------------
def test_the_first_trials_all_failing_end_the_experiment_in_error(tmp_path):
    async def fails(trial: FakeTrial) -> int:
        await trial.parameters()
        return 3

    async def scenario() -> None:
        async with Run(tmp_path, fails, max_trial_number=10, max_failed_trials_at_start=3) as r:
            await r.until_done()
            assert r.manager.status == "ERROR"
            assert "the first 3 trials all failed" in r.manager.errors[0]
            assert "last: exit code 3" in r.manager.errors[0]
            assert r.statuses()[:3] == ["FAILED"] * 3
    run(scenario())


def test_failures_after_a_success_only_warn(tmp_path):
    async def first_succeeds(trial: FakeTrial) -> int:
        params = await trial.parameters()
        if params["x"] == 0:
            await trial.report(1.0, final=True)
            return 0
        return 1

    async def scenario() -> None:
        async with Run(tmp_path, first_succeeds, max_trial_number=6, trial_concurrency=1,
                       max_failed_trials_at_start=2) as r:
            await r.until_done()
            assert r.manager.status == "DONE"
            assert r.statuses() == ["SUCCEEDED"] + ["FAILED"] * 5
    run(scenario())


def test_every_trial_failing_is_a_warning_of_a_done_experiment(tmp_path):
    async def fails(trial: FakeTrial) -> int:
        return 127

    async def scenario() -> None:
        async with Run(tmp_path, fails, max_trial_number=2, max_failed_trials_at_start=0) as r:
            await r.until_done()
            assert r.manager.status == "DONE"
            assert r.manager.warnings() == ["all 2 trials failed; last: exit code 127"]
    run(scenario())


def test_retry_failed_trials_runs_a_failed_attempt_again_with_a_new_token(tmp_path):
    seen: dict[str, list[tuple[int, str]]] = {}

    async def fails_once(trial: FakeTrial) -> int:
        seen.setdefault(trial.spec.trial_id, []).append((trial.spec.attempt, trial.token))
        await trial.parameters()
        if trial.spec.attempt == 1:
            return 1
        await trial.report(2.0, final=True)
        return 0

    async def scenario() -> None:
        async with Run(tmp_path, fails_once, max_trial_number=1, retry_failed_trials=True) as r:
            await r.until_done()
            [row] = r.rows()
            assert row["status"] == "SUCCEEDED"
            [(first, old), (second, new)] = seen[row["trial_id"]]
            assert (first, second) == (1, 2) and old != new
            assert r.manager.authenticate(row["trial_id"], old) is None
            assert r.manager.fenced(row["trial_id"], old)   # a late report of attempt 1 gets 409
            attempts = r.manager.store.attempts()
            assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "FAILED"), (2, "SUCCEEDED")]
            await r.until(lambda: r.tuner.ended, "the tuner to hear of the trial")
            assert r.tuner.ended == [(0, True)]   # the tuner hears of the trial once
    run(scenario())


def test_a_lost_trial_runs_again_until_max_trial_retries_then_fails(tmp_path):
    async def always_lost(trial: FakeTrial) -> int:
        await trial.parameters()
        raise Lost("node died")

    async def scenario() -> None:
        async with Run(tmp_path, always_lost, max_trial_number=1, max_trial_retries=2) as r:
            await r.until_done()
            [row] = r.rows()
            assert row["status"] == "FAILED"
            assert "attempt 3, no retries left: maxTrialRetries is 2" in row["message"]
            assert [a["status"] for a in r.manager.store.attempts()] == ["LOST", "LOST", "FAILED"]
    run(scenario())


def test_a_lost_trial_with_its_final_result_counts_as_succeeded(tmp_path):
    async def lost_after_result(trial: FakeTrial) -> int:
        await report_x(trial)
        raise Lost("connection lost")

    async def scenario() -> None:
        async with Run(tmp_path, lost_after_result, max_trial_number=1) as r:
            await r.until_done()
            [row] = r.rows()
            assert row["status"] == "SUCCEEDED" and "(after its final result)" in row["message"]
    run(scenario())


def test_user_rerun_of_a_failed_trial_is_a_new_attempt_of_the_same_trial(tmp_path):
    async def fails_first(trial: FakeTrial) -> int:
        await trial.parameters()
        if trial.spec.attempt == 1:
            return 1
        await trial.report(5.0, final=True)
        return 0

    async def scenario() -> None:
        async with Run(tmp_path, fails_first, max_trial_number=1, max_failed_trials_at_start=0) as r:
            await r.until_done()
            trial_id = r.rows()[0]["trial_id"]
            answer = await r.manager.rerun_trials([trial_id], None, extend_budget=True)
            assert answer == {"rerun": [trial_id], "skipped": []}
            await r.until(lambda: r.statuses() == ["SUCCEEDED"] and r.manager.status == "DONE", "the re-run")
            await r.until(lambda: r.tuner.imported, "the re-run's result to reach the tuner")
            assert r.tuner.imported == [{"parameter": {"x": 0}, "value": 5.0}]   # told as imported data
            again = await r.manager.rerun_trials([trial_id], None)
            assert again["skipped"] == [{"trialJobId": trial_id, "reason": "it is SUCCEEDED"}]
    run(scenario())


# -- the trial channel ------------------------------------------------------------------------------
def test_parameters_are_bound_before_the_trial_asks_and_a_retry_gets_the_same_record(tmp_path):
    async def asks_twice(trial: FakeTrial) -> int:
        first = await trial.parameters()
        again = await trial.parameters()
        later = await trial.parameters(3)   # single-phase: every index gets the one record
        assert first == again == later == {"x": trial.spec.sequence_id}
        return await report_x(trial)

    async def scenario() -> None:
        async with Run(tmp_path, asks_twice, max_trial_number=2, trial_concurrency=1) as r:
            await r.until_done()
            assert r.statuses() == ["SUCCEEDED"] * 2
    run(scenario())


def test_a_second_different_final_is_refused_and_a_retried_one_is_stored_once(tmp_path):
    from nni.manager.manager import DuplicateFinal

    async def reports_twice(trial: FakeTrial) -> int:
        await trial.parameters()
        await trial.report(1.0, final=True)
        trial.sequence -= 1
        await trial.report(1.0, final=True)          # the same request again: accepted, stored once
        with pytest.raises(DuplicateFinal):
            await trial.report(9.0, final=True)
        return 0

    async def scenario() -> None:
        async with Run(tmp_path, reports_twice, max_trial_number=1) as r:
            await r.until_done()
            assert r.statuses() == ["SUCCEEDED"]
            await r.until(lambda: r.tuner.ended, "the tuner to hear of the trial")
            assert r.tuner.results == [(0, 1.0)]
            assert len(r.manager.store.metrics()) == 1
    run(scenario())


def test_nan_final_is_stored_but_not_given_to_a_builtin_rule_tuner(tmp_path):
    async def nan(trial: FakeTrial) -> int:
        await trial.parameters()
        await trial.report(float("nan"), final=True)
        return 0

    async def scenario() -> None:
        async with Run(tmp_path, nan, max_trial_number=1) as r:
            await r.until_done()
            # A custom tuner gets any JSON value (NNI); the best result ignores NaN.
            await r.until(lambda: r.tuner.ended, "the tuner to hear of the trial")
            assert len(r.tuner.results) == 1 and r.manager.progress()["bestMetric"] is None
    run(scenario())


def test_a_lapsed_lease_fences_the_attempt_and_runs_the_trial_again(tmp_path):
    async def renews_once_then_goes_silent(trial: FakeTrial) -> int:
        await trial.parameters()
        if trial.spec.attempt == 1:
            trial.manager.renew_lease(trial._trial(), "node-a")
            await asyncio.sleep(3600)    # the machine went silent: no more renewals
        await trial.report(7.0, final=True)
        return 0

    async def scenario() -> None:
        async with Run(tmp_path, renews_once_then_goes_silent, max_trial_number=1, trial_lease_timeout=0.2) as r:
            await r.until_done()
            [row] = r.rows()
            assert row["status"] == "SUCCEEDED"
            attempts = r.manager.store.attempts()
            assert [(a["attempt"], a["status"], a["machine"]) for a in attempts] == [
                (1, "LOST", "node-a"), (2, "SUCCEEDED", None)]
            assert "its lease lapsed: no renewal for 0.2 s (attempt 1 on node-a)" in attempts[0]["reason"]
            first_token = r.service.specs[0].env["NNI_TRIAL_TOKEN"]
            assert r.manager.fenced(row["trial_id"], first_token)
    run(scenario())


def test_imported_data_reaches_the_tuner_and_is_kept(tmp_path):
    async def scenario() -> None:
        async with Run(tmp_path, max_trial_number=1) as r:
            await r.until_done()
            with pytest.raises(ValueError, match="'parameter' and 'value'"):
                await r.manager.import_data([{"parameter": {"x": 1}}])
            assert await r.manager.import_data([{"parameter": {"x": 0.5}, "value": 3.0}]) == 1
            assert r.tuner.imported == [{"parameter": {"x": 0.5}, "value": 3.0}]
            assert r.manager.store.imported() == [{"parameter": {"x": 0.5}, "value": 3.0}]
    run(scenario())


# -- assessor ----------------------------------------------------------------------------------------
def test_the_assessor_stops_a_bad_trial_early_and_the_tuner_gets_its_last_result(tmp_path):
    async def curve(trial: FakeTrial) -> int:
        params = await trial.parameters()
        for step in range(50):
            await trial.report(params["x"] - 0.5 + step * 0.01)   # trial 0 starts below 0
            await asyncio.sleep(0.01)
        await trial.report(params["x"], final=True)
        return 0

    async def scenario() -> None:
        assessor = ThresholdAssessor(0.0)
        async with Run(tmp_path, curve, assessor=assessor, max_trial_number=2) as r:
            await r.until_done()
            by_seq = {row["sequence_id"]: row for row in r.rows()}
            assert by_seq[0]["status"] == "EARLY_STOPPED"
            assert by_seq[1]["status"] == "SUCCEEDED"
            await r.until(lambda: len(r.tuner.ended) == 2 and len(assessor.ended) == 2, "both trial ends")
            # the stopped trial's last intermediate result, once (later verdicts on it do not act again)
            assert [(pid, value) for pid, value in r.tuner.results if pid == 0] == [(0, -0.5)]
            assert sorted(assessor.ended) == sorted([(by_seq[0]["trial_id"], False),
                                                      (by_seq[1]["trial_id"], True)])
    run(scenario())


# -- multi-phase ---------------------------------------------------------------------------------------
def test_multi_phase_trials_get_a_new_parameter_set_per_phase(tmp_path):
    async def three_phases(trial: FakeTrial) -> int:
        for index in range(3):
            params = await trial.parameters(index)
            assert params == {"trial": trial.spec.trial_id, "n": index}
            await trial.report(float(index), final=True)
        return 0

    async def scenario() -> None:
        tuner = PhaseTuner()
        async with Run(tmp_path, three_phases, tuner=tuner, multi_phase=True, max_trial_number=2) as r:
            await r.until_done()
            assert r.statuses() == ["SUCCEEDED"] * 2
            assert len(r.manager.store.parameters()) == 6
            assert r.manager.progress()["limitDone"] == 2     # maxTrialNumber counts trial jobs (NNI)
            await r.until(lambda: len(tuner.ended) == 2, "the tuner to hear of both jobs")
            assert {job for _, _, job in tuner.results} == {row["trial_id"] for row in r.rows()}
            assert sorted(tuner.ended) == sorted((row["trial_id"], True) for row in r.rows())
            with pytest.raises(Exception, match="not supported with multiPhase"):
                await r.manager.rerun_trials(None, "FAILED")
    run(scenario())


def test_multi_phase_phase_asked_out_of_order_is_refused(tmp_path):
    async def skips(trial: FakeTrial) -> int:
        await trial.parameters(0)
        with pytest.raises(ValueError, match="asked for phase 2 before phase 1"):
            await trial.parameters(2)
        return 0

    async def scenario() -> None:
        async with Run(tmp_path, skips, tuner=PhaseTuner(), multi_phase=True, max_trial_number=1) as r:
            await r.until_done()
            assert r.statuses() == ["SUCCEEDED"]
    run(scenario())


# -- resume ---------------------------------------------------------------------------------------------
def test_resume_gives_stored_results_to_the_tuner_and_reruns_interrupted_trials(tmp_path):
    async def second_hangs(trial: FakeTrial) -> int:
        params = await trial.parameters()
        if params["x"] == 1:
            await asyncio.sleep(3600)
        await trial.report(float(params["x"]) + 10, final=True)
        return 0

    last_version = []

    async def crashed_run() -> None:
        r = Run(tmp_path, second_hangs, max_trial_number=3, trial_concurrency=2)
        await r.manager.start()
        await r.until(lambda: sorted(r.statuses()) == ["RUNNING", "SUCCEEDED", "SUCCEEDED"], "the hang")
        last_version.append(r.manager.progress()["version"])
        # The manager dies: nothing is told; the store keeps what was committed.
        r.service.crash()
        r.manager.store.close()

    async def resumed_run() -> None:
        async with Run(tmp_path, report_x, resume=True, max_trial_number=3, trial_concurrency=2) as r:
            await r.until_done()
            rows = r.rows()
            await r.until(lambda: len(r.tuner.imported) == 3, "the tuner to take the results in")
            assert [row["status"] for row in rows] == ["SUCCEEDED", "SYS_CANCELED", "SUCCEEDED", "SUCCEEDED"]
            assert r.service.cleaned == [rows[1]["trial_id"]]
            # what the crashed run's service reported at the start, kept in the store for the clean-up
            assert r.service.cleaned_processes == [f"fake process of {rows[1]['trial_id']}"]
            assert sorted(d["value"] for d in r.tuner.imported) == [1.0, 10.0, 12.0]   # the re-run too
            params = {p["trial_id"]: (p["parameters"], p["source"]) for p in r.manager.store.parameters()}
            assert params[rows[3]["trial_id"]] == ({"x": 1}, "resumed")    # the interrupted set again
            assert rows[3]["sequence_id"] == 3
            assert r.manager.progress()["limitDone"] == 4
            assert r.manager.progress()["bestMetric"] == 12.0
            # A client still holding the old manager's version (a web page, `experiment watch`)
            # is answered at once, not held: the resumed manager's versions are above it.
            assert r.manager.progress()["version"] > last_version[0]
    run(crashed_run())
    run(resumed_run())


# -- what the algorithms get, and what a stopped manager leaves ---------------------------------------
CHECKPOINT_TUNER = '''
from nni.recoverable import checkpoint_directory
from nni.tuner import Tuner

class CheckpointTuner(Tuner):
    """Records the checkpoint directory it sees in its constructor and on its thread."""
    seen = []

    def __init__(self):
        self.seen.append(("init", checkpoint_directory()))

    def update_search_space(self, search_space):
        self.seen.append(("space", self.get_checkpoint_path()))

    def generate_parameters(self, parameter_id, **kwargs):
        return {"x": parameter_id}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        pass
'''


def test_each_experiment_gives_its_algorithms_its_own_checkpoint_directory_without_os_environ(tmp_path,
                                                                                             monkeypatch):
    monkeypatch.delenv("NNI_CHECKPOINT_DIRECTORY", raising=False)
    code = tmp_path / "algo"
    code.mkdir()
    (code / "ckpt_tuner_unit.py").write_text(CHECKPOINT_TUNER)
    configured = CustomAlgorithmConfig(class_name="ckpt_tuner_unit.CheckpointTuner", code_directory=str(code))

    async def scenario() -> None:
        # Two experiments in one process, as two Experiment.start() calls would run them.
        one = Run(tmp_path / "one", max_trial_number=1)
        two = Run(tmp_path / "two", max_trial_number=1)
        for r in (one, two):
            r.manager.config.tuner = configured
            r.manager._tuner_obj = None     # build the configured class, as nnictl create does
        async with one, two:
            await one.until_done()
            await two.until_done()
            import os
            assert "NNI_CHECKPOINT_DIRECTORY" not in os.environ   # the user's process is left alone
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    run(scenario())
    import ckpt_tuner_unit
    seen = ckpt_tuner_unit.CheckpointTuner.seen
    expected = {str(tmp_path / name / "exp" / "checkpoint") for name in ("one", "two")}
    assert {path for kind, path in seen if kind == "init"} == expected
    assert {path for kind, path in seen if kind == "space"} == expected
    assert all((tmp_path / name / "exp" / "checkpoint").is_dir() for name in ("one", "two"))


def test_a_stopped_manager_leaves_no_task_or_timer_running(tmp_path):
    async def slow_curve(trial: FakeTrial) -> int:
        await trial.parameters()
        for step in range(1000):
            await trial.report(float(step))
            await asyncio.sleep(0.01)
        return 0

    async def scenario() -> None:
        before = asyncio.all_tasks()   # this test's own
        async with Run(tmp_path, slow_curve, assessor=ThresholdAssessor(-1.0), max_trial_number=10,
                       max_trial_duration=3600, max_experiment_duration=3600) as r:
            await r.until(lambda: len(r.manager.store.metrics()) >= 4, "a few intermediate results")
            await r.manager.stop()
            assert r.statuses() == ["USER_CANCELED"] * 2
            left = [t for t in asyncio.all_tasks() - before if not t.done()]
            assert left == []
    run(scenario())


def test_background_tasks_are_held_their_errors_reported_and_all_ended_on_close():
    from nni.manager._tasks import BackgroundTasks

    async def scenario() -> None:
        errors: list[tuple[str, BaseException]] = []
        tasks = BackgroundTasks(on_error=lambda what, exc: errors.append((what, exc)))
        ran: list[str] = []

        async def boom() -> None:
            raise RuntimeError("bug")

        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                ran.append("cleaned up")

        tasks.spawn(boom(), "boom")
        tasks.spawn(forever(), "forever")
        fired = tasks.later(0.0, lambda: _append(ran, "timer"), "timer")
        called_off = tasks.later(0.0, lambda: _append(ran, "canceled timer"), "canceled timer")
        called_off.cancel()
        await asyncio.sleep(0.05)
        assert [(what, str(exc)) for what, exc in errors] == [("nni-manager: boom", "bug")]
        assert ran == ["timer"] and fired is not None
        assert len(tasks) == 1           # forever() is held while it runs
        late = tasks.later(3600, lambda: _append(ran, "late"), "late")
        await tasks.close()
        assert ran == ["timer", "cleaned up"] and len(tasks) == 0
        assert tasks.spawn(forever(), "after close") is None
        late.cancel()
    run(scenario())


async def _append(items: list[str], item: str) -> None:
    items.append(item)
