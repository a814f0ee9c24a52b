# chainmatch — setup, run and test. See README.md.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := webapp/static/vendor/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: setup run serve worker test test-fast lint browser-deps bench-deps init clean

setup: $(STAMP) $(ASSETS)

# CPU torch first, from the local wheel, so sentence-transformers does not pull a CUDA build.
$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "需要 Python 3.11 (python3.11 not found)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

$(ASSETS): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p webapp/static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js webapp/static/vendor/htmx.min.js
	cp node_modules/chart.js/dist/chart.umd.min.js webapp/static/vendor/chart.umd.min.js
	touch $(ASSETS)

# Dependency rules (pyproject.toml [tool.importlinter]): layers, no Flask or database in matching/, no cycles;
# ruff (pyproject.toml [tool.ruff]): pyflakes, pycodestyle's errors, import order, and the formatting (ruff format);
# mypy (pyproject.toml [tool.mypy]): strict type checks of matching/ and chains/.
lint: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

init: setup
	$(BIN)/chainmatch init

# Development server and the task worker beside it.
run: init
	$(BIN)/chainmatch run --host $(HOST) --port $(PORT)

# Production server: gunicorn worker processes (CHAINMATCH_WEB_WORKERS, default one per core) and the task worker
# (`chainmatch worker`: imports, 自动归位 and embedding; CHAINMATCH_TASK_QUEUE, default a SQLite queue file).
serve: init
	$(BIN)/chainmatch serve --host $(HOST) --port $(PORT)

# The task worker alone (serve and run start one themselves): e.g. on another machine with CHAINMATCH_TASK_QUEUE=redis.
worker: init
	$(BIN)/chainmatch worker

# `chainmatch bench web` drives the load with Debian's wrk when it is installed (else a Python asyncio client).
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# Browser tests drive Debian's chromium (with a CJK font for readable screenshots); install what is missing.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk"; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; fi

# Tests run in parallel (pytest-xdist, one worker per CPU; TEST_WORKERS=0 runs them serially). tests/conftest.py
# keeps together what must share a worker: each test module, the browser journeys, the Ray tests.
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadscope

test: setup browser-deps
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest $(XDIST) -m "not browser and not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules webapp/static/vendor instance
