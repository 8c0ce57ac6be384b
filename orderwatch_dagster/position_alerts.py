"""Position alerts: each change of a followed trader's position, worded as people expect.

A ``trader_positions`` document is compared with the one before it of the same trader and coin:

* ``open``: from flat (no earlier document, or size 0) to a position;
* ``add``: the same side, larger; ``reduce``: the same side, smaller;
* ``close``: to flat; ``flip``: from long to short or back, in one step.

A document whose size did not change (a new entry price or leverage alone) is no alert. The
alert carries the size before and after, the entry price and leverage (the position's, or for a
close the closed position's), and the realized PnL: the ``closedPnl`` of the trader's fills of
that coin after the previous document's exchange time and up to this one's (``trader_fills``).
Alerts go into ``order_alerts`` (``kind`` = "position", ``alertKey``
``position:<trader>:<coin>:<serverTime>``: recomputing is a no-op) and then through the delivery
rules and channels like the others; the ``min_usd`` floor compares the notional (|size| x entry)
before and after.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from pymongo.database import Database

from collector_service import schema
from orderwatch_dagster import channels, mongo

KIND = "position"
PREVIOUS_SCAN = 100
"""Documents of one trader and coin read to find the one before a change (changes within a second)."""


def change(before: Decimal, after: Decimal) -> str | None:
    """open / add / reduce / close / flip, or None when the size did not change."""
    if after == before:
        return None
    if before == 0:
        return "open"
    if after == 0:
        return "close"
    if (before > 0) != (after > 0):
        return "flip"
    return "add" if abs(after) > abs(before) else "reduce"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def position_alert(doc: dict[str, Any], previous: dict[str, Any] | None, realized: Decimal) -> dict[str, Any] | None:
    """The alert of one position document given the one before it (None: first seen), or None."""
    before = Decimal(previous["szi"]) if previous else Decimal(0)
    after = Decimal(doc["szi"])
    kind = change(before, after)
    if kind is None:
        return None
    held = previous if kind == "close" and previous else doc  # a close describes the position it closed
    entry = held.get("entryPx")
    px = float(entry) if entry else 0.0
    side = "long" if (after if kind != "close" else before) > 0 else "short"
    at = _utc(doc["serverTime"])
    alert = {
        "alertKey": f"{KIND}:{doc['ethAddress']}:{doc['coin']}:{at.isoformat()}",
        "kind": KIND,
        "change": kind,
        "ethAddress": doc["ethAddress"],
        "dex": doc.get("dex") or "",
        "coin": doc["coin"],
        "side": side,
        "eventAt": at,
        "sziBefore": str(previous["szi"]) if previous else "0.0",
        "szi": doc["szi"],
        "entryPx": entry,
        "leverage": held.get("leverage"),
        "realizedPnl": f"{realized.normalize():f}",
        "notionalBeforeUsd": float(abs(before)) * px,
        "notionalAfterUsd": float(abs(after)) * px,
        "reason": f"position {kind}",
    }
    return alert | {"message": f"{doc['ethAddress']} {doc['coin']}: {channels.what_happened(alert)}"}


def _previous(db: Database, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The position document of the same trader and coin just before ``doc``."""
    # a bound a second wide and then < in Python: nx-27017 compares datetimes within one second
    # wrongly (sensors._batch)
    at = _utc(doc["serverTime"])
    found = db[schema.POSITIONS].find(
        {"ethAddress": doc["ethAddress"], "coin": doc["coin"], "serverTime": {"$lte": at + timedelta(seconds=1)}},
        {"_id": 0}).sort("serverTime", -1).limit(PREVIOUS_SCAN)
    return next((d for d in found if _utc(d["serverTime"]) < at), None)


def _realized(db: Database, doc: dict[str, Any], previous: dict[str, Any] | None) -> Decimal:
    """The closed PnL of the trader's fills of the coin after ``previous`` and up to ``doc``."""
    start = _utc(previous["serverTime"]) if previous else None
    end = _utc(doc["serverTime"])
    query: dict[str, Any] = {"$lte": end + timedelta(seconds=1)}
    if start is not None:
        query["$gte"] = start - timedelta(seconds=1)
    fills = db[schema.FILLS].find({"ethAddress": doc["ethAddress"], "coin": doc["coin"], "time": query},
                                  {"_id": 0, "closedPnl": 1, "time": 1})
    return sum((Decimal(f.get("closedPnl") or "0") for f in fills
                if (start is None or _utc(f["time"]) > start) and _utc(f["time"]) <= end), Decimal(0))


def raise_alerts(db: Database, docs: list[dict[str, Any]], now: datetime) -> int:
    """Write the alerts of these newly stored ``trader_positions`` documents; return how many were new."""
    alerts = []
    for doc in sorted(docs, key=lambda d: d["serverTime"]):
        previous = _previous(db, doc)
        alert = position_alert(doc, previous, _realized(db, doc, previous))
        if alert is not None:
            alerts.append(alert)
    if not alerts:
        return 0
    labels = {d["_id"]: d.get("label") for d in db[schema.WATCHLIST].find({}, {"label": 1})}
    frame = pl.DataFrame([a | {"label": labels.get(a["ethAddress"])} for a in alerts],
                         schema_overrides={"label": pl.String, "leverage": pl.Int64, "entryPx": pl.String})
    return mongo.write_alerts(db, frame, now)
