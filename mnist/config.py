"""Settings from environment variables: the one place that reads them (documented in README)."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_PATH = ROOT / "weights" / "mnist_cnn.pt"
READER_WEIGHTS_PATH = ROOT / "weights" / "number_reader.pt"
MODEL_CARD_PATH = ROOT / "weights" / "model_card.json"
# The first 1,000 MNIST test digits (IDX files, CC BY-SA 3.0), for when MNIST_DATA_DIR is not set.
MNIST_SAMPLE_DIR = ROOT / "weights" / "mnist-test-sample"
READER_CARD_PATH = ROOT / "weights" / "number_reader_card.json"
# The ten-digit classifier the number reader was tuned and measured with (feea1c8f16b7): numbers keep it, so
# their held-back figures stand as measured, while single pictures go to the classifier with verdicts.
NUMBER_CLASSIFIER_PATH = ROOT / "weights" / "number_classifier.pt"
NUMBER_CLASSIFIER_CARD_PATH = ROOT / "weights" / "number_classifier_card.json"
DEFAULT_DATABASE_URL = f"sqlite:///{ROOT / 'data' / 'history.sqlite3'}"
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:]+\](:[0-9]{1,5})?$")


@dataclass(frozen=True)
class Settings:
    database_url: str
    mnist_data_dir: Path | None
    api_token: str | None
    max_image_bytes: int
    max_api_body_bytes: int
    max_image_pixels: int
    save_timeout: float  # seconds a prediction waits for its save (and a health check for the database)
    history_timeout: float  # seconds any other database call may take: history pages, stats, labels, deletes
    body_timeout: float  # seconds a request body may stall (no bytes) before the request is cut off
    allowed_origins: tuple[str, ...]  # browser origins (scheme://host[:port]) that may write cross-origin; "*": any
    api_workers: int  # processes `make run` serves API connections from (mnist.api.workers); 0: the main one only


# Every variable get_settings reads: the cache below is keyed on their values.
VARIABLES = (
    "DATABASE_URL", "MNIST_DATA_DIR", "MNIST_API_TOKEN", "MNIST_MAX_IMAGE_BYTES", "MNIST_MAX_API_BODY_BYTES",
    "MNIST_MAX_IMAGE_PIXELS", "MNIST_SAVE_TIMEOUT", "MNIST_HISTORY_TIMEOUT", "MNIST_BODY_TIMEOUT",
    "MNIST_ALLOWED_ORIGINS", "MNIST_API_WORKERS",
)  # fmt: skip


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    return int(value) if value else default


def _seconds_env(env: Mapping[str, str], name: str, default: float, most: float) -> float:
    """A duration in seconds from the environment, in (0, most]; ValueError names the variable, not its value."""
    value = env.get(name, "").strip()
    seconds = float(value) if value else default
    if not 0 < seconds <= most:
        raise ValueError(f"{name} must be a number of seconds above 0 and at most {most:g}")
    return seconds


def _origins_env(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated origins (or "*"); ValueError names the variable and the entry that is not one."""
    origins = tuple(o.strip().rstrip("/") for o in env.get(name, "").split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ValueError(f"{name}: {origin!r} is not an origin like https://example.org or http://host:8080")
    return origins


def _workers_env(env: Mapping[str, str], name: str) -> int:
    """0..32 worker processes. By default, on Linux, one per core this process may run on (at most 8): each one
    is held to about a core by the GIL. Elsewhere 0: passing connections needs Linux's SOCK_SEQPACKET sockets."""
    default = min(len(os.sched_getaffinity(0)), 8) if sys.platform.startswith("linux") else 0
    workers = _int_env(env, name, default)
    if not 0 <= workers <= 32:
        raise ValueError(f"{name} must be a whole number from 0 to 32")
    return workers


def get_settings() -> Settings:
    """The environment's settings as they are now, so tests and processes can change them.

    Parsed again only when one of the variables changed: a request reads the settings several times.
    """
    return _parse(tuple(os.environ.get(name) for name in VARIABLES))


@functools.lru_cache(maxsize=16)
def _parse(values: tuple[str | None, ...]) -> Settings:
    env = {name: value for name, value in zip(VARIABLES, values, strict=True) if value is not None}
    data_dir = env.get("MNIST_DATA_DIR", "").strip()
    return Settings(
        database_url=env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
        mnist_data_dir=Path(data_dir) if data_dir else None,
        api_token=env.get("MNIST_API_TOKEN", "").strip() or None,
        max_image_bytes=_int_env(env, "MNIST_MAX_IMAGE_BYTES", 10 * 1024 * 1024),
        max_api_body_bytes=_int_env(env, "MNIST_MAX_API_BODY_BYTES", 5 * 1024 * 1024),
        max_image_pixels=_int_env(env, "MNIST_MAX_IMAGE_PIXELS", 4096 * 4096),
        save_timeout=_seconds_env(env, "MNIST_SAVE_TIMEOUT", 0.5, 60),
        history_timeout=_seconds_env(env, "MNIST_HISTORY_TIMEOUT", 1.0, 60),
        body_timeout=_seconds_env(env, "MNIST_BODY_TIMEOUT", 10.0, 10),
        allowed_origins=_origins_env(env, "MNIST_ALLOWED_ORIGINS"),
        api_workers=_workers_env(env, "MNIST_API_WORKERS"),
    )
