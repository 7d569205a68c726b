"""Compression codecs for stored chunks: zstd, lz4, gzip and none behind one small interface.

Every codec compresses a whole chunk at once, decompresses it at once, or streams the
decompressed bytes of a stored chunk with bounded memory for downloads. Corrupt or truncated
input raises `CodecDataError`, whatever the codec.
"""

from __future__ import annotations

import gzip
import io
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, ClassVar, cast

import lz4.frame
import zstandard

from core.choices import CompressionAlgorithm

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_HEADER_MAX_SIZE = 18
_READALL_BLOCK_SIZE = 1 << 20


class CodecError(ValueError):
    pass


class CodecLevelError(CodecError):
    pass


class UnknownCodecError(CodecError):
    pass


class CodecDataError(CodecError):
    """The compressed bytes are corrupt, truncated or not in the codec's format."""


class Codec(ABC):
    algorithm: ClassVar[CompressionAlgorithm]
    content_encoding: ClassVar[str | None]
    """The HTTP Content-Encoding the compressed bytes can be sent as, if any."""

    @abstractmethod
    def compress(self, data: bytes, *, level: int) -> bytes: ...

    @abstractmethod
    def decompress(self, data: bytes) -> bytes: ...

    @abstractmethod
    def open_decompressed(self, stream: BinaryIO) -> BinaryIO:
        """Stream the decompressed bytes of `stream`; closing the result closes `stream`."""

    @property
    def name(self) -> str:
        return self.algorithm.value

    @property
    def levels(self) -> range:
        return self.algorithm.levels

    @property
    def default_level(self) -> int:
        return self.algorithm.default_level

    def validate_level(self, level: int) -> None:
        if problem := self.algorithm.level_problem(level):
            raise CodecLevelError(problem)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def _decompressed(
        self,
        reader: object,
        *,
        source: BinaryIO,
        errors: tuple[type[Exception], ...],
        on_end: Callable[[int], None] | None = None,
    ) -> BinaryIO:
        """Wrap the codec's streaming `reader` of `source` as a plain decompressed file."""
        stream = _DecompressedStream(
            cast(BinaryIO, reader),
            source=source,
            codec_name=self.name,
            codec_errors=errors,
            on_end=on_end,
        )
        return cast(BinaryIO, stream)


class _DecompressedStream(io.RawIOBase):
    """Read-only file over a codec's streaming reader that owns the compressed source.

    It turns the codec's own exceptions into `CodecDataError` and has no `name`, so nothing
    (such as Django's FileResponse) mistakes the compressed file's size for its length.
    """

    def __init__(
        self,
        reader: BinaryIO,
        *,
        source: BinaryIO,
        codec_name: str,
        codec_errors: tuple[type[Exception], ...],
        on_end: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self._reader = reader
        self._source = source
        self._codec_name = codec_name
        self._codec_errors = codec_errors
        self._on_end = on_end
        self._produced = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        try:
            data = self._reader.read(size)
        except self._codec_errors as exc:
            raise CodecDataError(f"Corrupt {self._codec_name} data: {exc}") from exc
        self._produced += len(data)
        if not data and size and self._on_end is not None:
            self._on_end(self._produced)
        return data

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(_READALL_BLOCK_SIZE), b""))

    def readinto(self, buffer: WriteableBuffer) -> int:
        target = memoryview(buffer).cast("B")
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._reader.close()
        finally:
            try:
                self._source.close()
            finally:
                super().close()


class _HeaderTap:
    """Source wrapper that keeps the first bytes read from it, where a frame header is."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.header = b""

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        missing = _HEADER_MAX_SIZE - len(self.header)
        if missing > 0:
            self.header += data[:missing]
        return data


class ZstdCodec(Codec):
    """Zstandard frames with the content size and a checksum; one frame per chunk."""

    algorithm = CompressionAlgorithm.ZSTD
    content_encoding = "zstd"

    def __init__(self) -> None:
        self._per_thread = threading.local()

    def _compressor(self, level: int) -> zstandard.ZstdCompressor:
        compressors = self._per_thread.__dict__.setdefault("compressors", {})
        if level not in compressors:
            compressors[level] = zstandard.ZstdCompressor(
                level=level, write_content_size=True, write_checksum=True
            )
        return compressors[level]

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        if not hasattr(self._per_thread, "decompressor"):
            self._per_thread.decompressor = zstandard.ZstdDecompressor()
        return self._per_thread.decompressor

    def compress(self, data: bytes, *, level: int) -> bytes:
        self.validate_level(level)
        return self._compressor(level).compress(data)

    def decompress(self, data: bytes) -> bytes:
        try:
            if zstandard.frame_content_size(data) >= 0:
                return self._decompressor().decompress(data, allow_extra_data=False)
            decompressor = self._decompressor().decompressobj()
            content = decompressor.decompress(data)
        except zstandard.ZstdError as exc:
            raise CodecDataError(f"Corrupt zstd data: {exc}") from exc
        if not decompressor.eof:
            raise CodecDataError("Truncated zstd data: the frame does not end.")
        if decompressor.unused_data:
            raise CodecDataError("Corrupt zstd data: bytes follow the end of the frame.")
        return content

    def open_decompressed(self, stream: BinaryIO) -> BinaryIO:
        """Stream one zstd frame; a frame cut short is detected through its content size."""
        tap = _HeaderTap(stream)
        reader = zstandard.ZstdDecompressor().stream_reader(tap, closefd=False)

        def check_complete(produced: int) -> None:
            try:
                content_size = zstandard.frame_content_size(tap.header)
            except zstandard.ZstdError as exc:
                raise CodecDataError(f"Not a complete zstd frame: {exc}") from exc
            if content_size >= 0 and produced != content_size:
                raise CodecDataError(
                    f"Truncated zstd data: got {produced} of {content_size} bytes."
                )

        return self._decompressed(
            reader, source=stream, errors=(zstandard.ZstdError,), on_end=check_complete
        )


class Lz4Codec(Codec):
    """LZ4 frames with the content size and a content checksum."""

    algorithm = CompressionAlgorithm.LZ4
    content_encoding = None

    _errors: ClassVar[tuple[type[Exception], ...]] = (RuntimeError, EOFError)

    def compress(self, data: bytes, *, level: int) -> bytes:
        self.validate_level(level)
        return lz4.frame.compress(
            data, compression_level=level, store_size=True, content_checksum=True
        )

    def decompress(self, data: bytes) -> bytes:
        try:
            return lz4.frame.decompress(data)
        except self._errors as exc:
            raise CodecDataError(f"Corrupt lz4 data: {exc}") from exc

    def open_decompressed(self, stream: BinaryIO) -> BinaryIO:
        reader = lz4.frame.LZ4FrameFile(stream, mode="rb")
        return self._decompressed(reader, source=stream, errors=self._errors)


class GzipCodec(Codec):
    """Gzip members (RFC 1952) with a zero mtime, so equal input gives equal output."""

    algorithm = CompressionAlgorithm.GZIP
    content_encoding = "gzip"

    _errors: ClassVar[tuple[type[Exception], ...]] = (gzip.BadGzipFile, zlib.error, EOFError)

    def compress(self, data: bytes, *, level: int) -> bytes:
        self.validate_level(level)
        return gzip.compress(data, compresslevel=level, mtime=0)

    def decompress(self, data: bytes) -> bytes:
        if not data:
            raise CodecDataError("Not gzip data: there are no bytes at all.")
        try:
            return gzip.decompress(data)
        except self._errors as exc:
            raise CodecDataError(f"Corrupt gzip data: {exc}") from exc

    def open_decompressed(self, stream: BinaryIO) -> BinaryIO:
        tap = _HeaderTap(stream)
        reader = gzip.GzipFile(fileobj=cast(BinaryIO, tap), mode="rb")

        def check_not_empty(produced: int) -> None:
            if not tap.header:
                raise CodecDataError("Not gzip data: there are no bytes at all.")

        return self._decompressed(
            reader, source=stream, errors=self._errors, on_end=check_not_empty
        )


class NoneCodec(Codec):
    algorithm = CompressionAlgorithm.NONE
    content_encoding = None

    def compress(self, data: bytes, *, level: int) -> bytes:
        self.validate_level(level)
        return bytes(data)

    def decompress(self, data: bytes) -> bytes:
        return bytes(data)

    def open_decompressed(self, stream: BinaryIO) -> BinaryIO:
        return stream


CODECS: dict[str, Codec] = {
    codec.name: codec for codec in (ZstdCodec(), Lz4Codec(), GzipCodec(), NoneCodec())
}


def compress_if_smaller(data: bytes, *, algorithm: str, level: int) -> tuple[str, bytes]:
    """The algorithm and bytes a chunk is kept in: `data` compressed, or as it is (`none`) when
    compressing does not make it smaller."""
    compressed = get_codec(algorithm).compress(data, level=level)
    if len(compressed) >= len(data):
        return CompressionAlgorithm.NONE, data
    return algorithm, compressed


def get_codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise UnknownCodecError(
            f"Unknown codec {name!r}; expected one of: {', '.join(CODECS)}."
        ) from None
