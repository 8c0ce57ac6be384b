"""Exactly once across ``kill -9``: a collector child tailing node files is killed at random
moments while the "node" writes (hour rotation, a late append, a new date folder, half-written
lines) and restarted; MongoDB must end with exactly the documents one uninterrupted pass makes."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
import pytest

from collector_service import schema
from collector_service.events.node_lines import decode_fill_event, decode_status
from collector_service.events.node_transitions import Placed, Transitions
from collector_service.events.tracker import OrderBook
from tests.collector.harness import eventually
from tests.collector.node_files import Market, append, block_line, hour_path
from tests.mongo_server import free_port
from tests.reliability.collector_process import CollectorProcess, collector_env

TRACKED = [f"0x{n:040x}" for n in (0xA1, 0xB2, 0xC3)]
START = datetime(2026, 4, 30, 22, 0, tzinfo=UTC)
BLOCK_STEP = timedelta(seconds=18)  # node time runs fast: blocks 200 and 400 open a new hour and a new day
FIRST_BLOCK = 978_995_377
BLOCKS = 600

Block = tuple[int, datetime, list[Any], list[Any]]


def market_blocks(n: int, seed: int) -> list[Block]:
    market = Market(TRACKED, seed=seed)
    out = []
    for i in range(n):
        at = START + BLOCK_STEP * i
        statuses, fills = market.block(at)
        out.append((FIRST_BLOCK + i, at, statuses, fills))
    return out


def reference(blocks: list[Block]) -> tuple[dict[tuple[str, int, str], dict[str, Any]], set[tuple[str, int, int]]]:
    """The documents one uninterrupted pass makes: each block's statuses, then its fills."""
    books: dict[tuple[str, str], OrderBook] = {}
    transitions = Transitions(lambda user, dex: books.setdefault((user, dex), OrderBook(user, dex)))
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    fills = set()
    for number, at, statuses, fill_events in blocks:
        where = Placed(number, at)
        ours = [(decode_status(json.dumps(s).encode()), where) for s in statuses if s["user"] in TRACKED]
        events += transitions.statuses(ours, now)
        for event in fill_events:
            user, fill, raw = decode_fill_event(json.dumps(event).encode())
            doc, updated = transitions.fill(user, fill, raw, where, now)
            fills.add((user, doc["oid"], doc["tid"]))
            if updated is not None:
                events.append(updated)
    return {(e["ethAddress"], e["oid"], e["eventKey"]): e for e in events}, fills


COMPARED = (
    "action",
    "seq",
    "sz",
    "finalStatus",
    "replacesOid",
    "replacedByOid",
    "partialFill",
    "blockNumber",
    "nodeStatus",
    "source",
)


def _shape(doc: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(doc.get(name) for name in COMPARED)


async def write_node(data_dir: Path, blocks: list[Block], rng: random.Random, pace_s: float) -> None:
    """Write blocks as the node does: one line per block in each stream, in the hour file of the
    write; at an hour change the new file appears just before the old one gets its last line."""
    previous_hour: datetime | None = None
    for number, at, statuses, fills in blocks:
        hour = at.replace(minute=0, second=0, microsecond=0)
        status_line, fill_line = block_line(number, at, statuses), block_line(number, at, fills)
        if previous_hour is not None and hour != previous_hour:
            for kind in ("order_statuses", "fills"):
                append(hour_path(data_dir, kind, hour), b"")  # the next hour's file appears...
            await asyncio.sleep(0.3)  # (long enough for a reader to move on to it)
            # ...and the old one still gets this block: a late append (the reader may be down now)
            append(hour_path(data_dir, "order_statuses", previous_hour), status_line)
            append(hour_path(data_dir, "fills", previous_hour), fill_line)
            previous_hour = hour
            await asyncio.sleep(pace_s)
            continue
        previous_hour = hour
        path = hour_path(data_dir, "order_statuses", hour)
        if rng.random() < 0.1:  # half a line now, the rest a moment later
            cut = rng.randint(1, len(status_line) - 2)
            append(path, status_line[:cut])
            await asyncio.sleep(0.01)
            append(path, status_line[cut:])
        else:
            append(path, status_line)
        append(hour_path(data_dir, "fills", hour), fill_line)
        await asyncio.sleep(pace_s)


def _caught_up(db: pymongo.database.Database, data_dir: Path, last: int) -> bool:
    checkpoints = {d["_id"]: d for d in db[schema.NODE_CHECKPOINTS].find()}
    return all(
        kind in checkpoints
        and checkpoints[kind]["blockNumber"] == last
        and (data_dir / checkpoints[kind]["path"]).stat().st_size == checkpoints[kind]["offset"]
        for kind in ("order_statuses", "fills")
    )


@pytest.mark.timeout(120)
async def test_kill_9_at_random_moments_loses_and_repeats_nothing(
    mongo_uri: str, mongo_db: pymongo.database.Database, tmp_path: Path
) -> None:
    rng = random.Random(11)
    blocks = market_blocks(BLOCKS, seed=5)
    expected, expected_fills = reference(blocks)
    assert sum(1 for e in expected.values() if e.get("partialFill")) > 20 and any(
        "replacesOid" in e for e in expected.values()
    )
    data_dir = tmp_path / "hl" / "data"
    await write_node(data_dir, blocks[:50], rng, 0)
    collector = CollectorProcess(
        collector_env(
            mongo_uri=mongo_uri,
            mongo_db=mongo_db.name,
            trader_addresses=",".join(TRACKED),
            node_data_dir=data_dir,
            node_start="earliest",
            trader_dexes="none",
            trader_books_enabled="false",
            hyperliquid_info_url=f"http://127.0.0.1:{free_port()}/info",  # nothing listens: no REST in this test
            trader_orders_ws_flush_interval=0.2,
            collector_data_dir=tmp_path / "collector",
            collector_health_port=free_port(),
        ),
        tmp_path / "work",
    )
    collector.start()
    try:
        writer = asyncio.create_task(write_node(data_dir, blocks[50:], rng, 0.008))
        kills, started_at = 0, 0
        while not writer.done() or kills < 3:
            await collector.wait_for_log("event=state_loaded", after=started_at)  # reading the files
            await asyncio.sleep(rng.uniform(0.2, 1.2))
            collector.kill()
            kills += 1
            started_at = collector.log_size()
            collector.start()
        await writer
        await collector.wait_for_log("event=state_loaded", after=started_at)  # up, signal handlers set
        try:
            await eventually(
                lambda: _caught_up(mongo_db, data_dir, FIRST_BLOCK + BLOCKS - 1),
                timeout=60,
                what="the collector to read every line",
            )
        except AssertionError as exc:
            checkpoints = list(mongo_db[schema.NODE_CHECKPOINTS].find())
            raise AssertionError(f"{exc}; checkpoints {checkpoints}; log:\n{collector.log_text()[-4000:]}") from None
        assert collector.terminate() == 0
    finally:
        collector.stop_if_running()
    stored = list(mongo_db[schema.ORDERS].find())
    keys = [(d["ethAddress"], d["oid"], d["eventKey"]) for d in stored]
    assert len(keys) == len(set(keys))  # no duplicate
    assert set(keys) == set(expected)  # nothing missing, nothing extra
    assert {k: _shape(d) for k, d in zip(keys, stored, strict=True)} == {k: _shape(e) for k, e in expected.items()}
    fills = [(d["ethAddress"], d["oid"], d["tid"]) for d in mongo_db[schema.FILLS].find()]
    assert len(fills) == len(set(fills)) and set(fills) == expected_fills
    log = collector.log_text()
    assert log.count("event=node_resume") == 2 * kills  # each restart resumed both streams from a checkpoint
    assert {p.parent.name + "/" + p.name for p in (data_dir / "node_fills_by_block" / "hourly").glob("*/*")} == {
        "20260430/22",
        "20260430/23",
        "20260501/0",
    }
