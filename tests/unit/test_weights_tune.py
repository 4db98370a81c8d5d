"""`uoom channels weights tune`, the pure parts: candidates, the choice of the best, the replay of a
slice of the packaged synthetic day, and what is shown (rows, the plot, the --json document)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from commands import _tune
from commands.main import app
from uoom.domain.channels import Weights
from uoom.replay import tune
from uoom.replay.books import Rules
from uoom.replay.day import day_channels, generate, load

runner = CliRunner()


def test_a_candidate_is_normalized_and_unnamed_criteria_are_zero() -> None:
    assert tune.parse_candidate("cost=2, time=1,quality=1") == Weights(0.5, 0.25, 0.25, 0.0)
    assert tune.parse_candidate("capacity=3") == Weights(0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("speed=1", "unknown criteria ['speed']"),
        ("cost=-0.5,time=1", "weights must be finite numbers >= 0"),
        ("cost=0,time=0", "at least one weight must be > 0"),
        ("cost=abc", "weight cost='abc' is not a number"),
        ("cost", "'cost' is not name=value"),
        ("cost=1,,time=1", "'' is not name=value"),
        ("cost=1,cost=2", "cost given twice"),
        ("cost=nan", "weights must be finite numbers >= 0"),
    ],
)
def test_a_bad_candidate_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        tune.parse_candidate(text)
    assert message in str(caught.value)


def test_the_default_candidates_are_the_weights_in_use_then_the_suggested_set() -> None:
    chosen = tune.candidates([], Weights(0.6, 0.4, 0.0, 0.0))
    assert [c.label for c in chosen] == ["current", "day defaults", "cost only", "cost-heavy", "time-heavy",
                                         "quality-heavy"]  # fmt: skip
    assert chosen[0].weights == Weights(0.6, 0.4, 0.0, 0.0)
    # the weights in use equal to a suggested one: replayed once, named both ways
    twins = tune.candidates([], Weights(1.0, 0.0, 0.0, 0.0))
    assert [c.label for c in twins][:2] == ["current = cost only", "day defaults"] and len(twins) == 5


def test_given_candidates_keep_their_order_and_twins_are_replayed_once() -> None:
    chosen = tune.candidates(["time=1", "cost=2", "cost=1"], Weights())
    assert [(c.label, c.weights) for c in chosen] == [
        ("time=1", Weights(0.0, 1.0, 0.0, 0.0)),
        ("cost=2", Weights(1.0, 0.0, 0.0, 0.0)),
    ]


def row(candidate: int, dollars: float, on_time: float, faults: int = 0) -> dict[str, object]:
    return {"candidate": candidate, "dollars_per_delivered_order": dollars, "on_time_rate": on_time,
            "books_faults": faults}  # fmt: skip


def test_best_is_the_cheapest_on_time_enough_with_sound_books() -> None:
    rows = [row(1, 6.0, 0.99), row(2, 5.0, 0.96), row(3, 5.5, 0.985), row(4, 4.0, 0.99, faults=1)]
    assert tune.best(rows) == 2
    assert tune.best(rows, min_on_time=0.98) == 3
    assert tune.best(rows, min_on_time=0.995) is None
    assert tune.best([row(1, 5.0, 0.97), row(2, 5.0, 0.98)]) == 2  # a tie: the better on-time rate


def test_apply_takes_a_candidate_number_or_best() -> None:
    assert tune.apply_target("2", 3) == 2 and tune.apply_target("best", 3) is None
    for bad in ("0", "4", "-1", "two"):
        with pytest.raises(ValueError, match=r"candidate number 1\.\.3"):
            tune.apply_target(bad, 3)


@pytest.fixture(scope="module")
def slice_of_the_day() -> tune.ReplayDay:
    spec = load()
    return tune.ReplayDay("synthetic", generate(spec)[:150], day_channels(spec), Rules.of_day(spec),
                          float(spec["fallback_penalty"]))  # fmt: skip


@pytest.mark.parametrize("policy", tune.POLICIES)
def test_every_candidate_is_replayed_on_the_same_orders_with_sound_books(
    slice_of_the_day: tune.ReplayDay, policy: str
) -> None:
    chosen = tune.candidates(["cost=1", "time=1"], Weights())
    seen: list[tuple[int, int]] = []
    rows = tune.run(slice_of_the_day, chosen, policy, lambda k, c, n: seen.append((k, n)))
    assert [r["label"] for r in rows] == ["cost=1", "time=1"]
    for r in rows:
        assert r["orders"] == 150 and r["delivered"] + r["fallbacks"] == 150 and r["books_faults"] == 0
        assert r["dollars_per_delivered_order"] >= r["dollars_per_delivered_order_trips_and_fees"] > 0
        assert 0 <= r["on_time_rate"] <= 1
    assert rows[0]["dollars_per_delivered_order"] < rows[1]["dollars_per_delivered_order"]
    assert seen[-1] == (1, 150) and (0, 150) in seen  # progress reaches the last order of each


def test_the_table_marks_the_best_and_the_plot_names_every_candidate() -> None:
    rows = [
        {**row(1, 5.3021, 0.988), "label": "current", "weights": {"cost": 0.5, "time": 0.3, "quality": 0.2,
         "capacity": 0.0}, "orders": 600, "delivered": 600, "fallbacks": 0, "trips_formed": 12, "moves": 3,
         "fees_paid": 4.5},
        {**row(2, 4.625, 0.967), "label": "cost only", "weights": {"cost": 1.0, "time": 0.0, "quality": 0.0,
         "capacity": 0.0}, "orders": 600, "delivered": 599, "fallbacks": 1, "trips_formed": 14, "moves": 0,
         "fees_paid": 0.0},
    ]  # fmt: skip
    cells = _tune.table_rows(rows, best=2)
    assert [c["candidate"] for c in cells] == ["1", "2 *"]
    assert (cells[0]["per_order"], cells[0]["on_time"], cells[0]["weights"], cells[1]["delivered"]) == (
        "5.302", "98.8%", "0.50/0.30/0.20/0.00", "599/600",
    )  # fmt: skip
    assert set(_tune.COLUMNS) == set(cells[0])
    drawn = _tune.plot(rows, 80, color=False)
    assert "\x1b[" not in drawn  # no colour codes unless on a terminal
    assert "on time, % of all orders" in drawn and "$ per delivered order" in drawn
    lines = drawn.splitlines()
    # candidate 2 (cheaper, less on time) is drawn below and left of candidate 1
    where = {n: next((y, line.index(f" {n} ")) for y, line in enumerate(lines) if f" {n} " in line[5:])
             for n in ("1", "2")}  # fmt: skip
    assert where["2"][0] > where["1"][0] and where["2"][1] < where["1"][1]


def test_bad_input_is_one_line_and_exit_2_before_any_replay() -> None:
    for args, message in [
        (["-c", "speed=1"], "error: bad --candidate: unknown criteria ['speed']; known: cost, time, quality, capacity"),
        (["-c", "cost=1", "--apply", "2"], "error: --apply takes 'best' or a candidate number 1..1, not '2'"),
        (["-c", "cost=1", "--hours", "0"], "error: --hours must be > 0, not 0.0"),
        (["-c", "cost=1", "--hours", "2", "--day", "x.json"], "error: --day and --hours are two sources: give one"),
        (
            ["-c", "cost=1", "--policy", "batch"],
            "error: --policy must be one of at-once, rolling, in-time, not 'batch'",
        ),
    ]:
        result = runner.invoke(app, ["channels", "weights", "tune", *args])
        assert (result.exit_code, result.stdout, result.stderr.strip()) == (2, "", message), args


def test_the_synthetic_day_as_json() -> None:
    result = runner.invoke(
        app, ["channels", "weights", "tune", "--orders", "60", "-c", "cost=1", "-c", "time=1", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"source", "policy", "candidates", "best", "applied"}
    assert document["source"]["kind"] == "day" and document["source"]["orders"] == 60
    assert document["source"]["bundlingChannels"] == ["crowd-gig", "ebike-coop", "own-bikes", "own-cars"]
    assert set(document["candidates"][0]) == {
        "candidate", "label", "weights", "dollarsPerDeliveredOrder", "dollarsPerDeliveredOrderTripsAndFees",
        "onTimeRate", "orders", "delivered", "fallbacks", "moves", "feesPaid", "tripsFormed", "booksFaults",
    }  # fmt: skip
    assert document["best"] == 1 and document["applied"] is None


def test_an_order_the_optimizer_leaves_goes_to_the_best_ranked_channel_with_room() -> None:
    from dataclasses import replace

    from uoom.domain.ranking import ranked
    from uoom.replay.day import SimOrder
    from uoom.replay.policies import ranking_pick

    spec = load()
    channels = day_channels(spec)
    order = SimOrder("o1", 0.0, (40.73, -73.99), (40.79, -73.99), 6.7, 30.0, 600.0)
    cost_first = ranked(channels, Weights(1.0, 0.0, 0.0, 0.0))
    assert [c.id for c in cost_first][:3] == ["restaurant-self", "own-bikes", "ebike-coop"]  # cheapest at 3 km first
    reach = [c for c in cost_first if c.radius_km >= order.distance_km]
    assert ranking_pick(order, channels, Weights(1.0, 0.0, 0.0, 0.0)) == reach[0].id
    full = [replace(c, load=c.capacity) if c.id == reach[0].id else c for c in channels]
    assert ranking_pick(order, full, Weights(1.0, 0.0, 0.0, 0.0)) == reach[1].id
    assert ranking_pick(order, [replace(c, load=c.capacity) for c in channels], Weights()) is None
