#!/usr/bin/env python3
"""Offline `helm template` for the Saker chart, through the Helm SDK bundled in PyPI's
helm-python-sdk (no helm binary, no cluster).

Used by deploy/render-manifests.sh (the committed plain manifests) and by tests/deploy.

    python3 deploy/render.py [-f VALUES.yaml]... [--set KEY=VALUE]... [--name N] [--namespace NS]
    python3 deploy/render.py --plain-manifests > deploy/manifests/saker.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import helm_python as helm

CHART_DIR = Path(__file__).resolve().parent / "helm" / "saker"
DEFAULT_NAME = "saker"
DEFAULT_NAMESPACE = "saker"

# Helm's install order for the kinds this chart renders; unknown kinds (CRDs) go last.
KIND_ORDER = [
    "Namespace",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "Deployment",
]


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge like repeated `helm -f`: maps merge key by key, anything else replaces,
    and a null deletes the key."""
    out = dict(base)
    for key, val in override.items():
        if val is None:
            out.pop(key, None)
        elif isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], val)
        else:
            out[key] = val
    return out


def load_values(files: list[str | Path], sets: list[str] | None = None) -> dict[str, Any]:
    """Values from `-f` files, then `--set` expressions, in command-line order of precedence."""
    values: dict[str, Any] = {}
    for f in files:
        values = merge_values(values, helm.values_from_yaml(Path(f).read_text()) or {})
    for expr in sets or []:
        values = merge_values(values, helm.parse_set_string(expr))
    return values


def _condition_holds(values: dict[str, Any], condition: str) -> bool:
    """A dependency's `condition` (first path that is set wins, as in Helm); unset means enabled."""
    for path in condition.split(","):
        cur: Any = values
        for key in path.strip().split("."):
            if not isinstance(cur, dict) or key not in cur:
                break
            cur = cur[key]
        else:
            if isinstance(cur, bool):
                return cur
    return True


def render(
    values: dict[str, Any] | None = None,
    *,
    name: str = DEFAULT_NAME,
    namespace: str = DEFAULT_NAMESPACE,
    chart_dir: Path = CHART_DIR,
) -> dict[str, str]:
    """Template path -> rendered text, NOTES.txt and empty templates included. Dependency charts
    present under charts/ are rendered when their condition holds, as `helm template` does (the
    SDK renders them all)."""
    with helm.Chart.load(chart_dir) as chart:
        rendered = chart.render(values=values or {}, name=name, namespace=namespace, is_install=True)
        merged = chart.merge_values(values or {})
        prefix = f"{chart.name}/charts/"
        present = {d["name"] for d in chart.dependencies}
        for dep in chart.metadata.get("dependencies") or []:
            if dep.get("condition") and not _condition_holds(merged, dep["condition"]):
                drop = f"{prefix}{dep.get('alias') or dep['name']}/"
                rendered = {k: v for k, v in rendered.items() if not k.startswith(drop)}
            elif dep["name"] not in present:
                # Helm refuses the same way (it checks even disabled ones; this check is kinder).
                raise helm.HelmError(
                    f"found in Chart.yaml, but missing in charts/ directory: {dep['name']} "
                    f"(run `helm dependency update {chart_dir}`)"
                )
        return rendered


def _kind(doc: str) -> str:
    for line in doc.splitlines():
        if line.startswith("kind:"):
            return line.split(":", 1)[1].strip()
    return ""


def manifest_stream(rendered: dict[str, str]) -> str:
    """The rendered templates as one multi-document YAML stream, in Helm's install order,
    each document headed by `# Source:` like `helm template`; NOTES.txt and empty output dropped."""
    docs: list[tuple[int, str, str]] = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in text.split("\n---\n"):
            body = "\n".join(line.rstrip() for line in doc.strip("\n").splitlines()).strip("\n")
            if not any(line.strip() and not line.lstrip().startswith("#") for line in body.splitlines()):
                continue
            kind = _kind(body)
            rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
            docs.append((rank, path, body))
    docs.sort(key=lambda d: (d[0], d[1]))
    return "".join(f"---\n# Source: {path}\n{body}\n" for _, path, body in docs)


def plain_manifests() -> str:
    """deploy/manifests/saker.yaml: the namespace plus the chart rendered with default values."""
    header = (
        "# Generated by deploy/render-manifests.sh from deploy/helm/saker with default values.\n"
        "# Do not edit: change the chart and re-run the script. Apply with\n"
        "#   kubectl apply -f deploy/manifests/saker.yaml\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Namespace\n"
        "metadata:\n"
        f"  name: {DEFAULT_NAMESPACE}\n"
    )
    return header + manifest_stream(render())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--values", action="append", default=[], help="values file (repeatable)")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE like helm --set (repeatable)")
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    parser.add_argument("--plain-manifests", action="store_true", help="print deploy/manifests/saker.yaml")
    args = parser.parse_args(argv)
    try:
        if args.plain_manifests:
            sys.stdout.write(plain_manifests())
        else:
            values = load_values(args.values, args.set)
            sys.stdout.write(manifest_stream(render(values, name=args.name, namespace=args.namespace)))
    except helm.HelmError as err:
        print(f"render.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
