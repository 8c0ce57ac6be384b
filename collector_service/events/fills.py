"""Fills: what each order of a followed trader actually traded, at what price and fee.

The ``userFills`` feed starts with a snapshot of the trader's recent fills (sent again on every
reconnect), then pushes each new fill; ``userFillsByTime`` over REST fills the gaps after a
reconnect or restart and serves polled traders (PROTOCOL.md §1.6). Every copy ends as one
document per ``(ethAddress, oid, tid)`` with every key the exchange sent; the unique index drops
re-deliveries, and a snapshot's fills older than the newest one stored (less a margin) are not
even written again. Pure logic, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec

from collector_service import schema
from collector_service.events.tracker import ms_to_datetime
from collector_service.events.wire import FrameError, decode_fill

SNAPSHOT_MARGIN = timedelta(seconds=60)
"""Snapshot fills this close to the newest stored one are written anyway (the index dedupes)."""


def fill_doc(user: str, raw: msgspec.Raw, *, source: str, observed_at: datetime) -> dict[str, Any]:
    """One ``trader_fills`` document; :class:`~collector_service.events.wire.FrameError` if it is not a fill."""
    fill, doc = decode_fill(raw)
    doc.pop("_id", None)
    doc.update(ethAddress=user, dex=schema.dex_of(fill.coin), time=ms_to_datetime(fill.time), source=source,
               observedAt=observed_at)
    return doc


class FillLedger:
    """Per trader, the time of the newest fill stored, so that a snapshot skips the old ones."""

    def __init__(self) -> None:
        self.newest: dict[str, datetime] = {}

    def load(self, newest: Mapping[str, datetime]) -> None:
        self.newest.update(newest)

    def docs(self, user: str, raws: Iterable[msgspec.Raw], *, source: str, observed_at: datetime,
             snapshot: bool = False) -> tuple[list[dict[str, Any]], list[FrameError]]:
        """Documents for these fills (a snapshot's old fills left out), and the errors of those
        that are not fills (one bad fill does not cost the others)."""
        known = self.newest.get(user)
        cutoff = known - SNAPSHOT_MARGIN if snapshot and known is not None else None
        docs, bad = [], []
        for raw in raws:
            try:
                doc = fill_doc(user, raw, source=source, observed_at=observed_at)
            except FrameError as exc:
                bad.append(exc)
                continue
            if cutoff is None or doc["time"] >= cutoff:
                docs.append(doc)
        for doc in docs:
            if known is None or doc["time"] > known:
                known = doc["time"]
        if known is not None:
            self.newest[user] = known
        return docs, bad
