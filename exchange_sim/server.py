"""The simulator process: aiohttp serving `/ws`, `POST /info` and the leaderboard on one port,
plus a scripting API.

`ExchangeSim` is both what `python -m exchange_sim` runs and what tests drive in-process
(with `node_dir` set, `sim.node` is the exchange_sim.node_files writer and its fault switches):

    async with ExchangeSim(SimConfig(push_interval=0.5)) as sim:
        oid = sim.place(user, "BTC", "B", "0.01", "100000.0")
        new_oid = sim.amend(oid, limit_px="100500.0")  # cancel-and-replace: a new oid
        sim.add_dex("abc", {"FOO": "12.5"})            # a HIP-3 dex, coin "abc:FOO"
        ...

This module holds the wiring (state, start/stop, the routes), the scripting API and the
background loops (ticker, watchdog, chaos); the WebSocket feeds are in :mod:`exchange_sim.feeds`
and the info API in :mod:`exchange_sim.info_api`, both mixins of `ExchangeSim`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from exchange_sim import leaderboard, marks, rules
from exchange_sim.book import OrderBooks
from exchange_sim.clock import LogicalClock
from exchange_sim.config import SimConfig, marks_path_for
from exchange_sim.exchange import Exchange, Order
from exchange_sim.feeds import Connection, SimStats, UserView
from exchange_sim.info_api import InfoApi
from exchange_sim.leaderboard import Leaderboard
from exchange_sim.limits import IpState
from exchange_sim.logs import event
from exchange_sim.market import MAIN_DEX, Market, fmt
from exchange_sim.node_files import NodeWriter
from exchange_sim.traders import TraderPool, trader_addresses, write_addresses
from exchange_sim.truth import TruthRecorder
from exchange_sim.twaps import Twap, TwapRecorder, Twaps, TwapTraders, twaps_path_for
from exchange_sim.whale import Whale


class ExchangeSim(InfoApi):
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
            self.addresses[1:] if cfg.whale else self.addresses,
            cfg.seed,
            cfg.orders_per_trader_per_min,
            spot_share=cfg.spot_order_share,
            hip3_share=cfg.hip3_order_share,
        )
        self.tracked = self.addresses[: cfg.tracked_traders] if cfg.tracked_traders is not None else self.addresses
        truth_users = self.tracked if cfg.tracked_traders is not None else None
        self.recorder = TruthRecorder(cfg.truth_file, cfg.visibility_path(), cfg.fills_path(), truth_users,
                                      marks_path_for(cfg.truth_file) if cfg.truth_file else None)
        self.exchange.replace_listeners.append(self.recorder.on_replace)
        self.exchange.listeners.append(self.recorder.on_transition)
        self.exchange.fill_listeners.append(self.recorder.on_fill)
        self.twaps = Twaps(self.exchange)
        self.twap_traders = TwapTraders(self.twaps, self.addresses, cfg.seed, cfg.twaps_per_trader_per_hour)
        self.twap_recorder = TwapRecorder(twaps_path_for(cfg.truth_file) if cfg.truth_file else None, truth_users)
        self.twaps.listeners.append(self.twap_recorder.on_status)
        self.whale = Whale(self.exchange, self.twaps, self.addresses[0], self.set_mark) if cfg.whale else None
        self.node: NodeWriter | None = None
        self.clock_held = False  # see hold_clock
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
            self.twaps.listeners.append(self.node.on_twap)
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
        self.twap_recorder.close()

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
            "twapStatusLines": self.twap_recorder.lines,
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

    def start_twap(
        self,
        user: str,
        coin: str,
        side: str,
        sz: Decimal | str | float,
        minutes: int,
        *,
        reduce_only: bool = False,
        randomize: bool = False,
    ) -> int:
        """Start a TWAP (one taker slice every 30 s of simulated time, see exchange_sim.twaps);
        returns its twapId."""
        return self.twaps.start(user, coin, side, sz, minutes, reduce_only=reduce_only, randomize=randomize).twap_id

    def terminate_twap(self, twap_id: int) -> None:
        """Stop a running TWAP as its owner would: it ends "terminated"."""
        self.twaps.terminate(twap_id)

    def twap(self, twap_id: int) -> Twap:
        """The exchange's record of a TWAP (read-only use, please)."""
        return self.twaps.by_id[twap_id]

    def order(self, oid: int) -> Order:
        """The exchange's record of an order (read-only use, please)."""
        return self.exchange.get(oid)

    def set_mark(self, coin: str, px: Decimal | str) -> list[int]:
        """Move a perp's mark price: its `activeAssetCtx` subscribers and the clearinghouse
        states of the users holding it are pushed in the next round (exchange_sim.marks), and
        positions whose liquidation price it reached are liquidated (exchange_sim.liquidation).
        Returns the oids of the liquidation orders."""
        marks.set_mark(self.market, coin, px)
        self.recorder.on_mark(coin, fmt(self.market.coin(coin).mark_px), self.clock.now_ms())
        self._dirty_coins.add(coin)
        self._dirty_event.set()
        return [order.oid for order in self.exchange.mark_moved(coin)]

    def set_order_rate(self, orders_per_trader_per_min: float) -> None:
        """Change the random traders' activity (0 stops them, e.g. before a ground-truth check)."""
        self.traders.rate_per_ms = orders_per_trader_per_min / 60_000.0

    def hold_clock(self, held: bool) -> None:
        """Stop simulated time (``True``: no trading, no node blocks) or let it run on from where
        it stopped, e.g. to keep a scenario's timing whatever a loaded machine takes to start a client."""
        self.clock_held = held

    def stop_twaps(self) -> None:
        """The random traders start no more TWAPs and stop those running (each ends
        ``terminated``), so nothing changes any more, e.g. before a ground-truth check."""
        self.twap_traders.rate_per_ms = 0.0
        for twap_id in list(self.twaps.active):
            self.twaps.terminate(twap_id)

    def tick(self, dt_ms: float) -> None:
        """Advance the logical clock by `dt_ms`, let the random traders and the whale (if enabled) act and
        write the node-file blocks that are due."""
        self.traders.tick(dt_ms)
        if self.whale is not None:
            self.whale.tick()
        self.twap_traders.tick(dt_ms)
        self.twaps.advance()
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

    # ----- background loops ------------------------------------------------------------------
    async def _ticker(self) -> None:
        cfg = self.config
        last = self._loop_time()
        last_flush = last
        while True:
            await asyncio.sleep(cfg.tick_interval)
            now = self._loop_time()
            if not self.clock_held:
                self.tick((now - last) * cfg.speed * 1000.0)
            last = now
            if now - last_flush >= 1.0:
                self.recorder.flush()
                self.twap_recorder.flush()
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
