"""The collector's counters and gauges: one set of numbers behind both ``/healthz`` (JSON) and
``/metrics`` (Prometheus text)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry


@dataclass
class Stats:
    """Plain counters updated by the service; read by the health endpoint at request time."""

    started_at: float = field(default_factory=time.time)
    frames: Counter[str] = field(default_factory=Counter)
    frames_unchanged: int = 0
    frames_stale: int = 0
    frames_not_ours: int = 0
    bad_frames: Counter[str] = field(default_factory=Counter)
    events_built: Counter[str] = field(default_factory=Counter)
    events_written: Counter[str] = field(default_factory=Counter)
    events_duplicate: int = 0
    replacements: Counter[str] = field(default_factory=Counter)
    positions_written: int = 0
    accounts_written: int = 0
    marks_written: int = 0
    fills_written: int = 0
    twaps_written: int = 0
    fills_duplicate: int = 0
    final_statuses_resolved: int = 0
    outcomes_from_feed: int = 0  # final statuses the orderUpdates feed told (no info call)
    flushes: int = 0
    flush_errors: int = 0
    journal_corrupt_records: int = 0  # cut out of the journal at start (kept in side files)
    last_message_at: float | None = None
    reconnects: Counter[str] = field(default_factory=Counter)
    connections_up: Counter[str] = field(default_factory=Counter)
    connections_planned: Counter[str] = field(default_factory=Counter)
    exchange_errors: Counter[str] = field(default_factory=Counter)
    rest_calls: Counter[str] = field(default_factory=Counter)
    rest_errors: Counter[str] = field(default_factory=Counter)
    polls: Counter[str] = field(default_factory=Counter)
    recoveries_truncated: Counter[str] = field(default_factory=Counter)  # by trader

    def message_age(self) -> float | None:
        return None if self.last_message_at is None else max(0.0, time.time() - self.last_message_at)


class StatsCollector(Collector):
    """Expose :class:`Stats` and live gauges (read through callables) to Prometheus."""

    def __init__(self, stats: Stats, gauges: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats
        self.gauges = gauges

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self.stats

        def counter(name: str, doc: str, label: str | None, values: Counter[str] | int) -> CounterMetricFamily:
            family = CounterMetricFamily(f"orderwatch_{name}", doc, labels=[label] if label else None)
            if isinstance(values, Counter):
                for key, value in sorted(values.items()):
                    family.add_metric([key], value)
            else:
                family.add_metric([], values)
            return family

        yield counter("frames", "WebSocket frames decoded, by channel.", "channel", s.frames)
        yield counter("frames_unchanged", "Snapshots identical to the previous one.", None, s.frames_unchanged)
        yield counter("frames_stale", "Snapshots older than one already applied.", None, s.frames_stale)
        yield counter("bad_frames", "Frames that could not be used, by kind.", "kind", s.bad_frames)
        yield counter("events_built", "Order events detected, by action.", "action", s.events_built)
        yield counter("events_written", "Order events inserted into MongoDB, by action.", "action", s.events_written)
        yield counter("events_duplicate", "Order events MongoDB already had.", None, s.events_duplicate)
        yield counter("replacements", "Modifies (cancel-and-replace) linked in snapshots, by match.", "match",
                      s.replacements)
        yield counter("positions_written", "Position documents inserted.", None, s.positions_written)
        yield counter("accounts_written", "Account samples (trader_accounts) inserted.", None, s.accounts_written)
        yield counter("marks_written", "Mark prices (market_marks) written.", None, s.marks_written)
        yield counter("fills_written", "Fill documents inserted.", None, s.fills_written)
        yield counter("twaps_written", "TWAP status documents inserted.", None, s.twaps_written)
        yield counter("fills_duplicate", "Fills MongoDB already had (re-delivered snapshots, REST overlap).", None,
                      s.fills_duplicate)
        yield counter("final_statuses_resolved", "Closed orders whose final status was recorded.", None,
                      s.final_statuses_resolved)
        yield counter("outcomes_from_feed", "Final statuses learnt from the orderUpdates feed, with no info call.",
                      None, s.outcomes_from_feed)
        yield counter("flushes", "Successful batch writes.", None, s.flushes)
        yield counter("flush_errors", "Failed batch writes (retried).", None, s.flush_errors)
        yield counter("journal_corrupt_records", "Corrupt journal records cut out at start (kept in side files).",
                      None, s.journal_corrupt_records)
        yield counter("reconnects", "WebSocket reconnects, by egress.", "egress", s.reconnects)
        yield counter("exchange_errors", "Error frames from the exchange, by kind.", "kind", s.exchange_errors)
        yield counter("rest_calls", "Info API calls, by type.", "type", s.rest_calls)
        yield counter("rest_errors", "Failed info API calls, by reason.", "reason", s.rest_errors)
        yield counter("polls", "Polling tier: order polls, position polls, sweeps, failures.", "kind", s.polls)
        yield counter("recoveries_truncated", "Recoveries whose historicalOrders answer (newest 2000) began after "
                      "the gap: a stretch not recorded (collector_uncovered), by trader.", "trader",
                      s.recoveries_truncated)
        yield counter("frames_not_ours", "Frames of traders moved off a connection (dropped).", None,
                      s.frames_not_ours)
        for name, value in self.gauges().items():
            label = "stream" if name.startswith("node_") else "egress"  # node gauges are per stream
            family = GaugeMetricFamily(f"orderwatch_{name}", name.replace("_", " ") + ".",
                                       labels=[label] if isinstance(value, dict) else None)
            if isinstance(value, dict):
                for key, item in sorted(value.items()):
                    if item is not None:  # e.g. no polled trader yet: no period to report
                        family.add_metric([key], item)
            elif value is not None:
                family.add_metric([], value)
            yield family


def registry_for(stats: Stats, gauges: Callable[[], dict[str, Any]]) -> CollectorRegistry:
    """A Prometheus registry holding only this service's metrics."""
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats, gauges))
    return registry
