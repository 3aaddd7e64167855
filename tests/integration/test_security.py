"""TLS, mutual TLS, rotation, caller identity and the authorization policy, over real sockets: the
facade with certificates the tests made, in front of the emulator through boto3."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from emulator import Emulator
from service.runtime.server import create_server, serve
from service.settings import Backend, Settings
from service.telemetry.metrics import Metrics
from service.upstream import aws
from tests.certs import SERVER_NAME, Authority, channel_credentials, secure_channel
from tests.helpers import (
    MEMORY_ID,
    ROOT,
    UNKNOWN_RECORD_ID,
    create_one,
    emulator_client,
    free_port,
    get_record,
    record_create,
    service_env,
    service_process,
    settings_for_tests,
    timestamp,
)
from tests.integration.helpers import details_of

CHAT = "spiffe://cluster.local/ns/chat/sa/chat-api"
READER = "spiffe://cluster.local/ns/search/sa/reader"
POLICY = f"""
rules:
  - name: chat-service
    principals: ["spiffe://cluster.local/ns/chat/sa/*"]
    methods: ["BatchCreate", "BatchUpdate", "Get", "Delete", "BatchDelete", "List", "Retrieve"]
    memories: ["{MEMORY_ID}"]
    namespaces: ["chat/"]
  - name: chat-search
    principals: ["{READER}"]
    methods: ["List", "Retrieve"]
    memories: ["{MEMORY_ID}"]
    namespaces: ["chat/"]
"""


class Files:
    """The PEM files of one test: the server's pair and the client CA."""

    def __init__(self, folder: Path, authority: Authority) -> None:
        self.cert, self.key, self.ca = folder / "tls.crt", folder / "tls.key", folder / "ca.crt"
        self.ca.write_bytes(authority.cert_pem)
        self.server = authority.issue(server=True, common_name="facade")
        self.server.write(self.cert, self.key)


@pytest.fixture
def authority() -> Authority:
    return Authority()


@pytest.fixture
def files(tmp_path: Path, authority: Authority) -> Files:
    return Files(tmp_path, authority)


@contextlib.contextmanager
def facade(settings: Settings, emulator: Emulator) -> Iterator[tuple[int, Metrics]]:
    metrics = Metrics(backend="local")
    client = aws.create_client(settings, endpoint_url=emulator.endpoint_url)
    server, port = create_server(settings, client, metrics=metrics)
    server.start()
    try:
        yield port, metrics
    finally:
        server.stop(None).wait(5)


def tls_settings(files: Files, *, mutual: bool = True, **overrides: Any) -> Settings:
    return settings_for_tests(
        backend=Backend.LOCAL,
        tls_cert_file=str(files.cert),
        tls_key_file=str(files.key),
        tls_client_ca_file=str(files.ca) if mutual else None,
        **overrides,
    )


def served_serial(port: int, authority: Authority, client: Any = None) -> int:
    """The serial number of the certificate a new TLS connection to `port` is served."""
    context = ssl.create_default_context(cadata=authority.cert_pem.decode())
    context.set_alpn_protocols(["h2"])
    if client is not None:
        context.load_cert_chain(*client)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as connection,
    ):
        der = connection.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def health_check(channel: grpc.Channel) -> int:
    response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(response.status)


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    value: float | None = metrics.registry.get_sample_value(name, labels)
    return value


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "service.rpc" and r.__dict__.get("method", "").endswith("/Get")
    ]


# --- TLS and mutual TLS ----------------------------------------------------------------------------


def test_tls_serves_and_the_caller_is_anonymous(
    files: Files, authority: Authority, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with facade(tls_settings(files, mutual=False), emulator) as (port, _), caplog.at_level(logging.INFO):
        with secure_channel(port, channel_credentials(authority)) as channel:
            assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as missing:
                pb_grpc.MemoryRecordsServiceStub(channel).Get(
                    pb.GetRequest(memory_id=MEMORY_ID, memory_record_id="mem-" + "0" * 36), timeout=5
                )
            assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        with grpc.insecure_channel(f"127.0.0.1:{port}") as plaintext, pytest.raises(grpc.RpcError):
            health_check(plaintext)
    (line,) = access_lines(caplog)
    assert line.__dict__["caller"] == "anonymous"


def test_mutual_tls_refuses_clients_without_a_certificate_or_from_another_ca(
    files: Files, authority: Authority, emulator: Emulator
) -> None:
    stranger = Authority("another CA").issue(spiffe_id=CHAT)
    with facade(tls_settings(files), emulator) as (port, _):
        for credentials in (channel_credentials(authority), channel_credentials(authority, stranger)):
            with secure_channel(port, credentials) as channel, pytest.raises(grpc.RpcError) as refused:
                health_check(channel)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        with secure_channel(port, channel_credentials(authority, authority.issue(spiffe_id=CHAT))) as channel:
            assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("client", "identity"),
    [
        ({"spiffe_id": CHAT, "dns": ("chat.example",), "common_name": "chat"}, CHAT),
        ({"dns": ("b.example", "a.example"), "common_name": "chat"}, "b.example"),
        ({"common_name": "chat-cn"}, "chat-cn"),
    ],
)
def test_the_callers_identity_is_its_spiffe_id_else_first_dns_san_else_cn_in_the_log_line_only(
    files: Files,
    authority: Authority,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    client: dict[str, Any],
    identity: str,
) -> None:
    with facade(tls_settings(files), emulator) as (port, metrics), caplog.at_level(logging.INFO):
        credentials = channel_credentials(authority, authority.issue(**client))
        with secure_channel(port, credentials) as channel, pytest.raises(grpc.RpcError):
            pb_grpc.MemoryRecordsServiceStub(channel).Get(pb.GetRequest(memory_id=MEMORY_ID), timeout=5)
        exposition = metrics.registry.collect()
        labels = {value for family in exposition for s in family.samples for value in s.labels.values()}
    (line,) = access_lines(caplog)
    assert line.__dict__["caller"] == identity
    assert identity not in labels


# Certificates that name their caller in a way the service refuses; grpc completes the handshake with
# each (its own properties cut the NUL: `spiffe://example.org/alice`). `evil` must never be logged.
ALICE = "spiffe://example.org/alice"
AMBIGUOUS_CERTIFICATES = [
    pytest.param({"spiffe_id": ALICE + "\x00evil"}, "control_character", id="nul-in-spiffe-id"),
    pytest.param({"dns": ("alice\x01evil.example",)}, "control_character", id="control-in-dns-san"),
    pytest.param({"common_name": "alice\x1bevil"}, "control_character", id="control-in-cn"),
    pytest.param(
        {"spiffe_id": ALICE, "uris": ("spiffe://example.org/evil",)},
        "several_spiffe_ids",
        id="two-spiffe-ids",
    ),
]


def identity_refusals(metrics: Metrics) -> dict[str, float | None]:
    return {
        reason: sample(metrics, "agentcore_caller_identity_refusals_total", reason=reason)
        for reason in ("control_character", "several_spiffe_ids", "no_identity", "unreadable_certificate")
    }


@pytest.mark.parametrize(("client", "reason"), AMBIGUOUS_CERTIFICATES)
def test_a_certificate_naming_its_caller_ambiguously_is_refused_before_aws_logged_and_counted(
    files: Files,
    authority: Authority,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    client: dict[str, Any],
    reason: str,
) -> None:
    requests = [
        ("Get", pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)),
        ("BatchCreate", pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create()])),
    ]
    with facade(tls_settings(files), emulator) as (port, metrics), caplog.at_level(logging.INFO):
        emulator.clear_received()
        ambiguous = authority.issue(**client)
        sha256 = x509.load_pem_x509_certificate(ambiguous.cert_pem).fingerprint(hashes.SHA256()).hex()
        with secure_channel(port, channel_credentials(authority, ambiguous)) as channel:
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            for method, request in requests:
                with pytest.raises(grpc.RpcError) as refused:
                    getattr(stub, method)(request, timeout=5)
                assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
                info = details_of(refused.value)[error_details_pb2.ErrorInfo]
                assert (info.reason, info.metadata["certificateSha256"]) == (
                    "CALLER_IDENTITY_INVALID",
                    sha256,
                )
                assert (refused.value.details() or "").startswith(
                    "the client certificate's identity is refused: "
                )
                assert "evil" not in (refused.value.details() or "")
            # Health and reflection are not refused: no AWS call and no record is behind them.
            assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
        assert emulator.received() == []
        assert identity_refusals(metrics) == {
            counted: 2.0 if counted == reason else 0.0 for counted in identity_refusals(metrics)
        }

        # A good certificate, on the same server: served, and AWS called.
        with secure_channel(
            port, channel_credentials(authority, authority.issue(spiffe_id=ALICE))
        ) as channel:
            created = pb_grpc.MemoryRecordsServiceStub(channel).BatchCreate(requests[1][1], timeout=10)
        assert len(created.successful_records) == 1
        assert [entry.operation for entry in emulator.received()] == ["BatchCreateMemoryRecords"]
        assert sum(value or 0 for value in identity_refusals(metrics).values()) == 2

    audit = [r for r in caplog.records if r.name == "service.audit"]
    assert [(r.levelno, r.getMessage(), r.__dict__["reason"]) for r in audit] == [
        (logging.WARNING, "caller identity refused", reason)
    ] * 2
    assert {r.__dict__["certificateSerial"] for r in audit} == {f"{ambiguous.serial:x}"}
    refused_lines = [
        r for r in caplog.records if r.name == "service.rpc" and "callerIdentityRefused" in r.__dict__
    ]
    assert [r.__dict__["callerIdentityRefused"] for r in refused_lines] == [reason] * 2
    assert all("caller" not in r.__dict__ for r in refused_lines)
    for record in caplog.records:
        assert "evil" not in record.getMessage()
        assert not any("evil" in str(value) for value in record.__dict__.values())


def test_a_policy_never_sees_a_cut_identity(
    files: Files, authority: Authority, emulator: Emulator, tmp_path: Path
) -> None:
    policy = tmp_path / "alice.yaml"
    policy.write_text(f'rules: [{{name: alice, principals: ["{ALICE}"], methods: ["*"], memories: ["*"]}}]')
    with facade(tls_settings(files, authz_policy_file=str(policy)), emulator) as (port, metrics):
        emulator.clear_received()
        for spiffe_id, code in (
            (ALICE + "\x00evil", grpc.StatusCode.PERMISSION_DENIED),  # grpc core reads it as ALICE
            (ALICE, grpc.StatusCode.NOT_FOUND),  # allowed, and AWS does not know the record
        ):
            with secure_channel(
                port, channel_credentials(authority, authority.issue(spiffe_id=spiffe_id))
            ) as channel:
                with pytest.raises(grpc.RpcError) as failed:
                    pb_grpc.MemoryRecordsServiceStub(channel).Get(
                        pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID), timeout=5
                    )
                assert failed.value.code() is code
        assert [entry.operation for entry in emulator.received()] == ["GetMemoryRecord"]
        # Refused before the policy judged it: one decision, the good certificate's.
        assert sample(metrics, "agentcore_authz_decisions_total", decision="allow") == 1
        assert sample(metrics, "agentcore_authz_decisions_total", decision="deny") == 0
        assert sample(metrics, "agentcore_caller_identity_refusals_total", reason="control_character") == 1


def test_rotated_files_reach_new_connections_and_open_ones_keep_working(
    files: Files, authority: Authority, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    client = authority.issue(spiffe_id=CHAT)
    client_files = (files.cert.parent / "client.crt", files.cert.parent / "client.key")
    client.write(*client_files)
    with facade(tls_settings(files), emulator) as (port, metrics):
        assert served_serial(port, authority, client_files) == files.server.serial
        channel = secure_channel(port, channel_credentials(authority, client))
        assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
        expiry = sample(metrics, "agentcore_tls_certificate_expiry_seconds", listener="grpc")
        assert expiry is not None and 9 * 86400 < expiry <= 10 * 86400

        rotated = authority.issue(server=True, common_name="facade", days=20)
        rotated.write(files.cert, files.key)
        assert served_serial(port, authority, client_files) == rotated.serial  # no restart
        assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING  # the open connection
        expiry = sample(metrics, "agentcore_tls_certificate_expiry_seconds", listener="grpc")
        assert expiry is not None and expiry > 19 * 86400
        assert sample(metrics, "agentcore_config_reloads_total", config="tls", outcome="success") == 1

        # A broken replacement: a key that is not the certificate's. The last good pair stays.
        with caplog.at_level(logging.ERROR, logger="service.security.tls"):
            files.key.write_bytes(authority.issue(server=True).key_pem)
            assert served_serial(port, authority, client_files) == rotated.serial
            assert served_serial(port, authority, client_files) == rotated.serial
        assert sample(metrics, "agentcore_config_last_reload_successful", config="tls") == 0
        assert sample(metrics, "agentcore_config_reloads_total", config="tls", outcome="failure") == 1
        (line,) = [r for r in caplog.records if r.name == "service.security.tls"]
        assert "last good certificate stays" in line.getMessage()
        assert line.__dict__["problem"].endswith(f"is not the key of the certificate in {files.cert}")

        # Fixed: the next handshake picks the new pair up.
        fixed = authority.issue(server=True, common_name="facade")
        fixed.write(files.cert, files.key)
        assert served_serial(port, authority, client_files) == fixed.serial
        assert sample(metrics, "agentcore_config_last_reload_successful", config="tls") == 1
        assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
        channel.close()


# --- the authorization policy, end to end ---------------------------------------------------------


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def stub_for(port: int, authority: Authority, spiffe_id: str) -> pb_grpc.MemoryRecordsServiceStub:
    channel = secure_channel(port, channel_credentials(authority, authority.issue(spiffe_id=spiffe_id)))
    return pb_grpc.MemoryRecordsServiceStub(channel)


def aws_calls(metrics: Metrics, operation: str) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for s in family.samples:
            if (
                s.name == "agentcore_upstream_request_duration_seconds_count"
                and s.labels["operation"] == operation
            ):
                total += s.value
    return total


def test_the_policy_end_to_end(
    files: Files,
    authority: Authority,
    emulator: Emulator,
    policy_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    aws_client = emulator_client(emulator.endpoint_url)
    mine = create_one(aws_client, namespaces=["chat/alice"])
    theirs = create_one(aws_client, namespaces=["billing/alice"])
    settings = tls_settings(files, authz_policy_file=str(policy_path))
    now = timestamp(int(time.time()))
    with facade(settings, emulator) as (port, metrics), caplog.at_level(logging.INFO):
        chat = stub_for(port, authority, CHAT)

        # BatchCreate: the record in another namespace fails on its own; the other is created.
        created = chat.BatchCreate(
            pb.BatchCreateRequest(
                memory_id=MEMORY_ID,
                records=[
                    record_create(request_identifier="ok", namespaces=["chat/bob"]),
                    record_create(request_identifier="out", namespaces=["billing/bob"]),
                ],
            ),
            timeout=10,
        )
        assert [r.request_identifier for r in created.successful_records] == ["ok"]
        assert [(r.request_identifier, r.error_code) for r in created.failed_records] == [("out", 403)]

        # BatchUpdate: a record owned by another namespace, inside an otherwise allowed batch, is left
        # untouched, whether the caller names its own namespace (AWS refuses the record) or another one
        # (the facade refuses it), or names none.
        def change(record_id: str, source: list[str] | None) -> pb.MemoryRecordUpdate:
            record = pb.MemoryRecordUpdate(
                memory_record_id=record_id, timestamp=now, content=pb.MemoryContent(text="overwritten")
            )
            if source is not None:
                record.source_namespaces.values.extend(source)
            return record

        for source in (["chat/alice"], ["billing/alice"], None):
            updated = chat.BatchUpdate(
                pb.BatchUpdateRequest(
                    memory_id=MEMORY_ID, records=[change(mine, ["chat/alice"]), change(theirs, source)]
                ),
                timeout=10,
            )
            assert [r.memory_record_id for r in updated.successful_records] == [mine]
            assert [(r.memory_record_id, r.error_code) for r in updated.failed_records] == [(theirs, 403)]
            assert get_record(aws_client, theirs)["content"]["text"] == "likes green tea"
        assert get_record(aws_client, mine)["content"]["text"] == "overwritten"

        # Get: the namespace must be named and allowed, and AWS is not called when it is not.
        calls_before = aws_calls(metrics, "GetMemoryRecord")
        for request in (
            pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=theirs),
            pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=theirs, namespace="billing/alice"),
        ):
            with pytest.raises(grpc.RpcError) as denied:
                chat.Get(request, timeout=5)
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
            info = details_of(denied.value)[error_details_pb2.ErrorInfo]
            assert info.reason == "CALLER_NOT_ALLOWED"
            assert info.metadata["method"] == "Get"
            assert "billing" not in (denied.value.details() or "")
        assert aws_calls(metrics, "GetMemoryRecord") == calls_before
        got = chat.Get(
            pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=mine, namespace="chat/alice"), timeout=5
        )
        assert got.memory_record.content.text == "overwritten"
        # Naming its own namespace for another's record: AWS answers as for a missing record.
        with pytest.raises(grpc.RpcError) as hidden:
            chat.Get(
                pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=theirs, namespace="chat/alice"), timeout=5
            )
        assert hidden.value.code() is grpc.StatusCode.NOT_FOUND

        # Another service is denied whole.
        other = stub_for(port, authority, "spiffe://cluster.local/ns/billing/sa/billing")
        with pytest.raises(grpc.RpcError) as denied:
            other.Get(
                pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=mine, namespace="chat/alice"), timeout=5
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED

        # Allowed: the update naming chat/alice twice, the two Gets naming chat/alice. Denied (whole or in
        # part): the create, two updates, three Gets.
        assert sample(metrics, "agentcore_authz_decisions_total", decision="allow") == 3
        assert sample(metrics, "agentcore_authz_decisions_total", decision="deny") == 6
    audit = [r for r in caplog.records if r.name == "service.audit"]
    assert len(audit) == 6
    assert {r.__dict__["caller"] for r in audit} == {CHAT, "spiffe://cluster.local/ns/billing/sa/billing"}


def test_a_restricted_caller_may_move_a_record_within_its_namespaces_and_not_out_of_them(
    files: Files, authority: Authority, emulator: Emulator, policy_path: Path
) -> None:
    aws_client = emulator_client(emulator.endpoint_url)
    out, emptied, within = (create_one(aws_client, namespaces=["chat/alice"]) for _ in range(3))
    now = timestamp(int(time.time()))

    def move(record_id: str, namespaces: list[str]) -> pb.MemoryRecordUpdate:
        return pb.MemoryRecordUpdate(
            memory_record_id=record_id,
            timestamp=now,
            content=pb.MemoryContent(text="moved"),
            source_namespaces=pb.NamespaceList(values=["chat/alice"]),
            namespaces=pb.NamespaceList(values=namespaces),
        )

    with facade(tls_settings(files, authz_policy_file=str(policy_path)), emulator) as (port, metrics):
        chat = stub_for(port, authority, CHAT)
        # Out of its prefixes, and out of every namespace (an empty new list): each refused on its own.
        updated = chat.BatchUpdate(
            pb.BatchUpdateRequest(
                memory_id=MEMORY_ID,
                records=[move(out, ["billing/alice"]), move(within, ["chat/bob"]), move(emptied, [])],
            ),
            timeout=10,
        )
        assert [r.memory_record_id for r in updated.successful_records] == [within]
        assert [(r.memory_record_id, r.error_code) for r in updated.failed_records] == [
            (out, 403),
            (emptied, 403),
        ]
        assert all(r.error_message.startswith("CALLER_NOT_ALLOWED:") for r in updated.failed_records)
        assert sample(metrics, "agentcore_authz_decisions_total", decision="deny") == 1
    for record_id in (out, emptied):
        record = get_record(aws_client, record_id)
        assert (record["namespaces"], record["content"]["text"]) == (["chat/alice"], "likes green tea")
    record = get_record(aws_client, within)
    assert (record["namespaces"], record["content"]["text"]) == (["chat/bob"], "moved")


def denied_code(call: Any, request: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=10)
    code: grpc.StatusCode = caught.value.code()
    if code is grpc.StatusCode.PERMISSION_DENIED:
        assert details_of(caught.value)[error_details_pb2.ErrorInfo].reason == "CALLER_NOT_ALLOWED"
        assert "billing" not in (caught.value.details() or "")
    return code


def test_the_policy_end_to_end_for_delete_list_retrieve_and_batches_of_more_than_one_call(
    files: Files, authority: Authority, emulator: Emulator, policy_path: Path
) -> None:
    aws_client = emulator_client(emulator.endpoint_url)
    theirs = [create_one(aws_client, namespaces=["billing/alice"]) for _ in range(3)]
    denied = grpc.StatusCode.PERMISSION_DENIED
    with facade(tls_settings(files, authz_policy_file=str(policy_path)), emulator) as (port, metrics):
        chat = stub_for(port, authority, CHAT)
        reader = stub_for(port, authority, READER)

        # 230 records (three AWS calls), every 7th in another namespace: each refused record fails on its
        # own, and both lists keep request order.
        names = [f"r{index:03d}" for index in range(230)]
        outside = {name for index, name in enumerate(names) if index % 7 == 3}
        created = chat.BatchCreate(
            pb.BatchCreateRequest(
                memory_id=MEMORY_ID,
                records=[
                    record_create(
                        request_identifier=name, namespaces=["billing/x" if name in outside else "chat/bulk"]
                    )
                    for name in names
                ],
            ),
            timeout=30,
        )
        assert [r.request_identifier for r in created.failed_records] == sorted(outside)
        assert {r.error_code for r in created.failed_records} == {403}
        assert [r.request_identifier for r in created.successful_records] == [
            name for name in names if name not in outside
        ]
        mine = [r.memory_record_id for r in created.successful_records]

        # List and Retrieve: what they name must be under the caller's prefixes, and naming nothing is
        # denied; AWS is not called for a denied one.
        criteria = pb.SearchCriteria(search_query="tea", top_k=5)
        for request, allowed in (
            (pb.ListRequest(memory_id=MEMORY_ID, namespace_path="chat/"), True),
            (pb.ListRequest(memory_id=MEMORY_ID, namespace_path="chat"), False),  # a path ends in `/`
            (pb.ListRequest(memory_id=MEMORY_ID, namespace="chat/bulk"), True),
            (pb.ListRequest(memory_id=MEMORY_ID), False),
            (pb.ListRequest(memory_id=MEMORY_ID, namespace_path="billing"), False),
            (pb.ListRequest(memory_id=MEMORY_ID, namespace_path="/"), False),
            (pb.RetrieveRequest(memory_id=MEMORY_ID, namespace="chat/bulk", search_criteria=criteria), True),
            (pb.RetrieveRequest(memory_id=MEMORY_ID, search_criteria=criteria), False),
            (
                pb.RetrieveRequest(memory_id=MEMORY_ID, namespace="billing/alice", search_criteria=criteria),
                False,
            ),
        ):
            method = chat.List if isinstance(request, pb.ListRequest) else chat.Retrieve
            if allowed:
                summaries = method(request, timeout=10).memory_record_summaries
                assert summaries and all(s.namespaces == ["chat/bulk"] for s in summaries)
            else:
                before = aws_calls(metrics, "ListMemoryRecords") + aws_calls(metrics, "RetrieveMemoryRecords")
                assert denied_code(method, request) is denied
                after = aws_calls(metrics, "ListMemoryRecords") + aws_calls(metrics, "RetrieveMemoryRecords")
                assert after == before
        # A rule grants methods: the reader may search chat/ but not delete in it.
        assert reader.List(pb.ListRequest(memory_id=MEMORY_ID, namespace="chat/bulk"), timeout=10)
        delete_mine = pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=mine[0], namespace="chat/bulk")
        assert denied_code(reader.Delete, delete_mine) is denied

        # Delete: the namespace must be named and allowed; naming its own for another's record answers
        # NOT_FOUND (AWS's answer); the other's record is left untouched.
        assert chat.Delete(delete_mine, timeout=10).memory_record_id == mine[0]
        for namespace, code in (
            (None, denied),
            ("billing/alice", denied),
            ("chat/bulk", grpc.StatusCode.NOT_FOUND),
        ):
            request = pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=theirs[0], namespace=namespace)
            assert denied_code(chat.Delete, request) is code
        assert get_record(aws_client, theirs[0])["memoryRecordId"] == theirs[0]

        # BatchDelete of 196 records (two AWS calls): another's record named in the caller's namespace
        # (AWS refuses it, 403), one naming none and one naming another namespace (the facade refuses
        # them), an unknown id (AWS: not found). The failures come back in request order, the others
        # are deleted, another's records are left untouched.
        deletions = [
            pb.MemoryRecordDelete(memory_record_id=record_id, namespace="chat/bulk") for record_id in mine[1:]
        ]
        odd = {
            10: pb.MemoryRecordDelete(memory_record_id=theirs[0], namespace="chat/bulk"),
            60: pb.MemoryRecordDelete(memory_record_id=theirs[1]),
            120: pb.MemoryRecordDelete(memory_record_id=theirs[2], namespace="billing/alice"),
            170: pb.MemoryRecordDelete(memory_record_id=UNKNOWN_RECORD_ID, namespace="chat/bulk"),
        }
        for index, deletion in odd.items():
            deletions.insert(index, deletion)
        deleted = chat.BatchDelete(pb.BatchDeleteRequest(memory_id=MEMORY_ID, records=deletions), timeout=30)
        assert [r.memory_record_id for r in deleted.failed_records] == [*theirs, UNKNOWN_RECORD_ID]
        assert [r.error_message.startswith("CALLER_NOT_ALLOWED:") for r in deleted.failed_records] == [
            False,
            True,
            True,
            False,
        ]
        assert deleted.failed_records[0].error_code == 403
        assert [r.memory_record_id for r in deleted.successful_records] == mine[1:]
        for record_id in theirs:
            assert get_record(aws_client, record_id)["namespaces"] == ["billing/alice"]


def test_policy_changes_apply_without_a_restart_and_an_invalid_one_is_refused(
    files: Files, authority: Authority, emulator: Emulator, policy_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.security.authz.CHECK_INTERVAL_SECONDS", 0.0)
    billing = "spiffe://cluster.local/ns/billing/sa/billing"
    record_id = create_one(emulator_client(emulator.endpoint_url), namespaces=["billing/x"])
    get = pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=record_id, namespace="billing/x")
    with facade(tls_settings(files, authz_policy_file=str(policy_path)), emulator) as (port, metrics):
        stub = stub_for(port, authority, billing)
        with pytest.raises(grpc.RpcError) as denied:
            stub.Get(get, timeout=5)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED

        allowing = (
            POLICY
            + f'  - name: billing\n    principals: ["{billing}"]\n    methods: ["*"]\n    memories: ["*"]\n'
        )
        policy_path.write_text(allowing)
        assert stub.Get(get, timeout=5).memory_record.memory_record_id == record_id

        policy_path.write_text(allowing + "  - name: broken\n")
        assert stub.Get(get, timeout=5).memory_record.memory_record_id == record_id  # last good policy
        assert sample(metrics, "agentcore_config_last_reload_successful", config="authz_policy") == 0
        info = None
        policy_path.write_text(POLICY)
        with pytest.raises(grpc.RpcError) as denied:
            stub.Get(get, timeout=5)
        info = details_of(denied.value)[error_details_pb2.ErrorInfo]
        assert info.metadata["ruleSetVersion"] in (denied.value.details() or "")


# --- serve(): the health port, metrics over HTTPS, reflection off ---------------------------------


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[dict[str, int]]:
    stop = threading.Event()
    ports: dict[str, int] = {}
    ready = threading.Event()

    def on_serving(grpc_port: int, metrics_port: int) -> None:
        ports.update(grpc=grpc_port, metrics=metrics_port)
        ready.set()

    thread = threading.Thread(target=serve, args=(settings,), kwargs={"stop": stop, "on_serving": on_serving})
    thread.start()
    try:
        assert ready.wait(20), "the service did not start"
        yield ports
    finally:
        stop.set()
        thread.join(20)


def test_probes_use_the_plaintext_health_port_while_the_service_port_needs_mutual_tls(
    files: Files, authority: Authority, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    health_port = free_port()
    metrics_pair = authority.issue(server=True, common_name="metrics")
    metrics_pair.write(tmp_path / "metrics.crt", tmp_path / "metrics.key")
    settings = tls_settings(
        files,
        metrics_port=0,
        metrics_host="127.0.0.1",
        grpc_host="127.0.0.1",
        health_port=health_port,
        grpc_reflection=False,
        metrics_tls_cert_file=str(tmp_path / "metrics.crt"),
        metrics_tls_key_file=str(tmp_path / "metrics.key"),
        shutdown_grace_seconds=0.0,
    )
    with serving(settings) as ports:
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as probe:
            assert health_check(probe) == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as only_health:
                pb_grpc.MemoryRecordsServiceStub(probe).Get(pb.GetRequest(memory_id=MEMORY_ID), timeout=5)
            assert only_health.value.code() is grpc.StatusCode.UNIMPLEMENTED
        with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as plaintext, pytest.raises(grpc.RpcError):
            health_check(plaintext)
        client = authority.issue(spiffe_id=CHAT)
        with secure_channel(ports["grpc"], channel_credentials(authority, client)) as channel:
            assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
            with pytest.raises(grpc.RpcError) as off:
                list(reflection)
            assert off.value.code() is grpc.StatusCode.UNIMPLEMENTED

        context = ssl.create_default_context(cadata=authority.cert_pem.decode())
        connection = http.client.HTTPSConnection(SERVER_NAME, ports["metrics"], context=context, timeout=5)
        connection.sock = context.wrap_socket(
            socket.create_connection(("127.0.0.1", ports["metrics"]), timeout=5), server_hostname=SERVER_NAME
        )
        connection.request("GET", "/metrics")
        body = connection.getresponse().read().decode()
        connection.close()
        assert 'agentcore_tls_certificate_expiry_seconds{listener="metrics"}' in body
        assert 'agentcore_tls_certificate_expiry_seconds{listener="grpc"}' in body
        with socket.create_connection(("127.0.0.1", ports["metrics"]), timeout=5) as raw:
            raw.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert not raw.recv(100).startswith(b"HTTP/")  # plaintext HTTP is not served
        time.sleep(0.2)  # the request's thread finishes after the connection closes
        assert "Traceback" not in capfd.readouterr().err  # a scanner cannot flood stderr with them


def test_the_start_line_says_when_there_is_no_policy(caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for_tests(backend=Backend.LOCAL, metrics_port=0, shutdown_grace_seconds=0.0)
    with caplog.at_level(logging.INFO, logger="service"), serving(settings):
        (start,) = [r for r in caplog.records if r.getMessage().startswith("serving ")]
    assert start.__dict__["authorization"] == "none: every caller may call every method"
    assert start.__dict__["transport"] == "plaintext"


def test_metrics_listen_on_metrics_host_and_not_on_grpc_host() -> None:
    settings = settings_for_tests(
        backend=Backend.LOCAL,
        grpc_host="127.0.0.1",
        metrics_host="127.0.0.2",  # Linux's loopback answers the whole of 127.0.0.0/8
        metrics_port=0,
        shutdown_grace_seconds=0.0,
    )
    with serving(settings) as ports:
        connection = http.client.HTTPConnection("127.0.0.2", ports["metrics"], timeout=5)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200 and b"agentcore_" in response.read()
        connection.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", ports["metrics"]), timeout=5).close()
        with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
            assert health_check(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("variables", "complaint"),
    [
        (
            {"TLS_CERT_FILE": "{folder}/missing.crt", "TLS_KEY_FILE": "{folder}/tls.key"},
            "cannot read the certificate",
        ),
        (
            {"TLS_CERT_FILE": "{folder}/tls.crt", "TLS_KEY_FILE": "{folder}/ca.crt"},
            "not an unencrypted PEM private key",
        ),
        ({"TLS_CERT_FILE": "{folder}/tls.crt"}, "TLS_CERT_FILE and TLS_KEY_FILE must be set together"),
        ({"AUTHZ_POLICY_FILE": "{folder}/ca.crt"}, "the document must be a mapping"),
    ],
)
def test_a_bad_file_at_start_stops_the_process_with_one_clear_line(
    files: Files, variables: dict[str, str], complaint: str
) -> None:
    env = service_env(**{k: v.format(folder=files.cert.parent) for k, v in variables.items()})
    finished = subprocess.run(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    (line,) = finished.stderr.strip().splitlines()
    message = json.loads(line)["message"]
    assert message.startswith("configuration error: ") and complaint in message


@pytest.mark.parametrize(
    ("mutual", "reason"),
    [(False, "WRONG_VERSION_NUMBER"), (True, "PEER_DID_NOT_RETURN_A_CERTIFICATE")],
    ids=["plaintext-client-on-tls", "no-client-certificate-under-mtls"],
)
def test_a_failed_handshake_is_one_json_line_among_json_lines(
    files: Files, authority: Authority, mutual: bool, reason: str
) -> None:
    variables = {"TLS_CERT_FILE": str(files.cert), "TLS_KEY_FILE": str(files.key)}
    if mutual:
        variables["TLS_CLIENT_CA_FILE"] = str(files.ca)
    with service_process(read_log=True, AGENTCORE_BACKEND="local", **variables) as (process, start):
        port = int(str(start["grpcPort"]))
        # mTLS: a client that trusts the server but has no certificate; TLS: a plaintext client.
        if mutual:
            channel = secure_channel(port, channel_credentials(authority))
        else:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        with channel, pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        time.sleep(0.3)  # the server's side of the handshake ends a moment after the client's
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        rest = process.stderr.read()
        assert process.wait(timeout=30) == 0
    entries = [json.loads(line) for line in rest.splitlines()]  # every line is JSON
    [failed] = [entry for entry in entries if entry["message"] == "TLS handshake failed"]
    assert (failed["logger"], failed["level"]) == ("grpc", "WARNING")
    assert reason in failed["reason"]
