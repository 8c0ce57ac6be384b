"""The WebSocket side of the simulator: `/ws` connections, subscriptions and push rounds.

`Feeds` is a mixin of :class:`exchange_sim.server.ExchangeSim`: the state it declares is
set up there.

Long because: the feeds are one state machine (a connection's subscriptions, the per-IP caps
they count against, and the push rounds that serve them), and these notes give each feed's wire
format; the book model (exchange_sim.book), TWAPs (exchange_sim.twaps) and marks
(exchange_sim.marks) are apart already.

Feeds per dex: `openOrders`/`clearinghouseState` with dex `""` carry main-dex perps and spot
orders (spot makes no positions), with dex `"xyz"` only that HIP-3 dex's coins; webData2 is
dex `""` only; an unknown dex gets empty snapshots.

`userFills` (all dexes, like REST userFills): the ack echoes
`{"type":"userFills","user":<lower>,"aggregateByTime":<bool, default false>}`, then comes the
snapshot `{"channel":"userFills","data":{"isSnapshot":true,"user","fills":[...]}}` with the
user's newest 2000 fills NEWEST FIRST (as REST userFills; the real snapshot's order is
unverified), then every later fill exactly once per subscription, coalesced per push round,
as `{"channel":"userFills","data":{"user","fills":[...]}}` (oldest first, no isSnapshot key).
Nothing is re-pushed periodically; a new subscription (e.g. after a reconnect) gets the
snapshot again, so consumers dedupe by tid. `aggregateByTime` is accepted and echoed but
changes nothing: every simulated fill is already one crossing order against one book side.

`twapStates` (per user, no dex; exchange_sim.twaps): the ack echoes `{"type":"twapStates","user"}`,
then frames `{"channel":"twapStates","data":{"dex":"","user","states":[[twapId, TwapState], ...]}}`
with the user's running TWAPs, on subscribe, after every change (a start, a slice, an end) and in
every full push round. webData2's `twapStates` holds the same list.

`orderUpdates` (per user, no dex): the ack echoes `{"type":"orderUpdates","user"}`; no snapshot;
then, in the push round after a change, `{"channel":"orderUpdates","data":[WsOrder, ...]}` with
every status change of the user's orders (all dexes) since the previous frame, oldest first. The
frame carries no user (PROTOCOL.md §1.6): a subscriber of several users tells them apart by oid.

`l2Book` (public, per coin; see exchange_sim.book for the book model): subscribe
`{"type":"l2Book","coin":"BTC"}` with optional `nSigFigs` (2..5), `mantissa` (1/2/5, with
nSigFigs 5) and `fast`; the ack echoes `{"type":"l2Book","coin","nSigFigs","mantissa","fast"}`
with the defaults filled in (null, null, false), and an unsubscribe matches on that form
whether or not it spells the defaults. It takes no user slot, only one of the per-IP
subscriptions; an unknown coin gets the parse-error text. Frames
`{"channel":"l2Book","data":{"coin","time","levels":[[bids…],[asks…]]}}` (20 levels a side,
best first, `{"px","sz","n"}`; `time` the simulator clock) come right after the ack, in the
push round after the coin's book changed, and in every periodic full push round. Info
`{"type":"l2Book","coin"}` answers the same object. `book(coin)` is the current book,
`book_at(coin, time)` the snapshot served with that time.

`activeAssetCtx` (public, per perp coin, no user slot): see exchange_sim.marks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from exchange_sim import frames, marks, rules
from exchange_sim.book import OrderBooks, view_data
from exchange_sim.clock import LogicalClock
from exchange_sim.config import SimConfig
from exchange_sim.exchange import Exchange
from exchange_sim.limits import IpState
from exchange_sim.logs import event
from exchange_sim.market import MAIN_DEX, Market
from exchange_sim.truth import TruthRecorder
from exchange_sim.twaps import Twaps

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
PUSH_ROUND_WAIT_S = 1.0


@dataclass
class SimStats:
    """Counters read by tests and benchmarks."""

    connections_total: int = 0  # WS upgrades accepted
    connections_refused: int = 0  # upgrades refused (caps, refuse window)
    frames_sent: int = 0  # every frame (acks, pongs, errors, data)
    pushes_sent: int = 0  # data frames (openOrders / clearinghouseState / webData2 / userFills / l2Book)
    bytes_sent: int = 0
    errors_sent: int = 0
    messages_received: int = 0
    rest_requests: int = 0
    rest_429: int = 0
    push_rounds: int = 0
    chaos_events: dict[str, int] = field(default_factory=dict)
    info_calls: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """(user, request type) -> loop times of the answered info requests naming that user."""

    def calls(self, user: str, typ: str, since: float = float("-inf")) -> list[float]:
        """When ``user`` was asked about with ``typ`` (loop time), from ``since`` on."""
        return [t for t in self.info_calls.get((user.lower(), typ), ()) if t >= since]


@dataclass
class Connection:
    """One accepted WebSocket and what it subscribed to."""

    id: int
    ip: str
    ws: web.WebSocketResponse
    transport: Any
    opened: float
    last_sent: float
    subs: dict[bytes, dict[str, Any]] = field(default_factory=dict)  # key -> normalized sub
    # userFills / orderUpdates subscription key -> the user's fills_total / updates_total already
    # delivered (set at the subscribe; absent until then, so a push round cannot overtake it)
    cursors: dict[bytes, int] = field(default_factory=dict)
    closing: bool = False
    busy: bool = False  # a push to this connection is in progress


@dataclass
class UserView:
    """Serialized pieces of one user's state, rebuilt only when the user's version changes."""

    version: int
    user: bytes
    orders: bytes
    oids: list[int]
    state: bytes  # clearinghouseState without "time"
    twaps: bytes  # the twapStates list
    recorded: bool = False  # its oids are already in the visibility records


class Feeds:
    """Accepts `/ws` connections, keeps their subscriptions within the caps and pushes their frames."""

    config: SimConfig
    stats: SimStats
    market: Market
    clock: LogicalClock
    exchange: Exchange
    twaps: Twaps
    books: OrderBooks
    recorder: TruthRecorder
    connections: dict[int, Connection]
    ips: dict[str, IpState]
    _order_subs: dict[tuple[str, str], int]  # (user, dex) -> live openOrders/webData2 subscriptions
    _views: dict[tuple[str, str], UserView]
    _conn_ids: Iterator[int]
    _dirty: set[str]
    _dirty_coins: set[str]  # coins whose book changed since the last push round
    _dirty_event: asyncio.Event
    _resumed: asyncio.Event
    _refuse_until: float
    _chaos_rng: random.Random
    _tasks: list[asyncio.Task[Any]]
    _loop_time: Callable[[], float]

    def _ip(self, ip: str) -> IpState:
        st = self.ips.get(ip)
        if st is None:
            st = self.ips[ip] = IpState()
        return st

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        ip = request.remote or "?"
        now = self._loop_time()
        ipst = self._ip(ip)
        if now < self._refuse_until:
            self.stats.connections_refused += 1
            event("connection_refused", reason="refusing", ip=ip)
            return web.Response(status=503, text="Service Unavailable")
        if ipst.connections >= cfg.max_connections_per_ip:
            self.stats.connections_refused += 1
            event(
                "connection_refused",
                reason="max_connections",
                ip=ip,
                cap=cfg.max_connections_per_ip,
            )
            return web.Response(status=429, text="Too many connections")
        if (
            cfg.max_new_connections_per_min is not None
            and ipst.new_connections.used(now) >= cfg.max_new_connections_per_min
        ):
            self.stats.connections_refused += 1
            event("connection_refused", reason="max_new_connections_per_min", ip=ip)
            return web.Response(status=429, text="Too many new connections")
        ws = web.WebSocketResponse(compress=cfg.ws_compress, autoping=True, timeout=2.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        ipst.connections += 1
        ipst.new_connections.add(now)
        conn = Connection(next(self._conn_ids), ip, ws, request.transport, now, now)
        self.connections[conn.id] = conn
        self.stats.connections_total += 1
        event("connected", conn=conn.id, ip=ip, ip_connections=ipst.connections)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_message(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._on_message(conn, msg.data.decode(errors="replace"))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._release(conn)
            event("disconnected", conn=conn.id, ip=ip, close_code=ws.close_code)
        return ws

    def _release(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        ipst = self._ip(conn.ip)
        ipst.connections -= 1
        for sub in conn.subs.values():
            self._unaccount(ipst, sub)
        conn.subs.clear()
        conn.cursors.clear()

    def _unaccount(self, ipst: IpState, sub: dict[str, Any]) -> None:
        ipst.subscriptions -= 1
        user = sub.get("user")  # None for l2Book
        if user:
            ipst.remove_user(user)
            if sub["type"] in rules.ORDER_SUBSCRIPTION_TYPES:
                key = (user, sub.get("dex", MAIN_DEX))
                n = self._order_subs.get(key, 0) - 1
                if n <= 0:
                    self._order_subs.pop(key, None)
                    self.recorder.on_coverage(user, False, self.clock.now_ms(), dex=key[1])
                else:
                    self._order_subs[key] = n

    async def _send(self, conn: Connection, data: bytes, *, push: bool = False) -> bool:
        if conn.closing or conn.ws.closed:
            return False
        try:
            await conn.ws.send_frame(data, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError):
            return False
        conn.last_sent = self._loop_time()
        s = self.stats
        s.frames_sent += 1
        s.bytes_sent += len(data)
        if push:
            s.pushes_sent += 1
        return True

    async def _error(self, conn: Connection, text: str) -> None:
        self.stats.errors_sent += 1
        event(
            "error_frame",
            level=logging.DEBUG,
            conn=conn.id,
            ip=conn.ip,
            text=json.dumps(text[:200]),
        )
        await self._send(conn, frames.error_frame(text))

    async def _on_message(self, conn: Connection, raw: str) -> None:
        cfg = self.config
        self.stats.messages_received += 1
        ipst = self._ip(conn.ip)
        now = self._loop_time()
        if ipst.messages.used(now) >= cfg.max_messages_per_min:
            await self._error(conn, rules.ERR_TOO_MANY_MESSAGES.format(n=cfg.max_messages_per_min))
            return
        ipst.messages.add(now)
        try:
            req = orjson.loads(raw)
            method = req["method"]
            if method == "ping":
                await self._send(conn, frames.PONG)
                return
            if method not in ("subscribe", "unsubscribe"):
                raise ValueError(method)
            sub = self._normalize(req["subscription"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            await self._error(conn, rules.ERR_PARSE.format(raw=raw))
            return
        key = orjson.dumps(sub)
        if method == "subscribe":
            await self._subscribe(conn, ipst, key, sub)
        else:
            await self._unsubscribe(conn, ipst, key, sub)

    def _normalize(self, sub: Any) -> dict[str, Any]:
        """The subscription as the exchange echoes it; ValueError for what it cannot parse."""
        typ = sub["type"]
        if typ == "l2Book":
            coin = sub["coin"]
            if not self.books.known(coin):
                # The real exchange drops the socket without a frame for an unknown coin
                # (SAMPLE-NOTES §5); the simulator answers with the parse error instead.
                raise ValueError(coin)
            n_sig_figs, mantissa = book_options(sub)
            fast = sub.get("fast")
            if fast is None:
                fast = False
            if not isinstance(fast, bool):
                raise ValueError(fast)
            return {"type": typ, "coin": coin, "nSigFigs": n_sig_figs, "mantissa": mantissa, "fast": fast}
        if typ == marks.CHANNEL:
            coin = sub["coin"]
            if not isinstance(coin, str) or not marks.is_perp(self.market, coin):
                raise ValueError(coin)
            return {"type": typ, "coin": coin}
        if typ not in rules.USER_SUBSCRIPTION_TYPES:
            raise ValueError(typ)
        user = sub["user"]
        if not isinstance(user, str) or not ADDRESS_RE.match(user):
            raise ValueError(user)
        if typ in ("webData2", "twapStates", "orderUpdates"):
            return {"type": typ, "user": user.lower()}
        if typ == "userFills":
            # The real ack fills in the default (oppen mainnet and hftbacktest testnet captures).
            agg = sub.get("aggregateByTime")
            if agg is None:
                agg = False
            if not isinstance(agg, bool):
                raise ValueError(agg)
            return {"type": typ, "user": user.lower(), "aggregateByTime": agg}
        dex = sub.get("dex") or ""
        if not isinstance(dex, str):
            raise ValueError(dex)
        return {"type": typ, "user": user.lower(), "dex": dex}

    async def _subscribe(self, conn: Connection, ipst: IpState, key: bytes, sub: dict[str, Any]) -> None:
        cfg = self.config
        if key in conn.subs:
            await self._error(conn, rules.ERR_ALREADY_SUBSCRIBED.format(sub=key.decode()))
            return
        if ipst.subscriptions >= cfg.max_subscriptions_per_ip:
            await self._error(conn, rules.ERR_TOO_MANY_SUBSCRIPTIONS.format(n=cfg.max_subscriptions_per_ip))
            return
        user = sub.get("user")  # None for l2Book: public, no user slot
        if user is not None and user not in ipst.users and len(ipst.users) >= cfg.max_users_per_ip:
            event("user_cap", level=logging.DEBUG, conn=conn.id, ip=conn.ip, user=user)
            await self._error(conn, rules.ERR_TOO_MANY_USERS.format(n=cfg.max_users_per_ip))
            return
        conn.subs[key] = sub
        ipst.subscriptions += 1
        if user is not None:
            ipst.add_user(user)  # the user cap counts each user once, whatever its dexes and types
        if user is not None and sub["type"] in rules.ORDER_SUBSCRIPTION_TYPES:
            cov = (user, sub.get("dex", MAIN_DEX))
            n = self._order_subs.get(cov, 0) + 1
            self._order_subs[cov] = n
            if n == 1:
                self.recorder.on_coverage(user, True, self.clock.now_ms(), dex=cov[1])
        await self._send(conn, frames.ack_frame("subscribe", sub))
        cache: dict[tuple[str, str, str], bytes] = {}
        await self._send_sub(conn, key, sub, cache, snapshot=True)

    async def _unsubscribe(self, conn: Connection, ipst: IpState, key: bytes, sub: dict[str, Any]) -> None:
        if key not in conn.subs:
            await self._error(conn, rules.ERR_ALREADY_UNSUBSCRIBED.format(sub=key.decode()))
            return
        del conn.subs[key]
        conn.cursors.pop(key, None)
        self._unaccount(ipst, sub)
        await self._send(conn, frames.ack_frame("unsubscribe", sub))

    def _close(self, conn: Connection, code: int | None, reason: str, *, why: str) -> None:
        """Abort (code None) or close a connection without blocking the caller."""
        if conn.closing:
            return
        conn.closing = True
        event("closing", conn=conn.id, ip=conn.ip, why=why, code=code, reason=reason or None)
        if code is None:
            if conn.transport:
                conn.transport.abort()
            self._release(conn)
        else:
            task = asyncio.create_task(conn.ws.close(code=code, message=reason.encode()))
            self._tasks.append(task)
            task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # ----- pushes ----------------------------------------------------------------------------
    def _on_change(self, user: str) -> None:
        self._dirty.add(user)
        self._dirty_event.set()

    def _on_book_transition(self, user: str, status: str, order: dict[str, Any], time_ms: int) -> None:
        coin = self.books.on_transition(user, status, order, time_ms)
        if coin is not None:
            self._dirty_coins.add(coin)
            self._dirty_event.set()

    def _book_frame(self, sub: dict[str, Any], cache: dict[tuple[str, str, str], bytes]) -> bytes:
        """The l2Book frame of a subscription; one snapshot per coin and options per push round."""
        coin, n_sig_figs, mantissa, fast = sub["coin"], sub["nSigFigs"], sub["mantissa"], sub["fast"]
        key = ("l2Book", coin, f"{n_sig_figs}:{mantissa}:{fast}")
        frame = cache.get(key)
        if frame is None:
            snap = self.books.snapshot(coin, self.clock.now_ms())
            frame = cache[key] = frames.l2_book_frame(view_data(snap, n_sig_figs, mantissa, fast))
        return frame

    def _known_dex(self, dex: str) -> bool:
        return dex == MAIN_DEX or dex in self.market.dexes

    def _view(self, user: str, dex: str = MAIN_DEX) -> UserView:
        st = self.exchange.user(user)
        view = self._views.get((user, dex))
        if view is None or view.version != st.version:
            orders = self.exchange.frontend_open_orders(user, dex)
            state = self.exchange.clearinghouse_state(user, dex=dex)
            del state["time"]
            view = UserView(
                st.version,
                user.encode(),
                orjson.dumps(orders),
                [o["oid"] for o in orders] + [c["oid"] for o in orders for c in o["children"]],
                orjson.dumps(state),
                orjson.dumps(self.twaps.states(user)),
            )
            self._views[(user, dex)] = view
        return view

    def _frame(self, sub: dict[str, Any], cache: dict[tuple[str, str, str], bytes]) -> tuple[bytes, UserView | None]:
        typ, user, dex = sub["type"], sub["user"], sub.get("dex", MAIN_DEX)
        key = (typ, user, dex)
        view = self._view(user, dex) if self._known_dex(dex) else None
        frame = cache.get(key)
        if frame is None:
            now = self.clock.now_ms()
            udex = orjson.dumps(dex)
            if view is None:  # an unknown perp dex: nothing is listed there
                empty = frames.with_time(orjson.dumps(EMPTY_STATE), now)
                frame = (
                    frames.open_orders_frame(user.encode(), udex, b"[]")
                    if typ == "openOrders"
                    else frames.clearinghouse_frame(user.encode(), udex, empty)
                )
            elif typ == "openOrders":
                frame = frames.open_orders_frame(view.user, udex, view.orders)
            elif typ == "clearinghouseState":
                frame = frames.clearinghouse_frame(view.user, udex, frames.with_time(view.state, now))
            elif typ == "twapStates":
                frame = frames.twap_states_frame(view.user, udex, view.twaps)
            else:
                frame = frames.webdata2_frame(
                    self.market, view.user, frames.with_time(view.state, now), view.orders, now, view.twaps
                )
            cache[key] = frame
        return frame, view if typ in rules.ORDER_SUBSCRIPTION_TYPES else None

    def _stream_frame(
        self,
        conn: Connection,
        key: bytes,
        sub: dict[str, Any],
        cache: dict[tuple[str, str, str], bytes],
        snapshot: bool,
    ) -> bytes | None:
        """The next frame of a userFills or orderUpdates subscription (None: nothing new),
        advancing its cursor: what the user did since the previous frame of this subscription,
        oldest first. A userFills subscribe gets the newest fills, newest first; an orderUpdates
        subscribe gets nothing (no snapshot), it only starts the cursor."""
        typ, user = sub["type"], sub["user"]
        st = self.exchange.user(user)
        total = st.fills_total if typ == "userFills" else st.updates_total
        if snapshot:
            conn.cursors[key] = total
            if typ != "userFills":
                return None
            ckey = (typ, user, f"snapshot:{total}")
            if ckey not in cache:
                fills = self.exchange.user_fills(user)[: rules.USER_FILLS_SNAPSHOT_LIMIT]
                cache[ckey] = frames.user_fills_frame(user.encode(), orjson.dumps(fills), snapshot=True)
            return cache[ckey]
        seen = conn.cursors.get(key)
        if seen is None or total <= seen:  # the subscribe has not started the cursor yet, or nothing new
            return None
        ckey = (typ, user, f"{seen}:{total}")
        if ckey not in cache:
            if typ == "userFills":
                fills, total = self.exchange.fills_after(user, seen)
                cache[ckey] = frames.user_fills_frame(user.encode(), orjson.dumps(fills), snapshot=False)
            else:
                updates, total = self.exchange.updates_after(user, seen)
                cache[ckey] = frames.order_updates_frame(orjson.dumps(updates))
        conn.cursors[key] = total
        return cache[ckey]

    async def _send_sub(
        self,
        conn: Connection,
        key: bytes,
        sub: dict[str, Any],
        cache: dict[tuple[str, str, str], bytes],
        *,
        snapshot: bool = False,
    ) -> None:
        view: UserView | None = None
        if sub["type"] == "l2Book":
            frame = self._book_frame(sub, cache)
        elif sub["type"] == marks.CHANNEL:
            frame = marks.active_asset_ctx_frame(self.market, sub["coin"])
        elif sub["type"] in ("userFills", "orderUpdates"):
            stream_frame = self._stream_frame(conn, key, sub, cache, snapshot)
            if stream_frame is None:
                return
            frame = stream_frame
        else:
            frame, view = self._frame(sub, cache)
        chaos = self.config.chaos
        rng = self._chaos_rng
        if chaos.malformed_prob and rng.random() < chaos.malformed_prob:
            bad = frame[: max(1, len(frame) // 2)] if rng.random() < 0.5 else b"Websocket connection established."
            self._chaos("malformed_frame", conn=conn.id, truncated=bad[:1] == b"{")
            await self._send(conn, bad)
        ok = await self._send(conn, frame, push=True)
        if ok and view is not None and not view.recorded:
            view.recorded = True
            self.recorder.on_pushed(sub["user"], view.oids, self.clock.now_ms())
        if ok and chaos.duplicate_prob and rng.random() < chaos.duplicate_prob:
            self._chaos("duplicate_frame", conn=conn.id, channel=sub["type"])
            await self._send(conn, frame, push=True)

    async def _push_conn(
        self,
        conn: Connection,
        users: set[str] | None,
        coins: set[str] | None,
        cache: dict[tuple[str, str, str], bytes],
    ) -> None:
        chaos = self.config.chaos
        conn.busy = True
        try:
            if chaos.slow_prob and self._chaos_rng.random() < chaos.slow_prob:
                self._chaos("slow_push", conn=conn.id, delay_s=chaos.slow_delay)
                await asyncio.sleep(chaos.slow_delay)
            for key, sub in list(conn.subs.items()):
                if users is not None:  # a change round: only what changed
                    if sub["type"] in ("l2Book", marks.CHANNEL):
                        if coins is None or sub["coin"] not in coins:
                            continue
                    elif sub["user"] not in users:
                        continue
                if key in conn.subs:
                    await self._send_sub(conn, key, sub, cache)
        finally:
            conn.busy = False

    async def _push(self, users: set[str] | None, coins: set[str] | None = None) -> None:
        """Push the current state of `users` and the books of `coins` to every matching
        subscription; `users` None is a full round (every subscription, every book).

        A connection still busy with an earlier push (a client that stopped reading) is
        skipped, and the round waits at most one second for slow ones.
        """
        self.stats.push_rounds += 1
        cache: dict[tuple[str, str, str], bytes] = {}
        conns = [c for c in self.connections.values() if c.subs and not c.closing and not c.busy]
        if len(conns) == 1:
            await self._push_conn(conns[0], users, coins, cache)
        elif conns:
            tasks = [asyncio.create_task(self._push_conn(c, users, coins, cache)) for c in conns]
            await asyncio.wait(tasks, timeout=PUSH_ROUND_WAIT_S)

    async def _push_loop(self) -> None:
        cfg = self.config
        next_full = self._loop_time() + cfg.push_interval
        while True:
            timeout = max(0.0, next_full - self._loop_time())
            # not asyncio.wait_for: on Python 3.11 it drops a cancel that comes in the loop
            # iteration where the event was set, and the simulator's stop then waits forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._dirty_event.wait()
            if self._dirty_event.is_set():
                await asyncio.sleep(cfg.change_push_delay)  # coalesce a burst of changes
                self._dirty_event.clear()
            await self._resumed.wait()
            now = self._loop_time()
            if now >= next_full:
                next_full = now + cfg.push_interval
                self._dirty.clear()
                self._dirty_coins.clear()
                await self._push(None)
            elif self._dirty or self._dirty_coins:
                users, self._dirty = self._dirty, set()
                coins, self._dirty_coins = self._dirty_coins, set()
                await self._push(users, coins)

    def _chaos(self, name: str, **fields: object) -> None:
        self.stats.chaos_events[name] = self.stats.chaos_events.get(name, 0) + 1
        event("chaos_" + name, level=logging.WARNING, **fields)


def book_options(req: dict[str, Any]) -> tuple[int | None, int | None]:
    """An l2Book request's (nSigFigs, mantissa); ValueError for values the exchange refuses."""
    n_sig_figs, mantissa = req.get("nSigFigs"), req.get("mantissa")
    if n_sig_figs is not None and (type(n_sig_figs) is not int or n_sig_figs not in rules.L2_BOOK_SIG_FIGS):
        raise ValueError(n_sig_figs)
    if mantissa is not None and (
        type(mantissa) is not int or mantissa not in rules.L2_BOOK_MANTISSAS or n_sig_figs != 5
    ):
        raise ValueError(mantissa)
    return n_sig_figs, mantissa


ZERO_SUMMARY = {
    "accountValue": "0.0",
    "totalNtlPos": "0.0",
    "totalRawUsd": "0.0",
    "totalMarginUsed": "0.0",
}
EMPTY_STATE: dict[str, Any] = {
    "marginSummary": ZERO_SUMMARY,
    "crossMarginSummary": ZERO_SUMMARY,
    "crossMaintenanceMarginUsed": "0.0",
    "withdrawable": "0.0",
    "assetPositions": [],
}
