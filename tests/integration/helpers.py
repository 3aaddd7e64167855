"""What only the integration tests use: records with every field set, a ledger of uncertain updates,
the rich details a client received, a metric of an in-process facade, a process's RSS (current and
peak) from /proc, the Prometheus tools, and mutual TLS for another language's client tests."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from grpc_status import rpc_status

from tests.certs import Authority
from tests.helpers import RunningService, record_create, status_details, timestamp

UNKNOWN_MEMORY_ID = "unknown_memory-0123456789"


@dataclasses.dataclass
class Ledger:
    """What one record may hold after updates whose outcome a client could not know (an RPC that failed,
    or never answered): its last acknowledged content, or one of those sent after it."""

    acknowledged: str
    uncertain: list[str] = dataclasses.field(default_factory=list)

    def allowed(self) -> set[str]:
        return {self.acknowledged, *self.uncertain}


def metadata_of_every_kind() -> dict[str, pb.MetadataValue]:
    """One metadata value of each kind the API has."""
    return {
        "topic": pb.MetadataValue(string_value="drinks"),
        "tags": pb.MetadataValue(string_list_value=pb.StringList(values=["tea", "green"])),
        "weight": pb.MetadataValue(number_value=0.75),
        "seen": pb.MetadataValue(date_time_value=timestamp(1_700_000_000, 5_000)),
    }


def full_record_create(text: str = "likes green tea") -> pb.MemoryRecordCreate:
    """A record to create with every field set."""
    return record_create(
        text,
        timestamp=timestamp(1_732_560_000, 123_456_000),
        memory_strategy_id="manual",
        metadata=metadata_of_every_kind(),
    )


def details_of(error: grpc.RpcError) -> dict[type[Any], Any]:
    """The details a client received with `error` (status_details of its trailers)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status in the trailers"
    assert status.code == error.code().value[0]  # type: ignore[attr-defined]
    return status_details(status)


def sample(service: RunningService, name: str, **labels: str) -> float:
    """A metric of an in-process service; 0 when the series does not exist yet."""
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


def _status_bytes(pid: int, field: str) -> int:
    """A size in /proc/`pid`/status (reported in kB), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def rss_bytes(pid: int) -> int:
    """The process's resident set size now."""
    return _status_bytes(pid, "VmRSS")


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size so far."""
    return _status_bytes(pid, "VmHWM")


def debian_tool(name: str, package: str = "prometheus") -> str:
    """The path of a program of Debian's (`prometheus` or `promtool` of the prometheus package,
    `redis-server`...). Missing: a skip on a developer's machine, a failure in CI, where make test
    installs the package."""
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed: make test installs Debian's {package} package, which has it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def admitting_one_caller(directory: Path, admitted: str, other: str) -> dict[str, str]:
    """Mutual TLS for another language's client tests, written into `directory`: a CA (ca.crt), the
    server's pair (tls.crt, tls.key), the admitted caller's (client.*) and another caller's of the same
    CA (other.*), and a policy (policy.yaml) that admits the SPIFFE ID `admitted` alone, so that a served
    call shows that the server saw that identity. The facade's settings for it."""
    authority = Authority()
    authority.issue(server=True, common_name="facade").write(directory / "tls.crt", directory / "tls.key")
    authority.issue(spiffe_id=admitted).write(directory / "client.crt", directory / "client.key")
    authority.issue(spiffe_id=other).write(directory / "other.crt", directory / "other.key")
    (directory / "ca.crt").write_bytes(authority.cert_pem)
    policy = directory / "policy.yaml"
    policy.write_text(
        f'rules: [{{name: admitted, principals: ["{admitted}"], methods: ["*"], memories: ["*"]}}]\n'
    )
    return {
        "TLS_CERT_FILE": str(directory / "tls.crt"),
        "TLS_KEY_FILE": str(directory / "tls.key"),
        "TLS_CLIENT_CA_FILE": str(directory / "ca.crt"),
        "AUTHZ_POLICY_FILE": str(policy),
    }
