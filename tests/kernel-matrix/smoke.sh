# Minimal check: the probe loads with the built-in rules and reports a behaviour.
saker run --duration 60 -o json_output=true $SMOKE_ARGS > /tmp/alerts.json 2> /tmp/saker.err &
pid=$!
i=0; while ! grep -q "saker: started" /tmp/saker.err && [ $i -lt 120 ] && kill -0 $pid 2>/dev/null; do sleep 1; i=$((i+1)); done
echo "started after ${i}s"
cat /etc/shadow > /dev/null
behave module
sleep 5; kill -INT $pid; wait
echo "--- stderr"; cat /tmp/saker.err
echo "--- alerts"; cat /tmp/alerts.json
