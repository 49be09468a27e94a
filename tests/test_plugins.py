"""The plugin host: built-ins, entry points, and every hook called as documented.

Each hook in core.hookspecs has a test here named ``test_hook_<name>``;
``test_every_hook_has_a_test`` fails when one is missing.
"""

from __future__ import annotations

import inspect
import io
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest
from flask import Blueprint
from markupsafe import Markup
from pypdf import PdfReader
from sqlalchemy import select

from core import contributions, hookimpl, hookspecs, phases
from core.backlog import create_need
from core.database import write_transaction
from core.extensions import db
from core.join import new_join_code
from core.models import Need, Participant, Session
from core.plugins import BUILTIN_PLUGINS, ENTRY_POINT_GROUP
from plugins.world_cafe import WorldCafe
from tests.conftest import PASSWORD, csrf_token, join, make_test_app, new_cid


def hook_names() -> list[str]:
    return [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)]


def make_app(tmp_path, *plugins):
    return make_test_app(tmp_path, plugins=plugins)


def sign_in(client):
    page = client.get("/auth/login")
    client.post(
        "/auth/login",
        data={"email": "fac@example.org", "password": PASSWORD, "csrf_token": csrf_token(page)},
    )


class Recorder:
    """A throwaway plugin that records the observer hooks' calls."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def contribution_accepted(self, session, contribution):
        self.calls.append(("contribution_accepted", session.code, contribution.body))

    @hookimpl
    def phase_changed(self, previous, current):
        self.calls.append(("phase_changed", previous and previous.id, current.id))

    @hookimpl
    def backlog_item_created(self, item):
        self.calls.append(("backlog_item_created", type(item).__name__, item.title))


def test_builtins_are_listed_and_the_group_is_named_once():
    assert BUILTIN_PLUGINS == ("plugins.world_cafe", "plugins.forum_theatre")
    assert ENTRY_POINT_GROUP == "palabre.methods"
    docs = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    assert ENTRY_POINT_GROUP in docs


def test_every_hook_has_a_test():
    source = Path(__file__).read_text()
    missing = [name for name in hook_names() if f"def test_hook_{name}" not in source]
    assert not missing, f"hooks without a test: {missing}"


def test_misspelt_hook_implementation_fails_loudly(tmp_path):
    class Misspelt:
        @hookimpl
        def contribution_acepted(self, contribution):
            pass

    with pytest.raises(pluggy.PluginValidationError):
        make_app(tmp_path, Misspelt())


def test_each_app_has_its_own_plugin_manager(tmp_path):
    one = make_app(tmp_path / "one", Recorder())
    two = make_app(tmp_path / "two")
    assert one.extensions["palabre"].pm is not two.extensions["palabre"].pm
    assert len(one.extensions["palabre"].pm.get_plugins()) == len(BUILTIN_PLUGINS) + 1
    assert len(two.extensions["palabre"].pm.get_plugins()) == len(BUILTIN_PLUGINS)


EXTERNAL_METHOD = """
from core import hookimpl
from core.methods import ContributionKind, Method, Phase, contribute


class Ideas(Method):
    slug = "idea_box"
    title = "Idea box"
    description = "Drop an idea in the box."
    contribution_kinds = {"idea": ContributionKind("idea", "Idea", grouped=False)}

    def phases(self, config):
        return [
            Phase("idea_box:welcome", "Welcome"),
            Phase("idea_box:ideas", "Ideas", allows=frozenset({contribute("idea")})),
            Phase("idea_box:closed", "Closed"),
        ]


@hookimpl
def register_methods():
    return [Ideas]
"""


@pytest.fixture
def installed_method(tmp_path, monkeypatch):
    """A method package installed outside the repository, found by its entry point."""
    site = tmp_path / "site"
    package = site / "palabre_idea_box"
    (package / "templates" / "idea_box").mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(EXTERNAL_METHOD))
    (package / "templates" / "idea_box" / "participant.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>{{ phase.title }}</h1>'
        "{% for c in ideas %}<p>{{ c.body }}</p>{% endfor %}{% endblock %}"
    )
    dist = site / "palabre_idea_box-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: palabre-idea-box\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nidea_box = palabre_idea_box\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("palabre_idea_box", None)


def test_hook_register_methods_from_an_installed_package(tmp_path, installed_method):
    app = make_app(tmp_path)
    method = app.extensions["palabre"].methods["idea_box"]
    assert method.title == "Idea box"
    client = app.test_client()
    sign_in(client)
    page = client.get("/sessions/new/idea_box")
    response = client.post(
        "/sessions/new/idea_box",
        data={"csrf_token": csrf_token(page), "title": "Ideas night", "languages": ["en"]},
    )
    assert response.status_code == 302
    with app.test_request_context():
        session = db.session.scalar(select(Session))
        with write_transaction():
            session.status = "open"
        phases.go_to(session, 1)
        code = session.code
    phone = app.test_client()
    join(phone, code)
    with app.test_request_context():
        session = db.session.scalar(select(Session))
        participant = db.session.scalar(select(Participant))
        contributions.accept(
            session, participant, client_id=new_cid(), kind_name="idea", body="A library card"
        )
    assert "Ideas" in phone.get(f"/j/{code}").text


def test_hook_register_blueprints(tmp_path):
    extra = Blueprint("extra", __name__)
    extra.add_url_rule("/extra/hello", "hello", lambda: "hello from a plugin")

    class AddsPages:
        @hookimpl
        def register_blueprints(self, app):
            assert app.name == "core"
            return [extra]

    app = make_app(tmp_path, AddsPages())
    assert app.test_client().get("/extra/hello").text == "hello from a plugin"


def test_hook_contribution_accepted_once_per_contribution(tmp_path):
    recorder = Recorder()
    app = make_app(tmp_path, recorder)
    code = _live_cafe(app)
    phone = app.test_client()
    join(phone, code)
    cid = new_cid()
    with app.test_request_context():
        session = db.session.scalar(select(Session))
        participant = db.session.scalar(select(Participant))
        for _ in range(2):  # a resend
            contributions.accept(
                session, participant, client_id=cid, kind_name="note", body="Night buses"
            )
    accepted = [c for c in recorder.calls if c[0] == "contribution_accepted"]
    assert accepted == [("contribution_accepted", code, "Night buses")]


def test_hook_phase_changed(tmp_path):
    recorder = Recorder()
    app = make_app(tmp_path, recorder)
    _live_cafe(app)
    with app.test_request_context():
        session = db.session.scalar(select(Session))
        phases.go_to(session, 2)
    assert ("phase_changed", "world_cafe:round", "world_cafe:round") in recorder.calls


def test_hook_backlog_item_created(tmp_path):
    recorder = Recorder()
    app = make_app(tmp_path, recorder)
    with app.test_request_context():
        create_need("Affordable housing for large families", theme="housing")
        assert db.session.scalar(select(Need.title))
    assert recorder.calls == [
        ("backlog_item_created", "Need", "Affordable housing for large families")
    ]


@pytest.mark.pdf
def test_hook_print_sections(tmp_path):
    seen = []

    class AddsSection:
        @hookimpl
        def print_sections(self, document, session):
            seen.append((document, session.code if session else None))
            return [("Local context", Markup("<p>Written by a plugin for the council</p>"))]

    app = make_app(tmp_path, AddsSection())
    code = _live_cafe(app)
    client = app.test_client()
    sign_in(client)
    with app.app_context():
        session_id = db.session.scalar(select(Session.id))
    pdf = client.get(f"/print/sessions/{session_id}/report.pdf")
    assert pdf.status_code == 200
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Written by a plugin for the council" in text
    assert seen == [("report", code)]


def _live_cafe(app) -> str:
    """A one-table café in its first round; returns the join code."""
    with app.test_request_context(), write_transaction():
        code = new_join_code()
        db.session.add(
            Session(
                method="world_cafe",
                title="Café",
                code=code,
                host_key="k",
                config={**WorldCafe().default_config(), "tables": 1},
                languages=["en"],
                status="live",
                phase_index=1,
            )
        )
    return code


def test_hook_phase_changed_when_a_draft_opens_and_not_on_a_repeat(tmp_path):
    recorder = Recorder()
    app = make_app(tmp_path, recorder)
    code = _live_cafe(app)
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        with write_transaction():
            session.status = "draft"
            session.phase_index = 0
        phases.go_to(session, 0)
        phases.go_to(session, 0)  # a resent request changes nothing
    assert [c for c in recorder.calls if c[0] == "phase_changed"] == [
        ("phase_changed", None, "world_cafe:welcome")
    ]
