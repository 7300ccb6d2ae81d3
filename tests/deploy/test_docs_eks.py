"""docs/eks.md stays true: its Helm commands render, its custom rule is the tested one, and the
names it tells users to type exist in the chart and manifests."""

from __future__ import annotations

import os
import re
import shlex

import helm_python as helm
import yaml
from conftest import CUSTOM_RULES_VALUES, DEPLOY, HERE, REPO, chart, find, pod_spec, render_docs, saker_config, saker_container

K8S_AUDIT_VALUES = HERE / "values-k8s-audit.yaml"

DOC = REPO / "docs" / "eks.md"
SHELL_VARS = {
    "AWS_REGION": "eu-west-1",
    "ACCOUNT_ID": "111122223333",
    "REGISTRY": "111122223333.dkr.ecr.eu-west-1.amazonaws.com",
    "ROLE_ARN": "arn:aws:iam::111122223333:role/saker-cloudwatch",
    "CLUSTER": "saker-demo",
}


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.DOTALL)


def shell_commands() -> list[list[str]]:
    cmds = []
    for block in code_blocks("sh"):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                for var, val in SHELL_VARS.items():
                    line = line.replace(f"${var}", val)
                cmds.append(shlex.split(line))
    return cmds


def helm_values(cmd: list[str]) -> dict:
    """The values a `helm install/upgrade` command line passes, applied in order."""
    values: dict = {}
    it = iter(cmd)
    for arg in it:
        if arg == "--set":
            values = chart.merge_values(values, helm.parse_set_string(next(it)))
        elif arg == "--set-string":
            values = chart.merge_values(values, helm.parse_set_string_values(next(it)))
        elif arg == "-f":
            name = next(it)
            files = {"custom-rules.yaml": CUSTOM_RULES_VALUES, "k8s-audit.yaml": K8S_AUDIT_VALUES}
            assert name in files, name
            values = chart.merge_values(values, chart.load_values([files[name]]))
        elif arg == "--set-file":
            key, _ = next(it).split("=", 1)
            values = chart.merge_values(values, helm.parse_set_string(f"{key}=rules"))
    return values


def test_every_helm_command_in_the_guide_renders():
    helm_cmds = [c for c in shell_commands() if c[:2] in (["helm", "install"], ["helm", "upgrade"])]
    assert len(helm_cmds) == 4, helm_cmds
    for cmd in helm_cmds:
        assert "./deploy/helm/saker" in cmd
        assert (REPO / "deploy/helm/saker/Chart.yaml").is_file()
        # The tutorials' release: `falco` in the namespace `falco`.
        assert cmd[2] == "falco"
        docs = render_docs(helm_values(cmd), name=cmd[2], namespace=cmd[cmd.index("-n" if "-n" in cmd else "--namespace") + 1])
        assert find(docs, "DaemonSet")["metadata"]["namespace"] == "falco"
        assert saker_config(docs)["json_output"] is True

    option_a = render_docs(helm_values(helm_cmds[0]), name="falco", namespace="falco")
    assert saker_container(option_a)["image"] == f"{SHELL_VARS['REGISTRY']}/saker:0.1.0"
    sa = find(option_a, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": SHELL_VARS["ROLE_ARN"]}
    cw = saker_config(option_a)["cloudwatch_output"]
    assert cw["enabled"] is True and cw["region"] == SHELL_VARS["AWS_REGION"]
    # The IRSA role eksctl creates is for the service account the chart names.
    eksctl = next(c for c in shell_commands() if c[:3] == ["eksctl", "create", "iamserviceaccount"])
    assert eksctl[eksctl.index("--name") + 1] == pod_spec(option_a)["serviceAccountName"]
    assert eksctl[eksctl.index("--namespace") + 1] == sa["metadata"]["namespace"]

    audit = render_docs(helm_values(helm_cmds[3]), name="falco", namespace="falco")
    dep = find(audit, "Deployment", "falco-k8s-audit")
    assert dep["spec"]["replicas"] == 1
    # The names the guide types exist.
    assert any(c[:3] == ["kubectl", "-n", "falco"] and "deployment/falco-k8s-audit" in c for c in shell_commands())
    cfg = yaml.safe_load(find(audit, "ConfigMap", "falco-k8s-audit")["data"]["saker-k8s-audit.yaml"])
    assert cfg["rules_files"] == ["/etc/saker/k8s-audit-rules.d/k8s_audit_rules.yaml"]

    option_b = render_docs(helm_values(helm_cmds[1]), name="falco", namespace="falco")
    assert saker_config(option_b)["cloudwatch_output"]["enabled"] is False
    assert saker_config(option_b)["json_output"] is True


def test_the_guide_custom_rule_is_the_tested_values_file():
    blocks = [b for b in code_blocks("yaml") if b.startswith("customRules:")]
    assert len(blocks) == 1
    assert yaml.safe_load(blocks[0]) == yaml.safe_load(CUSTOM_RULES_VALUES.read_text())
    blocks = [b for b in code_blocks("yaml") if b.startswith("k8sAudit:")]
    assert len(blocks) == 1
    assert yaml.safe_load(blocks[0]) == yaml.safe_load(K8S_AUDIT_VALUES.read_text())


def test_kubectl_selectors_and_fluent_bit_edits_match_the_manifests():
    labels = find(render_docs(name="falco", namespace="falco"), "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    for cmd in shell_commands():
        if cmd[:2] == ["kubectl", "logs"] and "-l" in cmd:
            key, value = cmd[cmd.index("-l") + 1].split("=")
            assert labels.get(key) == value
    # The sed edits in option B must hit text that is in the manifest.
    manifest = (DEPLOY / "fluent-bit" / "fluent-bit.yaml").read_text()
    sed = next(c for c in shell_commands() if c[:1] == ["sed"])
    for expr in [sed[i + 1] for i, a in enumerate(sed) if a == "-e"]:
        _, old, _new, _ = expr.split("#")
        assert old in manifest, old
    # Every repository path the guide names exists.
    for path in set(re.findall(r"`((?:deploy|tests|docs)/[\w./-]+)`", DOC.read_text())):
        assert (REPO / path).exists(), path
    assert os.access(DEPLOY / "aws" / "metric-filters.sh", os.X_OK)


def test_the_guide_ships_to_the_tutorials_log_group_and_stream():
    """Fluent Bit writes the group `falco`, stream `alerts`, as the Falco-on-EKS tutorials do; the
    guide names them, the native output defaults to the same group, and the dependency step is
    there before the first install."""
    text = DOC.read_text()
    manifest = (DEPLOY / "fluent-bit" / "fluent-bit.yaml").read_text()
    assert re.search(r"log_group_name\s+falco\n", manifest) and re.search(r"log_stream_name\s+alerts\n", manifest)
    assert "log group `falco`, stream `alerts`" in text
    assert saker_config(render_docs())["cloudwatch_output"]["log_group"] == "falco"
    cmds = shell_commands()
    dep = cmds.index(["helm", "dependency", "update", "./deploy/helm/saker"])
    first_install = next(i for i, c in enumerate(cmds) if c[:2] == ["helm", "install"])
    assert dep < first_install
