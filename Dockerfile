# The dashboard and API on one port (8501), as `make run` serves them, for docker-compose.yml.
#   docker build -t mnist-dashboard .
#   docker build --build-arg TORCH_INDEX_URL=<PyTorch's CPU-only wheel index> -t mnist-dashboard .
FROM python:3.11-slim

# Empty: torch and torchvision come from the default index (PyPI) at the versions requirements.txt
# pins. On x86-64 those wheels also pull the CUDA libraries (some GB) that this CPU-only app never
# uses: pass PyTorch's own CPU wheel index (see "Get started" on its site) to leave them out. The
# same pinned versions are asked for either way; `==2.14.1` also matches the index's `2.14.1+cpu`.
ARG TORCH_INDEX_URL=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY requirements.txt ./
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --index-url "$TORCH_INDEX_URL" $(grep -E '^(torch|torchvision)==' requirements.txt); \
    fi \
    && pip install -r requirements.txt

# The code and the shipped weights, owned by root and read-only for the user the server runs as.
COPY .streamlit/ .streamlit/
COPY mnist/ mnist/
COPY migrations/ migrations/
COPY pages/ pages/
COPY ui/ ui/
COPY weights/ weights/
COPY app.py server.py ./
COPY deploy/entrypoint.sh deploy/entrypoint.sh

# Only data/ is writable: the SQLite fallback when DATABASE_URL is unset (compose sets PostgreSQL).
RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p data && chown app:app data \
    && chmod 0755 deploy/entrypoint.sh
USER app

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/api/v1/health', timeout=4)"]

# Migrate (retrying while PostgreSQL starts), then exec the command `make run` runs, on all interfaces.
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["python", "server.py", "--host", "0.0.0.0", "--port", "8501"]
