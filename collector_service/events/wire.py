"""Typed decoding of Hyperliquid WebSocket frames and info responses.

The decoders read only the fields the collector needs: a ``webData2`` frame is ~100 KB, almost
all market data (``meta``, ``assetCtxs``, ``spotAssetCtxs``) that msgspec skips without building
Python objects for it. Unknown keys are ignored everywhere, and every field that older or newer
captures may lack has a default, so schema drift does not break parsing; a field of the wrong
type rejects the frame with a message that says where.

The per-user payloads stay :class:`msgspec.Raw` in a decoded frame (each open order on its own,
and the clearinghouse state): most pushes repeat the previous state byte for byte, and the
trackers recognise that from digests of those bytes before paying for a typed decode
(:func:`decode_order`, :func:`decode_clearinghouse`).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

EpochMs = Annotated[int, msgspec.Meta(ge=0, lt=253_402_300_800_000)]
"""Exchange milliseconds since the epoch that a datetime can hold (before year 10000): a value
outside that range rejects the frame instead of raising later when the diff builds its dates."""

Id = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
"""An oid or tid: real ones are ~1e11 and ~1e15. A negative one, or one BSON cannot hold (it has
no unsigned 64-bit int), rejects the frame at the parser, before it reaches a book or the journal,
whose encoding would otherwise raise and stop the collector."""

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""Any other integer that is stored: what BSON can hold."""


class FrontendOrder(msgspec.Struct, frozen=True, gc=False):
    """One open order as ``frontendOpenOrders`` / ``openOrders`` / ``webData2`` serve it."""

    coin: str
    side: str
    limitPx: str
    sz: str
    oid: Id
    timestamp: EpochMs
    origSz: str | None = None
    triggerPx: str | None = None
    isTrigger: bool = False
    reduceOnly: bool = False
    isPositionTpsl: bool = False
    orderType: str | None = None
    tif: str | None = None
    triggerCondition: str | None = None
    cloid: str | None = None
    children: tuple[FrontendOrder, ...] = ()


class Leverage(msgspec.Struct, frozen=True, gc=False):
    type: str = "cross"
    value: Int64 = 0


class Position(msgspec.Struct, frozen=True, gc=False):
    coin: str
    szi: str
    entryPx: str | None = None
    positionValue: str | None = None
    unrealizedPnl: str | None = None
    returnOnEquity: str | None = None
    liquidationPx: str | None = None
    marginUsed: str | None = None
    leverage: Leverage | None = None
    maxLeverage: Int64 | None = None


class AssetPosition(msgspec.Struct, frozen=True, gc=False):
    position: Position


class MarginSummary(msgspec.Struct, frozen=True, gc=False):
    """``marginSummary`` (cross and isolated together), exact decimal strings as served."""

    accountValue: str
    totalNtlPos: str | None = None
    totalRawUsd: str | None = None
    totalMarginUsed: str | None = None


class ClearinghouseState(msgspec.Struct, frozen=True, gc=False):
    assetPositions: tuple[AssetPosition, ...] = ()
    time: EpochMs | None = None
    marginSummary: MarginSummary | None = None
    crossMaintenanceMarginUsed: str | None = None
    withdrawable: str | None = None


NULL = msgspec.Raw(b"null")


OrderItems = tuple[msgspec.Raw, ...]
"""A snapshot's open orders, each still raw JSON."""

order_items_decoder = msgspec.json.Decoder(OrderItems)
"""A ``frontendOpenOrders`` answer: the same orders a feed pushes, each kept raw."""


class OpenOrdersData(msgspec.Struct, frozen=True):
    user: str
    orders: OrderItems
    dex: str = ""


class ClearinghouseData(msgspec.Struct, frozen=True):
    user: str
    clearinghouseState: msgspec.Raw
    dex: str = ""


class WebData2Data(msgspec.Struct, frozen=True):
    user: str
    openOrders: OrderItems = ()
    clearinghouseState: msgspec.Raw = NULL
    serverTime: EpochMs | None = None
    twapStates: OrderItems = ()  # [twapId, TwapState] pairs, decoded by events.twaps


class OpenOrdersMsg(msgspec.Struct, frozen=True, tag_field="channel", tag="openOrders"):
    data: OpenOrdersData


class ClearinghouseMsg(msgspec.Struct, frozen=True, tag_field="channel", tag="clearinghouseState"):
    data: ClearinghouseData


class WebData2Msg(msgspec.Struct, frozen=True, tag_field="channel", tag="webData2"):
    data: WebData2Data


class UserFillsData(msgspec.Struct, frozen=True):
    user: str
    fills: OrderItems = ()  # each fill still raw JSON: it is stored with every key it has
    isSnapshot: bool = False  # true on the first frame; absent later (measured, PROTOCOL.md §1.6)


class UserFillsMsg(msgspec.Struct, frozen=True, tag_field="channel", tag="userFills"):
    data: UserFillsData


class TwapStatesData(msgspec.Struct, frozen=True):
    user: str
    states: OrderItems = ()  # [twapId, TwapState] pairs, decoded by events.twaps
    dex: str = ""


class TwapStatesMsg(msgspec.Struct, frozen=True, tag_field="channel", tag="twapStates"):
    data: TwapStatesData


class OrderStatusInner(msgspec.Struct, frozen=True, gc=False):
    order: FrontendOrder
    status: str
    statusTimestamp: EpochMs


class OrderUpdatesMsg(msgspec.Struct, frozen=True, tag_field="channel", tag="orderUpdates"):
    data: tuple[OrderStatusInner, ...]  # no user: attributed by oid (PROTOCOL.md §1.6)


class L2BookMsg(msgspec.Struct, frozen=True, tag_field="channel", tag="l2Book"):
    data: msgspec.Raw  # decoded by collector_service.events.books


class SubscriptionResponseMsg(
    msgspec.Struct, frozen=True, tag_field="channel", tag="subscriptionResponse"
):
    data: dict[str, Any]


class PongMsg(msgspec.Struct, frozen=True, tag_field="channel", tag="pong"):
    pass


class ErrorMsg(msgspec.Struct, frozen=True, tag_field="channel", tag="error"):
    data: Any = None

    @property
    def text(self) -> str:
        return self.data if isinstance(self.data, str) else msgspec.json.encode(self.data).decode()


Message = (
    OpenOrdersMsg | ClearinghouseMsg | WebData2Msg | UserFillsMsg | TwapStatesMsg | OrderUpdatesMsg | L2BookMsg
    | SubscriptionResponseMsg | PongMsg | ErrorMsg
)


class _Envelope(msgspec.Struct):
    channel: str


class FrameError(ValueError):
    """A frame could not be used. ``kind`` is ``non_json``, ``malformed``, ``invalid`` or
    ``unknown_channel``; the message carries enough of the frame to debug it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_message_decoder = msgspec.json.Decoder(Message)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_order_decoder = msgspec.json.Decoder(FrontendOrder)
_orders_decoder = msgspec.json.Decoder(tuple[FrontendOrder, ...])
_clearinghouse_decoder = msgspec.json.Decoder(ClearinghouseState)


def excerpt(raw: bytes | str, limit: int = 160) -> str:
    """A short, printable start of a frame for log lines."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text[:limit] + ("…" if len(text) > limit else "")


def decode_frame(raw: bytes | str) -> Message:
    """Decode one WebSocket frame, or raise :class:`FrameError` saying what is wrong with it."""
    try:
        return _message_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        try:
            channel = _envelope_decoder.decode(raw).channel
        except (msgspec.ValidationError, msgspec.DecodeError):
            channel = None
        if channel is not None and str(exc).endswith("`$.channel`"):
            raise FrameError("unknown_channel", f"unhandled channel {channel!r}") from None
        raise FrameError(
            "invalid", f"channel {channel!r}: {exc} in frame {excerpt(raw)!r}"
        ) from None
    except msgspec.DecodeError as exc:
        stripped = raw.lstrip()[:1]
        kind = "malformed" if stripped in (b"{", b"[", "{", "[") else "non_json"
        raise FrameError(kind, f"{exc} in frame {excerpt(raw)!r}") from None


def decode_order(raw: msgspec.Raw) -> FrontendOrder:
    """Decode one open order of a frame, or raise :class:`FrameError` (``invalid``)."""
    try:
        return _order_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise FrameError("invalid", f"openOrders: {exc} in {excerpt(bytes(raw))!r}") from None


def decode_orders(items: OrderItems | list[msgspec.Raw]) -> tuple[FrontendOrder, ...]:
    """Decode these open orders of a frame (see :func:`decode_order`), in one decoder call: the
    per-call cost is most of decoding one order."""
    try:
        return _orders_decoder.decode(b"[" + b",".join(items) + b"]")
    except msgspec.MsgspecError:
        return tuple(decode_order(item) for item in items)  # raises, naming the order at fault


def decode_clearinghouse(raw: msgspec.Raw | bytes) -> ClearinghouseState:
    """Decode a trader's clearinghouse state, or raise :class:`FrameError` (``invalid``)."""
    try:
        return _clearinghouse_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise FrameError("invalid", f"clearinghouseState: {exc} in {excerpt(bytes(raw))!r}") from None


class OrderStatusResponse(msgspec.Struct, frozen=True, gc=False):
    status: str
    order: OrderStatusInner | None = None


order_status_decoder = msgspec.json.Decoder(OrderStatusResponse)
historical_orders_decoder = msgspec.json.Decoder(tuple[OrderStatusInner, ...])


class PerpDex(msgspec.Struct, frozen=True, gc=False):
    """One HIP-3 builder-deployed perp dex as ``perpDexs`` lists it (other keys ignored)."""

    name: str


perp_dexs_decoder = msgspec.json.Decoder(tuple[PerpDex | None, ...])
"""``perpDexs`` answers ``[null, {"name": "xyz", ...}, ...]``: null stands for the first perp dex."""


class Fill(msgspec.Struct, frozen=True, gc=False):
    """The fields of a fill the collector relies on (the stored document keeps all of them)."""

    coin: str
    px: str
    sz: str
    side: str
    time: EpochMs
    oid: Id
    tid: Id
    fee: str | None = None
    closedPnl: str | None = None
    crossed: bool | None = None


_fill_decoder = msgspec.json.Decoder(Fill)
_fill_dict_decoder = msgspec.json.Decoder(dict[str, Any])
fills_decoder = msgspec.json.Decoder(OrderItems)
"""A ``userFills`` / ``userFillsByTime`` answer: fills kept raw."""


def decode_fill(raw: msgspec.Raw) -> tuple[Fill, dict[str, Any]]:
    """A fill checked for the fields the collector needs, and as a dict of every key it has;
    :class:`FrameError` (``invalid``) when it is not a fill."""
    try:
        fill, doc = _fill_decoder.decode(raw), _fill_dict_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise FrameError("invalid", f"userFills: {exc} in {excerpt(bytes(raw))!r}") from None
    wide = wide_int(doc)
    if wide is not None:
        raise FrameError("invalid", f"userFills: {wide} does not fit in 64 bits in {excerpt(bytes(raw))!r}")
    return fill, doc


def wide_int(value: Any, where: str = "$") -> str | None:
    """Where in a decoded JSON value an integer lies that BSON cannot hold, if anywhere (kept
    documents, such as a fill with every key the exchange sent, are stored as they came)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return where if not -(2**63) <= value < 2**63 else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = wide_int(item, f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]")
        if found is not None:
            return found
    return None
