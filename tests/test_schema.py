"""The OpenAPI schema tells the truth: schemathesis against the real API server, every operation, 0 failures.

A real server (uvicorn mnist.api:app on PostgreSQL, with MNIST_API_TOKEN set so the bearer scheme is
enforced) is fuzzed for a fixed budget of FUZZ_SECONDS by schemathesis with its default checks, in
all four phases: the schema's examples, coverage of every constraint (each one broken on purpose too),
random fuzzing, and stateful sequences that follow the schema's links (predict -> read, label, delete).

Three exceptions are configured, each because the wire cannot carry what the schema means:
- POST /image-predict and /api/v1/numbers: an image's content (decodable, an accepted format, with
  ink in it) is beyond what JSON Schema can say, so a schema-valid body may still be answered 400,
  413, 415 or 422; the examples phase sends the original client's sample, which must succeed.
- POST /api/v1/predictions: multipart parts are bytes, so a "file" schemathesis means as an integer
  reaches the server as a file whose bytes are digits; it is answered 200, with that file's own error
  entry, as the batch endpoint answers any unreadable file.
- PATCH /api/v1/predictions/{record_id}: which label a row takes depends on the row, which a schema
  cannot know: a digit row takes a digit, a number row its text; the other kind is answered 422.
- POST /api/v1/models: whether a fine-tune can start depends on the history (422 with no labelled row), on
  another job (409) and on MNIST's training files (503); the server runs without MNIST_DATA_DIR, so the fuzz
  never spends the machine on a real job. POST /api/v1/models/{version}/activate: a version the gate
  refused is 409 (a random name is 404).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import api_load

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
FUZZ_SECONDS = 90  # the bound is 2 minutes; schemathesis fuzzes until the budget is spent
TOKEN = "schema-fuzz-token"
CONFIG = f"""
[auth.openapi.bearer]
bearer = "{TOKEN}"

# An entry's filters select what ANY of them matches (include-method = "POST" above reaches every POST): these
# name their one operation each, and come first, so what they set wins there (the first entry to set a check does).
[[operations]]
include-name = "POST /api/v1/models"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "409", "422", "503"]
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "413", "422"]
checks.not_a_server_error.expected-statuses = ["2xx", "4xx", "503"]

[[operations]]
include-name = "POST /api/v1/models/{{version}}/activate"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409"]
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "413", "422"]

[[operations]]
include-path = ["/image-predict", "/api/v1/numbers"]
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "413", "415", "422"]

[[operations]]
include-path = "/api/v1/predictions"
include-method = "POST"
checks.negative_data_rejection.expected-statuses = ["200", "400", "403", "413", "422"]

[[operations]]
include-path = "/api/v1/predictions/{{record_id}}"
include-method = "PATCH"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]
"""


def test_schemathesis_finds_no_failure_in_any_operation(postgres_url: str, tmp_path: Path, capsys) -> None:
    port = api_load.free_port()
    env = {**os.environ, "DATABASE_URL": postgres_url, "MNIST_API_TOKEN": TOKEN, "MNIST_DATA_DIR": ""}
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "uvicorn", "mnist.api:app", "--host", "127.0.0.1", f"--port={port}"]
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            api_load.wait_until_ready(f"http://127.0.0.1:{port}", server, 180, path="/api/v1/health")
            started = time.monotonic()
            fuzz = subprocess.run(
                [str(SCHEMATHESIS), "--config-file", str(tmp_path / "schemathesis.toml"), "--no-color", "run"]
                + [f"http://127.0.0.1:{port}/api/openapi.json", f"--max-time={FUZZ_SECONDS}", "--seed=1"]
                + ["--workers=1", "--report=json", f"--report-json-path={report}"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=FUZZ_SECONDS + 60,
                check=False,
            )
            seconds = time.monotonic() - started
        finally:
            api_load.stop_process(server)
    (tmp_path / "schemathesis.txt").write_text(fuzz.stdout + fuzz.stderr)
    result = json.loads(report.read_text())
    cases, operations = result["test_cases"], result["operations"]
    phases = ", ".join(f"{name} {phase['status']}" for name, phase in result["phases"].items())
    figures = (
        f"schemathesis {result['schemathesis_version']}: {cases['generated']} test cases in {seconds:.0f} s over "
        f"{operations['tested']} of {operations['total']} operations, phases {phases}; "
        f"{cases['unique_failures']} failures, {len(result['errors'])} errors"
    )
    with capsys.disabled():
        print("\n" + figures)
    assert fuzz.returncode == 0, fuzz.stdout[-6000:]
    assert cases["with_failures"] == 0 and not result["failures"] and not result["errors"], fuzz.stdout[-6000:]
    assert operations["tested"] == operations["total"] == 15  # every operation in the schema
    assert all(p["status"] == "success" for p in result["phases"].values()), result["phases"]
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
