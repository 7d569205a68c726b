"""HTTP endpoints of chunks: ingest, listing, downloads, the manifest, stop and statistics."""

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from chunks_app import selectors, services
from chunks_app.api.serializers import (
    ChunkSerializer,
    ManifestSerializer,
    SessionStatisticsSerializer,
    StreamAppendSerializer,
    SystemStatisticsSerializer,
    TimelineSerializer,
    TimeMarkSerializer,
)
from chunks_app.codecs import get_codec
from chunks_app.filtersets import ChunkFilterSet
from chunks_app.models import Chunk, TimeMark
from chunks_app.playlist import session_playlist_issue
from chunks_app.statistics import session_statistics, system_statistics
from core.api.authentication import PlaybackTokenAuthentication, playback_grant_check
from core.api.negotiation import MediaNegotiation
from core.api.schema import error_responses
from core.audit import audit_record, audit_record_on_close
from core.choices import AuditAction, ChunkStatus
from core.errors import ValidationFailed
from core.http.bodies import request_body
from core.http.digest import parse_content_digest
from core.http.downloads import accepts_encoding, byte_response, encoded_response
from core.http.milliseconds import (
    DURATION_HEADER,
    TIME_MARK_HEADER,
    header_milliseconds,
)
from sessions_app.api.serializers import SessionSerializer
from sessions_app.api.views import SESSIONS_DESCRIPTION, control_schema
from sessions_app.models import Session
from sessions_app.selectors import SessionAccess, session_access_get, session_get

BINARY_BODY = {"application/octet-stream": OpenApiTypes.BINARY}
SEQUENCE = OpenApiParameter(
    "sequence", int, OpenApiParameter.PATH, description="The chunk's number: 0, 1, 2, …"
)
DOWNLOAD_HEADERS = [
    OpenApiParameter("Range", str, OpenApiParameter.HEADER, description="`bytes=start-end`."),
    OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="An ETag."),
    OpenApiParameter("If-Range", str, OpenApiParameter.HEADER, description="An ETag."),
]
TIME_MARK = OpenApiParameter(
    TIME_MARK_HEADER,
    int,
    OpenApiParameter.HEADER,
    description="Media time (ms since the recording's start) of the first byte sent. Marks rise "
    "in time as they rise in offset: a contradicting mark is 409 `time_mark_conflict` and "
    "nothing is stored.",
)
DOWNLOAD_RESPONSES = {
    (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, "The raw bytes."),
    (206, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, "A byte range."),
    304: OpenApiResponse(description="Not modified (If-None-Match)."),
    **error_responses(404, 416, 500),
}


PLAYLIST_MEDIA_TYPE = "application/vnd.apple.mpegurl"


def _time_mark(request: Request) -> int | None:
    return header_milliseconds(request, name=TIME_MARK_HEADER, code="invalid_time_mark")


def _checked(read: Callable[..., Iterable[bytes]], /, **arguments: Any) -> Iterable[bytes] | bytes:
    """A chunk's bytes as `read` checks and gives them: one `bytes` when it gives them whole
    (sent at once), else its pieces, streamed (a large chunk checked as it is read)."""
    pieces = services.chunk_read_marking_damage(read, **arguments)
    first = next(pieces, b"")
    second = next(pieces, None)
    if second is None:
        return first
    return itertools.chain((first, second), pieces)


def _at_ms(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ValidationFailed(
            "at_ms must be a whole number of milliseconds (0 or more).",
            fields={"at_ms": ["Not a whole, non-negative number of milliseconds."]},
        )
    return int(value)


class SessionScopedMixin:
    """Views under /sessions/{session_id}: the session is looked up once, 404 if unknown."""

    # The columns the view's service reads, where loading the whole row would cost more.
    session_fields: tuple[str, ...] = ()

    def get_session(self) -> Session:
        if not hasattr(self, "_session"):
            self._session = session_get(
                session_id=self.kwargs["session_id"], fields=self.session_fields
            )
            self.check_object_permissions(self.request, self._session)
        return self._session

    def get_session_access(self) -> SessionAccess:
        """Only the session's id and owner, usually from the cache: for reads of its chunks."""
        access = session_access_get(session_id=self.kwargs["session_id"])
        self.check_object_permissions(self.request, access)
        return access


@extend_schema(
    summary="List a session's chunks by sequence",
    responses={200: ChunkSerializer(many=True), **error_responses(400, 404)},
)
class ChunkListView(SessionScopedMixin, generics.ListAPIView):
    """A session's chunks in sequence order, filterable by status."""

    recorder_operations = ("get",)

    serializer_class = ChunkSerializer
    filterset_class = ChunkFilterSet
    ordering = ("sequence",)
    ordering_is_unique = True

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Chunk.objects.none()
        columns = [name for name in ChunkSerializer.Meta.fields if name != "compression_ratio"]
        return selectors.chunk_list(session=self.get_session_access()).only(*columns)


class ChunkDetailView(SessionScopedMixin, APIView):
    """One chunk: read its metadata, or upload its bytes."""

    recorder_operations = ("get", "put")
    session_fields = (
        "owner_id",
        "status",
        "ingest_mode",
        "chunk_size",
        "compression_algorithm",
        "compression_level",
        "pipeline__state",
    )

    @extend_schema(
        summary="Get a chunk",
        parameters=[SEQUENCE],
        responses={200: ChunkSerializer, **error_responses(404)},
    )
    def get(self, request: Request, session_id: str, sequence: str) -> Response:
        chunk = selectors.chunk_get(session=self.get_session_access(), sequence=int(sequence))
        return Response(ChunkSerializer(chunk).data)

    @extend_schema(
        summary="Upload a chunk's raw bytes",
        description=(
            "The body is the raw chunk, at most the session's `chunk_size`, sent with a "
            "Content-Length or `Transfer-Encoding: chunked`. An optional "
            "`Content-Digest: sha-256=:<base64>:` is checked; on mismatch nothing is stored. "
            "201 for a new chunk, 200 for the same bytes again, 409 for other bytes. "
            "A 2xx means the bytes are on disk (fsynced)."
        ),
        request=BINARY_BODY,
        parameters=[
            SEQUENCE,
            OpenApiParameter(
                "Content-Digest", str, OpenApiParameter.HEADER, description="sha-256=:<base64>:"
            ),
            TIME_MARK,
        ],
        responses={
            201: ChunkSerializer,
            200: ChunkSerializer,
            **error_responses(400, 404, 409, 411, 413, 503, 507),
        },
    )
    def put(self, request: Request, session_id: str, sequence: str) -> Response:
        session = self.get_session()
        body = request_body(request, required=True)
        chunk, created = services.chunk_ingest(
            session=session,
            sequence=int(sequence),
            body=body,
            content_length=body.length,
            expected_sha256=parse_content_digest(request.headers.get("Content-Digest")),
            time_ms=_time_mark(request),
        )
        return Response(
            ChunkSerializer(chunk).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ChunkDownloadView(SessionScopedMixin, APIView):
    """A chunk's raw bytes, with ranges, conditional requests and compressed passthrough."""

    recorder_operations = ("get",)

    @extend_schema(
        summary="Download a chunk's raw bytes",
        description=(
            "`ETag` is the sha256 of the raw bytes. When `Accept-Encoding` names the stored "
            "algorithm (zstd, gzip), no `Range` is asked and the chunk is not encrypted "
            "(`key_id` null), the stored bytes are sent as they are with `Content-Encoding`. "
            "The bytes are checked against the sha256 recorded for them (an encrypted chunk's "
            "are authenticated first) before the first is sent: a chunk whose bytes are "
            "missing or changed is marked `damaged` and answers 500 `chunk_damaged` with its "
            "`sequence`."
        ),
        parameters=[SEQUENCE, *DOWNLOAD_HEADERS],
        responses=DOWNLOAD_RESPONSES,
    )
    def get(self, request: Request, session_id: str, sequence: str):
        session = self.get_session_access()
        chunk = selectors.chunk_get(session=session, sequence=int(sequence))
        audit_record_on_close(
            action=AuditAction.CHUNK_DOWNLOADED,
            session_id=session.pk,
            sequence=chunk.sequence,
            detail={"range": request.headers.get("Range", "")},
        )
        filename = f"{session.pk}-{chunk.sequence:012d}.bin"
        coding = chunk.algorithm and get_codec(chunk.algorithm).content_encoding
        if (
            chunk.status == ChunkStatus.STORED
            and not chunk.key_id
            and coding
            and "Range" not in request.headers
            and accepts_encoding(request.headers.get("Accept-Encoding"), coding)
        ):
            return encoded_response(
                request,
                stored_size=chunk.compressed_size,
                etag=chunk.sha256,
                filename=filename,
                coding=coding,
                open_stored=lambda: _checked(selectors.chunk_read_stored, chunk=chunk),
            )
        return byte_response(
            request,
            size=chunk.size,
            etag=chunk.sha256,
            filename=filename,
            open_bytes=lambda start, end: _checked(
                selectors.chunk_read_range, chunk=chunk, start=start, end=end
            ),
        )


class SessionStreamView(SessionScopedMixin, APIView):
    """Append raw bytes to a session's stream, which is cut into chunks of `chunk_size`."""

    recorder_operations = ("post",)

    @extend_schema(
        summary="Append bytes to the session's stream",
        description=(
            "Any number of bytes, streamed, with a Content-Length or `Transfer-Encoding: "
            "chunked`. Every full `chunk_size` becomes a chunk; the tail becomes the last chunk "
            "at stop. A 200 means the bytes are durable (fsynced, or written to the object "
            "store); a body that ends before its announced end (400 `incomplete_body`) adds "
            "nothing. With the spool in an object store, two writers of one stream do not wait "
            "for each other: the one recorded second gets 409 `stream_conflict` with the "
            "stream's `offset`, and none of its bytes are in the stream."
        ),
        request=BINARY_BODY,
        parameters=[TIME_MARK],
        responses={200: StreamAppendSerializer, **error_responses(400, 404, 409, 411, 503, 507)},
    )
    def post(self, request: Request, session_id: str) -> Response:
        access = self.get_session_access()
        time_ms = _time_mark(request)
        body = request_body(request)
        result = services.session_stream_append(
            session_id=access.pk, body=body, content_length=body.length, time_ms=time_ms
        )
        return Response(StreamAppendSerializer(result).data)


class SessionRecordingView(SessionScopedMixin, APIView):
    """The whole session's raw bytes in sequence order, with ranges across chunk borders."""

    recorder_operations = ("get",)
    authentication_classes = [
        PlaybackTokenAuthentication,
        *api_settings.DEFAULT_AUTHENTICATION_CLASSES,
    ]
    content_negotiation_class = MediaNegotiation

    @extend_schema(
        summary="Download the whole recording",
        description=(
            "`ETag` is the session's Merkle root. Each chunk is checked before its first byte "
            "is sent, and a damaged one is marked `damaged`: when it is the first chunk asked "
            "for, the answer is 500 `chunk_damaged` with its `sequence`; when a later one, the "
            "connection is closed before the announced `Content-Length` is reached. Served "
            "with the session's `content_type`. `?token=` from a playlist stands in for the "
            "credentials (GET only); a token that is tampered with, expired or of another "
            "session is 403."
        ),
        parameters=DOWNLOAD_HEADERS,
        responses={**DOWNLOAD_RESPONSES, **error_responses(403)},
    )
    def get(self, request: Request, session_id: str):
        playback_grant_check(request, session_id=session_id)
        session = self.get_session()
        audit_record(
            action=AuditAction.RECORDING_DOWNLOADED,
            session_id=session.pk,
            detail={"range": request.headers.get("Range", "")},
        )
        layout = selectors.session_recording_layout(session=session)
        return byte_response(
            request,
            size=layout.size,
            etag=layout.merkle_root or "empty",
            filename=f"{session.pk}.rdp-recording",
            open_bytes=lambda start, end: services.chunk_read_marking_damage(
                selectors.recording_read_range, layout=layout, start=start, end=end
            ),
            content_type=session.content_type,
        )


class SessionTimelineView(SessionScopedMixin, generics.GenericAPIView):
    """Where media time lies in the recording: its time marks, or the one at a given time."""

    recorder_operations = ("get",)
    ordering = ("time_ms",)
    ordering_is_unique = True
    filter_backends = []
    query_parameters = ("at_ms",)

    @extend_schema(
        summary="The recording's time marks",
        description=(
            "Marks in time order, keyset-paginated (`next`, `previous`). A mark's `offset` is "
            "null while chunks uploaded before it are missing. `?at_ms=T` gives the one mark "
            "at or before T (in `marks`, and at the top level); 404 `time_mark_not_found` if "
            "there is none."
        ),
        parameters=[
            OpenApiParameter("at_ms", int, description="A media time in ms."),
        ],
        responses={200: TimelineSerializer, **error_responses(400, 404)},
    )
    def get(self, request: Request, session_id: str) -> Response:
        session = self.get_session()
        at_ms = request.query_params.get("at_ms")
        if at_ms is not None:
            mark = selectors.time_mark_at(session=session, at_ms=_at_ms(at_ms))
            body = {"duration_ms": session.duration_ms, "marks": [mark]}
            page = TimelineSerializer(body | {"next": None, "previous": None}).data
            return Response({**page, **TimeMarkSerializer(mark).data})
        page = self.paginate_queryset(selectors.time_mark_list(session=session))
        marks = selectors.time_marks_placed(session=session, marks=page)
        body = {
            "duration_ms": session.duration_ms,
            "marks": marks,
            "next": self.paginator.get_next_link(),
            "previous": self.paginator.get_previous_link(),
        }
        return Response(TimelineSerializer(body).data)

    def get_queryset(self):
        return TimeMark.objects.none()


class SessionPlaylistView(SessionScopedMixin, APIView):
    """The recording as an HLS media playlist, for a `video/mp4` session."""

    recorder_operations = ("get",)
    content_negotiation_class = MediaNegotiation

    @extend_schema(
        summary="The recording as an HLS playlist",
        description=(
            "For a `video/mp4` session of fragmented MP4 (409 `not_playable` otherwise): "
            "version 7, the bytes before the first time mark as `EXT-X-MAP`, one "
            "`EXT-X-BYTERANGE` segment per interval between marks. While recording, a live "
            "playlist of the intervals already in chunks; `EXT-X-ENDLIST` once stopped. Its "
            "URIs carry a playback token (`LUCID_PLAYBACK_TOKEN_SECONDS`) that `/recording` "
            "accepts for GET. Each playlist issued is audited."
        ),
        responses={
            (200, "application/vnd.apple.mpegurl"): OpenApiResponse(
                OpenApiTypes.STR, "The playlist."
            ),
            **error_responses(404, 409),
        },
    )
    def get(self, request: Request, session_id: str) -> HttpResponse:
        playlist = session_playlist_issue(session=self.get_session(), user=request.user)
        response = HttpResponse(playlist, content_type=PLAYLIST_MEDIA_TYPE)
        response["Cache-Control"] = "no-store"
        return response


class SessionManifestView(SessionScopedMixin, APIView):
    """The session's chunk hashes and Merkle root."""

    recorder_operations = ("get",)

    @extend_schema(
        summary="Get the session's manifest",
        responses={200: ManifestSerializer, **error_responses(404)},
    )
    def get(self, request: Request, session_id: str) -> Response:
        session = self.get_session()
        audit_record_on_close(action=AuditAction.MANIFEST_READ, session_id=session.pk)
        manifest = selectors.session_manifest(session=session)
        return Response(ManifestSerializer(manifest).data)


class SessionChunksViewSet(viewsets.GenericViewSet):
    """Routes of a session that work on all its chunks: stop (seals them) and statistics."""

    queryset = Session.objects.none()
    serializer_class = SessionSerializer
    lookup_value_regex = "[^/]+"
    recorder_operations = ("stop", "statistics")

    def get_object(self) -> Session:
        session = session_get(session_id=self.kwargs["pk"])
        self.check_object_permissions(self.request, session)
        return session

    @control_schema(
        "Stop",
        parameters=[
            OpenApiParameter(
                DURATION_HEADER,
                int,
                OpenApiParameter.HEADER,
                description="The recording's total media duration in ms (at least the last "
                "time mark's).",
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        duration_ms = header_milliseconds(request, name=DURATION_HEADER, code="invalid_duration")
        session = services.session_stop(session=self.get_object(), duration_ms=duration_ms)
        return Response(self.get_serializer(session).data)

    @extend_schema(
        summary="A session's statistics",
        description=SESSIONS_DESCRIPTION,
        operation_id="sessions_statistics",
        responses={200: SessionStatisticsSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["get"])
    def statistics(self, request: Request, pk: str) -> Response:
        statistics = session_statistics(session=self.get_object())
        return Response(SessionStatisticsSerializer(statistics).data)

    @extend_schema(
        summary="Statistics of every session and of the chunk store",
        description=SESSIONS_DESCRIPTION,
        operation_id="sessions_system_statistics",
        responses={200: SystemStatisticsSerializer, **error_responses()},
        filters=False,
    )
    @action(detail=False, methods=["get"], url_path="statistics", filter_backends=[])
    def system_statistics(self, request: Request) -> Response:
        return Response(SystemStatisticsSerializer(system_statistics()).data)
