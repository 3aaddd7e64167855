"""Files re-read when they change on disk, keeping the last version that loaded: the TLS certificates
(tls.WatchedPair) and the authorization policy (authz.PolicyFile) rotate the same way.

A change is seen by the files' stat (device, inode, size, mtime), following symlinks: Kubernetes swaps
a `..data` link when a Secret or ConfigMap changes. A change that does not load leaves the last good
version in force; the owner logs it and is told either way through `on_reload(ok)`, for the metrics."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


def _signature(paths: Sequence[str]) -> tuple[object, ...]:
    signature: list[object] = []
    for path in paths:
        try:
            found = os.stat(path)
            signature.append((found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns))
        except OSError:
            signature.append(None)
    return tuple(signature)


class WatchedFiles(Generic[T]):
    """`paths` and the last value `load()` made of them. `load` raises `refused` (or a subclass) when
    they do not load: at start that stops the process; later the last good value stays.

    `refresh()` is safe from any thread; it looks at the files no more often than
    `check_interval_seconds` (0: at every call)."""

    def __init__(
        self,
        paths: Sequence[str],
        load: Callable[[], T],
        *,
        refused: type[Exception],
        on_reload: Callable[[bool], None] = lambda ok: None,
        check_interval_seconds: float = 0.0,
    ) -> None:
        self.paths = tuple(paths)
        self._load = load
        self._refused = refused
        self._on_reload = on_reload
        self._interval = check_interval_seconds
        self._lock = threading.Lock()
        self._checked_at = time.monotonic()
        self._signature = _signature(self.paths)
        self.value = load()

    def refresh(self) -> tuple[T, T] | Exception | None:
        """None when the files did not change (or were looked at less than the interval ago); the
        error a change failed to load with; or (the previous value, the new one)."""
        if self._interval and time.monotonic() - self._checked_at < self._interval:
            return None
        with self._lock:
            self._checked_at = time.monotonic()
            signature = _signature(self.paths)
            if signature == self._signature:
                return None
            self._signature = signature
            try:
                value = self._load()
            except self._refused as exc:
                self._on_reload(False)
                return exc
            previous, self.value = self.value, value
            # Inside the lock: a later failed reload's report must not be overwritten by this one.
            self._on_reload(True)
        return previous, value
