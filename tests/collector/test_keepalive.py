"""Keep-alive: a connection that goes silent (no pong, no data) is replaced, not waited on forever."""

from __future__ import annotations

from pathlib import Path

import websockets
from websockets.asyncio.server import ServerConnection

from collector_service.config import load_settings
from tests.collector.harness import RunningCollector, eventually

USER = "0x" + "12" * 20


async def test_silent_server_triggers_reconnect(tmp_path: Path, mongo_uri: str, mongo_db) -> None:
    connections = 0
    received: list[str] = []

    async def silent(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        async for message in ws:  # swallow subscribes and pings, answer nothing
            received.append(str(message))

    async with websockets.serve(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = load_settings(
            mongo_uri=mongo_uri, mongo_db=mongo_db.name, hyperliquid_ws_url=f"ws://127.0.0.1:{port}/ws",
            hyperliquid_info_url=f"http://127.0.0.1:{port}/info", trader_addresses=USER,
            collector_data_dir=tmp_path, collector_health_port=0,
            trader_ws_ping_interval=0.3, trader_ws_pong_timeout=0.3,
        )
        async with RunningCollector(settings) as run:
            # the server's handler starts before the collector has read the handshake's answer
            # and counted its reconnect: wait for both
            await eventually(lambda: connections >= 3 and run.service.stats.reconnects["default"] >= 2,
                             timeout=20, what="reconnects after missing pongs")
    assert '{"method":"ping"}' in received
    assert any('"type":"openOrders"' in m and USER in m for m in received)
