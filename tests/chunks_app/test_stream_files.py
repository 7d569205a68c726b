"""A session's stream as segment files: what an append flushes to disk."""

import uuid
from pathlib import Path

import pytest

from chunks_app.spool import session_stream

pytestmark = pytest.mark.filesystem_only("the segment files and directory of a stream")


def test_an_append_that_begins_a_segment_flushes_it_and_its_directory(flushed):
    stream = session_stream(session_id=uuid.uuid4(), chunk_size=100)

    with stream.locked():
        stream.append(offset=0, part="", pieces=[b"x" * 30])

    segment, directory = flushed
    assert Path(segment).parent == stream.directory
    assert directory == str(stream.directory)


def test_an_append_to_the_open_segment_flushes_the_segment_alone(flushed):
    stream = session_stream(session_id=uuid.uuid4(), chunk_size=100)
    with stream.locked():
        stream.append(offset=0, part="", pieces=[b"x" * 30])
        flushed.clear()

        stream.append(offset=30, part="", pieces=[b"y" * 30])

    (segment,) = flushed
    assert Path(segment).parent == stream.directory


def test_an_append_that_fills_a_segment_and_begins_the_next_flushes_both_and_the_directory(
    flushed,
):
    stream = session_stream(session_id=uuid.uuid4(), chunk_size=100)
    with stream.locked():
        stream.append(offset=0, part="", pieces=[b"x" * 90])
        flushed.clear()

        appended = stream.append(offset=90, part="", pieces=[b"y" * 30])

    assert [segment.sequence for segment in appended.segments] == [0]
    first, second, directory = flushed
    assert first != second
    assert directory == str(stream.directory)
