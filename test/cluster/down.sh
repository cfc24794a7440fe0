#!/usr/bin/env bash
# Stop the test control plane that up.sh started and remove its data dir.
#
#   test/cluster/down.sh [--data-dir DIR] [--keep-data]
#
#   --data-dir DIR  the dir given to up.sh (default $KTP_DATA_DIR or
#                   test/cluster/.data)
#   --keep-data     stop the processes but keep the dir (logs, etcd, PKI)
#
# Only the processes recorded in DIR/pids (including a metrics-server that
# metrics-server.sh started) are signalled (TERM, then KILL after
# 20 s); a recorded pid whose process no longer runs our command is skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data_dir="${KTP_DATA_DIR:-$here/.data}"
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data-dir) data_dir="${2:?--data-dir needs a value}"; shift 2 ;;
    --data-dir=*) data_dir="${1#*=}"; shift ;;
    --keep-data) keep=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "down.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [[ ! -d "$data_dir" ]]; then
  echo "down.sh: $data_dir does not exist; nothing to do"
  exit 0
fi
data_dir="$(cd "$data_dir" && pwd)"
if [[ ! -e "$data_dir/.kube-test-plane" ]]; then
  echo "down.sh: $data_dir was not made by up.sh (no .kube-test-plane marker); refusing" >&2
  exit 1
fi
pids="$data_dir/pids"

# pid_of <name>: the recorded pid if that process still runs <name> (as
# `kube-test-plane <name>`, or a binary called <name>: metrics-server).
pid_of() {
  local f="$pids/$1.pid" pid argv=()
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  mapfile -d '' argv 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [[ "${argv[1]:-}" == "$1" || "$(basename "${argv[0]:-}")" == "$1" ]] || return 1
  echo "$pid"
}

# Clients first, etcd last. metrics-server (metrics-server.sh) if it runs.
for name in metrics-server kube-scheduler kube-controller-manager kube-apiserver etcd; do
  if pid="$(pid_of "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do
      if ! pid_of "$name" >/dev/null; then break; fi
      sleep 0.1
    done
    if pid_of "$name" >/dev/null; then
      echo "down.sh: $name (pid $pid) ignored TERM; sending KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    echo "down.sh: stopped $name (pid $pid)"
  fi
  rm -f "$pids/$name.pid"
done

if [[ $keep -eq 1 ]]; then
  echo "down.sh: kept $data_dir"
else
  rm -rf -- "$data_dir"
  echo "down.sh: removed $data_dir"
fi
