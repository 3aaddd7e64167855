"""What only the facade's unit tests (tests/service/) use: a stand-in for grpc's servicer context."""

from __future__ import annotations

import grpc


class FakeContext:
    """The little of grpc.aio.ServicerContext that the caller-gone and deadline logic reads."""

    def __init__(self, *, active: bool, remaining: float | None, code: grpc.StatusCode | None = None) -> None:
        self.active, self.remaining, self._code = active, remaining, code

    def cancelled(self) -> bool:
        return not self.active

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def time_remaining(self) -> float | None:
        return self.remaining
