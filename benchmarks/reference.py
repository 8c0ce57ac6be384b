"""Pure-Python versions of the Dagster transforms: the straightforward way, for comparison.

Same logic as :mod:`orderwatch_dagster.transforms` on a list of event dicts (as
``DataFrame.to_dicts()`` gives them): group by order in Python dicts, loop, build rows.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from orderwatch_dagster.partitions import day_bounds

Event = dict[str, Any]
ZERO = Decimal(0)


def _outcome(final: str | None) -> str:
    if final is None:
        return "open"
    if final == "filled":
        return "filled"
    if final.endswith("Canceled") or final in ("canceled", "scheduledCancel", "internalCancel"):
        return "canceled"
    if final.endswith("Rejected") or final == "rejected":
        return "rejected"
    return "triggered" if final == "triggered" else "unknown"


def _by_order(events: list[Event], end: datetime) -> dict[tuple[str, int], list[Event]]:
    orders: dict[tuple[str, int], list[Event]] = defaultdict(list)
    for e in events:
        if e["eventAt"] < end:
            orders[(e["ethAddress"], e["oid"])].append(e)
    for evs in orders.values():
        evs.sort(key=lambda e: (e["seq"], e["eventAt"]))
    return orders


def order_lifecycles(events: list[Event], day: str) -> list[Event]:
    start, end = day_bounds(day)
    rows = []
    for (addr, oid), evs in _by_order(events, end).items():
        closed = [e for e in evs if e["action"] == "closed"]
        closed_at = max((e["eventAt"] for e in closed), default=None)
        if closed_at is not None and closed_at < start:
            continue
        updates = [e for e in evs if e["action"] == "updated"]
        open_evs = [e for e in evs if e["action"] != "closed"]
        placed = min((e["timestamp"] for e in evs if e["timestamp"] is not None), default=None)
        first_seen = min(e["eventAt"] for e in evs)
        placed = placed or first_seen
        orig = next((e["origSz"] for e in evs if e["origSz"] is not None), None)
        last_sz = open_evs[-1]["sz"] if open_evs else None
        if last_sz is None and closed:
            last_sz = closed[-1]["sz"]
        partial = sum((e["prevSz"] - e["sz"] for e in evs if e["partialFill"]), ZERO)
        final = closed[-1]["finalStatus"] if closed else None
        outcome = _outcome(final)
        filled = partial
        if outcome == "filled":
            filled = partial + (last_sz if last_sz is not None and last_sz > 0 else orig - partial)
        rows.append({
            "ethAddress": addr, "oid": oid, "coin": evs[-1]["coin"], "side": evs[-1]["side"],
            "orderType": evs[-1]["orderType"],
            "parentOid": max((e["parentOid"] for e in evs if e["parentOid"] is not None), default=None),
            "placedAt": placed, "firstSeenAt": first_seen, "closedAt": closed_at, "finalStatus": final,
            "outcome": outcome, "durationS": ((closed_at or end) - placed).total_seconds(),
            "nUpdates": len(updates),
            "nPriceChanges": sum(1 for e in updates if e["changes"] and "limitPx" in e["changes"]),
            "origSz": orig, "lastSz": last_sz, "filledSz": filled,
            "maxNotionalUsd": max((e["notionalUsd"] for e in evs if e["notionalUsd"] is not None), default=None),
            "recovered": any(e["source"] == "rest" for e in evs),
        })
    return sorted(rows, key=lambda r: (r["ethAddress"], r["oid"]))


def large_change_alerts(events: list[Event], day: str, threshold: float = 100_000.0,
                        share: float = 0.5, min_usd: float = 50_000.0) -> list[Event]:
    start, end = day_bounds(day)
    alerts = []
    for (addr, oid), evs in _by_order(events, end).items():
        prev_notional = None
        for e in evs:
            action, notional = e["action"], e["notionalUsd"]
            if action == "new":
                before = 0.0
            elif action == "updated":
                sz = e["prevSz"] if e["prevSz"] is not None else e["sz"]
                px = e["prevLimitPx"] if e["prevLimitPx"] is not None else e["limitPx"]
                before = float(sz) * float(px) if sz is not None and px is not None else prev_notional
            else:
                before = prev_notional if prev_notional is not None else notional
            after = 0.0 if action == "closed" else notional
            prev_notional = notional
            if e["eventAt"] < start:
                continue
            change = abs(after - before)
            reasons = []
            if action == "new" and after >= threshold:
                reasons.append("large_order")
            if action == "updated" and before < threshold <= after:
                reasons.append("crossed_threshold")
            if action == "updated" and change > min_usd and change > share * before:
                reasons.append("large_change")
            if action == "closed" and before >= threshold:
                reasons.append("large_close")
            if reasons:
                alerts.append({"alertKey": f"{addr}:{oid}:{e['eventKey']}", "eventAt": e["eventAt"],
                               "reason": ",".join(reasons), "notionalBeforeUsd": before,
                               "notionalAfterUsd": after, "changeUsd": after - before})
    return sorted(alerts, key=lambda a: (a["eventAt"], a["alertKey"]))


def trader_daily_stats(events: list[Event], day: str) -> list[Event]:
    start, end = day_bounds(day)
    stats: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "nEvents": 0, "ordersPlaced": 0, "amended": set(), "notionalPlacedUsd": 0.0, "coins": set(),
        "ordersFilled": 0, "ordersCanceled": 0, "ordersRejected": 0, "openOrdersAtEnd": 0,
        "fills": [], "cancels": []})
    for e in events:
        if not start <= e["eventAt"] < end:
            continue
        s = stats[e["ethAddress"]]
        s["nEvents"] += 1
        s["coins"].add(e["coin"])
        if e["action"] == "new":
            s["ordersPlaced"] += 1
            s["notionalPlacedUsd"] += e["notionalUsd"] or 0.0
        elif e["action"] == "updated" and not e["partialFill"]:
            s["amended"].add(e["oid"])
    for lc in order_lifecycles(events, day):
        s = stats[lc["ethAddress"]]
        today = lc["closedAt"] is not None and lc["closedAt"] >= start
        outcome = lc["outcome"]
        s["openOrdersAtEnd"] += outcome == "open"
        if today and outcome == "filled":
            s["ordersFilled"] += 1
            s["fills"].append(lc["durationS"])
        elif today and outcome == "canceled":
            s["ordersCanceled"] += 1
            s["cancels"].append(lc["durationS"])
        elif today and outcome == "rejected":
            s["ordersRejected"] += 1
    rows = []
    for addr in sorted(stats):
        s = stats[addr]
        rows.append({
            "ethAddress": addr, "nEvents": s["nEvents"], "ordersPlaced": s["ordersPlaced"],
            "ordersAmended": len(s["amended"]), "ordersFilled": s["ordersFilled"],
            "ordersCanceled": s["ordersCanceled"], "ordersRejected": s["ordersRejected"],
            "openOrdersAtEnd": s["openOrdersAtEnd"],
            "cancelRatio": s["ordersCanceled"] / s["ordersPlaced"] if s["ordersPlaced"] else None,
            "medianTimeToFillS": statistics.median(s["fills"]) if s["fills"] else None,
            "medianTimeToCancelS": statistics.median(s["cancels"]) if s["cancels"] else None,
            "notionalPlacedUsd": s["notionalPlacedUsd"], "coinsTraded": len(s["coins"]),
            "coins": sorted(s["coins"]),
        })
    return rows
