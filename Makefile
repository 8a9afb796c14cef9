# The project's commands. `make test` is the one CI runs (through .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit run demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

test: lint typecheck unit

# Web and worker from the Procfile, with settings from the environment or a .env file.
# The Procfile's release step (migrations) runs first, as a Procfile platform runs it.
run: $(STAMP)
	$(BIN)/jira-impact db upgrade
	$(BIN)/honcho start web worker

# The main job against the bundled Jira sandbox: no Jira needed, nothing left running.
demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

# Figures, not pass/fail: the receiver under load, board ranking, a burst. Not part of `make test`.
bench: $(STAMP)
	$(BIN)/python bench/receiver.py
	$(BIN)/python bench/rank_plan.py
	$(BIN)/python bench/rank_sandbox.py
	$(BIN)/python bench/burst.py

clean:
	rm -rf $(VENV) .coverage .mypy_cache .pytest_cache .ruff_cache
