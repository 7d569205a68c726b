"""The pipelines admin: each session's processing, read-only, and retrying failed chunks."""

import pytest

from core.choices import PipelineState
from pipeline_app.models import Pipeline
from pipeline_app.services import pipeline_pause
from tests.chunks_app.helpers import KIB, put_chunk, screen_like, wait_until_settled
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/pipeline_app/pipeline/"
ROLES = ["superuser", "operator", "auditor"]


@pytest.fixture
def pipelines(api_client, user):
    """One running pipeline with a stored chunk, one paused with a chunk waiting."""
    running = SessionFactory(owner=user, name="flowing", status="recording")
    put_chunk(api_client, running, 0, screen_like(20 * KIB))
    wait_until_settled(running)
    paused = SessionFactory(owner=user, name="held back", status="recording")
    pipeline_pause(session=paused)
    put_chunk(api_client, paused, 0, screen_like(30 * KIB))
    return running, paused


@pytest.mark.parametrize("role", ROLES)
def test_the_list_shows_each_pipeline_with_its_session_and_counts(clients, role, pipelines):
    response = clients[role].get(CHANGELIST)

    assert response.status_code == 200
    body = response.content.decode()
    for text in ["flowing", "held back", "Running", "Paused", "30.0 KiB"]:
        assert text in body


@pytest.mark.parametrize(
    ("role", "offered"), [("superuser", True), ("operator", True), ("auditor", False)]
)
def test_retrying_failed_chunks_is_the_only_action_offered_to_those_who_may(
    clients, role, offered, pipelines
):
    body = clients[role].get(CHANGELIST).content.decode()

    assert ("Retry the failed chunks" in body) is offered
    assert "Delete selected" not in body


def test_the_list_filters_by_state(clients, pipelines):
    response = clients["auditor"].get(CHANGELIST, {"state__exact": PipelineState.PAUSED})

    body = response.content.decode()
    assert "held back" in body
    assert "flowing" not in body


@pytest.mark.parametrize("role", ROLES)
def test_the_pipeline_page_is_read_only_even_for_an_operator(clients, role, pipelines):
    _, paused = pipelines
    page = f"{CHANGELIST}{paused.pk}/change/"

    response = clients[role].get(page)

    assert response.status_code == 200
    assert "held back" in response.content.decode()
    assert 'name="_save"' not in response.content.decode()
    assert clients[role].post(page, {"state": PipelineState.RUNNING}).status_code == 403
    assert Pipeline.objects.get(session=paused).state == PipelineState.PAUSED
