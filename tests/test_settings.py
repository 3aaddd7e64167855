"""settings.py: defaults, every variable, and a clear error naming the variable."""

from __future__ import annotations

import pytest

from emulator import DEFAULT_MEMORY_ID, FaultConfig
from service.settings import Backend, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.grpc_port == 50051
    assert settings.metrics_port == 9464
    assert settings.backend is Backend.LOCAL
    assert settings.local_memory_ids == (DEFAULT_MEMORY_ID,)
    assert settings.aws_retry_mode == "standard"


def test_every_variable() -> None:
    settings = Settings.from_env(
        {
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": "6000",
            "METRICS_PORT": "0",
            "AGENTCORE_BACKEND": "AWS",
            "LOCAL_MEMORY_IDS": " a_memory-0123456789 , b-memory-ABCDEFGHIJ ",
            "LOCAL_DB_PATH": "/tmp/x.sqlite3",
            "GRPC_MAX_WORKERS": "4",
            "AWS_MAX_ATTEMPTS": "5",
            "AWS_RETRY_MODE": "adaptive",
            "AWS_CONNECT_TIMEOUT_SECONDS": "0.5",
            "AWS_READ_TIMEOUT_SECONDS": "12",
            "SHUTDOWN_GRACE_SECONDS": "0",
            "SHUTDOWN_DRAIN_SECONDS": "5",
            "LOCAL_FAULTS": "rate_limit=5",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings == Settings(
        grpc_host="127.0.0.1",
        grpc_port=6000,
        metrics_port=0,
        backend=Backend.AWS,
        local_memory_ids=("a_memory-0123456789", "b-memory-ABCDEFGHIJ"),
        local_db_path="/tmp/x.sqlite3",
        max_workers=4,
        aws_max_attempts=5,
        aws_retry_mode="adaptive",
        aws_connect_timeout_seconds=0.5,
        aws_read_timeout_seconds=12.0,
        shutdown_grace_seconds=0.0,
        shutdown_drain_seconds=5.0,
        local_faults=FaultConfig(rate_limit_per_second=5),
        log_level="DEBUG",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GRPC_PORT", "http"),
        ("GRPC_PORT", "70000"),
        ("METRICS_PORT", "-1"),
        ("AGENTCORE_BACKEND", "moto"),
        ("LOCAL_MEMORY_IDS", "not a memory"),
        ("GRPC_MAX_WORKERS", "0"),
        ("AWS_MAX_ATTEMPTS", "0"),
        ("AWS_RETRY_MODE", "eager"),
        ("AWS_READ_TIMEOUT_SECONDS", "0"),
        ("AWS_CONNECT_TIMEOUT_SECONDS", "nan"),
        ("SHUTDOWN_GRACE_SECONDS", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("SHUTDOWN_DRAIN_SECONDS", "soon"),
        ("LOCAL_FAULTS", "NoSuchException=1"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
