"""Every setting of the service, read from the environment and validated once at start.

Each field of `Settings` is declared once, by `setting()`: its environment variable, its default (as the
text one would set), its parser and its meaning. `from_env` and the table of docs/settings.md
(`docs_table`, written there by docs/tables.py) are both read off those declarations.

AWS settings that botocore already reads (credentials, region, endpoint, profile) are not repeated
here: in the `aws` backend, boto3's own default chain applies unchanged.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

T = TypeVar("T")

# A parser gets the variable's name (for its error messages) and its text; None means "blank: the
# default applies" (numbers and memory ids), so that `VAR=` in a compose file acts as unset.
Parser = Callable[[str, str], T | None]


class Backend(enum.StrEnum):
    """Where the boto3 client sends its requests."""

    LOCAL = "local"  # the embedded emulator, started in-process on a loopback port
    AWS = "aws"  # AWS itself, or whatever boto3's default chain points at


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


# `python -m service`'s exit code when the configuration is wrong (a setting, or AWS's): a restart of the
# same process cannot help.
EXIT_CONFIGURATION_ERROR = 2


@dataclasses.dataclass(frozen=True)
class Variable:
    """One environment variable, as declared by `setting()`."""

    name: str
    default: str  # the text that, set in the environment, gives the field's default ("" when none)
    parse: Parser[Any]
    meaning: str  # Markdown, as docs/settings.md shows it (links relative to docs/)

    @property
    def docs_row(self) -> str:
        shown = f"`{self.default}`" if self.default else "(none)"
        return f"| `{self.name}` | {shown} | {self.meaning} |"


_VARIABLE = "variable"  # key of a `Variable` in a Settings field's metadata


def setting(*, env: str, default: str, parse: Parser[T], meaning: str) -> T:
    """A Settings field read from the environment variable `env`; its default is `default` parsed. A
    blank default ("(none)" in the docs) may parse to None: the feature is off unless set."""
    value = parse(env, default)
    if value is None and default != "":
        raise ValueError(f"{env}: the default must not be blank")
    variable = Variable(name=env, default=default, parse=parse, meaning=meaning)
    return cast(T, dataclasses.field(default=value, metadata={_VARIABLE: variable}))


# --- parsers -----------------------------------------------------------------------------------------


def _whole_number(*, minimum: int, maximum: int | None = None) -> Parser[int]:
    def parse(name: str, raw: str) -> int | None:
        if raw.strip() == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise SettingsError(f"{name} must be at least {minimum}{upper}, not {value}")
        return value

    return parse


_port = _whole_number(minimum=0, maximum=65535)
# More processes than this would be a typo rather than a plan: each holds a boto3 client and grpc's pools.
MAX_WORKER_PROCESSES = 64


def _unless_blank(name: str, raw: str) -> str | None:
    """A path or a host; blank: not set. Whether a file is usable is checked where it is read, at start."""
    return raw.strip() or None


def _text(name: str, raw: str) -> str:
    """Text that another part parses where it is used (LOCAL_FAULTS, by the emulator)."""
    return raw.strip()


def _boolean(name: str, raw: str) -> bool | None:
    value = raw.strip().lower()
    if value == "":
        return None
    if value not in {"true", "false"}:
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
    return value == "true"


def _seconds(*, allow_zero: bool) -> Parser[float]:
    def parse(name: str, raw: str) -> float | None:
        if raw.strip() == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
        if not math.isfinite(value) or not (value >= 0 if allow_zero else value > 0):
            raise SettingsError(
                f"{name} must be a finite number of seconds {'>= 0' if allow_zero else '> 0'}"
            )
        return value

    return parse


def _backend(name: str, raw: str) -> Backend:
    value = raw.strip().lower()
    if value not in {backend.value for backend in Backend}:
        raise SettingsError(f"{name} must be {' or '.join(repr(b.value) for b in Backend)}, not {value!r}")
    return Backend(value)


def _memory_ids(name: str, raw: str) -> tuple[str, ...] | None:
    # Checked against the model's MemoryId where the emulator starts (runtime/local.py).
    memory_ids = tuple(part.strip() for part in raw.split(",") if part.strip())
    return memory_ids or None


_STORAGE_SCHEMES = ("memory://", "redis://", "rediss://")


def _rate_limit_storage(name: str, raw: str) -> str:
    uri = raw.strip()
    if not uri.startswith(_STORAGE_SCHEMES):
        raise SettingsError(f"{name} must start with {', '.join(_STORAGE_SCHEMES)}, not {uri!r}")
    return uri


def _rate_limit_failure(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"open", "closed"}:
        raise SettingsError(f"{name} must be open or closed, not {raw!r}")
    return value


_RETRY_MODES = ("standard", "adaptive", "legacy")


def _retry_mode(name: str, raw: str) -> str:
    if raw not in _RETRY_MODES:
        raise SettingsError(f"{name} must be one of {', '.join(_RETRY_MODES)}")
    return raw


def _log_level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in logging.getLevelNamesMapping():
        raise SettingsError(f"{name} {level!r} is not a logging level")
    return level


# The wire bytes of one batch record at AWS's limits, rounded up: 16,000 four-byte characters, 1,024-
# character namespaces (two in an update), 20 metadata entries of 128-character keys and five
# 64-character strings, ids and timestamps come to 75,641 (tests/service/test_batches.py measures it).
MAX_RECORD_BYTES = 80 * 1024
# What a batch request holds besides its records: memory id, client token, expiry.
ENVELOPE_BYTES = 64 * 1024
# gRPC's receive limit is an int32: 25,000 records of MAX_RECORD_BYTES stay well below it.
MAX_BATCH_RECORDS_LIMIT = 25_000


# --- the settings ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated settings; each field declares its environment variable with `setting()`.

    The declarations are alike in shape on purpose (a duplicate scan pairs them): each is the one place a
    setting's name, default, parser and meaning are written, and docs/settings.md is made from them."""

    grpc_host: str = setting(
        env="GRPC_HOST", default="[::]", parse=_unless_blank, meaning="the address the gRPC server listens on"
    )
    grpc_port: int = setting(
        env="GRPC_PORT", default="50051", parse=_port, meaning="the gRPC server's port (`0` = any free port)"
    )
    metrics_port: int = setting(
        env="METRICS_PORT",
        default="9464",
        parse=_port,
        meaning="Prometheus metrics at `/metrics`, on `METRICS_HOST` (`0` = any free port); "
        "see [Metrics](metrics.md)",
    )
    metrics_host: str | None = setting(
        env="METRICS_HOST",
        default="",
        parse=_unless_blank,
        meaning="the address the metrics endpoint listens on; unset: `GRPC_HOST`",
    )
    tls_cert_file: str | None = setting(
        env="TLS_CERT_FILE",
        default="",
        parse=_unless_blank,
        meaning="PEM certificate chain the gRPC port serves; with `TLS_KEY_FILE`, gRPC is served over TLS "
        "only. Re-read when it changes on disk (see [Security](security.md))",
    )
    tls_key_file: str | None = setting(
        env="TLS_KEY_FILE", default="", parse=_unless_blank, meaning="PEM private key of `TLS_CERT_FILE`"
    )
    tls_client_ca_file: str | None = setting(
        env="TLS_CLIENT_CA_FILE",
        default="",
        parse=_unless_blank,
        meaning="PEM CA certificates: turns on mutual TLS, every client must present a certificate they "
        "signed; the caller's identity comes from it",
    )
    metrics_tls_cert_file: str | None = setting(
        env="METRICS_TLS_CERT_FILE",
        default="",
        parse=_unless_blank,
        meaning="PEM certificate chain for `/metrics` over HTTPS (with `METRICS_TLS_KEY_FILE`); "
        "re-read when it changes",
    )
    metrics_tls_key_file: str | None = setting(
        env="METRICS_TLS_KEY_FILE",
        default="",
        parse=_unless_blank,
        meaning="PEM private key of `METRICS_TLS_CERT_FILE`",
    )
    health_port: int | None = setting(
        env="HEALTH_PORT",
        default="",
        parse=_port,
        meaning="a second port serving only `grpc.health.v1`, in plaintext, for probes that cannot speak "
        "mutual TLS (`0` = any free port); unset: none",
    )
    grpc_reflection: bool = setting(
        env="GRPC_REFLECTION",
        default="true",
        parse=_boolean,
        meaning="`false` turns gRPC server reflection off",
    )
    authz_policy_file: str | None = setting(
        env="AUTHZ_POLICY_FILE",
        default="",
        parse=_unless_blank,
        meaning="YAML (or JSON) policy of which caller may call which method on which memory and "
        "namespaces; re-read when it changes. Unset: every caller may do everything "
        "(see [Security](security.md))",
    )
    rate_limit_storage_uri: str = setting(
        env="RATE_LIMIT_STORAGE_URI",
        default="memory://",
        parse=_rate_limit_storage,
        meaning="where the counters of the policy's `limits` are kept: `memory://`, in each process "
        "(each worker and replica allows a caller its whole rate), or `redis://host:port/db` "
        "(`rediss://` with TLS), one Redis the replicas share (see [Overload](overload.md))",
    )
    rate_limit_storage_failure: str = setting(
        env="RATE_LIMIT_STORAGE_FAILURE",
        default="open",
        parse=_rate_limit_failure,
        meaning="when that storage fails (Redis unreachable): `open` lets RPCs through unlimited, "
        "`closed` refuses them (`UNAVAILABLE`, `RATE_LIMIT_STORAGE_UNAVAILABLE`)",
    )
    upstream_rate_limits: str = setting(
        env="UPSTREAM_RATE_LIMITS",
        default="",
        parse=_text,
        meaning="the most AWS calls a second per operation for every replica together, e.g. "
        "`BatchUpdateMemoryRecords=20,GetMemoryRecord=50`; each attempt takes one (retries too) and "
        "waits for it within its deadline, or is refused `RESOURCE_EXHAUSTED` (`UPSTREAM_RATE_LIMITED`). "
        "Counted in `RATE_LIMIT_STORAGE_URI` (see [Overload](overload.md)). Unset: none",
    )
    # RUF009 is silenced: it guards against shared mutable defaults, and an enum member cannot change.
    backend: Backend = setting(  # noqa: RUF009
        env="AGENTCORE_BACKEND",
        default=Backend.LOCAL.value,
        parse=_backend,
        meaning="`local`: start the emulator in-process on a loopback port and point boto3 at it "
        "(dummy credentials; requests are still signed). "
        "`aws`: boto3's default chain decides credentials, region and endpoint.",
    )
    local_memory_ids: tuple[str, ...] | None = setting(
        env="LOCAL_MEMORY_IDS",
        default="",
        parse=_memory_ids,
        meaning="comma-separated memories the emulator knows; any other id answers "
        "`ResourceNotFoundException`, like AWS. Unset: the emulator's one default memory, "
        "named in the start line's `localMemoryIds`",
    )
    local_db_path: str = setting(
        env="LOCAL_DB_PATH",
        default=":memory:",
        parse=_unless_blank,
        meaning="the emulator's SQLite file; a restart with the same file keeps the records",
    )
    max_workers: int = setting(
        env="GRPC_MAX_WORKERS",
        default="16",
        parse=_whole_number(minimum=1),
        meaning="RPCs that call AWS at once; boto3's connection pool is as large. Admitted RPCs beyond "
        "it wait for a turn (see [Overload](overload.md))",
    )
    workers: int = setting(
        env="WORKERS",
        default="1",
        parse=_whole_number(minimum=1, maximum=MAX_WORKER_PROCESSES),
        meaning="serving processes sharing `GRPC_PORT`; above 1 a supervisor starts them, restarts any "
        "that dies, serves their merged metrics on `METRICS_PORT`, and (local backend) runs the one "
        "emulator they all use (see [Worker processes](workers.md))",
    )
    max_concurrent_rpcs: int = setting(
        env="MAX_CONCURRENT_RPCS",
        default="0",
        parse=_whole_number(minimum=0),
        meaning="RPCs admitted at once, running or waiting; beyond it an RPC is refused at once with "
        "`RESOURCE_EXHAUSTED` (`SERVER_OVERLOADED`). `0`: 4 x `GRPC_MAX_WORKERS` (64 by default), enough "
        "to absorb a burst while the last in line still has most of a typical deadline left "
        "(see [Overload](overload.md))",
    )
    max_inflight_bytes: int = setting(
        env="MAX_INFLIGHT_BYTES",
        default="0",
        parse=_whole_number(minimum=0),
        meaning="request bytes held by admitted RPCs; beyond it an RPC is refused like above. A single RPC "
        "is always admitted when nothing else is. `0`: twice the largest batch `MAX_BATCH_RECORDS` allows "
        "(about 156 MiB by default). A smaller value also lowers the receive limit to it "
        "(see [Batches](batches-and-retries.md))",
    )
    max_concurrent_streams: int = setting(
        env="GRPC_MAX_CONCURRENT_STREAMS",
        default="200",
        parse=_whole_number(minimum=1),
        meaning="streams (RPCs in flight) one connection may open, advertised to clients as HTTP/2's "
        "`SETTINGS_MAX_CONCURRENT_STREAMS`; a client queues its RPCs beyond it. grpc counts a stream until "
        "the service has let it go, so this bounds what a rapid reset can queue on one connection (Checks "
        "on the attacked port: p99 160-290 ms at 1000, 77-100 ms at 200), and a client at the limit may "
        "have a stream refused (`REFUSED_STREAM`: Go and Java retry it on their own, grpc's C core answers "
        "`UNAVAILABLE`; at 100, 150 Python callers on one channel saw it 14% of the time)",
    )
    max_connections: int = setting(
        env="GRPC_MAX_CONNECTIONS",
        default="4096",
        parse=_whole_number(minimum=1),
        meaning="open connections to the gRPC port (and to `HEALTH_PORT`); beyond it new ones are "
        "refused until one closes. An idle connection costs about 10 KiB, so the default bounds them at "
        "tens of MiB, well above one connection per calling pod of a large account",
    )
    request_read_timeout_seconds: float = setting(
        env="REQUEST_READ_TIMEOUT_SECONDS",
        default="10",
        parse=_seconds(allow_zero=False),
        meaning="how long an RPC may take to deliver its request message once it has started (apart from "
        "its own deadline); a stream past it is reset with `DEADLINE_EXCEEDED` (`REQUEST_READ_TIMEOUT`) "
        "and counted. The largest batch takes about 6 s at 100 Mbit/s",
    )
    max_batch_records: int = setting(
        env="MAX_BATCH_RECORDS",
        default="1000",
        parse=_whole_number(minimum=1, maximum=MAX_BATCH_RECORDS_LIMIT),
        meaning="the most records one BatchCreate, BatchUpdate or BatchDelete takes; the facade sends them "
        "to AWS in calls of at most 100. The server's receive limit is this many records at AWS's "
        f"per-record limits ({MAX_RECORD_BYTES // 1024} KiB each, plus {ENVELOPE_BYTES // 1024} KiB) "
        "(see [Batches](batches-and-retries.md))",
    )
    batch_concurrency: int = setting(
        env="BATCH_CONCURRENCY",
        default="4",
        parse=_whole_number(minimum=1, maximum=100),
        meaning="the AWS calls of one batch RPC in flight at once; each also waits for one of the "
        "`GRPC_MAX_WORKERS` turns",
    )
    default_deadline_seconds: float = setting(
        env="DEFAULT_DEADLINE_SECONDS",
        default="60",
        parse=_seconds(allow_zero=False),
        meaning="the deadline of an RPC that arrives without one, so that no handler waits on AWS "
        "without limit",
    )
    aws_max_attempts: int = setting(
        env="AWS_MAX_ATTEMPTS",
        default="3",
        parse=_whole_number(minimum=1),
        meaning="botocore's attempts per call, the first included "
        "(same name and meaning as botocore's own variable)",
    )
    aws_retry_mode: str = setting(
        env="AWS_RETRY_MODE",
        default="standard",
        parse=_retry_mode,
        meaning=f"botocore's retry mode, one of {', '.join(f'`{mode}`' for mode in _RETRY_MODES)} "
        "(same name and meaning as botocore's own variable)",
    )
    aws_connect_timeout_seconds: float = setting(
        env="AWS_CONNECT_TIMEOUT_SECONDS",
        default="5",
        parse=_seconds(allow_zero=False),
        meaning="botocore's connect timeout, per attempt",
    )
    aws_read_timeout_seconds: float = setting(
        env="AWS_READ_TIMEOUT_SECONDS",
        default="30",
        parse=_seconds(allow_zero=False),
        meaning="botocore's read timeout: the longest wait for each read of a reply "
        "(`AWS_ATTEMPT_TIMEOUT_SECONDS` bounds the whole attempt)",
    )
    aws_attempt_timeout_seconds: float = setting(
        env="AWS_ATTEMPT_TIMEOUT_SECONDS",
        default="10",
        parse=_seconds(allow_zero=False),
        meaning="the total time of one attempt to AWS: connect, send and the whole reply, however AWS "
        "trickles it. A longer attempt is cut and retried as botocore would retry a read timeout, else "
        "fails `UNAVAILABLE` (`AWS_TIMEOUT`); a turn held longer is stuck (see [Overload](overload.md)). "
        "10 s: AWS's data plane answers in well under a second, and `AWS_MAX_ATTEMPTS` (3) attempts "
        "with their back-off fit in `DEFAULT_DEADLINE_SECONDS` (60)",
    )
    shutdown_grace_seconds: float = setting(
        env="SHUTDOWN_GRACE_SECONDS",
        default="10",
        parse=_seconds(allow_zero=True),
        meaning="after the drain (`SHUTDOWN_DRAIN_SECONDS`), in-flight RPCs get this long",
    )
    shutdown_drain_seconds: float = setting(
        env="SHUTDOWN_DRAIN_SECONDS",
        default="0",
        parse=_seconds(allow_zero=True),
        meaning="on SIGTERM, health turns NOT_SERVING and new RPCs are still served this long "
        "(5 s suits Kubernetes)",
    )
    local_faults: str = setting(
        env="LOCAL_FAULTS",
        default="",
        parse=_text,
        meaning="fault injection in the embedded emulator, e.g. "
        "`rate_limit=50,latency=0.2,drop=0.01,ServiceException=0.05` "
        "(see [Fault injection](emulator.md#fault-injection))",
    )
    log_level: str = setting(
        env="LOG_LEVEL",
        default="INFO",
        parse=_log_level,
        meaning="JSON logs on stderr; record text is never logged",
    )

    def __post_init__(self) -> None:
        pairs = (
            ("TLS_CERT_FILE", self.tls_cert_file, "TLS_KEY_FILE", self.tls_key_file),
            (
                "METRICS_TLS_CERT_FILE",
                self.metrics_tls_cert_file,
                "METRICS_TLS_KEY_FILE",
                self.metrics_tls_key_file,
            ),
        )
        for cert_name, cert_file, key_name, key_file in pairs:
            if (cert_file is None) != (key_file is None):
                raise SettingsError(f"{cert_name} and {key_name} must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise SettingsError("TLS_CLIENT_CA_FILE (mutual TLS) needs TLS_CERT_FILE and TLS_KEY_FILE")

    @property
    def metrics_listen_host(self) -> str:
        """METRICS_HOST, or GRPC_HOST when it is unset."""
        return self.metrics_host or self.grpc_host

    @property
    def max_request_bytes(self) -> int:
        """The server's receive limit: a batch of MAX_BATCH_RECORDS records at AWS's per-record limits,
        within the admission byte budget (a request alone is always admitted, so the budget bounds it)."""
        largest_batch = self.max_batch_records * MAX_RECORD_BYTES + ENVELOPE_BYTES
        return min(largest_batch, self.max_inflight_bytes) if self.max_inflight_bytes else largest_batch

    @property
    def inflight_bytes(self) -> int:
        """MAX_INFLIGHT_BYTES, or its default: twice the largest batch."""
        return self.max_inflight_bytes or 2 * self.max_request_bytes

    @property
    def admitted_rpcs(self) -> int:
        """MAX_CONCURRENT_RPCS, or its default: 4 x GRPC_MAX_WORKERS."""
        return self.max_concurrent_rpcs or 4 * self.max_workers

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from environment variables; an unset variable (or a blank number or memory id list)
        takes the declared default."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            variable = _variable(field)
            raw = environ.get(variable.name)
            value = None if raw is None else variable.parse(variable.name, raw)
            if value is not None:
                values[field.name] = value
        return cls(**values)


def _variable(field: dataclasses.Field[Any]) -> Variable:
    variable: Variable = field.metadata[_VARIABLE]
    return variable


def variables() -> tuple[Variable, ...]:
    """Every environment variable of `Settings`, in declaration order."""
    return tuple(_variable(field) for field in dataclasses.fields(Settings))


def docs_table() -> str:
    """The settings table of docs/settings.md, one row per variable."""
    rows = ["| variable | default | meaning |", "|---|---|---|", *(v.docs_row for v in variables())]
    return "\n".join(rows) + "\n"
