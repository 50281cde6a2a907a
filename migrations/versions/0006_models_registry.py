"""The model registry: a `models` table (every version of the digit classifier, its weights and figures), and
an index for the History's model-version filter.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

The shipped weights are registered as version zero by the app on first use (mnist.registry), not here: a
migration should not read weights files, which a release may replace. At most one version is training
and at most one active: partial unique indexes say so to every process at once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'training', 'ready', 'failed', 'active', 'retired'"


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), server_default="0", nullable=False),
        sa.Column("stage", sa.String(64), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("rows_trained_on", sa.Integer(), nullable=True),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("gate", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("weights", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_models_status")),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_models_progress")),
        sa.CheckConstraint("(weights IS NULL) = (status IN ('training', 'failed'))", name=op.f("ck_models_weights")),
        sa.ForeignKeyConstraint(["parent"], ["models.version"], name=op.f("fk_models_parent_models")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_models")),
    )
    for status in ("training", "active"):
        where = sa.text(f"status = '{status}'")
        op.create_index(
            op.f(f"ix_models_one_{status}"),
            "models",
            ["status"],
            unique=True,
            sqlite_where=where,
            postgresql_where=where,
        )
    op.create_index(op.f("ix_predictions_model_version_created_at"), "predictions", ["model_version", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_predictions_model_version_created_at"), table_name="predictions")
    op.drop_table("models")
