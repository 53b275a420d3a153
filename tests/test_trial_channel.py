"""The trial channel's kept connection (HTTP keep-alive) against a real aiohttp server.

The manager's server is aiohttp; here it runs with a short keep-alive timeout so that a test
sees what a trial sees after 75 s of silence: its kept connection closed by the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest
from aiohttp import web

from nni.runtime.channel import ChannelError, TrialChannel


class Server:
    """aiohttp on 127.0.0.1 in a thread: answers trial requests, records (client port, body)."""

    def __init__(self, keepalive_timeout: float, slow: float = 0.0) -> None:
        self.seen: list[tuple[int, dict]] = []
        self.request_ids: list[str | None] = []   # the Nni-Request header of each request seen
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        async def metric(request: web.Request) -> web.Response:
            body = await request.json()
            self.seen.append((request.transport.get_extra_info("peername")[1], body))
            self.request_ids.append(request.headers.get("Nni-Request"))
            if body.get("sequence") == 7 and len([b for _, b in self.seen if b.get("sequence") == 7]) == 1:
                await asyncio.sleep(slow)   # the first try's answer comes after the client gave up
            if body.get("sequence") == 99:
                raise web.HTTPConflict(text="superseded")
            return web.json_response(None)

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/api/v1/trial/{trial_id}/{action}", metric)
            self.runner = web.AppRunner(app, keepalive_timeout=keepalive_timeout)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(target=lambda: (self.loop.run_until_complete(start()),
                                                       self.loop.run_forever()), daemon=True)
        self.thread.start()
        assert ready.wait(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture
def server():
    started: list[Server] = []

    def _start(keepalive_timeout: float, slow: float = 0.0) -> Server:
        started.append(Server(keepalive_timeout, slow))
        return started[-1]
    yield _start
    for s in started:
        s.stop()


def test_reports_share_one_connection_and_survive_the_server_closing_it(server):
    srv = server(keepalive_timeout=0.5)
    channel = TrialChannel(f"http://127.0.0.1:{srv.port}", "abcde", "token")
    for i in range(5):
        channel.send_metric(0, "PERIODICAL", i, json.dumps(i))
    ports = [port for port, _ in srv.seen]
    assert len(set(ports)) == 1, "five reports in a row should reuse one connection"
    time.sleep(2.0)          # past the keep-alive timeout: the server closes the idle connection
    channel.send_metric(0, "PERIODICAL", 5, json.dumps(5))     # sent again at once on a new connection
    channel.send_metric(0, "FINAL", 0, json.dumps(1.0))
    assert [b["sequence"] for _, b in srv.seen] == [0, 1, 2, 3, 4, 5, 0]   # each exactly once
    assert len({port for port, _ in srv.seen}) == 2
    # A refusal keeps its status (the caller tells 409 from the rest), and the channel goes on.
    with pytest.raises(ChannelError) as refused:
        channel.send_metric(0, "PERIODICAL", 99, "0")
    assert refused.value.status == 409
    channel.send_metric(0, "PERIODICAL", 6, "6")
    assert srv.seen[-1][1]["sequence"] == 6


def test_a_forked_child_uses_its_own_connection(server):
    srv = server(keepalive_timeout=30)
    channel = TrialChannel(f"http://127.0.0.1:{srv.port}", "abcde", "token")
    channel.send_metric(0, "PERIODICAL", 0, "0")
    pid = os.fork()
    if pid == 0:    # the child: reports on the inherited channel object, then leaves at once
        code = 0
        try:
            channel.send_metric(0, "PERIODICAL", 1, "1")
        except BaseException:  # noqa: BLE001 - any failure is the child's exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    channel.send_metric(0, "PERIODICAL", 2, "2")               # the parent's connection still works
    ports = [port for port, _ in srv.seen]
    assert [b["sequence"] for _, b in srv.seen] == [0, 1, 2]
    assert ports[0] == ports[2] != ports[1]


def test_a_retry_repeats_the_request_id_and_every_request_has_its_own(server, monkeypatch):
    import nni.runtime.channel as channel_module
    connect = channel_module._connect
    monkeypatch.setattr(channel_module, "_connect", lambda host, port, timeout: connect(host, port, 1.0))
    monkeypatch.setenv("NNI_TRIAL_ATTEMPT", "3")
    srv = server(keepalive_timeout=30, slow=4.0)
    channel = TrialChannel(f"http://127.0.0.1:{srv.port}", "abcde", "token")
    channel.send_metric(0, "PERIODICAL", 6, "6")
    channel.send_metric(0, "PERIODICAL", 7, "7")     # times out once (or more), then is answered
    channel.send_metric(0, "PERIODICAL", 8, "8")
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            channel.send_metric(0, "PERIODICAL", 9, "9")
        except BaseException:  # noqa: BLE001 - any failure is the child's exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    by_sequence: dict[int, set[str | None]] = {}
    for (_, body), request_id in zip(srv.seen, srv.request_ids):
        by_sequence.setdefault(body["sequence"], set()).add(request_id)
    tries_of_7 = [b for _, b in srv.seen if b["sequence"] == 7]
    assert len(tries_of_7) >= 2, "the slow answer should have made the client try again"
    ids = {sequence: ids.pop() for sequence, ids in by_sequence.items() if len(ids) == 1}
    assert set(ids) == {6, 7, 8, 9}, by_sequence     # each try of a request carries the same id
    assert len(set(ids.values())) == 4                # and requests do not share one
    assert all(i.startswith(f"3.{os.getpid()}.") for s, i in ids.items() if s != 9), ids
    assert ids[9].startswith(f"3.{pid}."), ids        # the forked child numbers its own
