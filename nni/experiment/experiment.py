"""Launch and control an experiment from Python (NNI's ``nni.experiment.Experiment``)."""

from __future__ import annotations

import asyncio
import atexit
import copy
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..status import EXPERIMENT_ENDED
from . import rest
from .config import ExperimentConfig
from .data import TrialJob, TrialMetricData, TrialResult

_logger = logging.getLogger("nni.experiment")

ENDED = EXPERIMENT_ENDED


class _ClassOrInstanceMethod:
    """A method callable on the class (NNI 2.x: ``Experiment.resume(id)``) or on an
    instance (NNI 3.0: ``Experiment(None, id=...).resume()``)."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.__doc__ = function.__doc__

    def __get__(self, instance: Any, owner: type) -> Any:
        import functools
        target = owner if instance is None else instance
        return functools.partial(self.function, target)


class Experiment:
    """An HPO experiment, started here or connected to by port.

    ``Experiment('local')``, ``Experiment(tuner, 'local')`` (the tuner object is used as it
    is) and ``Experiment(config)`` are all accepted. The manager of an experiment started
    here runs in a background thread of this process; every query goes through its REST
    API, exactly as ``nnictl`` does.

    As in NNI 3.0, ``id`` names the experiment: a new one started with that id, or an
    existing one to :meth:`resume` or :meth:`view` (``Experiment(None, id='abc').resume()``);
    :meth:`run_or_resume` does whichever applies.
    """

    def __init__(self, config_or_tuner: Any = None, training_service: str | None = None, *,
                 id: str | None = None) -> None:  # noqa: A002 - NNI's keyword
        self._tuner: Any = None
        if isinstance(config_or_tuner, ExperimentConfig):
            self.config = config_or_tuner
        elif isinstance(config_or_tuner, str) and training_service is None:
            self.config = ExperimentConfig(config_or_tuner)
        elif config_or_tuner is None:
            self.config = ExperimentConfig(training_service)
        else:
            self._tuner = config_or_tuner
            self.config = ExperimentConfig(training_service or "local")
        if id is not None and (not isinstance(id, str) or not id or "/" in id):
            raise ValueError(f"id must be a non-empty string without '/', got {id!r}")
        self.id: str | None = id
        self.port: int | None = None
        self.url: str | None = None
        #: The web UI's address with the one-time ``?token=`` that logs a browser in
        #: (``url`` is the bare address, for REST paths; see docs/security.md).
        self.webui_url: str | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, port: int = 8080, debug: bool = False, run_mode: Any = None) -> None:
        """Start the experiment in the background and return once its REST API answers.

        ``port=0`` picks any free port (see :attr:`port`). ``self.config`` is left as it is.
        """
        config = copy.deepcopy(self.config)
        if debug:
            config.debug = True
        if self._tuner is not None:
            from .config import CustomAlgorithmConfig
            tuner_cls = type(self._tuner)
            # Recorded so the stored config says which tuner ran; the object itself is used.
            config.tuner = CustomAlgorithmConfig(class_name=f"{tuner_cls.__module__}.{tuner_cls.__qualname__}")
        from ..manager.launcher import run_experiment
        config = config.canonical_copy()
        self._serve(lambda on_ready: run_experiment(config, port=port, tuner=self._tuner, on_ready=on_ready,
                                                    experiment_id=self.id), "started")

    @_ClassOrInstanceMethod
    def resume(target: Any, *args: Any, **kwargs: Any) -> Any:
        """Continue a stopped or crashed experiment where it left off (see ``nnictl resume``).

        ``Experiment.resume(experiment_id, port=8080, wait_completion=True, debug=False,
        tuner=None)`` (NNI 2.x) returns the experiment; ``Experiment(None, id=...).resume(port,
        wait_completion, debug)`` (NNI 3.0) resumes this object. Its stored results are given
        to the tuner first; trials that were running when it stopped are recorded
        SYS_CANCELED and run again. ``tuner`` is needed only when the experiment ran with a
        tuner object rather than a configured one.
        """
        if isinstance(target, Experiment):
            if target.id is None:
                raise ValueError("resume() needs the experiment id: Experiment(None, id='...').resume()")
            return target._resume(*args, **kwargs)
        return target._resume_by_id(*args, **kwargs)

    @classmethod
    def _resume_by_id(cls, experiment_id: str, port: int = 8080, wait_completion: bool = True,
                      debug: bool = False, tuner: Any = None) -> "Experiment":
        experiment = cls(tuner, "local") if tuner is not None else cls()
        experiment.id = experiment_id
        experiment._resume(port, wait_completion, debug)
        return experiment

    def _resume(self, port: int = 8080, wait_completion: bool = True, debug: bool = False) -> bool | None:
        from ..manager import registry
        from ..manager.launcher import run_experiment
        experiment_id = self.id
        assert experiment_id is not None
        tuner = self._tuner
        directory = _experiment_dir(experiment_id)
        self.config = _stored_config(experiment_id, directory)
        config = self.config
        if debug:
            config.debug = True
        if tuner is None and not (getattr(config.tuner, "name", None) or getattr(config.tuner, "class_name", None)):
            raise ValueError(f"experiment {experiment_id} ran with a tuner object; pass it: "
                             f"Experiment.resume({experiment_id!r}, tuner=...)")
        entry = registry.get_entry(experiment_id)
        if entry is not None and entry["alive"]:
            raise RuntimeError(f"experiment {experiment_id} is already running on port {entry['port']}")
        config.experiment_working_directory = str(directory.parent)
        canonical = config.canonical_copy()
        self._serve(lambda on_ready: run_experiment(canonical, port=port, tuner=tuner, on_ready=on_ready,
                                                    experiment_id=experiment_id, resume=True), "resumed")
        if not wait_completion:
            return None
        try:
            status = self.wait(show_progress=True)
        finally:
            self.stop()
        return status != "ERROR"

    @_ClassOrInstanceMethod
    def view(target: Any, *args: Any, **kwargs: Any) -> Any:
        """Serve a stopped experiment read-only; blocks until Ctrl-C unless ``non_blocking``.

        ``Experiment.view(experiment_id, port=8080, non_blocking=False)`` (NNI 2.x) or
        ``Experiment(None, id=...).view(port, non_blocking)`` (NNI 3.0).
        """
        if isinstance(target, Experiment):
            if target.id is None:
                raise ValueError("view() needs the experiment id: Experiment(None, id='...').view()")
            target._view(*args, **kwargs)
            return target
        experiment_id, rest_args = (args[0], args[1:]) if args else (kwargs.pop("experiment_id"), ())
        experiment = target()
        experiment.id = experiment_id
        experiment._view(*rest_args, **kwargs)
        return experiment

    def _view(self, port: int = 8080, non_blocking: bool = False) -> None:
        from ..manager.launcher import view_experiment
        experiment_id = self.id
        assert experiment_id is not None
        directory = _experiment_dir(experiment_id)
        self.config = _stored_config(experiment_id, directory)
        self._serve(lambda on_ready: view_experiment(experiment_id, directory, port=port, on_ready=on_ready),
                    "served read-only")
        if not non_blocking:
            try:
                while self._thread is not None and self._thread.is_alive():
                    self._thread.join(0.5)
            except KeyboardInterrupt:
                pass
            finally:
                self.stop()

    def run_or_resume(self, port: int = 8080, wait_completion: bool = True, debug: bool = False) -> bool | None:
        """Resume the experiment named by ``id`` if it exists on this machine, else run it (NNI 3.0)."""
        from ..manager import registry
        if self.id is not None and registry.get_entry(self.id) is not None:
            return self._resume(port, wait_completion, debug)
        return self.run(port, wait_completion, debug)

    def _serve(self, make_coroutine: Any, verb: str) -> None:
        """Run a manager coroutine in a background thread; return once it serves (or raise why not)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"experiment {self.id} is already started")
        # A stopped experiment's object may start again (NNI: stop() then resume() or view()).
        ready = threading.Event()
        info: dict[str, Any] = {}

        def on_ready(data: dict[str, Any]) -> None:
            info.update(data)
            ready.set()

        def serve() -> None:
            try:
                asyncio.run(make_coroutine(on_ready))
            except BaseException as exc:  # surfaced to the caller or logged below
                self._failure = exc
                if not ready.is_set():
                    ready.set()
                else:
                    _logger.error("experiment manager crashed: %s", exc)

        self._thread = threading.Thread(target=serve, name="nni-manager", daemon=True)
        self._thread.start()
        ready.wait()
        if not info:
            self._thread = None
            assert self._failure is not None
            raise self._failure
        self.id, self.port, self.url = info["id"], info["port"], info["url"]
        self.webui_url = info.get("webui_url", self.url)
        from ..manager.secret import read_secret
        secret = read_secret(info["dir"])
        if secret:
            rest.remember_secret(self.port, secret)
        self._stopped = False
        atexit.register(self.stop)
        print(f"Experiment {self.id} {verb}; web UI at {self.webui_url} (REST API at {self.url}/api/v1/nni)",
              file=sys.stderr)

    def stop(self) -> None:
        """Stop the experiment: every running trial is killed and recorded USER_CANCELED."""
        if self.port is None or self._stopped:
            return
        try:
            rest.delete(self.port, "/experiment")
        except rest.RestError as exc:
            if self._thread is None:
                raise
            _logger.debug("stop: %s", exc)
        self._stopped = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            atexit.unregister(self.stop)

    def run(self, port: int = 8080, wait_completion: bool = True, debug: bool = False) -> bool | None:
        """Start, show progress until the experiment ends, then stop it.

        Returns True when it finished (DONE or STOPPED), False on ERROR; None without
        ``wait_completion``. Ctrl-C stops the experiment cleanly.
        """
        self.start(port, debug)
        if not wait_completion:
            return None
        try:
            status = self.wait(show_progress=True)
        except KeyboardInterrupt:
            _logger.warning("KeyboardInterrupt: stopping the experiment")
            status = "STOPPED"
        finally:
            self.stop()
        return status != "ERROR"

    @classmethod
    def connect(cls, port: int) -> "Experiment":
        """Attach to the experiment whose manager serves on ``port`` (from any process)."""
        profile = rest.get(port, "/experiment")
        experiment = cls(ExperimentConfig.from_dict(profile["params"]))
        experiment.id = profile["id"]
        experiment.port = port
        experiment.url = f"http://127.0.0.1:{port}"
        experiment.webui_url = rest.webui_url(port)
        return experiment

    def __enter__(self) -> "Experiment":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- queries ---------------------------------------------------------------------------
    def _port(self) -> int:
        if self.port is None:
            raise RuntimeError("the experiment is not started; call start() or Experiment.connect(port)")
        return self.port

    def get_status(self) -> str:
        """The experiment's state: RUNNING, NO_MORE_TRIAL, TUNER_NO_MORE_TRIAL, DONE, STOPPED or ERROR."""
        return rest.get(self._port(), "/check-status")["status"]

    def get_experiment_profile(self) -> dict[str, Any]:
        return rest.get(self._port(), "/experiment")

    def list_trial_jobs(self, status: str | None = None) -> list[TrialJob]:
        suffix = f"?status={status}" if status else ""
        return [TrialJob(**t) for t in rest.get(self._port(), "/trial-jobs" + suffix)]

    def get_trial_job(self, trial_job_id: str) -> TrialJob:
        return TrialJob(**rest.get(self._port(), f"/trial-jobs/{trial_job_id}"))

    def get_job_statistics(self) -> list[dict[str, Any]]:
        return rest.get(self._port(), "/job-statistics")

    def get_job_metrics(self, trial_job_id: str | None = None) -> dict[str, list[TrialMetricData]]:
        path = "/metric-data" + (f"/{trial_job_id}" if trial_job_id else "")
        result: dict[str, list[TrialMetricData]] = {}
        for metric in rest.get(self._port(), path):
            result.setdefault(metric["trialJobId"], []).append(TrialMetricData(**metric))
        return result

    def export_data(self) -> list[TrialResult]:
        return [TrialResult(**row) for row in rest.get(self._port(), "/export-data")]

    def pareto_front(self) -> list[TrialResult]:
        """The non-dominated final results of a multi-objective experiment (config ``objectives``).

        Same type as :meth:`export_data`; results lacking an objective are left out.  Raises
        ``RuntimeError`` (from the REST client) when the experiment has no objectives.
        """
        return [TrialResult(**row) for row in rest.get(self._port(), "/pareto-front")]

    def kill_trial_job(self, trial_job_id: str) -> None:
        rest.delete(self._port(), f"/trial-jobs/{trial_job_id}")

    def rerun_trials(self, trial_job_ids: list[str] | None = None, status: str | None = None,
                     extend_budget: bool = True) -> list[str]:
        """Run ended trials again with the same parameters; returns the ids that will run.

        Choose them by id (``trial_job_ids``) or by ``status`` (``'FAILED'`` or
        ``'USER_CANCELED'``). Each runs as a new *attempt* of the same trial: same id,
        parameters and output directory, ``NNI_TRIAL_ATTEMPT`` counting up; its result is
        given to the tuner. ``extend_budget`` (default) runs them on top of
        ``maxTrialNumber``; False makes each use one trial of what is left. A DONE experiment
        continues. Trials that cannot run again (active, succeeded, with a final result) are
        skipped; a warning names them.
        """
        body: dict[str, Any] = {"extendBudget": extend_budget}
        if trial_job_ids is not None:
            body["trialJobIds"] = list(trial_job_ids)
        if status is not None:
            body["status"] = status
        reply = rest.request("POST", self._port(), "/trial-jobs/rerun", body)
        for skipped in reply.get("skipped", []):
            _logger.warning("trial %s not re-run: %s", skipped["trialJobId"], skipped["reason"])
        return list(reply["rerun"])

    # -- updates ---------------------------------------------------------------------------
    def _update(self, update_type: str, key: str, value: Any) -> None:
        rest.put(self._port(), f"/experiment?update_type={update_type}", {"params": {key: value}})

    def update_trial_concurrency(self, value: int) -> None:
        self._update("TRIAL_CONCURRENCY", "trialConcurrency", value)

    def update_max_trial_number(self, value: int) -> None:
        self._update("MAX_TRIAL_NUM", "maxTrialNumber", value)

    def update_max_experiment_duration(self, value: str | int | float) -> None:
        self._update("MAX_EXEC_DURATION", "maxExperimentDuration", value)

    def update_search_space(self, value: dict[str, Any] | str) -> None:
        """Give the tuner a new search space (a dict, or a JSON/YAML file path)."""
        if not isinstance(value, dict):
            from ..search_space import load_search_space
            value = load_search_space(value)
        self._update("SEARCH_SPACE", "searchSpace", value)

    def wait(self, timeout: float | None = None, show_progress: bool = False) -> str:
        """Block until the experiment has ended (or ``timeout``); return its state.

        With ``show_progress``, a progress line (trials done / max, best metric, elapsed)
        is drawn on stderr, and an ERROR's message is printed.
        """
        from ._progress import ProgressLine
        line = ProgressLine(sys.stderr) if show_progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        version = -1
        # Without a progress line only the end matters, so the manager is not woken per trial.
        until = "" if line is not None else "&until=ended"
        try:
            while True:
                asked = time.monotonic()
                wait = 1.0 if line is not None else 5.0
                if deadline is not None:
                    wait = max(0.0, min(wait, deadline - asked))
                progress = rest.get(self._port(), f"/progress?since={version}&timeout={wait:.3f}{until}", timeout=40)
                version = progress["version"]
                if line is not None:
                    line.show(progress)
                    # Redraw at most 5 times a second: a fast experiment changes every few ms.
                    time.sleep(max(0.0, 0.2 - (time.monotonic() - asked)))
                if progress["status"] in ENDED or (deadline is not None and time.monotonic() > deadline):
                    break
        finally:
            if line is not None:
                line.close()
        if line is not None and progress["status"] == "ERROR":
            print("Experiment failed: " + ("\n".join(progress["errors"]) or "see the manager log"), file=sys.stderr)
        if line is not None:
            for warning in progress.get("warnings") or []:   # e.g. "all 4 trials failed; last: ..."
                print(f"Warning: {warning}", file=sys.stderr)
        return progress["status"]


def _experiment_dir(experiment_id: str) -> Path:
    from ..manager import registry
    entry = registry.get_entry(experiment_id)
    if entry is None or not entry.get("dir"):
        raise ValueError(f"no experiment with id {experiment_id!r} on this machine")
    return Path(entry["dir"])


def _stored_config(experiment_id: str, directory: Path) -> ExperimentConfig:
    from ..manager.experiment_dir import ExperimentDir, MissingStoreError
    try:
        return ExperimentConfig.from_dict(ExperimentDir(directory).stored_config())
    except MissingStoreError as exc:
        raise MissingStoreError(f"experiment {experiment_id}: {exc}") from None
