"""GET /api/v1/sessions/{id}/playlist.m3u8: HLS over a marked video/mp4 recording, live and VOD.

The bytes are not real video here: a playlist is cut from the marks alone (tests/e2e plays real
fragmented MP4). INIT bytes come before the first mark, then one FRAGMENT-byte piece per mark.
"""

import math
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
from rest_framework.test import APIClient

from core.models import AuditEntry
from sessions_app.models import Session
from tests.chunks_app.helpers import CHUNK_SIZE, body_of, random_bytes
from tests.chunks_app.marked_uploads import append_marked, put_marked, stop
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

INIT = 1000
FRAGMENT = 30_000
TIMES = [0, 1000, 2000, 3000, 4000, 6500]
# The marks' offsets: 1000, 31000, …, 151000; the recording ends at 181000. While recording, the
# stream's chunks 0 and 1 (bytes 0…131071) are whole: the intervals ending at or before that.
OFFSETS = [INIT + FRAGMENT * index for index in range(len(TIMES))]
SIZE = INIT + FRAGMENT * len(TIMES)
TOKEN = re.compile(r"token=([^\"\s]+)")


@dataclass(frozen=True)
class Listed:
    """What a playlist says: the init segment's range, each segment's range and length."""

    text: str
    map_range: tuple[int, int] | None
    segments: list[tuple[int, int, str]]  # (offset, length, EXTINF value)
    uris: list[str]


def data_of() -> bytes:
    return random_bytes(SIZE)


def video_session(owner, **fields) -> Session:
    return SessionFactory(
        owner=owner,
        status="recording",
        chunk_size=CHUNK_SIZE,
        content_type=fields.pop("content_type", "video/mp4"),
        **fields,
    )


def stream_marked(client, session: Session, data: bytes, *, fragments: int = len(TIMES)) -> None:
    """Append the init segment unmarked, then the first `fragments` fragments, each marked."""
    append_marked(client, session, data[:INIT])
    for index in range(fragments):
        piece = data[OFFSETS[index] : OFFSETS[index] + FRAGMENT]
        assert append_marked(client, session, piece, time_ms=TIMES[index]).status_code == 200


def playlist_url(session: Session) -> str:
    return f"/api/v1/sessions/{session.id}/playlist.m3u8"


def playlist(client, session: Session) -> Listed:
    response = client.get(playlist_url(session))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/vnd.apple.mpegurl")
    return parse(response.content.decode())


def parse(text: str) -> Listed:
    map_range, segments, uris, extinf, byterange = None, [], [], None, None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            uri, length, offset = re.fullmatch(
                r'#EXT-X-MAP:URI="([^"]+)",BYTERANGE="(\d+)@(\d+)"', line
            ).groups()
            map_range = (int(offset), int(length))
            uris.append(uri)
        elif line.startswith("#EXTINF:"):
            extinf = line.removeprefix("#EXTINF:").rstrip(",")
        elif line.startswith("#EXT-X-BYTERANGE:"):
            length, offset = line.removeprefix("#EXT-X-BYTERANGE:").split("@")
            byterange = (int(offset), int(length))
        elif line and not line.startswith("#"):
            segments.append((*byterange, extinf))
            uris.append(line)
    return Listed(text=text, map_range=map_range, segments=segments, uris=uris)


def expected_text(*, segments: list[tuple[int, int, float]], stopped: bool) -> str:
    """The playlist the contract describes, with `T` for the token."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{math.ceil(max(seconds for _, _, seconds in segments))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if stopped else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="recording.mp4?token=T",BYTERANGE="{INIT}@0"',
    ]
    for offset, length, seconds in segments:
        lines += [f"#EXTINF:{seconds:.3f},", f"#EXT-X-BYTERANGE:{length}@{offset}"]
        lines.append("recording.mp4?token=T")
    if stopped:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def without_tokens(text: str) -> str:
    return TOKEN.sub("token=T", text)


def interval(index: int, seconds: float) -> tuple[int, int, float]:
    return (OFFSETS[index], FRAGMENT, seconds)


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_stopped_playlist_is_vod_with_every_interval_and_the_init_segment(api_client, user):
    session = video_session(user)
    stream_marked(api_client, session, data_of())
    stop(api_client, session, duration_ms=7000)

    listed = playlist(api_client, session)

    seconds = [1.0, 1.0, 1.0, 1.0, 2.5, 0.5]
    expected = [interval(index, value) for index, value in enumerate(seconds)]
    assert without_tokens(listed.text) == expected_text(segments=expected, stopped=True)


def test_a_live_playlist_is_an_event_of_the_intervals_already_in_chunks(api_client, user):
    session = video_session(user)
    stream_marked(api_client, session, data_of())

    listed = playlist(api_client, session)

    expected = [interval(index, 1.0) for index in range(4)]
    assert without_tokens(listed.text) == expected_text(segments=expected, stopped=False)
    assert all(offset + length <= 2 * CHUNK_SIZE for offset, length, _ in listed.segments)


def test_a_live_playlist_grows_by_whole_chunks_and_ends_at_stop(api_client, user):
    session = video_session(user)
    data = data_of()
    stream_marked(api_client, session, data, fragments=3)
    early = playlist(api_client, session)

    for index in range(3, len(TIMES)):
        append_marked(
            api_client,
            session,
            data[OFFSETS[index] : OFFSETS[index] + FRAGMENT],
            time_ms=TIMES[index],
        )
    later = playlist(api_client, session)
    stop(api_client, session, duration_ms=7000)
    final = playlist(api_client, session)

    assert [offset for offset, _, _ in early.segments] == OFFSETS[:2]
    assert [offset for offset, _, _ in later.segments] == OFFSETS[:4]
    assert [offset for offset, _, _ in final.segments] == OFFSETS
    assert "#EXT-X-ENDLIST" not in early.text and "#EXT-X-ENDLIST" not in later.text
    assert final.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in later.text
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in final.text


def test_a_live_playlist_before_any_whole_chunk_lists_no_segment(api_client, user):
    session = video_session(user)
    stream_marked(api_client, session, data_of(), fragments=2)

    listed = playlist(api_client, session)

    assert listed.segments == []
    assert "#EXT-X-ENDLIST" not in listed.text


def test_without_a_duration_the_last_segment_lasts_as_long_as_the_one_before(api_client, user):
    session = video_session(user)
    stream_marked(api_client, session, data_of())
    stop(api_client, session)

    listed = playlist(api_client, session)

    assert listed.segments[-1] == (OFFSETS[-1], FRAGMENT, "2.500")
    assert "#EXT-X-TARGETDURATION:3" in listed.text


def test_a_chunk_upload_playlist_lists_the_intervals_whose_chunks_are_all_there(api_client, user):
    session = video_session(user)
    data = data_of()
    pieces = [data[:INIT]] + [data[offset : offset + FRAGMENT] for offset in OFFSETS]
    times = [None, *TIMES]

    def upload(sequence: int) -> None:
        response = put_marked(
            api_client, session, sequence, pieces[sequence], time_ms=times[sequence]
        )
        assert response.status_code == 201, response.content

    for sequence in [0, 1, 2, 4]:
        upload(sequence)
    gap = playlist(api_client, session)
    upload(3)
    filled = playlist(api_client, session)
    for sequence in [5, 6]:
        upload(sequence)
    stop(api_client, session, duration_ms=7000)
    final = playlist(api_client, session)

    assert gap.segments == [(OFFSETS[0], FRAGMENT, "1.000")]
    assert [offset for offset, _, _ in filled.segments] == OFFSETS[:3]
    assert gap.map_range == filled.map_range == final.map_range == (0, INIT)
    expected = [interval(index, value) for index, value in enumerate([1, 1, 1, 1, 2.5, 0.5])]
    assert without_tokens(final.text) == expected_text(segments=expected, stopped=True)


def test_each_uri_with_only_its_token_gives_exactly_those_bytes(api_client, user, anonymous_client):
    session = video_session(user)
    data = data_of()
    stream_marked(api_client, session, data)
    stop(api_client, session, duration_ms=7000)
    listed = playlist(api_client, session)
    base = f"http://testserver{playlist_url(session)}"
    ranges = [listed.map_range] + [(offset, length) for offset, length, _ in listed.segments]

    for uri, (offset, length) in zip(listed.uris, ranges, strict=True):
        url = urljoin(base, uri)
        response = anonymous_client.get(url, HTTP_RANGE=f"bytes={offset}-{offset + length - 1}")

        assert url.startswith(
            f"http://testserver/api/v1/sessions/{session.id}/recording.mp4?token="
        )
        assert response.status_code == 206, response.content
        assert response["Content-Type"] == "video/mp4"
        assert body_of(response) == data[offset : offset + length]


def test_a_live_playlists_uris_read_the_recording_so_far(api_client, user, anonymous_client):
    session = video_session(user)
    data = data_of()
    stream_marked(api_client, session, data)
    listed = playlist(api_client, session)
    base = f"http://testserver{playlist_url(session)}"

    offset, length, _ = listed.segments[-1]
    response = anonymous_client.get(
        urljoin(base, listed.uris[-1]), HTTP_RANGE=f"bytes={offset}-{offset + length - 1}"
    )

    assert response.status_code == 206, response.content
    assert body_of(response) == data[offset : offset + length]


@pytest.mark.parametrize("content_type", ['video/mp4; codecs="avc1.64001f"', "VIDEO/MP4"])
def test_video_mp4_with_parameters_or_in_capitals_is_playable(api_client, user, content_type):
    session = video_session(user, content_type=content_type)
    stream_marked(api_client, session, data_of())
    stop(api_client, session)

    assert len(playlist(api_client, session).segments) == len(TIMES)


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "video/webm", "video/mp2t", "audio/mp4"]
)
def test_a_session_that_is_not_video_mp4_is_409_not_playable(api_client, user, content_type):
    session = video_session(user, content_type=content_type)
    stream_marked(api_client, session, data_of())
    stop(api_client, session)

    response = api_client.get(playlist_url(session))

    assert response.status_code == 409
    assert response.json()["code"] == "not_playable"
    assert not AuditEntry.objects.filter(action="playlist_issued").exists()


def test_issuing_a_playlist_is_audited(api_client, user):
    session = video_session(user)
    stream_marked(api_client, session, data_of())
    stop(api_client, session)

    playlist(api_client, session)
    playlist(api_client, session)

    listed = api_client.get(
        "/api/v1/audit", {"action": "playlist_issued", "session": str(session.id)}
    ).json()["results"]
    assert len(listed) == 2
    assert all(entry["actor"] == user.username for entry in listed)


def test_a_player_asking_for_hls_gets_the_playlist(api_client, user):
    session = video_session(user)
    stream_marked(api_client, session, data_of())

    response = api_client.get(
        playlist_url(session), HTTP_ACCEPT="application/vnd.apple.mpegurl, audio/mpegurl, */*"
    )

    assert response.status_code == 200
    assert response.content.startswith(b"#EXTM3U\n")


def test_a_recorder_gets_the_playlist_of_its_own_session_only(api_client, user):
    recorder = UserFactory(username="recorder", roles=["recorder"])
    own, others = video_session(recorder), video_session(user)
    client = client_of(recorder)
    stream_marked(client, own, data_of())

    assert client.get(playlist_url(own)).status_code == 200
    response = client.get(playlist_url(others))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_auditor_gets_any_playlist(api_client, user):
    session = video_session(user)
    stream_marked(api_client, session, data_of())
    client = client_of(UserFactory(username="auditor", roles=["auditor"]))

    assert client.get(playlist_url(session)).status_code == 200


def test_a_playlist_without_credentials_is_401(anonymous_client, user):
    session = video_session(user)

    assert anonymous_client.get(playlist_url(session)).status_code == 401
