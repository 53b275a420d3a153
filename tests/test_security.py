"""Only the owner gets in, and nothing a trial or a request does escapes the experiment.

A real manager (``Experiment.start``) on 127.0.0.1, real HTTP requests with and without
the experiment secret, real trial processes (one double-forks a daemon), real files.
"""

from __future__ import annotations

import http.client as httpclient
import json
import os
import shutil
import stat
import subprocess
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from conftest import DAEMON_TRIAL, daemon_pid, nnictl_create, pid_alive, wait_for
from nni.experiment import rest

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}

SLEEPY_TRIAL = """
    import time, nni
    nni.get_next_parameter()
    time.sleep(120)
"""

QUICK_TRIAL = """
    import nni
    p = nni.get_next_parameter()
    nni.report_final_result(p["x"])
"""


def http(port: int, method: str, path: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw request (no redirects followed, headers exactly as given)."""
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def secret_of(exp) -> str:
    return Path(exp.config.experiment_working_directory, exp.id, "secret").read_text().strip()


def client_routes(port: int, trial_id: str) -> list[tuple[str, str]]:
    """Every (method, path) of the REST API and the web UI data routes, from the app itself."""
    from nni.manager.rest import build_app
    from nni.manager.store import Store
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp, "db", "nni.sqlite"))
        try:
            app = build_app(store, None, secret="x")
            routes = sorted({(r.method, r.resource.canonical) for r in app.router.routes()
                             if r.method != "HEAD" and r.resource is not None
                             and r.resource.canonical.startswith("/api/v1/nni")})
        finally:
            store.close()
    return [(m, p.replace("{trial_id}", trial_id)) for m, p in routes]


def test_client_routes_need_the_secret_and_the_printed_url_logs_a_browser_in(make_experiment):
    exp = make_experiment(SLEEPY_TRIAL, SPACE, concurrency=1, max_trials=2)
    exp.start(port=0)
    trial = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.status == "RUNNING"), None),
                     what="a running trial")
    secret = secret_of(exp)
    routes = client_routes(exp.port, trial.trialJobId)
    assert len(routes) >= 20 and ("DELETE", "/api/v1/nni/experiment") in routes
    # The owner's own socket needs no secret (see the next test); a request relayed by a proxy
    # speaks for someone else, as another user's does, and needs it.
    relayed = {"X-Forwarded-For": "198.51.100.7"}
    for method, path in routes:
        body = b"{}" if method in ("POST", "PUT") else None
        json_type = {"Content-Type": "application/json"} if body else {}
        status, _, reply = http(exp.port, method, path, body=body, headers={**relayed, **json_type})
        assert status == 401, (method, path, status)
        error = json.loads(reply)["error"]
        assert "nnictl webui url" in error and "\n" not in error
        status, _, _ = http(exp.port, method, path, body=body, headers={
            "Authorization": "Bearer wrong", **relayed, **json_type})
        assert status == 401, (method, path)
    # With the secret the read routes answer.
    for method, path in routes:
        if method == "GET" and "progress" not in path:
            status, _, _ = http(exp.port, "GET", path, headers={"Authorization": f"Bearer {secret}"})
            # 404: e.g. no log stream of that name; 409: no Pareto front without objectives;
            # 400: experiments/compare names no experiments (it needs ?ids= of 2 to 8)
            allowed = (200, 400, 404, 409) if path.endswith("/experiments/compare") else (200, 404, 409)
            assert status in allowed, (path, status)
    assert exp.get_status() == "RUNNING"   # the Python API found the secret by itself

    # The printed web UI URL: trades the token for an HttpOnly, SameSite=Strict cookie and
    # sends the browser on to "/" so the secret leaves the address bar.
    assert exp.webui_url == f"http://127.0.0.1:{exp.port}/?token={secret}"
    status, headers, _ = http(exp.port, "GET", f"/?token={secret}")
    assert status == 302 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and secret in cookie
    pair = cookie.split(";", 1)[0]
    assert http(exp.port, "GET", "/api/v1/nni/ui/overview", headers={"Cookie": pair, **relayed})[0] == 200
    assert http(exp.port, "GET", "/api/v1/nni/ui/overview", headers={"Cookie": pair + "x", **relayed})[0] == 401
    assert http(exp.port, "GET", "/?token=wrong")[0] == 401
    # The page itself is public (it shows the error the API answers).
    assert http(exp.port, "GET", "/")[0] == 200


def _as_user(uid: int, port: int, request_line: str, headers: str = "") -> str:
    """Send one raw request from a process of another uid (bash's /dev/tcp: nothing to read in
    the owner's directories); return the status line."""
    script = ('exec 3<>/dev/tcp/127.0.0.1/"$0"; printf "%s\\r\\nHost: 127.0.0.1\\r\\n%b\\r\\n" "$1" "$2" >&3; '
              'head -n1 <&3')
    out = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
                          "bash", "-c", script, str(port), request_line, headers],
                         capture_output=True, text=True, cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_owners_own_scripts_need_no_secret_and_other_users_do(make_experiment):
    """NNI's clients (its integration harness, users' monitoring scripts) call the REST API with
    plain requests: on loopback, from the manager's own user, they are served; another user's
    process still needs the secret, and the Host and Origin checks hold for the owner too."""
    import urllib.error
    import urllib.request
    exp = make_experiment(SLEEPY_TRIAL, SPACE, concurrency=1, max_trials=3)
    exp.start(port=0)
    base = f"http://127.0.0.1:{exp.port}/api/v1/nni"
    profile = json.load(urllib.request.urlopen(f"{base}/experiment", timeout=60))   # no secret
    assert profile["id"] == exp.id
    update = json.dumps({**profile, "params": {**profile["params"], "trialConcurrency": 2}}).encode()
    put = urllib.request.Request(f"{base}/experiment?update_type=TRIAL_CONCURRENCY", data=update,
                                 method="PUT", headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(put, timeout=60).status == 200
    assert exp.get_experiment_profile()["params"]["trialConcurrency"] == 2
    # The owner's browser on another site's page: refused by Origin; a rebinding name: by Host.
    cross = urllib.request.Request(put.full_url, data=update, method="PUT",
                                   headers={"Content-Type": "application/json", "Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(cross, timeout=60)
    assert refused.value.code == 403
    assert http(exp.port, "GET", "/api/v1/nni/experiment", headers={"Host": f"evil.example:{exp.port}"})[0] == 403

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("a client of another uid needs root and setpriv (CI runs as root)")
    nobody = 65534
    assert _as_user(nobody, exp.port, "GET /api/v1/nni/experiment HTTP/1.0").split()[1] == "401"
    body = '{"params": {"trialConcurrency": 3}}'
    line = _as_user(nobody, exp.port, "PUT /api/v1/nni/experiment?update_type=TRIAL_CONCURRENCY HTTP/1.0",
                    f"Content-Type: application/json\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n{body}")
    assert line.split()[1] == "401"
    secret = secret_of(exp)
    assert _as_user(nobody, exp.port, "GET /api/v1/nni/experiment HTTP/1.0",
                    f"Authorization: Bearer {secret}\\r\\n").split()[1] == "200"
    assert exp.get_experiment_profile()["params"]["trialConcurrency"] == 2


def test_loopback_peer_uid_reads_the_clients_socket_on_ipv4_and_ipv6():
    """The kernel's table gives the client socket's owner for 127.0.0.1 and ::1 alike."""
    import socket
    from nni.manager._security import loopback_peer_uid

    class Accepted:   # what aiohttp's transport answers, from the real accepted socket
        def __init__(self, sock):
            self.sock = sock
        def get_extra_info(self, name):
            return {"peername": self.sock.getpeername(), "sockname": self.sock.getsockname()}[name]

    families = [(socket.AF_INET, "127.0.0.1")]
    if socket.has_ipv6:
        families.append((socket.AF_INET6, "::1"))
    checked = 0
    for family, host in families:
        try:
            server = socket.socket(family)
            server.bind((host, 0))
        except OSError:
            continue     # no ::1 in this network namespace
        with server:
            server.listen(1)
            with socket.create_connection(server.getsockname()[:2], timeout=30) as client:
                accepted, _ = server.accept()
                with accepted:
                    assert loopback_peer_uid(Accepted(accepted)) == os.geteuid()
            checked += 1
    assert checked >= 1


def test_the_secret_is_kept_across_view_and_resume(make_experiment):
    from nni.experiment import Experiment
    exp = make_experiment(QUICK_TRIAL, SPACE, concurrency=1, max_trials=1)
    assert exp.run(port=0)
    secret = secret_of(exp)
    viewer = Experiment.view(exp.id, port=0, non_blocking=True)
    try:
        assert viewer.webui_url.endswith(f"/?token={secret}")
        assert len(viewer.list_trial_jobs()) == 1            # found the secret by itself
        assert http(viewer.port, "GET", "/api/v1/nni/trial-jobs", headers={"X-Real-IP": "198.51.100.7"})[0] == 401
    finally:
        viewer.stop()
    resumed = Experiment.resume(exp.id, port=0, wait_completion=False)
    try:
        assert secret_of(resumed) == secret and resumed.webui_url.endswith(f"/?token={secret}")
        assert resumed.get_status() in ("RUNNING", "DONE", "NO_MORE_TRIAL")
    finally:
        resumed.stop()


def test_foreign_host_and_cross_site_requests_are_refused(make_experiment):
    from nni.experiment.config import ConfigError, ExperimentConfig
    with pytest.raises(ConfigError, match="allowedHosts"):
        ExperimentConfig.from_dict({"allowedHosts": ["https://proxy.example/"]})
    exp = make_experiment(SLEEPY_TRIAL, SPACE, concurrency=1, max_trials=3, allowed_hosts=["Proxy.Example"])
    exp.start(port=0)
    trial = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.status == "RUNNING"), None),
                     what="a running trial")
    auth = {"Authorization": f"Bearer {secret_of(exp)}"}
    # A name the owner listed (a reverse proxy's) is accepted, with or without a port.
    for host in ("proxy.example", "proxy.example:443"):
        assert http(exp.port, "GET", "/api/v1/nni/check-status", headers={**auth, "Host": host})[0] == 200
    json_type = {"Content-Type": "application/json"}
    # DNS rebinding: the right secret does not help under a foreign name.
    for path in ("/api/v1/nni/check-status", "/", f"/api/v1/trial/{trial.trialJobId}/parameter"):
        status, _, reply = http(exp.port, "GET", path, headers={**auth, "Host": f"evil.example:{exp.port}"})
        assert status == 403 and b"allowedHosts" in reply
    for host in (f"127.0.0.1:{exp.port}", f"localhost:{exp.port}", "localhost"):
        assert http(exp.port, "GET", "/api/v1/nni/check-status", headers={**auth, "Host": host})[0] == 200

    update = json.dumps({"params": {"trialConcurrency": 3}}).encode()
    path = "/api/v1/nni/experiment?update_type=TRIAL_CONCURRENCY"
    # Another site's page: a cross-origin request, a form post, a text/plain fetch(no-cors).
    status, _, _ = http(exp.port, "PUT", path, body=update,
                        headers={**auth, **json_type, "Origin": "http://evil.example"})
    assert status == 403
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, _, _ = http(exp.port, "POST", "/api/v1/nni/experiment/import-data",
                            body=b'[{"parameter": {"x": 0.5}, "value": 1}]', headers={**auth, "Content-Type": kind})
        assert status == 415, kind
    status, _, _ = http(exp.port, "DELETE", f"/api/v1/nni/trial-jobs/{trial.trialJobId}",
                        headers={**auth, "Origin": "null"})
    assert status == 403
    assert exp.get_experiment_profile()["params"]["trialConcurrency"] == 1
    assert exp.get_trial_job(trial.trialJobId).status == "RUNNING"
    # The manager's own origin (the web UI's requests) is fine.
    status, _, _ = http(exp.port, "PUT", path, body=update,
                        headers={**auth, **json_type, "Origin": f"http://127.0.0.1:{exp.port}"})
    assert status == 200
    assert exp.get_experiment_profile()["params"]["trialConcurrency"] == 3


def test_files_are_owner_only_and_the_log_route_stays_in_the_trial_dir(make_experiment, nni_home, tmp_path):
    outside = tmp_path / "private.txt"
    outside.write_text("not for the web UI")
    trial_code = f"""
        import os, sys, nni
        p = nni.get_next_parameter()
        print("real stdout")
        sys.stdout.flush()
        d = os.environ["NNI_OUTPUT_DIR"]
        os.rename(os.path.join(d, "stderr"), os.path.join(d, "stderr.real"))
        os.symlink({str(outside)!r}, os.path.join(d, "stderr"))
        nni.report_final_result(p["x"])
    """
    exp = make_experiment(trial_code, SPACE, concurrency=1, max_trials=1)
    exp.start(port=0)
    assert exp.wait(timeout=120) == "DONE"
    job = exp.list_trial_jobs()[0]
    directory = Path(exp.config.experiment_working_directory, exp.id)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(directory) == 0o700
    assert mode(directory / "secret") == 0o600
    assert mode(directory / "db") == 0o700
    assert mode(directory / "db" / "nni.sqlite") == 0o600
    for extra in ("nni.sqlite-wal", "nni.sqlite-shm"):   # SQLite gives them the database's mode
        if (directory / "db" / extra).exists():
            assert mode(directory / "db" / extra) == 0o600
    assert mode(directory / "log" / "nnimanager.log") == 0o600
    assert mode(nni_home / "experiments" / f"{exp.id}.json") == 0o600

    auth = {"Authorization": f"Bearer {secret_of(exp)}"}
    base = f"/api/v1/nni/ui/trials/{job.trialJobId}/log"
    status, _, reply = http(exp.port, "GET", f"{base}?stream=stdout", headers=auth)
    assert status == 200 and "real stdout" in json.loads(reply)["text"]
    status, _, reply = http(exp.port, "GET", f"{base}?stream=stderr", headers=auth)
    assert status == 200 and b"not for the web UI" not in reply and json.loads(reply)["exists"] is False
    status, _, reply = http(exp.port, "GET", f"{base}?stream=stderr&download=1", headers=auth)
    assert status == 404 and b"not for the web UI" not in reply
    status, _, reply = http(exp.port, "GET", f"{base}?stream=stdout&download=1", headers=auth)
    assert status == 200 and reply.startswith(b"real stdout")


def test_nan_and_a_second_final_result(make_experiment):
    trial_code = """
        import math, sys, nni
        p = nni.get_next_parameter()
        nni.report_final_result(float("nan") if nni.get_sequence_id() == 0 else p["x"])
        nni.report_final_result(5.0)
        print("second final returned", file=sys.stderr)
    """
    exp = make_experiment(trial_code, SPACE, concurrency=1, max_trials=2)
    exp.start(port=0)
    assert exp.wait(timeout=120) == "DONE"
    jobs = sorted(exp.list_trial_jobs(), key=lambda j: j.sequenceId)
    assert [j.status for j in jobs] == ["SUCCEEDED", "SUCCEEDED"]
    for job in jobs:
        assert len(job.finalMetricData) == 1   # the second one was not stored
        stderr = Path(job.stderrPath).read_text()
        assert "only the first final result counts" in stderr and "second final returned" in stderr
    first, second = (j.finalMetricData[0].data for j in jobs)
    assert first != first   # NaN: stored and shown...
    progress = rest.get(exp.port, "/progress")
    assert progress["bestTrialId"] == jobs[1].trialJobId   # ...but never the best result



def test_second_final_is_409_and_a_retry_is_accepted(make_experiment):
    trial_code = """
        import json, os, sys, time, nni
        from nni.runtime.channel import ChannelError, TrialChannel
        p = nni.get_next_parameter()
        pid = nni.trial._records[-1]["parameter_id"]
        channel = nni.trial._get_channel()
        value = json.dumps(p["x"])
        channel.send_metric(pid, "FINAL", 0, value)
        channel.send_metric(pid, "FINAL", 0, value)          # a retried request
        answers = []
        for other in (json.dumps(7.0), value):
            try:
                channel.send_metric(pid, "FINAL", 1, other)   # a second, different final
                answers.append("accepted")
            except ChannelError as exc:
                answers.append(str(exc))
        with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "answers.json"), "w") as f:
            json.dump(answers, f)
    """
    exp = make_experiment(trial_code, SPACE, concurrency=1, max_trials=1)
    exp.start(port=0)
    assert exp.wait(timeout=120) == "DONE"
    job = exp.list_trial_jobs()[0]
    answers = json.loads(Path(job.trialDir, "answers.json").read_text())
    assert all("HTTP 409" in a and "already has its final result" in a for a in answers), answers
    assert len(exp.get_job_metrics(job.trialJobId)[job.trialJobId]) == 1


# -- no process outlives its trial ------------------------------------------------------------
def test_a_double_forked_daemon_dies_at_trial_end_kill_and_stop(make_experiment):
    # Trial 0 ends by itself, trial 1 is killed, trial 2 runs until the experiment stops.
    exp = make_experiment(DAEMON_TRIAL.replace("{ends}", "1"), SPACE, concurrency=1, max_trials=3)
    exp.start(port=0)
    first = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.sequenceId == 0), None), what="trial 0")
    daemon = daemon_pid(first.trialDir)
    wait_for(lambda: exp.get_trial_job(first.trialJobId).status == "SUCCEEDED", timeout=60, what="trial 0 end")
    wait_for(lambda: not pid_alive(daemon), timeout=30, what="trial 0's daemon to die with it")

    second = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.sequenceId == 1), None), timeout=60,
                      what="trial 1")
    daemon = daemon_pid(second.trialDir)
    wait_for(lambda: exp.get_trial_job(second.trialJobId).finalMetricData, timeout=60, what="trial 1's result")
    exp.kill_trial_job(second.trialJobId)
    wait_for(lambda: exp.get_trial_job(second.trialJobId).status == "USER_CANCELED", timeout=60, what="the kill")
    wait_for(lambda: not pid_alive(daemon), timeout=30, what="trial 1's daemon to die with the kill")

    third = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.sequenceId == 2), None), timeout=60,
                     what="trial 2")
    daemon = daemon_pid(third.trialDir)
    exp.stop()
    wait_for(lambda: not pid_alive(daemon), timeout=30, what="trial 2's daemon to die with the experiment")


def _created_daemon_trial(tmp_path: Path) -> tuple[dict, Path, int]:
    """``nnictl create`` of one DAEMON_TRIAL (its manager a process of its own): the registry
    entry, the trial's directory and its double-forked daemon's pid, once it runs."""
    from nni.manager import registry
    out = nnictl_create(tmp_path, DAEMON_TRIAL.replace("{ends}", "0"), SPACE)
    assert out.returncode == 0, out.stderr
    entry = registry.list_entries()[0]
    trials = Path(entry["dir"], "trials")
    trial_dir = wait_for(lambda: next(iter(trials.iterdir()), None) if trials.is_dir() else None, timeout=60,
                         what="the trial directory")
    return entry, trial_dir, daemon_pid(str(trial_dir))


def test_a_double_forked_daemon_dies_when_the_manager_is_killed(tmp_path, write):
    import signal
    entry, _, daemon = _created_daemon_trial(tmp_path)
    try:
        os.kill(entry["pid"], signal.SIGKILL)
        wait_for(lambda: not pid_alive(daemon), timeout=30, what="the spawner to end the daemon")
    finally:
        if pid_alive(daemon):
            os.kill(daemon, signal.SIGKILL)


def test_a_double_forked_daemon_dies_when_the_manager_and_its_spawner_are_killed_together(tmp_path, write):
    """``kill -9`` of the manager and of the process that starts its trials (an OOM killer's
    choice, a ``pkill -9``): nothing is left to notice, yet each launcher ends its own tree."""
    import signal
    entry, trial_dir, daemon = _created_daemon_trial(tmp_path)
    def recorded_process() -> str | None:   # the launcher's pid and start, as the store keeps them for a resume
        with closing(sqlite3.connect(f"file:{Path(entry['dir'], 'db', 'nni.sqlite')}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT process FROM attempts WHERE process IS NOT NULL").fetchone()
        return row[0] if row else None
    launcher = int(wait_for(recorded_process, timeout=30, what="the trial's process in the store").split()[0])
    spawner = int(Path(f"/proc/{launcher}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert Path(f"/proc/{spawner}/cmdline").read_bytes().endswith(b"--serve\0"), "the trial's launcher has no spawner"
    try:
        os.kill(spawner, signal.SIGKILL)
        os.kill(entry["pid"], signal.SIGKILL)
        wait_for(lambda: not pid_alive(daemon) and not pid_alive(launcher), timeout=30,
                 what="the trial's launcher and daemon to end")
    finally:
        for pid in (daemon, launcher):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_url_nnictl_prints_opens_the_web_ui_in_chromium(tmp_path, write):
    """No extra step: the URL ``nnictl create`` prints logs the browser in, then drops the token."""
    import re
    import subprocess
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("chromium is not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    out = nnictl_create(tmp_path, "import nni\np = nni.get_next_parameter()\nnni.report_final_result(p['x'])\n",
                        SPACE, max_trials=2)
    assert out.returncode == 0, out.stderr
    exp_id, url = re.search(r"Experiment (\w+) started.*Web UI:\s+(\S+)", out.stdout, re.S).groups()
    assert "?token=" in url
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            try:
                page = browser.new_page()
                page.set_default_timeout(60_000)
                page.goto(url)
                playwright.expect(page.locator("#exp-id")).to_have_text(exp_id, timeout=60_000)
                assert "token" not in page.url
                cookies = page.context.cookies()
                assert any(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)
                # A fresh browser (no cookie) of the owner opens the bare address (its socket is
                # the owner's); the same request relayed by a proxy gets no data.
                fresh = browser.new_context()
                bare = url.split("?")[0].rstrip("/") + "/api/v1/nni/check-status"
                assert fresh.new_page().goto(bare).status == 200
                assert fresh.request.get(bare, headers={"X-Forwarded-For": "198.51.100.7"}).status == 401
            finally:
                browser.close()
    finally:
        subprocess.run([sys.executable, "-m", "nni.cli", "stop", exp_id], capture_output=True, timeout=120)


def test_static_names_the_file_system_refuses_are_404_not_500(make_experiment):
    """Found by the attacking fuzz: a NUL in a static file's name (ValueError) and a name too
    long for the file system (OSError) were 500s."""
    exp = make_experiment(QUICK_TRIAL, SPACE, concurrency=1, max_trials=1)
    exp.start(port=0)
    for name in ("%00", "a%00b.js", "x" * 5000, "/".join(["y" * 200] * 30)):
        status, _, reply = http(exp.port, "GET", f"/webui/static/{name}")
        assert status == 404, (name[:40], status, reply[:200])
    assert http(exp.port, "GET", "/api/v1/nni/check-status")[0] == 200     # still serving
