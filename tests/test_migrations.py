"""Alembic migrations on SQLite and PostgreSQL: from empty, from the previous revision, twice, and back."""

from __future__ import annotations

import threading
import types
from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from mnist.store import Base, Filters, Store, alembic_config

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def fake(digit: int, seed: int) -> types.SimpleNamespace:
    rng = np.random.default_rng(seed)
    probabilities = [0.0] * 10
    probabilities[digit] = 1.0
    image = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
    return types.SimpleNamespace(
        digit=digit, confidence=1.0, probabilities=probabilities, model_input=image, model_version="m"
    )


@pytest.fixture
def store(database_url: str):
    store = Store(database_url)
    yield store
    store.engine.dispose()


def version(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def columns(store: Store) -> set[str]:
    return {c["name"] for c in sa.inspect(store.engine).get_columns("predictions")}


def test_there_is_a_previous_revision_to_migrate_from() -> None:
    revisions = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())
    assert len(revisions) >= 2 and revisions[0].revision == HEAD and revisions[-1].down_revision is None


def test_empty_database_migrates_to_head_matching_the_models(store: Store) -> None:
    assert version(store) is None
    store.migrate()
    assert version(store) == HEAD
    assert columns(store) == set(Base.metadata.tables["predictions"].columns.keys())
    indexes = {i["name"] for i in sa.inspect(store.engine).get_indexes("predictions")}
    assert indexes == {i.name for i in Base.metadata.tables["predictions"].indexes}
    checks = {c["name"] for c in sa.inspect(store.engine).get_check_constraints("predictions")}
    table = Base.metadata.tables["predictions"]
    assert checks == {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
    assert len(checks) == 10
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []  # the ORM models and the migrations describe the same schema


def test_rows_from_the_previous_revision_survive_and_new_columns_work(store: Store) -> None:
    store.migrate("0001")
    assert version(store) == "0001"
    assert "predicted_text" not in columns(store) and "latency_ms" not in columns(store)
    # Rows written by the old schema, with the old schema's columns only.
    old = sa.table(
        "predictions",
        *[sa.column(n) for n in ("created_at", "source", "filename", "model_input", "digit", "confidence")],
        sa.column("probabilities", sa.JSON()),
        *[sa.column(n) for n in ("model_version", "label", "labelled_at")],
    )
    images = [fake(d, seed=d).model_input for d in range(3)]
    with store.engine.begin() as conn:
        for d, image in enumerate(images):
            when = datetime(2023, 1, 1, d, tzinfo=UTC)
            conn.execute(
                old.insert().values(
                    created_at=when.replace(tzinfo=None) if conn.dialect.name == "sqlite" else when,
                    source="draw",
                    filename=f"old{d}.png",
                    model_input=image.tobytes(),
                    digit=d,
                    confidence=1.0,
                    probabilities=fake(d, seed=d).probabilities,
                    model_version="v1",
                    label=d if d else None,
                    labelled_at=when if d else None,
                )
            )

    store.migrate()
    assert version(store) == HEAD
    page = store.page()
    assert page.total == 3
    oldest = page.items[-1]
    assert oldest.filename == "old0.png" and oldest.created_at == datetime(2023, 1, 1, 0, tzinfo=UTC)
    assert [r.model_input.tobytes() for r in page.items[::-1]] == [i.tobytes() for i in images]
    assert all(r.predicted_text is None and r.latency_ms is None for r in page.items)
    assert store.stats().labelled == 2

    new = store.get(store.save(fake(7, seed=7), source="number", predicted_text="1907", latency_ms=3.5))
    assert (new.predicted_text, new.latency_ms) == ("1907", 3.5)
    assert store.page(filters=Filters(digit=7)).total == 1 and store.page().total == 4


def test_migrating_twice_changes_nothing(store: Store) -> None:
    store.migrate()
    record_id = store.save(fake(4, seed=4), source="draw")
    schema = (columns(store), sorted(i["name"] for i in sa.inspect(store.engine).get_indexes("predictions")))
    store.migrate()
    assert version(store) == HEAD
    assert (columns(store), sorted(i["name"] for i in sa.inspect(store.engine).get_indexes("predictions"))) == schema
    assert store.page().total == 1 and store.get(record_id).digit == 4


def test_constraints_guard_the_table_below_the_store(store: Store) -> None:
    store.migrate()
    record_id = store.save(fake(2, seed=2), source="draw")
    bad_updates = [
        {"label": 12, "labelled_at": datetime.now(UTC)},
        {"label": 3},  # a label without labelled_at
        {"source": "fax"},
        {"digit": -1},
        {"confidence": 1.5},
        {"model_input": b"\x00" * 783},
        {"label_text": "12", "labelled_at": datetime.now(UTC)},  # a text label on a digit row
        {"digit_inputs": b"\x00" * 784},  # a digit row has no digit inputs
    ]
    table = Base.metadata.tables["predictions"]
    for values in bad_updates:
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == record_id).values(**values))
    assert store.get(record_id).label is None

    number_id = store.save(fake(4, seed=4), source="number", predicted_text="4096")
    for values in (
        {"label": 4, "labelled_at": datetime.now(UTC)},  # a digit label on a number row
        {"label_text": "40a6", "labelled_at": datetime.now(UTC)},
        {"label_text": "", "labelled_at": datetime.now(UTC)},
        {"label_text": "4097"},  # a label without labelled_at
        {"digit_inputs": b"\x00" * 784 * 3},  # three inputs for four digits
    ):
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == number_id).values(**values))
    assert store.get(number_id).label_text is None


def insert_0004_row(conn, digit: int, text: str | None, label: int | None) -> int:
    """A row as revision 0004 wrote it: a number row stood on one digit, and its label was that digit's."""
    names = ["id", "created_at", "source", "model_input", "digit", "predicted_text", "confidence", "model_version"]
    names += ["label", "labelled_at"]
    old = sa.table("predictions", *map(sa.column, names), sa.column("probabilities", sa.JSON()))
    when = datetime(2025, 5, 1, tzinfo=UTC)
    created = when.replace(tzinfo=None) if conn.dialect.name == "sqlite" else when
    values = {
        "created_at": created,
        "source": "number" if text else "draw",
        "model_input": fake(digit, seed=digit).model_input.tobytes(),
        "digit": digit,
        "predicted_text": text,
        "confidence": 0.9,
        "probabilities": fake(digit, seed=digit).probabilities,
        "model_version": "v4",
        "label": label,
        "labelled_at": None if label is None else created,
    }
    return conn.execute(old.insert().values(**values).returning(old.c.id)).scalar_one()


def test_number_rows_from_0004_upgrade_to_whole_number_labels_and_back(store: Store) -> None:
    store.migrate("0004")
    with store.engine.begin() as conn:
        digit_row = insert_0004_row(conn, 3, None, 5)
        one_digit = insert_0004_row(conn, 7, "7", 1)  # a one-digit number: its digit's label is the number's
        longer = insert_0004_row(conn, 6, "4096", 6)  # its least certain digit's label: not the number's
        unlabelled = insert_0004_row(conn, 2, "21", None)

    store.migrate()
    assert version(store) == HEAD and {"label_text", "digit_inputs"} <= columns(store)
    rows = {r.id: r for r in store.page().items}
    assert (rows[digit_row].label, rows[digit_row].label_text) == (5, "5")
    assert (rows[one_digit].label, rows[one_digit].label_text) == (None, "1") and rows[one_digit].labelled_at
    assert (rows[longer].label, rows[longer].label_text, rows[longer].labelled_at) == (None, None, None)
    assert all(r.digit_inputs is None for r in rows.values())  # never kept before 0005
    assert rows[unlabelled].text == "21" and store.page(filters=Filters(text="21")).total == 1
    assert store.stats().labelled_rows == 2

    # The new columns work on the old rows, and on a new one.
    assert store.set_label(longer, "4097").label_text == "4097"
    inputs = np.stack([fake(d, seed=d).model_input for d in (8, 8)])
    new = store.save(fake(8, seed=8), source="number", predicted_text="88", digit_inputs=inputs.tobytes())
    assert np.array_equal(store.get(new).digit_inputs, inputs)

    with store.engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    assert version(store) == "0004" and not {"label_text", "digit_inputs"} & columns(store)
    with store.engine.connect() as conn:
        table = sa.table("predictions", sa.column("id"), sa.column("label"), sa.column("labelled_at"))
        old = {r.id: (r.label, r.labelled_at is not None) for r in conn.execute(sa.select(table))}
    # A one-digit number's text label is its digit again; a longer one's cannot be, and is dropped.
    assert old[digit_row] == (5, True) and old[one_digit] == (1, True) and old[longer] == (None, False)
    table = sa.table("predictions", sa.column("id"), sa.column("label"))
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:  # the old labelled_at CHECK is back
        conn.execute(table.update().where(table.c.id == unlabelled).values(label=3))
    store.migrate()
    assert store.get(one_digit).label_text == "1" and store.get(new).digit_inputs is None


def test_downgrade_to_the_previous_revision_and_back(store: Store) -> None:
    store.migrate()
    store.save(fake(5, seed=5), source="upload", predicted_text="5", latency_ms=1.0)
    with store.engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert version(store) == "0001" and "latency_ms" not in columns(store)
    table = sa.table("predictions", sa.column("label"))
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:  # CHECKs survived the downgrade
        conn.execute(table.update().values(label=12))
    store.migrate()
    assert store.page().total == 1 and store.latest().predicted_text is None


def test_migrate_does_not_depend_on_the_working_directory(store: Store, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini, no migrations/ here
    store.migrate()
    assert version(store) == HEAD


def test_two_processes_migrating_at_once_both_succeed(postgres_url: str) -> None:
    stores = [Store(postgres_url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(s: Store) -> None:
        try:
            s.migrate()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert version(stores[0]) == HEAD
    for s in stores:
        s.engine.dispose()


def test_0006_adds_the_model_registry_and_the_model_version_filter_and_back(store: Store) -> None:
    store.migrate("0005")
    record_id = store.save(fake(6, seed=6), source="draw")
    assert "models" not in sa.inspect(store.engine).get_table_names()

    store.migrate()
    inspector = sa.inspect(store.engine)
    assert {c["name"] for c in inspector.get_columns("models")} == set(Base.metadata.tables["models"].columns.keys())
    assert {i["name"] for i in inspector.get_indexes("models")} == {"ix_models_one_training", "ix_models_one_active"}
    table = Base.metadata.tables["models"]
    checks = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
    assert {c["name"] for c in inspector.get_check_constraints("models")} == checks
    assert store.models() == [] and store.active_model() is None  # version zero is the app's to register
    assert store.get(record_id).model_version == "m"
    assert store.page(filters=Filters(model_version="m")).total == 1
    assert store.page(filters=Filters(model_version="other")).total == 0

    with store.engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")
    assert "models" not in sa.inspect(store.engine).get_table_names()
    indexes = {i["name"] for i in sa.inspect(store.engine).get_indexes("predictions")}
    assert "ix_predictions_model_version_created_at" not in indexes
    store.migrate()
    assert store.page().total == 1


def model_values(version: str, status: str, **more: object) -> dict:
    weights = None if status in ("training", "failed") else b"weights"
    values = {"version": version, "created_at": datetime.now(UTC), "status": status, "recipe": {}, "weights": weights}
    return values | more


def test_constraints_guard_the_model_registry_below_the_store(store: Store) -> None:
    store.migrate()
    table = Base.metadata.tables["models"]
    with store.engine.begin() as conn:
        conn.execute(table.insert().values(model_values("zero", "active")))
        conn.execute(table.insert().values(model_values("one", "training", parent="zero")))
        conn.execute(table.insert().values(model_values("two", "ready", parent="zero")))
    bad_rows = [
        model_values("three", "active"),  # a second active version: every process would serve which?
        model_values("three", "training"),  # a second job at once
        model_values("three", "ready", weights=None),  # ready, but nothing to serve
        model_values("three", "failed", weights=b"half a model"),
        model_values("three", "zombie"),
        model_values("three", "ready", progress=1.5),
        model_values("zero", "retired"),  # the version is the key
    ]
    for values in bad_rows:
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(table.insert().values(values))
    assert {m.version: m.status for m in store.models()} == {"zero": "active", "one": "training", "two": "ready"}
