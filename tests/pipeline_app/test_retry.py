"""Retrying failed chunks: through the API and the pipelines admin, once their cause is fixed."""

import pytest

from chunks_app.models import Chunk
from chunks_app.storage import get_spool
from core.models import AuditEntry
from tests.chunks_app.helpers import (
    body_of,
    download,
    put_chunk,
    screen_like,
    wait_until_settled,
)
from tests.factories import UserFactory
from tests.support.faults import damage, overwrite

pytestmark = pytest.mark.django_db(transaction=True)

BODY = screen_like(3000)
CHANGELIST = "/admin/pipeline_app/pipeline/"


@pytest.fixture
def failed(api_client, recording) -> str:
    """The spool key of the recording's chunk 0, which failed on spooled bytes cut short."""
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/pause")
    put_chunk(api_client, recording, 0, BODY)
    spooled = Chunk.objects.get().spool_key
    overwrite(get_spool(), spooled, b"cut short")
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/resume")
    (chunk,) = wait_until_settled(recording)
    assert chunk.status == "failed"
    return spooled


def bytes_back(spooled: str) -> None:
    """The spooled bytes put back as they were received, as an operator would."""
    overwrite(get_spool(), spooled, BODY)


def _retry(client, session):
    return client.post(f"/api/v1/sessions/{session.id}/pipeline/retry")


def test_retry_stores_a_failed_chunk_once_its_bytes_are_back(api_client, recording, failed):
    bytes_back(failed)

    response = _retry(api_client, recording)

    assert response.status_code == 200
    assert response.json()["state"] == "running"
    assert response.json()["failed"] == 0
    (chunk,) = wait_until_settled(recording)
    assert chunk.status == "stored"
    assert body_of(download(api_client, recording, 0)) == BODY
    recording.refresh_from_db()
    assert (recording.chunks_failed, recording.chunks_stored, recording.backlog_bytes) == (0, 1, 0)


def test_retry_is_audited_with_how_many_chunks_it_queued(api_client, recording, failed):
    bytes_back(failed)

    _retry(api_client, recording)

    entry = AuditEntry.objects.filter(detail__action="retry").get()
    assert (entry.action, entry.session_id, entry.detail["chunks"]) == (
        "pipeline_state_changed",
        recording.id,
        1,
    )
    assert entry.actor == "operator"
    wait_until_settled(recording)


def test_retry_leaves_a_chunk_without_its_spooled_bytes_failed(api_client, recording, failed):
    damage(get_spool(), failed, "deleted")

    response = _retry(api_client, recording)

    assert response.status_code == 200
    assert response.json()["failed"] == 1
    assert Chunk.objects.get().status == "failed"


def test_retry_while_paused_leaves_the_chunk_waiting_for_resume(api_client, recording, failed):
    bytes_back(failed)
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/pause")

    response = _retry(api_client, recording)

    assert (response.json()["received"], response.json()["failed"]) == (1, 0)
    api_client.post(f"/api/v1/sessions/{recording.id}/pipeline/resume")
    assert [chunk.status for chunk in wait_until_settled(recording)] == ["stored"]


@pytest.mark.parametrize("role", ["auditor", "recorder"])
def test_retry_is_for_those_who_may_pause_and_resume(api_client, recording, failed, role):
    caller = UserFactory(username=role, roles=[role])
    recording.owner = caller
    recording.save(update_fields=["owner"])
    api_client.force_authenticate(caller)
    bytes_back(failed)

    response = _retry(api_client, recording)

    assert response.status_code == 403
    assert Chunk.objects.get().status == "failed"


def test_the_admin_action_retries_the_selected_pipelines(clients, recording, failed):
    bytes_back(failed)

    response = clients["operator"].post(
        CHANGELIST,
        {"action": "retry_failed", "_selected_action": [str(recording.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    assert f"“{recording.name}”: 1 failed chunk(s) queued again." in response.content.decode()
    assert [chunk.status for chunk in wait_until_settled(recording)] == ["stored"]
    assert AuditEntry.objects.filter(detail__action="retry", actor="admin-operator").exists()


def test_an_auditor_gets_no_retry_action(clients, recording, failed):
    bytes_back(failed)

    response = clients["auditor"].post(
        CHANGELIST, {"action": "retry_failed", "_selected_action": [str(recording.pk)]}
    )

    assert "queued again" not in response.content.decode()
    assert "action-checkbox" not in clients["auditor"].get(CHANGELIST).content.decode()
    assert Chunk.objects.get().status == "failed"
