"""Benchmark: ``trader_scorecards`` for 500 traders over 7 and 30 days of synthetic Parquet tables
(``fills``, ``order_lifecycles``, ``positions_snapshot``, ``trader_account_days``), as the asset
reads them, against the same scorecards written as DuckDB SQL over the same files (what an analyst
would write instead); and in the same run ``order_lifecycles`` for 500 traders over the same days
of ``order_events`` and ``fills`` against its DuckDB SQL (:mod:`benchmarks.lifecycles`).

Each figure is the median of ``RUNS`` fresh processes (seconds from the first scan to the result
in memory; peak RSS growth from ``VmHWM``), polars and DuckDB interleaved. Both results must be
equal: the same rows, decimals exact, floats to 1e-9.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil

from benchmarks import lifecycles
from benchmarks.measure import peak_rss, run_child
from benchmarks.report import Section
from orderwatch_dagster import tables
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.resources import ParquetStore
from orderwatch_dagster.transforms.scorecards import MARKS_SCHEMA, trader_scorecards

RUNS = 3
TRADERS = 500
QUICK_TRADERS = 100
"""``--quick``: a smoke run in seconds."""
FIRST_DAY = date(2026, 10, 1)
COINS = ("BTC", "ETH", "SOL", "HYPE", "DOGE")
FILLS_PER_DAY = 40
CHAINS_PER_DAY = 60
"""Per trader and day."""


def _day(i: int) -> str:
    return (FIRST_DAY + timedelta(days=i)).isoformat()


def _conform(df: pl.DataFrame, table: str) -> pl.DataFrame:
    cols = tables.TABLES[table]
    missing = [pl.lit(None).alias(c.name) for c in cols if c.name not in df.columns]
    return tables.conform(df.with_columns(missing), cols).collect()


def _fills(rng: np.random.Generator, traders: list[str], days: int) -> pl.DataFrame:
    """Fills whose ``startPosition`` follows each (trader, coin) position: integer sizes make the
    positions return to flat and flip often, so there are many round trips."""
    n = len(traders) * days * FILLS_PER_DAY
    trader = np.repeat(np.arange(len(traders)), days * FILLS_PER_DAY)
    day = np.tile(np.repeat(np.arange(days), FILLS_PER_DAY), len(traders))
    start = np.datetime64(FIRST_DAY.isoformat(), "us")
    time_us = start + (day * 86_400_000_000 + rng.integers(0, 86_400_000_000, n)).astype("timedelta64[us]")
    side_b = rng.random(n) < 0.5
    df = pl.DataFrame(
        {
            "ethAddress": np.array(traders)[trader],
            "coin": np.array(COINS)[(trader + rng.integers(0, 3, n)) % len(COINS)],
            "time": time_us,
            "tid": np.arange(n, dtype=np.int64),
            "side": np.where(side_b, "B", "A"),
            "sz": rng.integers(1, 4, n).astype(np.int64),
            "px": np.round(100 + rng.normal(0, 5, n), 2),
            "crossed": rng.random(n) < 0.6,
            "pnl": np.round(rng.normal(0, 10, n), 2),
        }
    ).with_columns(pl.col("time").dt.replace_time_zone("UTC"))
    signed = pl.when(pl.col("side") == "B").then(pl.col("sz")).otherwise(-pl.col("sz"))
    df = (
        df.sort("ethAddress", "coin", "time", "tid")
        .with_columns(startPosition=signed.cum_sum().shift(1, fill_value=0).over("ethAddress", "coin"))
        .with_columns(
            closedPnl=pl.when((pl.col("startPosition") * signed) < 0).then(pl.col("pnl")).otherwise(0.0),
            notionalUsd=pl.col("px") * pl.col("sz"),
        )
    )
    return df.with_columns(
        oid=pl.col("tid") // 2,
        dex=pl.lit(""),
        dir=pl.lit("Open Long"),
        isMaker=~pl.col("crossed"),
        fee=(pl.col("notionalUsd") * 0.00035).round(6),
        feeToken=pl.lit("USDC"),
        source=pl.when(pl.col("tid") % 50 == 0).then(pl.lit("rest")).otherwise(pl.lit("ws")),
        observedAt=pl.col("time") + pl.duration(seconds=1),
        createdAt=pl.col("time") + pl.duration(seconds=2),
    ).with_columns(feeUsd=pl.col("fee"))


def _lifecycles(rng: np.random.Generator, traders: list[str], days: int) -> pl.DataFrame:
    """Chains placed each day; a tenth still open at the day's end, closed in the next partition."""
    n = len(traders) * days * CHAINS_PER_DAY
    trader = np.repeat(np.arange(len(traders)), days * CHAINS_PER_DAY)
    day = np.tile(np.repeat(np.arange(days), CHAINS_PER_DAY), len(traders))
    start = np.datetime64(FIRST_DAY.isoformat(), "us")
    placed = start + (day * 86_400_000_000 + rng.integers(0, 86_400_000_000, n)).astype("timedelta64[us]")
    outcome = np.array(["filled", "canceled", "open"])[rng.choice(3, n, p=[0.45, 0.45, 0.10])]
    to_fill = rng.exponential(300e6, n).astype("timedelta64[us]")
    df = pl.DataFrame(
        {
            "ethAddress": np.array(traders)[trader],
            "rootOid": np.arange(n, dtype=np.int64) + 10**9,
            "placedAt": placed,
            "outcome": outcome,
            "firstFillAt": np.where(outcome == "filled", placed + to_fill, np.datetime64("NaT")),
            "distanceBps": np.round(rng.normal(10, 20, n), 3),
            "seenInEvents": rng.random(n) < 0.95,
            "modified": rng.random(n) < 0.2,
            "partition": day,
        }
    ).with_columns(
        pl.col("placedAt", "firstFillAt").dt.replace_time_zone("UTC"),
        oid=pl.when("modified").then(pl.col("rootOid") + 10**10).otherwise("rootOid"),
        coin=pl.lit("BTC"),
        firstSeenAt=pl.col("placedAt"),
    ).with_columns(oids=pl.concat_list("rootOid", "oid").list.unique().list.sort())
    df = df.with_columns(
        closedAt=pl.when(pl.col("outcome") != "open").then(pl.col("placedAt") + pl.duration(seconds=600))
    )
    still_open = df.filter(pl.col("outcome") == "open", pl.col("partition") + 1 < days)
    closed_next = still_open.with_columns(
        outcome=pl.lit("canceled"),
        partition=pl.col("partition") + 1,
        closedAt=pl.col("placedAt").dt.truncate("1d") + pl.duration(days=1, hours=1),
    )
    return pl.concat([df, closed_next])


def _per_trader_day(rng: np.random.Generator, traders: list[str], days: int, per: int) -> pl.DataFrame:
    n = len(traders) * days * per
    return pl.DataFrame(
        {
            "ethAddress": np.repeat(np.array(traders), days * per),
            "partition": np.tile(np.repeat(np.arange(days), per), len(traders)),
            "k": np.tile(np.arange(per), len(traders) * days),
            "r": rng.random(n),
        }
    )


def _positions(rng: np.random.Generator, traders: list[str], days: int) -> pl.DataFrame:
    """Two positions per trader and day, changed at 12:00; one in ten isolated."""
    base = _per_trader_day(rng, traders, days, 2)
    return base.with_columns(
        coin=pl.Series(np.array(COINS)[base["k"].to_numpy()]),
        dex=pl.lit(""),
        szi=(pl.col("r") * 10 - 5).round(3),
        entryPx=(100 + pl.col("r") * 10).round(2),
        positionValue=(pl.col("r") * 1000).round(2),
        unrealizedPnl=(pl.col("r") * 20 - 10).round(2),
        leverage=(pl.col("r") * 20).cast(pl.Int64) + 1,
        leverageType=pl.when(pl.col("r") < 0.1).then(pl.lit("isolated")).otherwise(pl.lit("cross")),
        updatedAt=pl.lit(datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, 12, tzinfo=UTC))
        + pl.duration(days=pl.col("partition")),
    ).with_columns(
        side=pl.when(pl.col("szi") > 0).then(pl.lit("long")).otherwise(pl.lit("short")),
        serverTime=pl.col("updatedAt") - pl.duration(milliseconds=300),
    )


def _account_days(rng: np.random.Generator, traders: list[str], days: int) -> pl.DataFrame:
    """One main-dex row per trader and day. The last sample is at 23:59 for half of them (after the
    marks, at 23:00: the positions are valued at the sample), at 22:00 for most others (the marks
    are newer) and at 11:00 for one in twenty (before the positions' last change)."""
    base = _per_trader_day(rng, traders, days, 1)
    last = pl.when(pl.col("r") >= 0.5).then(1439).when(pl.col("r") >= 0.05).then(1320).otherwise(660)
    walk = (10_000 * np.exp(np.cumsum(rng.normal(0, 0.03, (len(traders), days)), axis=1))).ravel()
    first = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC)
    return base.with_columns(
        dex=pl.lit(""),
        day=pl.lit(FIRST_DAY) + pl.duration(days=pl.col("partition")),
        samples=pl.lit(1440),
        firstAt=pl.lit(first) + pl.duration(days=pl.col("partition")),
        lastAt=pl.lit(first) + pl.duration(days=pl.col("partition"), minutes=last),
        openValue=pl.Series(walk) * 0.99,
        closeValue=pl.Series(walk),
        highValue=pl.Series(walk) * (1 + pl.col("r") * 0.05),
        lowValue=pl.Series(walk) * (1 - pl.col("r") * 0.05),
        maxDrawdown=pl.col("r") * 0.05,
        closeNtlPos=pl.Series(walk) * 2,
        closeRawUsd=pl.Series(walk) - 50 + pl.col("r") * 100,
    )


def build(root: Path, days: int, traders_n: int = TRADERS, seed: int = 7) -> str:
    """Write ``days`` days of the four tables for ``traders_n`` traders under ``root``; returns the last day."""
    rng = np.random.default_rng(seed)
    traders = [f"0x{i:040x}" for i in range(traders_n)]
    store = ParquetStore(data_dir=str(root))
    fills = _fills(rng, traders, days).with_columns(
        partition=(pl.col("time").dt.date() - pl.lit(FIRST_DAY)).dt.total_days()
    )
    frames = {
        "fills": fills,
        "order_lifecycles": _lifecycles(rng, traders, days),
        "positions_snapshot": _positions(rng, traders, days),
        "trader_account_days": _account_days(rng, traders, days),
    }
    for table, df in frames.items():
        typed = _conform(df, table).with_columns(partition=df["partition"])
        for (i,), part in typed.partition_by("partition", as_dict=True).items():
            store.write(table, _day(int(i)), part.drop("partition"))  # type: ignore[call-overload]
    return _day(days - 1)


def marks(day: str) -> pl.DataFrame:
    _, end = day_bounds(day)
    at = end - timedelta(hours=1)
    return pl.DataFrame(
        {"coin": list(COINS), "markPx": ["101.5", "99.0", "100.25", "102.0", "98.5"], "at": [at] * len(COINS)},
        schema=MARKS_SCHEMA,
    )


def with_polars(root: Path, day: str) -> pl.DataFrame:
    store = ParquetStore(data_dir=str(root))
    return trader_scorecards(
        day,
        fills=store.scan_until("fills", day),
        lifecycles=store.scan_until("order_lifecycles", day, partition_day="partitionDay"),
        positions=store.scan_until("positions_snapshot", day, partition_day="partitionDay"),
        account_days=store.scan_until("trader_account_days", day),
        marks=marks(day),
    )


SQL = """
WITH
fills AS (SELECT * FROM read_parquet('{root}/fills/*/*.parquet') WHERE time < $end),
lc AS (
  SELECT *, CAST(regexp_extract(filename, 'date=([0-9-]+)', 1) AS DATE) AS partitionDay
  FROM read_parquet('{root}/order_lifecycles/*/*.parquet', filename = true)
  WHERE CAST(regexp_extract(filename, 'date=([0-9-]+)', 1) AS DATE) <= $day),
pos AS (
  SELECT *, CAST(regexp_extract(filename, 'date=([0-9-]+)', 1) AS DATE) AS partitionDay
  FROM read_parquet('{root}/positions_snapshot/*/*.parquet', filename = true)
  WHERE CAST(regexp_extract(filename, 'date=([0-9-]+)', 1) AS DATE) <= $day),
acct AS (SELECT * FROM read_parquet('{root}/trader_account_days/*/*.parquet') WHERE day <= $day),
followed AS (
  SELECT ethAddress, min(seen) AS followedSince FROM (
    SELECT ethAddress, CASE WHEN source = 'rest' THEN coalesce(observedAt, createdAt) ELSE time END AS seen FROM fills
    UNION ALL SELECT ethAddress, firstSeenAt FROM lc WHERE seenInEvents
    UNION ALL SELECT ethAddress, firstAt FROM acct)
  GROUP BY ethAddress HAVING min(seen) IS NOT NULL),
windows AS (
  SELECT ethAddress, followedSince, w.win, $end - to_days(w.days) AS windowStart
  FROM followed CROSS JOIN (VALUES ('1d', 1), ('7d', 7), ('30d', 30)) AS w(win, days)
  UNION ALL SELECT ethAddress, followedSince, 'followed' AS win, followedSince FROM followed),
fill_fig AS (
  SELECT w.ethAddress, w.win, count(*) AS fills, sum(notionalUsd) AS volumeUsd, sum(closedPnl) AS realizedPnl,
         coalesce(sum(feeUsd), 0) AS fees,
         coalesce(sum(notionalUsd) FILTER (WHERE isMaker), 0) / sum(notionalUsd) AS makerShare
  FROM windows w JOIN fills f ON f.ethAddress = w.ethAddress AND f.time >= w.windowStart AND f.time < $end
  GROUP BY ALL),
signs AS (
  SELECT ethAddress, coin, time, tid, closedPnl, sign(startPosition) AS s0,
         sign(startPosition + CASE WHEN side = 'B' THEN sz ELSE -sz END) AS e0
  FROM fills WHERE dir NOT IN ('Buy', 'Sell')),
steps AS (
  SELECT *, s0 = 0 AND e0 <> 0 AS opens, s0 * e0 < 0 AS flip, s0 <> 0 AND e0 <> s0 AS closes FROM signs),
numbered AS (
  SELECT *, sum(CASE WHEN opens OR flip THEN 1 ELSE 0 END)
              OVER (PARTITION BY ethAddress, coin ORDER BY time, tid ROWS UNBOUNDED PRECEDING) AS trip
  FROM steps),
opened AS (SELECT ethAddress, coin, trip, time AS openAt FROM numbered WHERE opens OR flip),
closed AS (
  SELECT ethAddress, coin, trip - CAST(flip AS INTEGER) AS pnlTrip, sum(closedPnl) AS pnl,
         min(time) FILTER (WHERE closes) AS closeAt
  FROM numbered GROUP BY ALL HAVING min(time) FILTER (WHERE closes) IS NOT NULL),
trips AS (
  SELECT c.ethAddress, c.closeAt, o.openAt, CAST(c.pnl AS DOUBLE) AS pnl
  FROM closed c JOIN opened o ON o.ethAddress = c.ethAddress AND o.coin = c.coin AND o.trip = c.pnlTrip),
trip_fig AS (
  SELECT w.ethAddress, w.win, count(*) AS roundTrips, count(*) FILTER (WHERE pnl > 0) AS wins,
         CASE WHEN -coalesce(sum(pnl) FILTER (WHERE pnl < 0), 0) > 0
              THEN coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0) / -sum(pnl) FILTER (WHERE pnl < 0) END
           AS profitFactor,
         avg(epoch_us(closeAt) - epoch_us(openAt)) / 1e6 AS avgHoldS,
         median(epoch_us(closeAt) - epoch_us(openAt)) / 1e6 AS medianHoldS
  FROM windows w JOIN trips t ON t.ethAddress = w.ethAddress AND t.closeAt >= w.windowStart AND t.closeAt < $end
  GROUP BY ALL),
latest AS (SELECT * FROM lc WHERE seenInEvents AND (closedAt IS NOT NULL OR partitionDay = $day)),
order_fig AS (
  SELECT w.ethAddress, w.win, count(*) AS ordersPlaced,
         avg(CAST(outcome = 'canceled' AS DOUBLE)) AS cancelRatio,
         avg(CAST(oid <> rootOid AS DOUBLE)) AS modifyRate,
         median(epoch_us(firstFillAt) - epoch_us(placedAt)) / 1e6 AS medianTimeToFirstFillS,
         median(distanceBps) AS medianDistanceBps
  FROM windows w JOIN latest l ON l.ethAddress = w.ethAddress AND l.placedAt >= w.windowStart AND l.placedAt < $end
  GROUP BY ALL),
main AS (
  SELECT *, closeValue / lag(closeValue) OVER (PARTITION BY ethAddress ORDER BY day) - 1 AS ret
  FROM acct WHERE dex = ''),
acct_in AS (
  SELECT w.ethAddress, w.win, m.*  EXCLUDE (ethAddress),
         max(highValue) OVER (PARTITION BY w.ethAddress, w.win ORDER BY day
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS priorHigh
  FROM windows w JOIN main m ON m.ethAddress = w.ethAddress AND m.day >= CAST(w.windowStart AS DATE)
                             AND m.day < CAST($end AS DATE)),
acct_fig AS (
  SELECT ethAddress, win, arg_max(closeValue, day) AS accountValue,
         greatest(max(maxDrawdown),
                  max(CASE WHEN priorHigh > 0 THEN greatest(1 - lowValue / priorHigh, 0) ELSE 0 END))
           AS maxDrawdown,
         stddev_samp(ret) AS returnVolatility
  FROM acct_in GROUP BY ALL),
lev_fig AS (
  SELECT w.ethAddress, w.win,
         sum(leverage * abs(CAST(positionValue AS DOUBLE))) / sum(abs(CAST(positionValue AS DOUBLE)))
           AS leverageAvg,
         max(leverage) AS leverageMax
  FROM windows w JOIN pos p ON p.ethAddress = w.ethAddress AND p.partitionDay >= CAST(w.windowStart AS DATE)
                            AND p.partitionDay < CAST($end AS DATE)
  GROUP BY ALL),
pos_marked AS (
  SELECT p.*, m."at", CAST(m.markPx AS DOUBLE) AS mark,
         coalesce(m."at" >= p.updatedAt AND m."at" < $end, false) AS fresh
  FROM pos p LEFT JOIN marks m ON m.coin = p.coin WHERE p.partitionDay = $day),
unreal_dex AS (
  SELECT ethAddress, dex,
         sum(CASE WHEN fresh THEN CAST(szi AS DOUBLE) * (mark - CAST(entryPx AS DOUBLE))
                  ELSE CAST(unrealizedPnl AS DOUBLE) END) AS marked,
         min(CASE WHEN fresh THEN "at" ELSE updatedAt END) AS markedAsOf,
         bool_and(fresh) AS allMarked, bool_and(coalesce(leverageType = 'cross', false)) AS allCross,
         max(serverTime) AS changedAt, sum(CAST(szi AS DOUBLE) * CAST(entryPx AS DOUBLE)) AS entryNtl,
         count(*) AS openPositions
  FROM pos_marked GROUP BY ALL),
unreal_by AS (
  SELECT u.*, a.lastAt, a.closeValue, a.closeRawUsd,
         coalesce(u.allCross AND a.lastAt >= u.changedAt AND a.closeRawUsd IS NOT NULL
                  AND NOT (u.allMarked AND u.markedAsOf > a.lastAt), false) AS bySample
  FROM unreal_dex u LEFT JOIN acct a ON a.ethAddress = u.ethAddress AND a.dex = u.dex AND a.day = $day),
unreal AS (
  SELECT ethAddress,
         sum(CASE WHEN bySample THEN closeValue - closeRawUsd - entryNtl ELSE marked END) AS unrealizedPnl,
         min(CASE WHEN bySample THEN lastAt ELSE markedAsOf END) AS unrealizedAsOf,
         sum(openPositions) AS openPositions
  FROM unreal_by GROUP BY ALL)
SELECT w.ethAddress, w.win AS "window", w.windowStart, $end AS windowEnd, w.followedSince,
       w.followedSince > w.windowStart AS partial,
       coalesce(f.fills, 0) AS fills, coalesce(f.volumeUsd, 0) AS volumeUsd,
       coalesce(f.realizedPnl, 0) AS realizedPnl, coalesce(f.fees, 0) AS fees,
       coalesce(u.unrealizedPnl, 0) AS unrealizedPnl, u.unrealizedAsOf, coalesce(u.openPositions, 0) AS openPositions,
       coalesce(t.roundTrips, 0) AS roundTrips, coalesce(t.wins, 0) AS wins,
       t.wins / t.roundTrips AS winRate, t.profitFactor, t.avgHoldS, t.medianHoldS,
       a.accountValue, a.maxDrawdown, a.returnVolatility, l.leverageAvg, l.leverageMax,
       coalesce(o.ordersPlaced, 0) AS ordersPlaced, o.cancelRatio, o.modifyRate, o.medianTimeToFirstFillS,
       f.makerShare, o.medianDistanceBps, CAST(NULL AS VARCHAR) AS label, CAST([] AS VARCHAR[]) AS tags
FROM windows w
LEFT JOIN fill_fig f USING (ethAddress, win) LEFT JOIN trip_fig t USING (ethAddress, win)
LEFT JOIN order_fig o USING (ethAddress, win) LEFT JOIN acct_fig a USING (ethAddress, win)
LEFT JOIN lev_fig l USING (ethAddress, win) LEFT JOIN unreal u ON u.ethAddress = w.ethAddress
"""


def with_duckdb(root: Path, day: str) -> pl.DataFrame:
    import duckdb

    _, end = day_bounds(day)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("marks", marks(day).to_arrow())
    params = {"end": end, "day": date.fromisoformat(day)}
    got = con.sql(SQL.format(root=f"{root}/parquet"), params=params).to_arrow_table()
    return tables.conform(pl.from_arrow(got), tables.TRADER_SCORECARDS).collect()  # type: ignore[arg-type]


def differences(a: pl.DataFrame, b: pl.DataFrame, key: tuple[str, ...] = ("ethAddress", "window")) -> list[str]:
    """Columns whose values differ (rows sorted by ``key``; floats to 1e-9)."""
    if a.height != b.height:
        return [f"rows: {a.height} vs {b.height}"]
    a, b = (df.sort(key) for df in (a, b))
    out = []
    for col in a.columns:
        x, y = a[col].to_list(), b[col].to_list()
        if a[col].dtype == pl.Float64:
            bad = sum(
                not ((u is None and v is None) or (u is not None and v is not None
                                                   and math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9)))
                for u, v in zip(x, y, strict=True)
            )  # fmt: skip
        else:
            bad = sum(u != v for u, v in zip(x, y, strict=True))
        if bad:
            out.append(f"{col}: {bad} rows")
    return out


BUILDS: dict[str, dict[str, Callable[[Path, str], pl.DataFrame]]] = {
    "scorecards": {"polars": with_polars, "duckdb": with_duckdb},
    "lifecycles": {"polars": lifecycles.with_polars, "duckdb": lifecycles.with_duckdb},
}
KEYS = {"scorecards": ("ethAddress", "window"), "lifecycles": ("ethAddress", "rootOid")}


def timed(root: Path, day: str, table: str, impl: str) -> dict[str, Any]:
    """In this (fresh) process: one build of ``table``; its result goes to ``<root>/<impl>.parquet``."""
    base = psutil.Process().memory_info().rss
    started = time.perf_counter()
    df = BUILDS[table][impl](root, day)
    seconds = time.perf_counter() - started
    peak = peak_rss() - base
    df.write_parquet(root / f"{impl}.parquet")
    return {"seconds": seconds, "rows": df.height, "peak_rss_mib": peak / 2**20}


def _compare(section: Section, root: Path, day: str, table: str, label: str, runs: int) -> dict[str, dict[str, float]]:
    """Median figures of polars and DuckDB building ``table`` over ``root`` (interleaved fresh
    processes), and whether their results are equal."""
    got: dict[str, list[dict[str, Any]]] = {"polars": [], "duckdb": []}
    for _ in range(runs):  # interleaved: both see the same machine noise
        for impl in got:
            got[impl].append(run_child("benchmarks.scorecards", str(root), day, table, impl))
    diff = differences(pl.read_parquet(root / "polars.parquet"), pl.read_parquet(root / "duckdb.parquet"), KEYS[table])
    section.checks[f"duckdb_equal_{table}_{label}"] = not diff
    if diff:
        section.notes.append(f"{table} {label}: polars and DuckDB differ in {', '.join(diff)}")
    return {impl: {k: statistics.median(r[k] for r in g) for k in g[0]} for impl, g in got.items()}


def _report(section: Section, what: str, med: dict[str, dict[str, float]]) -> None:
    p, d = med["polars"], med["duckdb"]
    section.add(f"{what}: polars / DuckDB", f"{p['seconds']:.2f} / {d['seconds']:.2f} s")
    section.add(f"{what}: peak RSS growth polars / DuckDB", f"{p['peak_rss_mib']:.0f} / {d['peak_rss_mib']:.0f} MiB")
    section.ratio(f"{what}: DuckDB / polars time", d["seconds"] / p["seconds"], at_least=1.0)


def run(quick: bool = False) -> Section:
    runs = 1 if quick else RUNS
    sizes = (3, 7) if quick else (7, 30)
    traders = QUICK_TRADERS if quick else TRADERS
    section = Section(
        "scorecards",
        f"Trader scorecards and order lifecycles: {traders} traders, {sizes[0]} and {sizes[1]} days of Parquet; "
        "polars vs DuckDB SQL",
    )
    cards: dict[int, dict[str, dict[str, float]]] = {}
    chains: dict[int, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for days in sizes:
            root, lc_root = Path(tmp) / f"d{days}", Path(tmp) / f"lc{days}"
            day = build(root, days, traders)
            lifecycles.build(lc_root, day, days, traders)
            cards[days] = _compare(section, root, day, "scorecards", f"{days}d", runs)
            chains[days] = _compare(section, lc_root, day, "lifecycles", f"{days}d", runs)
            fills = pl.scan_parquet(f"{root}/parquet/fills/*/*.parquet").select(pl.len()).collect().item()
            section.add(f"{days} days: fills / scorecard rows", f"{fills:,} / {cards[days]['polars']['rows']:,.0f}")
            events = pl.scan_parquet(f"{lc_root}/parquet/order_events/*/*.parquet").select(pl.len()).collect().item()
            section.add(f"{days} days: order events / lifecycle rows on the last day",
                        f"{events:,} / {chains[days]['polars']['rows']:,.0f}")  # fmt: skip
    for days in sizes:
        _report(section, f"{days} days: scorecards", cards[days])
    small, large = sizes
    growth = cards[large]["polars"]["seconds"] / cards[small]["polars"]["seconds"]
    section.ratio(f"scorecards polars growth {small} -> {large} days (data x{large / small:.1f})", growth)
    for days in sizes:
        _report(section, f"{days} days: lifecycles", chains[days])
    section.notes.append(f"median of {runs} fresh processes per figure, polars and DuckDB interleaved")
    return section


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="time one build (child of the scorecards benchmark)")
    parser.add_argument("root", type=Path)
    parser.add_argument("day")
    parser.add_argument("table", choices=sorted(BUILDS))
    parser.add_argument("impl", choices=["polars", "duckdb"])
    args = parser.parse_args()
    print(json.dumps(timed(args.root, args.day, args.table, args.impl)))
