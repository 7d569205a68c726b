"""A session's record in a backup: what it keeps, and what a record written before a field
existed gives that field."""

import pytest

from storage_app.backup.format import record_check, session_fields, session_record
from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db


def test_a_record_keeps_the_remote_user_and_client_address():
    session = SessionFactory(remote_user="CORP\\alice", client_address="2001:db8::1")

    fields = session_fields(session_record(session))

    assert (fields["remote_user"], fields["client_address"]) == ("CORP\\alice", "2001:db8::1")


def test_a_record_from_before_the_remote_user_and_client_address_gives_none_of_them():
    session = SessionFactory()
    record = session_record(session)
    del record["remote_user"], record["client_address"]

    record_check(record, session_id=session.pk)
    fields = session_fields(record)

    assert (fields["remote_user"], fields["client_address"]) == ("", None)
