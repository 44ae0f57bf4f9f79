# The README's commands. Each target creates the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A DAGSTER_HOME from the environment wins, so that each storage root can have its own.
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DAGSTER_DISABLE_TELEMETRY := 1
UI_PORT ?= 3000

.PHONY: run test ui install clean

# torch is named in the same pip command as the project so that pip takes the CPU wheel
# pinned in pyproject.toml instead of letting sentence-transformers pull a CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0" -e ".[dev]"
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: config/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp config/dagster.yaml $@

# `make run PROXY=1` also computes the DoReMi, RegMix and PerfRe weights (proxy models).
run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/gem-dagster run $(if $(filter 1,$(PROXY)),--proxy-strategies)

# The Compose specification's JSON schema, fetched through pip for the compose file test.
COMPOSE_SCHEMA := .gem/schemas/compose_spec.json
$(COMPOSE_SCHEMA): scripts/fetch_compose_schema.py | install
	$(BIN)/python scripts/fetch_compose_schema.py

test: install $(DAGSTER_HOME)/dagster.yaml $(COMPOSE_SCHEMA)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p $(UI_PORT) -w workspace.yaml

clean:
	rm -rf .gem $(DAGSTER_HOME)
