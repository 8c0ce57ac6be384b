"""``backfill``: store every order ``historicalOrders``, every fill ``userFillsByTime`` and every
TWAP status change ``twapHistory`` still list for the configured traders, on the perp dexes
``TRADER_DEXES`` follows.

Closed orders become a ``new`` and a ``closed`` event, open ones a ``new`` event, all with
``source: "rest"`` (TWAP status changes as the collector's recoveries store them); events already
stored are skipped by the unique index, so running it again, or while a collector runs, adds
nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from collector_service import schema
from collector_service.config import Settings
from collector_service.dexes import fills_on, rows_on
from collector_service.events.fills import FillLedger
from collector_service.events.tracker import build_event, link, ms_to_datetime
from collector_service.events.twaps import history_docs
from collector_service.journal import Journal
from collector_service.metrics import Stats
from collector_service.outcomes import OPEN_STATUSES, latest_by_oid
from collector_service.pipeline import recovered_events, replacements_in_history
from collector_service.plan import owned
from collector_service.rest import InfoClient, RestError
from collector_service.store import Database, Writer, fill_ops, journal_folder, link_op, order_ops, twap_ops

log = logging.getLogger(__name__)


async def run_backfill(settings: Settings) -> int:
    """Fetch and store; return the number of traders whose history could not be fetched."""
    stats = Stats()
    traders = owned(settings.all_traders(), settings.trader_shard_index, settings.trader_shard_count)
    egresses = settings.source_addresses()
    clients = [InfoClient(settings.hyperliquid_info_url, e, settings.collector_rest_weight_per_minute, stats)
               for e in egresses]
    database = Database(settings.mongo_uri, settings.mongo_db)
    await asyncio.to_thread(database.ensure_indexes)
    writer = Writer(database, Journal(journal_folder(settings.collector_data_dir, settings.trader_shard_index)),
                    stats, flush_interval=settings.trader_orders_ws_flush_interval,
                    flush_threshold=settings.trader_ws_message_buffer_size)
    failed = 0
    ledger = FillLedger()
    fixed = settings.fixed_dexes()
    everything = fixed is None  # TRADER_DEXES=all: every dex the answers list
    followed = [schema.MAIN_DEX, *(fixed or [])]

    async def one(user: str, client: InfoClient) -> None:
        nonlocal failed
        try:
            rows = await client.historical_orders(user)
            if not everything:
                rows = rows_on(rows, followed)
        except RestError as exc:
            failed += 1
            log.error("event=backfill_failed user=%s error=%r", user, str(exc))
            return
        now = datetime.now(UTC)
        latest = latest_by_oid(rows)
        news: dict[int, dict[str, Any]] = {}
        closes: dict[int, dict[str, Any]] = {}
        for oid, row in latest.items():
            if row.status in OPEN_STATUSES:
                news[oid] = build_event(user, row.order, schema.ACTION_NEW, 0, dex=schema.dex_of(row.order.coin),
                                        source=schema.SOURCE_REST, observed_at=ms_to_datetime(row.order.timestamp),
                                        server_time=None)
                news[oid]["recoveredAt"] = now
            else:
                news[oid], closes[oid] = recovered_events(user, row, now)
        links = []
        for old, new, match in replacements_in_history(latest):
            link(closes.get(old), news.get(new), old, new, match)
            links.append(link_op(user, old, new, match))  # events a collector stored already get it too
        events = [*news.values(), *closes.values()]
        writer.submit(order_ops(events) + links)
        if settings.trader_fills_enabled:
            try:
                async for page in client.user_fills_pages(user, 0):
                    docs, bad = ledger.docs(user, page, source=schema.SOURCE_REST, observed_at=now)
                    if not everything:
                        docs = fills_on(docs, followed)
                    writer.submit(fill_ops(docs))
                    if bad:
                        log.warning("event=bad_fill user=%s count=%d detail=%r", user, len(bad), str(bad[0]))
            except RestError as exc:
                failed += 1
                log.error("event=backfill_fills_failed user=%s error=%r", user, str(exc))
        twaps = 0
        if settings.trader_twaps_enabled:
            try:
                docs, bad = history_docs(user, await client.twap_history(user), now)
            except RestError as exc:
                failed += 1
                log.error("event=backfill_twaps_failed user=%s error=%r", user, str(exc))
            else:
                docs = docs if everything else fills_on(docs, followed)
                writer.submit(twap_ops(docs))
                twaps = len(docs)
                if bad:
                    log.warning("event=bad_twap user=%s count=%d detail=%r", user, len(bad), str(bad[0]))
        log.info("event=backfill_user user=%s orders=%d events=%d replacements=%d twap_statuses=%d", user, len(rows),
                 len(events), len(links), twaps)

    try:
        await asyncio.gather(*(one(user, clients[i % len(clients)]) for i, user in enumerate(traders)))
        await writer.drain(60.0)
    finally:
        writer.journal.close()
        for client in clients:
            await client.close()
        database.close()
    log.info("event=backfill_done traders=%d failed=%d written=%s duplicates=%d", len(traders), failed,
             dict(stats.events_written), stats.events_duplicate)
    return failed
