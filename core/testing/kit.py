"""Testing a method in one process: an app, a signed-in facilitator, sessions, phones.

What a plugin's tests need, without a server: :func:`make_app` builds an app
on a throw-away database (SQLite, or PostgreSQL when
``PALABRE_TEST_DATABASE`` names a server: see :func:`new_test_database`)
with one facilitator; :func:`new_session`
creates a session of any method in any phase; :class:`TestPhone` joins it
through the join page, as a phone does, and talks to the live layer through
Flask-SocketIO's test client; :func:`assert_method_conforms` runs a method
through every phase and language and checks the plugin contract.

The pytest fixtures in :mod:`palabre.testing.pytest_plugin` wrap these;
Palabre's own tests use the same functions.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from flask import Flask, url_for
from flask.testing import FlaskClient

#: The facilitator account every test app has.
FACILITATOR_EMAIL = "facilitator@example.org"
FACILITATOR_PASSWORD = "a long enough password"
#: Languages every method must speak (the catalogs Palabre ships complete).
LANGUAGES = ("en", "fr", "ar")

#: Environment variable naming a PostgreSQL database for the tests, as a SQLAlchemy URL:
#: ``postgresql+psycopg://palabre@127.0.0.1:5432/palabre_test``. Unset, tests run on
#: SQLite. ``scripts/test`` sets it for its second pass.
TEST_DATABASE_VARIABLE = "PALABRE_TEST_DATABASE"
#: Environment variable naming a Redis server for the tests: ``redis://127.0.0.1:6379/0``.
#: ``scripts/test`` starts one and sets it for both passes.
TEST_REDIS_VARIABLE = "PALABRE_TEST_REDIS"
#: Each test app or server gets a schema of its own in that database, named so.
TEST_SCHEMA_PREFIX = "palabre_test_"
#: Schemas created by this process and not dropped yet (see :func:`drop_test_databases`).
_created_schemas: set[str] = set()

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def testing_on_postgresql() -> bool:
    """Whether the tests run on PostgreSQL (``PALABRE_TEST_DATABASE`` is set)."""
    return bool(os.environ.get(TEST_DATABASE_VARIABLE))


def required_server(variable: str, what: str) -> str:
    """The address of a server a test needs, from the environment variable ``variable``.

    Unset, the test is skipped, saying ``what`` needs it; under CI (``CI``
    set, as ``.ci/run`` runs) it fails instead: there a missing server is a
    broken set-up, and a test left out must not pass for one that ran.
    """
    import pytest

    address = os.environ.get(variable)
    if address:
        return address
    message = f"{what}: set {variable} (scripts/test starts one)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; under CI a missing server fails the test", pytrace=False)
    pytest.skip(message)


def new_test_database(folder: Path) -> str:
    """The SQLAlchemy URL of a new, empty database for one test app or server.

    On SQLite, ``palabre.db`` in ``folder``. With ``PALABRE_TEST_DATABASE``
    set, a schema of its own in that PostgreSQL database, which every
    connection of the URL uses (creating a schema takes a millisecond, a
    database far longer); :func:`drop_test_database` or, at the end of the
    run, :func:`drop_test_databases` removes it.
    """
    server = os.environ.get(TEST_DATABASE_VARIABLE)
    if not server:
        return f"sqlite:///{Path(folder) / 'palabre.db'}"
    from sqlalchemy.engine import make_url

    schema = f"{TEST_SCHEMA_PREFIX}{uuid.uuid4().hex[:16]}"
    _on_server(f'CREATE SCHEMA "{schema}"')
    _created_schemas.add(schema)
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def drop_test_database(uri: str) -> None:
    """Drop what :func:`new_test_database` made for ``uri`` (nothing to do on SQLite)."""
    from sqlalchemy.engine import make_url

    options = make_url(uri).query.get("options", "")
    schema = options.removeprefix("-csearch_path=")
    if schema in _created_schemas:
        _on_server(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        _created_schemas.discard(schema)


def drop_test_databases() -> None:
    """Drop every schema this process created and has not dropped yet, and disconnect."""
    global _server_connection
    for schema in list(_created_schemas):
        _on_server(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        _created_schemas.discard(schema)
    if _server_connection is not None:
        _server_connection.close()
        _server_connection = None


#: The connection :func:`_on_server` keeps to the ``PALABRE_TEST_DATABASE`` server.
_server_connection = None


def _on_server(statement: str) -> None:
    """Run one statement, committed at once, in the ``PALABRE_TEST_DATABASE`` database.

    On one connection kept for the whole run: a new one per statement would
    start a server process of its own twice for each test.
    """
    global _server_connection
    import psycopg
    from sqlalchemy.engine import make_url

    if _server_connection is None or _server_connection.closed:
        url = make_url(os.environ[TEST_DATABASE_VARIABLE])
        _server_connection = psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
        )
    _server_connection.execute(statement)


def make_app(folder: Path, plugins=(), **config) -> Flask:
    """An app with its own instance folder and database in ``folder``, and one account.

    The account (:data:`FACILITATOR_EMAIL`) is the instance's administrator,
    who may run every session.

    ``plugins`` are extra hook-implementing objects (a plugin under test that
    is not installed); installed plugins load through their entry points as
    usual. ``config`` overrides settings (``RATE_LIMIT_WRITES="1000/minute"``).
    The database is SQLite in ``folder``, or a new one on the PostgreSQL
    server named by ``PALABRE_TEST_DATABASE`` (see :func:`new_test_database`).
    """
    from palabre import create_app
    from palabre.extensions import db
    from palabre.models import AccountRole, Facilitator

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if "SQLALCHEMY_DATABASE_URI" not in config:
        config["SQLALCHEMY_DATABASE_URI"] = new_test_database(folder)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "BASE_URL": "http://palabre.test",
            **config,
        },
        plugins=plugins,
    )
    app.instance_path = str(folder)
    with app.app_context():
        create_tables()
        # The first account of an instance is its administrator.
        facilitator = Facilitator(
            email=FACILITATOR_EMAIL,
            name="Fatou",
            role=AccountRole.ADMINISTRATOR,
            password_hash=_facilitator_password_hash(),
        )
        db.session.add(facilitator)
        db.session.commit()
    return app


@cache
def _facilitator_password_hash() -> str:
    """The hash of :data:`FACILITATOR_PASSWORD`, computed once for every app of the process.

    Hashing is slow on purpose (a tenth of a second, several under load), and
    each test makes an app; a hash checks against its password whatever app holds it.
    """
    from palabre.models import hash_password

    return hash_password(FACILITATOR_PASSWORD)


def create_tables() -> None:
    """``db.create_all()`` for the current app's new, empty database.

    On PostgreSQL, the same statements sent at once: the script
    :func:`_postgresql_ddl` compiles once per process, in one transaction and
    one round trip, instead of a query per table to see whether it exists,
    then a statement and a round trip each (a third of a second per test app
    on the loaded test machine, against a tenth).
    """
    from palabre.extensions import db

    if db.engine.dialect.name != "postgresql":
        db.create_all()
        return
    script = _postgresql_ddl(tuple(db.metadata.tables))
    with db.engine.begin() as connection:
        # The driver's own connection: with no parameters psycopg sends the script as
        # one simple query, several statements allowed.
        connection.connection.driver_connection.execute(script.encode())


@cache
def _postgresql_ddl(tables: tuple[str, ...]) -> str:
    """The statements ``db.create_all()`` runs on an empty PostgreSQL schema, as one script.

    ``tables`` (the metadata's table names) keys the cache: a model defined
    later makes a new script.
    """
    from sqlalchemy import create_mock_engine

    from palabre.extensions import db

    statements: list[str] = []
    recorder = create_mock_engine(
        "postgresql+psycopg://",
        lambda ddl, *_args, **_kwargs: statements.append(
            str(ddl.compile(dialect=recorder.dialect))
        ),
    )
    db.metadata.create_all(recorder, checkfirst=False)
    return ";\n".join(statements)


#: How long :func:`close_app` waits for the app's print jobs under way to end.
PRINT_JOBS_WAIT_S = 120


def close_app(app: Flask) -> None:
    """Release the app's database connections, and drop its PostgreSQL test database.

    Print jobs still under way are waited for first: they read the database
    (and, on PostgreSQL, lock its tables against the drop).
    """
    from palabre.extensions import db
    from palabre.print_jobs import EXTENSION_KEY

    jobs = app.extensions.get(EXTENSION_KEY)
    if jobs is not None:
        assert jobs.wait_for_running(PRINT_JOBS_WAIT_S), "a print job did not end"
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    drop_test_database(app.config["SQLALCHEMY_DATABASE_URI"])


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient) -> FlaskClient:
    """Sign the test app's facilitator in on ``client``; returns it."""
    page = client.get("/auth/login")
    response = client.post(
        "/auth/login",
        data={
            "email": FACILITATOR_EMAIL,
            "password": FACILITATOR_PASSWORD,
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 302, "the facilitator could not sign in"
    return client


def new_cid() -> str:
    """A new client id, as a phone makes for each write."""
    return uuid.uuid4().hex


@dataclass
class SessionRef:
    """A session created for a test: enough to find it again in any context."""

    id: int
    code: str
    method: str


def new_session(
    app: Flask,
    method: str,
    config: dict | None = None,
    *,
    phase: int = 1,
    status: str | None = None,
    title: str = "Test session",
    languages=LANGUAGES,
) -> SessionRef:
    """Create a session of ``method`` in the phase at ``phase``, as if a facilitator moved it.

    ``config`` is merged into the method's default configuration. The status
    follows the phase (0 open, the last closed, live between) unless given.
    No phase hooks run: use :func:`go_to` to move through phases as a
    facilitator does.
    """
    from palabre.database import write_transaction
    from palabre.extensions import db
    from palabre.join import new_join_code
    from palabre.models import Session, Status, utcnow
    from palabre.plugin_host import get_method
    from palabre.role_links import issue_group_links

    with app.test_request_context(), write_transaction():
        chosen = get_method(method)
        settings = {**chosen.default_config(), **(config or {})}
        last = len(chosen.phases(settings)) - 1
        if status is None:
            status = Status.OPEN if phase == 0 else Status.CLOSED if phase == last else Status.LIVE
        session = Session(
            method=method,
            title=title,
            code=new_join_code(),
            config=settings,
            languages=list(languages),
            status=Status(status),
            phase_index=phase,
            started_at=utcnow() if phase else None,
        )
        db.session.add(session)
        db.session.flush()
        issue_group_links(session)
    return SessionRef(session.id, session.code, method)


def role_link(app: Flask, code: str, role: str, group: str | None = None) -> str:
    """The path of a personal link of ``role`` (for ``group``) in the session ``code``.

    Returns the active link the facilitator would hand over, making one
    when there is none (as the run screen's "Make a new link" does).
    """
    from palabre.database import write_transaction
    from palabre.extensions import db
    from palabre.models import Session
    from palabre.role_links import issue_role_link, role_links_of

    with app.test_request_context():
        session = db.session.scalar(db.select(Session).where(Session.code == code))
        links = [link for link in role_links_of(session, role) if link.group == group]
        if not links:
            with write_transaction():
                links = [issue_role_link(session, role, group)]
        return url_for("role_links.take", code=code, key=links[0].key)


def go_to(app: Flask, session: SessionRef, index: int) -> None:
    """Move ``session`` to the phase at ``index``, as the facilitator's button does."""
    from palabre import phases
    from palabre.extensions import db
    from palabre.models import Session

    with app.test_request_context():
        phases.go_to(db.session.get(Session, session.id), index)


@dataclass
class TestPhone:
    """A participant's phone: its browser (cookies) and, once connected, its live socket."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    app: Flask
    code: str
    client: FlaskClient
    socket: object = None
    received: list = field(default_factory=list)

    def join(self, language: str = "en", group: str | None = None) -> TestPhone:
        """Join through the join form, as after scanning the QR code."""
        page = self.client.get(f"/j/{self.code}")
        data = {"csrf_token": csrf_token(page.text), "language": language}
        if group is not None:
            data["group"] = group
        response = self.client.post(f"/j/{self.code}", data=data)
        assert response.status_code == 302, f"could not join {self.code}: {response.text[:500]}"
        return self

    def connect(self, last_seq: int | None = None) -> TestPhone:
        """Open the live socket, as the participant page's script does."""
        from palabre.extensions import socketio

        auth = {"session": self.code, "view": "participant", "last_seq": last_seq}
        self.socket = socketio.test_client(self.app, flask_test_client=self.client, auth=auth)
        assert self.socket.is_connected(), "the live socket was refused"
        return self

    def page(self):
        """The participant page, as the phone shows it now."""
        return self.client.get(f"/j/{self.code}")

    def contribute(self, kind: str, body: str = "", **fields) -> dict:
        """Send a contribution; returns the acknowledgement."""
        payload = {"cid": new_cid(), "kind": kind, "body": body, **fields}
        return self.socket.emit("contribute", payload, callback=True)

    def vote(self, contribution_id: int, value: int = 1) -> dict:
        """Give a dot, or a rating for a rating kind; returns the acknowledgement."""
        payload = {"cid": new_cid(), "contribution": contribution_id, "value": value}
        return self.socket.emit("vote", payload, callback=True)

    def events(self, type_: str | None = None) -> list[dict]:
        """Broadcast envelopes received so far (of one type, if given), oldest first."""
        self.received += [r["args"][0] for r in self.socket.get_received() if r["name"] == "event"]
        return [e for e in self.received if type_ is None or e["type"] == type_]

    def token(self, session: SessionRef) -> str:
        """The secret token this phone holds for ``session`` (only its hash is stored)."""
        with self.client.session_transaction() as cookie:
            return cookie["p"][str(session.id)]

    def close(self) -> None:
        if self.socket is not None and self.socket.is_connected():
            self.socket.disconnect()


def new_phone(app: Flask, code: str, language: str = "en", group: str | None = None) -> TestPhone:
    """A phone that joined session ``code`` and connected its live socket."""
    return TestPhone(app, code, app.test_client()).join(language, group).connect()


# --- the plugin contract ---------------------------------------------------------------


def assert_method_conforms(app: Flask, method: str, config: dict | None = None) -> None:
    """Run ``method`` through all its phases and languages and check the plugin contract.

    With the method's default configuration merged with ``config``:

    * its participant, facilitator and projector views render in every phase
      and in English, French and Arabic, with ``lang`` and ``dir`` set;
    * in each phase a phone may send every kind the phase allows (a refusal
      is fine, if it says why); an unknown kind, and every kind in the
      opening and closing phases, are refused with a message;
    * its backlog candidates name contributions of the session;
    * its report renders to a real PDF that names the session;
    * no page, report or event carries a participant's token, or an address.

    Raises ``AssertionError`` saying what broke the contract.
    """
    from palabre.extensions import db
    from palabre.models import Contribution, Session
    from palabre.plugin_host import get_method

    with app.test_request_context():
        chosen = get_method(method)
        plan = chosen.phases({**chosen.default_config(), **(config or {})})
        kinds = chosen.contribution_kinds
    session = new_session(app, method, config, phase=0)
    staff = sign_in(app.test_client())
    phones = {language: new_phone(app, session.code, language) for language in LANGUAGES}
    tokens = [phone.token(session) for phone in phones.values()]
    for index, phase in enumerate(plan):
        if index:
            go_to(app, session, index)
        for language, phone in phones.items():
            where = f"{method}, phase {index} ({phase.id}), in {language}"
            _assert_page(phone.client, f"/j/{session.code}", where + ", participant view", language)
            for view, path in (("facilitator", ""), ("projector", "/projector")):
                _assert_page(
                    staff, f"/sessions/{session.id}{path}", f"{where}, {view} view", language
                )
            unknown = phone.contribute("no_such_kind", "?")
            assert unknown["ok"] is False and unknown["error"], f"{where}: unknown kind accepted"
        writer = phones["en"]
        for name, kind in kinds.items():
            ack = writer.contribute(name, "" if not kind.needs_text else f"{kind.name} {index}")
            where = f"{method}, phase {index} ({phase.id}): kind {name!r}"
            assert isinstance(ack, dict) and "ok" in ack, f"{where}: no acknowledgement"
            if not ack["ok"]:
                assert ack.get("error"), f"{where}: refused without saying why"
            if index in (0, len(plan) - 1):
                assert not ack["ok"], f"{where}: accepted in the opening or closing phase"
    with app.test_request_context():
        stored = db.session.get(Session, session.id)
        own = set(
            db.session.scalars(
                db.select(Contribution.id).where(Contribution.session_id == session.id)
            )
        )
        for candidate in get_method(method).backlog_candidates(stored):
            assert candidate.title, f"{method}: a backlog candidate without a title"
            assert set(candidate.contribution_ids) <= own, (
                f"{method}: backlog candidate {candidate.title!r} names contributions "
                "of another session"
            )
    report = staff.get(f"/print/sessions/{session.id}/report.pdf")
    assert report.status_code == 200, f"{method}: the report answers HTTP {report.status_code}"
    assert report.data.startswith(b"%PDF"), f"{method}: the report is not a PDF"
    text = _pdf_text(report.data)
    assert "Test session" in text, f"{method}: the report does not name its session"
    _assert_no_personal_data(text, tokens, f"{method}: the printed report")
    for phone in phones.values():
        _assert_no_personal_data(repr(phone.events()), tokens, f"{method}: live events")
        phone.close()


def _assert_page(client, path: str, where: str, language: str | None = None) -> None:
    """GET ``path`` and check it renders (in ``language`` when given)."""
    headers = {"Accept-Language": language} if language else {}
    try:
        response = client.get(path, headers=headers)
    except Exception as error:  # a test app raises instead of answering 500
        raise AssertionError(f"{where}: {type(error).__name__}: {error}") from error
    assert response.status_code == 200, f"{where}: HTTP {response.status_code}"
    if language:
        direction = "rtl" if language == "ar" else "ltr"
        assert f'lang="{language}"' in response.text and f'dir="{direction}"' in response.text, (
            f"{where}: the page does not speak {language}"
        )


def _assert_no_personal_data(text: str, tokens: list[str], where: str) -> None:
    for token in tokens:
        assert token not in text, f"{where} carries a participant's cookie"
    assert not re.search(r"\b(?:127\.0\.0\.1|\d{1,3}(?:\.\d{1,3}){3})\b", text), (
        f"{where} carries an IP address"
    )


def _pdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
