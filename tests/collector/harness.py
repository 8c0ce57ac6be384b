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


def events_of(db: pymongo.database.Database, user: str, oid: int) -> list[tuple[str, str]]:
    """(eventKey, finalStatus-or-source) of one order's events, in seq order."""
    docs = db.trader_orders.find({"ethAddress": user, "oid": oid}).sort("seq", 1)
    return [(d["eventKey"], d.get("finalStatus", d["source"])) for d in docs]
