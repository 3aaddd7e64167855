"""authz.py: the policy's schema, globs and namespace prefixes, each operation's namespace scope, the
verdicts (whole call or record by record), reloads that keep the last good policy, and the audit line."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from service.api import operations, validate
from service.security import authz
from service.security.authz import Authorizer, CallerNotAllowedError, Policy, PolicyError, PolicyFile
from tests.helpers import MEMORY_ID, RECORD_ID, record_create, timestamp

CHAT = "spiffe://cluster.local/ns/chat/sa/chat-api"
BILLING = "spiffe://cluster.local/ns/billing/sa/billing"
POLICY = """
rules:
  - name: chat-service
    principals: ["spiffe://cluster.local/ns/chat/sa/*"]
    methods: ["BatchCreate", "BatchUpdate", "Get", "Delete", "BatchDelete", "List", "Retrieve"]
    memories: ["demo_memory-*"]
    namespaces: ["chat/"]
  - name: billing-reads
    principals: ["spiffe://cluster.local/ns/billing/sa/billing"]
    methods: ["Get"]
    memories: ["demo_memory-0123456789"]
  - name: local-tools
    principals: ["anonymous"]
    methods: ["*"]
    memories: ["other_memory-*"]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def decisions() -> list[str]:
    return []


@pytest.fixture
def authorizer(tmp_path: Path, decisions: list[str]) -> Authorizer:
    policy_file = PolicyFile(str(write(tmp_path / "policy.yaml", POLICY)), check_interval_seconds=0)
    return Authorizer(policy_file, count=decisions.append)


@pytest.mark.parametrize(
    ("namespace", "prefix", "under"),
    [
        ("chat/alice", "chat/", True),
        ("chat", "chat/", True),
        ("chat/alice/notes", "chat", True),
        ("chatbot/x", "chat/", False),
        ("chatbot/x", "chat", False),
        ("/chat/alice", "/chat/", True),
        ("chat/alice", "/chat/", False),
        ("chat/anything", "chat/*", False),  # `*` in a prefix is literal
        ("chat/*/x", "chat/*", True),
        ("users/alice", "users/alice/", True),
        ("users/alicia", "users/alice", False),
    ],
)
def test_a_prefix_matches_whole_segments(namespace: str, prefix: str, under: bool) -> None:
    assert authz.namespace_under(namespace, prefix) is under


def test_the_policy_parses_from_yaml_and_json_and_its_version_is_the_files_hash() -> None:
    policy = Policy.parse(POLICY.encode())
    assert [rule.name for rule in policy.rules] == ["chat-service", "billing-reads", "local-tools"]
    assert policy.rules[0].namespaces == ("chat/",)
    assert policy.rules[1].namespaces is None
    assert policy.version == hashlib.sha256(POLICY.encode()).hexdigest()[:12]
    as_json = json.dumps({"rules": [{"name": "r", "principals": ["*"], "methods": ["*"], "memories": ["*"]}]})
    assert Policy.parse(as_json.encode()).rules[0].methods == ("*",)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("rules: [", "not YAML"),
        ("- a\n- b\n", "a mapping of `rules`"),
        ("rules: []\nextra: 1\n", "a mapping of `rules`"),
        ("{}", "a mapping of `rules`"),
        ("limits: {a: 1}", "a mapping of `rules`"),
        ("limits: [1]", r"limits\[0\] must be a mapping"),
        ("limits: [{principals: ['*'], rate: 1}]", r"limits\[0\]: unknown key\(s\) rate"),
        ("limits: [{requests_per_second: 1}]", r"limits\[0\].principals is required"),
        ("limits: [{principals: ['*']}]", r"limits\[0\] limits nothing"),
        (
            "limits: [{principals: ['*'], requests_per_second: 0}]",
            r"requests_per_second must be a positive number",
        ),
        (
            "limits: [{principals: ['*'], requests_per_second: true}]",
            r"requests_per_second must be a positive number",
        ),
        ("limits: [{principals: ['*'], max_concurrent: 1.5}]", r"max_concurrent must be a whole number"),
        ("limits: [{principals: ['*'], records_per_second: 10, burst: 50}]", r"burst must be at least 100"),
        (
            "limits: [{name: a, principals: ['*'], weight: 2}, {name: a, principals: ['x'], weight: 1}]",
            "limit names must be unique: a",
        ),
        ("rules: [1]", r"rules\[0\] must be a mapping"),
        ("rules: [{name: r, principals: ['*'], methods: ['*']}]", r"rules\[0\]: `memories` is required"),
        (
            "rules: [{name: r, principals: ['*'], methods: ['*'], memories: ['*'], namespace: [a]}]",
            "unknown key",
        ),
        ("rules: [{name: r, principals: '*', methods: ['*'], memories: ['*']}]", "principals must be a list"),
        (
            "rules: [{name: r, principals: [], methods: ['*'], memories: ['*']}]",
            "principals must not be empty",
        ),
        ("rules: [{name: r, principals: ['*'], methods: [Gett], memories: ['*']}]", "'Gett' is not an RPC"),
        (
            "rules: [{name: r, principals: ['*'], methods: ['*'], memories: ['*'], namespaces: []}]",
            "namespaces",
        ),
        ("rules: [{name: r, principals: ['*'], methods: ['*'], memories: [3]}]", "non-empty strings"),
        (
            "rules: [{name: r, principals: ['*'], methods: ['*'], memories: ['*']},"
            " {name: r, principals: ['*'], methods: ['*'], memories: ['*']}]",
            "unique: r",
        ),
    ],
)
def test_an_invalid_policy_says_what_is_wrong_where(text: str, complaint: str) -> None:
    with pytest.raises(PolicyError, match=complaint):
        Policy.parse(text.encode())


def batch_create(*namespaces: list[str], memory_id: str = MEMORY_ID) -> pb.BatchCreateRequest:
    records = [record_create(request_identifier=f"r{i}", namespaces=ns) for i, ns in enumerate(namespaces)]
    return pb.BatchCreateRequest(memory_id=memory_id, records=records)


def update(source: list[str] | None = None, new: list[str] | None = None) -> pb.MemoryRecordUpdate:
    record = pb.MemoryRecordUpdate(memory_record_id=RECORD_ID, timestamp=timestamp(1_700_000_000))
    if source is not None:
        record.source_namespaces.values.extend(source)
    if new is not None:
        record.namespaces.SetInParent()
        record.namespaces.values.extend(new)
    return record


@pytest.mark.parametrize(
    ("caller", "operation", "request_", "allowed"),
    [
        # principal globs, methods, memory globs
        (CHAT, operations.GET, pb.GetRequest(memory_id=MEMORY_ID, namespace="chat/a"), True),
        (
            "spiffe://cluster.local/ns/chat/sa/other",
            operations.GET,
            pb.GetRequest(memory_id=MEMORY_ID, namespace="chat/a"),
            True,
        ),
        (
            "spiffe://cluster.local/ns/chatbot/sa/x",
            operations.GET,
            pb.GetRequest(memory_id=MEMORY_ID, namespace="chat/a"),
            False,
        ),
        (CHAT, operations.GET, pb.GetRequest(memory_id="other_memory-abcdefghij", namespace="chat/a"), False),
        (BILLING, operations.GET, pb.GetRequest(memory_id=MEMORY_ID), True),  # no namespace rule: any record
        (
            BILLING,
            operations.GET,
            pb.GetRequest(memory_id="demo_memory-9999999999"),
            False,
        ),  # exact memory id
        (BILLING, operations.BATCH_CREATE, batch_create(["billing/x"]), False),  # method not listed
        (
            "anonymous",
            operations.BATCH_CREATE,
            batch_create(["any"], memory_id="other_memory-abcdefghij"),
            True,
        ),
        ("anonymous", operations.GET, pb.GetRequest(memory_id=MEMORY_ID), False),
        # a namespace-restricted caller must name the namespace, and it must be under a prefix
        (CHAT, operations.GET, pb.GetRequest(memory_id=MEMORY_ID), False),
        (CHAT, operations.GET, pb.GetRequest(memory_id=MEMORY_ID, namespace="chatbot/a"), False),
    ],
)
def test_a_call_is_allowed_when_some_rule_matches_caller_method_memory_and_namespaces(
    authorizer: Authorizer,
    decisions: list[str],
    caller: str,
    operation: operations.Operation[Any, Any],
    request_: Any,
    allowed: bool,
) -> None:
    if allowed:
        assert authorizer.verdict(operation, request_, caller) == authz.ALLOWED
        assert decisions == ["allow"]
    else:
        with pytest.raises(CallerNotAllowedError) as denied:
            authorizer.verdict(operation, request_, caller)
        assert denied.value.method == operation.rpc
        assert decisions == ["deny"]


def test_batch_create_refuses_each_record_outside_the_callers_namespaces_on_its_own(
    authorizer: Authorizer, decisions: list[str]
) -> None:
    request = batch_create(["chat/alice"], ["billing/alice"], ["chat"], [], ["chatbot/x"])
    verdict = authorizer.verdict(operations.BATCH_CREATE, request, CHAT)
    assert verdict.refused == {1, 3, 4}
    assert decisions == ["deny"]
    params = verdict.narrowed(validate.validated_params(operations.BATCH_CREATE, request))
    assert [record["requestIdentifier"] for record in params["records"]] == ["r0", "r2"]
    response = verdict.completed(operations.BATCH_CREATE, request, pb.BatchCreateResponse())
    assert [(r.request_identifier, r.error_code) for r in response.failed_records] == [
        ("r1", 403),
        ("r3", 403),
        ("r4", 403),
    ]
    assert all(r.error_message.startswith("CALLER_NOT_ALLOWED:") for r in response.failed_records)
    assert all(
        "chat" not in r.error_message and "billing" not in r.error_message for r in response.failed_records
    )


@pytest.mark.parametrize(
    ("record", "allowed"),
    [
        (update(source=["chat/alice"]), True),
        (update(source=["chat/alice"], new=["chat/bob"]), True),
        (update(), False),  # the record could be anywhere: source_namespaces is required
        (update(source=[]), False),
        (update(source=["billing/x"]), False),
        (update(source=["chat/alice"], new=["billing/x"]), False),  # moving it out
        (update(source=["chat/alice"], new=[]), False),  # taking it out of every namespace
    ],
)
def test_batch_update_needs_source_namespaces_and_new_namespaces_within_the_callers(
    authorizer: Authorizer, record: pb.MemoryRecordUpdate, allowed: bool
) -> None:
    request = pb.BatchUpdateRequest(memory_id=MEMORY_ID, records=[update(source=["chat/x"]), record])
    verdict = authorizer.verdict(operations.BATCH_UPDATE, request, CHAT)
    assert verdict.refused == (frozenset() if allowed else {1})
    if not allowed:
        (refused,) = verdict.completed(operations.BATCH_UPDATE, request, None).failed_records
        assert refused.memory_record_id == RECORD_ID
        assert refused.status == pb.MEMORY_RECORD_STATUS_FAILED
        assert "source_namespaces" in refused.error_message


def test_an_unrestricted_rule_lets_every_record_through(tmp_path: Path) -> None:
    policy = POLICY + (
        "  - name: chat-admin\n"
        '    principals: ["spiffe://cluster.local/ns/chat/sa/chat-api"]\n'
        '    methods: ["BatchUpdate"]\n'
        '    memories: ["*"]\n'
    )
    authorizer = Authorizer(PolicyFile(str(write(tmp_path / "p.yaml", policy))))
    request = pb.BatchUpdateRequest(memory_id=MEMORY_ID, records=[update(), update(source=["billing/x"])])
    assert authorizer.verdict(operations.BATCH_UPDATE, request, CHAT) == authz.ALLOWED


@pytest.mark.parametrize("operation", [operations.LIST, operations.RETRIEVE], ids=lambda op: op.rpc)
@pytest.mark.parametrize(
    ("fields", "allowed"),
    [
        ({}, False),  # naming no namespace would search them all
        ({"namespace": "chat/alice"}, True),
        ({"namespace_path": "chat/"}, True),
        ({"namespace_path": "chat/alice/"}, True),
        # Without its `/`, AWS might read `chat` as a prefix of `chatbot`: refused for restricted callers.
        ({"namespace_path": "chat"}, False),
        ({"namespace_path": "chatbot"}, False),
        ({"namespace_path": "/"}, False),
        ({"namespace": "billing/x"}, False),
        ({"namespace": "chat/alice", "namespace_path": "billing/"}, False),
    ],
)
def test_list_and_retrieve_filters_must_stay_within_the_callers_namespaces(
    authorizer: Authorizer, operation: operations.Operation[Any, Any], fields: dict[str, str], allowed: bool
) -> None:
    request = operation.request_type(memory_id=MEMORY_ID, **fields)
    if allowed:
        assert authorizer.verdict(operation, request, CHAT) == authz.ALLOWED
    else:
        with pytest.raises(CallerNotAllowedError, match="`namespace`, or a `namespace_path` ending in `/`"):
            authorizer.verdict(operation, request, CHAT)


@pytest.mark.parametrize(("namespace", "allowed"), [(None, False), ("billing/x", False), ("chat/a", True)])
def test_delete_must_name_a_namespace_within_the_callers(
    authorizer: Authorizer, namespace: str | None, allowed: bool
) -> None:
    request = pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID, namespace=namespace)
    if allowed:
        assert authorizer.verdict(operations.DELETE, request, CHAT) == authz.ALLOWED
    else:
        with pytest.raises(CallerNotAllowedError, match="`namespace`"):
            authorizer.verdict(operations.DELETE, request, CHAT)


def record_id(index: int) -> str:
    return f"mem-{index:08d}-0000-0000-0000-000000000000"


def test_batch_delete_refuses_each_record_not_named_within_the_callers_namespaces_in_request_order(
    authorizer: Authorizer,
) -> None:
    namespaces = ["chat/a", None, "billing/x", "chat/b", "chatbot/y"]
    request = pb.BatchDeleteRequest(
        memory_id=MEMORY_ID,
        records=[
            pb.MemoryRecordDelete(memory_record_id=record_id(index), namespace=namespace)
            for index, namespace in enumerate(namespaces)
        ],
    )
    verdict = authorizer.verdict(operations.BATCH_DELETE, request, CHAT)
    assert verdict.refused == {1, 2, 4}
    params = verdict.narrowed(validate.validated_params(operations.BATCH_DELETE, request))
    assert [record["memoryRecordId"] for record in params["records"]] == [record_id(0), record_id(3)]
    # AWS failed record 3 (e.g. its namespace did not match): the merged list keeps request order.
    aws_failed = pb.MemoryRecordResult(
        memory_record_id=record_id(3), status=pb.MEMORY_RECORD_STATUS_FAILED, error_code=403
    )
    response = verdict.completed(
        operations.BATCH_DELETE, request, pb.BatchDeleteResponse(failed_records=[aws_failed])
    )
    assert [r.memory_record_id for r in response.failed_records] == [record_id(i) for i in (1, 2, 3, 4)]
    assert all("(`namespace`)" in r.error_message for r in response.failed_records if r != aws_failed)


def test_no_policy_allows_everything_and_counts_nothing(decisions: list[str]) -> None:
    authorizer = Authorizer(None, count=decisions.append)
    assert (
        authorizer.verdict(operations.GET, pb.GetRequest(memory_id=MEMORY_ID), "anonymous") == authz.ALLOWED
    )
    assert decisions == []


def test_a_changed_policy_is_reloaded_and_an_invalid_one_keeps_the_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "policy.yaml", POLICY)
    reloads: list[bool] = []
    policy_file = PolicyFile(str(path), on_reload=reloads.append, check_interval_seconds=0)
    authorizer = Authorizer(policy_file)
    get = pb.GetRequest(memory_id=MEMORY_ID, namespace="billing/x")
    with pytest.raises(CallerNotAllowedError):
        authorizer.verdict(operations.GET, get, CHAT)

    widened = POLICY.replace('namespaces: ["chat/"]', 'namespaces: ["chat/", "billing/"]')
    write(path, widened)
    assert authorizer.verdict(operations.GET, get, CHAT) == authz.ALLOWED
    assert policy_file.current().version == hashlib.sha256(widened.encode()).hexdigest()[:12]

    with caplog.at_level(logging.ERROR, logger="service.security.authz"):
        write(path, widened + "  - name: broken\n")
        assert authorizer.verdict(operations.GET, get, CHAT) == authz.ALLOWED  # the last good policy
        assert authorizer.verdict(operations.GET, get, CHAT) == authz.ALLOWED
    assert reloads == [True, False]  # one attempt per change, not per call
    (line,) = [r for r in caplog.records if r.name == "service.security.authz"]
    assert "last good one stays" in line.getMessage()


def test_a_policy_file_is_looked_at_no_more_often_than_its_interval(tmp_path: Path) -> None:
    path = write(tmp_path / "policy.yaml", POLICY)
    policy_file = PolicyFile(str(path), check_interval_seconds=3600)
    write(path, POLICY.replace("chat-service", "renamed"))
    assert policy_file.current().rules[0].name == "chat-service"


def test_a_policy_that_does_not_load_at_start_says_which_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"policy\.yaml: rules\[0\]"):
        PolicyFile(str(write(tmp_path / "policy.yaml", "rules: [x]")))
    with pytest.raises(PolicyError, match="cannot read"):
        PolicyFile(str(tmp_path / "missing.yaml"))


def test_a_denial_writes_one_audit_line_without_namespaces_or_record_ids(
    authorizer: Authorizer, caplog: pytest.LogCaptureFixture
) -> None:
    request = pb.BatchUpdateRequest(memory_id=MEMORY_ID, records=[update(source=["billing/secret"])])
    with caplog.at_level(logging.INFO, logger="service.audit"):
        authorizer.verdict(operations.BATCH_UPDATE, request, CHAT)
    (line,) = caplog.records
    assert line.getMessage() == "authorization denied"
    fields = line.__dict__
    assert fields["caller"] == CHAT
    assert fields["method"] == "/agentcore.memory.v1.MemoryRecordsService/BatchUpdate"
    assert fields["memoryId"] == MEMORY_ID
    assert fields["ruleSetVersion"] == hashlib.sha256(POLICY.encode()).hexdigest()[:12]
    assert fields["reason"] == "namespace_not_allowed"
    assert fields["rules"] == ["chat-service"]
    assert (fields["refusedRecords"], fields["recordCount"]) == (1, 1)
    rendered = json.dumps({k: v for k, v in fields.items() if isinstance(v, str | int | list)})
    assert "billing/secret" not in rendered and RECORD_ID not in rendered
