"""handled facilitator requests

Facilitators' live requests kept by client id with their acknowledgement, so
a resent request is acknowledged again instead of being done twice.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 13:53:38

"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "handled_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("ack", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["palabre_session.id"],
            name=op.f("fk_handled_request_session_id_palabre_session"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handled_request")),
        sa.UniqueConstraint(
            "session_id", "client_id", name=op.f("uq_handled_request_session_id_client_id")
        ),
    )


def downgrade():
    op.drop_table("handled_request")
