"""Training service throughput and the manager's limits under many reporting trials.

    .venv/bin/python benchmarks/training_services.py                  # everything (~1-2 min)
    .venv/bin/python benchmarks/training_services.py --skip ray       # local + remote + load
    .venv/bin/python benchmarks/training_services.py --load 200,500,1000 --metrics 20
    .venv/bin/python benchmarks/training_services.py --quick        # 8 trials per platform, 50 fake trials (~10 s)

Part 1, trials/s: the same trivial trial (``get_next_parameter`` + ``report_final_result``)
run by a real experiment on ``local``, ``remote`` (a throwaway OpenSSH server on
127.0.0.1, set up like tests/test_remote.py) and ``ray`` (a private local Ray). ``wall`` is
start to DONE including the service's start (SSH connect and upload, Ray init); ``steady``
is trials / (last trial end - first trial start). The remote row has its own floor: the same
number of ``python3 -c "import nni"`` over the same SSH server, as many at a time, each in a
channel of one connection, as the service ran each trial before it had one spawner per
machine (``remote_floor``): the service, which now opens no channel per trial, can beat it.
``--repeat N`` runs each platform N times (a row each, then the median share of the floor).

Part 2, manager limits: a real manager (real REST server, real SQLite, Random tuner) whose
training service only hands out trial ids and tokens, and a separate client process that
plays N concurrent trials: each asks for its parameters and posts M intermediate metrics
and a final one, one HTTP/1.0 request per connection like ``nni``'s trial channel. Reported:
metrics stored per second and request latency percentiles (every metric is committed to
SQLite before its 200).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nni.training_service import TrainingService, TrialEnded  # noqa: E402
TRIAL = "import nni; p = nni.get_next_parameter(); nni.report_final_result(p['x'])\n"
SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}


def _experiment(work: Path, platform: str, trials: int, concurrency: int):
    from nni.experiment import Experiment

    code = work / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "trial.py").write_text(TRIAL)
    exp = Experiment("local")
    exp.config.trial_command = "python3 trial.py" if platform != "local" else f"{sys.executable} trial.py"
    exp.config.trial_code_directory = str(code)
    exp.config.search_space = SPACE
    exp.config.trial_concurrency = concurrency
    exp.config.max_trial_number = trials
    exp.config.experiment_working_directory = str(work / "experiments")
    exp.config.tuner.name = "Random"
    return exp


def _timed_run(exp) -> dict:
    started = time.monotonic()
    assert exp.run(port=0) is True, "the experiment did not finish DONE"
    wall = time.monotonic() - started
    db = sqlite3.connect(Path(exp.config.experiment_working_directory) / exp.id / "db" / "nni.sqlite")
    rows = db.execute("SELECT status, start_time, end_time FROM trials").fetchall()
    ok = sum(1 for r in rows if r[0] == "SUCCEEDED")
    span = max(r[2] for r in rows) - min(r[1] for r in rows if r[1] is not None)
    return {"trials": len(rows), "succeeded": ok, "wall_s": wall, "trials_per_s_wall": len(rows) / wall,
            "trials_per_s_steady": len(rows) / span}


def remote_service(work: Path, python_dir: str) -> tuple[dict, Any]:
    """The tests' throwaway sshd on 127.0.0.1 (started) and a ``remote`` trainingService section
    that runs trials through it with the Python in ``python_dir``; ``kill()`` the sshd afterwards."""
    import getpass
    sys.path.insert(0, str(ROOT / "tests"))
    from test_remote import Sshd

    sshd = Sshd(work / "sshd")
    sshd.start()
    service = {"platform": "remote", "remoteWorkingDirectory": str(work / "remote-home"),
               "machineList": [{"host": "127.0.0.1", "port": sshd.port, "user": getpass.getuser(),
                                "sshKeyFile": str(sshd.root / "client_key"), "pythonPath": python_dir}]}
    return service, sshd


def remote_floor(sshd: Any, python_dir: str, trials: int, concurrency: int) -> dict:
    """The remote service's own floor: ``python3 -c "import nni"`` run ``trials`` times over the
    same SSH server, ``concurrency`` at a time, each in its own channel of one connection (as
    the service ran each trial before its per-machine spawner), with the same PATH; trials/s
    as the service's steady rate."""
    import getpass

    import asyncssh

    command = f"export PATH={python_dir}:\"$PATH\"; cd /tmp && exec python3 -c 'import nni'"

    async def run() -> float:
        async with asyncssh.connect("127.0.0.1", port=sshd.port, username=getpass.getuser(), known_hosts=None,
                                    client_keys=[str(sshd.root / "client_key")]) as conn:
            gate = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with gate:
                    result = await conn.run(command, check=False)
                    if result.exit_status != 0:
                        raise RuntimeError(f"remote floor: exit {result.exit_status}: {result.stderr!r}")

            started = time.monotonic()
            await asyncio.gather(*(one() for _ in range(trials)))
            return time.monotonic() - started

    seconds = asyncio.run(run())
    return {"trials": trials, "wall_s": seconds, "trials_per_s": trials / seconds}


def bench_platform(platform: str, trials: int, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="nni-bench-") as tmp:
        work = Path(tmp)
        exp = _experiment(work, platform, trials, concurrency)
        sshd = None
        venv_bin = str(Path(sys.executable).parent)
        if platform == "remote":
            exp.config.training_service, sshd = remote_service(work, venv_bin)
        elif platform == "ray":
            exp.config.training_service = {"platform": "ray", "trialResources": {"numCpus": 0.25}}
            # Ray's default token auth would leave ~/.ray/auth_token behind; not needed here.
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            os.environ["PATH"] = venv_bin + os.pathsep + os.environ["PATH"]   # python3 = this venv for tasks
        try:
            result = _timed_run(exp)
            if sshd is not None:
                # after the experiment, on the same server: its floor, as the local row's is import nni
                result["floor"] = remote_floor(sshd, venv_bin, trials, concurrency)
            return result
        finally:
            if sshd is not None:
                sshd.kill()


# -- part 2: many fake trials against one manager ------------------------------------------------
class _TokenService(TrainingService):
    """A training service that starts nothing: it records each trial's id, token and channel."""

    def __init__(self, specs: list, expected: int, ready: threading.Event) -> None:
        super().__init__()
        self.specs, self.expected, self.ready = specs, expected, ready

    async def submit(self, spec) -> None:
        self.specs.append({"id": spec.trial_id, "token": spec.env["NNI_TRIAL_TOKEN"],
                           "url": spec.env["NNI_TRIAL_CHANNEL"]})
        await self.on_trial_start(spec.trial_id)
        if len(self.specs) >= self.expected:
            self.ready.set()

    async def kill(self, trial_id: str) -> None:
        await self.on_trial_end(TrialEnded(trial_id, None, "killed"))

    async def stop(self) -> None:
        pass


CLIENT = r'''
import asyncio, json, sys, time
specs, metrics = json.load(open(sys.argv[1])), int(sys.argv[2])
latencies, errors = [], []

async def post(host, port, trial, action, payload):
    body = json.dumps(payload).encode()
    head = (f"POST /api/v1/trial/{trial['id']}/{action} HTTP/1.0\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {trial['token']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    started = time.perf_counter()
    for attempt in range(6):
        try:
            reader, writer = await asyncio.open_connection(host, port)
            break
        except OSError:
            await asyncio.sleep(0.1 * 2 ** attempt)
    writer.write(head + body)
    data = await reader.read()
    writer.close()
    latencies.append(time.perf_counter() - started)
    status = int(data.split(b" ", 2)[1])
    if status != 200:
        errors.append(data[:200])
    return json.loads(data.split(b"\r\n\r\n", 1)[1] or b"null")

async def trial(t):
    host, port = t["url"].split("//")[1].split(":")
    record = await post(host, int(port), t, "parameter", {"index": 0})
    pid = record["parameter_id"]
    for i in range(metrics):
        await post(host, int(port), t, "metric", {"parameter_id": pid, "type": "PERIODICAL", "sequence": i,
                                                  "value": json.dumps(i * 0.1)})
    await post(host, int(port), t, "metric", {"parameter_id": pid, "type": "FINAL", "sequence": 0,
                                              "value": json.dumps(1.0)})

async def main():
    started = time.perf_counter()
    await asyncio.gather(*(trial(t) for t in specs))
    return time.perf_counter() - started

wall = asyncio.run(main())
latencies.sort()
pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
print(json.dumps({"wall_s": wall, "requests": len(latencies), "errors": len(errors),
                  "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": latencies[-1] * 1000}))
'''


def bench_load(trials: int, metrics: int) -> dict:
    import nni.manager.manager as manager_module
    from nni.manager.launcher import run_experiment

    specs: list = []
    ready = threading.Event()
    original = manager_module.create_training_service
    manager_module.create_training_service = lambda config: _TokenService(specs, trials, ready)
    holder: dict = {}
    with tempfile.TemporaryDirectory(prefix="nni-load-") as tmp:
        work = Path(tmp)
        exp = _experiment(work, "local", trials, trials)
        config = exp.config.canonical_copy()
        loop = asyncio.new_event_loop()

        def started(manager) -> None:
            holder["manager"] = manager

        thread = threading.Thread(target=lambda: loop.run_until_complete(
            run_experiment(config, port=0, started=started)), daemon=True)
        thread.start()
        try:
            if not ready.wait(120):
                raise RuntimeError(f"only {len(specs)} of {trials} fake trials were created")
            (work / "specs.json").write_text(json.dumps(specs))
            (work / "client.py").write_text(CLIENT)
            out = subprocess.run([sys.executable, str(work / "client.py"), str(work / "specs.json"), str(metrics)],
                                 capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            result = json.loads(out.stdout)
        finally:
            manager = holder.get("manager")
            if manager is not None:
                asyncio.run_coroutine_threadsafe(manager.stop(), loop).result(60)
            thread.join(60)
            manager_module.create_training_service = original
        db = sqlite3.connect(work / "experiments" / holder["manager"].id / "db" / "nni.sqlite")
        stored = db.execute("SELECT count(*) FROM metrics").fetchone()[0]
    expected = trials * (metrics + 1)
    result.update(trials=trials, metrics_stored=stored, metrics_expected=expected,
                  metrics_per_s=stored / result["wall_s"], requests_per_s=result["requests"] / result["wall_s"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="8 trials per platform, one load of 50 fake trials x 5 metrics; exit 1 if anything breaks")
    parser.add_argument("--trials", type=int, help="trials per platform run (default 40; --quick 8)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per platform (a row each, then their median for a platform with a floor)")
    parser.add_argument("--skip", default="", help="comma-separated: local,remote,ray,load")
    parser.add_argument("--load", help="fake trial counts for the manager load test (default 200,500,1000; --quick 50)")
    parser.add_argument("--metrics", type=int, help="intermediate metrics per fake trial (default 20; --quick 5)")
    args = parser.parse_args()
    args.trials = args.trials or (8 if args.quick else 40)
    args.load = args.load or ("50" if args.quick else "200,500,1000")
    args.metrics = args.metrics or (5 if args.quick else 20)
    broken: list[str] = []
    skip = set(filter(None, args.skip.split(",")))
    import logging
    logging.getLogger("nni").setLevel(logging.WARNING)

    print(f"## trials/s: {args.trials} trivial trials, concurrency {args.concurrency}, {os.cpu_count()} CPUs")
    print("| platform | succeeded | wall s | trials/s (wall) | trials/s (steady) | floor trials/s | steady % of floor |")
    print("|---|---|---|---|---|---|---|")
    for platform in ("local", "remote", "ray"):
        if platform in skip:
            continue
        shares = []   # steady % of floor, per run
        for _ in range(max(1, args.repeat)):
            try:
                r = bench_platform(platform, args.trials, args.concurrency)
            except Exception as exc:  # noqa: BLE001 - one platform missing must not hide the others
                print(f"| {platform} | skipped: {exc} | | | | | |", flush=True)
                broken.append(f"{platform}: {exc}")
                break
            if r["succeeded"] != args.trials:
                broken.append(f"{platform}: {r['succeeded']} of {args.trials} trials succeeded")
            floor = r.get("floor")
            if floor:
                shares.append(100 * r["trials_per_s_steady"] / floor["trials_per_s"])
            floor_cells = f"{floor['trials_per_s']:.1f} | {shares[-1]:.0f}%" if floor else " | "
            print(f"| {platform} | {r['succeeded']}/{r['trials']} | {r['wall_s']:.2f} | "
                  f"{r['trials_per_s_wall']:.1f} | {r['trials_per_s_steady']:.1f} | {floor_cells} |", flush=True)
        if len(shares) > 1:
            print(f"| {platform}: median of {len(shares)} | | | | | | {statistics.median(shares):.0f}% |", flush=True)
    if "load" in skip:
        return _report(broken)
    print(f"\n## manager limits: N concurrent fake trials, 1 parameter request + {args.metrics} intermediate "
          "+ 1 final metric each (HTTP/1.0, one connection per request)")
    print("| trials | metrics stored | wall s | metrics/s | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for count in (int(c) for c in args.load.split(",") if c):
        r = bench_load(count, args.metrics)
        if r["errors"] or r["metrics_stored"] != r["metrics_expected"]:
            broken.append(f"load {count}: {r['errors']} errors, {r['metrics_stored']} of "
                          f"{r['metrics_expected']} metrics stored")
        print(f"| {count} | {r['metrics_stored']}/{r['metrics_expected']} | {r['wall_s']:.2f} | "
              f"{r['metrics_per_s']:.0f} | {r['requests_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['errors']} |", flush=True)
    return _report(broken)


def _report(broken: list[str]) -> int:
    for line in broken:
        print(f"BROKEN: {line}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
