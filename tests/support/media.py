"""Real video for the playback tests: a fragmented MP4 made by ffmpeg, and its fragments."""

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_HINT = "install Debian's ffmpeg: apt-get install ffmpeg (.ci/run does it)"
ENCODE_SECONDS = 300
# 25 frames a second and a keyframe every 25 frames: one fragment a second.
FRAME_RATE = 25


@dataclass(frozen=True)
class Fragment:
    """One `moof` and what follows it up to the next `moof`: where it lies and when it starts."""

    offset: int
    size: int
    time_ms: int


@dataclass(frozen=True)
class MediaLayout:
    """A fragmented MP4 cut as a recorder marks it: the init segment, then one mark per fragment."""

    init_size: int
    fragments: list[Fragment]


class Video:
    """A fragmented MP4's bytes and where its fragments lie."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.layout = mp4_fragments(data)

    @property
    def init_segment(self) -> bytes:
        return self.data[: self.layout.init_size]

    def fragment(self, index: int) -> bytes:
        fragment = self.layout.fragments[index]
        return self.data[fragment.offset : fragment.offset + fragment.size]


def require_tool(name: str) -> str:
    """The path of `name` (ffmpeg, ffprobe); a missing tool fails the test instead of skipping."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: {INSTALL_HINT}", pytrace=False)
    return path


def fragmented_mp4(path: Path, *, seconds: int = 60) -> Path:
    """`seconds` of testsrc2 as H.264 in an MP4 fragmented at each keyframe, one a second."""
    command = [
        require_tool("ffmpeg"),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=320x240:rate={FRAME_RATE}:duration={seconds}",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(FRAME_RATE),
        "-keyint_min",
        str(FRAME_RATE),
        "-sc_threshold",
        "0",
        "-movflags",
        "+frag_keyframe+empty_moov+default_base_moof",
        "-f",
        "mp4",
        str(path),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=ENCODE_SECONDS)
    assert completed.returncode == 0, f"ffmpeg failed: {completed.stderr}"
    return path


def mp4_fragments(data: bytes) -> MediaLayout:
    """The init segment's size and each fragment's place and start time in `data`."""
    boxes = list(_boxes(data, 0, len(data)))
    moofs = [box for box in boxes if box[0] == b"moof"]
    assert moofs, "no moof box: not a fragmented MP4"
    timescale = _timescale(data, boxes)
    starts = [start for _, start, _, _ in moofs]
    ends = [*starts[1:], len(data)]
    fragments = [
        Fragment(
            offset=start,
            size=end - start,
            time_ms=_base_media_decode_time(data, payload, moof_end) * 1000 // timescale,
        )
        for (_, start, payload, moof_end), end in zip(moofs, ends, strict=True)
    ]
    return MediaLayout(init_size=starts[0], fragments=fragments)


def _boxes(data: bytes, start: int, end: int):
    """(type, start, payload start, end) of each box laid out between `start` and `end`."""
    offset = start
    while offset < end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        payload = offset + 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, payload)
            payload += 8
        elif size == 0:
            size = end - offset
        assert size >= payload - offset and offset + size <= end, f"bad {kind!r} box at {offset}"
        yield kind, offset, payload, offset + size
        offset += size


def _child(data: bytes, start: int, end: int, *path: bytes) -> tuple[int, int]:
    """The payload start and end of the first box along `path` below the payload `start:end`."""
    for kind in path:
        found = next((box for box in _boxes(data, start, end) if box[0] == kind), None)
        assert found is not None, f"no {kind!r} box"
        _, _, start, end = found
    return start, end


def _timescale(data: bytes, boxes) -> int:
    """The first track's media timescale, from moov/trak/mdia/mdhd."""
    _, _, moov_start, moov_end = next(box for box in boxes if box[0] == b"moov")
    start, _ = _child(data, moov_start, moov_end, b"trak", b"mdia", b"mdhd")
    version = data[start]
    return struct.unpack_from(">I", data, start + (20 if version == 1 else 12))[0]


def _base_media_decode_time(data: bytes, moof_payload: int, moof_end: int) -> int:
    """The first track fragment's baseMediaDecodeTime, from moof/traf/tfdt."""
    start, _ = _child(data, moof_payload, moof_end, b"traf", b"tfdt")
    version = data[start]
    return struct.unpack_from(">Q" if version == 1 else ">I", data, start + 4)[0]
