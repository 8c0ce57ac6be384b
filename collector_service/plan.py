"""Capacity planning: which traders this instance owns, and how each is followed.

Hyperliquid caps unique tracked users per IP across *all* connections (PROTOCOL.md §0.2), so
opening more sockets buys nothing: live (WebSocket) capacity is ``max_users_per_ip`` per egress
address. Live users are spread over at most ``clients`` connections per egress; pinned traders
get live slots first. Traders beyond the live capacity are polled over the info API, spread over
the egress addresses (each has its own REST budget); with polling off they are reported, never
silently dropped. Which traders are live changes while running (the busiest get the slots, see
:mod:`collector_service.sources.tiers`); this module makes the starting plan. Pure logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REFUSED_RETRY_S = 300.0
"""Traders the exchange refused are tried again only this long after (never in a tight loop)."""


@dataclass(frozen=True)
class ConnectionPlan:
    """One WebSocket connection: where it connects from and whom it subscribes at first."""

    egress: str | None
    index: int
    users: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.egress or 'default'}#{self.index}"


@dataclass(frozen=True)
class Plan:
    connections: tuple[ConnectionPlan, ...]
    polled: dict[str | None, tuple[str, ...]] = field(default_factory=dict)
    """Traders followed by polling, by egress address."""
    over_capacity: tuple[str, ...] = field(default=())
    """Traders not followed at all (only when polling is off)."""

    def users_by_egress(self) -> dict[str | None, list[str]]:
        """Every followed trader (live or polled) by the egress address that serves it."""
        found: dict[str | None, list[str]] = {}
        for conn in self.connections:
            found.setdefault(conn.egress, []).extend(conn.users)
        for egress, users in self.polled.items():
            found.setdefault(egress, []).extend(users)
        return found

    def live(self) -> list[str]:
        return [u for conn in self.connections for u in conn.users]


def shard_of(address: str, shard_count: int) -> int:
    """The shard that owns a trader: stable across instances, runs and machines."""
    return int(address[2:], 16) % shard_count


def owned(traders: list[str], shard_index: int, shard_count: int) -> list[str]:
    """The traders this instance tracks when ``shard_count`` instances split the list."""
    return [t for t in traders if shard_of(t, shard_count) == shard_index]


def plan_connections(
    traders: list[str],
    egresses: list[str | None],
    *,
    max_users_per_ip: int,
    clients: int,
    pinned: list[str] | tuple[str, ...] = (),
    poll: bool = False,
) -> Plan:
    """Fill each egress up to its user cap (pinned traders first), spreading its users
    round-robin over its clients; poll the rest round-robin over the egresses, or report them.
    Every egress gets at least one connection, ready for traders added while running."""
    first = [t for t in pinned if t in set(traders)]
    remaining = first + [t for t in traders if t not in set(first)]
    connections = []
    for egress in egresses:
        mine, remaining = remaining[:max_users_per_ip], remaining[max_users_per_ip:]
        n = max(1, min(clients, len(mine)))  # an address without traders yet keeps one connection for those added
        for index in range(n):
            connections.append(ConnectionPlan(egress, index, tuple(mine[index::n])))
    if not poll:
        return Plan(tuple(connections), {}, tuple(remaining))
    polled = {egress: tuple(remaining[i :: len(egresses)]) for i, egress in enumerate(egresses)}
    return Plan(tuple(connections), {e: users for e, users in polled.items() if users})
