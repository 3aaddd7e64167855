"""The journal of received requests, for tests that assert what a client actually sent.

It holds record text, so it is only ever handed to the embedding code, never logged.
"""

from __future__ import annotations

import threading
from collections import deque

from emulator.restjson.wire import ReceivedRequest


class Journal:
    """A bounded, thread-safe log of requests, oldest first."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("journal size must not be negative")
        self._lock = threading.Lock()
        self._entries: deque[ReceivedRequest] = deque(maxlen=size)

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._entries.append(request)

    def entries(self, operation: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            snapshot = list(self._entries)
        if operation is None:
            return snapshot
        return [entry for entry in snapshot if entry.operation == operation]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
