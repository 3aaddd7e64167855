"""The botocore service model the emulator speaks, loaded once per process."""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.loaders
import botocore.model

SERVICE_NAME = "bedrock-agentcore"
API_VERSION = "2024-02-28"


@cache
def service_model() -> Any:
    """Return the ``botocore.model.ServiceModel`` for the AgentCore data plane.

    Read with botocore's loader alone: a session would consult the AWS profile, and a bad AWS_PROFILE
    must not stop the emulator from importing.
    """
    model = botocore.loaders.create_loader().load_service_model(SERVICE_NAME, "service-2", API_VERSION)
    return botocore.model.ServiceModel(model, service_name=SERVICE_NAME)


def error_status(shape_name: str) -> int:
    """HTTP status the model assigns to a modeled error shape."""
    shape = service_model().shape_for(shape_name)
    return int(shape.metadata["error"]["httpStatusCode"])
