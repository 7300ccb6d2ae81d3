# Overhead inside the VM: getpid and open/close storms without saker and with
# `saker run` (built-in rules) in each attach mode, interleaved, best of 5. Run with one vCPU (bench/run sets VM_SMP=1): with two, saker's
# consumer on the other vCPU takes host CPU from the storm's vCPU under TCG and inflates its
# guest-clocked CPU time.
# Prints "BENCH <state> <storm> <ns per op>"; bench/run computes the ratios.
: "${SAKER_ARG:=fexit,fexit-nopf,tracepoint,generic}"
NP=1000000 NO=50000
: > /tmp/oc
measure() { # STATE
  bp=0 bo=0
  for r in 1 2 3 4 5; do
    p=$(/bin/storm getpid $NP | cut -d' ' -f1); o=$(/bin/storm openclose $NO /tmp/oc | cut -d' ' -f1)
    if [ $bp = 0 ] || [ $p -lt $bp ]; then bp=$p; fi
    if [ $bo = 0 ] || [ $o -lt $bo ]; then bo=$o; fi
  done
  echo "BENCH $1 getpid $((bp / NP))"
  echo "BENCH $1 openclose $((bo / NO))"
}
measure base
# A state "<mode>-nopf" is <mode> with the in-kernel prefilter off.
for mode in $(echo "$SAKER_ARG" | tr , ' '); do
  pf=true
  case $mode in *-nopf) pf=false ;; esac
  saker run -o engine.modern_ebpf.attach=${mode%-nopf} -o engine.modern_ebpf.prefilter=$pf > /dev/null 2> /tmp/b.err &
  pid=$!
  i=0; while ! grep -q "saker: started" /tmp/b.err && kill -0 $pid 2>/dev/null && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done
  if grep -q "saker: started" /tmp/b.err; then
    measure "$mode"
    kill -INT $pid; wait $pid
    grep "stopped" /tmp/b.err | sed "s/^/BENCHINFO $mode /"
  else
    echo "BENCHFAIL $mode $(tail -1 /tmp/b.err)"
  fi
  measure base
done
