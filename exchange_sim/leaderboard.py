"""The public leaderboard document (``GET /Mainnet/leaderboard``, as stats-data.hyperliquid.xyz).

Shape as the real one (../shared/hyperliquid/LEADERBOARD.md): ``{"leaderboardRows": [row, ...]}``,
each row ``{"ethAddress", "accountValue", "windowPerformances": [["day", {"pnl", "roi", "vlm"}],
["week", ...], ["month", ...], ["allTime", ...]], "prize", "displayName"}``, numbers as decimal
strings (``accountValue`` and ``roi`` with 10 decimals, ``pnl`` 6, ``vlm`` 2).

Rows. ``background`` seeded accounts (default ~30k) with heavy-tailed account values and
volumes (log-normal), plus one row per *simulated* trader (the ones the exchange trades for).
Background accounts never look active today by the usual leaderboard test (|day roi| > 0.0001,
|day pnl| / accountValue > 0.001 or day volume > $100k): most have an empty day window, the rest
a small one. A simulated trader's row is a seeded active profile plus what the exchange really
booked for it: its realized PnL (after fees) added to every window's pnl and its fill volume to
every window's vlm, its account value from its clearinghouse. So rules that ask for activity
pick the traders who really trade here.

Changes between snapshots (:meth:`Leaderboard.step`): windows drift (ranks move), some
background accounts vanish and new ones appear. :meth:`truncate_next` cuts the next served
document in half (a broken download), :meth:`limit_next` serves only the first rows of the next
one (a valid but much smaller document).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import orjson

PATH = "/Mainnet/leaderboard"
WINDOWS = ("day", "week", "month", "allTime")
# Each window's volume as a multiple of the day's (a steady trader): 1, 7, 30, and a long history.
_VLM_SPAN = (1.0, 7.0, 30.0, 400.0)


@dataclass
class _Row:
    address: str
    account: float
    pnl: list[float]  # per window, USD
    vlm: list[float]  # per window, USD
    name: str | None
    simulated: bool = False


def _address(seed: int, i: int) -> str:
    return "0x" + hashlib.sha256(f"orderwatch-leaderboard:{seed}:{i}".encode()).hexdigest()[:40]


def _fmt(x: float, places: int) -> str:
    return f"{x:.{places}f}"


class Leaderboard:
    """The simulated leaderboard; ``booked(address) -> (realized PnL, fill volume, account value)``
    reads a simulated trader's real numbers from the exchange at serving time."""

    def __init__(
        self,
        seed: int,
        background: int,
        simulated: list[str],
        booked: Callable[[str], tuple[Decimal, Decimal, Decimal]] | None = None,
    ) -> None:
        self.rng = random.Random(f"leaderboard:{seed}")
        self.seed = seed
        self.booked = booked
        self._next_id = 0
        self.rows: dict[str, _Row] = {}
        for _ in range(background):
            row = self._background()
            self.rows[row.address] = row
        for i, address in enumerate(simulated):
            self.rows[address] = self._active(address, f"sim-{i}")
        self._truncate_next = False
        self._limit_next: int | None = None
        self.served = 0

    # ----- rows ------------------------------------------------------------------------------
    def _background(self) -> _Row:
        rng = self.rng
        address = _address(self.seed, self._next_id)
        self._next_id += 1
        account = math.exp(rng.gauss(8.5, 2.2))  # median ~$5k, a long tail of whales
        month_vlm = account * math.exp(rng.gauss(0.5, 2.0)) if rng.random() < 0.7 else 0.0
        day_vlm = 0.0
        if month_vlm and rng.random() < 0.3:  # a small day: below every "active today" threshold
            day_vlm = min(month_vlm / 30, rng.uniform(0, 90_000))
        vlm = [day_vlm, month_vlm / 4, month_vlm, month_vlm * math.exp(rng.gauss(2.0, 1.0))]
        edge = rng.gauss(0, 0.02)
        pnl = [v * edge for v in vlm]
        pnl[0] = math.copysign(min(abs(pnl[0]), account * 0.00009), pnl[0])  # |day roi| <= 0.0001
        name = f"acct{self._next_id}" if rng.random() < 0.05 else None
        return _Row(address, account, pnl, vlm, name)

    def _active(self, address: str, name: str) -> _Row:
        rng = self.rng
        account = max(20_000.0, math.exp(rng.gauss(12.5, 1.5)))  # median ~$270k
        day_vlm = max(150_000.0, account * math.exp(rng.gauss(1.5, 1.0)))
        vlm = [day_vlm * span * math.exp(rng.gauss(0, 0.2)) for span in _VLM_SPAN]
        edge = rng.gauss(0.002, 0.004)
        pnl = [v * edge for v in vlm]
        return _Row(address, account, pnl, vlm, name, simulated=True)

    # ----- scripting -------------------------------------------------------------------------
    def step(self, *, drift: float = 0.3, churn: float = 0.01) -> None:
        """One refresh: every window's pnl and volume drift (log-normal, ``drift`` sigma on the
        day window, less on longer ones), ``churn`` of the background accounts vanish and as many
        new ones appear."""
        rng = self.rng
        for row in self.rows.values():
            for i, weight in enumerate((1.0, 0.4, 0.15, 0.02)):
                factor = math.exp(rng.gauss(0, drift * weight))
                row.vlm[i] *= factor
                row.pnl[i] = row.pnl[i] * factor + rng.gauss(0, 0.001) * row.vlm[i] * weight
            if not row.simulated:
                row.pnl[0] = math.copysign(min(abs(row.pnl[0]), row.account * 0.00009), row.pnl[0])
                row.vlm[0] = min(row.vlm[0], 90_000.0)
        gone = [a for a, r in self.rows.items() if not r.simulated and rng.random() < churn]
        for address in gone:
            del self.rows[address]
        for _ in gone:
            row = self._background()
            self.rows[row.address] = row

    def vanish(self, addresses: list[str]) -> None:
        """These accounts leave the leaderboard (simulated traders too)."""
        for address in addresses:
            self.rows.pop(address.lower(), None)

    def appear(self, address: str, name: str | None = None) -> None:
        """An active account joins the leaderboard (e.g. a simulated trader added mid-run)."""
        self.rows[address.lower()] = self._active(address.lower(), name or address[:10])

    def truncate_next(self) -> None:
        """The next document served is cut in half (not valid JSON)."""
        self._truncate_next = True

    def limit_next(self, rows: int) -> None:
        """The next document served holds only its first ``rows`` rows (valid JSON)."""
        self._limit_next = rows

    # ----- serving ---------------------------------------------------------------------------
    def _json_row(self, row: _Row) -> dict[str, object]:
        account, pnl, vlm = row.account, list(row.pnl), list(row.vlm)
        if row.simulated and self.booked is not None:
            realized, volume, value = self.booked(row.address)
            pnl = [p + float(realized) for p in pnl]
            vlm = [v + float(volume) for v in vlm]
            account += float(value)
        windows = []
        for i, name in enumerate(WINDOWS):
            base = max(account - pnl[i], account * 0.2, 1.0)  # the window's starting equity
            windows.append([name, {"pnl": _fmt(pnl[i], 6), "roi": _fmt(pnl[i] / base, 10), "vlm": _fmt(vlm[i], 2)}])
        return {
            "ethAddress": row.address,
            "accountValue": _fmt(account, 10),
            "windowPerformances": windows,
            "prize": 0,
            "displayName": row.name,
        }

    def document(self) -> bytes:
        """The JSON document as the next GET serves it (rows by all-time pnl, as the real one)."""
        rows = sorted(self.rows.values(), key=lambda r: -r.pnl[3])
        if self._limit_next is not None:
            rows, self._limit_next = rows[: self._limit_next], None
        body = orjson.dumps({"leaderboardRows": [self._json_row(r) for r in rows]})
        if self._truncate_next:
            body, self._truncate_next = body[: len(body) // 2], False
        self.served += 1
        return body
