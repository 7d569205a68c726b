"""A recorder of video, as the playback tests drive the service: marked stream appends."""

from tests.support.client import API, ServiceClient
from tests.support.media import Video


def video_session(client: ServiceClient, *, name: str, chunk_size: int) -> str:
    """A new `video/mp4` session, started; its id."""
    body = {"name": name, "content_type": "video/mp4", "chunk_size": chunk_size}
    session_id = client.call("POST", f"{API}/sessions", 201, body=body)["id"]
    client.call("POST", f"{API}/sessions/{session_id}/start")
    return session_id


def append_marked(client: ServiceClient, session_id: str, data: bytes, *, time_ms: int | None):
    """Append `data` to the stream, marked `Lucid-Time-Ms: time_ms` unless None."""
    headers = {} if time_ms is None else {"Lucid-Time-Ms": str(time_ms)}
    client.call("POST", f"{API}/sessions/{session_id}/stream", body=data, headers=headers)


def append_fragments(client: ServiceClient, session_id: str, video: Video, indexes) -> None:
    """Append the video's fragments `indexes`, each marked with its time."""
    for index in indexes:
        time_ms = video.layout.fragments[index].time_ms
        append_marked(client, session_id, video.fragment(index), time_ms=time_ms)
