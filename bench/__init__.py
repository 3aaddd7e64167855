"""The bench harness: the facade against direct boto3 (`make bench`)."""
