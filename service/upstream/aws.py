"""The one boto3 `bedrock-agentcore` client of the process: region, credentials, retries, pool size.

Built once at start and shared by every handler thread (botocore clients are thread-safe); its
connection pool is as large as the gRPC thread pool so that no handler waits for a connection.
Retries are botocore's own (docs/settings.md, Retries).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

from service import __version__
from service.api import replies
from service.api.operations import AWS_SERVICE
from service.settings import Backend, Settings
from service.upstream import applied, attempts, deadlines

if TYPE_CHECKING:
    from mypy_boto3_bedrock_agentcore import BedrockAgentCoreClient

USER_AGENT = f"agentcore-memory-grpc/{__version__}"
# The local emulator checks that requests are signed, not who signed them.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
LOCAL_REGION = "us-east-1"


class AwsConfigurationError(RuntimeError):
    """The AWS client cannot be built; the message says which setting to fix."""


def client_config(settings: Settings) -> botocore.config.Config:
    """The botocore Config shared by every call: pool size, retries, timeouts."""
    return botocore.config.Config(
        max_pool_connections=settings.max_workers,
        retries={"mode": settings.aws_retry_mode, "total_max_attempts": settings.aws_max_attempts},
        connect_timeout=settings.aws_connect_timeout_seconds,
        read_timeout=settings.aws_read_timeout_seconds,
        user_agent_extra=USER_AGENT,
        # validate.py checks everything botocore's validator does and more, before any call
        # (tests/service/test_validate.py::test_what_we_accept_botocore_accepts): a second pass is waste.
        parameter_validation=False,
    )


def create_client(
    settings: Settings, *, endpoint_url: str | None = None, environ: Mapping[str, str] | None = None
) -> BedrockAgentCoreClient:
    """The `bedrock-agentcore` client for the configured backend.

    aws: boto3's default chain decides credentials, region and endpoint (AWS_* variables, shared
    config files, IRSA, EKS Pod Identity, instance roles, AWS_ENDPOINT_URL_BEDROCK_AGENTCORE). The
    chain reads AWS_DEFAULT_REGION but not AWS_REGION, which EKS and the other AWS SDKs set, so
    AWS_REGION is honoured when the chain finds no region.
    local: the emulator at `endpoint_url`, with dummy credentials (requests are still signed).
    """
    environ = os.environ if environ is None else environ
    try:
        client = _build_client(settings, endpoint_url, environ)
    except botocore.exceptions.BotoCoreError as exc:
        # A missing profile, a malformed config file or endpoint: the deployment's to fix.
        raise AwsConfigurationError(f"cannot build the AWS client: {exc}") from exc
    attempts.install(client, settings.aws_attempt_timeout_seconds)
    deadlines.register(client)
    applied.register(client)
    return cast("BedrockAgentCoreClient", client)


def _build_client(settings: Settings, endpoint_url: str | None, environ: Mapping[str, str]) -> Any:
    botocore_session = botocore.session.get_session()
    # Every reply is checked against the model as botocore parses it (replies.py).
    botocore_session.register_component("response_parser_factory", replies.CheckedParserFactory())
    session = boto3.session.Session(botocore_session=botocore_session)
    config = client_config(settings)
    if settings.backend is Backend.LOCAL:
        if endpoint_url is None:
            raise AwsConfigurationError("the local backend needs the emulator's endpoint URL")
        local_region = environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION") or LOCAL_REGION
        return session.client(
            AWS_SERVICE,
            region_name=local_region,
            endpoint_url=endpoint_url,
            config=config,
            **LOCAL_CREDENTIALS,
        )
    region = session.region_name or environ.get("AWS_REGION")
    if not region:
        raise AwsConfigurationError(
            "AGENTCORE_BACKEND=aws needs a region: set AWS_REGION or AWS_DEFAULT_REGION "
            "(or a region in the AWS config profile)"
        )
    return session.client(AWS_SERVICE, region_name=region, endpoint_url=endpoint_url, config=config)
