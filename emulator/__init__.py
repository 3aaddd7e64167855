"""A local emulator of the Amazon Bedrock AgentCore memory-records data plane.

It speaks the real rest-json protocol of the ``bedrock-agentcore`` service, so an unmodified boto3
client pointed at ``Emulator.endpoint_url`` works against it.
"""

from emulator.backend import DEFAULT_MEMORY_ID
from emulator.embedded import Emulator
from emulator.faults import FaultConfig, Faults
from emulator.restjson.dispatch import BeforeOperationHook, DropConnection, DropReply
from emulator.restjson.exceptions import ApiError
from emulator.restjson.wire import ReceivedRequest, Response

__all__ = [
    "DEFAULT_MEMORY_ID",
    "ApiError",
    "BeforeOperationHook",
    "DropConnection",
    "DropReply",
    "Emulator",
    "FaultConfig",
    "Faults",
    "ReceivedRequest",
    "Response",
]
