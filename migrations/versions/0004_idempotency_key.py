"""Add idempotency_key and request_digest: a client's retry finds the row its first request made.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: rows saved without a key (the dashboard, the original client) have none, and a unique
    # index holds any number of NULLs on both PostgreSQL and SQLite.
    op.add_column("predictions", sa.Column("idempotency_key", sa.String(64), nullable=True))
    op.add_column("predictions", sa.Column("request_digest", sa.String(64), nullable=True))
    op.create_index(op.f("ix_predictions_idempotency_key"), "predictions", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_predictions_idempotency_key"), table_name="predictions")
    op.drop_column("predictions", "request_digest")
    op.drop_column("predictions", "idempotency_key")
