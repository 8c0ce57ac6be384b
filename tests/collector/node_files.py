"""Node files for tests: the real sample lines, and a market of order lifecycles written as a
Hyperliquid non-validating node writes them (``<stream>[_by_block]/hourly/<YYYYMMDD>/<H>``)."""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from collector_service.config import Settings, load_settings
from collector_service.sources.node_files import BY_BLOCK_SUFFIX, FOLDERS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hyperliquid"
STATUS_BLOCKS = FIXTURES / "node_order_statuses_by_block_20260430_20_btc_blocks978995377-416.jsonl.gz"
FILL_BLOCKS = FIXTURES / "node_fills_by_block_20260430_20_btc_blocks978995377-416.jsonl"
STATUS_LINES = FIXTURES / "node_order_statuses_sample.jsonl"
FILL_LINES = FIXTURES / "node_fills_sample.jsonl"


def sample_status_blocks() -> list[bytes]:
    """The 40 real by-block order-status lines (2026-04-30, blocks 978995377..416)."""
    return gzip.decompress(STATUS_BLOCKS.read_bytes()).splitlines()


def sample_fill_blocks() -> list[bytes]:
    """The 40 real by-block fill lines of the same blocks."""
    return FILL_BLOCKS.read_bytes().splitlines()


def hour_path(data_dir: Path, kind: str, at: datetime, by_block: bool = True) -> Path:
    """Where the node writes ``kind`` lines at ``at`` (hour not zero-padded)."""
    folder = FOLDERS[kind] + (BY_BLOCK_SUFFIX if by_block else "")  # type: ignore[index]
    return data_dir / folder / "hourly" / at.strftime("%Y%m%d") / str(at.hour)


def append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(data)


def node_time(at: datetime) -> str:
    """A node timestamp: nanoseconds, no zone."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123"


def block_line(number: int, at: datetime, events: list[Any]) -> bytes:
    """One by-block line, compact like the node's."""
    return (
        json.dumps(
            {
                "local_time": node_time(at + timedelta(milliseconds=300)),
                "block_time": node_time(at),
                "block_number": number,
                "events": events,
            },
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )


@dataclass
class Market:
    """Order lifecycles of tracked traders among real untracked noise, block by block.

    Per block a tracked trader may place an order (sometimes one the exchange rejects), and an
    open order may be partly filled, fully filled, cancelled or modified (a new oid with the same
    cloid opens, then the old one is cancelled, in one block)."""

    users: list[str]
    seed: int = 1
    noise_per_block: int = 40
    rng: random.Random = field(init=False)
    open: dict[int, dict[str, Any]] = field(default_factory=dict)  # oid -> order (with user)
    next_oid: int = 900_000_000_000
    next_tid: int = 1
    templates: list[dict[str, Any]] = field(default_factory=list)
    fill_template: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for line in sample_status_blocks():
            self.templates.extend(json.loads(line)["events"])
        for line in sample_fill_blocks():
            for _, fill in json.loads(line)["events"]:
                self.fill_template = fill

    def _order(self, user: str, at: datetime, cloid: str | None) -> dict[str, Any]:
        self.next_oid += self.rng.randint(1, 50)
        sz = f"{self.rng.randint(10, 90) / 100:.2f}"
        return {
            "coin": "BTC",
            "side": self.rng.choice("AB"),
            "limitPx": f"{self.rng.randint(76000, 77000)}.0",
            "sz": sz,
            "oid": self.next_oid,
            "timestamp": int(at.timestamp() * 1000),
            "triggerCondition": "N/A",
            "isTrigger": False,
            "triggerPx": "0.0",
            "children": [],
            "isPositionTpsl": False,
            "reduceOnly": False,
            "orderType": "Limit",
            "origSz": sz,
            "tif": "Gtc",
            "cloid": cloid,
        }

    def _status(self, user: str, status: str, order: dict[str, Any], at: datetime) -> dict[str, Any]:
        return {
            "time": node_time(at),
            "user": user,
            "hash": None,
            "builder": None,
            "status": status,
            "order": dict(order),
        }

    def _fill(self, user: str, order: dict[str, Any], sz: str, at: datetime) -> list[Any]:
        self.next_tid += 1
        fill = {
            **self.fill_template,
            "coin": order["coin"],
            "px": order["limitPx"],
            "sz": sz,
            "side": order["side"],
            "time": int(at.timestamp() * 1000),
            "oid": order["oid"],
            "tid": self.next_tid,
            "crossed": False,
        }
        fill.pop("twapId", None)
        return [user, fill]

    def block(self, at: datetime) -> tuple[list[Any], list[Any]]:
        """The order-status and fill events of the next block."""
        statuses: list[Any] = []
        fills: list[Any] = []
        for _ in range(self.noise_per_block):
            statuses.append(self.rng.choice(self.templates))
        for oid in list(self.open):
            if self.rng.random() > 0.3:
                continue
            order = self.open[oid]
            user = order.pop("_user")
            move = self.rng.choice(["partial", "fill", "cancel", "modify"])
            left = round(float(order["sz"]) * 100)
            if move == "partial" and left > 1:
                part = self.rng.randint(1, left - 1)
                fills.append(self._fill(user, order, f"{part / 100:.2f}", at))
                order["sz"] = f"{(left - part) / 100:.2f}"
                order["_user"] = user
                continue
            del self.open[oid]
            if move in ("fill", "partial"):
                fills.append(self._fill(user, order, order["sz"], at))
                statuses.append(self._status(user, "filled", {**order, "sz": "0.0"}, at))
            elif move == "modify" and order["cloid"]:
                new = {**self._order(user, at, order["cloid"]), "side": order["side"]}
                statuses.append(self._status(user, "open", new, at))
                statuses.append(self._status(user, "canceled", order, at))
                self.open[new["oid"]] = {**new, "_user": user}
            else:
                statuses.append(self._status(user, "canceled", order, at))
        for user in self.users:
            roll = self.rng.random()
            if roll < 0.25:
                cloid = f"0x{self.rng.getrandbits(128):032x}" if self.rng.random() < 0.7 else None
                order = self._order(user, at, cloid)
                statuses.append(self._status(user, "open", order, at))
                self.open[order["oid"]] = {**order, "_user": user}
            elif roll < 0.3:
                statuses.append(self._status(user, "badAloPxRejected", self._order(user, at, None), at))
        self.rng.shuffle(statuses)  # noise and ours mixed; a modify's open stays before its cancel
        statuses.sort(key=lambda e: e.get("status") == "canceled" and e["user"] in self.users)
        return statuses, fills


def node_settings(
    mongo_uri: str, db: str, user: str, data_dir: Path, work: Path, info_url: str, **overrides: Any
) -> Settings:
    """Collector settings reading ``data_dir`` as a node's folder for ``user``, test-speed timings,
    the info API (node's and public) at ``info_url``; ``overrides`` win."""
    values: dict[str, Any] = {
        "mongo_uri": mongo_uri,
        "mongo_db": db,
        "trader_addresses": user,
        "node_data_dir": data_dir,
        "node_info_url": info_url,
        "hyperliquid_info_url": info_url,
        "trader_dexes": "none",
        "trader_books_enabled": False,
        "trader_orders_ws_flush_interval": 0.2,
        "collector_data_dir": work / "c",
        "collector_health_port": 0,
    }
    return load_settings(**(values | overrides))
