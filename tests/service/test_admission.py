"""admission.py: places and bytes admitted at once, and turns to call AWS handed out first come, first
served, each bounded by the call's deadline."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from service import calls
from service.admission import Admission, OverloadedError
from tests.service.helpers import FakeContext


def a_call(remaining: float | None) -> calls.Call:
    return calls.Call.opened(FakeContext(active=True, remaining=remaining))


def test_places_and_bytes_are_bounded_and_given_back() -> None:
    admission = Admission(max_rpcs=2, max_bytes=100, max_running=1)
    with admission.admitted(60):
        with pytest.raises(OverloadedError) as too_big, admission.admitted(50):
            pass
        assert too_big.value.reason == "bytes"
        with admission.admitted(40):
            with pytest.raises(OverloadedError) as too_many, admission.admitted(1):
                pass
            assert too_many.value.reason == "rpcs"
    with pytest.raises(RuntimeError), admission.admitted(100):  # a failure gives its place back too
        raise RuntimeError
    with admission.admitted(1_000):  # alone, any size gets in
        pass


def test_turns_go_to_the_longest_waiter_first() -> None:
    order: list[str] = []
    waiting: list[float] = []
    admission = Admission(max_rpcs=10, max_bytes=10**9, max_running=1, count_waiting=waiting.append)

    def take(name: str) -> None:
        with admission.turn(a_call(10.0)):
            order.append(name)

    with admission.turn(a_call(10.0)):
        threads = []
        for name in ("first", "second", "third"):
            thread = threading.Thread(target=take, args=(name,))
            thread.start()
            threads.append(thread)
            while len(waiting) < len(threads):  # each is waiting before the next arrives
                time.sleep(0.001)
        # A newcomer does not jump the queue while others wait.
        late = threading.Thread(target=take, args=("late",))
        late.start()
        threads.append(late)
        while len(waiting) < 4:
            time.sleep(0.001)
    for thread in threads:
        thread.join(timeout=5)
    assert order == ["first", "second", "third", "late"]
    assert sum(waiting) == 0


def test_a_deadline_that_passes_while_waiting_gives_up_without_a_turn() -> None:
    admission = Admission(max_rpcs=10, max_bytes=10**9, max_running=1)
    with (
        admission.turn(a_call(None)),
        pytest.raises(calls.DeadlineExceededError),
        admission.turn(a_call(0.05)),
    ):
        pass
    with admission.turn(a_call(0.05)):  # the turn came back; nobody holds a stale place in line
        pass


def test_any_deadline_a_caller_can_send_is_waited_for() -> None:
    """grpc-timeout allows deadlines far past what threading accepts as a timeout."""
    admission = Admission(max_rpcs=10, max_bytes=10**9, max_running=1)
    got: list[Any] = []
    holder = admission.turn(a_call(None))
    holder.__enter__()
    waiter = threading.Thread(target=lambda: got.append(admission.turn(a_call(3.6e11)).__enter__()))
    waiter.start()
    time.sleep(0.05)
    holder.__exit__(None, None, None)
    waiter.join(timeout=5)
    assert got == [None]


def test_a_wait_longer_than_the_deadline_is_refused_at_once() -> None:
    """Turns have been held 0.2 s each: with one turn and one holder, the next in line waits about
    0.2 s, so a caller with 0.05 s left is refused at once, and one with 2 s left waits its turn."""
    admission = Admission(max_rpcs=10, max_bytes=10**9, max_running=1)
    with admission.turn(a_call(None)):
        time.sleep(0.2)
    got: list[float] = []
    with admission.turn(a_call(None)):
        started = time.monotonic()
        with pytest.raises(OverloadedError) as refused, admission.turn(a_call(0.05)):
            pass
        assert refused.value.reason == "turns"
        assert time.monotonic() - started < 0.04  # at once, not after its deadline
        waiter = threading.Thread(target=lambda: got.append(_take_turn(admission, a_call(2))))
        waiter.start()
        time.sleep(0.1)
    waiter.join(timeout=5)
    assert len(got) == 1


def _take_turn(admission: Admission, call: calls.Call) -> float:
    with admission.turn(call):
        return time.monotonic()


def test_turns_held_past_the_attempt_timeout_are_stuck_and_then_refuse_at_once() -> None:
    reported: list[float] = []
    admission = Admission(
        max_rpcs=10, max_bytes=10**9, max_running=2, stuck_after_seconds=0.1, report_stuck=reported.append
    )
    first, second = admission.turn(a_call(None)), admission.turn(a_call(None))
    first.__enter__()
    time.sleep(0.05)
    second.__enter__()
    time.sleep(0.08)
    assert reported == [1]  # the first only, as time passed, without any call to the admission
    time.sleep(0.06)
    assert reported == [1, 2]
    with pytest.raises(OverloadedError) as refused, admission.turn(a_call(30)):
        pass
    assert refused.value.reason == "turns"
    assert "AWS_ATTEMPT_TIMEOUT_SECONDS" in str(refused.value)
    first.__exit__(None, None, None)
    assert reported == [1, 2, 1]
    with admission.turn(a_call(30)):  # a turn is free again
        pass
    second.__exit__(None, None, None)
    assert reported[-1] == 0
