"""The polling tier's schedule on simulated time: the real Poller and InfoClient (its weight
budgets) against an info API stand-in answering after a fixed round trip, on an event loop whose
clock jumps to the next timer whenever nothing is ready. Minutes of polling run in about a second
of CPU, and a busy machine cannot stretch them."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import pytest

from collector_service import exchange
from collector_service.metrics import Stats
from collector_service.rest import InfoClient
from collector_service.sources.polling import SWEEP_SHARE, Poller

RTT_S = 0.05
POLL_SHARE = 0.6


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated seconds: a wait for a timer takes no real time."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        real = self._selector.select  # type: ignore[attr-defined]

        def select(timeout: float | None = None) -> Any:
            events = real(0)
            if not events and timeout:
                self.now += timeout
            return events

        self._selector.select = select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self.now


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualLoop]:
    vloop = VirtualLoop()
    monkeypatch.setattr(time, "monotonic", vloop.time)  # the budgets and the poller read this clock
    yield vloop
    vloop.close()


@dataclass
class Request:
    at: float
    body: dict[str, Any]


class Answer:
    status = 200

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def read(self) -> bytes:
        return b'{"status":"unknownOid"}' if self.kind == "orderStatus" else b"[]"


class InfoApi:
    """Stands in for aiohttp's session: records each request as it goes out, answers after RTT_S."""

    closed = False

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.requests: list[Request] = []

    def post(self, url: str, json: dict[str, Any]) -> InfoApi.Call:
        return InfoApi.Call(self, json)

    class Call:
        def __init__(self, api: InfoApi, body: dict[str, Any]) -> None:
            self.api, self.body = api, body

        async def __aenter__(self) -> Answer:
            self.api.requests.append(Request(self.api.clock(), self.body))
            await asyncio.sleep(RTT_S)
            return Answer(self.body["type"])

        async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
            return None


class Pipeline:
    """What the poller asks of the pipeline: no orders anywhere; a sweep asks for historicalOrders
    and the fills of the stretch, as ``Pipeline.recover`` does."""

    record_fills = True
    record_twaps = False

    def __init__(self, client: InfoClient) -> None:
        self.client = client
        self.gaps: dict[str, datetime] = {}
        self.last_seen: dict[str, datetime] = {}
        self.books: dict[Any, Any] = {}
        self.positions: dict[Any, Any] = {}

    def on_orders(self, *args: Any) -> list[dict[str, Any]]:
        return []

    def on_positions(self, *args: Any) -> None:
        return None

    async def recover(self, user: str, since: datetime | None, *, keep_watching: bool = False) -> tuple[Any, ...]:
        rows = await self.client.historical_orders(user)
        await self.client.user_fills_by_time(user, 0)
        return rows


def run_poller(loop: VirtualLoop, traders: int, minutes: float, sweep_interval: float = 600.0,
               lookups_every_s: float = 0.0, late: float | None = None) -> tuple[InfoApi, Poller, list[float]]:
    """Poll ``traders`` on one address at the exchange's budget for ``minutes`` of simulated time;
    with ``lookups_every_s``, an outcome lookup (orderStatus) is asked that often meanwhile, and the
    seconds each waited for budget are returned; ``late``: one more trader (user "0xlate") is added
    this many seconds in."""
    stats = Stats()
    client = InfoClient("http://info", None, exchange.REST_WEIGHT_PER_MINUTE, stats, poll_share=POLL_SHARE)
    api = InfoApi(loop.time)
    client._client = lambda: api  # type: ignore[assignment, method-assign, return-value]
    poller = Poller(client, Pipeline(client), stats, min_interval=2.0, sweep_interval=sweep_interval,  # type: ignore[arg-type]
                    dexes=lambda: [""])
    waits: list[float] = []

    async def lookups() -> None:
        while True:
            await asyncio.sleep(lookups_every_s)
            asked = loop.time()
            await client.order_status("0xlookup", 1)
            waits.append(loop.time() - asked - RTT_S)

    async def main() -> None:
        for i in range(traders):
            poller.add(f"0x{i:040x}")
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(poller.run())]
        if lookups_every_s:
            tasks.append(asyncio.create_task(lookups()))
        if late is not None:
            await asyncio.sleep(late)
            poller.add("0xlate")
        await asyncio.sleep(minutes * 60.0 - (late or 0.0))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    loop.run_until_complete(main())
    return api, poller, waits


def poll_gaps(api: InfoApi, after: float) -> list[float]:
    """Seconds between one trader's successive frontendOpenOrders requests (from ``after`` on)."""
    times: dict[str, list[float]] = defaultdict(list)
    for r in api.requests:
        if r.body["type"] == "frontendOpenOrders":
            times[r.body["user"]].append(r.at)
    return [b - a for ts in times.values() for a, b in itertools.pairwise(ts) if a >= after]


@pytest.mark.parametrize("traders", [30, 90, 490])
def test_polls_are_spread_evenly_over_their_period(loop: VirtualLoop, traders: int) -> None:
    # 30: 40 traders on one address (10 live); 90: 100 on one; 490: 500 on one
    optimum = traders * exchange.WEIGHT_DEFAULT / (exchange.REST_WEIGHT_PER_MINUTE * POLL_SHARE) * 60.0
    api, poller, _ = run_poller(loop, traders, minutes=max(6.0, 5 * optimum / 60))
    gaps = poll_gaps(api, after=1000.0 + 2 * optimum)  # past the first rounds (start-up)
    worst = max(gaps)
    print(f"{traders} polled: optimum {optimum:.1f} s, median gap {statistics.median(gaps):.1f} s, "
          f"worst {worst:.1f} s ({worst / optimum:.2f}x), gaps > 1.5x {sum(g > 1.5 * optimum for g in gaps)}")
    assert worst <= 1.3 * optimum
    # /healthz's worst period is what the exchange saw: polls are timed when their request goes out
    last: dict[str, list[float]] = defaultdict(list)
    for r in api.requests:
        if r.body["type"] == "frontendOpenOrders":
            last[r.body["user"]] = [*last[r.body["user"]][-1:], r.at]
    assert poller.freshness()["period_worst_s"] == round(max(b - a for a, b in last.values()), 1)


def test_sweeps_stay_in_their_share_and_outcome_lookups_get_budget(loop: VirtualLoop) -> None:
    # 490 polled traders, each to be swept every minute: far more than the budget pays
    api, _poller, waits = run_poller(loop, 490, minutes=10, sweep_interval=60.0, lookups_every_s=1.0)
    swept = [r for r in api.requests if r.body["type"] in ("historicalOrders", "userFillsByTime")]
    share = exchange.REST_WEIGHT_PER_MINUTE * (1 - POLL_SHARE) * SWEEP_SHARE
    per_minute = len(swept) * exchange.WEIGHT_DEFAULT / 10
    starts = sorted(r.at for r in swept if r.body["type"] == "historicalOrders")
    spacing = [b - a for a, b in itertools.pairwise(starts)]
    print(f"sweeps {per_minute:.0f} weight/min of {share:.0f}; lookups waited up to {max(waits):.2f} s; "
          f"sweep spacing {min(spacing):.1f}-{max(spacing):.1f} s")
    assert per_minute <= share * 1.05
    assert min(spacing) >= 0.9 * statistics.median(spacing)  # evenly spaced, no bursts
    assert len(waits) > 500 and max(waits) < 1.0  # outcome lookups always found budget


def test_a_trader_new_to_polling_is_swept_as_soon_as_the_share_pays(loop: VirtualLoop) -> None:
    # 30 traders, first swept in turn as the share pays (40 weight: every 10 s), then spread over
    # the 600 s interval (20 s apart); one demoted from a live slot later (its gap to recover)
    # goes next, as soon as the share pays for the last sweep
    added = 1000.0 + 405.0
    api, _, _ = run_poller(loop, 30, minutes=8, late=405.0)
    first = min(r.at for r in api.requests if r.body["type"] == "historicalOrders" and r.body["user"] == "0xlate")
    assert first - added <= 40 / (exchange.REST_WEIGHT_PER_MINUTE * (1 - POLL_SHARE) * SWEEP_SHARE) * 60 + 1


def test_a_stop_that_comes_as_the_poller_is_woken_ends_it(loop: VirtualLoop) -> None:
    # the service stops (cancels the poller) in the loop iteration where a poll ended or a trader
    # was added (the poller's wake-up set): the poller must end, not drop the cancel and go on
    # polling (seen as a collector that did not exit within 40 s of SIGTERM)
    stats = Stats()
    client = InfoClient("http://info", None, exchange.REST_WEIGHT_PER_MINUTE, stats, poll_share=POLL_SHARE)
    client._client = lambda: InfoApi(loop.time)  # type: ignore[assignment, method-assign, return-value]
    poller = Poller(client, Pipeline(client), stats, min_interval=600.0, sweep_interval=600.0,  # type: ignore[arg-type]
                    dexes=lambda: [""])

    async def main() -> bool:
        poller.add(f"0x{1:040x}")
        task = asyncio.create_task(poller.run())
        while not poller.traders[f"0x{1:040x}"].last_done:  # polled once; its next turn is 600 s away
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # waiting for a wake-up or the next turn
        poller.add(f"0x{2:040x}")  # sets the wake-up ...
        task.cancel()  # ... and the stop comes in the same iteration
        done, _ = await asyncio.wait({task}, timeout=30.0)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return bool(done)

    assert loop.run_until_complete(main()), "the poller went on after it was cancelled"
