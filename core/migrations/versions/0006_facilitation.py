"""session date and time, venue Wi-Fi; instance settings

A session's date and time (``starts_at``) and the venue's Wi-Fi name and
password, shown on the projector and the join poster; the instance's own
settings (the organiser's name and logo on printed reports) in
``instance_setting``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 04:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("palabre_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("starts_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("wifi_name", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("wifi_password", sa.String(length=100), nullable=False, server_default="")
        )
    op.create_table(
        "instance_setting",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_setting")),
    )


def downgrade():
    op.drop_table("instance_setting")
    with op.batch_alter_table("palabre_session", schema=None) as batch_op:
        batch_op.drop_column("wifi_password")
        batch_op.drop_column("wifi_name")
        batch_op.drop_column("starts_at")
