"""The node's info server stubbed (``--serve-info``), and the orders, lines and reads the node
source's service tests share (tests/collector/test_node_gap_health.py, test_node_resync.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pymongo
from aiohttp import web

from collector_service import schema
from tests.collector.node_files import FIXTURES, append, block_line, hour_path, node_time, sample_status_blocks
from tests.mongo_server import free_port

USER = "0x00000000000000000000000000000000000000d4"
AT = datetime(2026, 4, 30, 20, 0, tzinfo=UTC)


def an_order(oid: int, at: datetime) -> dict[str, Any]:
    """The sample's first open order as ``oid``, placed at ``at``, without a cloid."""
    for line in sample_status_blocks():
        for event in json.loads(line)["events"]:
            if event["status"] == "open":
                return {**event["order"], "oid": oid, "timestamp": int(at.timestamp() * 1000), "cloid": None}
    raise AssertionError("the sample has an open status")


def a_status(status: str, order: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A node order-status event of :data:`USER`."""
    return {"time": node_time(at), "user": USER, "hash": None, "builder": None, "status": status, "order": order}


class InfoStub:
    """The node's info server (``--serve-info``), answering what the test sets."""

    def __init__(self) -> None:
        self.open_orders: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body["type"])
        answers: dict[str, Any] = {
            "frontendOpenOrders": self.open_orders,
            "historicalOrders": self.history,
            "userFillsByTime": [],
            "clearinghouseState": json.loads((FIXTURES / "clearinghouseState_rest_response.json").read_text()),
            "orderStatus": {"status": "unknownOid"},
            "perpDexs": [None],
            "twapHistory": [],
        }
        return web.json_response(answers[body["type"]])

    async def __aenter__(self) -> InfoStub:
        app = web.Application()
        app.router.add_post("/info", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/info"


def write_block(data_dir: Path, number: int, statuses: list[Any], fills: list[Any] | None = None) -> None:
    """Block ``number`` (``number`` seconds after :data:`AT`) in both by-block streams of :data:`AT`'s hour."""
    at = AT + timedelta(seconds=number)
    append(hour_path(data_dir, "order_statuses", AT), block_line(number, at, statuses))
    append(hour_path(data_dir, "fills", AT), block_line(number, at, fills or []))


def a_fill(order: dict[str, Any], sz: str, tid: int, at: datetime) -> list[Any]:
    """A node fill event of :data:`USER` filling ``sz`` of ``order``."""
    fill = json.loads((FIXTURES / "node_fills_sample.jsonl").read_bytes().splitlines()[0])[1]
    return [
        USER,
        {**fill, "coin": order["coin"], "oid": order["oid"], "sz": sz, "tid": tid, "time": int(at.timestamp() * 1000)},
    ]


def order_events(db: pymongo.database.Database, oid: int) -> list[tuple[str, str, Any]]:
    """The stored events of :data:`USER`'s ``oid``: (event key, source, final status), in order."""
    docs = db[schema.ORDERS].find({"ethAddress": USER, "oid": oid}).sort("seq", 1)
    return [(d["eventKey"], d["source"], d.get("finalStatus")) for d in docs]


async def http_get(port: int, path: str) -> tuple[int, str]:
    """The collector's health server's answer to ``GET path``: status and body."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()
