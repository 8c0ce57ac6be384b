"""The info (REST) API client, one per egress address, under the exchange's weight budget.

Hyperliquid allows 1200 request weight per minute per IP and answers HTTP 429 past it. Every
call here first takes its weight from a token bucket that refills at that rate; a 429 empties
the bucket so that the client backs off for real instead of hammering the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import msgspec

from collector_service import exchange
from collector_service.metrics import Stats
from collector_service.wire import (
    OrderStatusInner,
    OrderStatusResponse,
    PerpDex,
    historical_orders_decoder,
    order_status_decoder,
    perp_dexs_decoder,
)

log = logging.getLogger(__name__)


class RestError(RuntimeError):
    """An info call failed (network, HTTP status, or a body that is not the expected shape)."""


class TokenBucket:
    """Weight budget refilling continuously at ``per_minute / 60`` per second."""

    def __init__(self, per_minute: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = float(per_minute)
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    @property
    def remaining(self) -> float:
        self._refill()
        return self.tokens

    async def take(self, weight: float) -> None:
        """Wait until ``weight`` is available, then spend it."""
        while True:
            self._refill()
            if self.tokens >= weight:
                self.tokens -= weight
                return
            await asyncio.sleep((weight - self.tokens) / self.rate)

    def charge(self, weight: float) -> None:
        """Spend weight learnt after the fact (per-item extras); may go into debt."""
        self._refill()
        self.tokens -= weight

    def exhaust(self) -> None:
        """The server said 429: treat the budget as spent."""
        self._refill()
        self.tokens = min(self.tokens, 0.0)


class InfoClient:
    """POST ``/info`` from one egress address."""

    def __init__(self, url: str, local_addr: str | None, weight_per_minute: int, stats: Stats) -> None:
        self.url = url
        self.local_addr = local_addr
        self.bucket = TokenBucket(weight_per_minute)
        self.stats = stats
        self._session: aiohttp.ClientSession | None = None

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

    async def post(self, body: dict[str, Any], weight: int) -> bytes:
        """One info call costing ``weight``; raise :class:`RestError` on any failure."""
        kind = str(body.get("type"))
        await self.bucket.take(weight)
        self.stats.rest_calls[kind] += 1
        try:
            async with self._client().post(self.url, json=body) as response:
                payload = await response.read()
                if response.status == 429:
                    self.bucket.exhaust()
                    self.stats.rest_errors["429"] += 1
                    raise RestError(f"{kind}: HTTP 429 (weight budget exceeded), backing off")
                if response.status != 200:
                    self.stats.rest_errors[f"http_{response.status}"] += 1
                    raise RestError(f"{kind}: HTTP {response.status}: {payload[:200]!r}")
                return payload
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.rest_errors["network"] += 1
            raise RestError(f"{kind}: {type(exc).__name__}: {exc}") from exc

    async def order_status(self, user: str, oid: int) -> OrderStatusResponse:
        raw = await self.post({"type": "orderStatus", "user": user, "oid": oid}, exchange.WEIGHT_LIGHT)
        try:
            return order_status_decoder.decode(raw)
        except msgspec.MsgspecError as exc:
            self.stats.rest_errors["bad_body"] += 1
            raise RestError(f"orderStatus: unexpected body: {exc}") from exc

    async def historical_orders(self, user: str) -> tuple[OrderStatusInner, ...]:
        raw = await self.post({"type": "historicalOrders", "user": user}, exchange.WEIGHT_DEFAULT)
        try:
            rows = historical_orders_decoder.decode(raw)
        except msgspec.MsgspecError as exc:
            self.stats.rest_errors["bad_body"] += 1
            raise RestError(f"historicalOrders: unexpected body: {exc}") from exc
        self.bucket.charge(len(rows) // exchange.ITEMS_PER_EXTRA_WEIGHT)
        return rows

    async def perp_dexs(self) -> tuple[PerpDex | None, ...]:
        raw = await self.post({"type": "perpDexs"}, exchange.WEIGHT_DEFAULT)
        try:
            return perp_dexs_decoder.decode(raw)
        except msgspec.MsgspecError as exc:
            self.stats.rest_errors["bad_body"] += 1
            raise RestError(f"perpDexs: unexpected body: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
