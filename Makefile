# Ensemble Operator: every entry point a developer or CI needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
STAMP := $(VENV)/.installed
MAKE_STARTED := $(shell date +%s)

.PHONY: help run test unit integration e2e lint bench cluster-build flux-build tools-build cluster-up cluster-down manifests protos verify-bootstrap clean

help:
	@echo "make run            local demo: control plane + operator + example ensemble (EXAMPLE=<path> for another)"
	@echo "make test           unit, integration and local e2e tests (builds the control plane when missing)"
	@echo "make e2e            end-to-end suite (E2E_CLUSTER=local|kind|k3s|existing)"
	@echo "make lint           pyflakes and mypy over controller, api, hack and bench"
	@echo "make bench          benchmarks with baselines measured in the same run"
	@echo "make cluster-up     start a detached local control plane (prints its kubeconfig)"
	@echo "make cluster-down   stop it"
	@echo "make manifests      regenerate manifests/crd.yaml, docs/api-reference.md, dist/ and the chart's CRD"
	@echo "make protos         regenerate the gRPC stubs in controller/proto"
	@echo "make verify-bootstrap  run a member's generated commands.pre on a real Debian rootfs (root, network)"

# pip's own chatter (build backend warnings) goes to $(VENV)/pip.log; its tail is shown if it fails.
$(STAMP): pyproject.toml
	@source hack/buildlib.sh; BUILD_NAME=venv; \
	step_start "$(VENV): the package and its test dependencies" "$$ESTIMATE_VENV"; \
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || exit 1; \
	if ! { $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e '.[test]'; } >$(VENV)/pip.log 2>&1; then \
	  tail -n 20 $(VENV)/pip.log >&2; die "pip install failed (above; the whole log: $(VENV)/pip.log)"; fi; \
	step_done "$(VENV)"; touch $@

# Here the Flux sources come from the shared vendor directory; elsewhere from their official downloads.
FLUX_CORE_SRC ?= $(firstword $(wildcard ../shared/vendor/flux-core-0.88.0.tar.gz /work/shared/vendor/flux-core-0.88.0.tar.gz))
FLUX_OPERATOR_SRC ?= $(firstword $(wildcard ../shared/vendor/flux-operator-0d75cef8.tar.gz /work/shared/vendor/flux-operator-0d75cef8.tar.gz))
export FLUX_CORE_SRC FLUX_OPERATOR_SRC

# Every target checks its prerequisites before anything runs (hack/prereqs.sh): what is
# missing stops make with one line naming it and the command that installs it.
PREREQS_PROBLEM := $(shell PYTHON='$(PYTHON)' VENV='$(VENV)' E2E_CLUSTER='$(E2E_CLUSTER)' \
	FLUX_CORE_SRC='$(FLUX_CORE_SRC)' FLUX_OPERATOR_SRC='$(FLUX_OPERATOR_SRC)' \
	bash hack/prereqs.sh $(MAKECMDGOALS))
ifneq ($(PREREQS_PROBLEM),)
$(error $(PREREQS_PROBLEM))
endif

cluster-build:
	@bash hack/build-k8s.sh >/dev/null
	@bash hack/build-kwok.sh >/dev/null

# helm and actionlint from their Go modules, for the tests of chart/ and .github/workflows/.
tools-build:
	@bash hack/build-helm.sh >/dev/null
	@bash hack/build-actionlint.sh >/dev/null

# The real Flux Operator and real Flux members. As part of run, test, integration, bench and
# e2e a failed build warns instead of stopping: the local system falls back to its
# simulators (and says so); `make flux-build` itself fails.
FLUX_FAILED := $(if $(filter flux-build,$(MAKECMDGOALS)),exit 1;)
FLUX_BUILD := bash hack/build-flux-operator.sh >/dev/null \
	|| { $(FLUX_FAILED) echo "make: the Flux Operator did not build (above): its simulator stands in" >&2; }; \
	bash hack/build-flux.sh >/dev/null || { $(FLUX_FAILED) echo "make: Flux did not build (above): members will be simulated" >&2; }
flux-build:
	@$(FLUX_BUILD)

# EXAMPLE=<path>: another Ensemble than examples/hello-world.
run: $(STAMP) cluster-build flux-build
	@source hack/buildlib.sh; demo_started=$$(date +%s); $(PY) hack/demo.py $(if $(EXAMPLE),--example '$(EXAMPLE)'); \
	status=$$?; now=$$(date +%s); \
	echo "make run: $$(human_seconds $$(( now - $(MAKE_STARTED) ))) in all (setup and builds $$(human_seconds $$(( demo_started - $(MAKE_STARTED) ))), demo $$(human_seconds $$(( now - demo_started ))))"; \
	exit $$status

# Unit, integration and the local e2e suite, in one pytest session.
test: $(STAMP) cluster-build flux-build tools-build
	E2E_CLUSTER=$${E2E_CLUSTER:-local} $(PYTEST) tests/unit tests/integration tests/e2e

unit: $(STAMP)
	$(PYTEST) tests/unit

integration: $(STAMP) cluster-build flux-build tools-build
	$(PYTEST) tests/integration

# Only the local cluster needs the control plane built (and Go): kind, k3s and existing do not.
# It says first what CI runs on that cluster kind and what is only documented.
e2e: $(STAMP)
	@cluster="$${E2E_CLUSTER:-$$(bash hack/prereqs.sh --e2e-cluster)}"; \
	$(PY) -c "from tests.e2e.providers import ci_coverage; print(ci_coverage('$$cluster'))" || exit 1; \
	if [ "$$cluster" = local ]; then bash hack/build-k8s.sh >/dev/null && bash hack/build-kwok.sh >/dev/null || exit 1; $(FLUX_BUILD); fi; \
	echo "E2E_CLUSTER=$$cluster $(PYTEST) tests/e2e -p no:cacheprovider -v"; \
	E2E_CLUSTER="$$cluster" $(PYTEST) tests/e2e -p no:cacheprovider -v

# The generated gRPC stubs are left out (mypy excludes them in setup.cfg).
LINT_DIRS := controller api hack bench
lint: $(STAMP)
	$(PY) -m pyflakes $$(find $(LINT_DIRS) -name '*.py' ! -name '*_pb2*.py')
	$(PY) -m mypy $(LINT_DIRS)

bench: $(STAMP) cluster-build flux-build
	@for b in bench/bench_*.py; do echo "=== $$b"; $(PY) $$b || exit 1; done

cluster-up: $(STAMP) cluster-build
	@$(PY) hack/localcluster.py up

cluster-down:
	@$(PYTHON) hack/localcluster.py down

manifests: $(STAMP)
	$(PY) hack/gen_manifests.py

protos: $(STAMP)
	bash hack/gen_protos.sh

# Not part of test or CI: it needs root, network (Debian mirror, PyPI, github.com) and minutes.
verify-bootstrap: $(STAMP)
	@bash hack/verify-bootstrap.sh

clean:
	rm -rf $(VENV) build dist/*.whl dist/*.tar.gz *.egg-info .pytest_cache
