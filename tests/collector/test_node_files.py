"""Reading the node's hourly files: numeric hour order, whole lines only, rotation with late
appends, NODE_START and resuming from a position."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector_service.sources.node_files import NodeFilesError, Position, Stream, Tailer, find_streams, hour_files
from tests.collector.node_files import append


def _stream(tmp_path: Path) -> Stream:
    folder = tmp_path / "node_order_statuses_by_block" / "hourly"
    folder.mkdir(parents=True)
    return Stream("order_statuses", folder, True)


def _lines(tailer: Tailer) -> list[bytes]:
    out = []
    while (chunk := tailer.read()) is not None:
        out += chunk.data.splitlines()
    return out


def test_hours_sort_as_numbers_across_date_folders(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    for date, hour in (("20260430", "9"), ("20260430", "10"), ("20260430", "23"), ("20260501", "0"), ("20260430", "2")):
        append(stream.folder / date / hour, b"x\n")
    (stream.folder / "20260430" / "notes.txt").write_text("not an hour file")
    assert [f"{p.parent.name}/{p.name}" for p in hour_files(stream.folder)] == [
        "20260430/2",
        "20260430/9",
        "20260430/10",
        "20260430/23",
        "20260501/0",
    ]


def test_find_streams_prefers_by_block_unless_told(tmp_path: Path) -> None:
    for folder in ("node_order_statuses_by_block", "node_order_statuses", "node_fills"):
        (tmp_path / folder / "hourly").mkdir(parents=True)
    found = find_streams(tmp_path)
    assert found["order_statuses"].by_block and not found["fills"].by_block
    assert not find_streams(tmp_path, prefer_by_block=False)["order_statuses"].by_block
    assert find_streams(tmp_path / "missing") == {}


def test_twap_statuses_are_followed_in_the_layout_of_the_others_before_their_folder_exists(tmp_path: Path) -> None:
    # one TWAP status a line (hourly layout): the folder appears with the first TWAP; by block the
    # node writes a line per block. The node README's path has no hourly/ (NODE.md §1.2): read too.
    (tmp_path / "node_order_statuses" / "hourly").mkdir(parents=True)
    twaps = find_streams(tmp_path)["twap_statuses"]
    assert (twaps.folder, twaps.by_block) == (tmp_path / "node_twap_statuses" / "hourly", False)
    (tmp_path / "node_twap_statuses" / "20260128").mkdir(parents=True)
    assert find_streams(tmp_path)["twap_statuses"].folder == tmp_path / "node_twap_statuses"
    (tmp_path / "node_twap_statuses_by_block" / "hourly").mkdir(parents=True)
    assert find_streams(tmp_path)["twap_statuses"].by_block
    assert find_streams(tmp_path, prefer_by_block=False)["twap_statuses"].folder == tmp_path / "node_twap_statuses"
    assert find_streams(tmp_path / "node_twap_statuses_by_block") == {}  # TWAP statuses alone: not a node folder


def test_a_partial_last_line_is_never_read_past(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    path = stream.folder / "20260430" / "20"
    append(path, b'{"block_number":1}\n{"block_num')
    tailer = Tailer(stream, Position(path, 0))
    chunk = tailer.read()
    assert chunk is not None and chunk.data == b'{"block_number":1}\n' and chunk.end == 19
    assert tailer.read() is None and tailer.current.offset == 19
    append(path, b'ber":2}\n')
    chunk = tailer.read()
    assert chunk is not None and chunk.data == b'{"block_number":2}\n'


def test_rotation_follows_the_next_hour_and_reads_late_appends_to_the_previous(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    hour20, hour21 = stream.folder / "20260430" / "20", stream.folder / "20260430" / "21"
    append(hour20, b"a\n")
    clock = [0.0]  # simulated seconds: a busy machine cannot end the grace early
    tailer = Tailer(stream, Position(hour20, 0), grace_s=0.3, clock=lambda: clock[0])
    assert _lines(tailer) == [b"a"]
    append(hour21, b"c\n")
    append(hour20, b"b\n")  # written after the next hour's file appeared, before it was read
    assert _lines(tailer) == [b"b", b"c"]
    assert tailer.current.path == hour21 and tailer.previous is not None and tailer.previous.path == hour20
    append(hour20, b"late\n")  # after we moved on: still read, flagged late
    chunk = tailer.read()
    assert chunk is not None and chunk.late and chunk.data == b"late\n" and tailer.late_appends == 1
    clock[0] += 0.29
    assert tailer.read() is None and tailer.previous is not None  # still watched in the grace
    clock[0] += 0.01
    assert tailer.read() is None and tailer.previous is None  # the grace is over


def test_a_new_date_folder_at_midnight_is_followed(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    last = stream.folder / "20260430" / "23"
    append(last, b"a\n")
    tailer = Tailer(stream, Position(last, 0))
    assert _lines(tailer) == [b"a"]
    append(stream.folder / "20260501" / "0", b"b\n")
    assert _lines(tailer) == [b"b"]


def test_start_now_begins_after_the_last_complete_line_and_earliest_at_the_oldest_file(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    append(stream.folder / "20260430" / "9", b"old\n")
    newest = stream.folder / "20260430" / "10"
    append(newest, b"seen\nhalf")
    now = Tailer.start(stream, "now")
    assert now is not None and now.current == Position(newest, 5)
    append(newest, b"-done\n")
    assert _lines(now) == [b"half-done"]
    earliest = Tailer.start(stream, "earliest")
    assert earliest is not None and _lines(earliest) == [b"old", b"seen", b"half-done"]


def test_resume_from_a_position_reads_only_what_follows(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    path = stream.folder / "20260430" / "20"
    append(path, b"one\ntwo\nthree\n")
    assert _lines(Tailer(stream, Position(path, 4))) == [b"two", b"three"]


def test_a_file_that_shrinks_below_the_offset_is_an_error(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    path = stream.folder / "20260430" / "20"
    append(path, b"one\ntwo\n")
    tailer = Tailer(stream, Position(path, 0))
    _lines(tailer)
    path.write_bytes(b"o\n")
    with pytest.raises(NodeFilesError, match="truncated or replaced"):
        tailer.read()


def test_a_line_longer_than_one_read_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("collector_service.sources.node_files.READ_SIZE", 16)
    stream = _stream(tmp_path)
    path = stream.folder / "20260430" / "20"
    long = b"x" * 100
    append(path, long + b"\nshort\n")
    assert _lines(Tailer(stream, Position(path, 0))) == [long, b"short"]


def test_a_pruned_checkpoint_file_is_reported_and_reading_goes_on_at_the_next_hour(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    hour19, hour20, hour21 = (stream.folder / "20260430" / h for h in ("19", "20", "21"))
    stream.folder.joinpath("20260430").mkdir()
    # resuming at 20 (with 19 watched for late appends), both deleted while nobody read them
    tailer = Tailer(stream, Position(hour20, 7), Position(hour19, 3))
    assert tailer.read() is None  # no newer hour yet: wait for the node, nothing skipped
    assert tailer.pruned == [] and tailer.previous is None
    append(hour21, b"after\n")
    assert _lines(tailer) == [b"after"]
    assert tailer.pruned == [hour20] and tailer.current == Position(hour21, 6) and tailer.previous is None
