"""The journal of received requests, for tests that assert what a client actually sent.

It holds record text, so it is only ever handed to the embedding code, never logged.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as received; ``operation`` is None when no route matched."""

    operation: str | None
    method: str
    path: str  # as sent (percent-encoded), without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def json(self) -> Any:
        """The parsed JSON body, or None when the body is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


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
