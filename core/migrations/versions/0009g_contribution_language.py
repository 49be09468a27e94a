"""the language a contribution was written in

A phone's contributions carry the language its participant chose; a note
typed in from paper, the language of its card. Reports show it beside the
text. Older contributions have none (null): their language is not known.

Revision ID: 0009g
Revises: 0009f
Create Date: 2026-11-30 07:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0009g"
down_revision = "0009f"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contribution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=10), nullable=True))


def downgrade():
    with op.batch_alter_table("contribution", schema=None) as batch_op:
        batch_op.drop_column("language")
