"""The alert outbox in ``order_alerts``: a delivery decision per alert, then delivery per channel.

Every alert stays in ``order_alerts``; this module only adds bookkeeping to its document:

* the decision (:func:`rules.decide`): ``decision`` (send / merged / suppressed / held),
  ``decisionReason``, ``decidedAt``, and ``mergedInto`` (a merged fill), ``digestKey`` (held
  for quiet hours), ``deliverAt`` (when a message may go), ``chainOid`` (a fill's amend chain);
* per channel, ``deliveries.<channel>``: ``attempts``, ``lastAttemptAt`` and ``nextAttemptAt``
  = now + :data:`LEASE` written before each POST (the claim), then ``sentAt``, or
  ``nextAttemptAt`` and ``lastError`` (secrets redacted);
* ``notifiedAt`` once every enabled channel has the message (a channel enabled later does not
  receive what was already delivered);
* ``rev``, the document's revision: every write is a compare-and-set on it.

Documents are rewritten whole (``replace_one``): nx-27017 stores a ``$set`` datetime as text. Each
rewrite applies its change to the document as stored and matches ``{_id, rev}``: if another sensor
evaluation wrote the document in between, nothing is written and the change is applied again to
the new version (or dropped, when it no longer applies). Two evaluations can overlap: Dagster's
daemon starts the next tick once an evaluation outlives its gRPC timeout while the code server
still runs the old one, and the UI's "Test sensor" runs the function too. Only the evaluation
whose claim was written POSTs; the others find the message claimed (not due until the lease ends)
or sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from pymongo.collection import Collection
from pymongo.database import Database

from collector_service import schema
from orderwatch_dagster import rules as rules_mod
from orderwatch_dagster.channels import Channel, DeliveryError, Message, describe

DECISIONS_PER_TICK = 1_000
"""Undecided alerts judged per tick at most (oldest first); the rest wait for the next tick."""
DELIVERIES_PER_TICK = 200
"""Messages (delivery units) sent per tick at most; the rest wait for the next tick."""
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 3600
CHAIN_DEPTH = 100
"""Replacement links followed at most to find a fill's amend-chain root."""
LEASE = timedelta(minutes=5)
"""How long a claimed delivery belongs to the evaluation that claimed it: no other one POSTs it
meanwhile. It outlasts one POST (the channels time out after 10 s) and its bookkeeping by far; an
evaluation killed between its claim and the result leaves the message to be retried once it ends."""


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones: 30 s doubling, at most an hour."""
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def _as_dt(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None


def _save(coll: Collection, doc: dict, rev: int | None) -> bool:
    """Rewrite one ``order_alerts`` document whole if it is still at revision ``rev`` (None: never
    written by this module; matches a missing field on MongoDB and nx-27017 alike); whether it was
    (the only write this module makes)."""
    return coll.replace_one({"_id": doc["_id"], "rev": rev}, doc | {"rev": (rev or 0) + 1}).modified_count == 1


def _update(coll: Collection, doc_id: object, change: Callable[[dict], dict | None]) -> dict | None:
    """Apply ``change`` to the stored document and write the result (compare-and-set, applied
    again to the new version when another evaluation wrote in between); the document written, or
    None when ``change`` declines (returns None)."""
    while True:
        current = coll.find_one({"_id": doc_id})
        new = change(current) if current is not None else None
        if current is None or new is None:
            return None
        rev = current.get("rev")
        if _save(coll, new, rev):
            return new | {"rev": (rev or 0) + 1}


def _decided(fields: dict, doc: dict) -> dict | None:
    """``doc`` with its decision ``fields``, unless another evaluation decided or delivered it."""
    return None if doc.get("decision") or doc.get("notifiedAt") else doc | fields


def _with_delivery(doc: dict, channel: str, state: dict) -> dict:
    return doc | {"deliveries": dict(doc.get("deliveries") or {}) | {channel: state}}


def _claimed(channel: str, now: datetime, doc: dict) -> dict | None:
    """``doc`` claimed for a POST on ``channel`` (the intent: ``attempts`` + 1, ``lastAttemptAt``,
    ``nextAttemptAt`` = the lease's end), or None when it is not due there: sent, waiting for a
    retry, or claimed by another evaluation."""
    if not _needs_post(doc, channel, now):
        return None
    attempts = int(((doc.get("deliveries") or {}).get(channel) or {}).get("attempts") or 0) + 1
    return _with_delivery(doc, channel, {"attempts": attempts, "lastAttemptAt": now, "nextAttemptAt": now + LEASE})


def _record(coll: Collection, doc: dict, channel: str, state: dict) -> dict:
    """Write the outcome ``state`` of ``doc``'s POST on ``channel``; the document as written."""
    return _update(coll, doc["_id"], partial(_with_delivery, channel=channel, state=state)) or doc


def _marked_notified(now: datetime, doc: dict) -> dict | None:
    return None if doc.get("notifiedAt") else doc | {"notifiedAt": now}


def chain_root(db: Database, address: str, oid: int) -> int:
    """The first oid of ``oid``'s amend chain, following ``replacesOid`` on the stored ``new`` events."""
    orders = db[schema.ORDERS]
    seen = {oid}
    for _ in range(CHAIN_DEPTH):
        doc = orders.find_one({"ethAddress": address, "oid": oid, "eventKey": "new"}, {"_id": 0, "replacesOid": 1})
        prev = doc.get("replacesOid") if doc else None
        if prev is None or prev in seen:
            break
        oid = int(prev)
        seen.add(oid)
    return oid


def decide_pending(db: Database, rules: rules_mod.AlertRules, now: datetime) -> dict[str, int]:
    """Record a delivery decision on each undecided, undelivered alert, oldest first; return the
    count per decision. Each alert is judged against the decided alerts of its trader within
    :func:`rules.lookback` (those decided earlier in this tick included)."""
    coll = db[schema.ALERTS]
    # decision/notifiedAt None also match a missing field (MongoDB and nx-27017 alike); alerts
    # delivered before decisions existed have notifiedAt and are left alone.
    pending = list(
        coll.find({"decision": None, "notifiedAt": None})
        .sort([("eventAt", 1), ("alertKey", 1)])
        .limit(DECISIONS_PER_TICK)
    )
    reach = rules_mod.lookback(rules)
    counts: dict[str, int] = defaultdict(int)
    for alert in pending:
        alert["eventAt"] = _as_dt(alert["eventAt"])
        if rules_mod.is_fill(alert):
            alert["chainOid"] = chain_root(db, alert["ethAddress"], int(alert["oid"]))
        earlier = []
        if reach:
            near = coll.find({"ethAddress": alert["ethAddress"], "eventAt": {"$gte": alert["eventAt"] - reach}})
            earlier = [d | {"eventAt": _as_dt(d["eventAt"])} for d in near if d.get("decision")]
        decision = rules_mod.decide(alert, rules, earlier, now)
        fields = {k: alert[k] for k in ("eventAt", "chainOid") if k in alert} | decision | {"decidedAt": now}
        if _update(coll, alert["_id"], partial(_decided, fields)) is not None:
            counts[decision["decision"]] += 1
    return dict(counts)


def _oldest_first(doc: dict) -> tuple[datetime | None, str]:
    return _as_dt(doc["eventAt"]), doc["alertKey"]


def _needs_post(doc: dict, channel: str, now: datetime) -> bool:
    """Whether ``doc``'s message must be POSTed on ``channel`` now: not sent there, and due."""
    state = (doc.get("deliveries") or {}).get(channel) or {}
    nxt = _as_dt(state.get("nextAttemptAt"))
    return not state.get("sentAt") and (nxt is None or nxt <= now)


def _sent_everywhere(doc: dict, names: list[str]) -> bool:
    return all(((doc.get("deliveries") or {}).get(name) or {}).get("sentAt") for name in names)


def _notified(coll: Collection, covered: list[dict], now: datetime) -> None:
    """Mark the documents a message covered as delivered on every enabled channel."""
    for doc in covered:
        _update(coll, doc["_id"], partial(_marked_notified, now))


def _units(
    coll: Collection, now: datetime, trader_url: str, names: list[str]
) -> list[tuple[dict, Message, list[dict]]]:
    """The messages due on at least one of the channels ``names``: each (the document carrying the
    delivery state, the message, every document it covers). A sent alert carries its merged fills;
    a digest is every alert held for the same quiet period, its state on the oldest."""
    due = [
        d
        for d in coll.find({"notifiedAt": None, "decision": {"$in": list(rules_mod.DELIVERED_DECISIONS)}})
        if (_as_dt(d.get("deliverAt")) or now) <= now
    ]
    units = []
    for lead in sorted((d for d in due if d["decision"] == rules_mod.SEND), key=_oldest_first):
        covered = [lead, *sorted(coll.find({"mergedInto": lead["alertKey"]}), key=_oldest_first)]
        if any(_needs_post(lead, name, now) for name in names):
            units.append((lead, describe(lead["alertKey"], covered, trader_url), covered))
        elif _sent_everywhere(lead, names):  # a crash came between the last sentAt and notifiedAt
            _notified(coll, covered, now)
    digests: dict[str, list[dict]] = defaultdict(list)
    for d in due:
        if d["decision"] == rules_mod.HELD:
            digests[d["digestKey"]].append(d)
    for key, held in sorted(digests.items()):
        held.sort(key=_oldest_first)
        if any(_needs_post(held[0], name, now) for name in names):
            units.append((held[0], describe(key, held, trader_url, digest=True), held))
        elif _sent_everywhere(held[0], names):
            _notified(coll, held, now)
    return units


def deliver_due(
    db: Database, channels: list[Channel], rules: rules_mod.AlertRules, log: object, now: datetime
) -> dict[str, tuple[int, int]]:
    """Send each due message once on every enabled channel; return ``(sent, failed)`` per channel.

    Per message and channel: the claim (``attempts`` + 1, ``lastAttemptAt``, ``nextAttemptAt`` =
    the end of the :data:`LEASE`) is written by compare-and-set before the POST, and only if it
    was written does this evaluation POST; the result after it (``sentAt``; or ``nextAttemptAt`` =
    now + :func:`backoff`, or the receiver's 429 wait, and the redacted ``lastError``). A channel's
    first failure ends its deliveries for the tick; the other channels go on. Nothing is dropped:
    a failed message is retried when due. The one repeat possible is a crash between a POST and
    its ``sentAt`` (retried when the lease ends).
    """
    coll = db[schema.ALERTS]
    result = {c.name: (0, 0) for c in channels}
    if not channels:
        return result
    stopped: set[str] = set()
    names = [c.name for c in channels]
    for lead, msg, covered in _units(coll, now, rules.delivery.trader_url, names)[:DELIVERIES_PER_TICK]:
        for ch in channels:
            claimed = None if ch.name in stopped else _update(coll, lead["_id"], partial(_claimed, ch.name, now))
            if claimed is None:
                continue
            attempts = claimed["deliveries"][ch.name]["attempts"]
            state = {"attempts": attempts, "lastAttemptAt": now}
            try:
                ch.send(msg)
            except Exception as exc:  # any failure: keep it unsent on this channel, retry later
                wait = exc.retry_after_s if isinstance(exc, DeliveryError) else None
                retry = now + (timedelta(seconds=wait) if wait is not None else backoff(attempts))
                error = ch.error_text(exc)
                failed_state = state | {"nextAttemptAt": retry, "lastError": error}
                lead = _record(coll, claimed, ch.name, failed_state)
                log.warning(  # type: ignore[attr-defined]
                    f"alert_delivery_failed channel={ch.name} key={msg.key} attempts={attempts} "
                    f"next={retry.isoformat()} error={error}"
                )
                sent, failed = result[ch.name]
                result[ch.name] = (sent, failed + 1)
                stopped.add(ch.name)
                continue
            lead = _record(coll, claimed, ch.name, state | {"sentAt": now})
            sent, failed = result[ch.name]
            result[ch.name] = (sent + 1, failed)
        if _sent_everywhere(lead, names):
            _notified(coll, covered, now)
    return result
