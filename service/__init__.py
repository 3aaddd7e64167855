"""The gRPC facade of the Amazon Bedrock AgentCore memory-records API."""
