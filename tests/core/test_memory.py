"""A worker's chunk-sized buffers stay with it: the next one is not faulted in page by page."""

import subprocess
import sys

import pytest

# Three threads take ten 10 MiB chunks each, as a worker's threads do: the body in 1 MiB
# pieces, joined, compressed; the minor page faults of the whole are printed.
UPLOADS_SCRIPT = """
import os, resource, sys, threading
import zstandard
from core.memory import allocator_keep_large_buffers
if sys.argv[1] == "tuned":
    assert allocator_keep_large_buffers()
MIB = 1 << 20
data = (os.urandom(4096) + bytes(3 * 4096)) * (10 * MIB // (4 * 4096))

def uploads():
    compressor = zstandard.ZstdCompressor(level=6, write_content_size=True, write_checksum=True)
    for _ in range(10):
        pieces = [data[start:start + MIB] for start in range(0, len(data), MIB)]
        raw = b"".join(pieces)
        compressed = compressor.compress(raw)
        del pieces, raw, compressed

threads = [threading.Thread(target=uploads) for _ in range(3)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", UPLOADS_SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_tuned_process_reuses_the_buffers_of_its_uploads():
    untuned, tuned = _page_faults("as is"), _page_faults("tuned")

    assert tuned < untuned / 3, f"{tuned} page faults tuned, {untuned} as is"
