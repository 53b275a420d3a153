"""Driving a tuner in-process the way the manager does (shared by the tuner test files)."""

from __future__ import annotations

from typing import Any, Callable

from nni.errors import NoMoreTrialError

#: Keys some tuners add to a parameter set beside the hyperparameters (Hyperband/BOHB, PBT).
EXTRA_KEYS = ("TRIAL_BUDGET", "load_checkpoint_dir", "save_checkpoint_dir")


def hp(params: dict) -> dict:
    """The hyperparameters of a parameter set, without the keys a tuner adds."""
    return {k: v for k, v in params.items() if k not in EXTRA_KEYS}


def drive(tuner: Any, objective: Callable[[dict], float], n: int, concurrency: int = 3,
          fail: Callable[[dict], bool] = lambda p: False, first_id: int = 0,
          finish: bool = False) -> list[dict]:
    """Run the tuner like the manager does: up to ``concurrency`` open trials, oldest finishes first.

    Returns every parameter set given out, in order.  Stops after ``n`` sets or when the
    tuner gives nothing while nothing runs; with ``finish``, the trials still open then
    report their results too (as a round before ``import_data`` or a resume would).
    """
    given: list[dict] = []
    running: list[tuple[int, dict]] = []
    pid = first_id

    def end(done_id: int, done_params: dict) -> None:
        if fail(done_params):
            tuner.trial_end(done_id, False)
        else:
            tuner.receive_trial_result(done_id, done_params, objective(done_params))
            tuner.trial_end(done_id, True)

    while len(given) < n:
        if len(running) < concurrency:
            try:
                params = tuner.generate_parameters(pid)
            except NoMoreTrialError:
                params = None
            if params is not None:
                given.append(params)
                running.append((pid, params))
                pid += 1
                continue
            if not running:
                break
        end(*running.pop(0))
    if finish:
        for done in running:
            end(*done)
    return given
