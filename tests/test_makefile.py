"""`make`'s venv on a stock Debian or Ubuntu: without python3.X-venv it says so in one line, and a venv
that a failed try left without pip is made again on the next try."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def _make_venv(venv: Path, python: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", ROOT, f"VENV={venv}", f"PYTHON={python}", f"{venv}/.created"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_missing_ensurepip_is_explained_in_one_line(tmp_path: Path) -> None:
    # A Python whose ensurepip is missing, as Debian's python3.11 without python3.11-venv.
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ensurepip')\n")
    python = tmp_path / "python3"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={shadow.parent} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    made = _make_venv(tmp_path / ".venv", python)
    assert made.returncode != 0
    explanation = made.stderr.splitlines()[0]
    assert explanation.startswith("make: ")
    assert f"python{sys.version_info[0]}.{sys.version_info[1]}-venv" in explanation
    assert not (tmp_path / ".venv").exists()


def test_a_half_made_venv_is_made_again(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=60)
    made = _make_venv(venv, sys.executable)
    assert made.returncode == 0, made.stderr
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "--version"], check=True, capture_output=True, timeout=60
    )
