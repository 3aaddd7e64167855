"""settings.py: defaults, every variable, a clear error naming the variable, and the README table."""

from __future__ import annotations

import pytest

from service.settings import Backend, Settings, SettingsError, readme_table, variables
from tests.helpers import ROOT

REGENERATE = (
    "README.md's settings table is not what service/settings.py declares; replace it with the output of\n"
    "  python -c 'import service.settings as s; print(s.readme_table(), end=\"\")'"
)


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.grpc_port == 50051
    assert settings.metrics_port == 9464
    assert settings.backend is Backend.LOCAL
    assert settings.local_memory_ids is None  # the emulator's default (service/runtime/local.py)
    assert settings.aws_retry_mode == "standard"
    assert settings.workers == 1


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
            "WORKERS": "3",
            "AWS_MAX_ATTEMPTS": "5",
            "AWS_RETRY_MODE": "adaptive",
            "AWS_CONNECT_TIMEOUT_SECONDS": "0.5",
            "AWS_READ_TIMEOUT_SECONDS": "12",
            "SHUTDOWN_GRACE_SECONDS": "0",
            "SHUTDOWN_DRAIN_SECONDS": "5",
            "LOCAL_FAULTS": "rate_limit=5",
            "LOG_LEVEL": "debug",
            "METRICS_HOST": "127.0.0.2",
            "TLS_CERT_FILE": "/tls/tls.crt",
            "TLS_KEY_FILE": "/tls/tls.key",
            "TLS_CLIENT_CA_FILE": "/tls/ca.crt",
            "METRICS_TLS_CERT_FILE": "/m/tls.crt",
            "METRICS_TLS_KEY_FILE": "/m/tls.key",
            "HEALTH_PORT": "8086",
            "GRPC_REFLECTION": "False",
            "AUTHZ_POLICY_FILE": "/authz/policy.yaml",
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
        workers=3,
        aws_max_attempts=5,
        aws_retry_mode="adaptive",
        aws_connect_timeout_seconds=0.5,
        aws_read_timeout_seconds=12.0,
        shutdown_grace_seconds=0.0,
        shutdown_drain_seconds=5.0,
        local_faults="rate_limit=5",
        log_level="DEBUG",
        metrics_host="127.0.0.2",
        tls_cert_file="/tls/tls.crt",
        tls_key_file="/tls/tls.key",
        tls_client_ca_file="/tls/ca.crt",
        metrics_tls_cert_file="/m/tls.crt",
        metrics_tls_key_file="/m/tls.key",
        health_port=8086,
        grpc_reflection=False,
        authz_policy_file="/authz/policy.yaml",
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
        ("WORKERS", "0"),
        ("WORKERS", "65"),
        ("WORKERS", "two"),
        ("AWS_MAX_ATTEMPTS", "0"),
        ("AWS_RETRY_MODE", "eager"),
        ("AWS_READ_TIMEOUT_SECONDS", "0"),
        ("AWS_CONNECT_TIMEOUT_SECONDS", "nan"),
        ("SHUTDOWN_GRACE_SECONDS", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("SHUTDOWN_DRAIN_SECONDS", "soon"),
        ("HEALTH_PORT", "probe"),
        ("GRPC_REFLECTION", "yes"),
        ("TLS_CERT_FILE", "/tls/tls.crt"),  # without its key
        ("METRICS_TLS_KEY_FILE", "/m/tls.key"),  # without its certificate
        ("TLS_CLIENT_CA_FILE", "/tls/ca.crt"),  # mutual TLS without TLS
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_security_features_are_off_unless_set() -> None:
    settings = Settings.from_env({"HEALTH_PORT": "", "TLS_CERT_FILE": " ", "GRPC_HOST": "10.0.0.1"})
    assert (
        settings.health_port is None and settings.tls_cert_file is None and settings.authz_policy_file is None
    )
    assert settings.grpc_reflection is True
    assert settings.metrics_listen_host == "10.0.0.1"


def test_blank_numbers_and_memory_ids_take_the_default() -> None:
    blank = {"GRPC_PORT": "", "AWS_READ_TIMEOUT_SECONDS": " ", "LOCAL_MEMORY_IDS": ""}
    assert Settings.from_env(blank) == Settings()


def readme_settings_rows() -> list[str]:
    """The rows of the README's "Settings (environment variables)" table, header included."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Settings (environment variables)\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_readme_lists_exactly_the_declared_variables_with_their_defaults() -> None:
    declared = [variable.name for variable in variables()]
    assert len(declared) == len(set(declared)), "a variable is declared twice"
    listed: list[tuple[str, str]] = []
    for row in readme_settings_rows()[2:]:
        name, default = (cell.strip() for cell in row.split("|")[1:3])
        listed.append((name.strip("`"), "" if default == "(none)" else default.strip("`")))
    assert sorted(name for name, _ in listed) == sorted(declared), REGENERATE
    assert dict(listed) == {v.name: v.default for v in variables()}, REGENERATE


def test_readme_table_is_the_rendering_of_the_declarations() -> None:
    assert "\n".join(readme_settings_rows()) + "\n" == readme_table(), REGENERATE


def test_a_blank_host_or_path_is_its_default() -> None:
    settings = Settings.from_env({"GRPC_HOST": " ", "LOCAL_DB_PATH": ""})
    assert (settings.grpc_host, settings.local_db_path) == ("[::]", ":memory:")
