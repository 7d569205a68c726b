"""API benchmark: read latencies of Lucid's JSON API on a large database, against a trivial view.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, user postgres, trust auth):
`.venv/bin/python -m bench.api [--sessions 10000] [--chunks 1000000] [--clients 16]
[--requests N] [--keep-database]`

It creates the database `lucid_bench_api`, migrates it and fills it straight through COPY: one
bench user owning --sessions sessions of every status, and --chunks chunks, of which one "deep"
session holds DEEP_SESSION_CHUNKS (enough for a page 5,000 at the default page size of 50) and the
rest are spread unevenly over the other sessions. The running totals on each session row and in
`lucid_counter` are then computed from the rows with SQL aggregates, as the app would have kept
them, and the database is vacuumed and analyzed.

The real service (gunicorn, 2 workers with the threads of lucid/gunicorn.conf.py, no broker) then
answers --clients threads, each on its own keep-alive connection: --requests requests per
endpoint, after a warm-up, in ROUNDS rounds that each visit every endpoint in turn:
1. `GET /auth/me`, a trivial authenticated DRF view: the baseline of authentication, routing,
   middleware, rendering and this client's own overhead;
2. `GET /sessions/{id}` for random sessions;
3. `GET /sessions/{deep}/chunks`, the first page of the deep session's chunks;
4. the same list's page 5,000, reached once (before the clock) by following `next` links;
5. `GET /sessions/statistics`, the system statistics.

How to read the ratios: each endpoint's p99 divided by the trivial view's p99 is what its own
work (queries, serialization) costs on top of what every request pays; 2 would mean the endpoint
is as slow as two trivial requests. Page 5,000's p99 over page 1's says whether the chunk list
depends on depth (about 1: it does not). Latencies are measured in this process from sending the
request to reading the whole response; with more clients than cores they include queueing, and
any other load on the machine shows in every row (the machine line gives the load average). The
targets are reported, not enforced: the exit status is 0 whenever the run completes.
"""
