"""TWAPs of followed traders: their start, progress and end, as ``trader_twaps`` documents.

A TWAP's slices never rest and write no order-status line (SAMPLE-NOTES.md §3): its slice fills
(``twapId`` set, zero hash) reach ``trader_fills`` like any fill, and the TWAP itself is known
from two exchange views (shapes from nktkas/hyperliquid, HEAD db80d59):

* the ``twapStates`` subscription (``src/api/subscription/_methods/twapStates.ts``; webData2 embeds
  the same list, PROTOCOL.md §1.2): ``{dex, user, states: [[twapId, TwapState], ...]}``, the
  trader's RUNNING TWAPs. A new twapId there is a start; a twapId that leaves it has ended, but the
  feed does not say how (finished or terminated);
* the ``twapHistory`` info request (``src/api/info/_methods/twapHistory.ts``): one row per status
  change, ``{time (seconds), state: TwapState, status: {status, description?}, twapId}``, status
  ``activated`` | ``finished`` | ``terminated`` | ``error``. It is asked for when a TWAP leaves the
  feed, and with every REST recovery (reconnect gaps, polled traders, backfill).

With the node source, a third view: the node's ``node_twap_statuses*`` lines (SAMPLE-NOTES §3, a
``node_twap_statuses_by_block/hourly/20260128/15`` event): ``{"time": node time, "twap_id", "state":
TwapState, "status": "activated" | "terminated" | "finished"}``, one per status change, read like
the order statuses (:func:`node_twap_doc`).

TwapState (``_base/commonSchemas.ts`` TwapStateSchema; the node_twap_statuses example in
SAMPLE-NOTES §3): ``{coin, user, side, sz, executedSz, executedNtl, minutes, reduceOnly, randomize,
timestamp}``. One document per ``(ethAddress, twapId, status)``; the unique index drops copies.
Pure logic, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from collector_service import schema
from collector_service.events.node_lines import node_time
from collector_service.events.tracker import ms_to_datetime
from collector_service.events.wire import EpochMs, FrameError, Id, Int64, excerpt


class TwapState(msgspec.Struct, frozen=True, gc=False):
    coin: str
    side: str
    sz: str
    timestamp: EpochMs
    minutes: Int64
    executedSz: str = "0.0"
    executedNtl: str = "0.0"
    reduceOnly: bool = False
    randomize: bool = False


class TwapStatus(msgspec.Struct, frozen=True, gc=False):
    status: str
    description: str | None = None  # only with status "error"


Seconds = Annotated[int, msgspec.Meta(ge=0, lt=253_402_300_800)]
"""twapHistory's ``time``: seconds since the epoch (not milliseconds)."""


class TwapHistoryRow(msgspec.Struct, frozen=True, gc=False):
    time: Seconds
    state: TwapState
    status: TwapStatus
    twapId: Id | None = None  # optional in the nktkas type; a row without it cannot be keyed


class NodeTwapStatus(msgspec.Struct, frozen=True, gc=False):
    """A ``node_twap_statuses`` event. ``status`` is a plain string in the one example known; the
    twapHistory object form (``{status, description}``, for ``error``) is accepted too."""

    time: str
    twap_id: Id
    state: TwapState
    status: str | TwapStatus


_pair_decoder = msgspec.json.Decoder(tuple[Id, TwapState])
_row_decoder = msgspec.json.Decoder(TwapHistoryRow)
_node_decoder = msgspec.json.Decoder(NodeTwapStatus)


def twap_doc(user: str, twap_id: int, state: TwapState, status: str, status_time: datetime, *, source: str,
             observed_at: datetime, description: str | None = None) -> dict[str, Any]:
    """One ``trader_twaps`` document (see :data:`collector_service.schema.TWAPS`)."""
    doc: dict[str, Any] = {
        "ethAddress": user, "twapId": twap_id, "status": status, "coin": state.coin,
        "dex": schema.dex_of(state.coin), "side": state.side, "sz": state.sz, "executedSz": state.executedSz,
        "executedNtl": state.executedNtl, "minutes": state.minutes, "reduceOnly": state.reduceOnly,
        "randomize": state.randomize, "timestamp": ms_to_datetime(state.timestamp), "statusTime": status_time,
        "source": source, "observedAt": observed_at,
    }
    if description is not None:
        doc["description"] = description
    return doc


class TwapWatch:
    """Per trader, the running TWAPs the feed showed last: which twapIds are new, which left."""

    def __init__(self) -> None:
        self.running: dict[str, set[int]] = {}

    def on_states(self, user: str, raws: Iterable[msgspec.Raw], observed_at: datetime
                  ) -> tuple[list[dict[str, Any]], bool, list[FrameError]]:
        """``activated`` documents for TWAPs not seen running before, whether a TWAP seen running
        before has left (ended: ask ``twapHistory`` how), and the errors of pairs that are not
        ``[twapId, TwapState]`` (one bad pair does not cost the others)."""
        docs, bad, now_running = [], [], set()
        for raw in raws:
            try:
                twap_id, state = _pair_decoder.decode(raw)
            except msgspec.MsgspecError as exc:
                bad.append(FrameError("invalid", f"twapStates: {exc} in {excerpt(bytes(raw))!r}"))
                continue
            now_running.add(twap_id)
            if twap_id not in self.running.get(user, ()):
                docs.append(twap_doc(user, twap_id, state, schema.TWAP_ACTIVATED, ms_to_datetime(state.timestamp),
                                     source=schema.SOURCE_WS, observed_at=observed_at))
        ended = bool(self.running.get(user, set()) - now_running)
        self.running[user] = now_running
        return docs, ended, bad

    def forget(self, user: str) -> None:
        self.running.pop(user, None)


def history_docs(user: str, raws: Iterable[msgspec.Raw], observed_at: datetime
                 ) -> tuple[list[dict[str, Any]], list[FrameError]]:
    """A document per ``twapHistory`` row (its status dated by the row's ``time``; an activation by
    the TWAP's own millisecond ``timestamp``), and the errors of rows that are not usable."""
    docs, bad = [], []
    for raw in raws:
        try:
            row = _row_decoder.decode(raw)
        except msgspec.MsgspecError as exc:
            bad.append(FrameError("invalid", f"twapHistory: {exc} in {excerpt(bytes(raw))!r}"))
            continue
        if row.twapId is None:
            bad.append(FrameError("invalid", f"twapHistory: row without twapId in {excerpt(bytes(raw))!r}"))
            continue
        status = row.status.status
        when = (ms_to_datetime(row.state.timestamp) if status == schema.TWAP_ACTIVATED
                else datetime.fromtimestamp(row.time, UTC))
        docs.append(twap_doc(user, row.twapId, row.state, status, when, source=schema.SOURCE_REST,
                             observed_at=observed_at, description=row.status.description))
    return docs, bad


def node_twap_doc(user: str, raw: bytes, observed_at: datetime) -> dict[str, Any]:
    """The document of a ``node_twap_statuses`` event of ``user`` (an activation dated by the TWAP's
    own ``timestamp``, an end by the line's ``time``), or :class:`FrameError` saying what is wrong."""
    try:
        event = _node_decoder.decode(raw)
        status = event.status if isinstance(event.status, TwapStatus) else TwapStatus(event.status)
        when = (ms_to_datetime(event.state.timestamp) if status.status == schema.TWAP_ACTIVATED
                else node_time(event.time))
    except (msgspec.MsgspecError, ValueError) as exc:
        raise FrameError("invalid", f"node TWAP status: {exc} in {excerpt(raw)!r}") from None
    return twap_doc(user, event.twap_id, event.state, status.status, when, source=schema.SOURCE_NODE,
                    observed_at=observed_at, description=status.description)
