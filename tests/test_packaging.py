"""The Docker image and `make` install the same pinned dependencies the same way."""

from __future__ import annotations

import json
import re
import sys

from tests.helpers import ROOT


def _requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-r"))]


def test_every_dependency_is_pinned() -> None:
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in _requirement_lines(name):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.\-]+", line), f"{name}: {line} is not pinned"


def test_dockerfile_installs_requirements_like_the_makefile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    pip_flags = re.search(r"^PIP_INSTALL := \$\(BIN\)/python (-m pip install .*)$", makefile, re.MULTILINE)
    assert pip_flags is not None
    assert f"RUN python {pip_flags.group(1)} -r requirements.txt" in dockerfile
    assert "$(PIP_INSTALL) -r requirements.txt" in makefile


def test_image_python_is_the_tested_python() -> None:
    match = re.search(r"^FROM python:(\d+)\.(\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match is not None
    assert (int(match.group(1)), int(match.group(2))) == sys.version_info[:2]


def test_image_serves_aws_backend_with_the_service_entrypoint() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "AGENTCORE_BACKEND=aws" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "service"]' in dockerfile
    for folder in ("generated", "emulator", "service"):
        assert f"COPY {folder}/ {folder}/" in dockerfile


def test_every_npm_dependency_is_pinned_in_the_lock_file() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for name, version in package["devDependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"package.json: {name} {version} is not exact"
        assert locked[f"node_modules/{name}"]["version"] == version, f"package-lock.json disagrees on {name}"
        assert locked[f"node_modules/{name}"]["integrity"].startswith("sha512-")
