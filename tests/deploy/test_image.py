"""The project's Dockerfile, built and run: read-only, as its numeric user, with the embedded emulator.

No registry is reachable here, so the base is a stand-in made by standin_base.sh (debootstrap bookworm
with Debian's python3.11), kept in podman's store under a tag that names the script's hash: the first
run makes it (about a minute), later runs reuse it, and podman's layer cache keeps rebuilds short.
Podman needs root, runc and explicit rlimits here (crun cannot set them): outside CI a missing
prerequisite skips the test, with CI=true it fails it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.served import assert_json_lines, assert_updates_a_record, wait_until_serving
from tests.helpers import ROOT, free_port, require

STANDIN_SCRIPT = Path(__file__).with_name("standin_base.sh")
# A tag of this run's own: runs at once (two checkouts, CI beside a developer) must not swap images.
IMAGE = f"localhost/agentcore-memory-grpc:test-{uuid.uuid4().hex[:12]}"
PODMAN_RUN_OPTIONS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
# A bundle of the CAs this machine trusts (a TLS-inspecting proxy's among them), lent to the build's
# pip at build time only: nothing of it reaches the Dockerfile or the image.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
USER = "65532:65532"
GRACE_SECONDS = 5


def _podman(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)


def _checked(process: subprocess.CompletedProcess[str]) -> str:
    assert process.returncode == 0, process.stderr[-4000:]
    return process.stdout


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    require(os.geteuid() == 0, "building an image with podman needs root")
    for tool in ("podman", "runc", "debootstrap"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (make test installs it)")
    digest = hashlib.sha256(STANDIN_SCRIPT.read_bytes()).hexdigest()[:12]
    base = f"localhost/agentcore-standin-python:3.11-bookworm-{digest}"
    if _podman("image", "exists", base).returncode != 0:
        subprocess.run([STANDIN_SCRIPT, base], check=True, timeout=900)
    volumes = ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"] if HOST_CA_BUNDLE.exists() else []
    build = ["build", *PODMAN_RUN_OPTIONS, *volumes, "--build-arg", f"PYTHON_IMAGE={base}", "-t", IMAGE, ROOT]
    _checked(_podman(*build, timeout=900))
    try:
        yield IMAGE
    finally:
        _podman("rmi", "--force", IMAGE)  # the layers stay cached for the next run


@contextlib.contextmanager
def _container(image: str, **variables: str) -> Iterator[str]:
    """A detached container of `image`, read-only, as the image's user, on the host's network, with a
    writable /tmp and nothing else writable, as deploy/kubernetes mounts it (an emptyDir)."""
    name = f"agentcore-test-{uuid.uuid4().hex[:8]}"
    env = [f"--env={key}={value}" for key, value in variables.items()]
    _checked(
        _podman(
            "run",
            "--detach",
            "--name",
            name,
            *PODMAN_RUN_OPTIONS,
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs=/tmp",
            "--network=host",
            *env,
            image,
        )
    )
    try:
        yield name
    finally:
        _podman("rm", "--force", "--time", "0", name)


def test_image_is_configured_for_production(image: str) -> None:
    [config] = json.loads(_checked(_podman("image", "inspect", image)))
    assert config["Config"]["User"] == USER
    assert "AGENTCORE_BACKEND=aws" in config["Config"]["Env"]
    assert config["Config"]["Labels"]["org.opencontainers.image.title"] == "agentcore-memory-grpc"
    # No compiler, build tool, pip cache or wheel in the final stage: looked for as root, whom nothing
    # is hidden from, and the look itself must work (`sh` and `find` answer).
    found = _podman(
        "run",
        "--rm",
        *PODMAN_RUN_OPTIONS,
        "--user",
        "0",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "command -v gcc cc make; find / -xdev \\( -path /proc -o -path /sys \\) -prune -o "
        "\\( -path '*/.cache/pip' -o -name '*.whl' \\) -print; echo looked",
    )
    assert _checked(found) == "looked\n"


def test_image_serves_read_only_and_stops_on_sigterm(image: str) -> None:
    """With worker processes, as deploy/kubernetes runs it: the supervisor starts `python -m service`
    from the installed package and keeps their metrics files in /tmp."""
    port = free_port()
    with _container(
        image,
        AGENTCORE_BACKEND="local",
        WORKERS="2",
        GRPC_HOST="127.0.0.1",
        GRPC_PORT=str(port),
        METRICS_PORT=str(free_port()),
        SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
    ) as name:
        assert _checked(_podman("inspect", "--format", "{{.Config.User}}", name)).strip() == USER
        wait_until_serving(port)
        assert_updates_a_record(port)
        _checked(_podman("kill", "--signal", "TERM", name))
        started = time.monotonic()
        exit_code = _checked(_podman("wait", name, timeout=GRACE_SECONDS + 30)).strip()
        stopped_after = time.monotonic() - started
        lines = assert_json_lines(_checked(_podman("logs", name)) + _podman("logs", name).stderr)
    assert exit_code == "0"
    assert stopped_after < GRACE_SECONDS
    assert lines[-1]["message"] == "stopped"
    assert sum(line["message"] == "worker serving" for line in lines) == 2  # the image holds this tree


def test_image_refuses_aws_without_a_region_in_one_json_line(image: str) -> None:
    with _container(image) as name:
        exit_code = _checked(_podman("wait", name, timeout=60)).strip()
        logs = _podman("logs", name)
    assert exit_code == "2"
    [line] = assert_json_lines(logs.stdout + logs.stderr)
    assert "AWS_REGION" in str(line["message"])
