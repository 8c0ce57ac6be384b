"""TWAP documents from real-shaped twapStates pairs and twapHistory rows, bad ones counted apart."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from collector_service.events.twaps import TwapWatch, history_docs

U = "0x" + "ab" * 20
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# TwapState as the node_twap_statuses example shows it (SAMPLE-NOTES §3; quicknode's TWAP dataset page)
STATE = {"coin": "HYPE", "user": U, "side": "A", "sz": "108.36", "executedSz": "0.0", "executedNtl": "0.0",
         "minutes": 10, "reduceOnly": False, "randomize": False, "timestamp": 1764867622417}


def raw(value: object) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))


def test_a_new_twap_id_is_a_start_and_one_that_leaves_asks_how_it_ended() -> None:
    watch = TwapWatch()
    docs, ended, bad = watch.on_states(U, [raw([1430699, STATE]), raw([7, {"coin": "BTC"}]), raw("x")], NOW)
    assert [(d["twapId"], d["status"], d["sz"], d["source"]) for d in docs] == [(1430699, "activated", "108.36", "ws")]
    assert docs[0]["timestamp"] == docs[0]["statusTime"] == datetime(2025, 12, 4, 17, 0, 22, 417000, tzinfo=UTC)
    assert not ended and len(bad) == 2 and all(e.kind == "invalid" for e in bad)
    docs, ended, bad = watch.on_states(U, [raw([1430699, {**STATE, "executedSz": "10.0"}])], NOW)
    assert docs == [] and not ended and not bad  # still running: nothing new
    assert watch.on_states(U, [], NOW)[1]  # it left the list: ended


def test_history_rows_date_ends_in_seconds_and_skip_rows_without_twap_id() -> None:
    end = {**STATE, "executedSz": "108.36", "executedNtl": "4000.5"}
    rows = [
        raw({"time": 1764867622, "state": STATE, "status": {"status": "activated"}, "twapId": 1430699}),
        raw({"time": 1764868222, "state": end, "status": {"status": "finished"}, "twapId": 1430699}),
        raw({"time": 1764868222, "state": end, "status": {"status": "error", "description": "x"}}),
        raw({"time": -1, "state": end, "status": {"status": "finished"}, "twapId": 1}),
    ]
    docs, bad = history_docs(U, rows, NOW)
    assert [(d["status"], d["statusTime"], d["executedNtl"]) for d in docs] == [
        ("activated", datetime(2025, 12, 4, 17, 0, 22, 417000, tzinfo=UTC), "0.0"),
        ("finished", datetime(2025, 12, 4, 17, 10, 22, tzinfo=UTC), "4000.5"),
    ]
    assert len(bad) == 2 and "without twapId" in str(bad[0]) and "twapHistory" in str(bad[1])
