"""PostgreSQL stalled at COMMIT, for one API process (a relay in front of the real database holds
one COMMIT): the client is told 503 (Retry-After, "retry with the same Idempotency-Key"), and its
retries with the same key never make a second order, whether the stalled COMMIT had reached the
database (only its answer held) or not (the first transaction still open when the retry arrives)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import TcpProxy, create_key, order_body, run_api
from tests.e2e.test_api_resilience import target_of, through
from uoom.config import Settings

# asyncpg's Transaction.commit(): a simple query, 'Q', length 12, "COMMIT;\0"
COMMIT = b"Q\x00\x00\x00\x0cCOMMIT;\x00"
REQUEST_TIMEOUT_MS = 1000


class CommitStall(TcpProxy):
    """Holds the next COMMIT once armed: `before` the database (the transaction stays open) or
    its `answer` (committed, the client not told), until `release()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(target)
        self.armed = threading.Event()
        self.held = threading.Event()
        self.released = threading.Event()
        self.where = "answer"
        self._client: socket.socket | None = None  # the connection whose COMMIT answer is held

    def arm(self, where: str) -> None:
        self.where = where
        self.held.clear()
        self.released.clear()
        self.armed.set()

    def release(self) -> None:
        self.released.set()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            from_server = source.getpeername()[:2] == self.target
        except OSError:
            return
        try:
            while data := source.recv(65536):
                if not from_server and self.armed.is_set() and COMMIT in data:
                    self.armed.clear()
                    self.held.set()
                    if self.where == "before":
                        self.released.wait(30)
                    else:
                        self._client = source
                elif from_server and sink is self._client:
                    self.released.wait(30)
                    self._client = None
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@contextlib.asynccontextmanager
async def api_with_stall(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, CommitStall]]:
    dsn = settings.database_url.get_secret_value()
    stall = CommitStall(target_of(dsn, 5432))
    stall.start()
    key = (await create_key(settings, "commit-stall"))[1]
    try:
        with run_api(tmp_path, "commit-stall", UOOM_DATABASE_URL=through(stall, dsn),
                     UOOM_API_REQUEST_TIMEOUT_MS=str(REQUEST_TIMEOUT_MS)) as api:  # fmt: skip
            async with api.client(key, timeout=30) as client:
                yield client, stall
    finally:
        stall.release()
        stall.cut()


async def orders_of(db: asyncpg.Connection, customer: str) -> list[asyncpg.Record]:
    return await db.fetch(
        """SELECT o.id, count(e.id) AS events FROM orders o JOIN outbox_events e ON e.aggregate_id = o.id
           WHERE o.customer_id = $1 GROUP BY o.id""",
        uuid.UUID(customer),
    )  # fmt: skip


def assert_says_retry_with_the_key(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "same Idempotency-Key" in response.json()["detail"], response.json()


@pytest.mark.parametrize("where", ["answer", "before"])
async def test_a_create_stalled_at_commit_is_a_503_and_retries_with_its_key_make_one_order(
    where: str, settings: Settings, demo: None, db: asyncpg.Connection, tmp_path: Path
) -> None:
    async with api_with_stall(settings, tmp_path) as (client, stall):
        body = order_body()
        headers = {"Idempotency-Key": f"stall-{uuid.uuid4()}"}
        stall.arm(where)
        first = await client.post("/api/orders", json=body, headers=headers)
        assert stall.held.is_set(), "the create never reached COMMIT"
        assert_says_retry_with_the_key(first)
        if where == "before":
            # the first transaction is still open: a retry waits on its key, and is told the same
            assert await orders_of(db, body["customerId"]) == []
            retry = await client.post("/api/orders", json=body, headers=headers)
            assert_says_retry_with_the_key(retry)
            stall.release()
            await asyncio.sleep(0.5)  # the held COMMIT reaches the database
        retry = await client.post("/api/orders", json=body, headers=headers)
        assert retry.status_code == 201, retry.text
        stall.release()
        again = await client.post("/api/orders", json=body, headers=headers)
        assert again.status_code == 201 and again.json() == retry.json()
        stored = await orders_of(db, body["customerId"])
        assert [(str(r["id"]), r["events"]) for r in stored] == [(retry.json()["id"], 1)]
        status = await client.get(f"/api/orders/{retry.json()['id']}/status")
        assert status.status_code == 200 and status.json()["version"] == 1


async def test_a_create_without_a_key_stalled_at_commit_says_to_look_before_retrying(
    settings: Settings, demo: None, db: asyncpg.Connection, tmp_path: Path
) -> None:
    async with api_with_stall(settings, tmp_path) as (client, stall):
        body = order_body()
        stall.arm("answer")
        first = await client.post("/api/orders", json=body)
        assert first.status_code == 503 and first.headers["Retry-After"] == "1", first.text
        assert "send an Idempotency-Key" in first.json()["detail"]
        stall.release()
        await asyncio.sleep(0.5)
        assert len(await orders_of(db, body["customerId"])) == 1  # it was created: hence the advice
