"""Start-up on huge finite search spaces: time to a serving manager and its peak memory.

Run from the repository root with the project's interpreter::

    .venv/bin/python benchmarks/big_spaces.py [--tuners Random,TPE,GridSearch] [--repeat 1]
    .venv/bin/python benchmarks/big_spaces.py --quick     # the small and the nested space only (~15 s)

For each tuner and space it runs ``nnictl create`` (a detached manager, like a user would)
with ``maxTrialNumber: 1`` and a trial that exits at once, and reports the wall time until
``nnictl create`` returns (the manager serves and its tuner has the space) and the
manager's peak resident memory (``VmHWM``) once its trial is done; then it stops it.
Targets (issue 11): under 1 s and under 150 MB for ``randint [0, 2**63]`` and a
``quniform`` with 10**12 steps. The "small" row is the same experiment on a 2-parameter
continuous space, the baseline any manager pays.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACES = {
    "small (uniform x2)": {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}},
    "randint [0, 2**63]": {"seed": {"_type": "randint", "_value": [0, 2**63]}},
    "quniform 10**12 steps": {"lr": {"_type": "quniform", "_value": [0, 1e12, 1]}},
    "both + nested randint": {
        "seed": {"_type": "randint", "_value": [0, 2**63]},
        "lr": {"_type": "quniform", "_value": [0, 1e12, 1]},
        "opt": {"_type": "choice", "_value": ["sgd", {"_name": "adam", "b": {"_type": "randint", "_value": [0, 2**40]}}]},
    },
}


def _run(tuner: str, space: dict, work: Path) -> tuple[float, float]:
    (work / "trial.py").write_text("import nni; nni.get_next_parameter(); nni.report_final_result(0)\n")
    config = work / "config.json"
    config.write_text(json.dumps({
        "searchSpace": space, "trialCommand": f"{sys.executable} trial.py", "trialCodeDirectory": str(work),
        "trialConcurrency": 1, "maxTrialNumber": 1, "experimentWorkingDirectory": str(work / "exps"),
        "tuner": {"name": tuner}, "trainingService": {"platform": "local"}}))
    env = {**os.environ, "NNI_NG_HOME": str(work / "home")}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "nni.cli", "create", "--config", str(config), "--port", "0"],
                         capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    entry = json.loads(next((work / "home" / "experiments").glob("*.json")).read_text())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((work / "exps").glob("*/trials/*/stdout")):
            time.sleep(0.1)
        time.sleep(1.0)
        status = Path(f"/proc/{entry['pid']}/status").read_text()
        peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
        trial = _trial_status(work / "exps" / entry["id"] / "db" / "nni.sqlite")
        if trial != "SUCCEEDED":
            raise RuntimeError(f"{tuner} on {list(space)}: the trial ended {trial}")
    finally:
        subprocess.run([sys.executable, "-m", "nni.cli", "stop", entry["id"]], capture_output=True, env=env,
                       timeout=120)
    return elapsed, peak_kb / 1024


def _trial_status(db: Path, wait: float = 30) -> str | None:
    """The one trial's status once it has ended (a trial that fails is the benchmark broken)."""
    deadline = time.monotonic() + wait
    status = None
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT status FROM trials").fetchone()
        status = row[0] if row else None
        if status not in (None, "WAITING", "RUNNING"):
            break
        time.sleep(0.1)
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tuners", default="Random,TPE,GridSearch")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="only the small space and the nested one (which holds both huge ones)")
    args = parser.parse_args()
    spaces = {k: v for k, v in SPACES.items() if not args.quick or k.startswith(("small", "both"))}
    print("| tuner | space | nnictl create s (best) | manager peak RSS MB |")
    print("|---|---|---:|---:|")
    for tuner in args.tuners.split(","):
        for name, space in spaces.items():
            runs = []
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory() as tmp:
                    runs.append(_run(tuner, space, Path(tmp)))
            print(f"| {tuner} | {name} | {min(r[0] for r in runs):.2f} | {max(r[1] for r in runs):.0f} |", flush=True)


if __name__ == "__main__":
    main()
