"""The on-disk journal: operations survive in order, a torn tail is dropped, segments rotate."""

from __future__ import annotations

import logging
import os
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
import pytest

from collector_service.journal import Journal, record


def test_append_rotate_read_and_torn_tail(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    at = datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)
    journal.append([{"kind": "order", "doc": {"oid": 2**62, "observedAt": at}}])
    journal.append([{"kind": "final", "doc": {"oid": 1}}, {"kind": "position", "doc": {"coin": "BTC"}}])
    assert journal.sealed() == []  # the open segment is not handed out
    journal.rotate()
    (segment,) = journal.sealed()
    ops = list(Journal.read(segment))
    assert [op["kind"] for op in ops] == ["order", "final", "position"]
    assert ops[0]["doc"] == {"oid": 2**62, "observedAt": at}

    with segment.open("ab") as f:  # a crash in the middle of an append
        f.write(b"\x40\x00\x00\x00\x03kind")
    assert [op["kind"] for op in Journal.read(segment)] == ["order", "final", "position"]

    reopened = Journal(tmp_path / "j")  # a restart continues numbering after what is on disk
    reopened.append([{"kind": "order", "doc": {"oid": 3}}])
    reopened.rotate()
    assert [p.name for p in reopened.sealed()] == [segment.name, "segment-0000000002.msgpack"]
    Journal.remove(segment)
    assert len(reopened.sealed()) == 1


def test_bson_segments_of_earlier_versions_are_replayed_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "j"
    folder.mkdir()
    at = datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)
    old = [{"kind": "order", "doc": {"oid": 2**62, "observedAt": at}}, {"kind": "final", "doc": {"oid": 1}}]
    (folder / "segment-0000000007.bson").write_bytes(b"".join(bson.encode(op) for op in old) + b"\x40\x00")
    journal = Journal(folder)
    journal.append([{"kind": "position", "doc": {"coin": "BTC"}}])
    journal.rotate()
    first, second = journal.sealed()
    assert (first.name, second.name) == ("segment-0000000007.bson", "segment-0000000008.msgpack")
    assert list(Journal.read(first)) == old
    assert [op["kind"] for op in Journal.read(second)] == ["position"]


def test_a_torn_append_is_dropped_whole(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append([{"kind": "order", "doc": {"oid": 1}}])
    journal.append([{"kind": "order", "doc": {"oid": 2}}, {"kind": "node_checkpoint", "doc": {"_id": "fills"}}])
    journal.rotate()
    (segment,) = journal.sealed()
    data = segment.read_bytes()
    segment.write_bytes(data[:-3])  # the crash cut the second append short
    assert [op["doc"] for op in Journal.read(segment)] == [{"oid": 1}]


def test_replay_restores_a_missing_open_order_row_without_rolling_back(mongo_uri: str, mongo_db) -> None:
    from collector_service.metrics import Stats
    from collector_service.store import Database

    database = Database(mongo_uri, mongo_db.name)
    database.ensure_indexes()
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    base = {"ethAddress": "0x" + "ab" * 20, "oid": 7, "timestamp": at, "observedAt": at, "coin": "BTC", "side": "B",
            "limitPx": "1.0", "sz": "1.0"}
    new = {**base, "action": "new", "eventKey": "new", "seq": 0}
    update = {**base, "action": "updated", "eventKey": "updated:1", "seq": 1, "sz": "0.5"}
    stats = Stats()
    database.write([{"kind": "order", "doc": new}, {"kind": "order", "doc": update}], stats)
    mongo_db.trader_open_orders.delete_many({})  # as if the process died between the two writes
    database.write([{"kind": "order", "doc": update}], stats)  # journal replay: a duplicate
    (row,) = mongo_db.trader_open_orders.find()
    assert (row["seq"], row["sz"], row["timestamp"]) == (1, "0.5", at)
    database.write([{"kind": "order", "doc": new}], stats)  # an older replay must not roll it back
    (row,) = mongo_db.trader_open_orders.find()
    assert row["seq"] == 1 and stats.events_written == {"new": 1, "updated": 1} and stats.events_duplicate == 2
    database.close()


async def test_a_large_segment_is_written_in_bounded_batches_in_journal_order(tmp_path: Path, mongo_uri: str,
                                                                              mongo_db) -> None:
    from collector_service import store
    from collector_service.metrics import Stats

    database = store.Database(mongo_uri, mongo_db.name)
    database.ensure_indexes()
    journal = Journal(tmp_path / "j")
    writer = store.Writer(database, journal, Stats(), flush_interval=1.0, flush_threshold=10**9)
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    orders = [{"kind": "order", "doc": {"ethAddress": "0x" + "ab" * 20, "oid": oid, "eventKey": "new", "action": "new",
                                        "seq": 0, "coin": "BTC", "timestamp": at, "observedAt": at}}
              for oid in range(1, store.WRITE_BATCH_OPS * 2 + 501)]
    writer.submit([*orders, {"kind": "node_checkpoint", "doc": {"_id": "order_statuses", "offset": 7}}])
    batches: list[list[str]] = []
    write = database.write

    def recording(ops: list[dict], stats: Stats) -> None:
        batches.append([op["kind"] for op in ops])
        write(ops, stats)

    database.write = recording  # type: ignore[method-assign]
    assert await writer.flush()
    assert [len(b) for b in batches] == [store.WRITE_BATCH_OPS, store.WRITE_BATCH_OPS, 501]
    assert batches[-1][-1] == "node_checkpoint"
    assert mongo_db.trader_orders.count_documents({}) == len(orders)
    assert mongo_db.node_checkpoints.find_one({"_id": "order_statuses"})["offset"] == 7
    database.close()


def _msgpack_record(op: dict[str, Any]) -> bytes:
    return record([op])


FORMATS = pytest.mark.parametrize("encode", [_msgpack_record, bson.encode], ids=["msgpack", "bson of earlier versions"])


def _segment(folder: Path, ops: list[dict[str, Any]], encode: Any = _msgpack_record) -> Path:
    """A sealed segment holding each operation as one record (one append, or one BSON document)."""
    if encode is bson.encode:
        folder.mkdir()
        segment = folder / "segment-0000000001.bson"
        segment.write_bytes(b"".join(bson.encode(op) for op in ops))
        return segment
    journal = Journal(folder)
    for op in ops:
        journal.append([op])
    journal.rotate()
    (segment,) = journal.sealed()
    return segment


@FORMATS
def test_a_corrupt_document_in_the_middle_is_cut_out_and_kept_aside_and_the_rest_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, encode: Any
) -> None:
    # one bad document used to stop the collector from starting (bson.decode raised)
    ops = [{"kind": "order", "doc": {"oid": oid}} for oid in range(1, 6)]
    segment = _segment(tmp_path / "j", ops, encode)
    data = bytearray(segment.read_bytes())
    third = sum(len(encode(op)) for op in ops[:2])
    data[third + 20 : third + 24] = b"\xff\xff\xff\xff"  # a stray write inside the third document
    broken = bytes(data[third : third + len(encode(ops[2]))])
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        reopened = Journal(tmp_path / "j")
    assert [op["doc"]["oid"] for op in Journal.read(segment)] == [1, 2, 4, 5]
    assert reopened.corrupt_records == 1 and "event=journal_corrupt" in caplog.text
    (side,) = (tmp_path / "j").glob("*.corrupt-*")
    assert side.read_bytes() == broken and side.name == f"{segment.name}.corrupt-{third}"
    assert reopened.sealed() == [segment]  # the side file is no segment


@FORMATS
def test_a_length_that_lies_in_the_middle_does_not_drop_what_follows(tmp_path: Path, encode: Any) -> None:
    ops = [{"kind": "order", "doc": {"oid": oid}} for oid in range(1, 5)]
    segment = _segment(tmp_path / "j", ops, encode)
    data = bytearray(segment.read_bytes())
    second = len(encode(ops[0]))
    data[second : second + 4] = struct.pack("<i", 10_000)  # reads past the end: was taken as a torn tail
    segment.write_bytes(bytes(data))
    assert Journal(tmp_path / "j").corrupt_records == 1
    assert [op["doc"]["oid"] for op in Journal.read(segment)] == [1, 3, 4]


def test_a_torn_tail_is_cut_off_at_start(tmp_path: Path) -> None:
    segment = _segment(tmp_path / "j", [{"kind": "order", "doc": {"oid": 1}}])
    whole = segment.read_bytes()
    segment.write_bytes(whole + record([{"kind": "order", "doc": {"oid": 2}}])[:-3])  # a crash mid-append
    assert Journal(tmp_path / "j").corrupt_records == 0
    assert segment.read_bytes() == whole and not list((tmp_path / "j").glob("*.corrupt-*"))


@pytest.mark.parametrize("interval,appends,fsyncs", [(0.0, 5, 5), (3600.0, 5, 1)])
def test_appends_are_fsynced_as_the_setting_says_and_always_when_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: float, appends: int, fsyncs: int
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    journal = Journal(tmp_path / "j", fsync_interval=interval)
    synced.clear()  # creating the folder
    for oid in range(appends):
        journal.append([{"kind": "order", "doc": {"oid": oid}}])
    files = len(synced) - 1  # the folder's, when the segment was created
    assert files == fsyncs  # every append, or the first only (the interval had passed)
    journal.sync()  # the timer's tick
    assert len(synced) - 1 == (fsyncs if interval == 0 else 2)
    journal.rotate()  # sealed: nothing left unsynced, no second fsync
    assert len(synced) - 1 == (fsyncs if interval == 0 else 2)
