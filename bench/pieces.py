"""`python -m bench.pieces`: where the facade's instructions per call go, each piece counted alone.

A worker process under callgrind holds what one facade call uses (the facade's boto3 client with its
metric hooks, the metrics, the access log writing to /dev/null) and runs one piece of the call many
times while callgrind counts (`callgrind_control -i on|off` around the window, as `make bench`):
parsing the proto request, our one pass to boto3 parameters, botocore's serialization, SigV4
signing, the whole boto3 call to the emulator (the three before, its hooks, endpoint and retry
handlers, urllib3's HTTP and the reply's parsing), the reply's parsing alone, translating back,
serializing the response, the access-log line, and the gRPC server metrics. The rest of the facade's
count (`python -m bench.instructions`) is gRPC's server, the interceptors and the servicer's glue.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.processes import ROOT, Caller, _command, environment, start_emulator

SCENARIOS = {"update1": ("update", 1), "update100": ("update", 100), "get": ("get", 0)}
PIECES = (
    "nothing",  # the command channel alone, subtracted from every other piece
    "parse request",
    "our pass (validate + translate)",
    "botocore serialize",
    "SigV4 signing",
    "whole boto3 call",
    "botocore parse reply",
    "translate reply",
    "serialize response",
    "access log line",
    "gRPC server metrics",
)


def _worker(emulator_url: str) -> None:  # noqa: PLR0915 - one closure per piece reads best here
    import botocore.auth
    import botocore.awsrequest
    import botocore.parsers
    import botocore.serialize
    import grpc
    from agentcore.memory.v1 import memory_records_pb2 as pb
    from google.protobuf import timestamp_pb2

    from bench.caller import MEMORY_ID, TEXT
    from service import calls, settings
    from service.api import operations, validate
    from service.telemetry import access_log, aws_hooks, json_logs
    from service.telemetry.metrics import Metrics
    from service.upstream import aws

    config = settings.Settings.from_env({"AGENTCORE_BACKEND": "local"})
    client: Any = aws.create_client(config, endpoint_url=emulator_url)
    metrics = Metrics(backend="local")
    aws_hooks.AwsCallRecorder(metrics.aws_calls).instrument(client)
    json_logs.configure("INFO")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    access_log_reporter = access_log.AccessLog()
    model = client.meta.service_model
    serializer = botocore.serialize.create_serializer("rest-json", include_validation=False)
    parser = botocore.parsers.create_parser("rest-json")
    credentials = client._request_signer._credentials

    created = client.batch_create_memory_records(
        memoryId=MEMORY_ID,
        records=[
            {"requestIdentifier": f"r{i}", "namespaces": ["bench"], "content": {"text": TEXT}, "timestamp": 1}
            for i in range(100)
        ],
    )
    ids = [record["memoryRecordId"] for record in created["successfulRecords"]]

    def request_of(op: str, records: int) -> tuple[operations.Operation[Any, Any], Any]:
        if op == "get":
            return operations.GET, pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=ids[0])
        return operations.BATCH_UPDATE, pb.BatchUpdateRequest(
            memory_id=MEMORY_ID,
            records=[
                pb.MemoryRecordUpdate(
                    memory_record_id=record_id,
                    timestamp=timestamp_pb2.Timestamp(seconds=2),
                    content=pb.MemoryContent(text=TEXT),
                )
                for record_id in ids[:records]
            ],
        )

    def pieces(op: str, records: int) -> dict[str, Callable[[], Any]]:
        operation, request = request_of(op, records)
        raw = request.SerializeToString()
        params = validate.validated_params(operation, request)
        operation_model = model.operation_model(operation.aws_operation)
        serialized = serializer.serialize_to_request(params, operation_model)
        serialized["url_path"] = serialized["url_path"].replace("{memoryId}", MEMORY_ID)
        http_request = botocore.awsrequest.AWSRequest(
            method=serialized["method"],
            url=emulator_url + serialized["url_path"],
            data=serialized["body"],
            headers=dict(serialized["headers"]),
        )
        signer = botocore.auth.SigV4Auth(credentials, "bedrock-agentcore", "us-east-1")
        reply_body = {"body": b"", "headers": {}, "status_code": 200}

        def capture(http_response: Any, **_: Any) -> None:
            reply_body.update(body=http_response.content, headers=dict(http_response.headers))

        client.meta.events.register("after-call.bedrock-agentcore", capture, unique_id="bench-capture")
        reply = operation.call_aws(client, params)
        client.meta.events.unregister("after-call.bedrock-agentcore", unique_id="bench-capture")
        response = operation.to_response(reply)
        # A caller without a client certificate, as the bench's own: the access log names it `anonymous`.
        context = types.SimpleNamespace(auth_context=dict)
        call = calls.Call(context=context, full_method=operation.full_method)
        call.request, call.response, call.code = request, response, grpc.StatusCode.OK
        call.aws_request_id = "00000000-0000-0000-0000-000000000000"

        def sign() -> None:
            http_request.headers = botocore.awsrequest.HTTPHeaders()
            for name, value in serialized["headers"].items():
                http_request.headers[name] = value
            signer.add_auth(http_request)

        def server_metrics() -> None:
            metrics.server.started(call)
            metrics.server.received(call)
            metrics.server.sent(call)
            metrics.server.finished(call)

        return {
            "nothing": lambda: None,
            "parse request": lambda: validate.parse(operation, raw),
            "our pass (validate + translate)": lambda: validate.validated_params(operation, request),
            "botocore serialize": lambda: serializer.serialize_to_request(params, operation_model),
            "SigV4 signing": sign,
            "whole boto3 call": lambda: operation.call_aws(client, params),
            "botocore parse reply": lambda: parser.parse(reply_body, operation_model.output_shape),
            "translate reply": lambda: operation.to_response(reply),
            "serialize response": response.SerializeToString,
            "access log line": lambda: access_log_reporter.finished(call),
            "gRPC server metrics": server_metrics,
        }

    built = {scenario: pieces(*SCENARIOS[scenario]) for scenario in SCENARIOS}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            return
        piece = built[command["scenario"]][command["piece"]]
        for _ in range(command["calls"]):
            piece()
        print("{}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pieces", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="runs of each piece counted (default 20)")
    parser.add_argument("--only", help="count only the pieces whose name contains this text")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("scenarios", nargs="*", help=f"any of {' '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return 0
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {' '.join(sorted(unknown))}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-pieces-"))
    emulator = start_emulator(0.0)
    env = environment(PYTHONHASHSEED="0")
    popen = subprocess.Popen(
        _command(["-m", "bench.pieces", "--worker", emulator.address], scratch / "pieces"),
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert popen.stdout is not None
    assert json.loads(popen.stdout.readline()) == {"ready": True}
    worker = Caller(popen, "", scratch / "pieces")
    try:
        for scenario in args.scenarios or SCENARIOS:
            counted: dict[str, float] = {}
            for piece in PIECES:
                if args.only and piece != "nothing" and args.only not in piece:
                    continue
                command = {"op": "run", "scenario": scenario, "piece": piece, "calls": args.calls}
                worker.send({**command, "calls": 2})  # warm
                total = worker.instructions(lambda command=command: worker.send(command))
                counted[piece] = total / args.calls
            floor = counted.pop("nothing")
            print(f"{scenario}:")
            for piece, count in counted.items():
                print(f"  {piece:<34} {(count - floor) / 1e6:7.3f}M", flush=True)
    finally:
        worker.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
