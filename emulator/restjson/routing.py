"""The route table: which handler answers which HTTP method and path.

Method, URI template and success status come from the service model, so a service adds an operation
with one entry in its handlers mapping. Each route's request binder and validator are compiled here,
once per table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from emulator.restjson.binding import RequestBinder
from emulator.restjson.validation import ShapeValidator

# A handler takes the validated input (keyed by member name) and returns the JSON output.
Handler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    operation: str
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
    route: Route
    labels: dict[str, str]


class RouteTable:
    def __init__(self, model: Any, handlers: Mapping[str, Handler]) -> None:
        self.model = model
        compiled = [_compile(model.operation_model(name), handler) for name, handler in handlers.items()]
        # Templates with more literal segments win, as in Smithy routing.
        self._routes = sorted(compiled, key=lambda route: route.literal_count, reverse=True)

    def resolve(self, method: str, path: str) -> RouteMatch | None:
        # Split before decoding so an encoded "/" (as in an ARN) stays inside its label.
        segments = [unquote(segment) for segment in path.lstrip("/").split("/")]
        for route in self._routes:
            if route.method != method:
                continue
            labels = route.match(segments)
            if labels is not None:
                return RouteMatch(route, labels)
        return None


def _compile(operation_model: Any, handler: Handler) -> Route:
    http: Mapping[str, Any] = operation_model.http
    request_uri = str(http["requestUri"]).split("?", 1)[0]
    return Route(
        operation=str(operation_model.name),
        method=str(http["method"]),
        segments=tuple(request_uri.lstrip("/").split("/")),
        success_status=int(http.get("responseCode", 200)),
        binder=RequestBinder(operation_model.input_shape),
        validator=ShapeValidator(operation_model.input_shape),
        handler=handler,
    )
