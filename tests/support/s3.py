"""A real S3 HTTP API for tests: moto's server (``ThreadedMotoServer``) on a
free port of 127.0.0.1, reached through boto3 over HTTP exactly as a real
bucket is. Never moto's in-process mocks."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import requests
from moto.server import ThreadedMotoServer

from photos.config import S3Client, S3Location
from tests.support.services import closed_port
from tests.support.wait import wait_for

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client as Boto3S3Client

REGION = "us-east-1"
# moto accepts any key unless told to check them (require_credentials).
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"


@dataclass
class MotoS3:
    server: ThreadedMotoServer | subprocess.Popen[bytes]
    endpoint: str

    @classmethod
    def start(cls) -> MotoS3:
        """On a thread of this process (the tests)."""
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        return cls(server, f"http://{host}:{port}")

    @classmethod
    def spawn(cls) -> MotoS3:
        """In a process of its own (the benchmark: no GIL shared with the client)."""
        port = closed_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        moto = cls(process, f"http://127.0.0.1:{port}")
        wait_for(moto._answers, timeout=30, what="moto's server to start")
        return moto

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.endpoint}/moto-api/", timeout=1).status_code < 500
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if isinstance(self.server, ThreadedMotoServer):
            self.server.stop()
        else:
            self.server.terminate()
            self.server.wait(10)

    def client_settings(self, **changes: str) -> S3Client:
        values: dict[str, str | None] = {
            "endpoint_url": self.endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            **changes,
        }
        return S3Client(**values)

    def env(self, location: S3Location) -> dict[str, str]:
        """What a process of the service reads to use this bucket."""
        return {
            "STORAGE_URL": f"s3://{location.bucket}/{location.prefix}",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> Boto3S3Client:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self, prefix: str = "photos/") -> S3Location:
        name = f"test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return S3Location(name, prefix)

    def objects(self, location: S3Location) -> dict[str, bytes]:
        """Every object in the bucket (whatever its prefix), by full key."""
        s3 = self.client()
        found: dict[str, bytes] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = s3.get_object(Bucket=location.bucket, Key=item["Key"])["Body"].read()
        return found

    def count(self, location: S3Location) -> int:
        """How many objects the bucket holds (listing only)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=location.bucket)
        return sum(len(page.get("Contents", [])) for page in pages)

    def require_credentials(self, on: bool) -> None:
        """Make the server check access keys against its IAM users (it has
        none, so every key is refused), or stop checking."""
        count = "0" if on else "inf"
        requests.post(f"{self.endpoint}/moto-api/reset-auth", data=count, timeout=5).raise_for_status()
