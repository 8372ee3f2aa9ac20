"""The S3 backend: objects in a bucket, under a prefix, on any S3-compatible
store (AWS, MinIO, Ceph, moto), through boto3.

- *Never half-written.* A PUT is all or nothing: an object is absent until
  its last byte is stored, and a writer killed mid-PUT leaves nothing.
- *Write-once rendition names.* :meth:`S3Storage.rendition_key` adds a random
  token (``fit-320.3f9c0a6b1d2e4f57.jpg``): every write goes to a name no
  other writer uses, so a consumer whose lease was taken over can never
  replace its successor's objects, and a name's bytes never change (served as
  immutable). Staging PUTs at once; the caller's row names the key when it
  commits, and :meth:`S3Staged.discard` deletes the object when it does not.
- *Outages are ours.* A missing bucket, refused credentials or an endpoint
  that does not answer raise :class:`~photos.storage.StorageUnavailable`;
  only an absent key is :class:`~photos.storage.MissingObject`.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photos.config import S3Client, S3Location
from photos.storage import (
    MissingObject,
    ObjectInfo,
    StorageUnavailable,
    StoredObject,
    check_key,
    content_type,
    photo_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client as Boto3S3Client

# A rendition name with its write-once token: <rendition>.<16 hex>.<extension>
_WRITE_ONCE = re.compile(r"[^/]+\.[0-9a-f]{16}\.[a-z0-9]+")
_MISSING = {"NoSuchKey", "404", "NotFound"}
# DeleteObjects takes at most this many keys per request.
_DELETE_BATCH = 1000


class S3Staged:
    """An object PUT under a write-once key and not yet named by a committed
    row: :meth:`discard` deletes it unless :meth:`publish` came first."""

    def __init__(self, storage: S3Storage, key: str) -> None:
        self._storage = storage
        self._key = key
        self._settled = False

    @property
    def key(self) -> str:
        return self._key

    def publish(self) -> None:
        self._settled = True

    def discard(self) -> None:
        if not self._settled:
            self._settled = True
            self._storage.delete([self._key])


class S3Storage:
    def __init__(self, location: S3Location, client: S3Client) -> None:
        self.location = location
        # Made here, not on first use: a boto3 client is thread-safe once made
        # but making one is not, and takes tens of milliseconds that the first
        # /readyz must not spend. Nothing connects until the first request.
        self._s3: Boto3S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=client.endpoint_url,
            region_name=client.region,
            aws_access_key_id=client.access_key_id,
            aws_secret_access_key=client.secret_access_key,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
                max_pool_connections=32,
                # S3 checks a PUT against its Content-MD5 or checksum only when
                # asked; computing a CRC of every body for nothing costs CPU per photo.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def describe(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}"

    def rendition_key(self, photo_uuid: uuid.UUID, rendition: str, extension: str) -> str:
        return photo_key(photo_uuid, f"{rendition}.{secrets.token_hex(8)}", extension)

    def is_write_once(self, key: str) -> bool:
        return _WRITE_ONCE.fullmatch(key.rsplit("/", 1)[-1]) is not None

    def stage(self, key: str, data: bytes) -> S3Staged:
        self.write(key, data)
        return S3Staged(self, key)

    def write(self, key: str, data: bytes) -> None:
        try:
            self._s3.put_object(
                Bucket=self.location.bucket,
                Key=self._name(key),
                Body=data,
                ContentType=content_type(key),
            )
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, key, self)

    def read(self, key: str) -> bytes:
        return self.fetch(key).data

    def stat(self, key: str) -> ObjectInfo:
        try:
            head = self._s3.head_object(Bucket=self.location.bucket, Key=self._name(key))
        except (ClientError, BotoCoreError) as exc:
            try:
                _raise(exc, key, self)
            except MissingObject:
                # A HEAD's 404 has no body to tell a missing key from a missing bucket.
                self.check()
                raise
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            etag=head["ETag"],
            last_modified=head["LastModified"],
            content_type=head.get("ContentType") or content_type(key),
        )

    def fetch(self, key: str) -> StoredObject:
        try:
            got = self._s3.get_object(Bucket=self.location.bucket, Key=self._name(key))
            data = got["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, key, self)
        info = ObjectInfo(
            key=key,
            size=len(data),
            etag=got["ETag"],
            last_modified=got["LastModified"],
            content_type=got.get("ContentType") or content_type(key),
        )
        return StoredObject(info, data)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        start = len(self.location.prefix)
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=self.location.prefix + prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][start:]
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, prefix, self)

    def etags(self, prefix: str = "") -> dict[str, str]:
        """Each key under ``prefix`` with its ETag (for a single PUT, the
        quoted MD5 of its bytes)."""
        start = len(self.location.prefix)
        found: dict[str, str] = {}
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=self.location.prefix + prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    found[item["Key"][start:]] = item["ETag"]
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, prefix, self)
        return found

    def delete(self, keys: Iterable[str]) -> None:
        names = [self._name(k) for k in keys]
        for i in range(0, len(names), _DELETE_BATCH):
            batch = names[i : i + _DELETE_BATCH]
            try:
                answer = self._s3.delete_objects(
                    Bucket=self.location.bucket,
                    Delete={"Objects": [{"Key": n} for n in batch], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as exc:
                _raise(exc, batch[0], self)
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise StorageUnavailable(
                    f"could not delete {len(errors)} objects from {self.describe()}: "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def check(self) -> None:
        """A HEAD of the bucket: answers for a bucket that exists and
        credentials it accepts."""
        try:
            self._s3.head_bucket(Bucket=self.location.bucket)
        except (ClientError, BotoCoreError) as exc:
            _raise(exc, "", self)

    def sweep_partials(self, older_than: float = 600.0) -> int:
        return 0  # a PUT leaves nothing partial

    def _name(self, key: str) -> str:
        return self.location.prefix + check_key(key)


def _raise(exc: ClientError | BotoCoreError, key: str, storage: S3Storage) -> NoReturn:
    """MissingObject for an absent key, StorageUnavailable (saying why) for the rest."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING and key:
            raise MissingObject(f"no object {key!r} in {storage.describe()}") from None
        if code in ("NoSuchBucket",) or (code in _MISSING and not key):
            raise StorageUnavailable(f"the bucket of {storage.describe()} does not exist") from None
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"):
            raise StorageUnavailable(
                f"{storage.describe()} refused the credentials ({code}); check AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY"
            ) from None
        raise StorageUnavailable(
            f"{storage.describe()} answered {code}: {error.get('Message', '')}"
        ) from None
    raise StorageUnavailable(f"{storage.describe()} is unreachable: {exc}") from None
