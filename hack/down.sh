#!/usr/bin/env bash
# Stops what hack/up.sh started and cleans up: tskubelet, its pods, the private containerd,
# the CNI bridge, network namespaces, pod cgroups, mounts, and .run/.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="$repo/.run"
[[ $(id -u) -eq 0 ]] || { echo "down: run as root" >&2; exit 1; }
if [[ -f "$run/tskubelet.pid" ]]; then
  pid=$(cat "$run/tskubelet.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$run/tskubelet.pid"
fi
if [[ -d "$run/containerd" ]]; then bash "$repo/hack/containerd.sh" stop "$run/containerd"; fi
rm -rf "$run/kubelet" "$run/pod-logs" "$run/tskubelet.log"
echo "down: stopped tskubelet and containerd; cleaned up .run/ (images kept in .run/images)" >&2
