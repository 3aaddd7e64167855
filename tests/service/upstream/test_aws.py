"""aws.py: the one boto3 client, its pool, retries, timeouts, region and endpoint resolution."""

from __future__ import annotations

import pytest

from service.settings import Backend
from service.upstream import aws
from tests.helpers import settings_for_tests


@pytest.fixture(autouse=True)
def clean_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")


def test_pool_retries_and_timeouts_follow_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    settings = settings_for_tests(
        backend=Backend.AWS,
        max_workers=24,
        aws_max_attempts=5,
        aws_retry_mode="adaptive",
        aws_connect_timeout_seconds=1.5,
        aws_read_timeout_seconds=7.0,
    )
    config = aws.create_client(settings).meta.config
    assert config.max_pool_connections >= settings.max_workers
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 5}
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7.0)
    assert aws.USER_AGENT in config.user_agent_extra
    assert aws.client_config(settings).parameter_validation is False  # ours runs first, checks more


def test_aws_region_is_honoured_when_the_chain_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    client = aws.create_client(settings_for_tests(backend=Backend.AWS))
    assert client.meta.region_name == "ap-southeast-2"
    assert client.meta.endpoint_url == "https://bedrock-agentcore.ap-southeast-2.amazonaws.com"


def test_the_default_chain_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    assert aws.create_client(settings_for_tests(backend=Backend.AWS)).meta.region_name == "us-west-2"


def test_the_standard_endpoint_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", "http://127.0.0.1:9")
    assert (
        aws.create_client(settings_for_tests(backend=Backend.AWS)).meta.endpoint_url == "http://127.0.0.1:9"
    )


def test_aws_backend_without_a_region_is_refused() -> None:
    with pytest.raises(aws.AwsConfigurationError, match="AWS_REGION"):
        aws.create_client(settings_for_tests(backend=Backend.AWS))


def test_local_backend_needs_the_emulator() -> None:
    with pytest.raises(aws.AwsConfigurationError):
        aws.create_client(settings_for_tests(backend=Backend.LOCAL))
    client = aws.create_client(settings_for_tests(backend=Backend.LOCAL), endpoint_url="http://127.0.0.1:9")
    assert client.meta.region_name == aws.LOCAL_REGION
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
