"""policy cycle: support by kind, full actions, stakeholders, merges, assessment

Needs keep each kind of support (people, dots, ratings with their number)
on their sources, so that a merge and its undo move it; actions get an
indicator with baseline, target and unit, an owner and partners from the
stakeholder register, a budget or resources in kind, and dates; monitoring
updates and evaluations get their fields; the guide's self-assessment is kept.

Data kept: a need's priority (dots) moves to its first source; an action's
owner text becomes a stakeholder, its resources text its resources in kind,
and its timeline text is appended to its objective.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 04:24:24

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "assessment_mark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("criterion", sa.String(length=10), nullable=False),
        sa.Column("mark", sa.String(length=10), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_mark")),
    )
    with op.batch_alter_table("assessment_mark", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assessment_mark_assessed_on"), ["assessed_on"], unique=False
        )

    op.create_table(
        "custom_theme",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("keywords", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_custom_theme")),
    )
    op.create_table(
        "stakeholder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("already_involved", sa.Boolean(), nullable=False),
        sa.Column("interest", sa.Integer(), nullable=False),
        sa.Column("influence", sa.Integer(), nullable=False),
        sa.Column("knowledge", sa.Text(), nullable=False),
        sa.Column("how_to_involve", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stakeholder")),
    )
    op.create_table(
        "need_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("duplicate_id", sa.Integer(), nullable=False),
        sa.Column("into_id", sa.Integer(), nullable=False),
        sa.Column("source_ids", sa.JSON(), nullable=False),
        sa.Column("action_ids", sa.JSON(), nullable=False),
        sa.Column("added_action_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["duplicate_id"], ["need.id"], name=op.f("fk_need_merge_duplicate_id_need")
        ),
        sa.ForeignKeyConstraint(["into_id"], ["need.id"], name=op.f("fk_need_merge_into_id_need")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_need_merge")),
    )
    with op.batch_alter_table("need_merge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_need_merge_into_id"), ["into_id"], unique=False)

    op.create_table(
        "action_partner",
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("stakeholder_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"], ["action.id"], name=op.f("fk_action_partner_action_id_action")
        ),
        sa.ForeignKeyConstraint(
            ["stakeholder_id"],
            ["stakeholder.id"],
            name=op.f("fk_action_partner_stakeholder_id_stakeholder"),
        ),
        sa.PrimaryKeyConstraint("action_id", "stakeholder_id", name=op.f("pk_action_partner")),
    )
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.add_column(sa.Column("indicator_baseline", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("indicator_target", sa.Double(), nullable=True))
        batch_op.add_column(
            sa.Column("indicator_unit", sa.String(length=40), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("budget_amount", sa.Double(), nullable=True))
        batch_op.add_column(
            sa.Column("budget_currency", sa.String(length=3), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("in_kind", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("start_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("end_date", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_action_owner_id_stakeholder"), "stakeholder", ["owner_id"], ["id"]
        )

    _keep_action_texts()
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.drop_column("owner")
        batch_op.drop_column("timeline")
        batch_op.drop_column("resources")

    with op.batch_alter_table("action_source", schema=None) as batch_op:
        batch_op.add_column(sa.Column("people", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("dots", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("rating_sum", sa.Double(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("rating_count", sa.Integer(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("action_update", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("on_date", sa.Date(), nullable=False, server_default=sa.text("CURRENT_DATE"))
        )
        batch_op.add_column(sa.Column("progress", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("reported_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("method", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("evidence_session_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_action_update_reported_by_id_stakeholder"),
            "stakeholder",
            ["reported_by_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_action_update_evidence_session_id_palabre_session"),
            "palabre_session",
            ["evidence_session_id"],
            ["id"],
        )

    with op.batch_alter_table("need_source", schema=None) as batch_op:
        batch_op.add_column(sa.Column("people", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("dots", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("rating_sum", sa.Double(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("rating_count", sa.Integer(), nullable=False, server_default="0")
        )

    # The dots a need had go to its first source, where a merge will move them.
    op.execute(
        "UPDATE need_source SET dots ="
        " (SELECT priority FROM need WHERE need.id = need_source.need_id)"
        " WHERE id IN (SELECT MIN(id) FROM need_source GROUP BY need_id)"
    )
    with op.batch_alter_table("need", schema=None) as batch_op:
        batch_op.drop_column("priority")


def downgrade():
    with op.batch_alter_table("need", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.INTEGER(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE need SET priority = (SELECT COALESCE(SUM(dots), 0) FROM need_source"
        " WHERE need_source.need_id = need.id)"
    )

    with op.batch_alter_table("need_source", schema=None) as batch_op:
        batch_op.drop_column("rating_count")
        batch_op.drop_column("rating_sum")
        batch_op.drop_column("dots")
        batch_op.drop_column("people")

    with op.batch_alter_table("action_update", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_action_update_evidence_session_id_palabre_session"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_action_update_reported_by_id_stakeholder"), type_="foreignkey"
        )
        batch_op.drop_column("evidence_session_id")
        batch_op.drop_column("method")
        batch_op.drop_column("reported_by_id")
        batch_op.drop_column("progress")
        batch_op.drop_column("on_date")

    with op.batch_alter_table("action_source", schema=None) as batch_op:
        batch_op.drop_column("rating_count")
        batch_op.drop_column("rating_sum")
        batch_op.drop_column("dots")
        batch_op.drop_column("people")

    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resources", sa.TEXT(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("timeline", sa.VARCHAR(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("owner", sa.VARCHAR(length=200), nullable=False, server_default="")
        )
    op.execute("UPDATE action SET resources = in_kind")
    op.execute(
        "UPDATE action SET owner = COALESCE((SELECT name FROM stakeholder"
        " WHERE stakeholder.id = action.owner_id), '')"
    )
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_action_owner_id_stakeholder"), type_="foreignkey")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("end_date")
        batch_op.drop_column("start_date")
        batch_op.drop_column("in_kind")
        batch_op.drop_column("budget_currency")
        batch_op.drop_column("budget_amount")
        batch_op.drop_column("owner_id")
        batch_op.drop_column("indicator_unit")
        batch_op.drop_column("indicator_target")
        batch_op.drop_column("indicator_baseline")

    op.drop_table("action_partner")
    with op.batch_alter_table("need_merge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_need_merge_into_id"))

    op.drop_table("need_merge")
    op.drop_table("stakeholder")
    op.drop_table("custom_theme")
    with op.batch_alter_table("assessment_mark", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_mark_assessed_on"))

    op.drop_table("assessment_mark")


def _keep_action_texts():
    """Carry the free-text owner, resources and timeline into the new fields."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, owner, resources, timeline, objective FROM action")
    )
    stakeholders = {}
    for action_id, owner, resources, timeline, objective in rows.fetchall():
        owner_id = None
        if owner and owner.strip():
            name = owner.strip()
            if name not in stakeholders:
                connection.execute(
                    sa.text(
                        "INSERT INTO stakeholder (name, kind, role, already_involved, interest,"
                        " influence, knowledge, how_to_involve, created_at) VALUES (:name,"
                        " 'organisation', '', :yes, 3, 3, '', '', CURRENT_TIMESTAMP)"
                    ),
                    {"name": name, "yes": True},
                )
                stakeholders[name] = connection.execute(
                    sa.text("SELECT MAX(id) FROM stakeholder")
                ).scalar()
            owner_id = stakeholders[name]
        if timeline and timeline.strip():
            objective = f"{objective}\n\n{timeline.strip()}".strip()
        connection.execute(
            sa.text(
                "UPDATE action SET owner_id = :owner_id, in_kind = :in_kind,"
                " objective = :objective WHERE id = :id"
            ),
            {
                "owner_id": owner_id,
                "in_kind": resources or "",
                "objective": objective or "",
                "id": action_id,
            },
        )
