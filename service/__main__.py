"""`python -m service`: settings -> logging -> serve, or with WORKERS > 1 a supervisor of worker
processes (service/workers.py), each of which comes back here as a worker. Nothing more."""

import os
import sys

from service import logs, workers
from service.authz import PolicyError
from service.aws import AwsConfigurationError
from service.server import serve
from service.settings import EXIT_CONFIGURATION_ERROR, Settings, SettingsError
from service.tls import TlsError


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION_ERROR
    shared = workers.worker_role(os.environ)
    supervising = shared is None and settings.workers > 1
    # Several processes write to one stderr: each line says which.
    logs.configure(settings.log_level, with_pid=shared is not None or supervising)
    try:
        if shared is not None:
            workers.run_worker(settings, shared)
        elif supervising:
            return workers.supervise(settings)
        else:
            serve(settings)
    except (AwsConfigurationError, TlsError, PolicyError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION_ERROR
    except OSError as exc:
        # Almost always a port already in use (GRPC_PORT, METRICS_PORT or HEALTH_PORT).
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
