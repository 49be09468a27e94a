"""The Alembic migrations in core/migrations build exactly the schema of core/models.py.

When a model changes, this fails until a revision is added:
``palabre db migrate -m "what changed"``, then read and adjust the new file in
``core/migrations/versions/``.

With ``PALABRE_TEST_DATABASE`` set (``scripts/test``'s second pass) the
same checks run on PostgreSQL.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

import palabre
from palabre import create_app
from palabre.extensions import db
from palabre.models import Participant, Session
from palabre.testing.kit import drop_test_database, new_test_database

MIGRATIONS = Path(palabre.__file__).parent / "migrations"


@pytest.fixture
def empty_app(tmp_path):
    uri = new_test_database(tmp_path)
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": uri})
    app.instance_path = str(tmp_path)
    with app.app_context():
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}, (
            "the test database must be empty"
        )
        yield app
        flask_migrate.downgrade(revision="base")
        with db.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE alembic_version")
        db.session.remove()
        db.engine.dispose()
    drop_test_database(uri)


def schema_differences() -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_one_head():
    script = ScriptDirectory(str(MIGRATIONS))
    assert len(script.get_heads()) == 1, "merge the migration branches: palabre db merge heads"


def test_upgrade_builds_the_models_schema(empty_app):
    flask_migrate.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= set(db.metadata.tables)
    differences = schema_differences()
    assert differences == [], (
        "core/models.py and core/migrations differ; add a revision with "
        f"`palabre db migrate -m '...'`: {differences}"
    )


def test_downgrade_to_base_removes_every_table(empty_app):
    flask_migrate.upgrade()
    flask_migrate.downgrade(revision="base")
    assert inspect(db.engine).get_table_names() == ["alembic_version"]
    # And back up again: the downgrade left nothing behind that blocks an upgrade.
    flask_migrate.upgrade()
    assert schema_differences() == []


LATER_REVISIONS = {
    "rebuild": """
        import sqlalchemy as sa
        from alembic import op

        revision, down_revision = "rebuild", {head!r}

        def upgrade():
            with op.batch_alter_table("palabre_session") as batch_op:
                batch_op.add_column(sa.Column("extra", sa.String(10)))

        def downgrade():
            with op.batch_alter_table("palabre_session") as batch_op:
                batch_op.drop_column("extra")
    """,
    "broken": """
        import sqlalchemy as sa
        from alembic import op

        revision, down_revision = "broken", "rebuild"

        def upgrade():
            op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
            raise RuntimeError("this revision fails half-way")

        def downgrade():
            pass
    """,
}


@pytest.mark.sqlite_only("SQLite's batch mode and PRAGMA foreign_keys")
def test_later_sqlite_revisions_rebuild_referenced_tables_or_roll_back(tmp_path):
    """How the environment runs future revisions on SQLite (core/migrations/env.py).

    Batch mode rebuilds ``palabre_session``, which participants refer to,
    without breaking their foreign keys; a revision that fails is rolled back
    whole; foreign keys are enforced again afterwards.
    """
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory, ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    for name, source in LATER_REVISIONS.items():
        text = textwrap.dedent(source).replace("{head!r}", repr(head))
        (directory / "versions" / f"{name}.py").write_text(text)
    uri = f"sqlite:///{tmp_path / 'palabre.db'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": uri})
    with app.app_context():
        flask_migrate.upgrade(str(directory), revision=head)
        session = Session(method="world_cafe", title="Café", code="ABCDEF")
        db.session.add(Participant(session=session, token_hash="0" * 64, language="en"))
        db.session.commit()
        db.session.remove()

        flask_migrate.upgrade(str(directory), revision="rebuild")
        with pytest.raises(SystemExit):
            flask_migrate.upgrade(str(directory), revision="broken")

        tables = inspect(db.engine).get_table_names()
        assert "half_done" not in tables
        assert "extra" in {c["name"] for c in inspect(db.engine).get_columns("palabre_session")}
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [
                ("rebuild",)
            ]
            assert connection.exec_driver_sql("SELECT session_id FROM participant").all() == [(1,)]
        flask_migrate.downgrade(str(directory), revision="base")
        db.engine.dispose()


def test_revision_0002_gives_existing_contributions_empty_data(empty_app):
    """Notes stored before contributions had structured data upgrade to ``{}``."""
    flask_migrate.upgrade(revision="0001")
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO palabre_session (id, method, title, code, status, config, languages,"
            " venue, host_key, phase_index, seq, created_at)"
            " VALUES (1, 'world_cafe', 'Café', 'ABCDEF', 'live', '{}', '[]', '', 'k', 1, 0,"
            " '2026-01-01 00:00:00')"
        )
        connection.exec_driver_sql(
            "INSERT INTO contribution (session_id, client_id, kind, phase_index, body,"
            " transcribed, hidden, created_at)"
            " VALUES (1, 'c1', 'note', 1, 'Evening classes', false, false, '2026-01-01 00:00:00')"
        )
    flask_migrate.upgrade()
    from palabre.models import Contribution

    assert db.session.scalar(db.select(Contribution)).data == {}
    db.session.remove()
