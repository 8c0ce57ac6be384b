"""The info (REST) API client, one per egress address, under the exchange's weight budget.

Hyperliquid allows 1200 request weight per minute per IP and answers HTTP 429 past it. Every
call here first takes its weight from a sliding one-minute window of that size (the server's own
rule); a 429 pauses the address so that the client backs off for real instead of hammering it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import aiohttp
import msgspec

from collector_service import exchange
from collector_service.events.wire import (
    OrderItems,
    OrderStatusInner,
    OrderStatusResponse,
    PerpDex,
    decode_fill,
    fills_decoder,
    historical_orders_decoder,
    order_items_decoder,
    order_status_decoder,
    perp_dexs_decoder,
)
from collector_service.metrics import Stats

log = logging.getLogger(__name__)
T = TypeVar("T")


WINDOW_S = 60.5
"""The exchange counts weight per minute; half a second more absorbs the trip to its clock."""

EXHAUSTED_PAUSE_S = 5.0
"""After an HTTP 429 nothing is sent on that address for this long."""


class RestError(RuntimeError):
    """An info call failed (network, HTTP status, or a body that is not the expected shape)."""


class WeightBudget:
    """At most ``per_minute`` weight in any 60 seconds: the exchange's own sliding-window rule.

    A token bucket refilling at ``per_minute / 60`` with a full minute's burst can spend almost
    twice the limit in one window (the burst, then the refill) and draws 429s under sustained
    load; counting the window the way the server does spends the whole budget and never more.
    ``parent`` budgets (the address's total, for the polling share) are spent from too.
    """

    def __init__(self, per_minute: float, parent: WeightBudget | None = None) -> None:
        self.limit = float(per_minute)
        self.parent = parent
        self._spent: deque[tuple[float, float]] = deque()  # (monotonic time, weight)
        self._used = 0.0
        self._paused_until = 0.0

    def _trim(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - WINDOW_S:
            self._used -= self._spent.popleft()[1]

    @property
    def remaining(self) -> float:
        """Weight that could be spent right now."""
        self._trim(time.monotonic())
        return max(0.0, self.limit - self._used)

    def _wait_s(self, weight: float) -> float:
        """Seconds until ``weight`` fits (0: now)."""
        now = time.monotonic()
        self._trim(now)
        wait = max(0.0, self._paused_until - now)
        excess = self._used + weight - self.limit
        for at, spent in self._spent:
            if excess <= 0:
                break
            excess -= spent
            wait = max(wait, at + WINDOW_S - now)
        if self.parent is not None:
            wait = max(wait, self.parent._wait_s(weight))
        return wait

    async def take(self, weight: float) -> None:
        """Wait until ``weight`` fits in this window (and the parent's), then spend it."""
        while (wait := self._wait_s(weight)) > 0:
            await asyncio.sleep(wait + 0.01)
        self.charge(weight)

    def charge(self, weight: float) -> None:
        """Spend weight now without waiting (extras learnt after the fact may overdraw)."""
        now = time.monotonic()
        self._spent.append((now, weight))
        self._used += weight
        if self.parent is not None:
            self.parent.charge(weight)

    def exhaust(self) -> None:
        """The server said 429: our view of its window is off; send nothing for a while."""
        self._paused_until = time.monotonic() + EXHAUSTED_PAUSE_S


class InfoClient:
    """POST ``/info`` from one egress address."""

    def __init__(
        self, url: str, local_addr: str | None, weight_per_minute: int, stats: Stats, *, poll_share: float = 0.0
    ) -> None:
        """``poll_share`` of the address's weight per minute is kept for the polling tier
        (:attr:`poll_budget`) while it polls anyone; every other call spends from the rest
        (:attr:`budget`), so neither can starve the other, and together they never exceed the
        exchange's limit."""
        self.url = url
        self.local_addr = local_addr
        self.total = WeightBudget(weight_per_minute)
        self.poll_share = poll_share
        self.budget = WeightBudget(weight_per_minute, parent=self.total)
        self.poll_budget = WeightBudget(weight_per_minute * poll_share, parent=self.total)
        self.stats = stats
        self._session: aiohttp.ClientSession | None = None

    def reserve_for_polling(self, polling: bool) -> None:
        """Keep the polling share only while this address polls someone: otherwise outcomes and
        recoveries may use the whole budget."""
        self.budget.limit = self.total.limit * ((1.0 - self.poll_share) if polling else 1.0)

    @property
    def egress(self) -> str:
        return self.local_addr or "default"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                local_addr=(self.local_addr, 0) if self.local_addr else None, limit=8
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=20, connect=5)
            )
        return self._session

    async def post(self, body: dict[str, Any], weight: int, budget: WeightBudget | None = None, *,
                   paid: bool = False) -> bytes:
        """One info call costing ``weight``, spent from ``budget`` (a share of this address's
        budget) or the address's own, unless the caller ``paid`` it already (to time the call when
        it goes out); raise :class:`RestError` on any failure."""
        kind = str(body.get("type"))
        if not paid:
            await (budget or self.budget).take(weight)
        self.stats.rest_calls[kind] += 1
        try:
            async with self._client().post(self.url, json=body) as response:
                payload = await response.read()
                if response.status == 429:
                    self.total.exhaust()  # every share of this address waits
                    self.stats.rest_errors["429"] += 1
                    raise RestError(f"{kind}: HTTP 429 (weight budget exceeded), backing off")
                if response.status != 200:
                    self.stats.rest_errors[f"http_{response.status}"] += 1
                    raise RestError(f"{kind}: HTTP {response.status}: {payload[:200]!r}")
                return payload
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.rest_errors["network"] += 1
            raise RestError(f"{kind}: {type(exc).__name__}: {exc}") from exc

    async def _call(self, body: dict[str, Any], weight: int, decoder: msgspec.json.Decoder[T], *,
                    budget: WeightBudget | None = None, paid: bool = False, per_item: bool = False) -> T:
        """Post, decode with ``decoder`` (RestError naming the request if the body is not what
        it should be), and charge the per-item weight of list answers."""
        raw = await self.post(body, weight, budget, paid=paid)
        try:
            answer = decoder.decode(raw)
        except msgspec.MsgspecError as exc:
            self.stats.rest_errors["bad_body"] += 1
            raise RestError(f"{body['type']}: unexpected body: {exc}") from exc
        if per_item:
            self.budget.charge(len(answer) // exchange.ITEMS_PER_EXTRA_WEIGHT)  # type: ignore[arg-type]
        return answer

    async def order_status(self, user: str, oid: int) -> OrderStatusResponse:
        return await self._call({"type": "orderStatus", "user": user, "oid": oid}, exchange.WEIGHT_LIGHT,
                                order_status_decoder)

    async def historical_orders(self, user: str) -> tuple[OrderStatusInner, ...]:
        return await self._call({"type": "historicalOrders", "user": user}, exchange.WEIGHT_DEFAULT,
                                historical_orders_decoder, per_item=True)

    async def frontend_open_orders(self, user: str, dex: str, budget: WeightBudget | None = None, *,
                                   paid: bool = False) -> OrderItems:
        """A trader's open orders on one dex, each still raw JSON (the shape the feeds push)."""
        return await self._call({"type": "frontendOpenOrders", "user": user, "dex": dex}, exchange.WEIGHT_DEFAULT,
                                order_items_decoder, budget=budget, paid=paid)

    async def clearinghouse_state(self, user: str, dex: str, budget: WeightBudget | None = None) -> msgspec.Raw:
        """A trader's clearinghouse state on one dex, raw JSON (decoded by the position book)."""
        raw = await self.post({"type": "clearinghouseState", "user": user, "dex": dex}, exchange.WEIGHT_LIGHT,
                              budget)
        return msgspec.Raw(raw)

    async def user_fills_by_time(self, user: str, start_ms: int) -> OrderItems:
        """Up to 2000 fills from ``start_ms`` on (inclusive), oldest first, each raw JSON."""
        return await self._call({"type": "userFillsByTime", "user": user, "startTime": start_ms},
                                exchange.WEIGHT_DEFAULT, fills_decoder, per_item=True)

    async def user_fills_pages(self, user: str, start_ms: int) -> AsyncIterator[OrderItems]:
        """Every fill from ``start_ms`` on, page by page (oldest first; pages may overlap by the
        fills of their boundary millisecond, which the unique index absorbs)."""
        while True:
            page = await self.user_fills_by_time(user, start_ms)
            yield page
            if len(page) < exchange.FILLS_PAGE_MIN:
                return
            last_ms = decode_fill(page[-1])[0].time
            start_ms = last_ms if last_ms > start_ms else start_ms + 1  # 2000 fills in one ms: move on

    async def twap_history(self, user: str) -> OrderItems:
        """Every status change of the trader's TWAPs, each row raw JSON (decoded by events.twaps)."""
        return await self._call({"type": "twapHistory", "user": user}, exchange.WEIGHT_DEFAULT, order_items_decoder,
                                per_item=True)

    async def perp_dexs(self) -> tuple[PerpDex | None, ...]:
        return await self._call({"type": "perpDexs"}, exchange.WEIGHT_DEFAULT, perp_dexs_decoder)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
