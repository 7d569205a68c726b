"""A session's owner, which the reads of its chunks and the appends to its stream check roles
against, comes from the cache for as many sessions as a busy machine records at once."""

import pytest

from sessions_app.selectors import session_access_get
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db
SESSIONS = 500


def test_the_owners_of_hundreds_of_sessions_stay_cached_together(django_assert_num_queries):
    owner = UserFactory()
    sessions = SessionFactory.create_batch(SESSIONS, owner=owner)
    for session in sessions:
        session_access_get(session_id=session.pk)

    with django_assert_num_queries(0):
        owners = {session_access_get(session_id=session.pk).owner_id for session in sessions}

    assert owners == {owner.pk}
