#!/usr/bin/env bash
# README command two: the whole test suite, on a fresh machine, as root.
# Installs what is missing (apt packages, npm dependencies, the Go build of the test control
# plane), then type-checks, lints and runs unit, integration and end-to-end tests.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
[[ $(id -u) -eq 0 ]] || { echo "test: run as root (integration tests start containerd)" >&2; exit 1; }
bash hack/install-deps.sh
bash hack/build-images.sh .run/images >/dev/null
if [[ -x test/cluster/build.sh ]] && compgen -G "test/e2e/*.test.ts" >/dev/null; then
  bash test/cluster/build.sh
fi
npm test
