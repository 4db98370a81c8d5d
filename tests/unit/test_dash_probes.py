"""The dashboard's probes of Kafka, DynamoDB and DAX are requests to those services, so they are
rare: every 30 s while the service is up, every 10 s while it is not (its recovery shows soon),
and at the next read once its health cell takes the focus."""

from __future__ import annotations

from tui.probes import PROBE_EVERY_SECONDS, RETRY_SECONDS, Probes
from uoom.config import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting(clock: Clock, kafka_up: list[bool]) -> tuple[Probes, list[str]]:
    """Probes whose checks count their calls (no service: the cadence alone is under test)."""
    probes = Probes(Settings(), timeout=1.0, clock=clock)
    asked: list[str] = []

    async def kafka() -> str:
        asked.append("kafka")
        if not kafka_up[0]:
            raise ConnectionRefusedError("kafka is down")
        return "1 broker(s)"

    async def dynamodb() -> str:
        asked.append("dynamodb")
        return "table uoom-order-status active"

    probes._checks = {"kafka": kafka, "dynamodb": dynamodb}
    return probes, asked


async def test_an_up_service_is_probed_every_30_s_and_a_down_one_every_10_s() -> None:
    assert (PROBE_EVERY_SECONDS, RETRY_SECONDS) == (30.0, 10.0)
    clock, kafka_up = Clock(), [True]
    probes, asked = counting(clock, kafka_up)
    for _ in range(60):  # a minute of reads, one a second
        seen = await probes.read()
        clock.now += 1
    assert asked.count("kafka") == asked.count("dynamodb") == 2  # at 0 s and 30 s
    assert seen["kafka"].up and seen["dynamodb"].up
    kafka_up[0] = False
    asked.clear()
    for _ in range(60):
        seen = await probes.read()
        clock.now += 1
    assert asked.count("dynamodb") == 2
    assert asked.count("kafka") == 6  # at 60 s (found down), then every 10 s
    assert seen["kafka"].up is False and "kafka is down" in (seen["kafka"].error or "")


async def test_a_probe_asked_soon_runs_at_the_next_read() -> None:
    clock = Clock()
    probes, asked = counting(clock, [True])
    await probes.read()
    clock.now += 1
    await probes.read()
    assert asked == ["kafka", "dynamodb"]
    probes.soon("kafka")
    probes.soon("no-such-service")  # a cell that is not probed (a daemon): nothing to ask
    clock.now += 1
    await probes.read()
    assert asked == ["kafka", "dynamodb", "kafka"]
