"""The long-running collector: plan connections, restore state, run feeds, write, shut down.

Start-up order matters for correctness: the journal left by a previous run is written to
MongoDB first, then the open orders and positions stored there become the trackers' starting
state, so that the first snapshot is reconciled against everything already recorded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from collector_service import exchange, schema
from collector_service.config import Settings, Trader, mask_uri
from collector_service.dexes import DexDirectory
from collector_service.events.books import Books
from collector_service.health import start_health_server
from collector_service.journal import Journal
from collector_service.metrics import Stats, registry_for
from collector_service.outcomes import OutcomeResolver
from collector_service.pipeline import OUTCOME_FEED_GRACE_S, Pipeline
from collector_service.plan import Plan, owned, plan_connections
from collector_service.rest import InfoClient, WeightBudget
from collector_service.sources.marks import MarkFeed
from collector_service.sources.node import NodeSource
from collector_service.sources.polling import Poller
from collector_service.sources.tiers import Tiers
from collector_service.sources.websocket import FeedConnection
from collector_service.store import Database, Writer, describe_error, journal_folder, watch_ops
from collector_service.watchlist import Watchlist

log = logging.getLogger(__name__)

SHUTDOWN_FLUSH_S = 15.0
NODE_INFO_WEIGHT_PER_MINUTE = 1_000_000
"""The node's own info server has no public rate limit (NODE.md §3.3); a budget still paces it."""
NODE_GAUGES = {"lag_seconds": "lag_seconds", "block_lag_seconds": "block_lag_seconds",
               "bytes_behind": "bytes_behind", "last_block": "last_block", "block_gaps": "gaps",
               "blocks_missing": "blocks_missing", "blocks_repeated": "blocks_repeated",
               "lines_repeated": "lines_repeated", "files_missing": "files_missing", "late_appends": "late_appends",
               "idle_seconds": "idle_seconds", "stalled": "stalled", "bad_lines": "bad_lines"}
"""/metrics gauges ``orderwatch_node_<name>{stream=...}`` and the figure of each."""
BOOK_SWEEP_S = 10.0
T = TypeVar("T")


@dataclass
class StoredState:
    """What MongoDB holds of some traders: a start's (or a re-follow's) starting state."""

    open_orders: dict[str, list[dict[str, Any]]]
    positions: dict[str, list[dict[str, Any]]]
    last_seen: dict[str, datetime]
    gaps: dict[str, datetime | None]
    unresolved: list[tuple[str, int]]
    newest_fills: dict[str, datetime]


class Service:
    """Everything one collector instance runs, wired together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats = Stats()
        # watched from before it is read: a change made while the service starts is not missed
        self.database = Database(settings.mongo_uri, settings.mongo_db)
        self.watchlist = Watchlist(
            settings, self.apply_watchlist, self.database.listed if settings.trader_watchlist_selection else None
        ) if settings.trader_addresses_file or settings.trader_watchlist_selection else None
        self.traders = self._owned(self.watchlist.traders if self.watchlist is not None else settings.watchlist())
        traders = list(self.traders)
        # with a node's files as the source every trader comes from them: no WebSocket, no per-IP cap
        self.node_mode = settings.node_data_dir is not None
        self.plan: Plan = Plan(connections=()) if self.node_mode else plan_connections(
            traders,
            settings.source_addresses(),
            max_users_per_ip=settings.trader_ws_max_users_per_ip,
            clients=settings.trader_ws_clients,
            pinned=settings.pinned_traders(),
            poll=settings.trader_poll_enabled and settings.trader_ws_enabled,
        )
        for conn in self.plan.connections:
            self.stats.connections_planned[conn.egress or "default"] += 1
        self.polling = settings.trader_poll_enabled and settings.trader_ws_enabled and not self.node_mode
        self.over_capacity = list(self.plan.over_capacity)
        self.stopping = asyncio.Event()  # run()'s stop signal
        self.joining: dict[str, asyncio.Task[None]] = {}  # traders added, their state loading
        self.journal = Journal(journal_folder(settings.collector_data_dir, settings.trader_shard_index),
                               fsync_interval=settings.collector_journal_fsync_interval)
        self.stats.journal_corrupt_records = self.journal.corrupt_records
        self.writer = Writer(
            self.database, self.journal, self.stats,
            flush_interval=settings.trader_orders_ws_flush_interval,
            flush_threshold=settings.trader_ws_message_buffer_size,
        )
        self.clients: dict[str | None, InfoClient] = {}
        self.resolvers: dict[str | None, OutcomeResolver] = {}
        user_clients: dict[str, InfoClient] = {}
        user_resolvers: dict[str, OutcomeResolver] = {}
        self.egress_of: dict[str, str | None] = {}
        planned = {settings.source_addresses()[0]: traders} if self.node_mode else self.plan.users_by_egress()
        for egress in settings.source_addresses():
            client = InfoClient(settings.hyperliquid_info_url, egress, settings.collector_rest_weight_per_minute,
                                self.stats, poll_share=settings.trader_poll_budget_share if self.polling else 0.0)
            self.clients[egress] = client
            self.resolvers[egress] = OutcomeResolver(client, self.writer.submit)
            for user in planned.get(egress, []):
                user_clients[user] = client
                user_resolvers[user] = self.resolvers[egress]
                self.egress_of[user] = egress
        self.dexes = DexDirectory(settings.fixed_dexes(), next(iter(self.clients.values())),
                                  settings.trader_dex_refresh_interval)
        self.pipeline = Pipeline(self.writer, self.stats, user_clients, user_resolvers,
                                 dexes=lambda: self.dexes.names, record_orders=settings.trader_orders_ws_enabled,
                                 record_fills=settings.trader_fills_enabled,
                                 record_twaps=settings.trader_twaps_enabled)
        # initial connections are within the cap (at most TRADER_WS_CLIENTS <= 10 per egress);
        # this budget paces reconnects so a flapping server cannot make us exceed it
        reconnects = {egress: WeightBudget(exchange.MAX_NEW_CONNECTIONS_PER_MINUTE - settings.trader_ws_clients)
                      for egress in self.clients}
        if settings.trader_order_updates_enabled and settings.trader_ws_enabled:
            self.pipeline.outcome_grace = OUTCOME_FEED_GRACE_S
        if settings.trader_books_enabled and settings.trader_ws_enabled and self.plan.connections:
            self.pipeline.l2books = Books(watch=lambda coin: self.feeds[0].watch_coin(coin),
                                        unwatch=lambda coin: self.feeds[0].unwatch_coin(coin))
        self.feeds = [
            FeedConnection(
                conn, url=settings.hyperliquid_ws_url, feed=settings.trader_ws_feed, pipeline=self.pipeline,
                stats=self.stats, ping_interval=settings.trader_ws_ping_interval,
                pong_timeout=settings.trader_ws_pong_timeout, reconnect_budget=reconnects[conn.egress],
                dexes=lambda: self.dexes.names, fills=settings.trader_fills_enabled,
                order_updates=settings.trader_order_updates_enabled,
                books=self.pipeline.l2books if i == 0 else None,
            )
            for i, conn in enumerate(self.plan.connections)
        ]
        self.marks = (MarkFeed(settings.hyperliquid_ws_url, self.pipeline.held_coins, self.writer, self.stats,
                               ping_interval=settings.trader_ws_ping_interval, egress=settings.source_addresses()[0])
                      if settings.trader_marks_enabled and settings.trader_ws_enabled else None)
        self.node: NodeSource | None = None
        if settings.node_data_dir is not None:
            resync = (InfoClient(settings.node_info_url, None, NODE_INFO_WEIGHT_PER_MINUTE, self.stats)
                      if settings.node_info_url else None)
            self.node = NodeSource(settings.node_data_dir, self.pipeline, self.stats, start=settings.node_start,
                                   prefer_by_block=settings.node_layout == "by_block", resync_client=resync,
                                   dexes=lambda: self.dexes.names)
        self.pollers: dict[str | None, Poller] = {}
        self.tiers: list[Tiers] = []
        if self.polling:
            for egress, client in self.clients.items():
                poller = Poller(client, self.pipeline, self.stats, min_interval=settings.trader_poll_min_interval,
                                sweep_interval=settings.trader_poll_sweep_interval, dexes=lambda: self.dexes.names)
                self.pollers[egress] = poller
                self.tiers.append(Tiers([f for f in self.feeds if f.plan.egress == egress], poller, self.pipeline,
                                        settings.pinned_traders(), settings.trader_ws_max_users_per_ip))

    def follow_new_dexes(self, dexes: list[str], absent_since: Any) -> None:
        """A dex appeared: subscribe it on every connection and recover, over REST, what its
        orders did since the dex list last lacked it."""
        for feed in self.feeds:
            feed.follow(dexes)
        for user in self.users:
            self.pipeline.open_gap(user, absent_since)

    def _owned(self, watchlist: list[Trader]) -> dict[str, Trader]:
        s = self.settings
        mine = set(owned([t.address for t in watchlist], s.trader_shard_index, s.trader_shard_count))
        return {t.address: t for t in watchlist if t.address in mine}

    @property
    def users(self) -> list[str]:
        """Every trader this instance follows, live or polled (or not at all: over capacity)."""
        return list(self.traders)

    def apply_watchlist(self, watchlist: list[Trader]) -> None:
        """The watch list changed: follow the traders added, let go of those removed, and record
        every label and tag change (``trader_watchlist``)."""
        wanted = self._owned(watchlist)
        for user in [u for u in self.traders if u not in wanted]:
            self.remove_trader(user)
        changed = [t for t in wanted.values() if self.traders.get(t.address) != t]
        for trader in changed:
            if trader.address not in self.traders:
                self.add_trader(trader.address)
        self.traders = wanted
        if changed:
            log.info("event=watchlist_changed traders=%d changed=%d", len(wanted), len(changed))
            self.log_coverage()
        self.writer.submit(watch_ops(changed, watching=True))

    def add_trader(self, user: str) -> None:
        """Follow a trader added while running, once its stored state is loaded (:meth:`_join`)."""
        count: dict[str | None, int] = dict.fromkeys(self.clients, 0)
        for egress in self.egress_of.values():
            count[egress] += 1
        egress = min(count, key=lambda e: count[e])
        self.egress_of[user] = egress
        self.joining[user] = self.pipeline.spawn(self._join(user, egress))

    async def _join(self, user: str, egress: str | None) -> None:
        """Start following ``user`` from what is recorded of it, as a start does: the journal is
        written out, then its stored open orders (with the ``seq`` of their last events),
        positions, gap and newest event are loaded, so that a trader removed and added back
        goes on where its record stops and its gap since then is recovered. Then a free live
        slot on the least busy address, else polling there. A trader never followed has no
        record: its first recovery has no start (every order historicalOrders lists, every fill)."""
        stored = await self._stored_state([user], self.stopping)
        self.joining.pop(user, None)
        if stored is None:
            return
        self.pipeline.follow(user, self.clients[egress], self.resolvers[egress])
        self._load(stored)
        feeds = [f for f in self.feeds if f.plan.egress == egress]
        live = sum(len(f.users) for f in feeds)
        capacity = next((t.capacity for t in self.tiers if t.poller is self.pollers.get(egress)),
                        self.settings.trader_ws_max_users_per_ip)
        self.pipeline.open_gap(user, self.pipeline.last_seen.get(user))
        if self.node is not None:
            self.node.add(user)
        elif feeds and self.settings.trader_ws_enabled and live < capacity:
            min(feeds, key=lambda f: len(f.users)).add_user(user)
        elif egress in self.pollers:
            self.pollers[egress].add(user)
        else:
            self.over_capacity.append(user)
        log.info("event=trader_added user=%s egress=%s open_orders=%d", user, egress or "default",
                 len(stored.open_orders.get(user, [])))

    def remove_trader(self, user: str) -> None:
        """Stop following a trader (its records stay)."""
        joining = self.joining.pop(user, None)
        if joining is not None:
            joining.cancel()
        for feed in self.feeds:
            feed.remove_user(user)
        for poller in self.pollers.values():
            poller.remove(user)
        if user in self.over_capacity:
            self.over_capacity.remove(user)
        self.pipeline.unfollow(user)
        if self.node is not None:
            self.node.remove(user)
        self.egress_of.pop(user, None)
        self.writer.submit(watch_ops([self.traders[user]], watching=False))
        log.info("event=trader_removed user=%s", user)

    @property
    def live_users(self) -> list[str]:
        return [u for feed in self.feeds for u in feed.users]

    def tier_figures(self) -> dict[str, Any]:
        """Per tier: traders and freshness (the polled tier per egress address)."""
        return {
            "live": {"traders": len(self.live_users)},
            "polled": {(e or "default"): p.freshness() for e, p in self.pollers.items()},
        }

    def coverage(self) -> schema.Coverage:
        """What following the list in force means with this instance's addresses (or node), from
        the shared formula Dagster also reports before a list is applied (:func:`schema.coverage`)."""
        s = self.settings
        return schema.coverage(
            len(self.users), addresses=len(self.clients), node=self.node_mode, poll=self.polling,
            users_per_address=s.trader_ws_max_users_per_ip if s.trader_ws_enabled else 0,
            weight_per_minute=s.collector_rest_weight_per_minute, poll_share=s.trader_poll_budget_share,
            min_interval_s=s.trader_poll_min_interval, max_poll_period_s=s.trader_max_poll_period,
        )

    def gauges(self) -> dict[str, Any]:
        """Live values for /metrics."""
        plan = self.coverage()
        return {
            "coverage_live": plan.live,
            "coverage_polled_per_address": plan.polled_per_address,
            "coverage_expected_poll_period_seconds": plan.expected_period_s,
            "coverage_max_poll_period_seconds": plan.max_poll_period_s,
            "coverage_fresh": int(plan.fresh),
            "connections_up": {k: v for k, v in self.stats.connections_up.items()},
            "connections_planned": dict(self.stats.connections_planned),
            "tracked_traders": len(self.users) - len(self.not_followed()),
            "dexes_followed": len(self.dexes.names),
            "traders_over_capacity": len(self.not_followed()),
            "traders_live": len(self.live_users),
            "traders_polled": {(e or "default"): len(p.traders) for e, p in self.pollers.items()},
            "poll_period_median_seconds": self._poll_figure("period_median_s"),
            "poll_period_worst_seconds": self._poll_figure("period_worst_s"),
            "poll_expected_period_seconds": self._poll_figure("expected_period_s"),
            "poll_stalest_snapshot_seconds": self._poll_figure("stalest_snapshot_age_s"),
            "poll_sweep_lag_seconds": self._poll_figure("sweep_lag_s"),
            "open_orders_tracked": self.pipeline.open_orders,
            "journal_pending_ops": self.writer.pending_ops,
            "outcomes_pending": sum(len(r) for r in self.resolvers.values()),
            "recoveries_pending": len(self.pipeline.gaps),
            "rest_budget_remaining": {(e or "default"): round(c.total.remaining, 1) for e, c in self.clients.items()},
            "last_message_age_seconds": self.stats.message_age(),
            **(self._node_gauges() if self.node is not None else {}),
        }

    def _node_gauges(self) -> dict[str, Any]:
        """Per node stream: lag behind the newest line, last block, gaps, stalls (see NodeSource.figures)."""
        assert self.node is not None
        figures = self.node.figures()
        gauges: dict[str, Any] = {f"node_{name}": {kind: f[key] for kind, f in figures.items() if f[key] is not None}
                                  for name, key in NODE_GAUGES.items()}
        gauges["node_traders_resyncing"] = len(self.node.resyncs.waiting)  # their lines wait for a snapshot
        gauges["node_resync_ambiguous"] = self.node.resyncs.ambiguous  # snapshots used though they raced lines
        return gauges

    def _poll_figure(self, name: str) -> dict[str, Any]:
        return {(e or "default"): p.freshness()[name] for e, p in self.pollers.items()}

    def not_followed(self) -> list[str]:
        """Traders followed neither live nor by polling: beyond capacity with polling off, or
        refused by the exchange and not (yet) moved to polling."""
        polled = {u for p in self.pollers.values() for u in p.traders}
        refused = [u for u in self.refused_users() if u not in polled and u not in self.over_capacity]
        return [*self.over_capacity, *refused]

    def refused_users(self) -> list[str]:
        now = time.monotonic()
        return sorted({u for feed in self.feeds for u, until in feed.refused.items() if until > now})

    def health(self) -> dict[str, Any]:
        """The /healthz document."""
        gauges = self.gauges()
        connections = {
            egress: {"up": self.stats.connections_up.get(egress, 0), "planned": planned}
            for egress, planned in self.stats.connections_planned.items()
        }
        all_up = all(c["up"] >= c["planned"] for c in connections.values())
        node = self.node.figures() if self.node is not None else None
        stalled = node is not None and any(f["stalled"] or f["error"] for f in node.values())
        return {
            "ok": all_up and self.writer.last_flush_ok and not stalled,
            "node": node,
            "node_traders_resyncing": len(self.node.resyncs.waiting) if self.node is not None else None,
            "node_resync_ambiguous": self.node.resyncs.ambiguous if self.node is not None else None,
            "connections": connections,
            "tracked_traders": gauges["tracked_traders"],
            "traders_over_capacity": gauges["traders_over_capacity"],
            "over_capacity": self.not_followed(),
            "tiers": self.tier_figures(),
            "coverage": self.coverage().figures(),
            "rest_429": self.stats.rest_errors.get("429", 0),
            "refused_by_exchange": self.refused_users(),
            "watchlist_selection": None if self.watchlist is None or self.watchlist.read_listed is None else {
                "read_ok": self.watchlist.selection_ok, "listed": len(self.watchlist.listed)},
            "open_orders_tracked": gauges["open_orders_tracked"],
            "events_written": dict(self.stats.events_written),
            "events_duplicate": self.stats.events_duplicate,
            "replacements": dict(self.stats.replacements),
            "recoveries_truncated": dict(self.stats.recoveries_truncated),
            "positions_written": self.stats.positions_written,
            "fills_written": self.stats.fills_written,
            "last_message_age_s": gauges["last_message_age_seconds"],
            "buffer_depth": gauges["journal_pending_ops"],
            "last_flush_ok": self.writer.last_flush_ok,
            "outcomes_pending": gauges["outcomes_pending"],
            "recoveries_pending": gauges["recoveries_pending"],
            "rest_budget_left": gauges["rest_budget_remaining"],
            "bad_frames": dict(self.stats.bad_frames),
            "reconnects": dict(self.stats.reconnects),
            "mongo": mask_uri(self.settings.mongo_uri),
            "feed": self.settings.trader_ws_feed,
            "dexes": list(self.dexes.names),
            "books": self.pipeline.l2books.status() if self.pipeline.l2books is not None else None,
        }

    async def _until_database(self, what: str, call: Callable[[], T], stop: asyncio.Event) -> T | None:
        """Run a database call in a thread, retrying with backoff while MongoDB is unreachable."""
        delay = 1.0
        while not stop.is_set():
            try:
                return await asyncio.to_thread(call)
            except Exception as exc:  # also pymongo's KeyError on an auth reply it cannot parse
                log.error("event=mongo_unavailable step=%s error=%r retry_in_s=%.0f", what,
                          describe_error(exc, self.settings.mongo_uri), delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay * random.uniform(0.8, 1.2))
            except TimeoutError:
                pass
            delay = min(delay * 2, 30.0)
        return None

    async def prepare(self, stop: asyncio.Event) -> bool:
        """Indexes, journal replay, then the stored state; False if stopped meanwhile."""
        if await self._until_database("indexes", self.database.ensure_indexes, stop) is None:
            return False
        stored = await self._stored_state(self.users, stop)
        if stored is None:
            return False
        self._load(stored)
        if self.node is not None:
            checkpoints = await self._until_database("node_checkpoints", self.database.node_checkpoints, stop)
            waiting = await self._until_database("node_waiting", self.database.node_waiting, stop)
            if checkpoints is None or waiting is None:
                return False
            self.node.resume(checkpoints)
            self.node.resyncs.reload(waiting)
        log.info("event=state_loaded open_orders=%d unresolved_outcomes=%d traders_with_history=%d gaps_to_recover=%d",
                 self.pipeline.open_orders, len(stored.unresolved), len(stored.last_seen), len(stored.gaps))
        return True

    async def _stored_state(self, users: list[str], stop: asyncio.Event) -> StoredState | None:
        """What MongoDB holds of these traders once the journal is written to it (so it includes
        every operation made so far); None if stopped meanwhile."""
        while not await self.writer.flush():
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
                return None
            except TimeoutError:
                continue

        def load() -> StoredState:
            return StoredState(
                open_orders=self.database.open_orders(users),
                positions={u: self.database.latest_positions(u) for u in users},
                last_seen=self.database.last_seen(users),
                gaps=self.database.pending_recoveries(users),
                unresolved=self.database.unresolved_closes(users),
                newest_fills=self.database.newest_fills(users),
            )

        return await self._until_database("load_state", load, stop)

    def _load(self, stored: StoredState) -> None:
        """Make stored state the starting state of the traders followed (restart reconciliation)."""
        self.pipeline.load(stored.open_orders, stored.positions, stored.last_seen, stored.gaps)
        self.pipeline.fills.load(stored.newest_fills)
        for user, oid in stored.unresolved:
            self.pipeline.resolvers[user].want(user, oid)

    def log_plan(self) -> None:
        s = self.settings
        log.info(
            "event=plan traders=%d live=%d polled=%d connections=%d egresses=%d feed=%s max_users_per_ip=%d "
            "shard=%d/%d",
            len(self.users), len(self.plan.live()), sum(len(u) for u in self.plan.polled.values()),
            len(self.plan.connections), len(self.plan.users_by_egress()), s.trader_ws_feed,
            s.trader_ws_max_users_per_ip, s.trader_shard_index, s.trader_shard_count,
        )
        for egress, users in self.plan.polled.items():
            log.info("event=poll_plan egress=%s polled=%d budget_weight_per_min=%.0f sweep_every_s=%.0f",
                     egress or "default", len(users), self.pollers[egress].budget.limit, s.trader_poll_sweep_interval)
        self.log_coverage()
        if self.over_capacity:
            log.error(
                "event=over_capacity count=%d traders=%s hint=%r", len(self.over_capacity),
                ",".join(self.over_capacity),
                f"one egress address carries at most {s.trader_ws_max_users_per_ip} traders; add "
                "TRADER_WS_SOURCE_ADDRESSES or run more instances with TRADER_SHARD_INDEX/TRADER_SHARD_COUNT",
            )

    def log_coverage(self) -> None:
        """The coverage plan of the list in force; a warning when it is not fresh enough."""
        plan = self.coverage()
        log.log(logging.INFO if plan.fresh else logging.WARNING,
                "event=coverage traders=%d live=%d polled=%d polled_per_address=%d expected_poll_period_s=%s "
                "max_poll_period_s=%s not_followed=%d fresh=%s", plan.traders, plan.live, plan.polled,
                plan.polled_per_address, plan.figures()["expected_period_s"], plan.max_poll_period_s,
                plan.not_followed, plan.fresh)

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set; flush and return the exit code."""
        s = self.settings
        self.stopping = stop
        self.log_plan()
        runner = None
        if s.collector_health_port:
            registry = registry_for(self.stats, self.gauges)
            runner = await start_health_server(s.collector_health_host, s.collector_health_port, self.health,
                                               registry)
            log.info("event=health_listening url=http://%s:%d/healthz", s.collector_health_host,
                     s.collector_health_port)
        tasks: list[asyncio.Task[None]] = []
        try:
            if not await self.prepare(stop):
                return 0
            tasks.append(asyncio.create_task(self.writer.run(), name="writer"))
            if s.collector_journal_fsync_interval > 0:  # appends in a quiet stretch reach the disk too
                tasks.append(asyncio.create_task(_every(s.collector_journal_fsync_interval, self.journal.sync),
                                                 name="journal fsync"))
            if self.dexes.automatic and s.trader_ws_enabled:
                await self.dexes.refresh()  # a failure only delays the HIP-3 dexes: run() retries
            self.dexes.listeners.append(self.follow_new_dexes)
            for egress, users in self.plan.polled.items():
                for user in users:
                    self.pollers[egress].add(user)
            tasks += [asyncio.create_task(p.run(), name=f"poller {e}") for e, p in self.pollers.items()]
            tasks += [asyncio.create_task(t.run(), name="tiers") for t in self.tiers]
            self.writer.submit(watch_ops(list(self.traders.values()), watching=True))
            if self.watchlist is not None:
                tasks.append(asyncio.create_task(self.watchlist.run(), name="watchlist"))
            if self.pipeline.l2books is not None:
                tasks.append(asyncio.create_task(_every(BOOK_SWEEP_S, self.pipeline.l2books.sweep), name="books"))
            if self.dexes.automatic:  # a fixed list (TRADER_DEXES=none or names) has nothing to refresh
                tasks.append(asyncio.create_task(self.dexes.run(), name="dexes"))
            tasks += [asyncio.create_task(r.run(), name="outcomes") for r in self.resolvers.values()]
            if s.trader_ws_enabled:
                tasks += [asyncio.create_task(f.run(), name=f"feed {f.name}") for f in self.feeds]
            if self.marks is not None:
                tasks.append(asyncio.create_task(self.marks.run(), name="marks"))
            if self.node is not None:
                tasks.append(asyncio.create_task(self.node.run(), name="node files"))
                tasks.append(asyncio.create_task(self.node.run_positions(), name="node positions"))
            await _first_of(stop.wait(), tasks)
        finally:
            log.info("event=shutdown_begin pending_ops=%d", self.writer.pending_ops)
            await asyncio.gather(*(asyncio.wait_for(f.close(), 3) for f in self.feeds), return_exceptions=True)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.pipeline.stop()
            flushed = await self.writer.drain(SHUTDOWN_FLUSH_S)
            self.journal.close()
            if self.node is not None:
                self.node.close()
                if self.node.resync_client is not None:
                    await self.node.resync_client.close()
            for client in self.clients.values():
                await client.close()
            if runner is not None:
                await runner.cleanup()
            self.database.close()
            log.info("event=shutdown_done flushed_all=%s written=%s", flushed, dict(self.stats.events_written))
        return 0


async def _every(seconds: float, call: Callable[[], object]) -> None:
    while True:
        await asyncio.sleep(seconds)
        call()


async def _first_of(stop: Awaitable[Any], tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the stop signal; a background task that dies first is a bug: re-raise it."""
    stopper = asyncio.ensure_future(stop)
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if stopper not in done:
        stopper.cancel()
        for task in done:
            task.result()
