"""The documentation in docs/ keeps up with the code, in the manner of datasette's test_docs.

Every plugin hook, HTTP route and live event has its entry, and the example plugin in
docs/plugins.md is built from the page and run through a whole session.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from palabre import hookspecs
from palabre.extensions import db
from palabre.models import Contribution, Session
from palabre.plugin_host import ENTRY_POINT_GROUP
from tests.conftest import (
    AuthActions,
    close_app,
    csrf_token,
    join,
    make_app,
    new_cid,
    post_form,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def read_doc(name: str) -> str:
    return (DOCS / name).read_text()


def section(text: str, heading: str) -> str:
    """The part of a Markdown page under ``heading``, up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    end = text.find(f"\n{level} ", start + len(heading) + 2)
    return text[start : end if end != -1 else None]


# --- plugin hooks ---------------------------------------------------------------------


def hook_specs() -> dict:
    """The hooks declared in palabre.hookspecs, by name."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {
        name: function
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, marker)
    }


def test_plugin_hooks_are_documented():
    docs = read_doc("plugins.md")
    hooks = hook_specs()
    assert hooks, "no hook found in palabre.hookspecs"
    missing = [name for name in hooks if f"`{name}(" not in docs]
    assert not missing, f"hooks missing from docs/plugins.md: {missing}"
    # Each hook has its own heading, written with the hook's current arguments.
    headings = dict(re.findall(r"^### `(\w+)\((.*)\)`$", section(docs, "## Plugin hooks"), re.M))
    for name, spec in hooks.items():
        arguments = ", ".join(inspect.signature(spec).parameters)
        expected = f"### `{name}({arguments})`"
        assert headings.get(name) == arguments, f"docs/plugins.md needs the heading {expected}"
    stale = set(headings) - set(hooks)
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {stale}"


def test_entry_point_group_is_documented():
    docs = read_doc("plugins.md")
    assert f'[project.entry-points."{ENTRY_POINT_GROUP}"]' in docs


# --- routes ---------------------------------------------------------------------------


def documented_routes(text: str) -> dict[str, set[str]]:
    """Rows of the routes tables: path -> methods."""
    routes = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2:
            path = re.fullmatch(r"`(/[^`]*)`", cells[1])
            if path:
                routes[path.group(1)] = {m.strip() for m in cells[0].split(",")}
    return routes


def test_routes_are_documented(app):
    docs = read_doc("routes.md")
    documented = documented_routes(docs)
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]
    assert rules
    for rule in rules:
        assert f"`{rule.rule}`" in docs, f"route {rule.rule} missing from docs/routes.md"
        methods = set(rule.methods) - {"HEAD", "OPTIONS"}
        assert documented.get(rule.rule) == methods, (
            f"docs/routes.md: {rule.rule} should be listed with {sorted(methods)}"
        )
    stale = set(documented) - {rule.rule for rule in rules}
    assert not stale, f"docs/routes.md lists routes that do not exist: {stale}"


# --- live events ----------------------------------------------------------------------


def broadcasts_in_source() -> tuple[set[str], set[str]]:
    """Event types given to ``record_event`` and names given to ``socketio.emit``.

    Read from the syntax tree of core/ and plugins/, so calls spread over several
    lines and conditional types (``"contribution.hidden" if hidden else ...``) count.
    A type passed through a variable (a method's own events) has no literal to find.
    """
    types, emitted = set(), set()
    for path in sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("record_event", "announce"):
                argument = node.args[1] if len(node.args) > 1 else None
                for keyword in node.keywords:
                    if keyword.arg == "type":
                        argument = keyword.value
                types |= {
                    literal.value
                    for literal in ast.walk(argument)
                    if isinstance(literal, ast.Constant) and isinstance(literal.value, str)
                }
            elif (
                name == "emit"
                and getattr(func.value, "id", "") == "socketio"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                emitted.add(node.args[0].value)
    return types, emitted


def test_live_events_are_documented(app):
    docs = read_doc("live-protocol.md")
    handled = {event for event, _handler, _namespace in app.extensions["socketio"].handlers}
    # The catch-all that refuses unknown events is documented with the refusals.
    assert "*" in handled and "the catch-all `*`" in docs
    handled.discard("*")
    types, emitted = broadcasts_in_source()
    assert {"connect", "contribute"} <= handled
    assert "contribution.added" in types and "event" in emitted, "the source scan found nothing"
    missing = [name for name in sorted(handled | types | emitted) if f"`{name}`" not in docs]
    assert not missing, f"live events missing from docs/live-protocol.md: {missing}"
    # Each client event has its own heading, and no heading names an event that is gone.
    client_section = section(docs, "## Client → server events")
    headed = set(re.findall(r"^### `([\w.]+)`$", client_section, re.M))
    assert headed == handled - {"connect"}, "one ### heading per client event, and no other"
    broadcast_section = section(docs, "### `event`")
    headed = set(re.findall(r"^#### `([\w.]+)`$", broadcast_section, re.M))
    assert headed == types, "one #### heading per broadcast type under ### `event`, no other"


# --- the example plugin ---------------------------------------------------------------

EXAMPLE_FILE = re.compile(r'^```[\w+-]+ title="([^"]+)"\n(.*?)^```$', re.M | re.S)
EXAMPLE_PACKAGE = "palabre_idea_box"
VIEWS = ("participant", "facilitator", "projector", "report")


@pytest.fixture
def example_app(tmp_path, monkeypatch):
    """An app running the idea box exactly as docs/plugins.md writes it."""
    files = dict(EXAMPLE_FILE.findall(read_doc("plugins.md")))
    assert set(files) == {
        f"{EXAMPLE_PACKAGE}/__init__.py",
        *(f"{EXAMPLE_PACKAGE}/templates/idea_box/{view}.html" for view in VIEWS),
    }
    site = tmp_path / "site"
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    monkeypatch.syspath_prepend(str(site))
    sys.modules.pop(EXAMPLE_PACKAGE, None)
    try:
        module = importlib.import_module(EXAMPLE_PACKAGE)
        app = make_app(tmp_path, plugins=[module])
        yield app
        close_app(app)
    finally:
        sys.modules.pop(EXAMPLE_PACKAGE, None)


def test_example_plugin_runs_a_whole_session(example_app, monkeypatch):
    app = example_app
    idea = "Benches <b>in the shade</b>"
    shown = "Benches &lt;b&gt;in the shade&lt;/b&gt;"

    staff = app.test_client()
    AuthActions(staff).login()
    page = staff.get("/sessions/new/idea_box")
    assert "Dots per participant" in page.text
    token = csrf_token(page)
    created = staff.post(
        "/sessions/new/idea_box",
        data={
            "csrf_token": token,
            "config-csrf_token": token,
            "title": "Ideas for the park",
            "languages": ["en"],
            "config-question": "What would make the park better?",
            "config-minutes": "10",
            "config-dots": "2",
        },
    )
    assert created.status_code == 302
    with app.app_context():
        session = db.session.scalar(select(Session))
        session_id, code = session.id, session.code
        assert session.config == {
            # One text posted under the field's own name: the session's first language's.
            "question": {"en": "What would make the park better?"},
            "minutes": 10,
            "dots": 2,
        }
    run = f"/sessions/{session_id}"
    assert "Open the session" in staff.get(run).text
    post_form(staff, run, f"{run}/open", {})

    phone = app.test_client()
    join(phone, code)
    post_form(staff, run, f"{run}/phase", {"index": 1})
    page = phone.get(f"/j/{code}")
    assert "What would make the park better?" in page.text
    phone.post(
        f"/j/{code}/contribute",
        data={"csrf_token": csrf_token(page), "cid": new_cid(), "kind": "idea", "body": idea},
    )
    assert shown in phone.get(f"/j/{code}").text
    assert shown in staff.get(run).text
    assert shown in staff.get(f"{run}/projector").text

    post_form(staff, run, f"{run}/phase", {"index": 2})
    with app.app_context():
        idea_id = db.session.scalar(select(Contribution.id))
    page = phone.get(f"/j/{code}")
    phone.post(
        f"/j/{code}/vote",
        data={"csrf_token": csrf_token(page), "cid": new_cid(), "contribution": idea_id},
    )
    page = phone.get(f"/j/{code}").text
    assert "data-dots-left>1<" in page
    assert f'data-votes-for="{idea_id}">1<' in page
    assert f'data-votes-for="{idea_id}">1<' in staff.get(f"{run}/projector").text
    assert f"/contributions/{idea_id}/hide" in staff.get(run).text  # shared moderation buttons

    post_form(staff, run, f"{run}/phase", {"index": 3})
    assert "Thank you!" in phone.get(f"/j/{code}").text
    assert shown in staff.get(f"/backlog/from-session/{session_id}").text
    # The report's HTML, without running WeasyPrint.
    monkeypatch.setattr("palabre.printing.html_to_pdf", lambda html: b"%PDF-1.7\n" + html.encode())
    report = staff.get(f"/print/sessions/{session_id}/report.pdf").get_data(as_text=True)
    assert "Idea box report" in report and shown in report


def test_the_public_api_is_documented_and_exists():
    """Every name plugins import from ``palabre`` is in docs/plugins.md's table, and only those."""
    import palabre

    table = section(read_doc("plugins.md"), "## What `palabre` offers")
    documented = set()
    for cell in re.findall(r"^\| (.+?) \| ", table, re.M):
        documented |= {name for name in re.findall(r"`(\w+)", cell)}
    documented -= {"name"}
    assert documented == set(palabre.__all__)
    for name in palabre.__all__:
        assert getattr(palabre, name) is not None


def test_the_test_kit_fixtures_are_documented():
    """Every fixture the pytest plugin offers has its row in docs/plugins.md, and no other."""
    import inspect

    from palabre.testing import pytest_plugin

    offered = {
        name
        for name, value in inspect.getmembers(pytest_plugin)
        if getattr(value, "_pytestfixturefunction", None) or hasattr(value, "_fixture_function")
    }
    table = section(read_doc("plugins.md"), "## Testing a method")
    documented = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert offered and documented == offered


def test_the_example_is_what_new_method_makes():
    """docs/plugins.md's idea box is exactly `palabre new-method idea_box --title "Idea box"`."""
    from palabre.scaffold import files

    documented = dict(EXAMPLE_FILE.findall(read_doc("plugins.md")))
    made = files("idea_box", "Idea box")
    assert set(documented) <= set(made)
    for path, text in documented.items():
        assert made[path] == text, f"{path} differs from what palabre new-method writes"
