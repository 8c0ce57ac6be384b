"""Structured logging: one ``key=value`` line per event, and rate limiting for floods."""

from __future__ import annotations

import logging
import sys
import time


def setup_logging(level: str) -> None:
    """Log to stderr as ``time level logger key=value ...`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class RateLimitedLog:
    """Log a recurring event at most once per ``interval`` seconds per key, then say how many
    were suppressed in between, so that a flood (bad frames, a database refusing writes) stays
    readable without hiding that it goes on."""

    def __init__(self, logger: logging.Logger, interval: float = 30.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " suppressed_since_last=%d"
            args = (*args, suppressed)
        self.logger.log(level, message, *args)
