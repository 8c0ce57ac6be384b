"""The on-disk journal: operations survive in order, a torn tail is dropped, segments rotate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import bson

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
