"""TWAP orders as the exchange runs them: slices as fills, state in `twapStates`, a history.

Facts relied on (PROTOCOL.md, SAMPLE-NOTES.md §3, NODE.md §2):

- A TWAP is sliced into one order every 30 seconds for its `minutes` (5 minutes to a day;
  docs.rs `df-hyperliquid-core` `src/trade/orders/twap.rs`: "the venue slices an order into one
  every thirty seconds for 5 minutes to a day"). Slices cross the book: each is a taker fill with
  `twapId` set, `crossed: true` and a hash of 64 zeros, and writes NO order-status line
  (SAMPLE-NOTES §3 "TWAP slices produce no order-status lines").
- TwapState (nktkas `src/api/info/_methods/_base/commonSchemas.ts` TwapStateSchema; the
  node_twap_statuses example in SAMPLE-NOTES §3): `{coin, user, side, sz, executedSz,
  executedNtl, minutes, reduceOnly, randomize, timestamp}`; decimals as strings.
- WS `twapStates` (nktkas `src/api/subscription/_methods/twapStates.ts`): subscribe
  `{"type":"twapStates","user"}`, event `{dex, user, states: [[twapId, TwapState], ...]}`: the
  user's RUNNING TWAPs. webData2 carries the same list as `twapStates` (PROTOCOL.md §1.2).
- Info `twapHistory` (nktkas `src/api/info/_methods/twapHistory.ts`): a list of `{time (SECONDS),
  state, status: {status: "activated"|"finished"|"terminated"} | {status: "error", description},
  twapId}`, one entry per status change (the frontend's TWAP history lists an "Activated" and a
  "Terminated" row of one TWAP). Its order is unverified; the simulator lists oldest first.
- Statuses: activated / finished / terminated / error (node_twap_statuses, SAMPLE-NOTES §3).

Simplifications (unverified details of the real engine): a slice is `remaining / slices left`
rounded to the coin's size decimals (the last takes the rest), filled whole at the mark price;
`randomize` is recorded but slices stay on the 30 s grid; a TWAP ends "finished" at its last
slice, "terminated" when its owner stops it.

Ground truth (`<truth-file>.twaps.jsonl`): one line per status change, shaped as a node's
`node_twap_statuses` event: `{"time": ISO-8601 UTC, "twap_id", "state", "status"}`; the last
line of a twap_id is its end (or its start, if it still runs). `load_twaps` reads it back.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from exchange_sim.exchange import Exchange
from exchange_sim.market import fmt
from exchange_sim.truth import iso_ms, parse_time

SLICE_INTERVAL_MS = 30_000
TWAP_ID_START = 1_790_000  # the size of real twapIds in 2026 samples (SAMPLE-NOTES §3)

ACTIVATED = "activated"
FINISHED = "finished"
TERMINATED = "terminated"


@dataclass
class Twap:
    """One TWAP order and how far it got."""

    twap_id: int
    user: str
    coin: str
    side: str  # "B" / "A"
    sz: Decimal
    minutes: int
    reduce_only: bool
    randomize: bool
    timestamp: int  # start, epoch ms
    executed_sz: Decimal = Decimal(0)
    executed_ntl: Decimal = Decimal(0)
    slices_done: int = 0
    status: str = ACTIVATED
    status_time: int = 0

    @property
    def slices(self) -> int:
        """Number of slices: one per 30 s of its duration."""
        return self.minutes * 60_000 // SLICE_INTERVAL_MS

    def state(self) -> dict[str, Any]:
        """The TwapState object, keys in the order of the node's example."""
        return {
            "coin": self.coin,
            "user": self.user,
            "side": self.side,
            "sz": fmt(self.sz),
            "executedSz": fmt(self.executed_sz),
            "executedNtl": fmt(self.executed_ntl),
            "minutes": self.minutes,
            "reduceOnly": self.reduce_only,
            "randomize": self.randomize,
            "timestamp": self.timestamp,
        }


TwapListener = Callable[[Twap, str, int], None]
"""Called as listener(twap, status, time_ms) at every status change."""


class Twaps:
    """Every TWAP of the exchange; `advance()` runs the slices due at the clock's time."""

    def __init__(self, exchange: Exchange, *, id_start: int = TWAP_ID_START) -> None:
        self.exchange = exchange
        self.by_id: dict[int, Twap] = {}
        self.active: dict[int, Twap] = {}
        self.by_user: dict[str, list[Twap]] = {}
        self.history_rows: dict[str, list[dict[str, Any]]] = {}
        self.listeners: list[TwapListener] = []
        self._next_id = id_start

    def start(
        self,
        user: str,
        coin: str,
        side: str,
        sz: Decimal | str | float,
        minutes: int,
        *,
        reduce_only: bool = False,
        randomize: bool = False,
    ) -> Twap:
        """Start a TWAP now; ValueError for a side, size or duration the exchange refuses."""
        if side not in ("B", "A"):
            raise ValueError(f"side must be 'B' or 'A', not {side!r}")
        if not 5 <= minutes <= 1440:
            raise ValueError(f"a TWAP runs 5 to 1440 minutes, not {minutes}")
        size = Decimal(str(sz))
        if size <= 0:
            raise ValueError(f"TWAP size must be positive, not {sz}")
        self.exchange.market.coin(coin)  # KeyError for an unknown coin
        self._next_id += 1
        user = user.lower()
        now = self.exchange.clock.stamp()
        twap = Twap(self._next_id, user, coin, side, size, minutes, reduce_only, randomize, now, status_time=now)
        self.by_id[twap.twap_id] = self.active[twap.twap_id] = twap
        self.by_user.setdefault(user, []).append(twap)
        self._status(twap, ACTIVATED, now)
        return twap

    def terminate(self, twap_id: int) -> Twap:
        """Stop a running TWAP (its owner cancelled it); ValueError if it is not running."""
        twap = self.active.get(twap_id)
        if twap is None:
            raise ValueError(f"TWAP {twap_id} is not running")
        self._end(twap, TERMINATED, self.exchange.clock.stamp())
        return twap

    def advance(self) -> None:
        """Make every slice due by now, oldest TWAP first."""
        now = self.exchange.clock.now_ms()
        for twap in list(self.active.values()):
            while twap.status == ACTIVATED and twap.timestamp + (twap.slices_done + 1) * SLICE_INTERVAL_MS <= now:
                self._slice(twap)

    def _slice(self, twap: Twap) -> None:
        ex = self.exchange
        coin = ex.market.coin(twap.coin)
        left = twap.slices - twap.slices_done
        remaining = twap.sz - twap.executed_sz
        sz = remaining if left == 1 else min(remaining, ex.market.round_sz(coin, remaining / left))
        twap.slices_done += 1
        if sz > 0:
            fill = ex.twap_slice(twap.user, twap.coin, twap.side, sz, coin.mark_px, twap.twap_id)
            twap.executed_sz += Decimal(fill["sz"])
            twap.executed_ntl += Decimal(fill["sz"]) * Decimal(fill["px"])
        if twap.slices_done >= twap.slices:
            self._end(twap, FINISHED, ex.clock.stamp())

    def _end(self, twap: Twap, status: str, ts: int) -> None:
        del self.active[twap.twap_id]
        self._status(twap, status, ts)

    def _status(self, twap: Twap, status: str, ts: int) -> None:
        twap.status, twap.status_time = status, ts
        self.history_rows.setdefault(twap.user, []).append(
            {"time": ts // 1000, "state": twap.state(), "status": {"status": status}, "twapId": twap.twap_id}
        )
        self.exchange.touch(twap.user)
        for listener in self.listeners:
            listener(twap, status, ts)

    def states(self, user: str) -> list[list[Any]]:
        """The `twapStates` list of a user: `[twapId, TwapState]` of each running TWAP."""
        return [[t.twap_id, t.state()] for t in self.by_user.get(user.lower(), []) if t.status == ACTIVATED]

    def history(self, user: str) -> list[dict[str, Any]]:
        """The `twapHistory` answer: one entry per status change, oldest first."""
        return list(self.history_rows.get(user.lower(), []))


class TwapTraders:
    """Random traders' TWAPs: each trader starts about `per_trader_per_hour` TWAPs an hour, on a
    main-dex perp, worth 2k-50k USD over 5-30 minutes; a fifth are terminated part-way.

    Each trader draws from its own generator, separate from its order actions, so a run without
    TWAPs (the default) makes the same orders as before they existed.
    """

    TERMINATE_SHARE = 0.2

    def __init__(self, twaps: Twaps, addresses: list[str], seed: int, per_trader_per_hour: float) -> None:
        self.twaps = twaps
        self.addresses = addresses
        self.rngs = [random.Random(f"twap:{seed}:{i}") for i in range(len(addresses))]
        self.rate_per_ms = per_trader_per_hour / 3_600_000.0
        self.stop_at: dict[int, int] = {}  # twap_id -> when its owner terminates it

    def tick(self, dt_ms: float) -> None:
        """Start the TWAPs due in the last `dt_ms` and terminate those whose time came."""
        market = self.twaps.exchange.market
        now = self.twaps.exchange.clock.now_ms()
        for twap_id, at in list(self.stop_at.items()):
            if at <= now:
                del self.stop_at[twap_id]
                if twap_id in self.twaps.active:
                    self.twaps.terminate(twap_id)
        if self.rate_per_ms <= 0:
            return
        for address, rng in zip(self.addresses, self.rngs, strict=True):
            if rng.random() >= self.rate_per_ms * dt_ms:
                continue
            coin = market.coins[rng.randrange(min(40, len(market.coins)))]
            notional = Decimal(rng.randint(2_000, 50_000))
            sz = market.round_sz(coin, notional / coin.mark_px)
            if sz <= 0:
                continue
            minutes = rng.randint(5, 30)
            twap = self.twaps.start(address, coin.name, rng.choice("BA"), sz, minutes, randomize=rng.random() < 0.5)
            if rng.random() < self.TERMINATE_SHARE:
                self.stop_at[twap.twap_id] = now + rng.randint(1, minutes * 60_000 - 1)


# ----- ground truth --------------------------------------------------------------------------


def twaps_path_for(truth_file: str | Path) -> Path:
    """The TWAP ground-truth file next to a truth file: `<truth_file>.twaps.jsonl`."""
    return Path(str(truth_file) + ".twaps.jsonl")


class TwapRecorder:
    """Writes every TWAP status change of the tracked users (None: all) as a truth line."""

    def __init__(self, path: Path | None, users: Iterable[str] | None = None) -> None:
        self.users = None if users is None else {u.lower() for u in users}
        self._out: IO[str] | None = open(path, "w") if path else None  # noqa: SIM115
        self.lines = 0

    def on_status(self, twap: Twap, status: str, time_ms: int) -> None:
        """Record one status change (a Twaps listener)."""
        if self.users is not None and twap.user not in self.users:
            return
        self.lines += 1
        if self._out:
            line = {"time": iso_ms(time_ms), "twap_id": twap.twap_id, "state": twap.state(), "status": status}
            self._out.write(json.dumps(line, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        if self._out:
            self._out.flush()

    def close(self) -> None:
        if self._out:
            self._out.close()
            self._out = None


def load_twaps(path: str | Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Each TWAP of a truth file by (user, twapId): its last line (state and status) and the
    time of that status in epoch ms (`statusTime`)."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            key = (str(rec["state"]["user"]).lower(), int(rec["twap_id"]))
            found[key] = {**rec, "statusTime": parse_time(rec["time"])}
    return found
