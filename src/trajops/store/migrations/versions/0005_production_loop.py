"""The production loop: when a served forecast's input was observed by the client's clock
(``/v1/tracks``), per-scene lookups of served inputs, and drift reports of one scene.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_predictions_scene_key", "predictions", ["scene_key"])
    with op.batch_alter_table("drift_reports") as batch:
        batch.add_column(sa.Column("scene_key", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_reports") as batch:
        batch.drop_column("scene_key")
    op.drop_index("ix_predictions_scene_key", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("observed_at")
