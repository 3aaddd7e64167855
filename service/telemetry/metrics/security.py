"""Security metrics: authorization decisions, reloads of certificate and policy files, and the served
certificates' remaining validity (computed at each scrape, from the pair each listener serves now).

With WORKERS > 1 the workers count decisions and reloads of what they serve (gRPC's certificates, the
policy) in the multiprocess files; the supervisor, which serves /metrics, reports its own certificate's
reloads and every listener's certificate validity (`ConfigMetrics` alone), beside the workers' values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.security import tls

DECISIONS = ("allow", "deny")
# What a reload re-reads: the gRPC port's certificates, /metrics' certificates, the policy.
CONFIGS = ("tls", "metrics_tls", "authz_policy")

# The served certificate of a listener: (not_before, not_after), epoch seconds.
Validity = Callable[[], tuple[float, float]]


class ConfigMetrics:
    """Reloads of watched files, and the validity of the certificates the listeners serve."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Declarations, alike in shape on purpose (see grpc_server.ServerMetrics).
        self.reloads = Counter(
            "agentcore_config_reloads_total",
            "Reloads of changed certificate or policy files, by outcome (failure: the last good one stays).",
            ("config", "outcome"),
            registry=registry,
        )
        self.last_reload_successful = Gauge(
            "agentcore_config_last_reload_successful",
            "1 when the last reload of the file succeeded (or none was needed), 0 when it was refused.",
            ("config",),
            # Several workers: 0 while any live one refused its last reload; a dead one's value goes.
            multiprocess_mode="livemin",
            registry=registry,
        )
        self._certificates: dict[str, Validity] = {}
        registry.register(_CertificateCollector(self._certificates))

    def reload_reporter(self, config: str) -> Callable[[bool], None]:
        """What a watched file reports each reload to; its series start at success."""
        self.last_reload_successful.labels(config).set(1)
        for outcome in ("success", "failure"):
            self.reloads.labels(config, outcome)

        def reloaded(ok: bool) -> None:
            self.reloads.labels(config, "success" if ok else "failure").inc()
            self.last_reload_successful.labels(config).set(1 if ok else 0)

        return reloaded

    def watch_certificate(self, listener: str, validity: Validity) -> None:
        self._certificates[listener] = validity


class SecurityMetrics(ConfigMetrics):
    """ConfigMetrics, the authorization policy's decisions and the refused caller identities."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.authz_decisions = Counter(
            "agentcore_authz_decisions_total",
            "Calls judged by the authorization policy, by decision (deny: refused whole or in part).",
            ("decision",),
            registry=registry,
        )
        # Created at 0, and looked up once rather than at every call the policy judges.
        self._decisions = {decision: self.authz_decisions.labels(decision) for decision in DECISIONS}
        # Apart from the decisions: refused with or without a policy, before it judges, for a reason
        # that tells the operator what to fix in the certificate.
        self.caller_identity_refusals = Counter(
            "agentcore_caller_identity_refusals_total",
            "Calls refused because the client certificate names its caller in a way the service refuses.",
            ("reason",),
            registry=registry,
        )
        self._identity_refusals = {
            reason: self.caller_identity_refusals.labels(reason) for reason in tls.REFUSAL_REASONS
        }

    def count_decision(self, decision: str) -> None:
        self._decisions[decision].inc()

    def count_identity_refusal(self, reason: str) -> None:
        self._identity_refusals[reason].inc()


class _CertificateCollector(Collector):
    def __init__(self, certificates: dict[str, Validity]) -> None:
        self._certificates = certificates

    def collect(self) -> Iterator[GaugeMetricFamily]:
        expiry = GaugeMetricFamily(
            "agentcore_tls_certificate_expiry_seconds",
            "Seconds until the certificate a listener serves now expires (negative: expired).",
            labels=("listener",),
        )
        lifetime = GaugeMetricFamily(
            "agentcore_tls_certificate_lifetime_seconds",
            "The whole validity period of the certificate a listener serves now (not after - not before).",
            labels=("listener",),
        )
        now = time.time()
        for listener, validity in sorted(self._certificates.items()):
            not_before, not_after = validity()
            expiry.add_metric((listener,), not_after - now)
            lifetime.add_metric((listener,), not_after - not_before)
        yield expiry
        yield lifetime
