"""The trial-side API: what a training script calls to get parameters and report metrics.

Outside an experiment (``NNI_PLATFORM`` unset) every call still works: parameters are
empty and metrics are printed, so a trial script can be run by hand.
"""

from __future__ import annotations

import json
import math
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a trial 5 ms to import
    from typing import Any

from .runtime.env_vars import read_trial_env

__all__ = [
    "get_current_parameter",
    "get_experiment_id",
    "get_next_parameter",
    "get_next_parameters",
    "get_sequence_id",
    "get_trial_id",
    "report_final_result",
    "report_intermediate_result",
]


_env = read_trial_env()
_channel: Any = None
_records: list[dict[str, Any]] = []       # every parameter record received, in order
_exhausted = False
_intermediate_seq: dict[Any, int] = {}
_finals_sent: set[Any] = set()            # parameter ids whose final result was sent (one each)


def _warn(message: str, *args: Any) -> None:
    # logging costs ~8 ms to import and every trial would pay it; stderr is what users read.
    sys.stderr.write("[nni] " + (message % args if args else message) + "\n")


def _get_channel() -> Any:
    global _channel
    if _channel is None:
        from .runtime.channel import TrialChannel
        if not _env.channel_url or not _env.token:
            raise RuntimeError("NNI_PLATFORM is set but NNI_TRIAL_CHANNEL / NNI_TRIAL_TOKEN are missing")
        _channel = TrialChannel(_env.channel_url, _env.trial_job_id, _env.token)
    return _channel


def _standalone() -> bool:
    return _env.platform is None


def get_next_parameter() -> dict[str, Any] | None:
    """Ask the tuner for this trial's (next) hyperparameter set.

    In a multi-phase experiment every call starts a new phase with a new parameter set,
    and ``None`` means the tuner has no more. Otherwise the trial has one set and a
    second call returns it again.
    """
    global _exhausted
    if _standalone():
        _warn("running outside an experiment (standalone): get_next_parameter() returns {}")
        if not _records:
            _records.append({"parameter_id": None, "parameters": {}, "parameter_index": 0})
        return {}
    if _exhausted:
        return None
    record = _get_channel().request_parameter(len(_records))
    if record is None:
        _exhausted = True
        return None
    if _records and record["parameter_id"] == _records[-1]["parameter_id"]:
        _warn("get_next_parameter() called again in a single-phase experiment; "
                        "returning the same parameters (set multiPhase: true for a new set per call)")
    else:
        _records.append(record)
    return record["parameters"]


def get_next_parameters() -> dict[str, Any] | None:
    """Alias of :func:`get_next_parameter`."""
    return get_next_parameter()


def get_current_parameter(tag: str | None = None) -> Any:
    """The parameter set last received (or one of its values by key); None before any."""
    if not _records:
        return None
    params = _records[-1]["parameters"]
    return params if tag is None else params[tag]


def get_experiment_id() -> str:
    """The experiment's id (``'STANDALONE'`` outside an experiment)."""
    return _env.experiment_id


def get_trial_id() -> str:
    """This trial job's id (``'STANDALONE'`` outside an experiment)."""
    return _env.trial_job_id


def get_sequence_id() -> int:
    """This trial's sequence number within the experiment (0, 1, 2, ...)."""
    return _env.sequence_id


def _encode_metric(metric: Any) -> str:
    def as_number(value: Any) -> Any:
        if hasattr(value, "item") and not isinstance(value, (int, float)):
            value = value.item()  # numpy / torch scalars
        return value

    metric = as_number(metric)
    if isinstance(metric, dict):
        metric = {k: as_number(v) for k, v in metric.items()}
        scalar = metric.get("default")
    else:
        scalar = metric
    if isinstance(scalar, bool) or not isinstance(scalar, (int, float)):
        raise TypeError("nni: a metric must be a number or a dict with a numeric 'default' key, "
                        f"got {metric!r}")
    if not math.isfinite(scalar):
        _warn("reporting a non-finite metric %r; tuners will ignore it", scalar)
    return json.dumps(metric, default=as_number)


def _current_parameter_id() -> Any:
    if not _records and not _standalone():
        get_next_parameter()  # metrics belong to a parameter set: fetch the one assigned
    return _records[-1]["parameter_id"] if _records else None


def report_intermediate_result(metric: Any) -> None:
    """Report a per-epoch result (a number or a dict with ``'default'``) to the assessor and the UI."""
    value = _encode_metric(metric)
    if _standalone():
        print(f"[nni standalone] intermediate result: {value}", flush=True)
        return
    parameter_id = _current_parameter_id()
    sequence = _intermediate_seq.get(parameter_id, 0)
    _intermediate_seq[parameter_id] = sequence + 1
    _get_channel().send_metric(parameter_id, "PERIODICAL", sequence, value)


def report_final_result(metric: Any) -> None:
    """Report the final result of the current parameter set (a number or a dict with ``'default'``).

    Only the first final result of a parameter set counts: a second call prints a warning
    on stderr and sends nothing (the manager would refuse it with HTTP 409). A NaN or
    infinite result is stored and shown but never given to the tuner.
    """
    value = _encode_metric(metric)
    if _standalone():
        print(f"[nni standalone] final result: {value}", flush=True)
        return
    parameter_id = _current_parameter_id()
    if parameter_id in _finals_sent:
        _warn("report_final_result() called again for parameter set %s; only the first final result "
              "counts, this one (%s) is not sent", parameter_id, value)
        return
    from .runtime.channel import ChannelError
    try:
        _get_channel().send_metric(parameter_id, "FINAL", 0, value)
    except ChannelError as exc:
        if "HTTP 409" not in str(exc):
            raise
        _warn("the manager refused this final result: %s", exc)   # one was sent before (another process?)
    _finals_sent.add(parameter_id)
