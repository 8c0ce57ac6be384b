"""Chaos options fire and are counted; a random market runs and keeps its invariants."""

from __future__ import annotations

import asyncio
import contextlib
import json

import aiohttp
from websockets.exceptions import ConnectionClosed

from exchange_sim import ChaosConfig, ExchangeSim, SimConfig
from tests.exchange_sim.conftest import WAIT_S, connect, sub


def test_chaos_spec_parses() -> None:
    c = ChaosConfig.parse("disconnect=30,expire=120,duplicate=0.01,malformed=0.5,slow=0.05:2,refuse=60:5,burst429=60:3")
    assert (c.disconnect_every, c.expire_every, c.duplicate_prob, c.malformed_prob) == (30.0, 120.0, 0.01, 0.5)
    assert (c.slow_prob, c.slow_delay, c.refuse_every, c.refuse_for) == (0.05, 2.0, 60.0, 5.0)
    assert (c.burst429_every, c.burst429_for) == (60.0, 3.0)
    assert not ChaosConfig().enabled


async def test_duplicate_and_malformed_frames_and_429_bursts() -> None:
    chaos = ChaosConfig(duplicate_prob=1.0, malformed_prob=1.0, burst429_every=0.05, burst429_for=0.5)
    async with ExchangeSim(SimConfig(traders=1, push_interval=0.1, chaos=chaos)) as sim:
        async with connect(sim) as ws:
            await ws.send(sub("openOrders", sim.addresses[0]))
            texts = [await asyncio.wait_for(ws.recv(), WAIT_S) for _ in range(6)]
        bad = 0
        for t in texts:
            try:
                json.loads(t)
            except ValueError:
                bad += 1
        assert bad >= 1
        assert sim.stats.chaos_events["duplicate_frame"] >= 1
        await sim.wait_until(lambda: "info_429_burst" in sim.stats.chaos_events, timeout=WAIT_S)
        async with (
            aiohttp.ClientSession() as s,
            s.post(sim.info_url, json={"type": "clearinghouseState", "user": sim.addresses[0]}) as r,
        ):
            assert r.status == 429


async def test_random_market_serves_consistent_snapshots() -> None:
    cfg = SimConfig(traders=5, orders_per_trader_per_min=600, speed=1, push_interval=0.2)  # 50 orders a second
    async with ExchangeSim(cfg) as sim, connect(sim) as ws:
        for u in sim.addresses:
            await ws.send(sub("openOrders", u))
        seen: set[int] = set()
        async with asyncio.timeout(3 * WAIT_S):  # a few seconds of trading, however slow the machine
            while len(seen) < 20:
                msg = json.loads(await ws.recv())
                if msg["channel"] == "openOrders":
                    top = {o["oid"] for o in msg["data"]["orders"]}
                    kids = {c["oid"] for o in msg["data"]["orders"] for c in o["children"]}
                    assert kids <= top  # children are also listed top-level
                    seen |= top
        assert sum(sim.exchange.status_counts.values()) > 20


async def test_random_disconnects_and_refusals_fire() -> None:
    chaos = ChaosConfig(disconnect_every=0.05, refuse_every=0.05, refuse_for=0.05)
    async with ExchangeSim(SimConfig(traders=1, push_interval=0.1, chaos=chaos)) as sim:
        await sim.wait_until(lambda: "refuse_connections" in sim.stats.chaos_events)
        for _ in range(20):
            try:
                ws = await connect(sim)
            except Exception:  # a refusal window (503) may be open
                await asyncio.sleep(0.05)
                continue
            with contextlib.suppress(ConnectionClosed):  # chaos may have dropped it already
                await ws.send(sub("openOrders", sim.addresses[0]))
            await sim.wait_until(lambda: sim.stats.chaos_events.get("disconnect", 0) >= 1)
            await ws.close()
            break
        assert sim.stats.chaos_events["disconnect"] >= 1
