"""The simulator's mark prices: the public activeAssetCtx feed and scripted mark moves."""

from __future__ import annotations

import json

from exchange_sim import ExchangeSim, SimConfig
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
        sim.place(holder, "BTC", "B", "0.5", "200000", tif="Ioc", fill_immediately=True)
        sim.set_mark("BTC", "90000")
        got: dict[str, dict] = {}  # the mark's push and the holder's state, in either order
        while len(got) < 2:
            msg = await recv_json(ws)
            if msg["channel"] == "activeAssetCtx" or (
                    msg["channel"] == "clearinghouseState" and msg["data"]["user"] == holder
                    and msg["data"]["clearinghouseState"]["assetPositions"]):
                got[msg["channel"]] = msg["data"]
        assert got["activeAssetCtx"]["ctx"]["markPx"] == "90000.0"
        position = got["clearinghouseState"]["clearinghouseState"]["assetPositions"][0]["position"]
        assert position["positionValue"] == "45000.0"  # 0.5 x the new mark
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
