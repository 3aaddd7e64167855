# The facade in production: AGENTCORE_BACKEND=aws, boto3's default chain for credentials, region and
# endpoint (IRSA / EKS Pod Identity work unchanged). The install step is the Makefile's, with the same
# pinned requirements.txt; tests/test_packaging.py keeps the two in step.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app/generated:/app

WORKDIR /app

COPY requirements.txt ./
RUN python -m pip install --disable-pip-version-check --no-input --no-cache-dir -r requirements.txt

COPY generated/ generated/
COPY emulator/ emulator/
COPY service/ service/

ENV AGENTCORE_BACKEND=aws \
    GRPC_PORT=50051 \
    METRICS_PORT=9464

# An unprivileged numeric user, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 50051 9464
ENTRYPOINT ["python", "-m", "service"]
