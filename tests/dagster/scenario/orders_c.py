"""Trader C's seeded ``trader_orders`` events, where modifies are cancel-and-replace (new oid)."""

from __future__ import annotations

from typing import Any

from .base import BOOK_C320, BOOK_C331, D1, D2, C, at
from .order_docs import order, replace


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
