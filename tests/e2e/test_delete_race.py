"""`make run` deleting sessions while recorders upload into them: no 5xx, no file left behind.

Four recorders PUT chunks into a session over HTTP while an operator DELETEs it, round after
round; the pipeline runs inside the service's workers, as it does on the embedded default.
"""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.client import API, ServiceClient, login, session_start

CHUNK_SIZE = 256 * 1024
RECORDERS = 4
UPLOADS_EACH = 30
UPLOADS_BEFORE_DELETE = 8
ROUNDS = 3
SETTLE_SECONDS = 10


def _upload_until_gone(client: ServiceClient, session_id: str, recorder: int, uploaded) -> set:
    """The statuses of this recorder's uploads, the last one a 404 once the session is gone."""
    generator = random.Random(recorder)
    statuses = set()
    for count in range(UPLOADS_EACH):
        sequence = count * RECORDERS + recorder
        status, _ = client.request(
            "PUT",
            f"{API}/sessions/{session_id}/chunks/{sequence}",
            body=generator.randbytes(CHUNK_SIZE),
        )
        statuses.add(status)
        uploaded.release()
        if status == 404:
            break
    return statuses


def _delete_after_uploads(client: ServiceClient, session_id: str, uploaded) -> int:
    for _ in range(UPLOADS_BEFORE_DELETE):
        uploaded.acquire(timeout=30)
    status, _ = client.request("DELETE", f"{API}/sessions/{session_id}")
    return status


def _files_left(root: Path, session_id: str) -> list[Path]:
    directories = [root / "sessions" / "spool" / session_id, root / "chunks" / session_id]
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        files = [path for d in directories for path in d.rglob("*") if path.is_file()]
        if not files or time.monotonic() > deadline:
            return files
        time.sleep(0.1)


def test_sessions_deleted_during_uploads_answer_no_5xx_and_leave_no_file(server, tmp_path):
    client = login(server.client())
    for round_ in range(ROUNDS):
        session_id = session_start(client, name=f"deleted {round_}", chunk_size=CHUNK_SIZE)
        uploaded = threading.Semaphore(0)
        with ThreadPoolExecutor(max_workers=RECORDERS + 1) as pool:
            uploads = [
                pool.submit(_upload_until_gone, client, session_id, recorder, uploaded)
                for recorder in range(RECORDERS)
            ]
            deleted = pool.submit(_delete_after_uploads, client, session_id, uploaded)
            statuses = set().union(*(upload.result() for upload in uploads))

        assert deleted.result() == 204
        assert statuses <= {201, 404}, statuses
        assert _files_left(tmp_path, session_id) == []
