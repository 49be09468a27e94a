"""The plugin host: built-ins, entry points, and every hook called as documented.

Each hook in palabre.hookspecs has a test here named ``test_hook_<name>``;
``test_every_hook_has_a_test`` fails when one is missing.
"""

from __future__ import annotations

import inspect
import io
import os
import re
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest
from flask import Blueprint
from markupsafe import Markup
from pypdf import PdfReader
from sqlalchemy import select

from palabre import contributions, hookimpl, hookspecs, phases
from palabre.backlog import create_need
from palabre.database import write_transaction
from palabre.extensions import db, socketio
from palabre.join import new_join_code
from palabre.methods import ContributionKind, Method, Phase, contribute
from palabre.models import Contribution, Need, Participant, Session
from palabre.plugin_host import BUILTIN_PLUGINS, ENTRY_POINT_GROUP, InvalidMethod
from palabre.plugins.world_cafe import WorldCafe
from palabre.testing.kit import close_app, make_app, sign_in
from tests.conftest import csrf_token, join, new_cid


def hook_names() -> list[str]:
    return [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)]


#: The apps this module's tests made, closed after each test (:func:`close_apps`).
_made_apps: list = []


@pytest.fixture(autouse=True)
def close_apps():
    """Close every app a test made with :func:`app_with`: on PostgreSQL an app left open
    keeps its connections until the garbage collector closes them, with a ResourceWarning
    that fails whichever test is running then, and its schema until the run ends."""
    yield
    while _made_apps:
        close_app(_made_apps.pop())


def app_with(tmp_path, *plugins, **config):
    """A test app with these extra plugin objects, closed after the test."""
    app = make_app(tmp_path, plugins=plugins, **config)
    _made_apps.append(app)
    return app


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
    assert BUILTIN_PLUGINS == (
        "palabre.plugins.world_cafe",
        "palabre.plugins.forum_theatre",
        "palabre.plugins.citizen_dialogue",
        "palabre.plugins.mystery_shopping",
    )
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
        app_with(tmp_path, Misspelt())


def test_each_app_has_its_own_plugin_manager(tmp_path):
    recorder = Recorder()
    one = app_with(tmp_path / "one", recorder)
    two = app_with(tmp_path / "two")
    pm_one, pm_two = one.extensions["palabre"].pm, two.extensions["palabre"].pm
    assert pm_one is not pm_two
    # Compared with an app built without the extra plugin, not counted: any
    # third-party method installed in the environment loads in both.
    assert set(pm_one.get_plugins()) == set(pm_two.get_plugins()) | {recorder}
    assert all(pm_two.has_plugin(name) for name in BUILTIN_PLUGINS)


EXTERNAL_METHOD = """
from palabre import hookimpl
from palabre.methods import ContributionKind, Method, Phase, contribute


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
    for view in ("participant", "facilitator", "projector", "report"):
        (package / "templates" / "idea_box" / f"{view}.html").write_text(
            '{% extends "base.html" %}{% block content %}<h1>{{ phase.title }}</h1>'
            "{% for c in ideas %}<p>{{ c.body }}</p>{% endfor %}{% endblock %}"
        )
    install_distribution(site, "palabre-idea-box", "idea_box = palabre_idea_box")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("palabre_idea_box", None)


def install_distribution(site: Path, name: str, *entry_points: str) -> None:
    """Write the metadata of an installed distribution with ``palabre.methods`` entry points."""
    dist = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(entry_points)
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n")


def test_an_installed_plugin_passed_in_code_too_is_registered_once(tmp_path, installed_method):
    """What a plugin's own tests do: create_app(plugins=[their module]) while it is installed."""
    import importlib

    module = importlib.import_module("palabre_idea_box")
    app = app_with(tmp_path, module)
    host = app.extensions["palabre"]
    assert [p.name for p in host.loaded].count("idea_box") == 1
    assert host.pm.is_registered(module) and "idea_box" in host.methods
    assert not host.failed


def test_hook_register_methods_from_an_installed_package(tmp_path, installed_method):
    app = app_with(tmp_path)
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
            assert app.name == "palabre"
            return [extra]

    app = app_with(tmp_path, AddsPages())
    assert app.test_client().get("/extra/hello").text == "hello from a plugin"


def test_hook_contribution_accepted_once_per_contribution(tmp_path):
    recorder = Recorder()
    app = app_with(tmp_path, recorder)
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
    app = app_with(tmp_path, recorder)
    _live_cafe(app)
    with app.test_request_context():
        session = db.session.scalar(select(Session))
        phases.go_to(session, 2)
    assert ("phase_changed", "world_cafe:round", "world_cafe:round") in recorder.calls


def test_hook_backlog_item_created(tmp_path):
    recorder = Recorder()
    app = app_with(tmp_path, recorder)
    with app.test_request_context():
        create_need("Affordable housing for large families", theme="housing")
        assert db.session.scalar(select(Need.title))
    assert recorder.calls == [
        ("backlog_item_created", "Need", "Affordable housing for large families")
    ]


class Scenes:
    """A throwaway plugin keeping rows of its own about a session (here, a list of props)."""

    def __init__(self):
        self.imported = {}

    @hookimpl
    def export_session(self, session):
        return {"scenes": {"session": session.id, "props": ["a chair", "a form"]}}

    @hookimpl
    def import_session(self, session, parts, ids):
        first = ids.contribution(min(ids.contributions))
        self.imported = {**parts["scenes"], "new": session.id, "first": first}
        return ["scenes"]


def _exported_cafe(app) -> dict:
    from palabre.transfer import export_session

    code = _live_cafe(app)
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        participant = Participant(
            session_id=session.id, token_hash="a" * 64, language="en", group="1"
        )
        db.session.add(participant)
        db.session.commit()
        contributions.accept(
            session, participant, client_id=new_cid(), kind_name="note", body="Night buses"
        )
        return export_session(session)


def test_hook_export_session(tmp_path):
    app = app_with(tmp_path, Scenes())
    document = _exported_cafe(app)
    assert document["plugins"] == {"scenes": {"session": 1, "props": ["a chair", "a form"]}}


def test_hook_import_session(tmp_path):
    import json

    from palabre.transfer import ImportRefused, import_session

    document = _exported_cafe(app_with(tmp_path / "a", Scenes()))
    scenes = Scenes()
    there = app_with(tmp_path / "b", scenes)
    with there.test_request_context():
        imported = import_session(json.dumps(document).encode())
        first = db.session.scalar(
            select(Contribution.id).where(Contribution.session_id == imported.session.id)
        )
    assert scenes.imported == {
        "session": 1,
        "props": ["a chair", "a form"],
        "new": imported.session.id,
        "first": first,
    }
    # Without the plugin, nobody takes its part: the file is refused.
    bare = app_with(tmp_path / "c")
    document["export_id"] = "f" * 32
    with bare.test_request_context(), pytest.raises(ImportRefused, match="scenes"):
        import_session(json.dumps(document).encode())


@pytest.mark.pdf
def test_hook_print_sections(tmp_path):
    seen = []

    class AddsSection:
        @hookimpl
        def print_sections(self, document, session):
            seen.append((document, session.code if session else None))
            return [("Local context", Markup("<p>Written by a plugin for the council</p>"))]

    app = app_with(tmp_path, AddsSection())
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
                config={**WorldCafe().default_config(), "tables": 1},
                languages=["en"],
                status="live",
                phase_index=1,
            )
        )
    return code


def test_hook_phase_changed_when_a_draft_opens_and_not_on_a_repeat(tmp_path):
    recorder = Recorder()
    app = app_with(tmp_path, recorder)
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


# --- plugins fail alone --------------------------------------------------------------

BROKEN_IMPORT = "raise ImportError('this plugin needs a library that is not installed')\n"

BAD_PHASES = (
    EXTERNAL_METHOD.replace('"idea_box:ideas"', '"ideas"')
    .replace("Ideas", "Bad")
    .replace('"idea_box"', '"bad_box"')
)

MISSPELT_HOOK = """
from palabre import hookimpl


@hookimpl
def contribution_acepted(contribution):
    pass
"""


@pytest.fixture
def guests(tmp_path, monkeypatch, installed_method):
    """Three broken installed plugins beside the working idea box."""
    site = installed_method
    for module, text in (
        ("palabre_broken", BROKEN_IMPORT),
        ("palabre_bad_box", BAD_PHASES),
        ("palabre_misspelt", MISSPELT_HOOK),
    ):
        (site / module).mkdir()
        (site / module / "__init__.py").write_text(textwrap.dedent(text))
        install_distribution(site, module.replace("_", "-"), f"{module[8:]} = {module}")
    yield
    for module in ("palabre_broken", "palabre_bad_box", "palabre_misspelt"):
        sys.modules.pop(module, None)


def test_a_broken_installed_plugin_is_skipped_and_named(tmp_path, guests, caplog):
    app = app_with(tmp_path)
    host = app.extensions["palabre"]
    # Everything else loaded: the built-ins and the working guest.
    assert {"world_cafe", "forum_theatre", "idea_box"} <= set(host.methods)
    failed = {plugin.name: plugin for plugin in host.failed}
    assert set(failed) == {"broken", "bad_box", "misspelt"}
    assert failed["broken"].source == "palabre-broken 1.0"
    assert "needs a library" in failed["broken"].error
    assert "phase id 'idea_box:welcome' must be 'bad_box:<name>'" in failed["bad_box"].error
    assert "contribution_acepted" in failed["misspelt"].error
    assert "Plugin 'broken' from palabre-broken 1.0 was not loaded" in caplog.text
    # Nothing of a failed plugin stays registered.
    assert not any(host.pm.has_plugin(name) for name in failed)
    assert app.test_client().get("/auth/login").status_code == 200


def test_palabre_plugins_lists_what_loaded_and_what_failed(tmp_path, guests):
    app = app_with(tmp_path, DISABLED_PLUGINS="idea_box")
    result = app.test_cli_runner().invoke(args=["plugins"])
    assert result.exit_code == 0, result.output
    assert "palabre.plugins.world_cafe  [built-in]  methods: world_cafe" in result.output
    assert "idea_box (palabre-idea-box 1.0)" in result.output.split("Disabled")[1]
    assert "broken  [palabre-broken 1.0]  ImportError" in result.output.split("Failed")[1]
    assert "idea_box" not in app.extensions["palabre"].methods


def test_a_plugin_is_disabled_by_its_distribution_name(tmp_path, installed_method, monkeypatch):
    monkeypatch.setenv("PALABRE_DISABLED_PLUGINS", '["palabre-idea-box"]')
    app = app_with(tmp_path)
    assert "idea_box" not in app.extensions["palabre"].methods


GREETING_METHOD = """
from flask_babel import lazy_gettext as _l

from palabre import ContributionKind, Method, Phase, contribute, hookimpl


class Greeting(Method):
    slug = "greeting"
    title = _l("Greeting wall")
    contribution_kinds = {"idea": ContributionKind("idea", _l("Idea"), grouped=False)}

    def phases(self, config):
        return [
            Phase("greeting:welcome", _l("Welcome")),
            Phase("greeting:ideas", _l("Ideas"), allows=frozenset({contribute("idea")})),
            Phase("greeting:closed", _l("Closed")),
        ]


@hookimpl
def register_methods():
    return [Greeting]
"""

GREETING_TEMPLATES = {
    "participant": (
        '{% extends "method/participant.html" %}'
        '{% from "components/contributions.html" import note_form with context %}'
        "{% block phase %}<h1>{{ _('Drop your idea in the box') }}</h1>"
        '{{ note_form("idea", _(\'Your idea\'), "idea-body") }}{% endblock %}'
    ),
    "facilitator": '{% extends "method/facilitator.html" %}',
    "projector": '{% extends "method/projector.html" %}',
    "report": '{% extends "print/base.html" %}',
}

#: The plugin's French catalog; "Send" is the core's string, which a plugin cannot reword.
GREETING_FRENCH = """
msgid ""
msgstr ""
"Language: fr\\n"
"Content-Type: text/plain; charset=utf-8\\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\\n"

msgid "Drop your idea in the box"
msgstr "Glissez votre idée dans la boîte"

msgid "Your idea"
msgstr "Votre idée"

msgid "Send"
msgstr "Expédier"
"""


@pytest.fixture
def translated_method(tmp_path, monkeypatch):
    """An installed method with its own French catalog, as a .po only (never compiled)."""
    site = tmp_path / "site"
    package = site / "palabre_greeting"
    (package / "templates" / "greeting").mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(GREETING_METHOD))
    for view, text in GREETING_TEMPLATES.items():
        (package / "templates" / "greeting" / f"{view}.html").write_text(text)
    catalog = package / "translations" / "fr" / "LC_MESSAGES"
    catalog.mkdir(parents=True)
    (catalog / "messages.po").write_text(textwrap.dedent(GREETING_FRENCH), encoding="utf-8")
    install_distribution(site, "palabre-greeting", "greeting = palabre_greeting")
    monkeypatch.syspath_prepend(str(site))
    yield catalog
    sys.modules.pop("palabre_greeting", None)


def greeting_page(app, language="fr") -> str:
    """The participant's page of a live greeting session, on a phone speaking ``language``."""
    with app.test_request_context(), write_transaction():
        session = Session(
            method="greeting",
            title="Greetings",
            code=new_join_code(),
            languages=["en", "fr"],
        )
        db.session.add(session)
    with app.test_request_context():
        session = db.session.scalar(select(Session))
        with write_transaction():
            session.status = "open"
        phases.go_to(session, 1)
        code = session.code
    phone = app.test_client()
    join(phone, code, language=language)
    return phone.get(f"/j/{code}").text


def test_an_installed_plugin_brings_its_translations(tmp_path, translated_method):
    # An app without the plugin speaks French first: each app keeps its own catalogs.
    without = app_with(tmp_path / "without", DISABLED_PLUGINS="greeting")
    home = without.test_client().get("/", headers={"Accept-Language": "fr"}).text
    assert '<html lang="fr" dir="ltr">' in home and "Rejoindre une séance" in home
    app = app_with(tmp_path / "with")
    assert (translated_method / "messages.mo").is_file()  # compiled when the app started
    page = greeting_page(app)
    assert "Glissez votre idée dans la boîte" in page and "Votre idée" in page
    # The plugin's catalog comes before the core's: the core's own wording wins.
    assert "Envoyer" in page and "Expédier" not in page
    assert "Drop your idea in the box" in greeting_page(app_with(tmp_path / "en"), "en")


def test_a_stale_plugin_catalog_is_compiled_again(tmp_path, translated_method):
    app_with(tmp_path / "first")
    po, mo = translated_method / "messages.po", translated_method / "messages.mo"
    po.write_text(po.read_text().replace("Glissez votre idée", "Déposez votre idée"))
    os.utime(mo, (mo.stat().st_atime, po.stat().st_mtime - 10))  # the .mo is now older
    assert "Déposez votre idée dans la boîte" in greeting_page(app_with(tmp_path / "second"))


def test_a_plugin_catalog_that_cannot_be_compiled_is_logged(
    tmp_path, translated_method, monkeypatch, caplog
):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("palabre.i18n.tempfile.mkstemp", read_only)
    app = app_with(tmp_path)
    assert "not compiled (OSError: [Errno 30] Read-only file system)" in caplog.text
    assert str(translated_method / "messages.po") in caplog.text
    assert not list(translated_method.glob("*.mo*"))  # nothing half-written left behind
    page = greeting_page(app)  # the app started; the plugin's strings stay in English
    assert "Drop your idea in the box" in page and "Envoyer" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slug": "Idea Box"}, "the slug must be"),
        ({"phases": lambda self, config: [Phase("idea_box:only", "Only")]}, "at least an opening"),
        (
            {
                "phases": lambda self, config: [
                    Phase("idea_box:a", "A", allows=frozenset({contribute("wish")})),
                    Phase("idea_box:b", "B"),
                ]
            },
            "allows 'contribute:wish', which names no declared contribution kind",
        ),
        ({"votable_kinds": ("wish",)}, "votable kinds ['wish'] are not declared"),
        ({"slug": "no_templates"}, "templates missing"),
    ],
)
def test_methods_are_checked_when_they_register(tmp_path, change, message):
    def phases(self, config):
        return [
            Phase(f"{self.slug}:welcome", "Welcome"),
            Phase(f"{self.slug}:closed", "Closed"),
        ]

    attributes = {
        "slug": "idea_box",
        "contribution_kinds": {"idea": ContributionKind("idea", "Idea")},
        "phases": phases,
        **change,
    }
    checked = type("Checked", (Method,), attributes)
    # Borrow the world café's templates so only the change under test is wrong.
    checked.template_folder = Path(__file__).parent.parent / "plugins" / "world_cafe" / "templates"
    checked.template = lambda self, view: f"world_cafe/{view}.html"
    if attributes["slug"] == "no_templates":
        del checked.template

    class Plugin:
        @hookimpl
        def register_methods(self):
            return [checked]

    with pytest.raises(InvalidMethod, match=re.escape(message)):
        app_with(tmp_path, Plugin())


def test_an_observer_hook_that_fails_costs_no_acknowledgement(tmp_path, caplog):
    class Faulty:
        @hookimpl
        def contribution_accepted(self, contribution):
            raise RuntimeError("the plugin's mail server is down")

    recorder = Recorder()
    app = app_with(tmp_path, Faulty(), recorder)
    code = _live_cafe(app)
    phone = app.test_client()
    join(phone, code)
    sock = socketio.test_client(app, flask_test_client=phone, auth={"session": code})
    ack = sock.emit("contribute", {"cid": new_cid(), "kind": "note", "body": "Hola"}, callback=True)
    sock.disconnect()
    assert ack["ok"] is True
    assert "the plugin's mail server is down" in caplog.text
    # The other plugins still heard of it.
    assert ("contribution_accepted", code, "Hola") in recorder.calls


# --- the contract: answers, ratings, refusals -------------------------------------------


class Statements(Method):
    """Statements rated 1 to 5, each with comments that answer it."""

    slug = "statements"
    title = "Statements"
    contribution_kinds = {
        "statement": ContributionKind("statement", "Statement", grouped=False, rating=(1, 5)),
        "comment": ContributionKind("comment", "Comment", grouped=False, answers=("statement",)),
        "idea": ContributionKind("idea", "Idea", grouped=False),
        # A short form: its text is optional, its fields are what it is about.
        "form": ContributionKind(
            "form", "Form", grouped=False, needs_text=False, max_length=20, fields=("where", "mark")
        ),
    }
    votable_kinds = ("statement",)

    def check_contribution(self, session, participant, kind, data):
        if kind.name == "form" and data["fields"].get("mark") not in ("1", "2", "3"):
            return "Give a mark from 1 to 3."
        return None

    def prepare_contribution(self, session, participant, contribution):
        if contribution.kind == "form":
            contribution.data = {**contribution.data, "mark": int(contribution.data["mark"])}

    def phases(self, config):
        return [
            Phase("statements:welcome", "Welcome"),
            Phase(
                "statements:rate",
                "Rate",
                allows=frozenset({contribute("comment"), contribute("form"), "vote"}),
            ),
            Phase("statements:ideas", "Ideas", allows=frozenset({contribute("idea")})),
            Phase("statements:closed", "Closed"),
        ]


@pytest.fixture
def statements(tmp_path):
    """A live statements session, two statements, and a phone; yields (app, code, ids, phone)."""
    folder = tmp_path / "templates" / "statements"
    folder.mkdir(parents=True)
    for view in ("participant", "facilitator", "projector", "report"):
        (folder / f"{view}.html").write_text("{{ session.title }}")
    Statements.template_folder = tmp_path / "templates"

    class Plugin:
        @hookimpl
        def register_methods(self):
            return [Statements]

    app = app_with(tmp_path / "app", Plugin())
    with app.test_request_context():
        with write_transaction():
            session = Session(
                method="statements",
                title="Survey",
                code=new_join_code(),
                config={},
                languages=["en"],
                status="live",
                phase_index=1,
            )
            db.session.add(session)
        code = session.code
        ids = [
            contributions.transcribe(
                session,
                client_id=new_cid(),
                kind_name="statement",
                body=text,
                group=None,
                phase_index=None,
            ).id
            for text in ("Offices open in the evening", "Forms exist in my language")
        ]
    phone = app.test_client()
    join(phone, code)
    sock = socketio.test_client(app, flask_test_client=phone, auth={"session": code})
    yield app, code, ids, sock
    sock.disconnect()


def comment(sock, reply_to, body="Only on Tuesdays", kind="comment"):
    payload = {"cid": new_cid(), "kind": kind, "body": body, "reply_to": reply_to}
    return sock.emit("contribute", payload, callback=True)


def test_a_comment_names_the_statement_it_answers(statements):
    app, code, (first, second), sock = statements
    ack = comment(sock, second)
    assert ack["ok"] is True
    added = [r["args"][0] for r in sock.get_received() if r["name"] == "event"][-1]
    assert added["data"]["reply_to"] == second
    with app.app_context():
        assert db.session.get(Contribution, ack["id"]).reply_to_id == second


def test_a_comment_must_answer_something_it_may_answer(statements):
    app, code, (first, _second), sock = statements
    assert comment(sock, 999_999)["error"] == "What you are answering is not here any more."
    own = comment(sock, first)["id"]
    # A comment is not a statement: comments cannot answer comments.
    assert comment(sock, own)["error"] == "What you are answering is not here any more."
    with app.test_request_context():
        contributions.set_hidden(db.session.get(Session, 1), first, True)
    assert comment(sock, first)["error"] == "What you are answering is not here any more."


def test_a_kind_with_fields_takes_them_from_the_socket_and_the_form(statements):
    app, code, _ids, sock = statements
    payload = {"cid": new_cid(), "kind": "form", "body": "", "where": " Library\x00 ", "mark": "2"}
    ack = sock.emit("contribute", {**payload, "secret": "not declared"}, callback=True)
    # Cleaned and stripped, undeclared keys left out, then reshaped by the method.
    assert ack == {"ok": True, "id": ack["id"], "data": {"where": "Library", "mark": 2}}
    too_long = {**payload, "cid": new_cid(), "where": "x" * 21}
    assert sock.emit("contribute", too_long, callback=True)["error"] == (
        "This is too long: 20 characters at most."
    )
    no_mark = {**payload, "cid": new_cid(), "mark": "9"}
    assert sock.emit("contribute", no_mark, callback=True)["error"] == "Give a mark from 1 to 3."
    # The plain form post, for phones without JavaScript, takes the same fields.
    phone = app.test_client()
    join(phone, code)
    page = phone.get("/")  # any page with a form: this method's test page has none
    phone.post(
        f"/j/{code}/contribute",
        data={"csrf_token": csrf_token(page), "cid": new_cid(), "kind": "form", "body": "Note"}
        | {"where": "School", "mark": "3"},
    )
    with app.app_context():
        forms = db.session.scalars(select(Contribution).where(Contribution.kind == "form")).all()
        assert [(f.body, f.data) for f in forms] == [
            ("", {"where": "Library", "mark": 2}),
            ("Note", {"where": "School", "mark": 3}),
        ]


def test_ratings_broadcast_their_distribution(statements):
    app, code, (first, _second), sock = statements
    ack = sock.emit("vote", {"cid": new_cid(), "contribution": first, "value": 4}, callback=True)
    assert ack == {"ok": True, "rating": 4}
    changed = [r["args"][0] for r in sock.get_received() if r["name"] == "event"][-1]
    assert changed["type"] == "votes.changed"
    assert changed["data"]["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}
    assert changed["data"]["count"] == 1 and changed["data"]["average"] == 4


def test_refusals_say_what_is_wrong_with_the_kind(statements):
    app, code, (first, _second), sock = statements
    # A kind that only answers is refused when given something to answer it cannot.
    assert comment(sock, first, kind="idea")["error"] == "“Idea” opens later in the session."
    with app.test_request_context():
        phases.go_to(db.session.get(Session, 1), 2)
    assert comment(sock, None)["error"] == (
        "This part of the session is over: your note was not added."
    )
    assert comment(sock, first, kind="idea")["error"] == (
        "“Idea” cannot answer another contribution."
    )
    assert comment(sock, None, kind="statement")["error"] == (
        "“Statement” is not taken in this part of the session."
    )


def test_a_phones_write_reads_its_workers_copies_and_changes_none(statements, monkeypatch):
    """The method's rules read the rows its worker keeps for the phone, read-only: detached,
    the participant's session loaded with it. A rule that changes one is refused where writes
    are strict, and the copies are dropped, so that the next event reads the rows again."""
    import sqlalchemy

    from palabre import connections

    app, code, (first, _second), sock = statements
    seen = []

    def check(self, session, participant, kind, data):
        states = sqlalchemy.inspect(session), sqlalchemy.inspect(participant)
        seen.append((states[0].detached, states[1].detached, participant.session is session))

    monkeypatch.setattr(Statements, "check_contribution", check)
    assert comment(sock, first)["ok"] is True
    assert comment(sock, first)["ok"] is True
    assert seen == [(True, True, True)] * 2

    def meddle(self, session, participant, contribution):
        participant.group = "3"

    monkeypatch.setattr(Statements, "prepare_contribution", meddle)
    assert comment(sock, first)["ok"] is False
    assert not app.extensions[connections.KEPT_KEY]["phones"]
    with app.app_context():
        assert db.session.scalars(select(Participant.group)).all() == [None]
