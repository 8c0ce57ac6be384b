"""POST /info: shapes against the real samples, and the per-IP REST weight budget."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from exchange_sim import ExchangeSim, SimConfig
from tests.conftest import FIXTURES


def sample(name: str) -> Any:
    return json.loads((FIXTURES / "hyperliquid" / name).read_text())


async def post(session: aiohttp.ClientSession, sim: ExchangeSim, body: dict[str, Any]) -> Any:
    async with session.post(sim.info_url, json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_info_shapes_match_the_real_samples(sim: ExchangeSim) -> None:
    u = sim.addresses[0]
    parent = sim.place(u, "INJ", "B", "12.5", "10.0", tp_px="10.004", sl_px="9.995", cloid="0x" + "1" * 32)
    placed = sim.place(u, "BTC", "A", "0.01", "110000.0")
    gone = sim.amend(placed, sz="0.02")  # cancel-and-replace: a new oid
    sim.cancel(gone)
    ioc = sim.place(u, "TON", "B", "81.7", "3.2502", tif="Ioc")
    filled = sim.place(u, "ETH", "B", "1.0", "2500.0")
    sim.fill(filled, "0.4")
    async with aiohttp.ClientSession() as s:
        fo = await post(s, sim, {"type": "frontendOpenOrders", "user": u})
        real_fo = sample("frontendOpenOrders_rest_response_with_tpsl_children.json")
        assert all(set(real_fo[0]) <= set(o) for o in fo)
        assert sum(len(o["children"]) for o in fo) == 2
        hist = await post(s, sim, {"type": "historicalOrders", "user": u})
        real_h = sample("historicalOrders_rest_response_trimmed.json")
        assert all(set(h) == set(real_h[0]) and set(real_h[0]["order"]) <= set(h["order"]) for h in hist)
        assert [h["status"] for h in hist if h["order"]["oid"] == gone] == ["canceled", "open"]
        assert [h["status"] for h in hist if h["order"]["oid"] == placed] == ["canceled", "open"]
        assert [h["status"] for h in hist if h["order"]["oid"] == ioc] == ["iocCancelRejected"]
        st = await post(s, sim, {"type": "orderStatus", "user": u, "oid": gone})
        assert st["status"] == "order"
        assert set(st["order"]) == {"order", "status", "statusTimestamp"}
        assert (st["order"]["status"], st["order"]["order"]["origSz"]) == ("canceled", "0.02")
        by_cloid = await post(s, sim, {"type": "orderStatus", "user": u, "oid": "0x" + "1" * 32})
        assert by_cloid["order"]["order"]["oid"] == parent
        other = "0x" + "0" * 40
        assert await post(s, sim, {"type": "orderStatus", "user": other, "oid": gone}) == {"status": "unknownOid"}
        oo = await post(s, sim, {"type": "openOrders", "user": u})
        assert {"coin", "limitPx", "oid", "side", "sz", "timestamp"} <= set(oo[0])
        assert len(oo) == len(fo)
        ch = await post(s, sim, {"type": "clearinghouseState", "user": u})
        real_ch = sample("clearinghouseState_rest_response.json")
        assert set(ch) == set(real_ch)
        assert set(ch["assetPositions"][0]["position"]) == set(real_ch["assetPositions"][0]["position"])
        fills = await post(s, sim, {"type": "userFills", "user": u})
        assert [f["oid"] for f in fills] == [filled]
        assert {
            "coin",
            "px",
            "sz",
            "side",
            "time",
            "startPosition",
            "dir",
            "closedPnl",
            "hash",
            "oid",
            "crossed",
            "fee",
            "tid",
            "feeToken",
        } <= set(fills[0])
        by_time = await post(s, sim, {"type": "userFillsByTime", "user": u, "startTime": fills[0]["time"]})
        assert by_time == fills
        async with s.post(sim.info_url, json={"type": "nope"}) as r:
            assert r.status == 422


async def test_rest_weight_budget_per_ip_answers_429() -> None:
    async with ExchangeSim(SimConfig(traders=1, rest_weight_per_min=100)) as sim, aiohttp.ClientSession() as s:
        u = sim.addresses[0]
        for _ in range(5):  # 5 x 20 = the whole budget
            await post(s, sim, {"type": "frontendOpenOrders", "user": u})
        async with s.post(sim.info_url, json={"type": "frontendOpenOrders", "user": u}) as r:
            assert r.status == 429
        async with s.post(sim.info_url, json={"type": "clearinghouseState", "user": u}) as r:
            assert r.status == 429
        # Another source IP has its own budget.
        conn = aiohttp.TCPConnector(local_addr=("127.0.0.7", 0))
        async with aiohttp.ClientSession(connector=conn) as s2:
            await post(s2, sim, {"type": "clearinghouseState", "user": u})
        assert sim.stats.rest_429 == 2


async def test_list_endpoints_cost_one_more_per_20_items() -> None:
    async with ExchangeSim(SimConfig(traders=1, rest_weight_per_min=60)) as sim, aiohttp.ClientSession() as s:
        u = sim.addresses[0]
        for _ in range(40):
            sim.cancel(sim.place(u, "BTC", "B", "0.01", "90000.0"))
        hist = await post(s, sim, {"type": "historicalOrders", "user": u})
        assert len(hist) == 80  # weight 20 + 80 // 20 = 24
        await post(s, sim, {"type": "historicalOrders", "user": u})  # 48
        async with s.post(sim.info_url, json={"type": "historicalOrders", "user": u}) as r:
            assert r.status == 429  # 48 + 20 > 60
        await post(s, sim, {"type": "orderStatus", "user": u, "oid": 1})  # weight 2 still fits
