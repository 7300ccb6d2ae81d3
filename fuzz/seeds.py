#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into OUTDIR/<target>/, derived at run time from
the repository's own files (built-in rules, example configs, the snippets below), the key names
of ../shared/falco-config/falco.yaml (facts) and the regression captures in ../shared. Seeds are
not committed; the corpora that grow from them are (fuzz/corpus/<target>). Falco's rules files
and falco.yaml text are deliberately not used: the committed corpora must not carry their text."""
import gzip
import os
import struct
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SHARED = os.path.join(ROOT, "..", "shared")
OUT = sys.argv[1]


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rules_files():
    return [os.path.join(ROOT, "rules", "saker_rules.yaml")]


# The loader features the built-in rules do not use.
SNIPPETS = [
    "- required_engine_version: 0.31.0\n",
    "- required_plugin_versions:\n  - name: container\n    version: 0.1.0\n"
    "    alternatives:\n      - name: k8smeta\n        version: 0.1.0\n",
    "- list: shells\n  items: [sh, bash, \"z sh\"]\n- list: shells\n  items: [ash]\n  append: true\n"
    "- macro: spawned\n  condition: evt.type in (execve, execveat) and evt.dir = <\n"
    "- rule: Shell\n  desc: d\n  condition: spawned and proc.name in (shells) and not proc.pname pmatch (shells)\n"
    "  output: \"%proc.name %proc.cmdline %proc.aname[2] %fd.name\"\n  priority: WARNING\n  tags: [a, b]\n"
    "  exceptions:\n    - name: ok\n      fields: [proc.name, fd.directory]\n      comps: [=, in]\n"
    "      values:\n        - [sh, [/tmp, /var]]\n",
    "- rule: Shell\n  override:\n    condition: append\n    output: replace\n  condition: and user.uid = 0\n"
    "  output: \"%user.name\"\n",
    "- rule: Shell\n  enabled: false\n",
    "- rule: Net\n  desc: d\n  condition: evt.type = connect and fd.sip cidr \"10.0.0.0/8\" and fd.sport > 1024\n"
    "  output: \"%fd.name val(fd.sport)\"\n  priority: NOTICE\n  source: syscall\n"
    "  skip-if-unknown-filter: true\n  warn_evttypes: false\n",
]
for i, t in enumerate(SNIPPETS):
    put("rules_file", f"snippet{i}.yaml", t)


# rules_file: every item (list, macro, rule) alone, and small runs of consecutive items.
# condition: every condition and output format.
n = 0
for path in rules_files():
    text = open(path).read()
    items, cur = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("- ") and cur:
            items.append("".join(cur))
            cur = []
        cur.append(line)
    if cur:
        items.append("".join(cur))
    for i in range(0, len(items), 3):
        chunk = "".join(items[i:i + 3])
        if len(chunk) <= 8192:
            put("rules_file", f"r{n:05}.yaml", chunk)
            n += 1
    try:
        doc = yaml.safe_load(text) or []
    except yaml.YAMLError:
        doc = []
    for j, it in enumerate(doc):
        if not isinstance(it, dict):
            continue
        for k in ("condition", "output"):
            v = it.get(k)
            if isinstance(v, str) and len(v) <= 1024:
                put("condition", f"c{n:05}_{j}_{k}", v)
    n += 1

# config and override: the example configs, and every leaf key of falco.yaml as key=value.
configs = [os.path.join(ROOT, "saker.example.yaml"), os.path.join(ROOT, "deploy", "saker.yaml")]
for i, p in enumerate(configs):
    if os.path.exists(p):
        put("config", f"cfg{i}.yaml", open(p).read())


def leaves(prefix, v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from leaves(f"{prefix}.{k}" if prefix else str(k), x)
    elif isinstance(v, list):
        yield prefix, yaml.safe_dump(v, default_flow_style=True).strip()
    else:
        yield prefix, "" if v is None else str(v)


fy = os.path.join(SHARED, "falco-config", "falco.yaml")
if os.path.exists(fy):
    for i, (k, v) in enumerate(leaves("", yaml.safe_load(open(fy)))):
        put("override", f"o{i:04}", f"{k}={v}")
put("override", "jq", "program_output.program=jq '{text: .output}'")
put("override", "hdr", "http_output.custom_headers.X-Token=a=b")

# scap: the section header and metadata blocks of each capture with its first events, and
# each capture's distinct block types (so every block layout in them is a seed).
cd = os.path.join(SHARED, "captures")
for f in sorted(os.listdir(cd)) if os.path.isdir(cd) else []:
    if not f.endswith(".scap"):
        continue
    data = open(os.path.join(cd, f), "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    off, blocks = 0, []
    while off + 12 <= len(data):
        t, ln = struct.unpack_from("<II", data, off)
        if ln < 12 or off + ln > len(data):
            break
        blocks.append((t, data[off:off + ln]))
        off += ln
    head, seen, ev = b"", set(), 0
    for t, b in blocks:
        if t not in seen:
            seen.add(t)
            head += b
        elif ev < 8 and len(head) + len(b) < 16384:
            head += b
            ev += 1
    put("scap", f"{f}.head", head)
    put("scap", f"{f}.head.gz", gzip.compress(head))

# container: one small reply per parser (the first byte picks it); the rest the fuzzer finds.
inspect = ('{"Id":"3f1e2d","Name":"/web","Created":"2024-05-01T12:00:00.123456789Z",'
           '"Config":{"Image":"docker.io/library/nginx:1.25","Labels":{"io.kubernetes.pod.name":"p"},'
           '"Healthcheck":{"Test":["CMD-SHELL","curl -f localhost"]}},'
           '"HostConfig":{"Privileged":true,"CpuShares":512,"Memory":1048576},'
           '"Mounts":[{"Source":"/a","Destination":"/b","Mode":"ro","RW":false}],'
           '"NetworkSettings":{"IPAddress":"10.0.0.2"},"State":{"Running":true,"Pid":42}}')
put("container", "inspect", b"\x00" + inspect.encode())
put("container", "list", b"\x01" + b'[{"Id":"3f1e2d"},{"Id":"9a8b"}]')
put("container", "event", b"\x02" + b'{"Type":"container","Action":"create","id":"3f1e2d"}')
body = inspect.encode()
put("container", "http", b"\x03" + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
put("container", "spec", b"\x08" + b'{"process":{"user":{"uid":0},"capabilities":{"effective":["CAP_SYS_ADMIN"]}},'
    b'"mounts":[{"destination":"/proc","source":"proc"}],"linux":{"namespaces":[{"type":"pid"}]}}')
