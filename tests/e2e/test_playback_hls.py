"""A real fragmented MP4 recorded with a time mark per fragment plays through the HLS playlist.

Debian's ffprobe and ffmpeg read the running service as players do: the playlist with the API's
`Authorization`, the media through the playlist's token URIs. A seek is played as a player plays
it: the segment that holds the time, chosen by the EXTINFs, after the init segment. (ffmpeg 5.1's
own `-ss` on an fMP4 HLS playlist decodes nothing even for ffmpeg's own playlists: its HLS
demuxer keeps the MP4 demuxer's stale sample table across the seek.)
"""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.client import API, ServiceClient, content_digest, login
from tests.support.media import Video, fragmented_mp4, require_tool
from tests.support.ports import HOST
from tests.support.recorder import append_fragments, append_marked, video_session
from tests.support.server import LucidServer, served

SECONDS = 60
DURATION_MS = SECONDS * 1000
SEEK_SECONDS = 45
STREAM_CHUNK_SIZE = 64 * 1024
UPLOAD_CHUNK_SIZE = 256 * 1024
TOOL_SECONDS = 60
WIDTH, HEIGHT = 320, 240
HEADER_TAGS = ("#EXTM3U", "#EXT-X-VERSION:", "#EXT-X-TARGETDURATION:", "#EXT-X-PLAYLIST-TYPE:")


@pytest.fixture(scope="module")
def video_path(tmp_path_factory) -> Path:
    return fragmented_mp4(tmp_path_factory.mktemp("video") / "testsrc2.mp4", seconds=SECONDS)


@pytest.fixture(scope="module")
def video(video_path) -> Video:
    video = Video(video_path.read_bytes())
    assert len(video.layout.fragments) == SECONDS
    return video


@pytest.fixture(scope="module")
def lucid(tmp_path_factory) -> Iterator[LucidServer]:
    with served(tmp_path_factory.mktemp("lucid")) as server:
        yield server


@pytest.fixture(scope="module")
def client(lucid) -> ServiceClient:
    return login(lucid.client())


def _put_chunk(
    client: ServiceClient, session_id: str, sequence: int, data: bytes, *, time_ms: int | None
) -> None:
    headers = {"Content-Digest": content_digest(data)}
    if time_ms is not None:
        headers["Lucid-Time-Ms"] = str(time_ms)
    path = f"{API}/sessions/{session_id}/chunks/{sequence}"
    client.call("PUT", path, 201, body=data, headers=headers)


def _stop(client: ServiceClient, session_id: str) -> dict:
    headers = {"Lucid-Duration-Ms": str(DURATION_MS)}
    return client.call("POST", f"{API}/sessions/{session_id}/stop", headers=headers)


def _streamed(client: ServiceClient, video: Video) -> str:
    """A stopped session of the video appended to the stream, a mark on each fragment."""
    session_id = video_session(client, name="video", chunk_size=STREAM_CHUNK_SIZE)
    append_marked(client, session_id, video.init_segment, time_ms=None)
    append_fragments(client, session_id, video, range(len(video.layout.fragments)))
    _stop(client, session_id)
    return session_id


def _uploaded(client: ServiceClient, video: Video) -> str:
    """A stopped session of the video as chunk PUTs: the init segment, then one per fragment."""
    session_id = video_session(client, name="video", chunk_size=UPLOAD_CHUNK_SIZE)
    _put_chunk(client, session_id, 0, video.init_segment, time_ms=None)
    for index, fragment in enumerate(video.layout.fragments):
        _put_chunk(client, session_id, index + 1, video.fragment(index), time_ms=fragment.time_ms)
    _stop(client, session_id)
    return session_id


@pytest.fixture(scope="module", params=["stream", "chunk-puts"])
def recorded(request, client, video) -> str:
    """The id of a stopped `video/mp4` session holding the video, recorded one way or the other."""
    record = _streamed if request.param == "stream" else _uploaded
    session_id = record(client, video)
    session = client.call("GET", f"{API}/sessions/{session_id}")
    assert (session["size"], session["duration_ms"]) == (len(video.data), DURATION_MS)
    return session_id


def _playlist_url(client: ServiceClient, session_id: str) -> str:
    return f"http://{HOST}:{client.port}{API}/sessions/{session_id}/playlist.m3u8"


def _auth_headers(client: ServiceClient) -> str:
    return f"Authorization: Bearer {client.token}\r\n"


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, timeout=TOOL_SECONDS)


def _first_frame(*input_arguments: str) -> bytes:
    """The first frame ffmpeg decodes from the input, as raw 8-bit grey pixels."""
    completed = _run(
        require_tool("ffmpeg"),
        "-hide_banner",
        "-loglevel",
        "error",
        *input_arguments,
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "pipe:1",
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return completed.stdout


def _audit_ranges(client: ServiceClient, session_id: str) -> dict[str, str]:
    """Each `recording_downloaded` entry of the session by id: the Range it asked ("" for all)."""
    path = f"{API}/audit?session={session_id}&action=recording_downloaded&page_size=1000"
    ranges = {}
    while path:
        page = client.call("GET", path)
        ranges |= {entry["id"]: entry["detail"]["range"] for entry in page["results"]}
        path = page["next"] and _path_of(page["next"])
    return ranges


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _range_length(header: str, size: int) -> int:
    """How many bytes a `Range` header asks of `size`; no header asks for all of them."""
    if not header:
        return size
    unit, _, specs = header.partition("=")
    assert unit.strip() == "bytes", header
    total = 0
    for spec in specs.split(","):
        first, _, last = spec.strip().partition("-")
        if not first:
            total += min(int(last), size)
        else:
            end = size - 1 if not last else min(int(last), size - 1)
            total += max(0, end - int(first) + 1)
    return total


def _segments(playlist: str) -> list[float]:
    return [float(seconds) for seconds in re.findall(r"^#EXTINF:([0-9.]+),", playlist, re.M)]


def _seek_playlist(playlist: str, playlist_url: str) -> str:
    """What a player loads to seek to SEEK_SECONDS: the playlist's init segment and the one
    segment whose EXTINFs span that time, URIs as the playlist gives them, resolved as a player
    resolves them (no credentials but the URIs' token)."""
    lines = playlist.splitlines()
    header = [line for line in lines if line.startswith(HEADER_TAGS)]
    (init,) = [line for line in lines if line.startswith("#EXT-X-MAP:")]
    init_uri = re.search(r'URI="([^"]+)"', init)[1]
    init = init.replace(init_uri, urljoin(playlist_url, init_uri))
    start = 0.0
    for index, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            seconds = float(line.removeprefix("#EXTINF:").split(",")[0])
            if start <= SEEK_SECONDS < start + seconds:
                byterange, uri = lines[index + 1], lines[index + 2]
                assert byterange.startswith("#EXT-X-BYTERANGE:"), playlist
                segment = [line, byterange, urljoin(playlist_url, uri)]
                return "\n".join([*header, init, *segment, "#EXT-X-ENDLIST"]) + "\n"
            start += seconds
    raise AssertionError(f"no segment holds {SEEK_SECONDS} s:\n{playlist}")


def _playlist(client: ServiceClient, session_id: str) -> str:
    status, content = client.request("GET", f"{API}/sessions/{session_id}/playlist.m3u8")
    assert status == 200, content
    return content.decode()


def test_ffprobe_reads_the_recordings_duration_from_its_playlist(client, recorded):
    completed = _run(
        require_tool("ffprobe"),
        "-v",
        "error",
        "-headers",
        _auth_headers(client),
        "-show_entries",
        "format=duration",
        "-of",
        "default=noprint_wrappers=1:nokey=1",
        _playlist_url(client, recorded),
    )

    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    assert float(completed.stdout) == pytest.approx(SECONDS, abs=0.5)


def test_a_seek_to_45_s_plays_its_segment_by_token_fetching_less_than_a_quarter(
    client, recorded, video, video_path, tmp_path
):
    size = len(video.data)
    playlist_url = _playlist_url(client, recorded)
    seek_playlist = tmp_path / "seek.m3u8"
    seek_playlist.write_text(_seek_playlist(_playlist(client, recorded), playlist_url))
    before = _audit_ranges(client, recorded)

    frame = _first_frame("-protocol_whitelist", "file,http,tcp", "-i", str(seek_playlist))

    asked = {
        id_: range_ for id_, range_ in _audit_ranges(client, recorded).items() if id_ not in before
    }
    fetched = sum(_range_length(header, size) for header in asked.values())
    assert len(frame) == WIDTH * HEIGHT
    assert frame == _first_frame("-ss", str(SEEK_SECONDS), "-i", str(video_path))
    assert 0 < fetched < size / 4, f"{fetched} of {size} bytes fetched: {sorted(asked.values())}"


def test_a_live_playlist_grows_while_recording_and_ends_at_stop(client, video):
    session_id = video_session(client, name="video", chunk_size=STREAM_CHUNK_SIZE)
    append_marked(client, session_id, video.init_segment, time_ms=None)
    append_fragments(client, session_id, video, range(0, 10))
    early = _playlist(client, session_id)
    append_fragments(client, session_id, video, range(10, 30))
    later = _playlist(client, session_id)
    append_fragments(client, session_id, video, range(30, SECONDS))
    _stop(client, session_id)
    final = _playlist(client, session_id)

    for live in (early, later):
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in live
        assert "#EXT-X-ENDLIST" not in live
    assert 0 < len(_segments(early)) < len(_segments(later)) < SECONDS
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in final
    assert final.rstrip().endswith("#EXT-X-ENDLIST")
    assert len(_segments(final)) == SECONDS
    assert sum(_segments(final)) == pytest.approx(SECONDS, abs=0.5)
