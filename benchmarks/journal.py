"""Benchmark: what the journal's fsync policy (``COLLECTOR_JOURNAL_FSYNC_INTERVAL``) costs.

Appends batches of real-shaped order events to a journal in a temporary folder on the disk the
benchmark runs from (put ``TMPDIR`` on the collector's data disk to measure that one), as the
writer does for every snapshot that changed something, under three policies: fsync every append
(interval 0), at most once a second (the default), and never within the run (only when the
segment is sealed). Figures: microseconds per append and appends per second, median of a few
runs; the cost of an fsync is the disk's, so it differs between machines and disks.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.report import Section
from collector_service.events.tracker import build_event
from collector_service.events.wire import FrontendOrder
from collector_service.journal import Journal
from collector_service.store import order_ops

POLICIES = {"every append (0)": 0.0, "once a second (1, default)": 1.0, "only when sealed": 3600.0}
EVENTS_PER_APPEND = 4  # a snapshot that changed: a few events


def batch(n: int) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    order = FrontendOrder(coin="BTC", side="B", limitPx="50000.0", sz="0.1", oid=300_000_000_000, timestamp=1,
                          origSz="0.1", orderType="Limit", tif="Gtc")
    events = [build_event("0x" + "ab" * 20, order, "new", 0, dex="", source="ws", observed_at=now, server_time=now)
              for _ in range(n)]
    return order_ops(events)


def per_append_us(folder: Path, interval: float, appends: int) -> float:
    journal = Journal(folder, fsync_interval=interval)
    ops = batch(EVENTS_PER_APPEND)
    started = time.perf_counter()
    for _ in range(appends):
        journal.append(ops)
    journal.rotate()
    elapsed = time.perf_counter() - started
    for path in journal.sealed():
        Journal.remove(path)
    return elapsed / appends * 1e6


def run(quick: bool = False) -> Section:
    section = Section("journal", "Journal appends by fsync policy")
    appends = 200 if quick else 2_000
    with tempfile.TemporaryDirectory(prefix="ow-journal-") as tmp:
        for label, interval in POLICIES.items():
            runs = [per_append_us(Path(tmp) / f"{interval}-{i}", interval, appends) for i in range(3)]
            us = statistics.median(runs)
            section.add(f"{label}: us per append of {EVENTS_PER_APPEND} events", f"{us:,.0f}")
            section.add(f"{label}: appends per second", f"{1e6 / us:,.0f}")
        section.checks["appends read back"] = _reads_back(Path(tmp) / "check")
    section.notes.append(f"{appends} appends of {EVENTS_PER_APPEND} events per run, median of 3 runs, folder {tmp}")
    return section


def _reads_back(folder: Path) -> bool:
    journal = Journal(folder, fsync_interval=0.0)
    journal.append(batch(EVENTS_PER_APPEND))
    journal.rotate()
    (segment,) = journal.sealed()
    return len(list(Journal.read(segment))) == EVENTS_PER_APPEND
