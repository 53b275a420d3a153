"""The process that works out the Pareto routes' answers (``python -m nni.manager._pareto_worker``).

A hypervolume history is seconds of numpy and Python for thousands of results.  On a thread
of the manager it would still share the manager's GIL: the event loop then waits up to the
switch interval (5 ms) every time it gives the GIL up (each socket read and write), and a busy
experiment saw its loop stall for hundreds of milliseconds.  So the work runs here, in a
process of its own that the manager keeps (see ``_objectives.ParetoAnswers``).

Protocol: one JSON request per line on stdin, ``{"kind": "front" | "hypervolume", "path": DB,
"config": {...} | null}``; one JSON answer per line on stdout, ``{"key": LAST_RESULT_ID,
"value": ...}`` or ``{"error": TEXT}``.  The process ends when stdin closes (its manager ended,
even by ``kill -9``).
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """One request's answer, read from its own read-only connection in one snapshot."""
    import sqlite3

    from ._objectives import COMPUTE, last_result_id
    db = sqlite3.connect(f"file:{request['path']}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("BEGIN")    # the key and the answer from the same snapshot
        try:
            return {"key": last_result_id(db), "value": COMPUTE[request["kind"]](db, request.get("config"))}
        finally:
            db.execute("COMMIT")
    finally:
        db.close()


def main() -> None:
    # Imported before the first request, while the manager starts: the first answer (a page
    # opened at once, a resumed experiment's front) does not wait for numpy.
    from . import _objectives  # noqa: F401
    from ..algorithms.hpo import _pareto  # noqa: F401
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line))
        except Exception:  # noqa: BLE001 - sent to the manager, which answers the request 500
            reply = {"error": traceback.format_exc()}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
