#!/bin/sh
# Container start: bring the history database's schema up to date, then become the server.
#
# PostgreSQL may still be starting (compose waits for its health check, a bare `docker run` does
# not), so migrating is retried for about a minute. Several replicas may start together: the
# store's migrate() takes a PostgreSQL advisory lock, so only one migrates at a time.
# `exec` replaces this shell, so the server gets Docker's SIGTERM itself and stops cleanly.
set -eu

python - <<'PY'
import sys
import time

from mnist.errors import StoreUnavailable
from mnist.store import Store

ATTEMPTS, PAUSE_S = 30, 2.0
try:
    store = Store()  # DATABASE_URL, or the SQLite file under data/ when it is unset
except ValueError as exc:
    sys.exit(f"entrypoint: {exc}")  # a malformed URL: retrying won't help (and never print it)
for attempt in range(1, ATTEMPTS + 1):
    try:
        store.migrate()
    except StoreUnavailable as exc:
        print(f"entrypoint: waiting for the database ({attempt}/{ATTEMPTS}): {exc}", file=sys.stderr, flush=True)
        time.sleep(PAUSE_S)
    else:
        print(f"entrypoint: schema up to date on {store.describe()}", file=sys.stderr, flush=True)
        break
else:
    sys.exit("entrypoint: the database never became reachable")
PY

exec "$@"
