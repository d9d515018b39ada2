# churnwatch: the commands a newcomer needs. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := demo-out

.PHONY: setup provision demo replay-demo test lint bench bench-live clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/.installed

# The programs the tests run (Java and Maven for Kafka, redis-server, Chromium, openssl), installed
# with apt-get when missing and possible, else a list of what to install and a stop before any
# test runs. The same script provisions CI (.ci/run).
provision:
	@PYTHON="$(PYTHON)" VENV="$(VENV)" bash scripts/provision.sh

demo: setup
	$(BIN)/churnwatch demo

replay-demo: setup
	$(BIN)/churnwatch simulate --accounts 2000 --days 150 --seed 7 --jitter-seconds 60 \
		--duplicates 0.005 --junk 0.0005 -o $(DEMO)/events.jsonl.gz --labels $(DEMO)/labels.jsonl
	$(BIN)/churnwatch replay $(DEMO)/events.jsonl.gz -o $(DEMO)/alerts.jsonl

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# A passing run leaves no temporary directories behind; a failing one keeps those of the failed
# tests (in /tmp/pytest-of-<user>/) to look into (pyproject.toml sets that for plain pytest too).
test: provision lint
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/replay_bench.py

bench-live: setup
	$(BIN)/python bench/live_bench.py

clean:
	rm -rf $(VENV) $(DEMO) bench/data .pytest_cache .ruff_cache .hypothesis
