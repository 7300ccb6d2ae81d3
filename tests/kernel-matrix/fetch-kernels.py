#!/usr/bin/env python3
"""Fetches the Debian cloud kernels of the EKS node families into a cache.

    fetch-kernels.py [--cache DIR] [FAMILY...]     FAMILY: 5.10 6.1 6.12 (default: all)

Prints one line per kernel: "FAMILY PATH-TO-VMLINUZ". Kernels are cached under
$SAKER_CACHE/kernels (default ~/.cache/saker/kernels) and fetched only once.

Each family names a Debian suite and the kernel package it carries. The
package is pinned (so the matrix is reproducible); when Debian's archive no
longer serves the pinned file (point releases drop old ABIs), the newest
cloud kernel of the same family in that suite's Packages index is used and
the substitution is printed on stderr.
"""
import argparse
import lzma
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

MIRRORS = ["http://deb.debian.org/debian", "http://archive.debian.org/debian"]

# family -> (suite, pinned pool path)
KERNELS = {
    "5.10": ("bullseye",
             "pool/main/l/linux-signed-amd64/linux-image-5.10.0-32-cloud-amd64_5.10.223-1_amd64.deb"),
    "6.1": ("bookworm",
            "pool/main/l/linux-signed-amd64/linux-image-6.1.0-50-cloud-amd64_6.1.176-1_amd64.deb"),
    "6.12": ("trixie",
             "pool/main/l/linux-signed-amd64/linux-image-6.12.117+deb13-cloud-amd64_6.12.117-1_amd64.deb"),
}


def get(url):
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


def newest_in_suite(mirror, suite, family):
    """Pool path of the newest signed cloud kernel of `family` in `suite`."""
    idx = lzma.decompress(get(f"{mirror}/dists/{suite}/main/binary-amd64/Packages.xz")).decode()
    pat = re.compile(r"^linux-image-" + re.escape(family) + r"[.0-9]*[-+][^ ]*-cloud-amd64$")
    best = None
    for stanza in idx.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" ")
        )
        if not pat.match(fields.get("Package", "")):
            continue
        ver = fields["Version"]
        if best is None or subprocess.run(
            ["dpkg", "--compare-versions", ver, "gt", best[0]]
        ).returncode == 0:
            best = (ver, fields["Filename"])
    return best[1] if best else None


def fetch(family, cache):
    suite, pinned = KERNELS[family]
    dest_dir = os.path.join(cache, family)
    marker = os.path.join(dest_dir, "vmlinuz")
    if os.path.exists(marker):
        return marker
    deb = None
    errors = []
    for mirror in MIRRORS:
        for path in (pinned, None):
            try:
                if path is None:
                    path = newest_in_suite(mirror, suite, family)
                    if not path:
                        continue
                    print(f"fetch-kernels: {pinned} is gone from {mirror}; using {path}", file=sys.stderr)
                deb = get(f"{mirror}/{path}")
                break
            except (urllib.error.URLError, OSError) as e:
                errors.append(f"{mirror}/{path}: {e}")
        if deb:
            break
    if not deb:
        sys.exit(f"fetch-kernels: cannot download the {family} kernel ({suite}):\n  " + "\n  ".join(errors))
    os.makedirs(dest_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        debf = os.path.join(tmp, "k.deb")
        with open(debf, "wb") as f:
            f.write(deb)
        subprocess.run(["dpkg-deb", "-x", debf, tmp], check=True)
        boot = os.path.join(tmp, "boot")
        images = [n for n in os.listdir(boot) if n.startswith("vmlinuz-")]
        if len(images) != 1:
            sys.exit(f"fetch-kernels: expected one vmlinuz in {path}, found {images}")
        release = images[0][len("vmlinuz-"):]
        with open(os.path.join(dest_dir, "release"), "w") as f:
            f.write(release + "\n")
        # overlayfs is a module in these kernels; the probe's exe-layer test needs it.
        mods = [os.path.join(tmp, d, "modules", release) for d in ("lib", "usr/lib")]
        for root, _, files in (w for m in mods for w in os.walk(m)):
            for name in files:
                if name.startswith("overlay.ko"):
                    src = os.path.join(root, name)
                    if name.endswith(".xz"):
                        subprocess.run(["xz", "-dk", src], check=True)
                        src = src[:-3]
                    os.replace(src, os.path.join(dest_dir, "overlay.ko"))
        os.replace(os.path.join(boot, images[0]), marker + ".tmp")
        os.replace(marker + ".tmp", marker)
    return marker


def main():
    ap = argparse.ArgumentParser()
    default_cache = os.path.join(
        os.environ.get("SAKER_CACHE", os.path.expanduser("~/.cache/saker")), "kernels"
    )
    ap.add_argument("--cache", default=default_cache)
    ap.add_argument("families", nargs="*", default=list(KERNELS))
    a = ap.parse_args()
    for fam in a.families:
        if fam not in KERNELS:
            sys.exit(f"fetch-kernels: unknown family {fam!r} (known: {', '.join(KERNELS)})")
        print(fam, fetch(fam, a.cache))


if __name__ == "__main__":
    main()
