"""The simulator's leaderboard document: the real shape at the real path, and its scripting."""

from __future__ import annotations

import json
from decimal import Decimal

import aiohttp

from exchange_sim import ExchangeSim, SimConfig

WINDOWS = ["day", "week", "month", "allTime"]


async def get(sim: ExchangeSim) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s, s.get(sim.leaderboard_url) as resp:
        return resp.status, await resp.read()


async def test_document_shape_booked_pnl_and_changes() -> None:
    async with ExchangeSim(SimConfig(traders=5, leaderboard_rows=1_000, orders_per_trader_per_min=0)) as sim:
        assert sim.leaderboard_url.endswith("/Mainnet/leaderboard")
        status, body = await get(sim)
        rows = json.loads(body)["leaderboardRows"]
        assert status == 200 and len(rows) == 1_000
        by = {r["ethAddress"]: r for r in rows}
        for r in rows:
            assert set(r) == {"ethAddress", "accountValue", "windowPerformances", "prize", "displayName"}
            assert [w for w, _ in r["windowPerformances"]] == WINDOWS
            assert len(r["accountValue"].split(".")[1]) == 10
        # A simulated trader's windows carry what the exchange booked for it.
        trader = sim.addresses[0]
        before = {w: Decimal(p["pnl"]) for w, p in by[trader]["windowPerformances"]}
        oid = sim.place(trader, "BTC", "B", "0.01", "100000.0")
        sim.fill(oid, "0.01")
        booked = sim._booked(trader)
        now = {r["ethAddress"]: r for r in json.loads(sim.leaderboard.document())["leaderboardRows"]}
        after = {w: Decimal(p["pnl"]) for w, p in now[trader]["windowPerformances"]}
        assert booked[1] == Decimal("1000.0")  # the fill's volume
        assert all(abs(after[w] - before[w] - booked[0]) < Decimal("0.000002") for w in WINDOWS)
        # Changes between snapshots.
        sim.leaderboard.step(churn=0.1)
        sim.leaderboard.vanish([trader])
        sim.leaderboard.appear("0x" + "ab" * 20, "newcomer")
        moved = {r["ethAddress"]: r for r in json.loads((await get(sim))[1])["leaderboardRows"]}
        assert trader not in moved and moved["0x" + "ab" * 20]["displayName"] == "newcomer"
        assert 50 < len(set(by) - set(moved)) < 200 and len(moved) == 1_000
        sim.leaderboard.truncate_next()
        _, cut = await get(sim)
        assert 0 < len(cut) < len(body) * 0.6 and not cut.endswith(b"}")
        sim.leaderboard.limit_next(10)
        assert len(json.loads((await get(sim))[1])["leaderboardRows"]) == 10
        assert len(json.loads((await get(sim))[1])["leaderboardRows"]) == 1_000
