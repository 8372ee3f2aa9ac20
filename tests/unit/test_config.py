"""Settings from the environment: working defaults, clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from photos.config import DEFAULT_AMQP_URI, DEFAULT_PG_URI, ConfigError, S3Client, S3Location, Settings


def test_an_empty_environment_gives_working_local_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.pg_uri == DEFAULT_PG_URI
    assert settings.amqp_uri == DEFAULT_AMQP_URI
    assert settings.thumbs_dir == Path("thumbs")
    assert settings.port == 3000
    assert settings.queue_name == "photo-processor"
    # Nothing private is reachable unless it is configured.
    assert settings.allowed_fetch_hosts == frozenset()
    assert settings.lease_seconds == 60.0
    assert settings.max_attempts == 5
    assert settings.sample_base_url == "http://localhost:3000/samples/"


def test_the_documented_variables_are_read() -> None:
    settings = Settings.from_env(
        {
            "PG_CONNECTION_URI": "postgres://u@db:5432/x",
            "AMQP_URI": "amqp://u:p@mq:5672/v",
            "THUMBS_DIR": "/waldo-app-thumbs",
            "PORT": "8080",
            "ALLOWED_FETCH_HOSTS": "localhost,127.0.0.1",
            "LEASE_SECONDS": "2.5",
            "MAX_ATTEMPTS": "3",
            "FETCH_MAX_BYTES": "1000",
            "FETCH_TOTAL_TIMEOUT": "7",
        }
    )
    assert settings.pg_uri == "postgres://u@db:5432/x"
    assert settings.amqp_uri == "amqp://u:p@mq:5672/v"
    assert settings.thumbs_dir == Path("/waldo-app-thumbs")
    assert settings.port == 8080
    assert settings.sample_base_url == "http://localhost:8080/samples/"
    assert settings.allowed_fetch_hosts == {"localhost", "127.0.0.1"}
    assert settings.lease_seconds == 2.5
    assert settings.max_attempts == 3
    assert settings.fetch_max_bytes == 1000
    assert settings.fetch_total_timeout == 7.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", set()),
        (" , ,", set()),
        ("LocalHost", {"localhost"}),
        (" photos.internal , 10.0.0.7 ", {"photos.internal", "10.0.0.7"}),
        ("[::1],[fd00::2]", {"::1", "fd00::2"}),
    ],
)
def test_allowed_fetch_hosts_are_normalised(raw: str, expected: set[str]) -> None:
    assert Settings.from_env({"ALLOWED_FETCH_HOSTS": raw}).allowed_fetch_hosts == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "http", "PORT must be an integer, got 'http'"),
        ("PORT", "0", "PORT must be at least 1, got 0"),
        ("MAX_ATTEMPTS", "0", "MAX_ATTEMPTS must be at least 1"),
        ("FETCH_MAX_BYTES", "-5", "FETCH_MAX_BYTES must be at least 1"),
        ("LEASE_SECONDS", "soon", "LEASE_SECONDS must be a number, got 'soon'"),
        ("LEASE_SECONDS", "0", "LEASE_SECONDS must be positive"),
        ("FETCH_TOTAL_TIMEOUT", "-1", "FETCH_TOTAL_TIMEOUT must be positive"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({name: value})


def test_blank_values_fall_back_to_the_defaults() -> None:
    settings = Settings.from_env({"PORT": " ", "LEASE_SECONDS": "", "PG_CONNECTION_URI": ""})
    assert (settings.port, settings.lease_seconds, settings.pg_uri) == (3000, 60.0, DEFAULT_PG_URI)


def test_settings_are_frozen_and_copied_with_changes() -> None:
    settings = Settings.from_env({})
    changed = settings.with_(lease_seconds=3.0)
    assert (settings.lease_seconds, changed.lease_seconds) == (60.0, 3.0)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_metrics_settings_are_off_unless_set() -> None:
    settings = Settings.from_env({})
    assert settings.metrics_port is None
    assert settings.metrics_multiprocess_dir is None
    settings = Settings.from_env({"METRICS_PORT": "9101", "PROMETHEUS_MULTIPROC_DIR": "/tmp/m"})
    assert settings.metrics_port == 9101
    assert settings.metrics_multiprocess_dir == Path("/tmp/m")


@pytest.mark.parametrize("raw", ["nine", "0", "-1"])
def test_a_bad_metrics_port_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        Settings.from_env({"METRICS_PORT": raw})


# --- STORAGE_URL ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "bucket", "prefix"),
    [
        ("s3://photos", "photos", ""),
        ("s3://photos/", "photos", ""),
        ("s3://photos/thumbs", "photos", "thumbs/"),
        ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b/"),
    ],
)
def test_storage_url_names_a_bucket_and_a_prefix(raw: str, bucket: str, prefix: str) -> None:
    settings = Settings.from_env({"STORAGE_URL": raw, "AWS_ENDPOINT_URL_S3": "http://minio:9000"})
    assert settings.storage == S3Location(bucket, prefix)
    assert settings.s3.endpoint_url == "http://minio:9000"


def test_without_storage_url_the_thumbs_directory_is_used() -> None:
    assert Settings.from_env({"STORAGE_URL": ""}).storage is None
    assert Settings.from_env({}).storage is None


def test_the_s3_client_is_configured_the_boto3_way_and_hides_its_secret() -> None:
    settings = Settings.from_env(
        {
            "STORAGE_URL": "s3://photos",
            "AWS_ENDPOINT_URL_S3": "http://minio:9000",
            "AWS_DEFAULT_REGION": "eu-west-3",
            "AWS_ACCESS_KEY_ID": "key-id",
            "AWS_SECRET_ACCESS_KEY": "very-secret",
        }
    )
    assert settings.s3 == S3Client("http://minio:9000", "eu-west-3", "key-id", "very-secret")
    assert "very-secret" not in repr(settings)


@pytest.mark.parametrize(
    "raw",
    [
        "photos",
        "/var/thumbs",
        "file:///var/thumbs",
        "http://bucket/prefix",
        "s3://",
        "s3:///prefix",
        "s3://Bucket",
        "s3://b",
        "s3://bucket_name",
        "s3://bucket..name",
        "s3://bucket:9000/x",
        "s3://user@bucket",
        "s3://bucket/a/../b",
        "s3://bucket/a//b",
        "s3://bucket/x?versioning=1",
    ],
)
def test_a_malformed_storage_url_is_a_clear_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="STORAGE_URL must be s3://bucket") as caught:
        Settings.from_env({"STORAGE_URL": raw})
    assert repr(raw) in str(caught.value)
