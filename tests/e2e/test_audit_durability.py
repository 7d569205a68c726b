"""A download whose status line was sent is in the audit trail even if the server is killed with
SIGKILL before the body is: the entry was journaled on disk first and is saved at the restart."""

import random

from tests.support.client import API, USERNAME, login, put_chunk, session_start

# Far more than the sockets' buffers hold: the server is still sending when it is killed.
CHUNK_BYTES = 32 * 1024 * 1024


def test_a_download_cut_off_by_sigkill_is_in_the_audit_trail_after_the_restart(server):
    client = login(server.client())
    session_id = session_start(client, name="evidence", chunk_size=CHUNK_BYTES)
    put_chunk(client, session_id, 0, random.Random(7).randbytes(CHUNK_BYTES))
    with client.streamed(f"{API}/sessions/{session_id}/chunks/0/download") as response:
        assert response.status == 200
        assert len(response.read(1024)) == 1024
        server.kill()
    server.start()

    client = login(server.client())
    trail = client.call("GET", f"{API}/audit?session={session_id}&action=chunk_downloaded")
    assert [(entry["sequence"], entry["actor"]) for entry in trail["results"]] == [(0, USERNAME)]
