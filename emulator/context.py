"""What an operation handler receives besides its validated input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.store import Store


@dataclass(frozen=True)
class OperationContext:
    operation: str
    memory_id: str  # canonical id, already checked to be a configured memory
    store: Store
    now_us: int


# A handler takes the validated input (keyed by member name) and returns the JSON output.
Handler = Callable[[OperationContext, dict[str, Any]], dict[str, Any]]
