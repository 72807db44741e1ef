# gradserve's front door. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
OPENAPI_TOOLS := tools/openapi/node_modules/.installed
A11Y_TOOLS := tools/a11y/node_modules/.installed
# FAST=1 skips the tests marked slow (real server processes); CI runs everything.
PYTEST_ARGS := $(if $(FAST),-m "not slow",)

.DEFAULT_GOAL := help
.PHONY: help run test lint format openapi vectors bench loadtest resources clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -e clients/python
	touch $@

run: $(INSTALLED) ## serve on 127.0.0.1:8000 (the HOST and PORT variables move it)
	$(BIN)/gradserve serve --host $(HOST) --port $(PORT)

test: $(INSTALLED) $(OPENAPI_TOOLS) $(A11Y_TOOLS) ## run every test: service, learners' page, both clients, the generated ones (FAST=1: no slow ones)
	$(BIN)/pytest $(PYTEST_ARGS)
	cd clients/js && node --test
	node --test tests/web/  # the page for learners' modules

$(OPENAPI_TOOLS): tools/openapi/package.json tools/openapi/package-lock.json
	cd tools/openapi && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# axe-core, which the browser tests of the page for learners inject to check its accessibility.
$(A11Y_TOOLS): tools/a11y/package.json tools/a11y/package-lock.json
	cd tools/a11y && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(INSTALLED) $(OPENAPI_TOOLS) ## ruff, mypy --strict, the layers of service/, and the contract's three validators
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service tests bench conftest.py
	$(BIN)/mypy clients/python/src clients/python/tests  # apart: it has a conftest.py of its own
	$(BIN)/lint-imports
	$(BIN)/openapi-spec-validator clients/openapi.json
	tools/openapi/node_modules/.bin/redocly lint --config tools/openapi/redocly.yaml clients/openapi.json
	$(BIN)/openapi-generator-cli validate -i clients/openapi.json

format: $(INSTALLED) ## rewrite the code in ruff's format, fixing what ruff can
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: $(INSTALLED) ## rewrite clients/openapi.json, the contract, from the app
	$(BIN)/gradserve openapi > clients/openapi.json

vectors: $(INSTALLED) ## rewrite the contract vectors in tests/contract/ from their generator
	$(BIN)/python -m tests.contract.generate

bench: $(INSTALLED) ## run the benchmarks, then a table of every target: met or not (QUICK=1: a smoke run)
	$(BIN)/pip install --quiet -e '.[bench]'  # PyTorch, the compute baseline
	BENCH_QUICK=$(QUICK) $(BIN)/python -m bench.summary

loadtest: $(INSTALLED) ## wrk against a real server: 3 mixes, 1 to 256 connections, 1 and 2 workers (3.5 min; QUICK=1: a smoke run); fails on any 5xx
	BENCH_QUICK=$(QUICK) $(BIN)/python -m bench.loadtest

resources: $(INSTALLED) ## run every resource attack once against a real server; rewrite docs/resources.md
	$(BIN)/python -m tests.support.resources

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis tools/openapi/node_modules \
		tools/a11y/node_modules
