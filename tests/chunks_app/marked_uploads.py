"""What the playback tests share: uploads carrying time marks, reading the timeline, stopping."""

from sessions_app.models import Session


def append_marked(client, session: Session, body: bytes, *, time_ms: object = None):
    """A stream append, marked `Lucid-Time-Ms: time_ms` unless None (a string goes as it is)."""
    headers = {} if time_ms is None else {"HTTP_LUCID_TIME_MS": str(time_ms)}
    return client.generic(
        "POST",
        f"/api/v1/sessions/{session.id}/stream",
        body,
        content_type="application/octet-stream",
        **headers,
    )


def put_marked(client, session: Session, sequence: int, body: bytes, *, time_ms: object = None):
    """A chunk upload, marked `Lucid-Time-Ms: time_ms` unless None."""
    headers = {} if time_ms is None else {"HTTP_LUCID_TIME_MS": str(time_ms)}
    return client.generic(
        "PUT",
        f"/api/v1/sessions/{session.id}/chunks/{sequence}",
        body,
        content_type="application/octet-stream",
        **headers,
    )


def stop(client, session: Session, *, duration_ms: object = None):
    headers = {} if duration_ms is None else {"HTTP_LUCID_DURATION_MS": str(duration_ms)}
    return client.post(f"/api/v1/sessions/{session.id}/stop", **headers)


def timeline(client, session: Session, **params) -> dict:
    response = client.get(f"/api/v1/sessions/{session.id}/timeline", params)
    assert response.status_code == 200, response.content
    return response.json()


def marks_of(client, session: Session) -> list[tuple[int, int | None]]:
    """Every mark of the session as (time_ms, offset), following the timeline's pages."""
    page = timeline(client, session, page_size=1000)
    marks = [(mark["time_ms"], mark["offset"]) for mark in page["marks"]]
    assert page["next"] is None
    return marks


def session_json(client, session: Session) -> dict:
    return client.get(f"/api/v1/sessions/{session.id}").json()


def stream_offset(client, session: Session) -> int:
    """Where the session's stream stands, as an empty append reports it."""
    return append_marked(client, session, b"").json()["offset"]
