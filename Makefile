# Two commands for a newcomer: `make run` and `make test`. Both create .venv when missing and install
# the pinned dependencies (requirements*.txt), the same pins the Dockerfile installs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(shell find protos -name '*.proto' | sort)
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check --no-input --no-cache-dir
# The contract as last accepted: a buf image of protos/, which `buf breaking` compares protos/ with.
CONTRACT_BASELINE := contract/memory_records.binpb

export PYTHONPATH := $(CURDIR)/generated:$(CURDIR)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test soak bench lint generate check-generated check-contract contract-baseline emulator clean

# The runtime set, enough to serve.
$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.txt
	touch $@

# The runtime set plus code generation, lint and test tools.
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

# The dev set plus matplotlib, for the bench's PNG.
$(VENV)/.bench: $(VENV)/.dev requirements-bench.txt
	$(PIP_INSTALL) -r requirements-bench.txt
	touch $@

# buf (the protobuf linter) and the Node.js client tests' packages, pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

## Serve on [::]:50051 with the embedded AgentCore emulator (AGENTCORE_BACKEND=local).
run: $(VENV)/.runtime
	$(BIN)/python -m service

## Run only the emulator, for pointing your own boto3 code at it.
emulator: $(VENV)/.runtime
	$(BIN)/python -m emulator

## Regenerate generated/ from protos/ (protoc via grpcio-tools, stubs via mypy-protobuf).
generate: $(VENV)/.dev
	rm -rf generated/agentcore
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=generated --grpc_python_out=generated \
	  --mypy_out=generated --mypy_grpc_out=generated $(PROTOS)

## Fail when generated/ is not what `make generate` makes from protos/.
check-generated: $(VENV)/.dev
	@tmp=$$(mktemp -d) && \
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=$$tmp --grpc_python_out=$$tmp --mypy_out=$$tmp --mypy_grpc_out=$$tmp $(PROTOS) && \
	if diff -r $$tmp/agentcore generated/agentcore >/dev/null; then rm -rf $$tmp; \
	else diff -r $$tmp/agentcore generated/agentcore | head -20; rm -rf $$tmp; \
	  echo "generated/ is stale: run 'make generate' and commit the result" >&2; exit 1; fi

## Fail when protos/ breaks the accepted contract (buf breaking, FILE rules, against $(CONTRACT_BASELINE)):
## a removed or renumbered field, a changed type, a renamed RPC... fails the build on any branch.
check-contract: node_modules/.installed
	node_modules/.bin/buf breaking --against $(CONTRACT_BASELINE)

## Accept protos/ as the contract: run it, and commit the baseline, after a compatible change
## (a new RPC, message or field). Source info is left out, so comments alone never need it.
contract-baseline: node_modules/.installed
	node_modules/.bin/buf build --exclude-source-info -o $(CONTRACT_BASELINE)

## ruff (lint and format), mypy (strict, on service/, emulator/ and bench/), hadolint on the Dockerfile,
## buf lint (STANDARD + COMMENTS) on the protos.
lint: $(VENV)/.dev node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service emulator bench
	$(BIN)/hadolint Dockerfile
	node_modules/.bin/buf lint

## Everything CI checks.
test: $(VENV)/.dev check-generated check-contract lint
	$(BIN)/python -m pytest

## The fault soak of tests/integration/test_soak.py for a chosen duration: `make soak SOAK_SECONDS=300`
## (60 by default; `make test` runs it for a few seconds).
soak: export SOAK_SECONDS ?= 60
soak: $(VENV)/.dev
	$(BIN)/python -m pytest -q -s tests/integration/test_soak.py

## The facade against direct boto3 in one run (a few minutes; not part of `make test`, whose smoke run
## keeps it working): prints the ratio table and targets, writes var/bench/results.json and latency.png.
bench: $(VENV)/.bench
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
