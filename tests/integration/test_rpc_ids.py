"""Every log line of an RPC names it (`method`, `rpcId`), so that an error line joins its access-log
line, and the caller gets the same id back in the response's x-request-id (trailing metadata), to quote
in a support ticket: through `python -m service` on the emulator (refusing every call with AccessDenied
in the first test)."""

from __future__ import annotations

import grpc
import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb
from agentcore.memory.v1 import memory_records_pb2_grpc as pb_grpc

from service import calls
from service.api import operations
from tests.helpers import MEMORY_ID, RECORD_ID, read_json_line, service_process


def test_an_error_line_and_the_access_line_carry_the_id_the_caller_got() -> None:
    with service_process(read_log=True, LOCAL_FAULTS="AccessDeniedException=1") as (process, start):
        assert process.stderr is not None
        with grpc.insecure_channel(f"127.0.0.1:{start['grpcPort']}") as channel:
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id=RECORD_ID), timeout=10)
        error = refused.value
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        [request_id] = [value for key, value in error.trailing_metadata() if key == calls.REQUEST_ID_HEADER]
        withheld = read_json_line(process.stderr, "AWS message withheld from the caller")
        finished = read_json_line(process.stderr, "finished call")
    for line in (withheld, finished):
        assert (line["method"], line["rpcId"]) == (operations.GET.full_method, request_id), line
    assert len(str(request_id)) == 16


def test_each_rpc_gets_an_id_of_its_own_refused_before_aws_or_answered() -> None:
    with service_process(read_log=True) as (process, start):
        assert process.stderr is not None
        with grpc.insecure_channel(f"127.0.0.1:{start['grpcPort']}") as channel:
            stub = pb_grpc.MemoryRecordsServiceStub(channel)
            ids = []
            for _ in range(3):
                with pytest.raises(grpc.RpcError) as refused:
                    stub.Get(pb.GetRequest(memory_id=MEMORY_ID, memory_record_id="mem-1"), timeout=10)
                assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                ids += [v for k, v in refused.value.trailing_metadata() if k == calls.REQUEST_ID_HEADER]
            _, answered = stub.List.with_call(pb.ListRequest(memory_id=MEMORY_ID, namespace="n"), timeout=10)
            ids += [v for k, v in answered.trailing_metadata() if k == calls.REQUEST_ID_HEADER]
            logged = [read_json_line(process.stderr, "finished call")["rpcId"] for _ in range(4)]
    assert len(set(ids)) == 4
    assert logged == ids
