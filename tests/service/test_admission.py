"""admission.py: places and bytes admitted at once, and turns to call AWS handed out round-robin by
caller (weighted, first come first served within one caller), each bounded by the call's deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from service import calls
from service.admission import Admission, OverloadedError
from tests.service.helpers import FakeContext


def a_call(remaining: float | None, caller: str = "anonymous", weight: float = 1.0) -> calls.Call:
    call = calls.Call.opened(FakeContext(active=True, remaining=remaining))
    call.identity = caller  # what mutual TLS would have named it
    call.weight = weight
    return call


class Turns:
    """One turn, held by the test at first, and RPCs of named callers waiting for it: each writes its
    name down when its turn comes and keeps the turn until the test hands it on (serve)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entered = 0
        self.admission = Admission(max_rpcs=1000, max_bytes=10**9, max_running=1, count_waiting=self._count)
        self.order: list[str] = []
        self.expired: list[str] = []
        self._go = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._holder: Any = self.admission.turn(a_call(None))
        self._holder.__enter__()

    def _count(self, change: float) -> None:
        with self._lock:
            self._entered += change > 0

    def wait(self, name: str, *, weight: float = 1.0, remaining: float = 10.0) -> None:
        """An RPC of the caller `name` names before its `-`, waiting in line once this returns."""
        call = a_call(remaining, name.partition("-")[0], weight)

        def take() -> None:
            try:
                with self.admission.turn(call):
                    self.order.append(name)
                    self._go.acquire(timeout=10)
            except calls.DeadlineExceededError:
                self.expired.append(name)

        thread = threading.Thread(target=take)
        thread.start()
        self._threads.append(thread)
        _until(lambda: self._entered == len(self._threads))

    def serve(self, turns: int) -> list[str]:
        """Hand the turn on `turns` times, one at a time: who got them."""
        served = len(self.order)
        for got in range(served + 1, served + turns + 1):
            if self._holder is not None:
                self._holder.__exit__(None, None, None)
                self._holder = None
            else:
                self._go.release()
            _until(lambda got=got: len(self.order) == got)
        return self.order[served:]

    def finish(self) -> None:
        """Serve everyone left, and wait until every RPC has given its turn back."""
        self.serve(len(self._threads) - len(self.expired) - len(self.order))
        if self._holder is not None:  # nobody was waiting
            self._holder.__exit__(None, None, None)
        else:
            self._go.release()
        for thread in self._threads:
            thread.join(timeout=5)
        assert not any(thread.is_alive() for thread in self._threads)


def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.001)


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


def test_one_callers_turns_go_to_its_longest_waiter_first() -> None:
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


def test_a_caller_with_one_rpc_waiting_goes_before_another_callers_second_to_hundredth() -> None:
    turns = Turns()
    for number in range(100):
        turns.wait(f"busy-{number}")
    turns.wait("quiet-0")
    # Both lines start together: the older first RPC goes first, then the quiet caller's.
    assert turns.serve(3) == ["busy-0", "quiet-0", "busy-1"]
    turns.finish()
    assert turns.order[2:] == [f"busy-{number}" for number in range(1, 100)]  # in order within a caller


def test_weights_share_the_turns_between_waiting_callers() -> None:
    turns = Turns()
    for number in range(30):
        turns.wait(f"heavy-{number}", weight=2)
        turns.wait(f"light-{number}", weight=1)
    served = turns.serve(30)
    heavy = [name for name in served if name.startswith("heavy")]
    light = [name for name in served if name.startswith("light")]
    assert abs(len(heavy) - 20) <= 1 and abs(len(light) - 10) <= 1  # 2:1
    assert heavy == [f"heavy-{number}" for number in range(len(heavy))]
    assert light == [f"light-{number}" for number in range(len(light))]
    turns.finish()


def test_a_caller_that_was_not_waiting_goes_next_but_banks_no_credit() -> None:
    turns = Turns()
    for number in range(20):
        turns.wait(f"busy-{number}")
    turns.serve(10)  # ten turns to the busy caller while the other sent nothing
    for number in range(10):
        turns.wait(f"late-{number}")
    served = turns.serve(10)
    assert served[0] == "late-0"
    # Alternating from then on: not the late caller's ten in a row for the time it was quiet.
    assert sum(name.startswith("late") for name in served) == 5
    turns.finish()


def test_a_deadline_that_passes_while_waiting_takes_the_rpc_out_of_its_callers_line() -> None:
    turns = Turns()
    turns.wait("a-first")
    turns.wait("a-expires", remaining=0.05)
    turns.wait("a-third")
    turns.wait("b-expires", remaining=0.05)  # its caller's only RPC waiting
    _until(lambda: len(turns.expired) == 2)
    turns.wait("b-later")
    assert turns.serve(3) == ["a-first", "b-later", "a-third"]
    turns.finish()
    assert sorted(turns.expired) == ["a-expires", "b-expires"]
    with turns.admission.turn(a_call(0.05)):  # no stale place kept the turn
        pass


def test_the_wait_a_quiet_caller_faces_counts_the_fair_order_not_the_whole_line() -> None:
    """Turns have been held 0.1 s each, and the one turn is held: the busy caller's tenth RPC faces
    its nine waiting, about 1 s with its own call, and is refused with 0.5 s left; the quiet caller's
    first faces one (the busy caller's first), about 0.2 s, and waits its turn (first come first
    served, it too would face nine, and be refused)."""
    waiting: list[float] = []
    admission = Admission(max_rpcs=100, max_bytes=10**9, max_running=1, count_waiting=waiting.append)
    with admission.turn(a_call(None)):
        time.sleep(0.1)
    got: list[float] = []
    with admission.turn(a_call(None)):
        busy = [threading.Thread(target=_take_turn, args=(admission, a_call(10, "busy"))) for _ in range(9)]
        for thread in busy:
            thread.start()
        _until(lambda: len(waiting) == 9)
        with pytest.raises(OverloadedError) as refused, admission.turn(a_call(0.5, "busy")):
            pass
        assert refused.value.reason == "turns"
        quiet = threading.Thread(target=lambda: got.append(_take_turn(admission, a_call(0.5, "quiet"))))
        quiet.start()
        _until(lambda: len(waiting) == 10)  # waiting, not refused
    for thread in [*busy, quiet]:
        thread.join(timeout=5)
    assert len(got) == 1
