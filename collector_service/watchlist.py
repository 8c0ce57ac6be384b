"""A watch list that changes while the collector runs.

``TRADER_ADDRESSES_FILE`` is checked every ``TRADER_WATCH_INTERVAL`` seconds; when it changed
(modification time or size), it is read again and the service follows the traders added, lets go
of those removed and records labels and tags. A file that does not read or parse (a half-written
save, a bad address) is reported and the list in force stays as it was until the file is right.

With ``TRADER_WATCHLIST_SELECTION`` the pins and the selection Dagster writes into
``trader_watchlist`` (origin ``pin`` or ``selection``, :data:`schema.WATCHLIST`) are read at the
same pace and followed too: manual list ∪ pins ∪ selection, a manual entry keeping its label and
tags. A read that fails is reported and the list in force stays; a document that does not hold a
trader is reported and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from collector_service import schema
from collector_service.config import ConfigError, Settings, Trader, parse_address
from collector_service.logs import RateLimitedLog

log = logging.getLogger(__name__)


def listed_trader(doc: Mapping[str, Any]) -> Trader:
    """A pin or selection document of ``trader_watchlist`` as a trader (ValueError naming the
    document and the problem)."""
    where = f"trader_watchlist document {doc.get('_id')!r}"
    address = doc.get("ethAddress", doc.get("_id"))
    if not isinstance(address, str):
        raise ValueError(f"{where}: ethAddress {address!r} is not a trader address")
    label, tags, origin = doc.get("label"), doc.get("tags") or [], doc.get("origin")
    if label is not None and not isinstance(label, str):
        raise ValueError(f"{where}: label {label!r} is not a string")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"{where}: tags {tags!r} is not a list of strings")
    if origin not in schema.LISTED_ORIGINS:
        raise ValueError(f"{where}: origin {origin!r} is not one of {', '.join(schema.LISTED_ORIGINS)}")
    return Trader(parse_address(address, where), label or None, tuple(dict.fromkeys(tags)), origin)


def union(manual: Iterable[Trader], listed: Iterable[Trader]) -> list[Trader]:
    """Manual list ∪ pins ∪ selection, in that order: an address keeps its first entry (a manual
    one its label and tags; a pin over a selection)."""
    found: dict[str, Trader] = {}
    ranked = sorted(listed, key=lambda t: schema.LISTED_ORIGINS.index(t.origin))
    for trader in (*manual, *ranked):
        found.setdefault(trader.address, trader)
    return list(found.values())


class Watchlist:
    """Re-reads the watch list file (and the selection) when it changes and hands the new list over."""

    def __init__(self, settings: Settings, on_change: Callable[[list[Trader]], None],
                 read_listed: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        self.settings = settings
        self.path = settings.trader_addresses_file
        self.on_change = on_change
        self.read_listed = read_listed
        self._seen = self._stamp()  # before the first read: a change made meanwhile is seen
        self.manual = settings.watchlist()
        self.listed: list[Trader] = []
        self.selection_ok = True
        """False while the last read of the selection failed (the list in force stays)."""
        self._errors = RateLimitedLog(log, interval=60.0)

    @property
    def traders(self) -> list[Trader]:
        """The list in force: manual ∪ pins ∪ selection."""
        return union(self.manual, self.listed)

    def _stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def file_changed(self) -> bool:
        """Read the file if it changed; True if it gave a new manual list."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        try:
            self.manual = self.settings.watchlist()
        except ConfigError as exc:
            log.error("event=watchlist_invalid error=%r note='the list in force stays until the file is fixed'",
                      str(exc))
            return False
        finally:
            self._seen = stamp
        return True

    async def selection_changed(self) -> bool:
        """Read the pins and the selection from MongoDB; True if they changed."""
        assert self.read_listed is not None
        try:
            docs = await asyncio.to_thread(self.read_listed)
        except Exception as exc:  # any failure: keep following the list in force
            self.selection_ok = False
            self._errors.log(logging.ERROR, "selection",
                             "event=watchlist_selection_unavailable error=%r note='the list in force stays'",
                             f"{type(exc).__name__}: {exc}")
            return False
        self.selection_ok = True
        listed = []
        for doc in docs:
            try:
                listed.append(listed_trader(doc))
            except ValueError as exc:
                self._errors.log(logging.ERROR, f"bad {doc.get('_id')!r}",
                                 "event=watchlist_selection_bad_document error=%r note='skipped'", str(exc))
        changed = listed != self.listed
        self.listed = listed
        return changed

    async def check(self) -> bool:
        """Hand the list over if the file or the selection changed; True if it did."""
        changed = self.file_changed()
        if self.read_listed is not None and await self.selection_changed():
            changed = True
        if changed:
            self.on_change(self.traders)
        return changed

    async def run(self) -> None:
        """Check now (the selection is followed from the start), then every TRADER_WATCH_INTERVAL."""
        while True:
            await self.check()
            await asyncio.sleep(self.settings.trader_watch_interval)
