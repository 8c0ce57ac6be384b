"""Fills: maker/taker fees, the userFills WS subscription, userFillsByTime paging, fill truth."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from exchange_sim import ChaosConfig, ExchangeSim, FillReport, SimConfig, compare_fills
from exchange_sim.clock import LogicalClock
from exchange_sim.exchange import Exchange
from exchange_sim.fill_truth import load_fills
from exchange_sim.market import Market
from exchange_sim.truth import load_truth
from tests.exchange_sim.conftest import START_MS, WAIT_S, connect, quiet_for, recv_channel, recv_json, sub

U = "0x" + "cd" * 20
CLOID = "0x" + "ab" * 16
REST_FILL_KEYS = [
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
    "twapId",
]


def new_exchange() -> Exchange:
    return Exchange(Market.load(), LogicalClock(START_MS))


def unsub(typ: str, user: str, **extra: Any) -> str:
    return json.dumps({"method": "unsubscribe", "subscription": {"type": typ, "user": user, **extra}})


async def post(session: aiohttp.ClientSession, sim: ExchangeSim, body: dict[str, Any]) -> Any:
    async with session.post(sim.info_url, json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


# ----- the exchange: maker vs taker, cloid, partial fills ------------------------------------


def test_resting_fills_are_maker_and_crossing_fills_are_taker() -> None:
    ex = new_exchange()
    rest = ex.place(U, "ETH", "B", "1.0", "2500.0", cloid=CLOID)
    ex.fill(rest.oid, "0.4")  # a partial fill of a resting order: one fill
    ex.fill(rest.oid)  # the rest: a second fill
    ex.place(U, "ETH", "A", "0.2", "2600.0", tif="Ioc", fill_immediately=True)
    trig = ex.place(U, "ETH", "A", "0.1", 0, trigger_px="2400.0", tpsl="sl")
    ex.trigger(trig.oid)
    spot = ex.place(U, "@107", "B", "2.0", "40.0")
    ex.fill(spot.oid)
    f1, f2, ioc, trg, sp = ex.user(U).fills
    assert [(f["oid"], f["sz"]) for f in (f1, f2)] == [(rest.oid, "0.4"), (rest.oid, "0.6")]
    assert (f1["crossed"], f1["fee"]) == (False, "0.1")  # 0.4 * 2500 * 0.0001
    assert (f2["crossed"], f2["fee"]) == (False, "0.15")
    assert (ioc["crossed"], ioc["fee"]) == (True, "0.182")  # 0.2 * 2600 * 0.00035
    assert (trg["crossed"], trg["fee"]) == (True, "0.084")  # 0.1 * 2400 * 0.00035
    assert (sp["crossed"], sp["fee"]) == (False, "0.008")  # 2 * 40 * 0.0001
    # the cloid only on fills of an order that has one, after tid as in a node's fills output
    assert list(f1) == [*REST_FILL_KEYS[:13], "cloid", *REST_FILL_KEYS[13:]]
    assert (f1["cloid"], f2["cloid"]) == (CLOID, CLOID)
    assert list(ioc) == REST_FILL_KEYS
    # the main-dex realized PnL is charged the perp fees actually paid (spot has its own balances)
    perp = (f1, f2, ioc, trg)
    assert ex.user(U).realized == sum(Decimal(f["closedPnl"]) - Decimal(f["fee"]) for f in perp)
    assert ex.user(U).fills_total == 5
    assert ex.fills_after(U, 3) == ([trg, sp], 5)
    assert ex.fills_after(U, 5) == ([], 5)


def test_fill_listeners_see_every_fill() -> None:
    ex = new_exchange()
    seen: list[tuple[str, int]] = []
    ex.fill_listeners.append(lambda user, fill: seen.append((user, fill["tid"])))
    o = ex.place(U.upper().replace("0X", "0x"), "BTC", "B", "0.02", "100000.0")
    ex.fill(o.oid, "0.01")
    ex.fill(o.oid)
    assert seen == [(U, f["tid"]) for f in ex.user(U).fills]
    assert len(seen) == 2


# ----- the userFills WebSocket subscription --------------------------------------------------


async def test_user_fills_snapshot_then_each_new_fill_once(sim: ExchangeSim) -> None:
    user = sim.addresses[0]
    old = sim.place(user, "BTC", "B", "0.02", "100000.0")
    sim.fill(old, "0.01")
    sim.place(user, "SOL", "A", "3.0", "150.0", tif="Ioc", fill_immediately=True)
    async with connect(sim) as ws:
        await ws.send(sub("userFills", user.upper().replace("0X", "0x")))
        ack = await recv_json(ws)
        assert ack == {
            "channel": "subscriptionResponse",
            "data": {
                "method": "subscribe",
                "subscription": {"type": "userFills", "user": user, "aggregateByTime": False},
            },
        }
        snap = await recv_json(ws)  # the frame right after the ack
        assert snap["channel"] == "userFills"
        assert list(snap["data"]) == ["isSnapshot", "user", "fills"]
        assert (snap["data"]["isSnapshot"], snap["data"]["user"]) == (True, user)
        async with aiohttp.ClientSession() as s:
            rest = await post(s, sim, {"type": "userFills", "user": user})
        assert snap["data"]["fills"] == rest  # newest first, the REST shape
        assert [f["coin"] for f in rest] == ["SOL", "BTC"]

        maker = sim.place(user, "ETH", "B", "1.0", "2500.0", cloid=CLOID)
        sim.fill(maker, "0.4")
        partial = await recv_channel(ws, "userFills")  # a change push, not the re-push
        assert "isSnapshot" not in partial["data"]
        assert partial["data"]["user"] == user
        (f,) = partial["data"]["fills"]
        assert (f["oid"], f["sz"], f["px"], f["crossed"], f["fee"], f["cloid"]) == (
            maker,
            "0.4",
            "2500.0",
            False,
            "0.1",
            CLOID,
        )
        sim.fill(maker)
        full = await recv_channel(ws, "userFills")
        (g,) = full["data"]["fills"]
        assert (g["oid"], g["sz"], g["startPosition"], g["tid"] > f["tid"]) == (maker, "0.6", "0.4", True)
        assert sim.order(maker).status == "filled"

        # fills made before one push round come in one frame, oldest first
        taker = sim.place(user, "ETH", "A", "0.5", "2490.0", tif="Ioc", fill_immediately=True)
        two = sim.place(user, "BTC", "A", "0.02", "101000.0")
        sim.fill(two, "0.01")
        batch = await recv_channel(ws, "userFills")
        assert [(x["oid"], x["crossed"]) for x in batch["data"]["fills"]] == [(taker, True), (two, False)]
        assert batch["data"]["fills"][0]["fee"] == "0.43575"  # 0.5 * 2490 * 0.00035
        assert "cloid" not in batch["data"]["fills"][0]

        # no periodic re-push (the openOrders one runs every 0.3 s) and no second copy
        assert await quiet_for(ws, "userFills", 0.8) == []
        await sim.push_now()
        assert await quiet_for(ws, "userFills", 0.3) == []

        # unsubscribe + subscribe again on the same socket: the snapshot again, all fills
        await ws.send(unsub("userFills", user))  # matches without aggregateByTime
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["method"] == "unsubscribe"
        await ws.send(sub("userFills", user, aggregateByTime=False))
        await recv_channel(ws, "subscriptionResponse")
        again = await recv_channel(ws, "userFills")
        assert again["data"]["isSnapshot"] is True
        assert len(again["data"]["fills"]) == 6
        tids = [x["tid"] for x in again["data"]["fills"]]
        assert tids == sorted(tids, reverse=True)

    # a reconnect re-delivers the snapshot
    async with connect(sim) as ws:
        await ws.send(sub("userFills", user))
        await recv_channel(ws, "subscriptionResponse")
        snap2 = await recv_channel(ws, "userFills")
        assert snap2["data"]["isSnapshot"] is True
        assert [x["tid"] for x in snap2["data"]["fills"]] == tids


async def test_each_subscription_gets_each_fill_once_whatever_it_started_with(sim: ExchangeSim) -> None:
    user = sim.addresses[1]
    other = sim.addresses[2]
    async with connect(sim) as early, connect(sim) as late:
        await early.send(sub("userFills", user))
        await early.send(sub("userFills", other))
        first = [await recv_channel(early, "userFills") for _ in range(2)]
        assert [(m["data"]["user"], m["data"]["fills"]) for m in first] == [(user, []), (other, [])]
        a = sim.place(user, "BTC", "B", "0.01", "100000.0", tif="Ioc", fill_immediately=True)
        delta_a = await recv_channel(early, "userFills")
        assert [x["oid"] for x in delta_a["data"]["fills"]] == [a]
        await late.send(sub("userFills", user))
        snap = await recv_channel(late, "userFills")
        assert [x["oid"] for x in snap["data"]["fills"]] == [a]
        b = sim.place(user, "BTC", "A", "0.01", "100100.0", tif="Ioc", fill_immediately=True)
        got_early = await recv_channel(early, "userFills")
        got_late = await recv_channel(late, "userFills")
        for msg in (got_early, got_late):
            assert (msg["data"]["user"], [x["oid"] for x in msg["data"]["fills"]]) == (user, [b])
            assert "isSnapshot" not in msg["data"]
        assert await quiet_for(early, "userFills", 0.5) == []  # nothing for `other`, no repeats
        assert await quiet_for(late, "userFills", 0.1) == []


async def test_user_fills_subscription_errors(sim: ExchangeSim) -> None:
    user = sim.addresses[3]
    async with connect(sim) as ws:
        await ws.send(sub("userFills", user))
        await recv_channel(ws, "userFills")
        await ws.send(sub("userFills", user, aggregateByTime=False))  # the same normalized sub
        err = await recv_channel(ws, "error")
        assert err["data"] == (f'Already subscribed: {{"type":"userFills","user":"{user}","aggregateByTime":false}}')
        bad = json.dumps(
            {"method": "subscribe", "subscription": {"type": "userFills", "user": user, "aggregateByTime": "x"}}
        )
        await ws.send(bad)
        err = await recv_channel(ws, "error")
        assert err["data"].startswith("Error parsing JSON into valid websocket request: ")
        await ws.send(sub("userFills", user, aggregateByTime=True))  # a different subscription
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["subscription"]["aggregateByTime"] is True
        assert (await recv_channel(ws, "userFills"))["data"]["isSnapshot"] is True
        assert sim.ip_stats("127.0.0.1") == {"connections": 1, "subscriptions": 2, "users": 1}


async def test_user_cap_counts_a_user_once_across_orders_state_and_fills(sim: ExchangeSim) -> None:
    users = sim.addresses[:11]
    async with connect(sim) as ws:
        for u in users[:10]:
            for typ in ("openOrders", "clearinghouseState", "userFills"):
                await ws.send(sub(typ, u))
                ack = await recv_channel(ws, "subscriptionResponse")
                assert ack["data"]["subscription"]["type"] == typ
        assert sim.ip_stats("127.0.0.1") == {"connections": 1, "subscriptions": 30, "users": 10}
        await ws.send(sub("userFills", users[10]))
        err = await recv_channel(ws, "error")
        assert err["data"] == "Cannot track more than 10 total users."
        assert sim.ip_stats("127.0.0.1")["subscriptions"] == 30
        # dropping one user's three subscriptions frees the slot; userFills alone takes it
        for typ in ("openOrders", "clearinghouseState", "userFills"):
            await ws.send(unsub(typ, users[0]))
            await recv_channel(ws, "subscriptionResponse")
        assert sim.ip_stats("127.0.0.1")["users"] == 9
        await ws.send(sub("userFills", users[10]))
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["subscription"]["user"] == users[10]
        await ws.send(sub("openOrders", users[0]))  # now the 11th user again
        err = await recv_channel(ws, "error")
        assert err["data"] == "Cannot track more than 10 total users."


async def test_chaos_duplicates_and_corrupts_user_fills_frames() -> None:
    chaos = ChaosConfig(duplicate_prob=1.0)
    async with ExchangeSim(SimConfig(traders=1, push_interval=5, start_time_ms=START_MS, chaos=chaos)) as sim:
        user = sim.addresses[0]
        async with connect(sim) as ws:
            await ws.send(sub("userFills", user))
            await recv_channel(ws, "subscriptionResponse")
            snaps = [await recv_channel(ws, "userFills") for _ in range(2)]
            assert snaps[0] == snaps[1] and snaps[0]["data"]["isSnapshot"] is True
            sim.place(user, "BTC", "B", "0.01", "100000.0", tif="Ioc", fill_immediately=True)
            deltas = [await recv_channel(ws, "userFills") for _ in range(2)]
            assert deltas[0] == deltas[1] and len(deltas[0]["data"]["fills"]) == 1
            assert await quiet_for(ws, "userFills", 0.3) == []
        assert sim.stats.chaos_events["duplicate_frame"] == 2
    chaos = ChaosConfig(malformed_prob=1.0)
    async with ExchangeSim(SimConfig(traders=1, push_interval=5, start_time_ms=START_MS, chaos=chaos)) as sim:
        async with connect(sim) as ws:
            await ws.send(sub("userFills", sim.addresses[0]))
            await recv_channel(ws, "subscriptionResponse")
            bad = await asyncio.wait_for(ws.recv(), WAIT_S)
            try:
                json.loads(bad)
                parsed = True
            except ValueError:
                parsed = False
            assert not parsed
            assert (await recv_channel(ws, "userFills"))["data"]["isSnapshot"] is True
        assert sim.stats.chaos_events["malformed_frame"] == 1


# ----- REST: userFills and userFillsByTime paging --------------------------------------------


async def test_user_fills_by_time_pages_oldest_first_and_user_fills_is_the_newest_2000() -> None:
    n = 2105
    async with ExchangeSim(SimConfig(traders=1, start_time_ms=START_MS, rest_weight_per_min=320)) as sim:
        user = sim.addresses[0]
        oid = sim.place(user, "ETH", "B", str(n), "2500.0")
        for _ in range(n):
            sim.fill(oid, "1")
        times = [f["time"] for f in sim.exchange.user(user).fills]
        assert len(set(times)) == n and times == sorted(times)
        async with aiohttp.ClientSession() as s:
            newest = await post(s, sim, {"type": "userFills", "user": user})  # weight 20 + 100
            assert len(newest) == 2000
            assert [f["time"] for f in newest] == times[::-1][:2000]
            page1 = await post(s, sim, {"type": "userFillsByTime", "user": user, "startTime": times[0]})
            assert [f["time"] for f in page1] == times[:2000]  # startTime inclusive, oldest first
            nxt = page1[-1]["time"] + 1
            page2 = await post(s, sim, {"type": "userFillsByTime", "user": user, "startTime": nxt, "endTime": None})
            assert [f["time"] for f in page2] == times[2000:]
            window = await post(
                s,
                sim,
                {"type": "userFillsByTime", "user": user, "startTime": times[5], "endTime": times[9]},
            )
            assert [f["time"] for f in window] == times[5:10]  # endTime inclusive too
            assert await post(s, sim, {"type": "userFillsByTime", "user": user, "startTime": times[-1] + 1}) == []
            # weight: 120 + 120 + (20 + 105 // 20) + 20 + 20 = 305; 305 + 20 > 320
            assert sim.ips["127.0.0.1"].rest_weight.total == 120 + 120 + 25 + 20 + 20
            async with s.post(sim.info_url, json={"type": "userFillsByTime", "user": user, "startTime": 0}) as r:
                assert r.status == 429


# ----- fill ground truth and compare_fills ---------------------------------------------------


def stored(user: str, fill: dict[str, Any], source: str = "ws") -> dict[str, Any]:
    """A trader_fills document as a collector stores it (pymongo gives naive UTC datetimes)."""
    t = datetime.fromtimestamp(fill["time"] / 1000, UTC).replace(tzinfo=None)
    return {
        **fill,
        "ethAddress": user,
        "dex": "",
        "time": t,
        "source": source,
        "observedAt": datetime.now(UTC),
    }


class FakeCollection:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.queries: list[tuple[Any, ...]] = []

    def find(self, *args: Any) -> list[dict[str, Any]]:
        self.queries.append(args)
        return [dict(d) for d in self.docs]


async def test_fill_truth_file_and_compare_fills(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    cfg = SimConfig(traders=3, push_interval=30, start_time_ms=START_MS, truth_file=truth)
    async with ExchangeSim(cfg) as sim:
        a, b, c = sim.addresses
        o1 = sim.place(a, "ETH", "B", "1.0", "2500.0", cloid=CLOID)
        sim.fill(o1, "0.4")
        sim.fill(o1)
        sim.place(a, "BTC", "A", "0.01", "100000.0", tif="Ioc", fill_immediately=True)
        sim.place(b, "SOL", "B", "2.0", "150.0", tif="Ioc", fill_immediately=True)
        sim.place(c, "SOL", "B", "2.0", "150.0", tif="Ioc", fill_immediately=True)
        fills = {u: list(reversed(sim.exchange.user_fills(u))) for u in (a, b, c)}
    assert sim.config.fills_path() == Path(str(truth) + ".fills.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "truth.jsonl.fills.jsonl").read_text().splitlines()]
    assert [(r["user"], r["fill"]) for r in lines] == [
        (a, fills[a][0]),
        (a, fills[a][1]),
        (a, fills[a][2]),
        (b, fills[b][0]),
        (c, fills[c][0]),
    ]
    assert all(set(r) == {"time", "user", "kind", "fill"} and r["kind"] == "fill" for r in lines)
    assert lines[0]["time"] == datetime.fromtimestamp(fills[a][0]["time"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert lines[0]["fill"]["cloid"] == CLOID
    # the order truth file is untouched: still one order-status line per transition
    rows = [json.loads(x) for x in truth.read_text().splitlines()]
    assert all(set(r) == {"time", "user", "status", "order"} for r in rows)
    assert len(load_truth(truth)) == 4
    assert json.loads(Path(str(truth) + ".summary.json").read_text())["fills"] == 5
    assert len(load_fills(tmp_path / "truth.jsonl.fills.jsonl")) == 5

    # everything captured once, some from REST
    docs = [stored(u.upper().replace("0X", "0x"), f) for u in (a, b, c) for f in fills[u]]
    docs[2]["source"] = "rest"
    report = compare_fills(docs, truth)
    assert isinstance(report, FillReport)
    assert report.ok, report.summary()
    assert (report.total, report.captured, report.capture_rate) == (5, 5, 1.0)
    assert report.sources == {"ws": 4, "rest": 1}

    # a missed fill, a duplicate, an unknown fill and wrong fields
    f_a0, f_a1, f_a2 = fills[a]
    bad = [
        stored(a, f_a0),
        stored(a, f_a0, source="rest"),  # duplicate
        {**stored(a, f_a1), "px": "2500", "crossed": 0, "cloid": None},  # "2500" is not "2500.0"
        {**stored(b, fills[b][0]), "time": stored(b, fills[b][0])["time"].replace(microsecond=999000)},
        {**stored(c, fills[c][0]), "tid": 1, "fee": "0.1"},  # unknown tid; c's real fill missed
    ]
    report = compare_fills(FakeCollection(bad), truth)
    assert not report.ok
    assert (report.total, report.captured) == (5, 3)
    assert report.capture_rate == 0.6
    assert sorted(report.missed) == sorted([(a, f_a2["tid"]), (c, fills[c][0]["tid"])])
    assert report.duplicates == [(a, f_a0["tid"], 2)]
    assert report.unknown == [(c, 1)]
    wrong = {(u, tid, name): (want, got) for u, tid, name, want, got in report.wrong_fields}
    assert set(wrong) == {
        (a, f_a1["tid"], "px"),
        (a, f_a1["tid"], "crossed"),
        (a, f_a1["tid"], "cloid"),
        (b, fills[b][0]["tid"], "time"),
    }
    assert wrong[(a, f_a1["tid"], "px")] == ("2500.0", "2500")
    assert wrong[(a, f_a1["tid"], "cloid")] == (CLOID, None)
    assert "missed=2 duplicates=1 unknown=1 wrong_fields=4" in report.summary()

    # only the compared users count; other users' documents are ignored
    only_b = compare_fills(bad, truth, users=[b.upper().replace("0X", "0x")])
    assert (only_b.total, only_b.captured, only_b.missed, only_b.unknown) == (1, 1, [], [])
    assert [w[2] for w in only_b.wrong_fields] == ["time"]

    # an explicit fills file, and an empty one
    moved = tmp_path / "elsewhere.jsonl"
    moved.write_text((tmp_path / "truth.jsonl.fills.jsonl").read_text())
    assert compare_fills(docs, tmp_path / "missing.jsonl", fills_path=moved).ok
    empty = compare_fills([], tmp_path / "missing.jsonl")
    assert (empty.total, empty.capture_rate, empty.ok) == (0, 1.0, True)
