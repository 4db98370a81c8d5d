"""Channel assignment at order creation: the optimizer behind a circuit breaker and a 100 ms
timeout; when it cannot answer, the best feasible channel of the Redis ranking, then the cheapest
feasible channel by the pure greedy rule (with the operator's weights), then the configured
default. Never refuses an order."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import aiohttp

from daemons.api.breaker import BreakerOpen, RateBreaker
from daemons.kit.logs import describe
from uoom.assignment import Delivery, greedy
from uoom.assignment.costs import dollars, eta_seconds
from uoom.assignment.geo import haversine_km
from uoom.config import Settings
from uoom.contracts.optimizer import OptimizeOrder, OptimizeRequest, OptimizeResponse, Point
from uoom.live_channels import LiveChannels, LiveView

log = logging.getLogger("uoom.api.assign")
CENT = Decimal("0.01")
JSON = {"Content-Type": "application/json"}
# what chose the channel; "held": none yet, the optimizer assigns it closer to ready (dispatch_policy in-time)
Source = Literal["optimizer", "ranking", "greedy", "default", "none", "held"]


@dataclass(frozen=True, slots=True)
class Choice:
    channel_id: str | None
    cost: Decimal | None  # dollars, to the cent
    eta_seconds: int | None
    source: Source
    trip_id: str | None = None  # the optimizer's trip (a bundling channel): fresh, or an open one to join
    co_rider_id: str | None = None  # the intended co-rider's order id (informational)
    pickup_in_s: float | None = None  # seconds from now to the trip's planned pickup
    co_rider_cost: Decimal | None = None  # the co-rider's share of the trip (a join re-prices the first rider)
    co_rider_eta_seconds: int | None = None  # seconds from now to the co-rider's delivery in the trip


class Assigner:
    def __init__(self, settings: Settings, live: LiveChannels, http: aiohttp.ClientSession, token: str = "") -> None:
        """`token`: the optimizer's key (uoom/tokens.py); without one the optimizer refuses (401)."""
        self.settings, self.live, self.http = settings, live, http
        self.headers = {**JSON, "Authorization": f"Bearer {token}"} if token else JSON
        self.breaker = RateBreaker(settings.breaker_failure_threshold, settings.breaker_recovery_seconds,
                                   settings.breaker_window_seconds)  # fmt: skip
        self.timeout = aiohttp.ClientTimeout(total=settings.optimizer_timeout_ms / 1000)
        self.deadline_ms = max(settings.optimizer_timeout_ms - 20, 5)
        self.url = settings.effective_optimizer_url.rstrip("/") + "/optimize"
        self.sources: dict[str, int] = {}

    async def choose(self, order_id: str, pickup: tuple[float, float], dropoff: tuple[float, float],
                     value: Decimal, ready_in_s: float, restaurant_id: str | None = None) -> Choice:  # fmt: skip
        """The channel of a new order (`value`: its total; `ready_in_s`: when the food is ready;
        `restaurant_id`: lets the optimizer put it on a two-order trip). Never raises for want of a
        channel: source "none" when nothing assigns one. Only the optimizer's choice carries a trip.
        Under dispatch_policy in-time an order whose food is ready later than the lead gets no channel
        now: a slot is held from assignment, so assigning it at creation would hold one through the
        kitchen time (docs/dispatch.md)."""
        if self.holds(ready_in_s):
            return self.counted(Choice(None, None, None, "held"))
        choice = await self._optimizer(order_id, pickup, dropoff, value, ready_in_s, restaurant_id)
        if choice is None:
            return await self.without_optimizer(Delivery(order_id, pickup, dropoff, float(value), ready_in_s))
        return self.counted(choice)

    def holds(self, ready_in_s: float) -> bool:
        """in-time: an order far from ready waits for the optimizer's round, unless the optimizer is
        failing now (the breaker is open): then it is assigned at once, as under the other policies."""
        return (
            self.settings.dispatch_policy == "in-time"
            and ready_in_s > self.settings.dispatch_lead_seconds
            and self.breaker.state != "opened"
        )

    async def without_optimizer(self, delivery: Delivery, live: LiveView | None = None) -> Choice:
        """The ranking's best feasible channel, else the cheapest feasible one by the greedy rule, else
        the configured default (source "none" without one). Counted. `live`: channels already read
        (a fresh read otherwise)."""
        live = live if live is not None else await self.live.current(fresh=True)
        choice = (self._ranking(delivery, live) if live.redis_ok else None) or self._greedy(delivery, live)
        if choice is None:
            choice = Choice(self.settings.default_channel_id or None, None, None,
                            "default" if self.settings.default_channel_id else "none")  # fmt: skip
        return self.counted(choice)

    def counted(self, choice: Choice) -> Choice:
        self.sources[choice.source] = self.sources.get(choice.source, 0) + 1
        return choice

    async def _optimizer(self, order_id: str, pickup: tuple[float, float], dropoff: tuple[float, float],
                         value: Decimal, ready_in_s: float, restaurant_id: str | None) -> Choice | None:  # fmt: skip
        try:
            order = OptimizeOrder(order_id=order_id, pickup=Point.of(pickup), dropoff=Point.of(dropoff),
                                  value=value, ready_at=ready_in_s, restaurant_id=restaurant_id)  # fmt: skip
            # no nulls: an optimizer older than a field (restaurantId) refuses it, even null
            body = OptimizeRequest(orders=[order], deadline_ms=self.deadline_ms).model_dump_json(exclude_none=True)
        except ValueError as exc:  # outside the contract's limits: not the optimizer's failure
            log.debug("order %s not sent to the optimizer: %s", order_id, describe(exc))
            return None
        try:
            with self.breaker.call():  # entered first: an open breaker starts no request
                async with self.http.post(self.url, data=body, headers=self.headers, timeout=self.timeout) as response:
                    response.raise_for_status()
                    answer = OptimizeResponse.model_validate_json(await response.read())
        except BreakerOpen:
            return None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("optimizer unavailable: %s", describe(exc))
            return None
        mine = answer.assignment_of(order_id)
        if answer.status == "FALLBACK" or mine is None or mine.channel_id is None:
            return None
        return Choice(mine.channel_id, mine.cost.quantize(CENT), mine.eta_seconds or 0, "optimizer",
                      mine.trip_id, mine.co_rider_id, mine.pickup_in_s,
                      None if mine.co_rider_cost is None else mine.co_rider_cost.quantize(CENT),
                      mine.co_rider_eta_seconds)  # fmt: skip

    @staticmethod
    def _ranking(delivery: Delivery, live: LiveView) -> Choice | None:
        """The best channel of the composite ranking that reaches the dropoff and has a free slot."""
        distance = haversine_km(delivery.pickup, delivery.dropoff)
        for channel in live.ranked():
            if distance <= channel.radius_km and channel.load < channel.capacity:
                eta = eta_seconds(distance, delivery.ready_at, channel)
                return Choice(channel.id, Decimal(f"{dollars(distance, channel):.2f}"), int(eta), "ranking")
        return None

    def _greedy(self, delivery: Delivery, live: LiveView) -> Choice | None:
        if not live.channels:
            return None
        (placed,) = greedy([delivery], live.channels, live.weights, self.settings.fallback_penalty).assignments
        if placed.channel_id is None:
            return None
        return Choice(placed.channel_id, placed.cost, placed.eta_seconds, "greedy")
