#!/usr/bin/env bash
# Run metrics-server (bin/metrics-server, see metrics-server/) as a host process
# next to a control plane that up.sh started, and register it with the
# aggregator so that `kubectl top` works.
#
#   test/cluster/metrics-server.sh start [--data-dir DIR] [--port PORT] [--node-ip IP] [--timeout SECONDS]
#   test/cluster/metrics-server.sh stop  [--data-dir DIR] [--keep-objects]
#
#   --data-dir DIR    the dir given to up.sh (default $KTP_DATA_DIR or test/cluster/.data)
#   --port PORT       metrics-server's secure port, bound to 0.0.0.0
#                     (default $KTP_METRICS_SERVER_PORT, else a free one)
#   --node-ip IP      the address the apiserver reaches it at (default: the
#                     IPv4 of the default-route interface; Endpoints refuse 127.x)
#   --timeout SECONDS how long start waits for metrics-server to answer (default 60)
#   --keep-objects    stop leaves the APIService, Service, Endpoints and RBAC in place
#
# start makes a serving cert and a client identity (CN=system:metrics-server,
# from the cluster CA, with openssl), applies RBAC, the Service/Endpoints and
# the APIService v1beta1.metrics.k8s.io, starts metrics-server (pid in
# DIR/pids/metrics-server.pid, log in DIR/logs/metrics-server.log) and waits
# for its /livez. Metrics appear after two scrapes (--metric-resolution=10s).
# stop signals the recorded pid (TERM, KILL after 20 s) and deletes the objects.
# Env: KTP_METRICS_SERVER_BIN (prebuilt binary; default: build.sh, then
# bin/metrics-server), KTP_METRICS_SERVER_VERBOSITY (1), KUBECTL.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

action="${1:-}"
case "$action" in
  start|stop) shift ;;
  -h|--help) usage; exit 0 ;;
  *) echo "metrics-server.sh: first argument must be start or stop" >&2; usage >&2; exit 2 ;;
esac

data_dir="${KTP_DATA_DIR:-$here/.data}"
port="${KTP_METRICS_SERVER_PORT:-}"
node_ip=""
timeout=60
keep_objects=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data-dir) data_dir="${2:?--data-dir needs a value}"; shift 2 ;;
    --data-dir=*) data_dir="${1#*=}"; shift ;;
    --port) port="${2:?--port needs a value}"; shift 2 ;;
    --port=*) port="${1#*=}"; shift ;;
    --node-ip) node_ip="${2:?--node-ip needs a value}"; shift 2 ;;
    --node-ip=*) node_ip="${1#*=}"; shift ;;
    --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --timeout=*) timeout="${1#*=}"; shift ;;
    --keep-objects) keep_objects=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "metrics-server.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

[[ -d "$data_dir" && -e "$data_dir/.kube-test-plane" ]] || {
  echo "metrics-server.sh: $data_dir is not a data dir made by up.sh" >&2; exit 1; }
data_dir="$(cd "$data_dir" && pwd)"
pki="$data_dir/pki"
pids="$data_dir/pids"
logs="$data_dir/logs"
pidfile="$pids/metrics-server.pid"
admin="$data_dir/admin.kubeconfig"
kubectl="${KUBECTL:-kubectl}"
k() { "$kubectl" --kubeconfig "$admin" "$@"; }
manifest="$data_dir/manifests/metrics-server.yaml"

# running: the recorded pid still runs a binary named metrics-server.
running() {
  local pid argv=()
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  mapfile -d '' argv 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [[ "$(basename "${argv[0]:-}")" == metrics-server ]]
}

stop_process() {
  if running; then
    local pid
    pid="$(<"$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do running || break; sleep 0.1; done
    if running; then
      echo "metrics-server.sh: pid $pid ignored TERM; sending KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    echo "metrics-server.sh: stopped metrics-server (pid $pid)"
  fi
  rm -f "$pidfile"
}

if [[ "$action" == stop ]]; then
  stop_process
  if [[ $keep_objects -eq 0 && -s "$manifest" ]]; then
    # The APIService first: without it the aggregator stops routing at once.
    k delete --ignore-not-found --wait=false --request-timeout=20s -f "$manifest" >/dev/null 2>&1 ||
      echo "metrics-server.sh: could not delete the objects (is the apiserver down?)" >&2
  fi
  exit 0
fi

# ---- start
if running; then
  echo "metrics-server.sh: already running (pid $(<"$pidfile")); stop it first" >&2
  exit 1
fi
command -v "$kubectl" >/dev/null || { echo "metrics-server.sh: kubectl not found" >&2; exit 1; }
command -v openssl >/dev/null || { echo "metrics-server.sh: openssl not found" >&2; exit 1; }

if [[ -n "${KTP_METRICS_SERVER_BIN:-}" ]]; then
  bin="$KTP_METRICS_SERVER_BIN"
else
  "$here/build.sh" metrics-server >/dev/null
  bin="$here/bin/metrics-server"
fi
[[ -x "$bin" ]] || { echo "metrics-server.sh: $bin is not executable" >&2; exit 1; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[[ "$(basename "$bin")" == metrics-server ]] || {
  echo "metrics-server.sh: the binary must be named metrics-server (stop and down.sh find it by name)" >&2; exit 1; }

if [[ -z "$node_ip" ]]; then
  # The default-route interface's first IPv4 address (what tskubelet reports as InternalIP).
  dev="$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')"
  if [[ -n "$dev" ]]; then node_ip="$(ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"; fi
  [[ -n "$node_ip" ]] || { echo "metrics-server.sh: no default-route IPv4 address; pass --node-ip" >&2; exit 1; }
fi
if [[ "$node_ip" == 127.* ]]; then
  echo "metrics-server.sh: --node-ip may not be a loopback address (Endpoints refuse it)" >&2; exit 1
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -z "$port" ]]; then
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 12000))
    if ! port_busy "$p"; then port="$p"; break; fi
  done
  [[ -n "$port" ]] || { echo "metrics-server.sh: found no free port" >&2; exit 1; }
elif port_busy "$port"; then
  echo "metrics-server.sh: port $port is in use" >&2; exit 1
fi

# ---- certificates (openssl, cluster CA): a serving cert for the node IP and
# the Service's names, and the client identity system:metrics-server, used both
# towards the apiserver and to scrape kubelets.
key_alg="${KTP_PKI_KEY:-rsa}"
new_key() {
  [[ -s "$1" ]] && return 0
  case "$key_alg" in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.tmp" 2>/dev/null ;;
    *) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.tmp" ;;
  esac
  chmod 0600 "$1.tmp"
  mv "$1.tmp" "$1"
}
# new_cert <name> <subject> <eku> [SANs]: <name>.crt signed by the cluster CA;
# remade when the SANs changed (a new node IP).
new_cert() {
  local name="$1" subj="$2" eku="$3" sans="${4:-}" ext
  new_key "$pki/$name.key"
  if [[ -s "$pki/$name.crt" && -s "$pki/$name.sans" && "$(<"$pki/$name.sans")" == "sans:$sans" ]]; then return 0; fi
  ext="$(mktemp)"
  {
    echo "[ext]"
    echo "basicConstraints = critical,CA:FALSE"
    echo "keyUsage = critical,digitalSignature$([[ "$key_alg" == rsa ]] && echo ,keyEncipherment)"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    if [[ -n "$sans" ]]; then echo "subjectAltName = $sans"; fi
  } >"$ext"
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$ext.csr"
  openssl x509 -req -in "$ext.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -sha256 -days "${KTP_CERT_DAYS:-365}" \
    -extfile "$ext" -extensions ext -out "$pki/$name.crt" 2>/dev/null
  rm -f "$ext" "$ext.csr"
  printf 'sans:%s' "$sans" >"$pki/$name.sans"
}
new_cert metrics-server "/CN=metrics-server.kube-system.svc" serverAuth \
  "IP:$node_ip,IP:127.0.0.1,DNS:localhost,DNS:metrics-server,DNS:metrics-server.kube-system,DNS:metrics-server.kube-system.svc"
new_cert metrics-server-client "/CN=system:metrics-server" clientAuth
kc="$pki/metrics-server.kubeconfig"
server="$(awk '/server:/ {print $2; exit}' "$admin")"
(umask 077 && cat >"$kc" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-test-plane
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: system:metrics-server
  user:
    client-certificate-data: $(base64 -w0 <"$pki/metrics-server-client.crt")
    client-key-data: $(base64 -w0 <"$pki/metrics-server-client.key")
contexts:
- name: system:metrics-server@kube-test-plane
  context:
    cluster: kube-test-plane
    user: system:metrics-server
current-context: system:metrics-server@kube-test-plane
EOF
)

# ---- API objects. The Service has no selector: its Endpoints point at the
# host process (kcm mirrors them into an EndpointSlice), and the apiserver
# routes to that address (--enable-aggregator-routing).
cat >"$manifest" <<EOF
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  caBundle: $(base64 -w0 <"$pki/ca.crt")
  service:
    namespace: kube-system
    name: metrics-server
    port: 443
---
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  ports:
  - name: https
    port: 443
    protocol: TCP
    targetPort: $port
---
apiVersion: v1
kind: Endpoints
metadata:
  name: metrics-server
  namespace: kube-system
subsets:
- addresses:
  - ip: $node_ip
  ports:
  - name: https
    port: $port
    protocol: TCP
---
# Who may read metrics.k8s.io (folded into view/edit/admin).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:aggregated-metrics-reader
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
    rbac.authorization.k8s.io/aggregate-to-edit: "true"
    rbac.authorization.k8s.io/aggregate-to-admin: "true"
rules:
- apiGroups: ["metrics.k8s.io"]
  resources: ["pods", "nodes"]
  verbs: ["get", "list", "watch"]
---
# What metrics-server itself needs: nodes and pods, and the kubelets' metrics.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:metrics-server
rules:
- apiGroups: [""]
  resources: ["nodes/metrics", "nodes/stats"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["pods", "nodes"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:metrics-server
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:metrics-server
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: system:metrics-server
---
# Delegated authentication and authorization (TokenReview, SubjectAccessReview).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: metrics-server:system:auth-delegator
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:auth-delegator
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: system:metrics-server
---
# The front-proxy CA and allowed names from kube-system/extension-apiserver-authentication.
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: metrics-server-auth-reader
  namespace: kube-system
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: extension-apiserver-authentication-reader
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: system:metrics-server
EOF
if ! out="$(k apply -f "$manifest" 2>&1)"; then
  echo "metrics-server.sh: kubectl apply -f $manifest failed:" >&2
  echo "$out" >&2
  exit 1
fi

mkdir -p "$pids" "$logs"
ms_args=(
  --secure-port="$port"
  --bind-address=0.0.0.0
  --tls-cert-file="$pki/metrics-server.crt"
  --tls-private-key-file="$pki/metrics-server.key"
  --kubeconfig="$kc"
  --authentication-kubeconfig="$kc"
  --authorization-kubeconfig="$kc"
  --kubelet-client-certificate="$pki/metrics-server-client.crt"
  --kubelet-client-key="$pki/metrics-server-client.key"
  --kubelet-insecure-tls
  --kubelet-preferred-address-types=InternalIP
  --kubelet-use-node-status-port
  --kubelet-request-timeout=5s
  --metric-resolution=10s
  --profiling=false
  --v="${KTP_METRICS_SERVER_VERBOSITY:-1}"
)
rm -f "$pidfile"
# shellcheck disable=SC2016 # expanded by the inner bash
setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$bin" "${ms_args[@]}" \
  >>"$logs/metrics-server.log" 2>&1 </dev/null &
for _ in $(seq 100); do running && break; sleep 0.05; done

deadline=$((SECONDS + timeout))
until curl -fsSk --max-time 2 "https://127.0.0.1:$port/livez" >/dev/null 2>&1; do
  if ! running; then
    echo "metrics-server.sh: metrics-server exited; last log lines:" >&2
    tail -n 25 "$logs/metrics-server.log" >&2 || true
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "metrics-server.sh: timed out after ${timeout}s waiting for /livez; last log lines:" >&2
    tail -n 25 "$logs/metrics-server.log" >&2 || true
    stop_process >&2
    exit 1
  fi
  sleep 0.5
done
echo "metrics-server.sh: started metrics-server (pid $(<"$pidfile"), https://$node_ip:$port, log $logs/metrics-server.log)"
