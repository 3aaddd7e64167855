# Two commands for a newcomer: `make run` and `make test`. Both create .venv when missing and install
# the project the way the Dockerfile does: wheels of the pinned requirements.txt and of the project
# (`pip install .` makes the generated code, the service and the emulator importable without PYTHONPATH),
# then an offline install of those wheels.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WHEELS := var/wheels
PROTOS := $(shell find protos -name '*.proto' | sort)
PROJECT_SOURCES := pyproject.toml $(shell find service emulator generated -name '*.py' -o -name '*.pyi')
PIP := $(BIN)/python -m pip --disable-pip-version-check --no-input
PIP_INSTALL := $(PIP) install --no-cache-dir
# One install, here and in the Dockerfile: the pinned requirements and the project, from wheels only.
INSTALL_FROM_WHEELS = python -m pip install --no-cache-dir --no-index --find-links
# The contract as last accepted: a buf image of protos/, which `buf breaking` compares protos/ with.
CONTRACT_BASELINE := contract/memory_records.binpb

export PYTHONPATH := $(CURDIR)/generated:$(CURDIR)
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Go builds with the machine's own Go (never a toolchain download) and no VCS stamp (a clone CI owns as
# root may be another user's); Go modules and Maven artifacts land in the user's caches
# (~/go/pkg/mod, ~/.m2), fetched by make only.
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false
TOOLS_BIN := var/tools/bin
MVN := mvn -B -q

.PHONY: system-tools tools codegen-tools client-deps run test soak bench lint docs docs-serve generate check-generated check-contract contract-baseline emulator clean

# A venv with pip. Debian and Ubuntu ship venv's ensurepip apart (python3.X-venv): say so in one line.
# A venv that a failed try left without pip is made again.
$(VENV)/.created:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  $(PYTHON) -c 'import sys; print("make: %s cannot create a venv (no ensurepip): install the package python%d.%d-venv, e.g. sudo apt-get install python%d.%d-venv" % ((sys.executable,) + sys.version_info[:2] * 2))' >&2; \
	  exit 1; }
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	touch $@

# Wheels of the pinned dependencies (downloaded once per requirements.txt) and of the project.
$(WHEELS)/.requirements: $(VENV)/.created requirements.txt
	$(PIP) wheel --no-cache-dir --wheel-dir $(WHEELS) -r requirements.txt
	touch $@

$(WHEELS)/.project: $(VENV)/.created $(PROJECT_SOURCES)
	rm -f $(WHEELS)/agentcore_memory_grpc-*.whl
	$(PIP) wheel --no-cache-dir --no-deps --wheel-dir $(WHEELS) .
	rm -rf build *.egg-info
	touch $@

# The runtime set, enough to serve: the same install as the Dockerfile's. A new build of the project
# replaces the installed one of the same version, so that one is uninstalled first (when there is one).
$(VENV)/.runtime: $(WHEELS)/.requirements $(WHEELS)/.project
	@if $(PIP) show --quiet agentcore-memory-grpc 2>/dev/null; then $(PIP) uninstall --yes --quiet agentcore-memory-grpc; fi
	$(BIN)/$(INSTALL_FROM_WHEELS) $(WHEELS) -r requirements.txt agentcore-memory-grpc
	touch $@

# The runtime set plus code generation, lint and test tools.
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

# The dev set plus matplotlib, for the bench's PNG.
$(VENV)/.bench: $(VENV)/.dev requirements-bench.txt
	$(PIP_INSTALL) -r requirements-bench.txt
	touch $@

# checkov, in a venv of its own (its pins clash with ours), for tests/deploy/test_kubernetes.py.
CHECKOV_VENV := var/checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check --no-input --no-cache-dir -r requirements-checkov.txt
	touch $@

# buf (the protobuf linter), the Node.js client tests' packages and the CRD schemas of the Kubernetes
# manifests' tests, pinned in package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

# The docs site's builder, in a venv of its own (its pins are the docs', not the service's).
DOCS_VENV := var/docs
$(DOCS_VENV)/.installed: requirements-docs.txt
	rm -rf $(DOCS_VENV)
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-input --no-cache-dir -r requirements-docs.txt
	touch $@

# The code generators and the programs the tests run, pinned, in var/tools/bin: protoc-gen-go,
# protoc-gen-go-grpc, grpc-health-probe and metricstwin (go-grpc-middleware's metrics, for the
# comparison) from tools/go.mod; protoc and grpc-java's plugin from Maven Central (tools/pom.xml).
$(TOOLS_BIN)/.go: tools/go.mod tools/go.sum $(shell find tools generated/go -name '*.go')
	cd tools && GOBIN=$(CURDIR)/$(TOOLS_BIN) go install tool
	touch $@

# Jaeger (v2, cmd/jaeger) v1.75.0, the trace backend of tests/integration/test_trace_jaeger.py (the
# newest release the module proxy serves as approved; 1.76.0 is served but not approved), in a module
# of its own (tools/jaeger) so that it builds with the versions it was released with and raises none of
# the tools' above. A cold build takes about 3 minutes; it is rebuilt only when its go.mod or go.sum
# change.
$(TOOLS_BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && GOBIN=$(CURDIR)/$(TOOLS_BIN) go install tool
	touch $@

$(TOOLS_BIN)/.maven: tools/pom.xml
	$(MVN) -f tools/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(TOOLS_BIN)
	mv $(TOOLS_BIN)/protoc.exe $(TOOLS_BIN)/protoc
	mv $(TOOLS_BIN)/protoc-gen-grpc-java.exe $(TOOLS_BIN)/protoc-gen-grpc-java
	chmod +x $(TOOLS_BIN)/protoc $(TOOLS_BIN)/protoc-gen-grpc-java
	touch $@

codegen-tools: $(TOOLS_BIN)/.go $(TOOLS_BIN)/.maven node_modules/.installed

# buf generate for Go, Java and TypeScript (buf.gen.yaml), and google.rpc for TypeScript
# (buf.gen.rpc.yaml), under the folder $(1) (the clone, or a temporary one to compare with).
RPC_PROTOS := node_modules/google-proto-files/google/rpc
BUF_GENERATE = node_modules/.bin/buf generate -o $(1) && \
	node_modules/.bin/buf generate node_modules/google-proto-files --template buf.gen.rpc.yaml -o $(1) \
	  --path $(RPC_PROTOS)/status.proto --path $(RPC_PROTOS)/error_details.proto
# What buf generates, one folder per language (the build files beside them are written by hand).
BUF_OUTPUTS := generated/go/agentcore generated/java/src generated/ts/src

# What the client tests build and fetch, by make, so that they run offline (GOPROXY=off, mvn -o): the
# modules of tests/go (tools/'s come with building them, above), the Java client installed into ~/.m2,
# and what tests/java needs (its pom names surefire's JUnit provider, so a run that selects no test
# fetches it too).
CLIENTS := var/clients
$(CLIENTS)/.go: tests/go/go.mod tests/go/go.sum generated/go/go.mod generated/go/go.sum
	cd tests/go && go mod download
	mkdir -p $(CLIENTS) && touch $@

$(CLIENTS)/.java: generated/java/pom.xml tests/java/pom.xml $(shell find generated/java/src -name '*.java')
	@java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' && command -v mvn >/dev/null || { \
	  echo "make: Java 17 or newer and Maven are needed for the Java client (Debian: apt-get install openjdk-17-jdk-headless maven)" >&2; exit 1; }
	$(MVN) -f generated/java/pom.xml install
	$(MVN) -f tests/java/pom.xml test -Dtest=NONE -Dsurefire.failIfNoSpecifiedTests=false
	mkdir -p $(CLIENTS) && touch $@

client-deps: $(TOOLS_BIN)/.go $(TOOLS_BIN)/jaeger $(CLIENTS)/.go $(CLIENTS)/.java node_modules/.installed

## The tools the docs use beside the service, pinned: buf (`buf curl`, `buf lint`) in node_modules/.
tools: node_modules/.installed

## Serve on [::]:50051 with the embedded AgentCore emulator (AGENTCORE_BACKEND=local).
run: $(VENV)/.runtime
	$(BIN)/agentcore-memory-grpc

## Run only the emulator, for pointing your own boto3 code at it.
emulator: $(VENV)/.runtime
	$(BIN)/agentcore-memory-emulator

## Regenerate generated/ from protos/ (Python: protoc via grpcio-tools, stubs via mypy-protobuf; Go, Java
## and TypeScript: buf generate), the PrometheusRule from the alerting rules, the Grafana dashboard, and the
## tables of docs/.
generate: $(VENV)/.dev codegen-tools
	rm -rf generated/agentcore $(BUF_OUTPUTS)
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=generated --grpc_python_out=generated \
	  --mypy_out=generated --mypy_grpc_out=generated $(PROTOS)
	$(call BUF_GENERATE,.)
	$(BIN)/python deploy/kubernetes/prometheusrule.py
	$(BIN)/python deploy/grafana/dashboard.py
	$(BIN)/python docs/tables.py

## Fail when generated/, the PrometheusRule, the dashboard or a docs/ table is not what `make generate` makes.
check-generated: $(VENV)/.dev codegen-tools
	@tmp=$$(mktemp -d) && mkdir $$tmp/generated && \
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=$$tmp/generated --grpc_python_out=$$tmp/generated \
	  --mypy_out=$$tmp/generated --mypy_grpc_out=$$tmp/generated $(PROTOS) && \
	$(call BUF_GENERATE,$$tmp) && \
	stale=""; for out in generated/agentcore $(BUF_OUTPUTS); do \
	  diff -r $$tmp/$$out $$out >/dev/null || { diff -r $$tmp/$$out $$out | head -20; stale="$$stale $$out"; }; \
	done; rm -rf $$tmp; \
	if [ -n "$$stale" ]; then echo "stale:$$stale: run 'make generate' and commit the result" >&2; exit 1; fi
	@$(BIN)/python deploy/kubernetes/prometheusrule.py --check
	@$(BIN)/python deploy/grafana/dashboard.py --check
	@$(BIN)/python docs/tables.py --check

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
	$(BIN)/mypy service emulator bench docs/tables.py
	$(BIN)/hadolint Dockerfile
	node_modules/.bin/buf lint

# Debian's tools that tests run: prometheus and promtool (the metrics tests), valgrind (the bench's
# instruction counts), debootstrap, podman and runc (the image test), Java 17 and Maven (the Java client's
# tests), redis-server (the fleet's shared rate limits). Installed with apt-get when one is missing and
# this user is root or has sudo; otherwise one line says which, and those tests skip (with CI=true they
# fail); without Java and Maven, make test stops at client-deps, which needs them. Go must be 1.26 or newer, which Debian
# does not ship: the machine brings it (https://go.dev/doc/install), and make says so when it is older.
SYSTEM_TOOLS := prometheus promtool valgrind debootstrap podman runc java mvn redis-server
SYSTEM_PACKAGES := prometheus valgrind debootstrap podman runc openjdk-17-jdk-headless maven redis-server
system-tools:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo -n"; \
	  if command -v apt-get >/dev/null && { [ -z "$$sudo" ] || sudo -n true 2>/dev/null; }; then \
	    echo "make: installing Debian's$$missing (apt-get: $(SYSTEM_PACKAGES))"; \
	    $$sudo apt-get update -qq >/dev/null && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	  else echo "make: missing$$missing (Debian: apt-get install $(SYSTEM_PACKAGES)); the tests that need them skip" >&2; fi; \
	fi
	@go version 2>/dev/null | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])' || { \
	  echo "make: Go 1.26 or newer is needed for the Go client and tools (found: $$(go version 2>/dev/null || echo none)); see https://go.dev/doc/install" >&2; exit 1; }

## The docs site (README.md and docs/) into var/docs/site, strictly: a broken link or anchor fails it.
# NO_MKDOCS_2_WARNING: Material's notice of its end of life, which docs/contributing.md answers.
docs: export NO_MKDOCS_2_WARNING := 1
docs: $(DOCS_VENV)/.installed
	$(DOCS_VENV)/bin/mkdocs build --strict --quiet --site-dir var/docs/site

## The docs site served with live reload on http://127.0.0.1:8000, while you write.
docs-serve: export NO_MKDOCS_2_WARNING := 1
docs-serve: $(DOCS_VENV)/.installed
	$(DOCS_VENV)/bin/mkdocs serve --strict

## Everything CI checks.
test: system-tools $(VENV)/.dev $(CHECKOV_VENV)/.installed client-deps check-generated check-contract lint docs
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
	rm -rf $(VENV) $(WHEELS) $(CHECKOV_VENV) $(DOCS_VENV) $(TOOLS_BIN) $(CLIENTS) var/ts generated/ts/dist generated/java/target tests/java/target build *.egg-info node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
