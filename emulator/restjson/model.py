"""Loading a botocore service model, the source of every route, input constraint and error status."""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.loaders
import botocore.model


@cache
def load_service_model(service_name: str, api_version: str) -> Any:
    """Return the ``botocore.model.ServiceModel`` of one service version, loaded once per process.

    Read with botocore's loader alone: a session would consult the AWS profile, and a bad AWS_PROFILE
    must not stop the emulator from importing.
    """
    model = botocore.loaders.create_loader().load_service_model(service_name, "service-2", api_version)
    return botocore.model.ServiceModel(model, service_name=service_name)


def error_status(model: Any, shape_name: str) -> int:
    """HTTP status the model assigns to a modeled error shape."""
    shape = model.shape_for(shape_name)
    return int(shape.metadata["error"]["httpStatusCode"])
