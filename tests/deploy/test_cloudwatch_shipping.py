"""The CloudWatch side: the Fluent Bit DaemonSet that ships Saker's stdout, the metric filters
(AWS CLI script run against a moto server, and the CloudFormation template), the IAM policy."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import DEPLOY, K8S_VERSIONS, find, in_ci, kubernetes_validate, render_docs, saker_config, validated_resources

FLUENT_BIT = DEPLOY / "fluent-bit" / "fluent-bit.yaml"
CFN = DEPLOY / "aws" / "metric-filters.cfn.json"
SCRIPT = DEPLOY / "aws" / "metric-filters.sh"
POLICY = DEPLOY / "aws" / "iam-policy.json"

ALERT = {
    "hostname": "ip-10-0-1-23.ec2.internal",
    "output": "12:00:00.000000000: Notice A shell was spawned in a container with an attached terminal ...",
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "source": "syscall",
    "tags": ["container", "shell", "mitre_execution"],
    "time": "2026-11-24T12:00:00.000000000Z",
    "output_fields": {"container.id": "3ad7b26ded6d", "k8s.pod.name": "nginx", "k8s.ns.name": "default"},
}
FALCO_PRIORITIES = {"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}


def fluent_bit_docs():
    return [d for d in yaml.safe_load_all(FLUENT_BIT.read_text()) if d]


def fluent_bit_sections() -> list[tuple[str, dict[str, list[str]]]]:
    """fluent-bit.conf (classic format) as [(SECTION, {key: [values]})]."""
    cm = find(fluent_bit_docs(), "ConfigMap")
    sections: list[tuple[str, dict[str, list[str]]]] = []
    for raw in cm["data"]["fluent-bit.conf"].splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.fullmatch(r"\[(\w+)\]", line):
            sections.append((m.group(1).upper(), {}))
            continue
        key, _, value = line.partition(" ")
        sections[-1][1].setdefault(key.lower(), []).append(value.strip())
    return sections


def section(name: str, plugin: str) -> dict[str, list[str]]:
    hits = [kv for s, kv in fluent_bit_sections() if s == name and kv["name"] == [plugin]]
    assert len(hits) == 1, f"one [{name}] {plugin} expected"
    return hits[0]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_fluent_bit_manifest_passes_kubernetes_validate_strict(version):
    rc, out = kubernetes_validate(FLUENT_BIT, version)
    assert rc == 0, out
    expected = {f"{d['kind'].lower()}/{d['metadata']['name']}" for d in fluent_bit_docs()}
    assert validated_resources(out) == expected
    # Least privilege: no API access at all.
    assert not {"ClusterRole", "ClusterRoleBinding", "Role"} & {d["kind"] for d in fluent_bit_docs()}


def test_fluent_bit_tails_exactly_the_saker_containers():
    tail = section("INPUT", "tail")
    (pattern,) = tail["path"]
    # kubelet's file name: <pod>_<namespace>_<container>-<container id>.log, for the release
    # docs/eks.md installs (the tutorials' "falco" in namespace "falco").
    docs = render_docs(name="falco", namespace="falco")
    ds = find(docs, "DaemonSet")
    ns = ds["metadata"]["namespace"]
    container = ds["spec"]["template"]["spec"]["containers"][0]["name"]
    cid = "0123456789abcdef" * 4
    saker_log = f"/var/log/containers/{ds['metadata']['name']}-x7k2p_{ns}_{container}-{cid}.log"
    assert fnmatch.fnmatch(saker_log, pattern)
    for other in [
        f"/var/log/containers/nginx_default_nginx-{cid}.log",
        f"/var/log/containers/saker-fluent-bit-abcde_amazon-cloudwatch_fluent-bit-{cid}.log",
        f"/var/log/containers/{ds['metadata']['name']}-x7k2p_{ns}_sidecar-{cid}.log",
        # The chart's falcoctl follower and a Falcosidekick pod of the same release.
        f"/var/log/containers/{ds['metadata']['name']}-x7k2p_{ns}_falcoctl-artifact-follow-{cid}.log",
        f"/var/log/containers/{ds['metadata']['name']}-falcosidekick-5d9c_{ns}_falcosidekick-{cid}.log",
    ]:
        assert not fnmatch.fnmatch(other, pattern), other
    assert "cri" in tail["multiline.parser"][0]


def test_fluent_bit_keeps_only_alert_json_from_stdout():
    grep = section("FILTER", "grep")
    rules = [r.split(None, 1) for r in grep["regex"]]
    record_alert = {"stream": "stdout", "log": json.dumps(ALERT)}
    record_stderr = {"stream": "stderr", "log": json.dumps(ALERT)}
    record_text = {"stream": "stdout", "log": "saker: loaded 87 rules from /etc/saker/saker_rules.yaml"}

    def kept(record):
        return all(re.search(rx, record[key]) for key, rx in rules)

    assert kept(record_alert)
    assert not kept(record_stderr)
    assert not kept(record_text)


def test_fluent_bit_output_matches_the_chart_log_group_and_sends_the_raw_alert():
    out = section("OUTPUT", "cloudwatch_logs")
    # The Falco-on-EKS tutorials' group and stream; the native output defaults to the same group.
    assert out["log_group_name"] == ["falco"] == [saker_config(render_docs())["cloudwatch_output"]["log_group"]]
    assert out["log_stream_name"] == ["alerts"]
    # Only the alert line is sent, so metric filters see the same JSON as with the native output.
    assert out["log_key"] == ["log"]
    assert out["auto_create_group"] == ["true"]
    assert out["region"] == ["${AWS_REGION}"]
    ds = find(fluent_bit_docs(), "DaemonSet")
    env = {e["name"] for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "AWS_REGION" in env
    sa = find(fluent_bit_docs(), "ServiceAccount")
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]


def cfn_filters() -> dict[str, dict]:
    resources = json.loads(CFN.read_text())["Resources"]
    return {r["Properties"]["FilterName"]: r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::MetricFilter"}


def test_cfn_metric_filters_read_the_alert_json_fields():
    filters = cfn_filters()
    assert set(filters) == {"saker-alerts-by-rule", "saker-terminal-shell-in-container", "saker-critical-alerts"}
    for props in filters.values():
        pattern = props["FilterPattern"]
        assert pattern.startswith("{") and pattern.endswith("}")
        fields = set(re.findall(r"\$\.(\w+)", pattern))
        assert fields and fields <= set(ALERT), f"{pattern} reads fields an alert does not have"
        for literal in re.findall(r'\$\.priority = "(\w+)"', pattern):
            assert literal in FALCO_PRIORITIES
        for t in props["MetricTransformations"]:
            assert t["MetricNamespace"] == "Saker"
            # CloudWatch refuses a default value on a metric with dimensions.
            assert not ("Dimensions" in t and "DefaultValue" in t)
            for d in t.get("Dimensions", []):
                assert d["Value"][2:] in fields, "a dimension must be matched by the pattern"
    by_rule = filters["saker-alerts-by-rule"]["MetricTransformations"][0]
    assert {d["Key"]: d["Value"] for d in by_rule["Dimensions"]} == {"Rule": "$.rule", "Priority": "$.priority"}
    assert ALERT["rule"] in filters["saker-terminal-shell-in-container"]["FilterPattern"]


def test_iam_policy_covers_both_shipping_options():
    policy = json.loads(POLICY.read_text())
    actions = set()
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow"
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        actions |= set(acts)
        if any(a.startswith("logs:") for a in acts):
            for group_arn in (
                "arn:aws:logs:us-east-1:111122223333:log-group:falco",
                "arn:aws:logs:us-east-1:111122223333:log-group:/aws/saker/alerts",
            ):
                assert any(fnmatch.fnmatch(group_arn, r) for r in st["Resource"])
                assert any(fnmatch.fnmatch(group_arn + ":log-stream:alerts", r) for r in st["Resource"])
            assert not any(fnmatch.fnmatch("arn:aws:logs:us-east-1:1:log-group:falcon", r) for r in st["Resource"])
            assert not any(fnmatch.fnmatch("arn:aws:logs:us-east-1:1:log-group:/other", r) for r in st["Resource"])
    assert actions == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
        "logs:PutRetentionPolicy",
        "cloudwatch:PutMetricData",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_endpoint():
    exe = shutil.which("moto_server")
    if exe is None:
        if in_ci():
            pytest.fail("moto_server missing in CI (scripts/setup-debian.sh installs moto[server])")
        pytest.skip("moto_server not installed")
    port = free_port()
    proc = subprocess.Popen([exe, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_metric_filter_script_creates_the_cfn_filters(moto_endpoint):
    if shutil.which("aws") is None:
        if in_ci():
            pytest.fail("aws CLI missing in CI (scripts/setup-debian.sh installs PyPI awscli)")
        pytest.skip("aws CLI not installed")
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        LOG_GROUP="falco",
    )
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    query = (
        "import boto3, json, sys\n"
        "logs = boto3.client('logs', endpoint_url=sys.argv[1])\n"
        "cw = boto3.client('cloudwatch', endpoint_url=sys.argv[1])\n"
        "print(json.dumps({'filters': logs.describe_metric_filters(logGroupName='falco')['metricFilters'],"
        " 'alarms': [a['AlarmName'] for a in cw.describe_alarms()['MetricAlarms']]}, default=str))\n"
    )
    got = subprocess.run([sys.executable, "-c", query, moto_endpoint], capture_output=True, text=True, env=env, check=True)
    state = json.loads(got.stdout)
    created = {f["filterName"]: f for f in state["filters"]}
    expected = cfn_filters()
    assert set(created) == set(expected)
    for name, props in expected.items():
        assert created[name]["filterPattern"] == props["FilterPattern"], name
        (cli_t,) = created[name]["metricTransformations"]
        (cfn_t,) = props["MetricTransformations"]
        assert cli_t["metricName"] == cfn_t["MetricName"]
        assert cli_t["metricNamespace"] == cfn_t["MetricNamespace"]
        assert cli_t["metricValue"] == cfn_t["MetricValue"]
        assert cli_t.get("dimensions", {}) == {d["Key"]: d["Value"] for d in cfn_t.get("Dimensions", [])}
        if "DefaultValue" in cfn_t:
            assert float(cli_t["defaultValue"]) == float(cfn_t["DefaultValue"])
    assert state["alarms"] == ["saker-terminal-shell-in-container"]
