"""A damaged chunk inside a recording, served by a real gunicorn: the client's body breaks off."""

import http.client

import pytest

from tests.support.client import API, login, put_chunk, session_start, wait_until_stored

CHUNK_SIZE = 64 * 1024
CHUNKS = [bytes([sequence]) * 1000 + bytes(range(256)) * 200 for sequence in range(3)]


def test_a_damaged_later_chunk_leaves_the_recording_incomplete(server, tmp_path):
    client = login(server.client())
    session_id = session_start(client, name="damaged later", chunk_size=CHUNK_SIZE)
    for sequence, data in enumerate(CHUNKS):
        put_chunk(client, session_id, sequence, data)
    wait_until_stored(client, session_id, len(CHUNKS), seconds=60)
    (stored,) = (tmp_path / "chunks" / session_id).glob("000000000001.*")
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    with client.streamed(f"{API}/sessions/{session_id}/recording") as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(sum(map(len, CHUNKS)))
        with pytest.raises(http.client.IncompleteRead) as cut_off:
            response.read()

    assert cut_off.value.partial == CHUNKS[0]
    chunk = client.call("GET", f"{API}/sessions/{session_id}/chunks/1")
    assert chunk["status"] == "damaged"
