# AlertDesk. `make run` and `make test` work on a fresh clone with Python 3.11+ and nothing else.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test e2e worker beat totp demo-client lint format clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "AlertDesk needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

## run: install, migrate, load demo data and serve the desk on http://$(HOST):$(PORT)
# Answer links in customers' messages point where this desk listens (unless told otherwise).
run: export NOTIFICATION_PUBLIC_URL ?= http://$(HOST):$(PORT)
run: $(VENV)/.runtime
	@mkdir -p staticfiles
	$(BIN)/python manage.py migrate --no-input -v 0
	$(BIN)/python manage.py seed_demo
	$(BIN)/daphne --access-log /dev/null --websocket_connect_timeout 30 -b $(HOST) -p $(PORT) config.asgi:application

## demo-client: play the demo tenants' systems, which receive account actions (run beside `make run`)
demo-client: $(VENV)/.runtime
	$(BIN)/python manage.py demo_client

## worker / beat: a Celery worker and scheduler (need REDIS_URL; without it tasks run in-process)
worker: $(VENV)/.runtime
	$(BIN)/celery -A config worker --loglevel INFO --concurrency 2

beat: $(VENV)/.runtime
	$(BIN)/celery -A config beat --loglevel INFO

## totp: print a demo user's current one-time code: make totp U=agent.acme
totp: $(VENV)/.runtime
	@$(BIN)/python manage.py totp_code $(U)

## test: lint, Django checks, migrations in step with models, and the test suite
test: $(VENV)/.dev
	@mkdir -p staticfiles
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=config.test_settings $(BIN)/python manage.py check --fail-level WARNING
	DJANGO_SETTINGS_MODULE=config.test_settings $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

## e2e: browser tests (Playwright driving Debian's chromium), in their own pytest run
e2e: $(VENV)/.dev
	@mkdir -p staticfiles
	$(BIN)/pytest -c tests_e2e/pytest.ini tests_e2e $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
