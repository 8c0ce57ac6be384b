"""The simulator's mark prices: the public activeAssetCtx feed and scripted mark moves."""

from __future__ import annotations

import json
from decimal import Decimal

from exchange_sim import ExchangeSim, SimConfig
from exchange_sim.config import marks_path_for
from exchange_sim.truth import load_marks
from tests.exchange_sim.conftest import START_MS, connect, quiet_for, recv_channel, recv_json, sub

CTX_KEYS = {"funding", "openInterest", "prevDayPx", "dayNtlVlm", "premium", "oraclePx", "markPx", "midPx",
            "impactPxs", "dayBaseVlm"}


def ctx_sub(coin: str, method: str = "subscribe") -> str:
    return json.dumps({"method": method, "subscription": {"type": "activeAssetCtx", "coin": coin}})


async def test_active_asset_ctx_ack_snapshot_mark_move_push_and_no_user_slot() -> None:
    cfg = SimConfig(traders=12, push_interval=30.0, start_time_ms=START_MS)  # no periodic round
    async with ExchangeSim(cfg) as sim, connect(sim) as ws:
        for user in sim.addresses[:10]:
            await ws.send(sub("clearinghouseState", user))
        await ws.send(ctx_sub("BTC"))
        ack = await recv_channel(ws, "subscriptionResponse")
        while ack["data"]["subscription"]["type"] != "activeAssetCtx":
            ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"] == {"method": "subscribe", "subscription": {"type": "activeAssetCtx", "coin": "BTC"}}
        snap = await recv_channel(ws, "activeAssetCtx")
        assert snap["data"]["coin"] == "BTC" and set(snap["data"]["ctx"]) == CTX_KEYS
        captured = sim.market.asset_ctxs[[m["name"] for m in sim.market.meta["universe"]].index("BTC")]
        assert snap["data"]["ctx"] == captured  # the real capture's context until the mark moves
        assert sim.ip_stats("127.0.0.1") == {"connections": 1, "subscriptions": 11, "users": 10}

        holder = sim.addresses[0]
        sim.place(holder, "BTC", "B", "0.5", "107840", tif="Ioc", fill_immediately=True)
        assert sim.set_mark("BTC", "100000") == []  # not near its liquidation price
        got: dict[str, dict] = {}  # the mark's push and the holder's state, in either order
        while len(got) < 2:
            msg = await recv_json(ws)
            if msg["channel"] == "activeAssetCtx" or (
                    msg["channel"] == "clearinghouseState" and msg["data"]["user"] == holder
                    and msg["data"]["clearinghouseState"]["assetPositions"]):
                got[msg["channel"]] = msg["data"]
        assert got["activeAssetCtx"]["ctx"]["markPx"] == "100000.0"
        position = got["clearinghouseState"]["clearinghouseState"]["assetPositions"][0]["position"]
        assert position["positionValue"] == "50000.0"  # 0.5 x the new mark
        sim.set_mark("ETH", "1000")  # another coin: no BTC context
        assert await quiet_for(ws, "activeAssetCtx", 0.3) == []

        await ws.send(ctx_sub("BTC", "unsubscribe"))
        assert (await recv_channel(ws, "subscriptionResponse"))["data"]["method"] == "unsubscribe"
        await ws.send(ctx_sub("PURR/USDC"))  # spot is served on activeSpotAssetCtx: not simulated
        assert (await recv_channel(ws, "error"))["data"].startswith("Error parsing JSON into valid websocket request")
        await ws.send(ctx_sub("xyz:TSLA"))
        await recv_channel(ws, "subscriptionResponse")
        tsla = await recv_json(ws)
        assert tsla["channel"] == "activeAssetCtx" and tsla["data"]["ctx"]["markPx"] == "251.37"


def btc_position(sim: ExchangeSim, user: str) -> dict | None:
    state = sim.exchange.clearinghouse_state(user)
    held = [p["position"] for p in state["assetPositions"] if p["position"]["coin"] == "BTC"]
    return held[0] if held else None


async def test_a_mark_pushed_towards_the_liquidation_price_liquidates_the_position() -> None:
    async with ExchangeSim(SimConfig(traders=2, push_interval=30.0, start_time_ms=START_MS)) as sim:
        whale, other = sim.addresses
        sim.set_mark("BTC", "100000")
        sim.place(whale, "BTC", "B", "0.5", "100000", tif="Ioc", fill_immediately=True)
        sim.place(other, "BTC", "B", "0.01", "100000", tif="Ioc", fill_immediately=True)  # far from its edge
        state = sim.exchange.clearinghouse_state(whale)
        position = btc_position(sim, whale)
        assert position is not None
        # cross: liq = mark - side x (account value - maintenance) / |szi| / (1 - 1 / (2 x maxLeverage))
        account = Decimal(state["marginSummary"]["accountValue"])
        maintenance = Decimal("50000") / 80  # 0.5 x 100000 at BTC's max leverage 40
        assert Decimal(state["crossMaintenanceMarginUsed"]) == maintenance
        expected = Decimal(100000) - (account - maintenance) / Decimal("0.5") / (1 - Decimal(1) / 80)
        assert abs(Decimal(position["liquidationPx"]) - expected) <= 1
        liq = Decimal(position["liquidationPx"])

        distances = []
        for mark in ("90000", "85000", "82000"):  # pushed towards the edge: the distance shrinks
            assert sim.set_mark("BTC", mark) == []
            held = btc_position(sim, whale)
            assert held is not None and held["szi"] == "0.5"
            distances.append((Decimal(mark) - Decimal(held["liquidationPx"])) / Decimal(mark))
        assert distances == sorted(distances, reverse=True) and 0 < distances[-1] < Decimal("0.03")

        (oid,) = sim.set_mark("BTC", str(liq - 100))  # past the edge: liquidated at the mark
        assert btc_position(sim, whale) is None and btc_position(sim, other) is not None
        order = sim.order(oid)
        assert (order.tif, order.order_type, order.reduce_only, order.status) == (
            "LiquidationMarket", "Market", True, "filled")
        fill = sim.exchange.user_fills(whale)[0]
        assert fill["oid"] == oid and fill["dir"] == "Close Long" and fill["sz"] == "0.5"
        assert fill["liquidation"] == {"liquidatedUser": whale, "markPx": fill["px"], "method": "market"}
        assert Decimal(fill["closedPnl"]) == Decimal("0.5") * (Decimal(fill["px"]) - Decimal(100000))
        assert "liquidation" not in sim.exchange.user_fills(other)[0]


async def test_mark_moves_are_ground_truth_with_their_time(tmp_path) -> None:
    truth = tmp_path / "truth.jsonl"
    async with ExchangeSim(SimConfig(traders=1, push_interval=30.0, start_time_ms=START_MS, truth_file=truth)) as sim:
        sim.hold_clock(True)
        sim.set_mark("BTC", "100000")
        sim.tick(60_000)
        sim.set_mark("ETH", "2500.50")
    assert load_marks(marks_path_for(truth)) == [(START_MS, "BTC", "100000.0"), (START_MS + 60_000, "ETH", "2500.5")]
