#!/usr/bin/env bash
# Make all the PKI of the test control plane with openssl only.
#
#   test/cluster/pki.sh <dir>
#
# Writes into <dir> (files that already exist are kept, so a rerun completes a
# partial directory and never rotates anything):
#   ca.crt ca.key                          cluster CA (signs every client/serving
#                                          cert here and, via kcm, kubelet CSRs)
#   apiserver.crt apiserver.key            kube-apiserver serving cert
#   sa.key sa.pub                          service-account signing key pair
#   front-proxy-ca.crt front-proxy-ca.key  request-header CA (aggregation)
#   front-proxy-client.crt/.key            apiserver -> aggregated API servers
#   admin.crt/.key                         CN admin, O system:masters
#   kube-controller-manager.crt/.key       CN system:kube-controller-manager
#   kube-scheduler.crt/.key                CN system:kube-scheduler
#   apiserver-kubelet-client.crt/.key      CN/O kube-apiserver-kubelet-client
#   admin.kubeconfig kube-controller-manager.kubeconfig kube-scheduler.kubeconfig
#
# Env:
#   KTP_APISERVER_HOST     address in the kubeconfigs (default 127.0.0.1)
#   KTP_APISERVER_PORT     port in the kubeconfigs (default 16443)
#   KTP_APISERVER_EXTRA_SANS  extra SANs for the serving cert, comma separated,
#                          each an IP or a DNS name (e.g. "10.200.0.1,myhost")
#   KTP_SERVICE_IP         first service IP, put in the SANs (default 10.96.0.1)
#   KTP_PKI_KEY            rsa (default, 2048 bits) or ec (P-256)
#   KTP_CERT_DAYS          validity of leaf certs in days (default 365)
set -euo pipefail

if [[ $# -ne 1 || "$1" == -* ]]; then
  echo "usage: $0 <dir>" >&2
  exit 2
fi
dir="$1"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
umask 077

host="${KTP_APISERVER_HOST:-127.0.0.1}"
port="${KTP_APISERVER_PORT:-16443}"
service_ip="${KTP_SERVICE_IP:-10.96.0.1}"
key_alg="${KTP_PKI_KEY:-rsa}"
days="${KTP_CERT_DAYS:-365}"
ca_days=3650

command -v openssl >/dev/null || { echo "pki.sh: openssl not found" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# new_key <file>: a private key (PKCS#8 PEM) unless the file exists.
new_key() {
  local out="$1"
  if [[ -s "$out" ]]; then return 0; fi
  case "$key_alg" in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out.tmp" 2>/dev/null ;;
    ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.tmp" ;;
    *) echo "pki.sh: KTP_PKI_KEY must be rsa or ec, not $key_alg" >&2; exit 1 ;;
  esac
  mv "$out.tmp" "$out"
}

key_usage() {
  # keyEncipherment only means something for RSA keys.
  if [[ "$key_alg" == rsa ]]; then echo "critical,digitalSignature,keyEncipherment"
  else echo "critical,digitalSignature"; fi
}

# new_ca <name> <CN>: self-signed CA <name>.crt/<name>.key.
new_ca() {
  local name="$1" cn="$2"
  new_key "$dir/$name.key"
  if [[ -s "$dir/$name.crt" ]]; then return 0; fi
  cat >"$tmp/$name.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = $cn
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -config "$tmp/$name.cnf" -key "$dir/$name.key" \
    -sha256 -days "$ca_days" -out "$dir/$name.crt.tmp"
  mv "$dir/$name.crt.tmp" "$dir/$name.crt"
}

# new_cert <ca> <name> <subject> <serverAuth|clientAuth> [SAN list]
# Leaf cert <name>.crt/<name>.key signed by <ca>.crt/<ca>.key.
new_cert() {
  local ca="$1" name="$2" subj="$3" eku="$4" sans="${5:-}"
  new_key "$dir/$name.key"
  if [[ -s "$dir/$name.crt" ]]; then return 0; fi
  {
    echo "[ext]"
    echo "basicConstraints = critical,CA:FALSE"
    echo "keyUsage = $(key_usage)"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    if [[ -n "$sans" ]]; then echo "subjectAltName = $sans"; fi
  } >"$tmp/$name.ext"
  openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$tmp/$name.csr"
  openssl x509 -req -in "$tmp/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -sha256 -days "$days" \
    -extfile "$tmp/$name.ext" -extensions ext -out "$dir/$name.crt.tmp" 2>/dev/null
  mv "$dir/$name.crt.tmp" "$dir/$name.crt"
}

# san_entry <value>: "IP:v" for an IPv4/IPv6 address, "DNS:v" otherwise.
san_entry() {
  if [[ "$1" =~ ^[0-9.]+$ || "$1" == *:* ]]; then echo "IP:$1"; else echo "DNS:$1"; fi
}

b64() { base64 -w0 <"$1"; }

# new_kubeconfig <name> <user>: <name>.kubeconfig with embedded certs.
new_kubeconfig() {
  local name="$1" user="$2" out="$dir/$1.kubeconfig"
  if [[ -s "$out" ]]; then return 0; fi
  cat >"$out.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-test-plane
  cluster:
    server: https://$host:$port
    certificate-authority-data: $(b64 "$dir/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(b64 "$dir/$name.crt")
    client-key-data: $(b64 "$dir/$name.key")
contexts:
- name: $user@kube-test-plane
  context:
    cluster: kube-test-plane
    user: $user
current-context: $user@kube-test-plane
EOF
  mv "$out.tmp" "$out"
}

# Cluster CA and the apiserver's serving certificate.
new_ca ca kube-test-plane-ca
sans="IP:127.0.0.1,IP:$service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default"
sans+=",DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
if [[ "$host" != 127.0.0.1 && "$host" != localhost ]]; then sans+=",$(san_entry "$host")"; fi
if [[ -n "${KTP_APISERVER_EXTRA_SANS:-}" ]]; then
  IFS=',' read -r -a extra <<<"$KTP_APISERVER_EXTRA_SANS"
  for s in "${extra[@]}"; do
    if [[ -n "$s" ]]; then sans+=",$(san_entry "$s")"; fi
  done
fi
new_cert ca apiserver "/CN=kube-apiserver" serverAuth "$sans"

# Service-account token signing key pair.
new_key "$dir/sa.key"
[[ -s "$dir/sa.pub" ]] || openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub"

# Front proxy (request-header authentication for aggregated API servers).
new_ca front-proxy-ca kube-test-plane-front-proxy-ca
new_cert front-proxy-ca front-proxy-client "/CN=front-proxy-client" clientAuth

# Client identities.
new_cert ca admin "/CN=admin/O=system:masters" clientAuth
new_cert ca kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
new_cert ca kube-scheduler "/CN=system:kube-scheduler" clientAuth
new_cert ca apiserver-kubelet-client \
  "/CN=kube-apiserver-kubelet-client/O=kube-apiserver-kubelet-client" clientAuth

new_kubeconfig admin admin
new_kubeconfig kube-controller-manager system:kube-controller-manager
new_kubeconfig kube-scheduler system:kube-scheduler

# Certificates are public; keys stay 0600.
chmod 0644 "$dir"/*.crt "$dir/sa.pub"
echo "pki.sh: PKI ready in $dir"
