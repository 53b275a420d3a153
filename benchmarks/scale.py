"""Scale: 1,000 concurrent trials, a million stored results, and Ray Tune on the same Ray cluster.

    /work/venv/bin/python benchmarks/scale.py                # everything (~20-30 min on 2 cores)
    /work/venv/bin/python benchmarks/scale.py --quick        # smaller sizes (~5 min)
    /work/venv/bin/python benchmarks/scale.py --parts a,b    # some parts only
    /work/venv/bin/python benchmarks/scale.py --before main  # also run parts a and b on git ref `main`
    /work/venv/bin/python benchmarks/scale.py --smoke        # every part at tiny sizes (~40 s; CI)
    /work/venv/bin/python benchmarks/scale.py --from-results benchmarks/results/scale.json   # the table again

Prints one markdown table (also written to benchmarks/results/scale[_MODE].md): every measure with
its target, our figure and the peer's beside it. The raw figures go to
benchmarks/results/scale[_MODE].json (``--out FILE``, compressed when it ends in .gz), from
which ``--from-results`` prints the same table. Peers: (a)/(b) the same benchmark on the
code of ``--before REF`` (this project before the fixes), (c) Ray Tune's ``tune.Tuner`` with
its random search (BasicVariantGenerator) and with OptunaSearch, from its own virtualenv
(``--raytune-python``, default /work/peers/raytune/bin/python). See benchmarks/README.md.

(a) N simulated trials (real HTTP/1.0 on loopback, one connection per request, as nni's trial
    channel) each report one intermediate result per second for D seconds, against a real
    manager (REST server, SQLite store, Random tuner) whose training service starts nothing.
(b) A store of T trials / 10 T metrics written with direct SQL in the real schema, resumed by
    ``python -m nni.manager --resume`` (what ``nnictl resume`` starts); then paged REST reads
    and the streamed export against it.
(c) A 2-node local Ray cluster (``ray start`` twice, as tests/test_ray.py): 500 trivial and 500
    short sklearn trials at the same concurrency, ours (platform ray) and Ray Tune's, both
    timed from before anything touches Ray to the last trial's end as the driver records it.
(d) Manager memory and CPU per running trial on local, remote (the throwaway sshd of
    tests/test_remote.py) and ray.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = "/work/peers/raytune/bin/python"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}
RAY_TERM_GRACE_S = 30.0   # how long a test cluster is given to end on SIGTERM before SIGKILL


# -- process measures ----------------------------------------------------------------------------
def mem_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(pythonpath: Path | None, home: Path) -> dict[str, str]:
    env = {**os.environ, "NNI_NG_HOME": str(home), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env["PYTHONPATH"] = str(pythonpath or ROOT)
    return env


# -- (a) many reporting trials ---------------------------------------------------------------------
def serve_load(trials: int, work: Path) -> None:
    """Child process: a real manager whose training service only hands out ids and tokens.

    Prints READY once every trial exists (specs in work/specs.json), stops on a line on stdin,
    then prints the number of stored metrics.
    """
    import logging

    import nni.manager.manager as manager_module
    from nni.experiment import Experiment
    from nni.manager.launcher import run_experiment
    try:
        from nni.manager.launcher import settle_heap
    except ImportError:        # the 'before' peer's code
        settle_heap = lambda: None  # noqa: E731
    from nni.training_service import TrainingService, TrialEnded

    logging.getLogger("nni").setLevel(logging.WARNING)
    specs: list[dict[str, str]] = []

    class TokenService(TrainingService):
        async def submit(self, spec) -> None:
            specs.append({"id": spec.trial_id, "token": spec.env["NNI_TRIAL_TOKEN"],
                          "url": spec.env["NNI_TRIAL_CHANNEL"]})
            await self.on_trial_start(spec.trial_id)

        async def kill(self, trial_id: str) -> None:
            await self.on_trial_end(TrialEnded(trial_id, None, "killed"))

        async def stop(self) -> None:
            pass

    manager_module.create_training_service = lambda config: TokenService()
    exp = Experiment("local")
    exp.config.trial_command = "true"
    exp.config.trial_code_directory = str(work)
    exp.config.search_space = SPACE
    exp.config.trial_concurrency = trials
    exp.config.max_trial_number = trials
    exp.config.experiment_working_directory = str(work / "experiments")
    exp.config.tuner.name = "Random"
    config = exp.config.canonical_copy()

    async def main() -> None:
        holder: dict[str, Any] = {}
        def started(manager: Any) -> None:     # as python -m nni.manager does
            holder.update(m=manager)
            settle_heap()
        task = asyncio.ensure_future(run_experiment(config, port=0, started=started))
        while len(specs) < trials:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        (work / "specs.json").write_text(json.dumps(specs))
        print(f"READY {os.getpid()}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        manager = holder["m"]
        await manager.stop()
        await task
        db = sqlite3.connect(work / "experiments" / manager.id / "db" / "nni.sqlite")
        print(json.dumps({"stored": db.execute("SELECT count(*) FROM metrics").fetchone()[0]}), flush=True)

    asyncio.run(main())


LOAD_CLIENT = r'''
import asyncio, json, os, random, sys, time
specs, duration, start_at, out = json.load(open(sys.argv[1])), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
latencies, refused, retried = {"parameter": [], "metric": []}, [], 0
late = []   # how far behind its schedule a report was sent (the client itself was too slow)
slow = []   # (action, seconds since the start, latency) of requests over 100 ms: when they happen

KEEP = sys.argv[5] == "keepalive"   # as nni's channel: one kept connection per trial (else one per request)
conns = {}

async def exchange(host, port, trial, request):
    """One request, its answer (status, body); on the trial's kept connection when KEEP."""
    conn = conns.pop(trial["id"], None) if KEEP else None
    reused = conn is not None
    for _ in range(2):
        if conn is None:
            conn = await asyncio.open_connection(host, port)
        reader, writer = conn
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            if not reused:
                raise OSError("closed without an answer")
            conn, reused = None, False        # the manager closed the idle connection: a new one
            continue
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        body = await reader.readexactly(length)
        if KEEP and b"connection: close" not in head.lower():
            conns[trial["id"]] = conn
        else:
            writer.close()
        return int(head.split(b" ", 2)[1]), body
    raise OSError("closed without an answer")

async def post(host, port, trial, action, payload):
    global retried
    body = json.dumps(payload).encode()
    head = (f"POST /api/v1/trial/{trial['id']}/{action} HTTP/1.{1 if KEEP else 0}\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {trial['token']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    started = time.perf_counter()
    for attempt in range(5):          # nni's channel: 5 tries, 0.2 s doubling
        try:
            status, data = await exchange(host, port, trial, head + body)
            break
        except OSError as exc:
            retried += 1
            await asyncio.sleep(0.2 * 2 ** attempt)
    else:
        refused.append("connect")
        return None
    latencies[action].append(time.perf_counter() - started)
    if latencies[action][-1] > 0.1:
        slow.append((action, round(time.time() - start_at, 2), round(latencies[action][-1], 3)))
    if status != 200:
        refused.append(status)
    return json.loads(data or b"null")

async def trial(t):
    host, port = t["url"].split("//")[1].split(":")
    port = int(port)
    record = await post(host, port, t, "parameter", {"index": 0})
    pid = record["parameter_id"]
    begin = start_at + random.random()          # trials are not in lock-step
    for i in range(duration):
        await asyncio.sleep(max(0.0, begin + i - time.time()))
        late.append(time.time() - begin - i)
        await post(host, port, t, "metric", {"parameter_id": pid, "type": "PERIODICAL", "sequence": i,
                                              "value": json.dumps(i * 0.1)})
    await post(host, port, t, "metric", {"parameter_id": pid, "type": "FINAL", "sequence": 0,
                                          "value": json.dumps(1.0)})

async def main():
    await asyncio.gather(*(trial(t) for t in specs))

asyncio.run(main())
with open(out, "w") as f:   # a file, not stdout: a full pipe would block the client
    cpu = os.times()
    json.dump({"latencies": latencies["metric"], "parameter_latencies": latencies["parameter"],
               "refused": len(refused), "retried_connects": retried, "late": sorted(late), "slow": slow,
               "cpu_s": cpu.user + cpu.system}, f)
'''


def bench_load(trials: int, duration: int, pythonpath: Path | None, clients: int = 2,
               connections: str = "keepalive") -> dict[str, Any]:
    """(a): returns p50/p99 latency, refused, lost, manager RSS and CPU. ``connections``: what
    the simulated trials do, as the trial channel of the code under test: ``keepalive`` (one
    connection per trial, HTTP/1.1) or ``close`` (one per request, HTTP/1.0: before keep-alive)."""
    with tempfile.TemporaryDirectory(prefix="nni-scale-a-") as tmp:
        work = Path(tmp)
        # NNI_SCALE_PROFILE=FILE: the manager runs under py-spy (a flame graph of the report path).
        profile = os.environ.get("NNI_SCALE_PROFILE")
        spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-o", profile, "-r", "200", "-f", "raw", "--"] \
            if profile else []
        manager = subprocess.Popen([*spy, sys.executable, __file__, "--serve-load", str(trials), str(work)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=work,
                                   env=child_env(pythonpath, work / "home"))
        try:
            assert manager.stdout is not None and manager.stdin is not None
            line = manager.stdout.readline()
            while line and not line.startswith("READY "):     # py-spy's banner
                line = manager.stdout.readline()
            if not line.startswith("READY "):
                raise RuntimeError(f"the load manager did not start: {line!r}")
            pid = int(line.split()[1])      # not manager.pid under py-spy
            specs = json.loads((work / "specs.json").read_text())
            (work / "client.py").write_text(LOAD_CLIENT)
            parts = [specs[i::clients] for i in range(clients)]
            for i, part in enumerate(parts):
                (work / f"specs{i}.json").write_text(json.dumps(part))
            rss_before = mem_kb(pid)
            cpu_before, wall_before = cpu_s(pid), time.monotonic()
            start_at = time.time() + 1.0
            procs = [subprocess.Popen([sys.executable, str(work / "client.py"), str(work / f"specs{i}.json"),
                                       str(duration), str(start_at), str(work / f"result{i}.json"), connections])
                     for i in range(clients)]
            rss_peak = 0
            while any(p.poll() is None for p in procs):
                rss_peak = max(rss_peak, mem_kb(pid))
                time.sleep(0.5)
            cpu = cpu_s(pid) - cpu_before
            wall = time.monotonic() - wall_before
            if any(p.returncode for p in procs):
                raise RuntimeError("a load client failed")
            results = [json.loads((work / f"result{i}.json").read_text()) for i in range(clients)]
            manager.stdin.write("stop\n")
            manager.stdin.flush()
            line = manager.stdout.readline()
            while line and not line.startswith("{"):
                line = manager.stdout.readline()
            stored = json.loads(line)["stored"]
            manager.wait(120)
        finally:
            if manager.poll() is None:
                manager.kill()
                manager.wait()
    latencies = sorted(x for r in results for x in r["latencies"])
    slow = sorted(x for r in results for x in r["slow"])
    if slow:   # when the slow requests came (whole seconds since the first report was due)
        seconds: dict[str, int] = {}
        for action, at, _latency in slow:
            key = f"{action}@{int(at)}s"
            seconds[key] = seconds.get(key, 0) + 1
        print(f"    requests over 100 ms: {len(slow)}: {seconds}", file=sys.stderr, flush=True)
    firsts = sorted(x for r in results for x in r["parameter_latencies"])
    late = sorted(x for r in results for x in r["late"])

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000
    expected = trials * (duration + 1)
    client_cpu = sum(r["cpu_s"] for r in results)
    return {"p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99), "max_ms": latencies[-1] * 1000,
            "parameter_p99_ms": pct(firsts, 0.99), "late_p99_ms": pct(late, 0.99),
            "client_cpu_pct": 100 * client_cpu / wall,
            "refused": sum(r["refused"] for r in results), "retried": sum(r["retried_connects"] for r in results),
            "lost": expected - stored, "stored": stored, "metrics_per_s": stored / wall,
            "rss_mb": rss_peak / 1024, "rss_before_mb": rss_before / 1024, "cpu_pct": 100 * cpu / wall}


# -- (b) a million stored results ------------------------------------------------------------------
def make_big_store(work: Path, trials: int, per_trial: int) -> tuple[str, Path]:
    """An experiment directory whose store holds ``trials`` SUCCEEDED trials with ``per_trial``
    metrics each (the last FINAL), written with executemany in the schema of the ``nni`` on
    PYTHONPATH (its own Store creates the tables and indexes)."""
    from nni.experiment import Experiment
    from nni.manager.store import Store

    experiment_id = "bigstore"
    exp_dir = work / "experiments" / experiment_id
    (work / "code").mkdir(parents=True, exist_ok=True)
    exp = Experiment("local")
    exp.config.trial_command = "true"
    exp.config.trial_code_directory = str(work / "code")
    exp.config.search_space = {"lr": {"_type": "loguniform", "_value": [1e-5, 1]},
                               "batch": {"_type": "choice", "_value": [16, 32, 64, 128]}}
    exp.config.trial_concurrency = 8
    exp.config.max_trial_number = trials          # reached: the resumed experiment is DONE at once
    exp.config.experiment_working_directory = str(work / "experiments")
    exp.config.tuner.name = "Random"
    config = exp.config.canonical_copy()
    store = Store(exp_dir / "db" / "nni.sqlite")
    now = time.time() - 3600
    store.set_meta(id=experiment_id, config=config.json(), start_time=now, end_time=now + 3000, status="STOPPED")
    store.add_event("EXPERIMENT_CREATED")
    db = store._db
    db.execute("BEGIN")
    db.executemany("INSERT INTO trials(trial_id, sequence_id, status, trial_dir, submit_time, start_time, end_time,"
                   " exit_code) VALUES (?,?,'SUCCEEDED',?,?,?,?,0)",
                   ((f"t{i:06d}", i, str(exp_dir / "trials" / f"t{i:06d}"), now, now + 1, now + 2)
                    for i in range(trials)))
    db.executemany("INSERT INTO parameters(parameter_id, trial_id, parameter_index, source, parameters, created,"
                   " status) VALUES (?,?,0,'algorithm',?,?,'SUCCEEDED')",
                   ((i, f"t{i:06d}", json.dumps({"lr": 10 ** -(1 + i % 5), "batch": 16 << (i % 4)}), now)
                    for i in range(trials)))
    db.executemany("INSERT INTO metrics(trial_id, parameter_id, type, sequence, value, timestamp)"
                   " VALUES (?,?,?,?,?,?)",
                   ((f"t{i:06d}", i, "FINAL" if s == per_trial - 1 else "PERIODICAL",
                     0 if s == per_trial - 1 else s, json.dumps(round((i % 997) / 997 + s / 100, 6)), now + 1 + s)
                    for i in range(trials) for s in range(per_trial)))
    db.execute("COMMIT")
    store.close()
    return experiment_id, exp_dir


def _get(url: str, secret: str) -> tuple[float, int]:
    """(seconds, bytes) of one GET, body read to the end."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secret}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        size = 0
        for chunk in iter(lambda: response.read(1 << 20), b""):
            size += len(chunk)
    return time.perf_counter() - started, size


def bench_store(trials: int, per_trial: int, pythonpath: Path | None, work: Path) -> dict[str, Any]:
    """(b): resume time, manager RSS, paged queries, streamed export. ``work`` holds the store
    (copied per run, so every run resumes the same untouched experiment)."""
    template = work / f"template-{'before' if pythonpath else 'ours'}"
    if not template.exists():
        started = time.perf_counter()
        _json_child(["--make-store", str(template), str(trials), str(per_trial)], pythonpath=pythonpath)
        print(f"    store written in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    run_dir = work / f"run-{time.monotonic_ns()}"
    shutil.copytree(template, run_dir)
    exp_dir = run_dir / "experiments" / "bigstore"
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
    manager = subprocess.Popen([sys.executable, "-m", "nni.manager", "--resume", "bigstore", "--dir", str(exp_dir),
                                "--port", "0", "--ready-fd", str(write_fd), "--foreground"],
                               pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=child_env(pythonpath, run_dir / "home"), cwd=run_dir)
    os.close(write_fd)
    out: dict[str, Any] = {}
    try:
        with os.fdopen(read_fd) as ready:
            info = json.loads(ready.readline() or '{"error": "no answer"}')
        out["resume_s"] = time.perf_counter() - started
        if "error" in info:
            raise RuntimeError(f"resume failed: {info['error']}")
        url = info["url"] + "/api/v1/nni"
        secret = info["webui_url"].split("token=", 1)[1]
        time.sleep(1.0)
        out["rss_mb"] = mem_kb(manager.pid) / 1024
        # Then let it settle (the tuner takes in the stored results, the web UI builds its
        # snapshot: both start once it serves) before timing reads: until it used less than 5 %
        # of a core for 2 s (at most 120 s). Both columns get the same treatment.
        settle_start = time.perf_counter()
        while time.perf_counter() - settle_start < 120:
            before_cpu = cpu_s(manager.pid)
            time.sleep(2.0)
            if cpu_s(manager.pid) - before_cpu < 0.1:
                break
        out["settle_s"] = time.perf_counter() - settle_start
        out["rss_settled_mb"] = mem_kb(manager.pid) / 1024

        def median_ms(path: str, runs: int = 3) -> float:
            return statistics.median(_get(url + path, secret)[0] for _ in range(runs)) * 1000
        last = trials - 100
        out["trials_first_page_ms"] = median_ms("/trial-jobs?offset=0&limit=100")
        out["trials_last_page_ms"] = median_ms(f"/trial-jobs?offset={last}&limit=100")
        out["trial_metrics_ms"] = median_ms(f"/metric-data/t{trials // 2:06d}")
        out["metrics_last_page_ms"] = median_ms(f"/metric-data?offset={trials * per_trial - 1000}&limit=1000")
        if pythonpath is None:   # keyset pages (the 'before' code ignores ?after= and answers everything)
            out["metrics_last_keyset_ms"] = median_ms(f"/metric-data?after={trials * per_trial - 1000}&limit=1000")
            out["trials_last_keyset_ms"] = median_ms(f"/trial-jobs?after={last - 1}&limit=100")
        # Reset the peak (VmHWM) to the current RSS: the export's own peak, not the resume's.
        Path(f"/proc/{manager.pid}/clear_refs").write_text("5")
        peak_before = mem_kb(manager.pid, "VmHWM")
        out["export_s"], size = _get(url + "/export-data", secret)
        out["export_mb"] = size / 1e6
        out["export_peak_growth_mb"] = (mem_kb(manager.pid, "VmHWM") - peak_before) / 1024
        out["trials_all_s"], _ = _get(url + "/trial-jobs", secret)   # last: unpaged, it is the memory peak
        out["rss_peak_mb"] = mem_kb(manager.pid, "VmHWM") / 1024
    finally:
        manager.send_signal(signal.SIGTERM)
        try:
            manager.wait(120)
        except subprocess.TimeoutExpired:
            manager.kill()
            manager.wait()
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


# -- (c) Ray: ours against Ray Tune ------------------------------------------------------------------
class RayCluster:
    """Two Ray nodes on this machine (``ray start --head`` and one more), from one virtualenv."""

    def __init__(self, python: str, num_cpus: int) -> None:
        self.ray = str(Path(python).parent / "ray")
        self.num_cpus = num_cpus
        self.temp_dir = tempfile.mkdtemp(prefix="nrs", dir="/tmp")    # short: AF_UNIX path limit
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        self.env.pop("PYTHONPATH", None)
        # Trials on the nodes run `python3` from the nodes' PATH: this virtualenv's, activated or not.
        self.env["PATH"] = str(Path(python).parent) + os.pathsep + self.env.get("PATH", "")
        self.address = ""

    def _start(self, *args: str) -> None:
        out = subprocess.run([self.ray, "start", "--node-ip-address=127.0.0.1", f"--num-cpus={self.num_cpus}",
                              "--num-gpus=0", "--disable-usage-stats", *args], env=self.env,
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"ray start {args[0]}: {(out.stderr or out.stdout).strip()[-500:]}")

    def __enter__(self) -> "RayCluster":
        try:
            port = free_port()
            self._start("--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={self.temp_dir}")
            self.address = f"127.0.0.1:{port}"
            self._start(f"--address={self.address}", f"--node-manager-port={free_port()}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _processes(self) -> list[int]:
        """Its raylets, GCS, agents (their command lines name its temp dir; workers exit with them)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if self.temp_dir.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                        found.append(int(entry))
                except OSError:
                    pass
        return found

    def __exit__(self, *exc: Any) -> None:
        # Not `ray stop`: it ends every Ray process of this user, other people's clusters too.
        # Its GCS and raylets take their time over SIGTERM (half a minute here): --smoke cuts that short.
        for sig, wait in ((signal.SIGTERM, RAY_TERM_GRACE_S), (signal.SIGKILL, 10.0)):
            for pid in self._processes():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while self._processes() and time.monotonic() < deadline:
                time.sleep(0.2)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


TRIVIAL_TRIAL = "import nni\np = nni.get_next_parameter()\nnni.report_final_result(p['x'])\n"
SKLEARN_TRIAL = """import nni
p = nni.get_next_parameter()
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.tree import DecisionTreeClassifier
X, y = load_digits(return_X_y=True)
model = DecisionTreeClassifier(max_depth=p["max_depth"], min_samples_split=p["min_samples_split"], random_state=0)
nni.report_final_result(float(cross_val_score(model, X, y, cv=3).mean()))
"""
# 38 x 38 = 1,444 configurations: more than 500, so a tuner that never repeats one (ours) can
# run all 500 trials (18 x 18 = 324 ended our Random tuner's run at 324). Upper bounds are
# exclusive in both NNI's randint and tune.randint.
SKLEARN_SPACE = {"max_depth": {"_type": "randint", "_value": [2, 40]},
                 "min_samples_split": {"_type": "randint", "_value": [2, 40]}}

TUNE_SCRIPT = r'''
import json, sys, tempfile, time
address, kind, algo, trials, concurrency = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
t0 = time.time()
import ray
from ray import tune
ray.init(address=address, logging_level="ERROR", log_to_driver=False)

def trivial(config):
    tune.report({"score": config["x"]})

def sklearn_trial(config):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier
    X, y = load_digits(return_X_y=True)
    model = DecisionTreeClassifier(max_depth=config["max_depth"], min_samples_split=config["min_samples_split"],
                                   random_state=0)
    tune.report({"score": float(cross_val_score(model, X, y, cv=3).mean())})

first, ends = [], []
class Times(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not first:
            first.append(time.time())

    # The driver learns that a trial ended: the event our manager stores as the trial's end_time.
    def on_trial_complete(self, iteration, trials, trial, **info):
        ends.append(time.time())

    def on_trial_error(self, iteration, trials, trial, **info):
        ends.append(time.time())

if kind == "trivial":
    trainable, space = trivial, {"x": tune.uniform(0, 1)}
else:
    trainable, space = sklearn_trial, {"max_depth": tune.randint(2, 40), "min_samples_split": tune.randint(2, 40)}
if algo == "optuna":
    from ray.tune.search.optuna import OptunaSearch
    search = OptunaSearch()
else:
    from ray.tune.search import BasicVariantGenerator
    search = BasicVariantGenerator()
tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), param_space=space,
                   tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=concurrency,
                                               search_alg=search, metric="score", mode="max"),
                   run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0, callbacks=[Times()]))
results = tuner.fit()
returned = time.time() - t0
done = sum(1 for r in results if r.error is None and "score" in (r.metrics or {}))
print(json.dumps({"wall_s": max(ends) - t0 if ends else None, "returned_s": returned,
                  "first_result_s": first[0] - t0 if first else None, "done": done, "trials": trials}))
'''


def on_fresh_cluster(python: str, concurrency: int, run: Any, tries: int = 2) -> dict[str, Any]:
    """``run(address)`` on a new 2-node cluster of ``python``'s Ray (concurrency/2 CPUs per node);
    tried again on a new cluster if it fails (on a shared machine someone's `ray stop` may end
    it), {} if it fails every time."""
    for attempt in range(tries):
        try:
            with RayCluster(python, concurrency // 2) as cluster:
                return run(cluster.address)
        except Exception as exc:  # noqa: BLE001 - reported, and the table says "–"
            print(f"    run on Ray failed (try {attempt + 1}): {str(exc).strip()[-300:]}", file=sys.stderr)
    return {}


def bench_ours_on_ray(address: str, kind: str, trials: int, concurrency: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from nni.experiment import Experiment

    with tempfile.TemporaryDirectory(prefix="nni-scale-c-") as tmp:
        work = Path(tmp)
        (work / "code").mkdir()
        (work / "code" / "trial.py").write_text(TRIVIAL_TRIAL if kind == "trivial" else SKLEARN_TRIAL)
        exp = Experiment("local")
        exp.config.trial_command = "python3 trial.py"
        exp.config.trial_code_directory = str(work / "code")
        exp.config.search_space = SPACE if kind == "trivial" else SKLEARN_SPACE
        exp.config.trial_concurrency = concurrency
        exp.config.max_trial_number = trials
        exp.config.experiment_working_directory = str(work / "experiments")
        exp.config.tuner.name = "Random"
        exp.config.training_service = {"platform": "ray", "address": address, "trialResources": {"numCpus": 1}}
        # Timed as Ray Tune's side (TUNE_SCRIPT): from before anything touches Ray to the last
        # trial's end as the driver records it; wait()/fit() returning is kept as returned_s.
        t0 = time.time()
        returned = None
        try:
            exp.start(port=0)
            status = exp.wait()
            returned = time.time() - t0
        finally:
            exp.stop()
        db = sqlite3.connect(work / "experiments" / exp.id / "db" / "nni.sqlite")
        first = db.execute("SELECT MIN(timestamp) FROM metrics WHERE type = 'FINAL'").fetchone()[0]
        done = db.execute("SELECT count(*) FROM trials WHERE status = 'SUCCEEDED'").fetchone()[0]
        for trial_status, message in db.execute("SELECT status, message FROM trials WHERE status != 'SUCCEEDED'"):
            print(f"    ours on Ray: a trial ended {trial_status}: {(message or '')[:300]}", file=sys.stderr)
        end = db.execute("SELECT MAX(end_time) FROM trials").fetchone()[0]
    return {"wall_s": end - t0 if end else None, "returned_s": returned,
            "first_result_s": first - t0 if first else None, "done": done, "trials": trials, "status": status}


def bench_tune(python: str, address: str, kind: str, algo: str, trials: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nni-scale-tune-") as tmp:
        script = Path(tmp) / "tune_bench.py"
        script.write_text(TUNE_SCRIPT)
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "HOME": tmp}
        env.pop("PYTHONPATH", None)
        out = subprocess.run([python, str(script), address, kind, algo, str(trials), str(concurrency)],
                             capture_output=True, text=True, env=env, cwd=tmp, timeout=3600)
        if out.returncode != 0:
            errors = [line for line in out.stderr.splitlines() if "Error" in line or "error" in line]
            raise RuntimeError("\n".join(errors[-5:]) or out.stderr[-1500:])
        return json.loads(out.stdout.strip().splitlines()[-1])


# -- (d) memory and CPU per running trial -----------------------------------------------------------
WAITING_TRIAL = """import time, nni
p = nni.get_next_parameter()
for i in range(600):
    nni.report_intermediate_result(i)
    time.sleep(1)
nni.report_final_result(p['x'])
"""


def per_trial(platform: str, trials: int, window: float, settle: float = 3.0) -> dict[str, Any]:
    """Child process: a real experiment with ``trials`` trials running at once on ``platform``;
    the manager's RSS and CPU (this process: the Python API runs the manager in a thread)."""
    sys.path.insert(0, str(ROOT))
    import logging

    from nni.experiment import Experiment
    logging.getLogger("nni").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="nni-scale-d-") as tmp:
        work = Path(tmp)
        (work / "code").mkdir()
        (work / "code" / "trial.py").write_text(WAITING_TRIAL)
        exp = Experiment("local")
        venv_bin = str(Path(sys.executable).parent)
        exp.config.trial_command = "python3 trial.py"
        exp.config.trial_code_directory = str(work / "code")
        exp.config.search_space = SPACE
        exp.config.trial_concurrency = trials
        exp.config.max_trial_number = trials
        exp.config.experiment_working_directory = str(work / "experiments")
        exp.config.tuner.name = "Random"
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ["PATH"]
        sshd = None
        if platform == "remote":
            from training_services import remote_service   # benchmarks/ is on sys.path (script dir)
            exp.config.training_service, sshd = remote_service(work, venv_bin)
        elif platform == "ray":
            import ray  # noqa: F401 - imported before the baseline, like the other platforms' modules
            exp.config.training_service = {"platform": "ray", "trialResources": {"numCpus": 0.05}}
        import nni.training_service  # noqa: F401
        pid = os.getpid()
        rss0 = mem_kb(pid)
        try:
            exp.start(port=0)
            deadline = time.monotonic() + 600
            while len(exp.list_trial_jobs("RUNNING")) < trials:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(exp.list_trial_jobs('RUNNING'))} of {trials} trials running")
                time.sleep(min(1.0, settle))
            time.sleep(settle)       # every trial has asked for its parameters and reports
            cpu0, t0 = cpu_s(pid), time.monotonic()
            time.sleep(window)
            cpu, wall = cpu_s(pid) - cpu0, time.monotonic() - t0
            rss = mem_kb(pid)
        finally:
            exp.stop()
            if sshd is not None:
                sshd.kill()
    return {"trials": trials, "rss_mb": rss / 1024, "rss_per_trial_kb": (rss - rss0) / trials,
            "cpu_pct": 100 * cpu / wall, "cpu_pct_per_trial": 100 * cpu / wall / trials}


# -- driver ----------------------------------------------------------------------------------------
def _json_child(args: list[str], timeout: float = 1800, pythonpath: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nni-scale-home-") as home:
        out = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, timeout=timeout,
                             env=child_env(pythonpath, Path(home)))    # its stderr: ours (progress, errors)
    if out.returncode != 0:
        raise RuntimeError(f"{args[0]} failed with exit code {out.returncode} (its stderr is above)")
    return json.loads(out.stdout.strip().splitlines()[-1])


def before_tree(ref: str, work: Path) -> Path:
    """The project's files at git ``ref``, unpacked into ``work`` (the 'before' peer)."""
    target = work / f"before-{ref.replace('/', '_')}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def fmt(value: Any, spec: str = ".0f") -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return format(value, spec)


A_MEASURES = (("p50_ms", "report latency p50 ms", "", ".1f"),
              ("p99_ms", "report latency p99 ms", "< 200", ".1f"),
              ("max_ms", "report latency max ms", "", ".0f"),
              ("metrics_per_s", "metrics stored / s", "{trials}", ".0f"),
              ("refused", "requests refused", "0", "d"),
              ("retried", "connects retried", "0", "d"),
              ("lost", "metrics lost (store checked)", "0", "d"),
              ("rss_mb", "manager RSS MB (peak)", "", ".0f"),
              ("cpu_pct", "manager CPU % of one core", "", ".0f"),
              ("parameter_p99_ms", "first request (parameters, all at once) p99 ms", "", ".0f"),
              ("client_cpu_pct", "simulated clients' CPU % of one core", "", ".0f"),
              ("late_p99_ms", "client sent late p99 ms (client starved)", "", ".0f"))
B_MEASURES = (("resume_s", "resume (start to serving) s", "< 5", ".2f"),
              ("rss_mb", "manager RSS 1 s after resume MB", "< 300", ".0f"),
              ("settle_s", "then busy (tuner import, UI snapshot) s", "", ".1f"),
              ("rss_settled_mb", "manager RSS once settled MB", "< 300", ".0f"),
              ("trials_first_page_ms", "GET trial-jobs first page (100) ms", "< 100", ".1f"),
              ("trials_last_page_ms", "GET trial-jobs last page (100) ms", "< 100", ".1f"),
              ("trial_metrics_ms", "GET metric-data/{trial} ms", "< 100", ".1f"),
              ("metrics_last_page_ms", "GET metric-data last page (1000, offset) ms", "< 100", ".1f"),
              ("metrics_last_keyset_ms", "GET metric-data last page (1000, after=) ms", "< 100", ".1f"),
              ("trials_last_keyset_ms", "GET trial-jobs last page (100, after=) ms", "< 100", ".1f"),
              ("trials_all_s", "GET trial-jobs, all trials s", "", ".2f"),
              ("export_s", "GET export-data s", "", ".2f"),
              ("export_mb", "export size MB", "", ".1f"),
              ("export_peak_growth_mb", "manager peak RSS growth during export MB", "constant", ".0f"),
              ("rss_peak_mb", "manager peak RSS MB", "< 300", ".0f"))
# Per mode: (a) trials and seconds, (b) trials and metrics per trial, (c) trials and
# concurrency, (d) trials, seconds measured and seconds waited before (all trials reporting).
SIZES = {"full": {"load": (1000, 30), "store": (100_000, 10), "ray": (500, 8), "per_trial": (32, 15.0, 3.0)},
         "quick": {"load": (200, 10), "store": (10_000, 10), "ray": (50, 8), "per_trial": (8, 5.0, 3.0)},
         # every part's code path in ~30 s on 2 cores (CI): it finds breaks; its figures mean little
         "smoke": {"load": (20, 2), "store": (1_000, 10), "ray": (8, 2), "per_trial": (4, 1.0, 0.3)}}


def _guard(part: str, record: dict[str, Any], measure: Any) -> None:
    """``record[...] = measure()``, an exception kept as ``record['error']`` (the other parts still run)."""
    try:
        measure()
    except Exception as exc:  # noqa: BLE001 - reported in the table and the exit status
        record["error"] = f"{type(exc).__name__}: {str(exc).strip()[-300:]}"
        print(f"  {part} failed: {record['error']}", file=sys.stderr, flush=True)


def measure_all(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """Run the parts asked for; the raw figures (what render() makes the table from)."""
    parts = set(args.parts.split(","))
    sizes = SIZES[mode]
    load_trials, load_seconds = sizes["load"]
    store_trials, per_trial_metrics = sizes["store"]
    ray_trials, ray_concurrency = sizes["ray"]
    d_trials, d_window, d_settle = sizes["per_trial"]
    ray_trials = args.ray_trials or ray_trials
    load_trials = args.load_trials or load_trials
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                            capture_output=True, text=True).stdout.strip()
    raw: dict[str, Any] = {"meta": {
        "command": " ".join(["python benchmarks/scale.py", *sys.argv[1:]]), "mode": mode, "commit": commit,
        "cpus": os.cpu_count(), "load_start": os.getloadavg()[0], "before": args.before,
        "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    with tempfile.TemporaryDirectory(prefix="nni-scale-") as tmp:
        work = Path(tmp)
        before = before_tree(args.before, work) if args.before else None
        if "a" in parts:
            print(f"(a) {load_trials} trials x 1 metric/s for {load_seconds} s", file=sys.stderr, flush=True)
            a = raw["a"] = {"trials": load_trials, "seconds": load_seconds, "connections": args.load_connections}

            def part_a() -> None:
                a["ours"] = bench_load(load_trials, load_seconds, None, connections=args.load_connections)
                # The 'before' code's trial channel opened one connection per request.
                if before:
                    a["before"] = bench_load(load_trials, load_seconds, before, connections="close")
            _guard("(a)", a, part_a)
        if "b" in parts:
            print(f"(b) store: {store_trials} trials, {store_trials * per_trial_metrics} metrics",
                  file=sys.stderr, flush=True)
            b = raw["b"] = {"trials": store_trials, "per_trial": per_trial_metrics}

            def part_b() -> None:
                b["ours"] = bench_store(store_trials, per_trial_metrics, None, work / "b")
                if before:
                    b["before"] = bench_store(store_trials, per_trial_metrics, before, work / "b")
            _guard("(b)", b, part_b)
        if "c" in parts:
            have_peer = Path(args.raytune_python).exists()
            if not have_peer:
                print(f"(c) Ray Tune skipped: no peer interpreter at {args.raytune_python} (--raytune-python)",
                      file=sys.stderr, flush=True)
            raw["c"] = []
            for kind in args.ray_kinds.split(","):
                c: dict[str, Any] = {"kind": kind, "trials": ray_trials, "concurrency": ray_concurrency, "tune": {},
                                     "tune_note": "" if have_peer else f"skipped: no {args.raytune_python}"}
                raw["c"].append(c)
                print(f"(c) Ray, 2 nodes: {ray_trials} {kind} trials, concurrency {ray_concurrency}",
                      file=sys.stderr, flush=True)
                c["ours"] = on_fresh_cluster(sys.executable, ray_concurrency, lambda address: _json_child(
                    ["--ours-ray", address, kind, str(ray_trials), str(ray_concurrency)]))
                if have_peer:
                    for algo in [a for a in args.ray_algos.split(",") if a]:
                        c["tune"][algo] = on_fresh_cluster(
                            args.raytune_python, ray_concurrency, lambda address: bench_tune(
                                args.raytune_python, address, kind, algo, ray_trials, ray_concurrency))
        if "d" in parts:
            raw["d"] = []
            small = max(1, d_trials // 4)
            for platform in ("local", "remote", "ray"):
                d: dict[str, Any] = {"platform": platform, "small": small, "trials": d_trials, "window": d_window}
                raw["d"].append(d)
                print(f"(d) {platform}: {small} then {d_trials} trials running", file=sys.stderr, flush=True)

                def part_d() -> None:
                    d["at_small"] = _json_child(["--per-trial", platform, str(small), str(d_window), str(d_settle)])
                    d["at_trials"] = _json_child(["--per-trial", platform, str(d_trials), str(d_window),
                                                  str(d_settle)])
                _guard(f"(d) {platform}", d, part_d)
    raw["meta"]["load_end"] = os.getloadavg()[0]
    raw["meta"]["ended_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return raw


def render(raw: dict[str, Any]) -> str:
    """The markdown table of a run's raw figures (measure_all's, or a results file's)."""
    meta = raw["meta"]
    rows: list[tuple[str, ...]] = []   # part, measure, target, ours, before, tune random, tune optuna
    if "a" in raw:
        a = raw["a"]
        label = f"(a) {a['trials']} trials, 1 result/s each, {a['seconds']} s ({a['connections']})"
        if "error" in a:
            rows.append((label, "failed", "", a["error"], "", "", ""))
        ours, b4 = a.get("ours", {}), a.get("before")
        for key, measure, target, spec in A_MEASURES if ours else ():
            rows.append((label, measure, target.format(trials=a["trials"]), fmt(ours.get(key), spec),
                         fmt(b4.get(key), spec) if b4 else "", "", ""))
    if "b" in raw:
        b = raw["b"]
        label = f"(b) {b['trials']:,} trials / {b['trials'] * b['per_trial']:,} metrics"
        if "error" in b:
            rows.append((label, "failed", "", b["error"], "", "", ""))
        ours, b4 = b.get("ours", {}), b.get("before")
        for key, measure, target, spec in B_MEASURES if ours else ():
            rows.append((label, measure, target, fmt(ours.get(key), spec), fmt(b4.get(key), spec) if b4 else "",
                         "", ""))
    for c in raw.get("c", []):
        label = f"(c) Ray, 2 nodes: {c['trials']} {c['kind']} trials, concurrency {c['concurrency']}"

        def val(r: dict[str, Any] | None, compute: Any, spec: str, note: str = "–") -> str:
            try:
                return fmt(compute(r), spec) if r else note
            except (TypeError, ZeroDivisionError):    # no trial ended: no end to time to
                return "–"
        peer_note = c.get("tune_note") or "–"
        for measure, spec, compute in (
                ("trials/s (start to the last trial's end)", ".2f", lambda r: r["done"] / r["wall_s"]),
                ("time to first result s", ".2f", lambda r: r["first_result_s"]),
                ("trials completed", "d", lambda r: r["done"])):
            rows.append((label, measure, "≥ Ray Tune" if measure.startswith("trials/s") else "",
                         val(c.get("ours"), compute, spec), "", val(c["tune"].get("random"), compute, spec, peer_note),
                         val(c["tune"].get("optuna"), compute, spec, peer_note)))
    for d in raw.get("d", []):
        label = f"(d) {d['platform']}: {d['small']} then {d['trials']} trials running, 1 result/s each"
        if "error" in d:
            rows.append((label, "skipped", "", d["error"].splitlines()[-1][:80], "", "", ""))
            continue
        d0, d1, small, n = d["at_small"], d["at_trials"], d["small"], d["trials"]
        extra = n - small
        rows.append((label, f"manager RSS MB ({small} / {n} trials)", "", f"{d0['rss_mb']:.0f} / {d1['rss_mb']:.0f}",
                     "", "", ""))
        # The difference between the two sizes: what one more running trial costs (the
        # manager's fixed cost, web app, tuner, Ray driver, cancels out).
        rows.append((label, "manager RSS per extra running trial kB", "",
                     fmt((d1["rss_mb"] - d0["rss_mb"]) * 1024 / extra, ".0f"), "", "", ""))
        rows.append((label, f"manager CPU % of a core ({small} / {n} trials)", "",
                     f"{d0['cpu_pct']:.1f} / {d1['cpu_pct']:.1f}", "", "", ""))
        rows.append((label, "manager CPU % of a core per extra running trial", "",
                     fmt((d1["cpu_pct"] - d0["cpu_pct"]) / extra, ".3f"), "", "", ""))
    header = (f"## scale ({meta['mode']}): {meta['cpus']} CPUs, load average {meta['load_start']:.1f} at start, "
              f"{meta.get('load_end', float('nan')):.1f} at end ({meta.get('ended_utc', meta['started_utc'])}, "
              f"commit {meta.get('commit') or '?'})")
    lines = [header, "", f"`{meta['command']}`", "",
             f"| part | measure | target | nni-ng | before ({meta['before'] or 'not run'}) | Ray Tune random "
             "| Ray Tune Optuna |", "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def breaks(raw: dict[str, Any]) -> list[str]:
    """What shows the benchmark itself broken (a part that failed, trials that did not all
    complete), as opposed to a figure that misses its target."""
    found = [f"({part}) {raw[part]['error']}" for part in ("a", "b") if "error" in raw.get(part, {})]
    for c in raw.get("c", []):
        for who, r in [("ours", c.get("ours")), *((f"Ray Tune {a}", r) for a, r in c["tune"].items())]:
            if not r:
                found.append(f"(c) {c['kind']}: {who} did not run")
            elif r.get("done") != c["trials"] or r.get("wall_s") is None:
                found.append(f"(c) {c['kind']}: {who} completed {r.get('done')} of {c['trials']} trials")
    found += [f"(d) {d['platform']}: {d['error']}" for d in raw.get("d", []) if "error" in d]
    return found


def load_results(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, one Ray kind, ~30 s: every part's code path, exit 1 if one breaks")
    parser.add_argument("--parts", default="a,b,c,d")
    parser.add_argument("--before", metavar="REF", help="git ref of the 'before' peer for parts a and b")
    parser.add_argument("--raytune-python", default=PEER_PYTHON)
    parser.add_argument("--ray-trials", type=int, help="trials per Ray run (default 500; --quick 50)")
    parser.add_argument("--load-trials", type=int, help="simulated trials in (a) (default 1000; --quick 200)")
    parser.add_argument("--load-connections", choices=("keepalive", "close"), default="keepalive",
                        help="(a)'s simulated trials: one kept connection each, as nni's trial channel "
                             "(default), or one connection per request, as before keep-alive")
    parser.add_argument("--ray-kinds", help="trial kinds of (c) (default trivial,sklearn; --smoke trivial)")
    parser.add_argument("--ray-algos", default="random,optuna",
                        help="Ray Tune search algorithms of (c) ('': ours only)")
    parser.add_argument("--out", type=Path,
                        help="raw figures (JSON; .gz: compressed) (default benchmarks/results/scale[_MODE].json)")
    parser.add_argument("--from-results", type=Path, metavar="FILE",
                        help="run nothing: print the table of a raw results file (.json or .json.gz)")
    parser.add_argument("--serve-load", nargs=2, metavar=("TRIALS", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--ours-ray", nargs=4, metavar=("ADDRESS", "KIND", "TRIALS", "CONCURRENCY"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--make-store", nargs=3, metavar=("DIR", "TRIALS", "PER_TRIAL"), help=argparse.SUPPRESS)
    parser.add_argument("--per-trial", nargs=4, metavar=("PLATFORM", "TRIALS", "WINDOW", "SETTLE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_load:
        serve_load(int(args.serve_load[0]), Path(args.serve_load[1]))
        return 0
    if args.ours_ray:
        address, kind, trials, concurrency = args.ours_ray
        print(json.dumps(bench_ours_on_ray(address, kind, int(trials), int(concurrency))))
        return 0
    if args.make_store:
        make_big_store(Path(args.make_store[0]), int(args.make_store[1]), int(args.make_store[2]))
        print("{}")
        return 0
    if args.per_trial:
        platform, trials, window, settle = args.per_trial
        print(json.dumps(per_trial(platform, int(trials), float(window), float(settle))))
        return 0
    if args.from_results:
        raw = load_results(args.from_results)
        print(render(raw), end="")
        return 0

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.smoke:
        global RAY_TERM_GRACE_S
        RAY_TERM_GRACE_S = 2.0
    args.ray_kinds = args.ray_kinds or ("trivial" if args.smoke else "trivial,sklearn")
    raw = measure_all(args, mode)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    out = args.out or results / f"scale{'' if mode == 'full' else '_' + mode}.json"
    data = json.dumps(raw, indent=1).encode()
    out.write_bytes(gzip.compress(data, mtime=0) if out.suffix == ".gz" else data)
    print(f"raw figures: {out} (table again: python benchmarks/scale.py --from-results {out})",
          file=sys.stderr)
    text = render(raw)
    print(text)
    (results / f"scale{'' if mode == 'full' else '_' + mode}.md").write_text(text)
    broken = breaks(raw)
    for line in broken:
        print(f"BROKEN: {line}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
