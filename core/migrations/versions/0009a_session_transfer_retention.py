"""session export and import, retention: where a session was imported from,
when its contributions were purged, and its own retention period

Revision ID: 0009a
Revises: 0008
Create Date: 2026-11-30 07:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0009a"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("palabre_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("imported_from", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("retention_months", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            "uq_palabre_session_imported_from", ["imported_from"]
        )


def downgrade():
    with op.batch_alter_table("palabre_session", schema=None) as batch_op:
        batch_op.drop_constraint("uq_palabre_session_imported_from", type_="unique")
        batch_op.drop_column("retention_months")
        batch_op.drop_column("purged_at")
        batch_op.drop_column("imported_from")
