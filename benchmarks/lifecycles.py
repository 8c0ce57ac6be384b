"""``order_lifecycles`` for 500 traders over N days of ``order_events`` and ``fills`` partitions, as
the asset reads them (every partition up to the day), against the same lifecycles written as DuckDB
SQL over the same Parquet files (what an analyst would write instead). Run by the scorecards
benchmark (:mod:`benchmarks.scorecards`), in the same run.

The events are :func:`benchmarks.events.events_frame`'s (amend chains, a market maker's long
re-quote chains, spurious links to ignore, partial fills, orders open across days) with a book
distance on a third of the new events; the fills are what those events tell was traded (each
partial fill and each filled close), plus orders known only from their fills (they never rested).

The SQL rules a replacement link out when its old order has any close that is filled or rejected
(polars looks those closes up in two steps: the same with one close per order, which the unique
keys guarantee), and reads every partition of the two tables (here none is later than the day).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from benchmarks.events import events_frame
from orderwatch_dagster import tables
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.resources import ParquetStore
from orderwatch_dagster.transforms.lifecycles import order_lifecycles

ORDERS_PER_DAY = 60
"""Per trader and day."""
UNSEEN_EVERY = 40
"""One order in this many also gets an order that only shows up in the fills (an IOC)."""


def _fills(events: pl.DataFrame) -> pl.DataFrame:
    """Each partial fill (an update's size decrease) and each filled close's remaining size as one
    fill at the event's time and limit price; plus, for one order in ``UNSEEN_EVERY``, a taker fill
    of an order with no event."""
    partial = pl.col("partialFill").fill_null(False)
    filled = (pl.col("action") == "closed") & (pl.col("finalStatus") == "filled")
    traded = events.filter(partial | filled).select(
        "ethAddress", "oid", "coin", "side", "dex", "source", "observedAt", "createdAt",
        time="eventAt", px="limitPx", sz=pl.when(partial).then(pl.col("prevSz") - pl.col("sz")).otherwise("sz"),
        crossed=pl.lit(False),
    )  # fmt: skip
    unseen = (
        events.filter((pl.col("action") == "new") & (pl.col("oid") % UNSEEN_EVERY == 0))
        .select("ethAddress", "coin", "side", "dex", "source", "observedAt", "createdAt", "sz",
                oid=pl.col("oid") + 10**11, time=pl.col("eventAt") + pl.duration(seconds=5), px="limitPx",
                crossed=pl.lit(True))
    )  # fmt: skip
    df = pl.concat([traded, unseen.select(traded.columns)]).sort("time")
    notional = pl.col("px").cast(pl.Float64) * pl.col("sz").cast(pl.Float64)
    return df.with_columns(
        tid=pl.int_range(pl.len(), dtype=pl.Int64),
        dir=pl.when(pl.col("side") == "B").then(pl.lit("Open Long")).otherwise(pl.lit("Open Short")),
        notionalUsd=notional,
        isMaker=~pl.col("crossed"),
        startPosition=pl.lit(0),
        closedPnl=(notional * 0.001).round(2),
        fee=(notional * 0.00035).round(6),
        feeToken=pl.lit("USDC"),
    ).with_columns(feeUsd=pl.col("fee"))


def build(root: Path, last_day: str, days: int, traders: int, seed: int = 3) -> None:
    """Write ``days`` days of ``order_events`` (by ``observedAt``) and ``fills`` (by ``time``)
    partitions up to ``last_day`` under ``root``."""
    n_events = int(traders * days * ORDERS_PER_DAY * 2.6)
    events = events_frame(n_events, seed, day=last_day, days=days, traders=traders)
    book = (pl.col("action") == "new") & (pl.col("oid") % 3 == 0)
    events = events.with_columns(
        distanceBps=pl.when(book).then((pl.col("oid") % 200).cast(pl.Float64) / 4 - 10),
        bookAt=pl.when(book).then(pl.col("eventAt")),
    )
    store = ParquetStore(data_dir=str(root))
    end = day_bounds(last_day)[1]
    frames = {
        "order_events": events.filter(pl.col("observedAt") < end).with_columns(day_=pl.col("observedAt").dt.date()),
        "fills": _conform(_fills(events), "fills").filter(pl.col("time") < end).with_columns(
            day_=pl.col("time").dt.date()
        ),
    }
    for table, df in frames.items():
        for (d,), part in df.partition_by("day_", as_dict=True).items():
            assert isinstance(d, date)
            store.write(table, d, part.drop("day_"))


def _conform(df: pl.DataFrame, table: str) -> pl.DataFrame:
    cols = tables.TABLES[table]
    missing = [pl.lit(None).alias(c.name) for c in cols if c.name not in df.columns]
    return tables.conform(df.with_columns(missing), cols).collect()


def with_polars(root: Path, day: str) -> pl.DataFrame:
    store = ParquetStore(data_dir=str(root))
    return order_lifecycles(store.scan_until("order_events", day), day, store.scan_until("fills", day))


OUTCOME = """CASE WHEN {s} IS NULL THEN 'open' WHEN {s} = 'filled' THEN 'filled'
  WHEN ends_with({s}, 'Canceled') OR {s} IN ('canceled', 'scheduledCancel', 'internalCancel') THEN 'canceled'
  WHEN ends_with({s}, 'Rejected') OR {s} = 'rejected' THEN 'rejected'
  WHEN {s} = 'triggered' THEN 'triggered' ELSE 'unknown' END"""

FILL_AGGS = """count(*) AS nFills, sum(sz) AS filledSz, sum(notionalUsd) / sum(CAST(sz AS DOUBLE)) AS avgFillPx,
  CASE WHEN bool_or(feeUsd IS NULL) THEN NULL ELSE sum(feeUsd) END AS feesUsd,
  coalesce(sum(CAST(sz AS DOUBLE)) FILTER (WHERE isMaker), 0) / sum(CAST(sz AS DOUBLE)) AS makerShare,
  coalesce(sum(closedPnl), 0) AS realizedPnl, min(time) AS firstFillAt, max(time) AS lastFillAt"""

SQL = """
WITH RECURSIVE
ev AS (
  SELECT *, CAST(coalesce(seq, 9223372036854775807) AS HUGEINT) * 18446744073709551616 + epoch_us(eventAt) AS ord
  FROM read_parquet('{root}/order_events/*/*.parquet', union_by_name = true) WHERE eventAt < $end),
-- amend chains: the replacement links (new > old; not from an order that closed filled or rejected;
-- each new keeps its largest old, then each old its smallest new), walked from their roots
cand AS (
  SELECT ethAddress, replacesOid AS old, oid AS new FROM ev WHERE action = 'new' AND replacesOid IS NOT NULL
  UNION ALL
  SELECT ethAddress, oid, replacedByOid FROM ev WHERE action = 'closed' AND replacedByOid IS NOT NULL),
not_replaced AS (
  SELECT DISTINCT ethAddress, oid FROM ev
  WHERE action = 'closed' AND (finalStatus IN ('filled', 'rejected') OR ends_with(finalStatus, 'Rejected'))),
links AS (
  SELECT ethAddress, old, min(new) AS new FROM (
    SELECT ethAddress, new, max(old) AS old FROM cand c
    WHERE new > old AND NOT EXISTS (SELECT 1 FROM not_replaced n WHERE n.ethAddress = c.ethAddress AND n.oid = c.old)
    GROUP BY ALL)
  GROUP BY ALL),
members(ethAddress, oid, prevOid, rootOid) AS (
  SELECT ethAddress, old, CAST(NULL AS BIGINT), old FROM links l
  WHERE NOT EXISTS (SELECT 1 FROM links p WHERE p.ethAddress = l.ethAddress AND p.new = l.old)
  UNION ALL
  SELECT l.ethAddress, l.new, l.old, m.rootOid
  FROM members m JOIN links l ON l.ethAddress = m.ethAddress AND l.old = m.oid),
-- each order's own lifecycle, its first / last events by (seq, eventAt)
per_order AS (
  SELECT ethAddress, oid, arg_max_null(coin, ord) AS coin, arg_max_null(side, ord) AS side,
    arg_max_null(orderType, ord) AS orderType, max(parentOid) AS parentOid,
    coalesce(min(timestamp), min(eventAt)) AS placedAt, min(eventAt) AS firstSeenAt,
    max(eventAt) FILTER (WHERE action = 'closed') AS closedAt,
    arg_max_null(finalStatus, ord) FILTER (WHERE action = 'closed') AS finalStatus,
    count(*) FILTER (WHERE action = 'updated') AS nUpdates,
    count(*) FILTER (WHERE action = 'updated' AND NOT coalesce(partialFill, false)) AS nAmends,
    count(*) FILTER (WHERE action = 'updated' AND list_contains(changes, 'limitPx')) AS nPriceChanges,
    arg_min_null(origSz, ord) FILTER (WHERE origSz IS NOT NULL) AS origSz,
    coalesce(arg_max_null(sz, ord) FILTER (WHERE action <> 'closed'),
             arg_max_null(sz, ord) FILTER (WHERE action = 'closed')) AS lastSz,
    max(limitPx) FILTER (WHERE action = 'new') AS newPx, max(limitPx) FILTER (WHERE action = 'closed') AS closedPx,
    coalesce(sum(prevSz - sz) FILTER (WHERE partialFill), 0) AS partialSz,
    max(notionalUsd) AS maxNotionalUsd, coalesce(bool_or(source = 'rest'), false) AS recovered
  FROM ev GROUP BY ethAddress, oid),
orders AS (
  SELECT *, closedAt IS NULL OR closedAt >= $start AS openOrToday, {outcome} AS outcome,
    CASE WHEN outcome = 'filled'
         THEN partialSz + CASE WHEN lastSz > 0 THEN lastSz ELSE origSz - partialSz END
         ELSE partialSz END AS filledSzEvents
  FROM per_order
  WHERE closedAt IS NULL OR closedAt >= $start OR oid IN (SELECT oid FROM members)),
-- a chain shows up while its last order (its largest oid) is open or closed that day
gone AS (
  SELECT l.ethAddress, l.rootOid FROM (SELECT ethAddress, rootOid, max(oid) AS oid FROM members GROUP BY ALL) l
  JOIN orders o ON o.ethAddress = l.ethAddress AND o.oid = l.oid WHERE NOT o.openOrToday),
singles AS (
  SELECT ethAddress, oid AS rootOid, oid, coin, side, orderType, parentOid, placedAt, firstSeenAt, closedAt,
    finalStatus, outcome, nAmends AS amendCount, nUpdates, nPriceChanges, origSz, lastSz, filledSzEvents,
    maxNotionalUsd, recovered, [oid] AS oids
  FROM orders o
  WHERE openOrToday AND NOT EXISTS (SELECT 1 FROM members m WHERE m.ethAddress = o.ethAddress AND m.oid = o.oid)),
chained AS (
  SELECT m.ethAddress, m.rootOid, max(m.oid) AS oid,
    arg_max_null(o.coin, o.oid) FILTER (WHERE o.firstSeenAt IS NOT NULL) AS coin,
    arg_max_null(o.side, o.oid) FILTER (WHERE o.firstSeenAt IS NOT NULL) AS side,
    arg_max_null(o.orderType, o.oid) FILTER (WHERE o.firstSeenAt IS NOT NULL) AS orderType,
    max(o.parentOid) AS parentOid,
    arg_min_null(o.placedAt, o.oid) FILTER (WHERE o.firstSeenAt IS NOT NULL) AS placedAt,
    min(o.firstSeenAt) AS firstSeenAt, arg_max_null(o.closedAt, m.oid) AS closedAt,
    arg_max_null(o.finalStatus, m.oid) AS finalStatus, coalesce(arg_max_null(o.outcome, m.oid), 'open') AS outcome,
    count(*) - 1 + coalesce(sum(o.nAmends), 0) AS amendCount, coalesce(sum(o.nUpdates), 0) AS nUpdates,
    coalesce(sum(o.nPriceChanges), 0)
      + count(*) FILTER (WHERE m.prevOid IS NOT NULL AND o.newPx <> p.closedPx) AS nPriceChanges,
    arg_min_null(o.origSz, o.oid) FILTER (WHERE o.firstSeenAt IS NOT NULL) AS origSz,
    arg_max_null(o.lastSz, m.oid) AS lastSz, coalesce(sum(o.filledSzEvents), 0) AS filledSzEvents,
    max(o.maxNotionalUsd) AS maxNotionalUsd, coalesce(bool_or(o.recovered), false) AS recovered,
    list(m.oid ORDER BY m.oid) AS oids
  FROM members m
  LEFT JOIN orders o ON o.ethAddress = m.ethAddress AND o.oid = m.oid
  LEFT JOIN orders p ON p.ethAddress = m.ethAddress AND p.oid = m.prevOid
  WHERE NOT EXISTS (SELECT 1 FROM gone g WHERE g.ethAddress = m.ethAddress AND g.rootOid = m.rootOid)
  GROUP BY m.ethAddress, m.rootOid),
lc AS (SELECT *, true AS seenInEvents FROM singles UNION ALL BY NAME SELECT *, true AS seenInEvents FROM chained),
-- the book when the logical order was placed: its root's new event's
books AS (
  SELECT DISTINCT ON (ethAddress, oid) ethAddress, oid AS rootOid, bookMidPx, distanceBps, depthAheadUsd, levelShare,
    bookDepth1pctUsd, bookAt
  FROM ev WHERE action = 'new' AND (bookMidPx IS NOT NULL OR distanceBps IS NOT NULL OR depthAheadUsd IS NOT NULL
    OR levelShare IS NOT NULL OR bookDepth1pctUsd IS NOT NULL OR bookAt IS NOT NULL)),
fills AS (
  SELECT ethAddress, oid, time, coin, side, sz, notionalUsd, feeUsd, isMaker, closedPnl, source
  FROM read_parquet('{root}/fills/*/*.parquet', union_by_name = true) WHERE time < $end),
per_chain AS (
  SELECT f.ethAddress, coalesce(m.rootOid, f.oid) AS rootOid, {fill_aggs}
  FROM fills f LEFT JOIN members m ON m.ethAddress = f.ethAddress AND m.oid = f.oid GROUP BY ALL),
traded AS (
  SELECT lc.*, b.* EXCLUDE (ethAddress, rootOid), coalesce(f.nFills, 0) AS nFills,
    CASE WHEN f.nFills IS NULL THEN 0 ELSE f.filledSz END AS filledSz, f.avgFillPx,
    CASE WHEN f.nFills IS NULL THEN 0 ELSE f.feesUsd END AS feesUsd, f.makerShare,
    CASE WHEN f.nFills IS NULL THEN 0 ELSE f.realizedPnl END AS realizedPnl, f.firstFillAt, f.lastFillAt
  FROM lc LEFT JOIN books b USING (ethAddress, rootOid) LEFT JOIN per_chain f USING (ethAddress, rootOid)),
-- orders with a fill that day and no event (nor a link naming them) by the day's end
unseen AS (
  SELECT ethAddress, oid AS rootOid, oid, arg_min_null(coin, time) AS coin, arg_min_null(side, time) AS side,
    min(time) AS placedAt, max(time) AS closedAt, 'filled' AS outcome, 0 AS amendCount, 0 AS nUpdates,
    0 AS nPriceChanges, coalesce(bool_or(source = 'rest'), false) AS recovered, false AS seenInEvents,
    [oid] AS oids, {fill_aggs}
  FROM fills f
  WHERE NOT EXISTS (SELECT 1 FROM ev e WHERE e.ethAddress = f.ethAddress AND e.oid = f.oid)
    AND NOT EXISTS (SELECT 1 FROM members m WHERE m.ethAddress = f.ethAddress AND m.oid = f.oid)
  GROUP BY ethAddress, oid HAVING max(time) >= $start),
out AS (SELECT * FROM traded UNION ALL BY NAME SELECT * FROM unseen)
SELECT *, CASE WHEN contains(coin, ':') THEN split_part(coin, ':', 1) ELSE '' END AS dex,
  (epoch_us(coalesce(closedAt, $end)) - epoch_us(placedAt)) / 1e6 AS durationS,
  CAST(NULL AS VARCHAR) AS label, CAST([] AS VARCHAR[]) AS tags
FROM out
"""


def with_duckdb(root: Path, day: str) -> pl.DataFrame:
    import duckdb

    start, end = day_bounds(day)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    sql = SQL.format(root=f"{root}/parquet", outcome=OUTCOME.format(s="finalStatus"), fill_aggs=FILL_AGGS)
    got = con.sql(sql, params={"start": start, "end": end}).to_arrow_table()
    df = tables.conform(pl.from_arrow(got), tables.ORDER_LIFECYCLES)  # type: ignore[arg-type]
    return df.sort(["ethAddress", "rootOid"]).collect()

