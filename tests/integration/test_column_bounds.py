"""uoom/domain/columns.py against the migrated schema: every numeric column of the tables a request
writes has its bound there, and each bound is the column's own (precision, scale, width)."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from uoom import migrate
from uoom.domain import columns
from uoom.domain.columns import Integer, Numeric

# the tables an API request writes (an order, its outbox event, the idempotency record)
WRITTEN_BY_REQUESTS = ("orders", "outbox_events", "idempotency_keys")
WIDTHS = {"smallint": 16, "integer": 32, "bigint": 64}


async def test_every_numeric_column_a_request_writes_has_its_bound_and_it_is_the_columns_own(
    scratch_dsn: str,
) -> None:
    await migrate.up(scratch_dsn)
    conn = await asyncpg.connect(scratch_dsn)
    try:
        rows = await conn.fetch(
            """SELECT table_name, column_name, data_type, numeric_precision, numeric_scale
               FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = ANY($1)
                 AND data_type IN ('numeric', 'smallint', 'integer', 'bigint', 'real', 'double precision')""",
            list(WRITTEN_BY_REQUESTS),
        )
    finally:
        await conn.close()
    actual: dict[tuple[str, str], columns.Column] = {}
    for row in rows:
        kind = row["data_type"]
        assert kind in ("numeric", *WIDTHS), f"{row['table_name']}.{row['column_name']} is {kind}: bound it"
        assert kind != "numeric" or row["numeric_precision"] is not None, "unbounded numeric: give it a precision"
        actual[row["table_name"], row["column_name"]] = (
            Numeric(row["numeric_precision"], row["numeric_scale"]) if kind == "numeric" else Integer(WIDTHS[kind])
        )
    assert actual == columns.COLUMNS


async def test_the_bounds_are_the_largest_values_postgresql_stores(scratch_dsn: str) -> None:
    conn = await asyncpg.connect(scratch_dsn)
    try:
        for column in {*columns.COLUMNS.values()}:
            sql_type = f"numeric({column.precision},{column.scale})" if isinstance(column, Numeric) else (
                {v: k for k, v in WIDTHS.items()}[column.bits])  # fmt: skip
            assert await conn.fetchval(f"SELECT $1::text::{sql_type}", str(column.largest)) == column.largest
            too_big = column.largest + (Decimal(1).scaleb(-column.scale) if isinstance(column, Numeric) else 1)
            try:
                await conn.fetchval(f"SELECT $1::text::{sql_type}", str(too_big))
            except (asyncpg.NumericValueOutOfRangeError, asyncpg.DataError):
                continue
            raise AssertionError(f"{sql_type} stored {too_big}, beyond the bound {column.largest}")
    finally:
        await conn.close()
