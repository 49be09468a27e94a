"""accounts and access: roles, disabled accounts, revocable sign-ins, TOTP,
co-facilitators, invitations, the audit log

Every account so far could run every session: the oldest one becomes the
administrator, the others facilitators who keep the sessions they created.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 04:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("facilitator", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=20), nullable=False, server_default="facilitator")
        )
        batch_op.add_column(
            sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("credentials_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("totp_last_step", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE facilitator SET role = 'administrator' "
        "WHERE id = (SELECT MIN(id) FROM facilitator)"
    )
    with op.batch_alter_table("facilitator", schema=None) as batch_op:
        for column in ("role", "disabled", "credentials_version", "totp_last_step"):
            batch_op.alter_column(column, server_default=None)

    op.create_table(
        "co_facilitator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("facilitator_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["facilitator_id"], ["facilitator.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["palabre_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "facilitator_id"),
    )
    with op.batch_alter_table("co_facilitator", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_co_facilitator_facilitator_id"), ["facilitator_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_co_facilitator_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("used_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["facilitator.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["palabre_session.id"]),
        sa.ForeignKeyConstraint(["used_by_id"], ["facilitator.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitation_session_id"), ["session_id"], unique=False)

    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facilitator_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["facilitator_id"], ["facilitator.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["palabre_session.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_entry_facilitator_id"), ["facilitator_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_entry_session_id"), ["session_id"], unique=False)


def downgrade():
    op.drop_table("audit_entry")
    op.drop_table("invitation")
    op.drop_table("co_facilitator")
    with op.batch_alter_table("facilitator", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("credentials_version")
        batch_op.drop_column("disabled")
        batch_op.drop_column("role")
