#!/usr/bin/env bash
# The differential suite: the pods of test/differential/rows.ts on tskubelet and on the upstream
# kubelet, side by side on one test control plane; report in test-artifacts/differential.md.
# As root, after hack/install-deps.sh (hack/test.sh installs the same packages).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x test/cluster/bin/kube-test-plane ]]; then
  test/cluster/build.sh
fi
npx tsc -p .
node scripts/copy-assets.mjs
status=0
node --test --test-reporter=spec dist/test/differential/normalize.test.js dist/test/differential/status.test.js || status=$?
echo "report: test-artifacts/differential.md (and .json; kubelet logs in test-artifacts/differential-*.log)"
exit "$status"
