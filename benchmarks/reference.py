"""Pure-Python versions of the Dagster transforms: the straightforward way, for comparison.

Same logic as :mod:`orderwatch_dagster.transforms` on a list of event dicts (as
``DataFrame.to_dicts()`` gives them): group by order in Python dicts, loop, build rows. Amend
chains (a modify is a cancel-and-replace) are followed link by link in Python.
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


def _filled_or_rejected(final: str | None) -> bool:
    return final is not None and (final in ("filled", "rejected") or final.endswith("Rejected"))


def _dex(coin: str | None) -> str | None:
    if coin is None:
        return None
    dex, sep, _ = coin.partition(":")
    return dex if sep else ""


def replacement_links(events: list[Event], end: datetime) -> dict[tuple[str, int], int]:
    """Accepted links as ``{(ethAddress, new oid): old oid}``: both sides' links, new > old, the
    old order not closed filled or rejected; each new keeps its largest old, then each old its
    smallest new."""
    candidates: set[tuple[str, int, int]] = set()
    ruled_out: set[tuple[str, int]] = set()
    for e in events:
        if e["eventAt"] >= end:
            continue
        if e["action"] == "new" and e["replacesOid"] is not None:
            candidates.add((e["ethAddress"], e["replacesOid"], e["oid"]))
        if e["action"] == "closed":
            if e["replacedByOid"] is not None:
                candidates.add((e["ethAddress"], e["oid"], e["replacedByOid"]))
            if _filled_or_rejected(e["finalStatus"]):
                ruled_out.add((e["ethAddress"], e["oid"]))
    by_new: dict[tuple[str, int], int] = {}
    for addr, old, new in candidates:
        if new > old and (addr, old) not in ruled_out:
            by_new[(addr, new)] = max(by_new.get((addr, new), old), old)
    by_old: dict[tuple[str, int], int] = {}
    for (addr, new), old in by_new.items():
        by_old[(addr, old)] = min(by_old.get((addr, old), new), new)
    return {(addr, new): old for (addr, old), new in by_old.items()}


def _root(parent: dict[tuple[str, int], int], addr: str, oid: int) -> int:
    while (addr, oid) in parent:
        oid = parent[(addr, oid)]
    return oid


def _order_row(evs: list[Event], end: datetime) -> Event:
    """One order's own lifecycle (before chains)."""
    closed = [e for e in evs if e["action"] == "closed"]
    updates = [e for e in evs if e["action"] == "updated"]
    open_evs = [e for e in evs if e["action"] != "closed"]
    first_seen = min(e["eventAt"] for e in evs)
    placed = min((e["timestamp"] for e in evs if e["timestamp"] is not None), default=None) or first_seen
    orig = next((e["origSz"] for e in evs if e["origSz"] is not None), None)
    last_sz = open_evs[-1]["sz"] if open_evs else None
    if last_sz is None and closed:
        last_sz = closed[-1]["sz"]
    partial = sum((e["prevSz"] - e["sz"] for e in evs if e["partialFill"]), ZERO)
    final = closed[-1]["finalStatus"] if closed else None
    filled = partial
    if _outcome(final) == "filled":
        filled = partial + (last_sz if last_sz is not None and last_sz > 0 else orig - partial)
    return {
        "coin": evs[-1]["coin"], "side": evs[-1]["side"], "orderType": evs[-1]["orderType"],
        "parentOid": max((e["parentOid"] for e in evs if e["parentOid"] is not None), default=None),
        "placedAt": placed, "firstSeenAt": first_seen,
        "closedAt": max((e["eventAt"] for e in closed), default=None), "finalStatus": final,
        "nUpdates": len(updates), "nAmends": sum(1 for e in updates if not e["partialFill"]),
        "nPriceChanges": sum(1 for e in updates if e["changes"] and "limitPx" in e["changes"]),
        "newPx": max((e["limitPx"] for e in evs if e["action"] == "new" and e["limitPx"] is not None), default=None),
        "closedPx": max((e["limitPx"] for e in closed if e["limitPx"] is not None), default=None),
        "origSz": orig, "lastSz": last_sz, "filledSz": filled,
        "maxNotionalUsd": max((e["notionalUsd"] for e in evs if e["notionalUsd"] is not None), default=None),
        "recovered": any(e["source"] == "rest" for e in evs),
    }


def order_lifecycles(events: list[Event], day: str) -> list[Event]:
    """One row per amend chain whose last order closed that day or is open at its end."""
    start, end = day_bounds(day)
    per = {key: _order_row(evs, end) for key, evs in _by_order(events, end).items()}
    parent = replacement_links(events, end)
    chains: dict[tuple[str, int], set[int]] = defaultdict(set)
    for addr, oid in set(per) | set(parent) | {(a, old) for (a, _), old in parent.items()}:
        chains[(addr, _root(parent, addr, oid))].add(oid)
    rows = []
    for (addr, root), oids in chains.items():
        members = sorted(oids)
        last = per.get((addr, members[-1]))
        closed_at = last["closedAt"] if last else None
        if closed_at is not None and closed_at < start:
            continue
        seen = [per[(addr, o)] for o in members if (addr, o) in per]
        first, latest = seen[0], seen[-1]
        repriced = sum(
            1 for o in members
            if (addr, o) in parent and (addr, o) in per and (addr, parent[(addr, o)]) in per
            and per[(addr, o)]["newPx"] is not None
            and per[(addr, parent[(addr, o)])]["closedPx"] is not None
            and per[(addr, o)]["newPx"] != per[(addr, parent[(addr, o)])]["closedPx"]
        )
        final = last["finalStatus"] if last else None
        rows.append({
            "ethAddress": addr, "rootOid": root, "oid": members[-1], "dex": _dex(latest["coin"]),
            "coin": latest["coin"], "side": latest["side"], "orderType": latest["orderType"],
            "parentOid": max((r["parentOid"] for r in seen if r["parentOid"] is not None), default=None),
            "placedAt": first["placedAt"], "firstSeenAt": min(r["firstSeenAt"] for r in seen),
            "closedAt": closed_at, "finalStatus": final, "outcome": _outcome(final),
            "durationS": ((closed_at or end) - first["placedAt"]).total_seconds(),
            "amendCount": len(members) - 1 + sum(r["nAmends"] for r in seen),
            "nUpdates": sum(r["nUpdates"] for r in seen),
            "nPriceChanges": sum(r["nPriceChanges"] for r in seen) + repriced,
            "origSz": first["origSz"], "lastSz": last["lastSz"] if last else None,
            # the size the events say filled (the Dagster table's filledSzEvents; its filledSz
            # comes from fills, which the synthetic events do not have)
            "filledSzEvents": sum((r["filledSz"] for r in seen), ZERO),
            "maxNotionalUsd": max((r["maxNotionalUsd"] for r in seen if r["maxNotionalUsd"] is not None),
                                  default=None),
            "recovered": any(r["recovered"] for r in seen),
        })
    return sorted(rows, key=lambda r: (r["ethAddress"], r["rootOid"]))


def large_change_alerts(events: list[Event], day: str, threshold: float = 100_000.0,
                        share: float = 0.5, min_usd: float = 50_000.0) -> list[Event]:
    start, end = day_bounds(day)
    orders = _by_order(events, end)
    parent = replacement_links(events, end)
    replaced = {(addr, old) for (addr, _), old in parent.items()}
    last_notional: dict[tuple[str, int], float | None] = {}
    for key in replaced:
        evs = orders.get(key)
        if evs:
            open_evs = [e for e in evs if e["action"] != "closed"]
            last_open = open_evs[-1]["notionalUsd"] if open_evs else None
            last_notional[key] = last_open if last_open is not None else evs[-1]["notionalUsd"]
    alerts = []
    for (addr, oid), evs in orders.items():
        if not any(e["eventAt"] >= start for e in evs):
            continue
        prev_notional = None
        for e in evs:
            action, notional = e["action"], e["notionalUsd"]
            replaces = parent.get((addr, oid)) if action == "new" else None
            replaced_before = last_notional.get((addr, replaces)) if replaces is not None else None
            update_like = action == "updated" or replaced_before is not None
            if replaced_before is not None:
                before = replaced_before
            elif action == "new":
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
            if action == "new" and not update_like and after >= threshold:
                reasons.append("large_order")
            if update_like and before < threshold <= after:
                reasons.append("crossed_threshold")
            if update_like and change > min_usd and change > share * before:
                reasons.append("large_change")
            if action == "closed" and (addr, oid) not in replaced and before >= threshold:
                reasons.append("large_close")
            if reasons:
                alerts.append({"alertKey": f"{addr}:{oid}:{e['eventKey']}", "eventAt": e["eventAt"],
                               "reason": ",".join(reasons), "notionalBeforeUsd": before,
                               "notionalAfterUsd": after, "changeUsd": after - before,
                               "replacesOid": replaces, "dex": _dex(e["coin"])})
    return sorted(alerts, key=lambda a: (a["eventAt"], a["alertKey"]))


def trader_daily_stats(events: list[Event], day: str) -> list[Event]:
    start, end = day_bounds(day)
    parent = replacement_links(events, end)
    stats: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "nEvents": 0, "ordersPlaced": 0, "amended": set(), "amends": 0, "notionalPlacedUsd": 0.0, "coins": set(),
        "ordersFilled": 0, "ordersCanceled": 0, "ordersRejected": 0, "openOrdersAtEnd": 0,
        "fills": [], "cancels": []})
    for e in events:
        if not start <= e["eventAt"] < end:
            continue
        s = stats[e["ethAddress"]]
        s["nEvents"] += 1
        s["coins"].add(e["coin"])
        key = (e["ethAddress"], e["oid"])
        amend = (e["action"] == "new" and key in parent) or (e["action"] == "updated" and not e["partialFill"])
        if e["action"] == "new" and key not in parent:
            s["ordersPlaced"] += 1
            s["notionalPlacedUsd"] += e["notionalUsd"] or 0.0
        if amend:
            s["amends"] += 1
            s["amended"].add(_root(parent, *key))
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
            "ordersAmended": len(s["amended"]), "amends": s["amends"], "ordersFilled": s["ordersFilled"],
            "ordersCanceled": s["ordersCanceled"], "ordersRejected": s["ordersRejected"],
            "openOrdersAtEnd": s["openOrdersAtEnd"],
            "cancelRatio": s["ordersCanceled"] / s["ordersPlaced"] if s["ordersPlaced"] else None,
            "medianTimeToFillS": statistics.median(s["fills"]) if s["fills"] else None,
            "medianTimeToCancelS": statistics.median(s["cancels"]) if s["cancels"] else None,
            "notionalPlacedUsd": s["notionalPlacedUsd"], "coinsTraded": len(s["coins"]),
            "coins": sorted(s["coins"]),
        })
    return rows
