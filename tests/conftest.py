"""Fixtures shared by the whole suite, in the manner of Flask's tutorial.

Each test gets its own app, instance folder and SQLite database.
"""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path

import pytest

from palabre.extensions import db, socketio
from palabre.i18n import compile_stale_catalogs
from palabre.testing.kit import FACILITATOR_EMAIL, close_app, make_app
from palabre.testing.kit import FACILITATOR_PASSWORD as PASSWORD

TRANSLATIONS = Path(__file__).resolve().parent.parent / "core" / "translations"


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs():
    """Compile the core's catalogs whose ``.mo`` is missing or older than their ``.po``.

    What ``scripts/setup`` does with ``pybabel compile``, so that any subset
    of the tests runs in a fresh checkout; the plugins' catalogs are compiled
    by the app when it starts (:func:`palabre.i18n.use_catalogs`).
    """
    compile_stale_catalogs(TRANSLATIONS)


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path, SERVER_NAME="palabre.test")
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def buttons_without_an_icon(page: str) -> list[str]:
    """The words of each button in a page's ``<main>`` drawn without an icon
    (components/icons.html): every participant action carries one, for people who read little."""
    main = page[page.index("<main") : page.index("</main>")]
    return [
        re.sub(r"<[^>]+>|\s+", " ", inside).strip()
        for inside in re.findall(r"<button\b[^>]*>(.*?)</button>", main, re.S)
        if 'class="icon' not in inside
    ]


def read_aloud_targets(page: str) -> list[str]:
    """The CSS selectors the page's "Listen" buttons read (components/icons.html's read_aloud)."""
    return [html.unescape(target) for target in re.findall(r'data-read-aloud="([^"]+)"', page)]


def csrf_token(response) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', response.text
    ) or re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, "no CSRF token on the page"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, email=FACILITATOR_EMAIL, password=PASSWORD):
        page = self._client.get("/auth/login")
        return self._client.post(
            "/auth/login",
            data={"email": email, "password": password, "csrf_token": csrf_token(page)},
        )

    def logout(self):
        page = self._client.get("/sessions/")
        return self._client.post("/auth/logout", data={"csrf_token": csrf_token(page)})


@pytest.fixture
def auth(client):
    return AuthActions(client)


def post_form(client, page_url: str, url: str, data: dict, **kwargs):
    """Post ``data`` to ``url`` with the CSRF token of the page at ``page_url``."""
    page = client.get(page_url)
    return client.post(url, data={"csrf_token": csrf_token(page), **data}, **kwargs)


def new_cid() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def socket_client(app):
    """Make Socket.IO test clients sharing a Flask test client's cookies."""
    made = []

    def make(flask_client, view="participant", code=None, last_seq=None):
        auth = {"session": code, "view": view, "last_seq": last_seq}
        sock = socketio.test_client(app, flask_test_client=flask_client, auth=auth)
        made.append(sock)
        return sock

    yield make
    for sock in made:
        if sock.is_connected():
            sock.disconnect()


@pytest.fixture
def make_cafe(app):
    """Create a world café session; returns its join code.

    ``status`` "draft", "open" (welcome phase) or "live" (``phase_index``
    picks the phase; 1 is the first round).
    """
    from palabre.database import write_transaction
    from palabre.join import new_join_code
    from palabre.models import Session, Status
    from palabre.plugins.world_cafe import WorldCafe
    from palabre.role_links import issue_group_links

    def make(status="live", phase_index=1, languages=("en", "fr", "ar"), **config):
        with app.test_request_context(), write_transaction():
            settings = {**WorldCafe().default_config(), **config}
            code = new_join_code()
            session = Session(
                method="world_cafe",
                title="Café on the intercultural plan",
                venue="Casa de las Culturas",
                code=code,
                config=settings,
                languages=list(languages),
                status=Status(status),
                phase_index=phase_index if status == "live" else 0,
            )
            db.session.add(session)
            db.session.flush()
            issue_group_links(session)
        return code

    return make


def join(client, code, language="en", group=None):
    """Join a session from a phone: the join form, then the participant page."""
    page = client.get(f"/j/{code}")
    data = {"csrf_token": csrf_token(page), "language": language}
    if group is not None:
        data["group"] = group
    response = client.post(f"/j/{code}", data=data)
    assert response.status_code == 302, response.text
    return response
