"""Revision 0007 keeps what a backlog already holds: dots, owners, resources and timelines."""

from __future__ import annotations

import flask_migrate
import pytest
from sqlalchemy import text

from palabre import create_app
from palabre.extensions import db


@pytest.fixture
def app_before_0007(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'palabre.db'}",
        }
    )
    with app.app_context():
        flask_migrate.upgrade(revision="0004")
        yield app
        db.session.remove()
        db.engine.dispose()


def test_upgrade_moves_priorities_owners_resources_and_timelines(app_before_0007):
    with db.engine.begin() as sql:
        sql.execute(
            text(
                "INSERT INTO palabre_session (id, method, title, code, status, config, languages,"
                " venue, host_key, phase_index, seq, created_at) VALUES (1, 'world_cafe', 'Café',"
                " 'ABC123', 'closed', '{}', '[]', '', 'k', 0, 0, CURRENT_TIMESTAMP)"
            )
        )
        sql.execute(
            text(
                "INSERT INTO need (id, title, description, theme, priority, created_at) VALUES"
                " (1, 'Evening classes', '', 'language', 7, CURRENT_TIMESTAMP)"
            )
        )
        sql.execute(text("INSERT INTO need_source (need_id, session_id) VALUES (1, 1), (1, 1)"))
        sql.execute(
            text(
                "INSERT INTO action (id, title, objective, indicator, owner, resources, timeline,"
                " status, created_at) VALUES"
                " (1, 'Classes at the library', 'Teach', 'Learners', 'Library', '2 teachers',"
                " 'Spring 2027', 'planned', CURRENT_TIMESTAMP),"
                " (2, 'Library hours', '', '', 'Library', '', '', 'proposed', CURRENT_TIMESTAMP)"
            )
        )
    flask_migrate.upgrade(revision="0007")
    with db.engine.connect() as sql:
        assert sql.execute(text("SELECT dots FROM need_source ORDER BY id")).all() == [(7,), (0,)]
        assert sql.execute(text("SELECT id, name FROM stakeholder")).all() == [(1, "Library")]
        rows = sql.execute(
            text("SELECT owner_id, in_kind, objective FROM action ORDER BY id")
        ).all()
        assert rows == [(1, "2 teachers", "Teach\n\nSpring 2027"), (1, "", "")]
    flask_migrate.downgrade(revision="0004")
    with db.engine.connect() as sql:
        assert sql.execute(text("SELECT priority FROM need")).all() == [(7,)]
        assert sql.execute(text("SELECT owner, resources FROM action ORDER BY id")).all() == [
            ("Library", "2 teachers"),
            ("Library", ""),
        ]
