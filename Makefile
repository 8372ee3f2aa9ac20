# The photo processor. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
export PG_CONNECTION_URI ?= postgresql://postgres@127.0.0.1:5432/photos
export AMQP_URI ?= amqp://guest:guest@127.0.0.1:5672/%2F
export THUMBS_DIR ?= $(CURDIR)/thumbs
export PORT ?= 3000
# The sample photos are served by the app itself on localhost.
export ALLOWED_FETCH_HOSTS ?= localhost,127.0.0.1
# Compose v2 (the docker plugin) where it is installed, else the standalone docker-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)
PYTEST_ARGS ?=

.PHONY: help install start stop run db-schema psql test test-fast lint format check bench clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed ## create the virtual environment with every dependency

start: ## run everything in Docker: Postgres, RabbitMQ (console on :15672), web on :3000 + consumer
	$(COMPOSE) up --build

stop: ## stop the Docker stack
	$(COMPOSE) down

# `make run`'s consumers serve /metrics on consecutive ports from this one
# (for `make run` only: the tests' consumers must not all take it).
run: export METRICS_PORT ?= 9101
run: install ## run the service without Docker (gunicorn on PORT + one consumer); Ctrl-C stops both
	$(PY) scripts/ensure_db.py
	$(PY) -m photos.schema upgrade
	$(PY) scripts/run.py

db-schema: install ## create or reset the schema and load the sample pending photos
	@if $(COMPOSE) ps --status running -q app 2>/dev/null | grep -q .; then \
		$(COMPOSE) exec app python -m photos.schema reset; \
	else \
		$(PY) scripts/ensure_db.py && $(PY) -m photos.schema reset; \
	fi

psql: ## a psql shell on the service's database (Docker's if it is running)
	@if $(COMPOSE) ps --status running -q db 2>/dev/null | grep -q .; then \
		$(COMPOSE) exec db psql -U postgres photos; \
	else \
		psql "$(PG_CONNECTION_URI)"; \
	fi

test: install ## every test (unit, integration, e2e, browser) against real Postgres and RabbitMQ
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## the tests not marked slow
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install ## format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: format lint test ## format, lint, types and tests

bench: install ## benchmarks: print ratios measured side by side in one run
	$(PY) -m bench

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
