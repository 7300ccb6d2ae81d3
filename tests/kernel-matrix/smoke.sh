# Minimal check: the probe loads with the built-in rules and reports a shell.
saker run --duration 20 -o json_output=true > /tmp/alerts.json 2> /tmp/saker.err &
sleep 12
cat /etc/shadow > /dev/null
behave module
sleep 10
echo "--- stderr"; cat /tmp/saker.err
echo "--- alerts"; cat /tmp/alerts.json
