"""Every setting of the service, read from the environment and validated once at start.

AWS settings that botocore already reads (credentials, region, endpoint, profile) are not repeated
here: in the `aws` backend, boto3's own default chain applies unchanged.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import re
from collections.abc import Mapping

from emulator import DEFAULT_MEMORY_ID, FaultConfig


class Backend(enum.StrEnum):
    """Where the boto3 client sends its requests."""

    LOCAL = "local"  # the embedded emulator, started in-process on a loopback port
    AWS = "aws"  # AWS itself, or whatever boto3's default chain points at


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


# AWS's MemoryId pattern (botocore model), so that a typo in LOCAL_MEMORY_IDS fails at start.
_MEMORY_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9-_]{0,99}-[a-zA-Z0-9]{10}")
_RETRY_MODES = ("standard", "adaptive", "legacy")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated settings. Field docs name the environment variable and its default."""

    grpc_host: str = "[::]"  # GRPC_HOST
    grpc_port: int = 50051  # GRPC_PORT; 0 picks a free port (tests)
    metrics_port: int = 9464  # METRICS_PORT
    backend: Backend = Backend.LOCAL  # AGENTCORE_BACKEND: local | aws
    local_memory_ids: tuple[str, ...] = (DEFAULT_MEMORY_ID,)  # LOCAL_MEMORY_IDS, comma-separated
    local_db_path: str = ":memory:"  # LOCAL_DB_PATH: SQLite file of the emulator
    max_workers: int = 16  # GRPC_MAX_WORKERS: handler threads, and boto3's connection pool size
    aws_max_attempts: int = 3  # AWS_MAX_ATTEMPTS: botocore's total attempts, first try included
    aws_retry_mode: str = "standard"  # AWS_RETRY_MODE: botocore retry mode
    aws_connect_timeout_seconds: float = 5.0  # AWS_CONNECT_TIMEOUT_SECONDS
    aws_read_timeout_seconds: float = 30.0  # AWS_READ_TIMEOUT_SECONDS
    shutdown_grace_seconds: float = 10.0  # SHUTDOWN_GRACE_SECONDS: in-flight RPCs get this long
    # SHUTDOWN_DRAIN_SECONDS: on SIGTERM, health says NOT_SERVING this long before new RPCs are refused,
    # so that load balancers and Kubernetes endpoints stop sending first (5 s is typical in Kubernetes).
    shutdown_drain_seconds: float = 0.0
    # LOCAL_FAULTS: fault injection in the embedded emulator, as FaultConfig.parse reads it.
    local_faults: FaultConfig = dataclasses.field(default_factory=FaultConfig)
    log_level: str = "INFO"  # LOG_LEVEL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from environment variables; unset variables take the defaults above."""
        defaults = cls()
        backend_name = environ.get("AGENTCORE_BACKEND", defaults.backend.value).strip().lower()
        if backend_name not in {b.value for b in Backend}:
            raise SettingsError(f"AGENTCORE_BACKEND must be 'local' or 'aws', not {backend_name!r}")
        settings = cls(
            grpc_host=environ.get("GRPC_HOST", defaults.grpc_host),
            grpc_port=_port(environ, "GRPC_PORT", defaults.grpc_port),
            metrics_port=_port(environ, "METRICS_PORT", defaults.metrics_port),
            backend=Backend(backend_name),
            local_memory_ids=_memory_ids(environ, defaults.local_memory_ids),
            local_db_path=environ.get("LOCAL_DB_PATH", defaults.local_db_path),
            max_workers=_int(environ, "GRPC_MAX_WORKERS", defaults.max_workers, minimum=1),
            aws_max_attempts=_int(environ, "AWS_MAX_ATTEMPTS", defaults.aws_max_attempts, minimum=1),
            aws_retry_mode=environ.get("AWS_RETRY_MODE", defaults.aws_retry_mode),
            aws_connect_timeout_seconds=_seconds(
                environ, "AWS_CONNECT_TIMEOUT_SECONDS", defaults.aws_connect_timeout_seconds
            ),
            aws_read_timeout_seconds=_seconds(
                environ, "AWS_READ_TIMEOUT_SECONDS", defaults.aws_read_timeout_seconds
            ),
            shutdown_grace_seconds=_seconds(
                environ, "SHUTDOWN_GRACE_SECONDS", defaults.shutdown_grace_seconds, allow_zero=True
            ),
            shutdown_drain_seconds=_seconds(
                environ, "SHUTDOWN_DRAIN_SECONDS", defaults.shutdown_drain_seconds, allow_zero=True
            ),
            local_faults=_faults(environ),
            log_level=environ.get("LOG_LEVEL", defaults.log_level).upper(),
        )
        if settings.aws_retry_mode not in _RETRY_MODES:
            raise SettingsError(f"AWS_RETRY_MODE must be one of {', '.join(_RETRY_MODES)}")
        if settings.log_level not in logging.getLevelNamesMapping():
            raise SettingsError(f"LOG_LEVEL {settings.log_level!r} is not a logging level")
        return settings


def _int(
    environ: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None
) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise SettingsError(f"{name} must be at least {minimum}{upper}, not {value}")
    return value


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    return _int(environ, name, default, minimum=0, maximum=65535)


def _seconds(environ: Mapping[str, str], name: str, default: float, *, allow_zero: bool = False) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not math.isfinite(value) or not (value >= 0 if allow_zero else value > 0):
        raise SettingsError(f"{name} must be a finite number of seconds {'>= 0' if allow_zero else '> 0'}")
    return value


def _faults(environ: Mapping[str, str]) -> FaultConfig:
    try:
        return FaultConfig.parse(environ.get("LOCAL_FAULTS", ""))
    except ValueError as exc:
        raise SettingsError(f"LOCAL_FAULTS: {exc}") from None


def _memory_ids(environ: Mapping[str, str], default: tuple[str, ...]) -> tuple[str, ...]:
    raw = environ.get("LOCAL_MEMORY_IDS")
    if raw is None or raw.strip() == "":
        return default
    memory_ids = tuple(part.strip() for part in raw.split(",") if part.strip())
    for memory_id in memory_ids:
        if not _MEMORY_ID.fullmatch(memory_id):
            raise SettingsError(
                f"LOCAL_MEMORY_IDS: {memory_id!r} is not a memory id "
                "(letters, digits, '-' or '_', then '-' and 10 letters or digits)"
            )
    return memory_ids
