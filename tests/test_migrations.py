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
    assert len(checks) == 7
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
    ]
    table = Base.metadata.tables["predictions"]
    for values in bad_updates:
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == record_id).values(**values))
    assert store.get(record_id).label is None


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
