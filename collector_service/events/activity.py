"""How busy each trader is: order events per hour, exponentially decayed (half-life 30 minutes).

The pipeline records every trader's events here; :mod:`collector_service.sources.tiers` reads it
to give the busiest traders the live slots. Pure logic, no I/O.
"""

from __future__ import annotations

import math
import time

HALF_LIFE_S = 1800.0

_DECAY = math.log(2) / HALF_LIFE_S


class Activity:
    """Decayed order events per trader."""

    def __init__(self) -> None:
        self._value: dict[str, tuple[float, float]] = {}  # user -> (decayed count, at)

    def record(self, user: str, events: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        value, at = self._value.get(user, (0.0, now))
        self._value[user] = (value * math.exp(-_DECAY * (now - at)) + events, now)

    def per_hour(self, user: str, now: float | None = None) -> float:
        """Recent events per hour (the decayed count over the decay's mean lifetime)."""
        now = time.monotonic() if now is None else now
        value, at = self._value.get(user, (0.0, now))
        return value * math.exp(-_DECAY * (now - at)) * _DECAY * 3600.0
