"""The API's channel choice at order creation, against fakes of PostgreSQL, Redis and the optimizer:
the optimizer's answer when it gives one, else the Redis ranking, else greedy with the weights the
operator stored in Redis (the same ones the optimizer solves with)."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from daemons.api.assign import Assigner
from uoom.config import Settings
from uoom.live_channels import LiveChannels
from uoom.stores import redis_keys

PICKUP, DROPOFF = (40.754, -73.984), (40.772, -73.984)  # 2 km north
ROWS = [
    {"id": "cheap-slow", "name": "Cheap", "kind": "partner", "capacity": 10, "base_cost": 2.0, "cost_per_km": 0.5,
     "speed_kmh": 10.0, "pickup_latency_min": 15.0, "radius_km": 5.0, "quality": 0.80},
    {"id": "dear-fast", "name": "Dear", "kind": "partner", "capacity": 10, "base_cost": 8.0, "cost_per_km": 1.0,
     "speed_kmh": 25.0, "pickup_latency_min": 3.0, "radius_km": 12.0, "quality": 0.97},
]  # fmt: skip
COST_ONLY = {b"cost": b"1.0", b"time": b"0.0", b"quality": b"0.0", b"capacity": b"0.0"}


class FakePool:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def fetch(self, query: str, *args: object) -> list[dict[str, Any]]:
        return self.rows


class FakeRedis:
    """The hashes and the composite ranking LiveChannels reads, in one pipeline; `failure` is raised
    by the next reads instead."""

    def __init__(self, hashes: dict[str, dict[bytes, bytes]] | None = None, ranking: list[bytes] | None = None) -> None:
        self.hashes, self.ranking = hashes or {}, ranking or []
        self.failure: BaseException | None = None

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.replies: list[Any] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def hgetall(self, key: str) -> None:
        self.replies.append(dict(self.redis.hashes.get(key, {})))

    def zrevrange(self, key: str, start: int, end: int) -> None:
        assert key == redis_keys.RANK_COMPOSITE
        self.replies.append(list(self.redis.ranking))

    async def execute(self) -> list[Any]:
        if self.redis.failure is not None:
            raise self.redis.failure
        return self.replies


class FakeResponse:
    def __init__(self, body: dict[str, Any] | None) -> None:
        self.body = body

    async def __aenter__(self) -> FakeResponse:
        if self.body is None:
            raise aiohttp.ClientConnectionError("connection refused")
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def raise_for_status(self) -> None:
        return None

    async def read(self) -> bytes:
        return orjson.dumps(self.body)


class FakeOptimizer:
    """Answers every POST /optimize with `answer`; None: the optimizer is down."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []

    def post(self, url: str, *, data: str, headers: dict[str, str], timeout: object) -> FakeResponse:
        self.sent.append(orjson.loads(data))
        self.headers = headers
        return FakeResponse(self.answer)


def assigner(redis: FakeRedis, optimizer: FakeOptimizer | None = None) -> Assigner:
    live = LiveChannels(FakePool(ROWS), redis)
    return Assigner(Settings(default_channel_id=""), live, optimizer or FakeOptimizer())


async def choose(a: Assigner) -> Any:
    return await a.choose("o1", PICKUP, DROPOFF, Decimal("31.50"), 300.0)


async def test_the_fallback_uses_the_weights_stored_in_redis() -> None:
    stored = await choose(assigner(FakeRedis({redis_keys.WEIGHTS: COST_ONLY})))
    assert (stored.channel_id, stored.source) == ("cheap-slow", "greedy")  # the cheapest in dollars
    assert stored.cost == Decimal("3.00") and stored.cost.as_tuple().exponent == -2
    # Without stored weights, the defaults (time and quality count) pick the other channel.
    default = await choose(assigner(FakeRedis()))
    assert (default.channel_id, default.source) == ("dear-fast", "greedy")


async def test_the_ranking_comes_first_and_skips_a_full_channel() -> None:
    redis = FakeRedis({redis_keys.CHANNEL_LOAD: {b"dear-fast": b"10"}}, ranking=[b"dear-fast", b"cheap-slow"])
    choice = await choose(assigner(redis))
    assert (choice.channel_id, choice.source) == ("cheap-slow", "ranking")
    assert choice.cost == Decimal("3.00")


async def test_during_a_redis_outage_greedy_keeps_the_last_known_weights(caplog: pytest.LogCaptureFixture) -> None:
    redis = FakeRedis({redis_keys.WEIGHTS: COST_ONLY}, ranking=[b"dear-fast"])
    a = assigner(redis)
    assert (await choose(a)).source == "ranking"
    redis.failure = TimeoutError()  # no message: the log line must still say what happened
    with caplog.at_level(logging.INFO, logger="uoom.live_channels"):
        first, second = await choose(a), await choose(a)
        redis.failure = None
        assert (await choose(a)).source == "ranking"
    assert [(c.channel_id, c.source) for c in (first, second)] == [("cheap-slow", "greedy")] * 2
    assert a.live.redis_ok and a.live.redis_error is None
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(lines) == 2, lines  # one warning for the outage, one line when Redis is back
    assert lines[0][0] == "WARNING" and "(TimeoutError)" in lines[0][1]
    assert lines[1][0] == "INFO" and "back" in lines[1][1]


async def test_the_optimizer_answer_is_taken_with_its_cost_in_cents() -> None:
    answer = {"assignments": [{"orderId": "o1", "channelId": "dear-fast", "cost": 10.1, "etaSeconds": 468}],
              "status": "OPTIMAL", "solveMs": 0.4}  # fmt: skip
    optimizer = FakeOptimizer(answer)
    choice = await choose(assigner(FakeRedis(), optimizer))
    assert (choice.channel_id, choice.cost, choice.eta_seconds, choice.source) == (
        "dear-fast", Decimal("10.10"), 468, "optimizer"
    )  # fmt: skip
    (sent,) = optimizer.sent
    assert sent["orders"] == [{"orderId": "o1", "pickup": {"latitude": 40.754, "longitude": -73.984},
                               "dropoff": {"latitude": 40.772, "longitude": -73.984}, "value": 31.5,
                               "readyAt": 300.0}]  # fmt: skip


async def test_the_restaurant_is_sent_and_the_optimizers_trip_is_taken() -> None:
    trip = {"tripId": "9b2f0b8e-4b7a-4d2e-9a57-1f0c3a1b2c3d", "coRiderId": "o0", "pickupInS": 420.5,
            "coRiderCost": 2.1, "coRiderEtaSeconds": 1100}  # fmt: skip
    answer = {"assignments": [{"orderId": "o1", "channelId": "dear-fast", "cost": 3.2, "etaSeconds": 900, **trip}],
              "status": "OPTIMAL", "solveMs": 0.4}  # fmt: skip
    optimizer = FakeOptimizer(answer)
    a = assigner(FakeRedis(), optimizer)
    choice = await a.choose("o1", PICKUP, DROPOFF, Decimal("31.50"), 300.0, restaurant_id="r-1")
    assert (choice.trip_id, choice.co_rider_id, choice.pickup_in_s) == (trip["tripId"], "o0", 420.5)
    assert (choice.co_rider_cost, choice.co_rider_eta_seconds) == (Decimal("2.10"), 1100)
    assert optimizer.sent[0]["orders"][0]["restaurantId"] == "r-1"


async def test_a_choice_not_made_by_the_optimizer_has_no_trip() -> None:
    choice = await choose(assigner(FakeRedis()))
    assert choice.source == "greedy"
    assert (choice.trip_id, choice.co_rider_id, choice.pickup_in_s) == (None, None, None)
    assert (choice.co_rider_cost, choice.co_rider_eta_seconds) == (None, None)


async def test_a_fallback_answer_of_the_optimizer_is_not_taken() -> None:
    answer = {"assignments": [{"orderId": "o1", "channelId": "dear-fast", "cost": 10.1, "etaSeconds": 468}],
              "status": "FALLBACK", "solveMs": 80.0}  # fmt: skip
    choice = await choose(assigner(FakeRedis({redis_keys.WEIGHTS: COST_ONLY}), FakeOptimizer(answer)))
    assert (choice.channel_id, choice.source) == ("cheap-slow", "greedy")


async def test_the_optimizers_key_is_sent_and_an_answer_beyond_the_columns_is_not_taken() -> None:
    """A cost or an ETA that would overflow `orders.delivery_cost` / `orders.eta_seconds` is not an
    answer to store: the order takes a fallback channel instead of failing its transaction."""
    from uoom.domain import columns

    for cost, eta in ((float(columns.DELIVERY_COST.largest) * 10, 600), (6.0, columns.ETA_SECONDS.largest + 1)):
        answer = {"assignments": [{"orderId": "o1", "channelId": "dear-fast", "cost": cost, "etaSeconds": eta}],
                  "status": "OPTIMAL", "solveMs": 1.0}  # fmt: skip
        optimizer = FakeOptimizer(answer)
        live = LiveChannels(FakePool(ROWS), FakeRedis())
        choice = await choose(Assigner(Settings(default_channel_id=""), live, optimizer, token="k3y"))  # type: ignore[arg-type]
        assert optimizer.headers["Authorization"] == "Bearer k3y"
        assert choice.source == "greedy", (cost, eta)
    fine = {"assignments": [{"orderId": "o1", "channelId": "dear-fast", "cost": 6.0, "etaSeconds": 600}],
            "status": "OPTIMAL", "solveMs": 1.0}  # fmt: skip
    assert (await choose(assigner(FakeRedis(), FakeOptimizer(fine)))).source == "optimizer"


async def test_in_time_holds_an_order_far_from_ready_without_asking_anyone() -> None:
    optimizer = FakeOptimizer({"status": "OPTIMAL", "assignments": []})
    live = LiveChannels(FakePool(ROWS), FakeRedis())
    settings = Settings(default_channel_id="", dispatch_policy="in-time", dispatch_lead_seconds=480)
    held = Assigner(settings, live, optimizer)  # type: ignore[arg-type]
    far = await held.choose("o1", PICKUP, DROPOFF, Decimal("31.50"), 481.0)
    assert (far.channel_id, far.cost, far.eta_seconds, far.source) == (None, None, None, "held")
    assert optimizer.sent == [] and held.sources == {"held": 1}
    # within the lead of ready: chosen now, as under the other policies
    near = await held.choose("o2", PICKUP, DROPOFF, Decimal("31.50"), 480.0)
    assert near.channel_id is not None and near.source != "held" and len(optimizer.sent) == 1


async def test_in_time_holds_nothing_while_the_optimizer_is_failing() -> None:
    """A held order waits for the optimizer's round: with the breaker open it is assigned at once."""
    live = LiveChannels(FakePool(ROWS), FakeRedis())
    settings = Settings(default_channel_id="", dispatch_policy="in-time", dispatch_lead_seconds=480)
    failing = Assigner(settings, live, FakeOptimizer(None))  # type: ignore[arg-type]
    failing.breaker.state = "opened"
    choice = await failing.choose("o1", PICKUP, DROPOFF, Decimal("31.50"), 1200.0)
    assert choice.channel_id is not None and choice.source in ("ranking", "greedy")
