"""The console's player in a real browser: Debian's chromium, headless, driven by Playwright.

A fragmented MP4 made by ffmpeg is streamed to the running service with a time mark per
fragment; an operator logs in to the admin, opens the session's page, plays and seeks with the
player's own controls. What the player fetched is read back from the audit trail, where each
GET of /recording leaves its Range.
"""

import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.client import API, PASSWORD, USERNAME, ServiceClient, login, wait_until_stored
from tests.support.media import Video, fragmented_mp4
from tests.support.ports import HOST
from tests.support.recorder import append_fragments, append_marked, video_session
from tests.support.server import LucidServer, served

SECONDS = 60
SEEK_SECONDS = 45
# Neither played nor within the buffer ahead of 0 s or 45 s: never fetched.
SKIPPED_SECONDS = range(20, 40)
CHUNK_SIZE = 64 * 1024
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
VIEWPORT = {"width": 1366, "height": 900}
WAIT_MS = 30_000
STORED_SECONDS = 60
VIDEO_STATE = """() => {
  const video = document.querySelector("[data-lucid-player] video");
  return {
    currentTime: video.currentTime,
    readyState: video.readyState,
    seeking: video.seeking,
    paused: video.paused,
    frames: video.getVideoPlaybackQuality().totalVideoFrames,
  };
}"""


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Video:
    path = fragmented_mp4(tmp_path_factory.mktemp("video") / "testsrc2.mp4", seconds=SECONDS)
    video = Video(path.read_bytes())
    assert len(video.layout.fragments) == SECONDS
    return video


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[LucidServer]:
    """The service as `make run` serves it, with its static files collected (the player)."""
    with served(tmp_path_factory.mktemp("lucid"), static=True) as lucid:
        yield lucid


@pytest.fixture(scope="module")
def client(console) -> ServiceClient:
    return login(console.client())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "install Debian's chromium: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def script_errors() -> list[str]:
    """What the page's scripts threw, and the API's refusals of its requests."""
    return []


@pytest.fixture
def page(browser, console, script_errors) -> Iterator[Page]:
    """A browser tab logged in to the admin as the harness's superuser."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    def api_error(response) -> None:
        if "/api/" in response.url and response.status >= 400:
            script_errors.append(f"{response.status} from {response.url}")

    page.on("response", api_error)
    page.set_default_timeout(WAIT_MS)
    page.goto(f"http://{HOST}:{console.port}/admin/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    yield page
    context.close()


def stop(client: ServiceClient, session_id: str) -> None:
    headers = {"Lucid-Duration-Ms": str(SECONDS * 1000)}
    session = client.call("POST", f"{API}/sessions/{session_id}/stop", headers=headers)
    wait_until_stored(client, session_id, session["chunk_count"], seconds=STORED_SECONDS)


def open_session(page: Page, console: LucidServer, session_id: str) -> None:
    page.goto(f"http://{HOST}:{console.port}/admin/sessions_app/session/{session_id}/change/")
    page.wait_for_selector("[data-lucid-player][data-state=ready]")


def video_state(page: Page) -> dict:
    return page.evaluate(VIDEO_STATE)


def wait_for_video(page: Page, condition: str) -> dict:
    """The video's state once `condition` (JS over `video`) holds."""
    page.wait_for_function(
        f"""() => {{
          const video = document.querySelector("[data-lucid-player] video");
          return {condition};
        }}"""
    )
    return video_state(page)


def ranges_read(client: ServiceClient, session_id: str) -> list[tuple[int, float]]:
    """The byte ranges (first and last byte) the GETs of /recording asked for, from the audit."""
    path = f"{API}/audit?session={session_id}&action=recording_downloaded&page_size=1000"
    entries = client.call("GET", path)["results"]
    ranges = []
    for entry in entries:
        found = re.fullmatch(r"bytes=(\d+)-(\d*)", entry["detail"]["range"])
        assert found, f"not a range of bytes: {entry['detail']}"
        start, end = found.groups()
        ranges.append((int(start), int(end) if end else math.inf))
    return ranges


def test_the_console_plays_a_recording_and_seeks_to_45_seconds(
    console, client, page, script_errors, video, tmp_path
):
    session_id = video_session(client, name="player", chunk_size=CHUNK_SIZE)
    append_marked(client, session_id, video.init_segment, time_ms=None)
    append_fragments(client, session_id, video, range(SECONDS))
    stop(client, session_id)
    open_session(page, console, session_id)

    page.click("[data-lucid-play]")
    playing = wait_for_video(page, "video.currentTime > 1 && !video.paused")
    page.locator("[data-lucid-time-bar]").fill(str(SEEK_SECONDS))
    there = wait_for_video(page, "!video.seeking && video.readyState >= 2")
    page.screenshot(path=tmp_path / "player.png")
    later = wait_for_video(page, f"video.currentTime > {there['currentTime'] + 0.5}")

    assert playing["frames"] > 0
    assert abs(there["currentTime"] - SEEK_SECONDS) < 1
    assert later["frames"] > there["frames"]
    assert later["readyState"] >= 2
    assert re.fullmatch(r"0:4\d / 1:00", page.text_content("[data-lucid-clock]"))
    assert page.text_content("[data-lucid-play]") == "Pause"
    assert page.text_content("[data-lucid-status]") == ""
    assert script_errors == []
    codec = page.evaluate("document.querySelector('[data-lucid-player]').lucidPlayer.codec")
    assert codec.startswith("avc1.64")
    read = ranges_read(client, session_id)
    assert (0, video.layout.init_size - 1) in read
    skipped_from = video.layout.fragments[SKIPPED_SECONDS.start].offset
    skipped_to = video.layout.fragments[SKIPPED_SECONDS.stop].offset
    assert not [(start, end) for start, end in read if start < skipped_to and end >= skipped_from]


def test_the_console_follows_a_live_recording_until_it_stops(
    console, client, page, script_errors, video
):
    session_id = video_session(client, name="player", chunk_size=CHUNK_SIZE)
    append_marked(client, session_id, video.init_segment, time_ms=None)
    append_fragments(client, session_id, video, range(20))
    open_session(page, console, session_id)
    live = page.locator("[data-lucid-live]")

    assert live.is_visible()
    first_end = float(page.get_attribute("[data-lucid-time-bar]", "max"))
    append_fragments(client, session_id, video, range(20, 40))
    page.wait_for_function(
        f"Number(document.querySelector('[data-lucid-time-bar]').max) > {first_end + 5}"
    )
    page.click("[data-lucid-play]")
    wait_for_video(page, "video.currentTime > 0 && video.readyState >= 2 && !video.paused")
    append_fragments(client, session_id, video, range(40, SECONDS))
    stop(client, session_id)
    page.wait_for_selector("[data-lucid-live]", state="hidden")

    assert page.get_attribute("[data-lucid-time-bar]", "max") == str(SECONDS)
    assert page.text_content("[data-lucid-clock]").endswith("/ 1:00")
    assert page.text_content("[data-lucid-status]") == ""
    assert script_errors == []
