"""Pure tests: decoding real captured payloads and diffing snapshots (no sockets, no database)."""

from __future__ import annotations

import copy
import gc
import random
import tracemalloc
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.memory import TARGET_BYTES, trader_orders
from collector_service import schema
from collector_service.events import tracker
from collector_service.events.positions import PositionBook
from collector_service.events.tracker import OrderBook, flatten
from collector_service.events.wire import (
    ClearinghouseMsg,
    ErrorMsg,
    FrameError,
    FrontendOrder,
    OpenOrdersMsg,
    PongMsg,
    SubscriptionResponseMsg,
    WebData2Msg,
    decode_clearinghouse,
    decode_frame,
    decode_orders,
    historical_orders_decoder,
)
from exchange_sim.market import Market
from exchange_sim.traders import trader_addresses
from tests.collector.frames import USER, encode, frontend_orders, open_orders_frame, sample, webdata2_frame

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 24, 12, 0, 5, tzinfo=UTC)


def test_real_webdata2_capture_decodes_user_orders_and_positions() -> None:
    ack, frame, unsub = sample("webData2_ws_capture_subscribe_snapshot_unsubscribe.json")
    msg = decode_frame(encode(frame))
    assert isinstance(msg, WebData2Msg)
    assert msg.data.user == "0xd400564f7e3c2502c1666e2d2fcbf8a9cace482d"
    assert msg.data.serverTime == 1750912503968
    assert decode_orders(msg.data.openOrders) == ()
    (asset,) = decode_clearinghouse(msg.data.clearinghouseState).assetPositions
    assert (asset.position.coin, asset.position.szi, asset.position.leverage.value) == ("BTC", "-0.0001", 1)
    assert isinstance(decode_frame(encode(ack)), SubscriptionResponseMsg)
    assert isinstance(decode_frame(encode(unsub)), SubscriptionResponseMsg)


def test_real_frontend_orders_flatten_children_once() -> None:
    msg = decode_frame(encode(open_orders_frame(frontend_orders())))
    assert isinstance(msg, OpenOrdersMsg)
    flat = flatten(decode_orders(msg.data.orders))
    assert sorted(flat) == [3184595905, 3184595906, 3184595907]
    assert flat[3184595905][1] is None
    assert flat[3184595906][1] == 3184595905 and flat[3184595907][1] == 3184595905
    assert flat[3184595906][0].isTrigger and flat[3184595906][0].tif is None


def test_real_historical_orders_decode() -> None:
    rows = historical_orders_decoder.decode(encode(sample("historicalOrders_rest_response_trimmed.json")))
    assert {r.status for r in rows} == {"iocCancelRejected", "canceled"}
    assert all(r.order.oid > 0 for r in rows)


def test_clearinghouse_frame_wrapping_real_rest_sample() -> None:
    state = sample("clearinghouseState_rest_response.json")
    frame = {"channel": "clearinghouseState", "data": {"dex": "", "user": USER, "clearinghouseState": state}}
    msg = decode_frame(encode(frame))
    assert isinstance(msg, ClearinghouseMsg)
    assert decode_clearinghouse(msg.data.clearinghouseState).time == 1752671350239


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"Websocket connection established.", "non_json"),
        (b'{"channel":"openOrders","data":{"user":"0x1"', "malformed"),
        (b'{"channel":"trades","data":[]}', "unknown_channel"),
        (b'{"channel":"openOrders","data":{"user":"0x1","orders":[{"coin":1}]}}', "invalid"),
        (b'{"channel":"openOrders","data":{"user":7,"orders":[]}}', "invalid"),
    ],
)
def test_bad_frames_raise_named_errors(raw: bytes, kind: str) -> None:
    with pytest.raises(FrameError) as info:
        msg = decode_frame(raw)
        decode_orders(msg.data.orders)
    assert info.value.kind == kind


def test_pong_and_error_frames() -> None:
    assert isinstance(decode_frame(b'{"channel":"pong"}'), PongMsg)
    err = decode_frame(b'{"channel":"error","data":"Cannot track more than 10 total users."}')
    assert isinstance(err, ErrorMsg) and err.text.startswith("Cannot track")


def test_old_capture_shape_without_optional_fields() -> None:
    minimal = [
        {"coin": "BTC", "limitPx": "29792.0", "oid": 91490942, "side": "A", "sz": "0.0", "timestamp": 1681247412573}
    ]
    msg = decode_frame(encode(open_orders_frame(minimal)))
    (order,) = decode_orders(msg.data.orders)
    assert order.origSz is None and order.tif is None and order.children == ()


def _book_events(book: OrderBook, orders: list[dict], at: datetime) -> list[dict]:
    return book.apply_raw(decode_frame(encode(open_orders_frame(orders))).data.orders, observed_at=at)


def test_a_changed_snapshot_decodes_only_its_changed_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real TP/SL capture plus a plain order: when only the plain order changes, neither its
    parent (listed as before, with its children also listed top-level as before) nor those children
    are decoded again, and when a child changes, its parent is read again for its children."""
    book = OrderBook(USER)
    plain = {**frontend_orders()[0], "oid": 42, "children": [], "sz": "1.0"}
    orders = [*frontend_orders(), plain]
    _book_events(book, orders, T0)
    decoded: list[int] = []
    real = tracker.decode_orders

    def counting(items: list[msgspec.Raw]) -> tuple[FrontendOrder, ...]:
        found = real(items)
        decoded.extend(order.oid for order in found)
        return found

    monkeypatch.setattr(tracker, "decode_orders", counting)
    changed = copy.deepcopy(orders)
    changed[-1]["sz"] = "0.5"
    (event,) = _book_events(book, changed, T1)
    assert (event["oid"], event["action"], decoded) == (42, "updated", [42])
    decoded.clear()
    child = next(i for i, o in enumerate(changed) if o["oid"] == 3184595906)
    moved = copy.deepcopy(changed)
    moved[child]["triggerPx"] = "9.0"
    (event,) = _book_events(book, moved, T1)
    assert (event["oid"], event["changes"]) == (3184595906, ["triggerPx"])
    assert sorted(decoded) == [3184595905, 3184595906]


def test_diff_new_updated_partial_fill_amend_and_closed() -> None:
    book = OrderBook(USER)
    orders = frontend_orders()
    events = sorted(_book_events(book, orders, T0), key=lambda e: e["oid"])
    assert [(e["action"], e["oid"]) for e in events] == [
        ("new", 3184595905), ("new", 3184595906), ("new", 3184595907)
    ]
    assert events[1]["parentOid"] == 3184595905 and events[0]["eventKey"] == "new"
    assert events[0]["limitPx"] == "10.0" and events[0]["timestamp"].year == 2023

    assert _book_events(book, copy.deepcopy(orders), T1) == []  # identical snapshot: nothing

    parent = next(i for i, o in enumerate(orders) if o["oid"] == 3184595905)
    partial = copy.deepcopy(orders)
    partial[parent]["sz"] = "5.0"
    (ev,) = _book_events(book, partial, T1)
    assert (ev["action"], ev["seq"], ev["eventKey"], ev["partialFill"], ev["changes"]) == (
        "updated", 1, "updated:1", True, ["sz"]
    )
    assert ev["prevSz"] == "12.5" and ev["sz"] == "5.0"

    amended = copy.deepcopy(partial)
    amended[parent]["limitPx"] = "10.5"
    (ev,) = _book_events(book, amended, T1)
    assert (ev["seq"], ev["changes"], ev["partialFill"], ev["prevLimitPx"]) == (2, ["limitPx"], False, "10.0")

    cosmetic = copy.deepcopy(amended)
    cosmetic[parent]["triggerCondition"] = "something new"
    assert _book_events(book, cosmetic, T1) == []

    still_a_child = _book_events(book, [o for o in amended if o["oid"] != 3184595906], T1)
    assert still_a_child == []  # gone from the top level but still inside its parent's children
    without = [o for o in amended if o["oid"] != 3184595906]
    for o in without:
        if o["oid"] == 3184595905:
            o["children"] = [c for c in o["children"] if c["oid"] != 3184595906]
    closed = _book_events(book, without, T1)
    assert [(e["action"], e["oid"], e["seq"], e["finalStatus"], e["status"]) for e in closed] == [
        ("closed", 3184595906, 1, schema.FINAL_STATUS_UNKNOWN, "closed")
    ]


def test_restart_reconciles_against_stored_state() -> None:
    first = OrderBook(USER)
    events = _book_events(first, frontend_orders(), T0)
    stored = [e for e in events if e["oid"] != 3184595907]  # 07 was never stored open
    restarted = OrderBook(USER)
    restarted.load(stored)
    orders = [o for o in frontend_orders() if o["oid"] != 3184595906]
    for o in orders:
        o["children"] = [c for c in o["children"] if c["oid"] != 3184595906]
    again = _book_events(restarted, orders, T1)
    assert sorted((e["action"], e["oid"]) for e in again) == [("closed", 3184595906), ("new", 3184595907)]


def test_stale_snapshot_detected() -> None:
    book = OrderBook(USER)
    book.apply((), observed_at=T0, server_ms=2000)
    assert book.is_stale(1999) and not book.is_stale(2000) and not book.is_stale(None)


def test_positions_written_only_on_change_and_close() -> None:
    book = PositionBook(USER)
    msg = decode_frame(encode(webdata2_frame()))
    (doc,) = book.apply_raw(msg.data.clearinghouseState, observed_at=T0)
    assert (doc["coin"], doc["szi"], doc["leverage"], doc["serverTime"].year) == ("BTC", "-0.0001", 1, 2025)
    frame = webdata2_frame(server_time=1750912509999)
    frame["data"]["clearinghouseState"]["assetPositions"][0]["position"]["unrealizedPnl"] = "5.0"
    assert book.apply_raw(decode_frame(encode(frame)).data.clearinghouseState, observed_at=T1) == []
    frame["data"]["clearinghouseState"]["assetPositions"] = []
    (closed,) = book.apply_raw(decode_frame(encode(frame)).data.clearinghouseState, observed_at=T1)
    assert closed["szi"] == "0.0" and closed["coin"] == "BTC"


order_strategy = st.builds(
    FrontendOrder,
    coin=st.sampled_from(["BTC", "ETH"]),
    side=st.sampled_from(["B", "A"]),
    limitPx=st.sampled_from(["1.0", "2.0", "3.5"]),
    sz=st.sampled_from(["0.0", "1.0", "2.0"]),
    oid=st.integers(1, 9),
    timestamp=st.integers(1_700_000_000_000, 1_700_000_000_100),
    origSz=st.sampled_from([None, "2.0"]),
    isTrigger=st.booleans(),
    tif=st.sampled_from([None, "Gtc"]),
)
parent_strategy = st.builds(
    lambda parent, kids: msgspec.structs.replace(parent, children=tuple(kids)),
    order_strategy, st.lists(order_strategy, max_size=2),
)
snapshot_sequences = st.lists(st.lists(order_strategy | parent_strategy, max_size=6).map(tuple), min_size=1,
                              max_size=8)


@settings(max_examples=300, deadline=None)
@given(snapshot_sequences)
def test_raw_fast_path_gives_the_same_events_as_the_full_diff(sequence: list[tuple[FrontendOrder, ...]]) -> None:
    fast, full = OrderBook(USER), OrderBook(USER)
    for i, snapshot in enumerate(sequence):
        at = T0 + timedelta(seconds=i)
        items = msgspec.json.decode(msgspec.json.encode(snapshot), type=tuple[msgspec.Raw, ...])
        got = fast.apply_raw(items, observed_at=at)
        want = full.apply(decode_orders(items), observed_at=at)
        assert sorted(got, key=repr) == sorted(want, key=repr)
        assert fast.orders == full.orders


def test_a_tracked_open_order_costs_at_most_300_bytes() -> None:
    """Python allocations kept per tracked order (~20,000 orders of 800 traders, as benchmark 3
    draws them), counted by tracemalloc: exact, unlike the benchmark's RSS. 260 B here when
    written; a digest -> oid dict per book to match snapshots had made it 341 B (375 B of RSS)."""
    rng, market = random.Random(3), Market.load()
    frames, oid = [], 300_000_000_000
    for user in trader_addresses(3, 800):
        orders, oid = trader_orders(rng, market, user, rng.randint(5, 45), oid)
        frames.append(encode({"channel": "openOrders", "data": {"dex": "", "user": user, "orders": orders}}))
    gc.collect()
    tracemalloc.start()
    try:
        books = {}
        for frame in frames:
            msg = decode_frame(frame)
            assert isinstance(msg, OpenOrdersMsg)
            books[msg.data.user] = book = OrderBook(msg.data.user)
            book.apply_raw(msg.data.orders, observed_at=T0)
        del frames, msg
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    orders = sum(len(book.orders) for book in books.values())
    assert orders > 15_000
    assert kept / orders <= TARGET_BYTES, f"{kept / orders:.0f} bytes per tracked order"
