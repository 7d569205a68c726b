"""The HLS media playlist of a fragmented-MP4 recording, cut at its time marks (RFC 8216)."""

import math
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from chunks_app.selectors import (
    PlacedMark,
    recording_bytes_available,
    time_mark_list,
    time_marks_placed,
)
from core.audit import audit_record
from core.choices import AuditAction
from core.errors import Conflict
from core.playback_tokens import playback_token_issue
from sessions_app.choices import SessionStatus
from sessions_app.models import Session

PLAYABLE_MEDIA_TYPE = "video/mp4"
HLS_VERSION = 7
# A session in these takes no more bytes: its playlist ends.
ENDED_STATUSES = frozenset({SessionStatus.STOPPED, SessionStatus.FAILED})


@dataclass(frozen=True)
class Segment:
    """Bytes `offset`..`offset + length` of the recording: `seconds` of media."""

    offset: int
    length: int
    seconds: float


def _placed_prefix(marks: list[PlacedMark]) -> list[PlacedMark]:
    """The marks up to the first whose byte is not placed yet."""
    for index, mark in enumerate(marks):
        if mark.offset is None:
            return marks[:index]
    return marks


def playlist_segments(
    *, marks: list[PlacedMark], available: int, ended: bool, duration_ms: int | None
) -> list[Segment]:
    """One segment per interval between marks whose bytes are all `available`; the interval
    after the last mark only once `ended`, lasting until `duration_ms` (or, when that says
    nothing more, as long as the one before it)."""
    segments: list[Segment] = []
    for index, mark in enumerate(marks):
        following = marks[index + 1] if index + 1 < len(marks) else None
        if following is not None:
            end, milliseconds = following.offset, following.time_ms - mark.time_ms
        elif ended:
            end, milliseconds = available, (duration_ms or mark.time_ms) - mark.time_ms
            if milliseconds <= 0 and segments:
                milliseconds = round(segments[-1].seconds * 1000)
        else:
            break
        if end > available:
            break
        if end > mark.offset:
            segments.append(Segment(mark.offset, end - mark.offset, milliseconds / 1000))
    return segments


def playlist_render(*, init_size: int, segments: list[Segment], ended: bool, uri: str) -> str:
    longest = max((segment.seconds for segment in segments), default=1.0)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(longest))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if init_size:
        lines.append(f'#EXT-X-MAP:URI="{uri}",BYTERANGE="{init_size}@0"')
    for segment in segments:
        lines += [
            f"#EXTINF:{segment.seconds:.3f},",
            f"#EXT-X-BYTERANGE:{segment.length}@{segment.offset}",
            uri,
        ]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def is_playable(session: Session) -> bool:
    return session.content_type.partition(";")[0].strip().lower() == PLAYABLE_MEDIA_TYPE


def session_playlist_issue(*, session: Session, user: AbstractBaseUser) -> str:
    """The session's HLS playlist for `user`, its URIs carrying a playback token; audited."""
    if not is_playable(session):
        raise Conflict(
            f"Only video/mp4 recordings have a playlist; this one is {session.content_type}.",
            code="not_playable",
            extra={"content_type": session.content_type},
        )
    ended = session.status in ENDED_STATUSES
    available = recording_bytes_available(session=session)
    marks = time_mark_list(session=session).order_by("time_ms")
    marks = time_marks_placed(session=session, marks=marks)
    marks = _placed_prefix(marks)
    segments = playlist_segments(
        marks=marks, available=available, ended=ended, duration_ms=session.duration_ms
    )
    token = playback_token_issue(session_id=session.pk, user_id=user.pk)
    audit_record(
        action=AuditAction.PLAYLIST_ISSUED,
        session_id=session.pk,
        detail={"segments": len(segments), "ended": ended},
    )
    init_size = marks[0].offset if marks else 0
    return playlist_render(
        init_size=init_size, segments=segments, ended=ended, uri=f"recording.mp4?token={token}"
    )
