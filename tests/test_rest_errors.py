"""One error mapping on every route: a refusal is a 4xx ``{"error": ...}``, our bug a 500 logged once.

Real managers on 127.0.0.1 (``Experiment.start``, real trial processes), except the first test,
which adds a failing route to the real application to see what a bug of ours looks like.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import tempfile
import threading
from pathlib import Path

from aiohttp import web

from conftest import wait_for
from test_rest_fuzz import TOKEN_TRIAL, live, raw_http  # noqa: F401 - live is a fixture
from test_security import http, secret_of

from nni.tuner import Tuner

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}


def _error_of(status: int, headers: dict[str, str], reply: bytes) -> str:
    """The message of an error answer, checking its one shape on the way."""
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, reply[:300])
    body = json.loads(reply)
    assert isinstance(body, dict) and list(body) == ["error"] and isinstance(body["error"], str), body
    return body["error"]


def test_a_bug_is_one_logged_500_and_every_error_has_one_shape(caplog):
    from nni.manager.rest import build_app
    from nni.manager.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp, "db", "nni.sqlite"))
        app = build_app(store, None, secret="s3cret")   # read-only (view) mode

        async def broken(request: web.Request) -> web.Response:
            raise RuntimeError("a bug of ours")
        app.router.add_get("/api/v1/nni/broken", broken)
        started, port, loop = threading.Event(), [], asyncio.new_event_loop()

        async def serve() -> web.AppRunner:
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port.append(site._server.sockets[0].getsockname()[1])
            started.set()
            return runner
        runner = loop.run_until_complete(serve())
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            auth = [("Host", "127.0.0.1"), ("Authorization", "Bearer s3cret")]
            caplog.clear()
            with caplog.at_level(logging.ERROR):
                status, headers, reply = raw_http(port[0], "GET", "/api/v1/nni/broken", auth)
            assert status == 500
            assert "RuntimeError" in _error_of(status, headers, reply)
            logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(logged) == 1 and logged[0].exc_info and "a bug of ours" in str(logged[0].exc_info[1]), \
                [(r.name, r.getMessage()) for r in logged]

            json_type = [("Content-Type", "application/json")]
            for method, path, extra, body, expected in [
                    ("GET", "/api/v1/nni/no-such-route", [], None, 404),
                    ("PATCH", "/api/v1/nni/experiment", json_type, b"{}", 405),
                    ("POST", "/api/v1/nni/trial-jobs/rerun", json_type, b"{}", 409),   # view mode
                    ("GET", "/api/v1/nni/trial-jobs/zzzzz", [], None, 404),
                    ("GET", "/api/v1/nni/trial-jobs?limit=-1", [], None, 400),
                    ("GET", "/api/v1/nni/ui/trials?sort=bogus", [], None, 400),
                    ("POST", "/api/v1/trial/zzzzz/metric", json_type, b"{}", 409),
                    ("GET", "/api/v1/nni/check-status", [("Host", "evil.example")], None, 403),
                    # a wrong secret from a proxied request (the owner's own socket needs none)
                    ("GET", "/api/v1/nni/check-status", [("Authorization", "Bearer nope"),
                                                          ("X-Forwarded-For", "198.51.100.7")], None, 401)]:
                headers_sent = dict(auth)
                headers_sent.update(extra)
                status, headers, reply = raw_http(port[0], method, path, list(headers_sent.items()), body)
                assert status == expected, (method, path, status, reply[:300])
                _error_of(status, headers, reply)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.run_until_complete(runner.cleanup())
            loop.close()
            store.close()


def test_trial_routes_answer_json_errors_and_a_non_ascii_token_is_refused_not_a_500(live):
    exp, trial_id, token = live
    path = f"/api/v1/trial/{trial_id}/metric"
    body = json.dumps({"parameter_id": 0, "type": "PERIODICAL", "sequence": 0, "value": "1"}).encode()
    for authorization in ["Bearer é".encode(), b"Bearer \xe9", "Bearer \u2603".encode(), b"Bearer \xff\xfe",
                          "Bearer " + "x" * 4000, "Bearer ", "bearer " + token, "Basic " + token, None]:
        headers = [("Host", "127.0.0.1"), ("Content-Type", "application/json")]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        status, answer_headers, reply = raw_http(exp.port, "POST", path, headers, body)
        assert status == 403, (authorization, status, reply[:300])
        assert _error_of(status, answer_headers, reply) == "unknown trial or wrong token"
    # The trial's own token, a body that does not fit: 400 in the same shape as the client routes.
    status, answer_headers, reply = raw_http(exp.port, "POST", path, [
        ("Host", "127.0.0.1"), ("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")], b"[1]")
    assert status == 400 and "expected a JSON object" in _error_of(status, answer_headers, reply)
    status, answer_headers, reply = raw_http(exp.port, "POST", path, [
        ("Host", "127.0.0.1"), ("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")],
        b"[" + b"0," * (9 << 20) + b"0]")
    assert status == 413 and "body size" in _error_of(status, answer_headers, reply)
    assert exp.get_status() == "RUNNING"


class PickyTuner(Tuner):
    """Takes no parameter named ``bad`` and no imported result below 0, in its own words."""

    def __init__(self):
        self.space = None

    def update_search_space(self, search_space):
        if "bad" in search_space:
            raise ValueError("PickyTuner cannot search a parameter named 'bad'")
        self.space = search_space

    def generate_parameters(self, parameter_id, **kwargs):
        return {"x": 0.5}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        pass

    def import_data(self, data):
        if any(row["value"] < 0 for row in data):
            raise KeyError("negative results are not mine")


def test_a_tuner_refusing_a_search_space_or_imported_data_is_a_400_and_the_experiment_goes_on(make_experiment):
    tuner = PickyTuner()
    exp = make_experiment("import time\ntime.sleep(300)\n", SPACE, tuner=tuner, concurrency=1, max_trials=3)
    exp.start(port=0)
    wait_for(lambda: any(j.status == "RUNNING" for j in exp.list_trial_jobs()), timeout=60, what="a running trial")
    auth = {"Authorization": f"Bearer {secret_of(exp)}", "Content-Type": "application/json"}

    def call(method, path, body):
        status, headers, reply = http(exp.port, method, path, body=json.dumps(body).encode(), headers=auth)
        return status, headers, reply

    bad_space = {"bad": {"_type": "uniform", "_value": [0, 1]}}
    status, headers, reply = call("PUT", "/api/v1/nni/experiment?update_type=SEARCH_SPACE",
                                  {"params": {"searchSpace": bad_space}})
    assert status == 400, (status, reply)
    message = _error_of(status, headers, reply)
    assert "searchSpace" in message and "PickyTuner" in message and "named 'bad'" in message, message
    assert exp.get_experiment_profile()["params"]["searchSpace"] == SPACE     # the old one stays

    status, headers, reply = call("POST", "/api/v1/nni/experiment/import-data",
                                  [{"parameter": {"x": 0.1}, "value": -1.0}])
    assert status == 400, (status, reply)
    message = _error_of(status, headers, reply)
    assert "PickyTuner" in message and "negative results are not mine" in message, message
    assert http(exp.port, "GET", "/api/v1/nni/experiment/imported-data", headers=auth)[2] == b"[]"

    # Nothing broke: the experiment runs on, and what the tuner takes is taken.
    assert exp.get_status() == "RUNNING"
    good_space = {"y": {"_type": "uniform", "_value": [0, 1]}}
    assert call("PUT", "/api/v1/nni/experiment?update_type=SEARCH_SPACE", {"params": {"searchSpace": good_space}})[0] == 200
    assert tuner.space == good_space
    assert call("POST", "/api/v1/nni/experiment/import-data", [{"parameter": {"y": 0.1}, "value": 1.0}])[0] == 200
    assert exp.get_status() == "RUNNING"


def test_a_repeated_trial_request_gets_its_first_answer(make_experiment):
    # Multi-phase, so that between a request and its repeat the experiment changes: the repeat
    # must be answered as the first was, not acted upon anew.
    exp = make_experiment(TOKEN_TRIAL, SPACE, concurrency=1, max_trials=1, multi_phase=True)
    exp.start(port=0)
    trial = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.status == "RUNNING"), None),
                     timeout=60, what="a running trial")
    token_file = Path(trial.trialDir, "token")
    wait_for(token_file.exists, timeout=60, what="the trial's token")
    token = token_file.read_text()
    base = f"/api/v1/trial/{trial.trialJobId}"

    def send(action, body, request_id):
        headers = [("Host", "127.0.0.1"), ("Content-Type", "application/json"),
                   ("Authorization", f"Bearer {token}"), ("Nni-Request", request_id)]
        status, _, reply = raw_http(exp.port, "POST", f"{base}/{action}", headers, json.dumps(body).encode())
        try:
            return status, json.loads(reply)
        except ValueError:   # not this test's subject: the shape is checked above
            return status, {"error": reply.decode(errors="replace")}

    following = trial.hyperParameters[0].parameter_id + 1    # the id phase 1 will get
    metric = {"parameter_id": following, "type": "PERIODICAL", "sequence": 0, "value": "0.5"}

    status, answer = send("metric", metric, "1.4242.1")
    assert status == 400 and "not given" in answer["error"], answer    # no such set yet
    status, record = send("parameter", {"index": 1}, "1.4242.2")
    assert status == 200 and record["parameter_id"] == following, record
    # The same request again (a retry): its first answer, though the set now exists; not stored.
    assert send("metric", metric, "1.4242.1") == (400, answer)
    assert send("parameter", {"index": 1}, "1.4242.2") == (200, record)
    database = Path(exp.config.experiment_working_directory, exp.id, "db", "nni.sqlite")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM metrics").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM parameters").fetchone() == (2,)
    # A new request with the same body is a new request.
    assert send("metric", metric, "1.4242.3") == (200, None)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT parameter_id, value FROM metrics").fetchall() == [(following, "0.5")]
