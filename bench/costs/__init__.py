"""Costs benchmark: what one request costs the whole service, against floors of the same run.

Run from the repository root:
`.venv/bin/python -m bench.costs [--rounds 3] [--requests 200] [--small-chunks 40]
[--large-downloads 10] [--port P] [--workers 2] [--worker-concurrency 2] [--keep]`

The real service (gunicorn, plus one Celery worker of --worker-concurrency processes when
CELERY_BROKER_URL is set; DATABASE_URL, REDIS_URL and CELERY_BROKER_URL are taken from the
caller's environment, as in bench.ingest) answers one client on one keep-alive connection.
In each of --rounds rounds, one case after another:

0. nothing for a second: what the idle service spends (timers, a Celery worker's heartbeats) is
   in every other case's window too, in proportion to its length;
1. `GET /auth/me` --requests times: a trivial authenticated DRF view, the floor of every request
   (authentication, routing, middleware, rendering);
2. 64 KiB chunk ingest: --small-chunks screen-like chunks PUT one after another into a new
   session of 64 KiB chunks (zstd 6, started before the clock), until the pipeline reports them
   stored. This is the fixed
   cost of a chunk, request and processing together (the Celery worker's included); the
   pipeline is polled every 0.2 s, each poll costing about a trivial request;
3. 64 KiB chunk download: --requests `GET .../download` of such chunks (stored with zstd, sent
   decoded);
4. a 10 MiB chunk of random bytes, stored as `none`, downloaded --large-downloads times; then a
   10 MiB screen chunk stored with zstd, downloaded decoded (no Accept-Encoding: the service
   decompresses, the client receives raw bytes);
5. nginx (one worker, sendfile, no access log, its own configuration in the scratch directory)
   serving the 10 MiB `none` chunk's stored file, hard-linked, to the same client code, ten times
   as many downloads (it spends about 1 CPU-ms on one: enough ticks to count). nginx is
   found on PATH or in /usr/sbin, else installed by `apt-get install -y nginx-light`; when that
   fails the report says the nginx floor was skipped and why.
Every body is read into a preallocated buffer and checked against the chunk's sha256 outside the
clock.

CPU time per operation is the user+system time of every process of the service (the gunicorn
master and its workers, the Celery worker's tree), or of nginx's master and worker, read from
/proc/<pid>/stat before and after each case, in the kernel's 10 ms ticks per process: with 200
requests that resolves 0.05 ms a request. It leaves out waiting, so it holds steadier than MB/s on
a machine whose speed drifts or that others share.

How to read it: the first table gives each case's medians over the rounds. The second gives each
case over its floor (median of each round's own ratio, so a drifting machine compares like with
like) beside the issue's target: the 64 KiB ingest's CPU per chunk at most 4x the trivial view's
CPU per request, a 64 KiB download's at most 2x; the 10 MiB `none` download at least 0.7x
nginx's MB/s for the same file and client, the decoded zstd one at least 0.35x. The 10 MiB ingest
against the plain pipeline (zstd 6 + sha256 + fsync, target 1.3x in CPU) is bench.ingest's b/a
CPU. The targets are reported, not enforced: the exit status is 0 whenever the run completes.
"""
