"""The node source's resync of a trader in the running service: its lines read while the
snapshot is pending wait, then are applied once (before or on top of the snapshot, by when they
were read), survive a restart, stay linked within their block, and a snapshot ahead of the files
is taken again rather than counting a fill twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pymongo
from aiohttp import web

from collector_service import schema
from tests.collector.harness import RunningCollector, eventually
from tests.collector.node_files import node_settings
from tests.collector.node_info import (
    AT,
    USER,
    InfoStub,
    a_fill,
    a_status,
    an_order,
    http_get,
    order_events,
    write_block,
)
from tests.mongo_server import free_port


class HeldStub(InfoStub):
    """An info server whose ``frontendOpenOrders`` answers only once :attr:`release` is set: a
    long resync, during which the trader's lines wait."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        if (await request.json())["type"] == "frontendOpenOrders":
            await self.release.wait()
        return await super().handle(request)


def _open_sz(db: pymongo.database.Database, oid: int) -> str | None:
    doc = db[schema.OPEN_ORDERS].find_one({"ethAddress": USER, "oid": oid})
    return None if doc is None else doc["sz"]


def _order_100(data_dir: Path) -> dict[str, Any]:
    """Order 100, 1.0 left, opened in block 1."""
    order = {**an_order(100, AT), "sz": "1.0", "origSz": "1.0"}
    write_block(data_dir, 1, [a_status("open", order, AT)])
    return order


async def _held_resync(run: RunningCollector, data_dir: Path, db: pymongo.database.Database) -> None:
    """Once order 100 is open, a gap: the trader resyncs, and its snapshot is slow to come."""
    await eventually(lambda: _open_sz(db, 100) == "1.0", what="order 100 open")
    write_block(data_dir, 5, [])
    await eventually(lambda: USER in run.service.node.resyncs.waiting, what="the resync")  # type: ignore[union-attr]


@contextlib.asynccontextmanager
async def _pending_resync(
    tmp_path: Path, mongo_uri: str, db: pymongo.database.Database
) -> AsyncIterator[tuple[HeldStub, RunningCollector, Path, dict[str, Any]]]:
    """A collector whose trader resyncs after a gap once order 100 is open, its snapshot held."""
    data_dir = tmp_path / "hl" / "data"
    order = _order_100(data_dir)
    async with HeldStub() as stub:
        settings = node_settings(mongo_uri, db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest")
        async with RunningCollector(settings) as run:
            await _held_resync(run, data_dir, db)
            yield stub, run, data_dir, order


async def test_lines_that_waited_for_a_resync_are_not_applied_twice(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    async with _pending_resync(tmp_path, mongo_uri, mongo_db) as (stub, run, data_dir, order):
        # while the snapshot is pending, the node writes a partial fill of 100 (0.3) and a
        # new order 200, which wait for it
        at = AT + timedelta(seconds=6)
        write_block(data_dir, 6, [a_status("open", an_order(200, at), at)], [a_fill(order, "0.3", 61, at)])
        await eventually(
            lambda: (mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "fills"}) or {}).get("blockNumber") == 6,
            what="the lines read while the snapshot is pending",
        )
        # the snapshot, taken after them, includes both: 0.7 of 100 left, and 200
        stub.open_orders = [{**order, "sz": "0.7"}, an_order(200, at)]
        stub.release.set()
        fill = await eventually(lambda: mongo_db[schema.FILLS].find_one({"tid": 61}), what="the waiting fill")
        assert fill["source"] == "node"
        await eventually(lambda: USER not in run.service.node.resyncs.waiting, what="the resync done")  # type: ignore[union-attr]
        await eventually(lambda: mongo_db[schema.ORDERS].count_documents({"oid": 100}) >= 2, what="100 updated")
        assert _open_sz(mongo_db, 100) == "0.7", "the snapshot includes the fill: not applied again"
        assert order_events(mongo_db, 200) == [("new", "node", None)]  # its line, applied before the snapshot
        # lines after the snapshot apply on top of it: a fill, then the cancel closes it
        later = AT + timedelta(seconds=7)
        write_block(data_dir, 7, [], [a_fill(order, "0.2", 71, later)])
        await eventually(lambda: _open_sz(mongo_db, 100) == "0.5", what="100 after the next fill")
        write_block(data_dir, 8, [a_status("canceled", {**order, "sz": "0.5"}, later)])
        await eventually(lambda: _open_sz(mongo_db, 100) is None, what="100 closed by its line")
    sizes = [d["sz"] for d in mongo_db[schema.ORDERS].find({"oid": 100}).sort("seq", 1)]
    assert sizes == ["1.0", "0.7", "0.5", "0.5"], sizes


async def test_lines_waiting_for_a_resync_survive_a_restart(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    # The lines a resyncing trader's snapshot waits for are behind the checkpoint: a restart
    # before the snapshot came must find them again (here the info server answers only the
    # current state, as the node's does: no history, no fills, so nothing else could tell)
    data_dir = tmp_path / "hl" / "data"
    order = _order_100(data_dir)
    at = AT + timedelta(seconds=6)
    async with HeldStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest")
        async with RunningCollector(settings) as run:
            await _held_resync(run, data_dir, mongo_db)
            write_block(
                data_dir,
                6,
                [a_status("open", an_order(200, at), at), a_status("canceled", an_order(300, AT), at)],
                [a_fill(order, "0.3", 61, at)],
            )
            await eventually(
                lambda: (mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "fills"}) or {}).get("blockNumber") == 6,
                what="the checkpoint past the waiting lines",
            )
        stub.open_orders = [{**order, "sz": "0.7"}, an_order(200, at)]
        stub.release.set()
        async with RunningCollector(settings) as run:
            await eventually(
                lambda: order_events(mongo_db, 300) == [("new", "node", None), ("closed", "node", "canceled")],
                what="300 closed by its waiting line",
            )
            fill = await eventually(lambda: mongo_db[schema.FILLS].find_one({"tid": 61}), what="the waiting fill")
            assert fill["source"] == "node"
            await eventually(lambda: USER not in run.service.node.resyncs.waiting, what="the resync done")  # type: ignore[union-attr]
            assert _open_sz(mongo_db, 100) == "0.7" and order_events(mongo_db, 200) == [("new", "node", None)]
        assert mongo_db[schema.NODE_WAITING].count_documents({}) == 0


async def test_lines_that_waited_for_a_resync_are_linked_only_within_their_block(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    # a cancel in one block and an unrelated order alike (no cloid) in the next, both waiting
    async with _pending_resync(tmp_path, mongo_uri, mongo_db) as (stub, run, data_dir, order):
        at = AT + timedelta(seconds=6)
        write_block(data_dir, 6, [a_status("canceled", an_order(300, AT), at)])
        write_block(data_dir, 7, [a_status("open", an_order(400, at), at + timedelta(seconds=1))])
        await eventually(
            lambda: (mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses"}) or {}).get("blockNumber")
            == 7,
            what="the lines read while the snapshot is pending",
        )
        stub.open_orders = [order, an_order(400, at)]
        stub.release.set()
        await eventually(lambda: USER not in run.service.node.resyncs.waiting, what="the resync done")  # type: ignore[union-attr]
        await eventually(lambda: len(order_events(mongo_db, 300)) == 2, what="300 closed")
    assert not list(mongo_db[schema.ORDERS].find({"replaceMatch": {"$exists": True}})), "linked across blocks"


class AheadStub(InfoStub):
    """An info server ahead of the node's files (as the public API can be): once its first
    ``frontendOpenOrders`` answer is sent, :attr:`after_answer` writes the lines of what that
    answer already included."""

    def __init__(self, after_answer: Callable[[], None]) -> None:
        super().__init__()
        self.after_answer: Callable[[], None] | None = after_answer

    async def handle(self, request: web.Request) -> web.Response:
        response = await super().handle(request)
        if self.calls[-1] == "frontendOpenOrders" and self.after_answer is not None:
            await response.prepare(request)
            await response.write_eof()
            self.after_answer()
            self.after_answer = None
        return response


async def test_a_snapshot_ahead_of_the_files_does_not_count_their_later_fill_twice(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    # The snapshot already has 100's partial fill (0.3 of 1.0); the node writes that fill only
    # after the answer. Applied on top of the snapshot, 100 would be left at 0.4.
    data_dir = tmp_path / "hl" / "data"
    order = _order_100(data_dir)
    at = AT + timedelta(seconds=6)
    port = free_port()
    async with AheadStub(lambda: write_block(data_dir, 6, [], [a_fill(order, "0.3", 61, at)])) as stub:
        stub.open_orders = [{**order, "sz": "0.7"}]
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url,
                                 node_start="earliest", collector_health_port=port)
        async with RunningCollector(settings) as run:
            await eventually(lambda: _open_sz(mongo_db, 100) == "1.0", what="order 100 open")
            write_block(data_dir, 5, [])  # blocks 2-4 skipped: a gap, the trader resyncs
            await eventually(lambda: mongo_db[schema.FILLS].find_one({"tid": 61}), what="the fill written late")
            await eventually(lambda: USER not in run.service.node.resyncs.waiting, what="the resync done")  # type: ignore[union-attr]
            assert _open_sz(mongo_db, 100) == "0.7", "the fill in the snapshot counted again"
            assert stub.calls.count("frontendOpenOrders") == 2  # the first raced the fill's line
            health = json.loads((await http_get(port, "/healthz"))[1])
            assert health["node_resync_ambiguous"] == 0
            assert "orderwatch_node_resync_ambiguous 0.0" in (await http_get(port, "/metrics"))[1]
    sizes = [d["sz"] for d in mongo_db[schema.ORDERS].find({"oid": 100}).sort("seq", 1)]
    assert sizes == ["1.0", "0.7"], sizes
