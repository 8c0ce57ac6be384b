"""The node source in the running service: events from the files, a block gap (or a file pruned
unread) resynced from the node's info server with what the gap hid recovered, restarts around a
gap, and /healthz and /metrics telling it all, including a stalled node. The lines that wait for
a resync are in test_node_resync.py."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
import pytest

from collector_service import schema
from collector_service.sources import node as source
from collector_service.sources.node_resync import Resyncs
from tests.collector.harness import RunningCollector, eventually
from tests.collector.node_files import append, block_line, hour_path, node_settings
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


async def test_a_block_gap_is_resynced_and_health_shows_gaps_and_stalls(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "hl" / "data"
    for number in range(1, 11):
        write_block(data_dir, number, [a_status("open", an_order(100, AT), AT)] if number == 3 else [])
    port = free_port()
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest",
                                 collector_health_port=port)
        async with RunningCollector(settings) as run:
            await eventually(
                lambda: order_events(mongo_db, 100) == [("new", "node", None)], what="order 100 from a line"
            )
            status, body = await http_get(port, "/healthz")
            node = json.loads(body)["node"]["order_statuses"]
            assert status == 200 and (node["last_block"], node["gaps"], node["layout"]) == (10, 0, "by_block")
            assert stub.calls == []  # resumed from the files alone: no resync
            assert run.service.feeds == [] and run.service.node is not None

            # the node skips blocks 11..29; meanwhile order 100 was cancelled, 200 opened, and 300
            # opened and was cancelled: only the node's info server and the history can tell
            gap_end = AT + timedelta(seconds=20)
            stub.open_orders = [an_order(200, gap_end)]
            stub.history = [
                {"order": an_order(100, AT), "status": "canceled", "statusTimestamp": int(gap_end.timestamp() * 1000)},
                {
                    "order": an_order(300, gap_end),
                    "status": "canceled",
                    "statusTimestamp": int(gap_end.timestamp() * 1000) + 5,
                },
                {"order": an_order(200, gap_end), "status": "open", "statusTimestamp": int(gap_end.timestamp() * 1000)},
            ]
            write_block(data_dir, 30, [])
            await eventually(lambda: order_events(mongo_db, 200) == [("new", "rest", None)], what="200 from the resync")
            await eventually(
                lambda: order_events(mongo_db, 300) == [("new", "rest", None), ("closed", "rest", "canceled")],
                what="300, which lived inside the gap",
            )
            await eventually(
                lambda: order_events(mongo_db, 100) == [("new", "node", None), ("closed", "rest", "canceled")],
                what="100 closed by the resync, its outcome from the history",
            )
            assert "frontendOpenOrders" in stub.calls and "historicalOrders" in stub.calls

            # lines after the gap still count, on top of the resynced state; a fill refreshes positions
            at = gap_end + timedelta(seconds=1)
            write_block(
                data_dir,
                31,
                [a_status("canceled", an_order(200, gap_end), at)],
                [a_fill(an_order(200, at), "0.001", 7, at)],
            )
            await eventually(
                lambda: order_events(mongo_db, 200) == [("new", "rest", None), ("closed", "node", "canceled")],
                what="200 closed by its line",
            )
            status, body = await http_get(port, "/healthz")
            node = json.loads(body)["node"]["order_statuses"]
            assert (node["gaps"], node["blocks_missing"], node["last_block"], node["stalled"]) == (1, 19, 31, False)
            assert json.loads(body)["node_traders_resyncing"] == 0
            _, metrics = await http_get(port, "/metrics")
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
            write_block(data_dir, 32, [a_status("canceled", an_order(400, at), at)])
            await eventually(
                lambda: "truncated" in (run.service.health()["node"]["fills"]["error"] or ""),
                what="the truncated fills file reported",
            )
            await eventually(
                lambda: order_events(mongo_db, 400) == [("new", "node", None), ("closed", "node", "canceled")],
                what="statuses read on without the fills",
            )
            status, _ = await http_get(port, "/healthz")
            assert status == 503

            monkeypatch.setattr(source, "STALL_S", 0.3)  # the node writes nothing more
            await eventually(lambda: run.service.health()["node"]["order_statuses"]["stalled"], what="the stall")
            status, body = await http_get(port, "/healthz")
            assert status == 503 and json.loads(body)["node"]["fills"]["stalled"] is True
            assert 'orderwatch_node_stalled{stream="order_statuses"} 1.0' in (await http_get(port, "/metrics"))[1]


class FrozenClock:
    """The node source's ``time``: its ``monotonic`` stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now


async def test_after_a_pause_a_blocks_fills_read_first_wait_for_its_statuses(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The node pauses, then writes block 2 (order 200 partly filled, then cancelled): the reader
    # happens to read the fills first. Applied at once, the fill would shrink an order whose
    # cancel is in the same block (an ``updated`` that never was); it waits for the statuses.
    data_dir = tmp_path / "hl" / "data"
    write_block(data_dir, 1, [a_status("open", an_order(200, AT), AT)])
    clock = FrozenClock()
    monkeypatch.setattr(source, "time", clock)
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest")
        async with RunningCollector(settings) as run:
            await eventually(lambda: order_events(mongo_db, 200) == [("new", "node", None)], what="200 from its line")
            node = run.service.node
            assert node is not None
            clock.now += 2 * source.MERGE_WAIT_S  # the pause
            at = AT + timedelta(seconds=2)
            append(hour_path(data_dir, "fills", AT), block_line(2, at, [a_fill(an_order(200, at), "0.001", 7, at)]))
            await eventually(lambda: node.streams["fills"].read_block == 2, what="block 2's fills read")
            canceled = [a_status("canceled", an_order(200, AT), at)]
            append(hour_path(data_dir, "order_statuses", AT), block_line(2, at, canceled))
            await eventually(
                lambda: order_events(mongo_db, 200) == [("new", "node", None), ("closed", "node", "canceled")],
                what="200 cancelled, with no update from the fill before it",
            )
            fill = await eventually(lambda: mongo_db[schema.FILLS].find_one({"tid": 7}), what="the fill stored")
            assert fill["blockNumber"] == 2

            # statuses that stay quiet hold a fill back no longer than MERGE_WAIT_S
            at = AT + timedelta(seconds=3)
            append(hour_path(data_dir, "fills", AT), block_line(3, at, [a_fill(an_order(201, at), "0.001", 8, at)]))
            await eventually(lambda: node.streams["fills"].read_block == 3, what="block 3's fills read")
            clock.now += 2 * source.MERGE_WAIT_S
            await eventually(lambda: mongo_db[schema.FILLS].find_one({"tid": 8}), what="block 3's fill applied")


async def test_start_now_begins_at_the_end_of_the_files_and_resyncs_the_traders(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    data_dir = tmp_path / "hl" / "data"
    write_block(data_dir, 1, [a_status("open", an_order(500, AT), AT)])  # before we start: not read
    async with InfoStub() as stub:
        stub.open_orders = [an_order(500, AT)]
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url)
        async with RunningCollector(settings):
            # no checkpoint, NODE_START=now: the open order comes from the resync, not the old line
            await eventually(lambda: order_events(mongo_db, 500) == [("new", "rest", None)], what="500 from the resync")
            write_block(data_dir, 2, [a_status("filled", an_order(500, AT), AT + timedelta(seconds=2))])
            await eventually(
                lambda: order_events(mongo_db, 500) == [("new", "rest", None), ("closed", "node", "filled")],
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
        event = a_status(status, an_order(oid, AT), at)
        return json.dumps({k: event[k] for k in hourly}, separators=(",", ":")).encode() + b"\n"

    append(path, line("open", 500, AT))
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_layout="hourly")
        stub.open_orders = [an_order(500, AT)]
        async with RunningCollector(settings) as run:  # no checkpoint, NODE_START=now: a resync
            await eventually(lambda: order_events(mongo_db, 500) == [("new", "rest", None)], what="500 from the resync")
            await eventually(lambda: run.service.node is not None and not run.service.node.resyncs.waiting,
                             what="the resync done")
            append(path, line("open", 501, AT + timedelta(seconds=1)))
            await eventually(lambda: order_events(mongo_db, 501) == [("new", "node", None)], what="501 from its line")
        asked = len(stub.calls)
        monkeypatch.setattr(source, "STALL_S", 0.3)
        async with RunningCollector(settings) as run:
            append(path, line("canceled", 501, AT + timedelta(seconds=2)))
            await eventually(lambda: len(order_events(mongo_db, 501)) == 2, what="501 closed by the next line")
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
            {"order": an_order(300, gap_end), "status": "canceled", "statusTimestamp": int(gap_end.timestamp() * 1000)}
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
                lambda: order_events(mongo_db, 300) == [("new", "rest", None), ("closed", "rest", "canceled")],
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
    order = {**an_order(100, AT), "sz": "1.0", "origSz": "1.0"}
    write_block(data_dir, 1, [a_status("open", order, AT)])
    write_block(data_dir, 2, [], [a_fill(order, "0.2", 1, AT + timedelta(seconds=2))])
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest",
                                 trader_addresses="", trader_addresses_file=listing, trader_watch_interval=0.2)
        async with RunningCollector(settings) as run:
            row = lambda: (mongo_db[schema.OPEN_ORDERS].find_one({"oid": 100}) or {}).get("sz")  # noqa: E731
            await eventually(lambda: row() == "0.8", what="1.0 -> 0.8 stored")
            listing.write_text(f"{other}\n")
            await eventually(lambda: USER not in run.service.pipeline.users, what="the trader let go")
            write_block(data_dir, 3, [], [a_fill(order, "0.3", 2, AT + timedelta(seconds=3))])  # unseen: 0.5 left
            stub.open_orders = [{**order, "sz": "0.5"}]
            listing.write_text(f"{USER}\n{other}\n")
            await eventually(lambda: row() == "0.5", what="the row at the exchange's 0.5 after the resync")
            await eventually(lambda: not run.service.node.resyncs.waiting, what="the resync done")
            write_block(data_dir, 4, [], [a_fill(order, "0.1", 3, AT + timedelta(seconds=4))])
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
               [a_status("open", an_order(100, AT), AT + timedelta(seconds=number))] if number == 2 else [])
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest",
                                 node_layout=layout)
        async with RunningCollector(settings):
            await eventually(
                lambda: order_events(mongo_db, 100) == [("new", "node", None)], what="order 100 from a line"
            )
        checkpoint = mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses"})
        assert checkpoint is not None and checkpoint["path"].endswith("/20")

        # while the collector is down: 100 is cancelled and 300 opened, the node writes on into
        # the next hour, and the pruner deletes the hour holding the checkpoint (and the one before)
        later = AT + timedelta(hours=1, seconds=10)
        stub.open_orders = [an_order(300, later), an_order(400, later)]
        stub.history = [
            {"order": an_order(100, AT), "status": "canceled", "statusTimestamp": int(later.timestamp() * 1000)},
            {"order": an_order(300, later), "status": "open", "statusTimestamp": int(later.timestamp() * 1000)},
        ]
        _write(data_dir, by_block, 3610, later, [a_status("open", an_order(400, later), later)])
        for folder in (data_dir / name / "hourly" / "20260430" for name in
                       ("node_order_statuses_by_block", "node_fills_by_block", "node_order_statuses")):
            for hour in ("19", "20"):
                (folder / hour).unlink(missing_ok=True)
        async with RunningCollector(settings) as run:
            await eventually(lambda: order_events(mongo_db, 300) == [("new", "rest", None)], what="300 from the resync")
            await eventually(
                lambda: order_events(mongo_db, 100) == [("new", "node", None), ("closed", "rest", "canceled")],
                what="100 closed by the resync, its outcome from the history",
            )
            # 400, read after the gap, is new once: from its line (by block, applied with the gap's
            # block) or from the snapshot (hourly, its line waited for it)
            await eventually(
                lambda: [e[0] for e in order_events(mongo_db, 400)] == ["new"], what="400 of the next hour"
            )
            node = run.service.health()["node"]["order_statuses"]
            assert (node["files_missing"], node["gaps"], node["error"]) == (1, 1, None), node
            if by_block:  # the gap in block numbers
                assert node["blocks_missing"] == 3606, node
            assert "frontendOpenOrders" in stub.calls
            await eventually(
                lambda: mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "order_statuses"})["path"].endswith("/21"),
                what="the checkpoint in the next hour",
            )


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
    order = an_order(100, now)
    _write(data_dir, True, 1, now, [a_status("open", order, now)])
    async with InfoStub() as stub:
        settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, stub.url, node_start="earliest",
                                 trader_addresses="", trader_addresses_file=listing, trader_watch_interval=0.2)
        async with RunningCollector(settings) as run:
            await eventually(lambda: order_events(mongo_db, 100) == [("new", "node", None)], what="order 100 open")
            if away == "let_go_while_running":
                listing.write_text(f"{other}\n")
                await eventually(lambda: USER not in run.service.pipeline.users, what="the trader let go")
        if away == "unlisted_while_down":
            listing.write_text(f"{other}\n")
        later = datetime.now(UTC)
        _write(data_dir, True, 2, later, [a_status("open", an_order(200, later), later)])
        ended = [a_status("filled", order, later), a_status("canceled", an_order(200, later), later)]
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
            {"order": an_order(200, later), "status": "canceled", "statusTimestamp": stamp},
        ]
        async with RunningCollector(settings):
            await eventually(
                lambda: [e[2] for e in order_events(mongo_db, 100)] == [None, "filled"], what="100 closed as filled"
            )
            await eventually(
                lambda: [e[2] for e in order_events(mongo_db, 200)] == [None, "canceled"], what="200, opened meanwhile"
            )
