"""Sessions benchmark: how many recording sessions at once, each appending to its stream once a
second, the service acknowledges in time.

Run from the repository root:
`.venv/bin/python -m bench.sessions [--sessions-list 25,50,100,200,300,400,500,600] [--max N]
[--seconds 60] [--append-kib 64] [--chunk-kib 10240] [--connections 128] [--port P]
[--workers 2] [--worker-concurrency 2] [--keep]`

The real service (gunicorn, plus one Celery worker of --worker-concurrency processes when
CELERY_BROKER_URL is set; DATABASE_URL, REDIS_URL and CELERY_BROKER_URL are taken from the
caller's environment, as in bench.ingest: without them, the embedded default of SQLite and tasks
in-process) is warmed up, then measured in steps of an increasing number of sessions N, taken
from --sessions-list (up to --max), until a step fails. A step starts N new sessions (chunks of
--chunk-kib, by default the service's 10 MiB; `--chunk-kib 64` makes every append complete a
chunk to compress and store), then for --seconds each session appends --append-kib of screen-like
bytes to its stream (`POST .../stream`) once a second. The sessions' appends are spread evenly
over each second, as independent recorders' would be, and a session's appends go one after
another, as a recorder's do. They are sent from min(N, --connections) threads of this process,
each with its own keep-alive connection, taking the next due append in turn.

For each step, the report gives:
- ack p50/p99: from the moment an append was due to its 200 (the bytes durable), so a late start
  counts; "late p99" is the part of it spent before sending (waiting for a free connection, or
  for the session's previous append): when it is large, the client or the service's backlog
  held the appends back, not the request itself;
- errors: appends answered with anything but 200, or failed on the connection (listed below the
  table, most common first); a step with any error fails;
- CPU-ms/append: the user+system time of every process of the service (the gunicorn master and
  its workers, the Celery worker's tree), from /proc/<pid>/stat, from the step's start until the
  service is idle again after the last ack (so a worker's pipeline work counts), over the
  appends; "service CPU" and "client CPU" are the service's and this process' CPU time as a
  share of one core over the step (2 cores: 200% is the whole machine). A client near 100% (one
  core, the GIL) would make the client the limit, not the service;
- machine busy, machine CPU-ms/append and ceiling: the whole machine's busy time (user, system,
  interrupts, steal, from /proc/stat) over the same span, as a share of all its cores and per
  append; it counts what the service's figure leaves out (the database server, the broker, this
  client, the kernel's work for the fsyncs). The ceiling is the number of sessions at one
  append a second that would keep every core busy at that cost: above it no step can pass on
  this machine, whatever its latency, unless an append costs less;
- below the table, for each step: how many of its seconds (by when their appends were due) had
  an ack p99 over the bound, and the slowest three: a tail spread over the whole step is steady
  saturation, one gathered in a few seconds comes from bursts;
- load: the machine's 1-minute load average at the step's end (the service's own included);
  other work on the machine lengthens acks without adding to the service's CPU time;
- passed: no error and ack p99 < 250 ms.
The database server's and the broker's CPU (PostgreSQL, Redis) are not in CPU-ms/append: they
are outside the service's process trees and may serve others on the same machine; the machine
columns count them, with anything else the machine ran meanwhile.
Then the largest N that passed, beside issue 19's target (at least 300 sessions, on the embedded
default and on PostgreSQL + Celery). Sessions are left recording after their step; the service is
stopped at the end. The targets are reported, not enforced: the exit status is 0 whenever the
run completes.
"""
