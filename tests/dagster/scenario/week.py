"""A hand-built week (2026-11-01 .. 2026-11-08) for the scorecards: three traders' orders, fills,
positions, account samples and one mark, with every figure worked out by hand in
``tests/dagster/test_scorecards.py``.

P (BTC, followed from 11-01 09:00, its first order event): opens a long (11-01 10:00, 1 @ 100),
adds (12:00, 1 @ 110; entry 105), reduces (11-02 09:00, 1 @ 120: +15, through a modified order
3 -> 4), flips short (11-03 09:00, sells 3 @ 100: -5 on the long's last 1, short 2 @ 100), closes
the short (11-04 15:00, an IOC that never rested: buys 2 @ 90, +20), opens and closes a short within
an hour (11-05, IOCs: 1 @ 90, then 1 @ 99: -9), opens a long (11-06 10:00, 2 @ 100) still open at
11-08's end (mark 104.5). Account samples on the main dex every day, one on the HIP-3 dex "xyz".
Q (ETH, only IOC fills, no order event): long 10 @ 10 -> 12 (11-01 .. 11-02, +20), short 5 @ 12 ->
11 (11-03, +5); dropped from the watch list on 11-04 (``watching`` false), nothing after.
R (SOL, followed from 11-06 14:00, its first order event): one fill from 11-05 recovered over
REST when R was added (closing a long whose opening orderwatch never saw, +4), then a long opened
by a resting order (11-06 14:30).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .base import at
from .fills import fill
from .order_docs import order, replace
from .positions import position

DAYS = [f"2026-11-0{d}" for d in range(1, 9)]
W1, W2, W3, W4, W5, W6, W7, W8 = DAYS
P = "0x" + "1" * 40
Q = "0x" + "2" * 40
R = "0x" + "3" * 40


def _book(distance: float, when: datetime) -> dict[str, Any]:
    return {"bookMidPx": 100.0, "distanceBps": distance, "bookAt": when}


def _placed(addr: str, oid: int, when: datetime, *, coin: str, side: str, sz: str, px: str, bps: float) -> dict:
    return order(addr, oid, "new", 0, when, coin=coin, side=side, sz=sz, px=px, placed=when, **_book(bps, when))


def _closed(addr: str, oid: int, when: datetime, placed: datetime, status: str, *, coin: str, side: str,
            sz: str, px: str) -> dict:
    return order(addr, oid, "closed", 1, when, coin=coin, side=side, sz=sz, px=px, placed=placed,
                 finalStatus=status, statusTimestamp=when)


def orders() -> list[dict[str, Any]]:
    btc = {"coin": "BTC"}
    # fmt: off
    docs = [
        _placed(P, 1, at(W1, "09:00:00"), side="B", sz="1.0", px="100.0", bps=5.0, **btc),
        _closed(P, 1, at(W1, "10:00:01"), at(W1, "09:00:00"), "filled", side="B", sz="0.0", px="100.0", **btc),
        _placed(P, 2, at(W1, "11:00:00"), side="B", sz="1.0", px="110.0", bps=10.0, **btc),
        _closed(P, 2, at(W1, "12:00:01"), at(W1, "11:00:00"), "filled", side="B", sz="0.0", px="110.0", **btc),
        _placed(P, 3, at(W2, "08:00:00"), side="A", sz="1.0", px="121.0", bps=20.0, **btc),
        *replace(P, 3, 1, 4, at(W2, "08:30:00"), side="A", old_sz="1.0", old_px="121.0",
                 old_placed=at(W2, "08:00:00"), sz="1.0", px="120.0", match="inferred", **btc),
        _closed(P, 4, at(W2, "09:00:01"), at(W2, "08:30:00"), "filled", side="A", sz="0.0", px="120.0", **btc),
        _placed(P, 5, at(W3, "08:30:00"), side="A", sz="3.0", px="100.0", bps=-2.0, **btc),
        _closed(P, 5, at(W3, "09:00:01"), at(W3, "08:30:00"), "filled", side="A", sz="0.0", px="100.0", **btc),
        _placed(P, 6, at(W4, "10:00:00"), side="B", sz="5.0", px="80.0", bps=50.0, **btc),
        _closed(P, 6, at(W4, "11:00:00"), at(W4, "10:00:00"), "canceled", side="B", sz="5.0", px="80.0", **btc),
        _placed(P, 10, at(W6, "09:50:00"), side="B", sz="2.0", px="100.0", bps=8.0, **btc),
        _closed(P, 10, at(W6, "10:00:01"), at(W6, "09:50:00"), "filled", side="B", sz="0.0", px="100.0", **btc),
        _placed(P, 11, at(W8, "12:00:00"), side="A", sz="2.0", px="130.0", bps=30.0, **btc),
        _closed(P, 11, at(W8, "13:00:00"), at(W8, "12:00:00"), "canceled", side="A", sz="2.0", px="130.0", **btc),
        _placed(R, 70, at(W6, "14:00:00"), coin="SOL", side="B", sz="10.0", px="20.0", bps=12.0),
        _closed(R, 70, at(W6, "14:30:01"), at(W6, "14:00:00"), "filled", coin="SOL", side="B", sz="0.0",
                px="20.0"),
    ]
    # fmt: on
    return docs


def fills() -> list[dict[str, Any]]:
    btc = {"coin": "BTC"}
    eth = {"coin": "ETH"}
    # fmt: off
    docs = [
        fill(P, 1, 11, at(W1, "10:00:00"), side="B", px="100.0", sz="1.0", crossed=False, fee="0.5", **btc),
        fill(P, 2, 12, at(W1, "12:00:00"), side="B", px="110.0", sz="1.0", crossed=True, fee="1.1",
             start_position="1.0", **btc),
        fill(P, 4, 13, at(W2, "09:00:00"), side="A", px="120.0", sz="1.0", crossed=False, fee="1.2",
             closed_pnl="15.0", direction="Close Long", start_position="2.0", **btc),
        fill(P, 5, 14, at(W3, "09:00:00"), side="A", px="100.0", sz="3.0", crossed=True, fee="3.0",
             closed_pnl="-5.0", direction="Long > Short", start_position="1.0", **btc),
        fill(P, 7, 15, at(W4, "15:00:00"), side="B", px="90.0", sz="2.0", crossed=True, fee="1.8",
             closed_pnl="20.0", direction="Close Short", start_position="-2.0", **btc),
        fill(P, 8, 16, at(W5, "10:00:00"), side="A", px="90.0", sz="1.0", crossed=True, fee="0.9",
             direction="Open Short", **btc),
        fill(P, 9, 17, at(W5, "11:00:00"), side="B", px="99.0", sz="1.0", crossed=True, fee="0.99",
             closed_pnl="-9.0", direction="Close Short", start_position="-1.0", **btc),
        fill(P, 10, 18, at(W6, "10:00:00"), side="B", px="100.0", sz="2.0", crossed=False, fee="2.0", **btc),
        fill(Q, 50, 51, at(W1, "06:00:00"), side="B", px="10.0", sz="10.0", crossed=True, fee="0.1", **eth),
        fill(Q, 51, 52, at(W2, "06:00:00"), side="A", px="12.0", sz="10.0", crossed=True, fee="0.12",
             closed_pnl="20.0", direction="Close Long", start_position="10.0", **eth),
        fill(Q, 52, 53, at(W3, "06:00:00"), side="A", px="12.0", sz="5.0", crossed=False, fee="0.06",
             direction="Open Short", **eth),
        fill(Q, 53, 54, at(W3, "07:00:00"), side="B", px="11.0", sz="5.0", crossed=False, fee="0.055",
             closed_pnl="5.0", direction="Close Short", start_position="-5.0", **eth),
        # R: recovered over REST when R was added, 18 hours after it traded.
        fill(R, 69, 71, at(W5, "20:00:00"), coin="SOL", side="A", px="21.0", sz="5.0", crossed=True, fee="0.1",
             closed_pnl="4.0", direction="Close Long", start_position="5.0")
        | {"source": "rest", "observedAt": at(W6, "14:00:05"), "createdAt": at(W6, "14:00:06"),
           "storedAt": at(W6, "14:00:06")},
        fill(R, 70, 72, at(W6, "14:30:00"), coin="SOL", side="B", px="20.0", sz="10.0", crossed=False,
             fee="0.2"),
    ]
    # fmt: on
    return docs


def _pos(when: datetime, szi: str, entry: str, leverage: int, value: str) -> dict[str, Any]:
    return position(P, "BTC", szi, when, entry) | {"leverage": leverage, "positionValue": value,
                                                    "unrealizedPnl": "0.0"}


def positions() -> list[dict[str, Any]]:
    return [
        _pos(at(W1, "10:00:02"), "1.0", "100.0", 10, "100.0"),
        _pos(at(W1, "12:00:02"), "2.0", "105.0", 10, "220.0"),
        _pos(at(W2, "09:00:02"), "1.0", "105.0", 10, "120.0"),
        _pos(at(W3, "09:00:02"), "-2.0", "100.0", 20, "200.0"),
        _pos(at(W4, "15:00:02"), "0.0", "100.0", 20, "0.0"),
        _pos(at(W5, "10:00:02"), "-1.0", "90.0", 5, "90.0"),
        _pos(at(W5, "11:00:02"), "0.0", "90.0", 5, "0.0"),
        _pos(at(W6, "10:00:02"), "2.0", "100.0", 3, "200.0"),
    ]


ACCOUNT_VALUES = {
    W1: [("09:30:00", "1000.0", "1000.0"), ("12:00:00", "1250.0", "1140.0"), ("18:00:00", "1000.0", "810.0")],
    W2: [("10:00:00", "1050.0", "935.0"), ("20:00:00", "1200.0", "1083.0")],
    W3: [("10:00:00", "1020.0", "1224.0"), ("20:00:00", "1150.0", "1344.0")],
    W4: [("12:00:00", "1170.0", "1360.0")],
    W5: [("12:00:00", "1161.0", "1161.0")],
    W6: [("12:00:00", "1161.0", "959.0")],
    W7: [("12:00:00", "1200.0", "996.0")],
    W8: [("12:00:00", "1260.0", "1054.0")],
}
"""P's main-dex account samples (UTC time, accountValue, totalRawUsd). totalRawUsd = accountValue -
szi x mark of the position held then, at these BTC marks: W1 12:00 1 @ 100 at 110 (unrealized +10),
18:00 2 @ 105 at 95 (-20); W2 1 @ 105 at 115 (+10), 117 (+12); W3 -2 @ 100 at 102 (-4), 97 (+6);
W4 -2 @ 100 at 95 (+10); W6, W7, W8 2 @ 100 at 101, 102, 103 (+2, +4, +6); flat otherwise."""

UNREALIZED_AT_LAST_SAMPLE = {W1: -20.0, W2: 12.0, W3: 6.0, W6: 2.0, W7: 4.0, W8: 6.0}
"""P's unrealized PnL at each day's last sample, of the days it ends with a position open."""


def account(addr: str, dex: str, when: datetime, value: str, raw: str) -> dict[str, Any]:
    """A ``trader_accounts`` document (schema.ACCOUNTS)."""
    return {
        "ethAddress": addr,
        "dex": dex,
        "accountValue": value,
        "totalNtlPos": "200.0",
        "totalRawUsd": raw,
        "totalMarginUsed": "20.0",
        "crossMaintenanceMarginUsed": "5.0",
        "withdrawable": value,
        "serverTime": when,
        "observedAt": when + timedelta(seconds=1),
        "createdAt": when + timedelta(seconds=1),
        "storedAt": when + timedelta(seconds=2),
        "source": "ws",
    }


def accounts() -> list[dict[str, Any]]:
    main = [account(P, "", at(day, hms), v, raw) for day, samples in ACCOUNT_VALUES.items() for hms, v, raw in samples]
    return [*main, account(P, "xyz", at(W8, "12:00:00"), "500.0", "500.0")]


def marks() -> list[dict[str, Any]]:
    """``market_marks``: BTC's mark late on the last day; ETH's is older than anything of Q's."""
    return [
        {"_id": "BTC", "markPx": "104.5", "at": at(W8, "20:00:00"), "observedAt": at(W8, "20:00:01"), "source": "ws"},
        {"_id": "ETH", "markPx": "11.5", "at": at(W1, "00:00:00"), "observedAt": at(W1, "00:00:01"), "source": "ws"},
    ]


def watchlist() -> list[dict[str, Any]]:
    """P and R are followed; Q was dropped on 11-04 (``watching`` false, its label kept)."""
    return [
        {"_id": P, "label": "Pat", "tags": ["btc"], "watching": True, "updatedAt": at(W1, "00:00:00")},
        {"_id": Q, "label": "Quitter", "tags": [], "watching": False, "updatedAt": at(W4, "00:00:00")},
        {"_id": R, "label": "Rookie", "tags": [], "watching": True, "updatedAt": at(W6, "14:00:00")},
    ]
