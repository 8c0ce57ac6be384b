"""Per-source-IP accounting of the exchange's caps: connections, users, subscriptions, rates."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 60.0


class SlidingWindow:
    """A sum of weights over the last 60 seconds."""

    def __init__(self) -> None:
        self._events: deque[tuple[float, int]] = deque()
        self.total = 0

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - WINDOW_S:
            self.total -= self._events.popleft()[1]

    def used(self, now: float) -> int:
        """The weight spent in the window ending now."""
        self._trim(now)
        return self.total

    def add(self, now: float, weight: int = 1) -> None:
        """Spend `weight` at time `now`."""
        self._trim(now)
        self._events.append((now, weight))
        self.total += weight


@dataclass
class IpState:
    """What one source IP holds: open connections, subscribed users, message and REST budgets."""

    connections: int = 0
    subscriptions: int = 0
    users: dict[str, int] = field(default_factory=dict)  # user -> number of user subscriptions
    messages: SlidingWindow = field(default_factory=SlidingWindow)
    rest_weight: SlidingWindow = field(default_factory=SlidingWindow)
    new_connections: SlidingWindow = field(default_factory=SlidingWindow)

    def add_user(self, user: str) -> None:
        """Count one more user-specific subscription of `user`."""
        self.users[user] = self.users.get(user, 0) + 1

    def remove_user(self, user: str) -> None:
        """Release one user-specific subscription of `user`; the slot frees at zero."""
        n = self.users.get(user, 0) - 1
        if n <= 0:
            self.users.pop(user, None)
        else:
            self.users[user] = n
