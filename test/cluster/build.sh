#!/usr/bin/env bash
# Build the test control plane: one multi-call binary, bin/kube-test-plane,
# holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the
# upstream kubelet. Installs nothing; needs only `go` (Go >= 1.24).
#
#   test/cluster/build.sh           build unless bin/kube-test-plane is up to date
#   test/cluster/build.sh --force   relink even if it looks up to date
#
# Env: GO (go binary to use), KTP_OUT (output path, default bin/kube-test-plane).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

force=0
for arg in "$@"; do
  case "$arg" in
    --force|-f) force=1 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

out="${KTP_OUT:-$here/bin/kube-test-plane}"
inputs=(go.mod go.sum main.go build.sh)

if [[ $force -eq 0 && -x "$out" ]]; then
  stale=0
  for f in "${inputs[@]}"; do
    if [[ "$f" -nt "$out" ]]; then stale=1; break; fi
  done
  if [[ $stale -eq 0 ]]; then
    echo "build.sh: $out is up to date (newer than ${inputs[*]}); nothing to do"
    exit 0
  fi
fi

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

mkdir -p "$(dirname "$out")"
echo "build.sh: building $out (kubernetes $kube_version) with $("$GO" version)"
start=$SECONDS
# Static, like upstream's server binaries; -mod=readonly: go.sum must be complete.
CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
  "$GO" build -mod=readonly -buildvcs=false -trimpath -ldflags="$ldflags" -o "$out.tmp" .
mv -f "$out.tmp" "$out"
elapsed=$((SECONDS - start))
printf 'build.sh: built %s (%s MiB) in %dm%02ds\n' \
  "$out" "$(( $(stat -c %s "$out") / 1048576 ))" $((elapsed / 60)) $((elapsed % 60))
