"""Node output files written by the simulator: real-sample shapes, rotation, faults, truth."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exchange_sim import ChaosConfig, ExchangeSim, SimConfig
from exchange_sim.clock import HOUR_MS, LogicalClock, before_next_hour
from exchange_sim.exchange import Exchange
from exchange_sim.market import Market
from exchange_sim.node_files import NodeWriter
from exchange_sim.traders import TraderPool, trader_addresses
from exchange_sim.truth import TruthRecorder
from exchange_sim.twaps import TwapRecorder, Twaps, twaps_path_for
from tests.conftest import FIXTURES
from tests.exchange_sim.conftest import START_MS

REAL = FIXTURES / "hyperliquid"
REAL_BY_BLOCK_STATUSES = "node_order_statuses_by_block_20260430_20_btc_blocks978995377-416.jsonl.gz"
REAL_BY_BLOCK_FILLS = "node_fills_by_block_20260430_20_btc_blocks978995377-416.jsonl"
STATUSES_BY_BLOCK = "node_order_statuses_by_block/hourly"
FILLS_BY_BLOCK = "node_fills_by_block/hourly"
STATUSES = "node_order_statuses/hourly"
FILLS = "node_fills/hourly"
TWAPS = "node_twap_statuses/hourly"
TWAPS_BY_BLOCK = "node_twap_statuses_by_block/hourly"


class Run:
    """An exchange with random traders, a truth recorder and a node writer, ticked by hand."""

    def __init__(self, root: Path, start_ms: int, *, layout: str = "both", traders: int = 30, rate: float = 120.0):
        self.root = root
        self.clock = LogicalClock(start_ms)
        self.exchange = Exchange(Market.load(), self.clock)
        self.truth = TruthRecorder(root / "truth.jsonl", None, root / "fills.jsonl")
        self.node = NodeWriter(root / "hl" / "data", self.clock, layout=layout)
        self.exchange.replace_listeners.append(self.truth.on_replace)
        self.exchange.listeners += [self.truth.on_transition, self.node.on_transition]
        self.exchange.fill_listeners += [self.truth.on_fill, self.node.on_fill]
        self.pool = TraderPool(self.exchange, trader_addresses(7, traders), 7, rate)
        self.twaps = Twaps(self.exchange)
        self.twap_truth = TwapRecorder(twaps_path_for(root / "truth.jsonl"))
        self.twaps.listeners += [self.twap_truth.on_status, self.node.on_twap]

    def run(self, ms: int, step: int = 50) -> None:
        """Let the traders act (and TWAPs slice) for `ms` of simulated time, writing due blocks
        after each step."""
        for _ in range(ms // step):
            self.pool.tick(step)  # advances the clock
            self.twaps.advance()
            self.node.advance()

    def close(self) -> None:
        self.node.close()
        self.truth.close()
        self.twap_truth.close()

    def files(self, directory: str) -> list[Path]:
        """The hour files of a stream, oldest first (hours sorted as numbers)."""
        base = self.root / "hl" / "data" / directory
        return sorted(base.glob("*/*"), key=lambda p: (p.parent.name, int(p.name)))

    def lines(self, directory: str) -> list[Any]:
        return [json.loads(line) for p in self.files(directory) for line in p.read_text().splitlines()]


def shapes(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, JSON type) pairs of a parsed line; dict keys name the path, list items share `[]`."""
    yield path, type(value).__name__
    if isinstance(value, dict):
        for k, v in value.items():
            yield from shapes(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from shapes(v, f"{path}[]")


def shape_set(lines: list[Any]) -> set[tuple[str, str]]:
    return {s for line in lines for s in shapes(line)}


def real_lines(name: str) -> list[Any]:
    path = REAL / name
    text = gzip.decompress(path.read_bytes()).decode() if name.endswith(".gz") else path.read_text()
    return [json.loads(line) for line in text.splitlines()]


def key_orders(lines: list[Any], *, by_block: bool) -> set[tuple[str, ...]]:
    """The key orders of the status objects and their `order` objects."""
    events = [e for b in lines for e in b["events"]] if by_block else lines
    return {tuple(e) for e in events} | {tuple(e["order"]) for e in events}


def block_numbers(lines: list[dict[str, Any]]) -> list[int]:
    return [b["block_number"] for b in lines]


def expected_transitions(truth_path: Path) -> Counter[tuple[str, int, str]]:
    """Truth transitions a node writes: all but the repeated `open` of an order already open
    (partial fills: no status line on a node, NODE.md §2.4)."""
    live: set[int] = set()
    out: Counter[tuple[str, int, str]] = Counter()
    for line in truth_path.read_text().splitlines():
        rec = json.loads(line)
        oid, status = rec["order"]["oid"], rec["status"]
        if status == "open" and oid in live:
            continue
        live.add(oid) if status in ("open", "triggered") else live.discard(oid)
        out[(rec["user"], oid, status)] += 1
    return out


def node_transitions(events: list[dict[str, Any]]) -> Counter[tuple[str, int, str]]:
    return Counter((e["user"], e["order"]["oid"], e["status"]) for e in events)


def truth_fills(path: Path) -> Counter[tuple[str, int]]:
    return Counter((r["user"], r["fill"]["tid"]) for r in map(json.loads, path.read_text().splitlines()))


def test_lines_have_the_real_samples_shapes(tmp_path: Path) -> None:
    run = Run(tmp_path, START_MS)
    run.run(3000)
    run.close()
    statuses, fills = run.lines(STATUSES), run.lines(FILLS)
    blocks, fill_blocks = run.lines(STATUSES_BY_BLOCK), run.lines(FILLS_BY_BLOCK)
    assert len({s["status"] for s in statuses}) >= 5 and fills and blocks and fill_blocks

    real_statuses = real_lines("node_order_statuses_sample.jsonl")
    real_blocks = real_lines(REAL_BY_BLOCK_STATUSES)
    real_fills = real_lines("node_fills_sample.jsonl")
    real_fill_blocks = real_lines(REAL_BY_BLOCK_FILLS)
    # Same keys in the same order as the real lines, every value of a type the real lines use.
    assert key_orders(statuses, by_block=False) == key_orders(real_statuses, by_block=False)
    assert key_orders(blocks, by_block=True) == key_orders(real_blocks, by_block=True)
    assert {tuple(b) for b in blocks + fill_blocks} == {tuple(b) for b in real_blocks}
    # (The ten 2025 default-mode lines have no trigger order; the by-block events do: tif null.)
    real_events = [e for b in real_blocks for e in b["events"]]
    assert shape_set(statuses) <= shape_set(real_statuses) | shape_set(real_events)
    assert shape_set(blocks) <= shape_set(real_blocks)
    # Fills: `[user, fill]` with the fill keys of the real samples (2025 hourly, 2026 by-block).
    real_fill_shapes = shape_set(real_fills) | shape_set([e for b in real_fill_blocks for e in b["events"]])
    assert shape_set(fills) <= real_fill_shapes | {("[].twapId", "NoneType")}
    assert shape_set(fill_blocks) <= shape_set(real_fill_blocks) | {(".events[][].cloid", "str")}
    assert all(len(f) == 2 and f[0].startswith("0x") for f in fills)
    # by-block: one line per block, empty ones too, numbers contiguous; every timestamp a
    # nanosecond ISO time without a timezone; an event's time within its block.
    assert block_numbers(blocks) == list(range(blocks[0]["block_number"], blocks[-1]["block_number"] + 1))
    assert block_numbers(fill_blocks) == block_numbers(blocks)
    assert any(not b["events"] for b in fill_blocks)
    for b in blocks:
        assert len(b["local_time"]) == len(real_blocks[0]["local_time"]) == 29
        assert b["local_time"] > b["block_time"]
        assert all(e["time"] <= b["block_time"] for e in b["events"])
    # Status semantics: hash only on `open` lines (as in the real sample), builder null.
    assert all((e["hash"] is not None) == (e["status"] == "open") for b in blocks for e in b["events"])


def test_every_truth_transition_and_fill_is_written_exactly_once(tmp_path: Path) -> None:
    run = Run(tmp_path, START_MS)
    run.run(4000)
    run.close()
    expected = expected_transitions(tmp_path / "truth.jsonl")
    assert sum(expected.values()) > 150
    assert max(expected.values()) == 1
    by_block_events = [e for b in run.lines(STATUSES_BY_BLOCK) for e in b["events"]]
    assert node_transitions(by_block_events) == expected
    assert node_transitions(run.lines(STATUSES)) == expected
    fills = truth_fills(tmp_path / "fills.jsonl")
    assert Counter((u, f["tid"]) for u, f in run.lines(FILLS)) == fills
    assert Counter((u, f["tid"]) for b in run.lines(FILLS_BY_BLOCK) for u, f in b["events"]) == fills
    # A partial fill happened (a repeated open in the truth) and wrote no status line.
    truth_rows = sum(1 for _ in (tmp_path / "truth.jsonl").open())
    assert truth_rows > sum(expected.values())


def test_twap_status_lines_are_the_twap_ground_truth_and_slices_write_fills_only(tmp_path: Path) -> None:
    # SAMPLE-NOTES.md §3: a TWAP's lifecycle is in node_twap_statuses* as {time, twap_id, state,
    # status}; its slices are fills with twapId and a zero hash, and write no order-status line.
    run = Run(tmp_path, START_MS, traders=2, rate=0.0)
    alice, bob = trader_addresses(7, 2)
    done = run.twaps.start(alice, "BTC", "B", "0.5", 5)
    stopped = run.twaps.start(bob, "ETH", "A", "3", 10)
    run.run(95_000, step=1000)
    run.twaps.terminate(stopped.twap_id)
    run.run(220_000, step=1000)
    run.close()
    truth = [json.loads(line) for line in twaps_path_for(tmp_path / "truth.jsonl").read_text().splitlines()]
    assert [(t["twap_id"], t["status"]) for t in truth] == [
        (done.twap_id, "activated"), (stopped.twap_id, "activated"), (stopped.twap_id, "terminated"),
        (done.twap_id, "finished")]

    def same(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(e["twap_id"], e["status"], e["state"], e["time"][:26]) for e in events]

    hourly, blocks = run.lines(TWAPS), run.lines(TWAPS_BY_BLOCK)
    assert [tuple(e) for e in hourly] == [("time", "twap_id", "state", "status")] * 4
    assert same(hourly) == same([e for b in blocks for e in b["events"]]) == same(truth)
    assert truth[-1]["state"]["executedSz"] == "0.5" and truth[-1]["state"]["user"] == alice
    # every block has a line in each by-block stream, TWAP statuses included
    assert block_numbers(blocks) == block_numbers(run.lines(STATUSES_BY_BLOCK))
    slices = [f for _, f in run.lines(FILLS) if f["twapId"] is not None]
    assert len(slices) == 10 + 3 and {f["hash"] for f in slices} == {"0x" + "0" * 64}
    assert run.lines(STATUSES) == []


@pytest.mark.parametrize(
    ("start", "hours"),
    [
        (datetime(2025, 10, 9, 9, 59, 58, tzinfo=UTC), [("20251009", "9"), ("20251009", "10")]),
        (datetime(2025, 10, 9, 23, 59, 58, tzinfo=UTC), [("20251009", "23"), ("20251010", "0")]),
    ],
)
def test_hour_rotation_and_new_date_folder(tmp_path: Path, start: datetime, hours: list[tuple[str, str]]) -> None:
    run = Run(tmp_path, int(start.timestamp() * 1000))
    run.run(4000)
    run.close()
    for directory in (STATUSES, FILLS, STATUSES_BY_BLOCK, FILLS_BY_BLOCK):
        assert [(p.parent.name, p.name) for p in run.files(directory)] == hours, directory
    # The file hour is local_time's hour; lines continue across the boundary in block order.
    numbers: list[int] = []
    for path in run.files(STATUSES_BY_BLOCK):
        for line in path.read_text().splitlines():
            b = json.loads(line)
            assert b["local_time"][11:13] == f"{int(path.name):02d}"
            numbers.append(b["block_number"])
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    times = [s["time"] for s in run.lines(STATUSES)]
    assert times == sorted(times)


def test_partial_line_is_observable_then_completed(tmp_path: Path) -> None:
    run = Run(tmp_path, START_MS, layout="by-block")
    run.run(500)
    run.node.partial_line("order_statuses", hold_ms=400)
    run.run(100)
    path = run.files(STATUSES_BY_BLOCK)[-1]
    data = path.read_bytes()
    assert not data.endswith(b"\n")
    tail = data[data.rindex(b"\n") + 1 :]
    assert tail.startswith(b'{"local_time":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(tail)
    assert run.files(FILLS_BY_BLOCK)[-1].read_bytes().endswith(b"\n")  # only the chosen stream
    run.run(300)
    assert path.read_bytes().startswith(data) and not path.read_bytes().endswith(b"\n")  # still held
    run.run(200)
    run.close()
    assert path.read_bytes().startswith(data) and path.read_bytes().endswith(b"\n")
    numbers = block_numbers(run.lines(STATUSES_BY_BLOCK))
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # nothing lost or doubled
    kinds = [f["kind"] for f in run.node.faults]
    assert kinds == ["partial_line", "partial_line_completed"]
    assert run.node.faults[0]["offset"] == data.rindex(b"\n") + 1


def test_partial_line_in_the_hourly_layout(tmp_path: Path) -> None:
    run = Run(tmp_path, START_MS, layout="hourly")
    run.run(300)
    run.node.partial_line("order_statuses", hold_ms=300)
    run.run(250)
    data = run.files(STATUSES)[-1].read_bytes()
    assert data and not data.endswith(b"\n") and data[data.rfind(b"\n") + 1 :].startswith(b'{"time":')
    run.run(400)
    run.close()
    assert node_transitions(run.lines(STATUSES)) == expected_transitions(tmp_path / "truth.jsonl")


def test_restart_rewrites_the_last_blocks(tmp_path: Path) -> None:
    run = Run(tmp_path, START_MS)
    run.run(1000)
    before = run.lines(STATUSES_BY_BLOCK)
    hourly_before = len(run.lines(STATUSES))
    run.node.restart(2000, rewrite_blocks=3)
    run.run(1500)
    assert len(run.lines(STATUSES_BY_BLOCK)) == len(before)  # stopped writing
    run.run(1500)
    run.close()
    after = run.lines(STATUSES_BY_BLOCK)
    again = after[len(before) : len(before) + 3]
    assert block_numbers(again) == block_numbers(before[-3:])
    assert [(b["block_time"], b["events"]) for b in again] == [(b["block_time"], b["events"]) for b in before[-3:]]
    assert again[0]["local_time"] > before[-1]["local_time"]
    rest = block_numbers(after[len(before) + 3 :])
    assert rest == list(range(before[-1]["block_number"] + 1, before[-1]["block_number"] + 1 + len(rest)))
    # Catch-up: blocks made during the pause are written after it, local_time well after block_time.
    lag = [
        datetime.fromisoformat(b["local_time"][:26]) - datetime.fromisoformat(b["block_time"][:26])
        for b in after[len(before) + 3 :]
    ]
    assert max(lag).total_seconds() > 1.0
    # The hourly layout repeats the rewritten blocks' event lines.
    hourly = run.lines(STATUSES)
    repeated = sum(len(b["events"]) for b in again)
    assert len(hourly) == sum(len(b["events"]) for b in after) > hourly_before
    assert repeated == sum(n - 1 for n in node_transitions(hourly).values()) > 0
    assert [f["kind"] for f in run.node.faults] == ["restart", "rewritten_blocks"]
    assert run.node.faults[1]["blocks"] == block_numbers(before[-3:])


def test_restart_skips_blocks_that_still_happened(tmp_path: Path) -> None:
    run = Run(tmp_path, START_MS)
    run.run(1000)
    last = block_numbers(run.lines(STATUSES_BY_BLOCK))[-1]
    run.node.restart(500, skip_blocks=10)
    run.run(2000)
    run.close()
    numbers = block_numbers(run.lines(STATUSES_BY_BLOCK))
    assert last + 1 not in numbers and last + 10 not in numbers
    assert numbers == [n for n in range(numbers[0], numbers[-1] + 1) if not last < n <= last + 10]
    skipped = [f for f in run.node.faults if f["kind"] == "skipped_block"]
    assert [f["block"] for f in skipped] == list(range(last + 1, last + 11))
    lost = Counter((u, oid, s) for f in skipped for u, oid, s in f["orderStatuses"])
    lost_fills = Counter((u, tid) for f in skipped for u, tid in f["fills"])
    assert lost  # trading went on during the skipped blocks
    expected = expected_transitions(tmp_path / "truth.jsonl")
    assert node_transitions(run.lines(STATUSES)) == expected - lost
    by_block_events = [e for b in run.lines(STATUSES_BY_BLOCK) for e in b["events"]]
    assert node_transitions(by_block_events) == expected - lost
    assert Counter((u, f["tid"]) for u, f in run.lines(FILLS)) == truth_fills(tmp_path / "fills.jsonl") - lost_fills


def test_late_append_to_the_previous_hour(tmp_path: Path) -> None:
    start = datetime(2025, 10, 9, 9, 59, 59, tzinfo=UTC)
    run = Run(tmp_path, int(start.timestamp() * 1000), layout="by-block")
    run.node.late_append("order_statuses", delay_ms=500)
    run.run(1200)  # past the hour: the new file exists, the old one lacks its last block
    old, new = run.files(STATUSES_BY_BLOCK)
    old_numbers = block_numbers([json.loads(x) for x in old.read_text().splitlines()])
    first_new = json.loads(new.read_text().splitlines()[0])["block_number"]
    assert old_numbers[-1] == first_new - 2
    size = old.stat().st_size
    run.run(600)
    old_numbers = block_numbers([json.loads(x) for x in old.read_text().splitlines()])
    assert old.stat().st_size > size and old_numbers[-1] == first_new - 1
    fills_old, _ = run.files(FILLS_BY_BLOCK)  # the other stream rotated normally
    run.close()
    assert json.loads(fills_old.read_text().splitlines()[-1])["block_number"] == first_new - 1
    assert [f["kind"] for f in run.node.faults] == ["late_append_held", "late_append"]


def test_before_next_hour() -> None:
    now = int(datetime(2025, 10, 9, 9, 30, tzinfo=UTC).timestamp() * 1000)
    start = before_next_hour(now, 20)
    assert (start + 20_000) % HOUR_MS == 0 and now < start < now + HOUR_MS
    late = now + 30 * 60_000 - 5_000  # 5 s before the hour: the next hour after that
    assert before_next_hour(late, 20) == late + 5_000 + HOUR_MS - 20_000


async def test_simulator_writes_node_files_with_a_tracked_subset(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    cfg = SimConfig(
        traders=40,
        tracked_traders=5,
        orders_per_trader_per_min=600,
        start_time_ms=START_MS,
        truth_file=truth,
        addresses_file=tmp_path / "addresses.txt",
        node_dir=tmp_path / "data",
        node_layout="both",
    )
    async with ExchangeSim(cfg) as sim:
        for _ in range(20):
            sim.tick(100)
        assert sim.node is not None
        sim.node.restart(100, skip_blocks=2)
        for _ in range(10):
            sim.tick(100)
        summary = sim.summary()
    tracked = set(sim.tracked)
    assert (tmp_path / "addresses.txt").read_text().split() == sim.addresses[:5]
    truth_users = {json.loads(line)["user"] for line in truth.read_text().splitlines()}
    assert truth_users and truth_users <= tracked
    assert {json.loads(x)["user"] for x in (tmp_path / "truth.jsonl.fills.jsonl").read_text().splitlines()} <= tracked
    statuses = [
        json.loads(x) for p in sorted((tmp_path / "data" / STATUSES).glob("*/*")) for x in p.read_text().splitlines()
    ]
    assert len({s["user"] for s in statuses}) > 20  # every trader, not only the tracked
    faults = [json.loads(x) for x in (tmp_path / "truth.jsonl.node_faults.jsonl").read_text().splitlines()]
    assert [f["kind"] for f in faults] == ["restart", "skipped_block", "skipped_block"]
    lost = Counter((u, oid, s) for f in faults[1:] for u, oid, s in f["orderStatuses"] if u in tracked)
    mine = Counter((u, oid, s) for u, oid, s in node_transitions(statuses).elements() if u in tracked)
    assert mine == expected_transitions(truth) - lost
    assert summary["nodeBlocksWritten"] > 0


def test_command_line_flags() -> None:
    from exchange_sim.__main__ import parse_args

    cfg = parse_args(
        [
            "--traders=2000",
            "--tracked-traders=200",
            "--node-dir=/tmp/hl",
            "--node-layout=hourly",
            "--start-before-hour=20",
            "--chaos=node_partial=20:0.5,node_restart=60:3",
        ]
    )
    assert (cfg.traders, cfg.tracked_traders, cfg.node_layout, cfg.node_dir) == (2000, 200, "hourly", Path("/tmp/hl"))
    assert cfg.start_time_ms is not None and (cfg.start_time_ms + 20_000) % HOUR_MS == 0
    chaos = cfg.chaos
    assert (chaos.node_partial_every, chaos.node_partial_hold) == (20.0, 0.5)
    assert (chaos.node_restart_every, chaos.node_restart_pause) == (60.0, 3.0)
    assert chaos.enabled and parse_args([]).node_dir is None
    with pytest.raises(SystemExit):
        parse_args(["--node-layout=streaming"])


async def test_chaos_injects_node_faults(tmp_path: Path) -> None:
    cfg = SimConfig(
        traders=20,
        orders_per_trader_per_min=300,
        start_time_ms=START_MS,
        node_dir=tmp_path / "data",
        node_faults_file=tmp_path / "faults.jsonl",
        chaos=ChaosConfig.parse("node_partial=0.1:0.05,node_restart=0.3:0.1"),
    )
    async with ExchangeSim(cfg) as sim:
        assert sim.node is not None
        await sim.wait_until(lambda: {"partial_line_completed", "restart"} <= {f["kind"] for f in sim.node.faults}, 5)
    kinds = {json.loads(x)["kind"] for x in (tmp_path / "faults.jsonl").read_text().splitlines()}
    assert {"partial_line", "partial_line_completed", "restart"} <= kinds
    assert sim.stats.chaos_events["node_restart"] >= 1
    # After a clean stop every line is whole.
    for path in (tmp_path / "data" / STATUSES_BY_BLOCK).glob("*/*"):
        assert path.read_bytes().endswith(b"\n")
        assert all(json.loads(line)["events"] is not None for line in path.read_text().splitlines())


async def test_a_held_clock_stops_trading_and_node_blocks_until_released(tmp_path: Path) -> None:
    # The node soak holds simulated time while a loaded machine starts the collector, so that the
    # hour rotation (and the prune outage around it) still comes while the collector reads.
    cfg = SimConfig(traders=20, orders_per_trader_per_min=300, start_time_ms=START_MS, node_dir=tmp_path / "data")
    async with ExchangeSim(cfg) as sim:
        assert sim.node is not None
        node = sim.node
        await sim.wait_until(lambda: node.stats()["nodeBlocksWritten"] > 0, 5)
        sim.hold_clock(True)  # the ticker runs on this loop: no tick lands after this
        held_at, blocks = sim.clock.now_ms(), node.stats()["nodeBlocksWritten"]
        await asyncio.sleep(10 * cfg.tick_interval)
        assert (sim.clock.now_ms(), node.stats()["nodeBlocksWritten"]) == (held_at, blocks)
        sim.hold_clock(False)
        await sim.wait_until(lambda: node.stats()["nodeBlocksWritten"] > blocks, 5)
