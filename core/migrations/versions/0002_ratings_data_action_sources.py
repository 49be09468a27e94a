"""contribution data and action sources

Structured fields on contributions (a forum theatre's scene, queue number or
intervention log) and the provenance of actions proposed from a session.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 13:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contribution", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("data", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )

    op.create_table(
        "action_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("contribution_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["action_id"], ["action.id"], name=op.f("fk_action_source_action_id_action")
        ),
        sa.ForeignKeyConstraint(
            ["contribution_id"],
            ["contribution.id"],
            name=op.f("fk_action_source_contribution_id_contribution"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["palabre_session.id"],
            name=op.f("fk_action_source_session_id_palabre_session"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_source")),
    )
    with op.batch_alter_table("action_source", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_action_source_action_id"), ["action_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("action_source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_source_action_id"))
    op.drop_table("action_source")
    with op.batch_alter_table("contribution", schema=None) as batch_op:
        batch_op.drop_column("data")
