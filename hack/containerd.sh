#!/usr/bin/env bash
# A private containerd for tskubelet: its own config, root, state, socket and CNI network,
# all under one directory, so that tests and developers never touch a system containerd.
#
#   hack/containerd.sh start DIR [--bridge NAME] [--subnet CIDR] [--no-cni] [--images DIR]
#       Write DIR/config.toml (+ DIR/net.d/*.conflist), start containerd in the background,
#       wait for its socket, import tskubelet.local/{pause:3.9,busybox:1.35} into k8s.io (built
#       first by hack/build-images.sh if needed) and print the CRI endpoint
#       (unix://DIR/containerd.sock) on stdout.
#       Defaults: --bridge tskbr0 --subnet 10.244.0.0/24 --images <repo>/.run/images.
#   hack/containerd.sh stop DIR
#       Stop containerd, kill the containers and shims it left, tear down their CNI network
#       (iptables, netns, IPAM), unmount everything under DIR, delete the bridge, remove DIR.
#       Safe to run twice and after a start that failed half way.
#   hack/containerd.sh kill DIR       SIGKILL containerd only (containers and shims keep running)
#   hack/containerd.sh resume DIR     start containerd again on an existing DIR
#   hack/containerd.sh restart DIR    SIGTERM containerd, then resume
#   hack/containerd.sh status DIR     print "running PID" or "stopped"; exit 0 / 3
#   hack/containerd.sh clean-cgroups [NAME...]
#       Remove empty pod cgroup directories (default NAME: kubepods*) bottom-up, on every
#       mounted cgroup v1 hierarchy and on cgroup v2. Busy directories are left alone.
#
# Needs root. Logs go to DIR/containerd.log; progress messages to stderr.
set -euo pipefail

readonly CNI_BIN_DIR="${TSK_CNI_BIN_DIR:-/usr/lib/cni}"
readonly CNI_CACHE_DIR="/var/lib/cni"
readonly PAUSE_REF="tskubelet.local/pause:3.9"
readonly BUSYBOX_REF="tskubelet.local/busybox:1.35"
readonly START_TIMEOUT_S="${TSK_CONTAINERD_START_TIMEOUT:-30}"
readonly STOP_TIMEOUT_S="${TSK_CONTAINERD_STOP_TIMEOUT:-10}"
readonly MARKER="instance.env"

script="$(readlink -f "${BASH_SOURCE[0]}")"
hack_dir="$(dirname "$script")"
repo_root="$(dirname "$hack_dir")"
# containerd, its shims and the CNI plugins look for runc, iptables, ip... in PATH.
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"

die() { echo "containerd.sh: error: $*" >&2; exit 1; }
say() { [[ -n "${TSK_QUIET:-}" ]] || echo "containerd.sh: $*" >&2; }
warn() { echo "containerd.sh: warning: $*" >&2; }

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$script" >&2; exit "${1:-2}"; }

need_root() { [[ "$(id -u)" == 0 ]] || die "must run as root"; }

# now_ms: milliseconds since the epoch (bash 5 has EPOCHREALTIME).
now_ms() { local t="${EPOCHREALTIME/./}"; echo "${t:0:13}"; }

# abs_dir DIR: absolute, normalised path of DIR (which may not exist yet).
abs_dir() { realpath -m -- "$1"; }

# ---------------------------------------------------------------------------------------------
# processes

# pid_alive PID: true if PID exists and is not a zombie.
pid_alive() {
  local pid="$1" stat
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# pid_has_arg PID ARG: true if one of PID's command-line arguments is exactly ARG.
pid_has_arg() {
  local pid="$1" want="$2" a
  local -a args=()
  mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  for a in "${args[@]}"; do [[ "$a" == "$want" ]] && return 0; done
  return 1
}

# pid_arg_after PID FLAG: the argument that follows FLAG on PID's command line.
pid_arg_after() {
  local pid="$1" flag="$2" i
  local -a args=()
  mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    if [[ "${args[i]}" == "$flag" ]]; then echo "${args[i + 1]}"; return 0; fi
  done
  return 1
}

# pids_with_arg ARG [COMM_GLOB]: PIDs whose command line has the argument ARG.
pids_with_arg() {
  local want="$1" comm_glob="${2:-*}" p pid comm
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
    { read -r comm <"$p/comm"; } 2>/dev/null || continue
    # shellcheck disable=SC2053
    [[ "$comm" == $comm_glob ]] || continue
    pid_has_arg "$pid" "$want" && echo "$pid"
  done
  return 0
}

# descendants PID: all descendants of PID, deepest first.
descendants() {
  local root="$1" p pid stat ppid
  local -A parent_of=()
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    { read -r stat <"$p/stat"; } 2>/dev/null || continue
    stat="${stat##*) }"
    read -r _ ppid _ <<<"$stat"
    parent_of[$pid]="$ppid"
  done
  local -a frontier=("$root") found=()
  while ((${#frontier[@]} > 0)); do
    local -a next=()
    for pid in "${!parent_of[@]}"; do
      for p in "${frontier[@]}"; do
        if [[ "${parent_of[$pid]}" == "$p" ]]; then next+=("$pid"); break; fi
      done
    done
    found=("${next[@]}" "${found[@]}")
    frontier=("${next[@]}")
  done
  ((${#found[@]} == 0)) || printf '%s\n' "${found[@]}"
}

# wait_gone TIMEOUT_S PID...: wait until none of the PIDs is alive; false on timeout.
wait_gone() {
  local timeout_s="$1" deadline pid any
  shift
  deadline=$(($(now_ms) + timeout_s * 1000))
  while :; do
    any=0
    for pid in "$@"; do pid_alive "$pid" && { any=1; break; }; done
    ((any == 0)) && return 0
    (($(now_ms) < deadline)) || return 1
    sleep 0.05
  done
}

# ---------------------------------------------------------------------------------------------
# the instance directory

# load_instance DIR: set the globals describing the instance in DIR.
load_instance() {
  dir="$(abs_dir "$1")"
  sock="$dir/containerd.sock"
  config="$dir/config.toml"
  pidfile="$dir/containerd.pid"
  logfile="$dir/containerd.log"
  BRIDGE="" SUBNET="" NETNAME="" CNI=0 IMAGES=""
  if [[ -f "$dir/$MARKER" ]]; then
    local line key value
    while IFS= read -r line; do
      [[ "$line" =~ ^([A-Z]+)=(.*)$ ]] || continue
      key="${BASH_REMATCH[1]}" value="${BASH_REMATCH[2]}"
      case "$key" in
        BRIDGE) BRIDGE="$value" ;; SUBNET) SUBNET="$value" ;; NETNAME) NETNAME="$value" ;;
        CNI) CNI="$value" ;; IMAGES) IMAGES="$value" ;;
      esac
    done <"$dir/$MARKER"
  fi
}

# daemon_pid: the PID of this instance's containerd, if it runs (checked against its config path).
daemon_pid() {
  local pid=""
  if [[ -f "$pidfile" ]]; then { read -r pid <"$pidfile"; } 2>/dev/null || true; fi
  if [[ -n "$pid" ]] && pid_alive "$pid" && pid_has_arg "$pid" "$config"; then
    echo "$pid"; return 0
  fi
  # No (valid) pid file: look for a containerd started with this config anyway.
  pid="$(pids_with_arg "$config" 'containerd' | head -n 1)"
  [[ -n "$pid" ]] && { echo "$pid"; return 0; }
  return 1
}

ctr_() { ctr --address "$sock" "$@"; }

socket_answers() { [[ -S "$sock" ]] && timeout 5 ctr --address "$sock" version >/dev/null 2>&1; }

write_config() {
  cat >"$config" <<EOF
# Written by hack/containerd.sh: a private containerd for tskubelet. Everything lives under
# $dir; the only listeners are the unix sockets below and the CRI streaming server on
# 127.0.0.1 (random port).
version = 2
root = "$dir/root"
state = "$dir/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = "${TSK_CONTAINERD_METRICS:-}"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_REF"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Network namespaces go under DIR/state (not /run/netns), so they can never outlive DIR.
  netns_mounts_under_state_dir = true
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        # runc's own state, per namespace, under DIR too.
        Root = "$dir/state/runc"

  # Registry hosts: DIR/certs.d/<host:port>/hosts.toml (read at each pull, so a test can add a
  # registry on a loopback port while containerd runs).
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/certs.d"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$dir/net.d"
    max_conf_num = 1
EOF
}

write_conflist() {
  mkdir -p "$dir/net.d" "$dir/cni/networks"
  cat >"$dir/net.d/10-$NETNAME.conflist.tmp" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NETNAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni/networks",
        "ranges": [[{ "subnet": "$SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
EOF
  mv -f "$dir/net.d/10-$NETNAME.conflist.tmp" "$dir/net.d/10-$NETNAME.conflist"
}

# launch_daemon: start containerd on the existing config and wait until it serves.
launch_daemon() {
  local pid t0
  if pid="$(daemon_pid)"; then die "containerd for $dir already runs (pid $pid)"; fi
  [[ -f "$config" ]] || die "$config not found: use 'start' first"
  rm -f "$sock" "$sock.ttrpc"
  t0="$(now_ms)"
  # setsid: not in the caller's process group or session, so a Ctrl-C or the end of the
  # caller does not take it down; all of its descriptors point away from the caller's pipes.
  setsid containerd --config "$config" </dev/null >>"$logfile" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  local deadline=$((t0 + START_TIMEOUT_S * 1000))
  while :; do
    if ! pid_alive "$pid"; then
      tail -n 25 "$logfile" >&2 || true
      die "containerd exited during startup (log: $logfile)"
    fi
    # "successfully booted" is logged once every plugin, the CRI one included, is loaded.
    if [[ -S "$sock" ]] && grep -q 'containerd successfully booted' "$logfile" 2>/dev/null \
      && socket_answers; then
      break
    fi
    if (($(now_ms) > deadline)); then
      tail -n 25 "$logfile" >&2 || true
      die "containerd did not answer on $sock within ${START_TIMEOUT_S}s (log: $logfile)"
    fi
    sleep 0.05
  done
  say "containerd pid $pid ready in $(($(now_ms) - t0)) ms"
}

has_image() { grep -qxF "$1" <<<"$2"; }

import_images() {
  local have t0 ref tar
  t0="$(now_ms)"
  have="$(ctr_ -n k8s.io images ls -q 2>/dev/null || true)"
  for ref in "$PAUSE_REF" "$BUSYBOX_REF"; do
    has_image "$ref" "$have" && continue
    case "$ref" in "$PAUSE_REF") tar="$IMAGES/pause.tar" ;; *) tar="$IMAGES/busybox.tar" ;; esac
    [[ -s "$tar" ]] || die "$tar not found: run hack/build-images.sh${IMAGES:+ $IMAGES}"
    # --snapshotter must match the CRI plugin's, so the image is unpacked where CRI looks.
    local out
    if ! out="$(ctr_ -n k8s.io images import --snapshotter overlayfs "$tar" 2>&1)"; then
      echo "$out" | tail -n 5 >&2
      die "ctr images import $tar failed"
    fi
  done
  have="$(ctr_ -n k8s.io images ls -q 2>/dev/null || true)"
  for ref in "$PAUSE_REF" "$BUSYBOX_REF"; do
    has_image "$ref" "$have" || die "image $ref missing after import"
  done
  say "images ready in $(($(now_ms) - t0)) ms"
}

# stop_daemon SIGNAL: end containerd (SIGTERM then SIGKILL after STOP_TIMEOUT_S, or SIGKILL now).
stop_daemon() {
  local sig="$1" pid
  while pid="$(daemon_pid)"; do
    if [[ "$sig" == TERM ]]; then
      kill -TERM "$pid" 2>/dev/null || true
      if ! wait_gone "$STOP_TIMEOUT_S" "$pid"; then
        warn "containerd pid $pid ignored SIGTERM for ${STOP_TIMEOUT_S}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    else
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait_gone 10 "$pid" || die "containerd pid $pid does not die"
  done
  rm -f "$pidfile"
}

# ---------------------------------------------------------------------------------------------
# cleanup of what containerd and its pods leave behind

# remove_tasks_via_ctr: while containerd still answers, force-delete every task of every
# namespace (SIGKILL to all of its processes, then delete), so the shims shut down the regular
# way, removing their sockets and bundles. Container records need no care: DIR goes.
remove_tasks_via_ctr() {
  socket_answers || return 0
  local ns id
  for ns in $(ctr_ namespaces ls -q 2>/dev/null); do
    for id in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do
      timeout 15 ctr --address "$sock" -n "$ns" tasks delete --force "$id" >/dev/null 2>&1 || true
    done
  done
}

# kill_leftover_containers: with containerd gone, end every runc container and shim it left.
kill_leftover_containers() {
  local task_dir="$dir/state/io.containerd.runtime.v2.task" nsdir ns cdir id root
  if [[ -d "$task_dir" ]]; then
    for nsdir in "$task_dir"/*/; do
      [[ -d "$nsdir" ]] || continue
      ns="$(basename "$nsdir")"
      for cdir in "$nsdir"*/; do
        [[ -d "$cdir" ]] || continue
        id="$(basename "$cdir")"
        for root in "$dir/state/runc/$ns" "/run/containerd/runc/$ns"; do
          [[ -d "$root/$id" ]] || continue
          timeout 15 runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
          rm -rf "${root:?}/$id"
        done
      done
    done
  fi
  local shim pid inode path
  local -a shims=()
  mapfile -t shims < <(pids_with_arg "$sock" 'containerd-shim*')
  ((${#shims[@]} > 0)) || return 0
  say "killing ${#shims[@]} shim(s) left by containerd"
  # The shim's listening socket is in /run/containerd/s/: find it through its fds, since a
  # killed shim does not remove it.
  local -a sockets=()
  for shim in "${shims[@]}"; do
    for path in /proc/"$shim"/fd/*; do
      inode="$(readlink "$path" 2>/dev/null)" || continue
      [[ "$inode" =~ ^socket:\[([0-9]+)\]$ ]] || continue
      inode="${BASH_REMATCH[1]}"
      while read -r _ _ _ _ _ _ ino p; do
        [[ "$ino" == "$inode" && "$p" == /run/containerd/s/* ]] && sockets+=("$p")
      done </proc/net/unix
    done
  done
  for shim in "${shims[@]}"; do
    for pid in $(descendants "$shim"); do kill -KILL "$pid" 2>/dev/null || true; done
    kill -KILL "$shim" 2>/dev/null || true
  done
  wait_gone 10 "${shims[@]}" || warn "shims still alive: ${shims[*]}"
  ((${#sockets[@]} == 0)) || rm -f "${sockets[@]}"
}

# pod_cgroups: the cgroup parents (pod level) of this instance's containers, from their bundles.
# Read before the tasks are deleted: deleting a task removes its bundle.
pod_cgroups() {
  local task_dir="$dir/state/io.containerd.runtime.v2.task"
  [[ -d "$task_dir" ]] || return 0
  find "$task_dir" -mindepth 3 -maxdepth 3 -name config.json -print0 2>/dev/null \
    | xargs -0 -r grep -ho '"cgroupsPath":"[^"]*"' 2>/dev/null | cut -d'"' -f4 \
    | while IFS= read -r cg; do
      # cgroupfs style "/kubepods/besteffort/pod<uid>/<id>"; systemd style "slice:prefix:name".
      [[ "$cg" == /* ]] && dirname "$cg"
    done | sort -u
}

# remove_pod_cgroups PATH...: rmdir each (now empty) pod cgroup and its container children, on
# every mounted hierarchy. Busy ones stay; shared parents (kubepods/<qos>) are never touched.
remove_pod_cgroups() {
  (($# > 0)) || return 0
  local mp rest fstype cg d
  local -a roots=()
  while read -r _ _ _ _ mp _ rest; do
    fstype="${rest#*- }"; fstype="${fstype%% *}"
    [[ "$fstype" == cgroup || "$fstype" == cgroup2 ]] || continue
    printf -v mp '%b' "$mp"
    roots+=("$mp")
  done </proc/self/mountinfo
  for mp in "${roots[@]}"; do
    for cg in "$@"; do
      [[ "$cg" == / || "$cg" == *..* ]] && continue
      d="$mp$cg"
      [[ -d "$d" ]] || continue
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  done
}

# cni_teardown: run CNI DEL for every attachment cached under this instance's network name,
# then sweep what a failed DEL may have left (iptables rules, cache files, IPAM state).
cni_teardown() {
  [[ -n "$NETNAME" ]] || return 0
  local -a cached=() netns=()
  local f ns id
  mapfile -t cached < <(compgen -G "$CNI_CACHE_DIR/results/$NETNAME-*" || true)
  if ((${#cached[@]} > 0)); then
    say "CNI DEL for ${#cached[@]} attachment(s) of $NETNAME"
    # Network namespaces the attachments were made in (normally under DIR/state).
    mapfile -t netns < <(grep -ho '"sandbox":"[^"]*"' "${cached[@]}" 2>/dev/null | cut -d'"' -f4 | sort -u)
    if command -v node >/dev/null 2>&1; then
      node "$hack_dir/cni-del.mjs" "$CNI_BIN_DIR" "${cached[@]}" >&2 || warn "CNI DEL reported errors"
    else
      warn "node not found: skipping CNI DEL, sweeping instead"
    fi
    rm -f "${cached[@]}"
  fi
  sweep_iptables
  # containerd also caches a loopback attachment per sandbox, under a shared network name:
  # remove only those of this instance's sandboxes.
  for f in "$dir"/state/io.containerd.grpc.v1.cri/sandboxes/* "$dir"/root/io.containerd.grpc.v1.cri/sandboxes/*; do
    [[ -d "$f" ]] || continue
    id="$(basename "$f")"
    rm -f "$CNI_CACHE_DIR/results/cni-loopback-$id-lo"
  done
  # A netns outside DIR (containerd configured without netns_mounts_under_state_dir) that one
  # of this instance's attachments used: unmount and remove it; DIR's own go with DIR.
  for ns in "${netns[@]}"; do
    [[ "$ns" == "$dir"/* ]] && continue
    [[ "$ns" == /run/netns/* || "$ns" == /var/run/netns/* ]] || continue
    umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  rm -rf "${CNI_CACHE_DIR:?}/networks/$NETNAME"
}

# sweep_iptables: delete rules and chains that the CNI plugins tagged with this network's name.
sweep_iptables() {
  local tool table rule chain
  for tool in iptables ip6tables; do
    command -v "$tool-save" >/dev/null 2>&1 || continue
    for table in nat filter; do
      local -a rules=() chains=()
      mapfile -t rules < <("$tool-save" -t "$table" 2>/dev/null | grep -F -- "name: \\\"$NETNAME\\\"" | grep '^-A ' || true)
      ((${#rules[@]} > 0)) || continue
      for rule in "${rules[@]}"; do
        # "-A CHAIN ... -j TARGET": drop the rule; remember CNI-made targets to delete them.
        [[ "$rule" =~ -j\ (CNI-[A-Za-z0-9-]+) ]] && chains+=("${BASH_REMATCH[1]}")
        # shellcheck disable=SC2086
        eval "$tool -w 5 -t $table -D ${rule#-A }" 2>/dev/null || true
      done
      for chain in "${chains[@]}"; do
        case "$chain" in CNI-HOSTPORT-*|CNI-FORWARD|CNI-ADMIN) continue ;; esac
        "$tool" -w 5 -t "$table" -F "$chain" 2>/dev/null || true
        "$tool" -w 5 -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# mounts_under DIR: mount points at or below DIR, deepest first.
mounts_under() {
  local base="$1" mp
  while read -r _ _ _ _ mp _; do
    printf -v mp '%b' "$mp" # mountinfo escapes space, tab, newline and backslash as \ooo
    [[ "$mp" == "$base" || "$mp" == "$base"/* ]] && echo "$mp"
  done </proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn -k1,1 | cut -f2- | uniq
}

unmount_all_under() {
  local base="$1" mp round
  for round in 1 2 3 4 5; do
    local -a mps=()
    mapfile -t mps < <(mounts_under "$base")
    ((${#mps[@]} > 0)) || return 0
    ((round > 1)) || say "unmounting ${#mps[@]} mount(s) under $base"
    for mp in "${mps[@]}"; do
      umount "$mp" 2>/dev/null || { ((round < 3)) || umount -l "$mp" 2>/dev/null || true; }
    done
  done
  [[ -z "$(mounts_under "$base")" ]]
}

delete_bridge() {
  [[ -n "$BRIDGE" ]] || return 0
  if ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    ip link delete dev "$BRIDGE" 2>/dev/null || warn "could not delete bridge $BRIDGE"
  fi
}

# remove_dir: remove DIR, the marker file last, never crossing into another file system.
remove_dir() {
  [[ -z "$(mounts_under "$dir")" ]] || die "mounts remain under $dir: $(mounts_under "$dir" | tr '\n' ' ')"
  find "$dir" -mindepth 1 -maxdepth 1 ! -name "$MARKER" -exec rm -rf --one-file-system {} +
  rm -f "$dir/$MARKER"
  rmdir "$dir"
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_start() {
  local d="" bridge="tskbr0" subnet="10.244.0.0/24" cni=1 images="$repo_root/.run/images"
  while (($# > 0)); do
    case "$1" in
      --bridge) bridge="${2:?--bridge needs a name}"; shift 2 ;;
      --subnet) subnet="${2:?--subnet needs a CIDR}"; shift 2 ;;
      --no-cni) cni=0; shift ;;
      --images) images="${2:?--images needs a directory}"; shift 2 ;;
      -*) die "start: unknown option $1" ;;
      *) [[ -z "$d" ]] || die "start: more than one DIR"; d="$1"; shift ;;
    esac
  done
  [[ -n "$d" ]] || usage
  need_root
  [[ "$bridge" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "bridge name '$bridge' is not a valid interface name (1-15 of [A-Za-z0-9_.-])"
  [[ "$subnet" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$ ]] || die "subnet '$subnet' is not an IPv4 CIDR"
  local tool
  for tool in containerd ctr runc containerd-shim-runc-v2 setsid; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run hack/install-deps.sh)"
  done
  if ((cni)); then
    for tool in bridge host-local portmap loopback; do
      [[ -x "$CNI_BIN_DIR/$tool" ]] || die "CNI plugin $CNI_BIN_DIR/$tool not found (package containernetworking-plugins)"
    done
  fi
  images="$(abs_dir "$images")"
  # Cached: a no-op when the tarballs are already there and up to date.
  bash "$hack_dir/build-images.sh" "$images" || die "could not build the test images into $images"

  load_instance "$d"
  if [[ -e "$dir" && -n "$(ls -A "$dir" 2>/dev/null)" ]]; then
    die "$dir is not empty (stop it first, or use resume)"
  fi
  # Unix socket paths are limited to 108 bytes; leave room for ".ttrpc".
  ((${#sock} <= 100)) || die "socket path $sock is too long; use a shorter DIR"

  mkdir -p "$dir"
  chmod 0711 "$dir"
  BRIDGE="$bridge" SUBNET="$subnet" NETNAME="tskubelet-$bridge" CNI="$cni" IMAGES="$images"
  # The marker comes first: from here on, 'stop' knows what to clean even if start fails.
  printf 'BRIDGE=%s\nSUBNET=%s\nNETNAME=%s\nCNI=%s\nIMAGES=%s\n' \
    "$BRIDGE" "$SUBNET" "$NETNAME" "$CNI" "$IMAGES" >"$dir/$MARKER"
  write_config
  mkdir -p "$dir/net.d" "$dir/certs.d"
  ((cni == 0)) || write_conflist
  launch_daemon
  import_images
  echo "unix://$sock"
}

cmd_resume() {
  [[ $# -eq 1 ]] || usage
  need_root
  load_instance "$1"
  [[ -f "$dir/$MARKER" ]] || die "$dir was not made by 'containerd.sh start'"
  launch_daemon
  import_images
  echo "unix://$sock"
}

cmd_kill() {
  [[ $# -eq 1 ]] || usage
  need_root
  load_instance "$1"
  stop_daemon KILL
}

cmd_restart() {
  [[ $# -eq 1 ]] || usage
  need_root
  load_instance "$1"
  [[ -f "$dir/$MARKER" ]] || die "$dir was not made by 'containerd.sh start'"
  stop_daemon TERM
  launch_daemon
  import_images
  echo "unix://$sock"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  load_instance "$1"
  local pid
  if pid="$(daemon_pid)"; then echo "running $pid"; else echo "stopped"; exit 3; fi
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  need_root
  load_instance "$1"
  if [[ ! -e "$dir" ]]; then
    return 0
  fi
  if [[ ! -f "$dir/$MARKER" ]]; then
    # A start that failed before writing anything leaves an empty directory at most.
    rmdir "$dir" 2>/dev/null && return 0
    die "$dir was not made by 'containerd.sh start' (no $MARKER): not touching it"
  fi
  local t0
  t0="$(now_ms)"
  local -a cgroups=()
  mapfile -t cgroups < <(pod_cgroups)
  remove_tasks_via_ctr
  stop_daemon TERM
  kill_leftover_containers
  remove_pod_cgroups "${cgroups[@]}"
  cni_teardown
  unmount_all_under "$dir" || warn "some mounts under $dir would not go away"
  delete_bridge
  remove_dir
  say "stopped and removed $dir in $(($(now_ms) - t0)) ms"
}

# clean-cgroups [NAME...]: remove empty cgroup directories named NAME (glob, default kubepods*)
# at the top of every cgroup hierarchy, bottom-up. A directory with processes or live children
# refuses rmdir, so only what is really empty goes.
cmd_clean_cgroups() {
  need_root
  local -a names=("$@")
  ((${#names[@]} > 0)) || names=('kubepods*')
  local -a roots=()
  local fstype mp removed=0 busy=0 name top d
  while read -r _ _ _ _ mp _ rest; do
    fstype="${rest#*- }"; fstype="${fstype%% *}"
    [[ "$fstype" == cgroup || "$fstype" == cgroup2 ]] || continue
    printf -v mp '%b' "$mp"
    roots+=("$mp")
  done </proc/self/mountinfo
  for mp in "${roots[@]}"; do
    for name in "${names[@]}"; do
      for top in "$mp"/$name; do
        [[ -d "$top" && ! -L "$top" ]] || continue
        while IFS= read -r -d '' d; do
          if rmdir "$d" 2>/dev/null; then removed=$((removed + 1)); else busy=$((busy + 1)); fi
        done < <(find "$top" -depth -type d -print0 2>/dev/null)
      done
    done
  done
  say "clean-cgroups: removed $removed empty cgroup(s), $busy still in use"
}

main() {
  (($# > 0)) || usage
  local cmd="$1"
  shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill) cmd_kill "$@" ;;
    resume) cmd_resume "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status "$@" ;;
    clean-cgroups) cmd_clean_cgroups "$@" ;;
    -h | --help | help) usage 0 ;;
    *) die "unknown command '$cmd'" ;;
  esac
}

main "$@"
