"""Pure tests: fill documents from the real node fills sample (the userFills element shape), and
the snapshot rule that keeps a re-delivered snapshot from being written again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from collector_service.events.fills import SNAPSHOT_MARGIN, FillLedger, fill_doc
from collector_service.events.wire import FrameError, UserFillsMsg, decode_frame
from tests.collector.frames import SAMPLES

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def node_fills() -> list[tuple[str, dict]]:
    lines = (SAMPLES / "node_fills_sample.jsonl").read_text().splitlines()
    return [tuple(json.loads(line)) for line in lines if line.strip()]  # type: ignore[misc]


def raw(fill: dict) -> msgspec.Raw:
    return msgspec.Raw(json.dumps(fill).encode())


def test_real_fills_become_documents_with_every_field() -> None:
    fills = node_fills()
    assert len(fills) == 26
    user, fill = next((u, f) for u, f in fills if f.get("cloid"))
    doc = fill_doc(user, raw(fill), source="ws", observed_at=NOW)
    assert doc["time"] == datetime.fromtimestamp(fill["time"] / 1000, UTC)
    assert {k: v for k, v in doc.items() if k not in ("time", "ethAddress", "dex", "source", "observedAt")} == {
        k: v for k, v in fill.items() if k != "time"}
    assert (doc["ethAddress"], doc["source"], doc["cloid"], doc["px"]) == (user, "ws", fill["cloid"], fill["px"])
    spot = fill_doc(fills[0][0], raw(fills[0][1]), source="rest", observed_at=NOW)
    assert (spot["coin"], spot["dex"], spot["tid"], spot["feeToken"]) == ("@107", "", 775871597375110, "HYPE")


def test_a_userfills_frame_decodes_with_its_snapshot_flag() -> None:
    user, fill = node_fills()[0]
    first = decode_frame(json.dumps({"channel": "userFills", "data": {"isSnapshot": True, "user": user,
                                                                      "fills": [fill]}}))
    later = decode_frame(json.dumps({"channel": "userFills", "data": {"user": user, "fills": [fill]}}))
    assert isinstance(first, UserFillsMsg) and first.data.isSnapshot and len(first.data.fills) == 1
    assert isinstance(later, UserFillsMsg) and not later.data.isSnapshot


def test_a_fill_without_its_trade_id_is_rejected_with_a_clear_error() -> None:
    user, fill = node_fills()[0]
    broken = raw({k: v for k, v in fill.items() if k != "tid"})
    with pytest.raises(FrameError, match="tid"):
        fill_doc(user, broken, source="ws", observed_at=NOW)
    docs, bad = FillLedger().docs(user, [broken, raw(fill)], source="rest", observed_at=NOW)
    assert [d["tid"] for d in docs] == [fill["tid"]] and len(bad) == 1 and "tid" in str(bad[0])  # the rest kept


def test_snapshot_skips_fills_already_stored_but_not_live_ones() -> None:
    user, fill = node_fills()[0]
    at = datetime.fromtimestamp(fill["time"] / 1000, UTC)
    before_margin_ms = int((SNAPSHOT_MARGIN + timedelta(seconds=5)).total_seconds() * 1000)
    old = {**fill, "tid": 1, "time": fill["time"] - before_margin_ms}
    ledger = FillLedger()
    ledger.load({user: at})
    kept, bad = ledger.docs(user, [raw(old), raw(fill)], source="ws", observed_at=NOW, snapshot=True)
    assert [d["tid"] for d in kept] == [fill["tid"]] and bad == []  # near the newest stored: the index dedupes
    assert len(ledger.docs(user, [raw(old)], source="ws", observed_at=NOW)[0]) == 1  # a live push always is
    newer = {**fill, "tid": 2, "time": fill["time"] + 1000}
    ledger.docs(user, [raw(newer)], source="ws", observed_at=NOW)
    assert ledger.newest[user] == at + timedelta(seconds=1)
