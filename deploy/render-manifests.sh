#!/usr/bin/env bash
# Regenerates deploy/manifests/saker.yaml (plain manifests for `kubectl apply -f`) from the chart
# with default values, using the same offline Helm renderer as tests/deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 deploy/render.py --plain-manifests > deploy/manifests/saker.yaml.tmp
mv deploy/manifests/saker.yaml.tmp deploy/manifests/saker.yaml
echo "wrote deploy/manifests/saker.yaml"
