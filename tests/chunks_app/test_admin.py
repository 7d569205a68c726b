"""The chunks admin: a read-only list and page for every role that may view chunks."""

import pytest

from chunks_app.models import Chunk
from core.encryption import generate_key_line
from core.units import milliseconds_text, ratio_text, size_text
from sessions_app.models import Session
from tests.chunks_app.helpers import KIB, put_chunk, random_bytes, screen_like, wait_until_settled
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/chunks_app/chunk/"
ROLES = ["superuser", "operator", "auditor"]


@pytest.fixture
def recorded(api_client, user) -> Session:
    session = SessionFactory(owner=user, name="morning shift", status="recording")
    put_chunk(api_client, session, 0, screen_like(200 * KIB))
    put_chunk(api_client, session, 1, random_bytes(30 * KIB))
    wait_until_settled(session)
    return session


@pytest.mark.parametrize("role", ROLES)
def test_the_list_shows_each_chunk_with_its_sizes_ratio_and_time_in_human_units(
    clients, role, recorded
):
    response = clients[role].get(CHANGELIST)

    assert response.status_code == 200
    body = response.content.decode()
    for chunk in Chunk.objects.filter(session=recorded):
        assert f'<td class="field-raw_size">{size_text(chunk.size)}</td>' in body
        assert f'<td class="field-stored_size">{size_text(chunk.compressed_size)}</td>' in body
        assert f"{ratio_text(chunk.size, chunk.compressed_size)}</td>" in body
        assert (
            f'<td class="field-processing_time">{milliseconds_text(chunk.processing_ms)}<' in body
        )
    for text in ["morning shift", "Stored", "zstd", "none"]:
        assert text in body
    assert "action-checkbox" not in body


@pytest.mark.parametrize("role", ROLES)
def test_the_chunk_page_is_read_only(clients, role, recorded):
    chunk = Chunk.objects.get(session=recorded, sequence=0)
    page = f"{CHANGELIST}{chunk.pk}/change/"

    response = clients[role].get(page)

    assert response.status_code == 200
    body = response.content.decode()
    assert chunk.sha256 in body
    assert f"/api/v1/sessions/{recorded.pk}/chunks/0/download" in body
    assert 'name="_save"' not in body
    assert clients[role].post(page, {"sequence": "7"}).status_code == 403
    assert clients[role].post(f"{CHANGELIST}{chunk.pk}/delete/", {"post": "yes"}).status_code == 403
    assert clients[role].get(f"{CHANGELIST}add/").status_code == 403
    assert Chunk.objects.filter(pk=chunk.pk, sequence=0).exists()


def test_the_list_filters_by_status_and_session(clients, api_client, user, recorded):
    other = SessionFactory(owner=user, name="evening shift", status="recording")
    put_chunk(api_client, other, 0, screen_like(10 * KIB))
    wait_until_settled(other)

    by_session = clients["auditor"].get(CHANGELIST, {"session": str(other.pk)})
    by_status = clients["auditor"].get(CHANGELIST, {"status__exact": "failed"})

    assert "evening shift" in by_session.content.decode()
    assert "morning shift" not in by_session.content.decode()
    assert "morning shift" not in by_status.content.decode()


def test_the_list_searches_by_session_name(clients, recorded):
    SessionFactory(name="unrelated")

    response = clients["operator"].get(CHANGELIST, {"q": "morning"})

    assert response.context["cl"].result_count == 2


def test_the_chunk_page_shows_its_key_id_and_the_list_filters_by_it(
    clients, api_client, user, recorded, settings
):
    settings.LUCID_ENCRYPTION_KEYS = generate_key_line("key-2025")
    settings.LUCID_ENCRYPTION_ACTIVE_KEY = "key-2025"
    encrypted = SessionFactory(owner=user, name="night shift", status="recording")
    put_chunk(api_client, encrypted, 0, screen_like(10 * KIB))
    (chunk,) = wait_until_settled(encrypted)

    page = clients["auditor"].get(f"{CHANGELIST}{chunk.pk}/change/").content.decode()
    sealed = clients["auditor"].get(CHANGELIST, {"key_id__exact": "key-2025"}).content.decode()
    plain = clients["auditor"].get(CHANGELIST, {"key_id__isnull": "True"}).content.decode()

    assert "Key id" in page
    assert "key-2025" in page
    assert "night shift" in sealed
    assert "morning shift" not in sealed
    assert "morning shift" in plain
    assert "night shift" not in plain
