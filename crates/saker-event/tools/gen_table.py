#!/usr/bin/env python3
"""Generates src/table/data.rs (event table facts), src/table/flagdata.rs and src/ppm.rs.

Inputs are facts only: event ids, names, categories, flags, parameter names and
types, flag-table names/values. They are read from the API headers shipped in
the `falco_event_schema` crate (libs ~0.21, PPM_EVENT_MAX 430) and then brought
to libs HEAD (PPM_EVENT_MAX 454, exit-only) using the parameter lists of
/work/shared/spec/events-and-captures.md §2.2 and the rule "HEAD exit = old
exit params + the enter params not already present" (how the exit-only
migration appended the former enter parameters).

Events 430..453 (iterators, close_range, keyctl) exist only at HEAD; the
iterator entries are placeholders without parameters.

Usage (from crates/saker-event, after `cargo info falco_event_schema` fetched it):
  tools/gen_table.py ~/.cargo/registry/src/*/falco_event_schema-0.5.1/api \
      /work/shared/spec/events-and-captures.md src/table
"""
import re, sys, os, json

api, spec, out = sys.argv[1], sys.argv[2], sys.argv[3]
hdr = open(os.path.join(api, "ppm_events_public.h")).read()
tab = open(os.path.join(api, "event_table.c")).read()
flg = open(os.path.join(api, "flags_table.c")).read()

def strip_comments(s):
    s = re.sub(r"/\*.*?\*/", "", s, flags=re.S)
    return re.sub(r"//[^\n]*", "", s)

hdr_nc = strip_comments(hdr).replace("\\\n", " ")
# --- numeric defines ------------------------------------------------------
defines = {}
for m in re.finditer(r"^#define\s+(PPM_\w+)\s+(.+)$", hdr_nc, re.M):
    defines[m.group(1)] = m.group(2).strip()
enums = {}
for m in re.finditer(r"\b((?:PPME|EC|EF|PT|PF|PPM)_\w+)\s*=\s*([^,\n]+),?", hdr_nc):
    enums[m.group(1)] = m.group(2).strip()

def ev(expr, depth=0):
    expr = expr.strip()
    if depth > 20:
        raise ValueError(expr)
    def rep(m):
        n = m.group(0)
        if n in defines:
            return "(" + str(ev(defines[n], depth + 1)) + ")"
        if n in enums:
            return "(" + str(ev(enums[n], depth + 1)) + ")"
        raise KeyError(n)
    e = re.sub(r"\b[A-Z_][A-Z0-9_a-z]*\b", rep, expr)
    e = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[UuLl]*\b", lambda m: str(int(m.group(1), 0) if m.group(1).startswith("0x") else (int(m.group(1), 8) if len(m.group(1)) > 1 and m.group(1).startswith("0") else int(m.group(1)))), e)
    e = e.replace("~", "~")
    return eval(e)

ev_ids = {}
for m in re.finditer(r"\b(PPME_\w+)\s*=\s*(\d+)", hdr_nc):
    ev_ids[m.group(1)] = int(m.group(2))
sc = [(m.group(1).lower(), int(m.group(2))) for m in re.finditer(r"PPM_SC_X\((\w+),\s*(\d+)\)", hdr_nc)]

# --- event table ----------------------------------------------------------
t = strip_comments(tab)
t = t[t.index("g_event_info[]"):]
entries = {}
for m in re.finditer(r"\[(PPME_\w+)\]\s*=\s*\{", t):
    start = m.end()
    depth, i = 1, start
    while depth:
        c = t[i]
        if c == "{": depth += 1
        elif c == "}": depth -= 1
        i += 1
    body = t[start:i - 1]
    mm = re.match(r'\s*"([^"]*)"\s*,\s*([^,]+),\s*([^,]+),\s*(\d+)\s*,?\s*(.*)$', body, re.S)
    name, cat, flags, n, rest = mm.groups()
    params = []
    for pm in re.finditer(r'\{\s*"([^"]*)"\s*,\s*(PT_\w+)\s*,\s*(PF_\w+)\s*(?:,\s*([^}]*?))?\s*\}', rest):
        pname, pty, pfmt, extra = pm.groups()
        tbl, dirfd = None, None
        if extra:
            parts = [x.strip() for x in extra.split(",") if x.strip()]
            if parts:
                d = re.match(r"DIRFD_PARAM\((\d+)\)", parts[0])
                if d: dirfd = int(d.group(1))
                elif parts[0] not in ("NULL", "0"): tbl = parts[0]
        params.append(dict(name=pname, ty=pty, fmt=pfmt, tbl=tbl, dirfd=dirfd))
    assert len(params) == int(n), (m.group(1), n, params)
    entries[ev_ids[m.group(1)]] = dict(enum=m.group(1), name=name, cat=cat.strip(), flags=flags.strip(), params=params)

# --- flag tables ----------------------------------------------------------
f = strip_comments(flg)
flag_tables = {}
for m in re.finditer(r"const struct ppm_name_value (\w+)\[\]\s*=\s*\{(.*?)\};", f, re.S):
    vals = []
    for vm in re.finditer(r'\{\s*"([^"]+)"\s*,\s*([^}]+)\}', m.group(2)):
        vals.append((vm.group(1), ev(vm.group(2)) & 0xFFFFFFFF))
    flag_tables[m.group(1)] = vals

# --- HEAD amendments --------------------------------------------------------
TY = {"errno": "PT_ERRNO", "fd": "PT_FD", "pid": "PT_PID", "uid": "PT_UID", "gid": "PT_GID",
      "charbuf": "PT_CHARBUF", "bytebuf": "PT_BYTEBUF", "fspath": "PT_FSPATH", "fsrelpath": "PT_FSRELPATH",
      "u8": "PT_UINT8", "u16": "PT_UINT16", "u32": "PT_UINT32", "u64": "PT_UINT64",
      "i32": "PT_INT32", "i64": "PT_INT64", "enum8": "PT_ENUMFLAGS8", "enum16": "PT_ENUMFLAGS16",
      "enum32": "PT_ENUMFLAGS32", "flags8": "PT_FLAGS8", "flags16": "PT_FLAGS16", "flags32": "PT_FLAGS32",
      "sockaddr": "PT_SOCKADDR", "socktuple": "PT_SOCKTUPLE", "dyn": "PT_DYN", "abstime": "PT_ABSTIME",
      "sigtype": "PT_SIGTYPE", "mode": "PT_MODE", "syscallid": "PT_SYSCALLID"}
spec_rows = {}
for line in open(spec):
    m = re.match(r"\|\s*(\w+)\s*\|\s*(\d+)\s*\|\s*(\w+)\s*\|\s*(\d+)\s*\|[^|]*\|\s*([^|]+)\|", line)
    if not m: continue
    enum, eid, name, n, plist = m.groups()
    ps = []
    for p in plist.split(","):
        p = p.strip().split(" ")[0]
        pn, pt = p.split(":")
        ps.append((pn, TY[pt]))
    if len(ps) != int(n):  # rows with a short-hand list
        continue
    spec_rows[int(eid)] = (enum, name, ps)

def find_old(name, pname, pty):
    """Format / flag table of a same-named param in any version of the event."""
    best = None
    for e in entries.values():
        if e["name"] != name: continue
        for p in e["params"]:
            if p["name"] == pname:
                if p["ty"] == pty: return p
                best = best or p
    return best

ENTER_KEEP = {2, 22, 58, 306, 326}  # TOCTOU enter events still produced by the probe
head = {}
for eid, e in entries.items():
    head[eid] = json.loads(json.dumps(e))
for eid, e in entries.items():
    if eid % 2 == 1 and e["name"] != "NA" and "EC_SYSCALL" in e["cat"] and eid not in spec_rows:
        enter = entries.get(eid - 1)
        have = {p["name"] for p in e["params"]}
        if enter and "EF_OLD_VERSION" not in e["flags"]:
            for p in enter["params"]:
                if p["name"] not in have:
                    head[eid]["params"].append(dict(p))
for eid, (enum, name, ps) in spec_rows.items():
    base = head.get(eid)
    params = []
    for pn, pt in ps:
        old = find_old(name, pn, pt)
        fmt = old["fmt"] if old else ("PF_DEC" if pt not in ("PT_CHARBUF", "PT_BYTEBUF", "PT_FSPATH", "PT_FSRELPATH", "PT_SOCKADDR", "PT_SOCKTUPLE") else "PF_NA")
        tbl = old["tbl"] if old and old["ty"] == pt else (old["tbl"] if old and pt.startswith(("PT_FLAGS", "PT_ENUMFLAGS", "PT_MODE")) else None)
        params.append(dict(name=pn, ty=pt, fmt=fmt, tbl=tbl, dirfd=None))
    for i, p in enumerate(params):
        if p["ty"] == "PT_FSRELPATH":
            for j in range(i - 1, -1, -1):
                if params[j]["ty"] == "PT_FD" and "dir" in params[j]["name"]:
                    p["dirfd"] = j
                    break
    if base is None:
        continue  # ids >= 430 are defined below
    assert base["name"] == name, (eid, base["name"], name)
    base["params"] = params
# fix tables that the spec writes with a different type than the old table
for eid, e in head.items():
    for p in e["params"]:
        if p["ty"] == "PT_FSRELPATH" and p["dirfd"] is None:
            for j in range(len(e["params"])):
                q = e["params"][j]
                if q["ty"] == "PT_FD" and "dir" in q["name"] and j < e["params"].index(p):
                    p["dirfd"] = j
# mark the syscall enter events the exit-only probe no longer sends
for eid, e in head.items():
    if eid % 2 == 0 and "EC_SYSCALL" in e["cat"] and eid not in ENTER_KEEP and "EF_OLD_VERSION" not in e["flags"]:
        e["flags"] += " | EF_OLD_VERSION"

# events 430..453 (libs HEAD only): iterators, close_range, keyctl.
ITER = ["iter_task", "iter_task_file_file", "iter_task_file_dir", "iter_task_file_ipv4",
        "iter_task_file_ipv6", "iter_task_file_unix", "iter_task_file_netlink", "iter_task_file_pipe",
        "iter_task_file_other", "iter_task_file_memfd"]
for k, nm in enumerate(ITER):
    head[430 + 2 * k] = dict(enum="PPME_ITER_%d_E" % k, name=nm, cat="EC_OTHER | EC_ITER", flags="EF_NONE", params=[])
    head[431 + 2 * k] = dict(enum="PPME_ITER_%d_X" % k, name="NA", cat="EC_UNKNOWN", flags="EF_UNUSED", params=[])
head[450] = dict(enum="PPME_SYSCALL_CLOSE_RANGE_E", name="close_range", cat="EC_IO_OTHER | EC_SYSCALL", flags="EF_MODIFIES_STATE | EF_OLD_VERSION", params=[])
head[451] = dict(enum="PPME_SYSCALL_CLOSE_RANGE_X", name="close_range", cat="EC_IO_OTHER | EC_SYSCALL", flags="EF_MODIFIES_STATE", params=[
    dict(name="res", ty="PT_ERRNO", fmt="PF_DEC", tbl=None, dirfd=None),
    dict(name="first", ty="PT_UINT32", fmt="PF_DEC", tbl=None, dirfd=None),
    dict(name="last", ty="PT_UINT32", fmt="PF_DEC", tbl=None, dirfd=None),
    dict(name="flags", ty="PT_FLAGS32", fmt="PF_HEX", tbl="close_range_flags", dirfd=None)])
head[452] = dict(enum="PPME_SYSCALL_KEYCTL_E", name="keyctl", cat="EC_OTHER | EC_SYSCALL", flags="EF_OLD_VERSION", params=[])
head[453] = dict(enum="PPME_SYSCALL_KEYCTL_X", name="keyctl", cat="EC_OTHER | EC_SYSCALL", flags="EF_NONE", params=[
    dict(name="res", ty="PT_ERRNO", fmt="PF_DEC", tbl=None, dirfd=None),
    dict(name="operation", ty="PT_INT32", fmt="PF_DEC", tbl=None, dirfd=None),
    dict(name="arg2", ty="PT_DYN", fmt="PF_DEC", tbl="keyctl_dynamic_param", dirfd=None),
    dict(name="arg3", ty="PT_DYN", fmt="PF_DEC", tbl="keyctl_dynamic_param", dirfd=None),
    dict(name="arg4", ty="PT_DYN", fmt="PF_DEC", tbl="keyctl_dynamic_param", dirfd=None),
    dict(name="arg5", ty="PT_DYN", fmt="PF_DEC", tbl="keyctl_dynamic_param", dirfd=None)])
flag_tables["close_range_flags"] = [("CLOSE_RANGE_UNSHARE", 1 << 1), ("CLOSE_RANGE_CLOEXEC", 1 << 2)]
assert sorted(head) == list(range(454)), [i for i in range(454) if i not in head]

# --- emit -------------------------------------------------------------------
PTN = {"PT_NONE": "None", "PT_INT8": "Int8", "PT_INT16": "Int16", "PT_INT32": "Int32", "PT_INT64": "Int64",
       "PT_UINT8": "Uint8", "PT_UINT16": "Uint16", "PT_UINT32": "Uint32", "PT_UINT64": "Uint64",
       "PT_CHARBUF": "CharBuf", "PT_BYTEBUF": "ByteBuf", "PT_ERRNO": "Errno", "PT_SOCKADDR": "SockAddr",
       "PT_SOCKTUPLE": "SockTuple", "PT_FD": "Fd", "PT_PID": "Pid", "PT_FDLIST": "FdList", "PT_FSPATH": "FsPath",
       "PT_SYSCALLID": "SyscallId", "PT_SIGTYPE": "SigType", "PT_RELTIME": "RelTime", "PT_ABSTIME": "AbsTime",
       "PT_PORT": "Port", "PT_L4PROTO": "L4Proto", "PT_SOCKFAMILY": "SockFamily", "PT_BOOL": "Bool",
       "PT_IPV4ADDR": "Ipv4Addr", "PT_DYN": "Dyn", "PT_FLAGS8": "Flags8", "PT_FLAGS16": "Flags16",
       "PT_FLAGS32": "Flags32", "PT_UID": "Uid", "PT_GID": "Gid", "PT_DOUBLE": "Double", "PT_SIGSET": "SigSet",
       "PT_CHARBUFARRAY": "CharBufArray", "PT_CHARBUF_PAIR_ARRAY": "CharBufPairArray", "PT_IPV4NET": "Ipv4Net",
       "PT_IPV6ADDR": "Ipv6Addr", "PT_IPV6NET": "Ipv6Net", "PT_IPADDR": "IpAddr", "PT_IPNET": "IpNet",
       "PT_MODE": "Mode", "PT_FSRELPATH": "FsRelPath", "PT_ENUMFLAGS8": "EnumFlags8",
       "PT_ENUMFLAGS16": "EnumFlags16", "PT_ENUMFLAGS32": "EnumFlags32"}
PFN = {"PF_NA": "Na", "PF_DEC": "Dec", "PF_HEX": "Hex", "PF_10_PADDED_DEC": "PaddedDec", "PF_ID": "Id",
       "PF_DIR": "Dir", "PF_OCT": "Oct"}

def cexpr(s, prefix):
    parts = [p.strip() for p in s.split("|")]
    return " | ".join(p for p in parts) if parts else "0"

used_tables = sorted({p["tbl"] for e in head.values() for p in e["params"] if p["tbl"] and not p["tbl"].endswith("_dynamic_param")})
o = []
o.append("// @generated by tools/gen_table.py: event ids, names, categories, flags and parameter\n"
         "// lists of the PPM event table (libs HEAD numbering). Do not edit by hand.\n")
o.append("use super::*;\n")
o.append("pub(crate) static EVENTS: [EventInfo; EVENT_MAX as usize] = [")
for eid in range(454):
    e = head[eid]
    ps = []
    for p in e["params"]:
        aux = "Aux::None"
        if p["tbl"]:
            if p["tbl"].endswith("_dynamic_param"):
                aux = "Aux::Dyn(DynKind::%s)" % {"sockopt_dynamic_param": "Sockopt", "ptrace_dynamic_param": "Ptrace",
                                                 "bpf_dynamic_param": "Bpf", "keyctl_dynamic_param": "Keyctl"}[p["tbl"]]
            else:
                aux = "Aux::Flags(&flagdata::%s)" % p["tbl"].upper()
        elif p["dirfd"] is not None:
            aux = "Aux::DirFd(%d)" % p["dirfd"]
        ps.append('p("%s", ParamType::%s, Fmt::%s, %s)' % (p["name"], PTN[p["ty"]], PFN[p["fmt"]], aux))
    cat = cexpr(e["cat"], "EC")
    fl = cexpr(e["flags"], "EF")
    o.append("    // %d %s\n    EventInfo { id: %d, name: \"%s\", dir: %s, category: %s, flags: %s, params: &[%s] }," % (
        eid, e["enum"].replace("PPME_", ""), eid, e["name"], "Dir::Exit" if eid % 2 else "Dir::Enter", cat, fl, ", ".join(ps)))
o.append("];\n")
names = {}
for eid in range(454):
    n = head[eid]["name"]
    if n == "NA" or "EF_UNUSED" in head[eid]["flags"]: continue
    names.setdefault(n, []).append(eid)
o.append("/// Event names (sorted) with every id (enter and exit, all versions) carrying that name.")
o.append("pub(crate) static NAME_IDS: &[(&str, &[u16])] = &[")
for n in sorted(names):
    o.append('    ("%s", &%s),' % (n, names[n]))
o.append("];\n")
o.append("/// PPM_SC syscall codes and names (used by generic events).")
o.append("pub(crate) static SYSCALL_NAMES: &[(u16, &str)] = &[")
for n, c in sc:
    o.append('    (%d, "%s"),' % (c, n))
o.append("];")
open(os.path.join(out, "data.rs"), "w").write("\n".join(o) + "\n")

fo = ["// @generated by tools/gen_table.py: PPM flag/enum names and values. Do not edit by hand.\n",
      "use super::FlagTable;\n"]
for tname in sorted(set(used_tables) | {"file_flags", "clone_flags", "socket_families", "execve_flags", "chmod_mode", "bpf_commands", "ptrace_requests"}):
    vals = flag_tables[tname]
    fo.append("pub static %s: FlagTable = FlagTable { name: \"%s\", entries: &[%s] };" % (
        tname.upper(), tname, ", ".join('("%s", %d)' % (n, v) for n, v in vals)))
open(os.path.join(out, "flagdata.rs"), "w").write("\n".join(fo) + "\n")
print("events", len(head), "names", len(names), "tables", len(used_tables))

# --- PPM constants used by parsers (open flags, clone flags, exe flags, …) ---
PREFIXES = ["PPM_O_", "PPM_CL_", "PPM_EXE_", "PPM_AF_", "PPM_FD_", "PPM_FCNTL_", "PPM_S_",
            "PPM_AT_", "PPM_PR_", "PPM_SOCKOPT_", "PPM_RLIMIT_", "PPM_SHUT_", "PPM_PTRACE_",
            "PPM_BPF_", "PPM_RESOLVE_", "PPM_MFD_", "PPM_PIDFD_", "PPM_DELETE_", "PPM_MS_", "PPM_MNT_",
            "PPM_CLOSE_RANGE_"]
co = ["// @generated by tools/gen_table.py: PPM constant values (scap encodings). Do not edit by hand.\n",
]
seen = set()
for name, expr in defines.items():
    if not any(name.startswith(p) for p in PREFIXES) or name in seen:
        continue
    try:
        v = ev(expr)
    except Exception:
        continue
    if not isinstance(v, int):
        continue
    seen.add(name)
    rn = name[len("PPM_"):].upper()
    if v < 0:
        co.append("pub const %s: i64 = %d;" % (rn, v))
    else:
        co.append("pub const %s: u32 = %d;" % (rn, v & 0xFFFFFFFF))
co.append("pub const CLOSE_RANGE_UNSHARE: u32 = 2;")
co.append("pub const CLOSE_RANGE_CLOEXEC: u32 = 4;")
open(os.path.join(out, "..", "ppm.rs"), "w").write("\n".join(co) + "\n")
print("constants", len(seen))
