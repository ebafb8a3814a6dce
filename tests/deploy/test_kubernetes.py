"""deploy/k8s: each overlay built with `kubectl kustomize`, the output validated with
`kubernetes-validate --strict`, and the KEDA and prometheus-operator resources against their
CRDs' OpenAPI schemas committed under deploy/schemas."""

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_tools import DEPLOY, SCHEMAS, run, tool

OVERLAYS = ("dev", "prod")
KUBERNETES_VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
CUSTOM_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobject_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrule_v1.json",
}


@pytest.fixture(scope="module", params=OVERLAYS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The overlay's manifests, as `kubectl kustomize` writes them."""
    output = run(tool("kubectl"), "kustomize", DEPLOY / "k8s" / "overlays" / request.param).stdout
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(output)
    return path


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kinds(path: Path) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in _docs(path):
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


@pytest.mark.parametrize("version", ["1.30", "1.37"])
def test_core_resources_pass_kubernetes_validate_strict(built: Path, version: str) -> None:
    result = run(KUBERNETES_VALIDATE, "--strict", "--quiet", "-k", version, built)
    unchecked = [line for line in result.stdout.splitlines() if "Couldn't find schema" in line]
    for line in unchecked:  # only the CRD kinds below may be unknown to it
        assert any(kind in line for _, kind in CUSTOM_SCHEMAS), line
    assert "ERROR" not in result.stdout + result.stderr


def test_custom_resources_match_their_crd_schemas(built: Path) -> None:
    checked = 0
    for doc in _docs(built):
        name = CUSTOM_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if name is not None:
            schema = json.loads((SCHEMAS / name).read_text())
            jsonschema.Draft7Validator(schema).validate(doc)
            checked += 1
    assert checked >= 4  # three ServiceMonitors and the PrometheusRule (and prod's ScaledObject)


def test_a_wrong_field_is_caught(tmp_path: Path) -> None:
    """The schemas are strict enough to matter: a typo in a ScaledObject is an error."""
    schema = json.loads(
        (SCHEMAS / CUSTOM_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")]).read_text()
    )
    bad = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}}
    bad["spec"] = {"scaleTargetRef": {"name": "x"}, "triggers": [{"typo": "prometheus"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(bad)


def test_what_the_overlays_hold(built: Path) -> None:
    kinds = _kinds(built)
    assert sum(len(docs) for docs in kinds.values()) == 23, "docs/operations.md gives the count"
    deployments = {d["metadata"]["name"]: d for d in kinds["Deployment"]}
    assert set(deployments) == {"hookstream-api", "hookstream-matcher", "hookstream-dispatcher"}
    assert len(kinds["PodDisruptionBudget"]) == 3 and len(kinds["ServiceMonitor"]) == 3
    assert len(kinds["Service"]) == 3 and len(kinds["PrometheusRule"]) == 1
    [cronjob] = kinds["CronJob"]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["hookstream-janitor", "--once"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    api = deployments["hookstream-api"]["spec"]["template"]["spec"]
    assert api["initContainers"][0]["command"] == ["hookstream", "migrate"]
    autoscalers = kinds.get("ScaledObject", []) + kinds.get("HorizontalPodAutoscaler", [])
    assert len(autoscalers) == 1
    assert "replicas" not in deployments["hookstream-dispatcher"]["spec"], "the autoscaler owns it"
    for deployment in deployments.values():
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert len(spec["topologySpreadConstraints"]) == 2
        for container in spec["containers"] + spec.get("initContainers", []):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"] and container["resources"]["limits"]
        [container] = spec["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        secrets = [e for e in container.get("env", []) if "valueFrom" in e]
        assert all(e["valueFrom"]["secretKeyRef"]["name"] == "hookstream-secrets" for e in secrets)
    assert "Secret" not in kinds, "secrets are created by the operator, never committed"


def test_ops_ports_are_scraped_and_probed_and_the_config_rolls_the_pods(built: Path) -> None:
    """Probes and ServiceMonitors use the `ops` port (the API's public port serves no
    /metrics); kube-prometheus-stack finds the monitors and rules by `release`; the ConfigMap's
    name carries its hash, so a change rolls every pod that reads it; a rollout's spread counts
    only the new pods and schedulable nodes."""
    kinds = _kinds(built)
    for monitor in kinds["ServiceMonitor"] + kinds["PrometheusRule"]:
        assert monitor["metadata"]["labels"]["release"]
    for monitor in kinds["ServiceMonitor"]:
        assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["ops"]
    for service in kinds["Service"]:
        assert "ops" in [port["name"] for port in service["spec"]["ports"]]
    [config] = kinds["ConfigMap"]
    assert config["metadata"]["name"].startswith("hookstream-config-")
    for deployment in kinds["Deployment"]:
        spec = deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] == "ops"
        [source] = container["envFrom"]
        assert source["configMapRef"]["name"] == config["metadata"]["name"]
        for spread in spec["topologySpreadConstraints"]:
            assert spread["matchLabelKeys"] == ["pod-template-hash"]
            if spread["whenUnsatisfiable"] == "DoNotSchedule":
                assert spread["nodeTaintsPolicy"] == "Honor"


def test_keda_counts_only_its_own_namespace(built: Path) -> None:
    kinds = _kinds(built)
    for scaled in kinds.get("ScaledObject", []):
        [trigger] = scaled["spec"]["triggers"]
        namespace = scaled["metadata"]["namespace"]
        assert f'namespace="{namespace}"' in trigger["metadata"]["query"]


def _policy_ports(allowed: str) -> list[dict[str, object]]:
    """HOOKSTREAM_ALLOWED_PORTS (`443,8443` or `1024-65535`) as NetworkPolicy ports."""
    ports: list[dict[str, object]] = []
    for item in allowed.split(","):
        first, _, last = item.strip().partition("-")
        port: dict[str, object] = {"protocol": "TCP", "port": int(first)}
        if last:
            port["endPort"] = int(last)
        ports.append(port)
    return ports


def test_network_policies_deny_by_default_and_open_only_https_to_public_addresses(
    built: Path,
) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _kinds(built)["NetworkPolicy"]}
    deny = policies["hookstream-default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    [rule] = policies["hookstream-public-https"]["egress"]
    [config] = _kinds(built)["ConfigMap"]
    assert rule["ports"] == _policy_ports(config["data"]["HOOKSTREAM_ALLOWED_PORTS"])
    excepted = {cidr for block in rule["to"] for cidr in block["ipBlock"]["except"]}
    assert {
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fc00::/7",
    } <= excepted
