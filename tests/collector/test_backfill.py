"""``python -m collector_service backfill`` against the simulator's info API: history stored once."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from exchange_sim import ExchangeSim, SimConfig


async def _backfill(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector_service", "backfill", env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_backfill_stores_history_once(tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    async with ExchangeSim(SimConfig(traders=2)) as sim:
        alice, bob = sim.addresses
        canceled = sim.place(alice, "BTC", "B", "0.1", "50000")
        sim.cancel(canceled)
        filled = sim.place(bob, "ETH", "A", "1", "3000")
        sim.fill(filled, "0.4")
        sim.fill(filled)
        resting = sim.place(bob, "SOL", "B", "3", "100")
        ioc = sim.place(alice, "BTC", "B", "0.1", "40000", tif="Ioc")
        stopped = sim.start_twap(alice, "BTC", "B", "1", 30)
        sim.terminate_twap(stopped)
        running = sim.start_twap(bob, "ETH", "A", "5", 60)
        env = {
            **os.environ, "MONGO_URI": mongo_uri, "MONGO_DB": mongo_db.name,
            "HYPERLIQUID_INFO_URL": sim.info_url, "TRADER_ADDRESSES": f"{alice},{bob}",
            "COLLECTOR_DATA_DIR": str(tmp_path / "c"),
        }
        code, out = await _backfill(env, tmp_path)
        assert code == 0, out
        assert "Flushed" in out
        first = sorted((d["oid"], d["eventKey"], d.get("finalStatus"), d["source"])
                       for d in mongo_db.trader_orders.find())
        assert first == sorted([
            (canceled, "new", None, "rest"), (canceled, "closed", "canceled", "rest"),
            (filled, "new", None, "rest"), (filled, "closed", "filled", "rest"),
            (resting, "new", None, "rest"),
            (ioc, "new", None, "rest"), (ioc, "closed", "iocCancelRejected", "rest"),
        ])
        assert mongo_db.trader_open_orders.count_documents({}) == 1
        # twapHistory: every status change of their TWAPs (issue 19 item 3)
        twaps = sorted((d["ethAddress"], d["twapId"], d["status"], d["source"], d["sz"])
                       for d in mongo_db.trader_twaps.find())
        assert twaps == sorted([(alice, stopped, "activated", "rest", "1.0"),
                                (alice, stopped, "terminated", "rest", "1.0"),
                                (bob, running, "activated", "rest", "5.0")])

        code, out = await _backfill(env, tmp_path)  # again: nothing new
        assert code == 0, out
        assert mongo_db.trader_orders.count_documents({}) == len(first)
        assert mongo_db.trader_twaps.count_documents({}) == len(twaps)


async def test_backfill_keeps_to_the_followed_dexes(tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    """Issue 20 item 11: with TRADER_DEXES=none, the orders, fills and TWAPs of a HIP-3 dex that
    historicalOrders, userFillsByTime and twapHistory list are not stored."""
    async with ExchangeSim(SimConfig(traders=1)) as sim:
        (alice,) = sim.addresses
        main = sim.place(alice, "BTC", "B", "0.1", "50000")
        sim.fill(main)
        other = sim.place(alice, "xyz:TSLA", "B", "1", "300")
        sim.fill(other)
        on_main, elsewhere = sim.start_twap(alice, "BTC", "B", "1", 30), sim.start_twap(alice, "xyz:TSLA", "B", "5", 30)
        env = {
            **os.environ, "MONGO_URI": mongo_uri, "MONGO_DB": mongo_db.name, "TRADER_DEXES": "none",
            "HYPERLIQUID_INFO_URL": sim.info_url, "TRADER_ADDRESSES": alice, "COLLECTOR_DATA_DIR": str(tmp_path / "c"),
        }
        code, out = await _backfill(env, tmp_path)
        assert code == 0, out
        assert sorted(d["eventKey"] for d in mongo_db.trader_orders.find({"oid": main})) == ["closed", "new"]
        assert mongo_db.trader_orders.count_documents({"oid": other}) == 0
        assert [d["oid"] for d in mongo_db.trader_fills.find()] == [main]
        assert [d["twapId"] for d in mongo_db.trader_twaps.find()] == [on_main] and elsewhere != on_main
