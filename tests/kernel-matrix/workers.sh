# engine.workers 1 vs 2 live, inside the VM (bench/run's `vmworkers` part boots it with VM_SMP=4):
# saker's CPU per event (user + system of all its threads, USER_HZ ticks) during open/close storms
# of 2 processes, the prefilter off so every event reaches the consumer; the two settings
# alternate, 3 rounds. Under TCG only the ratio between the settings means anything.
# Prints "WORKERS <n> <saker CPU ns per event> <events seen> <dropped>".
NO=${WORKERS_PAIRS:-30000}
: > /tmp/oc
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in 1 2 3; do
  for n in 1 2; do
    saker run -o engine.workers=$n -o engine.modern_ebpf.prefilter=false > /dev/null 2> /tmp/w.err &
    pid=$!
    i=0; while ! grep -q "saker: started" /tmp/w.err && kill -0 $pid 2>/dev/null && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done
    if ! grep -q "saker: started" /tmp/w.err; then
      echo "WORKERSFAIL $n $(tail -1 /tmp/w.err)"; continue
    fi
    sleep 2
    c0=$(ticks $pid)
    /bin/storm openclose $NO /tmp/oc > /dev/null & s1=$!
    /bin/storm openclose $NO /tmp/oc > /dev/null & s2=$!
    wait $s1 $s2
    sleep 2
    c1=$(ticks $pid)
    kill -INT $pid; wait $pid
    set -- $(sed -n 's/.*Syscall events: \([0-9]*\) seen, \([0-9]*\) dropped.*/\1 \2/p' /tmp/w.err)
    seen=${1:-0} dropped=${2:-0}
    if [ "$seen" -gt 0 ]; then
      echo "WORKERS $n $(( (c1 - c0) * 10000000 / seen )) $seen $dropped"
    else
      echo "WORKERSFAIL $n no stop line: $(tail -1 /tmp/w.err)"
    fi
  done
done
