# Flask Fleet — every entry point an operator or CI uses. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# molecule runs ansible-config and friends from PATH, so the venv must come first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.DEFAULT_GOAL := help
.PHONY: help venv sysdeps engine image lint unit app-test integration molecule test demo bench \
	clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create .venv with the pinned toolchain
$(VENV)/.installed: requirements.txt constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

sysdeps: ## Install the Debian packages the tests use on this machine (nginx, redis, debootstrap)
	python3 -m fleet.apt

engine: venv ## Make sure a Docker engine answers (starts one on a bare Debian machine as root)
	$(PY) -m fleet.sandbox.engine

image: engine ## Build the sandbox host image unless the current recipe's image exists
	$(PY) -m fleet.sandbox.image

lint: venv ## ruff, yamllint, ansible-lint (production profile)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/yamllint --strict .
	$(VENV)/bin/ansible-lint

# Its slowest tests wait on one local Ansible run or subprocess each: one pytest worker per core.
UNIT_JOBS ?= auto
unit: venv sysdeps ## Fast tests of fleet/ and the templates (no Docker)
	$(VENV)/bin/pytest -q -n $(UNIT_JOBS) tests/unit

app-test: sysdeps ## The reference app's own test suite
	$(MAKE) -C app test

integration: image ## Tests against real sandbox hosts
	python3 -m fleet.apt integration
	$(VENV)/bin/pytest -q tests/integration

# Scenarios wait mostly on apt inside their containers, so three run at once; each one's log is
# kept in .cache/molecule/ and printed when it fails.
MOLECULE_JOBS ?= 3
MOLECULE_ROLES ?= $(patsubst roles/%/molecule/default,%,$(wildcard roles/*/molecule/default))
molecule: image ## Every role's molecule scenario (converge, idempotence, verify)
	@mkdir -p .cache/molecule
	@printf '%s\n' $(MOLECULE_ROLES) | xargs -P $(MOLECULE_JOBS) -I{} sh -c '\
	  start=$$(date +%s); log=.cache/molecule/{}.log; \
	  if (cd roles/{} && molecule test) > $$log 2>&1; then \
	    echo "== molecule: {} passed in $$(( $$(date +%s) - start ))s"; \
	  else echo "== molecule: {} FAILED (log: $$log)"; tail -80 $$log; exit 1; fi'

test: lint unit app-test integration molecule ## Everything CI runs

demo: image ## Fresh machine to the reference app deployed on a load-balanced sandbox fleet
	$(VENV)/bin/fab sandbox.up
	$(VENV)/bin/fab provision
	$(VENV)/bin/fab verify
	$(VENV)/bin/fab deploy
	$(VENV)/bin/fab seed
	@echo
	$(VENV)/bin/fab status
	@echo
	@echo "Served at https://127.0.0.1:8443/ (self-signed certificate; http://127.0.0.1:8080/"
	@echo "redirects there) by nginx on lb1, balancing over app1 and app2; Celery worker and"
	@echo "beat on worker1, MariaDB and Redis on db1. Try: curl -k https://127.0.0.1:8443/version"
	@echo "Next: 'fab deploy' again after a change, 'fab rollback', 'fab releases', 'fab logs web'."
	@echo "Shell: 'fab sandbox.ssh HOST'; stop everything: 'fab sandbox.down'."
	@echo "Changing the app? 'fab dev.up' runs it on this machine with live reload (docker compose)."
	@echo
	$(VENV)/bin/fab open

bench: image ## Measure and report (bench/results.json); never asserted by tests
	$(PY) -m fleet.proof.bench

clean: ## Remove what the project created: sandbox, venvs, caches, images
	-[ -x $(VENV)/bin/fab ] && $(VENV)/bin/fab sandbox.down
	-[ -x $(VENV)/bin/fab ] && $(VENV)/bin/fab dev.down
	-[ -x $(PY) ] && $(PY) -c 'from fleet import devstack; devstack.remove_images()'
	-[ -x $(PY) ] && $(PY) -c 'from fleet import image; image.remove_images()'
	rm -rf $(VENV) app/.venv .cache .dev .sandbox .pytest_cache .ruff_cache bench/results.* \
	  inventory/sandbox/hosts.yml inventory/sandbox/group_vars/all/secrets.yml
