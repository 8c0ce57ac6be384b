"""Structured one-line key=value logging, rate-limited per event name for floods."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("exchange_sim")

FLOOD_WINDOW_S = 10.0
FLOOD_MAX_LINES = 20


class EventLog:
    """Writes `event=NAME k=v ...` lines; floods (>20 per 10 s) are summarized."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    def __call__(self, event: str, level: int = logging.INFO, **fields: object) -> None:
        """Log one event with its fields, unless that event is flooding."""
        if not log.isEnabledFor(level):
            return
        now = time.monotonic()
        start, count = self._windows.get(event, (now, 0))
        if now - start > FLOOD_WINDOW_S:
            if count > FLOOD_MAX_LINES:
                log.log(
                    level,
                    "event=%s suppressed=%d window_s=%.0f",
                    event,
                    count - FLOOD_MAX_LINES,
                    FLOOD_WINDOW_S,
                )
            start, count = now, 0
        count += 1
        self._windows[event] = (start, count)
        if count <= FLOOD_MAX_LINES:
            log.log(level, "event=%s %s", event, " ".join(f"{k}={v}" for k, v in fields.items()))


event = EventLog()
