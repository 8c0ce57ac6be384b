"""The simulator process: aiohttp serving `/ws` and `POST /info` on one port, plus a scripting API.

`ExchangeSim` is both what `python -m exchange_sim` runs and what tests drive in-process
(with `node_dir` set, `sim.node` is the exchange_sim.node_files writer and its fault switches):

    async with ExchangeSim(SimConfig(push_interval=0.5)) as sim:
        oid = sim.place(user, "BTC", "B", "0.01", "100000.0")
        new_oid = sim.amend(oid, limit_px="100500.0")  # cancel-and-replace: a new oid
        sim.add_dex("abc", {"FOO": "12.5"})            # a HIP-3 dex, coin "abc:FOO"
        ...

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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from exchange_sim import frames, leaderboard, rules
from exchange_sim.book import OrderBooks, view_data
from exchange_sim.clock import LogicalClock
from exchange_sim.config import SimConfig
from exchange_sim.exchange import Exchange, Order
from exchange_sim.leaderboard import Leaderboard
from exchange_sim.limits import IpState
from exchange_sim.logs import event
from exchange_sim.market import MAIN_DEX, Market
from exchange_sim.node_files import NodeWriter
from exchange_sim.traders import TraderPool, trader_addresses, write_addresses
from exchange_sim.truth import TruthRecorder

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
PUSH_ROUND_WAIT_S = 1.0
INFO_DESERIALIZE_ERROR = "Failed to deserialize the JSON body into the target type"


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
    # userFills subscription key -> the user's fills_total already delivered (set by the
    # snapshot; absent until the snapshot is built, so a push round cannot overtake it)
    fill_cursors: dict[bytes, int] = field(default_factory=dict)
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
    recorded: bool = False  # its oids are already in the visibility records


class ExchangeSim:
    """A local Hyperliquid stand-in: feeds, info API, caps, chaos, ground truth and scripting."""

    def __init__(self, config: SimConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or SimConfig(), **overrides)
        cfg = self.config
        self.market = Market.load(hip3_dexes=cfg.hip3_dexes)
        start = cfg.start_time_ms if cfg.start_time_ms is not None else int(time.time() * 1000)
        self.clock = LogicalClock(start)
        self.exchange = Exchange(self.market, self.clock, modify_keeps_oid=cfg.modify_keeps_oid)
        self.addresses = trader_addresses(cfg.seed, cfg.traders)
        self.traders = TraderPool(
            self.exchange,
            self.addresses,
            cfg.seed,
            cfg.orders_per_trader_per_min,
            spot_share=cfg.spot_order_share,
            hip3_share=cfg.hip3_order_share,
        )
        self.tracked = self.addresses[: cfg.tracked_traders] if cfg.tracked_traders is not None else self.addresses
        truth_users = self.tracked if cfg.tracked_traders is not None else None
        self.recorder = TruthRecorder(cfg.truth_file, cfg.visibility_path(), cfg.fills_path(), truth_users)
        self.exchange.replace_listeners.append(self.recorder.on_replace)
        self.exchange.listeners.append(self.recorder.on_transition)
        self.exchange.fill_listeners.append(self.recorder.on_fill)
        self.node: NodeWriter | None = None
        if cfg.node_dir is not None:
            self.node = NodeWriter(
                cfg.node_dir,
                self.clock,
                layout=cfg.node_layout,
                blocks_per_s=cfg.node_blocks_per_s,
                write_lag_ms=cfg.node_write_lag_ms,
                faults_path=cfg.node_faults_path(),
            )
            self.exchange.listeners.append(self.node.on_transition)
            self.exchange.fill_listeners.append(self.node.on_fill)
        self.exchange.change_listeners.append(self._on_change)
        self.books = OrderBooks(
            self.market,
            self.exchange,
            cfg.seed,
            levels=cfg.book_levels,
            step=cfg.book_step,
            level_usd=cfg.book_level_usd,
            history=cfg.book_history,
        )
        self.exchange.listeners.append(self._on_book_transition)
        self.stats = SimStats()
        self.connections: dict[int, Connection] = {}
        self.ips: dict[str, IpState] = {}
        # (user, dex) -> live openOrders/webData2 subscriptions (webData2 counts as dex "")
        self._order_subs: dict[tuple[str, str], int] = {}
        self._views: dict[tuple[str, str], UserView] = {}
        self._conn_ids = itertools.count(1)
        self._dirty: set[str] = set()
        self._dirty_coins: set[str] = set()  # coins whose book changed since the last push round
        self._dirty_event = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._refuse_until = 0.0
        self._429_until = 0.0
        self._chaos_rng = random.Random(f"chaos:{cfg.seed}")
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self._site_port = 0
        self._loop_time: Callable[[], float] = time.monotonic
        self._leaderboard: Leaderboard | None = None

    # ----- lifecycle -------------------------------------------------------------------------
    async def start(self) -> ExchangeSim:
        """Bind the port and start the ticker, push, watchdog and chaos loops."""
        cfg = self.config
        self._loop_time = asyncio.get_running_loop().time
        if cfg.addresses_file:
            write_addresses(cfg.addresses_file, self.tracked)
        app = web.Application(client_max_size=1 << 20)
        app.router.add_get("/ws", self._ws_handler)
        app.router.add_post("/info", self._info_handler)
        app.router.add_get(leaderboard.PATH, self._leaderboard_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port, backlog=512)
        await site.start()
        server = site._server
        assert server is not None
        self._site_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        for coro in (self._ticker(), self._push_loop(), self._watchdog(), self._chaos_loop()):
            self._tasks.append(asyncio.create_task(coro))
        event(
            "started",
            host=cfg.host,
            port=self.port,
            traders=cfg.traders,
            seed=cfg.seed,
            orders_per_trader_per_min=cfg.orders_per_trader_per_min,
            speed=cfg.speed,
            push_interval=cfg.push_interval,
            chaos=cfg.chaos.enabled,
            modify_keeps_oid=cfg.modify_keeps_oid,
            perp_dexes=",".join(self.market.dexes) or None,
        )
        return self

    async def stop(self) -> None:
        """Close every connection, stop the loops, write the truth summary."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for conn in list(self.connections.values()):
            conn.transport.abort() if conn.transport else None
        if self._runner:
            await self._runner.cleanup()
            self._runner = None
        if self.node is not None:
            self.node.close()  # a clean node shutdown: pending blocks are written
        summary = self.summary()
        event("stopped", **{k: v for k, v in summary.items() if not isinstance(v, dict)})
        if self.config.truth_file:
            with open(str(self.config.truth_file) + ".summary.json", "w") as f:
                json.dump(summary, f, indent=2)
        self.recorder.close()

    async def __aenter__(self) -> ExchangeSim:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._site_port

    @property
    def ws_url(self) -> str:
        """`ws://HOST:PORT/ws`."""
        return f"ws://{self.config.host}:{self.port}/ws"

    @property
    def leaderboard_url(self) -> str:
        """`http://HOST:PORT/Mainnet/leaderboard` (HYPERLIQUID_LEADERBOARD_URL)."""
        return f"http://{self.config.host}:{self.port}{leaderboard.PATH}"

    @property
    def leaderboard(self) -> Leaderboard:
        """The leaderboard document's rows and their scripting (built on first use: ~30k rows)."""
        if self._leaderboard is None:
            background = max(0, self.config.leaderboard_rows - len(self.addresses))
            self._leaderboard = Leaderboard(self.config.seed, background, self.addresses, self._booked)
        return self._leaderboard

    def _booked(self, address: str) -> tuple[Decimal, Decimal, Decimal]:
        """A simulated trader's realized PnL, volume of its retained fills and account value."""
        st = self.exchange.user(address)
        volume = sum((Decimal(f["px"]) * Decimal(f["sz"]) for f in st.fills), Decimal(0))
        value = Decimal(self.exchange.clearinghouse_state(address)["marginSummary"]["accountValue"])
        return st.realized, volume, value

    async def _leaderboard_handler(self, request: web.Request) -> web.StreamResponse:
        self.stats.rest_requests += 1
        return web.Response(body=self.leaderboard.document(), content_type="application/json")

    @property
    def info_url(self) -> str:
        """`http://HOST:PORT/info`."""
        return f"http://{self.config.host}:{self.port}/info"

    def summary(self) -> dict[str, Any]:
        """The end-of-run summary: truth counts plus serving counters."""
        s = self.stats
        return {
            **self.recorder.summary(),
            "pushesSent": s.pushes_sent,
            "framesSent": s.frames_sent,
            "bytesSent": s.bytes_sent,
            "connectionsTotal": s.connections_total,
            "rest429": s.rest_429,
            "restRequests": s.rest_requests,
            "chaosEvents": dict(s.chaos_events),
            **(self.node.stats() if self.node is not None else {}),
        }

    # ----- scripting API ---------------------------------------------------------------------
    def place(
        self,
        user: str,
        coin: str,
        side: str,
        sz: Decimal | str | float,
        limit_px: Decimal | str | float,
        *,
        tif: str | None = "Gtc",
        reduce_only: bool = False,
        trigger_px: Decimal | str | float | None = None,
        tpsl: str | None = None,
        tp_px: Decimal | str | float | None = None,
        sl_px: Decimal | str | float | None = None,
        cloid: str | None = None,
        fill_immediately: bool = False,
    ) -> int:
        """Place an order and return its oid; see `children_of` for the TP/SL oids."""
        return self.exchange.place(
            user,
            coin,
            side,
            sz,
            limit_px,
            tif=tif,
            reduce_only=reduce_only,
            trigger_px=trigger_px,
            tpsl=tpsl,
            tp_px=tp_px,
            sl_px=sl_px,
            cloid=cloid,
            fill_immediately=fill_immediately,
        ).oid

    def reject(
        self,
        user: str,
        coin: str,
        side: str,
        sz: Decimal | str | float,
        limit_px: Decimal | str | float,
        status: str = rules.REJECTED,
        **kw: Any,
    ) -> int:
        """Place an order that is rejected at placement (never rests); returns its oid."""
        return self.exchange.place(user, coin, side, sz, limit_px, reject_status=status, **kw).oid

    def children_of(self, oid: int) -> list[int]:
        """The TP/SL child oids of an order, in placement order (TP first if both)."""
        return list(self.exchange.get(oid).children)

    def amend(
        self,
        oid: int,
        *,
        sz: Decimal | str | float | None = None,
        limit_px: Decimal | str | float | None = None,
    ) -> int:
        """Modify size and/or price of a resting order; returns the oid of the order now resting.

        As on mainnet this is a cancel-and-replace: a NEW oid with the same cloid, and `oid`
        ends "canceled". With `SimConfig.modify_keeps_oid` the order is amended in place and
        the same oid is returned.
        """
        return self.exchange.amend(oid, sz=sz, limit_px=limit_px).oid

    def add_dex(self, name: str, coins: dict[str, Decimal | str | float]) -> None:
        """Add a HIP-3 perp dex at runtime: `coins` maps `"TSLA"` (or `"name:TSLA"`) to a mark.

        `perpDexs` lists it at once and orders can be placed on `"name:COIN"`; the random
        traders include it in their HIP-3 share from their next action.
        """
        self.market.add_dex(name, coins)
        event("perp_dex_added", dex=name, coins=len(coins))

    def fill(
        self,
        oid: int,
        sz: Decimal | str | float | None = None,
        px: Decimal | str | float | None = None,
    ) -> None:
        """Fill `sz` of a resting order (default: all that remains) as a maker: one fill with
        `crossed: false` and the maker fee. A trigger order is fired instead (a taker fill);
        IOC orders placed with `fill_immediately` are the taker fills of `place`."""
        self.exchange.fill(oid, sz, px)

    def trigger(self, oid: int) -> None:
        """Fire a TP/SL order: triggered then filled; its sibling becomes siblingFilledCanceled."""
        self.exchange.trigger(oid)

    def cancel(self, oid: int, status: str = rules.CANCELED) -> None:
        """Cancel a resting order with the given final status (canceled, marginCanceled, ...)."""
        self.exchange.cancel(oid, status)

    def order(self, oid: int) -> Order:
        """The exchange's record of an order (read-only use, please)."""
        return self.exchange.get(oid)

    def set_order_rate(self, orders_per_trader_per_min: float) -> None:
        """Change the random traders' activity (0 stops them, e.g. before a ground-truth check)."""
        self.traders.rate_per_ms = orders_per_trader_per_min / 60_000.0

    def tick(self, dt_ms: float) -> None:
        """Advance the logical clock by `dt_ms`, let the random traders act (if enabled) and
        write the node-file blocks that are due."""
        self.traders.tick(dt_ms)
        if self.node is not None:
            self.node.advance()

    def drop_connections(
        self,
        *,
        user: str | None = None,
        ip: str | None = None,
        code: int | None = None,
        reason: str = "",
    ) -> int:
        """Drop matching connections (all by default): abruptly, or with a close `code`/`reason`."""
        n = 0
        for conn in list(self.connections.values()):
            if ip is not None and conn.ip != ip:
                continue
            if user is not None and all(s.get("user") != user.lower() for s in conn.subs.values()):
                continue
            n += 1
            self._close(conn, code, reason, why="scripted")
        return n

    def expire_connections(self, *, user: str | None = None, ip: str | None = None) -> int:
        """Close matching connections with 1000 "Expired", as the exchange does after ~3 h."""
        return self.drop_connections(user=user, ip=ip, code=rules.EXPIRED_CLOSE_CODE, reason=rules.EXPIRED_REASON)

    def refuse_connections(self, seconds: float) -> None:
        """Answer WS upgrades with HTTP 503 for the next `seconds`."""
        self._refuse_until = self._loop_time() + seconds
        event("refusing_connections", seconds=seconds)

    def rate_limit_info(self, seconds: float) -> None:
        """Answer every /info request with HTTP 429 for the next `seconds`."""
        self._429_until = self._loop_time() + seconds
        event("info_429_burst", seconds=seconds)

    def pause_pushes(self) -> None:
        """Stop periodic and change pushes (subscribe snapshots are still sent)."""
        self._resumed.clear()

    def resume_pushes(self) -> None:
        """Resume pushes; pending changes are pushed promptly."""
        self._resumed.set()

    async def push_now(self) -> None:
        """Push every subscription's full state immediately (even while paused)."""
        self._dirty.clear()
        self._dirty_coins.clear()
        await self._push(None)

    def ip_stats(self, ip: str) -> dict[str, int]:
        """Current connections, subscriptions and distinct users held by one source IP."""
        st = self.ips.get(ip) or IpState()
        return {
            "connections": st.connections,
            "subscriptions": st.subscriptions,
            "users": len(st.users),
        }

    def subscribers(self, user: str, dex: str | None = MAIN_DEX) -> int:
        """How many live openOrders/webData2 subscriptions `user` has for `dex` (default the
        first perp dex, which webData2 counts as) across all connections; None = all dexes."""
        user = user.lower()
        if dex is not None:
            return self._order_subs.get((user, dex), 0)
        return sum(n for (u, _), n in self._order_subs.items() if u == user)

    def book(self, coin: str) -> dict[str, Any]:
        """The coin's current book `{"coin","time","levels"}` as an l2Book frame would carry it
        (20 levels a side, full precision); it is recorded like a served snapshot, so
        `book_at(coin, result["time"])` returns it. KeyError for a coin outside the market."""
        if not self.books.known(coin):
            raise KeyError(coin)
        return orjson.loads(self.books.snapshot(coin, self.clock.now_ms()).data())  # type: ignore[no-any-return]

    def book_at(self, coin: str, time_ms: int) -> dict[str, Any] | None:
        """The book snapshot served (pushed, answered or returned by `book`) with this `time`:
        what a collector saw if it stamped an event with that book time. None if no snapshot
        of `coin` had that time or it was evicted (SimConfig.book_history per coin)."""
        return self.books.at(coin, time_ms)

    def book_history(self, coin: str) -> list[dict[str, Any]]:
        """Every retained snapshot served for `coin`, oldest first."""
        return self.books.history(coin)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll `predicate` every 10 ms until true; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)

    # ----- WebSocket -------------------------------------------------------------------------
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
        conn.fill_cursors.clear()

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
            n_sig_figs, mantissa = _book_options(sub)
            fast = sub.get("fast")
            if fast is None:
                fast = False
            if not isinstance(fast, bool):
                raise ValueError(fast)
            return {"type": typ, "coin": coin, "nSigFigs": n_sig_figs, "mantissa": mantissa, "fast": fast}
        if typ not in rules.USER_SUBSCRIPTION_TYPES:
            raise ValueError(typ)
        user = sub["user"]
        if not isinstance(user, str) or not ADDRESS_RE.match(user):
            raise ValueError(user)
        if typ == "webData2":
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
        conn.fill_cursors.pop(key, None)
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
                empty = frames.with_time(orjson.dumps(_EMPTY_STATE), now)
                frame = (
                    frames.open_orders_frame(user.encode(), udex, b"[]")
                    if typ == "openOrders"
                    else frames.clearinghouse_frame(user.encode(), udex, empty)
                )
            elif typ == "openOrders":
                frame = frames.open_orders_frame(view.user, udex, view.orders)
            elif typ == "clearinghouseState":
                frame = frames.clearinghouse_frame(view.user, udex, frames.with_time(view.state, now))
            else:
                frame = frames.webdata2_frame(
                    self.market, view.user, frames.with_time(view.state, now), view.orders, now
                )
            cache[key] = frame
        return frame, view if typ in rules.ORDER_SUBSCRIPTION_TYPES else None

    def _fills_frame(
        self,
        conn: Connection,
        key: bytes,
        sub: dict[str, Any],
        cache: dict[tuple[str, str, str], bytes],
        snapshot: bool,
    ) -> bytes | None:
        """The next userFills frame of a subscription (None: nothing new), advancing its cursor.

        The snapshot holds the newest fills, newest first; later frames the fills made since
        the previous frame of this subscription, oldest first."""
        user = sub["user"]
        if snapshot:
            total = self.exchange.user(user).fills_total
            ckey = ("userFills", user, f"snapshot:{total}")
            frame = cache.get(ckey)
            if frame is None:
                fills = self.exchange.user_fills(user)[: rules.USER_FILLS_SNAPSHOT_LIMIT]
                frame = cache[ckey] = frames.user_fills_frame(user.encode(), orjson.dumps(fills), snapshot=True)
        else:
            seen = conn.fill_cursors.get(key)
            if seen is None:  # the subscribe has not built its snapshot yet
                return None
            total = self.exchange.user(user).fills_total
            if total <= seen:
                return None
            ckey = ("userFills", user, f"{seen}:{total}")
            frame = cache.get(ckey)
            if frame is None:
                fills, total = self.exchange.fills_after(user, seen)
                frame = cache[ckey] = frames.user_fills_frame(user.encode(), orjson.dumps(fills), snapshot=False)
        conn.fill_cursors[key] = total
        return frame

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
        elif sub["type"] == "userFills":
            fills_frame = self._fills_frame(conn, key, sub, cache, snapshot)
            if fills_frame is None:
                return
            frame = fills_frame
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
                    if sub["type"] == "l2Book":
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty_event.wait(), timeout)
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

    # ----- background loops ------------------------------------------------------------------
    async def _ticker(self) -> None:
        cfg = self.config
        last = self._loop_time()
        last_flush = last
        while True:
            await asyncio.sleep(cfg.tick_interval)
            now = self._loop_time()
            self.tick((now - last) * cfg.speed * 1000.0)
            last = now
            if now - last_flush >= 1.0:
                self.recorder.flush()
                last_flush = now

    async def _watchdog(self) -> None:
        cfg = self.config
        period = min(0.25, cfg.idle_timeout / 4, (cfg.max_connection_age or 1.0) / 4)
        while True:
            await asyncio.sleep(period)
            now = self._loop_time()
            for conn in list(self.connections.values()):
                if conn.closing:
                    continue
                if now - conn.last_sent >= cfg.idle_timeout:
                    self._close(conn, 1000, "", why="idle_timeout")
                elif cfg.max_connection_age is not None and now - conn.opened >= cfg.max_connection_age:
                    self._close(conn, rules.EXPIRED_CLOSE_CODE, rules.EXPIRED_REASON, why="max_age")

    def _chaos(self, name: str, **fields: object) -> None:
        self.stats.chaos_events[name] = self.stats.chaos_events.get(name, 0) + 1
        event("chaos_" + name, level=logging.WARNING, **fields)

    async def _chaos_loop(self) -> None:
        chaos = self.config.chaos
        timers = {
            name: every
            for name, every in (
                ("disconnect", chaos.disconnect_every),
                ("expire", chaos.expire_every),
                ("refuse", chaos.refuse_every),
                ("burst429", chaos.burst429_every),
                ("node_partial", chaos.node_partial_every if self.node else None),
                ("node_restart", chaos.node_restart_every if self.node else None),
            )
            if every
        }
        if not timers:
            return
        rng = self._chaos_rng
        due = {name: self._loop_time() + rng.expovariate(1 / every) for name, every in timers.items()}
        while True:
            name = min(due, key=due.__getitem__)
            await asyncio.sleep(max(0.0, due[name] - self._loop_time()))
            due[name] = self._loop_time() + rng.expovariate(1 / timers[name])
            conns = [c for c in self.connections.values() if not c.closing]
            if name in ("disconnect", "expire") and conns:
                conn = conns[rng.randrange(len(conns))]
                self._chaos(name, conn=conn.id, ip=conn.ip)
                if name == "disconnect":
                    self._close(conn, None, "", why="chaos")
                else:
                    self._close(conn, rules.EXPIRED_CLOSE_CODE, rules.EXPIRED_REASON, why="chaos")
            elif name == "refuse":
                self._chaos("refuse_connections", seconds=chaos.refuse_for)
                self._refuse_until = self._loop_time() + chaos.refuse_for
            elif name == "burst429":
                self._chaos("info_429_burst", seconds=chaos.burst429_for)
                self._429_until = self._loop_time() + chaos.burst429_for
            elif name == "node_partial" and self.node:
                self._chaos("node_partial_line", hold_s=chaos.node_partial_hold)
                self.node.partial_line(hold_ms=int(chaos.node_partial_hold * 1000))
            elif name == "node_restart" and self.node:
                blocks = rng.randint(1, 20)
                skip = rng.random() < 0.5
                self._chaos("node_restart", pause_s=chaos.node_restart_pause, blocks=blocks, skip=skip)
                self.node.restart(
                    int(chaos.node_restart_pause * 1000),
                    rewrite_blocks=0 if skip else blocks,
                    skip_blocks=blocks if skip else 0,
                )

    # ----- info API --------------------------------------------------------------------------
    async def _info_handler(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        ip = request.remote or "?"
        now = self._loop_time()
        self.stats.rest_requests += 1
        if now < self._429_until:
            self.stats.rest_429 += 1
            return web.Response(status=429, text="429 Too Many Requests")
        try:
            body = orjson.loads(await request.read())
            typ = body["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.Response(status=422, text=INFO_DESERIALIZE_ERROR)
        weight = rules.LIGHT_INFO_WEIGHT if typ in rules.LIGHT_INFO_TYPES else rules.DEFAULT_INFO_WEIGHT
        window = self._ip(ip).rest_weight
        if window.used(now) + weight > cfg.rest_weight_per_min:
            self.stats.rest_429 += 1
            event("info_rate_limited", level=logging.DEBUG, ip=ip, type=typ, used=window.used(now))
            return web.Response(status=429, text="429 Too Many Requests")
        try:
            result = self._info(typ, body)
        except (KeyError, TypeError, ValueError):
            return web.Response(status=422, text=INFO_DESERIALIZE_ERROR)
        if typ in rules.PER_ITEM_WEIGHT_TYPES:
            weight += len(result) // rules.ITEMS_PER_EXTRA_WEIGHT
        window.add(now, weight)
        return web.Response(body=orjson.dumps(result), content_type="application/json")

    def _info(self, typ: str, body: dict[str, Any]) -> Any:
        ex = self.exchange

        def user() -> str:
            u = body["user"]
            if not isinstance(u, str) or not ADDRESS_RE.match(u):
                raise ValueError(u)
            return u.lower()

        dex = body.get("dex") or MAIN_DEX
        if not isinstance(dex, str):
            raise TypeError(dex)
        known = self._known_dex(dex)
        # Assumption: orderStatus, historicalOrders, userFills and userFillsByTime are per user
        # across all dexes (they take no dex parameter in any SDK seen).
        if typ == "orderStatus":
            oid = body["oid"]
            if not isinstance(oid, int | str):
                raise TypeError(oid)
            return ex.order_status(user(), oid)
        if typ == "historicalOrders":
            return ex.historical_orders(user())
        if typ == "frontendOpenOrders":
            return ex.frontend_open_orders(user(), dex) if known else []
        if typ == "openOrders":
            if not known:
                return []
            return [
                {
                    "coin": o.coin,
                    "limitPx": f["limitPx"],
                    "oid": o.oid,
                    "side": o.side,
                    "sz": f["sz"],
                    "timestamp": o.timestamp,
                    "origSz": f["origSz"],
                    "reduceOnly": o.reduce_only,
                    "cloid": o.cloid,
                }
                for o in ex.open_orders(user(), dex)
                for f in [o.frontend()]
            ]
        if typ == "clearinghouseState":
            if not known:
                return {**_EMPTY_STATE, "time": self.clock.now_ms()}
            return ex.clearinghouse_state(user(), dex=dex)
        if typ == "userFills":
            return ex.user_fills(user())
        if typ == "userFillsByTime":
            start = int(body["startTime"])
            end = body.get("endTime")
            return ex.user_fills_by_time(user(), start, None if end is None else int(end))
        if typ == "webData2":
            u = user()
            view = self._view(u)
            frame = frames.webdata2_frame(
                self.market,
                view.user,
                frames.with_time(view.state, self.clock.now_ms()),
                view.orders,
                self.clock.now_ms(),
            )
            return orjson.loads(frame)["data"]
        if typ == "l2Book":
            coin = body["coin"]
            if not self.books.known(coin):
                raise ValueError(coin)  # unverified: what the exchange answers for an unknown coin
            n_sig_figs, mantissa = _book_options(body)
            snap = self.books.snapshot(coin, self.clock.now_ms())
            return orjson.loads(view_data(snap, n_sig_figs, mantissa, False))
        if typ == "perpDexs":
            # The real shape (several SDKs): null stands for the first perp dex.
            return [None, *(d.info() for d in self.market.dexes.values())]
        if typ in ("meta", "metaAndAssetCtxs", "allMids") and not known:
            raise ValueError(dex)  # unverified: what the exchange answers for an unknown dex
        perp_dex = self.market.dexes.get(dex)
        if typ == "meta":
            return perp_dex.meta() if perp_dex else self.market.meta
        if typ == "metaAndAssetCtxs":
            if perp_dex:
                return [perp_dex.meta(), perp_dex.asset_ctxs()]
            return [self.market.meta, self.market.asset_ctxs]
        if typ == "allMids":
            # Dex "" lists main-dex perps and spot pairs ("PURR/USDC", "@107"), as the real one.
            coins = self.market.dex_coins(dex) if perp_dex else [*self.market.coins, *self.market.spot_coins]
            return {c.name: str(c.mark_px) for c in coins}
        raise ValueError(typ)


def _book_options(req: dict[str, Any]) -> tuple[int | None, int | None]:
    """An l2Book request's (nSigFigs, mantissa); ValueError for values the exchange refuses."""
    n_sig_figs, mantissa = req.get("nSigFigs"), req.get("mantissa")
    if n_sig_figs is not None and (type(n_sig_figs) is not int or n_sig_figs not in rules.L2_BOOK_SIG_FIGS):
        raise ValueError(n_sig_figs)
    if mantissa is not None and (
        type(mantissa) is not int or mantissa not in rules.L2_BOOK_MANTISSAS or n_sig_figs != 5
    ):
        raise ValueError(mantissa)
    return n_sig_figs, mantissa


_ZERO_SUMMARY = {
    "accountValue": "0.0",
    "totalNtlPos": "0.0",
    "totalRawUsd": "0.0",
    "totalMarginUsed": "0.0",
}
_EMPTY_STATE: dict[str, Any] = {
    "marginSummary": _ZERO_SUMMARY,
    "crossMarginSummary": _ZERO_SUMMARY,
    "crossMaintenanceMarginUsed": "0.0",
    "withdrawable": "0.0",
    "assetPositions": [],
}
