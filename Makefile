# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint clean postgres chromium java

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	# crowd-kit is only the tests' independent Dawid-Skene reference. Its package declares transformers
	# as a hard requirement that its aggregation code never imports, so it is installed without dependencies.
	$(BIN)/pip install --quiet --no-deps "crowd-kit>=1.4,<2"
	touch $(STAMP)

## demo: set up and run the end-to-end story on real data (SQLite MLflow store in demo-output/)
demo: $(STAMP)
	$(BIN)/python examples/arrests_demo.py --output demo-output

# The team-store tests start a real PostgreSQL server; its binaries come from Debian's packages.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL server binaries (Debian package postgresql) for the tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# The web pages' tests drive Debian's Chromium through Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Chromium (Debian package chromium) for the web pages' tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The Spark tests run pyspark on a local JVM; Java 17+ comes from Debian's packages when missing.
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime (Debian package default-jre-headless) for the Spark tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }

## test: set up and run the test suite
test: $(STAMP) postgres chromium java
	$(BIN)/python -m pytest -q -p no:cacheprovider

## bench: the benchmarks behind docs/performance.md (slow: evidently at 1M rows takes minutes)
bench: $(STAMP) java
	$(BIN)/python bench/bench_drift.py
	$(BIN)/python bench/bench_generator.py
	$(BIN)/python bench/bench_spark.py --rows 1000000 10000000 50000000

## lint: ruff, as pre-commit runs it (CI runs it before the tests)
lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

clean:
	rm -rf $(VENV) demo-output
