"""`python -m service` and the `agentcore-memory-grpc` console script: settings -> logging -> serve.

Every line the process writes is JSON, a refusal to start included: logging is set up before the
settings are read, and grpc core's own stderr lines are off unless GRPC_VERBOSITY asks for them (it
must be set before grpc loads, hence before the imports below).
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import logging
import sys

from service import logs
from service.aws import AwsConfigurationError
from service.server import serve
from service.settings import Settings, SettingsError

log = logging.getLogger("service")


def main() -> int:
    logs.configure("INFO")  # until the settings, LOG_LEVEL among them, are read
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        log.error(f"configuration error: {exc}")
        return 2
    logs.configure(settings.log_level)
    try:
        serve(settings)
    except AwsConfigurationError as exc:
        log.error(f"configuration error: {exc}")
        return 2
    except OSError as exc:
        # Almost always a port already in use (GRPC_PORT or METRICS_PORT).
        log.error(f"cannot start: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
