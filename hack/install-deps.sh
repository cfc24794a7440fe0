#!/usr/bin/env bash
# Install what tskubelet's build and tests need, and nothing that is already there.
#
#   hack/install-deps.sh            system packages (apt, as root) + node_modules (npm ci)
#   hack/install-deps.sh --system   only the system packages
#   hack/install-deps.sh --node     only node_modules
#
# Idempotent: on a machine that has everything it runs no apt and no npm at all.
# Set TSK_SKIP_PACKAGES="chromium ..." to leave some packages out (e.g. on a small dev box).
set -euo pipefail

readonly PACKAGES=(
  containerd runc containernetworking-plugins busybox-static umoci skopeo
  iproute2 iptables golang-cfssl chromium
  docker-registry apache2-utils
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "install-deps: error: $*" >&2; exit 1; }
say() { echo "install-deps: $*" >&2; }

is_installed() {
  # "install ok installed" is the only state that means the files are really there.
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

install_system() {
  command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian/Ubuntu only"
  local skip=" ${TSK_SKIP_PACKAGES:-} " missing=() p
  for p in "${PACKAGES[@]}"; do
    [[ "$skip" == *" $p "* ]] && continue
    is_installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  if [[ "$(id -u)" != 0 ]]; then
    die "missing packages: ${missing[*]}; run this script as root (or: sudo apt-get install ${missing[*]})"
  fi
  say "installing: ${missing[*]}"
  local log
  log="$(mktemp /tmp/tskubelet-apt.XXXXXX.log)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get -o DPkg::Lock::Timeout=300 update -qq >"$log" 2>&1; then
    cat "$log" >&2; die "apt-get update failed (log: $log)"
  fi
  if ! apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2; die "apt-get install ${missing[*]} failed (log: $log)"
  fi
  for p in "${missing[@]}"; do
    is_installed "$p" || die "package $p is still not installed after apt-get (log: $log)"
  done
  rm -f "$log"
  say "installed ${#missing[@]} package(s)"
}

install_node() {
  command -v npm >/dev/null 2>&1 || die "npm not found: Node.js 20 or newer is required"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  ((major >= 20)) || die "Node.js $(node --version) is too old: 20 or newer is required"
  cd "$repo_root"
  [[ -f package-lock.json ]] || die "no package-lock.json in $repo_root"
  # npm writes node_modules/.package-lock.json on every install: it is the stamp to compare with.
  local stamp="node_modules/.package-lock.json"
  if [[ -d node_modules && -f "$stamp" && ! package-lock.json -nt "$stamp" ]]; then
    return 0
  fi
  say "npm ci"
  local log
  log="$(mktemp /tmp/tskubelet-npm.XXXXXX.log)"
  if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    tail -n 40 "$log" >&2; die "npm ci failed (log: $log)"
  fi
  rm -f "$log"
  touch "$stamp"
}

case "${1:-all}" in
  all) install_system; install_node ;;
  --system) install_system ;;
  --node) install_node ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) die "unknown argument: $1 (use --system, --node or nothing)" ;;
esac
