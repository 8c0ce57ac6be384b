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

from collector_service.journal import Journal


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
    assert [p.name for p in reopened.sealed()] == [segment.name, "segment-0000000002.bson"]
    Journal.remove(segment)
    assert len(reopened.sealed()) == 1


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


def _segment(folder: Path, ops: list[dict[str, Any]]) -> Path:
    journal = Journal(folder)
    journal.append(ops)
    journal.rotate()
    (segment,) = journal.sealed()
    return segment


def test_a_corrupt_document_in_the_middle_is_cut_out_and_kept_aside_and_the_rest_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # one bad document used to stop the collector from starting (bson.decode raised)
    ops = [{"kind": "order", "doc": {"oid": oid}} for oid in range(1, 6)]
    segment = _segment(tmp_path / "j", ops)
    data = bytearray(segment.read_bytes())
    third = sum(len(bson.encode(op)) for op in ops[:2])
    data[third + 20 : third + 24] = b"\xff\xff\xff\xff"  # a stray write inside the third document
    broken = bytes(data[third : third + len(bson.encode(ops[2]))])
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        reopened = Journal(tmp_path / "j")
    assert [op["doc"]["oid"] for op in Journal.read(segment)] == [1, 2, 4, 5]
    assert reopened.corrupt_records == 1 and "event=journal_corrupt" in caplog.text
    (side,) = (tmp_path / "j").glob("*.corrupt-*")
    assert side.read_bytes() == broken and side.name == f"{segment.name}.corrupt-{third}"
    assert reopened.sealed() == [segment]  # the side file is no segment


def test_a_length_that_lies_in_the_middle_does_not_drop_what_follows(tmp_path: Path) -> None:
    ops = [{"kind": "order", "doc": {"oid": oid}} for oid in range(1, 5)]
    segment = _segment(tmp_path / "j", ops)
    data = bytearray(segment.read_bytes())
    second = len(bson.encode(ops[0]))
    data[second : second + 4] = struct.pack("<i", 10_000)  # reads past the end: was taken as a torn tail
    segment.write_bytes(bytes(data))
    assert Journal(tmp_path / "j").corrupt_records == 1
    assert [op["doc"]["oid"] for op in Journal.read(segment)] == [1, 3, 4]


def test_a_torn_tail_is_cut_off_at_start(tmp_path: Path) -> None:
    segment = _segment(tmp_path / "j", [{"kind": "order", "doc": {"oid": 1}}])
    whole = segment.read_bytes()
    segment.write_bytes(whole + bson.encode({"kind": "order", "doc": {"oid": 2}})[:-3])  # a crash mid-append
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
