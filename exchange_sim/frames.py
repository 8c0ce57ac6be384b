"""WebSocket frames as bytes, built by splicing pre-serialized parts (no re-serialization)."""

from __future__ import annotations

from typing import Any

import orjson

from exchange_sim.market import Market

PONG = b'{"channel":"pong"}'


def error_frame(text: str) -> bytes:
    """An error frame; it never echoes the request (PROTOCOL.md §1.1)."""
    return orjson.dumps({"channel": "error", "data": text})


def ack_frame(method: str, subscription: dict[str, Any]) -> bytes:
    """A subscriptionResponse echoing the normalized subscription."""
    return orjson.dumps(
        {
            "channel": "subscriptionResponse",
            "data": {"method": method, "subscription": subscription},
        }
    )


def with_time(state_without_time: bytes, time_ms: int) -> bytes:
    """Append `"time":ms` to a serialized clearinghouseState object that lacks it."""
    sep = b"," if len(state_without_time) > 2 else b""
    return state_without_time[:-1] + sep + b'"time":' + str(time_ms).encode() + b"}"


def open_orders_frame(user: bytes, dex: bytes, orders: bytes) -> bytes:
    """`{"channel":"openOrders","data":{"dex","user","orders"}}`; `dex` is a JSON string."""
    return b'{"channel":"openOrders","data":{"dex":' + dex + b',"user":"' + user + b'","orders":' + orders + b"}}"


def clearinghouse_frame(user: bytes, dex: bytes, state: bytes) -> bytes:
    """`{"channel":"clearinghouseState","data":{"dex","user","clearinghouseState"}}`."""
    return (
        b'{"channel":"clearinghouseState","data":{"dex":'
        + dex
        + b',"user":"'
        + user
        + b'","clearinghouseState":'
        + state
        + b"}}"
    )


def webdata2_frame(market: Market, user: bytes, state: bytes, orders: bytes, server_time: int, twaps: bytes) -> bytes:
    """A full legacy webData2 frame in the real capture's key order (~100 KB); `twaps` is the
    serialized twapStates list."""
    return b"".join(
        (
            b'{"channel":"webData2","data":{"clearinghouseState":',
            state,
            b',"leadingVaults":[],"totalVaultEquity":"0.0","openOrders":',
            orders,
            b',"agentAddress":null,"agentValidUntil":null,"cumLedger":"0.0"',
            market.wd2_meta_part,
            b',"serverTime":',
            str(server_time).encode(),
            b',"isVault":false,"user":"',
            user,
            b'","twapStates":',
            twaps,
            market.wd2_tail,
        )
    )


def twap_states_frame(user: bytes, dex: bytes, states: bytes) -> bytes:
    """`{"channel":"twapStates","data":{"dex","user","states":[[twapId, TwapState], ...]}}` (nktkas
    TwapStatesEvent)."""
    return b'{"channel":"twapStates","data":{"dex":' + dex + b',"user":"' + user + b'","states":' + states + b"}}"


def user_fills_frame(user: bytes, fills: bytes, *, snapshot: bool) -> bytes:
    """`{"channel":"userFills","data":{"isSnapshot":true,"user","fills"}}` for the snapshot;
    later frames have no isSnapshot key (measured absent, PROTOCOL.md §1.6)."""
    head = (
        b'{"channel":"userFills","data":{"isSnapshot":true,"user":"'
        if snapshot
        else b'{"channel":"userFills","data":{"user":"'
    )
    return head + user + b'","fills":' + fills + b"}}"


def order_updates_frame(updates: bytes) -> bytes:
    """An orderUpdates frame: a list of WsOrder, and no user (PROTOCOL.md §1.6)."""
    return b'{"channel":"orderUpdates","data":' + updates + b"}"


def l2_book_frame(data: bytes) -> bytes:
    """`{"channel":"l2Book","data":{"coin","time","levels"}}` around a serialized data object."""
    return b'{"channel":"l2Book","data":' + data + b"}"
