"""Live channel rankings in Redis: one ZSET per criterion, a composite built with ZUNIONSTORE
and WEIGHTS from the weights hash, and the in-flight load of each channel.

Each criterion's ZSET holds a score in 0..1 where higher is better, min-max normalised across
the enabled channels, so weights compare like with like:
cost (cheaper), latency (faster: pickup latency + a 3 km ride), quality (on-time rate),
capacity (share of slots free).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from uoom import channels
from uoom.domain.channels import CRITERIA, Channel, Weights
from uoom.domain.ranking import SCORE_OF, criterion_scores
from uoom.stores import redis_keys

# weight criterion -> ZSET name (DESIGN.md names the time criterion "latency" in Redis)
ZSET_OF = SCORE_OF

# Moves one order's slot between channels exactly once, however often an event is redelivered,
# and never backwards: the order's version last applied is kept (KEYS[3], also after the slot is
# released), and an event of that version or older changes nothing. So a late event (a replayed
# dead letter, a duplicate) can neither move the slot back to an older channel nor re-take a
# released one. Version 0: unversioned, applied as before.
# KEYS: order -> channel whose slot it holds, channel -> load, the order's load version, order ->
# the trip whose slot it shares, "trip|channel" -> the trip's riders holding that channel's slot.
# ARGV: order id, channel ('' releases), version, version TTL, trip id ('': rides alone).
# A trip holds one slot: its first rider on a channel takes it, its last rider off it gives it back.
MOVE_LOAD = """
local version = tonumber(ARGV[3])
if version > 0 then
  local seen = tonumber(redis.call('GET', KEYS[3]) or '0')
  if version <= seen then return 0 end
  redis.call('SET', KEYS[3], version, 'EX', ARGV[4])
end
local order, wanted, trip = ARGV[1], ARGV[2], ARGV[5]
if wanted == '' then trip = '' end
local current = redis.call('HGET', KEYS[1], order) or ''
local held_trip = redis.call('HGET', KEYS[4], order) or ''
if current == wanted and held_trip == trip then return 0 end
if current ~= '' then
  if held_trip ~= '' then
    local riders = held_trip .. '|' .. current
    if redis.call('HINCRBY', KEYS[5], riders, -1) <= 0 then
      redis.call('HDEL', KEYS[5], riders)
      redis.call('HINCRBY', KEYS[2], current, -1)
    end
  else
    redis.call('HINCRBY', KEYS[2], current, -1)
  end
end
if wanted == '' then
  redis.call('HDEL', KEYS[1], order)
  redis.call('HDEL', KEYS[4], order)
  return 1
end
redis.call('HSET', KEYS[1], order, wanted)
if trip ~= '' then
  redis.call('HSET', KEYS[4], order, trip)
  if redis.call('HINCRBY', KEYS[5], trip .. '|' .. wanted, 1) == 1 then
    redis.call('HINCRBY', KEYS[2], wanted, 1)
  end
else
  redis.call('HDEL', KEYS[4], order)
  redis.call('HINCRBY', KEYS[2], wanted, 1)
end
return 1
"""
MOVE_LOAD_SHA = hashlib.sha1(MOVE_LOAD.encode(), usedforsecurity=False).hexdigest()  # what EVALSHA names it by


async def get_weights(redis: aioredis.Redis) -> Weights:
    return _weights(await redis.hgetall(redis_keys.WEIGHTS))


def _weights(raw: Mapping[Any, Any]) -> Weights:
    """The stored weights (the defaults when none are stored); ValueError if they are invalid."""
    if not raw:
        return Weights()
    return Weights.from_mapping({_text(k): _text(v) for k, v in raw.items()})


async def set_weights(redis: aioredis.Redis, raw: Mapping[str, object]) -> Weights:
    """Validate (numbers, >= 0, known criteria), normalise, store. Raises ValueError on bad input."""
    weights = Weights.from_mapping(raw)
    await redis.hset(redis_keys.WEIGHTS, mapping={k: getattr(weights, k) for k in CRITERIA})
    return weights


async def apply_weights(conn: asyncpg.Connection, redis: aioredis.Redis, raw: Mapping[str, object]) -> Weights:
    """Set the operator's weights and republish the ranking with them: `uoom channels weights set`
    and the dashboard's weights modal both come here. Raises ValueError with the reason (unknown
    criterion, not a number, negative, all zero) before anything is written."""
    weights = Weights.from_mapping(raw)
    stored: dict[Any, Any] = {k: getattr(weights, k) for k in CRITERIA}
    # PostgreSQL first: the copy a restarted Redis gets back (restore_weights).
    await conn.execute(SAVE_WEIGHTS_SQL, json.dumps(stored))
    await redis.hset(redis_keys.WEIGHTS, mapping=stored)
    await republish(conn, redis)
    return weights


SAVE_WEIGHTS_SQL = """
INSERT INTO ranking_weights (id, weights) VALUES (true, $1::text::jsonb)
ON CONFLICT (id) DO UPDATE SET weights = excluded.weights, updated_at = now()
"""


async def restore_weights(conn: asyncpg.Connection | asyncpg.Pool, redis: aioredis.Redis) -> bool:
    """Put the operator's weights back into a Redis that lost them (a restart keeps nothing): the
    optimizer calls this before each ranking round. True when it restored them."""
    if await redis.exists(redis_keys.WEIGHTS):
        return False
    raw = await conn.fetchval("SELECT weights::text FROM ranking_weights")
    if raw is None:  # never set: the defaults are right
        return False
    await redis.hset(redis_keys.WEIGHTS, mapping=json.loads(raw))
    return True


async def republish(conn: asyncpg.Connection, redis: aioredis.Redis) -> None:
    """Rebuild the live ranking now from the registry's enabled channels, their loads and the
    weights, so a change is visible before the optimizer's next round."""
    loads = await channel_loads(redis)
    live = [replace(c, load=loads.get(c.id, 0)) for c in await channels.enabled_channels(conn)]
    await refresh(redis, live, await get_weights(redis))


async def channel_loads(redis: aioredis.Redis) -> dict[str, int]:
    return _loads(await redis.hgetall(redis_keys.CHANNEL_LOAD))


def _loads(raw: Mapping[Any, Any]) -> dict[str, int]:
    return {_text(k): max(int(v), 0) for k, v in raw.items()}


async def live_state(redis: aioredis.Redis) -> tuple[dict[str, int], Weights, list[str]]:
    """In one round trip: each channel's load, the weights, and the composite ranking (channel
    ids, best first). ValueError when the stored weights are invalid."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(redis_keys.CHANNEL_LOAD)
        pipe.hgetall(redis_keys.WEIGHTS)
        pipe.zrevrange(redis_keys.RANK_COMPOSITE, 0, -1)
        raw_loads, raw_weights, ranked = await pipe.execute()
    return _loads(raw_loads), _weights(raw_weights), [_text(r) for r in ranked]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def refresh(redis: aioredis.Redis, channels: Sequence[Channel], weights: Weights) -> None:
    """Rewrite the per-criterion ZSETs and the composite ranking in one pipeline. A channel's
    quality is its observed on-time rate once deliveries have been seen, its registered one before."""
    observed = {_text(k): float(v) for k, v in (await redis.hgetall(redis_keys.OBSERVED_QUALITY)).items()}
    channels = [replace(c, quality=observed[c.id]) if c.id in observed else c for c in channels]
    scores = criterion_scores(channels)
    async with redis.pipeline(transaction=True) as pipe:
        for criterion, values in scores.items():
            key = redis_keys.rank_key(criterion)
            pipe.delete(key)
            if values:
                pipe.zadd(key, values)
        zsets = {redis_keys.rank_key(ZSET_OF[c]): getattr(weights, c) for c in CRITERIA}
        if channels:
            pipe.zunionstore(redis_keys.RANK_COMPOSITE, zsets)
        else:
            pipe.delete(redis_keys.RANK_COMPOSITE)
        await pipe.execute()


async def ranking(redis: aioredis.Redis, top: int = -1) -> list[dict[str, Any]]:
    """The composite leaderboard, best first, with each criterion's score: one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        _queue_ranking(pipe, top)
        return _ranking_rows(*await pipe.execute())


async def board(redis: aioredis.Redis) -> tuple[list[dict[str, Any]], dict[str, int], Weights | None]:
    """What the dashboard shows, in one round trip: the ranking (as `ranking`), each channel's
    load, and the weights (None when the stored ones are invalid)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(redis_keys.CHANNEL_LOAD)
        pipe.hgetall(redis_keys.WEIGHTS)
        _queue_ranking(pipe)
        raw_loads, raw_weights, *ranked = await pipe.execute()
    try:
        weights: Weights | None = _weights(raw_weights)
    except ValueError:
        weights = None
    return _ranking_rows(*ranked), _loads(raw_loads), weights


def _queue_ranking(pipe: Any, top: int = -1) -> None:
    """The composite's top entries, then each criterion's whole ZSET (a few dozen channels)."""
    pipe.zrevrange(redis_keys.RANK_COMPOSITE, 0, top - 1 if top > 0 else -1, withscores=True)
    for criterion in ZSET_OF.values():
        pipe.zrange(redis_keys.rank_key(criterion), 0, -1, withscores=True)


def _ranking_rows(composite: list[Any], *criteria: list[Any]) -> list[dict[str, Any]]:
    scores = [{_text(member): value for member, value in found} for found in criteria]
    rows = []
    for raw_id, score in composite:
        channel_id = _text(raw_id)
        row: dict[str, Any] = {"channelId": channel_id, "score": round(score, 4)}
        for criterion, by_channel in zip(ZSET_OF.values(), scores, strict=True):
            value = by_channel.get(channel_id)
            row[criterion] = None if value is None else round(value, 4)
        rows.append(row)
    return rows


@dataclass(frozen=True, slots=True)
class LoadMove:
    """One event's effect on the channels' load: the order's slot to `channel_id` (None: release)
    as of its `version`; `trip_id`: the trip whose one slot it shares."""

    order_id: str
    channel_id: str | None
    version: int = 0
    trip_id: str | None = None


async def move_load(redis: aioredis.Redis, order_id: str, channel_id: str | None, version: int = 0,
                    trip_id: str | None = None) -> bool:  # fmt: skip
    """Give the order's slot to `channel_id` (None: release it) as of the order's `version`;
    False when nothing changed (the same event again, or an older one). Idempotent. An order on
    a trip (`trip_id`) shares the trip's one slot with its co-rider: the slot is taken by the
    first of them on the channel and given back when the last one lets go (delivered, cancelled,
    failed, or moved off)."""
    (moved,) = await move_loads(redis, [LoadMove(order_id, channel_id, version, trip_id)])
    return moved


async def move_loads(redis: aioredis.Redis, moves: Sequence[LoadMove]) -> list[bool]:
    """`move_load` for each move, in their order, in one round trip: a pipeline of the script by
    its digest (each run is atomic on its own; sending the script's text with every event cost the
    optimizer more than the rest of its event handling). A Redis that lost its scripts (restarted,
    flushed) runs the refused ones again after loading it."""
    if not moves:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for move in moves:
            pipe.evalsha(MOVE_LOAD_SHA, 5, *_move_keys(move), *_move_args(move))
        results = await pipe.execute(raise_on_error=False)
    refused = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
    if refused:
        await redis.script_load(MOVE_LOAD)
        for i in refused:
            results[i] = await redis.evalsha(MOVE_LOAD_SHA, 5, *_move_keys(moves[i]), *_move_args(moves[i]))  # type: ignore[misc]
    for r in results:
        if isinstance(r, Exception):
            raise r
    return [bool(r) for r in results]


def _move_keys(move: LoadMove) -> tuple[str, ...]:
    return (redis_keys.ORDER_SLOT, redis_keys.CHANNEL_LOAD, redis_keys.order_load_version(move.order_id),
            redis_keys.ORDER_TRIP, redis_keys.TRIP_RIDERS)  # fmt: skip


def _move_args(move: LoadMove) -> tuple[str | int, ...]:
    return (move.order_id, move.channel_id or "", move.version, redis_keys.LOAD_VERSION_TTL_SECONDS,
            move.trip_id or "")  # fmt: skip
