"""Pytest fixtures for testing methods, loaded by pytest from the ``pytest11`` entry point.

Installed with Palabre, so a plugin's tests can use them without a
``conftest.py``::

    def test_my_method(make_session, make_phone, go_to_phase, assert_method_conforms):
        assert_method_conforms("dot_survey")
        session = make_session("dot_survey", {"statements": "Buses run late"})
        phone = make_phone(session.code, language="fr")
        assert phone.contribute("comment", "Le soir surtout")["ok"]

Override ``palabre_plugins`` to load a plugin that is not installed, and
``palabre_config`` to change settings. Every fixture is function-scoped:
each test gets its own app and database.

With ``PALABRE_TEST_DATABASE`` set to a PostgreSQL server (``scripts/test``
does so in its second pass) every app and served Palabre gets a database of
its own there instead of an SQLite file; a test marked
``@pytest.mark.sqlite_only("why")`` is then skipped, saying why, and one
marked ``@pytest.mark.postgresql_only("why")`` runs only then. A server a
test needs beyond the database (Redis) is asked for with
:func:`palabre.testing.kit.required_server`: without it the test is skipped, or
fails under CI.
"""

from __future__ import annotations

import pytest

from . import kit


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): checks something only SQLite has; skipped on PostgreSQL",
    )
    config.addinivalue_line(
        "markers",
        "postgresql_only(reason): needs PostgreSQL; skipped on SQLite (scripts/test's "
        "PostgreSQL pass runs it)",
    )


def pytest_runtest_setup(item):
    on_postgresql = kit.testing_on_postgresql()
    for name, skipped, label in (
        ("sqlite_only", on_postgresql, "SQLite only"),
        ("postgresql_only", not on_postgresql, "PostgreSQL only"),
    ):
        marker = item.get_closest_marker(name)
        if marker is not None and skipped:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            pytest.skip(f"{label}: {reason}")


def pytest_sessionfinish(session):
    """Drop the PostgreSQL databases of servers the tests started (apps drop theirs)."""
    if kit.testing_on_postgresql():
        kit.drop_test_databases()


@pytest.fixture
def palabre_plugins():
    """Extra plugin objects for the test app (a plugin module not installed). Default: none."""
    return ()


@pytest.fixture
def palabre_config():
    """Settings for the test app, e.g. ``{"RATE_LIMIT_WRITES": "1000/minute"}``. Default: none."""
    return {}


@pytest.fixture
def palabre_app(tmp_path, palabre_plugins, palabre_config):
    """A Palabre app on a throw-away database, with one facilitator account."""
    app = kit.make_app(tmp_path / "palabre", plugins=palabre_plugins, **palabre_config)
    yield app
    kit.close_app(app)


@pytest.fixture
def facilitator_client(palabre_app):
    """A Flask test client signed in as the app's facilitator."""
    return kit.sign_in(palabre_app.test_client())


@pytest.fixture
def make_session(palabre_app):
    """Create a session: ``make_session(slug, config=None, phase=1, status=None, ...)``.

    Returns a :class:`~palabre.testing.kit.SessionRef` (``id``, ``code``, ``method``).
    """

    def make(method, config=None, **options):
        return kit.new_session(palabre_app, method, config, **options)

    return make


@pytest.fixture
def make_phone(palabre_app):
    """Join a session from a phone and connect it: ``make_phone(code, language="en", group=None)``.

    Returns a :class:`~palabre.testing.kit.TestPhone` (``contribute``, ``vote``,
    ``events``, ``page``); its socket is closed after the test.
    """
    phones = []

    def make(code, language="en", group=None):
        phone = kit.new_phone(palabre_app, code, language, group)
        phones.append(phone)
        return phone

    yield make
    for phone in phones:
        phone.close()


@pytest.fixture
def go_to_phase(palabre_app):
    """Move a session as the facilitator does: ``go_to_phase(session, index)``."""

    def go(session, index):
        kit.go_to(palabre_app, session, index)

    return go


@pytest.fixture
def assert_method_conforms(palabre_app):
    """Check the plugin contract: ``assert_method_conforms(slug, config=None)``.

    See :func:`palabre.testing.kit.assert_method_conforms`.
    """

    def check(method, config=None):
        kit.assert_method_conforms(palabre_app, method, config)

    return check
