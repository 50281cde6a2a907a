"""The prediction history: SQLAlchemy models and the repository functions — the only place with SQL.

PostgreSQL is the production target; an SQLite file is the zero-setup default and passes the same
tests. Arrays are stored as their raw 784 bytes and probabilities as JSON: nothing is ever
unpickled from the database. Every failure to reach the database becomes StoreUnavailable, so a
caller can still deliver the prediction and say it was not saved.

A row is one reading of one picture: a digit, or a whole number (predicted_text set, e.g. "4096"). A
number row keeps every digit's 28x28 input (digit_inputs) and its true text (label_text); its
model_input, digit and probabilities are those of its least certain digit, whose confidence is the
number's. A digit row's true digit is `label`. The reading's text is predicted_text, or the digit for a
digit row: the History filters, stats and CSV read rows by that text.

The `models` table is the model registry: every version of the digit classifier (the shipped weights,
and each fine-tune of them) with its weights, its figures and its status; at most one is active (the one
every app process serves) and at most one is training (mnist.registry and mnist.finetune use it).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import numbers
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from mnist import logs, metrics
from mnist.batching import BatchWorker
from mnist.config import ROOT, get_settings
from mnist.errors import (
    IdempotencyConflict,
    ModelNotFound,
    ModelNotReady,
    RecordNotFound,
    StoreUnavailable,
    TrainingInProgress,
)
from mnist.results import VERDICTS, Prediction

SOURCES = ("draw", "upload", "camera", "api", "number")
MAX_PAGE = 500
MAX_FILENAME = 255
MAX_ORIGINAL_BYTES = 200_000  # thumbnail_png's budget: a 280 px PNG fits with room to spare
MAX_TEXT = 64  # model_version, predicted_text and label_text
INPUT_SHAPE = (28, 28)
INPUT_BYTES = 28 * 28
MIGRATIONS_DIR = ROOT / "migrations"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_TEXT}}}")  # a reading's text: ASCII digits only (str.isdigit takes "²")
_MIGRATION_LOCK = 0x6D6E697374  # "mnist": one pg_advisory lock so two processes never migrate at once
log = logging.getLogger(__name__)


# --- schema ---------------------------------------------------------------------------------------


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps naive UTC; tzinfo comes back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so migrations can refer to them."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "pk": "pk_%(table_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        }
    )


class PredictionRow(Base):
    """One prediction as stored. Keep in step with migrations/versions (tests compare the two)."""

    __tablename__ = "predictions"

    # BIGINT on PostgreSQL; SQLite only autoincrements a column declared exactly INTEGER.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str | None] = mapped_column(String(MAX_FILENAME))
    model_input: Mapped[bytes] = mapped_column(LargeBinary())
    original: Mapped[bytes | None] = mapped_column(LargeBinary())
    digit: Mapped[int] = mapped_column(SmallInteger())
    predicted_text: Mapped[str | None] = mapped_column(String(MAX_TEXT))
    confidence: Mapped[float] = mapped_column(Float())
    probabilities: Mapped[list[float]] = mapped_column(JSON())
    model_version: Mapped[str] = mapped_column(String(MAX_TEXT))
    latency_ms: Mapped[float | None] = mapped_column(Float())
    label: Mapped[int | None] = mapped_column(SmallInteger())
    labelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verdict: Mapped[str] = mapped_column(String(16), server_default="digit")
    # A client's Idempotency-Key, hashed with its endpoint and item (the service's Idempotency.row), and the
    # digest of what that request sent: a retry finds this row instead of adding one.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    # Number rows only: the true text (a digit row's truth is `label`), and each digit's 28x28 input, left to
    # right, exactly as the model saw it (NULL on number rows saved before 0005).
    label_text: Mapped[str | None] = mapped_column(String(MAX_TEXT))
    digit_inputs: Mapped[bytes | None] = mapped_column(LargeBinary())

    __table_args__ = (
        # One index per History filter; each ends in created_at so "newest first" reads the index backwards.
        Index("ix_predictions_created_at", "created_at"),
        Index("ix_predictions_digit_created_at", "digit", "created_at"),
        Index("ix_predictions_source_created_at", "source", "created_at"),
        Index("ix_predictions_label", "label"),
        Index("ix_predictions_confidence", "confidence"),
        Index("ix_predictions_verdict_created_at", "verdict", "created_at"),
        Index("ix_predictions_idempotency_key", "idempotency_key", unique=True),
        # The number rows, for the "contains" filters: a LIKE '%4%' has no portable index, but it only runs there.
        Index("ix_predictions_predicted_text", "predicted_text"),
        Index("ix_predictions_model_version_created_at", "model_version", "created_at"),
        CheckConstraint("source IN ('draw', 'upload', 'camera', 'api', 'number')", name="source"),
        CheckConstraint("digit BETWEEN 0 AND 9", name="digit"),
        CheckConstraint("label BETWEEN 0 AND 9", name="label"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        CheckConstraint("length(model_input) = 784", name="model_input_size"),
        CheckConstraint(f"length(original) <= {MAX_ORIGINAL_BYTES}", name="original_size"),
        CheckConstraint("(labelled_at IS NULL) = (label IS NULL AND label_text IS NULL)", name="labelled_at"),
        # Each kind of row has its kind of label: a digit row its digit, a number row its text.
        CheckConstraint(
            "(label IS NULL OR predicted_text IS NULL) AND (label_text IS NULL OR predicted_text IS NOT NULL)",
            name="label_kind",
        ),
        # trim(x, '0123456789') = '': digits only, on SQLite and PostgreSQL alike (neither's regex is portable).
        CheckConstraint(
            f"length(label_text) BETWEEN 1 AND {MAX_TEXT} AND trim(label_text, '0123456789') = ''", name="label_text"
        ),
        CheckConstraint(
            f"digit_inputs IS NULL OR (predicted_text IS NOT NULL AND "
            f"length(digit_inputs) = {INPUT_BYTES} * length(predicted_text))",
            name="digit_inputs_size",
        ),
    )


MODEL_STATUSES = ("training", "ready", "failed", "active", "retired")
# Statuses whose rows hold weights: a version that is training or failed has none to serve.
SERVABLE = ("ready", "active", "retired")


class ModelRow(Base):
    """One version of the digit classifier in the registry. Keep in step with migrations/versions (tests compare).

    `parent` is the version it was fine-tuned from; the shipped weights have none. `weights` is a torch.save'd
    state dict (tensors only: loaded with weights_only=True), ~1.1 MB, so every app process can load any
    version from the database it already shares. A training row's `heartbeat_at` moves every few seconds
    while its process lives (`worker` names it, host:pid); one that stops moving is failed when read.
    """

    __tablename__ = "models"

    version: Mapped[str] = mapped_column(String(MAX_TEXT), primary_key=True)
    parent: Mapped[str | None] = mapped_column(String(MAX_TEXT), ForeignKey("models.version"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float(), server_default="0")
    stage: Mapped[str | None] = mapped_column(String(MAX_TEXT))  # what a training job is doing now, for people
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(MAX_FILENAME))
    rows_trained_on: Mapped[int | None] = mapped_column(Integer())
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON())
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON())
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON())
    error: Mapped[str | None] = mapped_column(Text())
    weights: Mapped[bytes | None] = mapped_column(LargeBinary(), deferred=True)  # read only by model_weights()

    __table_args__ = (
        # One job at a time and one served version, even between processes: partial unique indexes (SQLite and
        # PostgreSQL both have them) make a second 'training' or 'active' row an IntegrityError.
        Index(
            "ix_models_one_training", "status", unique=True,
            sqlite_where=text("status = 'training'"), postgresql_where=text("status = 'training'"),
        ),
        Index(
            "ix_models_one_active", "status", unique=True,
            sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'"),
        ),
        CheckConstraint("status IN ('training', 'ready', 'failed', 'active', 'retired')", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        CheckConstraint("(weights IS NULL) = (status IN ('training', 'failed'))", name="weights"),
    )  # fmt: skip


# --- value types ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """History filters; None means "any". since is inclusive, until exclusive; naive datetimes are UTC.

    `digit` and `text` match what a row read: `digit` the rows whose text holds that digit (a digit row of
    it, or a number row with it anywhere), `text` those whose text holds that run of digits ("40" finds
    "4096" and "140"). `labelled` means a label of either kind: a digit row's digit, a number row's text.
    `model_version` keeps the rows that version of the classifier read (exactly; see the models registry).
    """

    digit: int | None = None
    text: str | None = None
    source: str | None = None
    labelled: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    verdict: str | None = None
    model_version: str | None = None

    def __post_init__(self) -> None:
        if self.verdict is not None:
            _check_verdict(self.verdict)
        if self.model_version is not None:
            _check_text(self.model_version, "model_version filter")
        if self.digit is not None:
            _check_digit(self.digit, "digit filter")
        if self.text is not None:
            _check_digits(self.text, "text filter")
        if self.source is not None:
            _check_source(self.source)
        if self.labelled is not None and not isinstance(self.labelled, bool):
            raise ValueError(f"labelled filter must be True, False or None, not {self.labelled!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, datetime):
                    raise ValueError(f"{name} must be a datetime, not {type(value).__name__}")
                object.__setattr__(self, name, _as_utc(value))
        for name in ("min_confidence", "max_confidence"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _check_fraction(value, name))


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarrays field by field is ambiguous
class Record:
    """One stored prediction, read back exactly as it was written."""

    id: int
    created_at: datetime
    source: str
    filename: str | None
    model_input: np.ndarray  # (28, 28) uint8, read-only
    original: bytes | None
    digit: int
    predicted_text: str | None
    confidence: float
    probabilities: list[float]
    model_version: str
    latency_ms: float | None
    label: int | None  # a digit row's true digit (None on number rows: their truth is label_text)
    labelled_at: datetime | None
    verdict: str = "digit"
    label_text: str | None = None  # the true text, either kind: a number row's as labelled, a digit row's str(label)
    digit_inputs: np.ndarray | None = None  # number rows: (n, 28, 28) uint8, one per digit left to right, read-only

    @property
    def is_number(self) -> bool:
        """A whole number read from the picture (a digit row has no predicted_text)."""
        return self.predicted_text is not None

    @property
    def text(self) -> str:
        """What was read: the number's digits, or the one digit."""
        return _text_of(self.predicted_text, self.digit)


@dataclass(frozen=True, eq=False)  # eq=False: ndarrays
class LabelledInput:
    """A labelled row as a fine-tune learns from it: what the model saw, and what it really shows.

    A digit row gives its one input and its digit; a number row its digits' inputs, left to right, and its
    label's text, which may have more or fewer digits than were read (None: saved before 0005, none kept).
    """

    id: int
    inputs: np.ndarray | None  # (n, 28, 28) uint8, read-only
    label_text: str


@dataclass(frozen=True)
class ModelVersion:
    """One version of the digit classifier in the registry, without its weights (Store.model_weights reads them).

    status: training (progress 0-1 and stage say how far), ready (trained, not served yet), failed (error says
    why), active (the version every app process serves) or retired (served before, then replaced).
    metrics and gate are what mnist.finetune measured; recipe how the version was made.
    """

    version: str
    parent: str | None
    created_at: datetime
    status: str
    progress: float
    stage: str | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    activated_at: datetime | None
    worker: str | None
    rows_trained_on: int | None
    recipe: dict[str, Any]
    metrics: dict[str, Any] | None
    gate: dict[str, Any] | None
    error: str | None

    @property
    def is_shipped(self) -> bool:
        """The weights the project ships (version zero): the one version with no parent."""
        return self.parent is None


@dataclass(frozen=True)
class Page:
    """One page of records, newest first, and how many rows match the filters in all."""

    items: list[Record]
    total: int


@dataclass(frozen=True)
class Stats:
    """Aggregates over the rows matching some filters.

    total, per_source and mean_confidence count rows. per_digit counts digits read: a digit row adds
    one to its digit, a number row one to each of its digits ("4096" to 4, 0, 9 and 6). The confusion
    matrix, labelled, correct and accuracy count labelled digits: a labelled digit row is one, and a
    labelled number row adds each digit of its label against the digit read in the same place, when the
    two texts are as long; when they are not (a digit missed or one too many) no place can be paired,
    and the row counts in mismatched_length instead. labelled_rows counts rows with a label of either kind.
    """

    total: int
    per_digit: list[int]
    per_source: dict[str, int]
    mean_confidence: float | None
    labelled: int
    correct: int
    accuracy: float | None
    confusion: list[list[int]]  # [label][predicted]
    labelled_rows: int = 0
    mismatched_length: int = 0


# --- validation -----------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_digit(value: object, what: str) -> int:
    if not _is_int(value) or not 0 <= int(value) <= 9:  # type: ignore[call-overload]
        raise ValueError(f"{what} must be an integer from 0 to 9, not {value!r}")
    return int(value)  # type: ignore[call-overload]


def _check_digits(value: object, what: str) -> str:
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise ValueError(f"{what} must be 1 to {MAX_TEXT} digits (0-9), not {_shown(value)}")
    return value


def _shown(value: object) -> str:
    """A rejected value for a message: its repr, cut short (a label may be a megabyte of text)."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _check_source(value: object) -> str:
    if value not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {value!r}")
    return value  # type: ignore[return-value]


def _check_fraction(value: object, what: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{what} must be a number from 0 to 1, not {value!r}")
    return float(value)


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise ValueError(f"{what} must be a non-empty string of at most {MAX_TEXT} characters")
    return value


def _check_verdict(value: object) -> str:
    if value not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {value!r}")
    return str(value)


def _check_id(record_id: object) -> int:
    """An integer id; one outside the database's 64-bit ids names no record (not an overflow error)."""
    if not _is_int(record_id):
        raise ValueError(f"record id must be an integer, not {record_id!r}")
    if abs(int(record_id)) >= 2**63:  # type: ignore[call-overload]
        raise RecordNotFound(f"no prediction with id {record_id}")
    return int(record_id)  # type: ignore[call-overload]


def _existing_row(session: Session, record_id: int) -> PredictionRow:
    row = session.get(PredictionRow, record_id)
    if row is None:
        raise RecordNotFound(f"no prediction with id {record_id}")
    return row


def _existing_model(session: Session, version: str) -> ModelRow:
    row = session.get(ModelRow, version)
    if row is None:
        raise ModelNotFound(f"no model version {version}")
    return row


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Control and format characters (NUL, newlines, bidi overrides, lone surrogates) never reach the table.
_STRIPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def sanitize_filename(name: str | None) -> str | None:
    """A client-supplied name -> its base name, control characters removed, at most 255 characters."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValueError(f"filename must be a string, not {type(name).__name__}")
    cleaned = "".join(ch for ch in name if unicodedata.category(ch) not in _STRIPPED_CATEGORIES)
    # Both separators: a browser on Windows may send "C:\\Users\\me\\seven.png".
    parts = [p.strip() for p in re.split(r"[\\/]", cleaned) if p.strip() not in ("", ".", "..")]
    base = parts[-1] if parts else ""
    if len(base) > MAX_FILENAME:
        stem, dot, ext = base.rpartition(".")
        keep = f"{dot}{ext}" if dot and stem and len(ext) <= 16 else ""
        base = base[: MAX_FILENAME - len(keep)] + keep
    return base or None


def _check_prediction(prediction: Any) -> tuple[int, float, list[float], bytes, str]:
    """Pull and validate what we store from anything shaped like mnist.predict.Prediction."""
    try:
        digit, confidence = prediction.digit, prediction.confidence
        probabilities, model_input = prediction.probabilities, prediction.model_input
        model_version = prediction.model_version
    except AttributeError as exc:
        raise ValueError(f"prediction lacks a field the history needs: {exc}") from None
    digit = _check_digit(digit, "predicted digit")
    confidence = _check_fraction(confidence, "confidence")
    try:
        probs = [float(p) for p in probabilities]
    except (TypeError, ValueError):
        raise ValueError("probabilities must be 10 numbers") from None
    if len(probs) != 10 or not all(0.0 <= p <= 1.0 for p in probs):
        raise ValueError(f"probabilities must be 10 numbers from 0 to 1; got {len(probs)} values")
    array = np.asarray(model_input)
    if array.shape != INPUT_SHAPE or array.dtype != np.uint8:
        raise ValueError(f"model_input must be a 28x28 uint8 array, not {array.shape} {array.dtype}")
    version = _check_text(model_version, "model_version")
    return digit, confidence, probs, np.ascontiguousarray(array).tobytes(), version  # type: ignore[return-value]


def _check_digit_inputs(digit_inputs: object, predicted_text: str | None) -> bytes | None:
    """A number's digit inputs, (n, 28, 28) uint8 or those bytes, one per digit of its text -> the bytes stored."""
    if digit_inputs is None:
        return None
    if predicted_text is None:
        raise ValueError("digit_inputs belong to a number row: give its predicted_text too")
    if isinstance(digit_inputs, bytes | bytearray | memoryview):
        data = bytes(digit_inputs)
        if not data or len(data) % INPUT_BYTES:
            raise ValueError(f"digit_inputs must be a multiple of {INPUT_BYTES} bytes, not {len(data)}")
        digit_inputs = np.frombuffer(data, np.uint8).reshape(-1, *INPUT_SHAPE)
    array = np.asarray(digit_inputs)
    if array.dtype != np.uint8 or array.shape != (len(predicted_text), *INPUT_SHAPE):
        raise ValueError(
            f"digit_inputs must be {len(predicted_text)} 28x28 uint8 inputs, one per digit of {predicted_text!r}; "
            f"got {array.shape} {array.dtype}"
        )
    return np.ascontiguousarray(array).tobytes()


def _check_label(label: object) -> int | str | None:
    """A label of either kind, before its row is known: a digit (int 0-9) or a text of 1-64 digits."""
    if label is None or isinstance(label, str) and _check_digits(label, "label"):
        return label  # type: ignore[return-value]
    return _check_digit(label, "label")


def _label_columns(label: int | str | None, *, number: bool) -> tuple[int | None, str | None]:
    """(label, label_text) for a row of this kind; ValueError for a label of the other kind."""
    if label is None:
        return None, None
    if number:
        if isinstance(label, str):
            return None, label
        raise ValueError(f"a number's label is its text, a string of digits such as '4096', not {label!r}")
    if isinstance(label, str):
        if len(label) == 1:
            return int(label), None
        raise ValueError(f"a digit's label is one digit from 0 to 9, not a text of {len(label)} digits")
    return label, None


def _check_original(original: object) -> bytes | None:
    if original is None:
        return None
    if not isinstance(original, bytes | bytearray | memoryview):
        raise ValueError(f"original must be PNG bytes, not {type(original).__name__}")
    data = bytes(original)
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("original must be a PNG image")
    if len(data) > MAX_ORIGINAL_BYTES:
        raise ValueError(f"original is {len(data)} bytes; the limit is {MAX_ORIGINAL_BYTES}")
    return data


def _check_latency(latency_ms: object) -> float | None:
    if latency_ms is None:
        return None
    if not isinstance(latency_ms, numbers.Real) or isinstance(latency_ms, bool) or not 0 <= latency_ms < math.inf:
        raise ValueError(f"latency_ms must be a finite number >= 0, not {latency_ms!r}")
    return float(latency_ms)


def _check_idempotency(idempotency: object) -> tuple[str, str] | None:
    if idempotency is None:
        return None
    if not (
        isinstance(idempotency, tuple)
        and len(idempotency) == 2
        and all(isinstance(v, str) and _SHA256.fullmatch(v) for v in idempotency)
    ):
        raise ValueError("idempotency must be a (key, request digest) pair of SHA-256 hex digests")
    return idempotency  # type: ignore[return-value]


def _check_filters(filters: object) -> Filters:
    if not isinstance(filters, Filters):
        raise TypeError(f"filters must be a mnist.store.Filters, not {type(filters).__name__}")
    return filters


# --- queries --------------------------------------------------------------------------------------

_NEWEST_FIRST = (PredictionRow.created_at.desc(), PredictionRow.id.desc())


def _conditions(f: Filters) -> list[Any]:
    """The WHERE clause shared by page(), stats() and export_csv()."""
    row = PredictionRow
    found: list[Any] = []
    for needle in (None if f.digit is None else str(f.digit), f.text):
        if needle is not None:
            found.append(_reads(needle))
    if f.source is not None:
        found.append(row.source == f.source)
    if f.labelled is not None:  # labelled_at is set iff the row has a label of its kind (CHECK labelled_at)
        found.append(row.labelled_at.is_not(None) if f.labelled else row.labelled_at.is_(None))
    if f.since is not None:
        found.append(row.created_at >= f.since)
    if f.until is not None:
        found.append(row.created_at < f.until)
    if f.min_confidence is not None:
        found.append(row.confidence >= f.min_confidence)
    if f.max_confidence is not None:
        found.append(row.confidence <= f.max_confidence)
    if f.verdict is not None:
        found.append(row.verdict == f.verdict)
    if f.model_version is not None:
        found.append(row.model_version == f.model_version)
    return found


def _reads(text: str) -> Any:
    """Rows whose text holds `text` (digits): a digit row that read it, a number row with it anywhere."""
    row = PredictionRow
    # IS NOT NULL: the number rows through their index (ix_predictions_predicted_text); the LIKE runs on those.
    numbers = and_(row.predicted_text.is_not(None), row.predicted_text.contains(text, autoescape=True))
    if len(text) > 1:
        return numbers
    return or_(and_(row.predicted_text.is_(None), row.digit == int(text)), numbers)  # ix_..._digit_created_at


def _times_read(digit: int) -> Any:
    """How often a row read `digit`: 0 or 1 for a digit row, its count in a number's text (portable SQL)."""
    row = PredictionRow
    in_text = func.length(row.predicted_text) - func.length(func.replace(row.predicted_text, str(digit), ""))
    return case((row.predicted_text.is_(None), case((row.digit == digit, 1), else_=0)), else_=in_text)


def _text_of(predicted_text: str | None, digit: int) -> str:
    return str(digit) if predicted_text is None else predicted_text


def _label_text_of(label_text: str | None, label: int | None) -> str | None:
    return label_text if label is None else str(label)


def _to_record(row: PredictionRow) -> Record:
    return Record(
        id=row.id,
        created_at=row.created_at,
        source=row.source,
        filename=row.filename,
        model_input=np.frombuffer(row.model_input, dtype=np.uint8).reshape(INPUT_SHAPE),
        original=row.original,
        digit=row.digit,
        predicted_text=row.predicted_text,
        confidence=row.confidence,
        probabilities=[float(p) for p in row.probabilities],
        model_version=row.model_version,
        latency_ms=row.latency_ms,
        label=row.label,
        labelled_at=row.labelled_at,
        verdict=row.verdict,
        label_text=_label_text_of(row.label_text, row.label),
        digit_inputs=(
            None if row.digit_inputs is None else np.frombuffer(row.digit_inputs, np.uint8).reshape(-1, *INPUT_SHAPE)
        ),
    )


def _to_model_version(row: ModelRow) -> ModelVersion:
    return ModelVersion(
        version=row.version,
        parent=row.parent,
        created_at=row.created_at,
        status=row.status,
        progress=float(row.progress),
        stage=row.stage,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        activated_at=row.activated_at,
        worker=row.worker,
        rows_trained_on=row.rows_trained_on,
        recipe=dict(row.recipe or {}),
        metrics=row.metrics,
        gate=row.gate,
        error=row.error,
    )


def _check_version(version: object) -> str:
    return _check_text(version, "model version")


# text and label_text are the reading's text and its label as text, for both kinds of row (as Record has them).
CSV_COLUMNS = (
    ["id", "created_at", "source", "filename", "prediction", "predicted_text", "text", "confidence", "verdict"]
    + ["label", "label_text", "labelled_at", "model_version", "latency_ms"]
    + [f"p{d}" for d in range(10)]
)
_CSV_FIELDS = (
    PredictionRow.id,
    PredictionRow.created_at,
    PredictionRow.source,
    PredictionRow.filename,
    PredictionRow.digit,
    PredictionRow.predicted_text,
    PredictionRow.confidence,
    PredictionRow.verdict,
    PredictionRow.label,
    PredictionRow.label_text,
    PredictionRow.labelled_at,
    PredictionRow.model_version,
    PredictionRow.latency_ms,
    PredictionRow.probabilities,
)


def _csv_cells(r: Any) -> list[object]:
    """One row of _CSV_FIELDS -> its cells in CSV_COLUMNS order."""
    cells = [r.id, r.created_at, r.source, r.filename, r.digit, r.predicted_text, _text_of(r.predicted_text, r.digit)]
    cells += [r.confidence, r.verdict, r.label, _label_text_of(r.label_text, r.label), r.labelled_at]
    cells += [r.model_version, r.latency_ms]
    return [_csv_cell(v) for v in cells] + [float(p) for p in r.probabilities]


def _csv_cell(value: object) -> object:
    """Spreadsheets run cells starting with = + - @ (or tab/CR) as formulas; a leading ' keeps them text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def alembic_config() -> Config:
    """Alembic configuration for migrations/, independent of the working directory and of any .ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# --- the repository -------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Outage:
    """Since when the database has not answered, and why (a StoreUnavailable's reason and message)."""

    since: datetime
    reason: str
    detail: str


@dataclass
class _PendingSave:
    """One save waiting for the writer thread; `done` gets its id, `abandoned` is set when its caller gave up.
    A save with an idempotency key brings its own INSERT ... ON CONFLICT (`keyed`)."""

    values: dict[str, Any]
    idempotency: tuple[str, str] | None
    keyed: Any = None
    done: Future[int] = field(default_factory=Future)
    abandoned: threading.Event = field(default_factory=threading.Event)


class Store:
    """Prediction history in one database; safe to share between threads.

    Every call runs on a thread of its own and is waited for a bounded time: save_timeout for a
    prediction's save and the health ping, history_timeout for everything else. A hung server (one
    stopped with SIGSTOP answers TCP but nothing else, and no socket option notices) then costs a
    caller that long, never more. After a failure the store is in an outage: calls fail at once, but
    one every PROBE_SECONDS tries the database, and the first that succeeds ends it.
    """

    PROBE_SECONDS = 1.0
    MAX_GROUP = 256  # saves written in one transaction at most
    WRITER_IDLE_SECONDS = 5.0
    # A training row whose heartbeat is older than this is failed when read: its process is gone (a job
    # beats every few seconds, mnist.finetune.HEARTBEAT_SECONDS; this leaves room for clocks a little apart).
    STALE_TRAINING_SECONDS = 30.0
    # A call that carries a version's weights (~1.1 MB: registering, finishing or loading one) may take this long:
    # they are rare and off the prediction path, and a busy machine can take over a second to write that much.
    WEIGHTS_SECONDS = 10.0

    def __init__(
        self,
        url: str | None = None,
        *,
        connect_timeout: float = 3.0,
        save_timeout: float | None = None,
        history_timeout: float | None = None,
    ) -> None:
        settings = get_settings()
        try:
            self.url: URL = make_url(url if url is not None else settings.database_url)
        except sa_exc.ArgumentError:
            raise ValueError("DATABASE_URL is not a valid SQLAlchemy database URL") from None  # never echo it
        if not 0 < connect_timeout <= 60:
            raise ValueError(f"connect_timeout must be in (0, 60] seconds, not {connect_timeout!r}")
        self.save_timeout = settings.save_timeout if save_timeout is None else save_timeout
        self.history_timeout = settings.history_timeout if history_timeout is None else history_timeout
        backend = self.url.get_backend_name()
        # pool_pre_ping: a connection that died while idle is replaced. pool_timeout: a call waits for a
        # free connection no longer than it would wait for the database itself.
        options: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": self.history_timeout}
        if backend == "postgresql":
            options.update(pool_size=10, max_overflow=10)
            statement_ms = math.ceil(self.history_timeout * 1000)
            options["connect_args"] = {
                "connect_timeout": max(2, math.ceil(connect_timeout)),  # libpq: whole seconds, minimum 2
                # A server that vanishes mid-conversation (no RST) would otherwise hang a request for minutes.
                "tcp_user_timeout": int(connect_timeout * 1000),
                "application_name": "mnist-dashboard",
                # The server gives up on what its caller has given up on (migrate() lifts both for itself).
                "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
            }
        elif backend == "sqlite":
            options["connect_args"] = {"timeout": connect_timeout}  # how long to wait on another writer's lock
            if self.url.database in (None, "", ":memory:"):
                # Calls run on threads of their own: an in-memory database must be one connection they share.
                options = {
                    "poolclass": StaticPool,
                    "connect_args": {**options["connect_args"], "check_same_thread": False},
                }
            self._make_sqlite_dir()
        try:
            self.engine: Engine = create_engine(self.url, **options)
        except (sa_exc.ArgumentError, ImportError, TypeError) as exc:
            raise ValueError(f"cannot use DATABASE_URL ({self.describe()}): {type(exc).__name__}") from None
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._outage: Outage | None = None
        self._probe_at = 0.0
        self._outage_lock = threading.Lock()
        self._writer = BatchWorker(  # group commit: one thread writes the saves queued meanwhile together
            self._save_group, name="mnist-store-writer", limit=self.MAX_GROUP, idle=self.WRITER_IDLE_SECONDS
        )

    def _make_sqlite_dir(self) -> None:
        database = self.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            # The default lives in data/, which a fresh clone lacks. If it can't be made, first use
            # raises StoreUnavailable with SQLite's own reason.
            with suppress(OSError):
                Path(database).parent.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"Store({self.describe()!r})"

    def describe(self) -> str:
        """Where the history lives, for a status line: never includes a password."""
        url = self.url
        if url.get_backend_name() == "sqlite":
            database = url.database or ":memory:"
            if database in (":memory:", ""):
                return "SQLite (in memory)"
            path = Path(database)
            if path.is_absolute() and path.is_relative_to(ROOT):
                path = path.relative_to(ROOT)
            return f"SQLite {path}"
        name = "PostgreSQL" if url.get_backend_name() == "postgresql" else url.get_backend_name()
        port = url.port or (5432 if name == "PostgreSQL" else None)
        where = f"{url.host or 'localhost'}:{port}" if port else (url.host or "localhost")
        return f"{name} {where}/{url.database or ''}"

    # --- bounded calls and outages ----------------------------------------------------------------

    @property
    def outage(self) -> Outage | None:
        """The outage under way, or None while the database answers."""
        return self._outage

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Database failures -> StoreUnavailable (or ValueError for values it rejected), password-free."""
        try:
            yield
        except (sa_exc.IntegrityError, sa_exc.DataError) as exc:
            raise ValueError(f"the history database rejected the values: {self._reason(exc)}") from exc
        except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:
            # DBAPIError covers OperationalError/InterfaceError (unreachable, dropped, timed out) and a
            # schema that was never migrated; all mean "history unavailable", never a crash for the caller.
            raise StoreUnavailable(f"History database unavailable ({self.describe()}): {self._reason(exc)}") from exc

    def _reason(self, exc: Exception) -> str:
        original = getattr(exc, "orig", None) or exc
        lines = str(original).strip().splitlines() or [type(original).__name__]
        reason = lines[0][:300]
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        return reason

    def _call(self, work: Callable[[threading.Event], T], timeout: float) -> T:
        """`work(abandoned)` on a thread of its own, waited for `timeout` seconds; StoreUnavailable after that.

        `abandoned` is set when the caller stops waiting, so a write can roll back instead of committing
        a change its caller was told did not happen (see _commit).
        """
        self.admit()
        done: Future[T] = Future()
        abandoned = threading.Event()

        def run() -> None:
            try:
                with self._guard():
                    value = work(abandoned)
            except StoreUnavailable as exc:
                self._failed(exc)
                done.set_exception(exc)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
                self._answered()  # RecordNotFound, a rejected value: the database did answer
                done.set_exception(exc)
            else:
                self._answered()
                done.set_result(value)

        threading.Thread(target=run, name="mnist-store-call", daemon=True).start()
        return self._wait(done, abandoned, timeout)

    def _wait(self, done: Future[T], abandoned: threading.Event, timeout: float) -> T:
        """The result of a call under way, or StoreUnavailable ("timeout") once `timeout` s have passed;
        then `abandoned` is set, so the call rolls back what it can (see _commit)."""
        try:
            return done.result(timeout)
        except FutureTimeout:
            abandoned.set()
            error = StoreUnavailable(
                f"History database unavailable ({self.describe()}): no answer within {timeout:g} s", "timeout"
            )
            self._failed(error)
            raise error from None

    def _commit(self, conn: Connection, abandoned: threading.Event, what: str) -> bool:
        """Commit unless the caller has stopped waiting, then roll back; False when rolled back.

        A commit can still land after its caller gave up, when the hang was in COMMIT itself: that is
        logged (with the row) as a late commit, never silently.
        """
        if abandoned.is_set():
            conn.rollback()
            return False
        conn.commit()
        if abandoned.is_set():
            self._late_commit(what)
        return True

    def _late_commit(self, what: str) -> None:
        """A change committed after its caller was told it failed: counted and logged, never silent."""
        metrics.LATE_COMMITS.inc()
        logs.event(log, "late_commit", level=logging.WARNING, database=self.describe(), change=what)

    def admit(self) -> None:
        """Raise StoreUnavailable at once during an outage, except for one call every PROBE_SECONDS (the probe)."""
        outage = self._outage
        if outage is None:
            return
        with self._outage_lock:
            now = time.monotonic()
            if now >= self._probe_at:
                self._probe_at = now + self.PROBE_SECONDS
                return
        raise StoreUnavailable(
            f"History database unavailable ({self.describe()}) since {outage.since:%H:%M:%S} UTC: {outage.detail}",
            "outage",
        )

    def _failed(self, exc: StoreUnavailable) -> None:
        """Start an outage (logged once) unless one is under way."""
        with self._outage_lock:
            if self._outage is not None:
                return
            self._outage = Outage(datetime.now(UTC), exc.reason, str(exc))
            self._probe_at = time.monotonic() + self.PROBE_SECONDS
        metrics.DATABASE_OUTAGE.labels(self.describe()).set(1)
        logs.event(
            log, "database_outage_started", level=logging.WARNING, database=self.describe(), reason=exc.reason,
            detail=str(exc),
        )  # fmt: skip

    def _answered(self) -> None:
        """End the outage under way, if any (logged once, with how long it lasted)."""
        if self._outage is None:
            return
        with self._outage_lock:
            outage, self._outage = self._outage, None
        if outage is not None:
            metrics.DATABASE_OUTAGE.labels(self.describe()).set(0)
            seconds = (datetime.now(UTC) - outage.since).total_seconds()
            logs.event(
                log, "database_outage_ended", level=logging.WARNING, database=self.describe(),
                reason=outage.reason, seconds=round(seconds, 3),
            )  # fmt: skip

    # --- the calls ------------------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Alembic upgrade on this store's own connection: to the newest schema unless told otherwise.

        Not bounded: a migration takes what it takes (StoreProvider waits for it a bounded time instead).
        """
        config = alembic_config()
        try:
            with self._guard(), self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # A big table's index takes longer than a request's statement_timeout.
                    conn.execute(text("SET LOCAL statement_timeout = 0"))
                    conn.execute(text("SET LOCAL lock_timeout = 0"))
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
        except StoreUnavailable as exc:
            self._failed(exc)
            raise
        self._answered()

    def ping(self) -> bool:
        """True when the database answers a trivial query within save_timeout."""

        def work(_abandoned: threading.Event) -> None:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            self._call(work, self.save_timeout)
        except StoreUnavailable:
            return False
        return True

    def save(
        self,
        prediction: Prediction,
        *,
        source: str,
        filename: str | None = None,
        original: bytes | None = None,
        latency_ms: float | None = None,
        predicted_text: str | None = None,
        idempotency: tuple[str, str] | None = None,
        digit_inputs: bytes | np.ndarray | None = None,
    ) -> int:
        """Store one prediction (each field is checked: anything shaped like a Prediction is refused if malformed).

        A number row gives its text (predicted_text, digits only) and may give each digit's input
        (digit_inputs: (n, 28, 28) uint8 or its bytes, n the text's length); `prediction` is then its
        least certain digit.

        Waits save_timeout at most: a save that did not answer by then is rolled back, and the caller
        gets StoreUnavailable (reason "timeout") and says the prediction was not saved.

        `idempotency` is (key, request digest): when a row already has that key, its id is returned and
        nothing is added (IdempotencyConflict when that row came from a request with another digest).
        """
        digit, confidence, probabilities, model_input, model_version = _check_prediction(prediction)
        values = {
            "created_at": datetime.now(UTC),
            "source": _check_source(source),
            "filename": sanitize_filename(filename),
            "model_input": model_input,
            "original": _check_original(original),
            "digit": digit,
            "predicted_text": None if predicted_text is None else _check_digits(predicted_text, "predicted_text"),
            "digit_inputs": _check_digit_inputs(digit_inputs, predicted_text),
            "confidence": confidence,
            "probabilities": probabilities,
            "model_version": model_version,
            "latency_ms": _check_latency(latency_ms),
            "verdict": _check_verdict(getattr(prediction, "verdict", "digit")),
        }
        idempotency = _check_idempotency(idempotency)
        # Built now: a database without ON CONFLICT is the caller's ValueError, not the writer's.
        keyed = None if idempotency is None else self._keyed_insert(values, idempotency)
        pending = _PendingSave(values, idempotency, keyed)
        self.admit()
        self._writer.put(pending)
        return self._wait(pending.done, pending.abandoned, self.save_timeout)

    # --- group commit: concurrent saves share one transaction -------------------------------------

    def _save_group(self, group: list[_PendingSave]) -> None:
        """Write the saves queued meanwhile in one transaction and answer each caller.

        One INSERT for the lot and one COMMIT (one fsync on PostgreSQL) instead of one each; a caller
        is answered only once its row is committed, so an acknowledged save is as durable as before.
        Saves whose callers gave up are not written; rows the database rejects are retried one by one,
        so a bad row fails alone.
        """
        group = [p for p in group if not p.abandoned.is_set()]  # told "not saved" already: never written
        if not group:
            return
        try:
            with self._guard():
                outcomes = self._insert_group(group)
        except StoreUnavailable as exc:
            self._failed(exc)
            for p in group:
                p.done.set_exception(exc)
            return
        except ValueError as exc:  # a constraint refused a row (IntegrityError/DataError): the database answered
            if len(group) > 1:
                for p in group:
                    self._save_group([p])
                return
            self._answered()
            group[0].done.set_exception(exc)
            return
        except BaseException as exc:  # noqa: BLE001 - handed to every caller, who re-raise it
            for p in group:
                p.done.set_exception(exc)
            return
        self._answered()
        for p, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                p.done.set_exception(outcome)
            else:
                p.done.set_result(outcome)

    def _insert_group(self, group: list[_PendingSave]) -> list[int | BaseException]:
        """INSERT the group's rows (one statement for those without a key) and COMMIT; -> each one's id (or error).

        Rows whose callers gave up while the INSERT waited are deleted again before the COMMIT, so what a
        caller was told was not saved is not; a COMMIT that hangs past a caller's deadline is logged per row.
        """
        outcomes: dict[int, int | BaseException] = {}
        new: dict[int, int] = {}  # index in group -> id of the row this transaction added
        with self.engine.connect() as conn:
            plain = [i for i, p in enumerate(group) if p.keyed is None]
            if plain:
                statement = insert(PredictionRow).returning(PredictionRow.id, sort_by_parameter_order=True)
                ids = conn.execute(statement, [group[i].values for i in plain]).scalars().all()
                new.update(zip(plain, ids, strict=True))
            for i, p in enumerate(group):
                if p.keyed is None:
                    continue
                record_id = conn.execute(p.keyed).scalar()
                if record_id is not None:
                    new[i] = record_id
                    continue
                try:  # the key is taken: its first request's row stands
                    outcomes[i] = self._first_row(conn, p.idempotency)
                except IdempotencyConflict as exc:
                    outcomes[i] = exc
            gone = [record_id for i, record_id in new.items() if group[i].abandoned.is_set()]
            if gone:
                conn.execute(delete(PredictionRow).where(PredictionRow.id.in_(gone)))
            conn.commit()
            for i, record_id in new.items():
                outcomes[i] = record_id
                if record_id not in gone and group[i].abandoned.is_set():
                    self._late_commit(f"saved #{record_id}")
        return [outcomes[i] for i in range(len(group))]

    def _keyed_insert(self, values: dict[str, Any], idempotency: tuple[str, str]) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING RETURNING id: a retry racing its first try adds nothing."""
        dialects = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
        if self.engine.dialect.name not in dialects:
            raise ValueError("idempotency keys need PostgreSQL or SQLite")
        key, digest = idempotency
        keyed = {**values, "idempotency_key": key, "request_digest": digest}
        statement = dialects[self.engine.dialect.name](PredictionRow).values(keyed)
        return statement.on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(PredictionRow.id)

    def _first_row(self, conn: Connection, idempotency: tuple[str, str]) -> int:
        key, digest = idempotency
        query = select(PredictionRow.id, PredictionRow.request_digest).where(PredictionRow.idempotency_key == key)
        found = conn.execute(query).one()
        if found.request_digest != digest:
            raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
        return int(found.id)

    def get(self, record_id: int) -> Record:
        """One record by id; RecordNotFound when there is none."""
        record_id = _check_id(record_id)

        def work(_abandoned: threading.Event) -> Record:
            with self._sessions() as session:
                row = _existing_row(session, record_id)
                return _to_record(row)

        return self._call(work, self.history_timeout)

    def latest(self) -> Record | None:
        """The most recently saved record, or None when the history is empty."""

        def work(_abandoned: threading.Event) -> Record | None:
            with self._sessions() as session:
                row = session.scalars(select(PredictionRow).order_by(*_NEWEST_FIRST).limit(1)).first()
                return None if row is None else _to_record(row)

        return self._call(work, self.history_timeout)

    def page(self, offset: int = 0, limit: int = 50, filters: Filters = Filters()) -> Page:  # noqa: B008 (frozen)
        """Records matching the filters, newest first, and their total (a COUNT in the database)."""
        if not _is_int(offset) or offset < 0:
            raise ValueError(f"offset must be an integer >= 0, not {offset!r}")
        if not _is_int(limit) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}")
        where = _conditions(_check_filters(filters))

        def work(_abandoned: threading.Event) -> Page:
            with self._sessions() as session:
                total = session.scalar(select(func.count()).select_from(PredictionRow).where(*where))
                query = select(PredictionRow).where(*where).order_by(*_NEWEST_FIRST)
                items = [_to_record(row) for row in session.scalars(query.offset(int(offset)).limit(int(limit)))]
            return Page(items=items, total=int(total or 0))

        return self._call(work, self.history_timeout)

    def set_label(self, record_id: int, label: int | str | None) -> Record:
        """Confirm or correct what the row shows (None clears it); labelled_at records when.

        A digit row's label is its digit (0-9, or that digit as a one-character string); a number row's
        is its text, 1 to 64 digits as a string ("007" keeps its zeros). A label of the other kind is a
        ValueError, and changes nothing.
        """
        record_id = _check_id(record_id)
        label = _check_label(label)

        def work(abandoned: threading.Event) -> Record:
            with self._sessions() as session:
                row = _existing_row(session, record_id)
                row.label, row.label_text = _label_columns(label, number=row.predicted_text is not None)
                row.labelled_at = None if label is None else datetime.now(UTC)
                session.flush()
                self._commit(session, abandoned, f"label of #{record_id}")  # type: ignore[arg-type]
                return _to_record(row)

        return self._call(work, self.history_timeout)

    def delete(self, record_id: int) -> None:
        """Remove one record for good; RecordNotFound when there is none."""
        record_id = _check_id(record_id)

        def work(abandoned: threading.Event) -> None:
            with self.engine.connect() as conn:
                deleted = conn.execute(delete(PredictionRow).where(PredictionRow.id == record_id)).rowcount
                if not deleted:
                    raise RecordNotFound(f"no prediction with id {record_id}")
                self._commit(conn, abandoned, f"deleted #{record_id}")

        self._call(work, self.history_timeout)

    def stats(self, filters: Filters = Filters()) -> Stats:  # noqa: B008 (frozen)
        """What Stats describes, grouped in SQL; labelled numbers are paired digit by digit here (they are few)."""
        where = _conditions(_check_filters(filters))
        row = PredictionRow
        digits_read = [func.sum(_times_read(d)) for d in range(10)]
        by_source = (
            select(row.source, func.count(), func.sum(row.confidence), *digits_read).where(*where).group_by(row.source)
        )
        digit_labels = (  # only digit rows have a `label` (CHECK label_kind)
            select(row.label, row.digit, func.count())
            .where(*where, row.label.is_not(None))
            .group_by(row.label, row.digit)
        )
        number_labels = (  # predicted_text IS NOT NULL (implied: CHECK label_kind) reads the number rows by their index
            select(row.predicted_text, row.label_text).where(
                *where, row.predicted_text.is_not(None), row.label_text.is_not(None)
            )
        )

        def work(_abandoned: threading.Event) -> list[list[Any]]:
            with self.engine.connect() as conn:
                return [list(conn.execute(query).all()) for query in (by_source, digit_labels, number_labels)]

        groups, pairs, texts = self._call(work, self.history_timeout)
        per_digit = [0] * 10
        per_source = dict.fromkeys(SOURCES, 0)
        total, confidence_sum = 0, 0.0
        for source, count, summed, *times in groups:
            total += count
            per_source[source] = per_source.get(source, 0) + count
            confidence_sum += float(summed or 0.0)
            per_digit = [have + int(more or 0) for have, more in zip(per_digit, times, strict=True)]
        confusion = [[0] * 10 for _ in range(10)]
        for label, digit, count in pairs:
            confusion[label][digit] += count
        mismatched = 0
        for predicted, true in texts:
            if len(predicted) != len(true):
                mismatched += 1  # a digit missed or one too many: no place pairs up for sure
                continue
            for read, truth in zip(predicted, true, strict=True):
                confusion[int(truth)][int(read)] += 1
        labelled = sum(map(sum, confusion))
        correct = sum(confusion[d][d] for d in range(10))
        return Stats(
            total=total,
            per_digit=per_digit,
            per_source=per_source,
            mean_confidence=confidence_sum / total if total else None,
            labelled=labelled,
            correct=correct,
            accuracy=correct / labelled if labelled else None,
            confusion=confusion,
            labelled_rows=sum(count for *_, count in pairs) + len(texts),
            mismatched_length=mismatched,
        )

    def confidence_histogram(self, filters: Filters = Filters(), bins: int = 10) -> list[int]:  # noqa: B008
        """Rows per equal-width confidence bin over [0, 1], counted in SQL (a confidence of 1 is in the last bin)."""
        if not _is_int(bins) or not 1 <= bins <= 100:
            raise ValueError(f"bins must be an integer from 1 to 100, not {bins!r}")
        where = _conditions(_check_filters(filters))
        # CASE rather than floor(): SQLite builds without math functions have no floor().
        edges = [(PredictionRow.confidence < (i + 1) / bins, i) for i in range(bins - 1)]
        bin_of = case(*edges, else_=bins - 1) if edges else literal(0)
        query = select(bin_of, func.count()).where(*where).group_by(bin_of)
        counts = self._call(lambda _abandoned: self._all(query), self.history_timeout)
        histogram = [0] * bins
        for index, count in counts:
            histogram[int(index)] += count
        return histogram

    def _all(self, query: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    def export_csv(self, filters: Filters = Filters(), chunk_rows: int = 1000) -> Iterator[str]:  # noqa: B008
        """CSV text in chunks (header first), newest first; reads chunk_rows rows per query, never the table."""
        where = _conditions(_check_filters(filters))
        if not _is_int(chunk_rows) or not 1 <= chunk_rows <= 100_000:
            raise ValueError(f"chunk_rows must be an integer from 1 to 100000, not {chunk_rows!r}")
        return self._csv_chunks(where, int(chunk_rows))

    def _csv_chunks(self, where: list[Any], chunk_rows: int) -> Iterator[str]:
        yield _csv_line(CSV_COLUMNS)
        after: tuple[datetime, int] | None = None
        while True:
            query = select(*_CSV_FIELDS).where(*where).order_by(*_NEWEST_FIRST).limit(chunk_rows)
            if after is not None:
                # Keyset paging: each chunk is one short indexed query, so a slow download holds no
                # connection and rows saved meanwhile never shift or repeat what was already sent.
                created, last_id = after
                query = query.where(
                    PredictionRow.created_at <= created,
                    or_(
                        PredictionRow.created_at < created,
                        and_(PredictionRow.created_at == created, PredictionRow.id < last_id),
                    ),
                )
            rows = self._call(lambda _abandoned, q=query: self._all(q), self.history_timeout)
            if not rows:
                return
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            for r in rows:
                writer.writerow(_csv_cells(r))
            yield buffer.getvalue()
            if len(rows) < chunk_rows:
                return
            after = (rows[-1].created_at, rows[-1].id)

    # --- the model registry -----------------------------------------------------------------------

    def _insert_or_skip(self, table: Any, values: dict[str, Any]) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING on the primary key: of two processes racing, one adds the row."""
        dialects = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
        if self.engine.dialect.name not in dialects:
            raise ValueError("the model registry needs PostgreSQL or SQLite")
        return dialects[self.engine.dialect.name](table).values(values).on_conflict_do_nothing()

    def add_shipped_model(
        self, version: str, weights: bytes, *, recipe: dict[str, Any], metrics: dict[str, Any] | None
    ) -> ModelVersion:
        """Register the shipped weights (version zero) unless they are already; they become active when no
        version is. Processes racing to do it add one row and one active version."""
        version = _check_version(version)
        now = datetime.now(UTC)
        values = {
            "version": version, "parent": None, "created_at": now, "status": "ready", "progress": 1.0,
            "finished_at": now, "recipe": recipe, "metrics": metrics, "weights": bytes(weights),
        }  # fmt: skip
        added = self._insert_or_skip(ModelRow, values)

        activated = (
            update(ModelRow)
            .where(ModelRow.version == version, ModelRow.status.in_(SERVABLE))
            .where(~select(ModelRow.version).where(ModelRow.status == "active").exists())
            .values(status="active", activated_at=now)
        )

        def work(abandoned: threading.Event) -> ModelVersion:
            with self._sessions() as session:
                self._allow_weights_time(session)
                session.execute(added)
                self._commit(session, abandoned, f"shipped model {version}")  # type: ignore[arg-type]
                try:
                    session.execute(activated)
                    self._commit(session, abandoned, f"shipped model {version} active")  # type: ignore[arg-type]
                except sa_exc.IntegrityError:  # another process made a version active meanwhile: it stands
                    session.rollback()
                return _to_model_version(_existing_model(session, version))

        return self._call(work, self.WEIGHTS_SECONDS)

    def start_model(self, version: str, *, parent: str, recipe: dict[str, Any]) -> ModelVersion:
        """Add a version in training, fine-tuned from `parent`; TrainingInProgress while another trains.

        A training row whose process died (its heartbeat stale) is failed first, so it blocks nobody.
        """
        version, parent = _check_version(version), _check_version(parent)
        now = datetime.now(UTC)

        def work(abandoned: threading.Event) -> ModelVersion:
            with self._sessions() as session:
                self._fail_stale(session)
                _existing_model(session, parent)
                row = ModelRow(
                    version=version, parent=parent, created_at=now, status="training", progress=0.0,
                    stage="starting", heartbeat_at=now, recipe=recipe,
                )  # fmt: skip
                session.add(row)
                try:
                    session.flush()
                except sa_exc.IntegrityError:
                    session.rollback()
                    training = session.scalar(select(ModelRow.version).where(ModelRow.status == "training"))
                    raise TrainingInProgress(
                        f"version {training} is training: one fine-tune at a time (wait for it, or for it to fail)"
                    ) from None
                self._commit(session, abandoned, f"model {version} started")  # type: ignore[arg-type]
                return _to_model_version(row)

        return self._call(work, self.history_timeout)

    def model_heartbeat(self, version: str, progress: float, stage: str, *, worker: str | None = None) -> bool:
        """A training job's sign of life, with how far it is (and, once, the process it runs in: host:pid); False
        when the version is no longer training (it was failed meanwhile): the job should stop."""
        values = {"progress": _check_fraction(progress, "progress"), "stage": _check_text(stage, "stage")}
        if worker is not None:
            values["worker"] = _check_text(worker, "worker")
        return self._update_training(version, values | {"heartbeat_at": datetime.now(UTC)}, "heartbeat")

    def finish_model(
        self,
        version: str,
        *,
        weights: bytes,
        metrics: dict[str, Any],
        gate: dict[str, Any],
        rows_trained_on: int,
    ) -> ModelVersion:
        """A training version is ready: its weights, figures and the gate's verdict. ModelNotReady when it is not
        training any more (it was failed meanwhile)."""
        values = {
            "status": "ready", "progress": 1.0, "stage": None, "finished_at": datetime.now(UTC),
            "weights": bytes(weights), "metrics": metrics, "gate": gate, "rows_trained_on": int(rows_trained_on),
        }  # fmt: skip
        if not self._update_training(version, values, "finished"):
            raise ModelNotReady(f"version {version} is not training any more (it was marked failed)")
        return self.model(version)

    def fail_model(self, version: str, error: str) -> bool:
        """Mark a training version failed, saying why; False when it was not training (nothing changes)."""
        values = {"status": "failed", "stage": None, "finished_at": datetime.now(UTC), "error": str(error)[:2000]}
        return self._update_training(version, values, "failed")

    def _update_training(self, version: str, values: dict[str, Any], what: str) -> bool:
        version = _check_version(version)
        statement = update(ModelRow).where(ModelRow.version == version, ModelRow.status == "training").values(values)
        weights = "weights" in values

        def work(abandoned: threading.Event) -> bool:
            with self.engine.connect() as conn:
                if weights:
                    self._allow_weights_time(conn)
                changed = conn.execute(statement).rowcount
                self._commit(conn, abandoned, f"model {version} {what}")
                return bool(changed)

        return self._call(work, self.WEIGHTS_SECONDS if weights else self.history_timeout)

    def _allow_weights_time(self, conn: Connection | Session) -> None:
        """PostgreSQL gives this transaction's statements WEIGHTS_SECONDS, not a history call's statement_timeout."""
        if self.engine.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL statement_timeout = {math.ceil(self.WEIGHTS_SECONDS * 1000)}"))

    def _fail_stale(self, session: Session) -> None:
        """Training rows whose heartbeat stopped: their process is gone, so they are failed (and say so)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.STALE_TRAINING_SECONDS)
        session.execute(
            update(ModelRow)
            .where(ModelRow.status == "training", ModelRow.heartbeat_at < cutoff)
            .values(
                status="failed", stage=None, finished_at=datetime.now(UTC),
                error=f"the training process stopped (no heartbeat for {self.STALE_TRAINING_SECONDS:g} s)",
            )
        )  # fmt: skip

    def models(self) -> list[ModelVersion]:
        """Every version, newest first (a training version whose process died reads as failed)."""

        newest_first = select(ModelRow).order_by(ModelRow.created_at.desc(), ModelRow.version)
        return self._read_models(lambda session: [_to_model_version(row) for row in session.scalars(newest_first)])

    def model(self, version: str) -> ModelVersion:
        """One version; ModelNotFound when there is none."""
        version = _check_version(version)

        return self._read_models(lambda session: _to_model_version(_existing_model(session, version)))

    def _read_models(self, read: Callable[[Session], T]) -> T:
        """`read` the registry after failing the training versions whose process died (committed with it)."""

        def work(abandoned: threading.Event) -> T:
            with self._sessions() as session:
                self._fail_stale(session)
                found = read(session)
                self._commit(session, abandoned, "stale models failed")  # type: ignore[arg-type]
                return found

        return self._call(work, self.history_timeout)

    def model_weights(self, version: str) -> bytes:
        """A version's weights (torch.save'd state dict); ModelNotReady while it has none."""
        version = _check_version(version)

        def work(_abandoned: threading.Event) -> bytes:
            with self.engine.connect() as conn, conn.begin():
                self._allow_weights_time(conn)
                found = conn.execute(
                    select(ModelRow.status, ModelRow.weights).where(ModelRow.version == version)
                ).first()
            if found is None:
                raise ModelNotFound(f"no model version {version}")
            if found.weights is None:
                raise ModelNotReady(f"version {version} has no weights: it is {found.status}")
            return bytes(found.weights)

        return self._call(work, self.WEIGHTS_SECONDS)

    def active_model(self) -> str | None:
        """The active version's name (one indexed row), or None before any is registered."""
        query = select(ModelRow.version).where(ModelRow.status == "active")
        found = self._call(lambda _abandoned: self._all(query), self.save_timeout)
        return found[0].version if found else None

    def activate_model(self, version: str, *, gate: dict[str, Any] | None = None) -> ModelVersion:
        """Make a version with weights the active one (the one active before is retired), in one transaction;
        `gate` replaces its gate record (a forced activation notes itself there). ModelNotReady without weights."""
        version = _check_version(version)
        now = datetime.now(UTC)

        def work(abandoned: threading.Event) -> ModelVersion:
            with self._sessions() as session:
                row = _existing_model(session, version)
                if row.status not in SERVABLE:
                    raise ModelNotReady(f"version {version} is {row.status}: only a trained version can be served")
                if row.status != "active":
                    session.execute(update(ModelRow).where(ModelRow.status == "active").values(status="retired"))
                    session.execute(
                        update(ModelRow).where(ModelRow.version == version).values(status="active", activated_at=now)
                    )
                if gate is not None:
                    session.execute(update(ModelRow).where(ModelRow.version == version).values(gate=gate))
                self._commit(session, abandoned, f"model {version} activated")  # type: ignore[arg-type]
                session.expire_all()
                return _to_model_version(_existing_model(session, version))

        return self._call(work, self.history_timeout)

    def labelled_inputs(self, chunk_rows: int = 2000) -> list[LabelledInput]:
        """Every labelled row's inputs and true text, oldest first, read chunk_rows rows per bounded query."""
        row = PredictionRow
        columns = (row.id, row.model_input, row.label, row.predicted_text, row.label_text, row.digit_inputs)
        found: list[LabelledInput] = []
        after = 0
        while True:
            query = select(*columns).where(row.labelled_at.is_not(None), row.id > after).order_by(row.id)
            query = query.limit(chunk_rows)
            rows = self._call(lambda _abandoned, q=query: self._all(q), self.history_timeout)
            for r in rows:
                if r.predicted_text is None:
                    inputs = np.frombuffer(r.model_input, np.uint8).reshape(1, *INPUT_SHAPE)
                    found.append(LabelledInput(r.id, inputs, str(r.label)))
                else:
                    inputs = None if r.digit_inputs is None else np.frombuffer(r.digit_inputs, np.uint8)
                    shaped = None if inputs is None else inputs.reshape(-1, *INPUT_SHAPE)
                    found.append(LabelledInput(r.id, shaped, r.label_text))
            if len(rows) < chunk_rows:
                return found
            after = rows[-1].id


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the dashboard read while the API writes; SQLite's default journal blocks readers."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


# --- the one provider -----------------------------------------------------------------------------


class StoreProvider:
    """The history store, migrated on first use; a database that is down is asked again later, not given up on.

    The API and the dashboard served together hold the same provider (shared_provider), so the schema
    is migrated once, there is one connection pool, and a database that comes back is noticed by both
    without a restart. The migration runs on a thread of its own: a caller waits for it a bounded time
    (`wait`), so a hung database at start delays nobody for longer than that.
    """

    RETRY_SECONDS = 5.0  # after a failed migration, try again at most this often
    STATUS_SECONDS = 10.0  # how long a ready() answer is trusted: the Draw page reruns on every stroke

    def __init__(self, store: Store | None = None, *, url: str | None = None) -> None:
        self._store = store
        self._url = url
        self._unusable: str | None = None  # why DATABASE_URL cannot make a Store, once known
        self._migrated = False
        self._migration: Future[None] | None = None  # the migration under way or last tried
        self._retry_at = 0.0
        self._status: tuple[float, bool] | None = None  # (trusted until, ready)
        self._lock = threading.Lock()

    def store(self) -> Store | None:
        """The Store, perhaps not migrated yet (enough to describe it); None when DATABASE_URL is unusable."""
        if self._store is None and self._unusable is None:
            with self._lock:
                if self._store is None and self._unusable is None:
                    try:
                        self._store = Store(self._url if self._url is not None else get_settings().database_url)
                    except ValueError as exc:  # a malformed URL: the app still predicts, history is off
                        self._unusable = str(exc)
                        logs.event(log, "history_disabled", level=logging.WARNING, detail=str(exc))
        return self._store

    def get(self, wait: float | None = None) -> Store:
        """The migrated store, or StoreUnavailable; waits at most `wait` s (the store's history_timeout) to migrate."""
        store = self.store()
        if store is None:
            raise StoreUnavailable(f"the history is off: {self._unusable}", "off")
        if self._migrated:
            return store
        store.admit()  # during an outage only the probe waits for a migration; the others fail at once
        migration = self._migration_for(store)
        try:
            migration.result(store.history_timeout if wait is None else wait)
        except FutureTimeout:
            raise StoreUnavailable(
                f"History database unavailable ({store.describe()}): its migration has not finished", "timeout"
            ) from None
        return store

    def _migration_for(self, store: Store) -> Future[None]:
        """The migration under way, or a new one when none has run or the last failed RETRY_SECONDS ago."""
        with self._lock:
            last = self._migration
            if last is not None and (not last.done() or last.exception() is None):
                return last
            if last is not None and time.monotonic() < self._retry_at:
                return last  # failed recently: its error stands until the retry
            migration: Future[None] = Future()
            self._migration = migration

        def run() -> None:
            try:
                store.migrate()
            except StoreUnavailable as exc:
                self._retry_at = time.monotonic() + self.RETRY_SECONDS
                logs.event(
                    log, "migration_failed", level=logging.WARNING, database=store.describe(), reason=exc.reason,
                    detail=str(exc), retry_seconds=self.RETRY_SECONDS,
                )  # fmt: skip
                migration.set_exception(exc)
            except BaseException as exc:  # noqa: BLE001 - a bug: the callers re-raise it
                migration.set_exception(exc)
            else:
                self._migrated = True
                migration.set_result(None)

        threading.Thread(target=run, name="mnist-store-migrate", daemon=True).start()
        return migration

    def get_or_none(self, wait: float | None = None) -> Store | None:
        """The store for a prediction, or None while the database is down (the prediction still stands)."""
        try:
            return self.get(wait)
        except StoreUnavailable:
            return None

    def ready(self) -> bool:
        """True when the database answers and its schema is up to date; trusted for STATUS_SECONDS."""
        status = self._status
        if status is not None and time.monotonic() < status[0]:
            return status[1]
        store = self.get_or_none()
        ready = store is not None and store.ping()
        self._status = (time.monotonic() + self.STATUS_SECONDS, ready)
        return ready

    def forget(self) -> None:
        """Ask the database again on the next call (after a save failed, say)."""
        self._status = None
        self._retry_at = 0.0


_providers: dict[str, StoreProvider] = {}
_providers_lock = threading.Lock()


def shared_provider(url: str | None = None) -> StoreProvider:
    """The process's provider for this URL (DATABASE_URL when None): one per URL, whoever asks."""
    url = url if url is not None else get_settings().database_url
    with _providers_lock:
        if url not in _providers:
            _providers[url] = StoreProvider(url=url)
        return _providers[url]
