"""Run the real collector service in-process against real loopback servers, for tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymongo

from collector_service.config import load_settings
from collector_service.service import Service
from exchange_sim import ExchangeSim
from exchange_sim.truth import Report, compare


def collector_settings(sim: ExchangeSim, mongo_uri: str, db: str, data_dir: Path, users: list[str],
                       **overrides: Any) -> Any:
    """Settings pointing the collector at a simulator and a database, with test-speed timings."""
    values: dict[str, Any] = {
        "mongo_uri": mongo_uri,
        "mongo_db": db,
        "hyperliquid_ws_url": sim.ws_url,
        "hyperliquid_info_url": sim.info_url,
        "trader_addresses": ",".join(users),
        "trader_orders_ws_flush_interval": 0.2,
        "collector_data_dir": data_dir,
        "collector_health_port": 0,
        "trader_ws_clients": 2,
    }
    values.update(overrides)
    return load_settings(**values)


class RunningCollector:
    """``async with RunningCollector(settings) as c:`` runs ``Service.run`` until the block ends."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.service = Service(settings)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[int] | None = None

    async def __aenter__(self) -> RunningCollector:
        self.task = asyncio.create_task(self.service.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        assert await asyncio.wait_for(self.task, 30) == 0


async def eventually(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def settled(db: pymongo.database.Database, sim: ExchangeSim, truth: Path, *runs: RunningCollector,
                  timeout: float = 60.0) -> Report:
    """Wait (trading stopped) until the store matches the exchange's ground truth for its
    traders and the collectors owe it nothing (no gap to recover, no journaled operation to
    write); return the last comparison, for the caller to assert on. Closes can still come
    just after the stop and are seen one push later, so no momentary state of the collector
    alone (no unknown outcome, an empty journal) says it has caught up."""
    deadline = time.monotonic() + timeout
    while True:
        sim.recorder.flush()
        report = await asyncio.to_thread(compare, db.trader_orders, truth, None, sim.addresses)
        idle = all(not run.service.pipeline.gaps and run.service.writer.pending_ops == 0 for run in runs)
        if (report.ok and report.capture_rate == 1.0 and idle) or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.5)


def events_of(db: pymongo.database.Database, user: str, oid: int) -> list[tuple[str, str]]:
    """(eventKey, finalStatus-or-source) of one order's events, in seq order."""
    docs = db.trader_orders.find({"ethAddress": user, "oid": oid}).sort("seq", 1)
    return [(d["eventKey"], d.get("finalStatus", d["source"])) for d in docs]
