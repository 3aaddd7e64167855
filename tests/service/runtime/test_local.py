"""The local backend's settings, parsed where local mode starts (service/runtime/local.py), and the
emulator loaded in local mode only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emulator import DEFAULT_MEMORY_ID, FaultConfig
from service.runtime import local
from service.settings import Settings, SettingsError
from tests.helpers import ROOT


def test_unset_memory_ids_are_the_emulators_default_and_faults_are_off() -> None:
    settings = Settings.from_env({})
    assert local.memory_ids(settings) == (DEFAULT_MEMORY_ID,)
    assert local.faults(settings) == FaultConfig()
    assert local.start_fields(settings) == {"localMemoryIds": [DEFAULT_MEMORY_ID], "localFaults": "none"}


def test_faults_are_parsed_by_the_emulator_and_named_in_the_start_line() -> None:
    settings = Settings.from_env(
        {"LOCAL_FAULTS": " rate_limit=5,drop=0.5 ", "LOCAL_MEMORY_IDS": "a-0123456789"}
    )
    assert local.faults(settings) == FaultConfig(rate_limit_per_second=5, drop_connection_rate=0.5)
    assert local.start_fields(settings) == {
        "localMemoryIds": ["a-0123456789"],
        "localFaults": "rate_limit=5,drop=0.5",
    }


def test_faults_that_do_not_parse_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="LOCAL_FAULTS"):
        local.faults(Settings.from_env({"LOCAL_FAULTS": "NoSuchException=1"}))


def test_the_aws_backend_never_loads_the_emulator() -> None:
    """Everything a served process imports in aws mode (the server, the workers' supervisor, the
    entry point), and not one module of the emulator among it."""
    script = (
        "import sys, service.__main__, service.runtime.server, service.runtime.workers; "
        "print(sorted(m for m in sys.modules if m == 'emulator' or m.startswith('emulator.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("memory_id", ["not a memory", "memory-0123", "1memory-0123456789"])
def test_a_memory_id_that_is_not_one_fails_with_an_example(memory_id: str) -> None:
    settings = Settings.from_env({"LOCAL_MEMORY_IDS": f"a-0123456789,{memory_id}"})
    with pytest.raises(SettingsError, match=r"^LOCAL_MEMORY_IDS: .* like support_bot-a1B2c3D4e5$"):
        local.memory_ids(settings)
