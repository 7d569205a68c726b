"""Screenshots of the operator console at 1,366 px wide: docs/admin-index.png,
docs/admin-sessions.png, docs/admin-session.png and docs/dashboard.png.

Starts the service as `make run` does (migrate, ensure_superuser, collectstatic, gunicorn with
lucid/gunicorn.conf.py; SQLite and in-process tasks) on a free port with its data in a temporary
directory, records a few sessions through the API from two recorder machines (by stream and by
chunk uploads, three codecs, some stopped, one paused, one under legal hold, one still created),
backs them up, then logs into the admin with headless Chromium and saves the pages. The
recordings take seconds here; their start and stop times are moved back to those of a working
day so that the list's times and durations look like real ones. Everything it started is
stopped and removed at the end. Needs the dev requirements (Playwright) and Debian's chromium
(`apt-get install -y chromium`):

    .venv/bin/python docs/screenshots.py

CHROMIUM=/path/to/chrome overrides /usr/bin/chromium.
"""

import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BIN = ROOT / ".venv" / "bin"
MIB = 1024 * 1024
ADMIN = ("admin", f"shots-{secrets.token_hex(6)}")
RECORDERS = ["recorder-fra1", "recorder-ber2"]
VIEWPORT = {"width": 1366, "height": 900}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Each session's start, in minutes before now, and its length in minutes (None: still going).
WORKING_DAY = [(7 * 60, 94), (5 * 60 + 20, 37), (75, None), (50, None), (None, None)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def screen_like(size: int, seed: int, noise: float = 0.02) -> bytes:
    """Bytes like a remote desktop's screen: long runs of a few values, some noisy regions."""
    chance = random.Random(seed)
    page = bytes((seed + index // 97) % 7 for index in range(4096))
    blocks = [
        chance.randbytes(4096) if chance.random() < noise else page for _ in range(size // 4096 + 1)
    ]
    return b"".join(blocks)[:size]


class Service:
    """The service of `make run` in a temporary directory, and what manage.py does to it."""

    def __init__(self, workdir: Path, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "MONGO_URL", "REDIS_URL", "CELERY_BROKER_URL"}
        }
        self.env.update(
            PORT=str(port),
            GUNICORN_WORKERS="2",
            LUCID_STORAGE_PATH=str(workdir / "sessions"),
            LUCID_CHUNK_STORE_PATH=str(workdir / "chunks"),
            LUCID_BACKUP_PATH=str(workdir / "backups"),
            DJANGO_STATIC_ROOT=str(workdir / "static"),
            # The chunk store's used bytes are cached per process; read them fresh here.
            LUCID_STORAGE_USAGE_CACHE_SECONDS="1",
            DJANGO_SUPERUSER_USERNAME=ADMIN[0],
            DJANGO_SUPERUSER_PASSWORD=ADMIN[1],
        )
        self.backups = workdir / "backups"
        self.server: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        command = [str(BIN / "python"), "manage.py", *args]
        done = subprocess.run(
            command, cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        )
        return done.stdout

    def prepare(self) -> dict[str, str]:
        """Migrated, with the admin and two recorder machines; their API keys by name."""
        self.manage("migrate", "--noinput")
        self.manage("ensure_superuser")
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import Group, User\n"
            f"for name in {RECORDERS!r}:\n"
            "    User.objects.create_user(name).groups.add(Group.objects.get(name='recorder'))\n",
        )
        return {name: self.manage("issue_token", name).strip() for name in [ADMIN[0], *RECORDERS]}

    def start(self) -> None:
        self.server = subprocess.Popen(
            [str(BIN / "gunicorn"), "lucid.wsgi", "--config", "lucid/gunicorn.conf.py"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{self.base}/health")
            except urllib.error.HTTPError:  # answering, if not healthy yet
                return
            except OSError:
                time.sleep(0.2)
            else:
                return
        raise RuntimeError("the service did not start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)


class Api:
    """One identity's calls to /api/v1."""

    def __init__(self, base: str, token: str):
        self.base = f"{base}/api/v1"
        self.token = token

    def __call__(self, method: str, path: str, body: bytes | dict | None = None) -> dict | None:
        binary = isinstance(body, bytes)
        request = urllib.request.Request(
            f"{self.base}{path}",
            method=method,
            data=body if binary else None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Token {self.token}",
                "Content-Type": "application/octet-stream" if binary else "application/json",
            },
        )
        with urllib.request.urlopen(request) as response:
            return None if response.status == 204 else json.load(response)


def record(api: Api, *, stream=(), chunks=(), end: str, **fields) -> dict:
    """A session recorded by `api`: `stream` bytes in pieces, or `chunks` uploaded one by one."""
    session = api("POST", "/sessions", {"chunk_size": MIB, **fields})
    if end == "created":
        return session
    api("POST", f"/sessions/{session['id']}/start")
    for piece in stream:
        api("POST", f"/sessions/{session['id']}/stream", piece)
    for sequence, body in enumerate(chunks):
        api("PUT", f"/sessions/{session['id']}/chunks/{sequence}", body)
    action = {"stopped": "stop", "paused": "pause"}.get(end)
    if action:
        api("POST", f"/sessions/{session['id']}/{action}")
    return session


def seed(service: Service, tokens: dict[str, str]) -> list[dict]:
    fra = Api(service.base, tokens["recorder-fra1"])
    ber = Api(service.base, tokens["recorder-ber2"])
    admin = Api(service.base, tokens[ADMIN[0]])

    def pieces(count: int, seed: int, size: int = 700 * 1024) -> list[bytes]:
        return [screen_like(size, seed + index) for index in range(count)]

    sessions = [
        record(
            fra,
            name="Quarterly close, finance desk",
            host="rdp-fin-01.corp.example",
            remote_user="CORP\\j.martin",
            client_address="10.20.4.17",
            compression_algorithm="zstd",
            stream=pieces(11, 1),
            end="stopped",
            metadata={"ticket": "FIN-2231"},
        ),
        record(
            ber,
            name="Helpdesk ticket 4711",
            host="rdp-hd-03.corp.example",
            remote_user="CORP\\a.schulz",
            client_address="10.31.0.122",
            compression_algorithm="lz4",
            chunks=pieces(4, 20, MIB),
            end="stopped",
            metadata={"ticket": "HD-4711"},
        ),
        record(
            fra,
            name="Domain controller patching",
            host="dc-02.corp.example",
            remote_user="CORP\\adm.kowalski",
            client_address="10.20.9.5",
            compression_algorithm="gzip",
            compression_level=6,
            stream=pieces(5, 40, 600 * 1024),
            end="recording",
        ),
        record(
            ber,
            name="Vendor access, ACME support",
            host="rdp-ext-01.corp.example",
            remote_user="acme-support",
            client_address="2001:db8:7:1::2a",
            compression_algorithm="zstd",
            chunks=[screen_like(MIB, 60, 0.3), os.urandom(MIB), screen_like(512 * 1024, 61)],
            end="paused",
        ),
        record(
            fra,
            name="Night shift console",
            host="rdp-ops-02.corp.example",
            remote_user="CORP\\ops.night",
            compression_algorithm="zstd",
            end="created",
        ),
    ]
    for _ in range(300):
        pipelines = [admin("GET", f"/sessions/{s['id']}/pipeline") for s in sessions]
        if all(p["received"] + p["processing"] == 0 for p in pipelines):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError("chunks still waiting to be stored")
    admin("PATCH", f"/sessions/{sessions[1]['id']}", {"legal_hold": True})
    admin("GET", f"/sessions/{sessions[0]['id']}/manifest")
    service.manage("backup", "--output", str(service.backups / "lucid-backup-first.tar.zst"))
    moves = {s["id"]: times for s, times in zip(sessions, WORKING_DAY, strict=True)}
    service.manage(
        "shell",
        "-c",
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from sessions_app.models import Session\n"
        "now = timezone.now()\n"
        f"for pk, (start, length) in {moves!r}.items():\n"
        "    if start is None:\n"
        "        continue\n"
        "    started = now - timedelta(minutes=start)\n"
        "    stopped = None if length is None else started + timedelta(minutes=length)\n"
        "    Session.objects.filter(pk=pk).update(\n"
        "        created_at=started - timedelta(minutes=1),\n"
        "        started_at=started,\n"
        "        stopped_at=stopped,\n"
        "    )\n",
    )
    return sessions


def shoot(base: str, sessions: list[dict]) -> list[Path]:
    shots = []

    def save(page, name: str, **options) -> None:
        path = DOCS / name
        page.screenshot(path=path, **options)
        shots.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", ADMIN[0])
            page.fill("#id_password", ADMIN[1])
            with page.expect_navigation(url=f"{base}/admin/"):
                page.click("input[type=submit]")
            save(page, "admin-index.png", full_page=True)
            page.goto(f"{base}/admin/sessions_app/session/")
            save(page, "admin-sessions.png")
            page.goto(f"{base}/admin/sessions_app/session/{sessions[0]['id']}/change/")
            page.click("summary:has-text('Recording format and times')")
            save(page, "admin-session.png", full_page=True)
            page.goto(f"{base}/admin/dashboard/")
            save(page, "dashboard.png")
        finally:
            browser.close()
    return shots


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="lucid-shots-"))
    service = Service(workdir, free_port())
    try:
        tokens = service.prepare()
        service.start()
        sessions = seed(service, tokens)
        time.sleep(1.5)
        for path in shoot(service.base, sessions):
            print(f"wrote {path.relative_to(ROOT)}")
    finally:
        service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
