"""Builders of ``trader_orders`` documents as the collector writes them: one event, a modify
(cancel-and-replace), and writing documents through the collector's own writer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from collector_service import store
from collector_service.metrics import Stats
from collector_service.schema import dex_of


def order(
    addr: str,
    oid: int,
    action: str,
    seq: int,
    observed: datetime | None,
    *,
    coin: str,
    side: str,
    sz: str,
    px: str,
    placed: datetime,
    created: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``trader_orders`` document as the collector writes it."""
    doc: dict[str, Any] = {
        "ethAddress": addr,
        "oid": oid,
        "eventKey": f"updated:{seq}" if action == "updated" else action,
        "action": action,
        "status": "closed" if action == "closed" else "open",
        "seq": seq,
        "source": "ws",
        "coin": coin,
        "side": side,
        "orderType": "Limit",
        "tif": "Gtc",
        "triggerCondition": "N/A",
        "limitPx": px,
        "sz": sz,
        "origSz": sz,
        "triggerPx": "0.0",
        "isTrigger": False,
        "reduceOnly": False,
        "isPositionTpsl": False,
        "timestamp": placed,
        "observedAt": observed,
        "serverTime": observed,
        "createdAt": created or (observed + timedelta(seconds=1) if observed else None),
    }
    if observed is None:
        del doc["observedAt"], doc["serverTime"]
    doc["storedAt"] = doc["createdAt"]  # the collector's writer stamps it when it inserts
    doc["dex"] = dex_of(coin)
    doc.update(extra)
    if doc["dex"] is None:  # a document written before the collector stored dex
        del doc["dex"]
    return doc


def write_as_collector(mongo_uri: str, db_name: str, docs: list[dict[str, Any]]) -> None:
    """Write ``trader_orders`` documents as a collector's writer does (it stamps ``storedAt``)."""
    database = store.Database(mongo_uri, db_name)
    try:
        database.write(store.order_ops([{k: v for k, v in d.items() if k != "storedAt"} for d in docs]), Stats())
    finally:
        database.close()


def replace(
    addr: str,
    old: int,
    old_seq: int,
    new: int,
    observed: datetime,
    *,
    coin: str,
    side: str,
    old_sz: str,
    old_px: str,
    old_placed: datetime,
    old_orig: str | None = None,
    sz: str,
    px: str,
    match: str,
    cloid: str | None = None,
    old_status: str = "canceled",
    new_extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A modify as the collector records it: the old order's close (``replacedByOid``) and the
    replacement's new event (``replacesOid``), seen in the same snapshot."""
    ids = {"cloid": cloid} if cloid else {}
    closed = order(
        addr,
        old,
        "closed",
        old_seq,
        observed,
        coin=coin,
        side=side,
        sz=old_sz,
        px=old_px,
        placed=old_placed,
        origSz=old_orig or old_sz,
        finalStatus=old_status,
        statusTimestamp=observed,
        replacedByOid=new,
        replaceMatch=match,
        **ids,
    )
    placed = order(
        addr,
        new,
        "new",
        0,
        observed,
        coin=coin,
        side=side,
        sz=sz,
        px=px,
        placed=observed,
        replacesOid=old,
        replaceMatch=match,
        **ids,
        **(new_extra or {}),
    )
    return [closed, placed]
