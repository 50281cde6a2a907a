"""Add predicted_text (multi-digit numbers) and latency_ms; index every History filter.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_predictions_digit_created_at": ["digit", "created_at"],
    "ix_predictions_source_created_at": ["source", "created_at"],
    "ix_predictions_label": ["label"],
    "ix_predictions_confidence": ["confidence"],
}


def upgrade() -> None:
    # Nullable columns: existing rows simply have no number text and no recorded latency.
    op.add_column("predictions", sa.Column("predicted_text", sa.String(64), nullable=True))
    op.add_column("predictions", sa.Column("latency_ms", sa.Float(), nullable=True))
    for name, columns in INDEXES.items():
        op.create_index(op.f(name), "predictions", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(op.f(name), table_name="predictions")
    # Plain DROP COLUMN (SQLite >= 3.35): neither column is in an index or constraint any more, and a
    # batch rebuild on SQLite could lose the table's CHECK constraints.
    op.drop_column("predictions", "latency_ms")
    op.drop_column("predictions", "predicted_text")
