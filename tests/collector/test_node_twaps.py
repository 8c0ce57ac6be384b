"""TWAPs from the node's files: the simulator writes ``node_twap_statuses*`` lines (SAMPLE-NOTES.md
§3) and the collector's node source stores the followed traders' into ``trader_twaps``, equal to the
simulator's TWAP ground truth, exactly once across a restart, without any REST call (twapHistory
is not asked: nothing listens at the info URL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
import pytest

from collector_service import schema
from exchange_sim import ExchangeSim, SimConfig
from exchange_sim.node_files import STREAM_DIRS
from exchange_sim.twaps import twaps_path_for
from tests.collector.harness import RunningCollector, eventually
from tests.collector.node_files import node_settings
from tests.mongo_server import free_port

START_MS = int(datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp() * 1000)


def truth_statuses(truth: Path, users: list[str]) -> dict[tuple[str, int, str], tuple[Any, ...]]:
    """Every status change of the followed traders' TWAPs in the ground truth: when (the start for
    ``activated``, else the change's own time) and the amounts traded by then."""
    found = {}
    for line in twaps_path_for(truth).read_text().splitlines():
        rec = json.loads(line)
        state = rec["state"]
        if state["user"] not in users:
            continue
        at = state["timestamp"] if rec["status"] == "activated" else int(
            datetime.fromisoformat(rec["time"]).replace(tzinfo=UTC).timestamp() * 1000)
        found[(state["user"], rec["twap_id"], rec["status"])] = (
            datetime.fromtimestamp(at / 1000, UTC), state["executedSz"], state["executedNtl"], state["coin"],
            state["sz"], state["minutes"])
    return found


def stored_statuses(db: pymongo.database.Database) -> dict[tuple[str, int, str], tuple[Any, ...]]:
    docs = list(db[schema.TWAPS].find())
    assert {d["source"] for d in docs} <= {schema.SOURCE_NODE}, [d["source"] for d in docs]
    keys = [(d["ethAddress"], d["twapId"], d["status"]) for d in docs]
    assert len(keys) == len(set(keys))
    return {k: (d["statusTime"], d["executedSz"], d["executedNtl"], d["coin"], d["sz"], d["minutes"])
            for k, d in zip(keys, docs, strict=True)}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("layout", ["by_block", "hourly"])
async def test_node_twap_statuses_equal_the_twap_ground_truth_across_a_restart(
    layout: str, tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    truth, data_dir = tmp_path / "truth.jsonl", tmp_path / "hl" / "data"
    # simulated time 60x faster (a 5-minute TWAP takes 5 s), with one block a simulated second to
    # keep the files' writing and reading light on a loaded machine
    written = "by-block" if layout == "by_block" else "hourly"
    config = SimConfig(traders=3, truth_file=truth, speed=60.0, start_time_ms=START_MS, node_dir=data_dir,
                       node_layout=written, node_blocks_per_s=1.0, orders_per_trader_per_min=2.0)
    async with ExchangeSim(config) as sim:
        alice, bob, carol = sim.addresses
        followed = [alice, bob]
        folders = [data_dir / STREAM_DIRS[(written, stream)] for stream in ("order_statuses", "fills")]
        await eventually(lambda: all(f.is_dir() for f in folders), what="the node's folders")
        nowhere = f"http://127.0.0.1:{free_port()}/info"  # no REST: every TWAP status comes from the files
        settings = node_settings(mongo_uri, mongo_db.name, ",".join(followed), data_dir, tmp_path, nowhere,
                                 node_start="earliest", node_layout=layout)

        def stored(query: dict[str, Any]) -> int:
            return mongo_db[schema.TWAPS].count_documents(query)

        def checkpointed() -> bool:
            return mongo_db[schema.NODE_CHECKPOINTS].count_documents({}) >= 2

        async with RunningCollector(settings):
            await eventually(checkpointed, what="the collector reading the node's files")
            # in the hourly layout the TWAP statuses' folder appears only now, while it runs
            done = sim.start_twap(alice, "BTC", "B", "0.2", 5)
            sim.start_twap(carol, "BTC", "A", "0.1", 5)  # not followed: nothing of it is stored
            await eventually(lambda: stored({"twapId": done}), what="the TWAP's start from the node's line")
        # down while a TWAP starts, trades and is stopped, and the first one finishes
        stopped = sim.start_twap(bob, "ETH", "A", "2", 10)
        await eventually(lambda: sim.twap(stopped).slices_done >= 2, what="slices of the TWAP to stop")
        sim.terminate_twap(stopped)
        await eventually(lambda: sim.twap(done).status == "finished", timeout=30, what="the first TWAP to end")
        async with RunningCollector(settings) as run:
            await eventually(lambda: stored({}) == 4, timeout=30, what="every status of the followed traders")
            assert run.service.node is not None
            figures = run.service.node.figures()["twap_statuses"]
        sim.twap_recorder.flush()
        expected = truth_statuses(truth, followed)

    assert set(expected) == {(alice, done, "activated"), (alice, done, "finished"), (bob, stopped, "activated"),
                             (bob, stopped, "terminated")}
    assert stored_statuses(mongo_db) == expected
    assert figures["layout"] == layout and not figures["stalled"] and figures["bad_events"] == 0, figures
    checkpoint = mongo_db[schema.NODE_CHECKPOINTS].find_one({"_id": "twap_statuses"})
    assert checkpoint is not None and checkpoint["layout"] == layout
