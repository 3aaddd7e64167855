"""The authorization policy (AUTHZ_POLICY_FILE): which caller may call which method on which memory and
namespaces, checked before any AWS call.

A request is allowed when some rule matches its caller, method and memory, and, when that rule lists
namespace prefixes, every namespace the request names falls under one of them and the request is
confined to them (operations.NamespaceScope says how each operation names namespaces). In a batch each
record is judged on its own: a record the caller may not touch fails alone, in `failed_records`, and is
never sent to AWS. The file is re-read when it changes; a version that does not parse is refused and the
last good one stays in force. Namespaces and record ids never reach a log line or an error message.

The same file may hold `limits`: per-caller rates, concurrency and weights (`Limit`, applied by
caller_limits.py). A file of `limits` and no `rules` authorizes everyone and only limits.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import yaml
from agentcore.memory.v1 import memory_records_pb2 as pb

from service.api import operations, translate

# The status code a record refused by the policy carries in `failed_records`, as AWS marks a record it
from service.security import tls, watched

# refuses for namespace reasons.
RECORD_REFUSED_CODE = 403
REASON = "CALLER_NOT_ALLOWED"
# How often a request may look at the policy file's stat (a change takes effect within this).
CHECK_INTERVAL_SECONDS = 1.0

_RULE_KEYS = {"name": str, "principals": list, "methods": list, "memories": list, "namespaces": list}
_REQUIRED_RULE_KEYS = ("name", "principals", "methods", "memories")

audit = logging.getLogger("service.audit")
log = logging.getLogger(__name__)


class PolicyError(ValueError):
    """The policy file does not parse or breaks the schema; the message says where."""


def namespace_under(namespace: str, prefix: str) -> bool:
    """Whether `namespace` falls under `prefix`, on whole `/` segments: `chat/` covers `chat`,
    `chat/alice` and not `chatbot/x`; `*` is a literal character."""
    return _under(namespace.split("/"), _segments(prefix))


def _segments(prefix: str) -> list[str]:
    return prefix.removesuffix("/").split("/")


def _under(namespace: list[str], prefix: list[str]) -> bool:
    return namespace[: len(prefix)] == prefix


@dataclasses.dataclass(frozen=True)
class Rule:
    """One rule of the policy; globs are fnmatch's (`*` matches any characters, `/` included)."""

    name: str
    principals: tuple[str, ...]
    methods: tuple[str, ...]
    memories: tuple[str, ...]
    namespaces: tuple[str, ...] | None  # None: any namespace

    @functools.cached_property
    def _prefixes(self) -> list[list[str]]:
        """The namespace prefixes split into segments once, not for every record of every call."""
        return [_segments(prefix) for prefix in self.namespaces or ()]

    def matches(self, caller: str, method: str, memory_id: str) -> bool:
        return (
            _any_glob(self.principals, caller)
            and ("*" in self.methods or method in self.methods)
            and _any_glob(self.memories, memory_id)
        )

    def covers(self, confined: bool, named: list[list[str]]) -> bool:
        """Whether this rule lets a call act on an item (a request, or a record of a batch) that its
        scope says is `confined` and names the namespaces `named` (split into segments)."""
        if self.namespaces is None:
            return True
        prefixes = self._prefixes
        return confined and all(any(_under(namespace, prefix) for prefix in prefixes) for namespace in named)


def _covered(rules: list[Rule], scope: operations.NamespaceScope, item: Any) -> bool:
    """Whether some rule lets a call act on `item`, its namespaces worked out once for all rules."""
    confined = scope.confined(item)
    named = [namespace.split("/") for namespace in scope.named(item)]
    return any(rule.covers(confined, named) for rule in rules)


def _any_glob(patterns: Iterable[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


@dataclasses.dataclass(frozen=True)
class Limit:
    """One entry of the policy's `limits`: what the callers its principals match may spend. Rates are
    per second; None: that rate is not limited. Bursts are the most a bucket holds."""

    entry: str  # the entry's `name`, or its index: the `entry` label, never a caller's identity
    principals: tuple[str, ...]
    requests_per_second: float | None
    records_per_second: float | None
    requests_burst: int
    records_burst: int
    max_concurrent: int | None
    weight: float

    def matches(self, caller: str) -> bool:
        return _any_glob(self.principals, caller)


# The least a records bucket holds: one AWS call's worth (a chunk of 100), so that any batch can start.
MIN_RECORDS_BURST = 100


@dataclasses.dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] | None  # None: no `rules` key (a file of limits only), so everyone may call
    version: str  # the first 12 hex digits of the file's SHA-256
    limits: tuple[Limit, ...] = ()

    @classmethod
    def parse(cls, text: bytes) -> Policy:
        """The policy in `text` (YAML, so JSON too), or PolicyError saying what is wrong where."""
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"not YAML: {exc}".replace("\n", " ")) from None
        if (
            not isinstance(document, dict)
            or not document
            or not set(document) <= {"rules", "limits"}
            or not all(isinstance(value, list) for value in document.values())
        ):
            raise PolicyError(
                "the document must be a mapping of `rules` (a list of rules), `limits` (a list of limits) "
                "or both"
            )
        rules = None
        if "rules" in document:
            rules = tuple(_rule(index, entry) for index, entry in enumerate(document["rules"]))
            _unique("rule", [rule.name for rule in rules])
        limits = tuple(_limit(index, entry) for index, entry in enumerate(document.get("limits", [])))
        _unique("limit", [limit.entry for limit in limits])
        return cls(rules, hashlib.sha256(text).hexdigest()[:12], limits)

    def matching(self, caller: str, method: str, memory_id: str) -> list[Rule]:
        return [rule for rule in self.rules or () if rule.matches(caller, method, memory_id)]

    def limit_for(self, caller: str) -> Limit | None:
        """The first `limits` entry whose principals match `caller`; None: the caller is unlimited."""
        return next((limit for limit in self.limits if limit.matches(caller)), None)


def _unique(kind: str, names: list[str]) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise PolicyError(f"{kind} names must be unique: {', '.join(duplicates)}")


_METHODS = frozenset(operation.rpc for operation in operations.OPERATIONS)


def _rule(index: int, entry: object) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(entry, dict):
        raise PolicyError(f"{where} must be a mapping")
    unknown = sorted(set(map(str, entry)) - set(_RULE_KEYS))
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_RULE_KEYS)})")
    for key in _REQUIRED_RULE_KEYS:
        if key not in entry:
            raise PolicyError(f"{where}: `{key}` is required")
    for key, kind in _RULE_KEYS.items():
        if key in entry and not isinstance(entry[key], kind):
            raise PolicyError(f"{where}.{key} must be a {'string' if kind is str else 'list of strings'}")
    if not entry["name"]:
        raise PolicyError(f"{where}.name must not be empty")
    lists = {
        key: _strings(f"{where}.{key}", entry[key]) for key in _RULE_KEYS if key != "name" and key in entry
    }
    for method in lists["methods"]:
        if method != "*" and method not in _METHODS:
            raise PolicyError(f"{where}.methods: {method!r} is not an RPC of {operations.SERVICE_NAME}")
    return Rule(
        name=entry["name"],
        principals=lists["principals"],
        methods=lists["methods"],
        memories=lists["memories"],
        namespaces=lists.get("namespaces"),
    )


_LIMIT_KEYS = (
    "name",
    "principals",
    "requests_per_second",
    "records_per_second",
    "burst",
    "max_concurrent",
    "weight",
)


def _limit(index: int, entry: object) -> Limit:
    where = f"limits[{index}]"
    if not isinstance(entry, dict):
        raise PolicyError(f"{where} must be a mapping")
    unknown = sorted(set(map(str, entry)) - set(_LIMIT_KEYS))
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_LIMIT_KEYS)})")
    if not isinstance(entry.get("principals"), list):
        raise PolicyError(f"{where}.principals is required: a list of strings")
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise PolicyError(f"{where}.name must be a non-empty string")

    def number(key: str, *, whole: bool = False) -> float | None:
        value = entry.get(key)
        if value is None:
            return None
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value) or value <= 0:
            raise PolicyError(f"{where}.{key} must be a positive number")
        if whole and value != int(value):
            raise PolicyError(f"{where}.{key} must be a whole number")
        return float(value)

    requests, records = number("requests_per_second"), number("records_per_second")
    burst, concurrent, weight = (
        number("burst", whole=True),
        number("max_concurrent", whole=True),
        number("weight"),
    )
    if requests is None and records is None and concurrent is None and weight is None:
        raise PolicyError(
            f"{where} limits nothing: give requests_per_second, records_per_second, max_concurrent or weight"
        )
    if burst is not None and records is not None and burst < MIN_RECORDS_BURST:
        raise PolicyError(
            f"{where}.burst must be at least {MIN_RECORDS_BURST} where records_per_second is set"
        )
    return Limit(
        entry=name if isinstance(name, str) else str(index),
        principals=_strings(f"{where}.principals", entry["principals"]),
        requests_per_second=requests,
        records_per_second=records,
        requests_burst=int(burst) if burst is not None else max(1, math.ceil(requests or 1)),
        records_burst=int(burst) if burst is not None else max(MIN_RECORDS_BURST, math.ceil(records or 1)),
        max_concurrent=int(concurrent) if concurrent is not None else None,
        weight=weight or 1.0,
    )


def _strings(where: str, values: Sequence[object]) -> tuple[str, ...]:
    if not values:
        raise PolicyError(f"{where} must not be empty (leave `namespaces` out for any namespace)")
    if not all(isinstance(value, str) and value for value in values):
        raise PolicyError(f"{where} must hold non-empty strings only")
    return tuple(str(value) for value in values)


class PolicyFile:
    """AUTHZ_POLICY_FILE and the last version of it that parsed. `current()` re-reads the file when its
    stat changed (looked at no more often than `check_interval_seconds`); `on_reload(ok)` is told of
    every reload attempt after the start."""

    def __init__(
        self,
        path: str,
        *,
        on_reload: Callable[[bool], None] = lambda ok: None,
        check_interval_seconds: float | None = None,
    ) -> None:
        self.path = path
        interval = CHECK_INTERVAL_SECONDS if check_interval_seconds is None else check_interval_seconds
        self._watched = watched.WatchedFiles(
            [path],
            self._load,  # PolicyError stops the start
            refused=PolicyError,
            on_reload=on_reload,
            check_interval_seconds=interval,
        )

    def _load(self) -> Policy:
        try:
            with open(self.path, "rb") as file:
                text = file.read()
        except OSError as exc:
            raise PolicyError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            return Policy.parse(text)
        except PolicyError as exc:
            raise PolicyError(f"{self.path}: {exc}") from None

    def current(self) -> Policy:
        outcome = self._watched.refresh()
        if isinstance(outcome, Exception):
            log.error(
                "authorization policy refused; the last good one stays in force",
                extra={"problem": str(outcome), "ruleSetVersion": self._watched.value.version},
            )
        elif outcome is not None and outcome[1].version != outcome[0].version:
            log.info(
                "authorization policy loaded",
                extra={
                    "ruleSetVersion": outcome[1].version,
                    "rules": len(outcome[1].rules or ()),
                    "limits": len(outcome[1].limits),
                },
            )
        return self._watched.value


class CallerNotAllowedError(Exception):
    """The policy refuses the whole call (PERMISSION_DENIED, reason CALLER_NOT_ALLOWED)."""

    def __init__(self, method: str, rule_set_version: str, why: str) -> None:
        super().__init__(f"the caller may not call {method} {why} (authorization policy {rule_set_version})")
        self.method = method
        self.rule_set_version = rule_set_version


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the policy allows of a call: everything but the batch records at `refused` (indices)."""

    refused: frozenset[int] = frozenset()

    def narrowed(self, params: dict[str, Any]) -> dict[str, Any]:
        """The boto3 parameters without the refused records (a batch's records are in request order)."""
        if not self.refused:
            return params
        return {**params, "records": self.kept(params["records"])}

    def kept(self, records: Sequence[Any]) -> Sequence[Any]:
        """`records` (the request's, or their boto3 conversions) without the refused ones."""
        if not self.refused:
            return records
        return [record for index, record in enumerate(records) if index not in self.refused]

    def completed(self, operation: operations.Operation[Any, Any], request: Any, response: Any) -> Any:
        """`response` (None when AWS had nothing to do) with a failure for each refused record, put in
        `failed_records` at its place in request order, so that a caller can map results back."""
        if response is None:
            response = operation.response_type()
        if not self.refused:
            return response
        records = request.records
        key = operation.record_key
        position = {
            getattr(record, key): index
            for index, record in enumerate(records)
            if index not in self.refused and getattr(record, key)
        }
        placed = [(index, _refused_result(operation, records[index])) for index in self.refused]
        last = -1  # a result AWS returned without a known id stays after the one before it
        for result in response.failed_records:
            last = position.get(getattr(result, key), last)
            placed.append((last, result))
        placed.sort(key=lambda entry: entry[0])  # stable: AWS's own order among equals
        failed = [result for _, result in placed]
        del response.failed_records[:]
        response.failed_records.extend(failed)
        return response


ALLOWED = Verdict()


def _refused_result(operation: operations.Operation[Any, Any], record: Any) -> pb.MemoryRecordResult:
    key = operation.record_key
    return translate.failed_record(
        RECORD_REFUSED_CODE,
        f"{REASON}: the authorization policy does not let this caller act on this record's "
        f"namespaces; a caller restricted to namespaces must name them ({operation.namespaces.must_name})",
        pb.RECORD_OUTCOME_NOT_APPLIED,  # AWS never saw it
        **{key: getattr(record, key)},
    )


class Authorizer:
    """Judges each call against the policy (every call is allowed without one), writes the audit line of
    each denial and counts every decision; refuses callers whose certificate's identity is refused."""

    def __init__(
        self,
        policy_file: PolicyFile | None,
        *,
        count: Callable[[str], None] = lambda decision: None,
        count_identity_refusal: Callable[[str], None] = lambda reason: None,
    ):
        self.policy_file = policy_file
        self._count = count
        self._count_identity_refusal = count_identity_refusal

    def check_identity(self, identity: str | tls.Refusal, method: str) -> None:
        """Refuse a caller whose certificate's identity is refused (tls.CallerIdentityError), with or
        without a policy: one audit line (why, and which certificate, never its names) and a count."""
        if isinstance(identity, str):
            return
        self._count_identity_refusal(identity.reason)
        audit.warning(
            "caller identity refused",
            extra={
                "method": method,
                "reason": identity.reason,
                "problem": identity.problem,
                "certificateSha256": identity.sha256,
                "certificateSerial": identity.serial,
            },
        )
        raise tls.CallerIdentityError(identity)

    def verdict(self, operation: operations.Operation[Any, Any], request: Any, caller: str) -> Verdict:
        """What the policy allows of this call; CallerNotAllowedError when it allows nothing."""
        if self.policy_file is None:
            return ALLOWED
        policy = self.policy_file.current()
        if policy.rules is None:  # a file of limits only
            self._count("allow")
            return ALLOWED
        rules = policy.matching(caller, operation.rpc, request.memory_id)
        scope = operation.namespaces
        if not rules:
            self._deny(policy, operation, request, caller=caller, reason="no_matching_rule", rules=rules)
            raise CallerNotAllowedError(operation.rpc, policy.version, "on this memory")
        if not operation.batch:
            if not _covered(rules, scope, request):
                self._deny(
                    policy, operation, request, caller=caller, reason="namespace_not_allowed", rules=rules
                )
                raise CallerNotAllowedError(
                    operation.rpc,
                    policy.version,
                    f"outside the namespaces it is allowed, or without naming them ({scope.must_name})",
                )
            self._count("allow")
            return ALLOWED
        refused = frozenset(
            index for index, record in enumerate(request.records) if not _covered(rules, scope, record)
        )
        if refused:
            self._deny(
                policy,
                operation,
                request,
                caller=caller,
                reason="namespace_not_allowed",
                rules=rules,
                refused=len(refused),
            )
            return Verdict(refused)
        self._count("allow")
        return ALLOWED

    def _deny(
        self,
        policy: Policy,
        operation: operations.Operation[Any, Any],
        request: Any,
        *,
        caller: str,
        reason: str,
        rules: Sequence[Rule],
        refused: int | None = None,
    ) -> None:
        self._count("deny")
        fields: dict[str, Any] = {
            "caller": caller,
            "method": operation.full_method,
            "memoryId": request.memory_id,
            "ruleSetVersion": policy.version,
            "reason": reason,
        }
        if rules:
            fields["rules"] = [rule.name for rule in rules]
        if refused is not None:
            fields["refusedRecords"] = refused
            fields["recordCount"] = len(request.records)
        audit.warning("authorization denied", extra=fields)
