# The facade in production: AGENTCORE_BACKEND=aws, boto3's default chain for credentials, region and
# endpoint (IRSA / EKS Pod Identity work unchanged). Wheels are built in one stage; the final stage
# installs them offline, as `make` installs its .venv (tests/test_packaging.py keeps the two in step),
# and holds no compiler, build tool or pip cache. Another base of the same Python (a mirror, a local
# stand-in): --build-arg PYTHON_IMAGE=...
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
# checkov:skip=CKV_DOCKER_7: the base is pinned by version, in PYTHON_IMAGE's default above
# checkov:skip=CKV_DOCKER_2: no HEALTHCHECK: Kubernetes ignores it and probes grpc.health.v1 natively (deploy/kubernetes)

FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY requirements.txt pyproject.toml ./
COPY generated/agentcore/ generated/agentcore/
COPY emulator/ emulator/
COPY service/ service/
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt . \
    && sha256sum /wheels/*.whl > /wheels.sha256

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="agentcore-memory-grpc" \
      org.opencontainers.image.description="gRPC facade for the Amazon Bedrock AgentCore memory-records API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The wheels' digests: a builder whose cache key for RUN leaves out what a bind mount holds (buildah's)
# would otherwise reuse the install of older wheels.
COPY --from=wheels /wheels.sha256 /tmp/wheels.sha256
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links /wheels -r /tmp/requirements.txt agentcore-memory-grpc \
    && rm /tmp/requirements.txt /tmp/wheels.sha256

# PYTHONFAULTHANDLER: a fatal signal (a crash in a C extension) writes every thread's Python traceback
# to the log before the process dies.
ENV AGENTCORE_BACKEND=aws \
    GRPC_PORT=50051 \
    METRICS_PORT=9464 \
    PYTHONFAULTHANDLER=1

# An unprivileged numeric user, so that Kubernetes' runAsNonRoot can verify it. The root filesystem may
# be mounted read-only; with WORKERS > 1 the workers' metrics files need a writable /tmp (or TMPDIR).
USER 65532:65532
WORKDIR /
EXPOSE 50051 9464
ENTRYPOINT ["agentcore-memory-grpc"]
