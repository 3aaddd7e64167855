"""The gRPC facade of the Amazon Bedrock AgentCore memory-records API."""

__version__ = "0.1.0"  # kept equal to pyproject.toml's version by tests/integration/test_metrics.py
