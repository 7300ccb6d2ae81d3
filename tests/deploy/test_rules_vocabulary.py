"""Falco's macro and list vocabulary in Saker's built-in rules: custom rules written for Falco load
on top of either ruleset, and Saker's rules and Falco's rules load together without conflict."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import HERE, REPO, custom_rules_values, require_live, run_live, saker_bin, shared

SAKER_RULES = REPO / "rules" / "saker_rules.yaml"
CUSTOM = HERE / "falco-custom-rules.yaml"
FALCO_FILES = ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"]

# The names the issue calls out as the ones custom rules use most.
MUST_DEFINE = {"spawned_process", "container", "open_read", "open_write", "shell_procs"}

# Loading Falco's file first and Saker's after replaces some of Falco's definitions by Saker's;
# these helpers of Falco's replaced definitions are then unused (a warning, not an error). The
# chart loads Saker's file first, which leaves nothing unused.
FALCO_FIRST_UNUSED = {"container_entrypoint", "rpm_binaries", "deb_binaries", "python_package_managers"}


def falco(name: str) -> Path:
    return shared(f"falco-rules/{name}")


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(saker_bin()), "validate", *map(str, files)], capture_output=True, text=True, check=False, timeout=120
    )


def warnings(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if ": warning:" in line]


def definitions(path: Path) -> dict[str, str]:
    """name -> 'macro' | 'list' for one rules file."""
    out: dict[str, str] = {}
    for item in yaml.safe_load(path.read_text()) or []:
        for kind in ("macro", "list"):
            if kind in item:
                out[item[kind]] = kind
    return out


def referenced_names(path: Path, candidates: set[str]) -> set[str]:
    """Which of `candidates` the file's conditions and list items mention, or tunes by name."""
    text_parts: list[str] = []
    for item in yaml.safe_load(path.read_text()) or []:
        text_parts.append(str(item.get("condition", "")))
        text_parts.extend(str(i) for i in item.get("items", []) or [])
        if "override" in item or item.get("append"):
            text_parts.append(str(item.get("macro") or item.get("list") or ""))
    text = "\n".join(text_parts)
    return {n for n in candidates if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w.-])", text)}


def tutorial_rules(tmp_path: Path) -> Path:
    """The seeds' whoami rule, as the chart's customRules value carries it."""
    path = tmp_path / "rules-custom.yaml"
    path.write_text(custom_rules_values()["customRules"]["rules-custom.yaml"])
    return path


def test_saker_rules_load_alone_without_warnings():
    proc = validate(SAKER_RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warnings(proc) == [], "every vocabulary macro and list must be used by a Saker rule"


def test_saker_defines_the_falco_names_the_custom_rules_use():
    falco_defs = definitions(falco("falco_rules.yaml"))
    saker_defs = definitions(SAKER_RULES)
    used = referenced_names(CUSTOM, set(falco_defs))
    assert MUST_DEFINE <= used, "the custom rules exercise the common names"
    assert {n for n in used if n.startswith("user_known_") or n.startswith("user_expected_")}, used
    missing = sorted(used - set(saker_defs))
    assert missing == [], f"custom rules use Falco names Saker does not define: {missing}"
    # Same kind (macro or list) for every name both files define: an override written for
    # Falco (`override: {items: append}` vs `{condition: append}`) must apply to Saker's too.
    both = set(falco_defs) & set(saker_defs)
    assert MUST_DEFINE <= both
    assert {n: saker_defs[n] for n in both if saker_defs[n] != falco_defs[n]} == {}


def test_custom_rules_need_a_base_ruleset():
    """Negative control: the custom file alone does not load (it relies on the vocabulary), so
    the loads below prove the vocabulary is there."""
    proc = validate(CUSTOM)
    assert proc.returncode != 0
    assert "no list by that name already exists" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "base",
    [["saker"], ["falco"], ["saker", "falco"]],
    ids=["saker-rules", "falco-rules", "saker-then-falco-rules"],
)
def test_tutorial_and_custom_rules_load_on_either_ruleset(tmp_path, base):
    files = [SAKER_RULES if b == "saker" else falco("falco_rules.yaml") for b in base]
    proc = validate(*files, tutorial_rules(tmp_path), CUSTOM)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warnings(proc) == [], proc.stdout + proc.stderr
    for f in (*files, CUSTOM):
        assert f"{f}: Ok" in proc.stdout, proc.stdout


@pytest.mark.parametrize("name", FALCO_FILES)
def test_saker_then_falco_rules_load_without_a_warning(name):
    proc = validate(SAKER_RULES, falco(name))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warnings(proc) == [], proc.stdout + proc.stderr


@pytest.mark.parametrize("name", FALCO_FILES)
def test_falco_then_saker_rules_load_with_only_unused_helper_warnings(name):
    proc = validate(falco(name), SAKER_RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    unused = set()
    for line in warnings(proc):
        m = re.search(r"warning: (?:macro|list) '([^']+)': (?:Macro|List) not referred to", line)
        assert m, line
        unused.add(m.group(1))
    assert unused <= FALCO_FIRST_UNUSED, unused


def test_chart_rules_files_load_saker_rules_before_falco_rules():
    """The chart's "both" mode relies on the clean order above."""
    from conftest import render_docs, saker_config

    files = saker_config(render_docs({"saker": {"builtinRules": "both"}}))["rules_files"]
    assert files.index("/etc/saker/saker_rules.yaml") < files.index("/etc/falco/falco_rules.yaml")


def test_a_custom_rule_fires_the_same_on_saker_and_falco_vocabulary(tmp_path):
    """Live: the custom rule "Sensitive file read by a shell" (open_read, sensitive_files,
    shell_procs, proc_name_exists) fires for a shell reading /etc/shadow, whichever ruleset
    defines those names."""
    require_live()
    token = f"saker-vocab-{tmp_path.name}"
    for base in (SAKER_RULES, falco("falco_rules.yaml")):
        alerts, err = run_live(
            ["-r", str(base), "-r", str(CUSTOM), "-o", "rule_matching=all"],
            lambda: subprocess.run(["sh", "-c", "read x < /etc/shadow; true", "sh", token], check=False),
        )
        mine = [a for a in alerts if token in a["output"]]
        rules = sorted({a["rule"] for a in mine})
        assert "Sensitive file read by a shell" in rules, (base, rules, err[-2000:])
        alert = next(a for a in mine if a["rule"] == "Sensitive file read by a shell")
        assert alert["output_fields"]["fd.name"] == "/etc/shadow"
        assert alert["priority"] == "Warning"
