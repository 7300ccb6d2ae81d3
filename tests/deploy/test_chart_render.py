"""The chart rendered offline: DaemonSet mounts, security context, customRules, checksums and
the saker.yaml it renders from Falco-style values."""

from __future__ import annotations

import posixpath

import helm_python as helm
import pytest
from conftest import (
    REPO,
    chart,
    custom_rules_values,
    find,
    kinds,
    pod_spec,
    render_docs,
    saker_config,
    saker_container,
)

LEAST_CAPS = ["BPF", "PERFMON", "SYS_PTRACE", "SYS_RESOURCE"]


def mounts_by_path(docs):
    c = saker_container(docs)
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    return {m["mountPath"]: (m, volumes[m["name"]]) for m in c["volumeMounts"]}


def test_default_render_has_exactly_the_agent_objects():
    docs = render_docs()
    assert sorted(kinds(docs)) == ["ConfigMap", "ConfigMap", "DaemonSet", "ServiceAccount"]
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"} == {"saker", "saker-falcoctl"}
    ds = find(docs, "DaemonSet")
    assert ds["metadata"]["namespace"] == "saker"
    assert ds["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "saker",
        "app.kubernetes.io/instance": "saker",
    }
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_daemonset_mounts_host_proc_etc_and_sys_kernel_read_only():
    m = mounts_by_path(render_docs())
    for inside, host in [("/host/proc", "/proc"), ("/host/etc", "/etc"), ("/sys/kernel", "/sys/kernel")]:
        mount, volume = m[inside]
        assert mount.get("readOnly") is True, f"{inside} must be read-only"
        assert volume["hostPath"]["path"] == host
    c = saker_container(render_docs())
    env = {e["name"]: e for e in c["env"]}
    assert env["HOST_ROOT"]["value"] == "/host"
    assert env["FALCO_HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_sysfs_mount_path_is_configurable():
    m = mounts_by_path(render_docs({"driver": {"sysfsMountPath": "/sys/kernel/tracing"}}))
    assert "/sys/kernel" not in m
    mount, volume = m["/sys/kernel/tracing"]
    assert mount["readOnly"] is True and volume["hostPath"]["path"] == "/sys/kernel/tracing"


def test_runtime_sockets_are_mounted_as_directories_not_files():
    docs = render_docs()
    with helm.Chart.load(str(chart.CHART_DIR)) as loaded:
        values = loaded.values
    engines = values["collectors"]["containerEngine"]["engines"]
    sockets = [s for e in engines.values() if e["enabled"] for s in e["sockets"]]
    assert sockets, "the defaults enable at least one engine"
    expected_dirs = {posixpath.dirname(s) for s in sockets}

    host_paths = {v["hostPath"]["path"] for v in pod_spec(docs)["volumes"] if "hostPath" in v}
    assert not [p for p in host_paths if p.endswith(".sock")], "a socket file is mounted"
    m = mounts_by_path(docs)
    for d in expected_dirs:
        mount, volume = m["/host" + d]
        assert volume["hostPath"]["path"] == d
        assert volume["hostPath"].get("type", "") in ("", "Directory")
        assert mount["readOnly"] is True
    # Saker is told the sockets' paths as seen in the pod.
    cfg_sockets = {s for e in saker_config(docs)["container_engines"].values() if e["enabled"] for s in e["sockets"]}
    assert cfg_sockets == {"/host" + s for s in sockets}
    assert all(posixpath.dirname(s) in m for s in cfg_sockets)


def test_socket_directories_follow_the_enabled_engines():
    only_docker = {
        "collectors": {
            "containerEngine": {
                "engines": {
                    "docker": {"enabled": True, "sockets": ["/var/run/docker.sock"]},
                    "podman": {"enabled": False},
                    "containerd": {"enabled": False},
                    "cri": {"enabled": True, "sockets": ["/run/containerd/containerd.sock", "/run/containerd/other.sock"]},
                }
            }
        }
    }
    docs = render_docs(only_docker)
    socket_mounts = sorted(p for p in mounts_by_path(docs) if p.startswith("/host/") and p not in ("/host/proc", "/host/etc"))
    # Two sockets in one directory give one mount.
    assert socket_mounts == ["/host/run/containerd", "/host/var/run"]
    engines = saker_config(docs)["container_engines"]
    assert engines["docker"] == {"enabled": True, "sockets": ["/host/var/run/docker.sock"]}
    assert engines["podman"]["enabled"] is False

    docs = render_docs({"collectors": {"enabled": False}})
    assert sorted(mounts_by_path(docs)) == ["/etc/falco", "/etc/saker/saker.yaml", "/host/etc", "/host/proc", "/sys/kernel"]
    assert saker_config(docs)["container_engines"] == {}


def test_privileged_by_default():
    sc = saker_container(render_docs())["securityContext"]
    assert sc == {"privileged": True, "runAsUser": 0}


@pytest.mark.parametrize(
    "values",
    [{"leastPrivileged": True}, {"driver": {"modernEbpf": {"leastPrivileged": True}}}],
    ids=["leastPrivileged", "driver.modernEbpf.leastPrivileged"],
)
def test_least_privileged_mode_adds_only_the_ebpf_capabilities(values):
    docs = render_docs(values)
    sc = saker_container(docs)["securityContext"]
    assert sc["privileged"] is False
    assert sc["runAsUser"] == 0
    assert sorted(sc["capabilities"]["add"]) == LEAST_CAPS
    assert "drop" not in sc["capabilities"]
    # The render's Kubernetes version is >= 1.30: the field, not the deprecated annotation.
    assert sc["appArmorProfile"] == {"type": "Unconfined"}
    annotations = find(docs, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert not [k for k in annotations if k.startswith("container.apparmor")]


def test_container_security_context_overrides_both_modes():
    custom = {"runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}}
    for extra in ({}, {"leastPrivileged": True}):
        sc = saker_container(render_docs({"containerSecurityContext": custom, **extra}))["securityContext"]
        assert sc == custom


def test_pod_security_context_is_rendered_as_given():
    psc = {"seccompProfile": {"type": "Unconfined"}}
    assert "securityContext" not in pod_spec(render_docs())
    assert pod_spec(render_docs({"podSecurityContext": psc}))["securityContext"] == psc


def test_custom_rules_configmap_holds_the_values_text_and_is_mounted_as_rules_d():
    values = custom_rules_values()
    text = values["customRules"]["rules-custom.yaml"]
    assert "whoami" in text
    docs = render_docs(values)
    cm = find(docs, "ConfigMap", "saker-rules")
    assert cm["data"] == {"rules-custom.yaml": text}

    mount, volume = mounts_by_path(docs)["/etc/falco/rules.d"]
    assert mount["readOnly"] is True
    assert volume["configMap"]["name"] == "saker-rules"
    # rules_files loads the directory after the default rules, like Falco's chart.
    rules_files = saker_config(docs)["rules_files"]
    assert rules_files.index("/etc/falco/falco_rules.yaml") < rules_files.index("/etc/falco/rules.d")


def test_custom_rules_keep_every_file_byte_for_byte():
    rules = {
        "a-first.yaml": "- list: l\n  items: [a]\n",
        "b-second.yaml": "  - macro: m\n    condition: evt.type=open\n\n",
        "z-last.yaml": "# only a comment",
    }
    cm = find(render_docs({"customRules": rules}), "ConfigMap", "saker-rules")
    assert cm["data"] == rules


def test_no_rules_configmap_or_mount_without_custom_rules():
    docs = render_docs()
    assert not [d for d in docs if d["metadata"]["name"] == "saker-rules"]
    assert "/etc/falco/rules.d" not in mounts_by_path(docs)


def pod_annotations(values=None):
    return find(render_docs(values), "DaemonSet")["spec"]["template"]["metadata"]["annotations"]


def test_checksum_annotations_roll_pods_when_rules_or_config_change():
    base = pod_annotations()
    custom = pod_annotations(custom_rules_values())
    edited_values = custom_rules_values()
    edited_values["customRules"]["rules-custom.yaml"] += "\n# tuned\n"
    edited = pod_annotations(edited_values)
    config_changed = pod_annotations({"saker": {"priority": "warning"}})

    for a in (base, custom, edited, config_changed):
        assert len(a["checksum/rules"]) == 64 and len(a["checksum/config"]) == 64
    assert len({base["checksum/rules"], custom["checksum/rules"], edited["checksum/rules"]}) == 3
    assert base["checksum/config"] == custom["checksum/config"] == edited["checksum/config"]
    assert config_changed["checksum/config"] != base["checksum/config"]
    assert config_changed["checksum/rules"] == base["checksum/rules"]
    # Deterministic: the same values give the same checksums.
    assert pod_annotations(custom_rules_values()) == custom


def test_saker_yaml_defaults_use_falco_key_names():
    cfg = saker_config(render_docs())
    # Falco's chart's list, honoured as given: falcoctl fills /etc/falco.
    assert cfg["rules_files"] == ["/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d"]
    assert "builtinRules" not in cfg, "a chart-only value must not reach saker.yaml"
    assert cfg["json_output"] is True
    assert cfg["json_include_output_property"] is True
    assert cfg["stdout_output"] == {"enabled": True}
    assert cfg["http_output"]["enabled"] is False
    assert cfg["cloudwatch_output"] == {"enabled": False, "log_group": "falco", "log_stream": "", "region": ""}
    assert cfg["webserver"]["listen_port"] == 8765
    assert cfg["webserver"]["listen_address"] == "0.0.0.0"
    assert cfg["webserver"]["prometheus_metrics_enabled"] is False


def test_falco_values_are_merged_over_saker_values():
    falco = {
        "json_output": False,
        "priority": "notice",
        "rules_files": ["/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d"],
        "http_output": {"enabled": True, "url": "http://falcosidekick.falco:2801/"},
    }
    cfg = saker_config(render_docs({"falco": falco}))
    assert cfg["json_output"] is False, "an explicit false must win over the saker default"
    assert cfg["priority"] == "notice"
    # Honoured as given: no renaming of Falco's paths.
    assert cfg["rules_files"] == falco["rules_files"]
    # Nested maps merge key by key: the saker defaults not named stay.
    assert cfg["http_output"] == {
        "enabled": True,
        "url": "http://falcosidekick.falco:2801/",
        "user_agent": "saker",
        "insecure": False,
    }


def test_extra_args_tty_priority_class_resources_and_tolerations():
    values = {
        "extra": {"args": ["-o", "priority=warning"], "env": [{"name": "RUST_LOG", "value": "debug"}]},
        "tty": True,
        "podPriorityClassName": "system-node-critical",
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}},
    }
    docs = render_docs(values)
    c = saker_container(docs)
    assert c["command"] == ["/usr/bin/saker"]
    assert c["args"] == ["run", "-c", "/etc/saker/saker.yaml", "-o", "priority=warning"]
    assert c["tty"] is True
    assert {"name": "RUST_LOG", "value": "debug"} in c["env"]
    assert c["resources"] == {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}
    spec = pod_spec(docs)
    assert spec["priorityClassName"] == "system-node-critical"
    assert pod_spec(render_docs({"priorityClassName": "a", "podPriorityClassName": "b"}))["priorityClassName"] == "a"
    assert "priorityClassName" not in pod_spec(render_docs())

    tolerations = pod_spec(render_docs())["tolerations"]
    assert {"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"} in tolerations
    assert {"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"} in tolerations
    assert saker_container(render_docs())["tty"] is False


def test_metrics_service_and_service_monitor():
    docs = render_docs({"metrics": {"enabled": True}, "serviceMonitor": {"create": True, "labels": {"release": "kps"}}})
    cfg = saker_config(docs)
    assert cfg["webserver"]["prometheus_metrics_enabled"] is True
    assert cfg["metrics"]["enabled"] is True
    svc = find(docs, "Service")
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 8765, "targetPort": 8765, "protocol": "TCP"}]
    pod_labels = find(docs, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    ports = saker_container(docs)["ports"]
    assert ports == [{"name": "web", "containerPort": 8765, "protocol": "TCP"}]
    sm = find(docs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kps"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"

    with pytest.raises(helm.HelmError, match="needs metrics.enabled"):
        render_docs({"serviceMonitor": {"create": True}})


def test_probes_follow_the_webserver():
    c = saker_container(render_docs())
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8765}
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8765}
    c = saker_container(render_docs({"saker": {"webserver": {"enabled": False}}}))
    assert "livenessProbe" not in c and "ports" not in c
    c = saker_container(render_docs({"saker": {"webserver": {"listen_port": 9000}}}))
    assert c["livenessProbe"]["httpGet"]["port"] == 9000


def test_irsa_annotation_on_the_service_account():
    arn = "arn:aws:iam::111122223333:role/saker-cloudwatch"
    docs = render_docs({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": arn}}})
    sa = find(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": arn}
    assert pod_spec(docs)["serviceAccountName"] == sa["metadata"]["name"]
    assert pod_spec(docs)["automountServiceAccountToken"] is False

    docs = render_docs({"serviceAccount": {"create": False, "name": "existing"}})
    assert "ServiceAccount" not in kinds(docs)
    assert pod_spec(docs)["serviceAccountName"] == "existing"


def test_cloudwatch_output_gets_one_log_stream_per_node():
    docs = render_docs({"saker": {"cloudwatch_output": {"enabled": True, "region": "eu-west-1"}}})
    c = saker_container(docs)
    assert c["args"][3:5] == ["-o", "cloudwatch_output.log_stream=$(SAKER_K8S_NODE_NAME)"]
    assert any(e["name"] == "SAKER_K8S_NODE_NAME" for e in c["env"])
    assert saker_config(docs)["cloudwatch_output"]["region"] == "eu-west-1"

    docs = render_docs({"saker": {"cloudwatch_output": {"enabled": True, "log_stream": "fixed"}}})
    assert saker_container(docs)["args"] == ["run", "-c", "/etc/saker/saker.yaml"]


DRIVER_KIND_MESSAGE = (
    "is not supported: Saker has neither a kernel module nor the legacy eBPF probe, only its CO-RE eBPF "
    "probe; use driver.kind=modern_ebpf (or auto)"
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"driver": {"kind": "kmod"}}, "driver.kind=kmod " + DRIVER_KIND_MESSAGE),
        ({"driver": {"kind": "module"}}, "driver.kind=module " + DRIVER_KIND_MESSAGE),
        ({"driver": {"kind": "ebpf"}}, "driver.kind=ebpf " + DRIVER_KIND_MESSAGE),
        ({"driver": {"kind": "gvisor"}}, "driver.kind=gvisor " + DRIVER_KIND_MESSAGE),
        ({"driver": {"enabled": False}}, "driver.enabled=false is not supported: Saker needs its eBPF probe"),
        ({"controller": {"kind": "statefulset"}}, "controller.kind=statefulset is not supported: use daemonset or deployment"),
    ],
)
def test_unsupported_values_fail_the_render_with_a_reason(values, message):
    with pytest.raises(helm.HelmError) as err:
        render_docs(values)
    assert message in str(err.value)


@pytest.mark.parametrize("kind", ["modern_ebpf", "modern-bpf", "auto"])
def test_falco_ebpf_driver_kinds_are_accepted(kind):
    assert "DaemonSet" in kinds(render_docs({"driver": {"kind": kind}}))


def test_image_reference():
    assert saker_container(render_docs())["image"] == "ghcr.io/saker-dev/saker:0.1.0"
    img = {"image": {"registry": "111122223333.dkr.ecr.us-east-1.amazonaws.com", "repository": "saker", "tag": "dev"}}
    assert saker_container(render_docs(img))["image"] == "111122223333.dkr.ecr.us-east-1.amazonaws.com/saker:dev"


def example_rules_values():
    """`helm ... --set-file customRules.rules-custom\\.yaml=examples/custom-rules.yaml`."""
    example = REPO / "examples" / "custom-rules.yaml"
    if not example.is_file():
        pytest.skip("examples/custom-rules.yaml not in the tree yet (issue #5)")
    return helm.parse_set_file(f"customRules.rules-custom\\.yaml={example}"), example.read_text()


def test_set_file_puts_a_rules_file_into_rules_d_unchanged():
    values, text = example_rules_values()
    docs = render_docs(values)
    assert find(docs, "ConfigMap", "saker-rules")["data"] == {"rules-custom.yaml": text}
    assert "/etc/falco/rules.d" in mounts_by_path(docs)


def test_notes_tell_what_was_installed():
    notes = chart.render({"customRules": {"b.yaml": "[]", "a.yaml": "[]"}, "metrics": {"enabled": True}})["saker/templates/NOTES.txt"]
    assert "kubectl exec -it nginx -- sh" in notes
    assert "Custom rules loaded from /etc/falco/rules.d: a.yaml, b.yaml" in notes
    assert "Rules: /etc/falco/falco_rules.yaml, /etc/falco/falco_rules.local.yaml, /etc/falco/rules.d" in notes
    assert "WARNING" not in notes
    assert "service saker-metrics" in notes
    assert "CloudWatch" not in notes
    notes = chart.render({"saker": {"cloudwatch_output": {"enabled": True}}})["saker/templates/NOTES.txt"]
    assert "log group falco" in notes
    # A values file that removes the section altogether still renders.
    assert "CloudWatch" not in chart.render({"saker": {"cloudwatch_output": None}})["saker/templates/NOTES.txt"]
