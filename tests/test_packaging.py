"""`pip install .`, `make` and the Docker image install the same pinned dependencies the same way."""

from __future__ import annotations

import json
import re
import sys
import tomllib

from tests.helpers import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# One exact version, its epoch included when it has one (grafana-foundation-sdk==1769699379!11.6.0).
PINNED = re.compile(r"[A-Za-z0-9_.\-]+==(\d+!)?[A-Za-z0-9_.\-]+")


def _requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-r"))]


def test_every_dependency_is_pinned() -> None:
    files = sorted(path.name for path in ROOT.glob("requirements*.txt"))
    assert {"requirements.txt", "requirements-dev.txt", "requirements-bench.txt"} <= set(files)
    for name in files:
        for line in _requirement_lines(name):
            assert PINNED.fullmatch(line), f"{name}: {line} is not pinned"


def test_dockerfile_installs_the_wheels_like_the_makefile() -> None:
    install = re.search(r"^INSTALL_FROM_WHEELS = (.*)$", MAKEFILE, re.MULTILINE)
    assert install is not None
    assert "$(BIN)/$(INSTALL_FROM_WHEELS) $(WHEELS) -r requirements.txt agentcore-memory-grpc" in MAKEFILE
    assert f"{install.group(1)} /wheels -r /tmp/requirements.txt agentcore-memory-grpc" in DOCKERFILE


def test_image_python_is_the_tested_python() -> None:
    match = re.search(r"^ARG PYTHON_IMAGE=python:(\d+)\.(\d+)\.\d+-slim-bookworm$", DOCKERFILE, re.MULTILINE)
    assert match is not None
    assert (int(match.group(1)), int(match.group(2))) == sys.version_info[:2]


def test_the_dockerfile_defaults_to_aws_and_starts_the_console_script() -> None:
    assert "AGENTCORE_BACKEND=aws" in DOCKERFILE
    assert "agentcore-memory-grpc" in PYPROJECT["project"]["scripts"]
    assert 'ENTRYPOINT ["agentcore-memory-grpc"]' in DOCKERFILE


def test_the_wheel_holds_every_package_of_the_tree() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("service", "emulator")
        for init in (ROOT / top).rglob("__init__.py")
    }
    generated = ROOT / setuptools["package-dir"]["agentcore"]
    in_tree |= {
        ".".join(("agentcore", *path.relative_to(generated).parts)).rstrip(".")
        for path in [generated, *generated.rglob("*")]
        if path.is_dir() and path.name != "__pycache__"
    }
    assert set(setuptools["packages"]) == in_tree


def test_image_version_label_is_the_project_version() -> None:
    assert f"ARG VERSION={PYPROJECT['project']['version']}\n" in DOCKERFILE


def test_every_npm_dependency_is_pinned_in_the_lock_file() -> None:
    """Every package from the registry at an exact version with its digest; a package of this
    repository (the TypeScript client, `file:generated/ts`) linked, with its own dependencies exact."""
    package = json.loads((ROOT / "package.json").read_text())
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for name, version in package["devDependencies"].items():
        if version.startswith("file:"):
            folder = version.removeprefix("file:")
            assert folder.startswith("generated/"), f"package.json: {name} {version} is not ours"
            assert locked[f"node_modules/{name}"] == {"resolved": folder, "link": True}
            ours = json.loads((ROOT / folder / "package.json").read_text())
            for kind in ("dependencies", "peerDependencies", "devDependencies"):
                for dependency, pinned in ours.get(kind, {}).items():
                    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), (
                        f"{folder}: {dependency} {pinned} is not exact"
                    )
                    assert package["devDependencies"][dependency] == pinned, (
                        f"{folder} and package.json: {dependency}"
                    )
            continue
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"package.json: {name} {version} is not exact"
        assert locked[f"node_modules/{name}"]["version"] == version, f"package-lock.json disagrees on {name}"
        assert locked[f"node_modules/{name}"]["integrity"].startswith("sha512-")
