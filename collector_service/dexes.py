"""Which perp dexes the collector follows: the first (main) dex always, plus HIP-3 dexes.

Hyperliquid serves a trader's orders and positions per perp dex: the main dex (``dex: ""``,
which also carries spot orders) and each builder-deployed HIP-3 dex (``dex: "xyz"``, coins
``"xyz:TSLA"``), each needing its own ``openOrders`` / ``clearinghouseState`` subscription
(PROTOCOL.md §1.4). With ``TRADER_DEXES=all`` the list comes from the info API's ``perpDexs``
and is refreshed periodically, so a dex deployed while the collector runs is followed without a
restart; listeners hear of each new dex with the time it was last known absent (the start of
the stretch nobody watched it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from collector_service import schema
from collector_service.events.wire import OrderStatusInner
from collector_service.rest import InfoClient, RestError

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE_S = 30.0
"""A failed refresh is retried this soon, not after the full interval."""

NewDexListener = Callable[[list[str], datetime | None], None]
"""Called with the newly followed dexes and when the list last lacked them (None: never fetched)."""


def rows_on(rows: tuple[OrderStatusInner, ...], dexes: Collection[str]) -> tuple[OrderStatusInner, ...]:
    """The ``historicalOrders`` rows of orders on these dexes (the answer lists every dex's)."""
    return tuple(row for row in rows if schema.dex_of(row.order.coin) in dexes)


def fills_on(docs: list[dict[str, Any]], dexes: Collection[str]) -> list[dict[str, Any]]:
    """The fill or TWAP documents of these dexes (``userFills``, ``userFillsByTime`` and ``twapHistory`` list
    every dex's)."""
    return [doc for doc in docs if doc["dex"] in dexes]


class DexDirectory:
    """The dexes followed now; :meth:`run` keeps the list current when it comes from the exchange."""

    def __init__(self, fixed: list[str] | None, client: InfoClient, refresh_interval: float) -> None:
        """``fixed``: follow exactly the main dex and these HIP-3 dexes; None: every dex listed."""
        self.client = client
        self.refresh_interval = refresh_interval
        self.automatic = fixed is None
        self.names: list[str] = [schema.MAIN_DEX, *(fixed or [])]
        self.checked_at: datetime | None = None
        self.listeners: list[NewDexListener] = []

    async def refresh(self) -> bool:
        """Fetch ``perpDexs`` once and follow any dex not followed yet; False if the call failed."""
        try:
            listed = await self.client.perp_dexs()
        except RestError as exc:
            log.warning("event=dex_list_failed error=%r retry_in_s=%.0f", str(exc), RETRY_AFTER_FAILURE_S)
            return False
        since, self.checked_at = self.checked_at, datetime.now(UTC)
        new = [d.name for d in listed if d is not None and d.name and d.name not in self.names]
        if new:
            self.names += new
            log.info("event=dexes_followed new=%s all=%s", ",".join(new), ",".join(n or '""' for n in self.names))
            for listener in self.listeners:
                listener(new, since)
        return True

    async def run(self) -> None:
        """After the first :meth:`refresh`, refresh every ``refresh_interval`` seconds (sooner
        after a failure), until cancelled."""
        if not self.automatic:
            return
        ok = self.checked_at is not None
        while True:
            await asyncio.sleep(self.refresh_interval if ok else RETRY_AFTER_FAILURE_S)
            ok = await self.refresh()
