#!/usr/bin/env bash
# README command one: bring tskubelet up on its embedded default, on a fresh machine, as root.
#
#   hack/up.sh            install what is missing, build, start a private containerd and
#                         tskubelet standalone with the example static pods; print what runs
#
# Everything lives under .run/ in the repository: containerd (root, state, socket, CNI config),
# tskubelet's root dir, pod logs, its log file and PID. Stopping tskubelet (kill its PID) leaves
# the pods running, as with the upstream kubelet; hack/down.sh stops and removes everything.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="$repo/.run"
ctrd="$run/containerd"
say() { echo "up: $*" >&2; }
die() { echo "up: error: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (containerd, CNI and cgroups need it)"
cd "$repo"
mkdir -p "$run"

say "installing what is missing (apt packages, npm dependencies)"
TSK_SKIP_PACKAGES="${TSK_SKIP_PACKAGES:-chromium docker-registry apache2-utils}" bash hack/install-deps.sh
say "building tskubelet"
npm run --silent build
say "building the local images (pause, busybox) from busybox-static"
bash hack/build-images.sh "$run/images" >/dev/null

if bash hack/containerd.sh status "$ctrd" >/dev/null 2>&1; then
  say "private containerd already running"
else
  rm -rf "$ctrd"
  say "starting a private containerd (bridge tskbr0, 10.244.0.0/24)"
  TSK_QUIET=1 bash hack/containerd.sh start "$ctrd" --bridge tskbr0 --subnet 10.244.0.0/24 --images "$run/images" >/dev/null
fi
endpoint="unix://$ctrd/containerd.sock"

if [[ -f "$run/tskubelet.pid" ]] && kill -0 "$(cat "$run/tskubelet.pid")" 2>/dev/null; then
  say "tskubelet already running (pid $(cat "$run/tskubelet.pid"))"
else
  say "starting tskubelet"
  mkdir -p "$run/kubelet" "$run/pod-logs"
  nohup node "$repo/dist/src/cli/main.js" \
    --config "$repo/examples/standalone/kubelet-config.yaml" \
    --container-runtime-endpoint "$endpoint" \
    --root-dir "$run/kubelet" \
    --pod-logs-dir "$run/pod-logs" \
    -v 2 >"$run/tskubelet.log" 2>&1 &
  echo $! >"$run/tskubelet.pid"
fi

for _ in $(seq 1 100); do
  curl -fsS -m 1 http://127.0.0.1:10248/healthz >/dev/null 2>&1 && break
  kill -0 "$(cat "$run/tskubelet.pid")" 2>/dev/null || { tail -20 "$run/tskubelet.log" >&2; die "tskubelet exited; log above"; }
  sleep 0.2
done
say "waiting for the example pods to run"
for _ in $(seq 1 150); do
  n=$(curl -fsS -m 1 http://127.0.0.1:10255/pods 2>/dev/null | node -e '
    let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const l=JSON.parse(s).items;
    console.log(l.filter(p=>(p.status.containerStatuses||[]).every(c=>c.state&&c.state.running)&&(p.status.containerStatuses||[]).length>0).length+"/"+l.length)}catch{console.log("0/0")}})') || n="0/0"
  [[ "$n" == "2/2" ]] && break
  sleep 0.2
done

curl -fsS http://127.0.0.1:10255/pods | node -e '
let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
  const rows=JSON.parse(s).items.map(p=>[p.metadata.name,p.status.phase,p.status.podIP||"-",
    (p.status.containerStatuses||[]).map(c=>c.name+"="+Object.keys(c.state||{})[0]).join(",")]);
  rows.unshift(["POD","PHASE","IP","CONTAINERS"]);
  const w=rows[0].map((_,i)=>Math.max(...rows.map(r=>r[i].length)));
  for (const r of rows) console.log(r.map((c,i)=>c.padEnd(w[i])).join("   "));
});'
web_ip=$(curl -fsS http://127.0.0.1:10255/pods | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).items.find(p=>p.metadata.name.startsWith("web-"));console.log(p&&p.status.podIP||"")})')
cat <<EOT

tskubelet is running (pid $(cat "$run/tskubelet.pid"), log $run/tskubelet.log)
  runtime      $endpoint
  10250        https://127.0.0.1:10250/pods       kubelet API (self-signed; this demo allows local clients)
  10255        http://127.0.0.1:10255/pods        read-only API (no auth)
  10248        http://127.0.0.1:10248/healthz     health, localhost only
  4194         http://127.0.0.1:4194/             container metrics and the web UI
  web pod      http://${web_ip:-<pod IP>}:8080/    busybox httpd on the pod network
  node-agent   http://127.0.0.1:18080/            hostNetwork pod
Static pods are read from $repo/examples/static-pods (add, edit or remove a file to see it react).
Stop tskubelet only (pods keep running):   kill \$(cat $run/tskubelet.pid)
Stop and clean up everything:               hack/down.sh
EOT
