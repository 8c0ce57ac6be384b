"""WebSocket protocol rules against a real websockets client on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from exchange_sim import ExchangeSim, SimConfig
from tests.conftest import FIXTURES
from tests.exchange_sim.conftest import START_MS, WAIT_S, connect, quiet_for, recv_channel, recv_json, sub


async def test_subscribe_ack_snapshot_unsubscribe_pong_and_errors(sim: ExchangeSim) -> None:
    user = sim.addresses[0]
    oid = sim.place(user.upper().replace("0X", "0x"), "BTC", "B", "0.01", "100000.0")
    async with connect(sim) as ws:
        await ws.send(sub("openOrders", user.upper().replace("0X", "0x")))
        ack = await recv_json(ws)
        assert ack == {
            "channel": "subscriptionResponse",
            "data": {"method": "subscribe", "subscription": {"type": "openOrders", "user": user, "dex": ""}},
        }
        snap = await recv_json(ws)
        assert snap["channel"] == "openOrders"
        assert (snap["data"]["dex"], snap["data"]["user"]) == ("", user)
        assert [o["oid"] for o in snap["data"]["orders"]] == [oid]

        await ws.send(sub("openOrders", user, dex=""))
        err = await recv_channel(ws, "error")
        assert err["data"].startswith("Already subscribed: ")

        await ws.send(json.dumps({"method": "ping"}))
        assert await recv_channel(ws, "pong") == {"channel": "pong"}

        for bad in ("not json", '{"method":"subscribe","subscription":{"type":"nope","user":"x"}}'):
            await ws.send(bad)
            err = await recv_channel(ws, "error")
            assert err["data"] == f"Error parsing JSON into valid websocket request: {bad}"

        await ws.send(json.dumps({"method": "unsubscribe", "subscription": {"type": "openOrders", "user": user}}))
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["method"] == "unsubscribe"
        assert sim.ip_stats("127.0.0.1") == {"connections": 1, "subscriptions": 0, "users": 0}


async def test_pushes_follow_changes() -> None:
    # no periodic round within the test: every frame after the snapshots is a change push
    async with ExchangeSim(SimConfig(traders=3, push_interval=60.0, start_time_ms=START_MS)) as sim, connect(sim) as ws:
        user = sim.addresses[1]
        await ws.send(sub("clearinghouseState", user))
        await ws.send(sub("openOrders", user))
        first = await recv_channel(ws, "clearinghouseState")
        assert set(first["data"]) == {"dex", "user", "clearinghouseState"}
        real = json.loads((FIXTURES / "hyperliquid" / "clearinghouseState_rest_response.json").read_text())
        assert set(first["data"]["clearinghouseState"]) == set(real)
        await recv_channel(ws, "openOrders")
        oid = sim.place(user, "ETH", "A", "0.5", "2600.0")
        frame = await recv_channel(ws, "openOrders")
        assert [o["oid"] for o in frame["data"]["orders"]] == [oid]
        sim.fill(oid, "0.2")
        pushed: dict[str, dict] = {}  # the fill's change push: both feeds of the user, in either order
        while len(pushed) < 2:
            msg = await recv_json(ws)
            pushed[msg["channel"]] = msg
        frame, state = pushed["openOrders"], pushed["clearinghouseState"]
        assert (frame["data"]["orders"][0]["sz"], frame["data"]["orders"][0]["origSz"]) == ("0.3", "0.5")
        pos = state["data"]["clearinghouseState"]["assetPositions"][0]["position"]
        assert (pos["coin"], pos["szi"]) == ("ETH", "-0.2")


async def test_a_stop_that_comes_as_a_change_is_pushed_ends_the_push_loop() -> None:
    # the simulator stops (cancels its push loop) in the loop iteration where a change woke the
    # loop: it must end, not drop the cancel (seen as a simulator whose stop hung until the timeout)
    async with ExchangeSim(SimConfig(traders=1, push_interval=600.0)) as sim:
        push = next(t for t in sim._tasks if t.get_coro().__name__ == "_push_loop")  # type: ignore[union-attr]
        await asyncio.sleep(0.2)  # waiting for a change or the next full push, 600 s away
        sim._dirty_event.set()  # a change ...
        push.cancel()  # ... and the stop in the same iteration
        done, _ = await asyncio.wait({push}, timeout=WAIT_S)
        assert push in done and push.cancelled(), "the push loop went on after it was cancelled"


async def test_pushes_repeat_periodically(sim: ExchangeSim) -> None:
    user = sim.addresses[1]
    sim.place(user, "ETH", "A", "0.5", "2600.0")
    async with connect(sim) as ws:
        await ws.send(sub("openOrders", user))
        snapshot = await recv_channel(ws, "openOrders")
        rounds = sim.stats.push_rounds
        # nothing changes: the next frames are the periodic re-push (every 0.3 s here)
        again = [await recv_channel(ws, "openOrders") for _ in range(2)]
        assert again == [snapshot, snapshot] and sim.stats.push_rounds >= rounds + 2


async def test_webdata2_frame_is_full_size_with_the_real_keys(sim: ExchangeSim) -> None:
    user = sim.addresses[2]
    sim.place(user, "BTC", "B", "0.01", "100000.0", tp_px="110000", sl_px="95000")
    real = json.loads(
        (FIXTURES / "hyperliquid" / "webData2_ws_capture_subscribe_snapshot_unsubscribe.json").read_text()
    )[1]
    async with connect(sim) as ws:
        await ws.send(sub("webData2", user))
        ack = await recv_json(ws)
        assert ack["data"]["subscription"] == {"type": "webData2", "user": user}
        raw = await asyncio.wait_for(ws.recv(), WAIT_S)
        assert len(raw) > 90_000
        data = json.loads(raw)["data"]
        assert set(real["data"]) - set(data) <= {"spotState", "perpsAtOpenInterestCap"}
        assert data["user"] == user
        assert data["serverTime"] == data["clearinghouseState"]["time"]
        assert len(data["openOrders"]) == 3 and len(data["openOrders"][2]["children"]) == 2
        assert data["meta"] == real["data"]["meta"]


async def test_user_cap_is_per_ip_across_connections_and_each_ip_has_its_own(sim: ExchangeSim) -> None:
    users = sim.addresses
    async with connect(sim, "127.0.0.2") as a, connect(sim, "127.0.0.2") as b, connect(sim, "127.0.0.3") as c:
        for u in users[:5]:
            await a.send(sub("openOrders", u))
        for u in users[5:10]:
            await b.send(sub("openOrders", u))
            await b.send(sub("clearinghouseState", u))  # same user again: no new slot
        await sim.wait_until(lambda: sim.ip_stats("127.0.0.2")["subscriptions"] == 15)
        await b.send(sub("openOrders", users[10]))
        err = await recv_channel(b, "error")
        assert err["data"] == "Cannot track more than 10 total users."
        await asyncio.sleep(0.1)
        assert sim.ip_stats("127.0.0.2") == {"connections": 2, "subscriptions": 15, "users": 10}
        for u in users[10:20]:  # a second source IP gets its own 10
            await c.send(sub("openOrders", u))
        await sim.wait_until(lambda: sim.ip_stats("127.0.0.3")["users"] == 10)
        await a.close()
        await sim.wait_until(lambda: sim.ip_stats("127.0.0.2")["users"] == 5)
        await b.send(sub("openOrders", users[10]))
        ack = await recv_channel(b, "subscriptionResponse")
        assert ack["data"]["subscription"]["user"] == users[10]


async def test_user_cap_is_configurable_and_says_the_number() -> None:
    async with ExchangeSim(SimConfig(max_users_per_ip=2, traders=3)) as sim, connect(sim) as ws:
        for u in sim.addresses:
            await ws.send(sub("openOrders", u))
        err = await recv_channel(ws, "error")
        assert err["data"] == "Cannot track more than 2 total users."


async def test_connection_cap_per_ip(sim: ExchangeSim) -> None:
    conns = [await connect(sim, "127.0.0.4") for _ in range(10)]
    try:
        with pytest.raises(InvalidStatus) as info:
            await connect(sim, "127.0.0.4")
        assert info.value.response.status_code == 429
        async with connect(sim, "127.0.0.5"):
            pass
    finally:
        for ws in conns:
            await ws.close()


async def test_subscription_and_message_caps() -> None:
    cfg = SimConfig(traders=5, max_subscriptions_per_ip=3, max_messages_per_min=6)
    async with ExchangeSim(cfg) as sim, connect(sim) as ws:
        for u in sim.addresses[:4]:
            await ws.send(sub("clearinghouseState", u))
        err = await recv_channel(ws, "error")
        assert err["data"] == "Cannot subscribe to more than 3 channels."
        for _ in range(3):
            await ws.send(json.dumps({"method": "ping"}))
        err = await recv_channel(ws, "error")
        assert err["data"] == "Cannot send more than 6 messages per minute."


async def test_idle_timeout_closes_a_silent_connection_but_pongs_keep_it() -> None:
    # pings 0.15 s apart against a 2 s timeout: a busy machine may delay one, not by 2 s
    cfg = SimConfig(traders=1, idle_timeout=2.0, push_interval=30)
    async with ExchangeSim(cfg) as sim:
        async with connect(sim) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT_S)
        async with connect(sim) as ws:
            loop = asyncio.get_running_loop()
            until = loop.time() + 3 * cfg.idle_timeout
            while loop.time() < until:
                await ws.send(json.dumps({"method": "ping"}))
                assert (await recv_json(ws))["channel"] == "pong"
                await asyncio.sleep(0.15)


async def test_connections_expire_with_code_1000_expired() -> None:
    cfg = SimConfig(traders=1, max_connection_age=0.3, push_interval=0.1)
    async with ExchangeSim(cfg) as sim, connect(sim) as ws:
        await ws.send(sub("openOrders", sim.addresses[0]))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), WAIT_S)
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "Expired")


async def test_scripted_drops_refusals_and_paused_pushes(sim: ExchangeSim) -> None:
    user = sim.addresses[3]
    async with connect(sim, "127.0.0.6") as ws:
        await ws.send(sub("openOrders", user))
        await recv_channel(ws, "openOrders")
        sim.pause_pushes()
        await asyncio.sleep(0.1)
        sim.place(user, "BTC", "B", "0.01", "90000.0")
        assert await quiet_for(ws, "openOrders", 0.5) == []
        await sim.push_now()
        assert len((await recv_channel(ws, "openOrders"))["data"]["orders"]) == 1
        sim.resume_pushes()
        assert sim.drop_connections(ip="127.0.0.6") == 1
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), WAIT_S)
    sim.refuse_connections(WAIT_S)
    with pytest.raises(InvalidStatus) as info:
        await connect(sim)
    assert info.value.response.status_code == 503
    sim.refuse_connections(0)  # a window that has passed: connections are welcome again
    async with websockets.connect(sim.ws_url):
        pass
    assert sim.stats.connections_refused >= 1


async def test_start_time_drives_server_time(sim: ExchangeSim) -> None:
    async with connect(sim) as ws:
        await ws.send(sub("clearinghouseState", sim.addresses[0]))
        frame = await recv_channel(ws, "clearinghouseState")
        assert START_MS <= frame["data"]["clearinghouseState"]["time"] < START_MS + 60_000
