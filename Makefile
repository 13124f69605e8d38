# Ensemble Operator: every entry point a developer or CI needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
STAMP := $(VENV)/.installed

.PHONY: help run test unit integration e2e lint bench cluster-build flux-build cluster-up cluster-down manifests protos clean

help:
	@echo "make run            local demo: control plane + operator + example ensemble"
	@echo "make test           unit, integration and local e2e tests (builds the control plane when missing)"
	@echo "make e2e            end-to-end suite (E2E_CLUSTER=local|kind|k3s|existing)"
	@echo "make lint           pyflakes and mypy over controller, api, hack and bench"
	@echo "make bench          benchmarks with baselines measured in the same run"
	@echo "make cluster-up     start a detached local control plane (prints its kubeconfig)"
	@echo "make cluster-down   stop it"
	@echo "make manifests      regenerate manifests/crd.yaml, docs/api-reference.md, dist/ and the chart's CRD"
	@echo "make protos         regenerate the gRPC stubs in controller/proto"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# Here the Flux sources come from the shared vendor directory; elsewhere from their official downloads.
FLUX_CORE_SRC ?= $(firstword $(wildcard ../shared/vendor/flux-core-0.88.0.tar.gz /work/shared/vendor/flux-core-0.88.0.tar.gz))
FLUX_OPERATOR_SRC ?= $(firstword $(wildcard ../shared/vendor/flux-operator-0d75cef8.tar.gz /work/shared/vendor/flux-operator-0d75cef8.tar.gz))
export FLUX_CORE_SRC FLUX_OPERATOR_SRC

cluster-build:
	@bash hack/build-k8s.sh >/dev/null
	@bash hack/build-kwok.sh >/dev/null

# The real Flux Operator and real Flux members; without them the local system falls back
# to its simulators (and says so), so a failed build warns instead of stopping.
flux-build:
	@bash hack/build-flux-operator.sh >/dev/null || echo "make: the Flux Operator did not build (above): its simulator stands in" >&2
	@bash hack/build-flux.sh >/dev/null || echo "make: Flux did not build (above): members will be simulated" >&2

run: $(STAMP) cluster-build flux-build
	$(PY) hack/demo.py

# Unit, integration and the local e2e suite, in one pytest session.
test: $(STAMP) cluster-build flux-build
	E2E_CLUSTER=$${E2E_CLUSTER:-local} $(PYTEST) tests/unit tests/integration tests/e2e

unit: $(STAMP)
	$(PYTEST) tests/unit

integration: $(STAMP) cluster-build flux-build
	$(PYTEST) tests/integration

# Only the local cluster needs the control plane built (and Go): kind, k3s and existing do not.
e2e: $(STAMP)
	@cluster="$${E2E_CLUSTER:-$$($(PY) -c 'from tests.e2e.providers import default_provider; print(default_provider())')}"; \
	if [ "$$cluster" = local ]; then bash hack/build-k8s.sh >/dev/null && bash hack/build-kwok.sh >/dev/null || exit 1; $(MAKE) --no-print-directory flux-build; fi; \
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

clean:
	rm -rf $(VENV) build dist/*.whl dist/*.tar.gz *.egg-info .pytest_cache
