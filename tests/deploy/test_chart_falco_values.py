"""A Falco user's Helm values on Saker's chart: every value path of Falco's chart is honoured,
mapped or refused (deploy/README.md has the table); Falco's own values file, falcoctl, the
falcosidekick dependency, deployment mode, certs, names and the Grafana dashboard."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from conftest import (
    CRD_KINDS,
    DEPLOY,
    K8S_VERSIONS,
    chart,
    chart_with_dependencies,
    controller,
    custom_rules_values,
    falco_value_paths,
    falco_values,
    find,
    kinds,
    kubernetes_validate,
    pod_spec,
    render_docs,
    render_stream,
    require_live,
    run_live,
    saker_bin,
    saker_config,
    saker_container,
    shared,
    validated_resources,
)

README = DEPLOY / "README.md"
REFUSED = yaml.safe_load((chart.CHART_DIR / "refused-values.yaml").read_text())
STATUSES = {"honoured", "mapped", "no effect", "refused"}


def readme_table() -> dict[str, tuple[str, str]]:
    """value path -> (status, note) from the chart README's table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in README.read_text().splitlines():
        m = re.fullmatch(r"\| `([^`]+)` \| ([^|]*?) \|\s*(.*?)\s*\|", line)
        if m and m.group(1) not in rows:
            rows[m.group(1)] = (m.group(2), m.group(3))
        elif m:
            raise AssertionError(f"{m.group(1)} is listed twice")
    return rows


def get_path(values: dict[str, Any], path: str) -> Any:
    cur: Any = values
    for key in path.split("."):
        cur = cur[key]
    return cur


def with_value(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    out = copy.deepcopy(base or {})
    cur = out
    *parents, leaf = path.split(".")
    for key in parents:
        cur = cur.setdefault(key, {})
    cur[leaf] = value
    return out


def notes(values: dict[str, Any], **kw: Any) -> str:
    return chart.render(values, **kw)["saker/templates/NOTES.txt"]


# --- the table --------------------------------------------------------------------------------


def test_falco_chart_has_131_value_paths():
    paths = falco_value_paths()
    assert len(paths) == 131 == len(set(paths))


def test_readme_table_accounts_for_every_falco_value_path_once():
    table = readme_table()
    assert sorted(table) == sorted(falco_value_paths())
    bad = {p: s for p, (s, _) in table.items() if s not in STATUSES}
    assert bad == {}


def test_refused_values_are_the_readme_refusals_at_falco_defaults():
    table = readme_table()
    refused_in_readme = {p for p, (s, _) in table.items() if s == "refused"}
    # driver.enabled is refused by value (false), the others by refused-values.yaml.
    assert refused_in_readme == set(REFUSED) | {"driver.enabled"}
    falco = falco_values()
    for path, spec in REFUSED.items():
        assert get_path(falco, path) == spec["default"], path
        assert spec["reason"].strip(), path


def mutated(value: Any) -> Any:
    """A different value of the same shape that passes the schema."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "-changed" if value else "changed"
    if isinstance(value, list):
        return [*value, "changed"]
    if isinstance(value, dict):
        if "args" in value:  # driver.loader.initContainer
            return {**value, "args": ["--changed"]}
        return {**value, "changed": 1}
    raise AssertionError(value)


@pytest.mark.parametrize("path", sorted(REFUSED))
def test_a_refused_value_fails_the_render_naming_path_and_reason(path):
    value = mutated(REFUSED[path]["default"])
    with pytest.raises(helm.HelmError) as err:
        render_docs(with_value(path, value))
    message = str(err.value)
    assert f"{path}={json.dumps(value, separators=(',', ':'), sort_keys=True)} is not supported: {REFUSED[path]['reason']}" in message


def test_all_refusals_are_reported_at_once():
    values = with_value("responseActions.enabled", True, with_value("collectors.kubernetes.enabled", True))
    values["driver"] = {"kind": "kmod"}
    with pytest.raises(helm.HelmError) as err:
        render_docs(values)
    message = str(err.value)
    for part in ("responseActions.enabled=true", "collectors.kubernetes.enabled=true", "driver.kind=kmod"):
        assert part in message


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"drivr": {"kind": "modern_ebpf"}}, "additional properties 'drivr' not allowed"),
        ({"driver": {"kinds": "modern_ebpf"}}, "at '/driver': additional properties 'kinds' not allowed"),
        ({"falcoctl": {"artifact": {"instal": {"enabled": False}}}}, "at '/falcoctl/artifact': additional properties 'instal' not allowed"),
        ({"healthChecks": {"livenessProbe": {"periodSecond": 5}}}, "at '/healthChecks/livenessProbe': additional properties 'periodSecond'"),
    ],
)
def test_a_value_path_in_neither_chart_fails_naming_it(values, named):
    with pytest.raises(helm.HelmError) as err:
        render_docs(values)
    assert named in str(err.value)


def test_the_values_schema_is_fresh():
    proc = subprocess.run(
        ["python3", str(DEPLOY / "gen-values-schema.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


# Each honoured or mapped path, set to another value (in a context where it applies), changes
# the rendered manifests: nothing is silently dropped. Paths whose change needs a specific
# value or context are listed; the others get `mutated(default)`.
CONTEXT: dict[str, dict[str, Any]] = {
    "metrics.": {"metrics": {"enabled": True}},
    "serviceMonitor.": {"metrics": {"enabled": True}, "serviceMonitor": {"create": True}},
    "grafana.dashboards.configMaps": {"grafana": {"dashboards": {"enabled": True}}},
    "controller.deployment.": {"controller": {"kind": "deployment"}},
    "certs.server.": {"certs": {"server": {"key": "K", "crt": "C"}, "ca": {"crt": "A"}}},
    "certs.ca.": {"certs": {"server": {"key": "K", "crt": "C"}, "ca": {"crt": "A"}}},
    "certs.client.": {"certs": {"client": {"key": "K", "crt": "C"}, "ca": {"crt": "A"}}},
    "falcosidekick.fullfqdn": {"falcosidekick": {"enabled": True}},
    "falcosidekick.listenPort": {"falcosidekick": {"enabled": True}},
    "image.": {"image": {"repository": "saker-dev/saker"}},
}
NEW_VALUE: dict[str, Any] = {
    "image.pullPolicy": "Always",
    "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccount.imagePullSecrets": [{"name": "regcred"}],
    "tolerations": [{"operator": "Exists"}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "affinity": {"nodeAffinity": {}},
    "podAnnotations": {"a": "b"},
    "podLabels": {"a": "b"},
    "podSecurityContext": {"runAsNonRoot": False},
    "containerSecurityContext": {"privileged": True},
    "serviceAccount.annotations": {"a": "b"},
    "controller.annotations": {"a": "b"},
    "controller.labels": {"a": "b"},
    "controller.kind": "deployment",
    "controller.daemonset.updateStrategy": {"type": "OnDelete"},
    "services": [{"name": "grpc", "ports": [{"port": 5060, "targetPort": 5060}]}],
    "metrics.interval": "5m",
    "metrics.service.type": "NodePort",
    "metrics.service.labels": {"a": "b"},
    "metrics.service.annotations": {"a": "b"},
    "metrics.service.ports": {"metrics": {"port": 9999, "targetPort": 8765, "protocol": "TCP"}},
    "mounts.volumes": [{"name": "extra", "emptyDir": {}}],
    "mounts.volumeMounts": [{"name": "extra", "mountPath": "/extra"}],
    "driver.kind": "kmod",  # the one mapped value that fails: checked in test_chart_render
    "driver.sysfsMountPath": "/sys/kernel/tracing",
    "collectors.containerEngine.engines": {"docker": {"enabled": True, "sockets": ["/var/run/docker.sock"]}},
    "extra.env": [{"name": "X", "value": "1"}],
    "extra.args": ["-o", "priority=warning"],
    "extra.initContainers": [{"name": "init", "image": "busybox:1.36"}],
    "podHostname": "sensor",
    "podPriorityClassName": "system-node-critical",
    "customRules": {"r.yaml": "[]"},
    "falcosidekick.enabled": True,
    "falcosidekick.listenPort": 2900,
    "falcoctl.artifact.install": {"enabled": False},
    "falcoctl.artifact.follow": {"enabled": False},
    "falcoctl.config.indexes": [{"name": "mine", "url": "https://example.com/index.yaml"}],
    "falcoctl.config.artifact": {"allowedTypes": ["rulesfile"]},
    "serviceMonitor.labels": {"release": "kps"},
    "serviceMonitor.selector": {"a": "b"},
    "serviceMonitor.tlsConfig": {"insecureSkipVerify": True},
    "serviceMonitor.relabelings": [{"action": "keep"}],
    "serviceMonitor.targetLabels": ["a"],
    "grafana.dashboards.configMaps": {"falco": {"name": "dash", "namespace": "", "folder": "", "folderAnnotation": "x"}},
    "resources.requests.cpu": "250m",
    "resources.requests.memory": "300Mi",
    "resources.limits.cpu": "2",
    "resources.limits.memory": "2Gi",
    "namespaceOverride": "security",
    "nameOverride": "falco",
    "fullnameOverride": "sensor",
    "certs.existingSecret": "my-certs",
    "certs.existingClientSecret": "my-client-certs",
}


def context_for(path: str) -> dict[str, Any]:
    if path == "metrics.enabled":
        return {}
    if path == "serviceMonitor.create":
        return {"metrics": {"enabled": True}}
    for prefix, ctx in CONTEXT.items():
        if path.startswith(prefix):
            return ctx
    return {}


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in falco_value_paths()
        # driver.kind's other values fail (test_chart_render); the SCC needs the OpenShift API
        # (test_scc_is_rendered_where_openshift_exists).
        if readme_table()[p][0] in ("honoured", "mapped") and p not in ("driver.kind", "scc.create")
    ],
)
def test_every_honoured_or_mapped_path_changes_the_render(tmp_path, path):
    base = context_for(path)
    falco_default = get_path(yaml.safe_load(shared("falco-chart/falco-values.yaml").read_text()), path)
    with helm.Chart.load(str(chart.CHART_DIR)) as loaded:
        try:
            chart_default = get_path(chart.merge_values(loaded.values, base), path)
        except KeyError:
            chart_default = None
    new = NEW_VALUE.get(path, mutated(chart_default if chart_default is not None else falco_default))
    needs_sidekick = path.startswith("falcosidekick.")
    chart_dir = chart_with_dependencies(tmp_path) if needs_sidekick else chart.CHART_DIR
    before = chart.manifest_stream(chart.render(base, chart_dir=chart_dir))
    after = chart.manifest_stream(chart.render(with_value(path, new, base), chart_dir=chart_dir))
    assert before != after, f"{path}={new!r} changed nothing"


# --- Falco's own values file and the seeds' values --------------------------------------------


def test_falco_values_file_renders_and_keeps_falcos_choices():
    values = falco_values()
    docs = render_docs(values, name="falco", namespace="falco")
    cfg = saker_config(docs)
    falco = values["falco"]
    assert cfg["rules_files"] == falco["rules_files"]
    assert cfg["json_output"] is False, "Falco's value wins over Saker's default"
    assert cfg["engine"] == {
        "kind": "modern_ebpf",
        "modern_ebpf": {"buf_size_preset": 4, "cpus_for_each_buffer": 2, "disable_iterators": False, "drop_failed_exit": False},
    }
    # Resource names follow Falco's chart for the release "falco".
    assert controller(docs)["metadata"]["name"] == "falco"
    assert pod_spec(docs)["serviceAccountName"] == find(docs, "ServiceAccount")["metadata"]["name"] == "falco"
    assert saker_container(docs)["image"] == "ghcr.io/saker-dev/saker:0.1.0"
    text = notes(values, name="falco", namespace="falco")
    warnings = text.split("WARNING: values that do not do here what they do in Falco's chart:\n")[1].splitlines()
    assert [w.split(":")[0].strip("- ") for w in warnings] == [
        "image",
        "collectors.containerEngine.engines.lxc.enabled",
        "collectors.containerEngine.engines.libvirt_lxc.enabled",
        "collectors.containerEngine.engines.bpm.enabled",
    ]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_falco_values_file_passes_kubernetes_validate_strict(tmp_path, version):
    stream = render_stream(falco_values(), name="falco", namespace="falco")
    path = tmp_path / "falco-values.yaml"
    path.write_text(stream)
    rc, out = kubernetes_validate(path, version)
    assert rc == 0, out
    docs = [d for d in yaml.safe_load_all(stream) if d]
    assert validated_resources(out) == {f"{d['kind'].lower()}/{d['metadata']['name']}" for d in docs}


def test_seeds_values_render_json_output_and_the_whoami_rule():
    """`helm install falco falcosecurity/falco --set falco.json_output=true`, then
    `helm upgrade ... -f custom-rules.yaml`, on Saker's chart."""
    values = chart.merge_values({"falco": {"json_output": True}}, custom_rules_values())
    docs = render_docs(values, name="falco", namespace="falco")
    cfg = saker_config(docs)
    assert cfg["json_output"] is True
    assert "/etc/falco/rules.d" in cfg["rules_files"]
    rules = find(docs, "ConfigMap", "falco-rules")["data"]["rules-custom.yaml"]
    assert "whoami" in rules


# --- falcoctl ---------------------------------------------------------------------------------


def falcoctl_container(docs, mode):
    spec = pod_spec(docs)
    pool = spec.get("initContainers", []) if mode == "install" else spec["containers"]
    hits = [c for c in pool if c["name"] == f"falcoctl-artifact-{mode}"]
    return hits[0] if hits else None


def test_falcoctl_installs_and_follows_falcos_rules_into_etc_falco():
    docs = render_docs()
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    for mode, dirs in (("install", "install"), ("follow", "follow")):
        c = falcoctl_container(docs, mode)
        assert c["image"] == "docker.io/falcosecurity/falcoctl:0.13.0"
        assert c["args"] == ["artifact", mode, "--log-format=json"]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        assert mounts == {
            "/plugins": "plugins-install-dir",
            "/rulesfiles": "rulesfiles-install-dir",
            "/etc/falcoctl": "falcoctl-config-volume",
            "/artifactstate": "artifact-state-dir",
        }
        del dirs
    assert volumes["rulesfiles-install-dir"] == {"name": "rulesfiles-install-dir", "emptyDir": {}}
    # Saker sees falcoctl's rules directory at /etc/falco, where rules_files points.
    saker_mounts = {m["mountPath"]: m["name"] for m in saker_container(docs)["volumeMounts"]}
    assert saker_mounts["/etc/falco"] == "rulesfiles-install-dir"
    assert all(f.startswith("/etc/falco/") for f in saker_config(docs)["rules_files"])
    # falcoctl.yaml is falcoctl.config, as given.
    falcoctl_yaml = yaml.safe_load(find(docs, "ConfigMap", "saker-falcoctl")["data"]["falcoctl.yaml"])
    with helm.Chart.load(str(chart.CHART_DIR)) as loaded:
        assert falcoctl_yaml == loaded.values["falcoctl"]["config"]
    assert falcoctl_yaml["artifact"]["install"]["refs"] == ["falco-rules:5"]
    assert falcoctl_yaml["artifact"]["follow"]["falcoversions"] == "http://localhost:8765/versions"
    assert volumes["falcoctl-config-volume"]["configMap"]["name"] == "saker-falcoctl"


def test_falcoctl_switches_and_settings():
    docs = render_docs({"falcoctl": {"artifact": {"follow": {"enabled": False}}}})
    assert falcoctl_container(docs, "install") and not falcoctl_container(docs, "follow")
    docs = render_docs({"falcoctl": {"artifact": {"install": {"enabled": False}, "follow": {"enabled": False}}}})
    assert "ConfigMap" in kinds(docs) and not [d for d in docs if d["metadata"]["name"].endswith("-falcoctl")]
    assert "initContainers" not in pod_spec(docs)
    assert "/etc/falco" not in {m["mountPath"] for m in saker_container(docs)["volumeMounts"]}
    text = notes({"falcoctl": {"artifact": {"install": {"enabled": False}, "follow": {"enabled": False}}}})
    assert "the Saker image does not ship Falco's rules" in text
    env = [{"name": "FALCOCTL_REGISTRY_AUTH_BASIC", "value": "{{ .Release.Name }}"}]
    c = falcoctl_container(
        render_docs({"falcoctl": {"artifact": {"install": {"env": env, "args": ["--log-level=debug"], "resources": {"limits": {"cpu": "1"}}}}}}),
        "install",
    )
    assert c["env"] == [{"name": "FALCOCTL_REGISTRY_AUTH_BASIC", "value": "saker"}], "env is templated as in Falco's chart"
    assert c["args"] == ["artifact", "install", "--log-level=debug"]
    assert c["resources"] == {"limits": {"cpu": "1"}}


# --- builtinRules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("falco", ["/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d"]),
        (False, ["/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d"]),
        ("saker", ["/etc/saker/saker_rules.yaml", "/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d"]),
        (True, ["/etc/saker/saker_rules.yaml", "/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d"]),
        ("both", ["/etc/saker/saker_rules.yaml", "/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d"]),
    ],
)
def test_builtin_rules_choose_the_ruleset(choice, expected):
    cfg = saker_config(render_docs({"saker": {"builtinRules": choice}}))
    assert cfg["rules_files"] == expected
    # A user's own list without Falco's file: Saker's goes first.
    if choice in ("saker", True):
        cfg = saker_config(render_docs({"saker": {"builtinRules": choice}, "falco": {"rules_files": ["/etc/falco/rules.d"]}}))
        assert cfg["rules_files"] == ["/etc/saker/saker_rules.yaml", "/etc/falco/rules.d"]


def test_builtin_rules_refuses_other_choices():
    with pytest.raises(helm.HelmError, match="saker.builtinRules=upstream is not supported: use falco, saker or both"):
        render_docs({"saker": {"builtinRules": "upstream"}})


# --- the rendered config against Falco's rules where falcoctl puts them ------------------------


def run_in_falco_layout(tmp_path: Path, values: dict[str, Any], command: list[str]) -> subprocess.CompletedProcess[str]:
    """Runs `command` in a private mount namespace where /etc/falco holds what falcoctl installs
    (Falco's falco_rules.yaml from ../shared) and /etc/falco/rules.d the rendered customRules, and
    /etc/saker/saker.yaml is the rendered config."""
    docs = render_docs(values)
    falco_dir = tmp_path / "etc-falco"
    (falco_dir / "rules.d").mkdir(parents=True)
    (falco_dir / "falco_rules.yaml").write_text(shared("falco-rules/falco_rules.yaml").read_text())
    rules_cm = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-rules")]
    for cm in rules_cm:
        for name, text in cm["data"].items():
            (falco_dir / "rules.d" / name).write_text(text)
    config = tmp_path / "saker.yaml"
    config.write_text(yaml.safe_dump(saker_config(docs)))
    made = not Path("/etc/falco").exists()
    script = 'set -e; mkdir -p /etc/falco; mount --bind "$1" /etc/falco; shift; exec "$@"'
    try:
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(falco_dir), *command],
            capture_output=True, text=True, check=False, timeout=300,
        )
    finally:
        if made and Path("/etc/falco").is_dir() and not any(Path("/etc/falco").iterdir()):
            Path("/etc/falco").rmdir()


def test_rendered_rules_files_load_falcos_rules_from_falcoctl_layout(tmp_path):
    """The default install with the seeds' custom rules: Saker loads Falco's falco_rules.yaml and
    the whoami rule from the paths the rendered saker.yaml names (root: a mount namespace)."""
    require_live()
    values = custom_rules_values()
    cfg_files = saker_config(render_docs(values))["rules_files"]
    # falcoctl never installs falco_rules.local.yaml: `saker run` skips a missing rules_files
    # entry with a warning (as Falco does), while `validate` (like falco -V) refuses it.
    assert "/etc/falco/falco_rules.local.yaml" in cfg_files
    present = [f for f in cfg_files if not f.endswith("falco_rules.local.yaml")]
    proc = run_in_falco_layout(tmp_path, values, [str(saker_bin()), "validate", *present])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "/etc/falco/falco_rules.yaml: Ok" in proc.stdout
    assert "/etc/falco/rules.d" in proc.stdout


CAPTURE_RULE = """\
- rule: cat read the loader cache
  desc: fires on ../shared/captures/cat_write.scap; open_read comes from Falco's falco_rules.yaml
  condition: open_read and proc.name = cat and fd.name = /etc/ld.so.cache
  output: "cat read the loader cache (file=%fd.name)"
  priority: NOTICE
"""


def test_rendered_config_replays_with_falcos_rules_from_falcoctl_layout(tmp_path):
    """`saker replay -c` with the rendered saker.yaml, in the falcoctl layout: a customRules rule
    built on Falco's `open_read` fires on a capture, so both /etc/falco/falco_rules.yaml and
    /etc/falco/rules.d were loaded from where the chart puts them."""
    require_live()
    values = chart.merge_values(custom_rules_values(), {"customRules": {"zz-capture.yaml": CAPTURE_RULE}})
    # Falco's list without falco_rules.local.yaml, which falcoctl does not install (see the
    # expected failure above); the web server would bind a port.
    values["falco"] = {"rules_files": ["/etc/falco/falco_rules.yaml", "/etc/falco/rules.d"], "webserver": {"enabled": False}}
    proc = run_in_falco_layout(
        tmp_path,
        values,
        [str(saker_bin()), "replay", "--no-progress", "-c", str(tmp_path / "saker.yaml"), str(shared("captures/cat_write.scap"))],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    alerts = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [a["rule"] for a in alerts] == ["cat read the loader cache"], proc.stdout + proc.stderr[-2000:]


# --- falcosidekick ----------------------------------------------------------------------------


def test_falcosidekick_dependency_renders_and_receives_the_alerts(tmp_path):
    chart_dir = chart_with_dependencies(tmp_path)
    docs = [d for d in yaml.safe_load_all(chart.manifest_stream(chart.render({"falcosidekick": {"enabled": True}}, name="falco", namespace="falco", chart_dir=chart_dir))) if d]
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert "falco-falcosidekick" in deployments
    svc = find(docs, "Service", "falco-falcosidekick")
    port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
    cfg = saker_config(docs)
    assert cfg["http_output"]["enabled"] is True
    assert cfg["http_output"]["url"] == f"http://falco-falcosidekick:{port}"
    assert cfg["json_output"] is True and cfg["json_include_output_property"] is True
    # Falcosidekick disabled: its chart is not rendered at all.
    off = chart.render({}, name="falco", namespace="falco", chart_dir=chart_dir)
    assert not [k for k, v in off.items() if "/charts/falcosidekick/" in k and v.strip()]


def test_falcosidekick_url_options(tmp_path):
    chart_dir = chart_with_dependencies(tmp_path)

    def url(values):
        docs = [d for d in yaml.safe_load_all(chart.manifest_stream(chart.render(values, name="falco", namespace="sec", chart_dir=chart_dir))) if d]
        return saker_config(docs)["http_output"]["url"]

    assert url({"falcosidekick": {"enabled": True, "fullfqdn": True}}) == "http://falco-falcosidekick.sec.svc.cluster.local:2801"
    assert url({"falcosidekick": {"enabled": True, "listenPort": 2900}}) == "http://falco-falcosidekick:2900"
    assert url({"falcosidekick": {"enabled": True, "fullnameOverride": "sk"}}) == "http://sk:2801"
    mine = "http://my-sidekick.other:2801/"
    assert url({"falcosidekick": {"enabled": True}, "falco": {"http_output": {"url": mine}}}) == mine


def test_falcosidekick_enabled_without_the_dependency_fails_like_helm():
    with pytest.raises(helm.HelmError, match="missing in charts/ directory: falcosidekick"):
        render_docs({"falcosidekick": {"enabled": True}})


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_falcosidekick_and_deployment_renders_pass_kubernetes_validate_strict(tmp_path, version):
    chart_dir = chart_with_dependencies(tmp_path)
    for label, values in {
        "sidekick": chart.merge_values(falco_values(), {"falcosidekick": {"enabled": True}}),
        "deployment": {"controller": {"kind": "deployment", "deployment": {"replicas": 2}}},
    }.items():
        stream = chart.manifest_stream(chart.render(values, name="falco", namespace="falco", chart_dir=chart_dir))
        path = tmp_path / f"{label}.yaml"
        path.write_text(stream)
        rc, out = kubernetes_validate(path, version)
        assert rc == 0, out
        docs = [d for d in yaml.safe_load_all(stream) if d]
        expected = {f"{d['kind'].lower()}/{d['metadata']['name']}" for d in docs if d["kind"] not in CRD_KINDS}
        assert validated_resources(out) == expected, out


# --- controller, names, certs, misc -----------------------------------------------------------


def test_deployment_mode():
    docs = render_docs({"controller": {"kind": "deployment", "deployment": {"replicas": 3}}})
    assert "DaemonSet" not in kinds(docs)
    dep = find(docs, "Deployment")
    assert dep["spec"]["replicas"] == 3
    assert "updateStrategy" not in dep["spec"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert "Deployment saker" in notes({"controller": {"kind": "deployment"}})


@pytest.mark.parametrize(
    ("release", "values", "fullname", "sa"),
    [
        ("falco", {}, "falco", "falco"),
        ("prod", {}, "prod", "prod"),
        ("prod", {"nameOverride": "falco"}, "prod-falco", "prod-falco"),
        ("falco", {"nameOverride": "falco"}, "falco", "falco"),
        ("falco", {"fullnameOverride": "sensor"}, "sensor", "sensor"),
        ("falco", {"serviceAccount": {"name": "irsa-sa"}}, "falco", "irsa-sa"),
        ("falco", {"serviceAccount": {"create": False}}, "falco", "default"),
    ],
)
def test_names_follow_falcos_chart(release, values, fullname, sa):
    docs = render_docs(values, name=release, namespace="falco")
    assert controller(docs)["metadata"]["name"] == fullname
    assert pod_spec(docs)["serviceAccountName"] == sa


PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
PEM_CRT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"


def test_certs_are_mounted_for_the_webserver_and_http_output():
    import base64

    certs = {"server": {"key": PEM_KEY, "crt": PEM_CRT}, "client": {"key": PEM_KEY, "crt": PEM_CRT}, "ca": {"crt": PEM_CRT}}
    values = {"certs": certs, "falco": {"webserver": {"ssl_enabled": True, "ssl_certificate": "/etc/falco/certs/falco.pem"}}}
    docs = render_docs(values)
    server = find(docs, "Secret", "saker-certs")["data"]
    decoded = {k: base64.b64decode(v).decode() for k, v in server.items()}
    assert decoded == {"server.key": PEM_KEY, "server.crt": PEM_CRT, "falco.pem": PEM_KEY + PEM_CRT, "ca.crt": PEM_CRT}
    client = {k: base64.b64decode(v).decode() for k, v in find(docs, "Secret", "saker-client-certs")["data"].items()}
    assert client == {"client.key": PEM_KEY, "client.crt": PEM_CRT, "falcoclient.pem": PEM_KEY + PEM_CRT, "ca.crt": PEM_CRT, "ca.pem": PEM_CRT}
    mounts = {m["mountPath"]: m for m in saker_container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    assert volumes[mounts["/etc/falco/certs"]["name"]]["secret"]["secretName"] == "saker-certs"
    assert volumes[mounts["/etc/falco/certs/client"]["name"]]["secret"]["secretName"] == "saker-client-certs"
    assert mounts["/etc/falco/certs"]["readOnly"] is True
    # The web server serves TLS: the probes follow.
    c = saker_container(docs)
    assert c["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert saker_config(docs)["webserver"]["ssl_certificate"] == "/etc/falco/certs/falco.pem"
    annotations = controller(docs)["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/certs"]) == 64
    # Existing Secrets: mounted, nothing rendered.
    docs = render_docs({"certs": {"existingSecret": "mine", "existingClientSecret": "mine-client"}})
    assert "Secret" not in kinds(docs)
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    assert {v["secret"]["secretName"] for v in volumes.values() if "secret" in v} == {"mine", "mine-client"}
    # Half the material: nothing mounted (Falco's chart needs key, crt and ca together).
    docs = render_docs({"certs": {"server": {"key": PEM_KEY}}})
    assert "/etc/falco/certs" not in {m["mountPath"] for m in saker_container(docs)["volumeMounts"]}


def test_hostname_env_podhostname_probes_and_extra_services():
    docs = render_docs({"podHostname": "sensor", "extra": {"env": [{"name": "FALCO_HOSTNAME", "value": "fixed"}]}})
    assert pod_spec(docs)["hostname"] == "sensor"
    env = [e for e in saker_container(docs)["env"] if e["name"] == "FALCO_HOSTNAME"]
    assert env == [{"name": "FALCO_HOSTNAME", "value": "fixed"}], "the user's FALCO_HOSTNAME replaces the chart's"
    docs = render_docs({"falcoHostnameEnv": False})
    assert "FALCO_HOSTNAME" not in {e["name"] for e in saker_container(docs)["env"]}
    c = saker_container(render_docs({"healthChecks": {"startupProbe": {"failureThreshold": 40}}}))
    assert c["startupProbe"]["failureThreshold"] == 40
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": 8765}
    docs = render_docs({"services": [{"name": "extra", "type": "ClusterIP", "ports": [{"port": 80, "targetPort": 8765}]}]})
    svc = find(docs, "Service", "saker-extra")
    assert svc["spec"]["ports"] == [{"port": 80, "targetPort": 8765}]
    assert svc["spec"]["selector"] == controller(docs)["spec"]["selector"]["matchLabels"]


def test_metrics_values_map_to_saker_yaml():
    cfg = saker_config(render_docs({"metrics": {"enabled": True, "interval": "30s", "includeEmptyValues": True, "libbpfStatsEnabled": False}}))
    m = cfg["metrics"]
    assert m["enabled"] is True and m["interval"] == "30s"
    assert m["include_empty_values"] is True and m["libbpf_stats_enabled"] is False
    assert m["rules_counters_enabled"] is True
    assert cfg["webserver"]["prometheus_metrics_enabled"] is True


def test_scc_is_rendered_where_openshift_exists(tmp_path):
    """The offline render has no OpenShift API; a copy of the chart that sees it renders the SCC."""
    import shutil

    assert "SecurityContextConstraints" not in kinds(render_docs())
    copy_dir = tmp_path / "saker"
    shutil.copytree(chart.CHART_DIR, copy_dir)
    scc = copy_dir / "templates" / "scc.yaml"
    scc.write_text(scc.read_text().replace('(.Capabilities.APIVersions.Has "security.openshift.io/v1")', "true"))
    docs = [d for d in yaml.safe_load_all(chart.manifest_stream(chart.render({}, name="falco", namespace="falco", chart_dir=copy_dir))) if d]
    obj = find(docs, "SecurityContextConstraints")
    assert obj["users"] == ["system:serviceaccount:falco:falco"]
    assert obj["allowHostDirVolumePlugin"] is True and obj["allowPrivilegedContainer"] is True
    docs = [d for d in yaml.safe_load_all(chart.manifest_stream(chart.render({"scc": {"create": False}}, chart_dir=copy_dir))) if d]
    assert "SecurityContextConstraints" not in kinds(docs)


# --- extra.args: Falco's flags ----------------------------------------------------------------

# Flags Falco users pass through extra.args, with whether `saker run` takes them today. The rest
# come with the CLI of the Falco drop-in, part 1: an expected failure until then, and a strict
# one, so the marker goes as soon as the flag works.
FALCO_EXTRA_ARGS = {
    "-o": True,
    "-r": True,
    "-U": True,
    "--unbuffered": True,
    "--disable-source": True,
    "--enable-source": True,
    "-A": True,
    "--dry-run": True,
}


def test_extra_args_reach_saker_run_unchanged():
    args = ["-o", "priority=warning", "-r", "/etc/falco/extra.yaml", "-U", "--disable-source", "k8s_audit", "-A"]
    c = saker_container(render_docs({"extra": {"args": args}}))
    assert c["command"] == ["/usr/bin/saker"]
    assert c["args"] == ["run", "-c", "/etc/saker/saker.yaml", *args]


@pytest.mark.parametrize(
    "flag",
    [
        pytest.param(f, marks=[] if ok else pytest.mark.xfail(strict=True, reason="Falco's CLI flags: Falco drop-in, part 1"))
        for f, ok in FALCO_EXTRA_ARGS.items()
    ],
)
def test_saker_run_takes_falcos_flag(flag):
    proc = subprocess.run([str(saker_bin()), "run", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=<]|$)", proc.stdout, re.M), proc.stdout


# --- Grafana dashboard ------------------------------------------------------------------------

DASHBOARD = chart.CHART_DIR / "dashboards" / "saker-dashboard.json"


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    out = []

    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get("expr"), str):
                out.append(x["expr"])
            q = x.get("query")
            if isinstance(q, dict) and isinstance(q.get("query"), str):
                out.append(q["query"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(dash)
    return out


PROMQL_WORDS = {"sum", "by", "rate", "increase", "max", "count", "avg", "clamp_min", "label_values", "irate"}


def queried_series(query: str) -> set[str]:
    """Metric names a PromQL query reads (words before `{`, `[` or `,` that are not functions or labels)."""
    names = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\s*[{\[,)]", query))
    labels = set(re.findall(r"\bby\s*\(([^)]*)\)", query))
    label_words = {w.strip() for group in labels for w in group.split(",")}
    return {n for n in names if n not in PROMQL_WORDS and n not in label_words and "_" in n and not n.startswith("__")}


def test_grafana_dashboard_configmap():
    docs = render_docs({"grafana": {"dashboards": {"enabled": True, "configMaps": {"falco": {"folder": "security", "namespace": "monitoring"}}}}})
    cm = find(docs, "ConfigMap", "falco-grafana-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {
        "k8s-sidecar-target-directory": "/tmp/dashboards/security",
        "grafana_dashboard_folder": "security",
    }
    assert json.loads(cm["data"]["saker-dashboard.json"]) == json.loads(DASHBOARD.read_text())
    assert not [d for d in render_docs() if d["metadata"]["name"] == "falco-grafana-dashboard"]


def test_grafana_dashboard_queries_all_have_data_from_saker(tmp_path):
    """Live: Saker with the web server and metrics on, one alert raised; every series every panel
    and variable queries is on /metrics with a sample, with the label values the query fixes."""
    require_live()
    import socket
    import urllib.request

    queries = dashboard_queries()
    assert len(queries) >= 15
    series = set().union(*(queried_series(q) for q in queries))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = f"saker-dash-{tmp_path.name}"
    scraped: list[str] = []

    def act():
        subprocess.run(["sh", "-c", "read x < /etc/shadow; true", "sh", token], check=False)
        import time

        time.sleep(2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            scraped.append(r.read().decode())

    alerts, err = run_live(
        [
            "-o", "webserver.enabled=true", "-o", f"webserver.listen_port={port}",
            "-o", "webserver.prometheus_metrics_enabled=true", "-o", "metrics.enabled=true",
            # The dashboard's per-CPU panel needs Falco's opt-in per-CPU counters.
            "-o", "metrics.kernel_event_counters_per_cpu_enabled=true",
        ],
        act,
    )
    assert [a for a in alerts if token in a["output"]], err[-2000:]
    text = scraped[0]
    samples: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            samples.setdefault(name, []).append(line)
    missing = sorted(s for s in series if not samples.get(s))
    assert missing == [], f"dashboard series without data: {missing}"
    # The labels the panels group by exist on those series (pod and namespace come from the scrape).
    for q in queries:
        for group in re.findall(r"\bby\s*\(([^)]*)\)", q):
            for label in (w.strip() for w in group.split(",")):
                if label in ("pod", "namespace"):
                    continue
                for name in queried_series(q):
                    assert any(f'{label}="' in line for line in samples[name]), (q, name, label)
