#!/usr/bin/env bash
# shellcheck disable=SC2016 # single-quoted $ expressions are for the inner shell or the output
# A real, local Kubernetes control plane on 127.0.0.1 only: etcd,
# kube-apiserver (RBAC, default admission plugins), kube-controller-manager
# (garbage collector, namespace, resource quota, service accounts, cluster role
# aggregation, Jobs and their TTL) and kube-scheduler, with simulated nodes:
# kwok plays the kubelet of LOCAL_CLUSTER_NODES nodes (hack/kwok-stages.yaml),
# so that pods are scheduled, reported Running and then Succeeded or Failed,
# without running any container. A Job's pod succeeds after 2s unless its
# annotations say otherwise (see hack/kwok-stages.yaml).
#
#   hack/local-cluster.sh up   STATE_DIR   start (idempotent: returns at once when already healthy)
#   hack/local-cluster.sh down STATE_DIR   stop the processes and remove STATE_DIR
#   hack/local-cluster.sh env  STATE_DIR   print `export KUBECONFIG=...` and `export PATH=...`
#   hack/local-cluster.sh port             print a free port to listen on (hack/demo.sh's manager)
#
# Everything lives in STATE_DIR: certificates (openssl), the etcd data, the
# admin kubeconfig (STATE_DIR/kubeconfig, user "admin" in group system:masters),
# the logs (STATE_DIR/*.log), the PIDs (STATE_DIR/*.pid) and the chosen ports
# (STATE_DIR/ports). Binaries come from hack/control-plane.sh (or
# $KUBEBUILDER_ASSETS when it holds them).
#
# Environment:
#   LOCAL_CLUSTER_TIMEOUT   seconds to wait for the control plane (default 120)
#   LOCAL_CLUSTER_NODES     simulated nodes (default 1); 0 starts neither kube-scheduler
#                           nor kwok, and pods are never scheduled
#   KCM_CONTROLLERS         kube-controller-manager --controllers (default below)
#   APISERVER_PROFILING     kube-apiserver --profiling, /debug/pprof for admins (default false; make bench sets true)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TIMEOUT="${LOCAL_CLUSTER_TIMEOUT:-120}"
# Controller names as kube-controller-manager v1.37 lists them under --controllers
# (the old short names are accepted as aliases). "serviceaccount" creates the
# `default` ServiceAccount in every namespace, as in any real cluster.
KCM_CONTROLLERS="${KCM_CONTROLLERS:-garbage-collector-controller,namespace-controller,resourcequota-controller,serviceaccount-token-controller,serviceaccount-controller,clusterrole-aggregation-controller,job-controller,ttl-after-finished-controller}"
APISERVER_PROFILING="${APISERVER_PROFILING:-false}"
NODES="${LOCAL_CLUSTER_NODES:-1}"
SERVICE_CIDR="10.0.0.0/24"
SERVICE_IP="10.0.0.1" # the first address of SERVICE_CIDR: the `kubernetes` Service
POD_CIDR="10.244.0.1/16" # kwok's pod IPs, apart from the Service range
COMPONENTS=(etcd kube-apiserver kube-controller-manager)
[[ "$NODES" =~ ^[0-9]+$ ]] || { echo "local-cluster: LOCAL_CLUSTER_NODES must be a number, not '$NODES'" >&2; exit 2; }
[ "$NODES" -eq 0 ] || COMPONENTS+=(kube-scheduler kwok)

log() { echo "local-cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  echo "usage: $0 {up|down|env} STATE_DIR | $0 port" >&2
  exit 2
}

abspath() {
  mkdir -p "$1"
  (cd "$1" && pwd)
}

bin_dir() {
  local dir
  dir="$(cat "$STATE/bindir" 2>/dev/null || true)"
  if [ -n "$dir" ] && [ -x "$dir/kube-apiserver" ] && { [ "$NODES" -eq 0 ] || { [ -x "$dir/kube-scheduler" ] && [ -x "$dir/kwok" ]; }; }; then
    echo "$dir"
    return
  fi
  "$ROOT/hack/control-plane.sh"
}

# pid_alive NAME: the recorded process runs and still is ours (its command line
# names STATE_DIR), so that a recycled PID is never signalled.
pid_alive() {
  local f="$STATE/$1.pid" pid
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE" || return 1
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# random_port: a port nothing listens on and not yet taken in $STATE, below
# the kernel's ephemeral range: a port there can be the local end of some
# outgoing connection, which a connect test does not see and which makes the
# listener's bind fail ("address already in use").
random_port() {
  local lo=32768 p
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$lo" -gt 11024 ] 2>/dev/null || lo=61024
  for _ in $(seq 200); do
    p=$((10000 + RANDOM % (lo - 10000)))
    if port_free "$p" && ! grep -qx "$p" "${STATE:-/nonexistent}/.taken" 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

# free_port NAME: the port recorded for NAME when it is still free, otherwise a new free one.
free_port() {
  local name="$1" p
  p="$(sed -n "s/^${name}=//p" "$STATE/ports" 2>/dev/null || true)"
  if [ -z "$p" ] || ! port_free "$p" || grep -qx "$p" "$STATE/.taken" 2>/dev/null; then
    p="$(random_port)" || exit 1
  fi
  echo "$p" | tee -a "$STATE/.taken"
}

ssl() { openssl "$@" >/dev/null 2>&1 || { openssl "$@"; die "openssl $1 failed"; }; }

# sign NAME SUBJECT EXTENSIONS: a key and a certificate signed by the cluster CA.
sign() {
  local name="$1" subj="$2" ext="$3" pki="$STATE/pki"
  ssl genrsa -out "$pki/$name.key" 2048
  ssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr"
  printf '%s\n' "$ext" >"$pki/$name.ext"
  ssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

make_pki() {
  local pki="$STATE/pki"
  [ -s "$pki/ca.crt" ] && [ -s "$pki/apiserver.crt" ] && [ -s "$pki/admin.crt" ] &&
    [ -s "$pki/kube-controller-manager.crt" ] && [ -s "$pki/kube-scheduler.crt" ] &&
    [ -s "$pki/kwok.crt" ] && [ -s "$pki/sa.pub" ] && return 0
  log "generating certificates in $pki"
  rm -rf "$pki"
  mkdir -p "$pki"
  chmod 700 "$pki"
  # One CA signs the serving certificate and is the client CA.
  ssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$pki/ca.key" -out "$pki/ca.crt" \
    -days 3650 -sha256 -subj "/CN=local-cluster-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:${SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  sign admin "/O=system:masters/CN=admin" "$client"
  # The controller manager runs every controller with its own credentials
  # (--use-service-account-credentials=false); the garbage collector and the
  # namespace controller delete arbitrary resources, which the bootstrap
  # system:kube-controller-manager role alone does not allow.
  sign kube-controller-manager "/O=system:masters/CN=system:kube-controller-manager" "$client"
  # The scheduler as in any cluster: the bootstrap roles of system:kube-scheduler.
  sign kube-scheduler "/CN=system:kube-scheduler" "$client"
  # kwok plays every simulated node's kubelet (node and pod status, pod
  # deletion); it is its own user, in system:masters as kwok's examples run it.
  sign kwok "/O=system:masters/CN=kwok" "$client"
  ssl genrsa -out "$pki/sa.key" 2048
  ssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
}

# write_kubeconfig FILE USER: a kubeconfig for the cluster with USER's client certificate.
write_kubeconfig() {
  local file="$1" user="$2" pki="$STATE/pki"
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:${API_PORT}
    certificate-authority: ${pki}/ca.crt
users:
- name: ${user}
  user:
    client-certificate: ${pki}/${user}.crt
    client-key: ${pki}/${user}.key
contexts:
- name: local
  context:
    cluster: local
    user: ${user}
current-context: local
EOF
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

# launch NAME BINARY ARGS...: start a process in its own session, detached from
# the caller's terminal and file descriptors, so that it outlives this script.
launch() {
  local name="$1"
  shift
  rm -f "$STATE/$name.pid"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$STATE/$name.pid" "$@" \
    </dev/null >>"$STATE/$name.log" 2>&1 9>&- &

  for _ in $(seq 50); do
    [ -s "$STATE/$name.pid" ] && return 0
    sleep 0.1
  done
  die "$name did not start"
}

# launch_component NAME PORT CERT_DIR [FLAG...]: launch a control-plane
# component (kube-controller-manager, kube-scheduler) that talks to the API
# server with $STATE/NAME.kubeconfig and serves its health on 127.0.0.1:PORT;
# no leader election, no profiling.
launch_component() {
  local name="$1" port="$2" certs="$3"
  shift 3
  launch "$name" "$BIN/$name" \
    --kubeconfig="$STATE/$name.kubeconfig" \
    --authentication-kubeconfig="$STATE/$name.kubeconfig" \
    --authorization-kubeconfig="$STATE/$name.kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$port" \
    --cert-dir="$certs" \
    --leader-elect=false \
    --profiling=false \
    --v=1 \
    "$@"
}

# wait_for WHAT SECONDS COMMAND...: run COMMAND until it succeeds; fail after SECONDS.
wait_for() {
  local what="$1" secs="$2" deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    local c
    for c in "${COMPONENTS[@]}"; do
      if [ -s "$STATE/$c.pid" ] && ! pid_alive "$c"; then
        log "$c exited; last lines of $STATE/$c.log:"
        tail -n 25 "$STATE/$c.log" >&2 || true
        die "$c is not running"
      fi
    done
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${secs}s waiting for $what (logs in $STATE/*.log)"
    sleep 0.3
  done
}

kc() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" --request-timeout=5s "$@"; }

healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
  [ -s "$STATE/kubeconfig" ] || return 1
  [ "$(kc get --raw /readyz 2>/dev/null)" = "ok" ] || return 1
  kc get namespace default >/dev/null 2>&1 || return 1
}

# stop NAMES...: SIGTERM to each (its whole process group), wait up to 10s
# for all of them, then SIGKILL whatever is left.
stop() {
  local c pid pids=()
  for c in "$@"; do
    if pid_alive "$c"; then
      pid="$(cat "$STATE/$c.pid")"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$c:$pid")
    fi
  done
  local deadline=$((SECONDS + 10)) entry running
  while :; do
    running=false
    for entry in "${pids[@]}"; do kill -0 "${entry#*:}" 2>/dev/null && running=true; done
    if ! $running || [ "$SECONDS" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
  for entry in "${pids[@]}"; do
    pid="${entry#*:}"
    if kill -0 "$pid" 2>/dev/null; then
      log "${entry%%:*} (pid $pid) did not stop within 10s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for c in "$@"; do rm -f "$STATE/$c.pid"; done
}

# stop_all: the API server's clients and the API server together, etcd last.
stop_all() {
  stop kwok kube-scheduler kube-controller-manager kube-apiserver
  stop etcd
}

on_up_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] && return 0
  log "start failed; stopping what was started (logs stay in $STATE)"
  stop_all
  return "$rc"
}

cmd_up() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w "$TIMEOUT" 9 || die "another '$0 up' holds $STATE/.lock"
  BIN="$(bin_dir)"
  [ -x "$BIN/kube-apiserver" ] || die "no control-plane binaries (hack/control-plane.sh)"
  echo "$BIN" >"$STATE/bindir"

  if healthy; then
    log "already running: $(kc config view -o jsonpath='{.clusters[0].cluster.server}') (state in $STATE)"
    return 0
  fi
  local started=$SECONDS
  stop_all # whatever is left of an earlier, unhealthy start
  # A failed start leaves nothing running (the logs stay in STATE_DIR).
  trap on_up_exit EXIT

  make_pki
  rm -f "$STATE/.taken"
  local etcd_port peer_port kcm_port scheduler_port kwok_port
  etcd_port="$(free_port etcd)"
  peer_port="$(free_port etcd-peer)"
  API_PORT="$(free_port apiserver)"
  kcm_port="$(free_port kube-controller-manager)"
  scheduler_port="$(free_port kube-scheduler)"
  kwok_port="$(free_port kwok)"
  printf 'etcd=%s\netcd-peer=%s\napiserver=%s\nkube-controller-manager=%s\nkube-scheduler=%s\nkwok=%s\n' \
    "$etcd_port" "$peer_port" "$API_PORT" "$kcm_port" "$scheduler_port" "$kwok_port" >"$STATE/ports"
  rm -f "$STATE/.taken"
  local c
  write_kubeconfig "$STATE/kubeconfig" admin
  for c in kube-controller-manager kube-scheduler kwok; do write_kubeconfig "$STATE/$c.kubeconfig" "$c"; done
  local pki="$STATE/pki"

  log "starting etcd on 127.0.0.1:$etcd_port"
  mkdir -p "$STATE/etcd"
  chmod 700 "$STATE/etcd"
  launch etcd "$BIN/etcd" \
    --name=local \
    --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="local=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true \
    --log-level=warn
  wait_for "etcd" "$TIMEOUT" curl -fsS "http://127.0.0.1:$etcd_port/health"

  log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
  launch kube-apiserver "$BIN/kube-apiserver" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --secure-port="$API_PORT" \
    --cert-dir="$STATE/apiserver-certs" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --authorization-mode=RBAC \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --allow-privileged=true \
    --profiling="$APISERVER_PROFILING" \
    --v=1
  wait_for "kube-apiserver /readyz" "$TIMEOUT" bash -c '[ "$("$0" --kubeconfig "$1" --request-timeout=5s get --raw /readyz)" = ok ]' \
    "$BIN/kubectl" "$STATE/kubeconfig"

  log "starting kube-controller-manager (controllers: $KCM_CONTROLLERS)"
  launch_component kube-controller-manager "$kcm_port" "$STATE/kcm-certs" \
    --controllers="$KCM_CONTROLLERS" \
    --use-service-account-credentials=false \
    --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt"
  wait_for "kube-controller-manager /healthz" "$TIMEOUT" curl -fsSk "https://127.0.0.1:$kcm_port/healthz"
  [ "$NODES" -eq 0 ] || start_nodes "$scheduler_port" "$kwok_port"
  wait_for "namespace default" "$TIMEOUT" kc get namespace default
  wait_for "cluster healthy" "$TIMEOUT" healthy
  trap - EXIT
  log "ready in $((SECONDS - started))s: https://127.0.0.1:$API_PORT; use: source <($0 env $STATE)"
}

# start_nodes SCHEDULER_PORT KWOK_PORT: kube-scheduler, kwok and the simulated
# nodes, which kwok reports Ready.
start_nodes() {
  local scheduler_port="$1" kwok_port="$2" i nodes=() started=$SECONDS
  log "starting kube-scheduler"
  launch_component kube-scheduler "$scheduler_port" "$STATE/scheduler-certs"
  log "starting kwok ($NODES simulated node(s), stages in hack/kwok-stages.yaml)"
  # HOME: kwok also reads ~/.kwok/kwok.yaml, which must not change this cluster.
  HOME="$STATE" launch kwok "$BIN/kwok" \
    --kubeconfig="$STATE/kwok.kubeconfig" \
    --config="$ROOT/hack/kwok-stages.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=0 \
    --cidr="$POD_CIDR" \
    --node-ip=127.0.0.1 \
    --server-address="127.0.0.1:$kwok_port"
  for ((i = 0; i < NODES; i++)); do
    nodes+=("node/kwok-node-$i")
    kc apply --server-side --field-manager=local-cluster -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110"}
  capacity: {cpu: "16", memory: 64Gi, pods: "110"}
EOF
  done
  wait_for "kube-scheduler /healthz" "$TIMEOUT" curl -fsSk "https://127.0.0.1:$scheduler_port/healthz"
  wait_for "kwok /healthz" "$TIMEOUT" curl -fsS "http://127.0.0.1:$kwok_port/healthz"
  wait_for "simulated nodes Ready" "$TIMEOUT" kc wait --for=condition=Ready --timeout=5s "${nodes[@]}"
  # The API server taints a new node not-ready; the node lifecycle controller,
  # which this cluster does not run, would lift the taint once the node is Ready.
  for i in "${nodes[@]}"; do
    if [ -n "$(kc get "$i" -o jsonpath='{.spec.taints[?(@.key=="node.kubernetes.io/not-ready")].key}')" ]; then
      kc taint nodes "${i#node/}" node.kubernetes.io/not-ready- >/dev/null
    fi
  done
  log "kube-scheduler, kwok and $NODES simulated node(s) ready in $((SECONDS - started))s"
}

cmd_down() {
  if [ ! -d "$STATE" ]; then
    log "nothing to do: $STATE does not exist"
    return 0
  fi
  stop_all
  rm -rf "$STATE"
  log "stopped and removed $STATE"
}

cmd_env() {
  [ -s "$STATE/kubeconfig" ] || die "no cluster in $STATE (run: $0 up $STATE)"
  BIN="$(bin_dir)"
  printf 'export KUBECONFIG=%q\n' "$STATE/kubeconfig"
  printf 'export PATH=%q:"$PATH"\n' "$BIN"
}

[ $# -eq 2 ] || [ "$*" = port ] || usage
case "$1" in
  up) STATE="$(abspath "$2")"; cmd_up ;;
  down)
    if [ -d "$2" ]; then STATE="$(cd "$2" && pwd)"; else STATE="$2"; fi
    cmd_down
    ;;
  env) [ -d "$2" ] || die "no cluster in $2"; STATE="$(cd "$2" && pwd)"; cmd_env ;;
  port) random_port ;;
  *) usage ;;
esac
