"""Fixtures: an in-process simulator on a free loopback port, and WS client helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from exchange_sim import ExchangeSim, SimConfig

START_MS = 1_760_000_000_000


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    """A scripted simulator (no random trading), fast pushes."""
    async with ExchangeSim(SimConfig(traders=30, push_interval=0.3, start_time_ms=START_MS)) as s:
        yield s


def connect(sim: ExchangeSim, ip: str = "127.0.0.1") -> Any:
    """A websockets client connection to the simulator from source address `ip`."""
    return websockets.connect(
        sim.ws_url, local_addr=(ip, 0), ping_interval=None, max_size=None, compression=None, max_queue=None
    )


def sub(typ: str, user: str, **extra: Any) -> str:
    """A subscribe request."""
    return json.dumps({"method": "subscribe", "subscription": {"type": typ, "user": user, **extra}})


WAIT_S = 10.0
"""How long a test waits for a frame it expects: generous, so a loaded machine does not fail it
(an expected frame normally comes within milliseconds; the wait ends as soon as it does)."""


async def recv_json(ws: Any, timeout: float = WAIT_S) -> dict[str, Any]:
    """The next frame, parsed."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_channel(ws: Any, channel: str, timeout: float = WAIT_S) -> dict[str, Any]:
    """The next frame on `channel`, skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("channel") == channel:
                return msg


async def quiet_for(ws: Any, channel: str, seconds: float) -> list[dict[str, Any]]:
    """All frames on `channel` received within `seconds`."""
    out = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("channel") == channel:
                    out.append(msg)
    except TimeoutError:
        pass
    return out
