"""Finding tracked traders' events in real node lines without decoding the others."""

from __future__ import annotations

import json

import pytest

from collector_service.events.node_lines import Scanner, decode_fill_event, decode_status, node_time
from collector_service.events.wire import FrameError
from tests.collector.node_files import (
    FILL_LINES,
    STATUS_LINES,
    sample_fill_blocks,
    sample_status_blocks,
)


def _expected_statuses(lines: list[bytes], users: set[str]) -> list[tuple[int, int, str]]:
    found = []
    for line in lines:
        block = json.loads(line)
        found += [
            (block["block_number"], seq, e["order"]["oid"])
            for seq, e in enumerate(block["events"])
            if e["user"] in users
        ]
    return found


def test_by_block_statuses_yield_exactly_the_tracked_users_events_with_their_place_in_the_block() -> None:
    lines = sample_status_blocks()
    users = {"0x424f58c01b5440ebc2382ac01b7a3597b12076ff", "0xb1edfeccf03f35d2268f5dc4013508a6eb52c702"}
    data = b"\n".join(lines) + b"\n"
    scanner = Scanner("order_statuses", True, users)
    scanned = scanner.scan(data, 1000)
    assert len(scanned) == 40 and scanned[-1].end == 1000 + len(data)
    assert [line.block for line in scanned] == list(range(978995377, 978995417))
    got = [(line.block, hit.seq, decode_status(hit.raw).order.oid) for line in scanned for hit in line.hits]
    assert got == _expected_statuses(lines, users) and len(got) > 100
    assert all(decode_status(hit.raw).user == hit.user for line in scanned for hit in line.hits)
    assert scanned[0].block_time == "2026-04-30T20:46:43.304461819"


def test_a_block_without_tracked_users_is_not_decoded() -> None:
    lines = sample_status_blocks()
    scanner = Scanner("order_statuses", True, {"0x" + "ab" * 20})
    scanned = scanner.scan(b"\n".join(lines) + b"\n", 0)
    assert all(not line.hits for line in scanned) and scanner.events_scanned == 0  # no line was decoded


def test_spaces_between_events_fall_back_to_checking_each_event() -> None:
    line = sample_status_blocks()[0].replace(b"},{", b"}, {")
    user = json.loads(line)["events"][3]["user"]
    scanned = Scanner("order_statuses", True, {user}).scan(line + b"\n", 0)
    expected = [seq for _, seq, _ in _expected_statuses([line], {user})]
    assert [hit.seq for hit in scanned[0].hits] == expected and len(expected) > 1


def test_by_block_fills_are_found_by_their_user_and_keep_every_field() -> None:
    lines = sample_fill_blocks()
    events = [(json.loads(line)["block_number"], e) for line in lines for e in json.loads(line)["events"]]
    user = events[0][1][0]
    scanned = Scanner("fills", True, {user}).scan(b"\n".join(lines) + b"\n", 0)
    hits = [(line.block, hit) for line in scanned for hit in line.hits]
    assert [(block, decode_fill_event(hit.raw)[1].tid) for block, hit in hits] == [
        (block, e[1]["tid"]) for block, e in events if e[0] == user
    ]
    decoded_user, fill, raw = decode_fill_event(hits[0][1].raw)
    assert decoded_user == user and fill.coin == "BTC" and json.loads(bytes(raw)) == events[0][1][1]


def test_hourly_lines_keep_only_tracked_users_and_say_where_the_chunk_ends() -> None:
    data = STATUS_LINES.read_bytes()
    rows = [json.loads(line) for line in data.splitlines()]
    user = rows[2]["user"]
    scanned = Scanner("order_statuses", False, {user}).scan(data, 0)
    hits = [decode_status(h.raw) for line in scanned for h in line.hits]
    assert [s.order.oid for s in hits] == [r["order"]["oid"] for r in rows if r["user"] == user]
    assert scanned[-1].end == len(data)
    fills = FILL_LINES.read_bytes()
    fill_user = json.loads(fills.splitlines()[0])[0]
    found = Scanner("fills", False, {fill_user}).scan(fills, 0)
    assert sum(len(line.hits) for line in found) == sum(
        1 for line in fills.splitlines() if json.loads(line)[0] == fill_user
    )


def test_a_line_that_is_not_a_block_is_counted_and_passed_over() -> None:
    good = sample_status_blocks()[:2]
    user = json.loads(good[1])["events"][0]["user"]
    data = good[0] + b"\n" + b'{"local_time":"x","events":[{"user":"' + user.encode() + b'"' + b"\n" + good[1] + b"\n"
    scanner = Scanner("order_statuses", True, {user})
    scanned = scanner.scan(data, 0)
    assert [line.block for line in scanned] == [978995377, None, 978995378]
    assert scanner.bad_lines == 1 and "block line" in (scanner.last_error or "") and scanned[2].hits


def test_a_tracked_event_that_is_not_a_status_is_reported() -> None:
    with pytest.raises(FrameError, match="order status"):
        decode_status(b'{"time":"x","user":"0x00","status":"open","order":{"coin":"BTC"}}')


def test_node_times_are_utc_to_the_microsecond() -> None:
    at = node_time("2026-04-30T20:46:43.304461819")
    assert (at.isoformat(), node_time("2026-04-30T20:46:43").microsecond) == ("2026-04-30T20:46:43.304461+00:00", 0)


@pytest.mark.parametrize("field,value", [("oid", 2**63), ("oid", -1), ("tid", 2**64), ("tid", -7)])
def test_an_id_bson_cannot_hold_or_a_negative_one_rejects_the_node_event(field: str, value: int) -> None:
    # an oid or tid >= 2**63 reached the book, then crashed the journal (BSON has no uint64)
    user, fill = json.loads(FILL_LINES.read_bytes().splitlines()[0])
    raw = json.dumps([user, {**fill, field: value}]).encode()
    with pytest.raises(FrameError, match=field):
        decode_fill_event(raw)
    if field == "oid":
        status = json.loads(STATUS_LINES.read_bytes().splitlines()[0])
        status["order"]["oid"] = value
        with pytest.raises(FrameError, match="oid"):
            decode_status(json.dumps(status).encode())
    user, fill = json.loads(FILL_LINES.read_bytes().splitlines()[0])
    with pytest.raises(FrameError, match=r"\$\.twap\.id does not fit"):  # any key: the document keeps them all
        decode_fill_event(json.dumps([user, {**fill, "twap": {"id": -(2**63) - 1}}]).encode())
