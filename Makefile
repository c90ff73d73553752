# Steward: `make run` starts the console on its embedded defaults, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint format check-migrations fuzz bench clean

run: $(VENV)/.installed
	PYTHON=$(PY) ./scripts/run.sh

test: $(VENV)/.installed-dev
	$(PY) -m pytest --cov --cov-report=term --cov-report=xml --cov-fail-under=80 $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-migrations: $(VENV)/.installed
	$(PY) manage.py makemigrations --check --dry-run

fuzz: $(VENV)/.installed-dev
	PYTHON=$(PY) ./scripts/fuzz_api.sh

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .coverage coverage.xml
