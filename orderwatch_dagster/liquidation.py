"""Liquidation risk of the followed traders' positions, and the ``near_liquidation`` alert.

Each open position (the newest ``trader_positions`` document per trader and coin, ``szi`` not
zero) is measured against its coin's mark (``market_marks``, kept fresh by the collector):

* ``distancePct``: how far the mark may still move against the position before it reaches the
  liquidation price, in % of the mark: ``(mark - liq) / mark x 100`` for a long,
  ``(liq - mark) / mark x 100`` for a short (0 or below: at or past it); null without a
  liquidation price (the exchange serves none when the account cannot be liquidated) or a mark;
* ``positionValueUsd`` = |szi| x mark, ``leverage`` and ``marginUsed`` as the exchange served them.

A position within ``threshold_pct`` of its liquidation price raises one ``near_liquidation`` alert
(``order_alerts``, ``kind`` = "near_liquidation") and no other for that trader and coin until
``cooldown_s`` have passed since it (``[near_liquidation]`` in alert_rules.toml, with per-trader and
per-coin overrides). The alert then goes through the same delivery rules and channels as the
large-change alerts (orderwatch_dagster.outbox).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from pymongo.database import Database

from collector_service import schema
from orderwatch_dagster import channels, mongo
from orderwatch_dagster.rules import AlertRules

KIND = "near_liquidation"
CLOSED_SZI = "0.0"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def latest_positions(db: Database) -> list[dict[str, Any]]:
    """The open positions: the newest document per (trader, coin) whose size is not zero."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    fields = {"_id": 0, "ethAddress": 1, "dex": 1, "coin": 1, "szi": 1, "entryPx": 1, "liquidationPx": 1,
              "leverage": 1, "leverageType": 1, "marginUsed": 1, "serverTime": 1}
    for doc in db[schema.POSITIONS].find({}, fields).sort("serverTime", -1):
        newest.setdefault((doc["ethAddress"], doc["coin"]), doc)
    return [doc for doc in newest.values() if float(doc["szi"]) != 0.0]


def position_risk(position: dict[str, Any], mark: dict[str, Any] | None) -> dict[str, Any]:
    """One position with its mark, liquidation distance and size (see the module)."""
    szi = float(position["szi"])
    mark_px = float(mark["markPx"]) if mark else None
    liq = position.get("liquidationPx")
    liq_px = float(liq) if liq is not None else None
    distance = None
    if mark_px and liq_px is not None:
        distance = (mark_px - liq_px) / mark_px * 100.0 if szi > 0 else (liq_px - mark_px) / mark_px * 100.0
    return {
        **position,
        "side": "long" if szi > 0 else "short",
        "markPx": mark["markPx"] if mark else None,
        "markAt": mark.get("observedAt") if mark else None,
        "distancePct": distance,
        "positionValueUsd": abs(szi) * mark_px if mark_px else None,
    }


def positions_risk(db: Database) -> list[dict[str, Any]]:
    """Every open position of the followed traders with its liquidation risk."""
    marks = {doc["_id"]: doc for doc in db[schema.MARKS].find()}
    return [position_risk(p, marks.get(p["coin"])) for p in latest_positions(db)]


def _last_alerts(db: Database) -> dict[tuple[str, str], datetime]:
    last: dict[tuple[str, str], datetime] = {}
    for doc in db[schema.ALERTS].find({"kind": KIND}, {"_id": 0, "ethAddress": 1, "coin": 1, "eventAt": 1}):
        key, at = (doc["ethAddress"], doc["coin"]), _utc(doc["eventAt"])
        last[key] = max(at, last.get(key, at))
    return last


def near_liquidation_alerts(
    risks: list[dict[str, Any]], rules: AlertRules, last: dict[tuple[str, str], datetime], now: datetime
) -> list[dict[str, Any]]:
    """The alerts due now: positions within their threshold, none alerted within their cooldown."""
    alerts = []
    for risk in risks:
        address, coin, distance = risk["ethAddress"], risk["coin"], risk["distancePct"]
        threshold, cooldown = rules.near_liquidation_policy(address, coin)
        if distance is None or distance > threshold:
            continue
        previous = last.get((address, coin))
        if previous is not None and now - previous < timedelta(seconds=cooldown):
            continue
        value = risk["positionValueUsd"]
        alerts.append({
            "alertKey": f"{KIND}:{address}:{coin}:{now.isoformat()}",
            "kind": KIND,
            "ethAddress": address,
            "dex": risk.get("dex") or "",
            "coin": coin,
            "side": risk["side"],
            "eventAt": now,
            "szi": risk["szi"],
            "entryPx": risk.get("entryPx"),
            "markPx": risk["markPx"],
            "liquidationPx": risk["liquidationPx"],
            "distancePct": round(distance, 4),
            "leverage": risk.get("leverage"),
            "marginUsed": risk.get("marginUsed"),
            "notionalBeforeUsd": value,
            "notionalAfterUsd": value,
            "reason": f"{KIND} {distance:.2f} % <= {threshold:g} %",
        })
        alerts[-1]["message"] = f"{address} {risk['side']} {coin}: {channels.what_happened(alerts[-1])}"
        last[(address, coin)] = now
    return alerts


def raise_alerts(db: Database, rules: AlertRules, now: datetime) -> int:
    """Write the ``near_liquidation`` alerts due now into ``order_alerts``; return how many."""
    alerts = near_liquidation_alerts(positions_risk(db), rules, _last_alerts(db), now)
    if not alerts:
        return 0
    watchlist = {doc["_id"]: doc.get("label") for doc in db[schema.WATCHLIST].find({}, {"label": 1})}
    frame = pl.DataFrame([a | {"label": watchlist.get(a["ethAddress"])} for a in alerts],
                         schema_overrides={"label": pl.String, "leverage": pl.Int64})
    return mongo.write_alerts(db, frame, now)
