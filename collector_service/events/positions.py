"""Position tracking: record a trader's position only when it changes.

``clearinghouseState`` is re-pushed every few seconds with mark-to-market values (PnL, position
value) that move on every push; a position *changes* when its size, entry price or leverage
does. A position that disappears from the snapshot is recorded as closed (``szi == "0.0"``).
Each perp dex has its own clearinghouse state, so a trader has one book per dex. Pure logic, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec
from xxhash import xxh3_128_digest

from collector_service import schema
from collector_service.events.accounts import AccountSeries
from collector_service.events.tracker import ms_to_datetime
from collector_service.events.wire import ClearinghouseState, Position, decode_clearinghouse

CLOSED_SZI = "0.0"


def position_key(position: Position) -> tuple[str, str | None, str | None, int | None]:
    """The fields whose change makes a new ``trader_positions`` document."""
    lev = position.leverage
    return (position.szi, position.entryPx, lev.type if lev else None, lev.value if lev else None)


def position_doc(
    user: str, dex: str, position: Position, *, server_time: datetime, observed_at: datetime, source: str
) -> dict[str, Any]:
    """One ``trader_positions`` document."""
    lev = position.leverage
    return {
        "ethAddress": user,
        "dex": dex,
        "coin": position.coin,
        "szi": position.szi,
        "entryPx": position.entryPx,
        "positionValue": position.positionValue,
        "unrealizedPnl": position.unrealizedPnl,
        "returnOnEquity": position.returnOnEquity,
        "liquidationPx": position.liquidationPx,
        "marginUsed": position.marginUsed,
        "leverageType": lev.type if lev else None,
        "leverage": lev.value if lev else None,
        "maxLeverage": position.maxLeverage,
        "serverTime": server_time,
        "observedAt": observed_at,
        "source": source,
    }


class PositionBook:
    """The positions of one trader on one perp dex, keyed by coin, and when its account was
    last sampled (:class:`~collector_service.events.accounts.AccountSeries`)."""

    __slots__ = ("account", "dex", "digest", "keys", "user")

    def __init__(self, user: str, dex: str = schema.MAIN_DEX) -> None:
        self.user = user
        self.dex = dex
        self.keys: dict[str, tuple[str, str | None, str | None, int | None]] = {}
        self.digest: bytes | None = None
        self.account = AccountSeries()

    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Start from the latest stored document per coin (documents newest first)."""
        for doc in docs:
            coin = doc["coin"]
            if coin in self.keys:
                continue
            self.keys[coin] = (doc["szi"], doc.get("entryPx"), doc.get("leverageType"), doc.get("leverage"))
        self.keys = {coin: key for coin, key in self.keys.items() if key[0] != CLOSED_SZI}

    def apply_raw(
        self, raw: msgspec.Raw | bytes, *, observed_at: datetime, source: str = schema.SOURCE_WS
    ) -> list[dict[str, Any]]:
        """Diff the raw JSON of a clearinghouse snapshot; a byte-identical repeat costs one digest.

        Raises :class:`~collector_service.events.wire.FrameError` when it does not decode.
        """
        state = self.decode_new(raw)
        return [] if state is None else self.apply(state, observed_at=observed_at, source=source)

    def decode_new(self, raw: msgspec.Raw | bytes) -> ClearinghouseState | None:
        """The decoded snapshot, or None when it repeats the previous one byte for byte.

        Raises :class:`~collector_service.events.wire.FrameError` when it does not decode.
        """
        digest = xxh3_128_digest(raw)
        if digest == self.digest:
            return None
        state = decode_clearinghouse(raw)
        self.digest = digest
        return state

    def apply(
        self, state: ClearinghouseState, *, observed_at: datetime, source: str = schema.SOURCE_WS
    ) -> list[dict[str, Any]]:
        """Diff a decoded clearinghouse snapshot against the known positions; return changed ones."""
        server_time = ms_to_datetime(state.time) if state.time is not None else observed_at
        docs = []
        seen = set()
        for asset in state.assetPositions:
            position = asset.position
            seen.add(position.coin)
            key = position_key(position)
            if self.keys.get(position.coin) != key:
                self.keys[position.coin] = key
                docs.append(position_doc(self.user, self.dex, position, server_time=server_time,
                                         observed_at=observed_at, source=source))
        for coin in [coin for coin in self.keys if coin not in seen]:
            del self.keys[coin]
            closed = Position(coin=coin, szi=CLOSED_SZI)
            docs.append(position_doc(self.user, self.dex, closed, server_time=server_time,
                                     observed_at=observed_at, source=source))
        return docs
