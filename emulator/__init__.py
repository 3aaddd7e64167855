"""A local emulator of the Amazon Bedrock AgentCore memory-records data plane.

It speaks the real rest-json protocol of the ``bedrock-agentcore`` service (API 2024-02-28), so an
unmodified boto3 client pointed at ``Emulator.endpoint_url`` works against it.
"""

from emulator.embedded import DEFAULT_MEMORY_ID, Emulator
from emulator.faults import DropConnection, FaultConfig, Faults
from emulator.journal import ReceivedRequest
from emulator.restjson.dispatch import BeforeOperationHook
from emulator.restjson.exceptions import ApiError
from emulator.restjson.wire import Response

__all__ = [
    "DEFAULT_MEMORY_ID",
    "ApiError",
    "BeforeOperationHook",
    "DropConnection",
    "Emulator",
    "FaultConfig",
    "Faults",
    "ReceivedRequest",
    "Response",
]
