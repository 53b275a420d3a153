"""The trial-side API outside and inside an experiment process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NNI_")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          env={**base, **(env or {})})


def test_import_nni_stays_light():
    out = run_python("import sys, nni\n"
                     "heavy = [m for m in ('numpy', 'scipy', 'yaml', 'aiohttp', 'logging', 'http.client')"
                     " if m in sys.modules]\nprint(heavy)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_standalone_run_works_without_an_experiment():
    out = run_python(
        "import nni\n"
        "p = nni.get_next_parameter()\n"
        "assert p == {}, p\n"
        "nni.report_intermediate_result(0.5)\n"
        "nni.report_final_result({'default': 0.9, 'acc': 0.9})\n"
        "print(nni.get_trial_id(), nni.get_experiment_id(), nni.get_sequence_id(), nni.get_current_parameter())\n")
    assert out.returncode == 0, out.stderr
    assert "final result" in out.stdout and '"acc": 0.9' in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "STANDALONE STANDALONE 0 {}"
    assert "standalone" in out.stderr


def test_non_json_metric_is_refused_with_a_clear_message():
    out = run_python("import nni\nnni.report_final_result({'default': object()})\n")
    assert out.returncode != 0
    assert "a metric must be JSON-serialisable" in out.stderr


def test_metrics_of_any_json_shape_are_accepted_as_in_nni():
    out = run_python("import numpy as np, nni\nnni.report_final_result([1, 2.5])\n"
                     "nni.report_final_result(np.arange(3))\nnni.report_final_result({'acc': np.float32(0.5)})\n"
                     "nni.report_intermediate_result('text')\n")
    assert out.returncode == 0, out.stderr
    assert "[1, 2.5]" in out.stdout and "[0, 1, 2]" in out.stdout and '{"acc": 0.5}' in out.stdout


def test_numpy_scalars_are_accepted_as_metrics():
    out = run_python("import numpy as np, nni\nnni.report_final_result(np.float32(0.25))\n"
                     "nni.report_final_result({'default': np.float64(0.5), 'n': np.int64(3)})\n")
    assert out.returncode == 0, out.stderr
    assert "0.25" in out.stdout and '"n": 3' in out.stdout


def test_unreachable_manager_fails_the_trial_with_a_clear_error():
    env = {"NNI_PLATFORM": "local", "NNI_TRIAL_JOB_ID": "abc", "NNI_EXP_ID": "e",
           "NNI_TRIAL_CHANNEL": "http://127.0.0.1:9", "NNI_TRIAL_TOKEN": "t"}
    out = run_python("import nni\nnni.get_next_parameter()\n", env)
    assert out.returncode != 0
    assert "cannot reach the NNI manager at 127.0.0.1:9" in out.stderr


def test_a_trial_that_reports_imports_nothing_heavy_for_it(make_experiment):
    """What the channel adds to a trial's start stays small: talking to the manager at
    127.0.0.1 loads neither the 'socket' wrapper nor the 'idna' codec (with stringprep and
    unicodedata: ~1 ms a trial, which getaddrinfo loads for a host given as str)."""
    trial = """
        import json, os, sys, nni
        p = nni.get_next_parameter()
        nni.report_final_result(p["x"])
        heavy = [m for m in ("encodings.idna", "stringprep", "socket", "http.client", "logging", "numpy")
                 if m in sys.modules]
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "heavy.json"), "w") as f:
            json.dump(heavy, f)
    """
    exp = make_experiment(trial, {"x": {"_type": "uniform", "_value": [0, 1]}}, concurrency=1, max_trials=1)
    assert exp.run(port=0) is True
    (trial_dir,) = (Path(exp.config.experiment_working_directory) / exp.id / "trials").iterdir()
    assert json.loads((trial_dir / "heavy.json").read_text()) == []


def test_the_first_parameters_come_without_asking_the_manager(make_experiment):
    """The first get_next_parameter() reads the set the trial was started with (bound before it
    started, ``NNI_TRIAL_PARAMETER``): no round trip, so it answers even with the manager out of
    reach, and it is the set stored for the trial; reporting still goes to the manager."""
    trial = """
        import json, os
        os.environ["NNI_TRIAL_CHANNEL"] = "http://127.0.0.1:9"   # nothing listens: any request fails
        import nni
        p = nni.get_next_parameter()
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "got.json"), "w") as f:
            json.dump(p, f)
    """
    exp = make_experiment(trial, {"x": {"_type": "uniform", "_value": [0, 1]}}, concurrency=1, max_trials=1)
    assert exp.run(port=0) is True
    exp_dir = Path(exp.config.experiment_working_directory) / exp.id
    (trial_dir,) = (exp_dir / "trials").iterdir()
    with sqlite3.connect(exp_dir / "db" / "nni.sqlite") as conn:
        (stored,) = conn.execute("SELECT parameters FROM parameters").fetchone()
    assert json.loads((trial_dir / "got.json").read_text()) == json.loads(stored)
