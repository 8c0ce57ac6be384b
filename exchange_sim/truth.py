"""Ground truth: every order transition as a node's order-status line, visibility, compare().

Truth file (`--truth-file`), one JSON object per line, as a non-validating node writes with
`--write-order-statuses` (PROTOCOL.md §6.4): `{"time": ISO-8601 UTC, "user", "status",
"order": <frontend order>}`. Partial fills (and in-place amends with `modify_keeps_oid`) are
lines with status "open" and the changed order; the last line of an oid carries its final
status. A modify is a cancel-and-replace: the replacement's `open` line (new oid, same cloid)
comes first, then the old oid's `canceled` line, with the same time.

With `SimConfig.tracked_traders` the truth and fills files hold only those traders' lines.
The node files (exchange_sim.node_files) carry the same transitions for every trader, except
the repeated `open` lines of partial fills, which a node does not write.

SIMULATOR EXTENSION (a real node does not write it): the replacement's `open` line carries
`"replaces": <old oid>`, so compare() knows the true amend links.

Visibility file (default `<truth-file>.visibility.jsonl`), records defined here:
- `{"kind":"pushed","user","oid","time":ms,"truthRow":n}` the first time an oid appeared in an
  openOrders/webData2 frame actually sent to a subscriber;
- `{"kind":"coverage","user","dex","live":bool,"time":ms,"truthRow":n}` when the number of
  live order subscriptions of a (user, dex) goes 0->1 or 1->0, over all connections: openOrders
  with that dex, and webData2 for dex "". A subscription of dex d covers orders whose coin is
  on dex d (`"xyz:TSLA"` -> "xyz"; main-dex perps and spot -> ""). Records without "dex"
  (older files) mean dex "".
`truthRow` is the number of truth lines written before the record, so order events and
coverage changes are ordered exactly.

Fills file (default `<truth-file>.fills.jsonl`, SimConfig.fills_file), one line per fill in the
order the exchange made them: `{"time": ISO-8601 UTC of the fill, "user": lower-case address,
"kind": "fill", "fill": <fill in the REST userFills shape, with "cloid" if the order has one>}`.
It is a separate file so that every truth-file line stays an order-status line.
exchange_sim.fill_truth.compare_fills() checks a collector's `trader_fills` documents against it.

Marks file (`<truth-file>.marks.jsonl`, written with the truth file), one line per scripted mark
move (`ExchangeSim.set_mark`), for every coin: `{"time": ISO-8601 UTC, "coin", "markPx"}`. Before
its first line a coin's mark is the market capture's. With the fills and the deposits it gives a
trader's positions, unrealized PnL and account value at any time; `load_marks` reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from exchange_sim import rules
from exchange_sim.market import MAIN_DEX, dex_of

OrderKey = tuple[str, int]
CoverageKey = tuple[str, str]  # (user, dex)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as the ISO-8601 UTC text a node writes (microsecond precision)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_time(value: str | int | float) -> int:
    """A truth line's `time` (ISO text or epoch ms) as epoch milliseconds."""
    if isinstance(value, int | float):
        return int(value)
    return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() * 1000)


class TruthRecorder:
    """Appends truth lines and visibility records; buffered, flushed by the owner and on close.

    `users` (lower-case addresses) restricts order transitions and fills to those traders
    (SimConfig.tracked_traders); None records every user.
    """

    def __init__(
        self,
        truth_path: Path | None,
        visibility_path: Path | None,
        fills_path: Path | None = None,
        users: Iterable[str] | None = None,
        marks_path: Path | None = None,
    ) -> None:
        self.truth_path = truth_path
        self.users = None if users is None else {u.lower() for u in users}
        self.fills_path = fills_path
        self._truth: IO[str] | None = open(truth_path, "w") if truth_path else None  # noqa: SIM115
        self._vis: IO[str] | None = open(visibility_path, "w") if visibility_path else None  # noqa: SIM115
        self._fills: IO[str] | None = open(fills_path, "w") if fills_path else None  # noqa: SIM115
        self._marks: IO[str] | None = open(marks_path, "w") if marks_path else None  # noqa: SIM115
        self.rows = 0
        self.fills = 0
        self.pushed: set[int] = set()
        self.orders: dict[int, str] = {}  # oid -> last status
        self.status_counts: dict[str, int] = {}
        self.replacements: dict[int, int] = {}  # new oid -> the oid it replaced
        self._pending_replace: dict[int, int] = {}

    def on_replace(self, user: str, old_oid: int, new_oid: int, time_ms: int) -> None:
        """Note that `new_oid` replaces `old_oid` (an Exchange replace listener); the
        replacement's next `open` line gets `"replaces": old_oid`."""
        if self.users is not None and user not in self.users:
            return
        self.replacements[new_oid] = old_oid
        self._pending_replace[new_oid] = old_oid

    def on_transition(self, user: str, status: str, order: dict[str, Any], time_ms: int) -> None:
        """Record one order transition (an Exchange listener)."""
        if self.users is not None and user not in self.users:
            return
        self.rows += 1
        oid = order["oid"]
        self.orders[oid] = status
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        line: dict[str, Any] = {"time": iso_ms(time_ms), "user": user, "status": status, "order": order}
        if status == rules.OPEN and oid in self._pending_replace:
            line["replaces"] = self._pending_replace.pop(oid)
        if self._truth:
            self._truth.write(json.dumps(line, separators=(",", ":")) + "\n")

    def on_fill(self, user: str, fill: dict[str, Any]) -> None:
        """Record one fill (an Exchange fill listener)."""
        if self.users is not None and user not in self.users:
            return
        self.fills += 1
        if self._fills:
            line = {"time": iso_ms(int(fill["time"])), "user": user, "kind": "fill", "fill": fill}
            self._fills.write(json.dumps(line, separators=(",", ":")) + "\n")

    def on_mark(self, coin: str, mark_px: str, time_ms: int) -> None:
        """Record a scripted mark move of `coin` (any coin: marks are public)."""
        if self._marks:
            line = {"time": iso_ms(time_ms), "coin": coin, "markPx": mark_px}
            self._marks.write(json.dumps(line, separators=(",", ":")) + "\n")

    def on_pushed(self, user: str, oids: Iterable[int], time_ms: int) -> None:
        """Record that these oids were in a frame sent to a subscriber of `user`."""
        for oid in oids:
            if oid not in self.pushed:
                self.pushed.add(oid)
                if self._vis:
                    self._vis.write(
                        json.dumps(
                            {
                                "kind": "pushed",
                                "user": user,
                                "oid": oid,
                                "time": time_ms,
                                "truthRow": self.rows,
                            }
                        )
                        + "\n"
                    )

    def on_coverage(self, user: str, live: bool, time_ms: int, dex: str = MAIN_DEX) -> None:
        """Record that (`user`, `dex`) gained (live=True) or lost its last live order subscription."""
        if self._vis:
            self._vis.write(
                json.dumps(
                    {
                        "kind": "coverage",
                        "user": user,
                        "dex": dex,
                        "live": live,
                        "time": time_ms,
                        "truthRow": self.rows,
                    }
                )
                + "\n"
            )

    def summary(self) -> dict[str, Any]:
        """Counts for the end-of-run summary."""
        final: dict[str, int] = {}
        for status in self.orders.values():
            final[status] = final.get(status, 0) + 1
        return {
            "orders": len(self.orders),
            "transitions": self.rows,
            "ordersPushedOverWs": len(self.pushed),
            "replacements": len(self.replacements),
            "fills": self.fills,
            "finalStatuses": dict(sorted(final.items())),
            "transitionsByStatus": dict(sorted(self.status_counts.items())),
        }

    def flush(self) -> None:
        """Push buffered lines to disk."""
        for f in (self._truth, self._vis, self._fills, self._marks):
            if f:
                f.flush()

    def close(self) -> None:
        """Flush and close the files."""
        for f in (self._truth, self._vis, self._fills, self._marks):
            if f:
                f.close()
        self._truth = self._vis = self._fills = self._marks = None


# ----- comparison ----------------------------------------------------------------------------


@dataclass
class TruthOrder:
    """One order's history as the truth file tells it."""

    user: str
    oid: int
    first_row: int
    last_row: int
    last_status: str
    last_history_entry: int = 0  # index of its newest historicalOrders entry for the user
    coin: str = ""
    replaces: int | None = None  # the oid this order replaced (a modify), if any

    @property
    def dex(self) -> str:
        """The perp dex whose feeds carry the order ("" for main-dex perps and spot)."""
        return dex_of(self.coin)


@dataclass
class Report:
    """What a collector's trader_orders captured, compared with the simulator's ground truth.

    Observability rule: an order is observable if it appeared in at least one WS frame sent
    to a subscriber ("visible"), or if it was never pushed but lived entirely while its
    (user, dex) had no live order subscription and is among the user's newest 2000
    historicalOrders entries at the end ("gap-only", recoverable by REST backfill). Rejected
    orders never rest, so they are never visible: they count only under the gap rule.
    Everything else (e.g. an order opened and closed between two pushes while subscribed) is
    unobservable and not counted as missed.

    Amend links: for each true replacement old -> new (a modify) of a compared user whose two
    orders were both captured (each has a "new" event), the replacement's "new" event must carry
    `replacesOid == old` and the old order's "closed" event, if any, `replacedByOid == new`.
    A link in the events that the truth does not have is wrong too. `dex` (missing = "") must be
    the dex of the order's coin.
    """

    total: int = 0  # truth orders of the compared users
    observable: int = 0
    visible: int = 0
    gap_only: int = 0
    captured: int = 0  # observable orders with at least one "new" event
    captured_unobservable: int = 0  # bonus: captured though not observable by the rule
    missed_visible: list[OrderKey] = field(default_factory=list)
    missed_gap_only: list[OrderKey] = field(default_factory=list)
    wrong_final_status: list[tuple[str, int, str | None, str | None]] = field(default_factory=list)
    duplicates: list[tuple[str, int, str]] = field(default_factory=list)
    unknown: list[OrderKey] = field(default_factory=list)  # in MongoDB, not in the truth
    links_expected: int = 0  # true replacements with both orders captured
    links_right: int = 0  # ... whose events carry exactly the right links
    # (user, old oid, new oid, what was wrong); spurious links name the oids the event claims
    wrong_links: list[tuple[str, int, int, str]] = field(default_factory=list)
    wrong_dex: list[tuple[str, int, str, str]] = field(default_factory=list)  # (user, oid, got, expected)
    link_matches: dict[str, int] = field(default_factory=dict)  # replaceMatch of right links' new events

    @property
    def capture_rate(self) -> float:
        """Captured observable orders / observable orders (1.0 when nothing was observable)."""
        return self.captured / self.observable if self.observable else 1.0

    @property
    def ok(self) -> bool:
        """Every observable order captured once, with the right final status, links and dex,
        nothing unknown."""
        return not (
            self.missed_visible
            or self.missed_gap_only
            or self.wrong_final_status
            or self.duplicates
            or self.unknown
            or self.wrong_links
            or self.wrong_dex
        )

    def summary(self) -> str:
        """One key=value line for logs and assertion messages."""
        return (
            f"total={self.total} observable={self.observable} visible={self.visible} "
            f"gap_only={self.gap_only} captured={self.captured} "
            f"capture_rate={self.capture_rate:.4f} missed_visible={len(self.missed_visible)} "
            f"missed_gap_only={len(self.missed_gap_only)} "
            f"wrong_final_status={len(self.wrong_final_status)} "
            f"duplicates={len(self.duplicates)} unknown={len(self.unknown)} "
            f"links_expected={self.links_expected} links_right={self.links_right} "
            f"wrong_links={len(self.wrong_links)} wrong_dex={len(self.wrong_dex)} "
            f"captured_unobservable={self.captured_unobservable}"
        )


def load_truth(truth_path: Path) -> dict[OrderKey, TruthOrder]:
    """Each order of the truth file with its first/last row, final status, coin and the oid it
    replaced (from the simulator's `replaces` key)."""
    orders: dict[OrderKey, TruthOrder] = {}
    history_len: dict[str, int] = {}
    with open(truth_path) as f:
        for row, line in enumerate(f):
            if not line.strip():
                continue
            rec = json.loads(line)
            user, status = rec["user"].lower(), rec["status"]
            key = (user, int(rec["order"]["oid"]))
            t = orders.get(key)
            # The exchange adds a historicalOrders entry at placement and at each status change.
            new_entry = t is None or status != rules.OPEN
            if new_entry:
                history_len[user] = history_len.get(user, 0) + 1
            if t is None:
                t = orders[key] = TruthOrder(user, key[1], row, row, status, coin=str(rec["order"].get("coin", "")))
            if rec.get("replaces") is not None:
                t.replaces = int(rec["replaces"])
            t.last_row, t.last_status = row, status
            if new_entry:
                t.last_history_entry = history_len[user] - 1
    for t in orders.values():
        t.last_history_entry -= history_len[t.user]  # now negative: -1 = newest
    return orders


def load_visibility(path: Path) -> tuple[set[int], dict[CoverageKey, list[tuple[int, bool]]]]:
    """Pushed oids, and per (user, dex) the (truthRow, live) coverage changes in order."""
    pushed: set[int] = set()
    coverage: dict[CoverageKey, list[tuple[int, bool]]] = {}
    if not path.exists():
        return pushed, coverage
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec["kind"] == "pushed":
                pushed.add(int(rec["oid"]))
            elif rec["kind"] == "coverage":
                key = (rec["user"].lower(), rec.get("dex") or MAIN_DEX)
                coverage.setdefault(key, []).append((int(rec["truthRow"]), bool(rec["live"])))
    return pushed, coverage


def _uncovered_throughout(changes: list[tuple[int, bool]], first: int, last: int | None) -> bool:
    """True if there was no live subscription from truth row `first` to `last` (None = end)."""
    live = False
    for row, state in changes:
        # A change recorded with truthRow=n happened after row n-1 and before row n.
        if row <= first:
            live = state
        elif last is None or row <= last:
            if state:
                return False
            live = state
    return not live


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _check_links(
    report: Report,
    truth: dict[OrderKey, TruthOrder],
    events: dict[OrderKey, list[dict[str, Any]]],
    wanted: set[str] | None,
) -> None:
    """Fill links_expected, links_right, wrong_links and link_matches (see Report)."""
    true_links: set[tuple[str, int, int]] = set()
    flagged: set[tuple[str, int, str]] = set()  # (user, oid, field) already reported
    for t in truth.values():
        if t.replaces is None or (wanted is not None and t.user not in wanted):
            continue
        old, new = t.replaces, t.oid
        true_links.add((t.user, old, new))
        new_evs = events.get((t.user, new), [])
        old_evs = events.get((t.user, old), [])
        new_news = [e for e in new_evs if e.get("action") == "new"]
        if not new_news or not any(e.get("action") == "new" for e in old_evs):
            continue
        report.links_expected += 1
        problems: list[tuple[int, str, str]] = []
        for e in new_news:
            got = _int_or_none(e.get("replacesOid"))
            if got != old:
                what = "new event lacks replacesOid" if got is None else f"new event has replacesOid={got}"
                problems.append((new, "replacesOid", what))
        for e in old_evs:
            if e.get("action") != "closed":
                continue
            got = _int_or_none(e.get("replacedByOid"))
            if got != new:
                what = "closed event lacks replacedByOid" if got is None else f"closed event has replacedByOid={got}"
                problems.append((old, "replacedByOid", what))
        if not problems:
            report.links_right += 1
            match = str(new_news[0].get("replaceMatch"))
            report.link_matches[match] = report.link_matches.get(match, 0) + 1
        for oid, fld, what in problems:
            flagged.add((t.user, oid, fld))
            report.wrong_links.append((t.user, old, new, what))
    # Links the collector claims that the truth does not have.
    for (user, oid), evs in events.items():
        for e in evs:
            claims = (
                ("replacesOid", _int_or_none(e.get("replacesOid")), True),
                ("replacedByOid", _int_or_none(e.get("replacedByOid")), False),
            )
            for fld, other, on_new in claims:
                if other is None or (user, oid, fld) in flagged:
                    continue
                old, new = (other, oid) if on_new else (oid, other)
                if (user, old, new) not in true_links:
                    flagged.add((user, oid, fld))
                    report.wrong_links.append((user, old, new, f"spurious {fld}"))


def compare_events(
    events: Iterable[dict[str, Any]],
    truth_path: str | Path,
    visibility_path: str | Path | None = None,
    users: Iterable[str] | None = None,
) -> Report:
    """Compare trader_orders documents (dicts) with the truth; see Report for the rules."""
    truth_path = Path(truth_path)
    vis_path = Path(visibility_path) if visibility_path else Path(str(truth_path) + ".visibility.jsonl")
    truth = load_truth(truth_path)
    pushed, coverage = load_visibility(vis_path)
    wanted = {u.lower() for u in users} if users is not None else None

    by_order: dict[OrderKey, list[dict[str, Any]]] = {}
    for ev in events:
        key = (str(ev["ethAddress"]).lower(), int(ev["oid"]))
        if wanted is not None and key[0] not in wanted:
            continue
        by_order.setdefault(key, []).append(ev)

    report = Report()
    _check_links(report, truth, by_order, wanted)
    wrong_dex: set[tuple[str, int, str, str]] = set()
    for key, evs in by_order.items():
        t = truth.get(key)
        coin = t.coin if t is not None else None
        for ev in evs:
            c: Any = coin if coin is not None else ev.get("coin")
            if c is None:
                continue
            want_dex, got_dex = dex_of(str(c)), str(ev.get("dex") or MAIN_DEX)
            if got_dex != want_dex:
                wrong_dex.add((*key, got_dex, want_dex))
    report.wrong_dex = sorted(wrong_dex)

    for key, t in truth.items():
        if wanted is not None and t.user not in wanted:
            continue
        report.total += 1
        still_open = t.last_status in rules.LIVE_STATUSES
        if t.oid in pushed:
            observable, visible = True, True
        else:
            visible = False
            observable = t.last_history_entry >= -rules.HISTORICAL_ORDERS_LIMIT and _uncovered_throughout(
                coverage.get((t.user, t.dex), []), t.first_row, None if still_open else t.last_row
            )
        evs = by_order.pop(key, [])
        news = [e for e in evs if e.get("action") == "new"]
        closes = [e for e in evs if e.get("action") == "closed"]
        if not observable:
            if news:
                report.captured_unobservable += 1
            continue
        report.observable += 1
        report.visible += visible
        report.gap_only += not visible
        if not news:
            (report.missed_visible if visible else report.missed_gap_only).append(key)
            continue
        report.captured += 1
        if len(news) > 1:
            report.duplicates.append((*key, f"{len(news)} new events"))
        if len(closes) > 1:
            report.duplicates.append((*key, f"{len(closes)} closed events"))
        updates = [e.get("eventKey") for e in evs if e.get("action") == "updated"]
        if len(updates) != len(set(updates)):
            report.duplicates.append((*key, "repeated updated eventKey"))
        got = closes[-1].get("finalStatus") if closes else None
        expected = None if still_open else t.last_status
        if got != expected:
            report.wrong_final_status.append((*key, expected, got))
    report.unknown = sorted(by_order)
    return report


def compare(
    collection: Any,
    truth_path: str | Path,
    visibility_path: str | Path | None = None,
    users: Iterable[str] | None = None,
) -> Report:
    """Compare a MongoDB `trader_orders` collection (pymongo Collection) with a truth file.

    `users` restricts the comparison to those addresses (e.g. the traders the collector
    tracked); by default every user in the truth file is compared.
    """
    projection = {
        "_id": 0,
        "ethAddress": 1,
        "oid": 1,
        "action": 1,
        "eventKey": 1,
        "finalStatus": 1,
        "coin": 1,
        "dex": 1,
        "replacesOid": 1,
        "replacedByOid": 1,
        "replaceMatch": 1,
    }
    return compare_events(collection.find({}, projection), truth_path, visibility_path, users)


def load_marks(marks_path: str | Path) -> list[tuple[int, str, str]]:
    """The mark moves of a marks file as `(time ms, coin, markPx)`, in the order they were made."""
    with open(marks_path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [(parse_time(rec["time"]), rec["coin"], rec["markPx"]) for rec in records]
