"""The optional k8s_audit Deployment (EKS audit poller): one replica beside the node DaemonSet,
Falco's plugin values carried into its saker.yaml, strict manifest validation, and the rendered
config accepted by the saker binary."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from conftest import HERE, K8S_VERSIONS, SHARED, chart, find, kubernetes_validate, render_docs, render_stream, saker_bin, validated_resources

VALUES = HERE / "values-k8s-audit.yaml"


def values(**extra):
    v = chart.load_values([VALUES])
    return chart.merge_values(v, extra) if extra else v


def audit_config(docs):
    cm = find(docs, "ConfigMap", "saker-k8s-audit")
    return yaml.safe_load(cm["data"]["saker-k8s-audit.yaml"])


def test_off_by_default():
    docs = render_docs()
    assert not [d for d in docs if d["kind"] == "Deployment"]
    assert not [d for d in docs if d["metadata"]["name"].endswith("k8s-audit")]


def test_one_replica_beside_the_daemonset_with_falcos_plugin_values():
    docs = render_docs(values())
    ds = find(docs, "DaemonSet")
    dep = find(docs, "Deployment", "saker-k8s-audit")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    # Selectors do not overlap: the DaemonSet never counts the audit pod as its own.
    sel_ds, sel_dep = ds["spec"]["selector"]["matchLabels"], dep["spec"]["selector"]["matchLabels"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert not all(pod_labels.get(k) == v for k, v in sel_ds.items())
    assert all(pod_labels.get(k) == v for k, v in sel_dep.items())
    spec = dep["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == ds["spec"]["template"]["spec"]["serviceAccountName"], "IRSA role of the chart's account"
    c = spec["containers"][0]
    assert c["args"] == ["run", "-c", "/etc/saker/saker.yaml"]
    assert "privileged" not in c["securityContext"] and c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "checkpoint", "mountPath": "/var/lib/saker"} in c["volumeMounts"]
    assert {"name": "checkpoint", "emptyDir": {}} in spec["volumes"]
    cfg = audit_config(docs)
    want = yaml.safe_load(VALUES.read_text())["k8sAudit"]
    assert cfg["plugins"] == want["plugins"] and cfg["load_plugins"] == want["load_plugins"]
    assert cfg["engine"] == {"kind": "nodriver"}
    assert "container_engines" not in cfg
    # The node DaemonSet's config is untouched.
    node = yaml.safe_load(find(docs, "ConfigMap", "saker")["data"]["saker.yaml"])
    assert "plugins" not in node or not node["plugins"]


def test_refusals():
    with pytest.raises(Exception, match="open_params must be the EKS cluster name"):
        render_docs(values(k8sAudit={"plugins": [{"name": "k8saudit-eks", "open_params": ""}]}))
    with pytest.raises(Exception, match="load exactly one of the plugins"):
        render_docs(values(k8sAudit={"load_plugins": ["json"]}))


def test_custom_rules_and_a_pvc_checkpoint(tmp_path):
    rules = (SHARED / "k8s-audit" / "k8s_audit_rules.yaml").read_text()
    v = values(k8sAudit={"customRules": {"k8s_audit_rules.yaml": rules}, "checkpointClaim": "saker-ckpt"})
    stream = render_stream(v)
    docs = [d for d in yaml.safe_load_all(stream) if d]
    cfg = audit_config(docs)
    assert cfg["rules_files"] == ["/etc/saker/k8s-audit-rules.d/k8s_audit_rules.yaml"]
    cm = find(docs, "ConfigMap", "saker-k8s-audit")
    assert cm["data"]["k8s_audit_rules.yaml"] == rules.rstrip("\n")
    spec = find(docs, "Deployment", "saker-k8s-audit")["spec"]["template"]["spec"]
    assert {"name": "checkpoint", "persistentVolumeClaim": {"claimName": "saker-ckpt"}} in spec["volumes"]
    path = tmp_path / "m.yaml"
    path.write_text(stream)
    for version in K8S_VERSIONS:
        rc, out = kubernetes_validate(path, version)
        assert rc == 0, out
        assert "deployment/saker-k8s-audit" in validated_resources(out)


@pytest.mark.slow
def test_the_rendered_config_passes_saker_dry_run(tmp_path):
    rules = (SHARED / "k8s-audit" / "k8s_audit_rules.yaml").read_text()
    docs = render_docs(values(k8sAudit={"customRules": {"k8s_audit_rules.yaml": rules}}))
    cfg = audit_config(docs)
    (tmp_path / "k8s_audit_rules.yaml").write_text(rules)
    cfg["rules_files"] = [str(tmp_path / "k8s_audit_rules.yaml")]
    (tmp_path / "saker.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([str(saker_bin()), "-c", str(tmp_path / "saker.yaml"), "--dry-run"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "dry run: config OK" in proc.stderr
    assert "43 rules enabled" in proc.stderr, proc.stderr
