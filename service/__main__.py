"""`python -m service`: settings -> logging -> serve. Nothing more."""

import os
import sys

from service import logs
from service.authz import PolicyError
from service.aws import AwsConfigurationError
from service.server import serve
from service.settings import Settings, SettingsError
from service.tls import TlsError


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        serve(settings)
    except (AwsConfigurationError, TlsError, PolicyError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Almost always a port already in use (GRPC_PORT or METRICS_PORT).
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
