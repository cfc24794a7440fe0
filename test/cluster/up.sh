#!/usr/bin/env bash
# Start the test control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) on loopback in the background and set up node bootstrapping
# the way kubeadm does (bootstrap token + RBAC bindings).
#
#   test/cluster/up.sh [--data-dir DIR] [--no-auto-approve] [--timeout SECONDS]
#
#   --data-dir DIR      where everything goes (default $KTP_DATA_DIR or
#                       test/cluster/.data); reused if it exists and nothing runs
#   --no-auto-approve   leave out the binding that auto-approves first node
#                       client CSRs (approve by hand: kubectl certificate approve)
#   --timeout SECONDS   how long to wait for readiness (default 180)
#
# Ports (env, all on 127.0.0.1): KTP_APISERVER_PORT (16443),
# KTP_ETCD_CLIENT_PORT (12379), KTP_ETCD_PEER_PORT (12380),
# KTP_KCM_PORT (20257), KTP_SCHEDULER_PORT (20259).
# Other env: KTP_BIN (prebuilt kube-test-plane; default: build.sh then bin/),
# KTP_CLUSTER_SIGNING_DURATION (8760h), KTP_BOOTSTRAP_TOKEN (<6>.<16> [a-z0-9];
# default random, kept across restarts), KTP_TOKEN_TTL_HOURS (24),
# KTP_APISERVER_EXTRA_SANS (see pki.sh), KTP_APISERVER_VERBOSITY (1),
# KTP_APISERVER_BIND_ADDRESS (127.0.0.1), KTP_APISERVER_ADVERTISE_ADDRESS
# (127.0.0.1; put in the serving cert and bootstrap-kubeconfig).
# Writes DIR/env (shell-sourceable) describing the result; see README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

data_dir="${KTP_DATA_DIR:-$here/.data}"
auto_approve=1
timeout=180
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data-dir) data_dir="${2:?--data-dir needs a value}"; shift 2 ;;
    --data-dir=*) data_dir="${1#*=}"; shift ;;
    --no-auto-approve) auto_approve=0; shift ;;
    --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --timeout=*) timeout="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "up.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

addr=127.0.0.1
# The apiserver listens on 127.0.0.1 unless told otherwise (e.g. 0.0.0.0 for a
# kubelet in a network namespace); it advertises (kubernetes Service
# endpoints, bootstrap-kubeconfig) KTP_APISERVER_ADVERTISE_ADDRESS.
apiserver_bind="${KTP_APISERVER_BIND_ADDRESS:-$addr}"
advertise="${KTP_APISERVER_ADVERTISE_ADDRESS:-$addr}"
apiserver_port="${KTP_APISERVER_PORT:-16443}"
etcd_client_port="${KTP_ETCD_CLIENT_PORT:-12379}"
etcd_peer_port="${KTP_ETCD_PEER_PORT:-12380}"
kcm_port="${KTP_KCM_PORT:-20257}"
scheduler_port="${KTP_SCHEDULER_PORT:-20259}"
signing_duration="${KTP_CLUSTER_SIGNING_DURATION:-8760h}"
token_ttl_hours="${KTP_TOKEN_TTL_HOURS:-24}"
service_cidr=10.96.0.0/16
service_ip=10.96.0.1
apiserver_url="https://$advertise:$apiserver_port"
[[ "$advertise" == *:* ]] && apiserver_url="https://[$advertise]:$apiserver_port"
etcd_url="http://$addr:$etcd_client_port"
kubectl="${KUBECTL:-kubectl}"
command -v "$kubectl" >/dev/null || { echo "up.sh: kubectl not found" >&2; exit 1; }

# The binary.
if [[ -n "${KTP_BIN:-}" ]]; then
  bin="$KTP_BIN"
else
  "$here/build.sh" kube-test-plane
  bin="$here/bin/kube-test-plane"
fi
[[ -x "$bin" ]] || { echo "up.sh: $bin is not executable" >&2; exit 1; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

mkdir -p "$data_dir"
data_dir="$(cd "$data_dir" && pwd)"
pki="$data_dir/pki"
logs="$data_dir/logs"
pids="$data_dir/pids"
mkdir -p "$pki" "$logs" "$pids" "$data_dir/manifests"
# down.sh removes only directories that carry this marker.
touch "$data_dir/.kube-test-plane"

# alive <name>: the recorded process of <name> still runs (and is ours: its
# first argument is <name>, which guards against a reused pid).
alive() {
  local f="$pids/$1.pid" pid argv=()
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  mapfile -d '' argv 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [[ "${argv[1]:-}" == "$1" ]]
}

for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do
  if alive "$c"; then
    echo "up.sh: $c is already running from $data_dir (pid $(<"$pids/$c.pid")); run down.sh first" >&2
    exit 1
  fi
done

port_busy() { (exec 3<>"/dev/tcp/$addr/$1") 2>/dev/null; }
for p in "$apiserver_port" "$etcd_client_port" "$etcd_peer_port" "$kcm_port" "$scheduler_port"; do
  if port_busy "$p"; then
    echo "up.sh: port $addr:$p is in use (set the KTP_*_PORT variables to move the cluster)" >&2
    exit 1
  fi
done

started=()
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 && ${#started[@]} -gt 0 ]]; then
    echo "up.sh: failed (exit $rc); last log lines:" >&2
    for c in "${started[@]}"; do
      echo "---- $logs/$c.log" >&2
      tail -n 25 "$logs/$c.log" >&2 || true
    done
    echo "up.sh: stopping what was started (data dir kept: $data_dir)" >&2
    "$here/down.sh" --data-dir "$data_dir" --keep-data >&2 || true
  fi
}
trap on_exit EXIT

# start <name> <args...>: run `kube-test-plane <name> <args>` detached in its
# own session, log to logs/<name>.log, pid in pids/<name>.pid.
start() {
  local name="$1"; shift
  rm -f "$pids/$name.pid"
  # bash writes its own pid, then execs the binary: the pid file holds the
  # binary's pid whether or not setsid had to fork.
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pids/$name.pid" "$bin" "$name" "$@" \
    >>"$logs/$name.log" 2>&1 </dev/null &
  started+=("$name")
  for _ in $(seq 100); do
    if alive "$name"; then break; fi
    sleep 0.05
  done
  echo "up.sh: started $name (pid $(<"$pids/$name.pid"), log $logs/$name.log)"
}

deadline=$((SECONDS + timeout))
# wait_for <what> <command...>: retry until the command succeeds.
wait_for() {
  local what="$1"; shift
  until "$@" >/dev/null 2>&1; do
    for c in "${started[@]}"; do
      alive "$c" || { echo "up.sh: $c exited while waiting for $what" >&2; return 1; }
    done
    if ((SECONDS >= deadline)); then
      echo "up.sh: timed out after ${timeout}s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

extra_sans="${KTP_APISERVER_EXTRA_SANS:-}"
if [[ "$advertise" != "$addr" ]]; then extra_sans="$advertise${extra_sans:+,$extra_sans}"; fi
KTP_APISERVER_HOST="$addr" KTP_APISERVER_PORT="$apiserver_port" KTP_SERVICE_IP="$service_ip" \
  KTP_APISERVER_EXTRA_SANS="$extra_sans" "$here/pki.sh" "$pki" >/dev/null
cp "$pki/ca.crt" "$data_dir/ca.crt"
cp "$pki/ca.key" "$data_dir/ca.key"
cp "$pki/admin.kubeconfig" "$data_dir/admin.kubeconfig"
admin="$data_dir/admin.kubeconfig"

# --- etcd (plain HTTP on loopback, single member, no fsync: test data only)
etcd_args=(
  --name=ktp
  --data-dir="$data_dir/etcd"
  --listen-client-urls="$etcd_url"
  --advertise-client-urls="$etcd_url"
  --listen-peer-urls="http://$addr:$etcd_peer_port"
  --initial-advertise-peer-urls="http://$addr:$etcd_peer_port"
  --initial-cluster="ktp=http://$addr:$etcd_peer_port"
  --initial-cluster-state=new
  --snapshot-count=10000
  --quota-backend-bytes=$((2 * 1024 * 1024 * 1024))
  --unsafe-no-fsync=true
  --log-level=warn
)
start etcd "${etcd_args[@]}"
wait_for "etcd" curl -fsS "$etcd_url/health"

# --- kube-apiserver
# shellcheck disable=SC2054 # the commas are inside flag values
apiserver_args=(
  --etcd-servers="$etcd_url"
  --bind-address="$apiserver_bind"
  --advertise-address="$advertise"
  --secure-port="$apiserver_port"
  --tls-cert-file="$pki/apiserver.crt"
  --tls-private-key-file="$pki/apiserver.key"
  --client-ca-file="$pki/ca.crt"
  --service-account-issuer=https://kubernetes.default.svc.cluster.local
  --service-account-key-file="$pki/sa.pub"
  --service-account-signing-key-file="$pki/sa.key"
  --service-cluster-ip-range="$service_cidr"
  --authorization-mode=Node,RBAC
  --enable-admission-plugins=NodeRestriction
  --enable-bootstrap-token-auth=true
  --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt"
  --kubelet-client-key="$pki/apiserver-kubelet-client.key"
  --kubelet-preferred-address-types=InternalIP,Hostname
  --allow-privileged=true
  --requestheader-client-ca-file="$pki/front-proxy-ca.crt"
  --requestheader-allowed-names=front-proxy-client
  --requestheader-username-headers=X-Remote-User
  --requestheader-group-headers=X-Remote-Group
  --requestheader-extra-headers-prefix=X-Remote-Extra-
  --proxy-client-cert-file="$pki/front-proxy-client.crt"
  --proxy-client-key-file="$pki/front-proxy-client.key"
  --enable-aggregator-routing=true
  --profiling=false
  --v="${KTP_APISERVER_VERBOSITY:-1}"
)
# The Endpoints of the kubernetes Service may not be loopback addresses: with
# a loopback advertise address, leave them alone instead of failing every 10 s.
if [[ "$advertise" == 127.* || "$advertise" == ::1 ]]; then
  apiserver_args+=(--endpoint-reconciler-type=none)
fi
start kube-apiserver "${apiserver_args[@]}"
wait_for "kube-apiserver /readyz" "$kubectl" --kubeconfig "$admin" get --raw /readyz

# --- kube-controller-manager and kube-scheduler
kcm_kc="$pki/kube-controller-manager.kubeconfig"
kcm_args=(
  --kubeconfig="$kcm_kc"
  --authentication-kubeconfig="$kcm_kc"
  --authorization-kubeconfig="$kcm_kc"
  --bind-address="$addr"
  --secure-port="$kcm_port"
  --client-ca-file="$pki/ca.crt"
  --requestheader-client-ca-file="$pki/front-proxy-ca.crt"
  --cluster-signing-cert-file="$pki/ca.crt"
  --cluster-signing-key-file="$pki/ca.key"
  --cluster-signing-duration="$signing_duration"
  --root-ca-file="$pki/ca.crt"
  --service-account-private-key-file="$pki/sa.key"
  --use-service-account-credentials=true
  --service-cluster-ip-range="$service_cidr"
  --controllers='*,bootstrapsigner,tokencleaner'
  --leader-elect=false
  --profiling=false
  --v=1
)
start kube-controller-manager "${kcm_args[@]}"

sched_kc="$pki/kube-scheduler.kubeconfig"
sched_args=(
  --kubeconfig="$sched_kc"
  --authentication-kubeconfig="$sched_kc"
  --authorization-kubeconfig="$sched_kc"
  --bind-address="$addr"
  --secure-port="$scheduler_port"
  --leader-elect=false
  --profiling=false
  --v=1
)
start kube-scheduler "${sched_args[@]}"

# --- bootstrap token (kept across restarts of the same data dir)
if [[ -n "${KTP_BOOTSTRAP_TOKEN:-}" ]]; then
  token="$KTP_BOOTSTRAP_TOKEN"
elif [[ -s "$data_dir/token" ]]; then
  token="$(<"$data_dir/token")"
else
  # hex is a subset of [a-z0-9]: 6 + 16 characters.
  token="$(openssl rand -hex 3).$(openssl rand -hex 8)"
fi
if [[ ! "$token" =~ ^([a-z0-9]{6})\.([a-z0-9]{16})$ ]]; then
  echo "up.sh: bootstrap token must look like [a-z0-9]{6}.[a-z0-9]{16}" >&2
  exit 1
fi
token_id="${BASH_REMATCH[1]}"
token_secret="${BASH_REMATCH[2]}"
(umask 077 && printf '%s\n' "$token" >"$data_dir/token")
expiration="$(date -u -d "+$token_ttl_hours hours" +%Y-%m-%dT%H:%M:%SZ)"

group=system:bootstrappers:kubeadm:default-node-token
manifest="$data_dir/manifests/bootstrap.yaml"
cat >"$manifest" <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-$token_id
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  description: kube-test-plane node bootstrap token
  token-id: "$token_id"
  token-secret: "$token_secret"
  expiration: "$expiration"
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
  auth-extra-groups: "$group"
---
# Joining nodes may create and read CSRs.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:kubelet-bootstrap
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:node-bootstrapper
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: $group
---
# Nodes' renewal CSRs (for their own name) are approved automatically.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:node-autoapprove-certificate-rotation
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:certificates.k8s.io:certificatesigningrequests:selfnodeclient
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:nodes
---
# The apiserver reaches kubelets (logs, exec, port-forward) as this user.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kube-test-plane:kube-apiserver-kubelet-client
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:kubelet-api-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: kube-apiserver-kubelet-client
EOF
autoapprove_manifest="$data_dir/manifests/node-autoapprove-bootstrap.yaml"
cat >"$autoapprove_manifest" <<EOF
# First client CSRs of joining nodes are approved automatically.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:node-autoapprove-bootstrap
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:certificates.k8s.io:certificatesigningrequests:nodeclient
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: $group
EOF

k() { "$kubectl" --kubeconfig "$admin" "$@"; }
# RBAC's default roles are reconciled at apiserver start; wait for one we bind.
wait_for "default cluster roles" k get clusterrole system:node-bootstrapper
k apply -f "$manifest" >/dev/null
if [[ $auto_approve -eq 1 ]]; then
  k apply -f "$autoapprove_manifest" >/dev/null
else
  # A reused data dir may still have it from an earlier run.
  k delete --ignore-not-found -f "$autoapprove_manifest" >/dev/null
fi

# --- bootstrap kubeconfig (token auth) for joining nodes
(umask 077 && cat >"$data_dir/bootstrap-kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-test-plane
  cluster:
    server: $apiserver_url
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: tls-bootstrap-token-user
  user:
    token: $token
contexts:
- name: tls-bootstrap-token-user@kube-test-plane
  context:
    cluster: kube-test-plane
    user: tls-bootstrap-token-user
current-context: tls-bootstrap-token-user@kube-test-plane
EOF
)

# The serviceaccount controller (kcm) creates "default" in each namespace.
wait_for "the default ServiceAccount" k -n default get serviceaccount default
wait_for "kube-scheduler health" curl -fsSk "https://$addr:$scheduler_port/healthz"
wait_for "kube-controller-manager health" curl -fsSk "https://$addr:$kcm_port/healthz"

# --- env file
{
  echo "# kube-test-plane environment; source this file (written by up.sh $(date -u +%FT%TZ))"
  q() { printf 'export %s=%q\n' "$1" "$2"; }
  q KTP_DATA_DIR "$data_dir"
  q KUBECONFIG "$admin"
  q KTP_ADMIN_KUBECONFIG "$admin"
  q KTP_BOOTSTRAP_KUBECONFIG "$data_dir/bootstrap-kubeconfig"
  q KTP_APISERVER_URL "$apiserver_url"
  q KTP_APISERVER_HOST "$addr"
  q KTP_APISERVER_ADVERTISE_ADDRESS "$advertise"
  q KTP_APISERVER_PORT "$apiserver_port"
  q KTP_ETCD_URL "$etcd_url"
  q KTP_ETCD_CLIENT_PORT "$etcd_client_port"
  q KTP_ETCD_PEER_PORT "$etcd_peer_port"
  q KTP_KCM_PORT "$kcm_port"
  q KTP_SCHEDULER_PORT "$scheduler_port"
  q KTP_BOOTSTRAP_TOKEN "$token"
  q KTP_BOOTSTRAP_TOKEN_ID "$token_id"
  q KTP_BOOTSTRAP_TOKEN_EXPIRATION "$expiration"
  q KTP_AUTO_APPROVE "$auto_approve"
  q KTP_CA_CERT "$data_dir/ca.crt"
  q KTP_CA_KEY "$data_dir/ca.key"
  q KTP_FRONT_PROXY_CA_CERT "$pki/front-proxy-ca.crt"
  q KTP_APISERVER_KUBELET_CLIENT_CERT "$pki/apiserver-kubelet-client.crt"
  q KTP_APISERVER_KUBELET_CLIENT_KEY "$pki/apiserver-kubelet-client.key"
  q KTP_SA_KEY "$pki/sa.key"
  q KTP_SA_PUB "$pki/sa.pub"
  q KTP_SERVICE_CIDR "$service_cidr"
  q KTP_CLUSTER_SIGNING_DURATION "$signing_duration"
  q KTP_BIN "$bin"
} >"$data_dir/env"

trap - EXIT
echo "up.sh: control plane ready at $apiserver_url (data dir $data_dir)"
echo "up.sh: source $data_dir/env   # sets KUBECONFIG and KTP_* variables"
