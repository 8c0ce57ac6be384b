"""A logical millisecond clock, so seeded runs are reproducible and time can be compressed."""

from __future__ import annotations


class LogicalClock:
    """Simulated exchange time in epoch milliseconds, advanced explicitly by its owner."""

    def __init__(self, start_ms: int) -> None:
        self._now = int(start_ms)
        self._last_stamp = self._now - 1

    def now_ms(self) -> int:
        """The current simulated time."""
        return self._now

    def advance(self, ms: float) -> None:
        """Move simulated time forward by `ms` milliseconds (fractions are dropped)."""
        self._now += max(0, int(ms))

    def stamp(self) -> int:
        """A strictly increasing event time, so two transitions of one order never tie."""
        self._last_stamp = max(self._now, self._last_stamp + 1)
        return self._last_stamp


HOUR_MS = 3_600_000


def before_next_hour(now_ms: int, seconds: float) -> int:
    """The time `seconds` before the first whole UTC hour after `now_ms + seconds`: a clock
    started there crosses an hour boundary (a node-file rotation) after `seconds`."""
    lead = int(seconds * 1000)
    return (now_ms + lead) // HOUR_MS * HOUR_MS + HOUR_MS - lead
