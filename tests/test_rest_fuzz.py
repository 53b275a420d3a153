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
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import HypothesisWarning
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
        if route == ("PUT", "/api/v1/nni/experiment"):
            body = _tame(query.get("update_type"), body)
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
    status, reply = update("MAX_EXEC_DURATION", "maxExperimentDuration", 10**400)
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


# -- attacks: every header a hostile client controls, on every route, while the experiment changes --
def _deep(depth: int, kind: str) -> bytes:
    return (b"[" * depth + b"]" * depth) if kind == "list" else (b'{"a":' * depth + b"1" + b"}" * depth)


KNOWN_BAD_BODIES = [_deep(200_000, "list"), _deep(50_000, "dict"), b'{"trialJobIds": ' + _deep(100_000, "list") + b"}",
                    b'{"x": "' + b"a" * (1 << 20) + b'"}', b"\xff\xfe", b""]
# A body is drawn as what to build (a kind and a size), so that hypothesis keeps and prints
# a few numbers, not megabytes, for each step.
body_specs = st.one_of(
    bodies.map(lambda b: ("as is", b)),
    st.tuples(st.just("deep"), st.integers(1, 400), st.sampled_from(["list", "dict"])),
    st.tuples(st.just("known bad"), st.integers(0, 5)),
    st.tuples(st.just("big string"), st.integers(1, 2 << 20)),          # up to 2 MiB
    st.tuples(st.just("import rows"), st.integers(1, 2000)),
)


def _build(spec: tuple) -> bytes:
    kind = spec[0]
    if kind == "as is":
        return spec[1]
    if kind == "deep":
        return _deep(spec[1], spec[2])
    if kind == "known bad":
        return KNOWN_BAD_BODIES[spec[1] % len(KNOWN_BAD_BODIES)]
    if kind == "big string":
        return b'["' + b"a" * spec[1] + b'"]'
    return json.dumps([{"parameter": {"x": 0.5, "n": i}, "value": 0.1} for i in range(spec[1])]).encode()


# (what the Authorization header is, and whether the request is one the app sees: aiohttp itself
# refuses a header line over 8190 bytes with a plain-text 400, before any route)
# (the right credentials half of the time, so that the routes' own checks are reached too)
AUTHORIZATIONS = ["right"] * 9 + ["absent", "wrong", "non-ascii", "latin-1", "huge", "too-long", "other-trial",
                  "lower-case scheme", "basic"]
HOSTS = ["own"] * 12 + ["absent", "localhost", "[::1]", "evil.example", "127.0.0.1.evil.example", "", "h\u00e9",
         "x" * 1000]
ORIGINS = [None, None, "own", "http://evil.example", "null", "garbage", "http://127.0.0.1:1", "\u00ff"]
CONTENT_TYPES = [None] + ["application/json"] * 10 + ["text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/json; charset=latin-1", "application/json; charset=\u00e9",
                 "application/jsonx", ""]


# The machine's load stays bounded however the fuzz updates the experiment: at most this many
# trial processes at once, and this many trials in all.
MAX_CONCURRENCY, MAX_TRIALS = 3, 60
_BOUNDS = {"TRIAL_CONCURRENCY": ("trialConcurrency", MAX_CONCURRENCY), "MAX_TRIAL_NUM": ("maxTrialNumber", MAX_TRIALS)}


def _tame(update_type: object, body: bytes) -> bytes:
    """A limit update's value held to the bounds above (everything else as the fuzz made it)."""
    if update_type not in _BOUNDS:
        return body
    key, bound = _BOUNDS[update_type]
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return body
    params = value.get("params", value) if isinstance(value, dict) else None
    if isinstance(params, dict) and isinstance(params.get(key), (int, float)) and params[key] > bound:
        params[key] = bound
        return json.dumps(value, allow_nan=True).encode()
    return body


def _route_list(port: int) -> list[tuple[str, str]]:
    """Every (method, path template) the application serves, the web UI's and the trial routes
    included; stopping the experiment is left out (it would end the test's manager)."""
    from nni.manager.rest import build_app
    from nni.manager.store import Store
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp, "db", "nni.sqlite"))
        try:
            app = build_app(store, None, secret="x")
            routes = sorted({(r.method, r.resource.canonical) for r in app.router.routes()
                             if r.method != "HEAD" and r.resource is not None})
        finally:
            store.close()
    return [r for r in routes if r != ("DELETE", "/api/v1/nni/experiment")]


def test_attacks_on_every_route_while_trials_are_created_killed_rerun_and_updated(live):
    from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

    exp, first_trial, first_token = live
    port, secret = exp.port, secret_of(exp)
    own = f"127.0.0.1:{port}"
    routes = _route_list(port)
    client_auth = [("Host", own), ("Authorization", f"Bearer {secret}")]
    json_auth = client_auth + [("Content-Type", "application/json")]
    answered: dict[tuple[str, str], set[int]] = {}

    def known_trials() -> dict[str, str | None]:
        """Trial id -> its token (read from the trial's directory while it runs)."""
        status, _, reply = raw_http(port, "GET", "/api/v1/nni/trial-jobs", client_auth)
        assert status == 200, reply[:300]
        tokens = {}
        for job in json.loads(reply):
            token_file = Path(job["trialDir"], "token")
            tokens[job["trialJobId"]] = token_file.read_text() if token_file.exists() else None
        return tokens

    def check(status: int, headers: dict[str, str], reply: bytes, what: object, app_sees: bool = True) -> None:
        assert status < 500, (what, status, reply[:500])
        if status >= 400 and app_sees:   # one shape for every refusal
            body = json.loads(reply)
            assert isinstance(body, dict) and isinstance(body.get("error"), str), (what, status, reply[:300])

    swept: set[tuple[str, str]] = set()

    def attack(route, trials, trial_id, fill, query, body, authorization, host, origin, content_type):
        """One request to ``route`` with the headers a hostile client chose."""
        method, template = route
        path = template.replace("{trial_id}", urllib.parse.quote(trial_id, safe=""))
        for name in ("{version}", "{path}"):
            path = path.replace(name, urllib.parse.quote(fill, safe="/"))
        if "/progress" in path:
            query = {k: v for k, v in query.items() if k not in ("since", "until")}   # no 30 s long polls
        if route == ("PUT", "/api/v1/nni/experiment"):
            body = _tame(query.get("update_type"), body)
        if query:
            path += "?" + urllib.parse.urlencode(query)
        on_trial_route = template.startswith("/api/v1/trial")
        right = (trials.get(trial_id) or first_token) if on_trial_route else secret
        other = next((t for i, t in trials.items() if t and i != trial_id), "nope")
        value = {"right": f"Bearer {right}", "wrong": "Bearer wrong", "non-ascii": "Bearer é☃".encode(),
                 "latin-1": b"Bearer \xe9\xff", "huge": "Bearer " + "A" * 8000,
                 "too-long": "Bearer " + "A" * 20_000, "other-trial": f"Bearer {other}",
                 "lower-case scheme": f"bearer {right}", "basic": f"Basic {right}"}.get(authorization)
        headers: list[tuple[str, str | bytes]] = []
        if host != "absent":
            headers.append(("Host", own if host == "own" else host.encode()))
        if value is not None:
            headers.append(("Authorization", value))
        if origin is not None:
            headers.append(("Origin", f"http://{own}" if origin == "own" else origin.encode()))
        sends_body = method in ("POST", "PUT")
        if sends_body and content_type is not None:
            headers.append(("Content-Type", content_type.encode()))
        status, answer_headers, reply = raw_http(port, method, path, headers, body if sends_body else None)
        answered.setdefault(route, set()).add(status)
        # An HTTP/1.1 request without Host, or a header line over 8190 bytes, is refused by
        # aiohttp's parser (a plain-text 400) before any route.
        check(status, answer_headers, reply, (method, path, authorization, host, origin, content_type, body[:100]),
              app_sees=authorization != "too-long" and host != "absent")

    def sweep(route, trials, trial_id, body):
        """The route with each hostile header in turn (the others right), then each bad body."""
        right = dict(trials=trials, trial_id=trial_id, fill="x", query={}, body=body,
                     authorization="right", host="own", origin=None, content_type="application/json")
        variants = [{"authorization": a} for a in dict.fromkeys(AUTHORIZATIONS)]
        variants += [{"host": h} for h in dict.fromkeys(HOSTS)] + [{"origin": o} for o in dict.fromkeys(ORIGINS)]
        variants += [{"content_type": c} for c in dict.fromkeys(CONTENT_TYPES)]
        if route[0] in ("POST", "PUT"):
            variants += [{"body": b} for b in KNOWN_BAD_BODIES]
        for variant in variants:
            attack(route, **{**right, **variant})
        swept.add(route)

    class Attack(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.trials = known_trials()

        def pick(self, number: int) -> str:
            # drawn as a number, not from the list: the list changes with the manager's state,
            # and hypothesis needs the same draws to replay an example
            return sorted(self.trials)[number % len(self.trials)] if self.trials else first_trial

        @rule(route=st.sampled_from(routes), trial=st.one_of(st.integers(0, 1000), st.text(max_size=12)),
              fill=st.text(max_size=12), query=queries, body=body_specs,
              authorization=st.sampled_from(AUTHORIZATIONS), host=st.sampled_from(HOSTS),
              origin=st.sampled_from(ORIGINS), content_type=st.sampled_from(CONTENT_TYPES))
        def request(self, route, trial, fill, query, body, authorization, host, origin, content_type):
            trial_id = self.pick(trial) if isinstance(trial, int) else trial
            attack(route, self.trials, trial_id, fill, query, _build(body), authorization, host, origin, content_type)

        @rule(route=st.sampled_from(routes), trial=st.integers(0, 1000), body=body_specs)
        def every_variant(self, route, trial, body):
            sweep(route, self.trials, self.pick(trial), _build(body))

        @rule(number=st.integers(0, 1000))
        def kill(self, number):
            trial_id = self.pick(number)
            check(*raw_http(port, "DELETE", f"/api/v1/nni/trial-jobs/{trial_id}", client_auth), ("kill", trial_id))

        @rule(status=st.one_of(st.none(), st.sampled_from(["USER_CANCELED", "FAILED", "RUNNING"])),
              numbers=st.lists(st.integers(0, 1000), max_size=3), extend=st.booleans())
        def rerun(self, status, numbers, extend):
            body = {"status": status} if status else {"trialJobIds": [self.pick(n) for n in numbers]}
            body["extendBudget"] = extend
            check(*raw_http(port, "POST", "/api/v1/nni/trial-jobs/rerun", json_auth, json.dumps(body).encode()),
                  ("rerun", body))

        @rule(concurrency=st.integers(1, 3))
        def create(self, concurrency):
            # more trials: a higher limit and a concurrency the scheduler fills with new trials
            profile = json.loads(raw_http(port, "GET", "/api/v1/nni/experiment", client_auth)[2])
            limit = min((profile["params"].get("maxTrialNumber") or 50) + 1, MAX_TRIALS)
            for kind, key, value in [("MAX_TRIAL_NUM", "maxTrialNumber", limit),
                                     ("TRIAL_CONCURRENCY", "trialConcurrency", concurrency)]:
                check(*raw_http(port, "PUT", f"/api/v1/nni/experiment?update_type={kind}", json_auth,
                                json.dumps({"params": {key: value}}).encode()), (kind, value))

        @rule(kind=st.sampled_from(["TRIAL_CONCURRENCY", "MAX_TRIAL_NUM", "MAX_EXEC_DURATION", "SEARCH_SPACE"]),
              value=st.one_of(json_values, space_specs, st.just(SPACE), st.sampled_from([1, 2, 3, "2h", 10**6])))
        def update(self, kind, value):
            key = {"TRIAL_CONCURRENCY": "trialConcurrency", "MAX_TRIAL_NUM": "maxTrialNumber",
                   "MAX_EXEC_DURATION": "maxExperimentDuration", "SEARCH_SPACE": "searchSpace"}[kind]
            body = _tame(kind, json.dumps({"params": {key: value}}, allow_nan=True).encode())
            check(*raw_http(port, "PUT", f"/api/v1/nni/experiment?update_type={kind}", json_auth, body), (kind, body))

        @rule()
        def look(self):
            self.trials = known_trials()

        @invariant()
        def manager_alive(self):
            status, _, reply = raw_http(port, "GET", "/api/v1/nni/check-status", client_auth)
            assert status == 200 and json.loads(reply)["status"] != "ERROR", reply
            profile = json.loads(raw_http(port, "GET", "/api/v1/nni/experiment", client_auth)[2])
            assert profile["params"]["trialConcurrency"] <= MAX_CONCURRENCY, profile["params"]
            assert profile["params"]["maxTrialNumber"] <= MAX_TRIALS, profile["params"]

    with warnings.catch_warnings():   # hypothesis warns that the strategies' repr is long (NASTY_TEXT)
        warnings.simplefilter("ignore", HypothesisWarning)
        run_state_machine_as_test(Attack, settings=settings(
            max_examples=40, stateful_step_count=30, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck)))
    trials = known_trials()
    for route in routes:   # a route the sampling missed still gets every hostile header
        if route not in swept:
            sweep(route, trials, sorted(trials)[0] if trials else first_trial, b"{}")
    database = Path(exp.config.experiment_working_directory, exp.id, "db", "nni.sqlite")
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert exp.get_status() != "ERROR"
