#!/usr/bin/env bash
# The metric filters of metric-filters.cfn.json, with the AWS CLI (use one or the other).
# Custom metrics in namespace "Saker" from the alert JSON in the log group:
#   Alerts{Rule,Priority}      every alert, one metric per rule and priority
#   TerminalShellInContainer   the tutorial's kubectl-exec test rule
#   CriticalAlerts             Emergency, Alert and Critical priorities
#
#   LOG_GROUP=falco AWS_REGION=us-east-1 deploy/aws/metric-filters.sh
set -euo pipefail
LOG_GROUP="${LOG_GROUP:-falco}"

aws logs create-log-group --log-group-name "$LOG_GROUP" 2>/dev/null || true
aws logs put-retention-policy --log-group-name "$LOG_GROUP" --retention-in-days 30

aws logs put-metric-filter \
  --log-group-name "$LOG_GROUP" \
  --filter-name saker-alerts-by-rule \
  --filter-pattern '{ ($.rule = *) && ($.priority = *) }' \
  --metric-transformations \
    'metricNamespace=Saker,metricName=Alerts,metricValue=1,unit=Count,dimensions={Rule=$.rule,Priority=$.priority}'

aws logs put-metric-filter \
  --log-group-name "$LOG_GROUP" \
  --filter-name saker-terminal-shell-in-container \
  --filter-pattern '{ $.rule = "Terminal shell in container" }' \
  --metric-transformations \
    'metricNamespace=Saker,metricName=TerminalShellInContainer,metricValue=1,defaultValue=0,unit=Count'

aws logs put-metric-filter \
  --log-group-name "$LOG_GROUP" \
  --filter-name saker-critical-alerts \
  --filter-pattern '{ ($.priority = "Emergency") || ($.priority = "Alert") || ($.priority = "Critical") }' \
  --metric-transformations \
    'metricNamespace=Saker,metricName=CriticalAlerts,metricValue=1,defaultValue=0,unit=Count'

aws cloudwatch put-metric-alarm \
  --alarm-name saker-terminal-shell-in-container \
  --alarm-description "A shell with a terminal was started in a container (Saker rule 'Terminal shell in container')." \
  --namespace Saker --metric-name TerminalShellInContainer \
  --statistic Sum --period 300 --evaluation-periods 1 --threshold 1 \
  --comparison-operator GreaterThanOrEqualToThreshold --treat-missing-data notBreaching

echo "metric filters on $LOG_GROUP: $(aws logs describe-metric-filters --log-group-name "$LOG_GROUP" \
  --query 'metricFilters[].filterName' --output text)"
