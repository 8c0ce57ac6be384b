"""The expected ``large_change_alerts`` rows of both days, worked out by hand."""

from __future__ import annotations

from .base import D1, D2, A, C, at

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
