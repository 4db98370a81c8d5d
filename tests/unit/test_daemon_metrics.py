"""Reading a daemon's metrics document (uoom/daemon_metrics.py) from a local HTTP server: one
connection for many reads, and one line saying why when there is no document."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from uoom.config import Settings
from uoom.daemon_metrics import MetricsReader, metrics_url, read_once

DOCUMENT = {"service": "api", "status": "ok", "latency": {}}


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[int]]]:
    """A server answering /ok, /locked (401) and /other (not the document), and the client
    ports it saw (one per connection)."""
    ports: list[int] = []

    async def answer(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer and peer[1] not in ports:
            ports.append(peer[1])
        if request.path == "/locked":
            return web.json_response({"title": "Unauthorized"}, status=401)
        if request.path == "/other":
            return web.json_response(["not", "a", "document"])
        return web.json_response(DOCUMENT)

    app = web.Application()
    app.router.add_get("/{name}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", ports
    finally:
        await runner.cleanup()


async def test_one_reader_keeps_one_connection_for_every_read(server: tuple[str, list[int]]) -> None:
    base, ports = server
    async with MetricsReader(timeout=2) as reader:
        for _ in range(5):
            assert await reader.read("api", f"{base}/ok") == (DOCUMENT, "")
    assert len(ports) == 1


async def test_no_document_is_one_line_saying_why(server: tuple[str, list[int]]) -> None:
    base, _ = server
    assert await read_once("api", f"{base}/locked") == (
        None, f"api at {base}/locked wants an API key for its metrics (UOOM_API_METRICS_REQUIRE_KEY)")  # fmt: skip
    assert await read_once("api", f"{base}/other") == (None, f"api: {base}/other did not answer the metrics document")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    document, why = await read_once("relay", f"http://user:hunter22@127.0.0.1:{closed}/api/v1/metrics", seconds=1)
    assert document is None
    assert (
        why == f"relay not answering at http://user:********@127.0.0.1:{closed}/api/v1/metrics (ClientConnectorError)"
    )


def test_the_urls_come_from_the_settings_unless_given() -> None:
    settings = Settings(_env_file=None, api_url="https://api.example.com/", relay_metrics_port=4003)  # type: ignore[call-arg]
    assert metrics_url(settings, "api") == "https://api.example.com/api/metrics"
    assert metrics_url(settings, "relay") == "http://127.0.0.1:4003/api/v1/metrics"
    assert metrics_url(settings, "optimizer", "http://10.0.0.7:3002/") == "http://10.0.0.7:3002/api/metrics"
    assert settings.service_urls()["api"] == "https://api.example.com"
