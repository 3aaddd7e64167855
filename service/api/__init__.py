"""The API, pure: the operation table (each RPC and the AWS operation it calls), the request checks
and reply checks compiled from botocore's model, and the translation between protobuf and boto3.

Nothing here does I/O or keeps state between calls; every other room of the service may import it.
"""
