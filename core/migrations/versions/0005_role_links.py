"""personal links giving a role: per-table host links, connectors, evaluators

Replaces the one host key per session (which opened every table) by a link
per person and role (``role_link``), withdrawable one by one; a
participant's ``is_host`` becomes the role they hold. Existing hosts keep
their role; existing café sessions get their per-table links when the
facilitator makes them (the run screen offers it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "role_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.Column("group", sa.String(length=40), nullable=True),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["palabre_session.id"], name=op.f("fk_role_link_session_id_palabre_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_link")),
        sa.UniqueConstraint("key", name=op.f("uq_role_link_key")),
    )
    with op.batch_alter_table("role_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_link_session_id"), ["session_id"], unique=False)

    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("role_link_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_participant_role_link_id_role_link"), "role_link", ["role_link_id"], ["id"]
        )
    op.execute("UPDATE participant SET role = 'host' WHERE is_host")
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("is_host")
    with op.batch_alter_table("palabre_session", schema=None) as batch_op:
        batch_op.drop_column("host_key")


def downgrade():
    with op.batch_alter_table("palabre_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("host_key", sa.String(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_host", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE participant SET is_host = true WHERE role = 'host'")
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_participant_role_link_id_role_link"), type_="foreignkey"
        )
        batch_op.drop_column("role_link_id")
        batch_op.drop_column("role")
    with op.batch_alter_table("role_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_link_session_id"))
    op.drop_table("role_link")
