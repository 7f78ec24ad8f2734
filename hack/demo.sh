#!/usr/bin/env bash
# shellcheck disable=SC2016 # single-quoted $ expressions are for the inner shell or the output
# The offering-operator demo on a local control plane (hack/local-cluster.sh).
#
#   hack/demo.sh up     start (or reuse) the cluster and the manager, apply the
#                       samples, walk the story and show the result
#   hack/demo.sh down   stop the manager and the cluster, remove the state dir
#   hack/demo.sh env    print the exports that point kubectl at the demo cluster
#                       and put the kubectl-offering plugin on PATH
#
# A second local control plane, member cluster colo-ams-1 (state in
# DEMO_DIR/members/colo-ams-1, no nodes), is started beside the first and
# registered as a member of the operator's fleet, the way a cluster admin does
# it (docs/guide-provider.md, "Member clusters"); the sample item
# rack-space-ams places its grants there (config/samples/fleet).
#
# What is simulated: the cluster's nodes. kube-scheduler places pods on nodes
# that kwok plays (hack/local-cluster.sh, hack/kwok-stages.yaml): no container
# runs, a Job's pod is reported Running and then Succeeded. Everything else is
# a real Kubernetes control plane and the real operator.
#
# `make demo` builds bin/manager first and runs `hack/demo.sh up`; `make demo-down`
# runs `hack/demo.sh down`. Idempotent: a second `up` reuses what runs and takes
# seconds. Every wait is bounded.
#
# Environment:
#   DEMO_DIR            state dir (default: $PWD/.demo): the cluster's state, the
#                       manager's PID (manager.pid), log (manager.log) and ports,
#                       and the member cluster's state (members/colo-ams-1)
#   MANAGER_BINARY      the manager (default: bin/manager)
#   PLUGIN_BINARY       the kubectl-offering plugin (default: bin/kubectl-offering)
#   DEMO_MANAGER_ARGS   extra arguments for the manager (word-split; default
#                       --allowed-cluster-roles=view, as the sample offering grants
#                       the aggregated `view` ClusterRole)
#   DEMO_READY_TIMEOUT  seconds to wait for the sample offerings to be Ready (default 60)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-$PWD/.demo}"
MANAGER_BINARY="${MANAGER_BINARY:-$ROOT/bin/manager}"
PLUGIN_BINARY="${PLUGIN_BINARY:-$ROOT/bin/kubectl-offering}"
PLUGIN_DIR="$(dirname "$PLUGIN_BINARY")"
READY_TIMEOUT="${DEMO_READY_TIMEOUT:-60}"
MANAGER_ARGS="${DEMO_MANAGER_ARGS---allowed-cluster-roles=view}"
CLUSTER="$ROOT/hack/local-cluster.sh"
SAMPLES="$ROOT/config/samples"
# The member cluster: its name in the hub (the registration Secret's name),
# the label the sample placement selects, and the operator's namespace in the
# hub, where registration Secrets live (the manager runs as if deployed there).
MEMBER=colo-ams-1
MEMBER_LABEL=acme.example/site=ams-1
OPERATOR_NS=offering-operator-system

if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
say() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }
log() { echo "demo: $*" >&2; }
die() { log "error: $*"; exit 1; }

# kc runs the control plane's kubectl against the demo cluster, bounded in time.
kc() { timeout 150 "$KUBECTL" --kubeconfig "$DEMO_DIR/kubeconfig" "$@"; }

# kcm runs kubectl against the member cluster, as its admin.
kcm() { timeout 150 "$KUBECTL" --kubeconfig "$MEMBER_DIR/kubeconfig" "$@"; }

# kubectl_offering runs `kubectl offering ...` as the user types it: kubectl
# finds the plugin on PATH (the PATH that `hack/demo.sh env` prints).
kubectl_offering() {
  KUBECONFIG="$DEMO_DIR/kubeconfig" PATH="$PLUGIN_DIR:$PATH" timeout 150 "$KUBECTL" offering "$@"
}

# A path as the user would type it: relative to the current directory when below it.
shown() {
  case "$1" in
    "$PWD"/*) echo "${1#"$PWD"/}" ;;
    *) echo "$1" ;;
  esac
}

# free_port: a port to listen on, chosen as the control plane's are.
free_port() { "$CLUSTER" port; }

# ---------------------------------------------------------------------------
# Setting up: cluster, CRDs, personas, manager, samples.

# cluster_up DIR [ENV...]: hack/local-cluster.sh up, tried twice: two clusters
# starting together can pick the same free port, and the second start of the
# one that lost picks another.
cluster_up() {
  local dir="$1"
  shift
  env "$@" "$CLUSTER" up "$dir" && return 0
  log "starting the cluster in $(shown "$dir") failed; trying once more"
  env "$@" "$CLUSTER" up "$dir"
}

# step_cluster starts the hub and the member cluster side by side, and
# prepares the member while the hub still starts; the member needs no nodes
# (a grant is namespaces, RoleBindings, quotas and policies). Lines about the
# member are prefixed with its name.
step_cluster() {
  say "Local control planes: the hub (state in $(shown "$DEMO_DIR")) and member cluster $MEMBER (state in $(shown "$MEMBER_DIR"))"
  mkdir -p "$MEMBER_DIR"
  (
    cluster_up "$MEMBER_DIR" LOCAL_CLUSTER_NODES=0 || exit 1
    prepare_member
  ) 2>&1 | sed -u "s/^/[$MEMBER] /" >&2 &
  local member=$!
  if ! cluster_up "$DEMO_DIR"; then
    wait "$member" || true
    die "the hub's control plane did not start (logs in $(shown "$DEMO_DIR")/*.log)"
  fi
  wait "$member" || die "member cluster $MEMBER is not ready (see the lines above, and the logs in $(shown "$MEMBER_DIR")/*.log)"
  KUBECTL="$(cat "$DEMO_DIR/bindir")/kubectl"
  [ -x "$KUBECTL" ] || die "no kubectl in $(cat "$DEMO_DIR/bindir")"
}

step_crds() {
  say "Installing the CRDs (server-side apply)"
  kc apply --server-side --force-conflicts -f "$ROOT/config/crd/bases"
  kc wait --for=condition=Established --timeout=60s -f "$ROOT/config/crd/bases" >/dev/null
  say "Installing the admission policy (new requests get the operator's finalizer in the API server)"
  kc apply --server-side --force-conflicts -k "$ROOT/config/admission"
  KUBECTL="$KUBECTL" "$ROOT/hack/wait-for-admission.sh" --kubeconfig "$DEMO_DIR/kubeconfig"
}

step_personas() {
  local files=() f
  for f in "$ROOT"/config/rbac/{provider,approver,consumer,offering_viewer}_role.yaml "$ROOT"/config/rbac/aggregate_to_*_role.yaml; do
    [ -e "$f" ] && files+=(-f "$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  say "Applying the personas' RBAC"
  kc apply --server-side --force-conflicts "${files[@]}"
}

manager_pid_alive() {
  local pid
  [ -s "$DEMO_DIR/manager.pid" ] || return 1
  pid="$(cat "$DEMO_DIR/manager.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  # Only our manager: its command line names the demo's kubeconfig.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DEMO_DIR/kubeconfig"
}

manager_ready() {
  local probe
  probe="$(sed -n 's/^probe=//p' "$DEMO_DIR/manager.ports" 2>/dev/null)"
  [ -n "$probe" ] && curl -fsS -m 5 "http://127.0.0.1:$probe/readyz" >/dev/null 2>&1
}

current_server() {
  kc config view --minify -o jsonpath='{.clusters[0].cluster.server}'
}

stop_manager() {
  local pid
  if manager_pid_alive; then
    pid="$(cat "$DEMO_DIR/manager.pid")"
    log "stopping the manager (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "the manager did not stop within 15s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$DEMO_DIR/manager.pid" "$DEMO_DIR/manager.ports" "$DEMO_DIR/manager.server"
}

step_manager() {
  say "Operator (log in $(shown "$DEMO_DIR/manager.log"))"
  local binary_sum
  # A rebuilt binary or other arguments restart the manager.
  binary_sum="$(sha256sum "$MANAGER_BINARY" 2>/dev/null | cut -d' ' -f1) $OPERATOR_NS $MANAGER_ARGS"
  if manager_pid_alive && manager_ready &&
    [ "$(cat "$DEMO_DIR/manager.server" 2>/dev/null)" = "$(current_server)" ] &&
    [ "$(cat "$DEMO_DIR/manager.sha256" 2>/dev/null)" = "$binary_sum" ]; then
    echo "manager already running (pid $(cat "$DEMO_DIR/manager.pid"))"
    return 0
  fi
  stop_manager # a manager from an earlier cluster or binary, or one that is not ready
  [ -x "$MANAGER_BINARY" ] || die "no manager binary at $MANAGER_BINARY: run \`make demo\` (it builds bin/manager) or \`make build\`"
  local metrics probe
  metrics="$(free_port)"
  probe="$(free_port)"
  while [ "$probe" = "$metrics" ]; do probe="$(free_port)"; done
  printf 'metrics=%s\nprobe=%s\n' "$metrics" "$probe" >"$DEMO_DIR/manager.ports"
  current_server >"$DEMO_DIR/manager.server"
  echo "$binary_sum" >"$DEMO_DIR/manager.sha256"
  # POD_NAMESPACE: the manager runs as if deployed in $OPERATOR_NS, where it
  # finds the member clusters' registration Secrets.
  # shellcheck disable=SC2086 # MANAGER_ARGS is meant to be word-split
  POD_NAMESPACE="$OPERATOR_NS" KUBECONFIG="$DEMO_DIR/kubeconfig" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$DEMO_DIR/manager.pid" \
    "$MANAGER_BINARY" \
    --kubeconfig="$DEMO_DIR/kubeconfig" \
    --metrics-bind-address="127.0.0.1:$metrics" \
    --health-probe-bind-address="127.0.0.1:$probe" \
    --leader-elect=false \
    $MANAGER_ARGS \
    </dev/null >>"$DEMO_DIR/manager.log" 2>&1 &
  local deadline=$((SECONDS + 60))
  until [ -s "$DEMO_DIR/manager.pid" ] && manager_ready; do
    if [ -s "$DEMO_DIR/manager.pid" ] && ! kill -0 "$(cat "$DEMO_DIR/manager.pid")" 2>/dev/null; then
      tail -n 30 "$DEMO_DIR/manager.log" >&2 || true
      die "the manager exited (log: $DEMO_DIR/manager.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$DEMO_DIR/manager.log" >&2 || true
      die "the manager is not ready after 60s (log: $DEMO_DIR/manager.log)"
    fi
    sleep 0.3
  done
  echo "manager started (pid $(cat "$DEMO_DIR/manager.pid"), probes on 127.0.0.1:$probe, metrics on https://127.0.0.1:$metrics/metrics)"
}

# member_credentials prints the token of the operator's ServiceAccount in the
# member and the member's CA, both base64, once kube-controller-manager has
# filled in the token Secret that config/member asks for.
member_credentials() {
  local creds="" deadline=$((SECONDS + 60))
  until [ -n "${creds% *}" ] && [ -n "${creds#* }" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "no token in secret/offering-operator-hub-token of $OPERATOR_NS in $MEMBER after 60s"
    [ -z "$creds" ] || sleep 0.3
    creds="$(kcm -n "$OPERATOR_NS" get secret/offering-operator-hub-token -o jsonpath='{.data.token} {.data.ca\.crt}' 2>/dev/null || echo " ")"
  done
  echo "$creds"
}

# write_member_kubeconfig FILE: the operator's kubeconfig for the member, with
# inline credentials only (its ServiceAccount token and the member's CA), as
# the hub accepts them.
write_member_kubeconfig() {
  local file="$1" creds token ca port
  creds="$(member_credentials)" # not read from <(...): its failure must stop the demo
  token="${creds% *}" ca="${creds#* }"
  port="$(sed -n 's/^apiserver=//p' "$MEMBER_DIR/ports")"
  [ -n "$port" ] || die "no API server port in $(shown "$MEMBER_DIR/ports")"
  (
    umask 077
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $MEMBER
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $ca
users:
- name: offering-operator-hub
  user:
    token: $(echo "$token" | base64 -d)
contexts:
- name: $MEMBER
  context:
    cluster: $MEMBER
    user: offering-operator-hub
current-context: $MEMBER
EOF
  )
}

# prepare_member does in the member cluster what its admin does before
# registering it (docs/guide-provider.md, "Member clusters"): the operator's
# role and identity there, the ClusterRoles its grants bind, and the
# operator's kubeconfig for it.
prepare_member() {
  KUBECTL="$(cat "$MEMBER_DIR/bindir")/kubectl"
  say "Member cluster $MEMBER: the operator's role there (config/member) and the ClusterRoles its grants bind ($(shown "$SAMPLES/fleet/member_prerequisites.yaml"))"
  kcm apply --server-side --force-conflicts -k "$ROOT/config/member"
  kcm apply --server-side --force-conflicts -f "$SAMPLES/fleet/member_prerequisites.yaml"
  write_member_kubeconfig "$MEMBER_DIR/operator.kubeconfig"
  echo "the operator's kubeconfig for $MEMBER: $(shown "$MEMBER_DIR/operator.kubeconfig") (ServiceAccount $OPERATOR_NS/offering-operator-hub)"
}

# step_member registers the member cluster in the hub: the operator's
# kubeconfig in a Secret of its namespace, labelled for the operator and with
# the label the sample placement selects.
step_member() {
  local kubeconfig="$MEMBER_DIR/operator.kubeconfig"
  say "Registering $MEMBER in the hub: $(shown "$kubeconfig") in secret/$MEMBER of $OPERATOR_NS, labelled service.offering.dev/member-cluster=true $MEMBER_LABEL"
  kc apply --server-side --force-conflicts -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $OPERATOR_NS
---
apiVersion: v1
kind: Secret
metadata:
  name: $MEMBER
  namespace: $OPERATOR_NS
  labels:
    service.offering.dev/member-cluster: "true"
    ${MEMBER_LABEL%%=*}: ${MEMBER_LABEL#*=}
data:
  kubeconfig: $(base64 -w0 "$kubeconfig")
EOF
}

# The sample files in the order to apply them: prerequisites first, the
# kustomization left out.
sample_files() {
  local f
  for f in "$SAMPLES"/prerequisites*.yaml; do [ -e "$f" ] && echo "$f"; done
  for f in "$SAMPLES"/*.yaml; do
    case "$(basename "$f")" in
      kustomization.yaml | prerequisites*.yaml) ;;
      *) [ -e "$f" ] && echo "$f" ;;
    esac
  done
}

step_samples() {
  say "Applying the samples ($(shown "$SAMPLES"))"
  local files=() f attempt
  while IFS= read -r f; do files+=(-f "$f"); done < <(sample_files)
  [ ${#files[@]} -gt 0 ] ||
    die "no samples in $SAMPLES: the demo needs config/samples/*.yaml (a ServiceOffering, a ServiceAgreement, ConsumptionRequests and their prerequisites)"
  for attempt in 1 2 3 4 5; do
    kc apply "${files[@]}" && break
    [ "$attempt" -lt 5 ] || die "applying the samples failed"
    log "applying the samples failed (attempt $attempt); retrying"
    sleep 2
  done
  # Wait (bounded) until every sample object can be read back.
  local deadline=$((SECONDS + 30))
  until kc get "${files[@]}" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "the sample objects are not all readable after 30s"
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------
# Walking the story. Each step is a function; append new ones to STORY.

OFFERINGS_READY=true

# The ServiceOfferings among the samples (others in the cluster are not the demo's).
sample_offerings() {
  local files=() f
  while IFS= read -r f; do files+=(-f "$f"); done < <(sample_files)
  kc get "${files[@]}" -o name | grep '^serviceoffering' || true
}

story_offerings_ready() {
  local offerings
  mapfile -t offerings < <(sample_offerings)
  [ ${#offerings[@]} -gt 0 ] || die "no ServiceOffering among the samples in $(shown "$SAMPLES")"
  say "Waiting up to ${READY_TIMEOUT}s for the sample ServiceOfferings to be Ready (${offerings[*]})"
  if ! kc wait --for=condition=Ready --timeout="${READY_TIMEOUT}s" "${offerings[@]}"; then
    OFFERINGS_READY=false
    log "WARNING: not every sample ServiceOffering is Ready; see the Reason column below and $(shown "$DEMO_DIR/manager.log")"
  fi
}

story_show() {
  say "kubectl get offering -A"
  kc get offering -A
  say "kubectl get serviceofferings,serviceagreements,consumptionrequests -A -o wide"
  kc get serviceofferings,serviceagreements,consumptionrequests -A -o wide
}

DEPLOYER=system:serviceaccount:team-payments:deployer

# can_i prints what the consumer's ServiceAccount may do in a namespace.
can_i() {
  local ns="$1" answer
  answer="$(kc auth can-i create deployments -n "$ns" --as="$DEPLOYER" 2>/dev/null || true)"
  echo "  kubectl auth can-i create deployments -n $ns --as=$DEPLOYER   ->  ${answer:-no}"
}

# conditions prints a request's conditions, one a line.
conditions() {
  kc -n team-payments get "consumptionrequest/$1" \
    -o jsonpath='{range .status.conditions[*]}  {.type}={.status} ({.reason}): {.message}{"\n"}{end}'
}

story_access() {
  say "Access to resources: rack-a is granted and verified"
  kc -n team-payments wait --for=condition=Ready consumptionrequest/rack-a --timeout=60s ||
    die "rack-a did not become Ready; see: kubectl describe consumptionrequest rack-a -n team-payments"
  GRANTED="$(kc -n team-payments get consumptionrequest/rack-a -o jsonpath='{.status.grant.namespace}')"
  conditions rack-a
  echo "  granted namespace $GRANTED holds:"
  kc -n "$GRANTED" get rolebindings,resourcequotas,limitranges,networkpolicies --no-headers | sed 's/^/    /'
  can_i "$GRANTED"
}

# member_can_i prints what the consumer's ServiceAccount may do in a namespace
# of the member cluster, asking the member's API server; anything but yes fails.
member_can_i() {
  local ns="$1" answer
  answer="$(kcm auth can-i create deployments -n "$ns" --as="$DEPLOYER" 2>/dev/null || true)"
  echo "  kubectl --kubeconfig $(shown "$MEMBER_DIR/kubeconfig") auth can-i create deployments -n $ns --as=$DEPLOYER   ->  ${answer:-no}"
  [ "$answer" = yes ] || die "the member cluster's API server does not let $DEPLOYER create deployments in $ns"
}

story_fleet() {
  say "Fleet: member cluster $MEMBER is registered and reachable"
  # The operator writes the MemberCluster when it first sees the Secret.
  if ! kc wait --for=create "membercluster/$MEMBER" --timeout=60s >/dev/null ||
    ! kc wait --for=condition=Ready "membercluster/$MEMBER" --timeout=60s >/dev/null; then
    kc get memberclusters -o wide || true
    die "member cluster $MEMBER is not Ready; see: kubectl describe membercluster $MEMBER"
  fi
  kc get memberclusters
  say "Access in a member cluster: rack-ams asks for rack-space-ams, placed in clusters labelled $MEMBER_LABEL"
  kc apply -f "$SAMPLES/fleet/service_v1alpha1_consumptionrequest_fleet.yaml"
  if ! kc -n team-payments wait --for=condition=Ready consumptionrequest/rack-ams --timeout=60s; then
    conditions rack-ams || true
    die "rack-ams did not become Ready; see: kubectl describe consumptionrequest rack-ams -n team-payments"
  fi
  local placed cluster ns
  placed="$(kc -n team-payments get consumptionrequest/rack-ams -o jsonpath='{.status.cluster}/{.status.grant.namespace}')"
  cluster="${placed%%/*}" ns="${placed#*/}"
  [ "$cluster" = "$MEMBER" ] || die "rack-ams was granted in cluster '${cluster:-the hub}', not in $MEMBER"
  [ -n "$ns" ] || die "rack-ams is Ready but names no granted namespace"
  conditions rack-ams
  echo "  status.cluster: $cluster; in $MEMBER, the granted namespace $ns holds:"
  kcm -n "$ns" get rolebindings,resourcequotas,limitranges,networkpolicies --no-headers | sed 's/^/    /'
  member_can_i "$ns"
  if kc get namespace "$ns" >/dev/null 2>&1; then
    die "namespace $ns exists in the hub too: the grant was not placed in $MEMBER alone"
  fi
  echo "  (the hub holds no namespace $ns: the whole grant is in $MEMBER)"
}

story_suspension() {
  say "Suspending the agreement revokes access (the namespace stays) ..."
  kc -n team-payments patch serviceagreement/acme-payments --type=merge -p '{"spec":{"suspended":true}}' >/dev/null
  kc -n team-payments wait --for=jsonpath='{.status.phase}'=Revoked consumptionrequest/rack-a --timeout=60s >/dev/null
  kc -n team-payments get serviceagreement/acme-payments consumptionrequest/rack-a
  can_i "$GRANTED"
  say "... and reactivating it restores access"
  kc -n team-payments patch serviceagreement/acme-payments --type=merge -p '{"spec":{"suspended":false}}' >/dev/null
  kc -n team-payments wait --for=condition=Ready consumptionrequest/rack-a --timeout=60s >/dev/null
  can_i "$GRANTED"
}

story_goods() {
  say "Goods: ha-pair is delivered into team-payments; the consumer accepts it"
  kc -n team-payments wait --for=condition=Transferred consumptionrequest/ha-pair --timeout=60s >/dev/null ||
    die "ha-pair was not delivered; see: kubectl describe consumptionrequest ha-pair -n team-payments"
  kc -n team-payments get consumptionrequest/ha-pair \
    -o jsonpath='{range .status.delivered[*]}  delivered {.kind} {.namespace}/{.name}{"\n"}{end}'
  kc -n team-payments patch consumptionrequest/ha-pair --type=merge -p '{"spec":{"goods":{"decision":"Accept"}}}' >/dev/null
  kc -n team-payments wait --for=jsonpath='{.status.phase}'=Accepted consumptionrequest/ha-pair --timeout=60s >/dev/null
  echo "  accepted: the copies are now the consumer's (no managed-by label, no owner reference):"
  kc -n team-payments get secrets,configmaps -l service.offering.dev/request-name=ha-pair --no-headers 2>/dev/null | sed 's/^/    still managed: /'
  kc -n team-payments get secrets,configmaps -o custom-columns='KIND:.kind,NAME:.metadata.name,FROM:.metadata.annotations.service\.offering\.dev/source' |
    awk 'NR==1 || $3 != "<none>"' | sed 's/^/    /'
}

story_actions() {
  say "Service actions: installation runs as a Job in colo-provider; support is done by a person"
  local fulfilled
  fulfilled="$(kc -n team-payments get consumptionrequest/support-ticket -o jsonpath='{.status.conditions[?(@.type=="Fulfilled")].status}')"
  if [ "$fulfilled" != True ]; then
    kc -n team-payments wait --for=jsonpath='{.status.phase}'=Provisioning consumptionrequest/support-ticket --timeout=60s >/dev/null
    echo "  the provider marks the support ticket done:"
    echo "    kubectl offering complete support-ticket -n team-payments --message \"ticket OPS-1234 resolved\""
    kubectl_offering complete support-ticket -n team-payments --message "ticket OPS-1234 resolved" | sed 's/^/    /'
  fi
  kc -n team-payments wait --for=condition=Ready consumptionrequest/support-ticket --timeout=60s >/dev/null
  kc -n team-payments wait --for=condition=Ready consumptionrequest/install-ha --timeout=60s >/dev/null ||
    die "install-ha was not fulfilled; see: kubectl describe consumptionrequest install-ha -n team-payments, and the Job in colo-provider"
  local job
  job="$(kc -n team-payments get consumptionrequest/install-ha -o jsonpath='{.status.action.job}')"
  echo "  install-ha ran as Job $job:"
  kc -n colo-provider get "job/${job#*/}" 2>/dev/null | sed 's/^/    /'
  kc -n colo-provider get pods -o wide -l "batch.kubernetes.io/job-name=${job#*/}" 2>/dev/null | sed 's/^/    /'
  echo "  (simulated: kube-scheduler placed the pod on a node that kwok plays (NODE); no container ran:"
  echo "   kwok reported it Running, then Succeeded 2s later, as hack/kwok-stages.yaml says)"
  kc -n team-payments get consumptionrequest/install-ha consumptionrequest/support-ticket
}

story_service_levels() {
  say "Service levels: every request measured against the agreement's targets (approval 1h, fulfilment 30s, objective 99%)"
  local compliance=""
  for _ in $(seq 1 30); do
    compliance="$(kc -n team-payments get serviceagreement/acme-payments -o jsonpath='{.status.serviceLevels.compliance}')"
    [ -n "$compliance" ] && break
    sleep 1
  done
  [ -n "$compliance" ] || die "the agreement reports no service-level figure; see: kubectl describe serviceagreement acme-payments -n team-payments"
  echo "  compliance: ${compliance}% of the measured requests met their targets"
  kc -n team-payments get serviceagreement/acme-payments -o wide | sed 's/^/    /'
  kc -n team-payments get consumptionrequests \
    -o custom-columns='REQUEST:.metadata.name,PHASE:.status.phase,IN-SLO:.status.conditions[?(@.type=="WithinServiceLevel")].reason,FULFILMENT:.status.fulfilmentDuration' |
    sed 's/^/    /'
  echo "  the provider's report: kubectl offering report acme-payments -n team-payments"
  kubectl_offering report acme-payments -n team-payments | sed 's/^/    /'
}

STORY=(
  story_offerings_ready
  story_access
  story_fleet
  story_goods
  story_actions
  story_service_levels
  story_suspension
  story_show
)

walk_story() {
  local step
  for step in "${STORY[@]}"; do "$step"; done
}

print_next_steps() {
  local dir
  dir="$(shown "$DEMO_DIR")"
  cat <<EOF

${BOLD}The demo is running.${PLAIN} Simulated: only the node (kwok plays its kubelet: pods are scheduled
and reported Running, then Succeeded, but no container runs). The control plane and the operator are real.

Point kubectl at the demo cluster (its kubectl v1.37 first on PATH, then the
kubectl-offering plugin, so that \`kubectl offering\` works):
  source <(hack/demo.sh env)

What to look at:
  kubectl get offering -A                                   # offerings, agreements and requests at once
  kubectl describe serviceoffering colocation               # the provider's catalogue entry and its Ready condition
  kubectl get serviceagreements -n team-payments -o wide    # the agreement, its phase and entitlements
  kubectl get consumptionrequests -n team-payments -o wide  # the requests: phase, granted namespace, fulfilment time, in SLO
  kubectl offering report acme-payments -n team-payments    # service levels: compliance, breaches, per-request figures
  kubectl get nodes,pods -A -o wide                         # the simulated node (kwok) and the pods it "runs"
  kubectl get memberclusters -o wide                        # the fleet: member cluster $MEMBER, its version and grants
  kubectl get creq rack-ams -n team-payments -o wide        # granted in $MEMBER (column Cluster)
  kubectl get events -A --sort-by=.lastTimestamp           # what the operator did
  tail -f $dir/manager.log                                  # the operator's log

The member cluster $MEMBER, as its admin (the grant the operator made there); the operator's
own kubeconfig for it is $dir/members/$MEMBER/operator.kubeconfig:
  kubectl --kubeconfig $dir/members/$MEMBER/kubeconfig get namespaces,rolebindings -A -l app.kubernetes.io/managed-by=offering-operator

Stop everything and remove $dir:
  make demo-down
EOF
}

cmd_up() {
  local started=$SECONDS
  step_cluster
  step_crds
  step_personas
  step_member
  step_manager
  step_samples
  walk_story
  print_next_steps
  log "done in $((SECONDS - started))s"
  $OFFERINGS_READY || die "the ServiceOfferings did not become Ready within ${READY_TIMEOUT}s"
}

cmd_env() {
  "$CLUSTER" env "$DEMO_DIR"
  printf 'export PATH=%q:"$PATH"\n' "$(cd "$PLUGIN_DIR" && pwd)"
}

cmd_down() {
  if [ ! -d "$DEMO_DIR" ]; then
    log "nothing to do: $DEMO_DIR does not exist"
    return 0
  fi
  stop_manager
  "$CLUSTER" down "$MEMBER_DIR"
  "$CLUSTER" down "$DEMO_DIR"
}

case "${1:-}" in
  up) mkdir -p "$DEMO_DIR"; DEMO_DIR="$(cd "$DEMO_DIR" && pwd)"; MEMBER_DIR="$DEMO_DIR/members/$MEMBER"; cmd_up ;;
  down) [ -d "$DEMO_DIR" ] && DEMO_DIR="$(cd "$DEMO_DIR" && pwd)"; MEMBER_DIR="$DEMO_DIR/members/$MEMBER"; cmd_down ;;
  env) [ -d "$DEMO_DIR" ] || die "no demo in $DEMO_DIR (run: make demo)"; DEMO_DIR="$(cd "$DEMO_DIR" && pwd)"; cmd_env ;;
  *) echo "usage: $0 {up|down|env}" >&2; exit 2 ;;
esac
