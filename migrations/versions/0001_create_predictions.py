"""Create predictions: the original design's columns, without pickles.

Revision ID: 0001
Revises:
Create Date: 2025-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # op.f(): these names are final, whatever naming convention the models' metadata declares.
    op.create_table(
        "predictions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("model_input", sa.LargeBinary(), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=True),
        sa.Column("digit", sa.SmallInteger(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.CheckConstraint(
            "source IN ('draw', 'upload', 'camera', 'api', 'number')", name=op.f("ck_predictions_source")
        ),
        sa.CheckConstraint("digit BETWEEN 0 AND 9", name=op.f("ck_predictions_digit")),
        sa.CheckConstraint("label BETWEEN 0 AND 9", name=op.f("ck_predictions_label")),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name=op.f("ck_predictions_confidence")),
        sa.CheckConstraint("length(model_input) = 784", name=op.f("ck_predictions_model_input_size")),
        sa.CheckConstraint("length(original) <= 200000", name=op.f("ck_predictions_original_size")),
        sa.CheckConstraint("(label IS NULL) = (labelled_at IS NULL)", name=op.f("ck_predictions_labelled_at")),
    )
    op.create_index(op.f("ix_predictions_created_at"), "predictions", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_predictions_created_at"), table_name="predictions")
    op.drop_table("predictions")
