"""This machine's raw limits: compress, hash and fsync on one core; read plain files back."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import zstandard

from bench.errors import BenchmarkError
from bench.measure import megabytes_per_second
from core.sizes import MIB

ZSTD_LEVEL = 6
READ_PIECE_SIZE = 4 * MIB


class ReadableInto(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True)
class RawLimit:
    megabytes_per_second: float
    zstd_ratio: float
    cpu_seconds_per_chunk: float


def measure_raw_limit(chunks: list[bytes], directory: Path) -> RawLimit:
    """Per chunk: zstd level 6, sha256 of the raw bytes, write the compressed bytes, fsync.

    Its CPU time is this process's (one thread: nothing else runs in it meanwhile).
    """
    directory.mkdir(parents=True)
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    compressed_size = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    for sequence, chunk in enumerate(chunks):
        compressed = compressor.compress(chunk)
        hashlib.sha256(chunk).digest()
        with open(directory / f"{sequence}.zst", "wb") as file:
            file.write(compressed)
            file.flush()
            os.fsync(file.fileno())
        compressed_size += len(compressed)
    elapsed = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    raw_size = sum(map(len, chunks))
    return RawLimit(
        megabytes_per_second=megabytes_per_second(raw_size, elapsed),
        zstd_ratio=compressed_size / raw_size,
        cpu_seconds_per_chunk=cpu_seconds / len(chunks),
    )


def write_plain_files(chunks: list[bytes], directory: Path) -> list[Path]:
    directory.mkdir(parents=True)
    paths = [directory / f"{sequence}.raw" for sequence in range(len(chunks))]
    for path, chunk in zip(paths, chunks, strict=True):
        path.write_bytes(chunk)
    return paths


def preallocated_buffer(size: int) -> memoryview:
    """`size` bytes already written once, so that no measured read pays for mapping its pages."""
    return memoryview(bytearray(b"\xff") * size)


def read_into(source: ReadableInto, buffer: memoryview) -> int:
    """Read `source` to its end into `buffer` in READ_PIECE_SIZE pieces; return the bytes read."""
    filled = 0
    while piece_size := source.readinto(buffer[filled : filled + READ_PIECE_SIZE]):
        filled += piece_size
    if filled == len(buffer) and source.readinto(memoryview(bytearray(1))):
        raise BenchmarkError(f"more than {len(buffer)} bytes to read into a buffer of chunk size")
    return filled


def measure_check(stored_chunks: Iterable[bytes]) -> float:
    """Seconds per chunk a download's check takes for these stored chunks: sha256 of each, whole."""
    elapsed, count = 0.0, 0
    for stored in stored_chunks:
        started = time.perf_counter()
        hashlib.sha256(stored).digest()
        elapsed += time.perf_counter() - started
        count += 1
    if not count:
        raise BenchmarkError("no stored chunk to check")
    return elapsed / count


def measure_plain_read(paths: list[Path], buffer: memoryview) -> float:
    """MB/s of reading the files back into `buffer`, straight from the page cache."""
    size, elapsed = 0, 0.0
    for path in paths:
        started = time.perf_counter()
        with open(path, "rb", buffering=0) as file:
            size += read_into(file, buffer)
        elapsed += time.perf_counter() - started
    return megabytes_per_second(size, elapsed)
