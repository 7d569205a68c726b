"""Byte downloads over HTTP: ranges, validators and content codings for streamed bodies.

Chunk download and whole-recording download build their responses here, so both answer
`Range`, `If-Range` and `If-None-Match` the same way (RFC 9110) and stream their bytes piece by
piece, as their sources give them, or send them at once when a source gives them whole.
"""

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)

from core.errors import ApplicationError

_RANGE_SPEC = re.compile(r"\s*([0-9]*)\s*-\s*([0-9]*)\s*")
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')
_QVALUE = re.compile(r"0+(?:\.[0-9]*)?|\.[0-9]+|0*1(?:\.0*)?")
_MAX_DIGITS = 18
_UNBOUNDED = 10**_MAX_DIGITS
_CODING_ALIASES = {"gzip": {"gzip", "x-gzip"}, "compress": {"compress", "x-compress"}}
_UNSAFE_FILENAME_CHARACTERS = re.compile(r'[^\x20-\x7e]|["\\/]')
_FALLBACK_FILENAME = "download"


class RangeNotSatisfiable(ApplicationError):
    """A single, well-formed byte range that selects nothing of the representation."""

    status_code = 416
    default_code = "range_not_satisfiable"

    def __init__(self, *, size: int):
        super().__init__(
            f"The requested range is not satisfiable: the content is {size} bytes long."
        )
        self.size = size


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def _position(digits: str) -> int:
    """Parse a range position; one too long to be real counts as "beyond any content"."""
    significant = digits.lstrip("0")
    return _UNBOUNDED if len(significant) > _MAX_DIGITS else int(significant or "0")


def parse_range(header: str | None, *, size: int) -> ByteRange | None:
    """Return the single byte range `header` asks for, clamped to `size` bytes.

    None means "serve the whole representation": no header, an invalid one, another unit or
    several ranges, all of which RFC 9110 lets a server ignore. A valid range that selects
    nothing raises `RangeNotSatisfiable`.
    """
    if header is None:
        return None
    unit, separator, range_set = header.partition("=")
    if not separator or unit.strip().lower() != "bytes":
        return None
    specs = [spec for spec in range_set.split(",") if spec.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix_length = _position(last)
        if suffix_length == 0 or size == 0:
            raise RangeNotSatisfiable(size=size)
        return ByteRange(start=max(size - suffix_length, 0), end=size - 1)
    start = _position(first)
    end = _position(last) if last else _UNBOUNDED
    if end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size=size)
    return ByteRange(start=start, end=min(end, size - 1))


def _opaque_tag(etag: str) -> str:
    return etag.strip().removeprefix("W/")


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` is "*" or lists `etag` (quoted), compared weakly."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return _opaque_tag(etag) in _ENTITY_TAG.findall(if_none_match)


def _qvalue(parameters: list[str]) -> float:
    """The element's weight: 1 when it has none, 0 when it is unreadable."""
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            return float(value) if _QVALUE.fullmatch(value) else 0.0
    return 1.0


def accepts_encoding(accept_encoding: str | None, coding: str) -> bool:
    """Whether `Accept-Encoding` allows `coding`, by name or through "*", with a q above 0."""
    if not accept_encoding:
        return False
    names = _CODING_ALIASES.get(coding.lower(), {coding.lower()})
    named: list[float] = []
    wildcard: list[float] = []
    for element in accept_encoding.split(","):
        name, *parameters = element.split(";")
        name = name.strip().lower()
        if name in names:
            named.append(_qvalue(parameters))
        elif name == "*":
            wildcard.append(_qvalue(parameters))
    weights = named or wildcard
    return bool(weights) and max(weights) > 0


def _content_disposition(filename: str) -> str:
    """An attachment header with an ASCII `filename` and, if that lost anything, `filename*`."""
    printable = "".join(
        character
        for character in filename.replace("/", "_").replace("\\", "_")
        if unicodedata.category(character)[0] != "C"
    ).strip()
    unaccented = "".join(
        character
        for character in unicodedata.normalize("NFKD", printable)
        if not unicodedata.combining(character)
    )
    fallback = _UNSAFE_FILENAME_CHARACTERS.sub("_", unaccented).strip() or _FALLBACK_FILENAME
    header = f'attachment; filename="{fallback}"'
    if printable and printable != fallback:
        header += f"; filename*=UTF-8''{quote(printable, safe='')}"
    return header


class _ExactBody:
    """Exactly `length` bytes of `source`; closes `source` once read or when closed early.

    `StreamingHttpResponse.close()` calls `close()` here, so a client that goes away releases
    the source too. A source that runs short raises instead of leaving the client waiting.
    """

    def __init__(self, source: Iterable[bytes], *, length: int):
        self._source = source
        self._pieces = iter(source)
        self._length = length
        self._remaining = length
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._remaining == 0:
            self.close()
            raise StopIteration
        try:
            piece = next(self._pieces)
        except StopIteration:
            self.close()
            raise OSError(
                f"The content ended {self._remaining} bytes short of {self._length} bytes."
            ) from None
        if len(piece) > self._remaining:
            piece = piece[: self._remaining]
        self._remaining -= len(piece)
        if self._remaining == 0:
            self.close()
        return piece

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def _set_representation_headers(response: HttpResponseBase, *, etag_header: str) -> None:
    response["ETag"] = etag_header
    response["Cache-Control"] = "private, no-transform"
    response["Vary"] = "Accept-Encoding"


def _not_modified(*, etag_header: str, size: int) -> HttpResponse:
    response = HttpResponse(status=304)
    del response["Content-Type"]
    response["Content-Length"] = str(size)
    _set_representation_headers(response, etag_header=etag_header)
    return response


def _range_not_satisfiable(error: RangeNotSatisfiable, *, etag_header: str) -> HttpResponse:
    response = JsonResponse(
        {"code": error.code, "message": error.message}, status=error.status_code
    )
    response["Content-Range"] = f"bytes */{error.size}"
    response["Content-Length"] = str(len(response.content))
    response["Accept-Ranges"] = "bytes"
    _set_representation_headers(response, etag_header=etag_header)
    return response


def _content_response(
    request: HttpRequest,
    *,
    status: int,
    length: int,
    content_type: str,
    pieces: Callable[[], Iterable[bytes] | bytes],
) -> HttpResponseBase:
    """Send `length` bytes of content; a HEAD request or empty content never opens them.

    Content given whole, as `bytes`, is sent as it is; pieces are streamed.
    """
    source = iter(()) if request.method == "HEAD" or length == 0 else pieces()
    if isinstance(source, bytes):
        if len(source) < length:
            raise OSError(f"The content is {len(source)} bytes, not the {length} announced.")
        response = HttpResponse(source[:length], status=status, content_type=content_type)
    else:
        content = _ExactBody(source, length=length) if request.method != "HEAD" else source
        response = StreamingHttpResponse(content, status=status, content_type=content_type)
    response["Content-Length"] = str(length)
    return response


def byte_response(
    request: HttpRequest,
    *,
    size: int,
    etag: str,
    filename: str,
    open_bytes: Callable[[int, int], Iterable[bytes] | bytes],
    content_type: str = "application/octet-stream",
) -> HttpResponseBase:
    """Serve `size` bytes read through `open_bytes(start, end)`, honouring conditions and ranges.

    `Range` applies to GET only (RFC 9110 §14.2); `If-Range` must equal the strong ETag for it to
    apply at all.
    """
    etag_header = f'"{etag}"'
    if etag_matches(request.headers.get("If-None-Match"), etag_header):
        return _not_modified(etag_header=etag_header, size=size)

    byte_range = None
    if_range = request.headers.get("If-Range")
    if request.method == "GET" and (if_range is None or if_range.strip() == etag_header):
        try:
            byte_range = parse_range(request.headers.get("Range"), size=size)
        except RangeNotSatisfiable as error:
            return _range_not_satisfiable(error, etag_header=etag_header)
    start, end = (0, size - 1) if byte_range is None else (byte_range.start, byte_range.end)

    response = _content_response(
        request,
        status=200 if byte_range is None else 206,
        length=end - start + 1,
        content_type=content_type,
        pieces=lambda: open_bytes(start, end),
    )
    if byte_range is not None:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = _content_disposition(filename)
    _set_representation_headers(response, etag_header=etag_header)
    return response


def encoded_response(
    request: HttpRequest,
    *,
    stored_size: int,
    etag: str,
    filename: str,
    coding: str,
    open_stored: Callable[[], Iterable[bytes] | bytes],
    content_type: str = "application/octet-stream",
) -> HttpResponseBase:
    """Pass `stored_size` bytes in content coding `coding` through as they are, without ranges.

    The ETag is the weak form of `etag`: the content means the same as the plain bytes, so
    `If-None-Match` still matches either, but its bytes differ, so `If-Range` never does.
    """
    etag_header = f'W/"{etag}"'
    if etag_matches(request.headers.get("If-None-Match"), etag_header):
        return _not_modified(etag_header=etag_header, size=stored_size)
    response = _content_response(
        request,
        status=200,
        length=stored_size,
        content_type=content_type,
        pieces=open_stored,
    )
    response["Content-Encoding"] = coding
    response["Accept-Ranges"] = "none"
    response["Content-Disposition"] = _content_disposition(filename)
    _set_representation_headers(response, etag_header=etag_header)
    return response
