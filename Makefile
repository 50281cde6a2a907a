# Two commands: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8501
# The machine's PostgreSQL, used by the database tests when nothing else is given.
TEST_DATABASE_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/test
export TEST_DATABASE_URL

.PHONY: run test lint format benchmark train evaluate browser clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

# Debian's Chromium for the browser tests (Playwright's own download can't work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian chromium for the browser tests..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium (needs root and Debian's registry); browser tests will fail"; }

test: $(VENV)/.dev browser
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

benchmark: $(VENV)/.dev
	$(PY) benchmarks/predict_latency.py

train: $(VENV)/.runtime
	$(PY) -m mnist.train

evaluate: $(VENV)/.runtime
	$(PY) -m mnist.evaluate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
