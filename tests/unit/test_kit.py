"""The daemon kit apart from metrics: quiet start-up logging, dependency health, the embedded
server the relay uses, the one problem+json handler and `--check`."""

from __future__ import annotations

import asyncio
import io
import logging
import socket

import aiohttp
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from daemons.kit import problems
from daemons.kit.check import check
from daemons.kit.health import Dependencies, Dependency
from daemons.kit.http import EmbeddedServer, metrics_router, small_app
from daemons.kit.logs import _DaemonHandler, describe
from tests.unit.test_metrics import Clock


def test_describe_names_the_type_when_the_message_is_empty() -> None:
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(ConnectionError("refused")) == "ConnectionError: refused"
    assert describe(ValueError("ValueError: said twice")) == "ValueError: said twice"


def test_a_service_still_starting_is_waited_for_quietly_then_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    kafka = Dependency("kafka", logging.getLogger("test.kit"), grace=30, clock=clock)
    caplog.set_level(logging.DEBUG, "test.kit")
    kafka.failed(ConnectionError())
    clock.now = 10
    kafka.failed(ConnectionError("refused"))
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.DEBUG]
    assert kafka.as_json() == {"up": False, "error": "ConnectionError: refused"} and kafka.starting
    clock.now = 31
    assert not kafka.starting
    kafka.failed(ConnectionError("refused"))
    clock.now = 40
    kafka.failed(ConnectionError("refused"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["kafka unavailable for 31 s: ConnectionError: refused; retrying"]
    kafka.ok()
    assert caplog.records[-1].getMessage() == "kafka is back" and kafka.as_json() == {"up": True, "error": None}


def test_a_service_that_was_up_is_reported_at_its_first_failure(caplog: pytest.LogCaptureFixture) -> None:
    redis = Dependency("redis", logging.getLogger("test.kit"), clock=Clock())
    redis.ok()
    with caplog.at_level(logging.INFO, "test.kit"):
        redis.failed(TimeoutError())
    assert [r.getMessage() for r in caplog.records] == ["redis unavailable: TimeoutError; retrying"]


async def test_probes_run_when_read_and_name_what_is_down() -> None:
    clock = Clock()
    deps = Dependencies(logging.getLogger("test.kit"), clock=clock)
    calls = []

    async def fine() -> None:
        calls.append("postgres")

    async def broken() -> None:
        raise OSError("connection refused")

    deps.probe("postgres", fine)
    deps.probe("redis", broken, every=5)
    deps.track("kafka")
    await deps.refresh()
    await deps.refresh()  # within `every`: not probed again
    assert calls == ["postgres"]
    assert deps.as_json() == {"kafka": {"up": None, "error": None}, "postgres": {"up": True, "error": None},
                              "redis": {"up": False, "error": "OSError: connection refused"}}  # fmt: skip
    assert deps.problems() == ["redis: OSError: connection refused"]
    clock.now = 2
    await deps.refresh()
    assert calls == ["postgres", "postgres"]


def test_client_library_chatter_is_shown_as_debug() -> None:
    handler = _DaemonHandler()
    stream = io.StringIO()
    handler.setStream(stream)
    message, args = "Group Coordinator Request failed: %s", ("GroupCoordinatorNotAvailableError",)
    record = logging.LogRecord("aiokafka.consumer.group_coordinator", logging.ERROR, __file__, 1, message, args, None)
    handler.handle(record)
    assert " DEBUG aiokafka.consumer.group_coordinator: Group Coordinator Request failed" in stream.getvalue()


async def test_the_embedded_server_serves_metrics_on_port_0_and_refuses_a_port_in_use() -> None:
    async def document(_: object) -> dict[str, object]:
        return {"status": "ok", "problems": [], "dependencies": {"postgres": {"up": True, "error": None}}}

    async def prometheus(_: object) -> bytes:
        return b"up 1\n"

    app = small_app("test", metrics_router("/m", "/m/prometheus", document, prometheus))
    server = EmbeddedServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/m/prometheus"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            assert await response.read() == b"up 1\n"
        healthy, line = await check("test", f"http://127.0.0.1:{server.port}/m")
        assert healthy and line == "test ok (postgres up)"
        with pytest.raises(OSError):
            EmbeddedServer(app, "127.0.0.1", server.port)
    finally:
        await server.stop()
    healthy, line = await check("test", f"http://127.0.0.1:{server.port}/m")
    assert not healthy and line.startswith("test not answering at")


async def test_an_idle_connection_outlives_uvicorns_default_keep_alive() -> None:
    """A client that reuses a connection after 6 s idle (uvicorn closes at 5 s by default; the
    dashboard's pool keeps connections 60 s) gets its answer on it, not a closed connection."""

    async def document(_: object) -> dict[str, object]:
        return {"status": "ok", "problems": [], "dependencies": {}}

    async def prometheus(_: object) -> bytes:
        return b"up 1\n"

    server = EmbeddedServer(small_app("test", metrics_router("/m", "/m/p", document, prometheus)), "127.0.0.1", 0)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = b"GET /m/p HTTP/1.1\r\nHost: test\r\n\r\n"
    try:
        for pause in (0, 6):
            await asyncio.sleep(pause)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), (pause, head)
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            assert await reader.readexactly(length) == b"up 1\n"
    finally:
        writer.close()
        await server.stop()


class Body(BaseModel):
    size: int = Field(ge=1)


async def test_one_problem_handler_names_the_invalid_fields() -> None:
    app = FastAPI()
    problems.install(app, logging.getLogger("test.kit"))

    @app.post("/things")
    async def things(body: Body) -> dict[str, int]:
        return {"size": body.size}

    @app.get("/refused")
    async def refused() -> None:
        raise problems.Problem(409, "Conflict", "taken", currentVersion=3)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = EmbeddedServer(app, "127.0.0.1", port)
    await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            async with session.post("/things", json={"size": 0}) as response:
                assert response.status == 422 and response.content_type == "application/problem+json"
                body = await response.json(content_type=None)
            async with session.get("/refused") as response:
                conflict = await response.json(content_type=None)
    finally:
        await server.stop()
    assert body["detail"] == "invalid field(s): size" and body["instance"] == "/things"
    assert body["errors"][0]["field"] == "size"
    assert conflict == {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "taken",
                        "instance": "/refused", "currentVersion": 3}  # fmt: skip
