"""Soak the collector's node-file source: 200 tracked traders among 2,000 active ones, ``kill -9``.

One run: the exchange simulator (in this process) trades at random for ``traders`` users and
writes a non-validating node's files in both layouts, its clock starting shortly before a whole
hour so the files rotate; ground truth covers the first ``tracked`` traders only. The collector
runs as a child process reading one layout (``NODE_LAYOUT``) and is ``kill -9``-ed at random
moments (and while the node is down after each of its restarts) and restarted each time, while
the node writes partial lines, appends the old hour's last line late at the rotation, and
restarts in turn writing recent blocks again and skipping blocks (by-block layout only: one event
per line carries no block number, so a skip is invisible there, docs/node.md "Running a node for
orderwatch"), and, with ``relist_every``, traders are removed from the watch-list file and added back
(tests.reliability.relist). Once, the collector is down across the hour rotation while a pruner deletes the
order statuses' hour file holding its checkpoint and the one before (fills, 50-100 times smaller,
are kept: their old hour's last line comes late, after the restart).
Then trading stops, the collector drains, is stopped with SIGTERM, and the ground
truth decides: every tracked order captured with its true final status and modify links, no
order with two ``new`` or two ``closed`` events or one change recorded twice, every fill exactly
once (TWAP slices included), every TWAP status change of the tracked traders in ``trader_twaps``
(from the node's ``node_twap_statuses*`` lines, or ``twapHistory`` after a gap), and nothing at all
of the untracked traders in MongoDB.

The in-suite test calls :func:`run_node_soak` with a short duration; the long run is the soak
CLI (``make soak SOAK_ARGS="--source node"``, see tests.reliability.soak).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo

from collector_service import schema
from exchange_sim import ExchangeSim, FillReport, Report, SimConfig, compare, compare_fills
from exchange_sim.clock import HOUR_MS, before_next_hour
from exchange_sim.node_files import STREAM_DIRS, hour_file
from exchange_sim.twaps import twaps_path_for
from tests.reliability.collector_process import CollectorProcess, collector_for
from tests.reliability.relist import WATCH_INTERVAL_S, ListChanges, wrong_sizes

LAYOUTS = ("by_block", "hourly")  # what the collector reads (NODE_LAYOUT); the node writes both
UNLIMITED_REST_WEIGHT = 1_000_000
QUIET_BEFORE_ROTATION_MS = 8_000  # simulated ms before a whole hour without kills (the collector catches up)
QUIET_AFTER_ROTATION_MS = 4_000  # ... and after it (the late line arrives and is read)
LOAD_TIMEOUT_S = 120.0  # a start's state loaded: under load, imports and the journal replay took up to 45 s


@dataclass
class NodeSoakConfig:
    """One node soak. Durations are real seconds; ``speed`` scales the simulated clock."""

    layout: str = "by_block"
    duration: float = 32.0
    traders: int = 2000
    tracked: int = 200
    orders_per_trader_per_min: float = 3.0
    speed: float = 2.0
    # simulated seconds before the first rotation (the clock waits for the collector's first
    # start): the prune outage needs a checkpoint before it
    start_before_hour: float = 40.0
    kill_every: float | None = 0.8  # mean seconds the collector reads before each kill -9 (None: never)
    # trading goes on past `duration` until this many kills, up to `kill_stretch` times as long: a
    # restart (imports, journal replay into MongoDB, 200 traders' state) took 15-25 s between
    # kills with two busy loops at a load average of 7-11 on two cores (2-3 s on an idle machine)
    min_kills: int = 10
    kill_stretch: float = 10.0
    prune_outage: bool = True  # the outage across the rotation while the checkpoint's hour is pruned
    fault_every: float = 8.0  # seconds between node faults: a partial line, a re-write, a skip, ...
    restart_pause_ms: int = 1500  # simulated ms a node restart writes nothing
    rewrite_blocks: int = 40
    skip_blocks: int = 15
    # The simulator's one info API stands for both the node's own info server (no rate limit,
    # NODE.md §3.3) and the public API: at the public 1,200 weight a minute a resync of 200
    # traders on three dexes alone takes ten minutes. The WebSocket soak keeps the real budget.
    rest_weight_per_min: int = UNLIMITED_REST_WEIGHT
    settle_timeout: float = 60.0
    seed: int = 7
    relist_every: float | None = None  # mean seconds between traders removed from the watch list (None: never)
    twaps_per_trader_per_hour: float = 2.0  # random TWAPs (~15-40 of tracked traders), sliced as fills


@dataclass
class NodeSoakResult:
    """The figures of a node soak and the ground-truth comparisons."""

    config: NodeSoakConfig
    report: Report = field(default_factory=Report)
    fills: FillReport = field(default_factory=FillReport)
    duration_s: float = 0.0
    settle_s: float = 0.0
    kills: int = 0
    events: int = 0
    fill_documents: int = 0
    untracked_documents: int = 0  # documents of traders the collector was not told to track
    repeated: list[tuple[str, int, str]] = field(default_factory=list)  # see repeated_updates
    faults: dict[str, int] = field(default_factory=dict)  # node faults injected, by kind
    node: dict[str, Any] = field(default_factory=dict)  # the simulator's node-writer counts
    gaps: int = 0  # block gaps the collector logged (event=node_gap)
    resynced: int = 0  # traders resynced after them (event=node_resynced)
    rotations: int = 0
    late_appends: int = 0  # late lines the collector read (event=node_late_append)
    pruned: list[str] = field(default_factory=list)  # node files deleted while the collector was down
    files_missing: int = 0  # pruned files the collector reported (event=node_file_missing)
    wrong_sizes: list[tuple[str, int, str | None, str]] = field(default_factory=list)  # see wrong_sizes
    twaps: int = 0  # TWAP status changes of tracked traders in the ground truth
    twaps_missing: list[tuple[str, int, str]] = field(default_factory=list)  # in the truth, not in trader_twaps
    twaps_extra: list[tuple[str, int, str]] = field(default_factory=list)  # in trader_twaps, not in the truth
    exit_code: int | None = None
    relist: str = "list_removals=0 list_readds=0 list_most_away=0"
    most_away: int = 0  # the most traders off the watch list at one time (ListChanges.most_away)

    @property
    def ok(self) -> bool:
        r = self.report
        return (
            r.ok
            and r.capture_rate == 1.0
            and r.observable == r.total
            and self.fills.ok
            and self.untracked_documents == 0
            and not self.repeated
            and not self.wrong_sizes
            and not self.twaps_missing
            and not self.twaps_extra
            and self.exit_code == 0
        )

    def figures(self) -> str:
        r, f, node = self.report, self.fills, self.node
        faults = ",".join(f"{k}:{v}" for k, v in sorted(self.faults.items())) or "-"
        return (
            f"node_soak layout={self.config.layout} duration_s={self.duration_s:.0f} settle_s={self.settle_s:.1f} "
            f"traders={self.config.traders} tracked={self.config.tracked} orders={r.total} captured={r.captured} "
            f"capture_rate={r.capture_rate:.4f} events={self.events} fills={f.total} fill_documents="
            f"{self.fill_documents} fills_captured={f.captured} duplicates={len(r.duplicates) + len(f.duplicates)} "
            f"wrong_final_status={len(r.wrong_final_status)} repeated_updates={len(self.repeated)} "
            f"wrong_sizes={len(self.wrong_sizes)} twap_statuses={self.twaps} twaps_missing={len(self.twaps_missing)} "
            f"twaps_extra={len(self.twaps_extra)} "
            f"untracked_documents={self.untracked_documents} "
            f"kills_survived={self.kills} gaps={self.gaps} traders_resynced={self.resynced} "
            f"rotations={self.rotations} late_appends_read={self.late_appends} pruned={len(self.pruned)} "
            f"files_missing={self.files_missing} faults={faults} "
            f"blocks_written={node.get('nodeBlocksWritten', 0)} lines_written={node.get('nodeLinesWritten', 0)} "
            f"{self.relist} exit_code={self.exit_code}"
        )


def fault_plan(cfg: NodeSoakConfig) -> list[tuple[float, str]]:
    """(seconds into the run, fault) every ``fault_every`` seconds: a partial line, a restart that
    re-writes blocks and, by block only, one that skips blocks, in turn."""
    cycle = ["partial_line", "rewrite"] + (["skip"] if cfg.layout == "by_block" else [])
    count = int(cfg.duration / cfg.fault_every)
    return [((i + 0.5) * cfg.fault_every, cycle[i % len(cycle)]) for i in range(count)]


def inject(sim: ExchangeSim, fault: str, cfg: NodeSoakConfig) -> None:
    """Make the simulated node write ``fault``."""
    assert sim.node is not None
    if fault == "partial_line":
        sim.node.partial_line(hold_ms=500)
    elif fault == "rewrite":
        sim.node.restart(cfg.restart_pause_ms, rewrite_blocks=cfg.rewrite_blocks)
    else:
        sim.node.restart(cfg.restart_pause_ms, skip_blocks=cfg.skip_blocks)


def repeated_updates(orders: pymongo.collection.Collection) -> list[tuple[str, int, str]]:
    """Orders with one change recorded twice under different event keys, which the unique index
    cannot stop: a partial fill (same ``fillTid``) or a trigger applied twice (``compare`` already
    counts a second ``new`` or ``closed``). Updates recovered over REST name neither and are left out."""
    seen: set[tuple[str, int, str]] = set()
    repeated = []
    for doc in orders.find(
        {"action": schema.ACTION_UPDATED}, {"ethAddress": 1, "oid": 1, "fillTid": 1, "nodeStatus": 1}
    ):
        if doc.get("fillTid") is not None:
            change = f"fill {doc['fillTid']}"
        elif doc.get("nodeStatus") is not None:
            change = str(doc["nodeStatus"])
        else:
            continue
        key = (doc["ethAddress"], int(doc["oid"]), change)
        if key in seen:
            repeated.append(key)
        seen.add(key)
    return repeated


def twap_statuses(truth: Path) -> set[tuple[str, int, str]]:
    """Every status change of the tracked traders' TWAPs in the ground truth (the recorder writes
    only theirs)."""
    path = twaps_path_for(truth)
    if not path.exists():
        return set()
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(rec["state"]["user"], rec["twap_id"], rec["status"]) for rec in lines}


def stored_twaps(db: pymongo.database.Database) -> set[tuple[str, int, str]]:
    """The ``trader_twaps`` documents' keys (the unique index keeps each once)."""
    return {(d["ethAddress"], d["twapId"], d["status"]) for d in db[schema.TWAPS].find({}, {"_id": 0})}


def untracked_documents(db: pymongo.database.Database, tracked: set[str]) -> int:
    """Documents in any collection that name a trader outside ``tracked``."""
    found = 0
    for name in db.list_collection_names():
        for doc in db[name].find({}, {"ethAddress": 1, "user": 1}):
            address = doc.get("ethAddress") or doc.get("user")
            if isinstance(address, str) and address.startswith("0x") and address.lower() not in tracked:
                found += 1
    return found


@dataclass
class RandomKills:
    """``kill -9`` the collector a random time after each start has loaded its state (while it
    reads), or as soon as :attr:`now` is set, and restart it; never near the hour rotation, so
    that the collector is caught up and sees the old hour's late line arrive."""

    collector: CollectorProcess
    sim: ExchangeSim
    rng: random.Random
    mean_up_s: float  # mean seconds the collector reads between loading its state and the kill
    prune_layout: str | None = None  # the layout read, to prune its statuses file once (None: never)
    pruned: list[str] = field(default_factory=list)  # the files pruned
    kills: int = 0
    log_at: int = 0  # log offset of the newest start
    now: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Kill and restart until cancelled; the prune outage as soon as its time comes."""
        while True:
            await self._until(self._loaded, LOAD_TIMEOUT_S)
            if not self._prune_due():  # the start is done (or the wait raises with the log)
                await self.collector.wait_for_log("event=state_loaded", after=self.log_at, timeout=1)
                await self._until(self.now.is_set, self.rng.uniform(0.1, 2 * self.mean_up_s - 0.1))
            self.now.clear()
            if self._prune_due():
                await self._prune_outage()
                continue
            while self._near_rotation():
                await asyncio.sleep(0.05)
            self.collector.kill()
            self.kills += 1
            self.log_at = self.collector.log_size()
            self.collector.start()

    async def _until(self, done: Callable[[], bool], timeout: float) -> None:
        """Wait until ``done()``, the prune outage is due, or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while not (done() or self._prune_due()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def _loaded(self) -> bool:
        """The newest start has loaded its state (its log read from where that start began)."""
        with open(self.collector.log_path, "rb") as log:
            log.seek(self.log_at)
            return b"event=state_loaded" in log.read()

    def _prune_due(self) -> bool:
        """The prune outage is to come and the node is about to rotate."""
        into_hour = self.sim.clock.now_ms() % HOUR_MS
        return self.prune_layout is not None and not self.pruned and into_hour >= HOUR_MS - QUIET_BEFORE_ROTATION_MS

    async def _prune_outage(self) -> None:
        """Down across the rotation: once the node wrote the new hour's first status line and
        the old hour's last (late) one, the statuses file of the old hour, holding the
        checkpoint, and the one before are deleted; then the collector starts, and the fills'
        held late line comes once it reads the new hour."""
        node = self.sim.node
        assert node is not None and self.prune_layout is not None
        layout = "by-block" if self.prune_layout == "by_block" else "hourly"
        directory = STREAM_DIRS[(layout, "order_statuses")]
        if self.collector.running:
            self.collector.kill()
            self.kills += 1
        killed_at = self.sim.clock.now_ms()  # before the rotation: in the hour holding the checkpoint

        def held(stream: str, kind: str = "late_append_held") -> bool:
            return any(f["kind"] == kind and f["stream"] == stream and f["layout"] == layout for f in node.faults)

        new = hour_file(node.root, directory, killed_at + HOUR_MS)
        await _settle(lambda: new.exists() and held("order_statuses") == held("order_statuses", "late_append"), 60.0)
        for path in (hour_file(node.root, directory, killed_at), hour_file(node.root, directory, killed_at - HOUR_MS)):
            if path.exists():
                path.unlink()
                self.pruned.append(str(path.relative_to(node.root)))
        self.log_at = self.collector.log_size()
        self.collector.start()
        if held("fills"):  # armed before the rotation: comes once the collector reads the new hour
            await self.collector.wait_for_log("event=node_rotation stream=fills", after=self.log_at, timeout=60)
            node.release_late()
            await self.collector.wait_for_log("event=node_late_append stream=fills", after=self.log_at, timeout=60)

    def _near_rotation(self) -> bool:
        into_hour = self.sim.clock.now_ms() % HOUR_MS
        return into_hour >= HOUR_MS - QUIET_BEFORE_ROTATION_MS or into_hour < QUIET_AFTER_ROTATION_MS


async def _settle(check: Callable[[], bool], timeout: float) -> float:
    """Poll ``check`` (off the loop) until true or ``timeout``; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout and not await asyncio.to_thread(check):
        await asyncio.sleep(1.0)
    return time.monotonic() - started


async def run_node_soak(cfg: NodeSoakConfig, mongo_uri: str, db_name: str, workdir: Path) -> NodeSoakResult:
    """Run one node soak (see the module docstring) and return its figures."""
    if cfg.layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {cfg.layout!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    truth, node_dir = workdir / "truth.jsonl", workdir / "hl" / "data"
    rng = random.Random(cfg.seed)
    sim_cfg = SimConfig(
        seed=cfg.seed,
        traders=cfg.traders,
        tracked_traders=cfg.tracked,
        orders_per_trader_per_min=cfg.orders_per_trader_per_min,
        speed=cfg.speed,
        start_time_ms=before_next_hour(int(time.time() * 1000), cfg.start_before_hour),
        truth_file=truth,
        node_dir=node_dir,
        node_layout="both",
        rest_weight_per_min=cfg.rest_weight_per_min,
        twaps_per_trader_per_hour=cfg.twaps_per_trader_per_hour,
    )
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    db = client[db_name]
    result = NodeSoakResult(cfg)
    try:
        async with ExchangeSim(sim_cfg) as sim:
            assert sim.node is not None
            users = sim.tracked
            changes = ListChanges(workdir / "traders.txt", users, rng, cfg.relist_every or 0.0)
            changes.write()
            listing = {"trader_addresses": "", "trader_addresses_file": changes.path,
                       "trader_watch_interval": WATCH_INTERVAL_S} if cfg.relist_every else {}
            collector = collector_for(
                sim,
                mongo_uri,
                db_name,
                workdir,
                users,
                node_data_dir=node_dir,
                node_layout=cfg.layout,
                node_start="earliest",
                node_info_url=sim.info_url,
                trader_books_enabled="false",
                collector_rest_weight_per_minute=cfg.rest_weight_per_min,
                **listing,
            )

            def drained() -> bool:
                sim.recorder.flush()
                sim.twap_recorder.flush()
                return (
                    compare(db[schema.ORDERS], truth, None, users).ok
                    and compare_fills(db[schema.FILLS], truth, users).ok
                    and twap_statuses(truth) == stored_twaps(db)
                )

            prune = cfg.prune_outage and cfg.kill_every is not None
            kills = RandomKills(collector, sim, rng, cfg.kill_every or 0.0, cfg.layout if prune else None)
            killing: asyncio.Task[None] | None = None
            relisting: asyncio.Task[None] | None = None
            try:
                # as an operator would, start the collector once the node has written its folders
                # (it refuses a NODE_DATA_DIR without them; a busy machine delays the first block)
                # (not the TWAP statuses' in the hourly layout: it appears with the first TWAP)
                folders = [node_dir / path for (_, stream), path in STREAM_DIRS.items() if stream != "twap_statuses"]
                await _settle(lambda: all(f.is_dir() for f in folders), 30.0)
                # simulated time waits for the first start (a loaded machine can take 10-20 s), so
                # that the collector reads the hour before the rotation: the prune outage needs a
                # checkpoint in it
                sim.hold_clock(True)
                collector.start()
                await collector.wait_for_log("event=state_loaded", timeout=LOAD_TIMEOUT_S)
                sim.hold_clock(False)
                # at the rotation, the old hour's last line comes late (the fills' with a prune outage:
                # once the restarted collector is reading the new hour)
                sim.node.late_append("order_statuses" if prune else None, delay_ms=1000)
                if prune:
                    sim.node.late_append("fills", delay_ms=HOUR_MS)
                if cfg.kill_every:
                    killing = asyncio.create_task(kills.run())
                if cfg.relist_every:
                    relisting = asyncio.create_task(changes.run())
                faults = fault_plan(cfg)
                started = time.monotonic()
                longest = cfg.kill_stretch * cfg.duration
                while (now := time.monotonic()) - started < cfg.duration or (
                    killing is not None and kills.kills < cfg.min_kills and now - started < longest
                ):
                    while faults and now - started >= faults[0][0]:
                        fault = faults.pop(0)[1]
                        inject(sim, fault, cfg)
                        if fault != "partial_line":
                            # die while the node is down: what it writes again (or skips) then
                            # comes after our restart from a checkpoint
                            kills.now.set()
                    assert killing is None or not killing.done(), killing.exception()
                    await asyncio.sleep(0.05)
                if killing is not None:
                    killing.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await killing
                if relisting is not None:
                    relisting.cancel()
                    changes.restore()
                # signal handlers set; as generous as each kill's wait (a loaded start took 45 s)
                await collector.wait_for_log("event=state_loaded", after=kills.log_at, timeout=LOAD_TIMEOUT_S)
                result.duration_s = time.monotonic() - started
                sim.set_order_rate(0)
                sim.stop_twaps()
                result.settle_s = await _settle(drained, cfg.settle_timeout)
                result.exit_code = await asyncio.to_thread(collector.terminate)
                # once the SIGTERM flushed everything, as the comparisons below (a settle that ran
                # out under load left open-order rows unwritten: "missing", though stored later)
                result.wrong_sizes = await asyncio.to_thread(wrong_sizes, db[schema.OPEN_ORDERS], sim, users)
            finally:
                for task in (killing, relisting):
                    if task is not None:
                        task.cancel()
                collector.stop_if_running()
            result.kills, result.pruned = kills.kills, kills.pruned
            result.relist, result.most_away = changes.figures(), changes.most_away
            result.node = sim.node.stats()
            result.faults = dict(result.node["nodeFaults"])
        log = collector.log_text()
        result.gaps = log.count("event=node_gap ")
        result.resynced = log.count("event=node_resynced ")
        result.rotations = log.count("event=node_rotation ")
        result.late_appends = log.count("event=node_late_append ")
        result.files_missing = log.count("event=node_file_missing ")
        result.report = await asyncio.to_thread(compare, db[schema.ORDERS], truth, None, users)
        result.fills = await asyncio.to_thread(compare_fills, db[schema.FILLS], truth, users)
        result.events = await asyncio.to_thread(db[schema.ORDERS].count_documents, {})
        result.fill_documents = await asyncio.to_thread(db[schema.FILLS].count_documents, {})
        result.repeated = await asyncio.to_thread(repeated_updates, db[schema.ORDERS])
        result.untracked_documents = await asyncio.to_thread(untracked_documents, db, set(users))
        expected, stored = twap_statuses(truth), await asyncio.to_thread(stored_twaps, db)
        result.twaps = len(expected)
        result.twaps_missing, result.twaps_extra = sorted(expected - stored), sorted(stored - expected)
        return result
    finally:
        client.close()
