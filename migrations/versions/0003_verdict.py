"""Add verdict: what the engine made of the picture (a digit, unsure, not a digit, several digits).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows from before the verdict were all answered as digits: the default says so. The allowed values are
    # checked by the store (a CHECK added here would need a table rebuild on SQLite).
    op.add_column("predictions", sa.Column("verdict", sa.String(16), nullable=False, server_default="digit"))
    op.create_index(op.f("ix_predictions_verdict_created_at"), "predictions", ["verdict", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_predictions_verdict_created_at"), table_name="predictions")
    op.drop_column("predictions", "verdict")
