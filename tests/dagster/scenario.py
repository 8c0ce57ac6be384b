"""A hand-built two-day scenario of collector documents, and the tables worked out by hand.

Days: D1 = 2026-11-23, D2 = 2026-11-24 (UTC); one event on D3 must never show up.
Trader A: 100 canceled on D1; 101 spans D1->D2 (partial fill then filled); 103 is 101's TP/SL
child canceled when 101 filled; 102 amended in place (same oid: price, then size across the alert
threshold) and canceled; 104 closed with status still unknown.
Trader B: 201 known only from a REST-recovered close (filled, sz "0.0"); 202 partially filled,
its update has no observedAt (falls back to createdAt), still open at D2's end (closes on D3);
203 rejected.
Trader C (modifies are cancel-and-replace, see ``orders_c``): amend chains with a cloid and
without (inferred), one spanning D1->D2, a spurious link from a filled order, a plain cancel, a
partial fill then fill, a spot coin ("@107") and a HIP-3 coin ("xyz:TSLA" on dex "xyz").
Documents carry ``dex`` except the old ones marked ``dex=None`` (written before ``dex`` existed).

Fills (``fills``): A-101 filled as maker in two fills (0.5, then the rest 1.5); A-190 on D1 and
C-370 on D2 are taker IOCs that filled on arrival and never appeared in an event (C-370 a spot buy
whose fee is in the bought token, HYPE); B-201 crossed for 40 on arrival (taker) and the rest 60
filled as maker; B-202 partially filled (its last fill is on D3); C's amend chain 320 -> 321 -> 322
filled on 321 and 322; C-350 on the HIP-3 coin xyz:TSLA (with builder fees); C-360 closed a long
(closedPnl). Fees are in USDC except C-370's. Book context (``BOOK_*``) on the new events of
A-101, B-203, C-320 and C-331 and on A-102's size update.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from collector_service import store
from collector_service.metrics import Stats
from collector_service.schema import dex_of

D1, D2, D3 = "2026-11-23", "2026-11-24", "2026-11-25"
A = "0x" + "a" * 40
B = "0x" + "b" * 40
C = "0x" + "c" * 40


def at(day: str, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=UTC)


def book(side: str, px: float, mid: float, *, ahead: float, share: float | None, depth: float, when: datetime) -> dict:
    """The order-book context the collector stamps on a new/updated event (schema.BOOK_FIELDS)."""
    away = (mid - px) if side == "B" else (px - mid)
    return {
        "bookMidPx": mid,
        "distanceBps": away / mid * 1e4,
        "depthAheadUsd": ahead,
        "levelShare": share,
        "bookDepth1pctUsd": depth,
        "bookAt": when,
    }


BOOK_A101 = book("B", 60000.0, 60030.0, ahead=850000.0, share=0.25, depth=2_000_000.0, when=at(D1, "22:00:04"))
BOOK_A102 = book("A", 3100.0, 3050.0, ahead=310000.0, share=1.0, depth=155_000.0, when=at(D2, "09:59:59"))
BOOK_B203 = book("A", 0.05, 0.0502, ahead=0.0, share=None, depth=8.0, when=at(D2, "13:59:59"))  # crossing
BOOK_C320 = book("A", 3000.0, 2995.0, ahead=150000.0, share=0.5, depth=400_000.0, when=at(D2, "09:59:59"))
BOOK_C331 = book("B", 200.0, 200.5, ahead=60000.0, share=0.8, depth=250_000.0, when=at(D2, "11:29:59"))
NO_BOOK = dict.fromkeys(BOOK_A101)


def order(
    addr: str,
    oid: int,
    action: str,
    seq: int,
    observed: datetime | None,
    *,
    coin: str,
    side: str,
    sz: str,
    px: str,
    placed: datetime,
    created: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``trader_orders`` document as the collector writes it."""
    doc: dict[str, Any] = {
        "ethAddress": addr,
        "oid": oid,
        "eventKey": f"updated:{seq}" if action == "updated" else action,
        "action": action,
        "status": "closed" if action == "closed" else "open",
        "seq": seq,
        "source": "ws",
        "coin": coin,
        "side": side,
        "orderType": "Limit",
        "tif": "Gtc",
        "triggerCondition": "N/A",
        "limitPx": px,
        "sz": sz,
        "origSz": sz,
        "triggerPx": "0.0",
        "isTrigger": False,
        "reduceOnly": False,
        "isPositionTpsl": False,
        "timestamp": placed,
        "observedAt": observed,
        "serverTime": observed,
        "createdAt": created or (observed + timedelta(seconds=1) if observed else None),
    }
    if observed is None:
        del doc["observedAt"], doc["serverTime"]
    doc["storedAt"] = doc["createdAt"]  # the collector's writer stamps it when it inserts
    doc["dex"] = dex_of(coin)
    doc.update(extra)
    if doc["dex"] is None:  # a document written before the collector stored dex
        del doc["dex"]
    return doc


def write_as_collector(mongo_uri: str, db_name: str, docs: list[dict[str, Any]]) -> None:
    """Write ``trader_orders`` documents as a collector's writer does (it stamps ``storedAt``)."""
    database = store.Database(mongo_uri, db_name)
    try:
        database.write(store.order_ops([{k: v for k, v in d.items() if k != "storedAt"} for d in docs]), Stats())
    finally:
        database.close()


def replace(
    addr: str,
    old: int,
    old_seq: int,
    new: int,
    observed: datetime,
    *,
    coin: str,
    side: str,
    old_sz: str,
    old_px: str,
    old_placed: datetime,
    old_orig: str | None = None,
    sz: str,
    px: str,
    match: str,
    cloid: str | None = None,
    old_status: str = "canceled",
    new_extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A modify as the collector records it: the old order's close (``replacedByOid``) and the
    replacement's new event (``replacesOid``), seen in the same snapshot."""
    ids = {"cloid": cloid} if cloid else {}
    closed = order(
        addr,
        old,
        "closed",
        old_seq,
        observed,
        coin=coin,
        side=side,
        sz=old_sz,
        px=old_px,
        placed=old_placed,
        origSz=old_orig or old_sz,
        finalStatus=old_status,
        statusTimestamp=observed,
        replacedByOid=new,
        replaceMatch=match,
        **ids,
    )
    placed = order(
        addr,
        new,
        "new",
        0,
        observed,
        coin=coin,
        side=side,
        sz=sz,
        px=px,
        placed=observed,
        replacesOid=old,
        replaceMatch=match,
        **ids,
        **(new_extra or {}),
    )
    return [closed, placed]


def orders_c() -> list[dict[str, Any]]:
    """Trader C, where modifies are cancel-and-replace (new oid, the old one ends canceled).

    - 300 -> 310 (cloid): BTC bid placed D1 20:00 (open at D1's end), re-priced 50000 -> 50500 on
      D2 08:00, canceled 09:00: one chain spanning two days.
    - 320 -> 321 -> 322 (cloid): ETH ask of 40 placed 10:00 at 3000 (a large order), re-priced to
      3010 at 10:10, 321 partially filled 40 -> 30 at 10:15, re-priced to 3020 at 10:20, 322
      filled at 10:30. The replaced orders' closes are no large closes, the replacements no large
      orders.
    - 330 -> 331 (inferred, no cloid): SOL bid of 100 at 200 (20k) replaced at 11:30 by 600 at 200
      (120k): an alert comparing 331 with 330. Still open at D2's end.
    - 340: spot "@107" bid, plain cancel. 350: "xyz:TSLA" (dex "xyz") partial fill, then filled;
      its update is an old document without dex.
    - 360 -> 361 (inferred): 360 filled, so the link is spurious and ignored: two orders.
    """
    t300, t320, t330 = at(D1, "20:00:00"), at(D2, "10:00:00"), at(D2, "11:00:00")
    t340, t350, t360 = at(D2, "12:00:00"), at(D2, "13:00:00"), at(D2, "14:00:00")
    c1, c2 = "0x" + "c1" * 16, "0x" + "c2" * 16
    btc = {"coin": "BTC", "side": "B"}
    eth = {"coin": "ETH", "side": "A"}
    sol = {"coin": "SOL", "side": "B"}
    return [
        order(C, 300, "new", 0, t300, sz="1.0", px="50000.0", placed=t300, cloid=c1, **btc),
        *replace(
            C,
            300,
            1,
            310,
            at(D2, "08:00:00"),
            old_sz="1.0",
            old_px="50000.0",
            old_placed=t300,
            sz="1.0",
            px="50500.0",
            match="cloid",
            cloid=c1,
            **btc,
        ),
        order(
            C,
            310,
            "closed",
            1,
            at(D2, "09:00:00"),
            sz="1.0",
            px="50500.0",
            placed=at(D2, "08:00:00"),
            cloid=c1,
            finalStatus="canceled",
            statusTimestamp=at(D2, "09:00:00"),
            **btc,
        ),
        order(C, 320, "new", 0, t320, sz="40.0", px="3000.0", placed=t320, cloid=c2, **BOOK_C320, **eth),
        *replace(
            C,
            320,
            1,
            321,
            at(D2, "10:10:00"),
            old_sz="40.0",
            old_px="3000.0",
            old_placed=t320,
            sz="40.0",
            px="3010.0",
            match="cloid",
            cloid=c2,
            **eth,
        ),
        order(
            C,
            321,
            "updated",
            1,
            at(D2, "10:15:00"),
            sz="30.0",
            px="3010.0",
            placed=at(D2, "10:10:00"),
            origSz="40.0",
            cloid=c2,
            changes=["sz"],
            partialFill=True,
            prevSz="40.0",
            prevLimitPx="3010.0",
            **eth,
        ),
        *replace(
            C,
            321,
            2,
            322,
            at(D2, "10:20:00"),
            old_sz="30.0",
            old_px="3010.0",
            old_placed=at(D2, "10:10:00"),
            old_orig="40.0",
            sz="30.0",
            px="3020.0",
            match="cloid",
            cloid=c2,
            **eth,
        ),
        order(
            C,
            322,
            "closed",
            1,
            at(D2, "10:30:00"),
            sz="30.0",
            px="3020.0",
            placed=at(D2, "10:20:00"),
            cloid=c2,
            finalStatus="filled",
            statusTimestamp=at(D2, "10:29:59"),
            **eth,
        ),
        order(C, 330, "new", 0, t330, sz="100.0", px="200.0", placed=t330, **sol),
        *replace(
            C,
            330,
            1,
            331,
            at(D2, "11:30:00"),
            old_sz="100.0",
            old_px="200.0",
            old_placed=t330,
            sz="600.0",
            px="200.0",
            match="inferred",
            new_extra=BOOK_C331,
            **sol,
        ),
        order(C, 340, "new", 0, t340, coin="@107", side="B", sz="1000.0", px="0.5", placed=t340),
        order(
            C,
            340,
            "closed",
            1,
            at(D2, "12:05:00"),
            coin="@107",
            side="B",
            sz="1000.0",
            px="0.5",
            placed=t340,
            finalStatus="canceled",
            statusTimestamp=at(D2, "12:05:00"),
        ),
        order(C, 350, "new", 0, t350, coin="xyz:TSLA", side="B", sz="10.0", px="250.0", placed=t350),
        order(
            C,
            350,
            "updated",
            1,
            at(D2, "13:10:00"),
            coin="xyz:TSLA",
            side="B",
            sz="4.0",
            px="250.0",
            placed=t350,
            origSz="10.0",
            changes=["sz"],
            partialFill=True,
            prevSz="10.0",
            prevLimitPx="250.0",
            dex=None,
        ),
        order(
            C,
            350,
            "closed",
            2,
            at(D2, "13:20:00"),
            coin="xyz:TSLA",
            side="B",
            sz="4.0",
            px="250.0",
            placed=t350,
            origSz="10.0",
            finalStatus="filled",
            statusTimestamp=at(D2, "13:19:59"),
        ),
        order(C, 360, "new", 0, t360, coin="BTC", side="A", sz="0.5", px="70000.0", placed=t360),
        *replace(
            C,
            360,
            1,
            361,
            at(D2, "14:10:00"),
            coin="BTC",
            side="A",
            old_sz="0.5",
            old_px="70000.0",
            old_placed=t360,
            sz="0.5",
            px="70100.0",
            match="inferred",
            old_status="filled",
        ),
        order(
            C,
            361,
            "closed",
            1,
            at(D2, "14:20:00"),
            coin="BTC",
            side="A",
            sz="0.5",
            px="70100.0",
            placed=at(D2, "14:10:00"),
            finalStatus="canceled",
            statusTimestamp=at(D2, "14:20:00"),
        ),
    ]


def orders() -> list[dict[str, Any]]:
    t101 = at(D1, "22:00:00")
    t103 = at(D2, "00:30:00")
    t102 = at(D2, "09:00:00")
    return [
        # placed and canceled on D1.
        order(
            A, 100, "new", 0, at(D1, "10:00:00"), coin="ETH", side="B", sz="1.0", px="3000.0", placed=at(D1, "10:00:00")
        ),
        order(
            A,
            100,
            "closed",
            1,
            at(D1, "10:05:00"),
            coin="ETH",
            side="B",
            sz="1.0",
            px="3000.0",
            placed=at(D1, "10:00:00"),
            finalStatus="canceled",
            statusTimestamp=at(D1, "10:04:59"),
        ),
        # spans two days.
        order(
            A,
            101,
            "new",
            0,
            at(D1, "22:00:05"),
            coin="BTC",
            side="B",
            sz="2.0",
            px="60000.0",
            placed=t101,
            cloid="0x" + "1" * 32,
            **BOOK_A101,
        ),
        order(
            A,
            101,
            "updated",
            1,
            at(D2, "01:00:00"),
            coin="BTC",
            side="B",
            sz="1.5",
            px="60000.0",
            placed=t101,
            origSz="2.0",
            changes=["sz"],
            partialFill=True,
            prevSz="2.0",
            prevLimitPx="60000.0",
        ),
        order(
            A,
            101,
            "closed",
            2,
            at(D2, "02:00:00"),
            coin="BTC",
            side="B",
            sz="1.5",
            px="60000.0",
            placed=t101,
            origSz="2.0",
            finalStatus="filled",
            statusTimestamp=at(D2, "01:59:59"),
        ),
        # TP/SL child of 101.
        order(
            A,
            103,
            "new",
            0,
            t103,
            coin="BTC",
            side="A",
            sz="2.0",
            px="65000.0",
            placed=t103,
            orderType="Take Profit Market",
            tif=None,
            triggerCondition="Price above 65000",
            triggerPx="65000.0",
            isTrigger=True,
            reduceOnly=True,
            parentOid=101,
        ),
        order(
            A,
            103,
            "closed",
            1,
            at(D2, "02:00:01"),
            coin="BTC",
            side="A",
            sz="2.0",
            px="65000.0",
            placed=t103,
            orderType="Take Profit Market",
            tif=None,
            triggerPx="65000.0",
            isTrigger=True,
            reduceOnly=True,
            parentOid=101,
            finalStatus="siblingFilledCanceled",
            statusTimestamp=at(D2, "02:00:00"),
        ),
        # amend price, amend size across the threshold, cancel.
        order(A, 102, "new", 0, t102, coin="ETH", side="A", sz="10.0", px="3000.0", placed=t102),
        order(
            A,
            102,
            "updated",
            1,
            at(D2, "09:30:00"),
            coin="ETH",
            side="A",
            sz="10.0",
            px="3100.0",
            placed=t102,
            changes=["limitPx"],
            partialFill=False,
            prevSz="10.0",
            prevLimitPx="3000.0",
        ),
        order(
            A,
            102,
            "updated",
            2,
            at(D2, "10:00:00"),
            coin="ETH",
            side="A",
            sz="40.0",
            px="3100.0",
            placed=t102,
            origSz="40.0",
            changes=["sz", "origSz"],
            partialFill=False,
            prevSz="10.0",
            prevLimitPx="3100.0",
            **BOOK_A102,
        ),
        order(
            A,
            102,
            "closed",
            3,
            at(D2, "10:30:00"),
            coin="ETH",
            side="A",
            sz="40.0",
            px="3100.0",
            placed=t102,
            origSz="40.0",
            finalStatus="canceled",
            statusTimestamp=at(D2, "10:30:00"),
        ),
        # closed, status not resolved yet.
        order(
            A, 104, "new", 0, at(D2, "14:30:00"), coin="SOL", side="B", sz="5.0", px="200.0", placed=at(D2, "14:30:00")
        ),
        order(
            A,
            104,
            "closed",
            1,
            at(D2, "15:00:00"),
            coin="SOL",
            side="B",
            sz="5.0",
            px="200.0",
            placed=at(D2, "14:30:00"),
            finalStatus="unknown",
        ),
        # B-201: only a close, recovered over REST (REST reports a filled order with sz 0).
        order(
            B,
            201,
            "closed",
            1,
            at(D2, "12:00:00"),
            coin="HYPE",
            side="B",
            sz="0.0",
            px="1.5",
            placed=at(D2, "11:50:00"),
            origSz="100.0",
            source="rest",
            finalStatus="filled",
            statusTimestamp=at(D2, "11:55:00"),
        ),
        # B-202: partial fill whose document lacks observedAt; closes on D3.
        order(
            B, 202, "new", 0, at(D2, "13:00:00"), coin="SOL", side="B", sz="50.0", px="200.0", placed=at(D2, "13:00:00")
        ),
        order(
            B,
            202,
            "updated",
            1,
            None,
            coin="SOL",
            side="B",
            sz="30.0",
            px="200.0",
            placed=at(D2, "13:00:00"),
            origSz="50.0",
            created=at(D2, "13:10:00"),
            changes=["sz"],
            partialFill=True,
            prevSz="50.0",
            prevLimitPx="200.0",
        ),
        order(
            B,
            202,
            "closed",
            2,
            at(D3, "01:00:00"),
            coin="SOL",
            side="B",
            sz="30.0",
            px="200.0",
            placed=at(D2, "13:00:00"),
            origSz="50.0",
            finalStatus="filled",
        ),
        # B-203: rejected.
        order(
            B,
            203,
            "new",
            0,
            at(D2, "14:00:00"),
            coin="DOGE",
            side="A",
            sz="100.0",
            px="0.05",
            placed=at(D2, "14:00:00"),
            tif="Alo",
            **BOOK_B203,
        ),
        order(
            B,
            203,
            "closed",
            1,
            at(D2, "14:00:01"),
            coin="DOGE",
            side="A",
            sz="100.0",
            px="0.05",
            placed=at(D2, "14:00:00"),
            tif="Alo",
            finalStatus="minTradeNtlRejected",
        ),
        *orders_c(),
    ]


def fill(
    addr: str,
    oid: int,
    tid: int,
    when: datetime,
    *,
    coin: str,
    side: str,
    px: str,
    sz: str,
    crossed: bool,
    fee: str,
    fee_token: str = "USDC",
    closed_pnl: str = "0.0",
    direction: str = "Open Long",
    start_position: str = "0.0",
    **extra: Any,
) -> dict[str, Any]:
    """A ``trader_fills`` document as the collector writes it (every key the exchange sent)."""
    return {
        "coin": coin,
        "px": px,
        "sz": sz,
        "side": side,
        "time": when,
        "startPosition": start_position,
        "dir": direction,
        "closedPnl": closed_pnl,
        "hash": f"0x{tid:064x}",
        "oid": oid,
        "crossed": crossed,
        "fee": fee,
        "tid": tid,
        "feeToken": fee_token,
        "twapId": None,
        **extra,
        "ethAddress": addr,
        "dex": dex_of(coin),
        "source": "ws",
        "observedAt": when + timedelta(seconds=1),
        "createdAt": when + timedelta(seconds=2),
        "storedAt": when + timedelta(seconds=2),
    }


def fills() -> list[dict[str, Any]]:
    btc_a = {"coin": "BTC", "side": "B", "cloid": "0x" + "1" * 32}
    eth_c = {"coin": "ETH", "side": "A", "cloid": "0x" + "c2" * 16, "direction": "Open Short"}
    sol_b = {"coin": "SOL", "side": "B", "px": "200.0", "crossed": False}
    tsla = {"coin": "xyz:TSLA", "side": "B", "px": "250.0", "crossed": False}
    # fmt: off
    docs = [
        # D1: A sells 2 ETH with an IOC that never rested (no order event), closing part of a long.
        fill(A, 190, 9001, at(D1, "10:30:00"), coin="ETH", side="A", px="2990.0", sz="2.0", crossed=True,
             fee="2.691", closed_pnl="-20.0", direction="Close Long", start_position="5.0"),
        # 0.5 as maker (the partial fill seen at 01:00), then the rest, 1.5, as maker.
        fill(A, 101, 1011, at(D2, "00:59:59"), px="60000.0", sz="0.5", crossed=False, fee="3.0", **btc_a),
        fill(A, 101, 1012, at(D2, "01:59:59"), px="60000.0", sz="1.5", crossed=False, fee="9.0",
             start_position="0.5", **btc_a),
        # B-201: crossed for 40 on arrival (taker, below its limit), the rest 60 filled as maker.
        fill(B, 201, 2011, at(D2, "11:50:00"), coin="HYPE", side="B", px="1.25", sz="40.0", crossed=True,
             fee="0.0225"),
        fill(B, 201, 2012, at(D2, "11:54:59"), coin="HYPE", side="B", px="1.5", sz="60.0", crossed=False,
             fee="0.0135", start_position="40.0"),
        # B-202: 20 on D2 (the partial fill), the remaining 30 on D3 (not in D2's tables).
        fill(B, 202, 2021, at(D2, "13:05:00"), sz="20.0", fee="0.6", **sol_b),
        fill(B, 202, 2022, at(D3, "00:59:59"), sz="30.0", fee="0.9", start_position="20.0", **sol_b),
        # C's chain 320 -> 321 -> 322: 10 on 321, then 30 on 322 in two fills.
        fill(C, 321, 3211, at(D2, "10:14:59"), px="3010.0", sz="10.0", crossed=False, fee="4.515", **eth_c),
        fill(C, 322, 3221, at(D2, "10:29:58"), px="3020.0", sz="20.0", crossed=False, fee="9.06",
             start_position="-10.0", **eth_c),
        fill(C, 322, 3222, at(D2, "10:29:59"), px="3020.0", sz="10.0", crossed=False, fee="4.53",
             start_position="-30.0", **eth_c),
        # C-370: a spot IOC buy that never rested; the fee is charged in the bought token.
        fill(C, 370, 3701, at(D2, "12:30:00"), coin="@107", side="B", px="0.625", sz="160.0", crossed=True,
             fee="0.056", fee_token="HYPE", direction="Buy"),
        # C-350 on the HIP-3 dex xyz, through a builder.
        fill(C, 350, 3501, at(D2, "13:09:59"), sz="6.0", fee="0.225", builderFee="0.03", **tsla),
        fill(C, 350, 3502, at(D2, "13:19:59"), sz="4.0", fee="0.15", builderFee="0.02", start_position="6.0",
             **tsla),
        # C-360 closes half a BTC long entered at 50000.
        fill(C, 360, 3601, at(D2, "14:09:59"), coin="BTC", side="A", px="70000.0", sz="0.5", crossed=False,
             fee="5.25", closed_pnl="10000.0", direction="Close Long", start_position="0.5"),
    ]
    # fmt: on
    return docs


def position(
    addr: str, coin: str, szi: str, observed: datetime, entry: str = "100.0", *, old: bool = False
) -> dict[str, Any]:
    """A ``trader_positions`` document; ``old``: written before the collector stored ``dex``."""
    return {
        "ethAddress": addr,
        **({} if old else {"dex": dex_of(coin)}),
        "coin": coin,
        "szi": szi,
        "entryPx": entry,
        "positionValue": "1000.0",
        "unrealizedPnl": "12.5",
        "returnOnEquity": "0.05",
        "liquidationPx": None,
        "marginUsed": "100.0",
        "leverageType": "cross",
        "leverage": 10,
        "maxLeverage": 50,
        "serverTime": observed,
        "observedAt": observed,
        "createdAt": observed + timedelta(seconds=1),
        "source": "ws",
    }


def positions() -> list[dict[str, Any]]:
    return [
        position(A, "BTC", "1.0", at(D1, "20:00:00"), entry="59000.0"),
        position(A, "BTC", "0.0", at(D2, "02:00:00"), entry="59000.0"),
        position(A, "ETH", "5.0", at(D1, "23:00:00"), entry="3000.0"),
        position(A, "ETH", "6.0", at(D3, "01:00:00"), entry="3000.0"),
        position(B, "SOL", "-20.0", at(D2, "13:10:00"), entry="200.0"),
        position(C, "BTC", "0.5", at(D1, "21:00:00"), entry="50000.0"),
        position(C, "xyz:TSLA", "10.0", at(D2, "13:20:00"), entry="250.0", old=True),
    ]


def watchlist() -> list[dict[str, Any]]:
    """``trader_watchlist`` documents (schema.WATCHLIST): A and B are labelled, B is no longer
    watched (it keeps its label), C is not on the list (label null, tags empty)."""
    return [
        {"_id": A, "label": "Whale A", "tags": ["whales", "btc"], "watching": True, "updatedAt": at(D1, "00:00:00")},
        {"_id": B, "label": "Bee", "tags": [], "watching": False, "updatedAt": at(D2, "00:00:00")},
    ]


LABELS = {A: ("Whale A", ["whales", "btc"]), B: ("Bee", []), C: (None, [])}
"""What the tables show per trader: ``(label, tags)``."""


def dec(s: str) -> Decimal:
    return Decimal(s)


# Expected tables -------------------------------------------------------------------------
LIFECYCLE_COLS = [
    "ethAddress",
    "oid",
    "coin",
    "side",
    "orderType",
    "parentOid",
    "placedAt",
    "firstSeenAt",
    "closedAt",
    "finalStatus",
    "outcome",
    "durationS",
    "nUpdates",
    "nPriceChanges",
    "origSz",
    "lastSz",
    "filledSzEvents",
    "maxNotionalUsd",
    "recovered",
    "rootOid",
    "dex",
    "amendCount",
    "filledSz",
    "nFills",
    "avgFillPx",
    "feesUsd",
    "makerShare",
    "realizedPnl",
    "firstFillAt",
    "lastFillAt",
    "seenInEvents",
    *NO_BOOK,
    "oids",
]
NOTHING_TRADED = ("0", 0, None, "0", None, "0", None, None)
"""filledSz, nFills, avgFillPx, feesUsd, makerShare, realizedPnl, firstFillAt, lastFillAt of a chain without fills."""


def _lc(
    *values: Any,
    rootOid: int | None = None,
    dex: str = "",
    amendCount: int = 0,
    traded: tuple = NOTHING_TRADED,
    book: dict[str, Any] = NO_BOOK,
    seen: bool = True,
    oids: list[int] | None = None,
) -> dict[str, Any]:
    """A lifecycle row: the positional columns, then the chain's root (default: the order
    itself), dex, amends, what its fills traded, whether events saw it, the root's book when
    placed, and the chain's oids (default: the order alone)."""
    root = rootOid or values[1]
    row = dict(
        zip(
            LIFECYCLE_COLS,
            [*values, root, dex, amendCount, *traded, seen, *book.values(), oids or [root]],
            strict=True,
        )
    )
    for k in ("origSz", "lastSz", "filledSzEvents", "filledSz", "feesUsd", "realizedPnl"):
        row[k] = None if row[k] is None else dec(row[k])
    return row


LIFECYCLES_D1 = [
    _lc(
        A,
        100,
        "ETH",
        "B",
        "Limit",
        None,
        at(D1, "10:00:00"),
        at(D1, "10:00:00"),
        at(D1, "10:05:00"),
        "canceled",
        "canceled",
        300.0,
        0,
        0,
        "1",
        "1",
        "0",
        3000.0,
        False,
    ),
    _lc(
        A,
        101,
        "BTC",
        "B",
        "Limit",
        None,
        at(D1, "22:00:00"),
        at(D1, "22:00:05"),
        None,
        None,
        "open",
        7200.0,
        0,
        0,
        "2",
        "2",
        "0",
        120000.0,
        False,
        book=BOOK_A101,
    ),
    # known only from its fill (an IOC that never rested): placed and closed at the fill.
    _lc(
        A,
        190,
        "ETH",
        "A",
        None,
        None,
        at(D1, "10:30:00"),
        None,
        at(D1, "10:30:00"),
        None,
        "filled",
        0.0,
        0,
        0,
        None,
        None,
        None,
        None,
        False,
        traded=("2", 1, 2990.0, "2.691", 0.0, "-20", at(D1, "10:30:00"), at(D1, "10:30:00")),
        seen=False,
    ),
    # C-300: open at D1's end (replaced on D2).
    _lc(
        C,
        300,
        "BTC",
        "B",
        "Limit",
        None,
        at(D1, "20:00:00"),
        at(D1, "20:00:00"),
        None,
        None,
        "open",
        14400.0,
        0,
        0,
        "1",
        "1",
        "0",
        50000.0,
        False,
    ),
]

LIFECYCLES_D2 = [
    _lc(
        A,
        101,
        "BTC",
        "B",
        "Limit",
        None,
        at(D1, "22:00:00"),
        at(D1, "22:00:05"),
        at(D2, "02:00:00"),
        "filled",
        "filled",
        14400.0,
        1,
        0,
        "2",
        "1.5",
        "2",
        120000.0,
        False,
        traded=("2", 2, 60000.0, "12", 1.0, "0", at(D2, "00:59:59"), at(D2, "01:59:59")),
        book=BOOK_A101,
    ),
    _lc(
        A,
        102,
        "ETH",
        "A",
        "Limit",
        None,
        at(D2, "09:00:00"),
        at(D2, "09:00:00"),
        at(D2, "10:30:00"),
        "canceled",
        "canceled",
        5400.0,
        2,
        1,
        "10",
        "40",
        "0",
        124000.0,
        False,
        amendCount=2,  # two in-place (same-oid) amends
    ),
    _lc(
        A,
        103,
        "BTC",
        "A",
        "Take Profit Market",
        101,
        at(D2, "00:30:00"),
        at(D2, "00:30:00"),
        at(D2, "02:00:01"),
        "siblingFilledCanceled",
        "canceled",
        5401.0,
        0,
        0,
        "2",
        "2",
        "0",
        130000.0,
        False,
    ),
    _lc(
        A,
        104,
        "SOL",
        "B",
        "Limit",
        None,
        at(D2, "14:30:00"),
        at(D2, "14:30:00"),
        at(D2, "15:00:00"),
        "unknown",
        "unknown",
        1800.0,
        0,
        0,
        "5",
        "5",
        "0",
        1000.0,
        False,
    ),
    _lc(
        B,
        201,
        "HYPE",
        "B",
        "Limit",
        None,
        at(D2, "11:50:00"),
        at(D2, "12:00:00"),
        at(D2, "12:00:00"),
        "filled",
        "filled",
        600.0,
        0,
        0,
        "100",
        "0",
        "100",
        0.0,
        True,
        # 40 taker at 1.25 then 60 maker at 1.5: (50 + 90) / 100 = 1.4; maker share 60 / 100.
        traded=("100", 2, 1.4, "0.036", 0.6, "0", at(D2, "11:50:00"), at(D2, "11:54:59")),
    ),
    _lc(
        B,
        202,
        "SOL",
        "B",
        "Limit",
        None,
        at(D2, "13:00:00"),
        at(D2, "13:00:00"),
        None,
        None,
        "open",
        39600.0,
        1,
        0,
        "50",
        "30",
        "20",
        10000.0,
        False,
        traded=("20", 1, 200.0, "0.6", 1.0, "0", at(D2, "13:05:00"), at(D2, "13:05:00")),  # D3's fill not yet
    ),
    _lc(
        B,
        203,
        "DOGE",
        "A",
        "Limit",
        None,
        at(D2, "14:00:00"),
        at(D2, "14:00:00"),
        at(D2, "14:00:01"),
        "minTradeNtlRejected",
        "rejected",
        1.0,
        0,
        0,
        "100",
        "100",
        "0",
        5.0,
        False,
        book=BOOK_B203,
    ),
    # Trader C, one row per chain (rootOid), in rootOid order. 300 -> 310: placed on D1, replaced
    # once (re-priced), the chain's close is 310's cancel; 13 h from 300's placement.
    _lc(
        C,
        310,
        "BTC",
        "B",
        "Limit",
        None,
        at(D1, "20:00:00"),
        at(D1, "20:00:00"),
        at(D2, "09:00:00"),
        "canceled",
        "canceled",
        46800.0,
        0,
        1,
        "1",
        "1",
        "0",
        50500.0,
        False,
        rootOid=300,
        amendCount=1,
        oids=[300, 310],
    ),
    # 320 -> 321 -> 322: two re-prices; 10 filled on 321 plus 322's remaining 30 filled: 40.
    _lc(
        C,
        322,
        "ETH",
        "A",
        "Limit",
        None,
        at(D2, "10:00:00"),
        at(D2, "10:00:00"),
        at(D2, "10:30:00"),
        "filled",
        "filled",
        1800.0,
        1,
        2,
        "40",
        "30",
        "40",
        120400.0,
        False,
        rootOid=320,
        amendCount=2,
        # fills on 321 (10 @ 3010) and 322 (20 + 10 @ 3020): (30100 + 90600) / 40 = 3017.5
        traded=("40", 3, 3017.5, "18.105", 1.0, "0", at(D2, "10:14:59"), at(D2, "10:29:59")),
        book=BOOK_C320,  # the root 320's new event
        oids=[320, 321, 322],
    ),
    # 330 -> 331 (inferred): resized, same price (no price change); open at the day's end.
    _lc(
        C,
        331,
        "SOL",
        "B",
        "Limit",
        None,
        at(D2, "11:00:00"),
        at(D2, "11:00:00"),
        None,
        None,
        "open",
        46800.0,
        0,
        0,
        "100",
        "600",
        "0",
        120000.0,
        False,
        rootOid=330,
        amendCount=1,
        oids=[330, 331],  # no book: the root 330's new event had none (331's had)
    ),
    _lc(
        C,
        340,
        "@107",
        "B",
        "Limit",
        None,
        at(D2, "12:00:00"),
        at(D2, "12:00:00"),
        at(D2, "12:05:00"),
        "canceled",
        "canceled",
        300.0,
        0,
        0,
        "1000",
        "1000",
        "0",
        500.0,
        False,
    ),
    _lc(
        C,
        350,
        "xyz:TSLA",
        "B",
        "Limit",
        None,
        at(D2, "13:00:00"),
        at(D2, "13:00:00"),
        at(D2, "13:20:00"),
        "filled",
        "filled",
        1200.0,
        1,
        0,
        "10",
        "4",
        "10",
        2500.0,
        False,
        dex="xyz",
        traded=("10", 2, 250.0, "0.375", 1.0, "0", at(D2, "13:09:59"), at(D2, "13:19:59")),
    ),
    # 360 filled: its link to 361 is spurious, so 360 and 361 are two orders.
    _lc(
        C,
        360,
        "BTC",
        "A",
        "Limit",
        None,
        at(D2, "14:00:00"),
        at(D2, "14:00:00"),
        at(D2, "14:10:00"),
        "filled",
        "filled",
        600.0,
        0,
        0,
        "0.5",
        "0.5",
        "0.5",
        35000.0,
        False,
        traded=("0.5", 1, 70000.0, "5.25", 1.0, "10000", at(D2, "14:09:59"), at(D2, "14:09:59")),
    ),
    _lc(
        C,
        361,
        "BTC",
        "A",
        "Limit",
        None,
        at(D2, "14:10:00"),
        at(D2, "14:10:00"),
        at(D2, "14:20:00"),
        "canceled",
        "canceled",
        600.0,
        0,
        0,
        "0.5",
        "0.5",
        "0",
        35050.0,
        False,
    ),
    # C-370: a spot IOC known only from its fill; its fee is in HYPE: no USD fee total.
    _lc(
        C,
        370,
        "@107",
        "B",
        None,
        None,
        at(D2, "12:30:00"),
        None,
        at(D2, "12:30:00"),
        None,
        "filled",
        0.0,
        0,
        0,
        None,
        None,
        None,
        None,
        False,
        traded=("160", 1, 0.625, None, 0.0, "0", at(D2, "12:30:00"), at(D2, "12:30:00")),
        seen=False,
    ),
]

ALERT_COLS = [
    "alertKey",
    "eventAt",
    "reason",
    "notionalBeforeUsd",
    "notionalAfterUsd",
    "finalStatus",
    "replacesOid",
    "dex",
    "changeVsBook1pct",
]
ALERTS_D1 = [
    # 120k against 2M of bids within 1 % of mid
    (f"{A}:101:new", at(D1, "22:00:05"), "large_order", 0.0, 120000.0, None, None, "", 0.06),
]
# C: 320's new is a large order, but its replacements 321/322 are compared with the orders they
# replaced (120k -> 120.4k, 90.3k -> 90.6k: no alert) and the replaced orders' closes (320 at
# 120k) are no large closes; 331 replaced 330: 20k -> 120k.
# changeVsBook1pct: 102's size update +93k against 155k of asks within 1 % (0.6); 320's 120k against
# 400k (0.3); 331's +100k against 250k (0.4); no book on 103 (a trigger seen without one) and on closes.
ALERTS_D2 = [
    (f"{A}:103:new", at(D2, "00:30:00"), "large_order", 0.0, 130000.0, None, None, "", None),
    (f"{A}:103:closed", at(D2, "02:00:01"), "large_close", 130000.0, 0.0, "siblingFilledCanceled", None, "", None),
    (
        f"{A}:102:updated:2",
        at(D2, "10:00:00"),
        "crossed_threshold,large_change",
        31000.0,
        124000.0,
        None,
        None,
        "",
        0.6,
    ),
    (f"{C}:320:new", at(D2, "10:00:00"), "large_order", 0.0, 120000.0, None, None, "", 0.3),
    (f"{A}:102:closed", at(D2, "10:30:00"), "large_close", 124000.0, 0.0, "canceled", None, "", None),
    (f"{C}:331:new", at(D2, "11:30:00"), "crossed_threshold,large_change", 20000.0, 120000.0, None, 330, "", 0.4),
]

OPEN_ORDER_COLS = [
    "ethAddress",
    "oid",
    "coin",
    "side",
    "limitPx",
    "sz",
    "origSz",
    "notionalUsd",
    "placedAt",
    "lastEventAt",
    "parentOid",
    "dex",
]
OPEN_ORDERS_D1 = [
    (A, 101, "BTC", "B", dec("60000"), dec("2"), dec("2"), 120000.0, at(D1, "22:00:00"), at(D1, "22:00:05"), None, ""),
    (C, 300, "BTC", "B", dec("50000"), dec("1"), dec("1"), 50000.0, at(D1, "20:00:00"), at(D1, "20:00:00"), None, ""),
]
OPEN_ORDERS_D2 = [
    (B, 202, "SOL", "B", dec("200"), dec("30"), dec("50"), 6000.0, at(D2, "13:00:00"), at(D2, "13:10:00"), None, ""),
    (
        C,
        331,
        "SOL",
        "B",
        dec("200"),
        dec("600"),
        dec("600"),
        120000.0,
        at(D2, "11:30:00"),
        at(D2, "11:30:00"),
        None,
        "",
    ),
]

POSITION_COLS = ["ethAddress", "dex", "coin", "szi", "side", "entryPx", "updatedAt"]
POSITIONS_D1 = [
    (A, "", "BTC", dec("1"), "long", dec("59000"), at(D1, "20:00:00")),
    (A, "", "ETH", dec("5"), "long", dec("3000"), at(D1, "23:00:00")),
    (C, "", "BTC", dec("0.5"), "long", dec("50000"), at(D1, "21:00:00")),
]
POSITIONS_D2 = [
    (A, "", "ETH", dec("5"), "long", dec("3000"), at(D1, "23:00:00")),
    (B, "", "SOL", dec("-20"), "short", dec("200"), at(D2, "13:10:00")),
    (C, "", "BTC", dec("0.5"), "long", dec("50000"), at(D1, "21:00:00")),
    (C, "xyz", "xyz:TSLA", dec("10"), "long", dec("250"), at(D2, "13:20:00")),  # an old document: dex from the coin
]

FILL_STATS_COLS = [
    "ordersFilledUnseen",
    "medianTimeToFirstFillS",
    "fills",
    "volumeUsd",
    "makerRatio",
    "fees",
    "realizedPnl",
]
NO_FILL_STATS = (0, None, 0, 0.0, None, dec("0"), dec("0"))
STATS_COLS = [
    "ethAddress",
    "nEvents",
    "ordersPlaced",
    "ordersAmended",
    "amends",
    "ordersFilled",
    "ordersCanceled",
    "ordersRejected",
    "openOrdersAtEnd",
    "cancelRatio",
    "medianTimeToFillS",
    "medianTimeToCancelS",
    "notionalPlacedUsd",
    "coinsTraded",
    "coins",
    *FILL_STATS_COLS,
]
# A on D1: A-190's IOC sold 2 ETH at 2990 as taker (5980 USD, fee 2.691, closedPnl -20), an order
# known only from its fill.
STATS_D1 = [
    (
        A,
        *(3, 2, 0, 0, 0, 1, 0, 1, 0.5, None, 300.0, 123000.0, 2, ["BTC", "ETH"]),
        *(1, None, 1, 5980.0, 0.0, dec("2.691"), dec("-20")),
    ),
    (C, 1, 1, 0, 0, 0, 0, 0, 1, 0.0, None, None, 50000.0, 1, ["BTC"], *NO_FILL_STATS),
]
# C on D2: 22 events; placed fresh 320, 330, 340, 350, 360, 361 (361's link is ignored) = 6;
# amends = the replacements 310, 321, 322, 331 = 4, in 3 chains (300, 320, 330); filled chains
# 320 (1800 s), 350 (1200 s), 360 (600 s); canceled chains 300 (46800 s: from D1), 340 (300 s),
# 361 (600 s) -- the replaced 300, 320, 321, 330 are not cancels; open: chain 330. Notional
# placed counts fresh placements only: 120000 + 20000 + 500 + 2500 + 35000 + 35050.
#
# Fills on D2: A-101 as maker, 30000 + 90000 USD, first fill 10799 s after placement (D1 22:00:00).
# B: 201 (50 taker + 90 maker; first fill at placement: 0 s) and 202 (4000 maker, 300 s), median
# 150 s; D3's fill of 202 is not counted. C: the 320 chain 30100 + 60400 + 30200 (first fill 899 s
# after 320's placement), 350 1500 + 1000 (599 s), 360 35000 (599 s, closedPnl 10000), all maker,
# and C-370's IOC 100 as taker (known only from its fill; its fee in HYPE is left out of fees).
STATS_D2 = [
    (
        A,
        *(10, 3, 1, 2, 1, 2, 0, 0, 2 / 3, 14400.0, 5400.5, 161000.0, 3, ["BTC", "ETH", "SOL"]),
        *(0, 10799.0, 2, 120000.0, 1.0, dec("12"), dec("0")),
    ),
    (
        B,
        *(5, 2, 0, 0, 1, 0, 1, 1, 0.0, 600.0, None, 10005.0, 3, ["DOGE", "HYPE", "SOL"]),
        *(0, 150.0, 3, 4140.0, 4090 / 4140, dec("0.636"), dec("0")),
    ),
    (
        C,
        *(22, 6, 3, 4, 3, 3, 0, 1, 0.5, 1200.0, 600.0, 213050.0, 5, ["@107", "BTC", "ETH", "SOL", "xyz:TSLA"]),
        *(1, 599.0, 7, 158300.0, 158200 / 158300, dec("23.73"), dec("10000")),
    ),
]

FILL_COLS = [
    "time",
    "ethAddress",
    "oid",
    "tid",
    "dex",
    "coin",
    "side",
    "px",
    "sz",
    "notionalUsd",
    "isMaker",
    "fee",
    "feeToken",
    "feeUsd",
    "builderFee",
    "closedPnl",
]
# fmt: off
FILLS_D1 = [
    (at(D1, "10:30:00"), A, 190, 9001, "", "ETH", "A", dec("2990"), dec("2"), 5980.0, False, dec("2.691"), "USDC",
     dec("2.691"), None, dec("-20")),
]
# By time; B-202's D3 fill is not in D2.
FILLS_D2 = [
    (at(D2, "00:59:59"), A, 101, 1011, "", "BTC", "B", dec("60000"), dec("0.5"), 30000.0, True, dec("3"), "USDC",
     dec("3"), None, dec("0")),
    (at(D2, "01:59:59"), A, 101, 1012, "", "BTC", "B", dec("60000"), dec("1.5"), 90000.0, True, dec("9"), "USDC",
     dec("9"), None, dec("0")),
    (at(D2, "10:14:59"), C, 321, 3211, "", "ETH", "A", dec("3010"), dec("10"), 30100.0, True, dec("4.515"), "USDC",
     dec("4.515"), None, dec("0")),
    (at(D2, "10:29:58"), C, 322, 3221, "", "ETH", "A", dec("3020"), dec("20"), 60400.0, True, dec("9.06"), "USDC",
     dec("9.06"), None, dec("0")),
    (at(D2, "10:29:59"), C, 322, 3222, "", "ETH", "A", dec("3020"), dec("10"), 30200.0, True, dec("4.53"), "USDC",
     dec("4.53"), None, dec("0")),
    (at(D2, "11:50:00"), B, 201, 2011, "", "HYPE", "B", dec("1.25"), dec("40"), 50.0, False, dec("0.0225"), "USDC",
     dec("0.0225"), None, dec("0")),
    (at(D2, "11:54:59"), B, 201, 2012, "", "HYPE", "B", dec("1.5"), dec("60"), 90.0, True, dec("0.0135"), "USDC",
     dec("0.0135"), None, dec("0")),
    (at(D2, "12:30:00"), C, 370, 3701, "", "@107", "B", dec("0.625"), dec("160"), 100.0, False, dec("0.056"), "HYPE",
     None, None, dec("0")),
    (at(D2, "13:05:00"), B, 202, 2021, "", "SOL", "B", dec("200"), dec("20"), 4000.0, True, dec("0.6"), "USDC",
     dec("0.6"), None, dec("0")),
    (at(D2, "13:09:59"), C, 350, 3501, "xyz", "xyz:TSLA", "B", dec("250"), dec("6"), 1500.0, True, dec("0.225"),
     "USDC", dec("0.225"), dec("0.03"), dec("0")),
    (at(D2, "13:19:59"), C, 350, 3502, "xyz", "xyz:TSLA", "B", dec("250"), dec("4"), 1000.0, True, dec("0.15"),
     "USDC", dec("0.15"), dec("0.02"), dec("0")),
    (at(D2, "14:09:59"), C, 360, 3601, "", "BTC", "A", dec("70000"), dec("0.5"), 35000.0, True, dec("5.25"), "USDC",
     dec("5.25"), None, dec("10000")),
]
# fmt: on
