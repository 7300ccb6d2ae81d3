#!/bin/bash
# Kernel-side profiles of the live overhead (root; see kernel.md).
#   bench/profiles/kernel-profile.sh [SAKER]
# For getpid and open/close storms, without saker, with the default config
# (generic sys_exit dispatch, needed for the module syscalls here) and with
# engine.modern_ebpf.generic_fallback=false (per-syscall tracepoints), it
# records `perf record -a -g` and writes the storm process's top symbols
# (self and children, % of the storm's samples) to kernel-<config>-<storm>.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$(dirname "$HERE")")
SAKER=${1:-${SAKER:-${CARGO_TARGET_DIR:-$ROOT/target}/release/saker}}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
gcc -O2 -o "$TMP/storm" "$ROOT/bench/storm.c"
touch "$TMP/target"
old=$(cat /proc/sys/kernel/bpf_stats_enabled)
echo 0 > /proc/sys/kernel/bpf_stats_enabled
trap 'echo "$old" > /proc/sys/kernel/bpf_stats_enabled; rm -rf "$TMP"' EXIT

links() { bpftool link show 2>/dev/null | grep -cE '^[0-9]+:' || true; }
# Other people's probes on a shared machine would pollute the profile: wait
# until none is attached (up to 5 min).
wait_clean() {
    for _ in $(seq 300); do [ "$(links)" = 0 ] && return 0; sleep 1; done
    echo "warning: foreign BPF links stay attached" >&2
}

profile() { # config storm [expected links]
    local out="$HERE/kernel-$1-$2.txt" args
    case $2 in
        getpid) args=(getpid 3000000) ;;
        openclose) args=(openclose 300000 "$TMP/target") ;;
    esac
    for _ in 1 2 3; do
        [ "${3:-0}" = 0 ] && wait_clean
        perf record -q -o "$TMP/perf.data" -a -g -- "$TMP/storm" "${args[@]}" > "$TMP/ns" 2>/dev/null
        [ "$(links)" = "${3:-0}" ] && break
        echo "foreign BPF links appeared during the $1 $2 profile: again" >&2
    done
    {
        echo "# $1 config, $2 storm: $(awk -v n="${args[1]}" '{printf "%.0f ns/op thread CPU", $1/n}' "$TMP/ns")"
        echo "# perf record -a -g; samples of the storm process only (comm storm), % of them"
        echo "# self"
        perf report -i "$TMP/perf.data" --comm storm --percentage relative --no-children \
            --stdio -g none --percent-limit 0.8 2>/dev/null | grep -v '^#' | grep -v '^$' | head -45
        echo "# children (inclusive)"
        perf report -i "$TMP/perf.data" --comm storm --percentage relative --children \
            --stdio -g none --percent-limit 1.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -45
    } > "$out"
    echo "wrote $out"
}

with_saker() { # config args...
    local cfg=$1; shift
    wait_clean
    "$SAKER" run "$@" > /dev/null 2> "$TMP/saker.err" &
    local pid=$!
    for _ in $(seq 120); do grep -q 'saker: started' "$TMP/saker.err" && break; sleep 0.5; done
    sleep 0.5
    local n; n=$(links)
    profile "$cfg" getpid "$n"
    profile "$cfg" openclose "$n"
    kill -INT "$pid"; wait "$pid" || true
}

profile none getpid
profile none openclose
with_saker default
with_saker classic -o engine.modern_ebpf.generic_fallback=false
