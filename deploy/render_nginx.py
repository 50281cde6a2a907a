"""Render deploy/nginx.conf for the given app processes; with --prefix, a standalone nginx.conf that
needs no root paths (pid, logs and temp files under the prefix) for `nginx -p PREFIX -c nginx.conf`.

    python deploy/render_nginx.py --listen 127.0.0.1:8080 \
        --upstream 127.0.0.1:8501 --upstream 127.0.0.1:8502 --prefix /tmp/mnist-proxy
    nginx -p /tmp/mnist-proxy -c nginx.conf -e /tmp/mnist-proxy/error.log -g 'daemon off;'

Without --prefix it prints the http-level site config (what docker-compose.yml's nginx renders itself).
Stdlib only, so it runs anywhere nginx does.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("nginx.conf")
# Passive health checks: one failed attempt takes a process out for 10 s (then one request retries it).
PASSIVE_CHECK = "max_fails=1 fail_timeout=10s"
PLACEHOLDERS = ("LISTEN", "UPSTREAM_SERVERS", "ACCESS_LOG")
# host:port or [v6]:port, nothing else: these strings go into the config verbatim.
_ADDRESS = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):[0-9]{1,5}$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_address(address: str) -> str:
    """The address itself, or ValueError when it is not a plain host:port."""
    if not _ADDRESS.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"not a host:port address: {address!r}")
    return address


def upstream_servers(addresses: list[str]) -> str:
    """The `server ...;` lines of the upstream block, one per app process."""
    if not addresses:
        raise ValueError("at least one upstream is needed")
    return "\n".join(f"    server {check_address(a)} {PASSIVE_CHECK};" for a in addresses)


def render_site(listen: str, upstreams: list[str], access_log: str, template: Path = TEMPLATE) -> str:
    """The template with its three placeholders filled; ValueError for anything it doesn't know."""
    if not (listen.isdigit() and 0 < int(listen) < 65536):
        check_address(listen)
    if not re.fullmatch(r"(?:/[\w.-]+)+|off", access_log):
        raise ValueError(f"--access-log must be an absolute path, not {access_log!r}")
    values = {"LISTEN": listen, "UPSTREAM_SERVERS": upstream_servers(upstreams), "ACCESS_LOG": access_log}
    text = template.read_text()
    unknown = set(_PLACEHOLDER.findall(text)) - set(values)
    if unknown:
        raise ValueError(f"{template.name} has placeholders this script does not fill: {sorted(unknown)}")
    if any(line.lstrip().startswith("#") and _PLACEHOLDER.search(line) for line in text.splitlines()):
        raise ValueError(f"{template.name} has a placeholder in a comment: a multi-line value would break it")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def standalone(site: str, prefix: Path) -> str:
    """A whole nginx.conf around `site` that keeps its pid, logs and temp files under `prefix`."""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / (kind + '_temp')};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"# Rendered by deploy/render_nginx.py; run: nginx -p {prefix} -c nginx.conf -g 'daemon off;'\n"
        "worker_processes 1;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events {\n    worker_connections 1024;\n}\n"
        "http {\n"
        "    default_type application/octet-stream;\n"  # Streamlit names its own content types
        f"{temp_paths}\n" + "\n".join(f"    {line}" if line else "" for line in site.splitlines()) + "\n}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="80", help="port or host:port nginx listens on (default 80)")
    parser.add_argument("--upstream", action="append", required=True, help="host:port of an app process; repeat")
    parser.add_argument("--prefix", type=Path, help="write PREFIX/nginx.conf, a standalone config, there")
    parser.add_argument("--access-log", help="default: PREFIX/access.log, or /dev/stdout without --prefix")
    args = parser.parse_args(argv)
    prefix = args.prefix.resolve() if args.prefix else None
    access_log = args.access_log or (str(prefix / "access.log") if prefix else "/dev/stdout")
    try:
        site = render_site(args.listen, args.upstream, access_log)
    except ValueError as exc:
        parser.error(str(exc))
    if prefix is None:
        sys.stdout.write(site)
        return 0
    prefix.mkdir(mode=0o755, parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(standalone(site, prefix))
    print(prefix / "nginx.conf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
