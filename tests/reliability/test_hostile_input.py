"""Hostile input: the frame parser and the diff under arbitrary, truncated, mistyped and huge
input (hypothesis), an exchange that sends an oversized frame and garbage, and bad settings."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector_service import exchange, schema
from collector_service.config import load_settings
from collector_service.events.tracker import OrderBook, flatten
from collector_service.events.wire import (
    NULL,
    ClearinghouseMsg,
    FrameError,
    FrontendOrder,
    Message,
    OpenOrdersMsg,
    WebData2Msg,
    decode_clearinghouse,
    decode_frame,
    decode_orders,
)
from tests.collector.frames import USER, encode, frontend_orders, open_orders_frame, webdata2_frame
from tests.collector.harness import RunningCollector, eventually
from tests.reliability.collector_process import collector_env

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
VALID = [encode(open_orders_frame(frontend_orders())), encode(webdata2_frame(frontend_orders(), 1))]
ORDER_KEYS = list(frontend_orders()[0])


def decode_fully(raw: bytes | str) -> Message:
    """Decode a frame and the per-user payloads the collector decodes when they change."""
    msg = decode_frame(raw)
    if isinstance(msg, OpenOrdersMsg):
        decode_orders(msg.data.orders)
    elif isinstance(msg, WebData2Msg):
        decode_orders(msg.data.openOrders)
        if msg.data.clearinghouseState != NULL:
            decode_clearinghouse(msg.data.clearinghouseState)
    elif isinstance(msg, ClearinghouseMsg):
        decode_clearinghouse(msg.data.clearinghouseState)
    return msg


def decodes_or_frame_error(raw: bytes | str) -> None:
    try:
        decode_fully(raw)
    except FrameError as exc:
        assert exc.kind in ("non_json", "malformed", "invalid", "unknown_channel")
        assert str(exc)


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_any_bytes_decode_or_raise_frame_error(raw: bytes | str) -> None:
    decodes_or_frame_error(raw)


@given(json_values, st.sampled_from(["openOrders", "webData2", "clearinghouseState", "error", "pong", "x"]))
def test_any_json_in_any_channel_decodes_or_raises_frame_error(data: Any, channel: str) -> None:
    decodes_or_frame_error(json.dumps(data))
    decodes_or_frame_error(json.dumps({"channel": channel, "data": data}))


@given(st.sampled_from(VALID), st.data())
def test_truncated_frames_raise_frame_error(raw: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(FrameError):
        decode_fully(raw[:cut])


@given(st.sampled_from(ORDER_KEYS), json_values)
def test_wrong_type_in_any_order_field_rejects_the_frame_saying_where(key: str, value: Any) -> None:
    order = frontend_orders()[0]
    order[key] = value
    try:
        msg = decode_fully(encode(open_orders_frame([order])))
    except FrameError as exc:
        assert exc.kind == "invalid" and "openOrders" in str(exc)
        return
    assert isinstance(msg, OpenOrdersMsg)  # the value happened to fit the field's type


@given(st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False))
def test_timestamps_no_date_can_hold_are_rejected_at_the_parser(stamp: float) -> None:
    order = frontend_orders()[0] | {"timestamp": stamp}
    if isinstance(stamp, int) and 0 <= stamp < 253_402_300_800_000:
        assert isinstance(decode_fully(encode(open_orders_frame([order]))), OpenOrdersMsg)
    else:
        with pytest.raises(FrameError, match="timestamp"):
            decode_fully(encode(open_orders_frame([order])))


addresses = st.text("0123456789abcdefABCDEF", min_size=40, max_size=40).map(lambda h: "0x" + h)


@given(addresses, st.text(max_size=30), st.text(max_size=30))
def test_unknown_statuses_order_types_and_mixed_case_addresses_are_kept(user: str, order_type: str, tif: str) -> None:
    order = frontend_orders()[0] | {"orderType": order_type, "tif": tif, "status": "neverSeenBefore"}
    msg = decode_fully(encode(webdata2_frame([order], 5)))
    assert isinstance(msg, WebData2Msg)
    assert decode_orders(msg.data.openOrders)[0].orderType == order_type
    msg = decode_fully(encode(open_orders_frame([order], user=user)))
    assert isinstance(msg, OpenOrdersMsg) and msg.data.user.lower() == user.lower()


decimals = st.sampled_from(["0", "0.1", "1", "1.0", "25000.5", "-3", "1e3", "abc", ""])
orders = st.builds(
    FrontendOrder,
    coin=st.sampled_from(["BTC", "ETH", "@107", "", "ünï"]),
    side=st.sampled_from(["B", "A", "?"]),
    limitPx=decimals,
    sz=decimals,
    oid=st.integers(0, 12),
    timestamp=st.integers(0, 253_402_300_799_999),  # what decode_frame lets through
    origSz=st.none() | decimals,
    triggerPx=st.none() | decimals,
    isTrigger=st.booleans(),
    reduceOnly=st.booleans(),
    orderType=st.none() | st.text(max_size=8),
    tif=st.none() | st.sampled_from(["Gtc", "Alo", "Ioc", "FrontendMarket", "zz"]),
)
with_children = st.builds(
    lambda parent, kids: msgspec.structs.replace(parent, children=tuple(kids)), orders, st.lists(orders, max_size=2)
)
snapshots = st.lists(st.lists(orders | with_children, max_size=6).map(tuple), min_size=1, max_size=6)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150, deadline=None)
@given(snapshots)
def test_diff_of_any_snapshot_sequence_is_consistent(sequence: list[tuple[FrontendOrder, ...]]) -> None:
    book = OrderBook(USER)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    keys: dict[int, list[str]] = {}
    open_now: set[int] = set()
    for i, snapshot in enumerate(sequence):
        for event in book.apply(snapshot, observed_at=t0 + timedelta(seconds=i)):
            oid, action = event["oid"], event["action"]
            if action == schema.ACTION_NEW:
                assert oid not in open_now
                open_now.add(oid)
                keys[oid] = []  # an oid seen again after closing is a new life of the order
            elif action == schema.ACTION_CLOSED:
                open_now.remove(oid)
                assert event["finalStatus"] == schema.FINAL_STATUS_UNKNOWN
            else:
                assert oid in open_now and event["changes"]
            keys[oid].append(event["eventKey"])
            assert len(keys[oid]) == len(set(keys[oid])), f"repeated eventKey for {oid}: {keys[oid]}"
        assert open_now == set(book.orders) == set(flatten(snapshot))


@contextlib.asynccontextmanager
async def against(hostile: Callable[[Any], Awaitable[None]], mongo_uri: str, db_name: str, data_dir: Path,
                  **overrides: Any) -> AsyncIterator[RunningCollector]:
    """The collector following USER, run against a WebSocket server that serves ``hostile``."""
    async with websockets.serve(hostile, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        settings_ = load_settings(
            mongo_uri=mongo_uri, mongo_db=db_name, hyperliquid_ws_url=f"ws://127.0.0.1:{port}/ws",
            hyperliquid_info_url="http://127.0.0.1:9/info", trader_addresses=USER, collector_health_port=0,
            collector_data_dir=data_dir, **overrides,
        )
        async with RunningCollector(settings_) as run:
            yield run


async def test_oversized_frame_and_garbage_reconnect_without_crashing(
    tmp_path: Path, mongo_uri: str, mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    connections = 0

    async def hostile(ws: Any) -> None:
        nonlocal connections
        connections += 1
        await ws.recv()  # the first subscribe
        for junk in ("not json", "{\"channel\": \"openOrders\", \"da", '{"channel":"openOrders","data":{"user":5}}',
                     '{"channel":"surprise","data":{}}', "[1,2,3]"):
            await ws.send(junk)
        await ws.send("x" * (exchange.MAX_FRAME_BYTES + 1))
        await ws.wait_closed()

    caplog.set_level(logging.INFO, logger="collector_service")
    async with against(hostile, mongo_uri, mongo_db.name, tmp_path) as run:
        await eventually(lambda: connections >= 2, timeout=20, what="reconnect after the oversized frame")
        bad = run.service.stats.bad_frames
        assert bad["too_big"] >= 1 and bad["non_json"] >= 1 and bad["malformed"] >= 1 and bad["invalid"] >= 1
        assert bad["unknown_channel"] >= 1
    text = caplog.text
    assert "event=frame_too_big conn=" in text and f"limit_bytes={exchange.MAX_FRAME_BYTES}" in text
    assert "event=bad_frame" in text and "kind=invalid" in text
    assert sum("kind=malformed" in r.getMessage() for r in caplog.records) <= 1, "bad frames are rate-limited"


BAD_SETTINGS = [
    ("TRADER_WS_CLIENTS", "many"),
    ("TRADER_WS_CLIENTS", "0"),
    ("TRADER_WS_MESSAGE_BUFFER_SIZE", "-5"),
    ("TRADER_ORDERS_WS_FLUSH_INTERVAL", "soon"),
    ("MONGO_URI", "http://127.0.0.1:27017"),
    ("HYPERLIQUID_WS_URL", "https://api.hyperliquid.xyz/ws"),
    ("TRADER_ADDRESSES", "0x1234"),
    ("TRADER_WS_FEED", "trades"),
    ("TRADER_WS_SOURCE_ADDRESSES", "127.0.0.2,localhost"),
    ("COLLECTOR_HEALTH_PORT", "70000"),
    ("TRADER_ADDRESSES_FILE", "/nonexistent/traders.txt"),
    ("TRADER_SHARD_INDEX", "4"),
]


def check_config(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector_service", "check-config"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_bad_settings_each_exit_2_naming_the_variable(tmp_path: Path) -> None:
    good = {"trader_addresses": "0x" + "ab" * 20, "collector_data_dir": tmp_path}
    runs = {
        (name, value): subprocess.Popen(
            [sys.executable, "-m", "collector_service", "check-config"], cwd=tmp_path, text=True,
            env=collector_env(**good, **{name: value}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for name, value in BAD_SETTINGS
    }
    for (name, value), proc in runs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, (name, value, out, err)
        assert name in err and "Traceback" not in err, (name, err)
    assert check_config(collector_env(**good), tmp_path).returncode == 0


async def test_ids_bson_cannot_hold_are_bad_frames_and_the_collector_goes_on(
    tmp_path: Path, mongo_uri: str, mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # an oid >= 2**63 went into the book, then the journal's BSON encoding raised OverflowError:
    # the collector stopped, and every restart stopped again while the order was open
    good = frontend_orders()[0] | {"children": []}
    fills = [{"coin": "BTC", "px": "50000", "sz": "0.1", "side": "B", "time": 1_750_000_000_000, "oid": oid,
              "tid": tid, "fee": "0.1"} for oid, tid in ((7, 2**64), (2**63, 8), (-1, 9), (good["oid"], 10))]

    async def hostile(ws: Any) -> None:
        await ws.recv()  # the first subscribe
        for order in (good | {"oid": 2**63}, good | {"oid": -5}, good | {"oid": 2**63 + 1, "children": [good]}):
            await ws.send(encode(open_orders_frame([order])))
        await ws.send(encode({"channel": "userFills", "data": {"user": USER, "fills": fills}}))
        await ws.send(encode(open_orders_frame([good])))
        await ws.wait_closed()

    caplog.set_level(logging.INFO, logger="collector_service")
    async with against(hostile, mongo_uri, mongo_db.name, tmp_path, trader_ws_clients=1) as run:
        await eventually(lambda: mongo_db[schema.ORDERS].find_one({"oid": good["oid"]}), what="the good order")
        await eventually(lambda: mongo_db[schema.FILLS].find_one({"tid": 10}), what="the good fill")
        assert not run.task.done()  # type: ignore[union-attr]
        bad = run.service.stats.bad_frames
        assert bad["invalid"] == 3 and bad["fill"] == 3
        assert run.service.pipeline.open_orders == 1
    assert mongo_db[schema.ORDERS].count_documents({}) == 1 and mongo_db[schema.FILLS].count_documents({}) == 1
    assert "oid" in caplog.text and "event=bad_frame" in caplog.text and "event=bad_fill" in caplog.text
