"""From decoded snapshots to stored operations: trackers, outcomes and gap recovery per trader.

Feeds call :meth:`Pipeline.on_orders` and :meth:`Pipeline.on_positions` for every snapshot of a
trader on a dex; the pipeline diffs it, journals the resulting operations through the writer,
and queues the outcome of every closed order. The node-file source applies status transitions
to the same books (:meth:`Pipeline.book`), journals its events itself (with its checkpoint) and
reports them through :meth:`Pipeline.noted`. After each (re)connect, and when a new perp dex
starts being followed, it recovers over REST the orders that opened and closed while nobody was
watching, with the replacement links among them (a modify is a cancel-and-replace).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec

from collector_service import exchange, schema
from collector_service.dexes import fills_on, rows_on
from collector_service.events.activity import Activity
from collector_service.events.books import Books
from collector_service.events.fills import FillLedger
from collector_service.events.positions import PositionBook
from collector_service.events.tracker import OrderBook, build_event, link, ms_to_datetime, replacement_key, unpack_state
from collector_service.events.twaps import TwapWatch, history_docs
from collector_service.events.wire import FrameError, OrderItems, OrderStatusInner
from collector_service.logs import RateLimitedLog
from collector_service.metrics import Stats
from collector_service.outcomes import OPEN_STATUSES, OutcomeResolver, latest_by_oid
from collector_service.rest import InfoClient, RestError
from collector_service.store import Op, Writer, account_ops, fill_ops, link_op, order_ops, position_ops, twap_ops

log = logging.getLogger(__name__)
T = TypeVar("T")

GAP_MARGIN = timedelta(seconds=60)
"""Recover orders closed a little before the last snapshot too: clocks and pushes are not exact."""

OUTCOME_FEED_GRACE_S = 5.0
"""With the orderUpdates feed, a live trader's close is asked for over REST only if the feed has
not told its outcome within this long (the feed's frame and the snapshot come in either order)."""

RECOVERY_RETRY_MAX_S = 15.0
"""A failed recovery is retried with backoff up to this pause, until it succeeds: the REST
weight budget, not the retry schedule, keeps the calls within the exchange's limits."""


def recovered_events(
    user: str, row: OrderStatusInner, recovered_at: datetime
) -> list[dict[str, Any]]:
    """The ``new`` and ``closed`` events of an order seen only over REST, dated by the exchange."""
    placed = ms_to_datetime(row.order.timestamp)
    ended = ms_to_datetime(row.statusTimestamp)
    dex = schema.dex_of(row.order.coin)
    new = build_event(user, row.order, schema.ACTION_NEW, 0, dex=dex, source=schema.SOURCE_REST,
                      observed_at=placed, server_time=None)
    closed = build_event(user, row.order, schema.ACTION_CLOSED, 1, dex=dex, source=schema.SOURCE_REST,
                         observed_at=ended, server_time=None)
    closed["finalStatus"] = row.status
    closed["statusTimestamp"] = ended
    new["recoveredAt"] = closed["recoveredAt"] = recovered_at
    return [new, closed]


def replacements_in_history(rows: Mapping[int, OrderStatusInner]) -> list[tuple[int, int, str]]:
    """``(old oid, new oid, match)`` for the replacements ``historicalOrders`` shows.

    A ``canceled`` order was replaced by a newer order placed within :data:`REPLACE_WINDOW_MS`
    of the cancel: the first such order with the same cloid, or, for orders without a cloid,
    the only such order of the same coin, side, order type and reduce-only flag.
    """
    by_cloid: dict[str, list[OrderStatusInner]] = {}
    by_key: dict[tuple[str, str, str | None, bool, str | None], list[OrderStatusInner]] = {}
    for row in rows.values():
        if row.order.cloid:
            by_cloid.setdefault(row.order.cloid, []).append(row)
        else:
            by_key.setdefault(replacement_key(row.order), []).append(row)
    found = []
    for oid, row in rows.items():
        if row.status != schema.FINAL_STATUS_CANCELED:
            continue
        peers = by_cloid.get(row.order.cloid, []) if row.order.cloid else by_key.get(replacement_key(row.order), [])
        window = exchange.REPLACE_WINDOW_MS if row.order.cloid else exchange.INFERRED_REPLACE_WINDOW_MS
        after = sorted(
            (peer.order.oid for peer in peers
             if peer.order.oid > oid and abs(peer.order.timestamp - row.statusTimestamp) <= window),
        )
        if after and (row.order.cloid or len(after) == 1):
            found.append((oid, after[0], schema.MATCH_CLOID if row.order.cloid else schema.MATCH_INFERRED))
    # an inferred replacement must have one candidate predecessor too (two cancels, one new
    # order at the same moment: which one it replaced is unknown)
    inferred = Counter(new for _, new, match in found if match == schema.MATCH_INFERRED)
    return [(old, new, match) for old, new, match in found if match == schema.MATCH_CLOID or inferred[new] == 1]


class Pipeline:
    """Per-trader state and the routes from snapshots to the writer."""

    def __init__(
        self,
        writer: Writer,
        stats: Stats,
        clients: Mapping[str, InfoClient],
        resolvers: Mapping[str, OutcomeResolver],
        *,
        dexes: Callable[[], Collection[str]],
        record_orders: bool = True,
        record_fills: bool = True,
        record_twaps: bool = True,
    ) -> None:
        self.writer = writer
        self.stats = stats
        self.record_orders = record_orders
        self.clients = dict(clients)
        self.resolvers = dict(resolvers)
        self.users = set(clients)
        self.dexes = dexes  # the perp dexes followed: REST answers list every dex's orders and fills
        self.activity = Activity()
        self.fills = FillLedger()
        self.record_fills = record_fills
        self.record_twaps = record_twaps
        self.twaps = TwapWatch()
        self.l2books: Books | None = None  # order-book context, when enabled
        self.outcome_grace = 0.0  # OUTCOME_FEED_GRACE_S when live traders' orderUpdates are followed
        self.books: dict[tuple[str, str], OrderBook] = {}  # by (trader, dex)
        self.positions: dict[tuple[str, str], PositionBook] = {}
        self.last_seen: dict[str, datetime] = {}
        self.gaps: dict[str, datetime | None] = {}  # gaps not recovered yet: when each began
        self._needs_recovery: set[str] = set()
        self._gaps_opened: Counter[str] = Counter()  # per trader: a recovery closes only gaps opened before it
        self.closed_seen: dict[str, dict[int, None]] = {}  # per trader, oids closed by snapshots (newest 2000)
        self._tasks: set[asyncio.Task[None]] = set()
        self._warn = RateLimitedLog(log)

    def load(
        self,
        open_orders: Mapping[str, list[dict[str, Any]]],
        positions: Mapping[str, list[dict[str, Any]]],
        last_seen: Mapping[str, datetime],
        gaps: Mapping[str, datetime | None],
    ) -> None:
        """Start from what MongoDB already holds (restart reconciliation). Documents written
        before events carried ``dex`` belong to the dex of their coin."""
        for user, docs in open_orders.items():
            if user in self.users:
                for dex, dex_docs in _by_dex(docs).items():
                    self.book(user, dex).load(dex_docs)
        if self.l2books is not None:
            self.l2books.load({u: docs for u, docs in open_orders.items() if u in self.users})
        for user, docs in positions.items():
            if user in self.users:
                for dex, dex_docs in _by_dex(docs).items():
                    self._position_book(user, dex).load(dex_docs)
        self.last_seen.update({u: t for u, t in last_seen.items() if u in self.users})
        self.gaps.update({u: t for u, t in gaps.items() if u in self.users})

    def follow(self, user: str, client: InfoClient, resolver: OutcomeResolver) -> None:
        """Start following a trader added while running (the watch list changed)."""
        self.clients[user], self.resolvers[user] = client, resolver
        self.users.add(user)

    def unfollow(self, user: str) -> None:
        """Stop following a trader removed from the watch list. What is stored stays: should it
        come back, its state is loaded again (:meth:`load`) from the stored open orders, gap and
        newest event, and what it did meanwhile is recovered from there."""
        self.users.discard(user)
        self._needs_recovery.discard(user)
        self.closed_seen.pop(user, None)
        self.twaps.forget(user)
        self.gaps.pop(user, None)
        self.last_seen.pop(user, None)
        for key in [key for key in self.books if key[0] == user]:
            book = self.books.pop(key)
            if self.l2books is not None:
                self.l2books.release(unpack_state(state)[0].coin for state in book.orders.values())
        for key in [key for key in self.positions if key[0] == user]:
            del self.positions[key]

    def book(self, user: str, dex: str) -> OrderBook:
        """The tracked open orders of ``user`` on ``dex`` (created empty on first use)."""
        book = self.books.get((user, dex))
        if book is None:
            book = self.books[(user, dex)] = OrderBook(user, dex)
        return book

    def held_coins(self) -> set[str]:
        """The coins some followed trader has an open position in (what marks are needed for)."""
        return {coin for book in self.positions.values() for coin in book.keys}

    def _position_book(self, user: str, dex: str) -> PositionBook:
        book = self.positions.get((user, dex))
        if book is None:
            book = self.positions[(user, dex)] = PositionBook(user, dex)
        return book

    @property
    def open_orders(self) -> int:
        return sum(len(book.orders) for book in self.books.values())

    def on_connected(self, users: tuple[str, ...]) -> None:
        """A connection (re)connected for these users: recover their gap since each was last seen
        once they are subscribed (:meth:`subscribed`)."""
        for user in users:
            self.open_gap(user, self.last_seen.get(user))

    def open_gap(self, user: str, since: datetime | None) -> None:
        """Nobody watched ``user`` (on some dex) since ``since`` (None: ever): recover that
        stretch over REST once the user is subscribed again (or polled). The gap is journaled until recovered,
        so it survives a crash; an older gap not recovered yet keeps its earlier start, also when a
        recovery of it is under way (that one may have asked before this gap began)."""
        self._gaps_opened[user] += 1
        if user in self.gaps:
            known = self.gaps[user]
            if known is None or (since is not None and known <= since):
                self._needs_recovery.add(user)
                return
        self.gaps[user] = since
        self.writer.submit([{"kind": "gap", "doc": {"_id": user, "since": since}}])
        self._needs_recovery.add(user)

    def on_orders(
        self, user: str, dex: str, orders: OrderItems, server_ms: int | None, observed_at: datetime,
        source: str = schema.SOURCE_WS,
    ) -> list[dict[str, Any]]:
        """Apply one open-orders snapshot of ``user`` on ``dex`` (raw JSON; FrameError if it is
        invalid); return the events it made."""
        if user not in self.users:
            self._warn.log(logging.WARNING, f"foreign:{user}", "event=frame_for_untracked_user user=%s", user)
            return []
        book = self.book(user, dex)
        if book.is_stale(server_ms):
            self.stats.frames_stale += 1
            return []
        events: list[dict[str, Any]] = []
        if self.record_orders:
            events = book.apply_raw(orders, observed_at=observed_at, server_ms=server_ms, source=source)
            if events and self.l2books is not None:
                self.l2books.stamp(events)
            if events:
                self.activity.record(user, len(events))
                resolver = self.resolvers[user]
                # closes whose outcome the feed has not told yet (the others are stored with it)
                unknown = [e["oid"] for e in events if e["action"] == schema.ACTION_CLOSED and not resolver.fold(e)]
                self.writer.submit(order_ops(events))
                for oid in unknown:
                    resolver.want(user, oid, delay=self.outcome_grace if source == schema.SOURCE_WS else 0.0)
                for event in events:
                    if event["action"] == schema.ACTION_CLOSED:
                        self._closed_seen(user, event["oid"])
                    elif "replacesOid" in event:
                        self.stats.replacements[event["replaceMatch"]] += 1
            else:
                self.stats.frames_unchanged += 1
        if source != schema.SOURCE_WS:  # a poll: the trader's snapshot of every dex is in
            self.subscribed((user,))
        self.last_seen[user] = observed_at
        return events

    def on_order_updates(self, users: Collection[str], updates: tuple[OrderStatusInner, ...]) -> None:
        """Record the outcomes an ``orderUpdates`` frame tells. The frame names no user (PROTOCOL.md
        §1.6): each update belongs to the one of ``users`` (the connection's) whose close of that oid
        is waiting or whose book holds it (oids are unique across the exchange). An oid none of
        them was seen holding (an order that opened and closed between two snapshots) is left to
        gap recovery, as without this feed."""
        for update in updates:
            if update.status in OPEN_STATUSES:
                continue
            oid, dex = update.order.oid, schema.dex_of(update.order.coin)
            for user in users:
                book = self.books.get((user, dex))
                if user in self.users and (self.resolvers[user].wanted(user, oid)
                                           or (book is not None and oid in book.orders)):
                    self.resolvers[user].learnt(user, oid, update.status, update.statusTimestamp)
                    break

    def noted(self, events: list[dict[str, Any]], observed_at: datetime) -> None:
        """Account for events a source built itself (the node's transitions): activity,
        replacements, orders closed, traders seen. The source journals them."""
        for event in events:
            user = event["ethAddress"]
            self.activity.record(user, 1)
            self.last_seen[user] = observed_at
            if event["action"] == schema.ACTION_CLOSED:
                self._closed_seen(user, event["oid"])
            if "replacesOid" in event:
                self.stats.replacements[event["replaceMatch"]] += 1

    def _closed_seen(self, user: str, oid: int) -> None:
        """Remember the newest orders a snapshot saw close, so a recovery does not rebuild them."""
        seen = self.closed_seen.setdefault(user, {})
        seen[oid] = None
        if len(seen) > exchange.HISTORICAL_ORDERS_LIMIT:
            del seen[next(iter(seen))]

    def subscribed(self, users: tuple[str, ...]) -> None:
        """Every subscription of these users is live (or a poll saw them): recover the gaps
        waiting for that. Recovering earlier would miss an order on a dex subscribed a moment
        later that closed in between."""
        for user in users:
            if user in self._needs_recovery:
                self._needs_recovery.discard(user)
                # a gap stays until a recovery that began after it was opened succeeds
                self.spawn(self.recover(user, self.gaps.get(user, self.last_seen.get(user))))

    def on_positions(
        self, user: str, dex: str, state: msgspec.Raw, observed_at: datetime, source: str = schema.SOURCE_WS
    ) -> None:
        """Apply one clearinghouse snapshot of ``user`` on ``dex`` (raw JSON; FrameError if it is
        invalid): its position changes, and an account sample when one is due."""
        if user not in self.users:
            return
        book = self._position_book(user, dex)
        decoded = book.decode_new(state)
        if decoded is None:
            return
        docs = book.apply(decoded, observed_at=observed_at, source=source)
        account = book.account.sample(user, dex, decoded, changed=bool(docs), observed_at=observed_at, source=source)
        self.writer.submit(position_ops(docs) + account_ops([account] if account else []))

    def on_fills(self, user: str, fills: OrderItems, observed_at: datetime, *, snapshot: bool,
                 source: str = schema.SOURCE_WS) -> None:
        """Store the fills of a ``userFills`` frame or a REST page; a fill that is not one is
        counted and logged, the others stored."""
        if user not in self.users or not self.record_fills:
            return
        docs, bad = self.fills.docs(user, fills, source=source, observed_at=observed_at, snapshot=snapshot)
        docs = fills_on(docs, self.dexes())  # userFills and userFillsByTime carry every dex's fills
        self._bad("fill", user, bad)
        if docs:
            self.writer.submit(fill_ops(docs))

    def on_twaps(self, user: str, states: OrderItems, observed_at: datetime) -> None:
        """Apply the running TWAPs of a ``twapStates`` frame (or webData2's list): store the starts,
        and ask ``twapHistory`` how the TWAPs that left the list ended."""
        if user not in self.users or not self.record_twaps:
            return
        docs, ended, bad = self.twaps.on_states(user, states, observed_at)
        self._bad("twap", user, bad)
        if docs:
            self.writer.submit(twap_ops(docs))
        if ended:
            self.spawn(self.recover_twaps(user))

    async def recover_twaps(self, user: str) -> None:
        """Store every status change ``twapHistory`` lists for the trader (copies are dropped by the
        unique index)."""
        rows = await self._retrying("twaps", user, lambda: self.clients[user].twap_history(user))
        docs, bad = history_docs(user, rows, datetime.now(UTC))
        self._bad("twap", user, bad)
        if docs:
            self.writer.submit(twap_ops(docs))

    def _bad(self, what: str, user: str, bad: list[FrameError]) -> None:
        if bad:
            self.stats.bad_frames[what] += len(bad)
            self._warn.log(logging.WARNING, f"bad_{what}", "event=bad_%s user=%s count=%d detail=%r", what, user,
                           len(bad), str(bad[0]))

    async def recover_fills(self, user: str, since: datetime | None) -> None:
        """Store the fills since ``since`` (or since the newest stored, if older; everything
        listed when either is unknown) from ``userFillsByTime``, page by page."""
        newest = self.fills.newest.get(user)
        starts = [t - GAP_MARGIN for t in (since, newest) if t is not None]
        start_ms = int(min(starts).timestamp() * 1000) if len(starts) == 2 else 0

        async def fetch() -> None:
            async for page in self.clients[user].user_fills_pages(user, start_ms):
                self.on_fills(user, page, datetime.now(UTC), snapshot=False, source=schema.SOURCE_REST)

        await self._retrying("fills", user, fetch)

    async def _retrying(self, what: str, user: str, call: Callable[[], Awaitable[T]]) -> T:
        """An info call retried with backoff until it succeeds: the weight budget, not the retry
        schedule, keeps the calls within the exchange's limits."""
        attempt = 0
        while True:
            try:
                return await call()
            except RestError as exc:
                attempt += 1
                pause = min(RECOVERY_RETRY_MAX_S, 2.0**attempt) * random.uniform(0.8, 1.2)
                self._warn.log(logging.WARNING, f"recover:{what}:{user}",
                               "event=recovery_retry what=%s user=%s attempt=%d retry_in_s=%.0f error=%r",
                               what, user, attempt, pause, str(exc))
                await asyncio.sleep(pause)

    async def recover(
        self, user: str, since: datetime | None, *, keep_watching: bool = False
    ) -> tuple[OrderStatusInner, ...]:
        """Store orders that opened and closed since ``since`` without a snapshot showing them,
        and outcomes of orders closed meanwhile, from ``historicalOrders``; then the fills of
        that stretch (``userFillsByTime``) and the trader's TWAPs (``twapHistory``).

        ``keep_watching`` (a polled trader's sweep): what happens between polls is never seen, so
        the gap is not closed but moved to this sweep's start, where the next sweep begins; it
        stays journaled, so a restart sweeps from there.
        """
        started = datetime.now(UTC)
        opened = self._gaps_opened[user]
        answer = await self._retrying("orders", user, lambda: self.clients[user].historical_orders(user))
        self._check_covered(user, answer, since)
        rows = rows_on(answer, self.dexes())
        self.writer.submit(self.recovered(user, rows, since))
        if self.record_fills:
            await self.recover_fills(user, since)
        if self.record_twaps:
            await self.recover_twaps(user)
        if self.gaps.get(user, since) != since or self._gaps_opened[user] != opened:
            # a gap was opened meanwhile (a reconnect, a new dex) and may have begun after this
            # answer was taken: the gap stays, from its earliest start, for the next recovery
            return rows
        if keep_watching:
            self.gaps[user] = started
            self.writer.submit([{"kind": "gap", "doc": {"_id": user, "since": started}}])
        else:
            self.gaps.pop(user, None)
            self.writer.submit([{"kind": "gap_recovered", "doc": {"_id": user}}])
        return rows

    def _check_covered(self, user: str, rows: tuple[OrderStatusInner, ...], since: datetime | None) -> None:
        """``historicalOrders`` lists only the newest 2000 statuses and takes no time range: an
        answer that long whose oldest row is newer than the gap's start cannot show the orders
        that ended in between, and no call can. Report the stretch (log line, counter, and a
        ``collector_uncovered`` record); the gap itself is recovered as far as it can be."""
        if since is None or len(rows) < exchange.HISTORICAL_ORDERS_LIMIT:
            return
        oldest = ms_to_datetime(min(row.statusTimestamp for row in rows))
        if oldest <= since:
            return
        self.stats.recoveries_truncated[user] += 1
        log.warning("event=recovery_truncated user=%s uncovered_from=%s uncovered_to=%s rows=%d "
                    "note='historicalOrders lists only the newest %d statuses: orders that ended in this "
                    "stretch are not recorded'", user, since.isoformat(), oldest.isoformat(), len(rows),
                    exchange.HISTORICAL_ORDERS_LIMIT)
        self.writer.submit([{"kind": "uncovered", "doc": {
            "_id": f"{user}:{since.isoformat()}", "ethAddress": user, "since": since, "until": oldest,
            "rows": len(rows), "reason": "historicalOrders_limit", "detectedAt": datetime.now(UTC)}}])

    def recovered(self, user: str, rows: tuple[OrderStatusInner, ...], since: datetime | None) -> list[Op]:
        """Events for closed orders the WebSocket never showed, and the replacement links that
        involve them (duplicates of events already stored are harmless: the unique index drops
        them; a link already stored is left as it is)."""
        now = datetime.now(UTC)
        cutoff_ms = int((since - GAP_MARGIN).timestamp() * 1000) if since is not None else None
        tracked = {oid for (owner, _), book in self.books.items() if owner == user for oid in book.orders}
        tracked |= self.closed_seen.get(user, {}).keys()  # closed by a snapshot: its events exist
        resolver = self.resolvers[user]
        latest = latest_by_oid(rows)
        news: dict[int, dict[str, Any]] = {}
        closes: dict[int, dict[str, Any]] = {}
        for oid, row in latest.items():
            if row.status in OPEN_STATUSES:
                continue
            resolver.known(user, oid, row.status, row.statusTimestamp)
            if oid in tracked or (cutoff_ms is not None and row.statusTimestamp < cutoff_ms):
                continue
            news[oid], closes[oid] = recovered_events(user, row, now)
        if news:  # orders the snapshots never showed count toward the trader's activity too
            self.activity.record(user, 2 * len(news))
        links: list[Op] = []
        for old, new, match in replacements_in_history(latest):
            before_gap = cutoff_ms is not None and latest[old].statusTimestamp < cutoff_ms
            if before_gap and old not in closes and new not in news:
                continue  # both halves were seen by snapshots before this gap
            link(closes.get(old), news.get(new), old, new, match)
            # also when both halves were rebuilt here: either may be a copy of a stored event that
            # the unique index drops, and the stored one needs the link too
            links.append(link_op(user, old, new, match))
        return order_ops([event for oid in news for event in (news[oid], closes[oid])]) + links

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event=recovery_crashed error=%r note='the gap stays journaled; recovered at the next start'",
                      task.exception())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _by_dex(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        dex = doc.get("dex")
        found.setdefault(dex if isinstance(dex, str) else schema.dex_of(doc["coin"]), []).append(doc)
    return found
