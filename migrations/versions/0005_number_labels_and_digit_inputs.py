"""Number rows stand whole: label_text (the true number) and digit_inputs (every digit's 28x28 input).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Until 0005 a number row was labelled through its least certain digit: `label` named one digit of the
number, not the number, so it cannot become the number's label. A one-digit number's label is its
whole text and carries over to label_text; a longer number's is cleared, with its labelled_at. Number
rows saved before keep digit_inputs NULL (their digits' inputs were never kept). The downgrade does the
reverse: a one-digit label_text goes back to `label`, a longer one is dropped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The model's CHECKs (mnist.store.PredictionRow), as they stand at this revision.
CHECKS = {
    "ck_predictions_labelled_at": "(labelled_at IS NULL) = (label IS NULL AND label_text IS NULL)",
    "ck_predictions_label_kind": (
        "(label IS NULL OR predicted_text IS NULL) AND (label_text IS NULL OR predicted_text IS NOT NULL)"
    ),
    "ck_predictions_label_text": "length(label_text) BETWEEN 1 AND 64 AND trim(label_text, '0123456789') = ''",
    "ck_predictions_digit_inputs_size": (
        "digit_inputs IS NULL OR (predicted_text IS NOT NULL AND length(digit_inputs) = 784 * length(predicted_text))"
    ),
}
OLD_LABELLED_AT = "(label IS NULL) = (labelled_at IS NULL)"

predictions = sa.table(
    "predictions",
    sa.column("predicted_text", sa.String(64)),
    sa.column("label", sa.SmallInteger()),
    sa.column("label_text", sa.String(64)),
    sa.column("labelled_at", sa.DateTime(timezone=True)),
)
number = predictions.c.predicted_text.is_not(None)
one_digit = sa.func.length(predictions.c.predicted_text) == 1


def upgrade() -> None:
    # Batches: SQLite changes a CHECK only by copying the table (twice here: the old labelled_at rule must be
    # gone while the labels move, and the new rules in place once they have); PostgreSQL just ALTERs.
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("label_text", sa.String(64), nullable=True))
        batch.add_column(sa.Column("digit_inputs", sa.LargeBinary(), nullable=True))
        batch.drop_constraint(op.f("ck_predictions_labelled_at"), type_="check")
    labelled_number = sa.and_(number, predictions.c.label.is_not(None))
    op.execute(
        predictions.update()
        .where(labelled_number, one_digit)
        .values(label_text=sa.cast(predictions.c.label, sa.String(64)), label=None)
    )
    op.execute(predictions.update().where(labelled_number).values(label=None, labelled_at=None))
    with op.batch_alter_table("predictions") as batch:
        for name, condition in CHECKS.items():
            batch.create_check_constraint(op.f(name), condition)
    op.create_index(op.f("ix_predictions_predicted_text"), "predictions", ["predicted_text"])


def downgrade() -> None:
    op.drop_index(op.f("ix_predictions_predicted_text"), table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        for name in CHECKS:
            batch.drop_constraint(op.f(name), type_="check")
    labelled_number = sa.and_(number, predictions.c.label_text.is_not(None))
    op.execute(
        predictions.update()
        .where(labelled_number, one_digit)
        .values(label=sa.cast(predictions.c.label_text, sa.SmallInteger()))
    )
    op.execute(predictions.update().where(labelled_number, sa.not_(one_digit)).values(labelled_at=None))
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("digit_inputs")
        batch.drop_column("label_text")
        batch.create_check_constraint(op.f("ck_predictions_labelled_at"), OLD_LABELLED_AT)
