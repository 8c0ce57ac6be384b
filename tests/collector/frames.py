"""Frames for collector tests, built from the real captured payloads in tests/fixtures.

No real capture of a non-empty ``openOrders`` WS frame exists; as PROTOCOL.md §5 advises, the
real ``frontendOpenOrders`` elements are wrapped in the subscription's envelope, and orders are
injected into a copy of the real ``webData2`` capture.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent.parent / "fixtures" / "hyperliquid"
USER = "0x31ca8395cf837de08b24da3f660e77761dfb974b"


@cache
def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def frontend_orders() -> list[dict[str, Any]]:
    """The real frontendOpenOrders response: a limit buy whose TP/SL children also appear top-level."""
    return copy.deepcopy(sample("frontendOpenOrders_rest_response_with_tpsl_children.json"))


def webdata2_frame(orders: list[dict[str, Any]] | None = None, server_time: int | None = None) -> dict[str, Any]:
    frame = copy.deepcopy(sample("webData2_ws_capture_subscribe_snapshot_unsubscribe.json")[1])
    if orders is not None:
        frame["data"]["openOrders"] = orders
    if server_time is not None:
        frame["data"]["serverTime"] = server_time
    return frame


def open_orders_frame(orders: list[dict[str, Any]], user: str = USER) -> dict[str, Any]:
    return {"channel": "openOrders", "data": {"dex": "", "user": user, "orders": orders}}


def encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode()
