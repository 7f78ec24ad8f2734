#!/usr/bin/env bash
# Waits until the API server admits ConsumptionRequests through the admission
# policies of config/admission, that is until a new request comes back with the
# operator's finalizer and its creator stamped in spec.creator (the
# ValidatingAdmissionPolicies are loaded by the same machinery, and
# internal/admissiontest probes them in the test suites). Just after the CRDs
# are installed, the API
# server needs a few seconds to publish their schema to the admission policy,
# and creating a request meanwhile fails with 503 "Resource kind ... not
# found. There can be a delay ...". This probes with a server-side dry run,
# which runs admission and stores nothing.
#
#   hack/wait-for-admission.sh [kubectl arguments, e.g. --kubeconfig F]
#
# Environment: KUBECTL (default: kubectl on PATH), ADMISSION_TIMEOUT seconds (default 60).
set -euo pipefail
KUBECTL="${KUBECTL:-kubectl}"
TIMEOUT="${ADMISSION_TIMEOUT:-60}"
probe='{"apiVersion":"service.offering.dev/v1alpha1","kind":"ConsumptionRequest",
"metadata":{"name":"admission-probe","namespace":"default"},
"spec":{"agreement":"admission-probe","resource":{"name":"probe"}}}'
deadline=$((SECONDS + TIMEOUT))
while :; do
  if out="$(echo "$probe" | "$KUBECTL" "$@" create --dry-run=server \
    -o 'jsonpath={.metadata.finalizers} creator={.spec.creator.username}' -f - 2>&1)" &&
    [[ "$out" == *service.offering.dev/finalizer* && "$out" != *"creator=" ]]; then
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "wait-for-admission: requests are still not admitted after ${TIMEOUT}s: $out" >&2
    exit 1
  fi
  sleep 0.5
done
