"""The mark-price connection: one WebSocket holding ``activeAssetCtx`` for every coin a followed
trader has a position in, writing ``market_marks`` through the journal.

It uses no user slot (the subscriptions are public), one WebSocket connection of the per-IP ten
and one subscription per coin held. It connects only while some followed trader holds a position,
follows the held coins as they change (subscribing new ones, unsubscribing coins nobody holds any
more), keeps the connection alive with the exchange's JSON ping, and reconnects with a growing
pause after a failure. A frame it cannot use is counted and logged, never raised; a coin the
exchange refuses to serve is given up (logged once), the others are kept.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake

from collector_service import exchange
from collector_service.events.marks import CHANNEL, ActiveAssetCtxMsg, MarkBoard, decode_mark_frame
from collector_service.events.wire import ErrorMsg, FrameError
from collector_service.logs import RateLimitedLog
from collector_service.metrics import Stats
from collector_service.store import Writer, mark_ops

log = logging.getLogger(__name__)

IDLE_CHECK_S = 1.0
"""How often the held coins are compared with the subscriptions (and marks flushed)."""
RETRY_S = (1.0, 30.0)
"""Pause before reconnecting after a failure: from the first value, doubling up to the second."""


class MarkFeed:
    """Keeps ``activeAssetCtx`` subscribed for ``coins()`` and writes the marks it receives."""

    def __init__(self, url: str, coins: Callable[[], set[str]], writer: Writer, stats: Stats, *,
                 ping_interval: float, egress: str | None = None, board: MarkBoard | None = None) -> None:
        self.url = url
        self.egress = egress
        self.coins = coins
        self.writer = writer
        self.stats = stats
        self.ping_interval = ping_interval
        self.board = board or MarkBoard()
        self.rejected: set[str] = set()
        self.subscribed: set[str] = set()
        self._warn = RateLimitedLog(log)

    async def run(self) -> None:
        """Follow the held coins until cancelled."""
        pause = RETRY_S[0]
        while True:
            if not self.coins() - self.rejected:
                await asyncio.sleep(IDLE_CHECK_S)
                continue
            started = time.monotonic()
            try:
                async with websockets.connect(self.url, local_addr=(self.egress, 0) if self.egress else None,
                                              max_size=exchange.MAX_FRAME_BYTES, ping_interval=None,
                                              compression=None, proxy=None, open_timeout=10,
                                              close_timeout=2) as ws:
                    await self._session(ws)
            except ConnectionClosedOK:
                pass  # closed by us (no position held) or normally by the server: connect again when needed
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                self._warn.log(logging.WARNING, "marks_down", "event=marks_disconnected error=%r retry_in_s=%.0f",
                               f"{type(exc).__name__}: {exc}", pause)
            finally:
                self.subscribed.clear()
            if time.monotonic() - started > RETRY_S[1]:  # a session that lasted: start the backoff over
                pause = RETRY_S[0]
            await asyncio.sleep(pause * random.uniform(1.0, 1.5))
            pause = min(pause * 2, RETRY_S[1])

    async def _session(self, ws: ClientConnection) -> None:
        """Read frames while a second task follows the held coins (no ``wait_for`` around
        ``recv``: on Python 3.11 it can swallow the cancellation that stops the service)."""
        upkeep = asyncio.create_task(self._upkeep(ws))
        try:
            while True:
                self.handle(await ws.recv(decode=False))
        finally:
            upkeep.cancel()
            await asyncio.gather(upkeep, return_exceptions=True)

    async def _upkeep(self, ws: ClientConnection) -> None:
        """Every second: subscribe coins newly held, unsubscribe coins nobody holds, journal the
        marks due, ping when due; close (normally) once no coin is held. A failure closes the
        connection, so that the reader ends and the run loop connects again."""
        try:
            await self._follow(ws)
        except ConnectionClosed:
            return  # the reader sees it too
        except Exception:
            log.exception("event=marks_upkeep_failed note='reconnecting'")
            await ws.close(code=1011, reason="upkeep failed")

    async def _follow(self, ws: ClientConnection) -> None:
        last_ping = time.monotonic()
        while True:
            self.flush()
            wanted = self.coins() - self.rejected
            if not wanted:
                await ws.close(code=1000, reason="no position held")
                return
            for method, coins in (("subscribe", wanted - self.subscribed), ("unsubscribe", self.subscribed - wanted)):
                for coin in sorted(coins):
                    message = {"method": method, "subscription": {"type": CHANNEL, "coin": coin}}
                    await ws.send(msgspec.json.encode(message).decode())
                    (self.subscribed.add if method == "subscribe" else self.subscribed.discard)(coin)
                    await asyncio.sleep(exchange.SUBSCRIBE_PACING_S)
            if time.monotonic() - last_ping >= self.ping_interval:
                last_ping = time.monotonic()
                await ws.send('{"method":"ping"}')
            await asyncio.sleep(IDLE_CHECK_S)

    def handle(self, raw: bytes) -> None:
        """Decode one frame and note its mark; a bad frame is counted and logged."""
        try:
            msg = decode_mark_frame(raw)
        except FrameError as exc:
            self.stats.bad_frames[f"mark_{exc.kind}"] += 1
            self._warn.log(logging.WARNING, f"bad_mark:{exc.kind}", "event=bad_frame conn=marks kind=%s detail=%r",
                           exc.kind, str(exc))
            return
        if isinstance(msg, ActiveAssetCtxMsg):
            self.stats.frames[CHANNEL] += 1
            self.board.on_ctx(msg.data.coin, msg.data.ctx.markPx, datetime.now(UTC))
        elif isinstance(msg, ErrorMsg):
            self._on_error(msg.text)

    def _on_error(self, text: str) -> None:
        """A coin the exchange cannot parse a subscription for (it echoes the request) is given
        up; any other error is logged."""
        if text.startswith(exchange.PARSE_ERROR_PREFIX):
            try:
                request = msgspec.json.decode(text[len(exchange.PARSE_ERROR_PREFIX):].strip())
                coin = str(request["subscription"]["coin"])
            except (msgspec.DecodeError, KeyError, TypeError):
                coin = None
            if coin is not None:
                self.rejected.add(coin)
                self.subscribed.discard(coin)
                log.error("event=mark_rejected coin=%s note='the exchange does not serve its activeAssetCtx; "
                          "no mark for it'", coin)
                return
        self.stats.exchange_errors["marks"] += 1
        self._warn.log(logging.WARNING, "marks_error", "event=exchange_error conn=marks text=%r", text[:300])

    def flush(self) -> None:
        """Journal the marks due for writing."""
        docs = self.board.due(time.monotonic())
        if docs:
            self.writer.submit(mark_ops(docs))
