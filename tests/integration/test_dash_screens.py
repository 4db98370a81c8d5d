"""The dashboard's actions against the real stores, driven by the pilot: the weights modal writes
Redis through `rankings.apply_weights` (the ranking republished) and a refused value writes
nothing; the dead-letters screen replays the selected dead letter through the `uoom dlq replay`
use case, after a confirmation, with its own id, audited. The panels read a fake source: the
actions open their own connections from the settings, as with the real one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.integration.relay_support import relay_dsn
from tests.unit.dash_fakes import FakeSources
from tui.app import DashApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.dead_letters import DeadLettersScreen
from tui.screens.weights import WeightsScreen
from uoom import demo, rankings
from uoom.config import Settings
from uoom.stores import outbox, redis_keys
from uoom.stores.postgres import connect

__all__ = ["relay_dsn"]  # fixtures
SIZE = (120, 40)


async def until(pilot: Pilot[Any], ready: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, "the screen did not get there in time"
        await pilot.pause(0.05)


@pytest.fixture
async def settings_here(relay_dsn: str, private_redis_url: str) -> AsyncIterator[Settings]:
    """Settings naming a migrated scratch database with the demo channels, and an empty Redis."""
    settings = Settings(database_url=SecretStr(relay_dsn), redis_url=SecretStr(private_redis_url))
    conn = await connect(settings)
    try:
        await demo.load(conn)
    finally:
        await conn.close()
    yield settings


@pytest.fixture
async def redis(settings_here: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(settings_here.redis_url.get_secret_value(), decode_responses=True)
    yield client
    await client.aclose()


def dashboard(settings: Settings) -> DashApp:
    return DashApp(FakeSources(settings=settings), refresh=1.0)


async def test_the_weights_modal_stores_normalised_weights_and_republishes_the_ranking(
    settings_here: Settings, redis: aioredis.Redis
) -> None:
    app = dashboard(settings_here)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        await pilot.press("w")
        screen = app.screen
        assert isinstance(screen, WeightsScreen)
        for name, value in {"cost": "2", "time": "1", "quality": "1", "capacity": ""}.items():
            screen.query_one(f"#weight-{name}", Input).value = value
        await pilot.click("#weights-save")
        await until(pilot, lambda: not isinstance(app.screen, WeightsScreen))
    assert await redis.hgetall(redis_keys.WEIGHTS) == {"cost": "0.5", "time": "0.25", "quality": "0.25",
                                                       "capacity": "0.0"}  # fmt: skip
    ranked = [row["channelId"] for row in await rankings.ranking(redis)]
    assert len(ranked) == len(demo.CHANNELS)  # republished at once, not at the optimizer's next round
    assert ranked[0] == "restaurant-self"  # the cheapest demo channel leads when cost weighs most


async def test_a_refused_weight_writes_nothing(settings_here: Settings, redis: aioredis.Redis) -> None:
    await redis.hset(redis_keys.WEIGHTS, mapping={"cost": 0.4, "time": 0.3, "quality": 0.2, "capacity": 0.1})
    app = dashboard(settings_here)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        await pilot.press("w")
        screen = app.screen
        screen.query_one("#weight-quality", Input).value = "lots"
        await pilot.click("#weights-save")
        await pilot.pause(0.3)
        assert isinstance(app.screen, WeightsScreen)
        assert "not a number" in str(screen.query_one("#weights-error", Static).render())
    assert await redis.hgetall(redis_keys.WEIGHTS) == {"cost": "0.4", "time": "0.3", "quality": "0.2",
                                                       "capacity": "0.1"}  # fmt: skip
    assert await redis.exists(redis_keys.RANK_COMPOSITE) == 0


async def dead_letter(settings: Settings) -> str:
    """An event that died: written, claimed and refused for good by the relay's own SQL."""
    import uuid

    conn = await connect(settings)
    try:
        async with conn.transaction():
            await outbox.append(conn, "order.created", uuid.uuid4(), 1, {"order": {"status": "PENDING"}})
            (event,) = await outbox.claim(conn, 10, 0)
            await outbox.record(conn, [], [], [(event, "KafkaError: MessageSizeTooLarge")])
    finally:
        await conn.close()
    return str(event.id)


async def test_the_dead_letters_screen_replays_the_selection_after_a_confirmation(settings_here: Settings) -> None:
    dsn = settings_here.database_url.get_secret_value()
    wanted, other = await dead_letter(settings_here), await dead_letter(settings_here)
    app = dashboard(settings_here)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        await pilot.press("d")
        assert isinstance(app.screen, DeadLettersScreen)
        table = app.screen.query_one("#dead-letters", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        table.move_cursor(row=table.get_row_index(wanted))
        await pilot.press("space", "r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Replay 1 dead letter?" in str(app.screen.query_one("#confirm-question", Static).render())
        await pilot.click("#confirm-yes")
        await until(pilot, lambda: isinstance(app.screen, DeadLettersScreen))
        report = app.screen.query_one("#dlq-report", Static)
        await until(pilot, lambda: "replayed 1" in str(report.render()))
        await until(pilot, lambda: table.row_count == 1)  # the other is still open
        assert [row.value for row in table.rows] == [other]
        await pilot.press("escape")
        assert not isinstance(app.screen, DeadLettersScreen)
    conn = await asyncpg.connect(dsn)
    try:
        back = await conn.fetchrow("SELECT processed, attempts FROM outbox_events WHERE id = $1::uuid", wanted)
        audit = await conn.fetchrow("SELECT action, count, event_ids::text[] AS ids FROM operator_audit")
    finally:
        await conn.close()
    assert back is not None and not back["processed"] and back["attempts"] == 0  # on the delivery path, same id
    assert (audit["action"], audit["count"], audit["ids"]) == ("dlq.replay", 1, [wanted])


async def test_a_replay_can_be_declined_and_nothing_moves(settings_here: Settings) -> None:
    dsn = settings_here.database_url.get_secret_value()
    wanted = await dead_letter(settings_here)
    app = dashboard(settings_here)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fetches >= 1)
        await pilot.press("d")
        table = app.screen.query_one("#dead-letters", DataTable)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.press("r")  # nothing selected: the row under the cursor
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#confirm-no")
        await until(pilot, lambda: isinstance(app.screen, DeadLettersScreen))
        assert "nothing changed" in str(app.screen.query_one("#dlq-report", Static).render())
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM outbox_events WHERE id = $1::uuid", wanted) == 0
        assert await conn.fetchval("SELECT count(*) FROM operator_audit") == 0
    finally:
        await conn.close()
