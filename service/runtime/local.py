"""The local backend: the embedded emulator, started in the facade's process (or in the supervisor's,
which its workers share) on a loopback port.

The facade imports the emulator here and nowhere else, and imports this module only when
`AGENTCORE_BACKEND=local` starts: with the `aws` backend the emulator is never loaded. Its settings
(`LOCAL_*`) are read as text by settings.py and checked here: the faults by the emulator's own
parser, the memory ids by the model's `MemoryId`.
"""

from __future__ import annotations

from emulator import DEFAULT_MEMORY_ID, Emulator, FaultConfig
from service.api import validate
from service.settings import Settings, SettingsError


def memory_ids(settings: Settings) -> tuple[str, ...]:
    """The memories the emulator knows: `LOCAL_MEMORY_IDS`, or the emulator's default one; a
    SettingsError when one is not a memory id by the model's `MemoryId`, so that a typo fails at start."""
    for memory_id in settings.local_memory_ids or ():
        for violation in validate.string_violations("MemoryId", memory_id, "LOCAL_MEMORY_IDS"):
            raise SettingsError(f"LOCAL_MEMORY_IDS: {memory_id!r} {violation.description}")
    return settings.local_memory_ids or (DEFAULT_MEMORY_ID,)


def faults(settings: Settings) -> FaultConfig:
    """`LOCAL_FAULTS` parsed; a SettingsError naming it when it does not parse."""
    try:
        return FaultConfig.parse(settings.local_faults)
    except ValueError as exc:
        raise SettingsError(f"LOCAL_FAULTS: {exc}") from None


def start_fields(settings: Settings) -> dict[str, object]:
    """What the start line says of the local backend: its memories and the faults it injects."""
    return {"localMemoryIds": list(memory_ids(settings)), "localFaults": faults(settings).spec() or "none"}


def emulator(settings: Settings) -> Emulator:
    """The embedded emulator of the local backend (not started)."""
    return Emulator(
        memory_ids=memory_ids(settings),
        db_path=settings.local_db_path,
        # The journal of request bodies serves tests; a served emulator keeps no record text.
        journal_size=0,
        faults=faults(settings),
    )
