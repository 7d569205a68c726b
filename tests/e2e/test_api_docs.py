"""The API docs as `make run` serves them: every script, stylesheet and icon the pages load
comes from the service itself, so they work on a network without the internet."""

import http.client
from collections.abc import Iterator

import pytest

from tests.support.pages import loaded_urls
from tests.support.ports import HOST
from tests.support.server import LucidServer, served


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory) -> Iterator[LucidServer]:
    with served(tmp_path_factory.mktemp("lucid"), static=True) as lucid:
        yield lucid


def _get(server: LucidServer, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("page", ["/api/docs", "/api/redoc"])
def test_a_docs_page_loads_its_assets_from_the_service_itself(docs_server, page):
    status, content = _get(docs_server, page)
    loaded = loaded_urls(content.decode())

    assert status == 200
    assert any(url.endswith(".js") for url in loaded)
    assert [url for url in loaded if not url.startswith("/static/")] == []
    assert {url: _get(docs_server, url)[0] for url in loaded} == {url: 200 for url in loaded}
