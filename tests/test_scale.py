"""Scale behaviour: hundreds of concurrent reporting clients, big stores, paged and streamed reads.

How fast these are is measured by ``benchmarks/scale.py``; the tests here check what users
rely on at that size: nothing lost or stored twice, pages that add up to the whole, an
export whose memory does not grow with the experiment.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nni.manager.launcher import LISTEN_BACKLOG
from nni.manager.store import Store, insert_metric

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}

#: Opens 2 x CLIENTS connections at once (HTTP/1.0, one request each, as nni's trial channel does):
#: CLIENTS metrics, each sent twice concurrently, as by a client retrying after a lost reply.
FLOOD_TRIAL = """
    import asyncio, json, os, sys
    import nni
    import nni.trial
    CLIENTS = int(sys.argv[1])
    p = nni.get_next_parameter()
    PID = nni.trial._current_parameter_id()
    host, port = os.environ["NNI_TRIAL_CHANNEL"].split("//")[1].split(":")
    trial, token = os.environ["NNI_TRIAL_JOB_ID"], os.environ["NNI_TRIAL_TOKEN"]

    async def post(sequence):
        body = json.dumps({"parameter_id": PID, "type": "PERIODICAL", "sequence": sequence,
                           "value": json.dumps(sequence / 10)}).encode()
        head = (f"POST /api/v1/trial/{trial}/metric HTTP/1.0\\r\\nHost: {host}:{port}\\r\\n"
                f"Authorization: Bearer {token}\\r\\nContent-Type: application/json\\r\\n"
                f"Content-Length: {len(body)}\\r\\n\\r\\n").encode()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head + body)
        answer = await reader.read()
        writer.close()
        return int(answer.split(b" ", 2)[1])

    async def main():
        return await asyncio.gather(*(post(i % CLIENTS) for i in range(2 * CLIENTS)))

    statuses = asyncio.run(main())
    bad = [s for s in statuses if s != 200]
    if bad:
        sys.exit(f"{len(bad)} requests refused: {sorted(set(bad))}")
    nni.report_final_result(p["x"])
"""


def test_every_metric_is_stored_once_under_hundreds_of_concurrent_clients(make_experiment, tmp_path):
    """Two trials each open 600 connections at once (300 metrics, each sent twice): every
    request is answered 200 and each metric is in the store exactly once."""
    clients = 300
    exp = make_experiment(FLOOD_TRIAL, SPACE, concurrency=2, max_trials=2)
    exp.config.trial_command += f" {clients}"
    assert exp.run(port=0) is True
    db = sqlite3.connect(Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite")
    statuses = [r[0] for r in db.execute("SELECT status FROM trials")]
    assert statuses == ["SUCCEEDED", "SUCCEEDED"], [r for r in db.execute("SELECT message FROM trials")]
    for (trial_id,) in db.execute("SELECT trial_id FROM trials"):
        sequences = [r[0] for r in db.execute(
            "SELECT sequence FROM metrics WHERE trial_id = ? AND type = 'PERIODICAL' ORDER BY sequence", (trial_id,))]
        assert sequences == list(range(clients))
        assert db.execute("SELECT count(*) FROM metrics WHERE trial_id = ? AND type = 'FINAL'",
                          (trial_id,)).fetchone()[0] == 1


def test_the_server_queues_a_thousand_connections(make_experiment):
    """The REST socket is listening with a backlog that holds a thousand trials connecting at once
    (128 before: the surplus SYNs were dropped and retried seconds later)."""
    exp = make_experiment("import time; time.sleep(60)", SPACE, concurrency=1, max_trials=1)
    exp.start(port=0)
    port = exp.port
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    # ss shows a listening socket's backlog as Send-Q (the kernel caps it at net.core.somaxconn).
    backlog = int(out.split()[2])
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert backlog == min(LISTEN_BACKLOG, somaxconn) and backlog >= min(1000, somaxconn)


# -- big stores ------------------------------------------------------------------------------------
def make_store(experiment_dir: Path, trials: int, *, pad: int = 0, intermediates: int = 0) -> None:
    """An experiment directory whose store holds ``trials`` finished trials, written in the real
    schema by the real Store (one final result each, ``intermediates`` intermediate results)."""
    store = Store(experiment_dir / "db" / "nni.sqlite")
    store.set_meta(id=experiment_dir.name, status="DONE", start_time=1.0, end_time=2.0,
                   config={"searchSpace": SPACE, "trialConcurrency": 1})
    with store.transaction() as db:
        db.executemany("INSERT INTO trials(trial_id, sequence_id, status, trial_dir, submit_time, start_time,"
                       " end_time, exit_code) VALUES (?,?,?,?,?,?,?,0)",
                       ((f"t{i}", i, "SUCCEEDED", f"/nowhere/t{i}", 1.0, 1.0, 2.0) for i in range(trials)))
        db.executemany("INSERT INTO parameters(parameter_id, trial_id, parameter_index, source, parameters,"
                       " created, status) VALUES (?,?,0,'algorithm',?,1.0,'SUCCEEDED')",
                       ((i, f"t{i}", json.dumps({"x": i / trials, "pad": "p" * pad})) for i in range(trials)))
        for i in range(trials):
            for s in range(intermediates):
                insert_metric(db, f"t{i}", i, "PERIODICAL", s, json.dumps(s))
            insert_metric(db, f"t{i}", i, "FINAL", 0, json.dumps(i / trials))
    store.close()


class Viewer:
    """``python -m nni.manager --view`` (what ``nnictl view`` starts) on a stopped experiment."""

    def __init__(self, experiment_dir: Path) -> None:
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nni.manager", "--view", experiment_dir.name, "--dir", str(experiment_dir),
             "--port", "0", "--ready-fd", str(write_fd), "--foreground"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as ready:
            info = json.loads(ready.readline())
        assert "error" not in info, info
        self.url = info["url"] + "/api/v1/nni"
        self.secret = info["webui_url"].split("token=", 1)[1]

    def open(self, path: str):
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.secret}"})
        return urllib.request.urlopen(request, timeout=120)

    def get(self, path: str):
        with self.open(path) as response:
            return json.loads(response.read())

    def memory_kb(self, field: str) -> int:
        """VmRSS (now) or VmHWM (peak) of the viewer process, in kB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(60)


@pytest.fixture
def viewer():
    started: list[Viewer] = []

    def _start(experiment_dir: Path) -> Viewer:
        started.append(Viewer(experiment_dir))
        return started[-1]
    yield _start
    for v in started:
        v.stop()


def test_trial_and_metric_pages_add_up_to_the_whole(tmp_path, viewer):
    experiment_dir = tmp_path / "experiments" / "paged01"
    make_store(experiment_dir, 250, intermediates=2)
    v = viewer(experiment_dir)
    everything = v.get("/trial-jobs")
    pages = [v.get(f"/trial-jobs?offset={o}&limit=100") for o in (0, 100, 200)]
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [j for p in pages for j in p] == everything
    assert everything[123]["finalMetricData"][0]["data"] == json.dumps(json.dumps(123 / 250))
    metrics = v.get("/metric-data")
    assert len(metrics) == 750
    assert v.get("/metric-data?offset=700&limit=100") == metrics[700:]
    assert v.get("/metric-data/t7?limit=2") == [m for m in metrics if m["trialJobId"] == "t7"][:2]
    for bad, field in (("limit=-1", "limit"), ("limit=ten", "limit"), ("offset=-5", "offset"),
                       ("limit=100000", "limit")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            v.get(f"/trial-jobs?{bad}")
        assert caught.value.code == 400 and field in json.loads(caught.value.read())["error"]


def _follow(v: Viewer, path: str, between=None) -> tuple[list, int]:
    """Every page from ``path`` on, following the ``Link: <...>; rel="next"`` headers;
    ``between(pages read)`` runs before each next page is asked for."""
    base = v.url[:-len("/api/v1/nni")]
    items, pages, url = [], 0, v.url + path
    while url:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {v.secret}"})
        with urllib.request.urlopen(request, timeout=120) as response:
            items += json.loads(response.read())
            link = response.headers.get("Link")
        pages += 1
        url = None
        if link:
            target, rel = link.split(";", 1)
            assert rel.strip() == 'rel="next"' and target.startswith("<") and target.endswith(">"), link
            url = base + target[1:-1]
        if url and between:
            between(pages)
    return items, pages


def test_keyset_pages_add_up_to_the_whole_while_results_arrive(tmp_path, viewer):
    """``?after=&limit=`` pages (followed through their Link header) give every metric once, in
    arrival order, also while a trial keeps reporting between two pages; trial pages too."""
    experiment_dir = tmp_path / "experiments" / "keyset01"
    make_store(experiment_dir, 60, intermediates=3)          # 240 metrics
    v = viewer(experiment_dir)
    writer = Store(experiment_dir / "db" / "nni.sqlite")      # a live manager's writes, between pages

    def report(page: int) -> None:
        with writer.transaction() as db:
            assert insert_metric(db, "t7", 7, "PERIODICAL", 100 + page, json.dumps(page))
    seen, pages = _follow(v, "/metric-data?limit=25", between=report)
    everything = v.get("/metric-data")
    assert len(everything) == 240 + pages - 1 and pages == 10    # 9 full pages, 9 reports meanwhile
    assert seen == everything                                    # none missed, none twice, same order
    keys = [(m["trialJobId"], m["type"], m["sequence"]) for m in seen]
    assert len(set(keys)) == len(keys)
    # One trial's metrics, and trials filtered by status, page the same way.
    t7, _ = _follow(v, "/metric-data/t7?limit=2")
    assert t7 == [m for m in everything if m["trialJobId"] == "t7"] and len(t7) == 4 + 9
    trials, trial_pages = _follow(v, "/trial-jobs?status=SUCCEEDED&limit=7")
    assert trials == v.get("/trial-jobs") and trial_pages == 9
    assert v.get("/metric-data?after=230&limit=5") == everything[230:235]    # ids from 1: id 231 is row 230
    with pytest.raises(urllib.error.HTTPError) as caught:
        v.get("/metric-data?after=10&offset=20")
    assert caught.value.code == 400 and "after" in json.loads(caught.value.read())["error"]
    writer.close()


def test_the_whole_trial_list_is_streamed_in_chunks_that_add_up(tmp_path, viewer):
    """2,500 trials: the unpaged list (sent in chunks of TRIAL_CHUNK trials) is valid JSON and
    the same as its keyset pages, status filter included."""
    from nni.manager.rest import TRIAL_CHUNK
    trials = 2 * TRIAL_CHUNK + 500
    experiment_dir = tmp_path / "experiments" / "stream01"
    make_store(experiment_dir, trials)
    v = viewer(experiment_dir)
    with v.open("/trial-jobs") as response:
        assert response.headers.get("Transfer-Encoding") == "chunked"
        everything = json.loads(response.read())
    assert [j["sequenceId"] for j in everything] == list(range(trials))
    pages, count = _follow(v, "/trial-jobs?limit=10000")
    assert pages == everything and count == 1
    assert v.get("/trial-jobs?status=SUCCEEDED") == everything and v.get("/trial-jobs?status=FAILED") == []
    assert v.get(f"/trial-jobs?after={trials - 3}") == everything[-2:]


def test_export_of_a_large_store_is_streamed_in_bounded_memory(tmp_path, viewer):
    """120,000 results with 600-byte parameters: an export of ~90 MB of JSON. The viewer sends it
    in chunks (never the whole list in memory): its peak RSS grows by far less than the export."""
    trials = 120_000
    experiment_dir = tmp_path / "experiments" / "bigexp01"
    make_store(experiment_dir, trials, pad=600)
    v = viewer(experiment_dir)
    assert len(v.get("/trial-jobs?limit=10")) == 10    # warmed up: routes, JSON, SQLite caches
    before = v.memory_kb("VmHWM")
    size = rows = 0
    key, carry = b'"trialJobId": ', b""
    with v.open("/export-data") as response:
        assert response.headers.get("Transfer-Encoding") == "chunked"
        for chunk in iter(lambda: response.read(1 << 20), b""):
            size += len(chunk)
            window = carry + chunk
            rows += window.count(key)
            carry = window[-(len(key) - 1):]       # a key cut in two by the chunk boundary counts once
            last = window[-2000:]
    peak = v.memory_kb("VmHWM")
    assert size > 80_000_000 and rows == trials
    final_row = json.loads(last[last.rindex(b'{"parameter"'):-1])
    assert final_row["trialJobId"] == f"t{trials - 1}" and final_row["parameter"]["x"] == (trials - 1) / trials
    grown_mb = (peak - before) / 1024
    assert grown_mb < 40, f"the viewer's peak RSS grew by {grown_mb:.0f} MB while exporting {size / 1e6:.0f} MB"


def test_a_write_that_fails_inside_a_group_commit_is_undone_alone(tmp_path):
    """Group commit: one failing write is rolled back (its caller gets the error), the writes
    queued with it are committed."""
    store = Store(tmp_path / "db" / "nni.sqlite")
    store.add_trial("a", 0, "/nowhere", 0, {"x": 1})

    def broken(db):
        db.execute("INSERT INTO events(timestamp, kind) VALUES (1, 'half-done')")
        raise RuntimeError("write failed half-way")

    async def main():
        return await asyncio.gather(
            store.group_commit(lambda db: insert_metric(db, "a", 0, "PERIODICAL", 0, "0.5")),
            store.group_commit(broken),
            store.group_commit(lambda db: insert_metric(db, "a", 0, "FINAL", 0, "0.9")),
            store.group_commit(lambda db: insert_metric(db, "a", 0, "PERIODICAL", 0, "0.5")),  # a retry
            return_exceptions=True)
    first, failed, final, retry = asyncio.run(main())
    assert (first, final, retry) == (True, True, False)
    assert isinstance(failed, RuntimeError)
    store.close()
    db = sqlite3.connect(tmp_path / "db" / "nni.sqlite")   # what another process reads: committed data
    assert db.execute("SELECT type, value FROM metrics ORDER BY id").fetchall() == [("PERIODICAL", "0.5"),
                                                                                    ("FINAL", "0.9")]
    assert db.execute("SELECT count(*) FROM events WHERE kind = 'half-done'").fetchone()[0] == 0
    assert db.execute("SELECT status FROM parameters").fetchone()[0] == "SUCCEEDED"
