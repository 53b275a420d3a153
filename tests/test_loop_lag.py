"""The loop rule (issue 25): nothing slow runs on the manager's event loop, and the loop-lag
monitor says so.

A busy multi-objective experiment (1,000 stored results, 3 objectives, trials reporting, the
Pareto page and the web UI polling in Chromium, a client asking for the hypervolume as fast as
it is answered) runs in a real manager process; its own monitor must log no stall over 250 ms
and a cheap route must answer promptly throughout.  And a client that opens ``/export-data``
and stops reading must not pin the WAL while the store keeps being written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_for
from nni.manager.store import Store, insert_metric

OBJECTIVES = [{"metric": "acc", "mode": "maximize"}, {"metric": "cost", "mode": "minimize"},
              {"metric": "size", "mode": "minimize"}]
SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "y": {"_type": "uniform", "_value": [0, 1]}}

#: Reports a few intermediate results, then the three objectives (a trade-off in x and y).
TRIAL = """
    import time, nni
    p = nni.get_next_parameter()
    for step in range(4):
        nni.report_intermediate_result({"default": step, "acc": p["x"] * step})
        time.sleep(0.2)
    nni.report_final_result({"default": p["x"], "acc": p["x"], "cost": p["y"] ** 2,
                             "size": abs(p["x"] - p["y"])})
"""


def objective_point(i: int, n: int) -> tuple[dict, dict]:
    """Parameters and a 3-objective result: spread so the front holds many points."""
    import math
    x, y = (i * 0.618034) % 1.0, (i * 0.414214) % 1.0
    value = {"default": x, "acc": x, "cost": y * y + 0.1 * math.sin(7 * x), "size": abs(x - y)}
    return {"x": x, "y": y}, value


def fill_store(path: Path, results: int, *, config: dict, meta: dict | None = None,
               point=objective_point) -> None:
    """A store holding ``results`` finished trials with a final result each, written by the
    real ``Store`` in its schema (what a stopped experiment leaves behind)."""
    store = Store(path)
    store.set_meta(config=config, status="STOPPED", start_time=time.time() - 60, end_time=time.time() - 30,
                   **(meta or {}))
    with store.transaction() as db:
        db.executemany("INSERT INTO trials(trial_id, sequence_id, status, trial_dir, submit_time, start_time,"
                       " end_time, exit_code) VALUES (?,?,?,?,?,?,?,0)",
                       ((f"s{i:05d}", i, "SUCCEEDED", str(path.parent.parent / "trials" / f"s{i:05d}"),
                         1.0, 1.0, 2.0) for i in range(results)))
        points = [point(i, results) for i in range(results)]
        db.executemany("INSERT INTO parameters(parameter_id, trial_id, parameter_index, source, parameters,"
                       " created, status) VALUES (?,?,0,'algorithm',?,1.0,'SUCCEEDED')",
                       ((i, f"s{i:05d}", json.dumps(points[i][0])) for i in range(results)))
        for i in range(results):
            insert_metric(db, f"s{i:05d}", i, "FINAL", 0, json.dumps(points[i][1]))
    store.close()


class Manager:
    """``python -m nni.manager`` (what ``nnictl`` starts) resuming or viewing an experiment."""

    def __init__(self, mode: str, experiment_dir: Path) -> None:
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nni.manager", f"--{mode}", experiment_dir.name, "--dir", str(experiment_dir),
             "--port", "0", "--ready-fd", str(write_fd)],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as ready:
            info = json.loads(ready.readline() or '{"error": "the manager ended before it was ready"}')
        assert "error" not in info, info
        self.port = info["port"]
        self.url = info["url"] + "/api/v1/nni"
        self.webui_url = info["webui_url"]
        self.secret = info["webui_url"].split("token=", 1)[1]
        self.log = experiment_dir / "log" / "nnimanager.log"

    def get(self, path: str, timeout: float = 120):
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.secret}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(60)


@pytest.fixture
def managers():
    started: list[Manager] = []

    def _start(mode: str, experiment_dir: Path) -> Manager:
        started.append(Manager(mode, experiment_dir))
        return started[-1]
    yield _start
    for m in started:
        m.stop()


def canonical_config(tmp_path: Path, **fields) -> dict:
    """A config as the manager stores it (canonical, camelCase)."""
    from nni.experiment.config import ExperimentConfig
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "trial.py").write_text(textwrap.dedent(TRIAL))
    config = ExperimentConfig("local")
    config.trial_command = f"{sys.executable} trial.py"
    config.trial_code_directory = str(code)
    config.search_space = SPACE
    config.experiment_working_directory = str(tmp_path / "experiments")
    config.tuner.name = "Random"
    config.tuner.class_args = {"seed": 3}
    for key, value in fields.items():
        setattr(config, key, value)
    return config.canonical_copy().to_dict()


# -- the monitor itself -------------------------------------------------------------------------
def test_a_stall_is_logged_with_what_ran(caplog):
    """A callback that holds the loop for 400 ms is logged as a stall naming that callback; a
    healthy loop logs none, and the summary at stop gives the maximum lag."""
    from nni.manager.loop_lag import LoopLagMonitor

    def hold_the_loop_for_a_while() -> None:
        time.sleep(0.4)

    async def main() -> LoopLagMonitor:
        monitor = LoopLagMonitor()
        monitor.start()
        await asyncio.sleep(0.3)                      # healthy: no stall
        assert monitor.stalls == 0
        asyncio.get_running_loop().call_soon(hold_the_loop_for_a_while)
        await asyncio.sleep(0.3)
        await monitor.stop()
        return monitor

    with caplog.at_level(logging.INFO, logger="nni.manager.loop_lag"):
        monitor = asyncio.run(main())
    stalls = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalls) == 1 and monitor.stalls == 1, stalls
    lag = int(re.search(r"stalled (\d+) ms", stalls[0]).group(1))
    assert 300 <= lag < 5000, stalls[0]
    assert "hold_the_loop_for_a_while" in stalls[0] and "test_loop_lag.py" in stalls[0], stalls[0]
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event loop lag: max")]
    assert summary and int(re.search(r"max (\d+) ms", summary[0]).group(1)) == lag, summary


# -- a busy experiment --------------------------------------------------------------------------
#: The rule's bound: the monitor may log stalls over 100 ms, none may be over this.
MAX_STALL_MS = 250


def test_a_busy_multi_objective_experiment_never_stalls_the_loop(tmp_path, managers):
    """1,000 stored results, 3 objectives, trials reporting, the Pareto page and the web UI
    polling in Chromium and a client asking for the front and its hypervolume over and over:
    the manager's loop-lag monitor logs no stall over 250 ms, and ``check-status`` is answered
    promptly all along (before the fix one hypervolume answer held the loop for seconds)."""
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium is missing")
    from playwright.sync_api import sync_playwright
    stored, new = 1000, 24
    config = canonical_config(tmp_path, objectives=OBJECTIVES, trial_concurrency=3,
                              max_trial_number=stored + new)
    experiment_dir = tmp_path / "experiments" / "busy0001"
    fill_store(experiment_dir / "db" / "nni.sqlite", stored, config=config, meta={"id": "busy0001"})
    manager = managers("resume", experiment_dir)

    done = threading.Event()
    probes: list[float] = []
    answers = {"front": 0, "hypervolume": 0}
    failures: list[str] = []

    def probe() -> None:          # a cheap route, as a trial's report or a lease renewal is
        while not done.is_set():
            began = time.monotonic()
            try:
                manager.get("/check-status", timeout=60)
            except Exception as exc:  # noqa: BLE001 - reported by the test below
                failures.append(f"check-status: {exc!r}")
            probes.append(time.monotonic() - began)
            done.wait(0.1)

    def pareto_client() -> None:  # a second viewer of the Pareto page, without the pause
        while not done.is_set():
            try:
                manager.get("/pareto-front")
                answers["front"] += 1
                manager.get("/pareto-front/hypervolume")
                answers["hypervolume"] += 1
            except Exception as exc:  # noqa: BLE001
                failures.append(f"pareto: {exc!r}")
                done.wait(1)

    threads = [threading.Thread(target=probe, daemon=True), threading.Thread(target=pareto_client, daemon=True)]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            try:
                context = browser.new_context()
                ui = context.new_page()
                ui.goto(manager.webui_url)          # the secret becomes the context's cookie
                pareto = context.new_page()
                pareto.goto(f"http://127.0.0.1:{manager.port}/pareto")
                for thread in threads:
                    thread.start()
                pareto.wait_for_selector("#chart[data-front-size]", timeout=180_000)
                busy_since = time.time()
                wait_for(lambda: manager.get("/check-status")["status"] == "DONE", timeout=300,
                         what=f"the {new} new trials to end")
                wait_for(lambda: answers["hypervolume"] >= 3, timeout=300, what="3 hypervolume answers")
                assert int(pareto.locator("#hv").get_attribute("data-points")) >= 10
                assert len(manager.get("/export-data")) == stored + new
            finally:
                done.set()
                browser.close()
    finally:
        done.set()
        for thread in threads:
            thread.join(120)
        manager.stop()
    assert not failures, failures[:5]
    slowest = max(probes)
    log = manager.log.read_text()
    # The busy phase, from when the Pareto page has drawn: start-up before it (the resume reading
    # the stored experiment back on the loop, the launcher's one full garbage collection) is
    # logged too, but is not what this test is about.
    busy = [line for line in log.splitlines() if "event loop stalled" in line and _logged_at(line) >= busy_since]
    stalls = [int(re.search(r"stalled (\d+) ms", line).group(1)) for line in busy]
    summary = re.findall(r"event loop lag: max (\d+) ms, (\d+) stalls", log)
    print(f"check-status: {len(probes)} probes, slowest {slowest * 1000:.0f} ms; pareto answers {answers}; "
          f"monitor: {summary}, stalls {stalls}")
    assert slowest < 1.0, f"check-status waited {slowest:.2f} s behind something on the loop"
    assert summary, "the manager's loop-lag monitor logged no summary"
    assert all(s <= MAX_STALL_MS for s in stalls), \
        busy


def _logged_at(line: str) -> float:
    """The time of a manager log line (``[2026-12-06 14:38:03,147] ...``) as epoch seconds."""
    import datetime
    stamp = line[1:line.index("]")]
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


# -- export-data and the WAL -------------------------------------------------------------------
def test_a_client_that_stops_reading_an_export_does_not_pin_the_wal(tmp_path, managers):
    """An export of 20,000 results (~13 MB) is opened by a client that reads its first bytes and
    then stops. While it hangs there, the store keeps being written (intermediate results, as
    running trials send them): a checkpoint still completes and the WAL file stays bounded.
    The client can then read the rest: every result, once."""
    results = 20_000

    def padded(i: int, n: int) -> tuple[dict, dict]:
        params, value = objective_point(i, n)
        return {**params, "pad": "p" * 600}, value
    experiment_dir = tmp_path / "experiments" / "export01"
    database = experiment_dir / "db" / "nni.sqlite"
    fill_store(database, results, config={"searchSpace": SPACE, "trialConcurrency": 1}, point=padded)
    viewer = managers("view", experiment_dir)
    viewer.get("/ui/overview")      # the web UI's warm-up snapshot (a read of its own) is over

    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # a slow reader's small window
    client.connect(("127.0.0.1", viewer.port))
    client.sendall((f"GET /api/v1/nni/export-data HTTP/1.1\r\nHost: 127.0.0.1:{viewer.port}\r\n"
                    f"Authorization: Bearer {viewer.secret}\r\nConnection: close\r\n\r\n").encode())
    head = b""
    while b'{"parameter"' not in head:
        head += client.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]

    writer = Store(database)                     # the live manager's writes, while the client hangs
    wal = Path(f"{database}-wal")
    big = json.dumps({"default": 1.0, "blob": "b" * 8000})
    sequence = iter(range(10**9))

    def write(n: int) -> int:
        """``n`` writes of ~8 kB, one transaction each; the WAL file's largest size meanwhile."""
        largest = 0
        for _ in range(n):
            with writer.transaction() as db:
                insert_metric(db, "s00007", 7, "PERIODICAL", next(sequence), big)
            largest = max(largest, wal.stat().st_size)
        return largest

    def checkpoint_completes() -> bool:
        largest = write(20)
        assert largest < 32 * 2**20, f"the WAL grew to {largest / 2**20:.1f} MB: a reader pins it"
        busy, log, done = writer._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return busy == 0 and log == done
    try:
        wait_for(checkpoint_completes, timeout=60, what="a checkpoint that completes (a reader pins the WAL)")
        # 1,500 writes: ~20 MB of WAL if nothing could be checkpointed; the automatic checkpoint
        # (every 1,000 pages, ~4 MB) keeps it to about that when no snapshot is held.
        largest = write(1500)
        assert largest < 6 * 2**20, f"the WAL grew to {largest / 2**20:.1f} MB while the export hung"
    finally:
        writer.close()

    client.settimeout(120)
    body = head
    while chunk := client.recv(1 << 20):
        body += chunk
    client.close()
    payload = _dechunk(body.split(b"\r\n\r\n", 1)[1])
    rows = json.loads(payload)
    assert [r["trialJobId"] for r in rows] == [f"s{i:05d}" for i in range(results)]


def _dechunk(data: bytes) -> bytes:
    """The body of an HTTP/1.1 chunked answer."""
    out, i = [], 0
    while True:
        end = data.index(b"\r\n", i)
        size = int(data[i:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2:end + 2 + size])
        i = end + 2 + size + 2
