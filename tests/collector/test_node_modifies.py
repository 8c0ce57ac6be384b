"""A modify whose old order was placed before the first line the collector read is linked from
its own lines, in both layouts: the real by-block sample's modify (block 978995407: the new oid's
``open``, then the old oid's ``canceled``, same user and cloid) read from the block after the
old order's ``open``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pymongo
import pytest

from collector_service import schema
from tests.collector.harness import RunningCollector, eventually
from tests.collector.node_files import append, hour_path, node_settings, sample_status_blocks
from tests.mongo_server import free_port

USER = "0xbeccae9ffcb69e9d42a1d4e744abf8056149562d"
OLD_OPENED_IN = 978995391  # the old order's `open`: the node folder starts after it
OLD, NEW = 405401009550, 405401016690


def write_sample_after_old_open(data_dir: Path, by_block: bool) -> None:
    """The sample's status lines after the old order's ``open``, as the node writes them in
    ``by_block`` or hourly layout (one event per line: ``time``, ``user``, ``status``, ``order``)."""
    for line in sample_status_blocks():
        block = json.loads(line)
        if block["block_number"] <= OLD_OPENED_IN:
            continue
        path = hour_path(data_dir, "order_statuses", datetime.fromisoformat(block["block_time"][:26]), by_block)
        if by_block:
            append(path, line + b"\n")
            continue
        for event in block["events"]:
            hourly = {key: event[key] for key in ("time", "user", "status", "order")}
            append(path, json.dumps(hourly, separators=(",", ":")).encode() + b"\n")


@pytest.mark.parametrize("layout", ["by_block", "hourly"])
async def test_a_modify_of_an_order_placed_before_the_first_line_read_is_linked(
    layout: str, tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    data_dir = tmp_path / "hl" / "data"
    write_sample_after_old_open(data_dir, layout == "by_block")
    nowhere = f"http://127.0.0.1:{free_port()}/info"  # no REST in this test
    settings = node_settings(mongo_uri, mongo_db.name, USER, data_dir, tmp_path, nowhere, node_start="earliest",
                             node_layout=layout)
    async with RunningCollector(settings):
        await eventually(
            lambda: mongo_db[schema.ORDERS].find_one({"oid": OLD, "action": "closed"}), what="the old order closed"
        )
        await eventually(lambda: mongo_db[schema.ORDERS].find_one({"oid": NEW}), what="the replacement")
    old = mongo_db[schema.ORDERS].find_one({"oid": OLD, "action": "closed"})
    new = mongo_db[schema.ORDERS].find_one({"oid": NEW, "action": "new"})
    assert old is not None and new is not None
    assert (old["finalStatus"], old["replacedByOid"], old["replaceMatch"]) == ("canceled", NEW, "cloid")
    assert (new["replacesOid"], new["replaceMatch"], new["source"]) == (OLD, "cloid", "node")
