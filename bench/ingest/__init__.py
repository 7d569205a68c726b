"""Ingest benchmark: Lucid's HTTP chunk ingest and download against this machine's raw limits.

Run from the repository root:
`.venv/bin/python -m bench.ingest [--chunks N] [--chunk-mib 10] [--rounds 3] [--port P]
[--workers W] [--worker-concurrency C] [--clients 2] [--keep]`

For two kinds of seeded data, screen-like frames (an RDP desktop: flat windows, text, one photo;
zstd level 6 shrinks them to about a tenth) and random bytes (incompressible), it measures:

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
    before sending its first byte; the same files, read from the chunk store, are hashed here.
    c/unchecked and c2/unchecked are (c) and (c2) as a share of the same download without that
    hash: per chunk, (download time - check time) / download time.

How to read the ratios: b/a is the share of the raw limit that the service delivers end to end
(HTTP, spool, database, queue, pipeline); it can exceed 1 because the service may use every core
while (a) uses one. c/read and c2/read are the download's share of a plain file read, without and
with zstd on the wire; c2 beats c when sending fewer bytes saves more than decompressing costs.
Throughputs count raw (uncompressed) bytes delivered, MB = 10^6 bytes. The service runs with its
defaults in a fresh temporary directory (on the filesystem of $TMPDIR, as are the files of (a)
and (c)); only DATABASE_URL, REDIS_URL and CELERY_BROKER_URL are taken from the caller's
environment.
"""
