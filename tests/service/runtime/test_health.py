"""health.py: grpc.health.v1 Check, List and Watch on a real grpc.aio server on 127.0.0.1, as a probe sees
them: SERVING, NOT_SERVING on stop, unknown names answered and never kept, Watches told of every change
and ended when the server stops."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.runtime import health

SERVICE = "agentcore.memory.v1.MemoryRecordsService"
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
# How long any one test may wait for an answer before it fails.
TEST_SECONDS = 10.0


class Served:
    """A Health on a started server, and a channel to it."""

    def __init__(self, servicer: health.Health, channel: grpc.aio.Channel) -> None:
        self.health = servicer
        self.channel = channel
        self.stub = health_pb2_grpc.HealthStub(channel)

    async def check(self, service: str = "") -> int:
        reply = await self.stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)

    def watch(self, service: str = "") -> Any:
        return self.stub.Watch(health_pb2.HealthCheckRequest(service=service))


@contextlib.asynccontextmanager
async def served(read_timeout_seconds: float = 5.0) -> AsyncIterator[Served]:
    servicer = health.Health((SERVICE,))
    server = grpc.aio.server()
    servicer.add_to_server(server, read_timeout_seconds=read_timeout_seconds)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Served(servicer, channel)
    finally:
        await server.stop(None)


def run(scenario: Callable[[Served], Awaitable[None]], **options: Any) -> None:
    """`scenario` against a fresh server, on an event loop of its own, within TEST_SECONDS."""

    async def main() -> None:
        async with asyncio.timeout(TEST_SECONDS), served(**options) as serving:
            await scenario(serving)

    asyncio.run(main())


async def next_status(watch: Any) -> int:
    reply = await watch.read()
    assert reply is not grpc.aio.EOF
    return int(reply.status)


async def until(condition: Callable[[], bool]) -> None:
    """Waits, a few milliseconds at a time, until `condition` holds (the test's own timeout bounds it)."""
    while not condition():
        await asyncio.sleep(0.01)


async def refusal(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


# --- Check --------------------------------------------------------------------------------------


def test_the_server_and_each_served_name_start_serving() -> None:
    async def scenario(serving: Served) -> None:
        assert await serving.check("") == health.SERVING
        assert await serving.check(SERVICE) == health.SERVING

    run(scenario)


def test_a_name_set_not_serving_is_checked_as_not_serving_and_the_others_still_serve() -> None:
    async def scenario(serving: Served) -> None:
        serving.health.set(SERVICE, health.NOT_SERVING)
        assert await serving.check(SERVICE) == health.NOT_SERVING
        assert await serving.check("") == health.SERVING
        serving.health.set(SERVICE, health.SERVING)
        assert await serving.check(SERVICE) == health.SERVING

    run(scenario)


def test_every_name_is_not_serving_once_the_server_is_stopping() -> None:
    async def scenario(serving: Served) -> None:
        serving.health.enter_graceful_shutdown()
        assert await serving.check("") == health.NOT_SERVING
        assert await serving.check(SERVICE) == health.NOT_SERVING

    run(scenario)


def test_list_answers_every_served_name_and_its_status() -> None:
    async def scenario(serving: Served) -> None:
        serving.health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        reply = await serving.stub.List(health_pb2.HealthListRequest(), timeout=5)
        assert {name: response.status for name, response in reply.statuses.items()} == {
            "": health_pb2.HealthCheckResponse.SERVING,
            SERVICE: health_pb2.HealthCheckResponse.NOT_SERVING,
        }

    run(scenario)


def test_checking_an_unknown_name_is_not_found_and_keeps_nothing_for_it() -> None:
    async def scenario(serving: Served) -> None:
        error = await refusal(serving.check("no.such.Service"))
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert error.details() == "unknown service"
        assert serving.health.status("no.such.Service") is None
        assert "no.such.Service" not in serving.health._statuses
        assert "no.such.Service" not in serving.health._watchers

    run(scenario)


@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x01\xff"], ids=["not protobuf", "name not UTF-8"])
def test_a_request_that_is_not_a_health_check_request_is_invalid(raw: bytes) -> None:
    async def scenario(serving: Served) -> None:
        check = serving.channel.unary_unary(CHECK)
        error = await refusal(check(raw, timeout=5))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == "not a HealthCheckRequest"

    run(scenario)


def test_a_check_whose_request_never_arrives_ends_at_the_read_timeout() -> None:
    async def scenario(serving: Served) -> None:
        call = serving.channel.stream_unary(CHECK)()  # opened, and no request written
        error = await refusal(call)
        assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert error.details() == "the request did not arrive in time"

    run(scenario, read_timeout_seconds=0.2)


def test_a_check_closed_without_a_request_is_refused() -> None:
    async def scenario(serving: Served) -> None:
        call = serving.channel.stream_unary(CHECK)()
        await call.done_writing()
        error = await refusal(call)
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED

    run(scenario)


# --- Watch --------------------------------------------------------------------------------------


def test_a_watch_is_told_the_status_at_once_and_then_each_change() -> None:
    async def scenario(serving: Served) -> None:
        watch = serving.watch(SERVICE)
        assert await next_status(watch) == health.SERVING
        serving.health.set(SERVICE, health.NOT_SERVING)
        assert await next_status(watch) == health.NOT_SERVING
        # Setting the same status again is no change: the next message is the next change.
        serving.health.set(SERVICE, health.NOT_SERVING)
        serving.health.set(SERVICE, health.SERVING)
        assert await next_status(watch) == health.SERVING
        watch.cancel()

    run(scenario)


def test_a_watch_is_told_of_a_change_made_on_another_thread() -> None:
    async def scenario(serving: Served) -> None:
        watch = serving.watch("")
        assert await next_status(watch) == health.SERVING
        setter = threading.Thread(target=serving.health.set, args=("", health.NOT_SERVING))
        setter.start()
        setter.join(timeout=5)
        assert await next_status(watch) == health.NOT_SERVING
        watch.cancel()

    run(scenario)


def test_every_watch_is_told_not_serving_when_the_server_starts_stopping() -> None:
    async def scenario(serving: Served) -> None:
        watches = [serving.watch(""), serving.watch(SERVICE), serving.watch(SERVICE)]
        for watch in watches:
            assert await next_status(watch) == health.SERVING
        serving.health.enter_graceful_shutdown()
        for watch in watches:
            assert await next_status(watch) == health.NOT_SERVING
            watch.cancel()

    run(scenario)


def test_ending_the_watches_ends_every_open_one_and_any_later_one_with_ok() -> None:
    """When the drain is over the server ends the Watches (a client balancing by health keeps one
    open, which would hold the stop for its whole grace): open ones of served and unknown names, and
    one that starts afterwards, end with OK after their last status, leaving nothing behind."""

    async def scenario(serving: Served) -> None:
        watches = [serving.watch(""), serving.watch(SERVICE), serving.watch("no.such.Service")]
        for watch in watches:
            await next_status(watch)
        serving.health.enter_graceful_shutdown()
        for watch in watches[:2]:
            assert await next_status(watch) == health.NOT_SERVING
        serving.health.end_watches()
        later = serving.watch(SERVICE)
        assert await next_status(later) == health.NOT_SERVING
        for watch in [*watches, later]:
            assert await watch.read() is grpc.aio.EOF
            assert await watch.code() == grpc.StatusCode.OK
        await until(lambda: not serving.health._unserved)
        assert all(not watchers for watchers in serving.health._watchers.values())

    run(scenario)


def test_watching_an_unknown_name_answers_service_unknown_and_stays_open_keeping_nothing() -> None:
    async def scenario(serving: Served) -> None:
        watch = serving.watch("no.such.Service")
        assert await next_status(watch) == health.SERVICE_UNKNOWN
        assert not watch.done()
        # The open Watch blocks nothing, and nothing is kept for its name.
        assert await serving.check("") == health.SERVING
        assert "no.such.Service" not in serving.health._statuses
        assert "no.such.Service" not in serving.health._watchers
        assert all(not watchers for watchers in serving.health._watchers.values())
        watch.cancel()

    run(scenario)


def test_a_cancelled_watch_leaves_nothing_behind() -> None:
    async def scenario(serving: Served) -> None:
        watches = [serving.watch(SERVICE) for _ in range(5)]
        for watch in watches:
            assert await next_status(watch) == health.SERVING
        assert len(serving.health._watchers[SERVICE]) == 5
        for watch in watches:
            watch.cancel()
        await until(lambda: not serving.health._watchers[SERVICE])
        # Health still answers, and a new Watch is told as before.
        watch = serving.watch(SERVICE)
        assert await next_status(watch) == health.SERVING
        watch.cancel()

    run(scenario)


def test_a_watch_whose_request_never_arrives_ends_at_the_read_timeout() -> None:
    async def scenario(serving: Served) -> None:
        watch = serving.channel.stream_stream(WATCH)()  # opened, and no request written
        error = await refusal(watch.read())
        assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert not serving.health._watchers[""]

    run(scenario, read_timeout_seconds=0.2)


# --- the state itself ---------------------------------------------------------------------------


def test_setting_a_name_the_server_does_not_serve_is_refused() -> None:
    servicer = health.Health((SERVICE,))
    with pytest.raises(KeyError):
        servicer.set("no.such.Service", health.NOT_SERVING)
    assert servicer.status("no.such.Service") is None


def test_the_health_service_name_is_the_protocols() -> None:
    assert health.HEALTH_SERVICE_NAME == "grpc.health.v1.Health"
