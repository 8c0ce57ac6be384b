"""TWAP documents from real-shaped twapStates pairs and twapHistory rows, bad ones counted apart."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from collector_service.events.twaps import TwapWatch, history_docs, node_twap_doc
from collector_service.events.wire import FrameError

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


def test_node_twap_status_lines_date_a_start_by_its_timestamp_and_an_end_by_the_line() -> None:
    # the node_twap_statuses_by_block example of SAMPLE-NOTES §3: {time, twap_id, state, status}
    line = {"time": "2026-01-28T15:00:05.423822681", "twap_id": 1544034, "state": STATE, "status": "activated"}
    doc = node_twap_doc(U, msgspec.json.encode(line), NOW)
    assert (doc["twapId"], doc["status"], doc["source"], doc["statusTime"]) == (
        1544034, "activated", "node", datetime(2025, 12, 4, 17, 0, 22, 417000, tzinfo=UTC))
    end = node_twap_doc(U, msgspec.json.encode({**line, "status": "terminated"}), NOW)
    assert (end["status"], end["statusTime"]) == ("terminated", datetime(2026, 1, 28, 15, 0, 5, 423822, tzinfo=UTC))
    error = {**line, "status": {"status": "error", "description": "Insufficient margin"}}
    assert node_twap_doc(U, msgspec.json.encode(error), NOW)["description"] == "Insufficient margin"
    for bad in ({**line, "twap_id": -1}, {**line, "time": "yesterday", "status": "finished"}, {"twap_id": 1}):
        with pytest.raises(FrameError, match="node TWAP status"):
            node_twap_doc(U, msgspec.json.encode(bad), NOW)
