"""Mark prices from the public ``activeAssetCtx`` feed: decoding and the write rate limit.

``activeAssetCtx`` is a per-coin public subscription (no user slot, one of the 1000 per-IP
subscriptions, PROTOCOL.md §1.1 and §3.1). Its frame is
``{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{..., "markPx":"…", ...}}}`` with the
perp asset context of webData2's ``assetCtxs`` (§1.2), all decimals as strings and no exchange
time. :class:`MarkBoard` keeps the latest mark per coin and hands out ``market_marks`` documents
at most once per interval per coin (a changed mark), and once per refresh interval for a mark that
did not move (so a reader can tell a quiet coin from a dead feed). Pure logic, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from collector_service.events.wire import ErrorMsg, FrameError, PongMsg, SubscriptionResponseMsg, excerpt

DecimalText = Annotated[str, msgspec.Meta(pattern=r"^[0-9]+(\.[0-9]+)?$", max_length=40)]

CHANNEL: Final = "activeAssetCtx"

MARK_WRITE_S: Final = 5.0
"""At most one ``market_marks`` write per coin in this many seconds while its mark moves."""
MARK_REFRESH_S: Final = 60.0
"""A mark that did not move is written again after this many seconds (``observedAt`` stays fresh)."""


class AssetCtx(msgspec.Struct, frozen=True, gc=False):
    markPx: DecimalText


class ActiveAssetCtxData(msgspec.Struct, frozen=True, gc=False):
    coin: str
    ctx: AssetCtx


class ActiveAssetCtxMsg(msgspec.Struct, frozen=True, tag_field="channel", tag=CHANNEL):
    data: ActiveAssetCtxData


MarkMessage = ActiveAssetCtxMsg | SubscriptionResponseMsg | PongMsg | ErrorMsg

_decoder = msgspec.json.Decoder(MarkMessage)


def decode_mark_frame(raw: bytes | str) -> MarkMessage:
    """Decode one frame of the mark connection, or raise :class:`FrameError` naming the problem."""
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise FrameError("invalid", f"{exc} in frame {excerpt(raw)!r}") from None
    except msgspec.DecodeError as exc:
        raise FrameError("malformed", f"{exc} in frame {excerpt(raw)!r}") from None


class MarkBoard:
    """The latest mark of every coin seen, and when each was last handed out for writing."""

    def __init__(self, write_s: float = MARK_WRITE_S, refresh_s: float = MARK_REFRESH_S) -> None:
        self.write_s = write_s
        self.refresh_s = refresh_s
        self.latest: dict[str, tuple[str, datetime]] = {}  # coin -> (markPx, observed at)
        self.written: dict[str, tuple[str, float]] = {}  # coin -> (markPx, monotonic time written)

    def on_ctx(self, coin: str, mark_px: str, observed_at: datetime) -> None:
        self.latest[coin] = (mark_px, observed_at)

    def due(self, now: float) -> list[dict[str, Any]]:
        """The ``market_marks`` documents to write at monotonic time ``now`` (marks them written)."""
        docs = []
        for coin, (px, observed_at) in self.latest.items():
            last = self.written.get(coin)
            if last is not None:
                last_px, at = last
                if now - at < (self.write_s if px != last_px else self.refresh_s):
                    continue
            self.written[coin] = (px, now)
            docs.append({"_id": coin, "coin": coin, "markPx": px, "at": observed_at, "observedAt": observed_at,
                         "source": "ws"})
        return docs
