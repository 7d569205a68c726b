"""Codecs: round trips, streaming decompression, interoperable output and level checks."""

import gzip
import io
import os

import pytest
import zstandard

from chunks_app.codecs import (
    CODECS,
    CodecDataError,
    CodecLevelError,
    UnknownCodecError,
    get_codec,
)

CODEC_NAMES = ["zstd", "lz4", "gzip", "none"]
COMPRESSED_CODEC_NAMES = ["zstd", "lz4", "gzip"]


def compressible_bytes(size: int) -> bytes:
    line = b'{"type":"mouse","x":512,"y":384,"t":1700000000000}\n'
    return (line * (size // len(line) + 1))[:size]


def mixed_bytes(size: int) -> bytes:
    half = size // 2
    return os.urandom(half) + compressible_bytes(size - half)


INPUTS = {
    "empty": b"",
    "random": os.urandom(256 * 1024),
    "compressible": compressible_bytes(256 * 1024),
}


@pytest.mark.parametrize("name", CODEC_NAMES)
@pytest.mark.parametrize("kind", INPUTS)
def test_compress_then_decompress_returns_the_original(name, kind):
    codec = get_codec(name)
    data = INPUTS[kind]

    assert codec.decompress(codec.compress(data, level=codec.default_level)) == data


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_round_trip_works_at_the_lowest_and_highest_level(name):
    codec = get_codec(name)
    data = compressible_bytes(64 * 1024)

    for level in (codec.levels[0], codec.levels[-1]):
        assert codec.decompress(codec.compress(data, level=level)) == data


@pytest.mark.parametrize("name", COMPRESSED_CODEC_NAMES)
def test_compressible_bytes_get_smaller(name):
    codec = get_codec(name)
    data = compressible_bytes(256 * 1024)

    assert len(codec.compress(data, level=codec.default_level)) < len(data) // 10


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_default_level_is_a_valid_level(name):
    codec = get_codec(name)

    codec.validate_level(codec.default_level)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_streaming_decompression_of_multi_mib_input_returns_the_original(name):
    codec = get_codec(name)
    data = mixed_bytes(6 * 1024 * 1024 + 123)
    stored = io.BytesIO(codec.compress(data, level=codec.default_level))

    with codec.open_decompressed(stored) as stream:
        pieces = list(iter(lambda: stream.read(64 * 1024), b""))

    assert b"".join(pieces) == data
    assert max(len(piece) for piece in pieces) <= 64 * 1024


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_streaming_decompression_reads_everything_at_once(name):
    codec = get_codec(name)
    data = compressible_bytes(300 * 1024)
    stored = io.BytesIO(codec.compress(data, level=codec.default_level))

    with codec.open_decompressed(stored) as stream:
        assert stream.read() == data


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_closing_the_decompressed_stream_closes_the_stored_stream(name):
    codec = get_codec(name)
    stored = io.BytesIO(codec.compress(b"chunk", level=codec.default_level))

    codec.open_decompressed(stored).close()

    assert stored.closed


@pytest.mark.parametrize("name", COMPRESSED_CODEC_NAMES)
def test_decompressed_stream_has_no_name_to_take_a_length_from(name):
    codec = get_codec(name)
    stored = io.BytesIO(codec.compress(b"chunk", level=codec.default_level))

    with codec.open_decompressed(stored) as stream:
        assert not hasattr(stream, "name")


@pytest.mark.parametrize("name", COMPRESSED_CODEC_NAMES)
def test_truncated_data_fails_to_decompress(name):
    codec = get_codec(name)
    stored = codec.compress(mixed_bytes(200 * 1024), level=codec.default_level)

    with pytest.raises(CodecDataError):
        codec.decompress(stored[:-1000])


@pytest.mark.parametrize("name", COMPRESSED_CODEC_NAMES)
def test_truncated_data_fails_to_stream(name):
    codec = get_codec(name)
    stored = codec.compress(mixed_bytes(200 * 1024), level=codec.default_level)

    with (
        pytest.raises(CodecDataError),
        codec.open_decompressed(io.BytesIO(stored[:-1000])) as stream,
    ):
        stream.read()


@pytest.mark.parametrize("name", COMPRESSED_CODEC_NAMES)
def test_corrupted_data_fails_to_decompress(name):
    codec = get_codec(name)
    stored = bytearray(codec.compress(mixed_bytes(200 * 1024), level=codec.default_level))
    stored[len(stored) // 2] ^= 0xFF

    with pytest.raises(CodecDataError):
        codec.decompress(bytes(stored))


@pytest.mark.parametrize("name", COMPRESSED_CODEC_NAMES)
def test_bytes_in_another_format_fail_to_decompress(name):
    with pytest.raises(CodecDataError):
        get_codec(name).decompress(b"this is not compressed data")


@pytest.mark.parametrize("name", COMPRESSED_CODEC_NAMES)
def test_empty_stored_bytes_fail_to_decompress(name):
    with pytest.raises(CodecDataError):
        get_codec(name).decompress(b"")


@pytest.mark.parametrize("name", COMPRESSED_CODEC_NAMES)
def test_empty_stored_stream_fails_to_stream(name):
    codec = get_codec(name)

    with pytest.raises(CodecDataError), codec.open_decompressed(io.BytesIO()) as stream:
        stream.read()


def test_gzip_output_is_read_by_the_standard_library():
    data = compressible_bytes(100 * 1024)

    stored = get_codec("gzip").compress(data, level=6)

    assert stored[:2] == b"\x1f\x8b"
    assert gzip.decompress(stored) == data


def test_gzip_output_is_the_same_for_the_same_input():
    codec = get_codec("gzip")
    data = compressible_bytes(10 * 1024)

    assert codec.compress(data, level=6) == codec.compress(data, level=6)


def test_zstd_output_is_read_by_zstandard_and_records_the_content_size():
    data = mixed_bytes(100 * 1024)

    stored = get_codec("zstd").compress(data, level=6)

    assert zstandard.get_frame_parameters(stored).content_size == len(data)
    assert zstandard.ZstdDecompressor().decompress(stored) == data


def test_zstd_decompresses_frames_without_a_content_size():
    data = compressible_bytes(100 * 1024)
    stored = zstandard.ZstdCompressor(write_content_size=False).compress(data)

    assert get_codec("zstd").decompress(stored) == data


def test_none_codec_stores_the_bytes_unchanged():
    assert get_codec("none").compress(b"as is", level=0) == b"as is"


def test_none_codec_streams_the_stored_stream_itself():
    stored = io.BytesIO(b"as is")

    assert get_codec("none").open_decompressed(stored) is stored


@pytest.mark.parametrize(
    ("name", "too_low", "too_high", "valid_range"),
    [
        ("zstd", 0, 23, "from 1 to 22"),
        ("lz4", -1, 17, "from 0 to 16"),
        ("gzip", 0, 10, "from 1 to 9"),
        ("none", -1, 1, "from 0 to 0"),
    ],
)
def test_levels_outside_the_range_are_rejected_naming_codec_and_range(
    name, too_low, too_high, valid_range
):
    codec = get_codec(name)

    for level in (too_low, too_high):
        with pytest.raises(CodecLevelError, match=rf"^{name} .*{valid_range}"):
            codec.validate_level(level)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_compress_rejects_an_invalid_level(name):
    codec = get_codec(name)

    with pytest.raises(CodecLevelError):
        codec.compress(b"chunk", level=codec.levels[-1] + 1)


def test_level_error_is_a_value_error():
    assert issubclass(CodecLevelError, ValueError)


def test_unknown_codec_name_is_rejected():
    with pytest.raises(UnknownCodecError, match="brotli"):
        get_codec("brotli")


def test_unknown_codec_error_is_a_value_error():
    assert issubclass(UnknownCodecError, ValueError)


def test_registry_holds_every_codec_under_its_name():
    assert {name: codec.name for name, codec in CODECS.items()} == {
        name: name for name in CODEC_NAMES
    }


@pytest.mark.parametrize(
    ("name", "content_encoding"),
    [("zstd", "zstd"), ("gzip", "gzip"), ("lz4", None), ("none", None)],
)
def test_content_encoding_names_the_http_encoding_of_the_stored_bytes(name, content_encoding):
    assert get_codec(name).content_encoding == content_encoding
