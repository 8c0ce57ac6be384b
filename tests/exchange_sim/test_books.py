"""l2Book: the book model (hand-worked), the WS subscription, info l2Book and the snapshot history."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchange_sim import ChaosConfig, ExchangeSim, SimConfig
from exchange_sim.book import aggregate
from exchange_sim.market import fmt
from tests.exchange_sim.conftest import START_MS, WAIT_S, connect, quiet_for, recv_channel, recv_json, sub

COIN = "tst:AAA"  # mark 100.0, szDecimals 2 (price-derived), a perp of the HIP-3 dex "tst"


def small_sim(**overrides: Any) -> ExchangeSim:
    """A simulator that is not started (its clock stands still): 3 background levels a side at
    mark x (1 -/+ k%) worth exactly 1000 USD each, so every background level is 10.0 lots."""
    cfg = SimConfig(
        traders=8,
        start_time_ms=START_MS,
        book_levels=3,
        book_step=0.01,
        book_level_usd=(1000, 1000),
        **overrides,
    )
    sim = ExchangeSim(cfg)
    sim.add_dex("tst", {"AAA": "100.0"})
    return sim


def lv(px: str, sz: str, n: int = 1) -> dict[str, Any]:
    return {"px": px, "sz": sz, "n": n}


def sides(sim: ExchangeSim, coin: str = COIN) -> tuple[list[Any], list[Any]]:
    book = sim.book(coin)
    bids, asks = book["levels"]
    if bids and asks:
        assert Decimal(bids[0]["px"]) < Decimal(asks[0]["px"]), "crossed"
    return bids, asks


def book_sub(coin: str, **extra: Any) -> str:
    return json.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": coin, **extra}})


def book_unsub(coin: str, **extra: Any) -> str:
    return json.dumps({"method": "unsubscribe", "subscription": {"type": "l2Book", "coin": coin, **extra}})


def normalized(coin: str, n_sig_figs: int | None = None, mantissa: int | None = None) -> dict[str, Any]:
    return {"type": "l2Book", "coin": coin, "nSigFigs": n_sig_figs, "mantissa": mantissa, "fast": False}


BG_BIDS = [lv("99.0", "10.0"), lv("98.0", "10.0"), lv("97.0", "10.0")]
BG_ASKS = [lv("101.0", "10.0"), lv("102.0", "10.0"), lv("103.0", "10.0")]


# ----- the book model --------------------------------------------------------------------------
def test_book_aggregates_trader_orders_with_the_background_by_hand() -> None:
    sim = small_sim()
    u1, u2, u3 = sim.addresses[:3]
    assert sides(sim) == (BG_BIDS, BG_ASKS)

    a = sim.place(u1, COIN, "B", "2.5", "98.0")  # joins the background level 98
    sim.place(u2, COIN, "B", "1.5", "98")  # a second order at that level
    c = sim.place(u1, COIN, "B", "1", "98.5")  # a level of its own
    sim.place(u3, COIN, "A", "0.25", "102.0")
    bids, asks = sides(sim)
    assert bids == [lv("99.0", "10.0"), lv("98.5", "1.0"), lv("98.0", "14.0", 3), lv("97.0", "10.0")]
    assert asks == [lv("101.0", "10.0"), lv("102.0", "10.25", 2), lv("103.0", "10.0")]

    # Not in the book: trigger orders (and TP/SL children), rejected and Ioc orders.
    sim.place(u2, COIN, "A", "1", 0, trigger_px="95", tpsl="sl")
    sim.place(u2, COIN, "B", "1", "97.0", tp_px="110", sl_px="90")  # the parent does rest
    sim.reject(u3, COIN, "B", "1", "99.0")
    sim.place(u3, COIN, "B", "1", "99.0", tif="Ioc")
    bids, asks = sides(sim)
    assert bids[-1] == lv("97.0", "11.0", 2)
    assert asks == [lv("101.0", "10.0"), lv("102.0", "10.25", 2), lv("103.0", "10.0")]

    sim.fill(a, "1")  # a partial fill keeps the order at its level with the rest
    assert sides(sim)[0][2] == lv("98.0", "13.0", 3)
    sim.fill(a)  # gone
    assert sides(sim)[0][2] == lv("98.0", "11.5", 2)
    moved = sim.amend(c, limit_px="98.75")  # cancel-and-replace moves it
    assert sides(sim)[0][:2] == [lv("99.0", "10.0"), lv("98.75", "1.0")]
    sim.cancel(moved)
    assert sides(sim)[0][:2] == [lv("99.0", "10.0"), lv("98.0", "11.5", 2)]


def test_book_is_never_crossed_by_marketable_resting_orders() -> None:
    sim = small_sim()
    u1, u2 = sim.addresses[:2]
    hi = sim.place(u1, COIN, "B", "1", "101.5")  # at/above the best ask: background asks give way
    bids, asks = sides(sim)
    assert bids[0] == lv("101.5", "1.0")
    assert asks == [lv("102.0", "10.0"), lv("103.0", "10.0")]
    hidden = sim.place(u2, COIN, "A", "2", "101.0")  # a trader ask at/below the best trader bid
    same = sim.place(u2, COIN, "A", "3", "101.5")
    assert sides(sim)[1] == [lv("102.0", "10.0"), lv("103.0", "10.0")]  # bids take precedence
    sim.place(u2, COIN, "A", "0.5", "101.7")
    assert sides(sim)[1][0] == lv("101.7", "0.5")
    sim.cancel(hi)
    sim.cancel(same)
    # Now the trader ask at 101.0 shows (joining the background level) ...
    assert sides(sim)[1][:2] == [lv("101.0", "12.0", 2), lv("101.7", "0.5")]
    sim.place(u1, COIN, "A", "1", "98.7")  # ... and a low trader ask pushes background bids away
    bids, asks = sides(sim)
    assert bids == [lv("98.0", "10.0"), lv("97.0", "10.0")]
    assert asks[0] == lv("98.7", "1.0")
    sim.cancel(hidden)
    sim.place(u1, COIN, "B", "1", "98.7")  # trader bid = trader ask: the ask is hidden again, so
    bids, asks = sides(sim)  # the background bid 99 returns
    assert bids == [lv("99.0", "10.0"), lv("98.7", "1.0"), lv("98.0", "10.0"), lv("97.0", "10.0")]
    assert asks == [lv("101.0", "10.0"), lv("101.7", "0.5"), lv("102.0", "10.0"), lv("103.0", "10.0")]


def test_default_background_recipe_and_the_20_level_cap() -> None:
    sim = ExchangeSim(SimConfig(traders=4, start_time_ms=START_MS))
    btc = sim.market.by_name["BTC"]
    rng = random.Random(f"book:{sim.config.seed}:BTC")
    want_bids, want_asks = [], []
    for k in range(1, 21):
        bid_usd, ask_usd = rng.randint(1000, 20000), rng.randint(1000, 20000)
        step = Decimal("0.0015") * k
        want_bids.append(
            lv(
                fmt(sim.market.round_px(btc, btc.mark_px * (1 - step))),
                fmt(sim.market.round_sz(btc, bid_usd / btc.mark_px)),
            )
        )
        want_asks.append(
            lv(
                fmt(sim.market.round_px(btc, btc.mark_px * (1 + step))),
                fmt(sim.market.round_sz(btc, ask_usd / btc.mark_px)),
            )
        )
    bids, asks = sides(sim, "BTC")
    assert (bids, asks) == (want_bids, want_asks)
    assert bids[0]["px"] == "107680.0" and asks[0]["px"] == "108000.0"  # mark 107840, tick 10

    u = sim.addresses[0]
    sim.place(u, "BTC", "B", "0.01", "90000.0")  # beyond the 20th level: not shown
    assert sides(sim, "BTC")[0] == want_bids
    sim.place(u, "BTC", "B", "0.01", "107600.0")  # between levels 1 and 2: the 20th drops off
    bids, _ = sides(sim, "BTC")
    assert len(bids) == 20
    assert bids == [want_bids[0], lv("107600.0", "0.01"), *want_bids[1:19]]

    for coin in ("PURR/USDC", "@107", "xyz:TSLA", "ETH"):  # spot and HIP-3 coins have books too
        bids, asks = sides(sim, coin)
        assert (len(bids), len(asks)) == (20, 20)
        assert all(Decimal(a["px"]) > Decimal(b["px"]) for a, b in itertools.pairwise(bids))
        assert all(Decimal(a["px"]) < Decimal(b["px"]) for a, b in itertools.pairwise(asks))
    with pytest.raises(KeyError):
        sim.book("NOPE")


def test_aggregation_by_significant_figures() -> None:
    d = Decimal
    bids = ((d("99.5"), d("1"), 1), (d("99.2"), d("2"), 2), (d("98.9"), d("3"), 1))
    assert aggregate(bids, 2, None, up=False) == ((d("99"), d("3"), 3), (d("98"), d("3"), 1))
    asks = ((d("100.15"), d("1"), 1), (d("100.3"), d("2"), 1))
    assert aggregate(asks, 3, None, up=True) == ((d("101"), d("3"), 2),)
    # nSigFigs 5 with mantissa 5: buckets of 5 units of the 5th figure
    assert aggregate(((d("107683"), d("1"), 1),), 5, 5, up=False) == ((d("107650"), d("1"), 1),)
    assert aggregate(((d("107683"), d("1"), 1),), 5, 2, up=True) == ((d("107700"), d("1"), 1),)


# ----- the history -------------------------------------------------------------------------------
def test_book_times_name_one_content_each_and_the_history_is_bounded() -> None:
    sim = small_sim(book_history=3)
    u = sim.addresses[0]
    first = sim.book(COIN)
    assert first["time"] == START_MS
    assert sim.book(COIN) == first  # unchanged at the same clock time: the same snapshot
    sim.place(u, COIN, "B", "1", "99.5")
    second = sim.book(COIN)
    assert second["time"] == START_MS + 1  # changed while the clock stood still: +1 ms
    assert sim.book_at(COIN, START_MS) == first
    assert sim.book_at(COIN, START_MS + 1) == second != first
    sim.tick(50)
    third = sim.book(COIN)
    assert (third["time"], third["levels"]) == (START_MS + 50, second["levels"])  # a refresh
    sim.tick(50)
    sim.book(COIN)
    assert sim.book_at(COIN, START_MS) is None  # evicted (3 kept)
    assert [b["time"] for b in sim.book_history(COIN)] == [START_MS + 1, START_MS + 50, START_MS + 100]
    assert sim.book_at(COIN, START_MS + 7) is None
    assert sim.book_at("BTC", START_MS) is None


# ----- WebSocket ---------------------------------------------------------------------------------
async def test_ws_l2book_ack_snapshot_change_push_and_unsubscribe() -> None:
    cfg = SimConfig(traders=4, push_interval=30.0, start_time_ms=START_MS)  # no periodic round
    async with ExchangeSim(cfg) as sim, connect(sim) as ws:
        u = sim.addresses[0]
        await ws.send(book_sub("BTC"))
        raw_ack = await asyncio.wait_for(ws.recv(), WAIT_S)
        assert raw_ack == (
            '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":'
            '{"type":"l2Book","coin":"BTC","nSigFigs":null,"mantissa":null,"fast":false}}}'
        )
        snap = await recv_json(ws)  # right after the ack
        assert snap["channel"] == "l2Book"
        assert set(snap["data"]) == {"coin", "time", "levels"}
        assert snap["data"] == sim.book_at("BTC", snap["data"]["time"])
        assert [len(s) for s in snap["data"]["levels"]] == [20, 20]
        assert sim.ip_stats("127.0.0.1") == {"connections": 1, "subscriptions": 1, "users": 0}

        sim.place(u, "ETH", "B", "1", "2000.0")  # another coin: no BTC push
        assert await quiet_for(ws, "l2Book", 0.3) == []
        oid = sim.place(u, "BTC", "B", "0.5", "107600.0")
        now = sim.book("BTC")  # a snapshot taken before the push round does not swallow the push
        pushed = await recv_channel(ws, "l2Book")
        # The push carries that book, stamped when its round ran: the simulated clock ticks every
        # 0.1 s, and a busy machine can let a tick in before the round, so the time may be later.
        assert pushed["data"]["levels"] == now["levels"]
        assert pushed["data"]["time"] >= now["time"] > snap["data"]["time"]
        assert pushed["data"]["levels"][0][1] == lv("107600.0", "0.5")
        assert sim.book_at("BTC", pushed["data"]["time"]) == pushed["data"]
        assert sim.book_at("BTC", snap["data"]["time"]) == snap["data"]
        sim.place(u, "BTC", "A", "0.01", 0, trigger_px="100000", tpsl="sl")  # a trigger: no change
        assert await quiet_for(ws, "l2Book", 0.3) == []
        sim.cancel(oid)
        back = await recv_channel(ws, "l2Book")
        assert back["data"]["levels"] == snap["data"]["levels"]

        await ws.send(book_sub("BTC", nSigFigs=None, mantissa=None))
        err = await recv_channel(ws, "error")
        assert err["data"] == "Already subscribed: " + json.dumps(normalized("BTC"), separators=(",", ":"))

        await ws.send(book_unsub("BTC"))  # without the nulls
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"] == {"method": "unsubscribe", "subscription": normalized("BTC")}
        await ws.send(book_unsub("BTC", nSigFigs=None, mantissa=None))
        err = await recv_channel(ws, "error")
        assert err["data"].startswith("Already unsubscribed: ")

        await ws.send(book_sub("xyz:TSLA", nSigFigs=None, mantissa=None))  # with the nulls
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["subscription"] == normalized("xyz:TSLA")
        assert (await recv_json(ws))["data"]["coin"] == "xyz:TSLA"
        await ws.send(book_unsub("xyz:TSLA", nSigFigs=None, mantissa=None, fast=False))
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["method"] == "unsubscribe"
        assert sim.ip_stats("127.0.0.1") == {"connections": 1, "subscriptions": 0, "users": 0}
        sim.place(u, "BTC", "B", "0.5", "107600.0")
        assert await quiet_for(ws, "l2Book", 0.3) == []


async def test_ws_l2book_options_unknown_coins_and_bad_options() -> None:
    async with ExchangeSim(SimConfig(traders=2, start_time_ms=START_MS)) as sim, connect(sim) as ws:
        for bad in (
            book_sub("NOPE"),
            book_sub("btc"),
            book_sub("BTC", nSigFigs=6),
            book_sub("BTC", nSigFigs="5"),
            book_sub("BTC", nSigFigs=True),
            book_sub("BTC", nSigFigs=4, mantissa=2),
            book_sub("BTC", nSigFigs=5, mantissa=3),
            book_sub("BTC", fast="no"),
            json.dumps({"method": "subscribe", "subscription": {"type": "l2Book"}}),
        ):
            await ws.send(bad)
            err = await recv_channel(ws, "error")
            assert err["data"] == f"Error parsing JSON into valid websocket request: {bad}"

        await ws.send(book_sub("PURR/USDC", nSigFigs=5, mantissa=5))
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["subscription"] == normalized("PURR/USDC", 5, 5)
        frame = (await recv_json(ws))["data"]
        full = sim.book_at("PURR/USDC", frame["time"])
        assert full is not None and full["levels"] != frame["levels"]
        assert full["levels"][0][0]["px"] == "0.19114" and full["levels"][1][0]["px"] == "0.19172"
        # in buckets of 5 units of the 5th significant figure: bids down, asks up
        assert frame["levels"][0][0]["px"] == "0.1911" and frame["levels"][1][0]["px"] == "0.19175"

        await ws.send(book_sub("@107", fast=True))
        ack = await recv_channel(ws, "subscriptionResponse")
        assert ack["data"]["subscription"]["fast"] is True
        frame = (await recv_json(ws))["data"]
        assert frame["fast"] is True and [len(s) for s in frame["levels"]] == [5, 5]
        full = sim.book_at("@107", frame["time"])
        assert full is not None and [s[:5] for s in full["levels"]] == frame["levels"]


async def test_books_take_no_user_slot() -> None:
    async with ExchangeSim(SimConfig(traders=12, push_interval=30.0)) as sim, connect(sim) as ws:
        for u in sim.addresses[:10]:
            await ws.send(sub("openOrders", u))
        coins = [c.name for c in sim.market.coins[:50]]
        for coin in coins:
            await ws.send(book_sub(coin))
        acked: set[str] = set()
        async with asyncio.timeout(5):
            while len(acked) < 60:
                msg = json.loads(await ws.recv())
                assert msg["channel"] != "error", msg
                if msg["channel"] == "subscriptionResponse":
                    s = msg["data"]["subscription"]
                    acked.add(s.get("coin") or s["user"])
        assert sim.ip_stats("127.0.0.1") == {"connections": 1, "subscriptions": 60, "users": 10}
        await ws.send(sub("openOrders", sim.addresses[10]))
        err = await recv_channel(ws, "error")
        assert err["data"] == "Cannot track more than 10 total users."

    async with ExchangeSim(SimConfig(traders=1, max_subscriptions_per_ip=3)) as sim, connect(sim) as ws:
        for coin in ("BTC", "ETH", "SOL", "DOGE"):
            await ws.send(book_sub(coin))
        err = await recv_channel(ws, "error")
        assert err["data"] == "Cannot subscribe to more than 3 channels."


async def test_quiet_books_are_repushed_every_full_round_and_chaos_applies() -> None:
    chaos = ChaosConfig(duplicate_prob=1.0)
    async with ExchangeSim(SimConfig(traders=1, push_interval=0.2, chaos=chaos)) as sim, connect(sim) as ws:
        await ws.send(book_sub("SOL"))
        await recv_channel(ws, "subscriptionResponse")
        frames = [await recv_channel(ws, "l2Book") for _ in range(8)]  # snapshot + 3 rounds, each sent twice
        assert frames[0] == frames[1]
        times = sorted({f["data"]["time"] for f in frames})
        assert len(times) >= 2  # the clock moves (0.1 s ticks, which a busy loop may run late): fresh snapshots
        assert all(sim.book_at("SOL", f["data"]["time"]) == f["data"] for f in frames)
        assert sim.stats.chaos_events["duplicate_frame"] >= len(frames) // 2


async def test_random_market_books_match_their_history() -> None:
    # 200 orders a second: speed 10 (2,000) left a loaded machine unable to keep up with its own clock
    cfg = SimConfig(traders=20, orders_per_trader_per_min=600, speed=1, push_interval=0.5, hip3_order_share=0.0)
    async with ExchangeSim(cfg) as sim, connect(sim) as ws:
        coins = [c.name for c in sim.market.coins[:10]]
        for coin in coins:
            await ws.send(book_sub(coin))
        seen: dict[tuple[str, int], Any] = {}
        first: dict[str, Any] = {}
        moved = 0
        async with asyncio.timeout(3 * WAIT_S):  # a few seconds of trading, however slow the machine
            while len(seen) < 60 or moved < 10:
                msg = json.loads(await ws.recv())
                if msg["channel"] != "l2Book":
                    continue
                d = msg["data"]
                bids, asks = d["levels"]
                assert len(bids) <= 20 and len(asks) <= 20
                assert Decimal(bids[0]["px"]) < Decimal(asks[0]["px"])
                assert [Decimal(b["px"]) for b in bids] == sorted((Decimal(b["px"]) for b in bids), reverse=True)
                assert [Decimal(a["px"]) for a in asks] == sorted(Decimal(a["px"]) for a in asks)
                key = (d["coin"], d["time"])
                assert seen.setdefault(key, d) == d  # one time, one content
                assert sim.book_at(d["coin"], d["time"]) == d
                moved += first.setdefault(d["coin"], d)["levels"] != d["levels"]  # trader orders came


# ----- info --------------------------------------------------------------------------------------
async def test_info_l2book_answers_the_book_with_weight_2() -> None:
    async with ExchangeSim(SimConfig(traders=2, rest_weight_per_min=10, start_time_ms=START_MS)) as sim:
        sim.place(sim.addresses[0], "BTC", "A", "0.2", "108000.0")
        async with aiohttp.ClientSession() as s:
            async with s.post(sim.info_url, json={"type": "l2Book", "coin": "BTC"}) as r:
                assert r.status == 200
                book = await r.json()
            assert set(book) == {"coin", "time", "levels"}
            assert book["levels"][1][0]["n"] == 2
            assert book == sim.book_at("BTC", book["time"])
            async with s.post(sim.info_url, json={"type": "l2Book", "coin": "BTC", "nSigFigs": 2}) as r:
                agg = await r.json()
            assert agg["levels"][0][0]["px"] == "100000.0" and agg["levels"][1][0]["px"] == "110000.0"
            async with s.post(sim.info_url, json={"type": "l2Book", "coin": "NOPE"}) as r:
                assert r.status == 422
            statuses = []
            for _ in range(4):  # 2 x weight 2 spent above (a 422 is not charged); 10 per minute
                async with s.post(sim.info_url, json={"type": "l2Book", "coin": "ETH"}) as r:
                    statuses.append(r.status)
            assert statuses == [200, 200, 200, 429]
