"""Spot pairs (served with the first perp dex) and HIP-3 perp dexes (served per dex)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import aiohttp
import pytest

from exchange_sim import ExchangeSim
from exchange_sim.clock import LogicalClock
from exchange_sim.exchange import Exchange, OrderError
from exchange_sim.market import SAMPLE_NAME, Market, dex_of
from exchange_sim.traders import TraderPool, trader_addresses
from tests.exchange_sim.conftest import START_MS, WAIT_S, connect, recv_channel, sub

U = "0x" + "ef" * 20


def new_exchange() -> Exchange:
    return Exchange(Market.load(), LogicalClock(START_MS))


def test_market_coins_for_spot_and_hip3() -> None:
    m = Market.load()
    capture = json.loads(resources.files("exchange_sim").joinpath("data", SAMPLE_NAME).read_text())[1]["data"]
    marks = {c["coin"]: Decimal(c["markPx"]) for c in capture["spotAssetCtxs"]}
    purr, hype = m.coin("PURR/USDC"), m.coin("@107")
    assert (purr.mark_px, purr.spot, purr.dex, purr.sz_decimals) == (marks["PURR/USDC"], True, "", 0)
    assert (hype.mark_px, hype.spot, hype.sz_decimals) == (marks["@107"], True, 1)
    tsla = m.coin("xyz:TSLA")
    assert (tsla.mark_px, tsla.sz_decimals, tsla.max_leverage, tsla.dex, tsla.spot) == (
        Decimal("251.37"),
        3,
        10,
        "xyz",
        False,
    )
    assert m.coin("flx:OIL").dex == "flx" and set(m.dexes) == {"xyz", "flx"}
    assert m.coin("BTC").dex == "" and not m.coin("BTC").spot
    # spot prices may have 8 - szDecimals decimals, perps 6 - szDecimals
    tiny = m.coin("@2")
    assert m.round_px(tiny, Decimal("0.000114061")) == Decimal("0.00011406")
    assert [dex_of(c) for c in ("BTC", "@107", "PURR/USDC", "xyz:TSLA")] == ["", "", "", "xyz"]
    assert Market.load(hip3_dexes=False).dexes == {}


def test_spot_orders_are_on_the_first_dex_and_fills_make_no_position() -> None:
    ex = new_exchange()
    spot = ex.place(U, "@107", "B", "10", "37.0")
    perp = ex.place(U, "BTC", "B", "0.01", "100000.0")
    hip3 = ex.place(U, "xyz:TSLA", "A", "2", "260.0")
    assert [o["oid"] for o in ex.frontend_open_orders(U)] == [perp.oid, spot.oid]
    assert [o["oid"] for o in ex.frontend_open_orders(U, "")] == [perp.oid, spot.oid]
    assert [o["oid"] for o in ex.frontend_open_orders(U, "xyz")] == [hip3.oid]
    assert ex.frontend_open_orders(U, "flx") == []
    assert {o.oid for o in ex.open_orders(U)} == {spot.oid, perp.oid, hip3.oid}
    ex.fill(spot.oid)
    assert ex.clearinghouse_state(U)["assetPositions"] == []
    (fill,) = ex.user_fills(U)
    assert (fill["coin"], fill["dir"], fill["startPosition"], fill["closedPnl"]) == ("@107", "Buy", "0.0", "0.0")
    assert ex.user(U).spot_balances == {"@107": Decimal("10")}
    with pytest.raises(OrderError):
        ex.place(U, "PURR/USDC", "A", "100", "0.2", reduce_only=True)
    with pytest.raises(OrderError):
        ex.place(U, "PURR/USDC", "B", "100", "0.2", tp_px="0.3")
    with pytest.raises(OrderError):
        ex.place(U, "nope:FOO", "B", "1", "1.0")  # no such perp dex


def test_positions_are_per_dex_clearinghouse() -> None:
    ex = new_exchange()
    ex.fill(ex.place(U, "BTC", "B", "0.01", "100000.0").oid)
    ex.fill(ex.place(U, "xyz:TSLA", "A", "2", "250.0").oid)
    ex.fill(ex.place(U, "xyz:NVDA", "B", "1", "180.0").oid)

    def coins(dex: str) -> dict[str, str]:
        return {
            p["position"]["coin"]: p["position"]["szi"] for p in ex.clearinghouse_state(U, dex=dex)["assetPositions"]
        }

    assert coins("") == {"BTC": "0.01"}
    assert coins("xyz") == {"xyz:TSLA": "-2.0", "xyz:NVDA": "1.0"}
    assert coins("flx") == {}
    assert ex.clearinghouse_state(U, dex="flx")["marginSummary"]["accountValue"] == "0.0"
    xyz = ex.clearinghouse_state(U, dex="xyz")
    assert Decimal(xyz["marginSummary"]["accountValue"]) > 9000  # its own (invented) balance
    assert xyz["assetPositions"][0]["position"]["maxLeverage"] == 10


async def test_ws_frames_carry_each_dex_only(sim: ExchangeSim) -> None:
    u = sim.addresses[0]
    btc = sim.place(u, "BTC", "B", "0.01", "100000.0")
    purr = sim.place(u, "PURR/USDC", "B", "100", "0.19")
    tsla = sim.place(u, "xyz:TSLA", "B", "1", "240.0")
    oil = sim.place(u, "flx:OIL", "A", "3", "80.0")
    sim.fill(tsla)
    sim.fill(btc, "0.004")
    sim.fill(purr)
    subs = [
        ("openOrders", ""),
        ("openOrders", "xyz"),
        ("openOrders", "flx"),
        ("openOrders", "nope"),
        ("clearinghouseState", ""),
        ("clearinghouseState", "xyz"),
        ("clearinghouseState", "flx"),
    ]
    async with connect(sim) as ws:
        for typ, dex in subs:
            await ws.send(sub(typ, u, dex=dex))
        await ws.send(sub("webData2", u))
        got: dict[tuple[str, str], dict[str, Any]] = {}
        async with asyncio.timeout(3):
            while len(got) < len(subs) + 1:
                msg = json.loads(await ws.recv())
                if msg["channel"] in ("openOrders", "clearinghouseState"):
                    assert msg["data"]["user"] == u
                    got[(msg["channel"], msg["data"]["dex"])] = msg["data"]
                elif msg["channel"] == "webData2":
                    got[("webData2", "")] = msg["data"]

        def oids(key: tuple[str, str]) -> list[int]:
            return [o["oid"] for o in got[key]["orders"]]

        def positions(state: dict[str, Any]) -> dict[str, str]:
            return {p["position"]["coin"]: p["position"]["szi"] for p in state["assetPositions"]}

        assert oids(("openOrders", "")) == [btc]  # PURR filled; spot would be listed here
        assert oids(("openOrders", "xyz")) == []
        assert oids(("openOrders", "flx")) == [oil]
        assert oids(("openOrders", "nope")) == []
        assert [o["oid"] for o in got[("webData2", "")]["openOrders"]] == [btc]
        assert positions(got[("clearinghouseState", "")]["clearinghouseState"]) == {"BTC": "0.004"}
        assert positions(got[("clearinghouseState", "xyz")]["clearinghouseState"]) == {"xyz:TSLA": "1.0"}
        assert positions(got[("clearinghouseState", "flx")]["clearinghouseState"]) == {}
        assert positions(got[("webData2", "")]["clearinghouseState"]) == {"BTC": "0.004"}

        # a spot order shows in dex "" frames (openOrders and webData2), never in a HIP-3 one
        spot = sim.place(u, "@107", "A", "5", "40.0")
        nvda = sim.place(u, "xyz:NVDA", "B", "1", "170.0")
        want = {
            ("openOrders", ""): [spot, btc],
            ("webData2", ""): [spot, btc],
            ("openOrders", "xyz"): [nvda],
            ("openOrders", "flx"): [oil],
            ("openOrders", "nope"): [],
        }
        seen: dict[tuple[str, str], list[int]] = {}  # the latest frame of each feed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WAIT_S):
                while seen != want:
                    msg = json.loads(await ws.recv())
                    if msg["channel"] == "openOrders":
                        seen[("openOrders", msg["data"]["dex"])] = [o["oid"] for o in msg["data"]["orders"]]
                    elif msg["channel"] == "webData2":
                        seen[("webData2", "")] = [o["oid"] for o in msg["data"]["openOrders"]]
        assert seen == want
        assert sim.subscribers(u) == 2 and sim.subscribers(u, "xyz") == 1 and sim.subscribers(u, None) == 5


async def test_a_hip3_order_is_never_in_a_main_dex_frame(sim: ExchangeSim) -> None:
    u = sim.addresses[1]
    async with connect(sim) as ws:
        await ws.send(sub("openOrders", u))
        await ws.send(sub("webData2", u))
        await recv_channel(ws, "openOrders")
        sim.place(u, "xyz:GOLD", "B", "0.1", "2400.0")
        frames = [await recv_channel(ws, "openOrders") for _ in range(2)]  # change push, periodic re-push
        assert all(f["data"]["orders"] == [] for f in frames)
        wd2 = await recv_channel(ws, "webData2")
        assert wd2["data"]["openOrders"] == []


async def post(s: aiohttp.ClientSession, sim: ExchangeSim, body: dict[str, Any]) -> Any:
    async with s.post(sim.info_url, json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_info_per_dex_perp_dexs_and_add_dex(sim: ExchangeSim) -> None:
    u = sim.addresses[2]
    async with aiohttp.ClientSession() as s:
        dexs = await post(s, sim, {"type": "perpDexs"})
        assert dexs[0] is None
        assert [d["name"] for d in dexs[1:]] == ["xyz", "flx"]
        assert set(dexs[1]) == {"name", "fullName", "deployer", "oracleUpdater", "feeRecipient"}
        assert dexs[1]["deployer"].startswith("0x") and len(dexs[1]["deployer"]) == 42

        sim.add_dex("abc", {"FOO": "12.5", "abc:BAR": 3})
        dexs = await post(s, sim, {"type": "perpDexs"})
        assert [d["name"] for d in dexs[1:]] == ["xyz", "flx", "abc"]
        with pytest.raises(ValueError):
            sim.add_dex("abc", {"X": 1})
        foo = sim.place(u, "abc:FOO", "B", "2", "12.0")
        spot = sim.place(u, "PURR/USDC", "A", "100", "0.2")
        perp = sim.place(u, "ETH", "B", "0.1", "2500.0")
        sim.fill(foo)
        again = sim.place(u, "abc:BAR", "A", "1", "3.5")

        fo = await post(s, sim, {"type": "frontendOpenOrders", "user": u})
        assert [o["oid"] for o in fo] == [perp, spot]
        assert [o["oid"] for o in await post(s, sim, {"type": "frontendOpenOrders", "user": u, "dex": "abc"})] == [
            again
        ]
        assert [o["oid"] for o in await post(s, sim, {"type": "openOrders", "user": u, "dex": ""})] == [perp, spot]
        assert [o["oid"] for o in await post(s, sim, {"type": "openOrders", "user": u, "dex": "abc"})] == [again]
        assert await post(s, sim, {"type": "openOrders", "user": u, "dex": "zzz"}) == []
        main = await post(s, sim, {"type": "clearinghouseState", "user": u})
        abc = await post(s, sim, {"type": "clearinghouseState", "user": u, "dex": "abc"})
        assert main["assetPositions"] == []
        assert [(p["position"]["coin"], p["position"]["szi"]) for p in abc["assetPositions"]] == [("abc:FOO", "2.0")]
        # per user across all dexes
        hist = await post(s, sim, {"type": "historicalOrders", "user": u})
        assert {h["order"]["coin"] for h in hist} == {"abc:FOO", "abc:BAR", "PURR/USDC", "ETH"}
        fills = await post(s, sim, {"type": "userFills", "user": u})
        assert [f["coin"] for f in fills] == ["abc:FOO"]
        st = await post(s, sim, {"type": "orderStatus", "user": u, "oid": again})
        assert st["order"]["order"]["coin"] == "abc:BAR"

        meta = await post(s, sim, {"type": "meta", "dex": "xyz"})
        assert [c["name"] for c in meta["universe"]] == ["xyz:TSLA", "xyz:NVDA", "xyz:GOLD"]
        assert meta["universe"][0]["szDecimals"] == 3
        mac = await post(s, sim, {"type": "metaAndAssetCtxs", "dex": "abc"})
        assert [c["name"] for c in mac[0]["universe"]] == ["abc:FOO", "abc:BAR"]
        assert [c["markPx"] for c in mac[1]] == ["12.5", "3"]
        assert (await post(s, sim, {"type": "meta"}))["universe"][0]["name"] == "BTC"
        mids = await post(s, sim, {"type": "allMids", "dex": "xyz"})
        assert set(mids) == {"xyz:TSLA", "xyz:NVDA", "xyz:GOLD"}
        main_mids = await post(s, sim, {"type": "allMids"})
        assert "BTC" in main_mids and "PURR/USDC" in main_mids and "@107" in main_mids
        assert not any(":" in c for c in main_mids)
        async with s.post(sim.info_url, json={"type": "meta", "dex": "zzz"}) as r:
            assert r.status == 422


async def test_user_cap_counts_unique_users_across_dex_subscriptions(sim: ExchangeSim) -> None:
    users = sim.addresses
    async with connect(sim, "127.0.0.8") as a, connect(sim, "127.0.0.8") as b:
        for u in users[:10]:
            for dex in ("", "xyz", "flx"):
                for typ in ("openOrders", "clearinghouseState"):
                    await (a if dex != "flx" else b).send(sub(typ, u, dex=dex))
        await sim.wait_until(lambda: sim.ip_stats("127.0.0.8")["subscriptions"] == 60)
        assert sim.ip_stats("127.0.0.8") == {"connections": 2, "subscriptions": 60, "users": 10}
        await b.send(sub("openOrders", users[10], dex="xyz"))
        err = await recv_channel(b, "error")
        assert err["data"] == "Cannot track more than 10 total users."
        await asyncio.sleep(0.1)
        assert sim.ip_stats("127.0.0.8")["subscriptions"] == 60
        # dropping one user's dex subscriptions frees the slot only when all of them are gone
        for dex in ("", "xyz"):
            for typ in ("openOrders", "clearinghouseState"):
                await a.send(
                    json.dumps({"method": "unsubscribe", "subscription": {"type": typ, "user": users[0], "dex": dex}})
                )
        await sim.wait_until(lambda: sim.ip_stats("127.0.0.8")["subscriptions"] == 56)
        assert sim.ip_stats("127.0.0.8")["users"] == 10
        await a.send(sub("openOrders", users[10]))
        assert (await recv_channel(a, "error"))["data"] == "Cannot track more than 10 total users."
        await b.close()
        await sim.wait_until(lambda: sim.ip_stats("127.0.0.8")["users"] == 9)
        await a.send(sub("openOrders", users[10]))
        ack = await recv_channel(a, "subscriptionResponse")
        assert ack["data"]["subscription"]["user"] == users[10]


def test_random_traders_have_styles_and_trade_spot_and_hip3() -> None:
    ex = new_exchange()
    addresses = trader_addresses(11, 20)
    pool = TraderPool(ex, addresses, 11, orders_per_trader_per_min=120)
    for _ in range(1500):
        pool.tick(100)
    algo = {t.address for t in pool.traders if t.algorithmic}
    assert len(algo) == 10  # exactly half, chosen by the seed
    # placements: orders the traders sent (not TP/SL children, not modify replacements)
    placed = [o for o in ex.orders.values() if o.parent is None and o.oid not in ex.replaced]
    by_algo = [o for o in placed if o.user in algo]
    manual = [o for o in placed if o.user not in algo]
    assert manual and all(o.cloid is None for o in manual)
    share = sum(o.cloid is not None for o in by_algo) / len(by_algo)
    assert 0.9 < share < 0.99, share
    spot = [o for o in placed if ex.market.coin(o.coin).spot]
    hip3 = [o for o in placed if o.dex != ""]
    n = len(placed)
    assert 0.06 < len(spot) / n < 0.14 and 0.11 < len(hip3) / n < 0.19, (n, len(spot) / n, len(hip3) / n)
    assert {o.dex for o in hip3} == {"xyz", "flx"}
    assert not any(o.reduce_only or o.children for o in spot)
    # amends stay frequent and are cancel-and-replace; the replacement keeps the cloid
    assert len(ex.replaced) > n / 20
    assert all(ex.orders[new].cloid == ex.orders[old].cloid for new, old in ex.replaced.items())
    assert all(ex.orders[old].status == "canceled" for old in ex.replaced.values())
    for u in addresses:
        assert all(not ex.market.coin(c).spot for c in ex.user(u).positions)
