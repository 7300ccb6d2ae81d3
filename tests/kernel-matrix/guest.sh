# The live test set run inside each kernel-matrix VM (busybox sh). It only
# performs and records; matrix.py checks the results on the host.
# Output sections: "== NAME" lines, then the section's content.
set -u
SAKER=/bin/saker
: "${SAKER_ARG:=}"
ATTACH=${SAKER_ARG:-auto}

started() { # FILE PID: wait until saker reports it started (or exits)
  i=0
  while ! grep -q "saker: started" "$1" && kill -0 "$2" 2>/dev/null && [ $i -lt 300 ]; do
    sleep 1; i=$((i + 1))
  done
}

echo "== kernel"
uname -r

# Three consumers of the probe at once: the built-in rules, the upstream
# falco_rules.yaml, and a capture for the record -> replay round trip.
$SAKER run -o json_output=true -o engine.modern_ebpf.attach=$ATTACH > /tmp/builtin.json 2> /tmp/builtin.err &
B=$!
$SAKER run -r /rules/falco_rules.yaml -o json_output=true -o engine.modern_ebpf.attach=$ATTACH \
  > /tmp/upstream.json 2> /tmp/upstream.err &
U=$!
$SAKER capture -w /tmp/rec.scap -o engine.modern_ebpf.attach=$ATTACH 2> /tmp/capture.err &
C=$!
t0=$(date +%s)
started /tmp/builtin.err $B
started /tmp/upstream.err $U
sleep 3 # capture prints nothing when it starts; it loads no rules, so it is up before the others
echo "== startup_seconds"
echo $(( $(date +%s) - t0 ))

echo "== behaviours"
# Absolute paths: busybox sh runs applets through /proc/self/exe otherwise,
# and the process would be named "exe".
cp /bin/busybox /tmp/sh && /tmp/sh -c 'exit 0'; echo "shell_unusual_location"
/bin/cat /etc/shadow > /dev/null; echo "read_shadow"
/bin/sh -c 'echo x > /etc/saker-matrix'; echo "write_below_etc"
/bin/ln -s /etc/shadow /tmp/shadow-link; echo "symlink_sensitive"
/bin/behave setns; echo "setns"
/bin/unshare -u /bin/true; echo "unshare"
/bin/touch /tmp/suid && /bin/chmod u+s /tmp/suid; echo "chmod_setuid"
/bin/nc -l -p 4444 > /dev/null &
L=$!
sleep 1
/bin/nc 127.0.0.1 4444 -e /bin/true; echo "connect_reverse_shell"
kill $L 2>/dev/null
/bin/behave ptrace; echo "ptrace"
/bin/behave memfd-exec; echo "memfd_exec"
/bin/behave module; echo "module_load"
sleep 3
kill -INT $B $U $C
wait $B $U $C

for f in builtin upstream capture; do
  echo "== $f.err"
  cat /tmp/$f.err
done
echo "== builtin.json"
cat /tmp/builtin.json
echo "== upstream.json"
cat /tmp/upstream.json

echo "== replay.json"
ls -la /tmp/rec.scap >&2
$SAKER replay --no-progress -o json_output=true /tmp/rec.scap 2> /tmp/replay.err
echo "== replay.err"
cat /tmp/replay.err

# Without kernel BTF, saker must stop at once with one line naming the kernel.
echo "== no_btf"
mount -t tmpfs none /sys/kernel/btf
$SAKER run --duration 1 2>&1
echo "exit=$?"
umount /sys/kernel/btf

echo "== probe_tests"
cd /tmp && /bin/live --include-ignored --test-threads=1 2>&1
