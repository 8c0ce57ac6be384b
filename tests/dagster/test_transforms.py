"""The pure transforms against the hand-worked scenario, without MongoDB or Dagster."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from orderwatch_dagster import tables
from orderwatch_dagster.partitions import day_bounds
from orderwatch_dagster.transforms.alerts import AlertThresholds, large_change_alerts
from orderwatch_dagster.transforms.chains import chain_members, replacement_links
from orderwatch_dagster.transforms.common import outcome_expr, watchlist_frame
from orderwatch_dagster.transforms.daily_stats import trader_daily_stats
from orderwatch_dagster.transforms.events import (
    RAW_ORDER_SCHEMA,
    closes_without_new,
    duplicate_event_keys,
    normalize_order_events,
)
from orderwatch_dagster.transforms.fills import (
    RAW_FILL_SCHEMA,
    duplicate_fill_keys,
    normalize_fills,
    unseen_fill_orders,
)
from orderwatch_dagster.transforms.lifecycles import (
    fills_disagree_with_events,
    lifecycle_fill_mismatches,
    order_lifecycles,
)
from orderwatch_dagster.transforms.open_orders import open_orders_snapshot
from orderwatch_dagster.transforms.positions import RAW_POSITION_SCHEMA, positions_snapshot
from tests.dagster import scenario as sc


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    raw = pl.from_dicts(sc.orders(), schema=RAW_ORDER_SCHEMA, strict=False)
    return normalize_order_events(raw)


@pytest.fixture(scope="module")
def fills() -> pl.DataFrame:
    return normalize_fills(pl.from_dicts(sc.fills(), schema=RAW_FILL_SCHEMA, strict=False))


def rows(df: pl.DataFrame, cols: list[str]) -> list[tuple]:
    return [tuple(r) for r in df.select(cols).iter_rows()]


def test_normalize_types_and_falls_back_to_created_at(events: pl.DataFrame) -> None:
    assert events.schema == tables.schema(tables.ORDER_EVENTS)
    upd = events.filter((pl.col("oid") == 202) & (pl.col("action") == "updated"))
    assert upd["eventAt"].item() == sc.at(sc.D2, "13:10:00")
    assert events["eventAt"].is_sorted()


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.LIFECYCLES_D1), (sc.D2, sc.LIFECYCLES_D2)])
def test_order_lifecycles(events: pl.DataFrame, fills: pl.DataFrame, day: str, expected: list[dict]) -> None:
    df = order_lifecycles(events.lazy(), day, fills.lazy())
    assert df.schema == tables.schema(tables.ORDER_LIFECYCLES)
    assert df.select(sc.LIFECYCLE_COLS).to_dicts() == expected


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.ALERTS_D1), (sc.D2, sc.ALERTS_D2)])
def test_large_change_alerts(events: pl.DataFrame, day: str, expected: list[tuple]) -> None:
    df = large_change_alerts(events, day)
    assert rows(df, sc.ALERT_COLS) == expected
    assert df["alertKey"].is_unique().all()
    assert df.schema == tables.schema(tables.LARGE_CHANGE_ALERTS)


def test_alert_thresholds_are_parameters(events: pl.DataFrame) -> None:
    strict = large_change_alerts(events, sc.D2, AlertThresholds(threshold_usd=125_000))
    assert rows(strict, ["alertKey", "reason"]) == [
        (f"{sc.A}:103:new", "large_order"),
        (f"{sc.A}:103:closed", "large_close"),
        (f"{sc.A}:102:updated:2", "large_change"),
        (f"{sc.C}:331:new", "large_change"),  # 20k -> 120k changes by 100k, whatever the threshold
    ]
    loose = large_change_alerts(
        events, sc.D2, AlertThresholds(min_change_share=0.2, min_change_usd=20_000)
    )
    assert f"{sc.A}:101:updated:1" in loose["alertKey"].to_list()  # 120k -> 90k: 25% and 30k


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.OPEN_ORDERS_D1), (sc.D2, sc.OPEN_ORDERS_D2)])
def test_open_orders_snapshot(events: pl.DataFrame, day: str, expected: list[tuple]) -> None:
    df = open_orders_snapshot(events, day)
    assert rows(df, sc.OPEN_ORDER_COLS) == expected


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.POSITIONS_D1), (sc.D2, sc.POSITIONS_D2)])
def test_positions_snapshot(day: str, expected: list[tuple]) -> None:
    raw = pl.from_dicts(sc.positions(), schema=RAW_POSITION_SCHEMA, strict=False)
    df = positions_snapshot(raw, day)
    assert rows(df, sc.POSITION_COLS) == expected
    assert df.schema == tables.schema(tables.POSITIONS_SNAPSHOT)


def test_positions_snapshot_carries_each_positions_mark_and_distance_to_liquidation() -> None:
    served = sc.at(sc.D1, "20:00:00")
    docs = [  # a long 20 % above its liquidation price, a short 25 % below, and one with no liquidation price
        sc.position(sc.A, "BTC", "2.0", served) | {"positionValue": "120000.0", "liquidationPx": "48000.0"},
        sc.position(sc.A, "SOL", "-20.0", served) | {"positionValue": "4000.0", "liquidationPx": "250.0"},
        sc.position(sc.B, "ETH", "5.0", served) | {"positionValue": "15000.0"},
    ]
    df = positions_snapshot(pl.from_dicts(docs, schema=RAW_POSITION_SCHEMA, strict=False), sc.D1)
    assert rows(df, ["coin", "side", "markPx", "liquidationDistancePct"]) == [
        ("BTC", "long", 60000.0, 20.0), ("SOL", "short", 200.0, 25.0), ("ETH", "long", 3000.0, None)]


@pytest.mark.parametrize(("day", "expected"), [(sc.D1, sc.STATS_D1), (sc.D2, sc.STATS_D2)])
def test_trader_daily_stats(events: pl.DataFrame, fills: pl.DataFrame, day: str, expected: list[tuple]) -> None:
    df = trader_daily_stats(events, day, fills=fills)
    assert rows(df, sc.STATS_COLS) == expected
    assert df.schema == tables.schema(tables.TRADER_DAILY_STATS)
    # Same result when handed the day's lifecycles.
    lifecycles = order_lifecycles(events, day, fills)
    assert df.equals(trader_daily_stats(events, day, lifecycles=lifecycles, fills=fills))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("filled", "filled"),
        ("canceled", "canceled"),
        ("marginCanceled", "canceled"),
        ("vaultWithdrawalCanceled", "canceled"),
        ("scheduledCancel", "canceled"),
        ("internalCancel", "canceled"),
        ("rejected", "rejected"),
        ("perpMarginRejected", "rejected"),
        ("triggered", "triggered"),
        ("unknown", "unknown"),
        ("somethingNew", "unknown"),
        (None, "open"),
    ],
)
def test_outcome_by_suffix(status: str | None, outcome: str) -> None:
    df = pl.DataFrame({"s": [status]}, schema={"s": pl.String})
    assert df.select(outcome_expr(pl.col("s"))).to_series().item() == outcome


def test_duplicate_keys_and_orphan_closes(events: pl.DataFrame) -> None:
    assert duplicate_event_keys(events).is_empty()
    dup = pl.concat([events, events.filter((pl.col("oid") == 102) & (pl.col("seq") <= 1))])
    found = duplicate_event_keys(dup)
    assert rows(found, ["oid", "action", "seq", "count"]) == [(102, "new", None, 2), (102, "updated", 1, 2)]
    assert closes_without_new(events, sc.D2).is_empty()  # 201 was recovered over REST
    orphan = events.with_columns(source=pl.lit("ws"))
    assert rows(closes_without_new(orphan, sc.D2), ["ethAddress", "oid"]) == [(sc.B, 201)]
    # Without D1's events, 101's close and C-300's (replaced on D2) have no new event.
    assert rows(
        closes_without_new(events.filter(pl.col("eventAt") >= sc.at(sc.D2, "00:00:00")), sc.D2), ["oid"]
    ) == [(101,), (300,)]


# Amend chains (a modify is a cancel-and-replace) -------------------------------------------


def by_root(df: pl.DataFrame, addr: str, cols: list[str]) -> dict[int, tuple]:
    return {r[0]: tuple(r[1:]) for r in df.filter(pl.col("ethAddress") == addr).select("rootOid", *cols).iter_rows()}


def test_dex_comes_from_the_coin_for_old_documents(events: pl.DataFrame) -> None:
    old = events.filter((pl.col("oid") == 350) & (pl.col("action") == "updated"))
    assert "dex" not in next(d for d in sc.orders() if d["oid"] == 350 and d["action"] == "updated")
    assert old["dex"].to_list() == ["xyz"]
    assert dict(events.group_by("coin").agg(pl.col("dex").unique()).iter_rows()) == {
        c: ["xyz" if c == "xyz:TSLA" else ""] for c in events["coin"].unique()
    }


def test_each_amend_chain_is_one_lifecycle_row(events: pl.DataFrame, fills: pl.DataFrame) -> None:
    cols = ["oid", "amendCount", "placedAt", "outcome", "filledSz"]
    d1 = by_root(order_lifecycles(events, sc.D1, fills), sc.C, cols)
    assert d1 == {300: (300, 0, sc.at(sc.D1, "20:00:00"), "open", 0)}
    d2 = by_root(order_lifecycles(events, sc.D2, fills).filter(pl.col("seenInEvents")), sc.C, cols)
    assert d2 == {
        300: (310, 1, sc.at(sc.D1, "20:00:00"), "canceled", 0),  # spans D1 -> D2
        320: (322, 2, sc.at(sc.D2, "10:00:00"), "filled", 40),  # cloid chain of 3
        330: (331, 1, sc.at(sc.D2, "11:00:00"), "open", 0),  # inferred link, no cloid
        340: (340, 0, sc.at(sc.D2, "12:00:00"), "canceled", 0),
        350: (350, 0, sc.at(sc.D2, "13:00:00"), "filled", 10),
        360: (360, 0, sc.at(sc.D2, "14:00:00"), "filled", Decimal("0.5")),  # the link from a fill is ignored
        361: (361, 0, sc.at(sc.D2, "14:10:00"), "canceled", 0),
    }


def test_stats_count_amends_apart_from_cancels(events: pl.DataFrame) -> None:
    c = trader_daily_stats(events, sc.D2).filter(pl.col("ethAddress") == sc.C).to_dicts()[0]
    assert (c["ordersPlaced"], c["amends"], c["ordersAmended"]) == (6, 4, 3)
    # 300, 320, 321 and 330 were replaced, not canceled: the canceled logical orders are 300->310, 340, 361.
    assert (c["ordersCanceled"], c["ordersFilled"], c["openOrdersAtEnd"], c["cancelRatio"]) == (3, 3, 1, 0.5)


def test_an_alert_on_a_replacement_compares_with_the_replaced_order(events: pl.DataFrame) -> None:
    alerts = large_change_alerts(events, sc.D2).filter(pl.col("ethAddress") == sc.C)
    assert rows(alerts, ["oid", "action", "replacesOid", "notionalBeforeUsd", "notionalAfterUsd", "reason"]) == [
        (320, "new", None, 0.0, 120000.0, "large_order"),
        (331, "new", 330, 20000.0, 120000.0, "crossed_threshold,large_change"),
    ]
    assert alerts["message"][1] == (
        f"{sc.C} B SOL oid 331 new (replaces oid 330): crossed_threshold,large_change notional 20000 -> 120000 USD"
    )


def drop_link(events: pl.DataFrame, oid: int, action: str) -> pl.DataFrame:
    """The events with the link fields of one event removed (the collector had not linked it)."""
    hit = (pl.col("oid") == oid) & (pl.col("action") == action)
    return events.with_columns(
        [pl.when(hit).then(None).otherwise(pl.col(c)).alias(c) for c in ("replacesOid", "replacedByOid")]
    )


@pytest.mark.parametrize(
    ("dropped", "chained"),
    [([], True), ([(331, "new")], True), ([(330, "closed")], True), ([(331, "new"), (330, "closed")], False)],
)
def test_a_link_on_either_half_makes_the_chain(events: pl.DataFrame, dropped: list, chained: bool) -> None:
    for oid, action in dropped:
        events = drop_link(events, oid, action)
    lc = by_root(order_lifecycles(events, sc.D2), sc.C, ["oid", "outcome"])
    stats = trader_daily_stats(events, sc.D2).filter(pl.col("ethAddress") == sc.C)
    if chained:
        assert lc[330] == (331, "open") and 331 not in lc
        assert stats.select("ordersPlaced", "ordersCanceled").row(0) == (6, 3)
    else:  # two unrelated orders: a cancel and a fresh placement
        assert (lc[330], lc[331]) == ((330, "canceled"), (331, "open"))
        assert stats.select("ordersPlaced", "ordersCanceled").row(0) == (7, 4)


def test_a_spurious_link_known_only_from_the_replacement_is_ignored(events: pl.DataFrame) -> None:
    # 360 filled; only 361's new event names it: its close must be looked up to rule the link out.
    events = drop_link(events, 360, "closed")
    lc = by_root(order_lifecycles(events, sc.D2), sc.C, ["oid", "outcome"])
    assert (lc[360], lc[361]) == ((360, "filled"), (361, "canceled"))


def test_a_replacement_not_seen_yet_keeps_its_chain_open(events: pl.DataFrame) -> None:
    # 330's close names 331, whose own events are missing: the logical order goes on as 331.
    events = events.filter(pl.col("oid") != 331)
    lc = order_lifecycles(events, sc.D2).filter(pl.col("rootOid") == 330)
    assert rows(lc, ["oid", "outcome", "closedAt", "amendCount", "coin", "origSz"]) == [
        (331, "open", None, 1, "SOL", 100)
    ]


def chain_events(n: int, *, addr: str = sc.C, first_oid: int = 1000, status: str = "filled") -> pl.DataFrame:
    """One order re-quoted ``n - 1`` times on D2 (every minute from 10:00), the last one ending ``status``."""
    docs = []
    t0 = sc.at(sc.D2, "10:00:00")
    for k in range(n):
        oid, t = first_oid + k, t0 + timedelta(minutes=k)
        px = str(100 + k)
        links = {"replacesOid": oid - 1, "replaceMatch": "inferred"} if k else {}
        docs.append(sc.order(addr, oid, "new", 0, t, coin="ETH", side="B", sz="1.0", px=px, placed=t, **links))
        last = k == n - 1
        close = {} if last else {"replacedByOid": oid + 1, "replaceMatch": "inferred"}
        docs.append(
            sc.order(
                addr,
                oid,
                "closed",
                1,
                t + timedelta(minutes=1 if not last else 5),
                coin="ETH",
                side="B",
                sz="1.0",
                px=px,
                placed=t,
                finalStatus="canceled" if not last else status,
                **close,
            )
        )
    return normalize_order_events(pl.from_dicts(docs, schema=RAW_ORDER_SCHEMA, strict=False))


def test_a_long_chain_resolves_to_its_first_order() -> None:
    events = chain_events(700)  # a market maker re-quoting: 700 orders, 699 replacements
    lc = order_lifecycles(events, sc.D2)
    assert rows(lc, ["rootOid", "oid", "amendCount", "nPriceChanges", "placedAt", "outcome", "filledSzEvents"]) == [
        (1000, 1699, 699, 699, sc.at(sc.D2, "10:00:00"), "filled", 1)
    ]
    members = chain_members(replacement_links(events))
    assert members.height == 700 and members["rootOid"].unique().to_list() == [1000]
    stats = trader_daily_stats(events, sc.D2)
    assert stats.select("ordersPlaced", "amends", "ordersAmended", "ordersFilled", "ordersCanceled").row(0) == (
        1,
        699,
        1,
        1,
        0,
    )


def test_conflicting_and_backward_links_still_make_paths() -> None:
    events = chain_events(3)  # 1000 -> 1001 -> 1002
    # A second order claims to replace 1000 too, and one claims a larger oid: each order keeps
    # one predecessor (the largest) and one successor (the smallest); backward links are ignored.
    t = sc.at(sc.D2, "11:00:00")
    extra = [
        sc.order(sc.C, 1005, "new", 0, t, coin="ETH", side="B", sz="1.0", px="1", placed=t, replacesOid=1000),
        sc.order(sc.C, 1006, "new", 0, t, coin="ETH", side="B", sz="1.0", px="1", placed=t, replacesOid=2000),
    ]
    more = normalize_order_events(pl.from_dicts(extra, schema=RAW_ORDER_SCHEMA, strict=False))
    links = replacement_links(pl.concat([events, more]))
    assert sorted(links.select("old", "new").iter_rows()) == [(1000, 1001), (1001, 1002)]
    lc = order_lifecycles(pl.concat([events, more]), sc.D2)
    assert rows(lc, ["rootOid", "oid"]) == [(1000, 1002), (1005, 1005), (1006, 1006)]


def test_orders_closed_before_the_day_show_up_only_on_a_chain_still_going() -> None:
    # The lifecycles drop the events of orders closed before the day before aggregating: only
    # those of the whole order (every close before the day), of that trader, and not on a chain
    # whose last order is open or closed that day.
    t1, t2 = sc.at(sc.D1, "10:00:00"), sc.at(sc.D2, "10:00:00")

    def ev(addr: str, oid: int, action: str, seq: int, at: datetime, **extra: Any) -> dict[str, Any]:
        return sc.order(addr, oid, action, seq, at, coin="ETH", side="B", sz="1.0", px="100", placed=t1, **extra)

    docs = [
        # A's 5000 closed on D1; B's 5000 (another trader, the same oid) is still open
        ev(sc.A, 5000, "new", 0, t1),
        ev(sc.A, 5000, "closed", 1, t1 + timedelta(minutes=1), finalStatus="canceled"),
        ev(sc.B, 5000, "new", 0, t1),
        # a close on D1 and another on D2: closed on D2
        ev(sc.A, 5001, "new", 0, t1),
        ev(sc.A, 5001, "closed", 1, t1 + timedelta(minutes=1), finalStatus="canceled"),
        ev(sc.A, 5001, "closed", 2, t2, finalStatus="filled"),
        # 6000 replaced on D1 by 6001, still open: 6000 shows up in 6001's chain
        ev(sc.C, 6000, "new", 0, t1),
        ev(sc.C, 6000, "closed", 1, t1 + timedelta(minutes=1), finalStatus="canceled", replacedByOid=6001),
        ev(sc.C, 6001, "new", 0, t1 + timedelta(minutes=1), replacesOid=6000),
        # 6100 replaced on D1 by 6101, which closed on D1 too: gone
        ev(sc.C, 6100, "new", 0, t1),
        ev(sc.C, 6100, "closed", 1, t1 + timedelta(minutes=1), finalStatus="canceled", replacedByOid=6101),
        ev(sc.C, 6101, "new", 0, t1 + timedelta(minutes=1), replacesOid=6100),
        ev(sc.C, 6101, "closed", 1, t1 + timedelta(minutes=2), finalStatus="canceled"),
    ]
    events = normalize_order_events(pl.from_dicts(docs, schema=RAW_ORDER_SCHEMA, strict=False))
    lc = order_lifecycles(events, sc.D2)
    assert rows(lc, ["ethAddress", "rootOid", "oid", "outcome", "amendCount", "oids"]) == [
        (sc.A, 5001, 5001, "filled", 0, [5001]),
        (sc.B, 5000, 5000, "open", 0, [5000]),
        (sc.C, 6000, 6001, "open", 1, [6000, 6001]),
    ]


def test_an_order_large_only_before_its_first_stored_event_still_alerts() -> None:
    # Only the orders with a large notional are looked at closely: an update's prevSz x
    # prevLimitPx counts as one. Here the store holds none of the order's large states (its
    # `new` event was never stored), only an update that shrank it from 200k to 10k USD.
    t = sc.at(sc.D2, "10:00:00")
    docs = [
        sc.order(sc.A, 7000, "updated", 1, t, coin="BTC", side="B", sz="0.1", px="100000", placed=t,
                 prevSz="2.0", prevLimitPx="100000", changes=["sz"]),
        sc.order(sc.A, 7000, "closed", 2, t + timedelta(minutes=1), coin="BTC", side="B", sz="0.1",
                 px="100000", placed=t, finalStatus="canceled"),
    ]
    events = normalize_order_events(pl.from_dicts(docs, schema=RAW_ORDER_SCHEMA, strict=False))
    alerts = large_change_alerts(events, sc.D2)
    assert rows(alerts, ["alertKey", "reason", "notionalBeforeUsd", "notionalAfterUsd"]) == [
        (f"{sc.A}:7000:updated:1", "large_change", 200_000.0, 10_000.0)
    ]


def test_the_reference_implementation_agrees_on_the_scenario(events: pl.DataFrame) -> None:
    # The benchmark's pure-Python reference follows the same definitions (its equality check
    # on synthetic data is only as good as this agreement on hand-worked data).
    from benchmarks import reference
    from benchmarks import transforms as bench

    dicts = events.to_dicts()
    for day in (sc.D1, sc.D2):
        for name in bench.COMPARED:
            fast = bench.FAST[name](events, day).to_dicts()
            assert bench.same_rows(fast, getattr(reference, name)(dicts, day), name), (name, day)


# Fills, execution quality and the book ----------------------------------------------------


def day_of(df: pl.DataFrame, day: str, col: str = "time") -> pl.DataFrame:
    return df.filter(pl.col(col).dt.date() == sc.at(day, "00:00:00").date())


def test_normalize_fills_types_every_field(fills: pl.DataFrame) -> None:
    assert fills.schema == tables.schema(tables.FILLS)
    assert fills["time"].is_sorted()
    assert rows(day_of(fills, sc.D1), sc.FILL_COLS) == sc.FILLS_D1
    assert rows(day_of(fills, sc.D2), sc.FILL_COLS) == sc.FILLS_D2
    # A liquidation fill with a TWAP id and a rebate, and a document without the optional keys.
    liq = sc.fill(sc.A, 500, 5001, sc.at(sc.D2, "16:00:00"), coin="ETH", side="A", px="2900.5", sz="0.1",
                  crossed=True, fee="-0.01", closed_pnl="-5.5", twapId=77,
                  liquidation={"liquidatedUser": sc.A, "markPx": "2901.0", "method": "market"})  # fmt: skip
    bare = {k: v for k, v in sc.fill(sc.A, 501, 5011, sc.at(sc.D2, "16:00:01"), coin="ETH", side="A", px="1",
                                     sz="1", crossed=False, fee="0").items()
            if k not in ("twapId", "dex", "hash", "feeToken")}  # fmt: skip
    df = normalize_fills(pl.from_dicts([liq, bare], schema=RAW_FILL_SCHEMA, strict=False))
    cols = ["twapId", "liquidatedUser", "liquidationMarkPx", "liquidationMethod", "fee", "feeUsd", "isMaker", "dex"]
    assert rows(df, cols) == [
        (77, sc.A, Decimal("2901"), "market", Decimal("-0.01"), Decimal("-0.01"), False, ""),
        (None, None, None, None, Decimal("0"), None, True, ""),  # no feeToken: no USD fee
    ]


def test_lifecycles_without_fills_trade_nothing(events: pl.DataFrame) -> None:
    lc = order_lifecycles(events, sc.D2)
    assert lc["seenInEvents"].all() and 370 not in lc["oid"].to_list()
    assert (lc["filledSz"] == 0).all() and (lc["nFills"] == 0).all() and lc["avgFillPx"].is_null().all()
    # what the events tell stays
    expected = {(r["ethAddress"], r["rootOid"]): r["filledSzEvents"] for r in sc.LIFECYCLES_D2 if r["seenInEvents"]}
    assert dict(zip(zip(lc["ethAddress"], lc["rootOid"], strict=True), lc["filledSzEvents"], strict=True)) == expected


def test_a_chain_adds_up_its_fills_across_days(events: pl.DataFrame, fills: pl.DataFrame) -> None:
    # B-202 closes on D3: 20 filled on D2 and the remaining 30 on D3.
    lc = order_lifecycles(events, sc.D3, fills).filter(pl.col("rootOid") == 202)
    cols = ["outcome", "filledSz", "filledSzEvents", "nFills", "avgFillPx", "feesUsd", "firstFillAt", "lastFillAt"]
    assert rows(lc, cols) == [
        ("filled", 50, 50, 2, 200.0, Decimal("1.5"), sc.at(sc.D2, "13:05:00"), sc.at(sc.D3, "00:59:59"))
    ]
    # The D3 fill is B's only fill that day; C-370's IOC row does not come back on D3.
    stats = trader_daily_stats(events, sc.D3, fills=fills)
    assert rows(stats, ["ethAddress", "fills", "volumeUsd", "fees", "medianTimeToFirstFillS"]) == [
        (sc.B, 1, 6000.0, Decimal("0.9"), None),  # 202's first fill was on D2
        (sc.C, 0, 0.0, 0, None),  # C's chain 330 is still open
    ]
    assert order_lifecycles(events, sc.D3, fills).filter(~pl.col("seenInEvents")).is_empty()


def test_fees_in_another_token_leave_no_usd_total(events: pl.DataFrame, fills: pl.DataFrame) -> None:
    # A second fill of the ETH chain charged in another token: the chain's feesUsd becomes null,
    # the day's fees count only the USDC ones.
    other = sc.fill(sc.C, 322, 3223, sc.at(sc.D2, "10:29:59"), coin="ETH", side="A", px="3020.0", sz="1.0",
                    crossed=False, fee="0.5", fee_token="USDH")  # fmt: skip
    more = pl.concat([fills, normalize_fills(pl.from_dicts([other], schema=RAW_FILL_SCHEMA))])
    lc = order_lifecycles(events, sc.D2, more).filter(pl.col("rootOid") == 320)
    assert rows(lc, ["filledSz", "nFills", "feesUsd"]) == [(41, 4, None)]
    stats = trader_daily_stats(events, sc.D2, fills=more).filter(pl.col("ethAddress") == sc.C)
    assert stats.select("fills", "fees").row(0) == (8, Decimal("23.73"))


def test_a_fill_of_an_order_known_only_from_a_link_belongs_to_its_chain(
    events: pl.DataFrame, fills: pl.DataFrame
) -> None:
    # 331's own events are missing; 330's close names it. Its fill is the chain's, not unseen.
    events = events.filter(pl.col("oid") != 331)
    f331 = sc.fill(sc.C, 331, 3311, sc.at(sc.D2, "11:40:00"), coin="SOL", side="B", px="200.0", sz="100.0",
                   crossed=False, fee="3.0")  # fmt: skip
    more = pl.concat([fills, normalize_fills(pl.from_dicts([f331], schema=RAW_FILL_SCHEMA))])
    lc = order_lifecycles(events, sc.D2, more)
    assert rows(lc.filter(pl.col("rootOid") == 330), ["oid", "outcome", "filledSz", "oids"]) == [
        (331, "open", 100, [330, 331])
    ]
    assert 331 not in lc.filter(~pl.col("seenInEvents"))["oid"].to_list()
    assert rows(unseen_fill_orders(events, more, sc.D2), ["oid"]) == [(370,)]


def test_change_vs_book_and_the_large_vs_book_option(events: pl.DataFrame) -> None:
    default = large_change_alerts(events, sc.D2)
    assert "large_vs_book" not in ",".join(default["reason"])  # off by default
    opted = large_change_alerts(events, sc.D2, AlertThresholds(min_change_vs_book_1pct=0.5))
    assert rows(opted.filter(pl.col("reason").str.contains("large_vs_book")), ["alertKey", "reason"]) == [
        # A-102's size update: +93k against 155k of asks within 1 % of mid (0.6)
        (f"{sc.A}:102:updated:2", "crossed_threshold,large_change,large_vs_book"),
        # B-203: a 5 USD order against 8 USD (0.625); 331 (0.4) and 320 (0.3) stay below
        (f"{sc.B}:203:new", "large_vs_book"),
    ]
    b203 = opted.filter(pl.col("alertKey") == f"{sc.B}:203:new")
    assert rows(b203, ["changeUsd", "changeVsBook1pct"]) == [(5.0, 0.625)]
    # Everything the default raised is still there, with the same reasons apart from large_vs_book.
    assert rows(default, ["alertKey"]) == rows(opted.filter(pl.col("alertKey") != f"{sc.B}:203:new"), ["alertKey"])
    # A tighter option: 331 (0.4) joins, 320 (0.3) does not.
    tight = large_change_alerts(events, sc.D2, AlertThresholds(min_change_vs_book_1pct=0.35))
    flagged = tight.filter(pl.col("reason").str.contains("large_vs_book"))["alertKey"].to_list()
    assert sorted(flagged) == sorted([f"{sc.B}:203:new", f"{sc.A}:102:updated:2", f"{sc.C}:331:new"])


def test_fill_checks(events: pl.DataFrame, fills: pl.DataFrame) -> None:
    assert duplicate_fill_keys(fills).is_empty()
    dup = pl.concat([fills, fills.filter(pl.col("tid") == 3221)])
    assert rows(duplicate_fill_keys(dup), ["ethAddress", "oid", "tid", "count"]) == [(sc.C, 322, 3221, 2)]

    # Never seen: the taker IOCs, one a day.
    cols = ["ethAddress", "oid", "coin", "fills", "sz", "notionalUsd", "takerOnly"]
    assert rows(unseen_fill_orders(events, fills, sc.D1), cols) == [(sc.A, 190, "ETH", 1, 2, 5980.0, True)]
    assert rows(unseen_fill_orders(events, fills, sc.D2), cols) == [(sc.C, 370, "@107", 1, 160, 100.0, True)]
    # Without D1's events, A-101's fills on D2 still have its D2 events; without any of 101's
    # events they are unseen maker fills.
    no_101 = events.filter(pl.col("oid") != 101)
    assert rows(unseen_fill_orders(no_101, fills, sc.D2), ["oid", "fills", "takerOnly"]) == [
        (101, 2, False),
        (370, 1, True),
    ]

    for day in (sc.D1, sc.D2):
        lc = order_lifecycles(events, day, fills)
        upto = fills.filter(pl.col("time") < day_bounds(day)[1])  # the fills partitions up to the day
        assert lifecycle_fill_mismatches(lc, upto).is_empty()
        assert fills_disagree_with_events(lc).is_empty()
    lc = order_lifecycles(events, sc.D2, fills)
    upto_d2 = fills.filter(pl.col("time") < sc.at(sc.D3, "00:00:00"))
    # A row that lost a fill, and a fill the rows do not count (a second fill of A-101 on D2):
    tampered = lc.with_columns(
        filledSz=pl.when(pl.col("rootOid") == 320).then(pl.col("filledSz") - 10).otherwise(pl.col("filledSz"))
    )
    extra = sc.fill(sc.A, 101, 1013, sc.at(sc.D2, "01:59:59"), coin="BTC", side="B", px="60000.0", sz="0.1",
                    crossed=False, fee="0.6")  # fmt: skip
    more = pl.concat([upto_d2, normalize_fills(pl.from_dicts([extra], schema=RAW_FILL_SCHEMA))])
    bad = lifecycle_fill_mismatches(tampered, more)
    assert rows(bad, ["ethAddress", "rootOid", "filledSz", "fillsSz", "nFills", "fills"]) == [
        (sc.A, 101, 2, Decimal("2.1"), 2, 3),
        (sc.C, 320, 30, 40, 3, 3),
    ]
    # Fills and events disagree: the ETH chain without its fill on 321.
    fewer = fills.filter(pl.col("tid") != 3211)
    disagree = fills_disagree_with_events(order_lifecycles(events, sc.D2, fewer))
    assert rows(disagree, ["ethAddress", "rootOid", "oid", "filledSz", "filledSzEvents"]) == [(sc.C, 320, 322, 30, 40)]


def test_labels_and_tags_are_joined_from_the_watch_list(events: pl.DataFrame, fills: pl.DataFrame) -> None:
    wl = watchlist_frame(sc.watchlist())
    lc = order_lifecycles(events, sc.D2, fills, wl)
    stats = trader_daily_stats(events, sc.D2, fills=fills, watchlist=wl)
    alerts = large_change_alerts(events, sc.D2, watchlist=wl)
    for df, table in (
        (lc, tables.ORDER_LIFECYCLES),
        (stats, tables.TRADER_DAILY_STATS),
        (alerts, tables.LARGE_CHANGE_ALERTS),
    ):
        assert df.schema == tables.schema(table)
        got = {
            a: (label, tags)
            for a, label, tags in df.select("ethAddress", "label", "tags").unique("ethAddress").iter_rows()
        }
        assert got == {a: sc.LABELS[a] for a in got}
    assert set(stats["ethAddress"]) == {sc.A, sc.B, sc.C}
    # The message names a labelled trader; the alert rows are the same as without the list.
    msg = alerts.filter(pl.col("alertKey") == f"{sc.A}:102:updated:2")["message"].item()
    assert msg.startswith(f"{sc.A} (Whale A) A ETH oid 102 updated: crossed_threshold,large_change"), msg
    c_msg = alerts.filter(pl.col("alertKey") == f"{sc.C}:331:new")["message"].item()
    assert c_msg.startswith(f"{sc.C} B SOL oid 331 new (replaces oid 330)"), c_msg
    plain = large_change_alerts(events, sc.D2)
    assert rows(plain, sc.ALERT_COLS) == rows(alerts, sc.ALERT_COLS)
    assert plain["label"].is_null().all() and plain["tags"].list.len().eq(0).all()
