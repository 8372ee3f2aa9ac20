"""Settings, read once from the environment into a frozen value.

Nothing else in the code base reads ``os.environ``: entry points call
:func:`Settings.from_env` and pass the result down, tests build their own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PG_URI = "postgresql://postgres@127.0.0.1:5432/photos"
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/%2F"


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix``: objects live in ``bucket`` under ``prefix``
    (empty, or ending in ``/``)."""

    bucket: str
    prefix: str = ""


def parse_storage_url(raw: str) -> S3Location | None:
    """None for the local directory (``STORAGE_URL`` unset or empty), the bucket
    and prefix for ``s3://bucket[/prefix]``; ConfigError for anything else."""
    raw = raw.strip()
    if not raw:
        return None
    expected = "STORAGE_URL must be s3://bucket or s3://bucket/prefix (or unset for THUMBS_DIR)"
    parts = urlsplit(raw)
    if parts.scheme != "s3":
        raise ConfigError(f"{expected}, got {raw!r}")
    if parts.query or parts.fragment or parts.username or parts.password or parts.port:
        raise ConfigError(f"{expected}, got {raw!r}: no query, fragment, user or port")
    bucket = parts.hostname or ""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or bucket != parts.netloc:
        raise ConfigError(f"{expected}, got {raw!r}: {bucket!r} is not a valid bucket name")
    segments = [s for s in parts.path.split("/") if s]
    if any(s in (".", "..") for s in segments) or "//" in parts.path.strip("/"):
        raise ConfigError(f"{expected}, got {raw!r}: the prefix has an empty, '.' or '..' segment")
    return S3Location(bucket, "".join(f"{s}/" for s in segments))


@dataclass(frozen=True)
class S3Client:
    """How to reach the S3 API, the boto3 way; None leaves a value to boto3's
    own chain (profiles, instance roles)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)


def _hosts(raw: str) -> frozenset[str]:
    return frozenset(h.strip().lower().strip("[]") for h in raw.split(",") if h.strip())


@dataclass(frozen=True)
class Settings:
    pg_uri: str = DEFAULT_PG_URI
    amqp_uri: str = DEFAULT_AMQP_URI
    thumbs_dir: Path = Path("thumbs")
    # Where renditions, upload originals and query mirrors go: None for
    # thumbs_dir, else a bucket (STORAGE_URL=s3://bucket/prefix).
    storage: S3Location | None = None
    s3: S3Client = field(default_factory=S3Client)
    port: int = 3000
    # Host names or addresses that downloads may reach although they are private
    # or loopback (the sample photos are served by the app itself on localhost).
    allowed_fetch_hosts: frozenset[str] = field(default_factory=frozenset)
    queue_name: str = "photo-processor"
    # Downloads
    fetch_max_bytes: int = 50 * 1024 * 1024
    fetch_connect_timeout: float = 5.0
    fetch_total_timeout: float = 30.0
    fetch_max_redirects: int = 5
    # Images: a photo with more pixels than this is refused before decoding.
    max_image_pixels: int = 100_000_000
    # Processing
    max_attempts: int = 5
    retry_base_delay: float = 1.0
    lease_seconds: float = 60.0
    # Messages in hand per consumer: one worked on, the next ready.
    prefetch: int = 2
    # How long a stopping consumer lets the photo in hand finish.
    stop_grace_seconds: float = 30.0
    # Web
    max_content_length: int = 32 * 1024 * 1024
    # POST /query: how long the web app waits for a consumer's reply, and the
    # largest image it sends (it crosses RabbitMQ twice, there and mirrored back).
    query_timeout: float = 10.0
    query_max_bytes: int = 10 * 1024 * 1024
    # Uploads: the most bytes an uploaded image may have once decoded.
    upload_max_bytes: int = 20 * 1024 * 1024
    sample_base_url: str = ""
    # Metrics: the directory where gunicorn's workers keep theirs (set by
    # gunicorn_conf.py; None in a single process), and the port a consumer
    # serves its /metrics on (None: it serves none).
    metrics_multiprocess_dir: Path | None = None
    metrics_port: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        port = _int(env, "PORT", 3000, minimum=1)
        return cls(
            pg_uri=env.get("PG_CONNECTION_URI") or DEFAULT_PG_URI,
            amqp_uri=env.get("AMQP_URI") or DEFAULT_AMQP_URI,
            thumbs_dir=Path(env.get("THUMBS_DIR") or "thumbs"),
            storage=parse_storage_url(env.get("STORAGE_URL", "")),
            s3=S3Client(
                endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
                region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
                access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
                secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            ),
            port=port,
            allowed_fetch_hosts=_hosts(env.get("ALLOWED_FETCH_HOSTS", "")),
            queue_name=env.get("QUEUE_NAME") or "photo-processor",
            fetch_max_bytes=_int(env, "FETCH_MAX_BYTES", 50 * 1024 * 1024, minimum=1),
            fetch_connect_timeout=_float(env, "FETCH_CONNECT_TIMEOUT", 5.0),
            fetch_total_timeout=_float(env, "FETCH_TOTAL_TIMEOUT", 30.0),
            max_image_pixels=_int(env, "MAX_IMAGE_PIXELS", 100_000_000, minimum=1),
            max_attempts=_int(env, "MAX_ATTEMPTS", 5, minimum=1),
            retry_base_delay=_float(env, "RETRY_BASE_DELAY", 1.0),
            lease_seconds=_float(env, "LEASE_SECONDS", 60.0),
            prefetch=_int(env, "CONSUMER_PREFETCH", 2, minimum=1),
            stop_grace_seconds=_float(env, "STOP_GRACE_SECONDS", 30.0),
            max_content_length=_int(env, "MAX_CONTENT_LENGTH", 32 * 1024 * 1024, minimum=1),
            query_timeout=_float(env, "QUERY_TIMEOUT", 10.0),
            query_max_bytes=_int(env, "QUERY_MAX_BYTES", 10 * 1024 * 1024, minimum=1),
            upload_max_bytes=_int(env, "UPLOAD_MAX_BYTES", 20 * 1024 * 1024, minimum=1),
            sample_base_url=env.get("SAMPLE_BASE_URL") or f"http://localhost:{port}/samples/",
            metrics_multiprocess_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"])
            if env.get("PROMETHEUS_MULTIPROC_DIR")
            else None,
            metrics_port=_int(env, "METRICS_PORT", 0, minimum=1)
            if env.get("METRICS_PORT", "").strip()
            else None,
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _http_url(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return value


@dataclass(frozen=True)
class UpscalingSettings:
    """The upscaling processor's settings (``python entrypoint.py``). The
    upscaler's URL and token and the image service's URL have no default: the
    processor does not start without them. The token never appears in a repr."""

    upscaler_url: str
    upscaler_token: str = field(repr=False)
    image_service_url: str
    amqp_uri: str = DEFAULT_AMQP_URI
    queue_name: str = "image-upscaling"
    # Seconds to wait for each answer (connecting has its own, short, limit).
    connect_timeout: float = 5.0
    upscaler_timeout: float = 60.0
    image_service_timeout: float = 30.0
    # Calls to either service: attempts, and the backoff between them.
    max_attempts: int = 5
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    # Neither the image in a message nor the requested size may exceed this.
    max_image_pixels: int = 100_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UpscalingSettings:
        env = os.environ if env is None else env
        if not env.get("UPSCALER_TOKEN"):
            raise ConfigError("UPSCALER_TOKEN must be set (the upscaler's access token)")
        return cls(
            upscaler_url=_http_url(env, "UPSCALER_URL"),
            upscaler_token=env["UPSCALER_TOKEN"],
            image_service_url=_http_url(env, "IMAGE_SERVICE_URL"),
            amqp_uri=env.get("AMQP_URI") or DEFAULT_AMQP_URI,
            queue_name=env.get("UPSCALE_QUEUE") or "image-upscaling",
            connect_timeout=_float(env, "UPSCALE_CONNECT_TIMEOUT", 5.0),
            upscaler_timeout=_float(env, "UPSCALER_TIMEOUT", 60.0),
            image_service_timeout=_float(env, "IMAGE_SERVICE_TIMEOUT", 30.0),
            max_attempts=_int(env, "UPSCALE_MAX_ATTEMPTS", 5, minimum=1),
            retry_base_delay=_float(env, "UPSCALE_RETRY_BASE_DELAY", 0.5),
            retry_max_delay=_float(env, "UPSCALE_RETRY_MAX_DELAY", 30.0),
            max_image_pixels=_int(env, "MAX_IMAGE_PIXELS", 100_000_000, minimum=1),
        )

    def with_(self, **changes: object) -> UpscalingSettings:
        return replace(self, **changes)  # type: ignore[arg-type]
