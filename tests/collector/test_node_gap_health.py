"""The node source in the running service: events from the files, a block gap resynced from the
node's info server with what the gap hid recovered, and /healthz and /metrics telling it all,
including a stalled node."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pymongo
import pytest
from aiohttp import web

from collector_service import schema
from collector_service.sources import node as source
from collector_service.sources.node_resync import Resyncs
from tests.collector.harness import RunningCollector, eventually
from tests.collector.node_files import (
    FIXTURES,
    append,
    block_line,
    hour_path,
    node_settings,
    node_time,
    sample_status_blocks,
)
from tests.mongo_server import free_port

USER = "0x00000000000000000000000000000000000000d4"
AT = datetime(2026, 4, 30, 20, 0, tzinfo=UTC)


def _order(oid: int, at: datetime) -> dict[str, Any]:
    for line in sample_status_blocks():
        for event in json.loads(line)["events"]:
            if event["status"] == "open":
                return {**event["order"], "oid": oid, "timestamp": int(at.timestamp() * 1000), "cloid": None}
    raise AssertionError("the sample has an open status")


def _status(status: str, order: dict[str, Any], at: datetime) -> dict[str, Any]:
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
    at = AT + timedelta(seconds=number)
    append(hour_path(data_dir, "order_statuses", AT), block_line(number, at, statuses))
    append(hour_path(data_dir, "fills", AT), block_line(number, at, fills or []))


def _fill(order: dict[str, Any], sz: str, tid: int, at: datetime) -> list[Any]:
    fill = json.loads((FIXTURES / "node_fills_sample.jsonl").read_bytes().splitlines()[0])[1]
    return [
        USER,
        {**fill, "coin": order["coin"], "oid": order["oid"], "sz": sz, "tid": tid, "time": int(at.timestamp() * 1000)},
    ]


def _events(db: pymongo.database.Database, oid: int) -> list[tuple[str, str, Any]]:
    docs = db[schema.ORDERS].find({"ethAddress": USER, "oid": oid}).sort("seq", 1)
    return [(d["eventKey"], d["source"], d.get("finalStatus")) for d in docs]


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def test_a_block_gap_is_resynced_and_health_shows_gaps_and_stalls(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "hl" / "data"
    for number in range(1, 11):
        write_block(data_dir, number, [_status("open", _order(100, AT), AT)] if number == 3 else [])
    port = free_port()
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest",
                                 collector_health_port=port)
        async with RunningCollector(settings) as run:
            await eventually(lambda: _events(mongo_db, 100) == [("new", "node", None)], what="order 100 from a line")
            status, body = await _get(port, "/healthz")
            node = json.loads(body)["node"]["order_statuses"]
            assert status == 200 and (node["last_block"], node["gaps"], node["layout"]) == (10, 0, "by_block")
            assert stub.calls == []  # resumed from the files alone: no resync
            assert run.service.feeds == [] and run.service.node is not None

            # the node skips blocks 11..29; meanwhile order 100 was cancelled, 200 opened, and 300
            # opened and was cancelled: only the node's info server and the history can tell
            gap_end = AT + timedelta(seconds=20)
            stub.open_orders = [_order(200, gap_end)]
            stub.history = [
                {"order": _order(100, AT), "status": "canceled", "statusTimestamp": int(gap_end.timestamp() * 1000)},
                {
                    "order": _order(300, gap_end),
                    "status": "canceled",
                    "statusTimestamp": int(gap_end.timestamp() * 1000) + 5,
                },
                {"order": _order(200, gap_end), "status": "open", "statusTimestamp": int(gap_end.timestamp() * 1000)},
            ]
            write_block(data_dir, 30, [])
            await eventually(lambda: _events(mongo_db, 200) == [("new", "rest", None)], what="200 from the resync")
            await eventually(
                lambda: _events(mongo_db, 300) == [("new", "rest", None), ("closed", "rest", "canceled")],
                what="300, which lived inside the gap",
            )
            await eventually(
                lambda: _events(mongo_db, 100) == [("new", "node", None), ("closed", "rest", "canceled")],
                what="100 closed by the resync, its outcome from the history",
            )
            assert "frontendOpenOrders" in stub.calls and "historicalOrders" in stub.calls

            # lines after the gap still count, on top of the resynced state; a fill refreshes positions
            at = gap_end + timedelta(seconds=1)
            write_block(
                data_dir, 31, [_status("canceled", _order(200, gap_end), at)], [_fill(_order(200, at), "0.001", 7, at)]
            )
            await eventually(
                lambda: _events(mongo_db, 200) == [("new", "rest", None), ("closed", "node", "canceled")],
                what="200 closed by its line",
            )
            status, body = await _get(port, "/healthz")
            node = json.loads(body)["node"]["order_statuses"]
            assert (node["gaps"], node["blocks_missing"], node["last_block"], node["stalled"]) == (1, 19, 31, False)
            assert json.loads(body)["node_traders_resyncing"] == 0
            _, metrics = await _get(port, "/metrics")
            assert 'orderwatch_node_block_gaps{stream="order_statuses"} 1.0' in metrics
            assert 'orderwatch_node_blocks_missing{stream="fills"} 19.0' in metrics
            assert 'orderwatch_node_last_block{stream="order_statuses"} 31.0' in metrics
            fill = await eventually(lambda: mongo_db[schema.FILLS].find_one({"ethAddress": USER}), what="the fill")
            assert (fill["oid"], fill["tid"], fill["source"], fill["blockNumber"]) == (200, 7, "node", 31)
            position = await eventually(
                lambda: mongo_db[schema.POSITIONS].find_one({"ethAddress": USER}),
                what="positions refreshed after the fill",
            )
            assert position["source"] == "node" and "clearinghouseState" in stub.calls

            # a file that shrinks under the reader stops that stream, loudly; the other goes on
            hour_path(data_dir, "fills", AT).write_bytes(b"")
            write_block(data_dir, 32, [_status("canceled", _order(400, at), at)])
            await eventually(
                lambda: "truncated" in (run.service.health()["node"]["fills"]["error"] or ""),
                what="the truncated fills file reported",
            )
            await eventually(
                lambda: _events(mongo_db, 400) == [("new", "node", None), ("closed", "node", "canceled")],
                what="statuses read on without the fills",
            )
            status, _ = await _get(port, "/healthz")
            assert status == 503

            monkeypatch.setattr(source, "STALL_S", 0.3)  # the node writes nothing more
            await eventually(lambda: run.service.health()["node"]["order_statuses"]["stalled"], what="the stall")
            status, body = await _get(port, "/healthz")
            assert status == 503 and json.loads(body)["node"]["fills"]["stalled"] is True
            assert 'orderwatch_node_stalled{stream="order_statuses"} 1.0' in (await _get(port, "/metrics"))[1]


async def test_start_now_begins_at_the_end_of_the_files_and_resyncs_the_traders(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    data_dir = tmp_path / "hl" / "data"
    write_block(data_dir, 1, [_status("open", _order(500, AT), AT)])  # before we start: not read
    async with InfoStub() as stub:
        stub.open_orders = [_order(500, AT)]
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url)
        async with RunningCollector(settings):
            # no checkpoint, NODE_START=now: the open order comes from the resync, not the old line
            await eventually(lambda: _events(mongo_db, 500) == [("new", "rest", None)], what="500 from the resync")
            write_block(data_dir, 2, [_status("filled", _order(500, AT), AT + timedelta(seconds=2))])
            await eventually(
                lambda: _events(mongo_db, 500) == [("new", "rest", None), ("closed", "node", "filled")],
                what="500 closed by the next line",
            )
            assert stub.calls.count("frontendOpenOrders") == 1
        checkpoint = mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses"})
        assert checkpoint is not None and checkpoint["blockNumber"] == 2


async def test_a_restart_before_the_first_twap_resumes_without_a_resync(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hourly layout: the TWAP statuses' folder appears with the first TWAP. A stream with no file
    # yet has missed nothing, so a restart before it still resumes from the checkpoints of the others.
    data_dir = tmp_path / "hl" / "data"
    path = hour_path(data_dir, "order_statuses", AT, by_block=False)
    hourly = ("time", "user", "status", "order")

    def line(status: str, oid: int, at: datetime) -> bytes:
        event = _status(status, _order(oid, AT), at)
        return json.dumps({k: event[k] for k in hourly}, separators=(",", ":")).encode() + b"\n"

    append(path, line("open", 500, AT))
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_layout="hourly")
        stub.open_orders = [_order(500, AT)]
        async with RunningCollector(settings) as run:  # no checkpoint, NODE_START=now: a resync
            await eventually(lambda: _events(mongo_db, 500) == [("new", "rest", None)], what="500 from the resync")
            await eventually(lambda: run.service.node is not None and not run.service.node.resyncs.waiting,
                             what="the resync done")
            append(path, line("open", 501, AT + timedelta(seconds=1)))
            await eventually(lambda: _events(mongo_db, 501) == [("new", "node", None)], what="501 from its line")
        asked = len(stub.calls)
        monkeypatch.setattr(source, "STALL_S", 0.3)
        async with RunningCollector(settings) as run:
            append(path, line("canceled", 501, AT + timedelta(seconds=2)))
            await eventually(lambda: len(_events(mongo_db, 501)) == 2, what="501 closed by the next line")
            await eventually(lambda: run.service.health()["node"]["order_statuses"]["stalled"], what="a quiet node")
            twaps = run.service.health()["node"]["twap_statuses"]
        assert stub.calls[asked:] == [], "a restart before the first TWAP line resynced"
        assert (twaps["file"], twaps["stalled"]) == (None, False), twaps  # quiet TWAP statuses are no stall
        assert run.service.node is not None and run.service.node.figures()["twap_statuses"]["layout"] == "hourly"


async def test_a_gap_is_journaled_before_the_checkpoint_that_passes_it(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The collector dies right after reading past skipped blocks, before any resync task ran (as
    # a kill -9 can land): the gap must already be journaled, or the next start resumes past the
    # missing blocks with nothing to recover.
    data_dir = tmp_path / "hl" / "data"
    for number in (1, 2, 30):
        write_block(data_dir, number, [])
    gap_end = AT + timedelta(seconds=20)
    async with InfoStub() as stub:
        stub.history = [
            {"order": _order(300, gap_end), "status": "canceled", "statusTimestamp": int(gap_end.timestamp() * 1000)}
        ]
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest")
        with monkeypatch.context() as patch:
            patch.setattr(Resyncs, "start_all", lambda self, since: None)  # the crash
            async with RunningCollector(settings):
                await eventually(
                    lambda: (mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses"}) or {}).get(
                        "blockNumber"
                    )
                    == 30,
                    what="the checkpoint past the gap",
                )
        assert mongo_db[schema.RECOVERIES].find_one({"_id": USER}) is not None, "the gap was not journaled"
        async with RunningCollector(settings):  # the next start recovers what the gap hid
            await eventually(
                lambda: _events(mongo_db, 300) == [("new", "rest", None), ("closed", "rest", "canceled")],
                what="300, which lived inside the gap",
            )


async def test_a_trader_removed_and_added_back_goes_on_from_its_stored_open_orders(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    # Removed from the watch list, the trader's books were dropped; added back, the resync's
    # snapshot and the next fill started again at seq 0: keys already stored, the row stuck.
    data_dir = tmp_path / "hl" / "data"
    other = "0x00000000000000000000000000000000000000e5"
    listing = tmp_path / "traders.txt"
    listing.write_text(f"{USER}\n{other}\n")
    order = {**_order(100, AT), "sz": "1.0", "origSz": "1.0"}
    write_block(data_dir, 1, [_status("open", order, AT)])
    write_block(data_dir, 2, [], [_fill(order, "0.2", 1, AT + timedelta(seconds=2))])
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest",
                                 trader_addresses="", trader_addresses_file=listing, trader_watch_interval=0.2)
        async with RunningCollector(settings) as run:
            row = lambda: (mongo_db[schema.OPEN_ORDERS].find_one({"oid": 100}) or {}).get("sz")  # noqa: E731
            await eventually(lambda: row() == "0.8", what="1.0 -> 0.8 stored")
            listing.write_text(f"{other}\n")
            await eventually(lambda: USER not in run.service.pipeline.users, what="the trader let go")
            write_block(data_dir, 3, [], [_fill(order, "0.3", 2, AT + timedelta(seconds=3))])  # unseen: 0.5 left
            stub.open_orders = [{**order, "sz": "0.5"}]
            listing.write_text(f"{USER}\n{other}\n")
            await eventually(lambda: row() == "0.5", what="the row at the exchange's 0.5 after the resync")
            await eventually(lambda: not run.service.node.resyncs.waiting, what="the resync done")
            write_block(data_dir, 4, [], [_fill(order, "0.1", 3, AT + timedelta(seconds=4))])
            await eventually(lambda: row() == "0.4", what="the row at 0.4 after the next fill")
            sizes = [(d["eventKey"], d["sz"]) for d in mongo_db[schema.ORDERS].find({"oid": 100}).sort("seq", 1)]
            assert sizes == [("new", "1.0"), ("updated:1", "0.8"), ("updated:2", "0.5"), ("updated:3", "0.4")]
            assert run.service.stats.events_duplicate == 0


def _write(data_dir: Path, by_block: bool, number: int, at: datetime, statuses: list[Any]) -> None:
    """Block ``number`` at ``at`` in its hour's file: one line (by block), or one line per status."""
    if by_block:
        append(hour_path(data_dir, "order_statuses", at), block_line(number, at, statuses))
        append(hour_path(data_dir, "fills", at), block_line(number, at, []))
        return
    for status in statuses:
        line = {key: status[key] for key in ("time", "user", "status", "order")}
        compact = json.dumps(line, separators=(",", ":")).encode()
        append(hour_path(data_dir, "order_statuses", at, False), compact + b"\n")


@pytest.mark.parametrize("layout", ["by_block", "hourly"])
async def test_a_pruned_checkpoint_file_ends_in_a_reported_gap_and_a_resync(
    layout: str, tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    by_block = layout == "by_block"
    data_dir = tmp_path / "hl" / "data"
    for number in range(1, 4):
        _write(data_dir, by_block, number, AT + timedelta(seconds=number),
               [_status("open", _order(100, AT), AT + timedelta(seconds=number))] if number == 2 else [])
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest",
                                 node_layout=layout)
        async with RunningCollector(settings):
            await eventually(lambda: _events(mongo_db, 100) == [("new", "node", None)], what="order 100 from a line")
        checkpoint = mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses"})
        assert checkpoint is not None and checkpoint["path"].endswith("/20")

        # while the collector is down: 100 is cancelled and 300 opened, the node writes on into
        # the next hour, and the pruner deletes the hour holding the checkpoint (and the one before)
        later = AT + timedelta(hours=1, seconds=10)
        stub.open_orders = [_order(300, later), _order(400, later)]
        stub.history = [
            {"order": _order(100, AT), "status": "canceled", "statusTimestamp": int(later.timestamp() * 1000)},
            {"order": _order(300, later), "status": "open", "statusTimestamp": int(later.timestamp() * 1000)},
        ]
        _write(data_dir, by_block, 3610, later, [_status("open", _order(400, later), later)])
        for folder in (data_dir / name / "hourly" / "20260430" for name in
                       ("node_order_statuses_by_block", "node_fills_by_block", "node_order_statuses")):
            for hour in ("19", "20"):
                (folder / hour).unlink(missing_ok=True)
        async with RunningCollector(settings) as run:
            await eventually(lambda: _events(mongo_db, 300) == [("new", "rest", None)], what="300 from the resync")
            await eventually(
                lambda: _events(mongo_db, 100) == [("new", "node", None), ("closed", "rest", "canceled")],
                what="100 closed by the resync, its outcome from the history",
            )
            # 400, read after the gap, is new once: from its line (by block, applied with the gap's
            # block) or from the snapshot (hourly, its line waited for it)
            await eventually(lambda: [e[0] for e in _events(mongo_db, 400)] == ["new"], what="400 of the next hour")
            node = run.service.health()["node"]["order_statuses"]
            assert (node["files_missing"], node["gaps"], node["error"]) == (1, 1, None), node
            if by_block:  # the gap in block numbers
                assert node["blocks_missing"] == 3606, node
            assert "frontendOpenOrders" in stub.calls
            await eventually(
                lambda: mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses"})["path"].endswith("/21"),
                what="the checkpoint in the next hour",
            )


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
    order = {**_order(100, AT), "sz": "1.0", "origSz": "1.0"}
    write_block(data_dir, 1, [_status("open", order, AT)])
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
        write_block(data_dir, 6, [_status("open", _order(200, at), at)], [_fill(order, "0.3", 61, at)])
        await eventually(
            lambda: (mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "fills"}) or {}).get("blockNumber") == 6,
            what="the lines read while the snapshot is pending",
        )
        # the snapshot, taken after them, includes both: 0.7 of 100 left, and 200
        stub.open_orders = [{**order, "sz": "0.7"}, _order(200, at)]
        stub.release.set()
        fill = await eventually(lambda: mongo_db[schema.FILLS].find_one({"tid": 61}), what="the waiting fill")
        assert fill["source"] == "node"
        await eventually(lambda: USER not in run.service.node.resyncs.waiting, what="the resync done")  # type: ignore[union-attr]
        await eventually(lambda: mongo_db[schema.ORDERS].count_documents({"oid": 100}) >= 2, what="100 updated")
        assert _open_sz(mongo_db, 100) == "0.7", "the snapshot includes the fill: not applied again"
        assert _events(mongo_db, 200) == [("new", "node", None)]  # its line, applied before the snapshot
        # lines after the snapshot apply on top of it: a fill, then the cancel closes it
        later = AT + timedelta(seconds=7)
        write_block(data_dir, 7, [], [_fill(order, "0.2", 71, later)])
        await eventually(lambda: _open_sz(mongo_db, 100) == "0.5", what="100 after the next fill")
        write_block(data_dir, 8, [_status("canceled", {**order, "sz": "0.5"}, later)])
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
                [_status("open", _order(200, at), at), _status("canceled", _order(300, AT), at)],
                [_fill(order, "0.3", 61, at)],
            )
            await eventually(
                lambda: (mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "fills"}) or {}).get("blockNumber") == 6,
                what="the checkpoint past the waiting lines",
            )
        stub.open_orders = [{**order, "sz": "0.7"}, _order(200, at)]
        stub.release.set()
        async with RunningCollector(settings) as run:
            await eventually(
                lambda: _events(mongo_db, 300) == [("new", "node", None), ("closed", "node", "canceled")],
                what="300 closed by its waiting line",
            )
            fill = await eventually(lambda: mongo_db[schema.FILLS].find_one({"tid": 61}), what="the waiting fill")
            assert fill["source"] == "node"
            await eventually(lambda: USER not in run.service.node.resyncs.waiting, what="the resync done")  # type: ignore[union-attr]
            assert _open_sz(mongo_db, 100) == "0.7" and _events(mongo_db, 200) == [("new", "node", None)]
        assert mongo_db[schema.NODE_WAITING].count_documents({}) == 0


async def test_lines_that_waited_for_a_resync_are_linked_only_within_their_block(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    # a cancel in one block and an unrelated order alike (no cloid) in the next, both waiting
    async with _pending_resync(tmp_path, mongo_uri, mongo_db) as (stub, run, data_dir, order):
        at = AT + timedelta(seconds=6)
        write_block(data_dir, 6, [_status("canceled", _order(300, AT), at)])
        write_block(data_dir, 7, [_status("open", _order(400, at), at + timedelta(seconds=1))])
        await eventually(
            lambda: (mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses"}) or {}).get("blockNumber")
            == 7,
            what="the lines read while the snapshot is pending",
        )
        stub.open_orders = [order, _order(400, at)]
        stub.release.set()
        await eventually(lambda: USER not in run.service.node.resyncs.waiting, what="the resync done")  # type: ignore[union-attr]
        await eventually(lambda: len(_events(mongo_db, 300)) == 2, what="300 closed")
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
    async with AheadStub(lambda: write_block(data_dir, 6, [], [_fill(order, "0.3", 61, at)])) as stub:
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
            health = json.loads((await _get(port, "/healthz"))[1])
            assert health["node_resync_ambiguous"] == 0
            assert "orderwatch_node_resync_ambiguous 0.0" in (await _get(port, "/metrics"))[1]
    sizes = [d["sz"] for d in mongo_db[schema.ORDERS].find({"oid": 100}).sort("seq", 1)]
    assert sizes == ["1.0", "0.7"], sizes


@pytest.mark.parametrize("away", ["let_go_while_running", "unlisted_while_down"])
async def test_a_trader_not_followed_then_listed_at_a_restart_recovers_what_it_did_meanwhile(
    away: str, tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    # The node soak's loss (#20): not followed for a while (removed from the watch list while the
    # collector ran, or while it was down), the trader's lines were read past unapplied and the
    # checkpoint moved on; the collector restarted (kill -9) with the trader listed again and
    # resumed at that checkpoint as if it had followed it throughout: its open order's fill never
    # closed it, and its order opened and cancelled meanwhile was never stored.
    data_dir = tmp_path / "hl" / "data"
    other = "0x00000000000000000000000000000000000000e5"
    listing = tmp_path / "traders.txt"
    listing.write_text(f"{USER}\n{other}\n")
    now = datetime.now(UTC)  # a gap starts when the trader was last seen: the node's lines are current
    order = _order(100, now)
    _write(data_dir, True, 1, now, [_status("open", order, now)])
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest",
                                 trader_addresses="", trader_addresses_file=listing, trader_watch_interval=0.2)
        async with RunningCollector(settings) as run:
            await eventually(lambda: _events(mongo_db, 100) == [("new", "node", None)], what="order 100 open")
            if away == "let_go_while_running":
                listing.write_text(f"{other}\n")
                await eventually(lambda: USER not in run.service.pipeline.users, what="the trader let go")
        if away == "unlisted_while_down":
            listing.write_text(f"{other}\n")
        later = datetime.now(UTC)
        _write(data_dir, True, 2, later, [_status("open", _order(200, later), later)])
        ended = [_status("filled", order, later), _status("canceled", _order(200, later), later)]
        _write(data_dir, True, 3, later, ended)
        async with RunningCollector(settings):  # a run that does not follow USER reads its lines
            await eventually(
                lambda: mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses", "blockNumber": 3}),
                what="the checkpoint past the lines of the trader not followed",
            )
        # down (kill -9 or not): listed again, as the next start reads the list
        listing.write_text(f"{USER}\n{other}\n")
        stamp = int(later.timestamp() * 1000)
        stub.history = [
            {"order": order, "status": "filled", "statusTimestamp": stamp},
            {"order": _order(200, later), "status": "canceled", "statusTimestamp": stamp},
        ]
        async with RunningCollector(settings):
            await eventually(
                lambda: [e[2] for e in _events(mongo_db, 100)] == [None, "filled"], what="100 closed as filled"
            )
            await eventually(
                lambda: [e[2] for e in _events(mongo_db, 200)] == [None, "canceled"], what="200, opened meanwhile"
            )
