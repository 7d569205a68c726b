"""Seeking in a stopped recording: a Range costs the same work at any length, and is exact."""

import contextlib
import threading

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from chunks_app.models import Chunk
from sessions_app.models import Session
from tests.chunks_app.helpers import (
    CHUNK_SIZE,
    body_of,
    post_stream,
    put_chunk,
    random_bytes,
    wait_until_settled,
)
from tests.chunks_app.marked_uploads import stop
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024


@contextlib.contextmanager
def chunk_rows_loaded():
    """The Chunk rows this thread builds meanwhile (a worker's thread may load its own)."""
    loaded, thread = [], threading.get_ident()

    def count(sender, instance, **kwargs):
        if threading.get_ident() == thread:
            loaded.append(instance)

    post_init.connect(count, sender=Chunk, weak=False)
    try:
        yield loaded
    finally:
        post_init.disconnect(count, sender=Chunk)


def streamed(client, owner, *, chunks: int) -> tuple[Session, bytes]:
    """A stopped stream session of `chunks` full chunks and a 500-byte tail."""
    session = SessionFactory(
        owner=owner,
        status="recording",
        chunk_size=CHUNK_SIZE,
        compression_algorithm="none",
        compression_level=0,
    )
    data = random_bytes(CHUNK_SIZE * chunks + 500)
    for start in range(0, len(data), MIB):
        assert post_stream(client, session, data[start : start + MIB]).status_code == 200
    assert stop(client, session).status_code == 200
    wait_until_settled(session)
    return session, data


def seek(client, session: Session, start: int, end: int):
    """A Range request, read to its end; the response, its bytes, queries and Chunk rows."""
    url = f"/api/v1/sessions/{session.id}/recording"
    with CaptureQueriesContext(connection) as queries, chunk_rows_loaded() as rows:
        response = client.get(url, HTTP_RANGE=f"bytes={start}-{end}")
        content = body_of(response)
    return response, content, len(queries), len(rows)


def test_a_range_on_a_long_stopped_recording_costs_what_it_costs_on_a_short_one(api_client, user):
    short, short_data = streamed(api_client, user, chunks=3)
    long, long_data = streamed(api_client, user, chunks=200)
    for session in (short, long):
        seek(api_client, session, 0, 0)

    short_border = 2 * CHUNK_SIZE
    long_border = 199 * CHUNK_SIZE
    _, short_bytes, short_queries, short_rows = seek(
        api_client, short, short_border - 100, short_border + 99
    )
    response, long_bytes, long_queries, long_rows = seek(
        api_client, long, long_border - 100, long_border + 99
    )

    assert response.status_code == 206
    assert short_bytes == short_data[short_border - 100 : short_border + 100]
    assert long_bytes == long_data[long_border - 100 : long_border + 100]
    assert long_queries == short_queries
    assert long_rows == short_rows
    assert long_rows <= 2


def test_ranges_anywhere_in_a_long_stopped_recording_cost_the_same(api_client, user):
    session, data = streamed(api_client, user, chunks=200)
    seek(api_client, session, 0, 0)
    size = len(data)
    shapes = {
        "within a chunk": [
            (0, 99),
            (100 * CHUNK_SIZE + 5, 100 * CHUNK_SIZE + 104),
            (199 * CHUNK_SIZE, 200 * CHUNK_SIZE - 1),
            (size - 1, size - 1),
        ],
        "across a border": [
            (CHUNK_SIZE - 1, CHUNK_SIZE),
            (100 * CHUNK_SIZE - 50, 101 * CHUNK_SIZE - 51),
            (size - 600, size - 1),
        ],
    }

    costs = {shape: set() for shape in shapes}
    for shape, ranges in shapes.items():
        for start, end in ranges:
            response, content, queries, rows = seek(api_client, session, start, end)
            assert response.status_code == 206
            assert response["Content-Range"] == f"bytes {start}-{end}/{size}"
            assert content == data[start : end + 1]
            costs[shape].add((queries, rows))

    assert [len(found) for found in costs.values()] == [1, 1]
    assert [rows for found in costs.values() for _, rows in found] == [1, 2]


def test_the_etag_of_a_stopped_recording_is_its_sealed_merkle_root(api_client, user):
    session, _ = streamed(api_client, user, chunks=20)
    merkle_root = api_client.get(f"/api/v1/sessions/{session.id}/manifest").json()["merkle_root"]

    response, _, _, rows = seek(api_client, session, 10, 20)

    assert response["ETag"] == f'"{merkle_root}"'
    assert rows <= 2


def test_a_range_over_many_chunks_gives_every_byte(api_client, user):
    session, data = streamed(api_client, user, chunks=20)
    start, end = CHUNK_SIZE // 2, 17 * CHUNK_SIZE + 3

    response, content, _, _ = seek(api_client, session, start, end)

    assert response.status_code == 206
    assert content == data[start : end + 1]


def uploaded(client, owner, *, sizes: dict[int, int], order: list[int]) -> dict[int, bytes]:
    session = SessionFactory(owner=owner, status="recording", chunk_size=CHUNK_SIZE)
    bodies = {sequence: random_bytes(size) for sequence, size in sizes.items()}
    for sequence in order:
        assert put_chunk(client, session, sequence, bodies[sequence]).status_code == 201
    assert stop(client, session).status_code == 200
    wait_until_settled(session)
    return session, bodies


@pytest.mark.parametrize(
    ("sizes", "order"),
    [
        ({0: 1000, 1: 50_000, 2: 3000, 3: CHUNK_SIZE, 4: 7}, [3, 0, 4, 1, 2]),
        ({0: 1000, 1: 50_000, 3: 3000, 4: CHUNK_SIZE, 5: 7}, [5, 4, 3, 1, 0]),
        ({1: 2000, 2: 3000, 3: 4000}, [3, 2, 1]),
    ],
    ids=["out-of-order", "out-of-order-with-a-gap", "first-never-came"],
)
def test_ranges_across_out_of_order_chunks_are_exact_once_stopped(api_client, user, sizes, order):
    session, bodies = uploaded(api_client, user, sizes=sizes, order=order)
    data = b"".join(bodies[sequence] for sequence in sorted(bodies))
    borders, position = [], 0
    for sequence in sorted(bodies):
        borders.append(position)
        position += len(bodies[sequence])
    seek(api_client, session, 0, 0)

    for border in borders[1:]:
        start, end = max(0, border - 10), min(len(data) - 1, border + 9)
        response, content, _, rows = seek(api_client, session, start, end)
        assert response.status_code == 206
        assert response["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
        assert content == data[start : end + 1]
        assert rows <= 2
    whole = body_of(api_client.get(f"/api/v1/sessions/{session.id}/recording"))
    assert whole == data
    offsets = dict(Chunk.objects.filter(session=session).values_list("sequence", "offset"))
    assert [offsets[sequence] for sequence in sorted(bodies)] == borders
