"""One WebSocket connection to Hyperliquid: subscribe, keep alive, decode, reconnect.

Built on ``websockets``' reconnecting client (``async for ws in connect(...)``), which backs off
on failed connection attempts. A connection the server drops (idle, ``Expired``, a restart) is
routine: the loop reconnects after a short jittered pause, resubscribes everything, and the
pipeline reconciles the first snapshot against the state it already holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, PayloadTooBig
from websockets.frames import CloseCode

from collector_service import exchange, schema
from collector_service.events.books import Books
from collector_service.events.wire import (
    NULL,
    ClearinghouseMsg,
    ErrorMsg,
    FrameError,
    L2BookMsg,
    Message,
    OpenOrdersMsg,
    OrderUpdatesMsg,
    SubscriptionResponseMsg,
    TwapStatesMsg,
    UserFillsMsg,
    WebData2Msg,
    decode_frame,
)
from collector_service.logs import RateLimitedLog
from collector_service.metrics import Stats
from collector_service.pipeline import Pipeline
from collector_service.plan import REFUSED_RETRY_S, ConnectionPlan
from collector_service.rest import WeightBudget

log = logging.getLogger(__name__)

Feed = Literal["openOrders", "webData2"]

RECONNECT_PAUSE_S = (0.5, 2.0)
"""Jittered pause before reconnecting after a connection that had been up ends."""

RECONNECT_FLOOR_AFTER_CAPACITY_S = 15.0
"""The server frees user slots of a dead connection only after a while (PROTOCOL.md §2.3)."""


def subscriptions_for(user: str, feed: Feed, dexes: list[str], *, fills: bool = False,
                      twaps: bool = False, order_updates: bool = False) -> list[dict[str, Any]]:
    """The subscription objects that carry one user's orders and positions on these dexes (and,
    with ``fills`` and the main dex among them, the user's fills of every dex; with ``twaps``, the
    user's running TWAPs: ``twapStates``, unless webData2 carries them already; with
    ``order_updates``, every status change of the user's orders on every dex: ``orderUpdates``).

    The legacy webData2 feed covers the main dex (and spot) only: other dexes are followed with
    their own openOrders / clearinghouseState subscriptions in either mode. The exchange counts a
    user once however many of these it holds (PROTOCOL.md §0.2).
    """
    subs: list[dict[str, Any]] = []
    if order_updates and schema.MAIN_DEX in dexes:
        subs.append({"type": "orderUpdates", "user": user})
    if fills and schema.MAIN_DEX in dexes:
        subs.append({"type": "userFills", "user": user})
    if twaps and feed != "webData2" and schema.MAIN_DEX in dexes:
        # one more subscription of a user already counted: no user slot (PROTOCOL.md §0.2)
        subs.append({"type": "twapStates", "user": user})
    for dex in dexes:
        if feed == "webData2" and dex == schema.MAIN_DEX:
            subs.append({"type": "webData2", "user": user})
        else:
            subs += [{"type": "openOrders", "user": user, "dex": dex},
                     {"type": "clearinghouseState", "user": user, "dex": dex}]
    return subs


SubKey = tuple[str, str, str]
"""(type, user, dex) of a subscription, as sent and as the exchange echoes it in acks; an
l2Book's is ("l2Book", "", coin)."""


def _sub_key(sub: dict[str, Any]) -> SubKey:
    if sub.get("type") == "l2Book":
        return ("l2Book", "", str(sub.get("coin")))
    return (str(sub.get("type")), str(sub.get("user", "")).lower(), str(sub.get("dex") or ""))


def _subscription(key: SubKey) -> dict[str, Any]:
    typ, user, dex = key
    if typ == "l2Book":
        return {"type": "l2Book", "coin": dex}
    return {"type": typ, "user": user} if typ in UNDEXED else {"type": typ, "user": user, "dex": dex}


OPTIONAL = frozenset({"orderUpdates"})
"""Subscriptions a trader is followed well without (outcomes then come over REST): one the exchange
never acknowledges is given up alone, not the trader (several users' orderUpdates on one socket
are not documented either way, PROTOCOL.md §1.6)."""

UNDEXED = frozenset({"webData2", "userFills", "twapStates", "orderUpdates"})
"""Subscriptions that take no dex: webData2 is the main dex's, userFills, twapStates and orderUpdates
cover every dex."""


class FeedConnection:
    """Keeps the subscriptions of one :class:`ConnectionPlan` alive for as long as it runs."""

    def __init__(
        self,
        plan: ConnectionPlan,
        *,
        url: str,
        feed: Feed,
        pipeline: Pipeline,
        stats: Stats,
        ping_interval: float,
        pong_timeout: float,
        reconnect_budget: WeightBudget,
        dexes: Callable[[], list[str]],
        fills: bool = True,
        order_updates: bool = True,
        books: Books | None = None,
    ) -> None:
        self.plan = plan
        self.users = list(plan.users)  # changes when traders move between live and polled
        self.dexes = dexes
        self.fills = fills
        self.order_updates = order_updates
        self.books = books  # this connection also carries the l2Book subscriptions
        self.books_paused_until = 0.0  # the exchange's subscription cap refused books
        self.rejected: set[SubKey] = set()  # subscriptions the exchange cannot parse: not sent again
        self.reconnect_budget = reconnect_budget
        self.url = url
        self.feed = feed
        self.pipeline = pipeline
        self.stats = stats
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.refused: dict[str, float] = {}  # user -> until when it is left alone
        self.capped: dict[str, float] = {}  # ... of those, refused by the exchange's user cap
        self.on_refused: Callable[[], None] | None = None  # told at once (the tiers poll them instead)
        self._reported: set[str] = set()
        self._unsent: list[str] = []
        self._pending: dict[SubKey, float] = {}
        self._acked: dict[SubKey, dict[str, Any]] = {}  # -> the subscription as the exchange echoed it
        # (subscribe | unsubscribe | book | unbook, users or coins (empty: all active users),
        #  dexes (None: all followed))
        self._requests: asyncio.Queue[tuple[str, tuple[str, ...], list[str] | None]] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._last_rx = time.monotonic()
        self._warn = RateLimitedLog(log)
        self._capacity_hit = False
        self._stopping = False

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def up(self) -> bool:
        return self._ws is not None

    def _active_users(self) -> tuple[str, ...]:
        now = time.monotonic()
        return tuple(u for u in self.users if self.refused.get(u, 0.0) <= now)

    async def run(self) -> None:
        """Connect, and reconnect whenever the connection ends, until cancelled."""
        egress = self.plan.egress or "default"
        first = True
        async for ws in websockets.connect(
            self.url,
            local_addr=(self.plan.egress, 0) if self.plan.egress else None,
            max_size=exchange.MAX_FRAME_BYTES,
            ping_interval=None,  # Hyperliquid's keep-alive is the JSON ping below
            compression=None,
            proxy=None,
            open_timeout=10,
            close_timeout=2,
            max_queue=64,
        ):
            if not first:
                self.stats.reconnects[egress] += 1
            first = False
            started = time.monotonic()
            self._ws = ws
            self.stats.connections_up[egress] += 1
            try:
                await self._session(ws)
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    # websockets reports a frame over max_size by closing with 1009, not PayloadTooBig
                    self._too_big(exc.sent.reason)
                else:
                    log.info("event=ws_closed conn=%s code=%s reason=%r up_s=%.0f",
                             self.name, rcvd.code if rcvd else None, rcvd.reason if rcvd else "",
                             time.monotonic() - started)
            except PayloadTooBig as exc:
                self._too_big(str(exc))
            finally:
                self._ws = None
                self.stats.connections_up[egress] -= 1
                self._pending.clear()
                self._acked.clear()
                if self.books is not None:
                    self.books.forget()
            if self._stopping:
                return
            pause = random.uniform(*RECONNECT_PAUSE_S)
            if self._capacity_hit:
                pause = max(pause, RECONNECT_FLOOR_AFTER_CAPACITY_S)
                self._capacity_hit = False
            await asyncio.sleep(pause)
            # the egress's connections share the exchange's cap on new connections per minute
            await self.reconnect_budget.take(1)

    def _too_big(self, detail: str) -> None:
        self.stats.bad_frames["too_big"] += 1
        log.error("event=frame_too_big conn=%s limit_bytes=%d error=%r note='reconnecting'",
                  self.name, exchange.MAX_FRAME_BYTES, detail)

    async def _session(self, ws: ClientConnection) -> None:
        self._last_rx = time.monotonic()
        users = self._active_users()
        log.info("event=ws_connected conn=%s users=%d feed=%s", self.name, len(users), self.feed)
        self.pipeline.on_connected(users)
        keepalive = asyncio.create_task(self._keepalive(ws))
        subscriber = asyncio.create_task(self._subscribe(ws, users))
        try:
            while True:
                raw = await ws.recv(decode=False)
                self._last_rx = time.monotonic()
                self.stats.last_message_at = time.time()
                self.handle(raw)
        finally:
            keepalive.cancel()
            subscriber.cancel()
            await asyncio.gather(keepalive, subscriber, return_exceptions=True)

    async def _subscribe(self, ws: ClientConnection, users: tuple[str, ...]) -> None:
        """Subscribe every dex of these users, then serve the changes asked while connected
        (a new dex, a trader moved here or away), and report subscribes never acknowledged."""
        # requests queued before this session are applied after the first batch: one already
        # carried out there is skipped (its subscription is pending or acked)
        await self._send_subscriptions(ws, users, list(self.dexes()))
        if self.books is not None:
            await self._send_books(ws, "subscribe", tuple(self.books.watched))
        waiters: set[asyncio.Task[None]] = {asyncio.create_task(self._when_subscribed(users))}
        try:
            await self._serve_requests(ws, waiters)
        finally:
            for task in waiters:
                task.cancel()

    async def _when_subscribed(self, users: tuple[str, ...]) -> None:
        """Once every subscription of these users is acknowledged (or given up on), their gap
        can be recovered: an order that closes after that is seen by a snapshot, on every dex."""
        deadline = time.monotonic() + exchange.SUBSCRIBE_ACK_TIMEOUT_S
        while any(key[1] in users for key in self._pending) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.pipeline.subscribed(users)

    async def _serve_requests(self, ws: ClientConnection, waiters: set[asyncio.Task[None]]) -> None:
        while True:
            try:
                kind, who, dexes = await asyncio.wait_for(self._requests.get(), exchange.SUBSCRIBE_ACK_TIMEOUT_S)
            except TimeoutError:
                kind, who, dexes = "", (), None
            late = [key for key, deadline in self._pending.items() if deadline <= time.monotonic()]
            for key in late:
                if key[0] in OPTIONAL:
                    self._give_up(key, "no subscribe ack within timeout")
            if late := [key for key in late if key[0] not in OPTIONAL]:
                self._refuse(late, "no subscribe ack within timeout")
            if kind == "unsubscribe":
                for key in [k for k in (*self._acked, *self._pending) if k[1] in who]:
                    await self._unsubscribe(ws, key)
            elif kind in ("book", "unbook"):
                await self._send_books(ws, "subscribe" if kind == "book" else "unsubscribe", who)
            elif kind == "subscribe":
                active = self._active_users()
                chosen = tuple(u for u in who if u in active) if who else active
                await self._send_subscriptions(ws, chosen, list(self.dexes()) if dexes is None else dexes)
                waiter = asyncio.create_task(self._when_subscribed(chosen))
                waiters.add(waiter)
                waiter.add_done_callback(waiters.discard)

    async def _send_subscriptions(self, ws: ClientConnection, users: tuple[str, ...], dexes: list[str]) -> None:
        self._unsent = list(users)
        while self._unsent:
            user = self._unsent.pop(0)
            for sub in subscriptions_for(user, self.feed, dexes, fills=self.fills,
                                         twaps=self.pipeline.record_twaps, order_updates=self.order_updates):
                key = _sub_key(sub)
                if key in self.rejected or key in self._acked or key in self._pending:
                    continue
                if self.refused.get(user, 0.0) > time.monotonic():
                    break  # the exchange hit a cap meanwhile: the rest would be refused too
                self._pending[key] = time.monotonic() + exchange.SUBSCRIBE_ACK_TIMEOUT_S
                await ws.send(msgspec.json.encode({"method": "subscribe", "subscription": sub}).decode())
                await asyncio.sleep(exchange.SUBSCRIBE_PACING_S)

    async def _unsubscribe(self, ws: ClientConnection, key: SubKey) -> None:
        """Unsubscribe with the subscription as the exchange echoed it: it matches on that form."""
        echoed = self._acked.pop(key, None)
        self._pending.pop(key, None)
        message = {"method": "unsubscribe", "subscription": echoed or _subscription(key)}
        await ws.send(msgspec.json.encode(message).decode())

    async def _send_books(self, ws: ClientConnection, method: str, coins: tuple[str, ...]) -> None:
        if method == "subscribe" and self.books_paused_until > time.monotonic():
            return
        for coin in coins:
            key = ("l2Book", "", coin)
            if key in self.rejected:
                continue
            if method == "unsubscribe":
                if key in self._acked or key in self._pending:
                    await self._unsubscribe(ws, key)
                continue
            if key in self._acked or key in self._pending:
                continue
            self._pending[key] = time.monotonic() + exchange.SUBSCRIBE_ACK_TIMEOUT_S
            await ws.send(msgspec.json.encode({"method": "subscribe", "subscription": _subscription(key)}).decode())
            await asyncio.sleep(exchange.SUBSCRIBE_PACING_S)

    def watch_coin(self, coin: str) -> None:
        """Subscribe a coin's l2Book (also after every reconnect, while it is watched)."""
        if self._ws is not None:
            self._requests.put_nowait(("book", (coin,), None))

    def unwatch_coin(self, coin: str) -> None:
        if self._ws is not None:
            self._requests.put_nowait(("unbook", (coin,), None))

    def follow(self, dexes: list[str]) -> None:
        """Subscribe these newly listed dexes on the live connection (a reconnect subscribes
        every dex anyway)."""
        if self._ws is not None:
            self._requests.put_nowait(("subscribe", (), dexes))

    def add_user(self, user: str) -> None:
        """Follow ``user`` live on this connection from now on."""
        if user not in self.users:
            self.users.append(user)
            self.refused.pop(user, None)
            if self._ws is not None:
                self._requests.put_nowait(("subscribe", (user,), None))

    def remove_user(self, user: str) -> None:
        """Stop following ``user`` here (frees its slot at the exchange); its frames still in
        flight are dropped."""
        if user in self.users:
            self.users.remove(user)
            if self._ws is not None:
                self._requests.put_nowait(("unsubscribe", (user,), None))

    async def _keepalive(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            sent = time.monotonic()
            await ws.send('{"method":"ping"}')
            await asyncio.sleep(self.pong_timeout)
            if self._last_rx < sent:
                log.warning("event=ws_dead conn=%s note='no pong or data within %.0fs of a ping; reconnecting'",
                            self.name, self.pong_timeout)
                await ws.close(code=4000, reason="keepalive timeout")
                return

    def handle(self, raw: bytes) -> None:
        """Decode and route one frame; bad frames are counted and logged, never raised."""
        observed_at = datetime.now(UTC)
        try:
            self._route(decode_frame(raw), observed_at)
        except FrameError as exc:
            self.stats.bad_frames[exc.kind] += 1
            level = logging.DEBUG if exc.kind in ("non_json", "unknown_channel") else logging.WARNING
            self._warn.log(level, f"bad:{exc.kind}", "event=bad_frame conn=%s kind=%s detail=%r",
                           self.name, exc.kind, str(exc))

    def _route(self, msg: Message, observed_at: datetime) -> None:
        if isinstance(msg, OpenOrdersMsg):
            self.stats.frames["openOrders"] += 1
            if self._ours(user := msg.data.user.lower()):
                self.pipeline.on_orders(user, msg.data.dex, msg.data.orders, None, observed_at)
        elif isinstance(msg, WebData2Msg):
            self.stats.frames["webData2"] += 1
            if self._ours(user := msg.data.user.lower()):
                self.pipeline.on_orders(user, schema.MAIN_DEX, msg.data.openOrders, msg.data.serverTime, observed_at)
                if msg.data.clearinghouseState != NULL:
                    self.pipeline.on_positions(user, schema.MAIN_DEX, msg.data.clearinghouseState, observed_at)
                self.pipeline.on_twaps(user, msg.data.twapStates, observed_at)
        elif isinstance(msg, ClearinghouseMsg):
            self.stats.frames["clearinghouseState"] += 1
            if self._ours(user := msg.data.user.lower()):
                self.pipeline.on_positions(user, msg.data.dex, msg.data.clearinghouseState, observed_at)
        elif isinstance(msg, UserFillsMsg):
            self.stats.frames["userFills"] += 1
            if self._ours(user := msg.data.user.lower()):
                self.pipeline.on_fills(user, msg.data.fills, observed_at, snapshot=msg.data.isSnapshot)
        elif isinstance(msg, TwapStatesMsg):
            self.stats.frames["twapStates"] += 1
            if self._ours(user := msg.data.user.lower()):
                self.pipeline.on_twaps(user, msg.data.states, observed_at)
        elif isinstance(msg, OrderUpdatesMsg):
            self.stats.frames["orderUpdates"] += 1
            self.pipeline.on_order_updates(self.users, msg.data)
        elif isinstance(msg, L2BookMsg):
            self.stats.frames["l2Book"] += 1
            if self.books is not None:
                self.books.on_frame(msg.data)
        elif isinstance(msg, SubscriptionResponseMsg):
            self.stats.frames["subscriptionResponse"] += 1
            sub = msg.data.get("subscription")
            if isinstance(sub, dict):
                key = _sub_key(sub)
                if msg.data.get("method") == "subscribe" and self._pending.pop(key, None) is not None:
                    self._acked[key] = sub
        elif isinstance(msg, ErrorMsg):
            self._on_error(msg.text)
        else:
            self.stats.frames["pong"] += 1

    def _ours(self, user: str) -> bool:
        """Frames of a trader moved away from this connection are late: its new tier has it."""
        if user in self.users:
            return True
        self.stats.frames_not_ours += 1
        return False

    def _on_error(self, text: str) -> None:
        books = [key for key in self._pending if key[0] == "l2Book"]
        if text.startswith(exchange.SUBSCRIPTION_CAP_ERROR_PREFIX) and books:
            # books are asked for after the traders' subscriptions: the cap refused books, which
            # are given up for a while (their events carry null book fields), not traders
            self.stats.exchange_errors["subscription_cap_books"] += 1
            for key in books:
                self._pending.pop(key, None)
            self.books_paused_until = time.monotonic() + REFUSED_RETRY_S
            self._warn.log(logging.ERROR, "books_capped", "event=books_capped conn=%s dropped=%d text=%r "
                           "note='order-book context off for these coins for %.0fs'", self.name, len(books),
                           text[:200], REFUSED_RETRY_S)
            return
        if text.startswith(exchange.ERROR_PREFIXES_CAPACITY):
            self.stats.exchange_errors["capacity"] += 1
            self._capacity_hit = True
            # the cap is per IP: users not subscribed yet would be refused too, so stop here
            unsent = [("", user, "") for user in self._unsent]
            self._unsent.clear()
            self._refuse([*self._pending, *unsent], text, capacity=True)
            return
        if text.startswith(exchange.PARSE_ERROR_PREFIX) and self._reject(text):
            return
        kind = "already_subscribed" if text.startswith("Already subscribed") else "other"
        self.stats.exchange_errors[kind] += 1
        self._warn.log(logging.DEBUG if kind == "already_subscribed" else logging.WARNING,
                       f"err:{kind}", "event=exchange_error conn=%s text=%r", self.name, text[:300])

    def _reject(self, text: str) -> bool:
        """The exchange could not parse one of our subscribe messages (it echoes the message):
        give up that subscription alone, loudly, rather than the trader. True if it was ours."""
        try:
            request = msgspec.json.decode(text[len(exchange.PARSE_ERROR_PREFIX):].strip())
            key = _sub_key(request["subscription"])
        except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
            return False
        if key not in self._pending:
            return False
        self._give_up(key, "the exchange could not parse it")
        return True

    def _give_up(self, key: SubKey, why: str) -> None:
        """Stop asking for this one subscription (not sent again), loudly; the rest of its trader
        is followed."""
        self._pending.pop(key, None)
        self.rejected.add(key)
        self.stats.exchange_errors["subscription_rejected"] += 1
        self._warn.log(logging.ERROR, f"rejected:{key[0]}", "event=subscription_rejected conn=%s subscription=%s "
                       "why=%r note='not asked for again; the rest of the trader is followed'", self.name,
                       msgspec.json.encode(_subscription(key)).decode(), why)

    def _refuse(self, keys: list[SubKey], reason: str, *, capacity: bool = False) -> None:
        """The exchange refused these subscriptions: report their users once and leave them
        alone for a while instead of retrying into the same wall. An l2Book never acknowledged
        is simply asked for again."""
        for key in keys:
            self._pending.pop(key, None)
        books = tuple(coin for typ, _, coin in keys if typ == "l2Book")
        if books and self.books is not None:
            self._requests.put_nowait(("book", books, None))
        users = sorted({user for _, user, _ in keys if user in self.users})
        until = time.monotonic() + REFUSED_RETRY_S
        for user in users:
            self.refused[user] = until
            if capacity:
                self.capped[user] = until
        if users and self.on_refused is not None:
            self.on_refused()
        if not set(users) - self._reported:
            return
        self._reported.update(users)
        log.error(
            "event=capacity_refused conn=%s users=%s reason=%r retry_in_s=%.0f hint=%r",
            self.name, ",".join(users), reason, REFUSED_RETRY_S,
            "the exchange caps unique tracked users per IP; add TRADER_WS_SOURCE_ADDRESSES, "
            "lower TRADER_WS_MAX_USERS_PER_IP to match, or shard traders across instances",
        )

    async def close(self) -> None:
        """Unsubscribe everything (frees the exchange's user slots at once), then close; the
        run loop does not reconnect after this."""
        self._stopping = True
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed, OSError):
            for key in list(self._acked):
                await self._unsubscribe(ws, key)
            await ws.close(code=1000, reason="collector shutting down")
