"""contributions answering another

A contribution may answer another one of its session (a comment on a
survey's statement): ``contribution.reply_to_id``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 02:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contribution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_to_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_contribution_reply_to_id_contribution"),
            "contribution",
            ["reply_to_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("contribution", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_contribution_reply_to_id_contribution"), type_="foreignkey"
        )
        batch_op.drop_column("reply_to_id")
