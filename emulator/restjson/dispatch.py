"""The request pipeline, from a received HTTP request to an AWS-shaped response.

Order follows the AWS front door: journal, authentication, routing, the fault-injection hook,
body parsing, model validation, memory lookup, then the operation itself.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qs

from emulator.context import OperationContext
from emulator.faults import DropConnection
from emulator.journal import Journal, ReceivedRequest
from emulator.restjson.exceptions import (
    ApiError,
    missing_authentication_token,
    resource_not_found,
    service_failure,
    unknown_operation,
    validation_failed,
)
from emulator.restjson.model import service_model
from emulator.restjson.routing import ROUTES, RouteMatch, RouteTable
from emulator.restjson.validation import ShapeValidator
from emulator.restjson.wire import JSON_CONTENT_TYPE, REQUEST_ID_HEADER, Response, json_response, now_micros
from emulator.store import Store, StoreClosedError

logger = logging.getLogger(__name__)

# Called after routing with the operation name and the request. Returning a Response (or raising
# ApiError) answers the request without running the operation: the seam for fault injection.
BeforeOperationHook = Callable[[str, ReceivedRequest], Response | None]

_MEMORY_ARN_PREFIX = re.compile(
    r"arn:(?:aws|aws-cn|aws-us-gov):bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:memory/"
)


def canonical_memory_id(memory_id: str) -> str:
    """The bare id for a memory id or memory ARN (the API accepts both)."""
    prefix = _MEMORY_ARN_PREFIX.match(memory_id)
    return memory_id[prefix.end() :] if prefix else memory_id


def check_memory_id(memory_id: str) -> str:
    """Return the canonical form of a configured memory id, or raise ValueError."""
    violations = ShapeValidator(service_model().shape_for("MemoryId")).validate_value(memory_id)
    if violations:
        raise ValueError(f"not a valid AgentCore memory id: {memory_id!r}")
    return canonical_memory_id(memory_id)


class Service:
    def __init__(
        self,
        *,
        store: Store,
        memory_ids: Iterable[str],
        journal: Journal,
        routes: RouteTable = ROUTES,
        clock: Callable[[], int] = now_micros,
    ) -> None:
        self._store = store
        self._memory_ids = frozenset(check_memory_id(memory_id) for memory_id in memory_ids)
        self._journal = journal
        self._routes = routes
        self._clock = clock
        self._before_operation: BeforeOperationHook | None = None

    def set_before_operation_hook(self, hook: BeforeOperationHook | None) -> None:
        self._before_operation = hook

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; never raises."""
        request_id = str(uuid.uuid4())
        path, _, query_string = target.partition("?")
        match = self._routes.resolve(method, path)
        request = ReceivedRequest(
            operation=match.operation.name if match else None,
            method=method,
            path=path,
            query=parse_qs(query_string, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
        )
        self._journal.record(request)
        try:
            response = self._dispatch(request, match)
        except ApiError as error:
            response = error.to_response()
        except DropConnection:
            raise
        except StoreClosedError:
            logger.debug("%s arrived while the emulator was stopping", request.operation)
            response = service_failure().to_response()
        except Exception:
            # The traceback names code, not request content, so it is safe to log.
            logger.exception("unexpected failure in %s", request.operation)
            response = service_failure().to_response()
        # A copy: a hook may hand out the same Response object for many requests.
        headers = dict(response.headers)
        present = {name.lower() for name in headers}
        if REQUEST_ID_HEADER.lower() not in present:
            headers[REQUEST_ID_HEADER] = request_id
        if "content-type" not in present:
            headers["Content-Type"] = JSON_CONTENT_TYPE
        return Response(status=response.status, body=response.body, headers=headers)

    def _dispatch(self, request: ReceivedRequest, match: RouteMatch | None) -> Response:
        # Signatures are not verified: any signed (or merely authorised-looking) request is accepted.
        if "authorization" not in request.headers:
            raise missing_authentication_token()
        if match is None:
            raise unknown_operation()
        operation = match.operation
        hook = self._before_operation
        if hook is not None:
            injected = hook(operation.name, request)
            if injected is not None:
                return injected
        params = operation.binder.bind(match.labels, request.query, request.headers, request.body)
        violations = operation.validator.validate(params)
        if violations:
            raise validation_failed(violations)
        context = OperationContext(
            operation=operation.name,
            memory_id=self._configured_memory(params["memoryId"]),
            store=self._store,
            now_us=self._clock(),
        )
        return json_response(operation.success_status, operation.handler(context, params))

    def _configured_memory(self, memory_id: str) -> str:
        canonical = canonical_memory_id(memory_id)
        if canonical not in self._memory_ids:
            raise resource_not_found(f"Memory {memory_id} not found")
        return canonical
