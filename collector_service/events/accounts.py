"""Account samples: a trader's account value series per perp dex, from ``clearinghouseState``.

Every clearinghouse snapshot the collector sees (the ``clearinghouseState`` feed, webData2's
embedded state, a polled or node-refreshed state) passes here after the position diff. A sample
is taken with every position change, and otherwise when at least ``schema.ACCOUNT_SAMPLE_S`` of
exchange time passed since the last one: a busy account re-pushed every few seconds makes about
one document a minute, not fifteen. Samples are dated by the snapshot's exchange clock (``time``)
and stored by ``(ethAddress, dex, serverTime)`` (a unique index): a journal replay writes the same
documents again in the same order, leaving the same rows. Pure logic, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector_service import schema
from collector_service.events.tracker import ms_to_datetime
from collector_service.events.wire import ClearinghouseState


class AccountSeries:
    """When the account of one trader on one dex was last sampled (exchange milliseconds)."""

    __slots__ = ("interval_ms", "last_ms")

    def __init__(self, interval_s: float = schema.ACCOUNT_SAMPLE_S) -> None:
        self.interval_ms = round(interval_s * 1000)
        self.last_ms: int | None = None

    def sample(
        self, user: str, dex: str, state: ClearinghouseState, *, changed: bool, observed_at: datetime, source: str
    ) -> dict[str, Any] | None:
        """The ``trader_accounts`` document of this snapshot, or None when none is due: no margin
        summary, a snapshot older than the last sample, or no position change and less than the
        interval since the last sample. A position change stamped with the last sample's exchange
        time (two states in one exchange millisecond, or one simulator tick) is sampled again: the
        store replaces that time's document with the later state."""
        summary = state.marginSummary
        if summary is None:
            return None
        at_ms = state.time if state.time is not None else round(observed_at.timestamp() * 1000)
        last = self.last_ms
        if last is not None and (at_ms < last or (not changed and at_ms - last < self.interval_ms)):
            return None
        self.last_ms = at_ms
        return {
            "ethAddress": user,
            "dex": dex,
            "accountValue": summary.accountValue,
            "totalNtlPos": summary.totalNtlPos,
            "totalRawUsd": summary.totalRawUsd,
            "totalMarginUsed": summary.totalMarginUsed,
            "crossMaintenanceMarginUsed": state.crossMaintenanceMarginUsed,
            "withdrawable": state.withdrawable,
            "positionChanged": changed,
            "serverTime": ms_to_datetime(at_ms),
            "observedAt": observed_at,
            "source": source,
        }
