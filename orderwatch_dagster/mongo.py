"""MongoDB reads and writes (the I/O shell around :mod:`orderwatch_dagster.transforms`).

Only plain ``find`` with filter, projection and sort, and simple writes: nx-27017 (the embedded
MongoDB-protocol server) silently mis-evaluates compound ``$group``, ``$unwind``, ``$lookup`` and
``$facet``, so every computation happens in polars. The same code runs against real MongoDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pymongo
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from collector_service import schema
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.transforms.common import watchlist_frame
from orderwatch_dagster.transforms.events import RAW_ORDER_SCHEMA, normalize_order_events
from orderwatch_dagster.transforms.fills import RAW_FILL_SCHEMA, normalize_fills
from orderwatch_dagster.transforms.positions import RAW_POSITION_SCHEMA
from orderwatch_dagster.transforms.scorecards import MARKS_SCHEMA, RAW_ACCOUNT_SCHEMA
from orderwatch_dagster.transforms.twaps import MAX_TWAP_MINUTES, RAW_TWAP_SCHEMA

BATCH_SIZE = 10_000


def day_filters(day: str | date) -> list[dict[str, Any]]:
    """The two filters that select a day's documents: by ``observedAt``, or by ``createdAt``
    when ``observedAt`` is missing or null (``None`` matches both on MongoDB and nx-27017).

    Two queries rather than one ``$or`` so that each can use its own index.
    """
    start, end = day_bounds(day)
    rng = {"$gte": start, "$lt": end}
    return [{"observedAt": rng}, {"observedAt": None, "createdAt": rng}]


def _frame(docs: Iterable[Mapping[str, Any]], raw_schema: pl.Schema) -> pl.DataFrame:
    # polars builds the columns from the dicts in Rust; missing keys become nulls.
    docs = list(docs)
    if not docs:
        return pl.DataFrame(schema=raw_schema)
    return pl.from_dicts(docs, schema=raw_schema, strict=False)


def _projection(raw_schema: pl.Schema) -> dict[str, int]:
    return {"_id": 0} | {name: 1 for name in raw_schema.names()}


def read_order_events(db: Database, day: str | date) -> pl.DataFrame:
    """A day's ``trader_orders`` documents, typed into the ``order_events`` schema."""
    raw = pl.concat(
        [
            _frame(
                db[schema.ORDERS].find(f, _projection(RAW_ORDER_SCHEMA), batch_size=BATCH_SIZE),
                RAW_ORDER_SCHEMA,
            )
            for f in day_filters(day)
        ]
    )
    return normalize_order_events(raw)


def read_order_events_where(db: Database, filters: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """The ``trader_orders`` documents matching any of ``filters`` (plain ``find``s), typed into the
    ``order_events`` schema, each event once."""
    proj = _projection(RAW_ORDER_SCHEMA)
    frames = [
        _frame(db[schema.ORDERS].find(f, proj, batch_size=BATCH_SIZE), RAW_ORDER_SCHEMA) for f in filters
    ]
    raw = pl.concat(frames) if frames else pl.DataFrame(schema=RAW_ORDER_SCHEMA)
    return normalize_order_events(raw.unique(["ethAddress", "oid", "eventKey"], keep="first"))


def read_order_event_keys(db: Database, day: str | date) -> pl.DataFrame:
    """Only the key fields of a day's ``trader_orders`` documents (for the duplicate check)."""
    fields = pl.Schema({"ethAddress": pl.String(), "oid": pl.Int64(), "action": pl.String(), "seq": pl.Int64()})
    return pl.concat(
        [
            _frame(db[schema.ORDERS].find(f, _projection(fields), batch_size=BATCH_SIZE), fields)
            for f in day_filters(day)
        ]
    )


def count_order_events(db: Database, day: str | date) -> int:
    """How many ``trader_orders`` documents belong to the day."""
    return sum(db[schema.ORDERS].count_documents(f) for f in day_filters(day))


def fill_filter(day: str | date) -> dict[str, Any]:
    """The filter that selects a day's ``trader_fills`` documents: by the fill's own ``time``
    (the exchange's), so that fills recovered over REST after a gap land on the day they traded."""
    start, end = day_bounds(day)
    return {"time": {"$gte": start, "$lt": end}}


def read_fills(db: Database, day: str | date) -> pl.DataFrame:
    """A day's ``trader_fills`` documents, typed into the ``fills`` schema (plain ``find``)."""
    cursor = db[schema.FILLS].find(fill_filter(day), _projection(RAW_FILL_SCHEMA), batch_size=BATCH_SIZE)
    return normalize_fills(_frame(cursor, RAW_FILL_SCHEMA))


def read_fill_keys(db: Database, day: str | date) -> pl.DataFrame:
    """Only the key fields of a day's ``trader_fills`` documents (for the duplicate check)."""
    fields = pl.Schema({"ethAddress": pl.String(), "oid": pl.Int64(), "tid": pl.Int64()})
    return _frame(db[schema.FILLS].find(fill_filter(day), _projection(fields), batch_size=BATCH_SIZE), fields)


def count_fills(db: Database, day: str | date) -> int:
    """How many ``trader_fills`` documents belong to the day."""
    return db[schema.FILLS].count_documents(fill_filter(day))


def read_positions(db: Database, day: str | date) -> pl.DataFrame:
    """Every ``trader_positions`` document seen before the day's end (raw, decimals as strings)."""
    _, end = day_bounds(day)
    proj = _projection(RAW_POSITION_SCHEMA)
    filters = [{"observedAt": {"$lt": end}}, {"observedAt": None, "createdAt": {"$lt": end}}]
    return pl.concat(
        [
            _frame(db[schema.POSITIONS].find(f, proj, batch_size=BATCH_SIZE), RAW_POSITION_SCHEMA)
            for f in filters
        ]
    )


def read_twaps(db: Database, day: str | date) -> pl.DataFrame:
    """The ``trader_twaps`` documents of every TWAP that may have run during the day (started at
    most a day before it and before its end; raw, decimals as strings)."""
    start, end = day_bounds(day)
    found = {"timestamp": {"$gte": start - timedelta(minutes=MAX_TWAP_MINUTES), "$lt": end}}
    return _frame(db[schema.TWAPS].find(found, _projection(RAW_TWAP_SCHEMA)), RAW_TWAP_SCHEMA)


def read_accounts(db: Database, day: str | date) -> pl.DataFrame:
    """A day's ``trader_accounts`` samples, by the exchange's ``serverTime`` (raw, decimals as strings)."""
    start, end = day_bounds(day)
    cursor = db[schema.ACCOUNTS].find(
        {"serverTime": {"$gte": start, "$lt": end}}, _projection(RAW_ACCOUNT_SCHEMA), batch_size=BATCH_SIZE
    )
    return _frame(cursor, RAW_ACCOUNT_SCHEMA)


def read_marks(db: Database) -> pl.DataFrame:
    """``market_marks``: the latest mark price of every coin (``coin``, ``markPx``, ``at``)."""
    docs = db[schema.MARKS].find({}, {"_id": 1, "markPx": 1, "at": 1})
    return _frame(({"coin": d["_id"], "markPx": d.get("markPx"), "at": d.get("at")} for d in docs), MARKS_SCHEMA)


def read_twaps_of(db: Database, keys: Iterable[tuple[str, int]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``trader_twaps`` documents and the slice fills (typed as :func:`read_fills`) of these
    TWAPs, each ``(ethAddress, twapId)``; one query per trader."""
    ids: dict[str, set[int]] = {}
    for address, twap_id in keys:
        ids.setdefault(address, set()).add(twap_id)
    filters = [{"ethAddress": address, "twapId": {"$in": sorted(found)}} for address, found in sorted(ids.items())]
    docs = [d for f in filters for d in db[schema.TWAPS].find(f, _projection(RAW_TWAP_SCHEMA))]
    fills = [d for f in filters for d in db[schema.FILLS].find(f, _projection(RAW_FILL_SCHEMA))]
    return _frame(docs, RAW_TWAP_SCHEMA), normalize_fills(_frame(fills, RAW_FILL_SCHEMA))


def read_watchlist(db: Database) -> pl.DataFrame:
    """``trader_watchlist`` as :func:`watchlist_frame` (``ethAddress, label, tags``)."""
    docs = db[schema.WATCHLIST].find({}, {"_id": 1, "label": 1, "tags": 1})
    return watchlist_frame(list(docs))


def write_alerts(db: Database, alerts: pl.DataFrame, now: datetime | None = None) -> int:
    """Insert alerts into ``order_alerts`` idempotently (unique ``alertKey``); return how many were new.

    ``$setOnInsert`` upserts: re-running a day leaves existing alerts (and their delivery decision
    and state, :mod:`orderwatch_dagster.outbox`) untouched.
    """
    coll = db[schema.ALERTS]
    for keys, unique in schema.ALERT_INDEXES:
        coll.create_index(list(keys), unique=unique)
    if alerts.is_empty():
        return 0
    now = now or datetime.now(UTC)
    docs = alerts.with_columns(pl.col(pl.Decimal).cast(pl.String)).to_dicts()
    ops = [
        pymongo.UpdateOne({"alertKey": d["alertKey"]}, {"$setOnInsert": d | {"createdAt": now}}, upsert=True)
        for d in docs
    ]
    try:
        result = coll.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        # Two writers racing on the same new key: the loser gets 11000, which is fine.
        if any(e.get("code") != schema.DUPLICATE_KEY_ERROR for e in exc.details.get("writeErrors", [])):
            raise
        return int(exc.details.get("nUpserted", 0))
    return result.upserted_count


def write_listed(db: Database, listed: pl.DataFrame, now: datetime | None = None) -> dict[str, int]:
    """Make the pin and selection documents of ``trader_watchlist`` the listed traders
    (``ethAddress``, ``decision``, ``label``, ``tags``): one document per address, origin ``pin``
    for a pinned trader, ``selection`` otherwise; those no longer listed are deleted. A manual
    entry still on the collector's file keeps its address (schema.WATCHLIST: each writer touches
    only its own documents). Returns how many were written, left manual and deleted."""
    coll = db[schema.WATCHLIST]
    now = now or datetime.now(UTC)
    written = manual = 0
    for row in listed.select("ethAddress", "decision", "label", "tags").iter_rows(named=True):
        address = row["ethAddress"]
        origin = schema.ORIGIN_PIN if row["decision"] == "pinned" else schema.ORIGIN_SELECTION
        doc = {"_id": address, "ethAddress": address, "label": row["label"], "tags": list(row["tags"] or []),
               "origin": origin, "watching": True, "updatedAt": now}
        try:  # a whole-document replace: nx-27017 stores $set datetimes as text
            coll.replace_one({"_id": address, **schema.LISTED_MAY_TAKE}, doc, upsert=True)
            written += 1
        except DuplicateKeyError:
            manual += 1  # the upsert met a manual entry on the file: it stays manual
    gone = coll.delete_many(
        {"origin": {"$in": list(schema.LISTED_ORIGINS)}, "_id": {"$nin": listed["ethAddress"].to_list()}}
    )
    return {"written": written, "manual": manual, "deleted": gone.deleted_count}
