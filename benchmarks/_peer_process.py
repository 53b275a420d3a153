"""Running one benchmark job in a peer's virtualenv (Optuna, hyperopt: never the project's).

Standard library only: the peers' interpreters import the benchmark modules too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_in_peer_venv(python: str, argv: list[str], job: dict) -> dict:
    """``python -m <argv...> '<job json>'`` from the repository root; its last stdout line, as
    JSON. RuntimeError with the last stderr line when it fails."""
    proc = subprocess.run([python, "-m", *argv, json.dumps(job)], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "peer failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])
