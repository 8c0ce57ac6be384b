"""The expected ``fills`` table rows of both days, worked out by hand."""

from __future__ import annotations

from .base import D1, D2, A, B, C, at, dec

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
