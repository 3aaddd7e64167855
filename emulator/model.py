"""The botocore service model the emulator speaks, loaded once per process."""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session

SERVICE_NAME = "bedrock-agentcore"
API_VERSION = "2024-02-28"


@cache
def service_model() -> Any:
    """Return the ``botocore.model.ServiceModel`` for the AgentCore data plane."""
    session = botocore.session.get_session()
    return session.get_service_model(SERVICE_NAME, api_version=API_VERSION)


def error_status(shape_name: str) -> int:
    """HTTP status the model assigns to a modeled error shape."""
    shape = service_model().shape_for(shape_name)
    return int(shape.metadata["error"]["httpStatusCode"])
