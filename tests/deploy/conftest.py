"""Shared helpers for the deploy tests: offline chart rendering (deploy/render.py, the Helm SDK
from PyPI helm-python-sdk), kubernetes-validate, and the saker binary."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# The shared fixtures sit beside the checkout (`../shared`), here and in CI.
SHARED = REPO.parent / "shared"
DEPLOY = REPO / "deploy"
HERE = Path(__file__).resolve().parent
CUSTOM_RULES_VALUES = HERE / "values-custom-rules.yaml"

sys.path.insert(0, str(DEPLOY))
import render as chart  # noqa: E402  (deploy/render.py)

# Kubernetes versions the manifests are validated against (kubernetes-validate bundles
# 1.25-1.37): 1.30, the first with securityContext.appArmorProfile (the render targets the
# Helm SDK's default Kubernetes version, which is newer), and a recent EKS version.
K8S_VERSIONS = ["1.30.0", "1.34.0"]

# Kinds without a schema in kubernetes-validate (CRDs); they may only produce a warning.
CRD_KINDS = {"ServiceMonitor"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: builds the release binary (reuses the target dir)")


def in_ci() -> bool:
    """CI, or `make test` (SAKER_TEST_STRICT=1): nothing may skip there."""
    return bool(os.environ.get("CI") or os.environ.get("SAKER_TEST_STRICT"))


def shared(rel: str) -> Path:
    """A file under ../shared; its absence fails the test (CI has it), never skips it."""
    path = SHARED / rel
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared fixtures belong beside the checkout as ../shared")
    return path


def render_docs(values: dict[str, Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
    """Render the chart and parse every manifest."""
    stream = chart.manifest_stream(chart.render(values, **kw))
    return [d for d in yaml.safe_load_all(stream) if d]


def render_stream(values: dict[str, Any] | None = None, **kw: Any) -> str:
    return chart.manifest_stream(chart.render(values, **kw))


def custom_rules_values() -> dict[str, Any]:
    return chart.load_values([CUSTOM_RULES_VALUES])


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}: {[d['kind'] for d in docs]}"
    return hits[0]


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return [d["kind"] for d in docs]


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return controller(docs)["spec"]["template"]["spec"]


def saker_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_spec(docs)["containers"]
    return next(c for c in containers if c["name"] == "saker")


def saker_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """saker.yaml as the chart renders it (the ConfigMap named after the release)."""
    cms = [d for d in docs if d["kind"] == "ConfigMap" and "saker.yaml" in (d.get("data") or {})]
    assert len(cms) == 1, [d["metadata"]["name"] for d in docs]
    return yaml.safe_load(cms[0]["data"]["saker.yaml"])


def kubernetes_validate(path: Path, version: str) -> tuple[int, str]:
    """Run the kubernetes-validate CLI with --strict; returns (exit code, output)."""
    exe = shutil.which("kubernetes-validate")
    cmd = [exe] if exe else [sys.executable, "-m", "kubernetes_validate"]
    proc = subprocess.run(
        [*cmd, "--strict", "-k", version, str(path)], capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def validated_resources(output: str) -> set[str]:
    """kind/name of every resource kubernetes-validate reported as passed."""
    return set(re.findall(r"passed for resource (\S+) against", output))


def live_skip_reason() -> str | None:
    """Why `saker run` cannot load its probe here: only missing root or BTF count (as in the
    crates' live tests)."""
    if os.geteuid() != 0:
        return f"not running as root (euid {os.geteuid()})"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "kernel has no BTF (/sys/kernel/btf/vmlinux missing)"
    return None


def require_live() -> None:
    """Skips a live test where the probe cannot load; in CI (root, BTF) that is a failure."""
    why = live_skip_reason()
    if why is not None:
        if in_ci():
            pytest.fail(f"live test cannot run in CI: {why}")
        pytest.skip(why)


def saker_bin() -> Path:
    """target/release/saker (built by `make test` before the tests run; $CARGO_TARGET_DIR is
    honoured), or $SAKER_BIN. Skips only outside CI when the binary is absent; in CI its absence
    fails the test."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = Path(os.environ.get("SAKER_BIN", target / "release" / "saker"))
    if not path.is_file():
        if in_ci():
            pytest.fail(f"{path} is missing in CI: `make test` builds it before the tests")
        pytest.skip(f"{path} not built yet (run `cargo build --release -p saker`)")
    return path


def run_live(args: list[str], act: Any, *, timeout: float = 120) -> tuple[list[dict[str, Any]], str]:
    """`saker run ARGS -o json_output=true`: waits for `saker: started`, calls act(), lets events
    drain, stops Saker with SIGINT. Returns (alerts, stderr)."""
    import json
    import signal
    import threading
    import time

    proc = subprocess.Popen(
        [str(saker_bin()), "run", "-o", "json_output=true", "-o", "webserver.enabled=false", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = threading.Event()
    err_lines: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            if "saker: started" in line:
                started.set()

    out: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        out.extend(proc.stdout)

    threads = [threading.Thread(target=read_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    while not started.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail("saker run did not start:\n" + "".join(err_lines[-30:]))
    try:
        act()
        time.sleep(2)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for t in threads:
        t.join(timeout=10)
    alerts = [json.loads(line) for line in out if line.startswith("{")]
    return alerts, "".join(err_lines)


def chart_with_dependencies(tmp_path: Path) -> Path:
    """A copy of the chart with the falcosidekick chart from ../shared under charts/, as
    `helm dependency update` leaves it (the sidekick chart is never committed)."""
    dest = tmp_path / "chart" / "saker"
    shutil.copytree(chart.CHART_DIR, dest)
    shutil.copytree(shared("falco-chart/falcosidekick"), dest / "charts" / "falcosidekick")
    return dest


def falco_values() -> dict[str, Any]:
    """Falco's chart's own values.yaml, as a user's values file."""
    return chart.load_values([shared("falco-chart/falco-values.yaml")])


def falco_value_paths() -> list[str]:
    """The value paths of Falco's chart: keys to three levels, falco.* (falco.yaml) aside."""
    tree = yaml.safe_load(shared("falco-chart/falco-values.yaml").read_text())

    def walk(d: dict[str, Any], prefix: str, depth: int) -> list[str]:
        out = []
        for k, v in d.items():
            path = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict) and v and depth < 2:
                out += walk(v, path, depth + 1)
            else:
                out.append(path)
        return out

    return [p for p in walk(tree, "", 0) if not p.startswith("falco.")]


def controller(docs: list[dict[str, Any]]) -> dict[str, Any]:
    hits = [d for d in docs if d["kind"] in ("DaemonSet", "Deployment")]
    assert len(hits) == 1, kinds(docs)
    return hits[0]
