"""What keeping marks fresh costs, for the three feeds the protocol notes offer (PROTOCOL.md §1.1,
§1.2, §3.1): per-coin ``activeAssetCtx`` (public, one subscription per coin held; chosen), one
``allMids`` subscription for every coin (public, but mids, not marks), and the marks inside each
``webData2`` frame (a user slot per trader, and deprecated).

Measured: bytes and collector CPU per frame for each (the real capture's market data: its 199
perps' contexts and mids), and, live, the chosen feed end to end: a real :class:`MarkFeed` against
the simulator, ``coins`` positions held, every mark moved ``moves_per_s`` times a second, for
``seconds``: frames and bytes per second received, process CPU per frame (simulator included:
an upper bound), and the ``market_marks`` writes the rate limit let through.
"""

from __future__ import annotations

import asyncio
import json
import time
import timeit
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.report import Section
from collector_service.events.marks import MarkBoard
from collector_service.metrics import Stats
from collector_service.sources.marks import MarkFeed
from exchange_sim import ExchangeSim, SimConfig

CAPTURE = Path(__file__).parent.parent / "tests" / "fixtures" / "hyperliquid" / \
    "webData2_ws_capture_subscribe_snapshot_unsubscribe.json"


class _Ctx(msgspec.Struct):
    markPx: str


class _WebData2Marks(msgspec.Struct):
    assetCtxs: list[_Ctx]


class _WebData2Frame(msgspec.Struct):
    data: _WebData2Marks


class _Mids(msgspec.Struct):
    mids: dict[str, str]


class _AllMidsFrame(msgspec.Struct):
    data: _Mids


class _Writer:
    """Counts what the feed would journal."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []

    def submit(self, ops: list[dict[str, Any]]) -> None:
        self.ops += ops


def _per_frame_us(call: Any, number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def offline(section: Section, quick: bool) -> None:
    frame = json.loads(CAPTURE.read_text())[1]
    data = frame["data"]
    names = [m["name"] for m in data["meta"]["universe"]]
    ctx_frame = json.dumps({"channel": "activeAssetCtx", "data": {"coin": "BTC",
                                                                 "ctx": data["assetCtxs"][names.index("BTC")]}},
                           separators=(",", ":")).encode()
    mids = {n: c["midPx"] or c["markPx"] for n, c in zip(names, data["assetCtxs"], strict=True)}
    mids_frame = json.dumps({"channel": "allMids", "data": {"mids": mids}}, separators=(",", ":")).encode()
    wd2_frame = json.dumps(frame, separators=(",", ":")).encode()
    feed = MarkFeed("ws://unused", set, _Writer(), Stats(), ping_interval=30.0)  # type: ignore[arg-type]
    number = 2000 if quick else 20000
    ctx_us = _per_frame_us(lambda: feed.handle(ctx_frame), number)
    mids_decoder = msgspec.json.Decoder(_AllMidsFrame)
    mids_us = _per_frame_us(lambda: mids_decoder.decode(mids_frame), number // 10)
    wd2_decoder = msgspec.json.Decoder(_WebData2Frame)
    wd2_us = _per_frame_us(lambda: wd2_decoder.decode(wd2_frame), number // 100)
    section.add("activeAssetCtx frame (one coin)", f"{len(ctx_frame)} B, {ctx_us:.1f} us decode+note")
    section.add(f"allMids frame ({len(mids)} coins, mids not marks)", f"{len(mids_frame)} B, {mids_us:.1f} us decode")
    section.add(f"webData2 frame (marks of {len(names)} perps, per user)",
                f"{len(wd2_frame)} B, {wd2_us:.1f} us decode of the marks alone")


async def live(section: Section, coins: int, seconds: float, moves_per_s: float) -> None:
    async with ExchangeSim(SimConfig(traders=1, push_interval=4.0)) as sim:
        held = [c.name for c in sim.market.coins[:coins]]
        writer = _Writer()
        stats = Stats()
        feed = MarkFeed(sim.ws_url, lambda: set(held), writer, stats, ping_interval=30.0,  # type: ignore[arg-type]
                        board=MarkBoard())
        task = asyncio.create_task(feed.run())
        deadline = time.monotonic() + 15
        while stats.frames["activeAssetCtx"] < coins and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        frames0, bytes0, cpu0, t0 = stats.frames["activeAssetCtx"], sim.stats.bytes_sent, time.process_time(), \
            time.monotonic()
        writes0 = len(writer.ops)
        step = 0
        while time.monotonic() - t0 < seconds:
            step += 1
            for name in held:
                sim.set_mark(name, sim.market.coin(name).mark_px * (Decimal(1) + Decimal(step % 7 - 3) / 10000))
            await asyncio.sleep(1 / moves_per_s)
        elapsed = time.monotonic() - t0
        frames = stats.frames["activeAssetCtx"] - frames0
        cpu = time.process_time() - cpu0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    section.add(f"live: {coins} coins held, marks moved {moves_per_s:g}/s",
                f"{frames / elapsed:.1f} frames/s, {(sim.stats.bytes_sent - bytes0) / elapsed / 1024:.1f} KiB/s")
    section.add("live: process CPU per frame (simulator included)", f"{cpu / max(frames, 1) * 1e6:.0f} us")
    section.add("live: market_marks writes", f"{(len(writer.ops) - writes0) / elapsed:.1f}/s "
                f"(<= {coins} coins / 5 s = {coins / 5:.1f}/s)", met=(len(writer.ops) - writes0) / elapsed
                <= coins / 5 + coins / elapsed)
    section.checks["marks_rate_limited"] = (len(writer.ops) - writes0) / elapsed <= coins / 5 + coins / elapsed


def run(quick: bool = False) -> Section:
    section = Section("marks", "Mark-price feed: cost per frame and live")
    offline(section, quick)
    asyncio.run(live(section, coins=5 if quick else 30, seconds=5.0 if quick else 20.0, moves_per_s=2.0))
    return section
