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
    "overwrite_intermediate_seq",
    "report_final_result",
    "report_intermediate_result",
]


_env = read_trial_env()
_channel: Any = None
_records: list[dict[str, Any]] = []       # every parameter record received, in order
_exhausted = False
_intermediate_seq: dict[Any, int] = {}
_finals_sent: set[Any] = set()            # parameter ids whose final result was sent (one each)
_seq_start = 0                            # set by overwrite_intermediate_seq before any parameter


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


def _user_channel() -> Any:
    # A channel set with nni.runtime.trial_command_channel (NNI's test hook); looked up only
    # when that module was imported, so ordinary trials pay nothing.
    module = sys.modules.get("nni.runtime.trial_command_channel")
    return module._user_channel() if module is not None else None


def _reset_records() -> None:
    global _exhausted
    _records.clear()
    _intermediate_seq.clear()
    _finals_sent.clear()
    _exhausted = False


def _standalone() -> bool:
    # NNI runs 'unittest' as standalone too (its own tests set NNI_PLATFORM=unittest).
    return _env.platform in (None, "unittest") and _user_channel() is None


def _send_metric(parameter_id: Any, metric_type: str, sequence: int, value: str) -> None:
    user = _user_channel()
    if user is not None:
        user.send_metric(metric_type, parameter_id, _env.trial_job_id, sequence, json.loads(value))
    else:
        reply = _get_channel().send_metric(parameter_id, metric_type, sequence, value)
        if isinstance(reply, dict) and isinstance(reply.get("warning"), str):
            _warn("%s", reply["warning"])   # e.g. a constraint metric missing (docs/constraints.md)


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
    user = _user_channel()
    if user is not None:
        record = user.receive_parameter()
    else:
        record = _given_first_record() if not _records else None
        if record is None:
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


def _given_first_record() -> dict[str, Any] | None:
    """Record 0 as the training service gave it in ``NNI_TRIAL_PARAMETER`` (what the manager
    would answer for index 0: bound before the trial started), or None: then it is asked for."""
    if not _env.first_parameter:
        return None
    try:
        record = json.loads(_env.first_parameter)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "parameter_id" in record and "parameters" in record else None


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


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays -> Python values, anywhere in a metric."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if not isinstance(value, (int, float, str, bool, type(None))):
        if hasattr(value, "tolist"):
            return value.tolist()   # numpy arrays (and scalars); torch tensors
        if hasattr(value, "item"):
            return value.item()
    return value


def _encode_metric(metric: Any) -> str:
    # As NNI: a metric is any JSON-serialisable value. Built-in tuners need a number or a
    # dict with a numeric 'default'; other shapes are stored and given to custom tuners.
    metric = _plain(metric)
    scalar = metric.get("default") if isinstance(metric, dict) else metric
    if isinstance(scalar, float) and not math.isfinite(scalar):
        _warn("reporting a non-finite metric %r; tuners will ignore it", scalar)
    try:
        return json.dumps(metric)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"nni: a metric must be JSON-serialisable, got {metric!r} ({exc})") from None


def _current_parameter_id() -> Any:
    if not _records and not _standalone():
        get_next_parameter()  # metrics belong to a parameter set: fetch the one assigned
    return _records[-1]["parameter_id"] if _records else None


def report_intermediate_result(metric: Any) -> None:
    """Report a per-epoch result (a number or a dict with ``'default'``; any JSON value is stored)."""
    value = _encode_metric(metric)
    if _standalone():
        print(f"[nni standalone] intermediate result: {value}", flush=True)
        return
    parameter_id = _current_parameter_id()
    sequence = _intermediate_seq.get(parameter_id, _seq_start)
    _intermediate_seq[parameter_id] = sequence + 1
    _send_metric(parameter_id, "PERIODICAL", sequence, value)


def report_final_result(metric: Any) -> None:
    """Report the final result of the current parameter set.

    Built-in tuners need a number or a dict with a numeric ``'default'`` key; any other
    JSON-serialisable value (a list, a numpy array, a dict without ``'default'``) is
    stored and given to a custom tuner as it is, as NNI does. A NaN or infinite result is
    stored and shown but never given to a built-in tuner.

    Only the first final result of a parameter set counts: a second call prints a warning
    on stderr and sends nothing (the manager would refuse it with HTTP 409).
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
        _send_metric(parameter_id, "FINAL", 0, value)
    except ChannelError as exc:
        if "HTTP 409" not in str(exc):
            raise
        _warn("the manager refused this final result: %s", exc)   # one was sent before (another process?)
    _finals_sent.add(parameter_id)


def overwrite_intermediate_seq(value: int) -> None:
    """Set the sequence number of the next intermediate result (NNI's API; a resumed
    trial uses it to continue its numbering)."""
    global _seq_start
    if _records:
        _intermediate_seq[_records[-1]["parameter_id"]] = int(value)
    else:
        _seq_start = int(value)
