"""Seek benchmark: a 64 KiB `Range` GET of /recording on a long stopped session against a short one.

Run from the repository root:
`.venv/bin/python -m bench.seek [--long-chunks 10000] [--short-chunks 10] [--chunk-kib 64]
[--range-kib 64] [--requests 2000] [--rounds 4] [--workers 1] [--keep]`

One service on the embedded default (SQLite, local filesystem, tasks in-process; DATABASE_URL,
REDIS_URL and CELERY_BROKER_URL are ignored) holds two stopped sessions of the same chunk size
(64 KiB, the smallest a session may have), so that a range touches the same number of chunks
(one or two) in both: "long" with --long-chunks chunks and "short" with --short-chunks. Filling
10,000 chunks through the API costs about 16 ms of CPU and 33 ms of wall time each (the stream,
the spool and the pipeline), so the sessions are filled in-process before the service starts,
through the project's own code where it decides anything: `session_create` and `session_start`,
each chunk's seeded random bytes written by the chunk store (`put`, fsynced, under the key the
pipeline gives an uncompressed chunk), its row as the pipeline leaves a stored chunk, the
session's totals by the pipeline's tallies, and `session_stop`, which places every chunk in the
recording and seals the Merkle root, as a stop through the API does.

Then one client on one keep-alive connection asks, one request after another, for --range-kib
bytes at offsets drawn uniformly from the recording (seeded), --requests requests per session in
--rounds rounds that each measure both sessions, the short one first in odd rounds and the long
one first in even rounds, so that a machine whose speed drifts slows both alike. Each answer
must be 206 with the asked Content-Range; the first of each session and round is compared with
the bytes the fill wrote. Latency runs from sending the request until the last byte is read;
"CPU-ms/request" is the user+system CPU time of the gunicorn master and its workers (from
/proc/<pid>/stat, 10 ms ticks) over the session's requests. The target of issue 16 is
p99(long) <= 1.3 x p99(short): seeking costs the same at any length. It is reported, not
enforced: the exit status is 0 whenever the run completes.
"""
