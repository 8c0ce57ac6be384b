"""The fill truth compared with a collector's ``trader_fills``: :func:`compare_fills` reads the
fills file the ground-truth recorder writes (:mod:`exchange_sim.truth`, one ``{"kind": "fill"}``
line per fill in the REST userFills shape) and reports each fill missed, stored twice, unknown
or stored with a field unlike the exchange's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchange_sim.config import fills_path_for

FillKey = tuple[str, int]  # (user, tid)

# Fields a stored fill document must carry exactly as the exchange sent them (decimal strings
# compared as strings, so "0.10" is not "0.1"); `time` is compared separately (datetime vs ms).
FILL_FIELDS = ("coin", "px", "sz", "side", "oid", "fee", "closedPnl", "crossed", "dir", "startPosition", "hash")


@dataclass
class FillReport:
    """What a collector's trader_fills captured, compared with the simulator's fill truth.

    Documents are matched to truth fills by (user, tid): `ethAddress` (any case) and `tid`. Every
    truth fill counts: the exchange keeps the newest 10000 fills per user for userFillsByTime,
    so a collector can recover any fill it missed over WebSocket. (The simulator never makes a
    self-trade, so a tid is unique per user in its truth.)
    """

    total: int = 0  # truth fills of the compared users
    captured: int = 0  # truth fills with at least one document
    missed: list[FillKey] = field(default_factory=list)
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)  # (user, tid, documents)
    unknown: list[FillKey] = field(default_factory=list)  # documents whose fill is not in the truth
    # (user, tid, field, expected, got): one entry per differing field of a captured document
    wrong_fields: list[tuple[str, int, str, Any, Any]] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)  # documents of truth fills by `source`

    @property
    def capture_rate(self) -> float:
        """Captured fills / truth fills (1.0 when there were none)."""
        return self.captured / self.total if self.total else 1.0

    @property
    def ok(self) -> bool:
        """Every fill captured exactly once with the right fields, nothing unknown."""
        return not (self.missed or self.duplicates or self.unknown or self.wrong_fields)

    def summary(self) -> str:
        """One key=value line for logs and assertion messages."""
        sources = ",".join(f"{k}:{v}" for k, v in sorted(self.sources.items())) or "-"
        return (
            f"fills total={self.total} captured={self.captured} capture_rate={self.capture_rate:.4f} "
            f"missed={len(self.missed)} duplicates={len(self.duplicates)} unknown={len(self.unknown)} "
            f"wrong_fields={len(self.wrong_fields)} sources={sources}"
        )


def load_fills(fills_path: str | Path) -> dict[FillKey, dict[str, Any]]:
    """Each fill of a fills file by (user, tid), in the order the exchange made them."""
    out: dict[FillKey, dict[str, Any]] = {}
    path = Path(fills_path)
    if not path.exists():
        return out
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("kind") != "fill":
                continue
            fill = rec["fill"]
            out[(str(rec["user"]).lower(), int(fill["tid"]))] = fill
    return out


def _time_ms(value: Any) -> int | None:
    """A document's `time` (a datetime, naive meaning UTC as pymongo returns it, or epoch ms)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return round(value.timestamp() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


def _tid(value: Any) -> int:
    """A document's tid as an int (-1 if it has none)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _fill_differences(truth: dict[str, Any], doc: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    diffs: list[tuple[str, Any, Any]] = []
    for name in FILL_FIELDS:
        want, got = truth.get(name), doc.get(name)
        if name == "oid":
            same = isinstance(got, int) and not isinstance(got, bool) and got == want
        elif name == "crossed":
            same = got is want
        else:
            same = type(got) is type(want) and got == want
        if not same:
            diffs.append((name, want, got))
    # cloid: only when the order had one (a collector may store null or nothing otherwise)
    if truth.get("cloid") is not None and doc.get("cloid") != truth["cloid"]:
        diffs.append(("cloid", truth["cloid"], doc.get("cloid")))
    got_ms = _time_ms(doc.get("time"))
    if got_ms != truth["time"]:
        diffs.append(("time", truth["time"], doc.get("time")))
    return diffs


def compare_fills(
    documents_or_collection: Any,
    truth_path: str | Path,
    users: Iterable[str] | None = None,
    *,
    fills_path: str | Path | None = None,
) -> FillReport:
    """Compare trader_fills documents (an iterable of dicts, or a pymongo Collection) with the
    fill truth `<truth_path>.fills.jsonl` (or `fills_path`); see FillReport for the rules.

    `users` restricts the comparison to those addresses; by default every user in the fill
    truth is compared (documents of other users then count as unknown).
    """
    path = Path(fills_path) if fills_path is not None else fills_path_for(truth_path)
    truth = load_fills(path)
    wanted = {u.lower() for u in users} if users is not None else None
    docs: Any = documents_or_collection
    if hasattr(docs, "find"):
        docs = docs.find({}, {"_id": 0})
    by_fill: dict[FillKey, list[dict[str, Any]]] = {}
    for doc in docs:
        user = str(doc.get("ethAddress", "")).lower()
        if wanted is not None and user not in wanted:
            continue
        by_fill.setdefault((user, _tid(doc.get("tid"))), []).append(doc)

    report = FillReport()
    for key, fill in truth.items():
        if wanted is not None and key[0] not in wanted:
            continue
        report.total += 1
        found = by_fill.pop(key, [])
        if not found:
            report.missed.append(key)
            continue
        report.captured += 1
        if len(found) > 1:
            report.duplicates.append((*key, len(found)))
        for doc in found:
            source = str(doc.get("source"))
            report.sources[source] = report.sources.get(source, 0) + 1
            for name, want, got in _fill_differences(fill, doc):
                report.wrong_fields.append((*key, name, want, got))
    report.unknown = sorted(k for k, found in by_fill.items() for _ in found)
    return report
