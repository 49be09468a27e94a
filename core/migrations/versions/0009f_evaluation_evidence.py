"""evaluation evidence: an evaluation entry may rest on one contribution

An evaluation entry recorded from a session's contribution (a mystery-shopping
audit's agreed finding) keeps it as its evidence, once per action, so that the
entry leads back to the finding and is not recorded twice.

Data kept: existing entries keep their evidence session and get no contribution.

Revision ID: 0009f
Revises: 0009e
Create Date: 2026-11-30 07:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009f"
down_revision = "0009e"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("action_update", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence_contribution_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_action_update_evidence_contribution_id"),
            ["evidence_contribution_id"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_action_update_evidence_contribution_id_contribution"),
            "contribution",
            ["evidence_contribution_id"],
            ["id"],
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_action_update_action_id_evidence_contribution_id"),
            ["action_id", "evidence_contribution_id"],
        )


def downgrade():
    with op.batch_alter_table("action_update", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_action_update_action_id_evidence_contribution_id"), type_="unique"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_action_update_evidence_contribution_id_contribution"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_action_update_evidence_contribution_id"))
        batch_op.drop_column("evidence_contribution_id")
