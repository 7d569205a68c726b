"""Backups of sessions into one archive file, and restores that verify it whole before writing.

Archive format, version 1: a tar stream (POSIX pax) inside one zstd frame with a checksum,
named `*.tar.zst`. It is written to `<name>.partial`, fsynced and renamed, so a file with the
final name is always complete. Its members, in this order:

- `sessions/<session id>.json`, one per session, followed by that session's marks, chunk and
  stream members: the session's fields (the owner by username, `merkle_root`, timestamps, the
  recording format, `content_type`, `duration_ms`, `processing_us`, `stream_offset` …); the
  other running totals, `complete` and each chunk's `offset` follow from its chunks (and its
  status) on restore. Records written before `content_type` and `duration_ms` existed lack them
  and restore as `application/octet-stream` and null.
- `marks/<session id>.json`, for a session with time marks: `[[sequence, position, time_ms],
  …]` in place order, rising in time as they rise in place.
- `chunks/<session id>/<sequence:012d>.<algorithm>`, or `…/<sequence:012d>.<key id>.<algorithm>`
  when sealed (the chunk store's name for it): a chunk's file exactly as kept, checked first
  (`chunk_read_kept_file`): the codec's output, sealed under the chunk's key if it is encrypted
  (`core.encryption`: bound to its session and sequence), so sealed bytes stay sealed in the
  archive; a chunk not stored yet is its spool file, with algorithm `none`.
- `streams/<session id>/tail.raw`, or `tail.<key id>.sealed`: the bytes of a streamed session
  that were acknowledged but do not fill a chunk yet; when its open segment is sealed, exactly
  those bytes sealed again under the segment's key, bound to that segment's sequence.
- `manifest.json`, always last: `format` ("lucid-backup"), `version` (1), `id` (uuid4),
  `created_at`, `base` (the id of the archive an incremental one builds on, else null),
  `sessions` (`id`, `member`, `sha256` of the member, `stream_tail`: `member`, `size`,
  `sha256` of the tail's bytes before sealing, `key_id`; or null; `time_marks`: `member`,
  `sha256`, `count`; or null) and `chunks`, one entry per
  chunk of every session: `session`, `sequence`, `id`, `size` and `sha256` of the raw bytes,
  `algorithm`, `stored_size` and `stored_sha256` (of the member's bytes before sealing: the
  codec's output, as the chunk's row records them), `key_id` (the key the member is sealed
  under, null when plain), `created_at`, `stored_at`, `processing_ms`, and either `member` or
  `"in_base": <base id>`; and `damaged`, the chunks found damaged while the backup read them,
  whose bytes it leaves out: `session`, `sequence`, `id`, `size`, `sha256`, `created_at` and
  `reason`. Archives written before `damaged`, `key_id` or `time_marks` existed have no such
  keys and restore as before (every member plain, no marks).

An incremental archive leaves out the bytes of every chunk its base already holds (same
session, sequence, stored_sha256 and key_id: a chunk sealed again under another key since is
archived again); restoring it needs those chunks in the database already, that is: the base
restored first. It holds all the time marks of its sessions.

A restore reads the archive twice. The first pass writes nothing: it unseals each sealed
member (authenticating it), checks every member's sha256 (before sealing), decompresses each
chunk (one at a time, streamed) against its raw sha256, each sealed Merkle root, and compares
each session with the database (a session there must have the archive's mark wherever it has
one, and when extended no mark the archive lacks). A member that fails authentication is
damage; one sealed under a key that is not configured stops the restore, naming the key. The
second pass puts each session's chunk files into the store as archived (sealed ones under
their key's name) and its stream tail into the spool as the open segment, then writes its
rows, with their `key_id`, its time marks and every chunk's `offset`, in one transaction. A
chunk listed as damaged comes back as a row `damaged`, without a file.

A repair (`restore --repair`, or the admin's repair from the newest backup) verifies the archive
the same way, then writes again the files of damaged or missing chunks of sessions already in
the database from the archived bytes that match their sha256, as archived (under their key).

`format` names an archive's parts, turns rows into records and back and holds the errors;
`streams` reads and writes its bytes; `create`, `verify`, `restore` and `repair` do what they
say.
"""
