"""Binding a rest-json HTTP request to an operation's input members.

URI labels, query parameters and headers are bound by member name; body members come from the
JSON object in the body. Values stay as sent (strings from the URL, JSON values from the body) so
that validation, not binding, decides what is acceptable. A body that is not a JSON object raises
``MalformedJson``; the dispatcher answers it in the service's own error format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from emulator.restjson.wire import MalformedJson, decode_json

_INTEGER_TEXT = re.compile(r"-?[0-9]+")


class RequestBinder:
    def __init__(self, input_shape: Any) -> None:
        self._uri: list[tuple[str, str]] = []
        self._query: list[tuple[str, str, str]] = []
        self._headers: list[tuple[str, str, str]] = []
        self._body: list[tuple[str, str]] = []
        if input_shape is None:
            return
        for member_name, member_shape in input_shape.members.items():
            serialization: Mapping[str, Any] = member_shape.serialization
            location = serialization.get("location")
            wire_name: str = serialization.get("name", member_name)
            type_name: str = member_shape.type_name
            if location == "uri":
                self._uri.append((member_name, wire_name))
            elif location == "querystring":
                self._query.append((member_name, wire_name, type_name))
            elif location == "header":
                self._headers.append((member_name, wire_name.lower(), type_name))
            elif location is None:
                self._body.append((member_name, wire_name))

    def bind(
        self,
        labels: Mapping[str, str],
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for member, label in self._uri:
            if label in labels:
                params[member] = labels[label]
        for member, name, type_name in self._query:
            values = query.get(name)
            if not values:
                continue
            if type_name == "list":
                params[member] = list(values)
            else:
                params[member] = _coerce(values[0], type_name)
        for member, name, type_name in self._headers:
            if name in headers:
                params[member] = _coerce(headers[name], type_name)
        if self._body:
            document = self._decode_body(body)
            for member, key in self._body:
                if key in document:
                    params[member] = document[key]
        return params

    @staticmethod
    def _decode_body(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        document = decode_json(body)
        if not isinstance(document, dict):
            raise MalformedJson("the body is not a JSON object")
        return document


def _coerce(text: str, type_name: str) -> Any:
    """Convert URL and header text to the member's JSON type when it is well formed."""
    if type_name in {"integer", "long"} and _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if type_name == "boolean" and text in {"true", "false"}:
        return text == "true"
    return text
