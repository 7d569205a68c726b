# Lucid session storage. `make run` serves the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run serve test test-fast lint format bench migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

migrate: $(VENV)/.runtime-installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_superuser
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

run: migrate
	$(BIN)/gunicorn lucid.wsgi --config lucid/gunicorn.conf.py

# The five roles as local processes against DATABASE_URL, REDIS_URL and CELERY_BROKER_URL.
serve: migrate
	@test -n "$$CELERY_BROKER_URL" || grep -qs '^CELERY_BROKER_URL=.' "$${LUCID_ENV_FILE:-.env}" \
	  || { echo "make serve needs CELERY_BROKER_URL (and DATABASE_URL, REDIS_URL), in the environment or .env"; exit 2; }
	$(BIN)/honcho start --procfile Procfile $(SERVE_ROLES)

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The same without the e2e tests (tests/e2e: real service processes, the slow part).
test-fast: lint
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

# Lint, formatting and the layers contract (pyproject.toml: each package imports only those below).
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var

# The read-path benchmark needs the local PostgreSQL (it creates its own database).
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.encryption
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.seek
	$(BIN)/python -m bench.costs
	$(BIN)/python -m bench.sessions
