"""deploy/kubernetes: every overlay renders with `kubectl kustomize`, its built-in kinds are valid for
Kubernetes 1.32 and the newest version kubernetes-validate knows (strict: no unknown fields), its custom
resources match their CRD schemas (@kubernetes-models, pinned in package-lock.json), checkov finds nothing
(skips are justified where they are made), and the Deployment keeps the promises docs/kubernetes.md makes."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from service.security import authz
from service.settings import MAX_RECORD_BYTES, Settings, variables
from tests.helpers import ROOT, require

KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(path.name for path in (KUBERNETES / "overlays").iterdir() if path.is_dir())
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "Certificate"}
CHECKOV = ROOT / "var" / "checkov" / "bin" / "checkov"
# The resident size of a serving process (74 MiB idle, measured with the aws backend, plus its threads'
# stacks and connection pools under load) and of the supervisor (70 MiB idle).
# Requests being read beyond the admitted ones that the memory limit is sized for.
READS_SIZED_FOR_BEYOND_ADMISSION = 8
PROCESS_BASE_BYTES = 100 * 2**20
SUPERVISOR_BYTES = 70 * 2**20
# What an admitted request byte costs at most while it is parsed, translated and sent: the protobuf
# message, its Python strings, and boto3's JSON body (a four-byte character becomes a 12-byte escape).
ADMITTED_BYTE_COST = 5


@functools.cache
def _rendered_text(overlay: str) -> str:
    require(shutil.which("kubectl") is not None, "kubectl is not installed")
    rendered = subprocess.run(
        ["kubectl", "kustomize", KUBERNETES / "overlays" / overlay],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    return rendered.stdout


def rendered(overlay: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(_rendered_text(overlay)))


def _is_redis(resource: dict[str, Any]) -> bool:
    """Of the Redis of components/shared-rate-limits, not the facade's."""
    return resource["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "redis"


def facades(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if not _is_redis(r)]


def _one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [resource] = [r for r in facades(resources) if r["kind"] == kind]
    return resource


def _container(overlay: str) -> dict[str, Any]:
    [container] = _one(rendered(overlay), "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container["env"]}


def test_overlays_include_aws_and_mtls() -> None:
    assert {"aws", "mtls"} <= set(OVERLAYS)


@pytest.mark.parametrize("version", ["1.32.0", latest_version()])
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_built_in_kinds_are_valid(overlay: str, version: str) -> None:
    resources = [r for r in rendered(overlay) if r["kind"] not in CUSTOM_KINDS]
    kinds = {r["kind"] for r in resources}
    assert {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"} <= kinds
    assert {"HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    deployment = _one(rendered("aws"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, latest_version(), strict=True)


def _validate_custom(resources: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    require(shutil.which("node") is not None, "node is not installed")
    require((ROOT / "node_modules" / "@kubernetes-models").is_dir(), "no node_modules: run `npm ci`")
    return subprocess.run(
        ["node", Path(__file__).with_name("validate_custom_resources.mjs")],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_crd_schemas(overlay: str) -> None:
    resources = [r for r in rendered(overlay) if r["kind"] in CUSTOM_KINDS]
    assert {"ServiceMonitor", "PrometheusRule"} <= {r["kind"] for r in resources}
    checked = _validate_custom(resources)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_crd_schema_validation_rejects_a_wrong_type() -> None:
    monitor = _one(rendered("aws"), "ServiceMonitor")
    monitor["spec"]["endpoints"] = "metrics"
    checked = _validate_custom([monitor])
    assert checked.returncode == 1
    assert "endpoints" in checked.stdout


def test_prometheus_rule_is_generated_from_the_alerts() -> None:
    checked = subprocess.run(
        [sys.executable, KUBERNETES / "prometheusrule.py", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    rule = _one(rendered("aws"), "PrometheusRule")
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_gives_grafanas_sidecar_the_dashboard(overlay: str) -> None:
    [config_map] = [
        r for r in rendered(overlay) if r["metadata"]["name"] == "agentcore-memory-grpc-dashboard"
    ]
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"  # the sidecar's default label
    dashboard = ROOT / "deploy" / "grafana" / "agentcore-memory-grpc.json"
    assert config_map["data"] == {dashboard.name: dashboard.read_text()}


def test_mtls_overlay_has_a_certificate() -> None:
    assert _one(rendered("mtls"), "Certificate")["spec"]["secretName"]


def test_checkov_finds_nothing(tmp_path: Path) -> None:
    require(CHECKOV.exists(), f"no {CHECKOV}: `make test` installs it from requirements-checkov.txt")
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(_rendered_text(overlay))
    sources = ["--directory", tmp_path, "--file", ROOT / "Dockerfile"]
    scan = subprocess.run(
        [
            CHECKOV,
            "--skip-download",
            "--quiet",
            "--compact",
            "--framework",
            "kubernetes",
            "dockerfile",
            *sources,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert scan.returncode == 0, scan.stdout[-6000:] + scan.stderr[-2000:]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_a_setting(overlay: str) -> None:
    declared = {variable.name for variable in variables()}
    for name in _env(_container(overlay)):
        assert name in declared or name.startswith("AWS_"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_covers_drain_and_grace(overlay: str) -> None:
    pod = _one(rendered(overlay), "Deployment")["spec"]["template"]["spec"]
    env = _env(pod["containers"][0])
    drain, grace = float(env["SHUTDOWN_DRAIN_SECONDS"]), float(env["SHUTDOWN_GRACE_SECONDS"])
    assert drain > 0
    assert pod["terminationGracePeriodSeconds"] > drain + grace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_grpc_health_on_a_plaintext_port(overlay: str) -> None:
    container = _container(overlay)
    env = _env(container)
    # Under mTLS the service port needs a client certificate, which kubelet's probes cannot give.
    port = int(env["HEALTH_PORT"]) if "TLS_CLIENT_CA_FILE" in env else 50051
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == port, probe


def test_mtls_files_are_mounted_from_the_certificate() -> None:
    resources = rendered("mtls")
    secret = _one(resources, "Certificate")["spec"]["secretName"]
    pod = _one(resources, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in pod["containers"][0]["volumeMounts"]}
    env = _env(pod["containers"][0])
    for variable, key in (
        ("TLS_CERT_FILE", "tls.crt"),
        ("TLS_KEY_FILE", "tls.key"),
        ("TLS_CLIENT_CA_FILE", "ca.crt"),
    ):
        path = Path(env[variable])
        assert path.name == key
        assert mounts[str(path.parent)]["secret"]["secretName"] == secret
    policy = Path(env["AUTHZ_POLICY_FILE"])
    mounted = mounts[str(policy.parent)]["configMap"]["name"]  # beside the dashboard's ConfigMap
    [config_map] = [r for r in resources if r["kind"] == "ConfigMap" and r["metadata"]["name"] == mounted]
    assert policy.name in config_map["data"]
    # The policy the overlay ships is one the service accepts (an invalid one stops the process).
    shipped = authz.Policy.parse(config_map["data"][policy.name].encode())
    assert shipped.rules and shipped.limits
    assert int(env["HEALTH_PORT"]) == pod["containers"][0]["readinessProbe"]["grpc"]["port"]


def test_pod_identity_reaches_the_agent_instead_of_irsa() -> None:
    resources = rendered("aws-pod-identity")
    assert "eks.amazonaws.com/role-arn" not in _one(resources, "ServiceAccount")["metadata"].get(
        "annotations", {}
    )
    egress = [
        (peer["ipBlock"]["cidr"], port["port"])
        for policy in resources
        if policy["kind"] == "NetworkPolicy"
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
        for port in rule["ports"]
    ]
    assert ("169.254.170.23/32", 80) in egress
    assert "eks.amazonaws.com/role-arn" in _one(rendered("aws"), "ServiceAccount")["metadata"]["annotations"]


def _quantity(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(text[:-2]) * units[text[-2:]] if text[-2:] in units else int(text)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_memory_limit_covers_the_worst_case(overlay: str) -> None:
    """docs/kubernetes.md (sizing): a worker holds its admitted bytes and what they cost, and
    the requests being read before admission, sized as MAX_CONCURRENT_RPCS + 8 at the receive limit
    (the old sync server's bound; docs/overload.md says why reads are no longer bounded by a count)."""
    container = _container(overlay)
    settings = Settings.from_env(_env(container))
    threads = settings.admitted_rpcs + READS_SIZED_FOR_BEYOND_ADMISSION
    per_worker = (
        PROCESS_BASE_BYTES
        + threads * settings.max_request_bytes
        + ADMITTED_BYTE_COST * settings.inflight_bytes
    )
    supervisor = SUPERVISOR_BYTES if settings.workers > 1 else 0
    assert settings.workers > 1
    assert settings.max_request_bytes < settings.max_batch_records * MAX_RECORD_BYTES  # bytes bound it
    assert _quantity(container["resources"]["limits"]["memory"]) >= settings.workers * per_worker + supervisor


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tmp_is_writable_under_a_read_only_root(overlay: str) -> None:
    pod = _one(rendered(overlay), "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    [tmp] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]
    assert "TMPDIR" not in _env(container)


def _selects_the_pods(selector: dict[str, str], pod_labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= pod_labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_what_the_manifests_promise(overlay: str) -> None:
    resources = rendered(overlay)
    deployment = _one(resources, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 2
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(_selects_the_pods(c["labelSelector"]["matchLabels"], pod_labels) for c in spread)
    # Every selector of ours finds the pods.
    assert _selects_the_pods(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert _selects_the_pods(
        _one(resources, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels
    )
    services = [r for r in facades(resources) if r["kind"] == "Service"]
    assert all(_selects_the_pods(service["spec"]["selector"], pod_labels) for service in services)
    ports = {port["name"]: port for service in services for port in service["spec"]["ports"]}
    assert {"grpc", "metrics"} <= set(ports)
    if "TLS_CERT_FILE" not in _env(_container(overlay)):
        assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    autoscaler = _one(resources, "HorizontalPodAutoscaler")["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert autoscaler["minReplicas"] >= 2
    # The NetworkPolicy: its own pods, ingress from labelled callers and the monitoring namespace only,
    # egress to DNS and HTTPS. Peers carry none of our labels (a kustomize `labels` with
    # includeSelectors would add them, and then no caller and no DNS server would match).
    policies = [r for r in facades(resources) if r["kind"] == "NetworkPolicy"]
    for policy in policies:
        assert _selects_the_pods(policy["spec"]["podSelector"]["matchLabels"], pod_labels)
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                assert not labels.items() & pod_labels.items(), peer
    [base] = [p for p in policies if p["metadata"]["name"] == deployment["metadata"]["name"]]
    sources = [peer for rule in base["spec"]["ingress"] for peer in rule["from"]]
    assert {"agentcore-memory-grpc/client": "true"} in [
        p.get("podSelector", {}).get("matchLabels") for p in sources
    ]
    assert any(
        p.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "monitoring"}
        for p in sources
    )
    egress_ports = {
        (port["protocol"], port["port"]) for rule in base["spec"]["egress"] for port in rule["ports"]
    }
    assert {("UDP", 53), ("TCP", 53), ("TCP", 443)} <= egress_ports


def test_shared_limits_count_in_a_redis_only_the_facade_reaches() -> None:
    """overlays/shared-limits: the facade's counters in the component's Redis, through a Service that
    selects its pod, egress from the facade to it, and ingress to it from the facade's pods alone."""
    resources = rendered("shared-limits")
    redis = [r for r in resources if _is_redis(r)]
    kinds = {r["kind"]: r for r in redis}
    assert set(kinds) == {"Deployment", "Service", "NetworkPolicy"}
    redis_pod = kinds["Deployment"]["spec"]["template"]
    [redis_port] = redis_pod["spec"]["containers"][0]["ports"]
    service = kinds["Service"]["spec"]
    assert _selects_the_pods(service["selector"], redis_pod["metadata"]["labels"])
    [service_port] = service["ports"]
    assert service_port["targetPort"] == redis_port["name"]

    env = _env(_container("shared-limits"))
    uri = env["RATE_LIMIT_STORAGE_URI"]
    assert uri == f"redis://{kinds['Service']['metadata']['name']}:{service_port['port']}/0"
    settings = Settings.from_env(env)  # the URI and the rates parse
    assert settings.upstream_rate_limits
    assert env.get("RATE_LIMIT_STORAGE_FAILURE", "open") == "open"

    facade_pod = _one(resources, "Deployment")["spec"]["template"]["metadata"]["labels"]
    facade_policy = _one(resources, "NetworkPolicy")
    assert _selects_the_pods(facade_policy["spec"]["podSelector"]["matchLabels"], facade_pod)
    assert any(
        _selects_the_pods(peer["podSelector"]["matchLabels"], redis_pod["metadata"]["labels"])
        and {"protocol": "TCP", "port": service_port["port"]} in rule["ports"]
        for rule in facade_policy["spec"]["egress"]
        for peer in rule.get("to", [])
        if "podSelector" in peer
    )
    redis_policy = kinds["NetworkPolicy"]["spec"]
    assert _selects_the_pods(redis_policy["podSelector"]["matchLabels"], redis_pod["metadata"]["labels"])
    [ingress] = redis_policy["ingress"]
    [peer] = ingress["from"]
    assert _selects_the_pods(peer["podSelector"]["matchLabels"], facade_pod)
    assert "namespaceSelector" not in peer  # the facade's namespace alone
    assert redis_policy["policyTypes"] == ["Ingress", "Egress"] and not redis_policy.get("egress")
    # Without the component, each process counts alone.
    assert "RATE_LIMIT_STORAGE_URI" not in _env(_container("mtls"))
