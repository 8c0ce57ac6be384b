"""The expected ``trader_daily_stats`` rows of both days, worked out by hand."""

from __future__ import annotations

from .base import A, B, C, dec

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
