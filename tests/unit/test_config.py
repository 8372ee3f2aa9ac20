"""Settings from the environment: working defaults, clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from photos.config import DEFAULT_AMQP_URI, DEFAULT_PG_URI, ConfigError, Settings


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
