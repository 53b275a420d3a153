"""The trial channel (private): what a running trial asks of the manager, and what follows.

Behind ``/api/v1/trial/{id}/...``: the token check and fencing of earlier attempts, leases of
remote and Ray attempts, parameter records (multi-phase: a new set per phase, on demand),
metrics (stored first, then the final result to the tuner and best result, intermediate
ones to the assessor), and the assessor's early stop. Scheduling is not here: the channel
reaches the manager only through :class:`ChannelHost`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Hashable, Protocol

from .._constraints import Constraint
from .._objectives import Objective
from ..errors import BadRequest, Conflict
from ..records import SOURCE_ALGORITHM, ParameterRecord
from . import _objectives
from ._algorithms import Algorithms
from ._tasks import BackgroundTasks
from ._trials import TrialBook, TrialState, finite_metric
from .serial_runner import AlgorithmError
from .store import Store, insert_metric

if TYPE_CHECKING:
    from ..experiment.config import ExperimentConfig

_logger = logging.getLogger("nni.manager")

# The kill status of an attempt the manager declared lost (its lease lapsed): never recorded as
# a trial state; the trial runs again or, out of retries, ends FAILED.
LOST = "LOST"

# The variable that gives a trial its first parameter record (nni-ng), so that its first
# get_next_parameter() needs no round trip to the manager (about 1 ms of CPU a trial, on both
# sides). Longer records are asked for as before: a remote trial's whole environment travels
# in one SSH command line (at most 128 KiB).
FIRST_PARAMETER_VAR = "NNI_TRIAL_PARAMETER"
_FIRST_PARAMETER_MAX = 4096


def first_parameter_env(trial: TrialState) -> dict[str, str]:
    """``{FIRST_PARAMETER_VAR: record 0 as JSON}`` for the trial's environment, or {} when it is long.

    Record 0 is what the parameter route answers for index 0 (it is bound before the trial
    starts and never changes), so the trial reading it here sees what it would have been sent.
    """
    if not trial.records:
        return {}
    text = json.dumps(trial.records[0])
    return {FIRST_PARAMETER_VAR: text} if len(text) <= _FIRST_PARAMETER_MAX else {}


class DuplicateFinal(Conflict):
    """A second, different final result for a parameter set that already has one (HTTP 409)."""


class Replies:
    """The first answer to each trial request, so that a retry gets it instead of a second effect.

    Keyed by (trial, attempt, request id); the request id is what the trial's channel sends
    (``Nni-Request``: its attempt, pid and a per-process sequence number). A retry that comes
    while the first request is still being answered waits for that answer; the work itself
    runs in its own task, so a client that hung up (its socket timed out) does not cancel it.
    Answers are kept for the most recent ``max_answers`` requests (a retry comes within
    seconds: the channel's back-off), at most ``max_bytes`` of them; an answer that failed
    (our bug, answered 500) is not kept, so a retry runs again.
    """

    def __init__(self, max_answers: int = 16384, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_answers = max_answers
        self.max_bytes = max_bytes
        self._answers: OrderedDict[Hashable, tuple[int, tuple[int, Any], int]] = OrderedDict()
        self._running: dict[Hashable, tuple[int, asyncio.Task]] = {}
        self._bytes = 0

    async def once(self, key: Hashable, body_hash: int,
                   answer: Callable[[], Awaitable[tuple[int, Any]]]) -> tuple[int, Any]:
        """``answer()``'s result, or the first one given for ``key`` to the same body.

        The same key with another body is not a retry (a client bug): it is answered afresh.
        """
        done = self._answers.get(key)
        if done is not None and done[0] == body_hash:
            return done[1]
        running = self._running.get(key)
        if running is not None and running[0] == body_hash:
            return await asyncio.shield(running[1])
        if done is not None or running is not None:
            return await answer()
        task = asyncio.ensure_future(answer())
        self._running[key] = (body_hash, task)
        task.add_done_callback(lambda t: self._settle(key, body_hash, t))
        return await asyncio.shield(task)

    def _settle(self, key: Hashable, body_hash: int, task: asyncio.Task) -> None:
        self._running.pop(key, None)
        # task.exception() also marks it retrieved: the requests awaiting it answer (and log) it
        if task.cancelled() or task.exception() is not None:
            return
        result = task.result()
        size = len(repr(result[1])) + 100
        self._answers[key] = (body_hash, result, size)
        self._bytes += size
        while self._answers and (len(self._answers) > self.max_answers or self._bytes > self.max_bytes):
            _, (_, _, dropped) = self._answers.popitem(last=False)
            self._bytes -= dropped


class ChannelHost(Protocol):
    """What the channel needs of the manager (``ExperimentManager`` is one)."""

    status: str
    config: ExperimentConfig
    tuner_exhausted: bool

    def record_event(self, kind: str, message: str = "", trial_id: str | None = None) -> None: ...

    async def notify(self) -> None: ...

    def fail(self, message: str) -> None: ...

    async def kill_trial(self, trial_id: str, status: str = ..., message: str = "") -> bool: ...

    async def generate(self, count: int, trial_id: str | None,
                       concurrent: bool = False) -> list[tuple[int, dict[str, Any]]]: ...

    def result_arrived(self) -> None: ...


class TrialRequests:
    """Answers trials: tokens, leases, parameters, metrics; the assessor's verdicts follow metrics."""

    def __init__(self, host: ChannelHost, book: TrialBook, store: Store, tasks: BackgroundTasks, *,
                 lease_timeout: float, objectives: list[Objective] | None,
                 constraints: list[Constraint] | None = None) -> None:
        self.host = host
        self.book = book
        self.store = store
        self.tasks = tasks
        self.lease_timeout = lease_timeout
        self.objectives = objectives
        self.constraints = constraints   # config `constraints` (docs/constraints.md); None: none
        self.algorithms: Algorithms | None = None   # set once the manager built them
        self.replies = Replies()
        # Multi-phase: the parameter set being generated for (trial, index); a retried request
        # for that index waits for it instead of generating a second set.
        self._phases: dict[tuple[str, int], asyncio.Task] = {}

    # -- tokens and fencing -------------------------------------------------------------------
    def authenticate(self, trial_id: str, token: str) -> TrialState | None:
        trial = self.book.get(trial_id)
        # Tokens are ASCII (token_urlsafe), and compare_digest raises on other str.
        if trial is None or not token.isascii() or not secrets.compare_digest(trial.token, token):
            return None
        return trial

    def fenced(self, trial_id: str, token: str) -> bool:
        """Whether ``token`` belonged to an earlier attempt of the trial (its reports are refused)."""
        trial = self.book.get(trial_id)
        return trial is not None and token.isascii() and \
            any(secrets.compare_digest(old, token) for old in trial.old_tokens)

    # -- leases (remote and Ray trials) --------------------------------------------------------
    def renew_lease(self, trial: TrialState, machine: str | None = None) -> float:
        """The current attempt is alive: extend its lease; returns the lease timeout in seconds.

        The first renewal takes the lease; from then on, ``trialLeaseTimeout`` seconds without
        a renewal declare the attempt lost.
        """
        if trial.status != "RUNNING":
            return self.lease_timeout
        loop = asyncio.get_running_loop()
        trial.lease_deadline = loop.time() + self.lease_timeout
        if machine and machine != trial.machine:
            trial.machine = machine
            self.store.update_attempt(trial.trial_id, trial.attempt, machine=machine)
        if trial.lease_timer is None:
            trial.lease_timer = self.tasks.at(trial.lease_deadline, lambda: self._check_lease(trial))
        return self.lease_timeout

    def _check_lease(self, trial: TrialState) -> None:
        # One timer per trial, moved forward lazily: a renewal only pushes the deadline.
        trial.lease_timer = None
        if trial.status != "RUNNING" or trial.lease_deadline is None:
            return
        if asyncio.get_running_loop().time() < trial.lease_deadline:
            trial.lease_timer = self.tasks.at(trial.lease_deadline, lambda: self._check_lease(trial))
            return
        self.tasks.spawn(self._lease_lapsed(trial), f"lease of trial {trial.trial_id}")

    async def _lease_lapsed(self, trial: TrialState) -> None:
        where = f" on {trial.machine}" if trial.machine else ""
        reason = f"its lease lapsed: no renewal for {self.lease_timeout:g} s (attempt {trial.attempt}{where})"
        trial.lease_deadline = None
        trial.fence()   # at once: a late report of this attempt is refused even before it is killed
        self.host.record_event("TRIAL_LEASE_LAPSED", reason, trial.trial_id)
        _logger.warning("trial %s: %s", trial.trial_id, reason)
        await self.host.kill_trial(trial.trial_id, LOST, reason)

    # -- parameters ------------------------------------------------------------------------------
    async def next_parameter(self, trial: TrialState, index: int) -> dict[str, Any] | None:
        """Parameter record ``index`` of a trial; None when a multi-phase trial gets no more.

        Asking again for an index already given returns the same record, so a retried
        request cannot consume a second parameter set. In single-phase mode a trial has
        one record and every later index gets it again (NNI's behaviour).
        """
        if index < len(trial.records):
            return trial.records[index]
        if not self.host.config.multi_phase:
            return trial.records[-1] if trial.records else None
        # The index is the idempotency key: one generation per (trial, index), whoever asks.
        key = (trial.trial_id, index)
        task = self._phases.get(key)
        if task is None:
            task = self._phases[key] = asyncio.ensure_future(self._next_phase(trial, index))
            task.add_done_callback(lambda t: (self._phases.pop(key, None), t.cancelled() or t.exception()))
        return await asyncio.shield(task)

    async def _next_phase(self, trial: TrialState, index: int) -> dict[str, Any] | None:
        """Multi-phase: a new parameter set for phase ``index`` of a running trial job."""
        if index > len(trial.records):
            raise BadRequest(f"index: trial {trial.trial_id} asked for phase {index} before phase {len(trial.records)}")
        # A running job may take more parameter sets after maxTrialNumber jobs were started
        # (NNI counts jobs); it gets None once the tuner has no more or the experiment ended.
        if self.host.status not in ("RUNNING", "NO_MORE_TRIAL") or trial.status != "RUNNING" \
                or self.host.tuner_exhausted:
            return None
        try:
            batch = await self.host.generate(1, trial.trial_id)
        except AlgorithmError as exc:
            # The tuner's failure, not the trial's: the experiment ends in ERROR (as for any tuner
            # call that raises) and the trial is told there is no more, as when the tuner is done.
            self.host.fail(str(exc))
            return None
        if not batch or trial.status != "RUNNING":
            return None
        parameter_id, parameters = batch[0]
        record = ParameterRecord(parameter_id, SOURCE_ALGORITHM, parameters, index).to_wire()
        trial.records.append(record)
        self.store.add_parameter(trial.trial_id, parameter_id, index, parameters)
        self.host.record_event("PARAMETER_GIVEN", f"parameter {parameter_id} (phase {index})", trial.trial_id)
        await self.host.notify()
        return record

    # -- metrics ----------------------------------------------------------------------------------
    async def report_metric(self, trial: TrialState, parameter_id: int | None, metric_type: str,
                            sequence: int, value: str) -> str | None:
        """Store a metric the trial sent, then give it to the tuner (final) or assessor (intermediate).

        Returns a warning for the trial's log (a final result that lacks a constraint metric), or None."""
        known = {r["parameter_id"] for r in trial.records}
        if parameter_id not in known:
            raise BadRequest(f"metric: parameter id {parameter_id} was not given to trial {trial.trial_id}")
        if metric_type not in ("FINAL", "PERIODICAL"):
            raise BadRequest(f"type: must be FINAL or PERIODICAL, got {metric_type!r}")
        parsed = json.loads(value)
        sequence += trial.sequence_offset
        if metric_type == "FINAL" and parameter_id in trial.finals:
            # One final result per parameter set. The same one again is a retried request
            # (already stored and acted upon); a different one is refused, not stored.
            if not self._same_final(trial, parameter_id, sequence, value):
                raise _duplicate(trial, parameter_id)
            return
        # Group commit: this metric shares a transaction with the others that arrived in the
        # same loop turn, and the request is answered only after that transaction committed.
        inserted = await self.store.group_commit(
            lambda db: insert_metric(db, trial.trial_id, parameter_id, metric_type, sequence, value))
        if not inserted:
            # A retried request: already stored and acted upon. Two different finals may also
            # have raced into the same group: only the stored one counts.
            if metric_type == "FINAL" and not self._same_final(trial, parameter_id, sequence, value,
                                                               missing_is_same=True):
                raise _duplicate(trial, parameter_id)
            return
        warning = None
        if metric_type == "FINAL":
            warning = self._final(trial, parameter_id, parsed)
        else:
            self._intermediate(trial, parameter_id, parsed)
        await self.host.notify()
        return warning

    def _same_final(self, trial: TrialState, parameter_id: int | None, sequence: int, value: str,
                    missing_is_same: bool = False) -> bool:
        stored = self.store.final_metric(trial.trial_id, parameter_id)
        if stored is None:
            return missing_is_same
        return (stored["sequence"], stored["value"]) == (sequence, value)

    def _final(self, trial: TrialState, parameter_id: int | None, parsed: Any) -> str | None:
        """A stored final result: the best result, then the tuner (its parameter set was marked
        SUCCEEDED in the same transaction: ``insert_metric``). Returns the constraint warning."""
        trial.finals = (*trial.finals, parameter_id)
        # constraints: only a feasible result can be the best; a missing constraint metric is
        # noted on the trial (and in its log, through the reply) and makes it infeasible
        feasible, missing = _objectives.read_feasibility(parsed, self.constraints)
        if missing:
            trial.result_note = missing
            self.store.update_trial(trial.trial_id, message=missing)
            self.host.record_event("CONSTRAINT_MISSING", missing, trial.trial_id)
        can_be_best = feasible is None or feasible.feasible
        if self.objectives:
            # the tuner gets the dict only when it holds every objective as a finite number
            parsed, note = _objectives.check_final(parsed, self.objectives)
            if note:
                trial.result_note = "; ".join(m for m in (note, missing) if m)
                self.store.update_trial(trial.trial_id, message=trial.result_note)
                self.host.record_event("RESULT_NOT_USED", note, trial.trial_id)
            elif can_be_best:
                self.book.update_best(trial.trial_id, parsed[self.objectives[0].metric])
            usable = parsed is not None
        else:
            if can_be_best:
                self.book.update_best(trial.trial_id, parsed)
            # Built-in tuners get finite scalars only; a custom tuner gets any JSON value, as in NNI.
            usable = finite_metric(parsed) or (self.algorithms is not None
                                               and not self.algorithms.is_builtin_tuner())
        if self.algorithms is not None and usable:
            self.algorithms.tell_result(trial, trial.record(parameter_id), parsed, feasible)
            self.host.result_arrived()
        return missing or None

    def _intermediate(self, trial: TrialState, parameter_id: int | None, parsed: Any) -> None:
        if trial.history is None:
            trial.history = {}
        history = trial.history.setdefault(parameter_id, [])
        history.append(parsed)
        record = next((r for r in trial.records if r["parameter_id"] == parameter_id), None)
        if self.algorithms is not None and record is not None and finite_metric(parsed):
            self.algorithms.tell_intermediate(trial, record, parsed)
        if self.algorithms is not None and self.algorithms.assessor is not None and trial.status == "RUNNING":
            # multi-objective: the assessor sees the first objective
            seen = _objectives.assessor_view(history, self.objectives) if self.objectives else list(history)
            self.tasks.spawn(self._assess(trial, parameter_id, seen), f"assess trial {trial.trial_id}")

    # -- assessing ----------------------------------------------------------------------------------
    async def _assess(self, trial: TrialState, parameter_id: int | None, history: list[Any]) -> None:
        """Ask the assessor about ``history``; ``Bad`` stops the trial EARLY_STOPPED.

        As NNI does, the tuner learns from the last intermediate result of a stopped trial
        (if no final result came and it is finite; multi-objective: the whole last result,
        if it fits). Only the first ``Bad`` acts: later verdicts on the same attempt (queued
        before the kill took effect) neither feed the tuner again nor kill again.
        """
        assert self.algorithms is not None
        try:
            stop = await self.algorithms.assess(trial.trial_id, history)
        except AlgorithmError as exc:
            self.host.fail(str(exc))
            return
        if not stop or trial.status != "RUNNING" or trial.kill_status not in (None, LOST):
            return
        last = history[-1]
        if self.objectives:
            raw = (trial.history or {}).get(parameter_id, [])
            last, _ = _objectives.check_final(raw[len(history) - 1] if len(raw) >= len(history) else None,
                                              self.objectives)
        if parameter_id not in trial.finals and last is not None and (self.objectives or finite_metric(last)):
            self.algorithms.tell_stopped_result(trial, trial.record(parameter_id), last,
                                                _objectives.read_feasibility(last, self.constraints)[0])
        await self.host.kill_trial(trial.trial_id, "EARLY_STOPPED")


def _duplicate(trial: TrialState, parameter_id: int | None) -> DuplicateFinal:
    return DuplicateFinal(f"parameter set {parameter_id} of trial {trial.trial_id} already has its "
                          "final result; only the first report_final_result() counts")
