"""Trial bookkeeping (private): the trial table, ids and counters, the budget, the best result
and the failure watch. No I/O and no asyncio here: the manager decides, this module counts.
"""

from __future__ import annotations

import math
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..status import TRIAL_ACTIVE, TRIAL_ENDED, TrialStatus
from ..utils import extract_scalar_reward
from ._tasks import Timer

# A trial the manager lost while it ran (it was killed); NNI's name for a system-side cancel.
INTERRUPTED = TrialStatus.SYS_CANCELED.value
# The message of a trial the experiment's own stop canceled (not a user's kill of that trial):
# a resume runs its parameters again and does not count it, as after a crash.
STOPPED_WITH_EXPERIMENT = "experiment stopped"
# Default of maxFailedTrialsAtStart: this many failures before any trial succeeds end the experiment.
DEFAULT_MAX_FAILED_TRIALS_AT_START = 5


def new_id(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_token() -> str:
    """A trial attempt's bearer token."""
    return secrets.token_urlsafe(24)


@dataclass(slots=True)    # slots: 100,000 of these after a resume, no per-object __dict__
class TrialState:
    """What the manager knows of one trial while it runs (the store holds the rest)."""

    trial_id: str
    sequence_id: int
    trial_dir: str
    token: str
    records: list[dict[str, Any]] = field(default_factory=list)   # parameter records, as sent to the trial
    status: str = "WAITING"
    kill_status: str | None = None      # the state to record when our own kill ends it
    kill_message: str = ""
    # intermediate values per parameter set; None until the first one (most restored trials have none)
    history: dict[int | None, list[Any]] | None = None
    # parameter ids with a final result; a tuple, replaced not mutated: a small set costs 216
    # bytes, 100,000 of them 20 MB after a resume
    finals: tuple[int | None, ...] = ()
    result_note: str = ""               # why a final result was not given to the tuner (multi-objective)
    timer: Timer | None = None          # maxTrialDuration
    # Attempts: each run of this trial (same id, parameters and directory). Earlier attempts'
    # tokens are fenced: a late report from one is refused (409), never stored.
    attempt: int = 1
    old_tokens: frozenset[str] = frozenset()    # replaced, not mutated: most trials never have one
    queued: bool = False                # an attempt waiting for a slot, not yet given to the service
    machine: str | None = None          # where the current attempt runs, when known
    sequence_offset: int = 0            # added to this attempt's metric sequence numbers
    lease_deadline: float | None = None   # loop time; None: no lease taken (yet)
    lease_timer: Timer | None = None
    tuner_closed: bool = False          # the tuner already had trial_end (or an earlier manager ran it)

    @property
    def active(self) -> bool:
        return self.status in TRIAL_ACTIVE

    @property
    def complete(self) -> bool:
        """Every parameter set it was given has its final result."""
        return bool(self.records) and all(r["parameter_id"] in self.finals for r in self.records)

    def record(self, parameter_id: int | None) -> dict[str, Any]:
        return next(r for r in self.records if r["parameter_id"] == parameter_id)

    def fence(self) -> None:
        """Retire the current token: whatever still holds it gets 409 from now on."""
        self.old_tokens = self.old_tokens | {self.token}
        self.token = new_token()


def finite_metric(value: Any) -> bool:
    """The NaN/inf rule (docs/rest_api.md): only metrics whose scalar is a finite float reach the
    tuner and the best result; NaN, +-inf and integers beyond a float (10**400) are only stored."""
    try:
        return math.isfinite(float(extract_scalar_reward(value)))
    except (RuntimeError, TypeError, ValueError, OverflowError):
        return False


def failure_line(message: str | None) -> str:
    """A failed trial's message on one line: ``exit code 127: <last line of its stderr>``."""
    message = (message or "").strip()
    head, _, tail = message.partition("; stderr tail:\n")
    head = head.replace("; stderr was empty", " (stderr was empty)").strip() or "failed"
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    text = f"{head}: {lines[-1]}" if lines else head
    return text if len(text) <= 300 else text[:297] + "..."


class FailureWatch:
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


class TrialBook:
    """The experiment's trials and what is counted over them.

    ``counted`` is what ``maxTrialNumber`` is compared with: trial jobs started, multi-phase
    too (NNI's rule), not the ones interrupted by a manager that stopped (they run again),
    plus re-runs that take from the budget. ``parameter_sets`` counts parameter sets given
    out (several per job with multi-phase).
    """

    def __init__(self, max_failed_trials_at_start: int | None) -> None:
        self.trials: dict[str, TrialState] = {}
        # The trials that may be active: every active one is here (ended ones are dropped when
        # next read), so the scheduler's counts do not walk every trial ever run (a long
        # experiment of small trials has 100,000).
        self._live: dict[str, TrialState] = {}
        self.next_parameter_id = 0
        self.next_sequence_id = 0
        self.parameter_sets = 0
        self.counted = 0
        self.optimize_mode = "maximize"
        self.best: tuple[float, str, Any] | None = None   # (reward, trial id, raw value)
        self.failures = FailureWatch(max_failed_trials_at_start)

    # -- the table ----------------------------------------------------------------------------
    def __contains__(self, trial_id: str) -> bool:
        return trial_id in self.trials

    def get(self, trial_id: str) -> TrialState | None:
        return self.trials.get(trial_id)

    def add(self, trial: TrialState) -> None:
        self.trials[trial.trial_id] = trial
        if trial.active:
            self._live[trial.trial_id] = trial

    def revived(self, trial: TrialState) -> None:
        """``trial`` is active again (a new attempt of an ended trial: a retry or a re-run)."""
        self._live[trial.trial_id] = trial

    def new_trial_id(self) -> str:
        trial_id = new_id(5)
        while trial_id in self.trials:
            trial_id = new_id(5)
        return trial_id

    def new_sequence_id(self) -> int:
        self.next_sequence_id += 1
        return self.next_sequence_id - 1

    def reserve_parameter_ids(self, count: int) -> list[int]:
        """``count`` fresh parameter ids, counted as given out (:meth:`unreserve` the unused)."""
        ids = list(range(self.next_parameter_id, self.next_parameter_id + count))
        self.next_parameter_id += count
        self.parameter_sets += count
        return ids

    def unreserve(self, count: int) -> None:
        self.parameter_sets -= count

    def active(self) -> list[TrialState]:
        live = [trial for trial in self._live.values() if trial.active]
        if len(live) < len(self._live):
            # rebuilt, not deleted from: a dict keeps the slots of deleted keys, and walking
            # them would cost what walking every trial did
            self._live = {trial.trial_id: trial for trial in live}
        return live

    def running_count(self) -> int:
        """Active trials that hold a slot (handed to the service; not attempts still queued here)."""
        return sum(1 for t in self.active() if not t.queued)

    # -- budget -------------------------------------------------------------------------------
    def budget_left(self, max_trial_number: int | None) -> float:
        """How many more trial jobs ``max_trial_number`` allows (multi-phase too, as in NNI)."""
        return math.inf if max_trial_number is None else max_trial_number - self.counted

    # -- results ------------------------------------------------------------------------------
    def update_best(self, trial_id: str, value: Any) -> None:
        if not finite_metric(value):
            return
        reward = extract_scalar_reward(value)
        better = self.best is None or (reward > self.best[0] if self.optimize_mode == "maximize"
                                       else reward < self.best[0])
        if better:
            self.best = (reward, trial_id, value)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for trial in self.trials.values():
            counts[trial.status] = counts.get(trial.status, 0) + 1
        return counts

    def finished(self, counts: dict[str, int] | None = None) -> int:
        counts = self.counts() if counts is None else counts
        return sum(counts.get(s, 0) for s in TRIAL_ENDED)

    def warnings(self, *, so_far: bool) -> list[str]:
        """The all-failed note (see ``ExperimentManager.warnings``); none once the watch stopped it."""
        if self.failures.stopped_experiment:
            return []    # the error already says it
        note = self.failures.all_failed_note(self.trials.values(), so_far=so_far)
        return [note] if note else []
