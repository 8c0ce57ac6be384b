"""Account samples (trader_accounts) and mark prices (market_marks): unit level on real-shaped
frames, and end to end from a real collector against the simulator into MongoDB."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector_service.events.marks import ActiveAssetCtxMsg, MarkBoard, decode_mark_frame
from collector_service.events.positions import PositionBook
from collector_service.events.wire import FrameError, decode_frame
from collector_service.metrics import Stats
from collector_service.store import Database
from exchange_sim import ExchangeSim, SimConfig
from tests.collector.frames import USER, encode, webdata2_frame
from tests.collector.harness import RunningCollector, collector_settings, eventually

T0 = datetime(2025, 6, 26, 4, 35, tzinfo=UTC)
MS0 = 1750912509000


def snapshot(at_ms: int, account_value: str, szi: str | None = None) -> bytes:
    """The real webData2 capture's clearinghouseState at ``at_ms``, with another account value
    (and position size)."""
    frame = webdata2_frame(server_time=at_ms)
    state = frame["data"]["clearinghouseState"]
    state["time"] = at_ms
    state["marginSummary"]["accountValue"] = account_value
    if szi is not None:
        state["assetPositions"][0]["position"]["szi"] = szi
    return bytes(decode_frame(encode(frame)).data.clearinghouseState)  # type: ignore[union-attr]


def sample(book: PositionBook, raw: bytes, at: datetime) -> dict[str, Any] | None:
    """What the pipeline does with one snapshot: the position diff, then the account sample."""
    state = book.decode_new(raw)
    if state is None:
        return None
    changed = bool(book.apply(state, observed_at=at))
    return book.account.sample(USER, "", state, changed=changed, observed_at=at, source="ws")


def test_an_account_is_sampled_with_each_position_change_and_otherwise_once_a_minute() -> None:
    book = PositionBook(USER)
    first = sample(book, snapshot(MS0, "100.5"), T0)
    assert first is not None
    captured = webdata2_frame()["data"]["clearinghouseState"]
    assert {k: first[k] for k in ("accountValue", "totalNtlPos", "totalRawUsd", "totalMarginUsed")} == {
        **{k: captured["marginSummary"][k] for k in ("totalNtlPos", "totalRawUsd", "totalMarginUsed")},
        "accountValue": "100.5"}
    assert (first["crossMaintenanceMarginUsed"], first["withdrawable"]) == (
        captured["crossMaintenanceMarginUsed"], captured["withdrawable"])
    assert first["serverTime"] == datetime.fromtimestamp(MS0 / 1000, UTC) and first["positionChanged"] is True
    assert sample(book, snapshot(MS0, "100.5"), T0) is None  # a byte-identical repeat
    assert sample(book, snapshot(MS0 + 4_000, "101.0"), T0) is None  # value moved, position did not
    assert sample(book, snapshot(MS0 + 59_999, "102.0"), T0) is None
    due = sample(book, snapshot(MS0 + 60_000, "103.0"), T0)
    assert due is not None and due["accountValue"] == "103.0" and due["positionChanged"] is False
    changed = sample(book, snapshot(MS0 + 64_000, "103.5", szi="-0.0002"), T0)
    assert changed is not None and changed["positionChanged"] is True  # a change is sampled at once
    assert sample(book, snapshot(MS0 + 30_000, "90.0", szi="-0.0003"), T0) is None  # older than the last
    # two states in one exchange millisecond: the change is sampled again (the store keeps the later)
    same_ms = sample(book, snapshot(MS0 + 64_000, "104.0", szi="-0.0004"), T0)
    assert same_ms is not None and same_ms["serverTime"] == changed["serverTime"]


def active_asset_ctx(mark: str) -> dict[str, Any]:
    """A real-shaped activeAssetCtx frame: the capture's BTC context (PROTOCOL.md §1.2)."""
    data = webdata2_frame()["data"]
    ctx = copy.deepcopy(data["assetCtxs"][[m["name"] for m in data["meta"]["universe"]].index("BTC")])
    ctx["markPx"] = mark
    return {"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": ctx}}


def test_mark_frames_decode_and_a_bad_mark_is_named() -> None:
    msg = decode_mark_frame(encode(active_asset_ctx("107840.0")))
    assert isinstance(msg, ActiveAssetCtxMsg) and (msg.data.coin, msg.data.ctx.markPx) == ("BTC", "107840.0")
    for bad in ("-1", "1e5", "NaN"):
        with pytest.raises(FrameError, match="markPx"):
            decode_mark_frame(encode(active_asset_ctx(bad)))
    with pytest.raises(FrameError, match="truncated") as truncated:
        decode_mark_frame(b'{"channel":"activeAssetCtx","data":{')
    assert truncated.value.kind == "malformed"


def test_marks_are_written_at_most_every_interval_and_refreshed_when_quiet() -> None:
    board = MarkBoard(write_s=5.0, refresh_s=60.0)
    board.on_ctx("BTC", "100.0", T0)
    assert [d["markPx"] for d in board.due(0.0)] == ["100.0"]
    for i in range(50):  # a busy feed: fifty pushes within the interval make no write
        board.on_ctx("BTC", f"10{i}.0", T0 + timedelta(seconds=i / 20))
        assert board.due(i / 20) == []
    (doc,) = board.due(5.0)
    assert doc == {"_id": "BTC", "coin": "BTC", "markPx": "1049.0", "at": T0 + timedelta(seconds=49 / 20),
                   "observedAt": T0 + timedelta(seconds=49 / 20), "source": "ws"}
    assert board.due(30.0) == []  # unchanged: not again before the refresh interval
    assert [d["markPx"] for d in board.due(65.0)] == ["1049.0"]


def test_samples_within_one_second_are_kept_apart_and_one_exchange_time_is_replaced(mongo_uri: str,
                                                                                     mongo_db) -> None:
    # matched by (ethAddress, dex, serverTime), nx-27017 took a sample 300 ms after another for it
    at = datetime(2026, 5, 1, 12, 0, 0, 100_000, tzinfo=UTC)

    def sample(server_time: datetime, value: str) -> dict[str, Any]:
        return {"kind": "account", "doc": {"ethAddress": USER, "dex": "", "accountValue": value,
                                           "serverTime": server_time, "positionChanged": True}}

    database = Database(mongo_uri, mongo_db.name)
    try:
        database.ensure_indexes()
        later = at + timedelta(milliseconds=300)
        database.write([sample(at, "1"), sample(later, "2"), sample(later, "3")], Stats())
        database.write([sample(at, "1"), sample(later, "3")], Stats())  # a journal replay
    finally:
        database.close()
    stored = sorted((d["serverTime"], d["accountValue"]) for d in mongo_db.trader_accounts.find())
    assert stored == [(at, "1"), (later, "3")]


async def test_account_samples_and_marks_reach_mongodb_from_a_real_collector(
        tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    async with ExchangeSim(SimConfig(traders=2, push_interval=0.2)) as sim:
        alice = sim.addresses[0]
        settings = collector_settings(sim, mongo_uri, mongo_db.name, tmp_path / "collector", [alice])
        db = mongo_db
        async with RunningCollector(settings) as run:
            main = {"ethAddress": alice, "dex": ""}  # each perp dex has its own account (HIP-3 ones: zeros)
            await eventually(lambda: db.trader_accounts.find_one(main), what="first account sample")
            await eventually(lambda: {d["dex"] for d in db.trader_accounts.find({"ethAddress": alice})} >= {"", "xyz"},
                             what="a sample of a HIP-3 dex too")
            assert db.market_marks.count_documents({}) == 0  # no position: no mark subscribed
            mark = str(sim.market.coin("BTC").mark_px)
            sim.place(alice, "BTC", "B", "0.5", mark, tif="Ioc", fill_immediately=True)
            opened = await eventually(lambda: db.trader_positions.find_one({"ethAddress": alice, "coin": "BTC"}),
                                      what="BTC position")
            # the position change is sampled with it, at the same exchange time (matched in Python:
            # nx-27017 matches a datetime a second wide, and found the sample before it)
            sampled = await eventually(lambda: next((d for d in db.trader_accounts.find(main)
                                                     if d["serverTime"] == opened["serverTime"]), None),
                                       what="sample with the change")
            served = sim.exchange.clearinghouse_state(alice)["marginSummary"]
            assert sampled["positionChanged"] is True and sampled["totalNtlPos"] == served["totalNtlPos"]
            await eventually(lambda: db.market_marks.find_one({"_id": "BTC", "markPx": mark}), what="BTC mark")
            assert sim.set_mark("BTC", "100000") == []  # not liquidated
            await eventually(lambda: db.market_marks.find_one({"_id": "BTC", "markPx": "100000.0"}), timeout=30,
                             what="the moved mark")
            assert run.service.stats.frames["activeAssetCtx"] >= 2
            assert sim.ip_stats("127.0.0.1")["users"] == 1  # the mark feed took no user slot
        samples = db.trader_accounts.count_documents(main)
        # pushed every 0.2 s for several seconds: one sample per position change or minute, not per push
        assert 1 <= samples <= 4
        assert db.market_marks.count_documents({}) == 1
        # a restart replays nothing twice: the unique (ethAddress, dex, serverTime) key holds
        async with RunningCollector(settings):
            await eventually(lambda: db.trader_accounts.count_documents(main) > samples,
                             what="a sample after the restart")
        keys = [(d["dex"], d["serverTime"]) for d in db.trader_accounts.find({"ethAddress": alice})]
        assert len(keys) > samples
        assert len(keys) == len(set(keys))
