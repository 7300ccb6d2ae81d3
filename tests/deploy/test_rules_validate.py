"""The rules the chart renders into the rules.d ConfigMap load with `saker validate`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, custom_rules_values, find, render_docs, saker_bin, shared

BROKEN_RULES = """\
- rule: Uses a macro nobody defined
  desc: must not load
  condition: not_a_defined_macro_anywhere and proc.name = sh
  output: "never (proc=%proc.name)"
  priority: WARNING
"""


def write_rules_d(tmp_path: Path, values) -> Path:
    """The rules ConfigMap rendered by the chart, laid out as the pod sees /etc/saker/rules.d."""
    cm = find(render_docs(values), "ConfigMap", "saker-rules")
    rules_d = tmp_path / "rules.d"
    rules_d.mkdir()
    for name, text in cm["data"].items():
        (rules_d / name).write_text(text)
    return rules_d


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(saker_bin()), "validate", *map(str, files)], capture_output=True, text=True, check=False, timeout=120
    )


def default_rules_file() -> Path | None:
    """The shipped default rules (installed as /etc/saker/saker_rules.yaml in the image)."""
    path = REPO / "rules" / "saker_rules.yaml"
    return path if path.is_file() else None


def test_rendered_custom_rules_load_alone(tmp_path):
    rules_d = write_rules_d(tmp_path, custom_rules_values())
    proc = validate(rules_d / "rules-custom.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Clean: no deprecated fields or other load warnings in the tutorial rule.
    assert "warning" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    # The directory form, as rules_files names it in saker.yaml.
    proc = validate(rules_d)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rendered_custom_rules_load_after_the_default_rules(tmp_path):
    defaults = default_rules_file()
    if defaults is None:
        pytest.skip("no saker_rules.yaml in the tree yet (the default ruleset, issue #5)")
    rules_d = write_rules_d(tmp_path, custom_rules_values())
    proc = validate(defaults, rules_d)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_validate_rejects_a_broken_rules_file_from_the_chart(tmp_path):
    """Negative control: a rules.d entry that cannot load makes `saker validate` fail, so the
    passing tests above are meaningful."""
    rules_d = write_rules_d(tmp_path, {"customRules": {"broken.yaml": BROKEN_RULES}})
    proc = validate(rules_d / "broken.yaml")
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "not_a_defined_macro_anywhere" in proc.stdout + proc.stderr


def test_example_rules_file_passed_with_set_file_loads(tmp_path):
    example = REPO / "examples" / "custom-rules.yaml"
    if not example.is_file():
        pytest.skip("examples/custom-rules.yaml not in the tree yet (issue #5)")
    import helm_python as helm

    rules_d = write_rules_d(tmp_path, helm.parse_set_file(f"customRules.rules-custom\\.yaml={example}"))
    proc = validate(rules_d)
    assert proc.returncode == 0, proc.stdout + proc.stderr




def rendered_config(tmp_path: Path, values) -> Path:
    cm = find(render_docs(values), "ConfigMap", "saker")
    path = tmp_path / "saker.yaml"
    path.write_text(cm["data"]["saker.yaml"])
    return path


@pytest.mark.parametrize(
    "values",
    [{}, {"falco": {"json_output": True, "http_output": {"enabled": False, "url": "http://sidekick:2801/"}}}],
    ids=["defaults", "falco-keys"],
)
def test_saker_reads_the_rendered_saker_yaml(tmp_path, values):
    """Every key the chart writes into saker.yaml is one Saker knows (the config loader warns
    about unknown keys): the chart and the config crate speak the same language. The only key
    Saker may not know yet is container_engines (runtime sockets, issue #7)."""
    capture = shared("captures/cat_write.scap")
    config = rendered_config(tmp_path, values)
    defaults = default_rules_file()
    assert defaults is not None
    proc = subprocess.run(
        [str(saker_bin()), "replay", "--no-progress", "-c", str(config),
         # The pod's /etc/saker paths do not exist here; the web server would bind a port.
         "-r", str(defaults), "-o", "webserver.enabled=false", str(capture)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line.lower() and "config key" in line]
    unexpected = [w for w in warnings if "container_engines" not in w]
    assert unexpected == [], unexpected
    # json_output is on: whatever reaches stdout is one JSON alert per line.
    for line in proc.stdout.splitlines():
        alert = json.loads(line)
        assert {"rule", "priority", "output", "time"} <= set(alert)
