"""`process_*` of a gunicorn role in multiprocess mode: every process of the role, by `pid`."""

from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import LucidServer


def process_pids(server: LucidServer) -> set[int]:
    families = text_string_to_metric_families(server.client().fetch("/metrics").decode())
    return {
        int(sample.labels["pid"])
        for family in families
        if family.name == "process_cpu_seconds"
        for sample in family.samples
    }


def test_every_scrape_reports_the_master_and_each_worker(server):
    master = server.group.pgid

    scrapes = [process_pids(server) for _ in range(6)]

    assert all(pids == server.group.members() for pids in scrapes)
    assert master in scrapes[0]
    assert len(scrapes[0]) == 3  # the master and GUNICORN_WORKERS=2
