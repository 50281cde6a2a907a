"""Scale-out on loopback: two app processes on one PostgreSQL behind nginx (deploy/nginx.conf).

One process is started by `make run`, the other by deploy/entrypoint.sh with the same command line
(the container's way), both on free loopback ports, with nginx on a third. Chromium draws and
uploads through nginx (WebSocket and XSRF-checked uploads pass the proxy, on one sticky process);
16 API clients load both processes; one process is killed under load and nginx routes around it;
then it starts again under load: its port stays closed until it can answer (server.py warms up
before it binds), so nginx's connects are refused and passed to the other process, and no client
sees the restart. Every acknowledged prediction must be in PostgreSQL exactly once. The figures are printed and
written to the test's tmp dir (scaleout.txt). Also: the container files agree with all this.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks import api_load  # the benchmark, the live-server test and this one start `make run` alike
from mnist.api.middleware import SECURITY_HEADERS
from mnist.config import get_settings
from tests.support.browser import CHROMIUM_ARGS, SEVEN, mnist_digit, png_file, require_chromium, stroke
from tests.support.load import rows_by_filename
from tests.support.sample import mnist_sample

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLIENTS = 16
LOAD_SECONDS = 8.0
KILL_AFTER_SECONDS = 3.0
# Long enough for B to start again under load (about 10 s on 2 busy cores) and for nginx to try it again
# (fail_timeout=10s after the refused connects).
RESTART_SECONDS = 40.0
# A kill fails the requests the process had taken, and those nginx sent it while it was being torn
# down (the kernel keeps accepting on its socket until its memory is freed). Each client has one
# request out at a time and nginx takes the process out at its first failure: one per client, plus
# a margin for a request written to a kept-alive connection as it closed.
MAX_KILL_FAILURES = CLIENTS + 4


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_nginx = _load("render_nginx", ROOT / "deploy" / "render_nginx.py")


# --- processes ----------------------------------------------------------------------------------------


def nginx_binary() -> str:
    """Debian's nginx (`make test` installs it); a clear failure when it is missing."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not found:
        pytest.fail("The scale-out test needs Debian's nginx: `make nginx` or `apt-get install -y nginx` as root.")
    return found


def make_run_command(host: str, port: int, python: str) -> list[str]:
    """The server command line `make run` runs, read from the Makefile itself (its last recipe line)."""
    out = subprocess.run(
        ["make", "-s", "-n", "--no-print-directory", "run", f"PY={python}", f"HOST={host}", f"PORT={port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return shlex.split(out.strip().splitlines()[-1])


@contextmanager
def entrypoint(command: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """deploy/entrypoint.sh COMMAND..., as the container's ENTRYPOINT + CMD run it (the venv's python on PATH)."""
    env = {**env, "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(ROOT / "deploy" / "entrypoint.sh"), *command],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            api_load.stop_process(proc)


@contextmanager
def nginx_proxy(prefix: Path, port: int, upstreams: list[str]) -> Iterator[Path]:
    """nginx from deploy/nginx.conf in front of `upstreams`, as a plain foreground process; yields its access log."""
    binary = nginx_binary()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "render_nginx.py"),
            f"--listen=127.0.0.1:{port}",
            "--prefix",
            str(prefix),
        ]
        + [f"--upstream={u}" for u in upstreams],
        check=True,
        capture_output=True,
        timeout=30,
    )
    args = [binary, "-p", str(prefix), "-c", "nginx.conf", "-e", str(prefix / "error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([*args, "-g", "daemon off;"], start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (prefix / "error.log").read_text(errors="replace")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.1)
        yield prefix / "access.log"
    finally:
        api_load.stop_process(proc)


def keep_logs(prefix: Path, into: Path) -> None:
    """nginx's logs and config, kept beside the servers' logs in the test's tmp dir."""
    for name in ("nginx.conf", "access.log", "error.log"):
        if (prefix / name).exists():
            shutil.copy(prefix / name, into / f"nginx-{name}")


# --- what nginx logged ----------------------------------------------------------------------------------

_LOG_LINE = re.compile(
    r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) .* upstream=(?P<upstream>.*?) upstream_status'
)


def predictions_served(access_log: Path, start: int = 0) -> Counter:
    """Predictions answered 200 per upstream process, from byte `start` of the access log on."""
    return Counter(
        e["upstream"] for e in log_lines(access_log, start) if e["path"] == "/image-predict" and e["status"] == "200"
    )


def log_lines(access_log: Path, start: int = 0) -> list[dict[str, str]]:
    """Access-log entries from byte `start` on: method, path, status and the process that answered last."""
    entries = []
    with open(access_log, "rb") as f:
        f.seek(start)
        for raw in f.read().decode(errors="replace").splitlines():
            m = _LOG_LINE.search(raw)
            if m:
                entry = m.groupdict()
                entry["upstream"] = entry["upstream"].split(", ")[-1]  # retried: the last one answered
                entry["key"] = raw.rsplit(" key=", 1)[-1].split()[0]
                entries.append(entry)
    return entries


# --- API load -------------------------------------------------------------------------------------------


def digit_images(count: int = 40) -> list[str]:
    """Base64 PNGs of real MNIST test digits, black on white like the original API client's."""
    images = mnist_sample()[0][:count]
    encoded = []
    for pixels in images:
        buffer = io.BytesIO()
        Image.fromarray(255 - pixels).save(buffer, format="PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return encoded


class Load:
    """What the API clients of one phase saw: acknowledged (id -> filename) and failures by kind."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.lock = threading.Lock()
        self.acknowledged: dict[int, str] = {}
        self.unsaved: Counter[str] = Counter()  # answered saved: false, by reason
        self.unsaved_files: set[str] = set()
        self.failures: Counter[str] = Counter()
        self.failed_files: set[str] = set()
        self.sent: list[str] = []

    def run(self, port: int, images: list[str], seconds: float, during=None) -> None:
        """CLIENTS keep-alive clients posting /image-predict for `seconds`; `during()` runs meanwhile."""
        stop_at = time.monotonic() + seconds
        threads = [
            threading.Thread(target=self.client, args=(port, images, i, stop_at), daemon=True) for i in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        if during is not None:
            during()
        for t in threads:
            t.join(timeout=seconds + 60)
        assert not any(t.is_alive() for t in threads), "an API client hung"

    def client(self, port: int, images: list[str], number: int, stop_at: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.monotonic() < stop_at and n < 5000:  # bounded in time and count
            filename = f"scaleout-{self.phase}-{number:02d}-{n:04d}.png"  # unique: finds the row it made
            body = json.dumps({"image": images[(number * 7 + n) % len(images)], "filename": filename})
            n += 1
            with self.lock:
                self.sent.append(filename)
            try:
                conn.request("POST", "/image-predict", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.failures[type(exc).__name__] += 1
                    self.failed_files.add(filename)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            with self.lock:
                if response.status != 200:
                    self.failures[f"HTTP {response.status}"] += 1
                    self.failed_files.add(filename)
                    continue
                answer = json.loads(data)
                if answer["saved"]:
                    assert answer["id"] not in self.acknowledged, "two answers claim one history row"
                    self.acknowledged[answer["id"]] = filename
                else:
                    self.unsaved[answer["reason"]] += 1
                    self.unsaved_files.add(filename)
        conn.close()


def check_exactly_once(load: Load, database_url: str) -> dict[str, list[int]]:
    """Every acknowledged prediction is in PostgreSQL once, under its id; no request made two rows.

    A save the database did not take within MNIST_SAVE_TIMEOUT was answered saved: false with its reason;
    on this loaded 2-core machine a stall can catch a few at once (never more than 1%). Such a row exists
    only where its COMMIT landed after the answer (the server logs it as a late commit).
    """
    found = rows_by_filename(database_url, f"scaleout-{load.phase}-%", source="api")
    duplicated = {f: ids for f, ids in found.items() if len(ids) > 1}
    assert not duplicated, f"requests stored more than once: {list(duplicated.items())[:5]}"
    missing = [(i, f) for i, f in load.acknowledged.items() if found.get(f) != [i]]
    assert not missing, f"acknowledged predictions missing from PostgreSQL: {missing[:5]}"
    unsaved = sum(load.unsaved.values())
    assert set(load.unsaved) <= {"timeout", "outage"} and unsaved <= len(load.sent) // 100, load.unsaved
    late = set(found) - set(load.acknowledged.values()) - load.failed_files
    assert late <= load.unsaved_files, f"rows for requests neither acknowledged nor unanswered: {sorted(late)[:5]}"
    return found


# --- browser ----------------------------------------------------------------------------------------------


def browse_through_proxy(base: str, tmp_path: Path) -> tuple[str, int, int]:
    """Draw a digit and upload a PNG through nginx in Chromium; (routing cookie, digit drawn, upload id)."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context(viewport={"width": 1400, "height": 950})
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(base + "/")
            canvas = page.locator("canvas.upper-canvas")
            canvas.wait_for()
            stroke(page, canvas, SEVEN)  # each stroke travels over the WebSocket as a widget value
            page.locator(".predicted-digit").wait_for()
            drawn = int(page.locator(".predicted-digit").inner_text())

            page.goto(base + "/upload")
            uploader = page.locator("[data-testid=stFileUploaderDropzoneInput]")
            uploader.wait_for(state="attached")
            uploader.set_input_files(str(png_file(tmp_path / "proxy-upload.png", mnist_digit(4))))
            page.get_by_role("button", name="Save to history").click()
            page.get_by_text("Saved as #").first.wait_for()
            saved = page.get_by_text(re.compile(r"Saved as #\d+")).first.inner_text()
            upload_id = int(re.search(r"#(\d+)", saved).group(1))
            cookie = next(c["value"] for c in context.cookies() if c["name"] == "mnist_route")
            context.close()  # closes the WebSocket, so nginx logs it
        finally:
            chromium.close()
    return cookie, drawn, upload_id


def fetch(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    """(status, headers as a list of pairs, body) of one request to nginx."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def refused_before_upload(port: int, length: int) -> int:
    """Status nginx answers to a POST announcing `length` bytes, sending none of them."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /image-predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % length
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status


# --- the tests ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_two_processes_behind_nginx_share_the_load_and_survive_a_kill(
    postgres_url: str, tmp_path: Path, capsys
) -> None:
    ports = [api_load.free_port() for _ in range(3)]
    port_a, port_b, proxy_port = ports
    upstream_a, upstream_b = f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"
    env = {**os.environ, "DATABASE_URL": postgres_url}
    env.pop("MNIST_API_TOKEN", None)
    base = f"http://127.0.0.1:{proxy_port}"
    figures: list[str] = []
    # nginx's workers drop root for `nobody`, which must reach its temp dirs: a world-readable prefix.
    prefix = Path(tempfile.mkdtemp(prefix="mnist-nginx-"))
    prefix.chmod(0o755)
    started = time.monotonic()

    try:
        with ExitStack() as stack:
            stack.callback(shutil.rmtree, prefix, ignore_errors=True)
            stack.callback(keep_logs, prefix, tmp_path)  # runs first (after nginx has stopped)
            # B first (it needn't be waited for): the container's way, so it is its own pid after `exec`.
            command_b = make_run_command("127.0.0.1", port_b, sys.executable)
            proc_b = stack.enter_context(entrypoint(command_b, env, tmp_path / "server_b.log"))
            stack.enter_context(api_load.make_run(port_a, env, tmp_path / "server_a.log"))
            api_load.wait_until_ready(f"http://{upstream_b}", proc_b, 180)
            access_log = stack.enter_context(nginx_proxy(prefix, proxy_port, [upstream_a, upstream_b]))
            figures.append(f"startup             both processes + nginx ready in {time.monotonic() - started:.1f} s")

            # Headers, cookie, compression and the body limit, as a client sees them.
            status, headers, _ = fetch(proxy_port, "GET", "/")
            page_headers = {k.lower(): v for k, v in headers}
            assert status == 200
            names = [k.lower() for k, _ in headers]
            assert all(names.count(n.lower()) == 1 for n in SECURITY_HEADERS), headers  # nginx's, not twice
            assert page_headers["x-content-type-options"] == "nosniff"
            assert page_headers["x-frame-options"] == "SAMEORIGIN"
            assert "frame-ancestors 'self'" in page_headers["content-security-policy"]
            assert re.match(r"mnist_route=\w+; Path=/; HttpOnly", page_headers["set-cookie"])
            cookie = page_headers["set-cookie"].split(";")[0]
            _, headers, _ = fetch(proxy_port, "GET", "/", {"Cookie": cookie})
            assert "set-cookie" not in {k.lower() for k, _ in headers}, "the cookie is set once, not on every request"
            status, headers, _ = fetch(proxy_port, "GET", "/api/openapi.json", {"Accept-Encoding": "gzip"})
            api_headers = {k.lower(): v for k, v in headers}
            assert status == 200 and api_headers.get("content-encoding") == "gzip"
            assert "set-cookie" not in api_headers, "API clients get no routing cookie"
            assert refused_before_upload(proxy_port, 34 * 1024 * 1024) == 413  # over the proxy's 33 MB, unread
            assert fetch(proxy_port, "GET", "/metrics")[0] == 403  # scraped per process, not through the proxy

            # The browser: the WebSocket and the XSRF-checked upload work through nginx, on one process.
            mark = access_log.stat().st_size
            route, drawn, upload_id = browse_through_proxy(base, tmp_path)
            assert drawn == 7  # the strokes of a 7, read through the WebSocket
            deadline = time.monotonic() + 10  # nginx logs a WebSocket when it closes
            while True:
                browser = [e for e in log_lines(access_log, mark) if e["key"] == route]
                if any(e["path"] == "/_stcore/stream" for e in browser) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            served_browser = {e["upstream"] for e in browser}
            assert len(served_browser) == 1, f"one browser's requests went to several processes: {served_browser}"
            assert any(e["path"] == "/_stcore/stream" and e["status"] == "101" for e in browser), "no WebSocket logged"
            assert any(e["path"].startswith("/_stcore/upload_file/") and e["method"] == "PUT" for e in browser)
            found = rows_by_filename(postgres_url, "proxy-upload.png%", source="upload")
            assert found == {"proxy-upload.png": [upload_id]}, found
            figures.append(f"browser             drew a {drawn}, uploaded #{upload_id}; all on {served_browser.pop()}")

            # Phase 1: 16 API clients through nginx; both processes answer; every saved answer is one row.
            images = digit_images()
            steady = Load("steady")
            mark = access_log.stat().st_size
            steady.run(proxy_port, images, LOAD_SECONDS)
            per_process = predictions_served(access_log, mark)
            rows = check_exactly_once(steady, postgres_url)
            figures.append(
                f"steady load         {len(steady.sent)} requests in {LOAD_SECONDS:.0f} s from {CLIENTS} clients; "
                f"A {per_process[upstream_a]}, B {per_process[upstream_b]}; failures {sum(steady.failures.values())}; "
                f"not saved {dict(steady.unsaved)}; rows checked {len(rows)}"
            )
            assert not steady.failures, steady.failures
            assert per_process[upstream_a] > 0 and per_process[upstream_b] > 0, per_process
            assert len(steady.acknowledged) == len(steady.sent) - sum(steady.unsaved.values())

            # Phase 2: SIGKILL process B under load. nginx routes around it; only in-flight requests fail.
            assert "server.py" in Path(f"/proc/{proc_b.pid}/cmdline").read_text(), "entrypoint.sh did not exec"

            def kill_b() -> None:
                time.sleep(KILL_AFTER_SECONDS)
                os.kill(proc_b.pid, signal.SIGKILL)

            kill = Load("kill")
            mark = access_log.stat().st_size
            kill.run(proxy_port, images, LOAD_SECONDS, during=kill_b)
            proc_b.wait(timeout=10)
            served = predictions_served(access_log, mark)
            failures = sum(kill.failures.values())
            rows = check_exactly_once(kill, postgres_url)
            unanswered = len(set(rows) & kill.failed_files)  # saved by B, which died before answering
            figures.append(
                f"kill under load     {len(kill.sent)} requests; B killed after {KILL_AFTER_SECONDS:.0f} s; "
                f"A {served[upstream_a]}, B {served[upstream_b]} (before the kill); failures {failures} "
                f"{dict(kill.failures)}; not saved {dict(kill.unsaved)}; rows checked {len(rows)} "
                f"({unanswered} saved but never answered)"
            )
            assert failures <= MAX_KILL_FAILURES, kill.failures
            assert set(kill.failures) <= {"HTTP 502"}, (
                kill.failures
            )  # nginx's answer for a process that died mid-request
            assert 0 <= unanswered <= failures
            assert len(kill.acknowledged) + failures == len(kill.sent) - sum(kill.unsaved.values())
            assert served[upstream_a] > len(kill.sent) // 3, "A should have carried the load after the kill"

            # The image's HEALTHCHECK command says the same: A healthy, B not.
            healthcheck = healthcheck_code()
            for port, healthy in ((port_a, True), (port_b, False)):
                code = healthcheck.replace(":8501/", f":{port}/")
                result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
                assert (result.returncode == 0) is healthy, (port, result.stderr[-500:])

            # Phase 3: B starts again under load. Its port stays closed while it warms up (models loaded,
            # schema checked), so nginx's connect is refused and it passes the request on to A: no client
            # sees the restart. Once B listens it answers at once, and nginx gives it traffic again.
            watched: dict[str, float] = {}

            def restart_b() -> None:
                begun = time.monotonic()
                proc = stack.enter_context(entrypoint(command_b, env, tmp_path / "server_b_again.log"))
                refused = 0
                while True:
                    assert proc.poll() is None and time.monotonic() - begun < 180, "B did not start again"
                    try:
                        socket.create_connection(("127.0.0.1", port_b), timeout=5).close()
                        break
                    except ConnectionRefusedError:
                        refused += 1
                        time.sleep(0.05)
                opened = time.monotonic()
                status, _, body = fetch(port_b, "GET", "/api/v1/health")  # the first request it is sent
                watched.update(closed=opened - begun, refused=refused, first=time.monotonic() - opened)
                assert status == 200 and json.loads(body)["status"] == "ok", body  # ready when it listens

            restart = Load("restart")
            mark = access_log.stat().st_size
            restart.run(proxy_port, images, RESTART_SECONDS, during=restart_b)
            served = predictions_served(access_log, mark)
            rows = check_exactly_once(restart, postgres_url)
            figures.append(
                f"restart under load  {len(restart.sent)} requests; B's port closed {watched['closed']:.1f} s "
                f"({watched['refused']} connects refused), its first answer {watched['first'] * 1000:.0f} ms after "
                f"it opened; A {served[upstream_a]}, B {served[upstream_b]}; failures {sum(restart.failures.values())};"
                f" not saved {dict(restart.unsaved)}; rows checked {len(rows)}"
            )
            assert watched["refused"] > 0, "B listened before it was ready"
            assert not restart.failures, restart.failures
            assert len(restart.acknowledged) == len(restart.sent) - sum(restart.unsaved.values())
            assert served[upstream_b] > 0, "nginx never gave the restarted B any traffic"

            figures.append(f"total               {time.monotonic() - started:.1f} s")

    finally:  # the figures so far, also when an assertion stopped the test
        report = "\n".join(["scale-out through nginx (2 app processes, 1 PostgreSQL)", *figures])
        (tmp_path / "scaleout.txt").write_text(report + "\n")
        with capsys.disabled():  # shown with or without -s
            print("\n" + report)
    log_b = (tmp_path / "server_b.log").read_text(errors="replace")
    assert "entrypoint: schema up to date" in log_b, log_b[-2000:]


def test_entrypoint_waits_for_the_database_then_runs_the_command(postgres_url: str, tmp_path: Path) -> None:
    name = make_url(postgres_url).database
    admin = create_engine(os.environ["TEST_DATABASE_URL"], isolation_level="AUTOCOMMIT")

    def allow(yes: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(yes).lower()}'))

    allow(False)  # like a PostgreSQL that is still starting: every connection is refused
    env = {**os.environ, "DATABASE_URL": postgres_url}
    log_path = tmp_path / "entrypoint.log"
    command = [sys.executable, "-c", "import sys; print('command ran', sys.argv[1])", "ok"]
    try:
        with entrypoint(command, env, log_path) as proc:
            deadline = time.monotonic() + 60
            while "waiting for the database (2/" not in log_path.read_text():  # refused twice: now open it
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
            allow(True)
            assert proc.wait(timeout=60) == 0
    finally:
        allow(True)
        admin.dispose()
    log = log_path.read_text()
    assert "entrypoint: waiting for the database (1/30)" in log, log
    assert "schema up to date" in log and log.rstrip().endswith("command ran ok"), log
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM predictions")).scalar() == 0  # the schema is there
    finally:
        engine.dispose()


def test_entrypoint_refuses_a_malformed_database_url_without_echoing_it(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "postgres ql://user:s3cret@db"}
    log_path = tmp_path / "entrypoint.log"
    with entrypoint([sys.executable, "-c", "print('must not run')"], env, log_path) as p:
        assert p.wait(timeout=60) != 0
    log = log_path.read_text()
    assert "not a valid" in log and "s3cret" not in log and "Traceback" not in log and "must not run" not in log


# --- the container files agree with what the tests above run -------------------------------------------------


def dockerfile() -> str:
    """The Dockerfile with its line continuations joined."""
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ")


def instructions(name: str) -> list[str]:
    """The arguments of every Dockerfile instruction called `name`."""
    return [line.split(None, 1)[1] for line in dockerfile().splitlines() if line.split(None, 1)[:1] == [name]]


def healthcheck_code() -> str:
    """The python -c code of the Dockerfile's HEALTHCHECK."""
    (check,) = instructions("HEALTHCHECK")
    command = json.loads(check.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    return command[2]


def compose() -> str:
    return (ROOT / "docker-compose.yml").read_text()


def test_dockerfile_runs_what_make_run_runs_with_the_files_it_needs() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    assert any(arg.startswith("TORCH_INDEX_URL") for arg in instructions("ARG"))
    for copy in instructions("COPY"):
        sources = [s for s in copy.split()[:-1] if not s.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    assert "weights/ weights/" in instructions("COPY")
    assert (ROOT / "weights" / "mnist_cnn.pt").is_file()
    for module in ("server.py", "app.py", "mnist/", "pages/", "ui/", "migrations/", ".streamlit/"):
        assert any(module in copy.split()[:-1] for copy in instructions("COPY")), f"{module} is not in the image"
    (user,) = instructions("USER")
    assert user not in ("root", "0")
    assert instructions("EXPOSE") == ["8501"]
    assert "http://127.0.0.1:8501/api/v1/health" in healthcheck_code()
    (entry,) = instructions("ENTRYPOINT")
    assert json.loads(entry) == ["/app/deploy/entrypoint.sh"] and instructions("WORKDIR") == ["/app"]
    script = ROOT / "deploy" / "entrypoint.sh"
    assert os.access(script, os.X_OK) and script.read_text().rstrip().endswith('exec "$@"')
    (cmd,) = instructions("CMD")
    assert json.loads(cmd) == make_run_command("0.0.0.0", 8501, "python")  # noqa: S104 (in the container)
    # Everything the image needs at run time is in the build context.
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    copied = {s.rstrip("/").split("/")[0] for copy in instructions("COPY") for s in copy.split()[:-1]}
    assert not copied & ignored, copied & ignored


def test_compose_wires_db_app_and_proxy_like_the_test() -> None:
    text_ = compose()
    assert "image: postgres:16" in text_ and "pg_isready" in text_ and "pgdata:/var/lib/postgresql/data" in text_
    assert text_.count("condition: service_healthy") == 2  # app waits for db, proxy for app
    assert re.search(r"deploy:\s+replicas: 2", text_)
    assert "./deploy/nginx.conf:/etc/nginx/templates/default.conf.template" in text_
    assert '"80:80"' in text_
    servers = re.search(r'UPSTREAM_SERVERS: "(.*)"', text_).group(1)
    assert servers == render_nginx.upstream_servers(["app:8501"])  # what the script renders for the test
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    url = make_url(env["DATABASE_URL"])
    assert (url.username, url.password, url.host, url.port, url.database) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        "db",
        5432,
        env["POSTGRES_DB"],
    )
    assert text_.count("env_file: .env") == 2


def test_nginx_body_limit_matches_the_apps_largest() -> None:
    site = render_nginx.render_site("8080", ["127.0.0.1:8501"], "/tmp/access.log")
    (limit,) = re.findall(r"client_max_body_size (\d+)m;", site)
    settings = get_settings()
    upload_mb = int(re.search(r"maxUploadSize = (\d+)", (ROOT / ".streamlit" / "config.toml").read_text()).group(1))
    largest = max(settings.max_image_bytes, settings.max_api_body_bytes, upload_mb * 1024 * 1024)
    # Room for the multipart framing of the largest upload, but not an open door.
    assert largest < int(limit) * 1024 * 1024 <= largest * 1.25


def test_nginx_sends_the_security_headers_the_app_sends() -> None:
    site = render_nginx.render_site("8080", ["127.0.0.1:8501"], "/tmp/access.log")
    added = dict(re.findall(r'^\s*add_header (\S+) "?(.*?)"? always;', site, re.M))
    hidden = re.findall(r"^\s*proxy_hide_header (\S+);", site, re.M)
    assert added == SECURITY_HEADERS and sorted(hidden) == sorted(SECURITY_HEADERS)


def test_render_refuses_what_would_inject_config() -> None:
    for bad in ("127.0.0.1:1; include /etc/passwd", "host", "127.0.0.1:0", "a b:80"):
        with pytest.raises(ValueError):
            render_nginx.upstream_servers([bad])
    with pytest.raises(ValueError):
        render_nginx.render_site("8080;", ["127.0.0.1:8501"], "/tmp/access.log")
    with pytest.raises(ValueError):
        render_nginx.render_site("8080", ["127.0.0.1:8501"], "/tmp/a.log; error_page")
    lines = render_nginx.upstream_servers(["a:1", "[::1]:2"]).splitlines()
    assert lines == ["    server a:1 max_fails=1 fail_timeout=10s;", "    server [::1]:2 max_fails=1 fail_timeout=10s;"]
