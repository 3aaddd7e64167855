"""`python -m service` and the `agentcore-memory-grpc` console script: settings -> logging -> serve,
or with WORKERS > 1 a supervisor of worker processes (service/runtime/workers.py), each of which comes
back here as a worker (`sys.executable -m service`, which the installed package answers as well as the tree).

Every line the process writes is JSON, a refusal to start included: logging is set up before the
settings are read, and grpc core's own lines, written on file descriptor 2, are turned into JSON lines
(service/telemetry/stderr.py). GRPC_VERBOSITY must be set before grpc loads, and fd 2 captured
before grpc can write to it, hence before the imports below; the workers inherit the variable.
"""

import os

from service.telemetry import stderr  # the standard library only: grpc is not loaded yet

os.environ.setdefault("GRPC_VERBOSITY", stderr.DEFAULT_GRPC_VERBOSITY)
stderr.capture()

import logging  # noqa: E402
import sys  # noqa: E402
from typing import NoReturn  # noqa: E402

from service.runtime import workers  # noqa: E402
from service.runtime.server import serve  # noqa: E402
from service.security.authz import PolicyError  # noqa: E402
from service.security.tls import TlsError  # noqa: E402
from service.settings import EXIT_CONFIGURATION_ERROR, Settings, SettingsError  # noqa: E402
from service.telemetry import json_logs  # noqa: E402
from service.upstream.aws import AwsConfigurationError  # noqa: E402

log = logging.getLogger("service")


def main() -> int:
    shared = workers.worker_role(os.environ)
    # Several processes write to one stderr: each line of a worker or supervisor says which.
    # INFO until the settings, LOG_LEVEL among them, are read.
    json_logs.configure("INFO", with_pid=shared is not None)
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        log.error(f"configuration error: {exc}")
        return EXIT_CONFIGURATION_ERROR
    supervising = shared is None and settings.workers > 1
    json_logs.configure(settings.log_level, with_pid=shared is not None or supervising)
    try:
        if shared is not None:
            workers.run_worker(settings, shared)
        elif supervising:
            return workers.supervise(settings)
        else:
            serve(settings)
    except (AwsConfigurationError, TlsError, PolicyError, SettingsError) as exc:  # LOCAL_FAULTS at start
        log.error(f"configuration error: {exc}")
        return EXIT_CONFIGURATION_ERROR
    except OSError as exc:
        # Almost always a port already in use (GRPC_PORT, METRICS_PORT or HEALTH_PORT).
        log.error(f"cannot start: {exc}")
        return 1
    return 0


def run() -> NoReturn:
    """main(), then the process ends at once: its servers stopped, its logs flushed. The interpreter's
    finalization is skipped, where grpc's C core can be torn down under objects Python is still
    destroying (grpc 1.85's aio shutdown at finalization; seen as a SIGSEGV after a clean drain).
    Nothing of the service's is left to it: the exit's own work (fd 2 and its pipe) is done here."""
    code = main()
    stderr.finish()
    logging.shutdown()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
