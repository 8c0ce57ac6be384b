"""Ground-truth file, visibility records and compare() against a hand-made trader_orders collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exchange_sim import ExchangeSim, SimConfig, compare, compare_events
from exchange_sim.clock import LogicalClock
from exchange_sim.exchange import Exchange
from exchange_sim.market import Market
from exchange_sim.truth import TruthRecorder, load_visibility, parse_time
from tests.exchange_sim.conftest import START_MS, connect, recv_channel, sub


def doc(user: str, oid: int, action: str, final: str | None = None, seq: int = 0) -> dict[str, Any]:
    key = action if action != "updated" else f"updated:{seq}"
    d = {
        "ethAddress": user,
        "oid": oid,
        "action": action,
        "eventKey": key,
        "seq": seq,
        "source": "ws",
        "sz": "1.0",
        "limitPx": "1.0",
        "origSz": "1.0",
    }
    if action == "closed":
        d["finalStatus"] = final
    return d


async def test_truth_visibility_and_compare(tmp_path: Path, mongo_db: Any) -> None:
    truth = tmp_path / "truth.jsonl"
    cfg = SimConfig(traders=2, push_interval=30, start_time_ms=START_MS, truth_file=truth)
    async with ExchangeSim(cfg) as sim:
        a, b = sim.addresses
        async with connect(sim) as ws:
            await ws.send(sub("openOrders", a))
            await recv_channel(ws, "openOrders")
            o1 = sim.place(a, "BTC", "B", "0.01", "100000.0")
            o2 = sim.place(a, "ETH", "B", "0.1", "2500.0")
            o3 = sim.place(a, "SOL", "A", "1.0", "150.0")
            o4 = sim.place(a, "SOL", "A", "2.0", "151.0")
            await sim.push_now()
            await recv_channel(ws, "openOrders")
            sim.fill(o1)
            sim.cancel(o3, "marginCanceled")
            r1 = sim.reject(a, "BTC", "B", "0.01", "1.0", status="tickRejected")  # never rests
            await sim.push_now()
            await recv_channel(ws, "openOrders")
            await ws.send(json.dumps({"method": "unsubscribe", "subscription": {"type": "openOrders", "user": a}}))
            await recv_channel(ws, "subscriptionResponse")
        g1 = sim.place(a, "BTC", "A", "0.01", "120000.0")  # opened and closed in a gap
        sim.cancel(g1)
        b1 = sim.place(b, "BTC", "A", "0.01", "120000.0")  # b is never subscribed
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert all(set(r) == {"time", "user", "status", "order"} for r in rows)
    assert parse_time(rows[0]["time"]) >= START_MS
    assert [r["status"] for r in rows if r["order"]["oid"] == o1] == ["open", "filled"]
    assert [r["status"] for r in rows if r["order"]["oid"] == r1] == ["tickRejected"]
    summary = json.loads(Path(str(truth) + ".summary.json").read_text())
    assert summary["orders"] == 7 and summary["finalStatuses"]["open"] == 3

    coll = mongo_db["trader_orders"]
    coll.insert_many(
        [
            doc(a, o1, "new"),
            doc(a, o1, "closed", "filled"),
            doc(a, o2, "new"),
            doc(a, o2, "updated", seq=1),
            doc(a, o3, "new"),
            doc(a, o3, "closed", "canceled"),
            doc(b, b1, "new"),
            doc(b, b1, "new"),
            doc(a, 12345, "new"),
        ]
    )
    report = compare(coll, truth)
    assert (report.total, report.observable, report.visible, report.gap_only) == (7, 6, 4, 2)
    assert report.captured == 4
    assert report.missed_visible == [(a, o4)]
    assert report.missed_gap_only == [(a, g1)]
    assert report.wrong_final_status == [(a, o3, "marginCanceled", "canceled")]
    assert report.duplicates == [(b, b1, "2 new events")]
    assert report.unknown == [(a, 12345)]
    assert abs(report.capture_rate - 4 / 6) < 1e-9
    assert not report.ok
    assert "capture_rate=0.6667" in report.summary()

    only_b = compare(coll, truth, users=[b])
    assert (only_b.total, only_b.captured, only_b.unknown) == (1, 1, [])


# ----- amend links, dex and per-dex coverage (hand-made events, no MongoDB) --------------------

CLOID = "0x" + "5a" * 16


def ev(user: str, oid: int, action: str, **fields: Any) -> dict[str, Any]:
    """A trader_orders document with the fields compare() reads."""
    d: dict[str, Any] = {"ethAddress": user, "oid": oid, "action": action, "eventKey": action}
    if action == "closed":
        d.setdefault("finalStatus", "canceled")
    d.update(fields)
    return d


def scripted_truth(tmp_path: Path) -> tuple[Path, dict[str, int], str]:
    """A truth + visibility file: the user is subscribed to dex "" throughout, never to "xyz".

    main (BTC, cloid) is modified to main2; plain (ETH, no cloid) to plain2; quiet (SOL) opens
    and closes between pushes; tsla (xyz:TSLA) is placed and canceled, never pushed.
    """
    user = "0x" + "77" * 20
    ex = Exchange(Market.load(), LogicalClock(START_MS))
    rec = TruthRecorder(tmp_path / "truth.jsonl", tmp_path / "truth.jsonl.visibility.jsonl")
    ex.replace_listeners.append(rec.on_replace)
    ex.listeners.append(rec.on_transition)
    rec.on_coverage(user, True, START_MS, dex="")
    main = ex.place(user, "BTC", "B", "0.01", "100000.0", cloid=CLOID).oid
    plain = ex.place(user, "ETH", "A", "1", "2600.0").oid
    rec.on_pushed(user, [main, plain], START_MS)
    main2 = ex.amend(main, limit_px="100100.0").oid
    plain2 = ex.amend(plain, sz="2").oid
    rec.on_pushed(user, [main2, plain2], START_MS)
    quiet = ex.place(user, "SOL", "B", "1", "140.0").oid
    ex.cancel(quiet)
    tsla = ex.place(user, "xyz:TSLA", "B", "1", "240.0").oid
    ex.cancel(tsla)
    rec.close()
    oids = {"main": main, "main2": main2, "plain": plain, "plain2": plain2, "quiet": quiet, "tsla": tsla}
    return tmp_path / "truth.jsonl", oids, user


def right_events(user: str, o: dict[str, int]) -> list[dict[str, Any]]:
    return [
        ev(user, o["main"], "new", coin="BTC", dex=""),
        ev(user, o["main"], "closed", coin="BTC", dex="", replacedByOid=o["main2"], replaceMatch="cloid"),
        ev(user, o["main2"], "new", coin="BTC", dex="", replacesOid=o["main"], replaceMatch="cloid"),
        ev(user, o["plain"], "new", coin="ETH"),  # dex missing = ""
        ev(user, o["plain"], "closed", coin="ETH", replacedByOid=o["plain2"], replaceMatch="inferred"),
        ev(user, o["plain2"], "new", coin="ETH", replacesOid=o["plain"], replaceMatch="inferred"),
        ev(user, o["tsla"], "new", coin="xyz:TSLA", dex="xyz"),
        ev(user, o["tsla"], "closed", coin="xyz:TSLA", dex="xyz"),
    ]


def test_truth_rows_and_per_dex_coverage(tmp_path: Path) -> None:
    truth, o, user = scripted_truth(tmp_path)
    rows = [json.loads(x) for x in truth.read_text().splitlines()]
    assert [(r["status"], r["order"]["oid"], r.get("replaces")) for r in rows[2:6]] == [
        ("open", o["main2"], o["main"]),
        ("canceled", o["main"], None),
        ("open", o["plain2"], o["plain"]),
        ("canceled", o["plain"], None),
    ]
    assert sum("replaces" in r for r in rows) == 2
    pushed, coverage = load_visibility(Path(str(truth) + ".visibility.jsonl"))
    assert coverage == {(user, ""): [(0, True)]}
    assert pushed == {o["main"], o["main2"], o["plain"], o["plain2"]}

    report = compare_events(right_events(user, o), truth)
    # tsla was never pushed and its (user, "xyz") had no subscription: gap-only observable;
    # quiet lived and died while (user, "") was covered without a push: unobservable
    assert (report.total, report.observable, report.visible, report.gap_only) == (6, 5, 4, 1)
    assert report.captured == 5 and report.missed_gap_only == [] and report.missed_visible == []
    assert (report.links_expected, report.links_right) == (2, 2)
    assert report.link_matches == {"cloid": 1, "inferred": 1}
    assert report.wrong_links == [] and report.wrong_dex == []
    assert report.ok, report.summary()
    assert "links_expected=2 links_right=2 wrong_links=0 wrong_dex=0" in report.summary()

    missed = compare_events([e for e in right_events(user, o) if e["oid"] != o["tsla"]], truth)
    assert missed.missed_gap_only == [(user, o["tsla"])] and not missed.ok


def test_compare_finds_missing_spurious_and_wrong_links_and_wrong_dex(tmp_path: Path) -> None:
    truth, o, user = scripted_truth(tmp_path)
    events = right_events(user, o)
    for e in events:
        if e["oid"] == o["main2"]:
            del e["replacesOid"]  # missing link on the replacement's new event
        if e["oid"] == o["plain"] and e["action"] == "closed":
            e["replacedByOid"] = o["main2"]  # the closed event points at the wrong order
        if e["oid"] == o["tsla"] and e["action"] == "new":
            e["dex"] = ""  # a HIP-3 order stored as main dex
    events.append(ev(user, o["tsla"], "updated", eventKey="updated:1", replacesOid=o["quiet"]))  # spurious
    report = compare_events(events, truth)
    assert (report.links_expected, report.links_right) == (2, 0)
    assert sorted(report.wrong_links) == sorted(
        [
            (user, o["main"], o["main2"], "new event lacks replacesOid"),
            (user, o["plain"], o["plain2"], f"closed event has replacedByOid={o['main2']}"),
            (user, o["quiet"], o["tsla"], "spurious replacesOid"),
        ]
    )
    assert report.wrong_dex == [(user, o["tsla"], "", "xyz")]
    assert not report.ok
    assert "links_right=0 wrong_links=3 wrong_dex=1" in report.summary()

    # a link on orders the truth never linked, and a link on an unknown order
    extra = right_events(user, o)
    extra[6]["replacesOid"] = o["plain"]  # tsla's new claims to replace plain
    extra.append(ev(user, 424242, "new", coin="xyz:NVDA", dex="xyz", replacesOid=o["main2"]))
    report = compare_events(extra, truth)
    assert (report.links_expected, report.links_right) == (2, 2)
    assert sorted(report.wrong_links) == sorted(
        [
            (user, o["plain"], o["tsla"], "spurious replacesOid"),
            (user, o["main2"], 424242, "spurious replacesOid"),
        ]
    )
    assert report.unknown == [(user, 424242)] and report.wrong_dex == []


def test_links_are_only_expected_when_both_orders_were_captured(tmp_path: Path) -> None:
    truth, o, user = scripted_truth(tmp_path)
    events = [e for e in right_events(user, o) if e["oid"] != o["plain2"]]
    for e in events:
        if e["oid"] == o["plain"]:
            e.pop("replacedByOid", None)  # the collector never saw the replacement
    report = compare_events(events, truth)
    assert (report.links_expected, report.links_right) == (1, 1)
    assert report.missed_visible == [(user, o["plain2"])] and report.wrong_links == []


async def test_sim_records_coverage_per_dex(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    cfg = SimConfig(traders=1, push_interval=30, start_time_ms=START_MS, truth_file=truth)
    async with ExchangeSim(cfg) as sim:
        a = sim.addresses[0]
        async with connect(sim) as ws:
            await ws.send(sub("openOrders", a, dex="xyz"))
            await recv_channel(ws, "openOrders")
            await ws.send(sub("webData2", a))
            await recv_channel(ws, "webData2")
            await ws.send(sub("openOrders", a))  # dex "" again: no new coverage record
            await recv_channel(ws, "openOrders")
            tsla = sim.place(a, "xyz:TSLA", "B", "1", "240.0")
            await sim.push_now()
            await recv_channel(ws, "openOrders")
        await sim.wait_until(lambda: sim.subscribers(a, None) == 0)
    vis = [json.loads(x) for x in Path(str(truth) + ".visibility.jsonl").read_text().splitlines()]
    cov = [(r["dex"], r["live"]) for r in vis if r["kind"] == "coverage"]
    assert sorted(cov[:2]) == [("", True), ("xyz", True)] and sorted(cov[2:]) == [("", False), ("xyz", False)]
    assert [r["oid"] for r in vis if r["kind"] == "pushed"] == [tsla]
