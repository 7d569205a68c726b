"""Every test here is an `e2e` test: it starts the service's real processes."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import LucidServer, served

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def server(tmp_path) -> Iterator[LucidServer]:
    """The service as `make run` runs it, on storage, database and port of this test's own."""
    with served(tmp_path) as lucid:
        yield lucid
