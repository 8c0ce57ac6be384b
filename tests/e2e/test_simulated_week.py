"""A simulated week, end to end: the scorecards and the TWAP table against the simulator's truth.

Three traders trade for seven UTC days of the simulator's logical clock: A opens a BTC long, adds
to it (through a modified order filled in two parts), reduces it, flips it into a short, closes it,
opens again and is half stopped out (a stop-loss trigger); B shorts ETH, reduces and closes it with
a loss, runs a TWAP it terminates and closes that short; C buys SOL by a TWAP, adds a large order
and is liquidated when the mark falls. The clock is held and moved by the test a step at a time
(``hold_clock``, ``tick``): each step waits until the collector stored the account sample it makes,
so what is recorded does not depend on a busy machine. Then the daily chain is materialized for
the seven partitions and compared, figure by figure, with a reference computed here from the truth
files alone (fills, order statuses, marks, TWAPs), never by the transforms.

What the truth decides, and what it cannot:

- Every partition: fills, volume, realized PnL, fees, maker share, round trips (count, wins, win
  rate, profit factor, mean and median hold), the window bounds, ``followedSince`` and ``partial``.
- Account figures: the collector samples an account with each position change and at most once a
  minute otherwise, so the value at an arbitrary time is not in the table. Every stored sample is
  checked to be the value the simulator had at its ``serverTime`` (deposit + realized PnL - fees +
  unrealized PnL at the marks of that time), and ``accountValue``, ``maxDrawdown`` and
  ``returnVolatility`` are checked against those true values at the sampled times.
- Order behaviour, positions and marks are stamped with the collector's wall clock
  (``observedAt``; ``market_marks.at``), and ``order_events``, ``order_lifecycles`` (``closedAt``)
  and ``positions_snapshot`` are partitioned by it, while a simulated week passes in under a
  minute. So the simulated week ends on today's UTC date: all those documents land in its last
  partition, where the order figures (orders placed, cancel ratio, modify rate, time to first
  fill), the unrealized PnL and open positions at the week's end are checked; in the six earlier
  partitions they are empty, which is not checked. Leverage is checked only in the last day's
  ``1d`` window (its end-of-day positions; the simulator's setting is min(5, maxLeverage), which
  no truth file records). ``medianDistanceBps`` (distance from the book's mid at placement) is not
  in the truth.
- The last partition is built again as the nightly run builds a day after its end, every mark
  moved past midnight: the unrealized PnL is still the simulator's at the day's end (from the day's
  last account sample, ``unrealizedAsOf`` its time), not the positions' figures as of their last
  change (A: -50 at the stop-loss fill, +150 at the day's end).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pymongo
import pytest

from exchange_sim import ExchangeSim, SimConfig, compare_fills
from exchange_sim.accounts import STARTING_BALANCE
from exchange_sim.config import fills_path_for, marks_path_for
from exchange_sim.fill_truth import load_fills
from exchange_sim.truth import load_marks, parse_time
from exchange_sim.twaps import load_twaps, twaps_path_for
from orderwatch_dagster import assets
from orderwatch_dagster.resources import MongoResource, ParquetStore
from tests.collector.harness import RunningCollector, collector_settings, eventually
from tests.dagster.test_scorecards import BUILT as SCORECARD_CHAIN

BUILT = [*SCORECARD_CHAIN, assets.twap_orders]
WINDOW_DAYS = {"1d": 1, "7d": 7, "30d": 30}
LEVERAGE = 5  # the simulator's leverage setting, min(5, maxLeverage): 5 for BTC, ETH and SOL
Fill = dict[str, Any]


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Week:
    """Moves the held clock step by step and waits until the collector recorded each step."""

    def __init__(self, sim: ExchangeSim, db: pymongo.database.Database, first_day: date) -> None:
        self.sim, self.db, self.first_day = sim, db, first_day
        self.sampled: dict[str, int] = {}

    def ms(self, day: int, clock: str) -> int:
        at = datetime.combine(self.first_day + timedelta(days=day), datetime.strptime(clock, "%H:%M:%S").time(), UTC)
        return int(at.timestamp() * 1000)

    async def step(self, day: int, clock: str, act: Callable[[], object] | None = None,
                   moved: tuple[str, ...] = ()) -> int:
        return await self.step_at(self.ms(day, clock), act, moved)

    async def step_at(self, at_ms: int, act: Callable[[], object] | None = None, moved: tuple[str, ...] = ()) -> int:
        """Move the clock to ``at_ms``, act there, then 1 s on (so every state pushed from now on
        has a time after the step's fills); wait for the account samples due: of the traders whose
        position the step ``moved`` and of those last sampled a minute or more before."""
        assert at_ms >= self.sim.clock.now_ms(), f"the script goes back in time to {utc(at_ms)}"
        self.sim.tick(at_ms - self.sim.clock.now_ms())
        if act is not None:
            act()
        self.sim.tick(1000)
        now = self.sim.clock.now_ms()
        due = [u for u in self.sim.addresses if u in moved or now - self.sampled.get(u, 0) >= 60_000]

        def sampled() -> bool:
            found = {"ethAddress": {"$in": due}, "dex": "", "serverTime": utc(now)}
            return self.db.trader_accounts.count_documents(found) == len(due)

        await eventually(sampled, what=f"account samples at {utc(now)}")
        self.sampled.update(dict.fromkeys(due, now))
        return now

    async def order(self, day: int, clock: str, make: Callable[[], int]) -> int:
        """The order that ``make`` places (or the replacement it makes) at ``day clock``; waits until
        the collector recorded it."""
        oids: list[int] = []
        await self.step(day, clock, lambda: oids.append(make()))
        await eventually(lambda: self.db.trader_orders.count_documents({"oid": oids[0]}), what=f"order {oids[0]}")
        return oids[0]

    async def twap(self, day: int, clock: str, user: str, coin: str, side: str, sz: str, minutes: int,
                   slices: int | None = None) -> int:
        """A TWAP started at ``day clock``, its slices run 30 s apart (``slices`` of them, then
        terminated, or all); waits until the collector stored its end."""
        ids: list[int] = []
        await self.step(day, clock, lambda: ids.append(self.sim.start_twap(user, coin, side, sz, minutes)))
        twap_id = ids[0]
        await eventually(lambda: self.db.trader_twaps.count_documents({"twapId": twap_id}), what=f"TWAP {twap_id}")
        started = self.sim.twap(twap_id).timestamp
        for n in range(1, (slices or minutes * 2) + 1):
            await self.step_at(started + n * 30_000, moved=(user,))
        if slices is not None:
            await self.step_at(started + slices * 30_000 + 10_000, lambda: self.sim.terminate_twap(twap_id))
        ended = {"twapId": twap_id, "status": {"$in": ["finished", "terminated"]}}
        await eventually(lambda: self.db.trader_twaps.count_documents(ended), what=f"TWAP {twap_id}'s end")
        return twap_id


async def run_week(w: Week) -> None:
    """The week's script; each day also has a step at 00:10 and at 23:50 (its open and close)."""
    sim = w.sim
    a, b, c = sim.addresses

    def marks(**pxs: str) -> None:
        for coin, px in pxs.items():
            sim.set_mark(coin, px)

    await w.step(0, "00:10:00", lambda: marks(BTC="100000", ETH="2500", SOL="150"))
    oid = await w.order(0, "02:00:00", lambda: sim.place(a, "BTC", "B", "0.1", "100000"))
    await w.step(0, "03:00:00", lambda: sim.fill(oid), moved=(a,))  # A opens long (maker)
    oid = await w.order(0, "04:00:00", lambda: sim.place(b, "ETH", "A", "2", "2500"))
    await w.step(0, "05:00:00", lambda: sim.fill(oid), moved=(b,))  # B opens short
    await w.step(0, "12:00:00", lambda: marks(BTC="102000"))
    await w.step(0, "20:00:00", lambda: marks(ETH="2450"))
    await w.step(0, "23:50:00")

    await w.step(1, "00:10:00")
    oid = await w.order(1, "02:00:00", lambda: sim.place(a, "BTC", "B", "0.1", "101000"))
    oid = await w.order(1, "03:00:00", lambda: sim.amend(oid, limit_px="100500"))
    await w.step(1, "04:00:00", lambda: sim.fill(oid, "0.04"), moved=(a,))  # A adds, in two fills
    await w.step(1, "05:00:00", lambda: sim.fill(oid), moved=(a,))
    oid = await w.order(1, "06:00:00", lambda: sim.place(b, "ETH", "B", "1", "2450"))
    await w.step(1, "07:00:00", lambda: sim.exchange.fill(oid, crossed=True), moved=(b,))  # B reduces (taker)
    await w.step(1, "10:00:00", lambda: marks(BTC="98000"))
    await w.step(1, "23:50:00")

    await w.step(2, "00:10:00")
    await w.twap(2, "01:00:00", c, "SOL", "B", "20", 5)  # C opens long by TWAP, finished
    oid = await w.order(2, "09:00:00", lambda: sim.place(a, "BTC", "A", "0.05", "99000"))
    await w.step(2, "10:00:00", lambda: sim.fill(oid), moved=(a,))  # A reduces at a loss
    oid = await w.order(2, "14:00:00", lambda: sim.place(a, "BTC", "B", "0.1", "95000"))
    await w.step(2, "16:00:00", lambda: sim.cancel(oid))
    await w.step(2, "23:50:00")

    await w.step(3, "00:10:00")
    oid = await w.order(3, "02:00:00", lambda: sim.place(a, "BTC", "A", "0.35", "101000"))
    await w.step(3, "03:00:00", lambda: sim.fill(oid), moved=(a,))  # A flips long -> short
    await w.step(3, "03:30:00", lambda: marks(BTC="101000"))
    oid = await w.order(3, "08:00:00", lambda: sim.place(b, "ETH", "B", "1", "2560"))
    await w.step(3, "09:00:00", lambda: sim.fill(oid), moved=(b,))  # B closes at a loss
    await w.step(3, "23:50:00")

    await w.step(4, "00:10:00")
    oid = await w.order(4, "02:00:00", lambda: sim.place(c, "SOL", "B", "2000", "150"))
    await w.step(4, "03:00:00", lambda: sim.fill(oid), moved=(c,))  # C adds a lot
    held = sim.exchange.clearinghouse_state(c)["assetPositions"][0]["position"]
    edge = str(Decimal(held["liquidationPx"]) - Decimal("0.5"))
    await w.step(4, "05:00:00", lambda: marks(SOL=edge), moved=(c,))  # C is liquidated
    assert not sim.exchange.user(c).positions
    await w.step(4, "23:50:00")

    await w.step(5, "00:10:00")
    oid = await w.order(5, "02:00:00", lambda: sim.place(a, "BTC", "B", "0.2", "99500"))
    await w.step(5, "04:00:00", lambda: sim.fill(oid), moved=(a,))  # A closes its short
    await w.twap(5, "06:00:00", b, "ETH", "A", "2", 10, slices=5)  # B shorts by TWAP, terminated
    oid = await w.order(5, "10:00:00", lambda: sim.place(b, "ETH", "B", "0.5", "2400"))
    await w.step(5, "11:00:00", lambda: sim.fill(oid), moved=(b,))  # B closes with a win
    await w.step(5, "23:50:00")

    await w.step(6, "00:10:00")
    oid = await w.order(6, "02:00:00", lambda: sim.place(a, "BTC", "B", "0.1", "100000"))
    await w.step(6, "03:00:00", lambda: sim.fill(oid), moved=(a,))  # A opens again
    stop = await w.order(6, "04:00:00", lambda: sim.place(a, "BTC", "A", "0.05", "0", trigger_px="99000", tpsl="sl",
                                                          reduce_only=True))
    oid = await w.order(6, "05:00:00", lambda: sim.place(b, "ETH", "A", "1", "2600"))
    oid = await w.order(6, "06:00:00", lambda: sim.amend(oid, limit_px="2650"))
    await w.step(6, "08:00:00", lambda: sim.cancel(oid))
    await w.step(6, "10:00:00", lambda: (marks(BTC="99000"), sim.trigger(stop)), moved=(a,))  # half stopped out
    await w.step(6, "20:00:00", lambda: marks(BTC="103000"))  # A's open long gains
    await w.step(6, "23:50:00")


# ----- the reference, from the truth files only ----------------------------------------------


def moved_position(held: tuple[Decimal, Decimal], fill: Fill) -> tuple[Decimal, Decimal]:
    """(szi, entry price) after a perp fill: an add averages the entry, a reduce keeps it, a flip
    starts at the fill's price."""
    szi, entry = held
    sz, px = Decimal(fill["sz"]), Decimal(fill["px"])
    signed = sz if fill["side"] == "B" else -sz
    new = szi + signed
    if new == 0:
        return Decimal(0), Decimal(0)
    if szi == 0 or (szi > 0) == (signed > 0):
        return new, (abs(szi) * entry + sz * px) / abs(new)
    return new, (px if (new > 0) != (szi > 0) else entry)


class Truth:
    """The simulator's truth files, and every figure worked out from them."""

    def __init__(self, truth: Path, users: list[str]) -> None:
        self.fills: dict[str, list[Fill]] = {u: [] for u in users}
        for (user, _), fill in load_fills(fills_path_for(truth)).items():
            self.fills[user].append(fill)
        self.marks = load_marks(marks_path_for(truth))
        self.statuses = [json.loads(line) for line in truth.read_text().splitlines()]

    def positions(self, user: str, t: int) -> dict[str, tuple[Decimal, Decimal]]:
        held: dict[str, tuple[Decimal, Decimal]] = defaultdict(lambda: (Decimal(0), Decimal(0)))
        for f in self.fills[user]:
            if f["time"] <= t:
                assert Decimal(f["startPosition"]) == held[f["coin"]][0], f
                held[f["coin"]] = moved_position(held[f["coin"]], f)
        return {coin: p for coin, p in held.items() if p[0] != 0}

    def mark(self, t: int) -> dict[str, Decimal]:
        return {coin: Decimal(px) for at, coin, px in self.marks if at <= t}

    def unrealized(self, user: str, t: int) -> Decimal:
        mark = self.mark(t)
        return sum((szi * (mark[coin] - entry) for coin, (szi, entry) in self.positions(user, t).items()),
                   Decimal(0))

    def notional(self, user: str, t: int) -> Decimal:
        """Total position notional at the marks of time ``t`` (totalNtlPos)."""
        mark = self.mark(t)
        return sum((abs(szi) * mark[coin] for coin, (szi, _) in self.positions(user, t).items()), Decimal(0))

    def account_value(self, user: str, t: int) -> Decimal:
        """Deposit + realized PnL - fees + unrealized PnL at the marks of time ``t``."""
        booked = sum((Decimal(f["closedPnl"]) - Decimal(f["fee"]) for f in self.fills[user] if f["time"] <= t),
                     Decimal(0))
        return STARTING_BALANCE + booked + self.unrealized(user, t)

    def round_trips(self, user: str) -> list[tuple[int, int, Decimal]]:
        """(open time, close time, summed closedPnl) of each closed trip: from flat to flat, a flip
        closing one trip and opening the next."""
        trips, by_coin = [], defaultdict(list)
        for f in self.fills[user]:
            by_coin[f["coin"]].append(f)
        for fills in by_coin.values():
            szi, opened, pnl = Decimal(0), 0, Decimal(0)
            for f in fills:
                new = szi + (Decimal(f["sz"]) if f["side"] == "B" else -Decimal(f["sz"]))
                if szi == 0:
                    opened, pnl = f["time"], Decimal(0)
                pnl += Decimal(f["closedPnl"])
                if szi != 0 and (new == 0 or (new > 0) != (szi > 0)):
                    trips.append((opened, f["time"], pnl))
                    opened, pnl = f["time"], Decimal(0)
                szi = new
        return trips

    def chains(self, user: str) -> list[dict[str, Any]]:
        """Each logical order (amend chain) that rested: placed, its last order's final status,
        modified, and the first fill of any of its orders. An order that never rested (here the
        liquidation) is known to orderwatch only from its fill, and left out as the scorecards'
        order figures leave it out."""
        lines = [s for s in self.statuses if s["user"] == user]
        root: dict[int, int] = {}
        for s in lines:
            oid = s["order"]["oid"]
            root.setdefault(oid, root.get(s.get("replaces", oid), oid))
        first_fill: dict[int, int] = {}
        for f in self.fills[user]:
            first_fill.setdefault(root.get(f["oid"], f["oid"]), f["time"])
        chains: dict[int, dict[str, Any]] = {}
        for s in lines:
            r = root[s["order"]["oid"]]
            chain = chains.setdefault(r, {"placedAt": s["order"]["timestamp"], "oids": set(), "rested": False,
                                          "firstFill": first_fill.get(r)})
            chain["oids"].add(s["order"]["oid"])
            chain["rested"] |= s["status"] == "open"
            chain["status"] = s["status"]
        return [chain for chain in chains.values() if chain["rested"]]


def fill_figures(truth: Truth, user: str, start: int, end: int) -> dict[str, Any]:
    fills = [f for f in truth.fills[user] if start <= f["time"] < end]
    notional = [Decimal(f["px"]) * Decimal(f["sz"]) for f in fills]
    volume = sum(notional, Decimal(0))
    maker = sum((n for n, f in zip(notional, fills, strict=True) if not f["crossed"]), Decimal(0))
    trips = [(c - o, pnl) for o, c, pnl in truth.round_trips(user) if start <= c < end]
    wins = [pnl for _, pnl in trips if pnl > 0]
    losses = [pnl for _, pnl in trips if pnl < 0]
    holds = [hold / 1000 for hold, _ in trips]
    return {
        "fills": len(fills), "volumeUsd": volume, "realizedPnl": sum((Decimal(f["closedPnl"]) for f in fills),
                                                                     Decimal(0)),
        "fees": sum((Decimal(f["fee"]) for f in fills), Decimal(0)), "makerShare": maker / volume if fills else None,
        "roundTrips": len(trips), "wins": len(wins), "winRate": len(wins) / len(trips) if trips else None,
        "profitFactor": sum(wins) / -sum(losses) if losses else None,
        "avgHoldS": statistics.mean(holds) if holds else None,
        "medianHoldS": statistics.median(holds) if holds else None,
    }  # fmt: skip


def account_figures(samples: list[tuple[int, Decimal]], start: int, end: int) -> dict[str, Any]:
    """From the true values at the sampled times, of the whole UTC days the window overlaps."""
    day_ms = 86_400_000
    inside = [(t, v) for t, v in samples if start // day_ms * day_ms <= t < end]
    if not inside:
        return {"accountValue": None, "maxDrawdown": None, "returnVolatility": None}
    peak, drawdown = Decimal(0), Decimal(0)
    for _, v in inside:
        peak = max(peak, v)
        drawdown = max(drawdown, 1 - v / peak)
    closes: dict[int, Decimal] = {}
    for t, v in samples:
        if t < end:
            closes[t // day_ms] = v  # samples are in time order: the day's last wins
    days = sorted(closes)
    first = inside[0][0] // day_ms
    returns = [closes[d] / closes[p] - 1 for p, d in itertools.pairwise(days) if d >= first]
    return {"accountValue": inside[-1][1], "maxDrawdown": drawdown,
            "returnVolatility": statistics.stdev(returns) if len(returns) >= 2 else None}  # fmt: skip


def order_figures(truth: Truth, user: str, start: int, end: int) -> dict[str, Any]:
    chains = [c for c in truth.chains(user) if start <= c["placedAt"] < end]
    to_fill = [(c["firstFill"] - c["placedAt"]) / 1000 for c in chains if c["firstFill"] is not None]
    return {
        "ordersPlaced": len(chains),
        "cancelRatio": sum(c["status"] == "canceled" for c in chains) / len(chains) if chains else None,
        "modifyRate": sum(len(c["oids"]) > 1 for c in chains) / len(chains) if chains else None,
        "medianTimeToFirstFillS": statistics.median(to_fill) if to_fill else None,
    }


def same(actual: object, expected: object) -> bool:
    if expected is None or actual is None:
        return actual is expected
    if isinstance(expected, Decimal | float):
        return float(actual) == pytest.approx(float(expected), rel=1e-9, abs=1e-6)  # type: ignore[arg-type]
    return actual == expected


# ----- the test ------------------------------------------------------------------------------


async def record_week(tmp_path: Path, mongo_uri: str, db: pymongo.database.Database, first_day: date,
                      start_ms: int) -> list[str]:
    """The simulator runs the week with the collector recording it; returns the traders."""
    config = SimConfig(traders=3, push_interval=0.2, truth_file=tmp_path / "truth.jsonl", start_time_ms=start_ms,
                       hip3_dexes=False)
    async with ExchangeSim(config) as sim:
        sim.hold_clock(True)
        users = sim.addresses
        settings = collector_settings(sim, mongo_uri, db.name, tmp_path / "c", users)
        async with RunningCollector(settings) as run:
            await eventually(lambda: all(sim.subscribers(u) for u in users), timeout=30, what="traders subscribed")
            first = {"dex": "", "serverTime": utc(start_ms)}
            await eventually(lambda: db.trader_accounts.count_documents(first) == len(users), what="first samples")
            week = Week(sim, db, first_day)
            week.sampled = dict.fromkeys(users, start_ms)
            await run_week(week)
            unresolved = {"action": "closed", "finalStatus": "unknown"}
            await eventually(lambda: compare_fills(db.trader_fills, config.truth_file, users=users).ok
                             and db.trader_orders.count_documents(unresolved) == 0
                             and run.service.writer.pending_ops == 0, timeout=30, what="every fill and order stored")
            await eventually(lambda: (db.market_marks.find_one({"_id": "BTC"}) or {}).get("markPx") == "103000.0",
                             timeout=30, what="the last BTC mark stored")
    return users


@pytest.mark.slow
def test_a_simulated_weeks_scorecards_and_twaps_equal_the_simulators_truth(
    tmp_path: Path, mongo_uri: str, mongo_db: pymongo.database.Database
) -> None:
    db = mongo_db
    last_day = datetime.now(UTC).date()  # observedAt-stamped documents all land on it (see above)
    first_day = last_day - timedelta(days=6)
    start_ms = int(datetime.combine(first_day, datetime.min.time(), UTC).timestamp() * 1000) + 5 * 60_000
    truth_file = tmp_path / "truth.jsonl"
    users = asyncio.run(record_week(tmp_path, mongo_uri, db, first_day, start_ms))
    if datetime.now(UTC).date() != last_day:
        pytest.skip("the run crossed midnight UTC: its wall-clock-stamped documents are on two days")

    store = ParquetStore(data_dir=str(tmp_path / "data"))
    resources = {"mongo_db": MongoResource(uri=mongo_uri, database=db.name), "store": store}
    days = [(first_day + timedelta(days=n)).isoformat() for n in range(7)]
    for day in days:
        with dg.DagsterInstance.ephemeral() as instance:
            assert dg.materialize(BUILT, partition_key=day, resources=resources, instance=instance).success, day

    truth = Truth(truth_file, users)
    samples: dict[str, list[tuple[int, Decimal]]] = {}
    for user in users:
        docs = list(db.trader_accounts.find({"ethAddress": user, "dex": ""}).sort("serverTime", 1))
        samples[user] = [(int(d["serverTime"].timestamp() * 1000), Decimal(d["accountValue"])) for d in docs]
        for doc, (t, value) in zip(docs, samples[user], strict=True):  # each sampled value is one the simulator had
            assert abs(value - truth.account_value(user, t)) <= Decimal("0.000001"), (user, utc(t))
            assert Decimal(doc["totalNtlPos"]) == truth.notional(user, t), (user, utc(t))
    assert {user: samples[user][0][0] for user in users} == dict.fromkeys(users, start_ms)
    for day in days:  # the account days: the day's samples as open / high / low / close
        rows = {r["ethAddress"]: r for r in store.read("trader_account_days", day).iter_rows(named=True)}
        assert set(rows) == set(users) and {r["dex"] for r in rows.values()} == {""}, day
        for user, row in rows.items():
            times = [t for t, _ in samples[user] if utc(t).date().isoformat() == day]
            values = [truth.account_value(user, t) for t in times]
            expected = {"samples": len(times), "firstAt": utc(times[0]), "lastAt": utc(times[-1]),
                        "openValue": values[0], "highValue": max(values), "lowValue": min(values),
                        "closeValue": values[-1], "closeNtlPos": truth.notional(user, times[-1]),
                        "maxDrawdown": account_figures(list(zip(times, values, strict=True)), times[0],
                                                       times[-1] + 1)["maxDrawdown"]}  # fmt: skip
            wrong = {k: (row[k], v) for k, v in expected.items() if not same(row[k], v)}
            assert not wrong, (day, user, wrong)

    for day in days:
        cards = store.read("trader_scorecards", day)
        assert sorted(cards["ethAddress"].unique()) == sorted(users), day
        end = int((datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)).timestamp() * 1000)
        for row in cards.iter_rows(named=True):
            user, window = row["ethAddress"], row["window"]
            start = end - WINDOW_DAYS[window] * 86_400_000 if window in WINDOW_DAYS else start_ms
            expected: dict[str, Any] = {
                "windowStart": utc(start), "windowEnd": utc(end), "followedSince": utc(start_ms),
                "partial": start_ms > start,
                **fill_figures(truth, user, start, end), **account_figures(samples[user], start, end),
            }  # fmt: skip
            if day == days[-1]:  # where the wall-clock-stamped documents are (see the docstring)
                held = truth.positions(user, end)
                expected |= order_figures(truth, user, start, end) | {
                    "unrealizedPnl": truth.unrealized(user, end), "openPositions": len(held)}
                if window == "1d":
                    expected |= {"leverageAvg": LEVERAGE if held else None, "leverageMax": LEVERAGE if held else None}
            wrong = {k: (row[k], v) for k, v in expected.items() if not same(row[k], v)}
            assert not wrong, (day, user, window, wrong)

    # The nightly run builds the last day after its end, when every mark in market_marks was served
    # later: the open positions are then valued at the day's last account sample, as of its time.
    for mark in list(db.market_marks.find()):  # replaced whole: nx-27017 stores $set datetimes as text
        db.market_marks.replace_one({"_id": mark["_id"]}, mark | {"at": utc(end) + timedelta(minutes=1)})
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize([assets.trader_scorecards], partition_key=days[-1], resources=resources,
                              instance=instance).success  # fmt: skip
    for row in store.read("trader_scorecards", days[-1]).iter_rows(named=True):
        user = row["ethAddress"]
        last_sample = utc(max(t for t, _ in samples[user] if t < end)) if truth.positions(user, end) else None
        assert same(row["unrealizedPnl"], truth.unrealized(user, end)), (user, row["window"], row["unrealizedPnl"])
        assert row["unrealizedAsOf"] == last_sample, (user, row["window"])

    # the week did what its script says
    a, b, c = users
    assert [len(truth.round_trips(u)) for u in users] == [2, 2, 1]
    assert any(f.get("liquidation") for f in truth.fills[c])
    assert truth.positions(a, end) and not truth.positions(b, end) and not truth.positions(c, end)

    truth_twaps = load_twaps(twaps_path_for(truth_file))
    assert {line["status"] for line in truth_twaps.values()} == {"finished", "terminated"}
    for day in days:
        table = store.read("twaps", day)
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        ran = {key for key, line in truth_twaps.items()
               if utc(line["state"]["timestamp"]) < start + timedelta(days=1) and utc(line["statusTime"]) >= start}
        rows = {(r["ethAddress"], r["twapId"]): r for r in table.iter_rows(named=True)}
        assert set(rows) == ran, day
        for key in ran:
            row, line, state = rows[key], truth_twaps[key], truth_twaps[key]["state"]
            executed_sz, executed_ntl = Decimal(state["executedSz"]), Decimal(state["executedNtl"])
            assert (row["status"], row["side"], row["coin"], row["minutes"]) == (
                line["status"], state["side"], state["coin"], state["minutes"]), key
            assert (row["sz"], row["executedSz"], row["executedNtl"]) == (
                Decimal(state["sz"]), executed_sz, executed_ntl), key
            assert row["avgPx"] == pytest.approx(float(executed_ntl / executed_sz), rel=1e-12), key
            assert row["startedAt"] == utc(state["timestamp"]), key
            assert row["endedAt"] == utc(line["statusTime"] // 1000 * 1000), key  # whole seconds
            assert row["slices"] == sum(1 for f in truth.fills[key[0]] if f["twapId"] == key[1]), key
    assert parse_time(max(s["time"] for s in truth.statuses)) < end
