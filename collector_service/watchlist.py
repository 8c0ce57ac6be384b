"""A watch list that changes while the collector runs.

``TRADER_ADDRESSES_FILE`` is checked every ``TRADER_WATCH_INTERVAL`` seconds; when it changed
(modification time or size), it is read again and the service follows the traders added, lets go
of those removed and records labels and tags. A file that does not read or parse (a half-written
save, a bad address) is reported and the list in force stays as it was until the file is right.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from collector_service.config import ConfigError, Settings, Trader

log = logging.getLogger(__name__)


class Watchlist:
    """Re-reads the watch list file when it changes and hands the new list over."""

    def __init__(self, settings: Settings, on_change: Callable[[list[Trader]], None]) -> None:
        assert settings.trader_addresses_file is not None
        self.settings = settings
        self.path = settings.trader_addresses_file
        self.on_change = on_change
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def check(self) -> bool:
        """Read the file if it changed; True if a new list was handed over."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        try:
            traders = self.settings.watchlist()
        except ConfigError as exc:
            log.error("event=watchlist_invalid error=%r note='the list in force stays until the file is fixed'",
                      str(exc))
            return False
        finally:
            self._seen = stamp
        self.on_change(traders)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.trader_watch_interval)
            self.check()
