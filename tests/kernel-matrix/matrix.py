#!/usr/bin/env python3
"""The kernel matrix: boots Debian's cloud kernels of the EKS node families
(5.10, 6.1, 6.12) under QEMU (TCG) with the release `saker`, runs the live test
set (guest.sh) inside and checks it here.

    matrix.py [--kernels 5.10,6.1,6.12] [--attach auto|fexit|tracepoint|generic]

Per kernel it checks that:
  - the probe loads with the built-in rules, and each behaviour raises its rule
    with the expected proc.name / proc.pname / fd.name / user.name;
  - the upstream falco_rules.yaml (../shared/falco-rules) loads and one of its
    rules fires live;
  - a capture recorded at the same time replays to the same alerts;
  - without BTF, saker stops with one line naming the kernel;
  - the probe crate's live tests pass (every object x attach mode gives
    byte-identical events).
Writes target/kernel-matrix/report.md and exits 1 when any check fails.
"""
import re
import argparse
import collections
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

# behaviour -> (built-in rule, fields that must have these values)
EXPECT = {
    "shell_unusual_location": ("Shell binary run from an unusual location",
                               {"proc.exepath": "/tmp/sh", "proc.pname": "sh", "user.name": "root"}),
    "read_shadow": ("Sensitive file read by untrusted program",
                    {"proc.name": "cat", "proc.pname": "sh", "fd.name": "/etc/shadow", "user.name": "root"}),
    "write_below_etc": ("File written below /etc",
                        {"proc.name": "sh", "fd.name": "/etc/saker-matrix", "user.name": "root"}),
    "symlink_sensitive": ("Symlink created to a sensitive file",
                          {"proc.name": "ln", "proc.pname": "sh", "user.name": "root"}),
    "setns": ("Process entered another namespace",
              {"proc.name": "behave", "proc.pname": "sh", "user.name": "root"}),
    "unshare": ("Process created new namespaces",
                {"proc.name": "unshare", "proc.pname": "sh", "user.name": "root"}),
    "chmod_setuid": ("Setuid or setgid bit set on a file",
                     {"proc.name": "chmod", "proc.pname": "sh", "user.name": "root"}),
    "connect_reverse_shell": ("Shell standard streams redirected to a network connection",
                              {"proc.name": "nc", "proc.pname": "sh", "user.name": "root"}),
    "ptrace": ("Process attached to another with ptrace",
               {"proc.name": "behave", "proc.pname": "sh", "user.name": "root"}),
    "memfd_exec": ("Fileless execution from memory", {"proc.pname": "sh", "user.name": "root"}),
    "module_load": ("Kernel module load attempted",
                    {"proc.name": "behave", "proc.pname": "sh", "user.name": "root"}),
}
UPSTREAM_RULE = ("Read sensitive file untrusted", {"proc.name": "cat", "fd.name": "/etc/shadow"})


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def probe_test_binary():
    out = subprocess.run(
        ["cargo", "test", "--release", "-p", "saker-probe", "--test", "live", "--no-run",
         "--message-format=json"],
        cwd=REPO, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m.get("executable") and \
                m["target"]["name"] == "live":
            return m["executable"]
    sys.exit("matrix: cannot find the probe's live test executable")


def sections(text):
    out, cur = collections.OrderedDict(), None
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line.startswith("== "):
            cur = line[3:].strip()
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def alerts(lines):
    res = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            try:
                res.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return res


def find(alist, rule, fields):
    """The first alert of `rule` whose fields match, else the reason none does."""
    cands = [a for a in alist if a.get("rule") == rule]
    if not cands:
        return None, "no alert"
    for a in cands:
        of = a.get("output_fields", {})
        if all(str(of.get(k)) == v for k, v in fields.items()):
            return a, ""
    of = cands[0].get("output_fields", {})
    bad = {k: of.get(k) for k, v in fields.items() if str(of.get(k)) != v}
    return None, f"fields differ: {bad}"


def check_kernel(fam, vmlinuz, initrd, attach, timeout):
    t0 = time.time()
    p = subprocess.run(
        [os.path.join(HERE, "run-vm.sh"), vmlinuz, initrd, f"saker.script=guest.sh saker.arg={attach}",
         str(timeout)], capture_output=True, text=True, errors="replace")
    secs = time.time() - t0
    raw = p.stdout
    logdir = os.path.join(REPO, "target", "kernel-matrix")
    with open(os.path.join(logdir, f"console-{fam}.log"), "w") as f:
        f.write(raw)
    s = sections(raw)
    checks = []  # (name, ok, detail)
    info = {"seconds": f"{secs:.0f}"}
    err = "\n".join(s.get("builtin.err", []))
    for line in s.get("builtin.err", []):
        if "saker: started" in line:
            info["started"] = line.split("saker: started: ", 1)[-1]
            if "(" in line:
                info["mode"] = line.split("(")[1].split(" mode")[0]
                info["object"] = line.split(" mode, ")[1].split(" object")[0]
            info["programs"] = line.split(" programs attached")[0].rsplit(" ", 1)[-1]
        if "saker: stopped" in line:
            # "Syscall events: E seen, D dropped, P processed"
            words = line.replace(",", "").split()
            info["events"] = words[words.index("seen") - 1]
            info["drops"] = words[words.index("dropped") - 1]
    info["startup_s"] = (s.get("startup_seconds") or ["?"])[0]
    checks.append(("probe loads with the built-in rules", "started" in info, err[-300:]))
    done = set(x.strip() for x in s.get("behaviours", []))
    built = alerts(s.get("builtin.json", []))
    for name, (rule, fields) in EXPECT.items():
        if name not in done:
            checks.append((name, False, "behaviour did not run"))
            continue
        a, why = find(built, rule, fields)
        checks.append((name, a is not None, f"{rule}: {why}" if a is None else rule))
    up = alerts(s.get("upstream.json", []))
    uerr = "\n".join(s.get("upstream.err", []))
    a, why = find(up, *UPSTREAM_RULE)
    checks.append(("upstream falco_rules.yaml loads and fires", a is not None,
                   UPSTREAM_RULE[0] if a else f"{why}; {uerr[-300:]}"))
    # Record -> replay: the behaviours' alerts, counted per rule, are the same.
    rep = alerts(s.get("replay.json", []))
    rules = {r for r, _ in EXPECT.values()}
    live_c = collections.Counter(x["rule"] for x in built if x.get("rule") in rules)
    rep_c = collections.Counter(x["rule"] for x in rep if x.get("rule") in rules)
    checks.append(("record -> replay gives the same alerts", live_c == rep_c and len(live_c) > 0,
                   "" if live_c == rep_c else f"live {dict(live_c)} replay {dict(rep_c)}"))
    nb = s.get("no_btf", [])
    nb_text = "\n".join(nb)
    release = (s.get("kernel") or ["?"])[0].strip()
    ok = "exit=0" not in nb_text and "BTF" in nb_text and release in nb_text and \
        sum(1 for x in nb if x.startswith("saker:")) == 1
    checks.append(("no BTF: one clear line", ok, nb_text.strip()[:200]))
    pt = "\n".join(s.get("probe_tests", []))
    # The live tests are #[ignore = "needs root"] on the host: the guest runs them with
    # --include-ignored, and a run that passed none (all ignored) is a failure.
    m = re.search(r"test result: ok\. (\d+) passed", pt)
    ok = bool(m) and int(m.group(1)) > 0
    checks.append(("probe live tests (every object x attach mode)", ok,
                   "" if ok else "\n".join(x for x in pt.splitlines() if "panicked" in x or "FAILED" in x)[:600]))
    info["release"] = release
    return checks, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernels", default="5.10,6.1,6.12")
    ap.add_argument("--attach", default="auto")
    ap.add_argument("--timeout", type=int, default=600)
    a = ap.parse_args()
    os.makedirs(os.path.join(REPO, "target", "kernel-matrix"), exist_ok=True)
    fams = a.kernels.split(",")
    kernels = subprocess.run([sys.executable, os.path.join(HERE, "fetch-kernels.py"), *fams],
                             check=True, capture_output=True, text=True).stdout.split()
    kernels = dict(zip(kernels[0::2], kernels[1::2]))
    saker = os.path.join(REPO, "target", "release", "saker")
    initrd = os.path.join(REPO, "target", "kernel-matrix", "initramfs.cpio.gz")
    sh([os.path.join(HERE, "build-initramfs.sh"), initrd, saker, probe_test_binary()])
    report = ["| kernel | attach mode | object | programs | startup (TCG) | events | drops | result |",
              "|---|---|---|---|---|---|---|---|"]
    details, failed = [], 0
    for fam in fams:
        checks, info = check_kernel(fam, kernels[fam], initrd, a.attach, a.timeout)
        bad = [c for c in checks if not c[1]]
        failed += len(bad)
        report.append(
            f"| {info.get('release', fam)} | {info.get('mode', '-')} | {info.get('object', '-')} | "
            f"{info.get('programs', '-')} | {info.get('startup_s', '?')} s | {info.get('events', '-')} | "
            f"{info.get('drops', '-')} | {len(checks) - len(bad)}/{len(checks)} passed ({info['seconds']} s) |")
        details.append(f"\n### {info.get('release', fam)}\n")
        for name, ok, detail in checks:
            details.append(f"- {'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
        print(f"matrix: {fam}: {len(checks) - len(bad)}/{len(checks)} passed", flush=True)
        for name, ok, detail in bad:
            print(f"matrix: {fam}: FAIL {name}: {detail}", flush=True)
    text = "\n".join(report + details) + "\n"
    with open(os.path.join(REPO, "target", "kernel-matrix", "report.md"), "w") as f:
        f.write(text)
    print(text)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
