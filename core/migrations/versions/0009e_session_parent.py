"""sessions that are part of another

A session may be part of a longer one (a citizen dialogue's meeting, held on
its own evening with its own join code): ``palabre_session.parent_id``.

Revision ID: 0009e
Revises: 0009d
Create Date: 2026-11-30 07:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0009e"
down_revision = "0009d"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("palabre_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_palabre_session_parent_id"), ["parent_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_palabre_session_parent_id_palabre_session"),
            "palabre_session",
            ["parent_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("palabre_session", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_palabre_session_parent_id_palabre_session"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_palabre_session_parent_id"))
        batch_op.drop_column("parent_id")
