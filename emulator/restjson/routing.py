"""The operation table: which handler answers which HTTP method and path.

Method, URI template and success status come from the service model, so adding an operation is
one entry in ``HANDLERS``. Each operation's request binder and validator are compiled here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

from emulator import backend as operations
from emulator.context import Handler
from emulator.restjson.binding import RequestBinder
from emulator.restjson.model import service_model
from emulator.restjson.validation import ShapeValidator

HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "BatchCreateMemoryRecords": operations.batch_create_memory_records,
        "BatchUpdateMemoryRecords": operations.batch_update_memory_records,
        "GetMemoryRecord": operations.get_memory_record,
        "DeleteMemoryRecord": operations.delete_memory_record,
        "BatchDeleteMemoryRecords": operations.batch_delete_memory_records,
    }
)


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    # Literal segments, or "{label}" / "{label+}" (greedy, last segment only) placeholders.
    segments: tuple[str, ...]
    success_status: int
    binder: RequestBinder
    validator: ShapeValidator
    handler: Handler

    @property
    def literal_count(self) -> int:
        return sum(1 for segment in self.segments if not segment.startswith("{"))

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """URI labels when the (already percent-decoded) segments fit the template, else None."""
        labels: dict[str, str] = {}
        for index, template in enumerate(self.segments):
            if template.endswith("+}"):
                if index >= len(segments):
                    return None
                labels[template[1:-2]] = "/".join(segments[index:])
                return labels
            if index >= len(segments):
                return None
            if template.startswith("{"):
                labels[template[1:-1]] = segments[index]
            elif template != segments[index]:
                return None
        return labels if len(segments) == len(self.segments) else None


@dataclass(frozen=True)
class RouteMatch:
    operation: Operation
    labels: dict[str, str]


class RouteTable:
    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        model = service_model()
        compiled = [_compile(model.operation_model(name), handler) for name, handler in handlers.items()]
        # Templates with more literal segments win, as in Smithy routing.
        self._operations = sorted(compiled, key=lambda op: op.literal_count, reverse=True)

    @property
    def operations(self) -> list[Operation]:
        return list(self._operations)

    def resolve(self, method: str, path: str) -> RouteMatch | None:
        # Split before decoding so an encoded "/" (as in a memory ARN) stays inside its label.
        segments = [unquote(segment) for segment in path.lstrip("/").split("/")]
        for operation in self._operations:
            if operation.method != method:
                continue
            labels = operation.match(segments)
            if labels is not None:
                return RouteMatch(operation, labels)
        return None


def _compile(operation_model: Any, handler: Handler) -> Operation:
    http: Mapping[str, Any] = operation_model.http
    request_uri = str(http["requestUri"]).split("?", 1)[0]
    return Operation(
        name=str(operation_model.name),
        method=str(http["method"]),
        segments=tuple(request_uri.lstrip("/").split("/")),
        success_status=int(http.get("responseCode", 200)),
        binder=RequestBinder(operation_model.input_shape),
        validator=ShapeValidator(operation_model.input_shape),
        handler=handler,
    )


ROUTES = RouteTable(HANDLERS)
