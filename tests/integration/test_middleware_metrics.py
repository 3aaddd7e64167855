"""The facade's gRPC metrics against go-grpc-middleware's own: the same calls to `python -m service` (the
embedded emulator) and to its Go twin (tools/metricstwin: grpc-go with go-grpc-middleware's
providers/prometheus, handling-time histogram on with the facade's buckets, InitializeMetrics, grpc-go's
health and reflection services), then the two /metrics expositions compared, grpc_* families only
(`agentcore_*`, `process_*` and `python_*` are the facade's own; the twin serves no runtime metrics).

Compared: the family names, TYPE and HELP; every series (sample name and label names and values, `le`
included); every counter's value and every histogram's `_count`. Not comparable, whatever either side
does: the `le` spelling (Go's client writes `le="1"`, Python's `le="1.0"`: compared as numbers, and the
spellings checked), and the timings (`_sum` and the spread over the buckets: Go's handlers take
microseconds, the facade's call the emulator; each series' buckets are checked to be cumulative and to
end at `_count`).

The rest of the differences are real ones, in KNOWN_DIFFERENCES, each with its reason; each is checked
to be exactly what it says and still there (one that goes away fails the test, to be struck off), and
nothing else may differ.

Health and reflection are counted on both sides: the facade counts every method it serves, and a Go
server with go-grpc-middleware's interceptors counts grpc-go's health and reflection services as any
other. The twin registers them the usual Go way (health.NewServer, reflection.Register), so their
differences with the facade's show.

The twin is built by make (`go install tool` in tools/, into var/tools/bin): without it this test skips
on a developer's machine and fails in CI. Loopback only; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import select
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from prometheus_client.parser import text_string_to_metric_families

from service.telemetry.metrics import LATENCY_BUCKETS
from tests.helpers import (
    MEMORY_ID,
    RECORD_ID,
    ROOT,
    UNKNOWN_RECORD_ID,
    record_create,
    require,
    service_process,
)
from tests.integration.helpers import UNKNOWN_MEMORY_ID

TWIN = ROOT / "var" / "tools" / "bin" / "metricstwin"
SERVICE = "agentcore.memory.v1.MemoryRecordsService"
HEALTH = "grpc.health.v1.Health"
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
START_TIMEOUT_SECONDS = 10
SETTLE_SECONDS = 5
RPC_TIMEOUT_SECONDS = 5
# Field 1 (memory_id) as a string of bytes that are not UTF-8: no BatchUpdateRequest parses from it.
UNDECODABLE = b"\x0a\x02\xff\xfe"

Labels = frozenset[tuple[str, str]]
Series = tuple[str, Labels]  # a sample's name and labels


# --- the two servers ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Server:
    name: str
    grpc_port: int
    metrics_port: int

    def scrape(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            body: bytes = answer.read()
            return body.decode()


@contextlib.contextmanager
def twin() -> Iterator[Server]:
    """tools/metricstwin on free loopback ports, stopped when the block ends."""
    require(
        TWIN.is_file(), f"{TWIN.relative_to(ROOT)} is missing: make builds it (go install tool in tools/)"
    )
    errors = tempfile.TemporaryFile()  # noqa: SIM115  # the twin's stderr, for a failure's message
    process = subprocess.Popen([str(TWIN)], stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
        line = process.stdout.readline() if ready else ""
        if not line:
            process.kill()
            process.wait(timeout=5)
            errors.seek(0)
            raise AssertionError(f"metricstwin did not start: {errors.read().decode(errors='replace')}")
        start = json.loads(line)
        yield Server("go-grpc-middleware", int(start["grpcPort"]), int(start["metricsPort"]))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        errors.close()


@contextlib.contextmanager
def facade() -> Iterator[Server]:
    with service_process(AGENTCORE_BACKEND="local") as (_, start):
        yield Server("facade", int(str(start["grpcPort"])), int(str(start["metricsPort"])))


# --- the calls, the same to both -----------------------------------------------------------------------


def code_of(invoke: Callable[[], Any]) -> str:
    """The code one call got (grpc.StatusCode's name)."""
    try:
        invoke()
    except grpc.RpcError as error:
        return str(error.code().name)
    return "OK"


def unary(stub_method: Any, request: Any) -> Callable[[], Any]:
    return lambda: stub_method(request, timeout=RPC_TIMEOUT_SECONDS)


def reflection_call(channel: grpc.Channel, service: str) -> Callable[[], Any]:
    """One list_services request on `service` (v1 and v1alpha are the same messages on the wire)."""
    method = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )

    def invoke() -> None:
        [answer] = method(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=RPC_TIMEOUT_SECONDS
        )
        assert SERVICE in {entry.name for entry in answer.list_services_response.service}

    return invoke


def watch_then_cancel(health: health_pb2_grpc.HealthStub) -> Callable[[], Any]:
    """A Watch that reads its first status, then cancels: the server counts it Canceled."""

    def invoke() -> None:
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_SECONDS)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        next(watch)  # a cancelled call raises its RpcError (CANCELLED)

    return invoke


def exercise(server: Server) -> dict[str, str]:
    """The calls, by name, and the code each got from `server`."""
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = pb_grpc.MemoryRecordsServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    calls: dict[str, Callable[[], Any]] = {
        "BatchCreate": unary(
            stub.BatchCreate, pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create()])
        ),
        "BatchCreate without memory": unary(
            stub.BatchCreate, pb.BatchCreateRequest(memory_id="", records=[record_create()])
        ),
        "Get of an unknown record": unary(
            stub.Get, pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)
        ),
        "Get in an unknown memory": unary(
            stub.Get, pb.GetRequest(memory_id=UNKNOWN_MEMORY_ID, memory_record_id=RECORD_ID)
        ),
        "List": unary(stub.List, pb.ListRequest(memory_id=MEMORY_ID, namespace="users/alice")),
        "List again": unary(stub.List, pb.ListRequest(memory_id=MEMORY_ID, namespace="users/alice")),
        "List of an unknown memory": unary(
            stub.List, pb.ListRequest(memory_id=UNKNOWN_MEMORY_ID, namespace="users/alice")
        ),
        "Delete of an unknown record": unary(
            stub.Delete, pb.DeleteRequest(memory_id=MEMORY_ID, memory_record_id=UNKNOWN_RECORD_ID)
        ),
        "Retrieve without memory": unary(stub.Retrieve, pb.RetrieveRequest(memory_id="")),
        "BatchUpdate of bytes that are no request": unary(
            channel.unary_unary(f"/{SERVICE}/BatchUpdate"), UNDECODABLE
        ),
        "a method the service lacks": unary(channel.unary_unary(f"/{SERVICE}/Compact"), b""),
        "a service the server lacks": unary(
            channel.unary_unary("/agentcore.memory.v1.NoSuchService/Get"), b""
        ),
        "health Check": unary(health.Check, health_pb2.HealthCheckRequest()),
        "health Check of the service": unary(health.Check, health_pb2.HealthCheckRequest(service=SERVICE)),
        "health Check of an unknown name": unary(
            health.Check, health_pb2.HealthCheckRequest(service="no.such.Service")
        ),
        "health List": unary(health.List, health_pb2.HealthListRequest()),
        "health Watch, cancelled": watch_then_cancel(health),
        "reflection v1alpha": reflection_call(channel, REFLECTION_V1ALPHA),
        "reflection v1": reflection_call(channel, REFLECTION_V1),
    }
    try:
        return {name: code_of(invoke) for name, invoke in calls.items()}
    finally:
        channel.close()


TWIN_CODES = {
    "BatchCreate": "OK",
    "BatchCreate without memory": "INVALID_ARGUMENT",
    "Get of an unknown record": "NOT_FOUND",
    "Get in an unknown memory": "NOT_FOUND",
    "List": "OK",
    "List again": "OK",
    "List of an unknown memory": "NOT_FOUND",
    "Delete of an unknown record": "NOT_FOUND",
    "Retrieve without memory": "INVALID_ARGUMENT",
    "BatchUpdate of bytes that are no request": "INTERNAL",
    "a method the service lacks": "UNIMPLEMENTED",
    "a service the server lacks": "UNIMPLEMENTED",
    "health Check": "OK",
    "health Check of the service": "OK",
    "health Check of an unknown name": "NOT_FOUND",
    "health List": "OK",
    "health Watch, cancelled": "CANCELLED",
    "reflection v1alpha": "OK",
    "reflection v1": "OK",
}
# What the facade answers otherwise (see KNOWN_DIFFERENCES): it does not serve reflection v1, and
# calls a request it cannot parse the caller's mistake.
FACADE_CODES = {
    **TWIN_CODES,
    "BatchUpdate of bytes that are no request": "INVALID_ARGUMENT",
    "reflection v1": "UNIMPLEMENTED",
}


# --- the expositions -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Family:
    type: str
    help: str
    samples: dict[Series, float]


def canonical_le(value: str) -> str:
    """An `le` bound as a number's one spelling (Go writes `1`, Python `1.0`)."""
    bound = float(value)
    return "+Inf" if math.isinf(bound) else repr(bound)


def families(exposition: str) -> dict[str, Family]:
    """The grpc_* families of a text exposition, `le` in its canonical spelling."""
    found: dict[str, Family] = {}
    for family in text_string_to_metric_families(exposition):
        if not family.name.startswith("grpc_"):
            continue
        samples: dict[Series, float] = {}
        for sample in family.samples:
            labels = dict(sample.labels)
            if "le" in labels:
                labels["le"] = canonical_le(labels["le"])
            key = (sample.name, frozenset(labels.items()))
            assert key not in samples, f"{key} twice"
            samples[key] = sample.value
        found[family.name] = Family(family.type, family.documentation, samples)
    return found


def method_of(labels: Labels) -> tuple[str, str, str]:
    values = dict(labels)
    return values["grpc_type"], values["grpc_service"], values["grpc_method"]


def settled(exposition: str) -> bool:
    """Every RPC that started has finished and been timed (the cancelled Watch is counted once the
    server sees the cancellation, a moment after the client)."""
    parsed = families(exposition)
    started: dict[tuple[str, str, str], float] = {}
    finished: dict[tuple[str, str, str], float] = {}
    timed: dict[tuple[str, str, str], float] = {}
    for (_, labels), value in parsed["grpc_server_started"].samples.items():
        started[method_of(labels)] = value
    for (_, labels), value in parsed["grpc_server_handled"].samples.items():
        finished[method_of(labels)] = finished.get(method_of(labels), 0) + value
    for (name, labels), value in parsed["grpc_server_handling_seconds"].samples.items():
        if name.endswith("_count"):
            timed[method_of(labels)] = value
    watch = ("server_stream", HEALTH, "Watch")
    return started == finished == timed and started.get(watch) == 1


def scrape_settled(server: Server) -> str:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        exposition = server.scrape()
        if settled(exposition):
            return exposition
        assert time.monotonic() < deadline, f"{server.name}: RPCs still unfinished:\n{exposition}"
        time.sleep(0.05)


# --- the differences, each explained ---------------------------------------------------------------------


def gone(difference: Callable[..., None]) -> str:
    return f"known difference gone: strike {difference.__name__} off KNOWN_DIFFERENCES"


def of_service(samples: dict[Series, float], service: str, method: str | None = None) -> dict[Series, float]:
    return {
        (name, labels): value
        for (name, labels), value in samples.items()
        if dict(labels)["grpc_service"] == service and method in (None, dict(labels)["grpc_method"])
    }


def reflection_v1_only_in_go(go: dict[str, Family], facade: dict[str, Family]) -> None:
    """grpc-go's reflection.Register serves grpc.reflection.v1.ServerReflection beside v1alpha; Python's
    grpcio-reflection (1.85) has v1alpha only, so the facade answers v1 UNIMPLEMENTED and counts it
    nowhere (grpcurl and others try v1 first, then fall back). The twin's v1 series are there (and
    count its one call); the facade has none."""
    for name, family in go.items():
        go_v1 = of_service(family.samples, REFLECTION_V1)
        assert go_v1, f"{name}: the twin has no {REFLECTION_V1} series"
        assert not of_service(facade[name].samples, REFLECTION_V1), gone(reflection_v1_only_in_go)
        for key in go_v1:
            del family.samples[key]


def undecodable_requests_counted_by_the_facade_only(go: dict[str, Family], facade: dict[str, Family]) -> None:
    """grpc-go decodes a unary request before the interceptors run (the generated handler calls dec()
    first), so a request that does not parse is answered INTERNAL ("grpc: failed to unmarshal the
    received message") and go-grpc-middleware counts nothing of it. The facade parses the bytes in its
    servicer, within the metrics' interceptor, answers INVALID_ARGUMENT and counts a whole RPC: started,
    one message received (none sent: it did not end OK), handled InvalidArgument, timed. BatchUpdate
    gets that one call alone, so the twin's BatchUpdate series stay at 0."""
    method = ("unary", SERVICE, "BatchUpdate")
    counted_once = {
        "grpc_server_started_total": 1,
        "grpc_server_msg_received_total": 1,
        "grpc_server_msg_sent_total": 0,
        "grpc_server_handling_seconds_count": 1,
    }
    started = {
        key: value
        for key, value in facade["grpc_server_started"].samples.items()
        if method_of(key[1]) == method
    }
    assert set(started.values()) == {1}, gone(undecodable_requests_counted_by_the_facade_only)
    for name, family in go.items():
        go_samples = {key: value for key, value in family.samples.items() if method_of(key[1]) == method}
        assert go_samples and set(go_samples.values()) == {0}, f"{name}: the twin counted {go_samples}"
        ours = {key: facade[name].samples.get(key) for key in go_samples}
        for (sample, labels), value in ours.items():
            if sample == "grpc_server_handled_total":
                assert value == (dict(labels)["grpc_code"] == "InvalidArgument"), (sample, labels, value)
            elif sample in counted_once:
                assert value == counted_once[sample], (sample, value)
            facade[name].samples[(sample, labels)] = go_samples[(sample, labels)]


KNOWN_DIFFERENCES: tuple[Callable[[dict[str, Family], dict[str, Family]], None], ...] = (
    reflection_v1_only_in_go,
    undecodable_requests_counted_by_the_facade_only,
)


# --- the test ----------------------------------------------------------------------------------------------


def test_the_facade_counts_as_go_grpc_middleware_does() -> None:
    with twin() as go_server, facade() as facade_server:
        go_codes = exercise(go_server)
        facade_codes = exercise(facade_server)
        go_text = scrape_settled(go_server)
        facade_text = scrape_settled(facade_server)
    assert go_codes == TWIN_CODES
    assert facade_codes == FACADE_CODES
    compare(go_text, facade_text)


def compare(go_text: str, facade_text: str) -> None:
    """The two expositions alike but for the spelling of `le`, the timings and KNOWN_DIFFERENCES."""
    # The spellings that differ by the client library alone, and nothing else of the kind.
    assert 'le="1"}' in go_text and 'le="1.0"}' not in go_text
    assert 'le="1.0"}' in facade_text and 'le="1"}' not in facade_text

    go, ours = families(go_text), families(facade_text)
    assert (
        set(go)
        == set(ours)
        == {
            "grpc_server_started",
            "grpc_server_handled",
            "grpc_server_msg_received",
            "grpc_server_msg_sent",
            "grpc_server_handling_seconds",
        }
    )
    for name in go:
        assert (ours[name].type, ours[name].help) == (go[name].type, go[name].help), name
    # Unknown methods are counted on neither side.
    for text in (go_text, facade_text):
        assert "Compact" not in text and "NoSuchService" not in text

    for explain in KNOWN_DIFFERENCES:
        explain(go, ours)

    for name in go:
        go_samples, our_samples = go[name].samples, ours[name].samples
        only_go, only_ours = go_samples.keys() - our_samples.keys(), our_samples.keys() - go_samples.keys()
        assert not only_go and not only_ours, (
            f"{name}: only in Go {sorted(only_go)}; only in the facade {sorted(only_ours)}"
        )
        for key, go_value in go_samples.items():
            sample = key[0]
            if sample.endswith(("_bucket", "_sum")):
                continue  # timings: see below
            assert our_samples[key] == go_value, f"{key}: facade {our_samples[key]}, Go {go_value}"
    # Timings differ; the buckets' shape may not: cumulative, ending at _count, with the same bounds.
    for parsed in (go, ours):
        histogram = parsed["grpc_server_handling_seconds"].samples
        buckets: dict[Labels, list[tuple[float, float]]] = {}
        for (sample, labels), value in histogram.items():
            if sample.endswith("_bucket"):
                rest = frozenset(item for item in labels if item[0] != "le")
                buckets.setdefault(rest, []).append((float(dict(labels)["le"]), value))
        for rest, bounds in buckets.items():
            bounds.sort()
            counts = [count for _, count in bounds]
            assert counts == sorted(counts) and bounds[-1] == (
                math.inf,
                histogram[("grpc_server_handling_seconds_count", rest)],
            )
    # The facade's buckets are its LATENCY_BUCKETS (and so are the twin's, by the equality above).
    assert [bound for bound, _ in next(iter(buckets.values()))] == [*map(float, LATENCY_BUCKETS), math.inf]
