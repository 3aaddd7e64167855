"""The request pipeline, from a received HTTP request to an AWS-shaped response.

Order follows the AWS front door: journal, authentication, routing, the before-operation hook,
binding, model validation, then the service's handler. What the handler does is the service's
business; this module only knows the route table and the model's error statuses.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs

from emulator.restjson.exceptions import (
    ApiError,
    cannot_parse,
    missing_authentication_token,
    unknown_operation,
    validation_failed,
)
from emulator.restjson.routing import RouteMatch, RouteTable
from emulator.restjson.wire import (
    JSON_CONTENT_TYPE,
    REQUEST_ID_HEADER,
    MalformedJson,
    ReceivedRequest,
    Response,
    json_response,
)

logger = logging.getLogger(__name__)

# Called after routing with the operation name and the request. Returning a Response (or raising
# ApiError) answers the request without running the operation; raising DropConnection closes the
# connection unanswered, and DropReply does so after running it: the seam for fault injection.
BeforeOperationHook = Callable[[str, ReceivedRequest], Response | None]


class DropConnection(Exception):
    """Raised by a hook: the transport closes the connection without answering."""


class DropReply(DropConnection):
    """Raised by a hook: the operation runs, then the transport closes the connection without its
    answer, as when a reply is lost on its way back after AWS applied the request."""


class Dispatcher:
    def __init__(
        self,
        routes: RouteTable,
        *,
        on_request: Callable[[ReceivedRequest], None],
        service_failure: Callable[[], ApiError],
    ) -> None:
        """``on_request`` sees every request, rejected ones too; ``service_failure`` is the service's
        answer to an unexpected exception."""
        self._routes = routes
        self._on_request = on_request
        self._service_failure = service_failure
        self._before_operation: BeforeOperationHook | None = None

    def set_before_operation_hook(self, hook: BeforeOperationHook | None) -> None:
        self._before_operation = hook

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; never raises, except DropConnection from the hook."""
        request_id = str(uuid.uuid4())
        path, _, query_string = target.partition("?")
        match = self._routes.resolve(method, path)
        request = ReceivedRequest(
            operation=match.route.operation if match else None,
            method=method,
            path=path,
            query=parse_qs(query_string, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
        )
        self._on_request(request)
        try:
            response = self._dispatch(request, match)
        except ApiError as error:
            response = error.to_response()
        except DropConnection:
            raise
        except Exception:
            # The traceback names code, not request content, so it is safe to log.
            logger.exception("unexpected failure in %s", request.operation)
            response = self._service_failure().to_response()
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
        route = match.route
        hook = self._before_operation
        if hook is not None:
            try:
                injected = hook(route.operation, request)
            except DropReply:
                with contextlib.suppress(ApiError):  # a refused request is lost the same way
                    self._operate(request, match)
                raise
            if injected is not None:
                return injected
        return self._operate(request, match)

    def _operate(self, request: ReceivedRequest, match: RouteMatch) -> Response:
        route = match.route
        try:
            params = route.binder.bind(match.labels, request.query, request.headers, request.body)
        except MalformedJson:
            raise cannot_parse(self._routes.model) from None
        violations = route.validator.validate(params)
        if violations:
            raise validation_failed(self._routes.model, violations)
        return json_response(route.success_status, route.handler(params))
