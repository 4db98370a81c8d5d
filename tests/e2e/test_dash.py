"""`uoom dash` against the running platform: the API, optimizer and relay as processes, real
PostgreSQL, Redis and Kafka, known data. The app (`DashApp` over `DashboardSources`, driven by
Textual's pilot) must show what the API, PostgreSQL, Redis and Kafka say when asked directly;
its actions (weights, dead-letter replay) must change the real stores; a store that goes away
must show as down and come back by itself. And `uoom dash --once --json` as a process.

The daemons run for the whole module (tests/e2e/dash_support.py); a test that stops one starts
it again before it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import pytest
from rich.color import Color
from rich.style import Style

from tests.e2e.conftest import REPO, free_port
from tests.e2e.dash_support import (
    API_ROUTES,
    REFRESH,
    DashPlatform,
    Recorder,
    cell,
    consume_event,
    dash_platform,
    eventually,
    health_state,
    number,
    numbers,
    redis_server,
    row_keys,
    shows,
    table,
    text,
)
from tests.integration.relay_support import write_events
from tests.integration.test_dlq import accept_any_timestamp
from uoom import rankings
from uoom.config import Settings
from uoom.domain.channels import CRITERIA, Weights
from uoom.stores import redis_keys

__all__ = ["dash_platform", "redis_server"]  # fixtures

DAEMONS = ("api", "optimizer", "relay")
STORES = ("postgres", "redis", "kafka", "dynamodb")
CLICK_APART = 0.6  # Textual takes two clicks on one spot within 0.5 s for a double click: no second press


@dataclass
class Dash:
    pilot: Any
    app: Any
    sources: Recorder


@contextlib.asynccontextmanager
async def dashboard(settings: Settings, key: str | None, size: tuple[int, int] = (200, 50)) -> AsyncIterator[Dash]:
    """The real app over the real sources, headless; after the test: no fetch ever raised."""
    from tui.app import DashApp
    from tui.sources import DashboardSources

    async with DashboardSources(settings, api_key=key) as sources:
        recorder = Recorder(sources)
        app = DashApp(recorder, refresh=REFRESH)
        async with app.run_test(size=size) as pilot:
            yield Dash(pilot, app, recorder)
            recorder.closing = True
    raised = ["".join(traceback.format_exception(e)) for e in recorder.errors]
    assert not raised, "fetch() raised (a DOWN row, never an exception):\n" + "\n".join(raised)


async def wait(dash: Dash, condition: Any, what: str, seen: Any = None, timeout: float = 15.0) -> Any:
    return await shows(dash.pilot, condition, what, seen, timeout, lambda: dash.sources.last)


def health(dash: Dash) -> dict[str, str | None]:
    return {name: health_state(dash.app, name) for name in (*STORES, *DAEMONS)}


async def all_up(dash: Dash) -> None:
    await wait(dash, lambda: all(v == "up" for v in health(dash).values()), "every health row up",
               lambda: health(dash), timeout=30)  # fmt: skip


def close(shown: float | None, actual: float | None, rel: float = 0.01, absolute: float = 0.011) -> bool:
    """Equal as the table rounds it (two decimals, or three significant digits)."""
    if shown is None or actual is None:
        return shown is None and actual is None
    return abs(shown - actual) <= max(absolute, rel * abs(actual))


# -- latency ----------------------------------------------------------------------------------------


async def test_latency_panel_shows_the_percentiles_and_rates_the_api_reports(dash_platform: DashPlatform) -> None:
    p = dash_platform
    p.ensure_running()
    settings = p.settings(dash_slo_status_ms=0.001)  # every status P99 breaches this SLO
    async with dashboard(settings, p.key) as dash:
        await all_up(dash)
        ids = await p.create_orders(6)
        async with p.api() as api:
            for _ in range(4):
                for order in ids:
                    assert (await api.get(f"/api/orders/{order}/status")).status_code == 200
            for _ in range(3):  # 4xx are not errors: the error rate counts 5xx only
                assert (await api.get(f"/api/orders/{uuid.uuid4()}/status")).status_code == 404
            for _ in range(2):
                batch = await api.post("/api/orders/status:batch", json={"orderIds": ids})
                assert batch.status_code == 200, batch.text
            for order in ids[:3]:  # "other": the only other route used (the monitoring ones are left out)
                assert (await api.get(f"/api/orders/{order}")).status_code == 200
        # no more traffic: the API's 60 s windows hold still, so the screen must come to show them
        document: dict[str, Any] = {}

        routes = {**API_ROUTES, "other": "GET /api/orders/{order_id}"}

        def expected(group: str) -> dict[str, Any]:
            entry: dict[str, Any] = document["latency"][routes[group]]
            return entry

        def screen() -> dict[str, dict[str, str]]:
            return {g: {c: cell(dash.app, "latency", g, c) for c in ("rps", "p50", "p95", "p99", "err")}
                    for g in routes}  # fmt: skip

        def agrees() -> bool:
            shown = screen()
            for group in routes:
                entry = expected(group)
                if not all(close(number(shown[group][q]), entry[q]) for q in ("p50", "p95", "p99")):
                    return False
                # ratePerSecond counts over the time since start in the API's first minute: it moves
                if not close(number(shown[group]["rps"]), entry["ratePerSecond"], rel=0.25, absolute=0.06):
                    return False
                if number(shown[group]["err"]) != 0:  # seen responses, none of them a 5xx
                    return False
            return True

        deadline = time.monotonic() + 15
        while True:
            document = await p.api_metrics()
            if agrees():
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"latency panel {screen()} != API {[expected(g) for g in routes]}")
            await dash.pilot.pause(REFRESH)
        assert expected("create")["count"] >= 6 and expected("status")["count"] >= 4 * 6 + 3
        assert expected("batch")["count"] >= 2 and expected("other")["count"] >= 3

        # the levels come from the SLO settings (status 0.001 ms: breached; create 100 ms) and colour the P99
        theme = dash.app.current_theme
        colours = {"breach": Color.parse(theme.error), "warn": Color.parse(theme.warning), "ok": None}
        create_p99 = expected("create")["p99"]
        want = {"status": "breach", "create": "breach" if create_p99 > 100 else "warn" if create_p99 >= 80 else "ok"}
        for group, level in want.items():
            p99 = table(dash.app, "latency").get_cell(group, "p99")
            colour = p99.style.color if isinstance(p99.style, Style) else None
            assert colour == colours[level], f"{group} P99 {p99.plain} ({level}) drawn in {colour}"


async def test_error_rate_is_the_share_of_5xx_the_api_answered(dash_platform: DashPlatform, proxy_factory: Any,
                                                               tmp_path: Any) -> None:  # fmt: skip
    """A second API whose PostgreSQL goes through a proxy the test cuts: creates fail with 503
    while status reads of orders the read model holds still answer 200."""
    from tests.e2e.conftest import run_api

    p = dash_platform
    p.ensure_running()
    pg = proxy_factory(("127.0.0.1", 5432))
    dsn = p.dsn.replace("127.0.0.1:5432", pg.address)
    assert dsn != p.dsn, p.dsn
    env = {k: v for k, v in p.env.items() if k.startswith("UOOM_") and k != "UOOM_API_PORT"}
    env.update(UOOM_DATABASE_URL=dsn, UOOM_API_REQUEST_TIMEOUT_MS="500")
    with run_api(tmp_path, "dash-5xx", **env) as second:
        ids = await p.create_orders(3)  # through the platform's API: in the read model
        settings = p.settings(api_url=second.url)
        async with dashboard(settings, p.key) as dash, second.client(p.key) as api:
            await wait(dash, lambda: health_state(dash.app, "api") in ("up", "degraded"), "the second API answering")
            for order in ids:
                await eventually(partial(_status_is, api, order, 200), f"order {order} readable", timeout=15)
            ok_creates = 2
            for _ in range(ok_creates):
                created = await api.post("/api/orders", json=_body())
                assert created.status_code == 201, created.text
            pg.cut()  # PostgreSQL unreachable for this API alone
            failed = 0
            for _ in range(3):
                created = await api.post("/api/orders", json=_body())
                assert created.status_code == 503, created.text
                failed += 1
            for order in ids * 2:
                assert (await api.get(f"/api/orders/{order}/status")).status_code == 200

            def err(group: str) -> float | None:
                return number(cell(dash.app, "latency", group, "err"))

            want = failed / (failed + ok_creates)
            await wait(dash, lambda: close(err("create"), want, absolute=0.006) and err("status") == 0,
                       f"create error rate {want:.3f}, status 0", lambda: (err("create"), err("status")))  # fmt: skip
            document = (await api.get("/api/metrics")).json()
            responses = document["api"]["responses"][API_ROUTES["create"]]
            assert responses["5xx"] == failed and responses["2xx"] == ok_creates, responses


def _body() -> dict[str, Any]:
    from tests.e2e.conftest import order_body

    return order_body()


async def _status_is(api: Any, order: str, status: int) -> bool:
    return bool((await api.get(f"/api/orders/{order}/status")).status_code == status)


# -- outbox ------------------------------------------------------------------------------------------


async def test_outbox_panel_shows_the_real_pending_count_while_the_relay_is_stopped(
    dash_platform: DashPlatform,
) -> None:
    p = dash_platform
    p.ensure_running()
    relay = p.daemons["relay"]
    async with dashboard(p.settings(), p.key) as dash:
        await all_up(dash)
        await wait(dash, lambda: number(cell(dash.app, "outbox", "pending", "value")) == 0, "nothing pending",
                   lambda: cell(dash.app, "outbox", "pending", "value"))  # fmt: skip
        relay.stop()
        try:
            await wait(dash, lambda: health_state(dash.app, "relay") == "down", "the relay row down",
                       lambda: health(dash))  # fmt: skip
            relay_row = next(h for h in dash.sources.last.health if h.name == "relay")
            assert relay_row.error, relay_row  # says why
            await p.create_orders(5)
            status = await p.outbox_status()
            assert status.pending >= 5, status  # nothing publishes them

            def pending() -> float | None:
                return number(cell(dash.app, "outbox", "pending", "value"))

            await wait(dash, lambda: pending() == status.pending, f"pending {status.pending} (SQL)", pending)
            before = await p.outbox_status()
            await dash.pilot.pause(REFRESH * 2)
            lag = number(cell(dash.app, "outbox", "lag", "value"))
            after = await p.outbox_status()
            assert before.pending == after.pending == pending()
            assert lag is not None and before.lag_seconds - 1 <= lag <= after.lag_seconds + 1, (before, lag, after)
            assert number(cell(dash.app, "outbox", "dead", "value")) == after.dead_letters_open
            assert number(cell(dash.app, "outbox", "backoff", "value")) == after.in_backoff
        finally:
            relay.start()
        await wait(dash, lambda: health_state(dash.app, "relay") == "up", "the relay row up again",
                   lambda: health(dash))  # fmt: skip
        await wait(dash, lambda: number(cell(dash.app, "outbox", "pending", "value")) == 0, "the outbox drained",
                   lambda: cell(dash.app, "outbox", "pending", "value"), timeout=30)  # fmt: skip
        assert (await p.outbox_status()).pending == 0


# -- channels ----------------------------------------------------------------------------------------


async def redis_view(p: DashPlatform) -> tuple[list[str], dict[str, dict[str, float | None]], dict[str, int]]:
    """Redis's composite order, each channel's scores, and the loads."""
    redis = p.redis()
    try:
        rows = await rankings.ranking(redis)
        loads = await rankings.channel_loads(redis)
    finally:
        await redis.aclose()
    scores = {r["channelId"]: {k: r[k] for k in ("score", "cost", "latency", "quality", "capacity")} for r in rows}
    return [r["channelId"] for r in rows], scores, loads


async def set_weights(p: DashPlatform, **weights: float) -> None:
    """Through the code of `uoom channels weights set`: stored, and the ranking republished."""
    from uoom.stores.postgres import connect

    conn = await connect(p.settings())
    redis = p.redis()
    try:
        await rankings.apply_weights(conn, redis, weights)
    finally:
        await redis.aclose()
        await conn.close()


async def test_ranking_table_follows_redis_when_the_weights_change(dash_platform: DashPlatform) -> None:
    p = dash_platform
    p.ensure_running()
    capacities = {r["id"]: r["capacity"] for r in await _channels(p)}
    try:
        async with dashboard(p.settings(), p.key) as dash:
            await all_up(dash)
            orders = []
            for weights in ({"cost": 1, "time": 0, "quality": 0, "capacity": 0},
                            {"cost": 0, "time": 0, "quality": 1, "capacity": 0}):  # fmt: skip
                await set_weights(p, **weights)
                order: list[str] = []

                async def matches() -> bool:
                    nonlocal order
                    order, scores, loads = await redis_view(p)
                    shown = row_keys(dash.app, "channels")
                    if shown != order:
                        return False
                    for channel in order:
                        for column, value in scores[channel].items():
                            if not close(number(cell(dash.app, "channels", channel, column)), value):
                                return False
                        # in-flight load against the registry's capacity, e.g. "3/40"
                        shown_load = numbers(cell(dash.app, "channels", channel, "load"))
                        if shown_load != [loads.get(channel, 0), capacities[channel]]:
                            return False
                        if number(cell(dash.app, "channels", channel, "rank")) != order.index(channel) + 1:
                            return False
                    return True

                await eventually(matches, f"the channel table in Redis's order for {weights}", timeout=15,
                                 every=REFRESH)  # fmt: skip
                assert dash.sources.last.channels.weights == pytest.approx(weights)
                orders.append(order)
            assert orders[0][0] == "restaurant-self" and orders[1][0] == "partner-premium", orders
            assert orders[0] != orders[1]
    finally:
        await _restore_weights(p)


async def _channels(p: DashPlatform) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(p.dsn)
    try:
        return list(await conn.fetch("SELECT id, capacity FROM channels WHERE enabled"))
    finally:
        await conn.close()


async def _restore_weights(p: DashPlatform) -> None:
    await set_weights(p, **{k: getattr(Weights(), k) for k in CRITERIA})


async def _stored_weights(p: DashPlatform) -> dict[Any, Any]:
    redis = p.redis()
    try:
        return dict(await redis.hgetall(redis_keys.WEIGHTS))
    finally:
        await redis.aclose()


async def test_weights_modal_writes_redis_and_rejects_bad_input(dash_platform: DashPlatform) -> None:
    from textual.widgets import Button, Input, Static

    p = dash_platform
    p.ensure_running()
    await set_weights(p, cost=0.4, time=0.4, quality=0.2, capacity=0)  # not the defaults
    try:
        async with dashboard(p.settings(), p.key) as dash:
            await all_up(dash)
            await dash.pilot.press("w")
            await wait(dash, lambda: type(dash.app.screen).__name__ == "WeightsScreen", "the weights modal")
            screen = dash.app.screen
            inputs = {c: screen.query_one(f"#weight-{c}", Input) for c in CRITERIA}
            assert {c: float(i.value) for c, i in inputs.items()} == pytest.approx(
                {"cost": 0.4, "time": 0.4, "quality": 0.2, "capacity": 0}
            )  # the modal opens on the stored weights

            # polls pause while the modal is open
            polled = len(dash.sources.snapshots)
            await dash.pilot.pause(REFRESH * 5)
            assert len(dash.sources.snapshots) <= polled + 1, "the dashboard kept polling behind the modal"

            stored = await _stored_weights(p)
            error = screen.query_one("#weights-error", Static)
            assert not text(error.content), f"an error before any input: {text(error.content)!r}"
            good = {"cost": "0.4", "time": "0.4", "quality": "0.2", "capacity": "0"}
            for bad in ({"cost": "abc"}, {"time": "-1"}, dict.fromkeys(CRITERIA, "0")):
                for criterion, value in (good | bad).items():
                    inputs[criterion].value = value
                await dash.pilot.pause(CLICK_APART)
                await dash.pilot.click("#weights-save")
                shown = await wait(dash, lambda: text(error.content), f"an error shown for {bad}")
                await dash.pilot.pause(REFRESH * 2)  # a save that went ahead anyway would have written by now
                assert dash.app.screen is screen, f"the modal closed on {bad}"
                assert await _stored_weights(p) == stored, f"{bad} changed Redis (error shown: {shown!r})"

            for criterion, value in {"cost": "2", "time": "1", "quality": "1", "capacity": "0"}.items():
                inputs[criterion].value = value
            assert screen.query_one("#weights-save", Button)
            await dash.pilot.pause(CLICK_APART)
            await dash.pilot.click("#weights-save")
            await wait(dash, lambda: dash.app.screen is not screen, "the modal closed after a valid save")
            want = {"cost": 0.5, "time": 0.25, "quality": 0.25, "capacity": 0.0}
            written = {k.decode(): float(v) for k, v in (await _stored_weights(p)).items()}
            assert written == pytest.approx(want)

            # republished at once, as `uoom channels weights set` does: the composite uses them
            redis = p.redis()
            try:
                composite: list[Any] = await redis.zrevrange(redis_keys.RANK_COMPOSITE, 0, -1, withscores=True)
                for channel, score in composite:
                    parts = [await redis.zscore(redis_keys.rank_key(rankings.ZSET_OF[c]), channel) for c in CRITERIA]
                    assert score == pytest.approx(sum(want[c] * (v or 0) for c, v in zip(CRITERIA, parts, strict=True)))
            finally:
                await redis.aclose()
            order = (await redis_view(p))[0]
            await wait(dash, lambda: row_keys(dash.app, "channels") == order, "the table in the new order",
                       lambda: row_keys(dash.app, "channels"))  # fmt: skip
    finally:
        await _restore_weights(p)


# -- dead letters -------------------------------------------------------------------------------------


async def test_replay_from_the_dead_letters_screen_delivers_the_event_with_its_id(
    dash_platform: DashPlatform, settings: Settings
) -> None:
    from textual.widgets import Button, Static

    p = dash_platform
    p.ensure_running()
    import asyncpg

    conn = await asyncpg.connect(p.dsn)
    try:
        from uoom.stores.postgres import _init_connection

        await _init_connection(conn)
        [poison] = await write_events(conn, [(uuid.uuid4(), 1)], created_at=datetime.now(UTC) + timedelta(days=1))
    finally:
        await conn.close()
    await eventually(lambda: p.sql("SELECT count(*) = 1 FROM dead_letters WHERE id = $1", poison.id),
                     "the relay dead-lettered the poison", timeout=30)  # fmt: skip
    open_dead = (await p.outbox_status()).dead_letters_open
    assert open_dead >= 1

    async with dashboard(p.settings(), p.key) as dash:
        await all_up(dash)
        await wait(dash, lambda: number(cell(dash.app, "outbox", "dead", "value")) == open_dead,
                   f"{open_dead} open dead letter(s)", lambda: cell(dash.app, "outbox", "dead", "value"))  # fmt: skip
        await accept_any_timestamp(settings.kafka_bootstrap, p.topic)  # the operator fixed the broker

        await dash.pilot.press("d")
        await wait(dash, lambda: type(dash.app.screen).__name__ == "DeadLettersScreen", "the dead letters screen")
        dlq = dash.app.screen
        await wait(dash, lambda: str(poison.id) in row_keys(dash.app, "dead-letters"), "the poison listed",
                   lambda: row_keys(dash.app, "dead-letters"))  # fmt: skip
        from textual.widgets import DataTable

        table = dlq.query_one("#dead-letters", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(str(poison.id)))
        await dash.pilot.press("space")

        # declined: nothing changes
        await dash.pilot.press("r")
        await wait(dash, lambda: type(dash.app.screen).__name__ == "ConfirmScreen", "the confirmation")
        assert dash.app.screen.query_one("#confirm-no", Button)
        await dash.pilot.click("#confirm-no")
        await wait(dash, lambda: dash.app.screen is dlq, "back on the dead letters after 'no'")

        def report() -> str:
            return text(dlq.query_one("#dlq-report", Static).content)

        declined = await wait(dash, report, "what 'no' did")
        assert await p.sql("SELECT replay_count FROM dead_letters WHERE id = $1", poison.id) == 0
        assert await p.sql("SELECT count(*) FROM operator_audit WHERE action = 'dlq.replay'") == 0

        # confirmed: replayed through the same service as `uoom dlq replay`
        await dash.pilot.press("r")
        await wait(dash, lambda: type(dash.app.screen).__name__ == "ConfirmScreen", "the confirmation again")
        await dash.pilot.click("#confirm-yes")
        done = await wait(dash, lambda: dash.app.screen is dlq and report() != declined and report(),
                          "the replay report", report)  # fmt: skip
        assert done.startswith("replayed 1, skipped 0, failed 0"), done
        assert await p.sql("SELECT replay_count FROM dead_letters WHERE id = $1", poison.id) == 1
        audit = await p.sql("SELECT row_to_json(a)::text FROM operator_audit a WHERE action = 'dlq.replay'")
        assert audit is not None and str(poison.id) in audit, audit

        records = await consume_event(settings.kafka_bootstrap, p.topic, str(poison.id), timeout=30)
        assert len(records) == 1, f"{len(records)} records with id {poison.id}"
        [record] = records
        assert record["body"]["id"] == str(poison.id) and record["body"]["aggregateId"] == str(poison.order)
        await eventually(lambda: p.sql("SELECT processed FROM outbox_events WHERE id = $1", poison.id),
                         "the replayed row published")  # fmt: skip

        await dash.pilot.press("escape")
        await wait(dash, lambda: type(dash.app.screen).__name__ not in ("DeadLettersScreen", "ConfirmScreen"),
                   "back on the dashboard")  # fmt: skip
        await wait(dash, lambda: number(cell(dash.app, "outbox", "dead", "value")) == open_dead - 1,
                   "one open dead letter fewer", lambda: cell(dash.app, "outbox", "dead", "value"))  # fmt: skip


# -- a store that goes away ---------------------------------------------------------------------------


async def seed_ranking(p: DashPlatform, url: str) -> list[str]:
    """The demo channels ranked into the Redis at `url`, as the optimizer publishes them; the order."""
    import asyncpg
    import redis.asyncio as aioredis

    from uoom import channels

    conn = await asyncpg.connect(p.dsn)
    redis = aioredis.from_url(url)
    try:
        await rankings.refresh(redis, await channels.enabled_channels(conn), Weights())
        return [r["channelId"] for r in await rankings.ranking(redis)]
    finally:
        await redis.aclose()
        await conn.close()


async def test_a_stopped_redis_turns_its_row_down_and_back_up(
    dash_platform: DashPlatform, redis_server: Any, tmp_path: Any
) -> None:
    """The Redis that the dashboard and the API it watches both use stops (a redis-server of the
    test's own): everyone who knows says down, so the row is down; it starts again: up. (With the
    module's daemons on another Redis, the row would rightly be only degraded: "down for dashboard".)
    The optimizer, which would vouch for the module's Redis, is not watched here."""
    from tests.e2e.conftest import run_api

    p = dash_platform
    p.ensure_running()
    order = await seed_ranking(p, redis_server.url)
    assert len(order) == 8, order
    env = {k: v for k, v in p.env.items() if k.startswith("UOOM_") and k != "UOOM_API_PORT"}
    with run_api(tmp_path, "dash-redis", **(env | {"UOOM_REDIS_URL": redis_server.url})) as api:
        nowhere = f"http://127.0.0.1:{free_port()}"
        settings = p.settings(redis_url=redis_server.url, api_url=api.url, optimizer_url=nowhere)
        async with dashboard(settings, p.key) as dash:
            await wait(dash, lambda: health_state(dash.app, "redis") == "up", "redis up", lambda: health(dash),
                       timeout=30)  # fmt: skip
            await wait(dash, lambda: row_keys(dash.app, "channels") == order, "the private Redis's ranking",
                       lambda: row_keys(dash.app, "channels"))  # fmt: skip
            redis_server.stop()
            stopped = time.monotonic()
            await wait(dash, lambda: health_state(dash.app, "redis") == "down", "redis down", lambda: health(dash))
            down_after = time.monotonic() - stopped
            row = next(h for h in dash.sources.last.health if h.name == "redis")
            assert row.error, row  # the error, for the row's focus
            # the rest keeps refreshing: PostgreSQL still up, new snapshots still coming
            polled = len(dash.sources.snapshots)
            await dash.pilot.pause(REFRESH * 5)
            assert len(dash.sources.snapshots) > polled, "polling stopped while Redis was down"
            assert health_state(dash.app, "postgres") == "up"
            assert dash.sources.last.channels.ranking == []  # unknown now: not the last ranking seen
            await wait(dash, lambda: row_keys(dash.app, "channels") == [], "no stale ranking on the screen",
                       lambda: row_keys(dash.app, "channels"))  # fmt: skip

            redis_server.start()  # empty: no persistence
            started = time.monotonic()
            await wait(dash, lambda: health_state(dash.app, "redis") == "up", "redis up again",
                       lambda: health(dash), timeout=30)  # fmt: skip
            up_after = time.monotonic() - started
            assert await seed_ranking(p, redis_server.url) == order
            await wait(dash, lambda: row_keys(dash.app, "channels") == order, "the ranking back",
                       lambda: row_keys(dash.app, "channels"))  # fmt: skip
    print(f"redis row: down {down_after:.2f} s after the stop, up {up_after:.2f} s after the start")


# -- `uoom dash --once --json` ------------------------------------------------------------------------

SNAPSHOT_KEYS = {"takenAt", "refreshSeconds", "health", "latency", "requestsPerSecond", "outbox", "channels",
                 "optimizer", "problems"}  # fmt: skip
HEALTH_KEYS = {"name", "state", "detail", "error"}
LATENCY_KEYS = {"group", "latency", "errorRate", "sloMs", "level"}
PERCENTILE_KEYS = {"count", "ratePerSecond", "p50", "p95", "p99", "max"}
OUTBOX_KEYS = {"pending", "lagSeconds", "inBackoff", "deadLettersOpen", "publishRate", "commitToAckP99Ms"}
CHANNEL_KEYS = {"rank", "channelId", "score", "criteria", "load", "capacity"}
OPTIMIZER_KEYS = {"solveP99Ms", "batchOrdersP50", "batchOrdersP99", "statusMix", "apiFallbackRate", "breaker",
                  "reassignmentsPerMinute", "tripPairs", "tripJoins", "ridingTwoShare", "dispatchPolicy",
                  "heldPerMinute", "heldDueUnplaced"}  # fmt: skip


def dash_once(env: dict[str, str], *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commands", "dash", "--once", "--json", *more], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


async def test_dash_once_json_prints_the_platform_as_the_stores_have_it(dash_platform: DashPlatform) -> None:
    p = dash_platform
    p.ensure_running()
    created = await p.create_orders(2)
    await eventually(lambda: _drained(p), "the outbox drained")
    await eventually(lambda: _slots_taken(p, created), "the optimizer's load feed took both orders' slots")
    route = API_ROUTES["create"]
    for _ in range(3):  # the API's 60 s window must hold still while the CLI reads it
        before = await p.api_metrics()
        started = time.monotonic()
        result = await asyncio.to_thread(dash_once, p.dash_env())
        elapsed = time.monotonic() - started
        after = await p.api_metrics()
        if _window(before, route) == _window(after, route):
            break
    else:
        raise AssertionError("the API's create window kept moving during three `uoom dash --once` runs")
    print(f"uoom dash --once --json: {elapsed:.2f} s wall")
    assert result.returncode == 0, result.stderr
    snapshot = orjson.loads(result.stdout)

    assert set(snapshot) == SNAPSHOT_KEYS
    assert [h["name"] for h in snapshot["health"]] == [*STORES, *DAEMONS]
    assert all(set(h) == HEALTH_KEYS for h in snapshot["health"])
    assert {h["name"]: h["state"] for h in snapshot["health"]} == dict.fromkeys((*STORES, *DAEMONS), "up")
    assert [g["group"] for g in snapshot["latency"]] == ["create", "status", "batch", "other"]
    assert all(set(g) == LATENCY_KEYS for g in snapshot["latency"])
    assert set(snapshot["outbox"]) == OUTBOX_KEYS
    assert set(snapshot["channels"]) == {"ranking", "weights"}
    assert all(set(c) == CHANNEL_KEYS for c in snapshot["channels"]["ranking"])
    assert set(snapshot["optimizer"]) == OPTIMIZER_KEYS
    assert snapshot["refreshSeconds"] > 0 and datetime.fromisoformat(snapshot["takenAt"]).tzinfo is not None

    create = snapshot["latency"][0]["latency"]
    assert set(create) == PERCENTILE_KEYS
    api_create = after["latency"][route]
    assert {k: create[k] for k in ("count", "p50", "p95", "p99", "max")} == {
        k: api_create[k] for k in ("count", "p50", "p95", "p99", "max")
    }

    status = await p.outbox_status()
    assert snapshot["outbox"]["pending"] == status.pending == 0
    assert snapshot["outbox"]["deadLettersOpen"] == status.dead_letters_open
    assert snapshot["outbox"]["lagSeconds"] == 0
    order, scores, loads = await redis_view(p)
    assert [c["channelId"] for c in snapshot["channels"]["ranking"]] == order
    assert [c["rank"] for c in snapshot["channels"]["ranking"]] == list(range(1, len(order) + 1))
    capacities = {r["id"]: r["capacity"] for r in await _channels(p)}
    for c in snapshot["channels"]["ranking"]:
        assert c["score"] == pytest.approx(scores[c["channelId"]]["score"], abs=1e-3)
        assert (c["load"], c["capacity"]) == (loads.get(c["channelId"], 0), capacities[c["channelId"]])
    weights = {k.decode(): float(v) for k, v in (await _stored_weights(p)).items()} or {
        k: getattr(Weights(), k) for k in CRITERIA
    }
    assert snapshot["channels"]["weights"] == pytest.approx(weights)
    assert snapshot["optimizer"]["breaker"] == after["api"]["assignment"]["breaker"]


async def test_dash_once_json_shows_a_daemon_that_does_not_answer_as_down(dash_platform: DashPlatform) -> None:
    p = dash_platform
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = await asyncio.to_thread(dash_once, p.dash_env(UOOM_RELAY_URL=nowhere))
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr  # a source down: exit 1, its row says why
    assert "down: relay" in result.stderr, result.stderr
    snapshot = orjson.loads(result.stdout)
    relay = next(h for h in snapshot["health"] if h["name"] == "relay")
    assert relay["state"] == "down" and relay["error"], relay
    assert snapshot["outbox"]["pending"] == (await p.outbox_status()).pending  # PostgreSQL still read
    assert elapsed < 15, f"--once took {elapsed:.1f} s with one daemon not answering"


def _window(document: dict[str, Any], route: str) -> dict[str, Any]:
    """A route's 60 s window without its rate (which moves with the clock in the first minute)."""
    return {k: v for k, v in document["latency"][route].items() if k != "ratePerSecond"}


async def _slots_taken(p: DashPlatform, orders: list[str]) -> bool:
    redis = p.redis()
    try:
        return all(await redis.hmget(redis_keys.ORDER_SLOT, orders))  # type: ignore[misc]
    finally:
        await redis.aclose()


async def _drained(p: DashPlatform) -> bool:
    return (await p.outbox_status()).pending == 0
