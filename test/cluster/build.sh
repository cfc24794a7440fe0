#!/usr/bin/env bash
# Build the test control plane: one multi-call binary, bin/kube-test-plane,
# holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the
# upstream kubelet; and bin/metrics-server (module metrics-server/, for
# `kubectl top`). Installs nothing; needs only `go` (Go >= 1.24.4).
#
#   test/cluster/build.sh [TARGET...]          build what is not up to date
#   test/cluster/build.sh --force [TARGET...]  relink even if it looks up to date
#
# TARGET: kube-test-plane, metrics-server (default: both).
# Env: GO (go binary to use), KTP_OUT (default bin/kube-test-plane),
# KTP_METRICS_SERVER_OUT (default bin/metrics-server).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

force=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --force|-f) force=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    kube-test-plane|metrics-server) targets+=("$arg") ;;
    *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(kube-test-plane metrics-server)

# up_to_date <out> <inputs...>: <out> exists and is newer than every input.
up_to_date() {
  local out="$1" f
  shift
  [[ $force -eq 0 && -x "$out" ]] || return 1
  for f in "$@"; do
    if [[ "$f" -nt "$out" ]]; then return 1; fi
  done
  echo "build.sh: $out is up to date (newer than $*); nothing to do"
}

GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
  else echo "build.sh: no go toolchain found (set GO=/path/to/go)" >&2; exit 1
  fi
fi

# The Kubernetes version comes from go.mod so that the binary reports it (the
# kubectl dispatcher on our machines picks its client from the server version).
kube_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' go.mod)"
if [[ ! "$kube_version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+ ]]; then
  echo "build.sh: cannot read the k8s.io/kubernetes version from go.mod" >&2
  exit 1
fi
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kube_version"
  ldflags+=" -X $pkg.gitMajor=$major"
  ldflags+=" -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=$build_date"
done

# go_build <module dir> <out> <what> <ldflags>
go_build() {
  local dir="$1" out="$2" what="$3" flags="$4" start elapsed
  [[ "$out" == /* ]] || out="$here/$out"
  mkdir -p "$(dirname "$out")"
  echo "build.sh: building $out ($what) with $("$GO" version)"
  start=$SECONDS
  # Static, like upstream's server binaries; -mod=readonly: go.sum must be complete.
  (cd "$dir" && CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
    "$GO" build -mod=readonly -buildvcs=false -trimpath -ldflags="$flags" -o "$out.tmp" .)
  mv -f "$out.tmp" "$out"
  elapsed=$((SECONDS - start))
  printf 'build.sh: built %s (%s MiB) in %dm%02ds\n' \
    "$out" "$(( $(stat -c %s "$out") / 1048576 ))" $((elapsed / 60)) $((elapsed % 60))
}

for target in "${targets[@]}"; do
  case "$target" in
    kube-test-plane)
      out="${KTP_OUT:-$here/bin/kube-test-plane}"
      up_to_date "$out" go.mod go.sum main.go build.sh ||
        go_build "$here" "$out" "kubernetes $kube_version" "$ldflags"
      ;;
    metrics-server)
      # A module of its own: metrics-server needs newer grpc, x/*, otel and
      # prometheus modules than the control plane pins (see metrics-server/main.go).
      out="${KTP_METRICS_SERVER_OUT:-$here/bin/metrics-server}"
      ms_version="$(awk '$1 == "sigs.k8s.io/metrics-server" && $2 ~ /^v/ {print $2; exit}' metrics-server/go.mod)"
      # As upstream's Makefile: its version goes into client-go's version package.
      ms_ldflags="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$ms_version"
      ms_ldflags+=" -X k8s.io/client-go/pkg/version.buildDate=$build_date"
      up_to_date "$out" metrics-server/go.mod metrics-server/go.sum metrics-server/main.go build.sh ||
        go_build "$here/metrics-server" "$out" "sigs.k8s.io/metrics-server $ms_version" "$ms_ldflags"
      ;;
  esac
done
