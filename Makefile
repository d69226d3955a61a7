# RaftKV: a Raft key-value server speaking the etcd v3 API, and its Kubernetes operator.
# `make help` lists the targets. Every target installs what it needs on a fresh machine.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CONFIG ?= Release
RID ?= linux-x64
SEEDS ?= 300
DOTNET ?= dotnet
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE := 1

SOLUTION := Operator.sln
PUBLISH := $(DOTNET) publish -c $(CONFIG) -r $(RID) --self-contained false -p:PublishSingleFile=true -p:DebugType=embedded -nologo -v quiet
TEST_RESULTS := test-results

.PHONY: help
help: ## List the targets with what each does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install what tests need (Debian packages, kubectl 1.33 and helm 4 into .tools/bin), only what is missing
	@bash scripts/install-test-deps.sh

.PHONY: build
build: ## Build everything with zero warnings, and publish bin/raftkv and bin/raftkv-operator
	$(DOTNET) build $(SOLUTION) -c $(CONFIG) -nologo -v quiet
	$(PUBLISH) node/src/RaftKv.Server/RaftKv.Server.csproj -o bin
	$(PUBLISH) operator/src/RaftKv.Operator/RaftKv.Operator.csproj -o bin
	@bin/raftkv --version | sed -n 1p
	@bin/raftkv-operator --version | sed -n 1p

.PHONY: test
test: deps build ## Install test dependencies, build, and run every test project one after another (TRX in test-results/)
	rm -rf $(TEST_RESULTS)
	@failed=0; for project in $$($(DOTNET) sln $(SOLUTION) list | grep -E '\.Tests\.csproj$$' | tr '\\' / | sort); do \
	  name=$$(basename "$$project" .csproj); echo "== $$name"; \
	  $(DOTNET) test "$$project" -c $(CONFIG) --no-build -nologo \
	    --logger "trx;LogFileName=$$name.trx" --logger "console;verbosity=minimal" \
	    --results-directory $(TEST_RESULTS) || failed=1; \
	done; exit $$failed

.PHONY: run
run: deps build ## Local control plane + raftkv-operator + the 3-member RaftCluster demo; prints kubectl/etcdctl usage (Ctrl-C stops all)
	@bash scripts/run.sh

.PHONY: run-local
run-local: build ## Only a 3-member raftkv cluster on loopback, no Kubernetes (Ctrl-C stops it)
	@bash scripts/run.sh --no-kube

.PHONY: sim
sim: ## Run the deterministic Raft cluster simulator over SEEDS seeds (default 300)
	@if [ ! -d tests/RaftKv.Simulator ]; then echo "make sim: the simulator (issue 'Raft consensus core') has not landed yet"; exit 2; fi
	$(DOTNET) run --project tests/RaftKv.Simulator -c $(CONFIG) -- --seeds $(SEEDS)

.PHONY: bench
bench: deps ## Run the benchmarks; results are written to bench/results/
	@found=0; for p in bench/*/*.csproj; do \
	  [ -e "$$p" ] || continue; found=1; \
	  echo "== $$p"; $(DOTNET) run --project "$$p" -c Release -- $(BENCH_ARGS); \
	done; \
	if [ $$found -eq 0 ]; then echo "make bench: no benchmark has landed yet"; exit 2; fi

.PHONY: chaos
chaos: ## Fault suite against real bin/raftkv processes (bounded set; FULL=1 the long set; ARGS='--scenario X --seed N' replays)
	$(PUBLISH) node/src/RaftKv.Server/RaftKv.Server.csproj -o bin
	$(PUBLISH) operator/src/RaftKv.Operator/RaftKv.Operator.csproj -o bin
	$(DOTNET) run --project tests/RaftKv.Chaos -c $(CONFIG) -- $(if $(FULL),--full,) $(ARGS)

CHART := charts/raftkv-operator
CRD_FILE := raftkv.io_raftclusters.yaml

.PHONY: manifests
manifests: ## Regenerate the RaftCluster CRD (config/crd and the Helm chart's copy) from the C# API types
	$(DOTNET) run --project operator/src/RaftKv.Operator -c $(CONFIG) -- manifests --output-dir config/crd
	cp config/crd/$(CRD_FILE) $(CHART)/files/$(CRD_FILE)
	@echo "wrote $(CHART)/files/$(CRD_FILE)"

DOCKER ?= docker
IMAGE_REGISTRY ?= ghcr.io/raftkv
VERSION ?= $(shell sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)

.PHONY: docker-build
docker-build: ## Build the raftkv and raftkv-operator images (needs a Docker engine; IMAGE_REGISTRY, VERSION)
	@command -v $(DOCKER) >/dev/null || { echo "make docker-build: '$(DOCKER)' not found: install Docker (or set DOCKER=podman)"; exit 2; }
	$(DOCKER) build --target node --build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) -t $(IMAGE_REGISTRY)/raftkv:$(VERSION) .
	$(DOCKER) build --target operator --build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) -t $(IMAGE_REGISTRY)/raftkv-operator:$(VERSION) .

.PHONY: lint
lint: ## Check formatting and code style (dotnet format --verify-no-changes)
	$(DOTNET) format $(SOLUTION) --verify-no-changes -v minimal

.PHONY: clean
clean: ## Remove build outputs, published programs and test results
	$(DOTNET) clean $(SOLUTION) -nologo -v quiet || true
	rm -rf bin $(TEST_RESULTS) chaos-results sim-results .local/run
	find . -path ./.tools -prune -o -type d \( -name bin -o -name obj \) -prune -exec rm -rf {} +
