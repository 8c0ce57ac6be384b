"""Soak chaos shared by the WebSocket and node soaks: the watch list changing at runtime.

Traders are removed from ``TRADER_ADDRESSES_FILE`` and added back a few seconds later while the
collector runs (and is killed), as the selection of traders to follow will do; what they did
while not followed must still be recorded, and their open orders must go on from their stored
rows (:func:`wrong_sizes` checks those against the exchange's at the end).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pymongo

from exchange_sim import ExchangeSim

WATCH_INTERVAL_S = 0.5  # TRADER_WATCH_INTERVAL of the soaked collector


@dataclass
class ListChanges:
    """Remove a random listed trader every ``every`` seconds on average and list it again after
    ``away`` seconds (uniform); the file is replaced whole, as an editor saves it."""

    path: Path
    users: list[str]
    rng: random.Random
    every: float
    away: tuple[float, float] = (1.0, 6.0)
    removed: int = 0
    readded: int = 0
    most_away: int = 0  # the most traders off the list at one time
    back_at: dict[str, float] = field(default_factory=dict)  # removed trader -> when it is listed again

    def write(self) -> None:
        listed = [u for u in self.users if u not in self.back_at]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(f"{u}\n" for u in listed))
        os.replace(tmp, self.path)

    async def run(self) -> None:
        """Change the list until cancelled."""
        next_removal = time.monotonic() + self.rng.expovariate(1 / self.every)
        while True:
            now = time.monotonic()
            back = [u for u, at in self.back_at.items() if at <= now]
            for user in back:
                del self.back_at[user]
            self.readded += len(back)
            changed = bool(back)
            if now >= next_removal:
                user = self.rng.choice([u for u in self.users if u not in self.back_at])
                self.back_at[user] = now + self.rng.uniform(*self.away)
                self.removed += 1
                self.most_away = max(self.most_away, len(self.back_at))
                changed = True
                next_removal = now + self.rng.expovariate(1 / self.every)
            if changed:
                self.write()
            await asyncio.sleep(0.05)

    def restore(self) -> None:
        """List every trader again (the run is over)."""
        self.readded += len(self.back_at)
        self.back_at.clear()
        self.write()

    def figures(self) -> str:
        return f"list_removals={self.removed} list_readds={self.readded} list_most_away={self.most_away}"


def wrong_sizes(
    open_orders: pymongo.collection.Collection, sim: ExchangeSim, users: list[str]
) -> list[tuple[str, int, str | None, str]]:
    """``(trader, oid, stored, exchange)`` for each order resting on the exchange whose
    ``trader_open_orders`` row is missing or has another size."""
    rows = open_orders.find({"ethAddress": {"$in": users}}, {"ethAddress": 1, "oid": 1, "sz": 1})
    stored = {(d["ethAddress"], int(d["oid"])): d["sz"] for d in rows}
    wrong = []
    for user in users:
        for order in sim.exchange.open_orders(user):
            got = stored.get((user, order.oid))
            if order.is_open and (got is None or Decimal(got) != order.sz):
                wrong.append((user, order.oid, got, str(order.sz)))
    return wrong
