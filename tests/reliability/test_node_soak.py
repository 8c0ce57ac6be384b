"""The node-file source's done-when (#12): against the simulator's node files, 200 tracked of
2,000 active traders, across an hour rotation, a partial line, a late append, node restarts
that re-write and (by block) skip blocks and ten or more ``kill -9``s of the collector, MongoDB
ends with every tracked order and fill exactly once, right final statuses and modify links, and
nothing of anyone else; the order statuses' hour file holding the checkpoint, pruned while the
collector is down, ends in a reported gap and a resync (#20). Each layout the collector reads is one
run (~35 s on two cores)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
import pytest

from collector_service import schema
from tests.collector.harness import RunningCollector, eventually
from tests.collector.node_files import append, hour_path, node_settings, node_time, sample_status_blocks
from tests.mongo_server import free_port
from tests.reliability.node_soak import NodeSoakConfig, run_node_soak

USER = "0x00000000000000000000000000000000000000e5"
AT = datetime(2026, 4, 30, 20, 0, tzinfo=UTC)


@pytest.mark.slow
@pytest.mark.timeout(720)  # a loaded machine restarts slower: trading goes on for up to 10 x 32 s
@pytest.mark.parametrize("layout", ["by_block", "hourly"])
async def test_node_soak_matches_ground_truth(
    layout: str, tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    # traders are also removed from the watch-list file and added back while it runs
    result = await run_node_soak(NodeSoakConfig(layout=layout, relist_every=3.0), mongo_uri, mongo_db.name, tmp_path)
    print(result.figures())
    r, f = result.report, result.fills
    assert result.exit_code == 0, "SIGTERM must flush and exit 0"
    assert r.missed_visible == [] and r.missed_gap_only == [], r.summary()
    assert r.duplicates == [] and r.wrong_final_status == [] and r.unknown == [], r.summary()
    assert r.wrong_links == [] and r.links_expected > 5 and r.ok, (r.summary(), r.wrong_links[:5])
    assert r.observable == r.total > 300 and r.capture_rate == 1.0, r.summary()
    assert f.ok and f.total > 50, f.summary()
    assert result.repeated == [] and result.wrong_sizes == [], (result.repeated[:5], result.wrong_sizes[:5])
    assert result.untracked_documents == 0, result.figures()
    assert result.twaps >= 5 and not result.twaps_missing and not result.twaps_extra, result.figures()
    assert "list_removals=0" not in result.relist, result.figures()
    # the fills stream rotates; the statuses stream moves past its pruned hour instead
    assert result.kills >= 10 and result.rotations >= 1 and result.late_appends >= 1, result.figures()
    faults = result.faults
    assert faults.get("partial_line", 0) >= 1 and faults.get("late_append", 0) >= 1, faults
    assert faults.get("rewritten_blocks", 0) >= 1, faults
    if layout == "by_block":  # one event per line has no block number: a skip is invisible there
        assert faults.get("skipped_block", 0) >= 1, result.figures()
    # the statuses' hour holding the checkpoint pruned during an outage: a reported gap and a
    # resync of every tracked trader (by block from the block numbers, hourly from the missing file)
    assert result.pruned and result.files_missing >= 1, result.figures()
    # (a trader off the list when the gap is found is not resynced for it: at most most_away are)
    assert result.gaps >= 1 and result.resynced >= 200 - result.most_away, result.figures()


def _status_line(status: str, oid: int, at: datetime, limit_px: str) -> bytes:
    """One hourly-layout status line of USER's order ``oid`` (no cloid), shaped like the real sample."""
    order = next(e["order"] for line in sample_status_blocks() for e in json.loads(line)["events"])
    order = {**order, "oid": oid, "limitPx": limit_px, "timestamp": int(AT.timestamp() * 1000), "cloid": None}
    line = {"time": node_time(at), "user": USER, "status": status, "order": order}
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def _links(db: pymongo.database.Database) -> dict[tuple[int, str], Any]:
    docs = db[schema.ORDERS].find({"ethAddress": USER})
    return {(d["oid"], d["action"]): d.get("replacesOid", d.get("replacedByOid")) for d in docs}


async def test_a_modify_read_in_two_pieces_is_linked(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    # One event per line: a modify without a cloid is a `canceled` line and an `open` line of
    # the same block (same time), written one after the other; a read can fall between them.
    data_dir = tmp_path / "hl" / "data"
    path = hour_path(data_dir, "order_statuses", AT, by_block=False)
    append(path, _status_line("open", 100, AT, "76000.0"))
    nowhere = f"http://127.0.0.1:{free_port()}/info"  # no REST in this test
    settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, nowhere, node_start="earliest",
                             node_layout="hourly", trader_orders_ws_flush_interval=0.1)
    async with RunningCollector(settings):
        await eventually(lambda: (100, "new") in _links(mongo_db), what="order 100 from its line")
        modify = AT + timedelta(seconds=1)
        append(path, _status_line("canceled", 100, modify, "76000.0"))
        await asyncio.sleep(0.2)  # the reader polls every 0.1 s: it reads the cancel alone
        append(path, _status_line("open", 101, modify, "76100.0"))
        append(path, _status_line("open", 102, modify + timedelta(seconds=1), "75000.0"))  # a later block
        await eventually(lambda: (102, "new") in _links(mongo_db), what="order 102 from its line")
    links = _links(mongo_db)
    assert (links[(101, "new")], links[(100, "closed")]) == (100, 101), links
