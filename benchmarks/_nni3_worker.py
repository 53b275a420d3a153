"""Run one throughput experiment on NNI 3.0 (the peer), in NNI 3.0's own virtualenv.

Started by ``throughput.py`` as ``<nni3 venv python> _nni3_worker.py SPEC.json RESULT.json``;
it imports only the standard library and NNI 3.0, never this project. The experiment is
stopped in ``finally`` (also on SIGTERM, which the parent sends on timeout or Ctrl-C).
"""

import json
import signal
import sys
import time


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main() -> int:
    spec_path, result_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    signal.signal(signal.SIGTERM, _terminate)

    from nni.experiment import Experiment

    exp = Experiment("local")
    exp.config.trial_command = spec["trial_command"]
    exp.config.trial_code_directory = spec["trial_code_directory"]
    exp.config.search_space = spec["search_space"]
    exp.config.tuner.name = "Random"
    exp.config.trial_concurrency = spec["concurrency"]
    exp.config.max_trial_number = spec["trials"]
    exp.config.experiment_working_directory = spec["working_directory"]
    result = {"ok": False}
    started = False
    try:
        t0 = time.time()
        exp.start(spec["port"])
        started = True
        t_ready = time.time()
        status = None
        deadline = t0 + spec["timeout"]
        while time.time() < deadline:
            status = exp.get_status()
            if status in ("DONE", "STOPPED", "ERROR"):
                break
            time.sleep(spec.get("poll", 0.1))
        t_seen = time.time()
        trials = exp.list_trial_jobs()
        ends = [t.endTime / 1000.0 for t in trials if getattr(t, "endTime", None)]
        starts = [t.startTime / 1000.0 for t in trials if getattr(t, "startTime", None)]
        statuses = {}
        for t in trials:
            statuses[str(t.status)] = statuses.get(str(t.status), 0) + 1
        result = {
            "ok": status == "DONE",
            "status": status,
            "t0": t0,
            "ready": t_ready - t0,
            "seen_done": t_seen - t0,
            "last_trial_end": (max(ends) - t0) if ends else None,
            "first_trial_start": (min(starts) - t0) if starts else None,
            "trial_statuses": statuses,
            "lifetimes": sorted(
                (t.endTime - t.startTime) / 1000.0 for t in trials
                if getattr(t, "endTime", None) and getattr(t, "startTime", None)),
        }
    finally:
        if started:
            t_stop = time.time()
            try:
                exp.stop()
            finally:
                result["stop_seconds"] = time.time() - t_stop
        with open(result_path, "w") as f:
            json.dump(result, f)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
