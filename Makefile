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
# The original MNIST files when shared/ beside the clone carries them (as .ci/run does): the full test set's
# checks and the fine-tune's replay of training digits use them.
ifneq ($(wildcard ../shared/data/mnist/train-images-idx3-ubyte.gz),)
MNIST_DATA_DIR ?= $(abspath ../shared/data/mnist)
export MNIST_DATA_DIR
endif

.PHONY: run test test-fast screenshots lint format benchmark train train-reader evaluate browser clean nginx proxy

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

# server.py is an st.App: the dashboard (app.py) and the JSON API (mnist/api/) on one port. It warms
# up (models, migrations) before it binds the port: nothing listens until it can answer.
run: $(VENV)/.runtime
	$(PY) server.py --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests (Playwright's own download can't work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian chromium for the browser tests..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium (needs root and Debian's registry); browser tests will fail"; }

# Debian's nginx for the scale-out test (tests/test_scaleout.py runs its own, on loopback, as a
# plain process). The package may start a system nginx on port 80: stop it, nothing here uses it.
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  echo "Installing Debian nginx for the scale-out test..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null \
	   && { service nginx stop >/dev/null 2>&1 || true; }) \
	  || echo "WARNING: could not install nginx (needs root and Debian's registry); the scale-out test will fail"; }

# Bare-metal scale-out: nginx on PROXY_PORT in front of app processes already running at UPSTREAMS
# (start each with `make run PORT=...`). Foreground; Ctrl-C stops it.
UPSTREAMS ?= 127.0.0.1:8501 127.0.0.1:8502
PROXY_PORT ?= 8080
PROXY_DIR ?= /tmp/mnist-proxy
proxy: nginx
	$(PYTHON) deploy/render_nginx.py --listen $(HOST):$(PROXY_PORT) $(addprefix --upstream ,$(UPSTREAMS)) --prefix $(PROXY_DIR)
	PATH="$$PATH:/usr/sbin" nginx -p $(PROXY_DIR) -c nginx.conf -e $(PROXY_DIR)/error.log -g 'daemon off;'

# Everything (README says how long it takes). Screenshots go to a temporary folder: the tree stays clean.
test: $(VENV)/.dev browser nginx
	$(PY) -m pytest

# The edit loop: everything but the browser tests (Chromium) and the scale-out test (nginx).
test-fast: $(VENV)/.dev
	$(PY) -m pytest -m "not e2e"

# Refresh the committed screenshots in docs/screenshots/ on purpose (the browser tests take them).
screenshots: $(VENV)/.dev browser
	SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest tests/test_e2e.py

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

benchmark: $(VENV)/.dev
	$(PY) -m benchmarks.predict_latency

train: $(VENV)/.runtime
	$(PY) -m mnist.train

train-reader: $(VENV)/.runtime
	$(PY) -m mnist.train_reader

evaluate: $(VENV)/.runtime
	$(PY) -m mnist.evaluate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
