# offering-operator: the targets a Kubernetes developer expects.
# Tool versions are pinned in hack/tools/go.mod (go tool directives); the
# control plane version in hack/control-plane.sh.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

IMG ?= offering-operator:dev
BIN_DIR ?= bin
CONTROLLER_GEN := $(BIN_DIR)/controller-gen
GOLANGCI_LINT := $(BIN_DIR)/golangci-lint
CRD_REF_DOCS := $(BIN_DIR)/crd-ref-docs
HELM := $(BIN_DIR)/helm
# promtool has a module of its own (hack/promtool): Prometheus' dependencies
# stay out of the other tools' build.
PROMTOOL := $(BIN_DIR)/promtool
CHART := charts/offering-operator
# The optional parts (config/components) that deploy and build-installer
# include, on top of config/base; config/default is config/base + admission.
COMPONENTS ?= admission
# The same static build the Dockerfile performs.
GO_BUILD_FLAGS := -trimpath -ldflags "-s -w"
export CGO_ENABLED ?= 0

CONTROL_PLANE = $(shell hack/control-plane.sh)
# KUBECTL is the user's kubectl for install/deploy; without one on the PATH,
# the kubectl built with the local control plane.
KUBECTL ?= $(or $(shell command -v kubectl 2>/dev/null),$(CONTROL_PLANE)/kubectl)

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

$(CONTROLLER_GEN): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $(CURDIR)/$@ sigs.k8s.io/controller-tools/cmd/controller-gen

# golangci-lint with the kube-api-linter module plugin compiled in: what
# `golangci-lint custom` would build, but from the module proxy only (custom
# clones golangci-lint from GitHub). See hack/tools/golangci-lint-kal.
$(GOLANGCI_LINT): hack/tools/go.mod hack/tools/go.sum hack/tools/golangci-lint-kal/main.go
	cd hack/tools && go build -o $(CURDIR)/$@ ./golangci-lint-kal

$(CRD_REF_DOCS): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $(CURDIR)/$@ github.com/elastic/crd-ref-docs

$(HELM): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $(CURDIR)/$@ helm.sh/helm/v4/cmd/helm

$(PROMTOOL): hack/promtool/go.mod hack/promtool/go.sum
	cd hack/promtool && go build -o $(CURDIR)/$@ github.com/prometheus/prometheus/cmd/promtool

.PHONY: generate
generate: $(CONTROLLER_GEN) api-docs ## Generate deepcopy code and the API reference.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: api-docs
api-docs: $(CRD_REF_DOCS) ## Generate docs/api-reference.md from the types' comments and markers (crd-ref-docs, templates in hack/apidocs).
	$(CRD_REF_DOCS) --log-level=WARN --renderer=markdown --source-path=./api/v1alpha1 \
		--config=hack/apidocs/config.yaml --templates-dir=hack/apidocs/templates --output-path=docs/api-reference.md

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and the operator's RBAC from markers.
	$(CONTROLLER_GEN) crd rbac:roleName=offering-operator-manager paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	go run ./hack/crdquantity config/crd/bases/*.yaml

.PHONY: chart
chart: manifests ## Write the chart's templates/generated from config/ (CRDs, RBAC, admission, monitoring).
	go run ./hack/chart -config config -chart $(CHART)

.PHONY: helm-lint
helm-lint: $(HELM) chart ## helm lint and helm template the chart, with its optional parts off and on.
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set monitoring.serviceMonitor.enable=true,monitoring.prometheusRule.enable=true,monitoring.dashboard.enable=true
	$(HELM) template offering-operator $(CHART) --namespace offering-operator-system >/dev/null
	$(HELM) template offering-operator $(CHART) --namespace offering-operator-system \
		--set admissionPolicies.enable=false,crds.enable=false,monitoring.serviceMonitor.enable=true,monitoring.prometheusRule.enable=true,monitoring.dashboard.enable=true >/dev/null

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint with kube-api-linter on api/ (config in .golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: shellcheck
shellcheck: ## shellcheck the scripts (hack/*.sh, .ci/run).
	@command -v shellcheck >/dev/null || { echo "shellcheck: not installed (apt-get install shellcheck)"; exit 1; }
	shellcheck hack/*.sh .ci/run

.PHONY: control-plane
control-plane: ## Provide etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok (built once, then cached).
	@hack/control-plane.sh >/dev/null

# The two longest packages come first: go test starts packages in the order
# given, as many at a time as there are cores, so named first they start at
# once and the short packages fill in behind the first to finish, instead of
# test/integration waiting behind them.
SLOWEST_TEST_PACKAGES = ./test/integration ./controllers

.PHONY: test
test: generate manifests chart control-plane $(HELM) $(PROMTOOL) ## Unit and integration tests against a real API server (envtest).
	KUBEBUILDER_ASSETS="$(CONTROL_PLANE)" HELM="$(CURDIR)/$(HELM)" PROMTOOL="$(CURDIR)/$(PROMTOOL)" go test $(SLOWEST_TEST_PACKAGES) ./... -count=1 -timeout 20m

# FUZZTIME is how long `make fuzz` explores each fuzz target.
FUZZTIME ?= 10s
FUZZ_TARGETS = $(shell grep -ho '^func Fuzz[A-Za-z0-9_]*' controllers/*_test.go | cut -c6-)

.PHONY: fuzz
fuzz: ## Fuzz every target in controllers/ for FUZZTIME each (default 10s); a crasher is saved in controllers/testdata/fuzz.
	@for target in $(FUZZ_TARGETS); do \
		echo "fuzz: $$target ($(FUZZTIME))"; \
		go test -short -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./controllers/ || exit 1; \
	done

.PHONY: test-e2e
test-e2e: build control-plane $(HELM) ## End-to-end tests: local control plane with kube-controller-manager, kube-scheduler and a simulated node, driven through kubectl and the plugin.
	KUBEBUILDER_ASSETS="$(CONTROL_PLANE)" OPERATOR_BINARY="$(CURDIR)/$(BIN_DIR)/manager" HELM="$(CURDIR)/$(HELM)" \
		go test -tags e2e ./test/e2e/... -count=1 -timeout 30m -v

.PHONY: bench
bench: build control-plane ## Performance harness: local control plane, the manager as a process, load; prints a table (docs/performance.md).
	KUBEBUILDER_ASSETS="$(CONTROL_PLANE)" OPERATOR_BINARY="$(CURDIR)/$(BIN_DIR)/manager" \
		go test -tags bench ./test/bench/... -run TestBenchmark -count=1 -timeout 60m -v
	$(MAKE) bench-faults
	$(MAKE) bench-hostile

.PHONY: bench-faults
bench-faults: build control-plane ## A burst while the leading manager, kube-apiserver and etcd fail, on its own control plane (part of bench; BENCH_FAULTS_REQUESTS sizes it, 0 skips it).
	KUBEBUILDER_ASSETS="$(CONTROL_PLANE)" OPERATOR_BINARY="$(CURDIR)/$(BIN_DIR)/manager" \
		go test -tags bench ./test/bench/... -run '^TestFaults$$' -count=1 -timeout 30m -v

.PHONY: bench-hostile
bench-hostile: control-plane ## The manager's heap before and after a tenant's thousand labelled 1 MiB ConfigMaps and thousand maximum-size requests (part of bench).
	@echo "bench: the manager's heap with a thousand labelled ConfigMaps of a MiB each and a thousand maximum-size requests (docs/security.md#memory-what-a-tenants-objects-cost-the-manager)"
	KUBEBUILDER_ASSETS="$(CONTROL_PLANE)" HOSTILE_CONFIGMAPS=1000 HOSTILE_REQUESTS=1000 \
		go test ./controllers -run '^(TestHostileLabelledObjectsStayOutOfTheCache|TestMaxSizeRequestsStayOutOfTheCache)$$' -count=1 -timeout 40m -v \
		| grep -E '^(=== RUN|--- |PASS|FAIL|ok)|cache_memory_test'

.PHONY: verify
verify: generate manifests chart fmt lint shellcheck helm-lint ## Regenerate everything, lint, and fail when the tree is not clean.
	@if [ -n "$$(git status --porcelain)" ]; then \
		echo "verify: generated files or formatting are out of date:"; git status --porcelain; git --no-pager diff --stat; exit 1; fi

##@ Build

.PHONY: build
build: ## Build the manager and the kubectl-offering plugin (static, as in the Dockerfile).
	go build $(GO_BUILD_FLAGS) -o $(BIN_DIR)/manager .
	go build $(GO_BUILD_FLAGS) -o $(BIN_DIR)/kubectl-offering ./cmd/kubectl-offering
	cp cmd/kubectl-offering/kubectl_complete-offering $(BIN_DIR)/

# VERSION is the release `make krew` builds the plugin's archives and krew manifest for.
VERSION ?= v0.0.0-dev

.PHONY: krew
krew: ## The kubectl-offering release archives and krew manifest for VERSION, in dist/krew.
	hack/krew.sh $(VERSION) dist/krew

.PHONY: run
run: manifests ## Run the manager against the current kubeconfig.
	go run . --leader-elect=false

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs (and the admission policy when COMPONENTS has admission) into the current cluster.
	$(KUBECTL) apply --server-side -k config/crd
	if [[ " $(COMPONENTS) " == *" admission "* ]]; then \
		$(KUBECTL) apply --server-side -k config/admission && KUBECTL=$(KUBECTL) hack/wait-for-admission.sh; fi

.PHONY: uninstall
uninstall: ## Remove the CRDs and the admission policy from the current cluster.
	$(KUBECTL) delete --ignore-not-found -k config/admission
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator (config/base and COMPONENTS, default admission) to the current cluster, with image $(IMG).
	KUBECTL=$(KUBECTL) IMG=$(IMG) hack/kustomize-build.sh $(COMPONENTS) | $(KUBECTL) apply --server-side -f -
	if [[ " $(COMPONENTS) " == *" admission "* ]]; then KUBECTL=$(KUBECTL) hack/wait-for-admission.sh; fi

.PHONY: undeploy
undeploy: ## Remove the operator (config/base and COMPONENTS) from the current cluster.
	KUBECTL=$(KUBECTL) hack/kustomize-build.sh $(COMPONENTS) | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: build-installer
build-installer: manifests ## Write dist/install.yaml (config/base and COMPONENTS, image $(IMG)) for kubectl apply --server-side -f.
	mkdir -p dist
	KUBECTL=$(KUBECTL) IMG=$(IMG) hack/kustomize-build.sh $(COMPONENTS) >dist/install.yaml
	@echo "wrote dist/install.yaml (components: $(COMPONENTS); image: $(IMG))"

.PHONY: helm-package
helm-package: $(HELM) chart ## Package the chart into dist/ (offering-operator-<version>.tgz).
	$(HELM) package $(CHART) --destination dist

.PHONY: demo
demo: build ## Bring up a local control plane, run the operator, apply the samples and show them.
	hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop the local control plane started by `make demo` and remove its state.
	hack/demo.sh down
