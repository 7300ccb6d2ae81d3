"""Schema checks of the rendered manifests (kubernetes-validate --strict), helm lint, and the
committed plain manifests."""

from __future__ import annotations

import subprocess

import helm_python as helm
import pytest
import yaml
from conftest import (
    CRD_KINDS,
    CUSTOM_RULES_VALUES,
    DEPLOY,
    K8S_VERSIONS,
    REPO,
    chart,
    chart_with_dependencies,
    custom_rules_values,
    kubernetes_validate,
    render_stream,
    validated_resources,
)

VARIANTS = {
    "defaults": {},
    "custom-rules": None,  # the tutorial-style values file, loaded below
    "least-privileged-metrics-cloudwatch": {
        "leastPrivileged": True,
        "metrics": {"enabled": True},
        "serviceMonitor": {"create": True},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/saker"}},
        "saker": {"cloudwatch_output": {"enabled": True, "region": "us-east-1"}},
        "priorityClassName": "system-node-critical",
        "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "extra": {"args": ["-o", "priority=notice"], "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["true"]}]},
        "collectors": {"containerEngine": {"engines": {"docker": {"enabled": True}}}},
    },
}


def variant_values(name):
    return custom_rules_values() if VARIANTS[name] is None else VARIANTS[name]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_manifests_pass_kubernetes_validate_strict(tmp_path, variant, version):
    stream = render_stream(variant_values(variant))
    path = tmp_path / f"{variant}.yaml"
    path.write_text(stream)
    docs = [d for d in yaml.safe_load_all(stream) if d]

    rc, out = kubernetes_validate(path, version)
    assert rc == 0, out
    expected = {f"{d['kind'].lower()}/{d['metadata']['name']}" for d in docs if d["kind"] not in CRD_KINDS}
    assert validated_resources(out) == expected, out
    # CRDs have no bundled schema: a warning, never a silent pass.
    for d in docs:
        if d["kind"] in CRD_KINDS:
            assert "WARN" in out and d["kind"] in out


def test_kubernetes_validate_strict_rejects_a_misspelled_key(tmp_path):
    """The validator is not vacuous: an unknown field in the pod spec fails it."""
    stream = render_stream({"extra": {"env": [{"name": "X", "valeu": "typo"}]}})
    path = tmp_path / "bad.yaml"
    path.write_text(stream)
    rc, out = kubernetes_validate(path, K8S_VERSIONS[-1])
    assert rc != 0
    assert "daemonset/saker" in out and "valeu" in out


@pytest.mark.parametrize("values_file", [None, CUSTOM_RULES_VALUES], ids=["defaults", "custom-rules"])
def test_helm_lint_is_clean(tmp_path, values_file):
    values = chart.load_values([values_file]) if values_file else None
    # Lint wants the dependency charts in place, as after `helm dependency update`.
    report = helm.lint(str(chart_with_dependencies(tmp_path)), values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_committed_plain_manifests_equal_a_fresh_render(tmp_path):
    committed = (DEPLOY / "manifests" / "saker.yaml").read_text()
    assert committed == chart.plain_manifests(), "run deploy/render-manifests.sh and commit the result"
    rc, out = kubernetes_validate(DEPLOY / "manifests" / "saker.yaml", K8S_VERSIONS[-1])
    assert rc == 0, out
    assert "namespace/saker" in validated_resources(out)


def test_render_manifests_script_writes_the_same_file(tmp_path):
    """The script is what users run; it must produce exactly what the test compares against."""
    work = tmp_path / "repo"
    (work / "deploy" / "manifests").mkdir(parents=True)
    for rel in ["deploy/render.py", "deploy/render-manifests.sh"]:
        (work / rel).write_bytes((REPO / rel).read_bytes())
        (work / rel).chmod(0o755)
    (work / "deploy" / "helm").symlink_to(DEPLOY / "helm")
    proc = subprocess.run([str(work / "deploy" / "render-manifests.sh")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (work / "deploy" / "manifests" / "saker.yaml").read_text() == chart.plain_manifests()


def test_render_cli_takes_values_files_and_sets():
    proc = subprocess.run(
        ["python3", str(DEPLOY / "render.py"), "-f", str(CUSTOM_RULES_VALUES), "--set", "tty=true", "--namespace", "security"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert {d["metadata"]["namespace"] for d in docs} == {"security"}
    cm = next(d for d in docs if d["metadata"]["name"] == "saker-rules")
    assert "whoami" in cm["data"]["rules-custom.yaml"]
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    assert ds["spec"]["template"]["spec"]["containers"][0]["tty"] is True

    bad = subprocess.run(
        ["python3", str(DEPLOY / "render.py"), "--set", "driver.kind=kmod"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    assert "driver.kind=kmod is not supported: Saker has neither a kernel module" in bad.stderr
