"""A/B experiments: experiments, per-request exposures per arm, shadow predictions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("unit", sa.String(10), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("aliases_at_start", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_table(
        "experiment_exposures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("arm", sa.String(32), nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("unit_key", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("n_agents", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("error", sa.Boolean, nullable=False),
        sa.Column("invalid", sa.Boolean, nullable=False),
    )
    op.create_index(
        "ix_experiment_exposures_natural",
        "experiment_exposures",
        ["experiment_id", "request_id", "shadow"],
        unique=True,
    )
    op.create_table(
        "experiment_shadow_predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("arm", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("agent_key", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
    )
    op.create_index(
        "ix_experiment_shadow_natural",
        "experiment_shadow_predictions",
        ["experiment_id", "request_id", "agent_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("experiment_shadow_predictions")
    op.drop_table("experiment_exposures")
    op.drop_table("experiments")
