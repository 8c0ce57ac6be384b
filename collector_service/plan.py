"""Capacity planning: which traders this instance owns, and which connection carries each.

Hyperliquid caps unique tracked users per IP across *all* connections (PROTOCOL.md §0.2), so
opening more sockets buys nothing: capacity is ``max_users_per_ip`` per egress address. Users
are spread over at most ``clients`` connections per egress; those beyond total capacity are
reported, never silently dropped. Pure logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConnectionPlan:
    """One WebSocket connection: where it connects from and whom it subscribes."""

    egress: str | None
    index: int
    users: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.egress or 'default'}#{self.index}"


@dataclass(frozen=True)
class Plan:
    connections: tuple[ConnectionPlan, ...]
    over_capacity: tuple[str, ...] = field(default=())

    def users_by_egress(self) -> dict[str | None, list[str]]:
        found: dict[str | None, list[str]] = {}
        for conn in self.connections:
            found.setdefault(conn.egress, []).extend(conn.users)
        return found


def shard_of(address: str, shard_count: int) -> int:
    """The shard that owns a trader: stable across instances, runs and machines."""
    return int(address[2:], 16) % shard_count


def owned(traders: list[str], shard_index: int, shard_count: int) -> list[str]:
    """The traders this instance tracks when ``shard_count`` instances split the list."""
    return [t for t in traders if shard_of(t, shard_count) == shard_index]


def plan_connections(
    traders: list[str], egresses: list[str | None], *, max_users_per_ip: int, clients: int
) -> Plan:
    """Fill each egress up to its user cap, spreading its users round-robin over its clients."""
    connections = []
    remaining = list(traders)
    for egress in egresses:
        mine, remaining = remaining[:max_users_per_ip], remaining[max_users_per_ip:]
        if not mine:
            break
        n = min(clients, len(mine))
        for index in range(n):
            connections.append(ConnectionPlan(egress, index, tuple(mine[index::n])))
    return Plan(tuple(connections), tuple(remaining))
