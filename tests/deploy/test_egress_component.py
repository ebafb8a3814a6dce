"""deploy/k8s/components/egress-proxy, added to a copy of the prod overlay as an operator adds it:
built with `kubectl kustomize`, validated with `kubernetes-validate --strict`, and the senders'
only way out is the proxy."""

import shutil
import sys
from pathlib import Path

import yaml
from deploy_tools import DEPLOY, run, tool

KUBERNETES_VALIDATE = Path(sys.executable).with_name("kubernetes-validate")


def test_the_component_sends_everything_through_the_proxy(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    shutil.copytree(DEPLOY / "k8s", k8s)
    overlay = k8s / "overlays" / "prod" / "kustomization.yaml"
    config = yaml.safe_load(overlay.read_text())
    config["components"].append("../../components/egress-proxy")
    overlay.write_text(yaml.safe_dump(config))
    built = tmp_path / "prod.yaml"
    built.write_text(run(tool("kubectl"), "kustomize", overlay.parent).stdout)

    result = run(KUBERNETES_VALIDATE, "--strict", "--quiet", "-k", "1.37", built)
    assert "ERROR" not in result.stdout + result.stderr
    docs = [doc for doc in yaml.safe_load_all(built.read_text()) if doc]
    [config_map] = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config_map["data"]["HOOKSTREAM_EGRESS_PROXY"] == "http://smokescreen.egress.svc:4750"
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert "hookstream-public-https" not in policies
    proxy_only = policies["hookstream-egress-proxy"]
    assert proxy_only["metadata"]["namespace"] == "hookstream"
    expressions = proxy_only["spec"]["podSelector"]["matchExpressions"]
    [senders] = [e["values"] for e in expressions if e["key"] == "app.kubernetes.io/component"]
    assert senders == ["dispatcher", "api"]
    [rule] = proxy_only["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 4750}]
    # No policy is left that opens addresses outside the cluster (only pods: DNS, Kafka,
    # Postgres, the proxy).
    peers = [
        peer
        for policy in policies.values()
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
    ]
    assert peers and not any("ipBlock" in peer for peer in peers)
