"""No request brings the manager down: a bounded fuzz of every REST route, and the known cases.

A real manager (``Experiment.start``, TPE) with a running trial whose token the trial
writes out, so the trial routes are fuzzed past their token check too. Every answer must
be below 500; afterwards the manager answers, is not in ERROR, and SQLite's
``PRAGMA integrity_check`` is ``ok``.
"""

from __future__ import annotations

import http.client as httpclient
import json
import socket
import sqlite3
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import wait_for
from test_security import client_routes, http, secret_of

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "n": {"_type": "randint", "_value": [0, 2**40]}}

# Writes its own token so the test can talk to the trial routes, then waits to be killed.
TOKEN_TRIAL = """
    import os, time, nni
    nni.get_next_parameter()
    with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "token.tmp"), "w") as f:
        f.write(os.environ["NNI_TRIAL_TOKEN"])
    os.rename(os.path.join(os.environ["NNI_OUTPUT_DIR"], "token.tmp"),
              os.path.join(os.environ["NNI_OUTPUT_DIR"], "token"))
    time.sleep(300)
"""

NASTY_NUMBERS = [2**63, 2**63 - 1, -2**63 - 1, 10**400, -10**400]
NASTY_TEXT = ["1e309", "-1e309", "NaN", "Infinity", "1" + "0" * 400, "[" * 100_000, "{\"a\":" * 50_000,
              "\ud800", "", "null", "0x10", "\x00"]

json_leaves = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-2**70, max_value=2**70), st.sampled_from(NASTY_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(NASTY_TEXT),
)
json_values = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=25)

FIELD_NAMES = ["index", "parameter_id", "type", "sequence", "value", "params", "parameter", "trialConcurrency",
               "maxTrialNumber", "maxExperimentDuration", "searchSpace", "_type", "_value", "default"]


def raw_http(port: int, method: str, path: str, headers: list[tuple[str | bytes, str | bytes]],
             body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with the headers exactly as given, bytes included (http.client adds Host and
    refuses non-Latin-1 values), and its answer."""
    def raw(text: str | bytes) -> bytes:
        return text if isinstance(text, bytes) else text.encode()
    lines = [f"{method} {path} HTTP/1.1".encode(), *(raw(k) + b": " + raw(v) for k, v in headers),
             b"Connection: close"]
    if body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        try:
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))
        except (BrokenPipeError, ConnectionResetError):
            pass   # refused before the whole body was read (413): the answer is still there
        answer = httpclient.HTTPResponse(sock, method=method)
        answer.begin()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        sock.close()


def _encode(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


# Objects shaped like what the routes expect, with wrong or extreme values in the fields.
shaped = st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6)
metric_bodies = st.fixed_dictionaries({
    "parameter_id": st.one_of(st.integers(-1, 3), json_leaves),
    "type": st.one_of(st.sampled_from(["FINAL", "PERIODICAL"]), json_leaves),
    "sequence": st.one_of(st.integers(0, 5), json_leaves),
    "value": st.one_of(json_values.map(lambda v: json.dumps(v, allow_nan=True)), json_leaves),
})
import_rows = st.lists(st.fixed_dictionaries({
    "parameter": st.one_of(st.fixed_dictionaries({"x": st.floats(-1, 2), "n": st.integers(-5, 2**41)}), json_values),
    "value": json_values}), max_size=5)
space_specs = st.dictionaries(st.text(max_size=5), st.fixed_dictionaries({
    "_type": st.sampled_from(["choice", "randint", "uniform", "quniform", "loguniform", "normal", "bogus"]),
    "_value": st.lists(json_leaves, max_size=4)}), max_size=3)
update_keys = st.sampled_from(["trialConcurrency", "maxTrialNumber", "maxExperimentDuration", "searchSpace"])
update_bodies = st.fixed_dictionaries({
    "params": st.dictionaries(update_keys, st.one_of(json_values, space_specs), max_size=2)})

bodies = st.one_of(
    json_values.map(_encode), shaped.map(_encode), metric_bodies.map(_encode), import_rows.map(_encode),
    update_bodies.map(_encode), st.sampled_from(NASTY_TEXT).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
)
QUERY_KEYS = ["update_type", "status", "since", "stream", "bytes", "sort", "order", "offset", "limit", "page",
              "filter", "trial", "trials", "metric", "key", "until"]
queries = st.dictionaries(st.sampled_from(QUERY_KEYS), st.one_of(
    st.sampled_from(["TRIAL_CONCURRENCY", "MAX_TRIAL_NUM", "MAX_EXEC_DURATION", "SEARCH_SPACE", "RUNNING",
                     "stdout", "stderr", "-1", "1e309", "nan", "99999999999999999999999", "", "ended"]),
    st.text(max_size=12)), max_size=3)


@pytest.fixture
def live(make_experiment):
    exp = make_experiment(TOKEN_TRIAL, SPACE, tuner=None, concurrency=1, max_trials=50)
    exp.config.tuner.name = "TPE"
    exp.config.tuner.class_args = {"seed": 1}
    exp.start(port=0)
    trial = wait_for(lambda: next((j for j in exp.list_trial_jobs() if j.status == "RUNNING"), None),
                     timeout=60, what="a running trial")
    token_file = Path(trial.trialDir, "token")
    wait_for(token_file.exists, timeout=60, what="the trial's token")
    return exp, trial.trialJobId, token_file.read_text()


def test_fuzzed_requests_to_every_route_never_get_a_5xx(live):
    exp, trial_id, token = live
    secret = secret_of(exp)
    routes = [r for r in client_routes(exp.port, "{trial_id}") if r != ("DELETE", "/api/v1/nni/experiment")]
    routes += [("POST", "/api/v1/trial/{trial_id}/parameter"), ("POST", "/api/v1/trial/{trial_id}/metric"),
               ("POST", "/api/v1/trial/{trial_id}/lease")]
    seen: dict[tuple[str, str], set[int]] = {}

    def send(route, trial, query, body, content_type):
        method, template = route
        path = template.replace("{trial_id}", urllib.parse.quote(trial or "x", safe=""))
        if "/progress" in path:
            query = {k: v for k, v in query.items() if k not in ("since", "until")}   # no 30 s long polls
        if query:
            path += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"Bearer {token if template.startswith('/api/v1/trial') else secret}"}
        send = method in ("POST", "PUT")
        if send:
            headers["Content-Type"] = content_type
        status, _, reply = http(exp.port, method, path, body=body if send else None, headers=headers)
        seen.setdefault(route, set()).add(status)
        assert status < 500, (method, path, body[:200], status, reply[:500])

    one_request = settings(max_examples=400, deadline=None, database=None, derandomize=True,
                           suppress_health_check=list(HealthCheck))(
        given(route=st.sampled_from(routes), trial=st.one_of(st.just(trial_id), st.text(max_size=12)),
              query=queries, body=bodies,
              content_type=st.sampled_from(["application/json"] * 6 + ["text/plain",
                                                                         "application/json; charset=latin-1"]))(send))
    one_request()
    for route in routes:   # a route the sampling happened to miss still gets a request
        if route not in seen:
            send(route, trial_id, {}, b"{}", "application/json")
    assert set(seen) == set(routes)   # every route was tried
    status, _, reply = http(exp.port, "GET", "/api/v1/nni/check-status", headers={"Authorization": f"Bearer {secret}"})
    assert status == 200 and json.loads(reply)["status"] != "ERROR", reply
    database = Path(exp.config.experiment_working_directory, exp.id, "db", "nni.sqlite")
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_reported_bad_bodies_get_a_4xx_naming_the_field(live):
    exp, trial_id, token = live
    secret = secret_of(exp)
    auth = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    trial_auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    metric = f"/api/v1/trial/{trial_id}/metric"
    parameter = f"/api/v1/trial/{trial_id}/parameter"

    def call(method, path, body, headers=auth):
        status, _, reply = http(exp.port, method, path, body=body if isinstance(body, bytes) else
                                json.dumps(body).encode(), headers=headers)
        return status, reply.decode(errors="replace")

    deep = b"[" * 100_000 + b"]" * 100_000
    for method, path, headers in [("POST", "/api/v1/nni/experiment/import-data", auth),
                                  ("PUT", "/api/v1/nni/experiment?update_type=SEARCH_SPACE", auth),
                                  ("POST", "/api/v1/nni/trial-jobs/rerun", auth),
                                  ("POST", metric, trial_auth), ("POST", parameter, trial_auth)]:
        status, reply = call(method, path, deep, headers)
        assert status == 400 and "nested too deeply" in reply, (path, status, reply)
    assert call("POST", parameter, [1, 2], trial_auth)[0] == 400
    status, reply = call("POST", metric, {"parameter_id": 0, "type": "PERIODICAL", "sequence": 2**63,
                                          "value": "1"}, trial_auth)
    assert status == 400 and "sequence" in reply
    status, reply = call("POST", parameter, b'{"index": 1e309}', trial_auth)
    assert status == 400 and "index" in reply
    status, reply = call("POST", metric, {"parameter_id": 0, "type": "PERIODICAL", "sequence": 0,
                                          "value": "[" * 5000 + "]" * 5000}, trial_auth)
    assert status == 400 and "value" in reply
    status, reply = call("POST", "/api/v1/nni/experiment/import-data",
                         b'[{"parameter": {"x": 0.5, "n": 3}, "value": 1' + b"0" * 400 + b"}]")
    assert status == 400 and "[0].value" in reply
    status, reply = call("POST", "/api/v1/nni/experiment/import-data", [{"parameter": {"x": 0.5, "n": 3}}] * 100_001)
    assert status == 400 and "at most 100000" in reply
    status, reply = call("POST", "/api/v1/nni/experiment/import-data", b"[" + b"0," * (9 * 1024 * 1024) + b"0]")
    assert status == 413

    # Runtime updates pass the config's own checks.
    def update(kind, key, value):
        return call("PUT", f"/api/v1/nni/experiment?update_type={kind}", {"params": {key: value}})
    status, reply = update("MAX_EXEC_DURATION", "maxExperimentDuration", 0)
    assert status == 400 and "maxExperimentDuration" in reply
    status, reply = update("SEARCH_SPACE", "searchSpace", {"a": {"_type": "choice", "_vaule": [1]}})
    assert status == 400 and "searchSpace" in reply and "_value" in reply
    status, reply = update("TRIAL_CONCURRENCY", "trialConcurrency", 10**30)
    assert status == 400 and "trialConcurrency" in reply
    status, reply = update("MAX_TRIAL_NUM", "maxTrialNumber", "7")
    assert status == 400 and "maxTrialNumber" in reply
    assert update("MAX_EXEC_DURATION", "maxExperimentDuration", "2h")[0] == 200
    assert exp.get_experiment_profile()["params"]["maxExperimentDuration"] == 7200
    assert exp.get_status() == "RUNNING"
