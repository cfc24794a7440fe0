#!/usr/bin/env bash
# Build the two local images tskubelet's tests run, from the static busybox of the host:
#
#   OUTDIR/pause.tar    docker-archive, ref tskubelet.local/pause:3.9     entrypoint /bin/sleep infinity
#   OUTDIR/busybox.tar  docker-archive, ref tskubelet.local/busybox:1.35  cmd /bin/sh
#
# usage: hack/build-images.sh [OUTDIR]        (default: <repo>/.run/images)
#        hack/build-images.sh --force [OUTDIR]
#
# Nothing is pulled: the rootfs is /bin/busybox (package busybox-static) plus its applet
# links, /etc/passwd and /etc/group (root, nobody 65534), /tmp and /var/www.
# Cached: when both tarballs exist and are newer than this script and than /bin/busybox,
# the script does nothing. Concurrent runs on the same OUTDIR are serialised with flock.
set -euo pipefail

readonly PAUSE_REF="tskubelet.local/pause:3.9"
readonly BUSYBOX_REF="tskubelet.local/busybox:1.35"
readonly PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

die() { echo "build-images: error: $*" >&2; exit 1; }

script="$(readlink -f "${BASH_SOURCE[0]}")"
repo_root="$(cd "$(dirname "$script")/.." && pwd)"

force=0
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$script"; exit 0; fi
outdir="${1:-$repo_root/.run/images}"

for tool in umoci skopeo flock tar; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run hack/install-deps.sh)"
done
busybox_bin=/bin/busybox
[[ -x "$busybox_bin" ]] || die "$busybox_bin not found (package busybox-static; run hack/install-deps.sh)"
# A dynamically linked busybox would need its libraries in the image too.
if command -v file >/dev/null 2>&1 && ! file -L "$busybox_bin" | grep -q 'statically linked'; then
  die "$busybox_bin is not statically linked (install busybox-static)"
fi

mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

up_to_date() {
  local t
  ((force == 0)) || return 1
  for t in "$outdir/pause.tar" "$outdir/busybox.tar"; do
    [[ -s "$t" && "$t" -nt "$script" && "$t" -nt "$busybox_bin" ]] || return 1
  done
}

up_to_date && exit 0

exec 9>"$outdir/.build.lock"
flock 9
# Someone else may have built them while we waited for the lock.
up_to_date && exit 0

work="$(mktemp -d /tmp/tskubelet-images.XXXXXX)"
trap 'rm -rf "$work"' EXIT
log="$work/build.log"

run() {
  if ! "$@" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "command failed: $*"
  fi
}

# Does this busybox's sleep take "infinity"? (It does from 1.31 on with float support.)
# Exit code 124 means timeout had to stop it, i.e. "infinity" was accepted.
sleep_arg=infinity
sleep_rc=0
timeout 0.3 "$busybox_bin" sleep infinity 2>/dev/null || sleep_rc=$?
((sleep_rc == 124)) || sleep_arg=2147483647

layout="$work/oci"
bundle="$work/bundle"
run umoci init --layout "$layout"
run umoci new --image "$layout:base"
rootless=()
[[ "$(id -u)" == 0 ]] || rootless=(--rootless) # files then still get uid/gid 0 in the layer
run umoci unpack "${rootless[@]}" --image "$layout:base" "$bundle"

rootfs="$bundle/rootfs"
install -d -m 0755 "$rootfs/bin" "$rootfs/sbin" "$rootfs/usr/bin" "$rootfs/usr/sbin" \
  "$rootfs/etc" "$rootfs/root" "$rootfs/var/www" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
install -d -m 1777 "$rootfs/tmp"
install -m 0755 "$busybox_bin" "$rootfs/bin/busybox"
# One link per applet, where busybox itself would install it (bin/, sbin/, usr/bin/, usr/sbin/).
while IFS= read -r applet; do
  case "$applet" in
    bin/busybox | */ | '' ) continue ;;
    */*) ;;
    *) continue ;; # top-level names such as linuxrc
  esac
  [[ -e "$rootfs/$applet" || -L "$rootfs/$applet" ]] || ln -s /bin/busybox "$rootfs/$applet"
done < <("$busybox_bin" --list-full)
[[ -L "$rootfs/bin/sh" && -L "$rootfs/bin/sleep" ]] || die "busybox --list-full gave no sh/sleep applets"

cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
GROUP
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
printf '<html><body>tskubelet test image</body></html>\n' >"$rootfs/var/www/index.html"

run umoci repack --image "$layout:base" "$bundle"
run umoci config --image "$layout:base" --config.env "$PATH_ENV" --config.workingdir /
run umoci config --image "$layout:base" --tag pause \
  --config.entrypoint /bin/sleep --config.entrypoint "$sleep_arg" \
  --history.created_by "tskubelet hack/build-images.sh: pause"
run umoci config --image "$layout:base" --tag busybox \
  --config.cmd /bin/sh \
  --history.created_by "tskubelet hack/build-images.sh: busybox"

export_image() { # tag ref file
  local tag="$1" ref="$2" dest="$outdir/$3"
  rm -f "$dest.tmp"
  # --insecure-policy: both ends are local files, and a fresh machine may lack policy.json.
  run skopeo --insecure-policy copy --quiet "oci:$layout:$tag" "docker-archive:$dest.tmp:$ref"
  # Verify: the archive reads back with the right name, OS and entrypoint/cmd.
  local inspect
  inspect="$(skopeo --insecure-policy inspect --config "docker-archive:$dest.tmp" 2>>"$log")" \
    || die "skopeo cannot read back $dest.tmp"
  [[ "$inspect" == *'"os": "linux"'* ]] || die "$dest.tmp: config has no os linux"
  tar -xOf "$dest.tmp" manifest.json | grep -qF "\"$ref\"" || die "$dest.tmp: manifest.json lacks $ref"
  mv -f "$dest.tmp" "$dest"
}
export_image pause "$PAUSE_REF" pause.tar
export_image busybox "$BUSYBOX_REF" busybox.tar
echo "build-images: wrote $outdir/pause.tar ($PAUSE_REF) and $outdir/busybox.tar ($BUSYBOX_REF)" >&2
