"""Byte downloads: range parsing, validators, content codings and the streamed responses."""

import json
from collections.abc import Iterator

import pytest
from django.http import HttpResponseBase
from django.test import RequestFactory

from core.http.downloads import (
    ByteRange,
    RangeNotSatisfiable,
    accepts_encoding,
    byte_response,
    encoded_response,
    etag_matches,
    parse_range,
)

CONTENT = b"0123456789"
ETAG = "5e1f"
HUGE = "9" * 5000


class Pieces:
    """Bytes handed out a few at a time, like a file read in blocks; remembers being closed."""

    def __init__(self, content: bytes, *, piece_size: int = 3):
        self._pieces = iter(
            [content[i : i + piece_size] for i in range(0, len(content), piece_size)]
        )
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)

    def close(self) -> None:
        self.closed = True


class Source:
    """An `open_bytes` for `content` that records every range it opens."""

    def __init__(self, content: bytes = CONTENT):
        self.content = content
        self.opened: list[tuple[int, int]] = []
        self.pieces: list[Pieces] = []

    def __call__(self, start: int, end: int) -> Iterator[bytes]:
        self.opened.append((start, end))
        pieces = Pieces(self.content[start : end + 1])
        self.pieces.append(pieces)
        return pieces

    def open_stored(self) -> Iterator[bytes]:
        return self(0, len(self.content) - 1)


@pytest.fixture
def source() -> Source:
    return Source()


def download(
    source: Source, *, method: str = "get", size: int | None = None, **headers: str
) -> HttpResponseBase:
    request = getattr(RequestFactory(), method)("/download", headers=headers)
    return byte_response(
        request,
        size=len(source.content) if size is None else size,
        etag=ETAG,
        filename="chunk-7.bin",
        open_bytes=source,
    )


def encoded_download(source: Source, *, method: str = "get", **headers: str) -> HttpResponseBase:
    request = getattr(RequestFactory(), method)("/download", headers=headers)
    return encoded_response(
        request,
        stored_size=len(source.content),
        etag=ETAG,
        filename="chunk-7.bin",
        coding="zstd",
        open_stored=source.open_stored,
    )


def body(response: HttpResponseBase) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-4", 10, ByteRange(start=0, end=4)),
        ("bytes=3-", 10, ByteRange(start=3, end=9)),
        ("bytes=-3", 10, ByteRange(start=7, end=9)),
        ("bytes=9-9", 10, ByteRange(start=9, end=9)),
        ("bytes=0-0", 1, ByteRange(start=0, end=0)),
        ("bytes=-20", 10, ByteRange(start=0, end=9)),
        ("bytes=5-100", 10, ByteRange(start=5, end=9)),
        (f"bytes=2-{HUGE}", 10, ByteRange(start=2, end=9)),
        (f"bytes=-{HUGE}", 10, ByteRange(start=0, end=9)),
        ("bytes=007-008", 10, ByteRange(start=7, end=8)),
        ("  bytes = 2 - 4  ", 10, ByteRange(start=2, end=4)),
        ("bytes=\t-2", 10, ByteRange(start=8, end=9)),
        ("BYTES=1-2", 10, ByteRange(start=1, end=2)),
        ("bytes=1-2,", 10, ByteRange(start=1, end=2)),
        ("bytes=, 1-2", 10, ByteRange(start=1, end=2)),
    ],
)
def test_parse_range_returns_the_single_range_clamped_to_the_size(header, size, expected):
    assert parse_range(header, size=size) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=5-2",
        "items=0-1",
        "bytes=0-1,4-5",
        "bytes=0-1, -2",
        "bytes=",
        "bytes=-",
        "bytes=,",
        "bytes 0-1",
        "bytes",
        "=0-1",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=-1-2",
        "bytes=0x1-2",
        "bytes=1.5-2",
        "bytes=\u0663-\u0664",
        "garbage",
        "bytes=1 2-3",
    ],
)
def test_parse_range_ignores_headers_it_may_ignore(header):
    assert parse_range(header, size=10) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=10-", 10),
        ("bytes=10-20", 10),
        ("bytes=11-11", 10),
        (f"bytes={HUGE}-", 10),
        ("bytes=0-0", 0),
        ("bytes=0-", 0),
        ("bytes=-5", 0),
        ("bytes=-0", 10),
        ("bytes=-000", 10),
    ],
)
def test_parse_range_rejects_a_valid_range_that_selects_nothing(header, size):
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, size=size)

    assert raised.value.status_code == 416
    assert raised.value.code == "range_not_satisfiable"
    assert raised.value.size == size


@pytest.mark.parametrize(
    ("byte_range", "length"),
    [(ByteRange(start=0, end=0), 1), (ByteRange(start=3, end=9), 7)],
)
def test_byte_range_length_counts_both_ends(byte_range, length):
    assert byte_range.length == length


@pytest.mark.parametrize(
    "if_none_match",
    [
        '"abc"',
        'W/"abc"',
        ' "abc" ',
        '"x", "abc"',
        '"x",W/"abc" ,"y"',
        '"a,b", "abc"',
        "*",
        " * ",
    ],
)
def test_etag_matches_a_listed_tag_or_star(if_none_match):
    assert etag_matches(if_none_match, '"abc"')


@pytest.mark.parametrize("etag", ['"abc"', 'W/"abc"'])
def test_etag_matches_compares_weakly_whatever_form_the_etag_has(etag):
    assert etag_matches('W/"abc"', etag)
    assert etag_matches('"abc"', etag)


@pytest.mark.parametrize(
    "if_none_match",
    [None, "", '"abcd"', '"ab"', '"ABC"', "abc", '"x", "y"', 'W/"x"', '"*"', "**", '"', "W/"],
)
def test_etag_matches_nothing_else(if_none_match):
    assert not etag_matches(if_none_match, '"abc"')


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("zstd", "zstd"),
        ("gzip, zstd", "zstd"),
        ("ZSTD", "zstd"),
        ("zstd", "ZSTD"),
        ("zstd;q=0.5", "zstd"),
        ("zstd; Q=1", "zstd"),
        (" zstd ; q=1.0 ", "zstd"),
        ("zstd;q=0.001", "zstd"),
        ("zstd;q=.5", "zstd"),
        ("zstd;q=1.", "zstd"),
        ("zstd;q=0.123456", "zstd"),
        ("zstd;level=3", "zstd"),
        ("*", "zstd"),
        ("*;q=0.1", "zstd"),
        ("br, *", "zstd"),
        ("x-gzip", "gzip"),
        ("gzip;q=0, zstd", "zstd"),
        ("zstd;q=0, zstd;q=1", "zstd"),
        (",,zstd,,", "zstd"),
    ],
)
def test_accepts_encoding_when_the_coding_is_allowed(accept_encoding, coding):
    assert accepts_encoding(accept_encoding, coding)


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        (None, "zstd"),
        ("", "zstd"),
        ("gzip", "zstd"),
        ("identity", "zstd"),
        ("zstdx", "zstd"),
        ("zst", "zstd"),
        ("zstd;q=0", "zstd"),
        ("zstd;q=0.000", "zstd"),
        ("*;q=0", "zstd"),
        ("zstd;q=0, *", "zstd"),
        ("*, zstd;q=0", "zstd"),
        ("x-gzip;q=0, *", "gzip"),
    ],
)
def test_accepts_encoding_refuses_a_coding_that_is_not_allowed(accept_encoding, coding):
    assert not accepts_encoding(accept_encoding, coding)


@pytest.mark.parametrize(
    "accept_encoding",
    [
        ";;q=abc",
        "zstd;q=abc",
        "zstd;q=",
        "zstd;q",
        "zstd;q=-1",
        "zstd;q=nan",
        "zstd;q=inf",
        "zstd;q=1e3",
        "zstd;q=1.5",
        "zstd;q=2",
        "zstd;q=.",
        f"zstd;q={HUGE}.{HUGE}",
        ",,,",
        ";",
        "=;=,=",
        "\x00\xff",
    ],
)
def test_accepts_encoding_treats_garbage_as_not_allowed(accept_encoding):
    assert accepts_encoding(accept_encoding, "zstd") is False


def test_accepts_encoding_treats_an_unreadable_weight_as_refusal_even_with_star():
    assert not accepts_encoding("zstd;q=abc, *", "zstd")


def test_byte_response_serves_the_whole_content_without_range(source):
    response = download(source)

    assert response.status_code == 200
    assert response.streaming
    assert body(response) == CONTENT
    assert source.opened == [(0, 9)]


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=2-5"}])
def test_byte_response_sets_the_download_headers(source, headers):
    response = download(source, **headers)

    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{ETAG}"'
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="chunk-7.bin"'
    assert response["Cache-Control"] == "private, no-transform"
    assert response["Vary"] == "Accept-Encoding"
    assert int(response["Content-Length"]) == len(body(response))


def test_byte_response_uses_the_given_content_type(source):
    request = RequestFactory().get("/download")
    response = byte_response(
        request,
        size=10,
        etag=ETAG,
        filename="recording.raw",
        open_bytes=source,
        content_type="video/webm",
    )

    assert response["Content-Type"] == "video/webm"


@pytest.mark.parametrize(
    ("range_header", "content_range", "expected"),
    [
        ("bytes=2-5", "bytes 2-5/10", b"2345"),
        ("bytes=0-0", "bytes 0-0/10", b"0"),
        ("bytes=7-", "bytes 7-9/10", b"789"),
        ("bytes=-4", "bytes 6-9/10", b"6789"),
        ("bytes=8-1000", "bytes 8-9/10", b"89"),
        ("bytes=0-9", "bytes 0-9/10", CONTENT),
    ],
)
def test_byte_response_serves_a_single_range_as_partial_content(
    source, range_header, content_range, expected
):
    response = download(source, Range=range_header)

    assert response.status_code == 206
    assert response["Content-Range"] == content_range
    assert response["Content-Length"] == str(len(expected))
    assert body(response) == expected


def test_byte_response_opens_only_the_requested_range(source):
    body(download(source, Range="bytes=3-6"))

    assert source.opened == [(3, 6)]


@pytest.mark.parametrize("range_header", ["bytes=10-", "bytes=-0", "bytes=50-60"])
def test_byte_response_answers_an_unsatisfiable_range_with_416(source, range_header):
    response = download(source, Range=range_header)

    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */10"
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["code"] == "range_not_satisfiable"
    assert json.loads(response.content)["message"]
    assert response["Content-Length"] == str(len(response.content))
    assert source.opened == []


@pytest.mark.parametrize(
    "range_header", ["bytes=5-2", "items=0-1", "bytes=0-1,4-5", "bytes=x", "bytes=-"]
)
def test_byte_response_serves_everything_for_a_range_it_ignores(source, range_header):
    response = download(source, Range=range_header)

    assert response.status_code == 200
    assert "Content-Range" not in response
    assert body(response) == CONTENT


@pytest.mark.parametrize("if_none_match", [f'"{ETAG}"', f'W/"{ETAG}"', "*", f'"other", "{ETAG}"'])
def test_byte_response_answers_a_matching_if_none_match_with_304(source, if_none_match):
    response = download(source, If_None_Match=if_none_match)

    assert response.status_code == 304
    assert response["ETag"] == f'"{ETAG}"'
    assert response.content == b""
    assert "Content-Type" not in response
    assert source.opened == []


def test_byte_response_checks_if_none_match_before_range(source):
    response = download(source, If_None_Match=f'"{ETAG}"', Range="bytes=50-")

    assert response.status_code == 304


def test_byte_response_serves_the_content_when_if_none_match_lists_other_tags(source):
    response = download(source, If_None_Match='"other"')

    assert response.status_code == 200
    assert body(response) == CONTENT


def test_byte_response_honours_range_when_if_range_is_the_etag(source):
    response = download(source, Range="bytes=1-2", If_Range=f'"{ETAG}"')

    assert response.status_code == 206
    assert body(response) == b"12"


@pytest.mark.parametrize(
    "if_range", ['"other"', f'W/"{ETAG}"', ETAG, "Wed, 21 Oct 2015 07:28:00 GMT", ""]
)
def test_byte_response_serves_everything_when_if_range_is_not_the_strong_etag(source, if_range):
    response = download(source, Range="bytes=1-2", If_Range=if_range)

    assert response.status_code == 200
    assert body(response) == CONTENT


def test_byte_response_ignores_an_unsatisfiable_range_when_if_range_differs(source):
    response = download(source, Range="bytes=50-", If_Range='"other"')

    assert response.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=2-5"}])
def test_byte_response_to_head_sends_the_whole_content_headers_and_no_body(source, headers):
    response = download(source, method="head", **headers)

    assert response.status_code == 200
    assert response["Content-Length"] == "10"
    assert response["ETag"] == f'"{ETAG}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"] == 'attachment; filename="chunk-7.bin"'
    assert body(response) == b""
    assert source.opened == []


def test_byte_response_to_head_answers_a_matching_if_none_match_with_304(source):
    response = download(source, method="head", If_None_Match=f'"{ETAG}"')

    assert response.status_code == 304


def test_byte_response_serves_empty_content_without_opening_it():
    source = Source(b"")

    response = download(source)

    assert response.status_code == 200
    assert response["Content-Length"] == "0"
    assert body(response) == b""
    assert source.opened == []


@pytest.mark.parametrize("range_header", ["bytes=0-", "bytes=-1", "bytes=0-0"])
def test_byte_response_answers_any_range_of_empty_content_with_416(range_header):
    response = download(Source(b""), Range=range_header)

    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */0"


@pytest.mark.parametrize(
    ("filename", "disposition"),
    [
        ("chunk-7.bin", 'attachment; filename="chunk-7.bin"'),
        ('a"b.bin', "attachment; filename=\"a_b.bin\"; filename*=UTF-8''a%22b.bin"),
        (
            "résumé.bin",
            "attachment; filename=\"resume.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9.bin",
        ),
        ("录音.bin", "attachment; filename=\"__.bin\"; filename*=UTF-8''%E5%BD%95%E9%9F%B3.bin"),
        ("a\r\nb.bin", 'attachment; filename="ab.bin"'),
        ("../a\\b", 'attachment; filename=".._a_b"'),
        ("", 'attachment; filename="download"'),
    ],
)
def test_byte_response_makes_the_filename_safe(source, filename, disposition):
    request = RequestFactory().get("/download")
    response = byte_response(request, size=10, etag=ETAG, filename=filename, open_bytes=source)

    assert response["Content-Disposition"] == disposition


@pytest.mark.parametrize("range_header", [None, "bytes=2-5"])
@pytest.mark.django_db  # closing a response fires request_finished, which closes connections
def test_byte_response_closes_the_source_once_the_body_is_read(source, range_header):
    headers = {"Range": range_header} if range_header else {}
    response = download(source, **headers)

    body(response)

    assert source.pieces[0].closed


@pytest.mark.django_db  # closing a response fires request_finished, which closes connections
def test_byte_response_closes_the_source_when_the_response_is_closed_unread(source):
    response = download(source)

    response.close()

    assert source.pieces[0].closed


@pytest.mark.django_db  # closing a response fires request_finished, which closes connections
def test_byte_response_closes_the_source_when_the_client_leaves_midway(source):
    response = download(source)
    next(iter(response.streaming_content))

    response.close()

    assert source.pieces[0].closed


@pytest.mark.django_db  # closing a response fires request_finished, which closes connections
def test_byte_response_closes_a_generator_source_when_the_client_leaves_midway():
    finished = []

    def open_bytes(start: int, end: int) -> Iterator[bytes]:
        try:
            yield from (CONTENT[i : i + 1] for i in range(start, end + 1))
        finally:
            finished.append(True)

    request = RequestFactory().get("/download")
    response = byte_response(
        request, size=10, etag=ETAG, filename="chunk-7.bin", open_bytes=open_bytes
    )
    next(iter(response.streaming_content))

    response.close()

    assert finished == [True]


def test_byte_response_stops_at_the_length_it_announced():
    response = download(Source(CONTENT * 2), size=10)

    assert body(response) == CONTENT


def test_byte_response_fails_loudly_when_the_source_runs_short():
    response = download(Source(b"01234"), size=10)

    with pytest.raises(OSError, match="5 bytes short"):
        body(response)


def test_encoded_response_passes_the_stored_bytes_through(source):
    response = encoded_download(source, Accept_Encoding="zstd")

    assert response.status_code == 200
    assert response.streaming
    assert body(response) == CONTENT


def test_encoded_response_sets_the_download_headers(source):
    response = encoded_download(source)

    assert response["Content-Encoding"] == "zstd"
    assert response["Content-Length"] == "10"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="chunk-7.bin"'
    assert response["Cache-Control"] == "private, no-transform"
    assert response["Vary"] == "Accept-Encoding"
    assert response["Accept-Ranges"] == "none"


def test_encoded_response_sends_a_weak_etag_so_if_range_never_matches_it(source):
    response = encoded_download(source)

    assert response["ETag"] == f'W/"{ETAG}"'


@pytest.mark.parametrize("if_none_match", [f'"{ETAG}"', f'W/"{ETAG}"', "*"])
def test_encoded_response_answers_a_matching_if_none_match_with_304(source, if_none_match):
    response = encoded_download(source, If_None_Match=if_none_match)

    assert response.status_code == 304
    assert response["ETag"] == f'W/"{ETAG}"'
    assert response.content == b""
    assert source.opened == []


def test_encoded_response_ignores_range(source):
    response = encoded_download(source, Range="bytes=2-5")

    assert response.status_code == 200
    assert "Content-Range" not in response
    assert body(response) == CONTENT


def test_encoded_response_to_head_sends_headers_and_no_body(source):
    response = encoded_download(source, method="head")

    assert response.status_code == 200
    assert response["Content-Length"] == "10"
    assert response["Content-Encoding"] == "zstd"
    assert body(response) == b""
    assert source.opened == []


@pytest.mark.django_db  # closing a response fires request_finished, which closes connections
def test_encoded_response_closes_the_source_once_the_body_is_read(source):
    body(encoded_download(source))

    assert source.pieces[0].closed


@pytest.mark.django_db  # closing a response fires request_finished, which closes connections
def test_encoded_response_closes_the_source_when_the_response_is_closed_unread(source):
    response = encoded_download(source)

    response.close()

    assert source.pieces[0].closed
