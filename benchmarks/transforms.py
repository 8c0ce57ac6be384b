"""Benchmark 4: the Dagster transforms on 1M and 10M synthetic events read from Parquet.

Each transform runs in a fresh process (seconds and peak RSS growth from ``VmHWM``), reading the
Parquet file lazily as the assets do; the polars figures are medians of ``RUNS`` such processes
(sub-second runs on a shared machine are noisy). The pure-Python reference
(:mod:`benchmarks.reference`) runs on the 1M file only (10M would take many minutes and gigabytes
of dicts); its time excludes turning Parquet into dicts, which flatters it: that time is reported
next to it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import psutil

from benchmarks import reference
from benchmarks.events import DAY, write_events
from benchmarks.measure import peak_rss, run_child
from benchmarks.report import Section
from orderwatch_dagster.transforms.alerts import large_change_alerts
from orderwatch_dagster.transforms.daily_stats import trader_daily_stats
from orderwatch_dagster.transforms.lifecycles import order_lifecycles

FAST: dict[str, Callable[[pl.LazyFrame, str], pl.DataFrame]] = {
    "order_lifecycles": order_lifecycles,
    "large_change_alerts": large_change_alerts,
    "trader_daily_stats": trader_daily_stats,
}
SLOW: dict[str, Callable[[list[dict[str, Any]], str], list[dict[str, Any]]]] = {
    "order_lifecycles": reference.order_lifecycles,
    "large_change_alerts": reference.large_change_alerts,
    "trader_daily_stats": reference.trader_daily_stats,
}
RUNS = 3
"""Fresh processes per polars figure (the median is reported)."""
COMPARED = {
    "order_lifecycles": ["ethAddress", "rootOid", "oid", "dex", "coin", "outcome", "placedAt", "closedAt",
                         "amendCount", "nUpdates", "nPriceChanges", "origSz", "lastSz", "filledSzEvents", "durationS",
                         "parentOid", "maxNotionalUsd", "recovered"],
    "large_change_alerts": ["alertKey", "reason", "notionalBeforeUsd", "notionalAfterUsd", "replacesOid", "dex"],
    "trader_daily_stats": ["ethAddress", "nEvents", "ordersPlaced", "ordersAmended", "amends", "ordersFilled",
                           "ordersCanceled", "ordersRejected", "openOrdersAtEnd", "medianTimeToFillS",
                           "medianTimeToCancelS", "notionalPlacedUsd", "coinsTraded"],
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


def same_rows(fast: list[dict[str, Any]], slow: list[dict[str, Any]], name: str) -> bool:
    """The compared columns agree row by row (rows sorted by their unique key; floats to 1e-9)."""
    cols = COMPARED[name]
    a, b = (sorted((tuple(r[c] for c in cols) for r in rows), key=lambda t: t[:2]) for rows in (fast, slow))
    return len(a) == len(b) and all(
        _same(x, y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)
    )


def agree(path: Path, day: str = DAY) -> dict[str, bool]:
    """Per transform: do polars and the pure-Python reference give the same rows?"""
    events = pl.read_parquet(path)
    dicts = events.to_dicts()
    return {
        name: same_rows(FAST[name](events.lazy(), day).to_dicts(), SLOW[name](dicts, day), name)
        for name in FAST
    }


def timed(path: Path, name: str, impl: str, day: str = DAY) -> dict[str, float]:
    """In this (fresh) process: seconds for one transform and this process's peak RSS."""
    base = psutil.Process().memory_info().rss
    load_seconds = 0.0
    if impl == "polars":
        started = time.perf_counter()
        rows = FAST[name](pl.scan_parquet(path), day).height
    else:
        started = time.perf_counter()
        dicts = pl.read_parquet(path).to_dicts()
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        rows = len(SLOW[name](dicts, day))
    seconds = time.perf_counter() - started
    peak = peak_rss() - base
    return {"seconds": seconds, "load_seconds": load_seconds, "rows": rows, "peak_rss_mib": peak / 2**20}


def median_run(path: Path, name: str, runs: int) -> dict[str, float]:
    """The median seconds and peak RSS growth of ``runs`` fresh polars processes."""
    got = [run_child("benchmarks.transforms", str(path), name, "polars") for _ in range(runs)]
    return {key: statistics.median(g[key] for g in got) for key in ("seconds", "rows", "peak_rss_mib")}


def run(quick: bool = False) -> Section:
    section = Section("transforms", "4. Dagster transforms (Parquet -> tables)")
    small, large = (20_000, 200_000) if quick else (1_000_000, 10_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        files = {n: Path(tmp) / f"events_{n}.parquet" for n in (small, large)}
        sizes = {n: write_events(p, n) for n, p in files.items()}
        for name, ok in agree(files[small] if quick else _sample(files[small], Path(tmp))).items():
            section.checks[f"{name}_matches_reference"] = ok
        for name in FAST:
            t = {n: median_run(p, name, 1 if quick else RUNS) for n, p in files.items()}
            py = run_child("benchmarks.transforms", str(files[small]), name, "python")
            s_small, s_large = t[small]["seconds"], t[large]["seconds"]
            section.add(f"{name}: polars {sizes[small]:,} / {sizes[large]:,} events",
                        f"{s_small:.2f} s / {s_large:.2f} s")
            section.add(f"{name}: peak RSS growth polars {small:,} / {large:,} / python {small:,}",
                        f"{t[small]['peak_rss_mib']:.0f} / {t[large]['peak_rss_mib']:.0f} / "
                        f"{py['peak_rss_mib']:.0f} MiB")
            section.add(f"{name}: pure Python {sizes[small]:,} events (+ Parquet -> dicts, not counted)",
                        f"{py['seconds']:.2f} s (+ {py['load_seconds']:.2f} s)")
            section.ratio(f"{name}: python / polars at {small:,}", py["seconds"] / s_small, at_least=20)
            section.ratio(f"{name}: time {large:,} / {small:,}", s_large / s_small, at_most=12)
            section.checks[f"{name}_rows_match"] = py["rows"] == t[small]["rows"]
    section.notes.append(f"day {DAY}; events span {3} days so orders cross days; polars times include the Parquet scan")
    section.notes.append(f"polars: median of {1 if quick else RUNS} fresh processes per figure; pure Python: one")
    return section


def _sample(path: Path, tmp: Path) -> Path:
    """The first 100k rows (by time) of a file: the agreement check on realistic data, quickly."""
    out = tmp / "sample.parquet"
    pl.read_parquet(path).head(100_000).write_parquet(out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="time one transform (child of benchmark 4)")
    parser.add_argument("events", type=Path)
    parser.add_argument("name", choices=sorted(FAST))
    parser.add_argument("impl", choices=["polars", "python"])
    args = parser.parse_args()
    print(json.dumps(timed(args.events, args.name, args.impl)))
