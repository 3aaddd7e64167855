"""Fault injection: the emulator misbehaves the ways AWS and networks do, on demand (rate limits
answered like AWS's throttling, exactly the first N requests throttled, modelled errors with a
probability each, latency, dropped connections, replies lost after the request was applied).

It runs as the dispatcher's before-operation hook, after authentication and routing, before
validation; docs/emulator.md (Fault injection) shows how to set it.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from emulator.backend import AWS_SERVICE, MODEL
from emulator.restjson.dispatch import DropConnection, DropReply
from emulator.restjson.exceptions import ApiError
from emulator.restjson.model import error_status
from emulator.restjson.wire import ReceivedRequest, Response

INJECTED_MESSAGE = "Injected fault"


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """What to inject. The default injects nothing."""

    # AWS error code -> probability in [0, 1] that a request answers it.
    error_rates: Mapping[str, float] = dataclasses.field(default_factory=dict)
    # Requests per second allowed across all operations (token bucket, burst = one second's worth);
    # beyond it, ThrottledException. None: no limit.
    rate_limit_per_second: float | None = None
    # Seconds to wait before answering each request.
    latency_seconds: float = 0.0
    # Probability in [0, 1] that a request's connection is dropped without an answer.
    drop_connection_rate: float = 0.0
    # Probability in [0, 1] that a request is applied and its connection then dropped without the
    # answer (the reply lost on its way back); a retry with the same clientToken is answered in full.
    drop_reply_rate: float = 0.0
    # The first this many requests after the config takes effect answer ThrottledException, then none:
    # exactly that many, where a probability can promise none (a test of one throttle and its retry).
    throttle_first: int = 0
    # Only these operations are affected (None: all of them).
    operations: frozenset[str] | None = None

    def __post_init__(self) -> None:
        # Read-only, so that one config (a default shared by many Settings, say) cannot change under them.
        object.__setattr__(self, "error_rates", MappingProxyType(dict(self.error_rates)))
        for code, rate in self.error_rates.items():
            try:
                error_status(MODEL, code)
            except Exception:
                raise ValueError(f"{code} is not an error of the {AWS_SERVICE} model") from None
            _check_probability(f"error rate of {code}", rate)
        _check_probability("drop_connection_rate", self.drop_connection_rate)
        _check_probability("drop_reply_rate", self.drop_reply_rate)
        if self.latency_seconds < 0:
            raise ValueError("latency_seconds must be >= 0")
        if self.rate_limit_per_second is not None and self.rate_limit_per_second <= 0:
            raise ValueError("rate_limit_per_second must be > 0")
        if self.throttle_first < 0 or self.throttle_first != int(self.throttle_first):
            raise ValueError("throttle_first must be a whole number >= 0")
        object.__setattr__(self, "throttle_first", int(self.throttle_first))

    @classmethod
    def parse(cls, spec: str) -> FaultConfig:
        """A config from text such as `rate_limit=50,latency=0.2,drop=0.01,ServiceException=0.05`:
        `rate_limit` in requests per second, `throttle_first` a count of requests, `latency` in
        seconds, `drop` and `drop_reply` probabilities, and any other name an AWS error code with the
        probability of answering it.
        Empty text injects nothing."""
        error_rates: dict[str, float] = {}
        options: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, separator, raw = item.partition("=")
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{item!r}: expected NAME=NUMBER") from None
            if not separator:
                raise ValueError(f"{item!r}: expected NAME=NUMBER")
            name = name.strip()
            if name in _SPEC_OPTIONS:
                options[_SPEC_OPTIONS[name]] = value
            else:
                error_rates[name] = value
        return cls(error_rates=error_rates, **options)

    def spec(self) -> str:
        """The text `parse` reads back as this config ("" when it injects nothing), the operations it
        is confined to in parentheses: what a start line says of the faults."""
        options = {
            "rate_limit": self.rate_limit_per_second,
            "throttle_first": self.throttle_first or None,
            "latency": self.latency_seconds or None,
            "drop": self.drop_connection_rate or None,
            "drop_reply": self.drop_reply_rate or None,
        }
        items = [f"{name}={value:g}" for name, value in options.items() if value is not None]
        items += [f"{code}={rate:g}" for code, rate in sorted(self.error_rates.items())]
        spec = ",".join(items)
        if spec and self.operations is not None:
            spec += f" (only {', '.join(sorted(self.operations))})"
        return spec


_SPEC_OPTIONS = {
    "rate_limit": "rate_limit_per_second",
    "throttle_first": "throttle_first",
    "latency": "latency_seconds",
    "drop": "drop_connection_rate",
    "drop_reply": "drop_reply_rate",
}


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {value}")


class Faults:
    """A thread-safe before-operation hook applying the current FaultConfig."""

    def __init__(self, config: FaultConfig | None = None, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - fault dice, not cryptography
        self._config = config or FaultConfig()
        self._tokens = 0.0
        self._refilled_at = time.monotonic()
        self._throttled = 0  # requests throttled by throttle_first since the config took effect
        self._reset_bucket()

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig | None = None, **changes: Any) -> FaultConfig:
        """Replace the configuration (or change some fields of it); returns the new one."""
        with self._lock:
            base = config or self._config
            self._config = dataclasses.replace(base, **changes) if changes else base
            self._reset_bucket()
            return self._config

    def clear(self) -> None:
        """Inject nothing from now on."""
        self.configure(FaultConfig())

    def _reset_bucket(self) -> None:
        self._tokens = max(1.0, self._config.rate_limit_per_second or 0.0)
        self._refilled_at = time.monotonic()
        self._throttled = 0

    def __call__(self, operation: str, request: ReceivedRequest) -> Response | None:
        with self._lock:
            config = self._config
            if config.operations is not None and operation not in config.operations:
                return None
            throttled = not self._take_token(config)
            if self._throttled < config.throttle_first:
                self._throttled += 1
                throttled = True
            dropped = self._random.random() < config.drop_connection_rate
            injected = [code for code, rate in config.error_rates.items() if self._random.random() < rate]
            # Drawn only when asked for, so that a seed gives the sequences it gave before.
            reply_dropped = bool(config.drop_reply_rate) and self._random.random() < config.drop_reply_rate
        if config.latency_seconds:
            time.sleep(config.latency_seconds)
        if dropped:
            raise DropConnection
        if throttled:
            raise ApiError.modeled(MODEL, "ThrottledException", "Rate exceeded")
        if injected:
            return _error(injected[0])
        if reply_dropped:
            raise DropReply
        return None

    def _take_token(self, config: FaultConfig) -> bool:
        limit = config.rate_limit_per_second
        if limit is None:
            return True
        now = time.monotonic()
        # The bucket holds at least one token, so that limits below 1/s still let requests through.
        self._tokens = min(max(1.0, limit), self._tokens + (now - self._refilled_at) * limit)
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def _error(code: str) -> Response:
    if code == "ValidationException":
        return ApiError.modeled(
            MODEL, code, INJECTED_MESSAGE, reason="FieldValidationFailed", fieldList=[]
        ).to_response()
    return ApiError.modeled(MODEL, code, INJECTED_MESSAGE).to_response()
