"""Hostile and broken input: every route and socket event answers, nothing malformed is stored.

Property-based (Hypothesis): every rule of the URL map, with every method, is
requested by a participant and by a signed-in facilitator with hostile path
parameters, query strings and form fields (forms start from the real forms
found on the pages, with a valid CSRF token, so that the checks behind CSRF
are reached); every socket event is sent hostile payloads. No answer may be a
server error, every socket write must be acknowledged, nothing may be logged
as an error, and no stored text may hold NUL, control or bidi override
characters or lone surrogates. Then one test per kind of bug found, so that
each stays fixed in plain sight.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from html.parser import HTMLParser
from itertools import product
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
import websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from palabre.database import write_transaction
from palabre.extensions import db
from palabre.inputs import SQL_INT_MAX, clean_json, clean_text, parse_int
from palabre.join import new_join_code
from palabre.models import (
    Action,
    Contribution,
    Facilitator,
    Need,
    RoleLink,
    Session,
    Stakeholder,
    Status,
)
from palabre.plugins.forum_theatre import ForumTheatre
from palabre.plugins.world_cafe import WorldCafe
from palabre.testing import role_link
from tests.conftest import (
    FACILITATOR_EMAIL,
    PASSWORD,
    AuthActions,
    close_app,
    csrf_token,
    join,
    make_app,
    new_cid,
)
from tests.test_browser import free_port, palabre

#: Examples per route, method and person: enough to meet every kind of hostile
#: value in a few runs, few enough that the whole file runs in well under a minute.
EXAMPLES_PER_ROUTE = 5
EXAMPLES_PER_EVENT = 25

HOST = "palabre.test"

#: Values that broke, or could break, something: huge and negative numbers,
#: non-ASCII digits, line breaks for headers, other sites for redirects, NUL,
#: lone surrogates, bidi overrides, very long text, nothing at all.
HOSTILE_SAMPLES = [
    "",
    "0",
    "-1",
    "1",
    str(SQL_INT_MAX),
    str(SQL_INT_MAX + 1),
    str(10**30),
    "9" * 5000,
    "1e3",
    " 7 ",
    "١٢",
    "é",
    "\r\nSet-Cookie: evil=1",
    "/\r\nLocation: //evil.example",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff\ud800x",
    "\u202egnp.exe",
    "\u2066ltr\u2069",
    "x" * 20_000,
]
#: Tried in each path parameter, and in every query argument and form field at once.
PATH_SAMPLES = ["0", "-1", str(SQL_INT_MAX + 1), str(10**30), "9" * 5000, "é", "\ud800", "a\x00b"]
QUERY_SAMPLES = [
    *PATH_SAMPLES,
    "/\r\nSet-Cookie: evil=1",
    "//evil.example",
    "/\\evil.example",
    "\u202e",
]
#: Tried in each form field alone, the others as the page filled them in.
TEXT_SAMPLES = ["Evening\u202e classes\x00 for \u2066parents\u2069", "9" * 30]
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
HOSTILE = st.one_of(st.sampled_from(HOSTILE_SAMPLES), ANY_TEXT)
#: Query arguments the routes read, and one they do not.
QUERY_KEYS = ["next", "k", "archived", "need", "x"]

UNWANTED = re.compile("[\x00\u202a-\u202e\u2066-\u2069]|[\ud800-\udfff]")


def as_bytes(value: str) -> bytes:
    """What a hostile client can send: any bytes, including a lone surrogate's (invalid UTF-8)."""
    return value.encode("utf-8", "surrogatepass")


# --- a populated instance ------------------------------------------------------------


class FormFinder(HTMLParser):
    """The ``method="post"`` forms of a page: their action and their fields, filled in."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._fields: list[tuple[str, str]] | None = None
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_value: str | None = None
        self._submitted = set()

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        name = attrs.get("name")
        if tag == "form" and attrs.get("method", "").lower() == "post":
            self._fields = []
            self.forms.append((attrs.get("action", ""), self._fields))
            self._submitted = set()
        elif self._fields is None:
            return
        elif tag == "option" and self._select:
            if self._select_value is None or "selected" in attrs:
                self._select_value = attrs.get("value", "")
        elif not name:
            return
        elif tag == "input":
            kind = attrs.get("type", "text")
            # As a person would: every box ticked, the chosen radio button.
            if kind == "radio" and "checked" not in attrs:
                return
            if kind == "submit" and name in self._submitted:
                return  # several buttons of one name: press the first
            self._submitted.add(name)
            self._fields.append((name, attrs.get("value", "")))
        elif tag == "button" and name not in self._submitted:
            self._submitted.add(name)
            self._fields.append((name, attrs.get("value", "")))
        elif tag == "textarea":
            self._textarea = name
            self._fields.append((name, ""))
        elif tag == "select":
            self._select, self._select_value = name, None

    def handle_data(self, data):
        if self._textarea and self._fields:
            name, text = self._fields[-1]
            self._fields[-1] = (name, text + data)

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select and self._fields is not None:
            self._fields.append((self._select, self._select_value or ""))
            self._select = None
        elif tag == "form":
            self._fields = None


class Instance:
    """An app holding a café in its first round, a café in its harvest, a forum theatre
    in its forum and a draft, with notes, insights, an intervention, a need and an action;
    a facilitator and a participant (of every session, and a café table's host) signed in.
    """

    def __init__(self, app):
        self.app = app
        self.facilitator = app.test_client()
        AuthActions(self.facilitator).login()
        self.participant = app.test_client()
        self.phases: dict[str, tuple[Status, int]] = {}
        self.codes = {
            "round": self._session(WorldCafe, Status.LIVE, 1, tables=2, assignment="choose"),
            "harvest": self._session(WorldCafe, Status.LIVE, 4, tables=2, assignment="choose"),
            "forum": self._session(ForumTheatre, Status.LIVE, 5),
            "draft": self._session(WorldCafe, Status.DRAFT, 0),
        }
        join(self.participant, self.codes["round"], group="1")
        self.participant.get(role_link(self.app, self.codes["harvest"], "host", "1"))
        join(self.participant, self.codes["forum"])
        for name, kind in (("round", "note"), ("harvest", "insight")):
            page = f"/j/{self.codes[name]}"
            self._post(self.participant, page, f"{page}/contribute", kind=kind)
        forum_id = self.session_id("forum")
        self._post(
            self.facilitator,
            f"/sessions/{forum_id}",
            f"/sessions/{forum_id}/actions/intervention.log",
            tried="She asks for the decision in writing",
            scene="1",
        )
        self._post(
            self.facilitator, "/backlog/needs/new", "/backlog/needs/new", title="Evening classes"
        )
        self._post(
            self.facilitator,
            "/backlog/stakeholders",
            "/backlog/stakeholders",
            name="Library",
            kind="city",
            interest="4",
            influence="2",
        )
        self._post(
            self.facilitator,
            "/backlog/actions/new",
            "/backlog/actions/new",
            title="Open a class",
            status="planned",
        )
        with app.app_context():
            self.valid = {
                "session_id": [str(s) for s in db.session.scalars(select(Session.id))],
                "contribution_id": [str(c) for c in db.session.scalars(select(Contribution.id))],
                "need_id": [str(n) for n in db.session.scalars(select(Need.id))],
                "action_id": [str(a) for a in db.session.scalars(select(Action.id))],
                "code": list(self.codes.values()),
                "group": ["1", "2"],
                "slug": ["world_cafe", "forum_theatre"],
                "name": list(ForumTheatre.facilitator_actions),
                "token": ["not-the-set-up-token"],
                "job_id": ["no-such-print-job"],
                "filename": ["live.js"],
                "key": [link.key for link in db.session.scalars(select(RoleLink))][:2]
                + ["custom-transport"],
                "role_name": ["host"],
                "link_id": [str(link.id) for link in db.session.scalars(select(RoleLink))][:2],
                "account_id": [str(f) for f in db.session.scalars(select(Facilitator.id))],
                "facilitator_id": [str(f) for f in db.session.scalars(select(Facilitator.id))],
                "invitation_id": ["1"],
                "stakeholder_id": [str(s) for s in db.session.scalars(select(Stakeholder.id))],
                "merge_id": ["1"],
                "what": ["actions"],
                "kind": ["csv"],
            }
        self.people = {"participant": self.participant, "facilitator": self.facilitator}
        self.tokens = {role: self._token(client) for role, client in self.people.items()}
        self.forms = self._find_forms()

    def restore_phases(self) -> None:
        """Put each session back in the phase it was made in (a hostile ``phase.go`` moves it)."""
        with self.app.app_context(), write_transaction():
            for code, (status, phase_index) in self.phases.items():
                session = db.session.scalar(select(Session).where(Session.code == code))
                session.status, session.phase_index = status, phase_index

    def session_id(self, name: str) -> int:
        with self.app.app_context():
            return db.session.scalar(select(Session.id).where(Session.code == self.codes[name]))

    def _session(self, method, status, phase_index, **config) -> str:
        with self.app.test_request_context(), write_transaction():
            code = new_join_code()
            self.phases[code] = (status, phase_index)
            db.session.add(
                Session(
                    method=method.slug,
                    title="A session",
                    code=code,
                    config={**method().default_config(), **config},
                    languages=["en", "fr", "ar"],
                    status=status,
                    phase_index=phase_index,
                )
            )
        return code

    def _post(self, client, page, url, **fields):
        """Post ``fields`` (with a new ``cid`` and a body) to ``url`` as the form on ``page``."""
        token = csrf_token(client.get(page))
        data = {"csrf_token": token, "cid": new_cid(), "body": "A first note", **fields}
        response = client.post(url, data=data)
        assert response.status_code == 302, response.text

    def _token(self, client) -> str:
        return csrf_token(client.get("/"))

    def _find_forms(self) -> dict[tuple[str, str], list[tuple[dict, list[tuple[str, str]]]]]:
        """Every post form on the pages each person can open, by (person, endpoint).

        Each form is the path parameters it posts to and its fields, filled in.
        """
        adapter = self.app.url_map.bind(HOST)
        found: dict[tuple[str, str], list[tuple[dict, list[tuple[str, str]]]]] = {}
        for rule in self.app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.rule.endswith(".pdf"):
                continue
            choices = [self.valid[name] for name in sorted(rule.arguments)]
            for values in product(*choices):
                url = fill(rule, dict(zip(sorted(rule.arguments), values, strict=True)))
                for role, client in self.people.items():
                    with client.get(url) as page:
                        if page.status_code != 200 or page.mimetype != "text/html":
                            continue
                        finder = FormFinder()
                        finder.feed(page.text)
                    for action, fields in finder.forms:
                        target = urlsplit(action or url).path
                        try:
                            endpoint, args = adapter.match(target, method="POST")
                        except (HTTPException, RequestRedirect):
                            continue
                        args = {name: str(value) for name, value in args.items()}
                        found.setdefault((role, endpoint), []).append((args, fields))
        return found

    def keep_signed_in(self) -> None:
        """Sign the facilitator in again after a hostile request signed them out."""
        with self.facilitator.session_transaction() as cookie:
            signed_in = "_user_id" in cookie
        if not signed_in:
            AuthActions(self.facilitator).login()
            self.tokens["facilitator"] = self._token(self.facilitator)


def fill(rule, values: dict[str, str]) -> str:
    """The URL of ``rule`` with ``values`` in its parameters, percent-encoded byte for byte."""
    return re.sub(
        r"<(?:[^:<>]+:)?([^<>]+)>",
        lambda match: quote(as_bytes(values[match.group(1)]), safe=""),
        rule.rule,
    )


@pytest.fixture
def instance(tmp_path):
    # No rate limit: a refusal for sending too fast would hide what comes after it.
    app = make_app(tmp_path, SERVER_NAME=HOST, RATE_LIMIT_WRITES="100000/minute")
    yield Instance(app)
    close_app(app)


def malformed_texts(app) -> list[tuple[str, str, object]]:
    """Every stored text (JSON included) holding NUL, a bidi control or a lone surrogate."""
    found = []

    def walk(table, column, value):
        if isinstance(value, str) and UNWANTED.search(value):
            found.append((table, column, value))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(table, column, key)
                walk(table, column, item)
        elif isinstance(value, list):
            for item in value:
                walk(table, column, item)

    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(select(table)).mappings():
                for column, value in row.items():
                    walk(table.name, column, value)
    return found


# --- every route ----------------------------------------------------------------------


def test_no_route_answers_a_server_error(instance, caplog):
    """Hostile paths, query strings and form fields get 2xx, 3xx or 4xx, never 5xx."""
    app = instance.app
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            # Rendering a PDF takes seconds: its routes get hostile ids only.
            renders_pdf = rule.rule.endswith(".pdf")
            if renders_pdf and not rule.arguments:
                continue
            for role in ("participant", "facilitator"):
                check_route(instance, rule, method, role, valid_ids=not renders_pdf)
                checked += 1
    assert checked > 50
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert malformed_texts(app) == []


def check_route(instance, rule, method, role, valid_ids):
    """Request ``rule`` as ``role``: each sample in each place in turn, then Hypothesis's mixes."""
    arguments = sorted(rule.arguments)
    usual = {name: instance.valid[name][0] for name in arguments}
    found = instance.forms.get((role, rule.endpoint)) if method == "POST" else None
    # A form found on a page posts to its own path: it is the one to start from.
    if found:
        usual = found[0][0]
    forms = [fields for _args, fields in found or [({}, [])]]
    for name in arguments:
        for sample in PATH_SAMPLES:
            send(instance, role, method, fill(rule, {**usual, name: sample}), forms[0])
    for position, (name, _value) in enumerate(forms[0]):
        for sample in TEXT_SAMPLES:
            one_field = [*forms[0][:position], (name, sample), *forms[0][position + 1 :]]
            send(instance, role, method, fill(rule, usual), one_field)
    if valid_ids:
        for sample in QUERY_SAMPLES:
            query = "?" + urlencode([(key, as_bytes(sample)) for key in QUERY_KEYS])
            every_field = [(name, sample) for name, _value in forms[0]]
            send(instance, role, method, fill(rule, usual) + query, every_field)

    def path_value(name):
        hostile = st.one_of(st.sampled_from(PATH_SAMPLES), ANY_TEXT.filter(bool))
        if not valid_ids:
            return hostile
        return st.one_of(st.sampled_from(instance.valid[name]), hostile)

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        path=st.fixed_dictionaries({name: path_value(name) for name in arguments}),
        query=st.dictionaries(st.sampled_from(QUERY_KEYS), HOSTILE, max_size=3),
        form=st.sampled_from(forms),
        changes=st.data(),
    )
    def requested(path, query, form, changes):
        url = fill(rule, path)
        if query:
            url += "?" + urlencode([(key, as_bytes(value)) for key, value in query.items()])
        if method != "GET":
            names = sorted({name for name, _value in form if name != "csrf_token"} | {"x"})
            changed = changes.draw(st.dictionaries(st.sampled_from(names), HOSTILE, max_size=4))
            form = [(n, v) for n, v in form if n not in changed] + list(changed.items())
        send(instance, role, method, url, form)

    requested()


def send(instance, role, method, url, form):
    """Request ``url``, posting ``form`` with a valid CSRF token; assert no server error."""
    body = b""
    if method != "GET":
        fields = [(n, v) for n, v in form if n != "csrf_token"]
        fields.append(("csrf_token", instance.tokens[role]))
        body = urlencode([(name, as_bytes(value)) for name, value in fields]).encode()
    client = instance.people[role]
    with client.open(
        url, method=method, data=body, content_type="application/x-www-form-urlencoded"
    ) as response:
        assert response.status_code < 500, (role, method, url, body[:300])
    instance.keep_signed_in()


# --- every socket event -----------------------------------------------------------------

#: What JSON can carry, hostile text, numbers beyond 64 bits, NaN and infinities included.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | HOSTILE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)
CIDS = st.uuids().map(lambda u: u.hex)
NOTES = st.sampled_from(
    [
        "Evening classes",
        "Evening\u202e classes\x00 for \u2066parents\u2069",
        "\ud800 a lone surrogate, \ud83d\ude00 a split pair",
        "دروس \u202bمسائية",
        "x" * 2001,
    ]
)
#: Each event's payload as a client would send it, to be spoilt field by field below.
BELIEVABLE = {
    "contribute": st.fixed_dictionaries(
        {
            "cid": CIDS,
            # Notes go to the café's round, alternatives to the forum.
            "kind": st.sampled_from(["note", "alternative"]),
            "body": NOTES,
        }
    ),
    # The forum's intervention is the third contribution.
    "vote": st.fixed_dictionaries(
        {"cid": CIDS, "contribution": st.integers(1, 4), "value": st.integers(1, 5)}
    ),
    # Phases 1 to 4 keep both sessions running (the last phase would close one).
    "phase.go": st.fixed_dictionaries({"cid": CIDS, "index": st.integers(1, 4)}),
    "timer.extend": st.fixed_dictionaries({"cid": CIDS, "minutes": st.integers(1, 30)}),
    "contribution.hide": st.fixed_dictionaries(
        {"cid": CIDS, "id": st.integers(1, 8), "hidden": st.booleans()}
    ),
    "contribution.transcribe": st.fixed_dictionaries(
        {
            "cid": CIDS,
            "kind": st.sampled_from(["note", "answer"]),
            "body": NOTES,
            "group": st.sampled_from(["1", "2", None]),
            "phase_index": st.integers(0, 3),
        }
    ),
    "method.action": st.fixed_dictionaries(
        {
            "cid": CIDS,
            "name": st.sampled_from(ForumTheatre.facilitator_actions),
            "tried": NOTES,
            "scene": st.sampled_from(["1", "2", "٣", "²"]),
            "moment": NOTES,
            "happened": NOTES,
            "answers": st.lists(st.sampled_from(["1", "2", "²", "x"]), max_size=3),
            "title": NOTES,
        }
    ),
    "no.such.event": st.fixed_dictionaries({"cid": CIDS}),
}


@st.composite
def payloads(draw, event):
    """None, one or two payloads for ``event``: believable ones with a field or two spoilt,
    or any JSON at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.lists(JSON_VALUES, max_size=2))
    payload = draw(BELIEVABLE[event])
    spoilt = draw(st.lists(st.sampled_from([*payload, "extra"]), max_size=2, unique=True))
    for key in spoilt:
        payload[key] = draw(JSON_VALUES)
    return [payload]


EVENTS = list(BELIEVABLE)


def assert_answered(ack) -> None:
    """An acknowledgement as the protocol says: ``ok``, and a message when it is ``false``."""
    assert isinstance(ack, dict), ack
    assert ack["ok"] in (True, False), ack
    if not ack["ok"]:
        assert isinstance(ack["error"], str) and ack["error"].strip(), ack


@pytest.fixture
def sockets(instance):
    """A participant's and a facilitator's sockets on the café round and on the forum,
    by role."""
    from palabre.extensions import socketio

    made = {"participant": [], "facilitator": []}
    for name in ("round", "forum"):
        for role, client in instance.people.items():
            auth = {"session": instance.codes[name], "view": role, "last_seq": 0}
            sock = socketio.test_client(instance.app, flask_test_client=client, auth=auth)
            assert sock.is_connected()
            made[role].append(sock)
    yield made
    for sock in (*made["participant"], *made["facilitator"]):
        if sock.is_connected():
            sock.disconnect()


def test_every_socket_event_is_answered(instance, sockets, caplog):
    """Hostile payloads, none or several of them, get an acknowledgement; nothing fails."""
    accepted = 0

    def check_event(event):
        nonlocal accepted
        # Mostly sent by the role the event is for, sometimes by the other one.
        role = "participant" if event in ("contribute", "vote") else "facilitator"
        other = "facilitator" if role == "participant" else "participant"

        @settings(
            max_examples=EXAMPLES_PER_EVENT,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(impostor=st.integers(0, 4), data=st.data())
        def sent(impostor, data):
            nonlocal accepted
            instance.restore_phases()
            sock = data.draw(st.sampled_from(sockets[other if impostor == 0 else role]))
            ack = sock.emit(event, *data.draw(payloads(event)), callback=True)
            assert_answered(ack)
            accepted += ack["ok"]

        sent()

    for event in EVENTS:
        check_event(event)
    assert accepted, "no write got through: the payloads are too hostile to reach storage"
    for sock in (*sockets["participant"], *sockets["facilitator"]):
        for event in EVENTS:
            for payload in (None, [], 0, 2**70, float("nan"), "\ud800", {"cid": "\ud800"}):
                assert_answered(sock.emit(event, payload, callback=True))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert malformed_texts(instance.app) == []


def test_hostile_connections_are_refused_or_answered(instance, caplog):
    """A connection with a hostile ``auth`` is refused, or accepted and then answered."""
    from palabre.extensions import socketio

    code = instance.codes["round"]
    auths = [None, [], "x", 7, {}, {"session": None}, {"session": [code]}]
    auths += [{"session": code, "view": view} for view in (None, 7, "\ud800", ["participant"])]
    auths += [{"session": code, "last_seq": seq} for seq in (None, "x", -1, 2**70, 1e308)]
    auths += [{"session": sample} for sample in HOSTILE_SAMPLES]
    for auth in auths:
        sock = socketio.test_client(instance.app, flask_test_client=instance.participant, auth=auth)
        if sock.is_connected():
            assert_answered(sock.emit("contribute", {"cid": new_cid()}, callback=True))
            sock.disconnect()
    # Refused by the checks themselves, not by the error handler after a crash.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_message_over_the_size_limit_closes_the_connection(tmp_path):
    """A real server announces the limit and closes a WebSocket that sends more.

    The phone sees a disconnection, not an acknowledgement: this is why
    ``live.js`` never queues a write over the limit (it would resend it on
    every reconnection, forever). The longest legitimate note is far smaller.
    """
    from palabre.live import MAX_MESSAGE_BYTES

    port = free_port()
    env = {**os.environ, "PALABRE_INSTANCE": str(tmp_path)}
    with open(tmp_path / "server.log", "w+") as log:
        server = palabre(
            "serve", "--host", "127.0.0.1", "--port", str(port), env=env, stdout=log, stderr=log
        )
        try:
            url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
            phone = connect_when_up(url, server)
            try:
                opened = json.loads(phone.recv()[1:])  # "0": Engine.IO's open packet
                assert opened["maxPayload"] == MAX_MESSAGE_BYTES
                note = {"cid": new_cid(), "kind": "note", "body": "ü" * 2000}
                longest_note = "42" + json.dumps(["contribute", note], ensure_ascii=False)
                assert len(longest_note.encode()) < MAX_MESSAGE_BYTES / 8
                phone.send("4" + "x" * MAX_MESSAGE_BYTES)
                opcode, _data = phone.recv_data(control_frame=True)
                assert opcode == websocket.ABNF.OPCODE_CLOSE
            finally:
                phone.shutdown()
        finally:
            server.terminate()
            server.wait(timeout=20)


def connect_when_up(url, server, seconds=60):
    """A WebSocket to ``url`` once the server listens (probed first: a refused
    WebSocket attempt would leave its socket open)."""
    address = urlsplit(url)
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((address.hostname, address.port), timeout=2):
                break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.3)
    return websocket.create_connection(url, timeout=10)


def test_live_js_knows_the_size_limit():
    """The browser's outbox refuses, rather than queues forever, a write over the limit."""
    from palabre.live import MAX_MESSAGE_BYTES

    script = (Path(__file__).parent.parent / "core" / "static" / "live.js").read_text()
    assert f"MAX_MESSAGE_BYTES = {MAX_MESSAGE_BYTES};" in script


# --- the browser's outbox ------------------------------------------------------------------


def run_outbox(**scenarios) -> dict:
    """Run ``tests/js/outbox.js``: what ``live.js`` did with each write and its answers."""
    node = shutil.which("node")
    assert node, "Node.js is missing: scripts/setup installs it with npm"
    script = Path(__file__).parent / "js" / "outbox.js"
    done = subprocess.run(
        [node, str(script), json.dumps(scenarios)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_outbox_drops_refusals_and_keeps_what_to_retry():
    """A refusal leaves the outbox at once; a refusal saying ``retry``, or no answer at
    all, stays and is sent again until it is acknowledged."""
    busy = {"ok": False, "error": "Busy, sending again.", "retry": True}
    results = run_outbox(
        accepted={"body": "Evening classes", "acks": [[None, {"ok": True, "id": 1}]]},
        refused={"body": "Evening classes", "acks": [[None, {"ok": False, "error": "No."}]]},
        busy_then_accepted={
            "body": "Evening classes",
            "acks": [[None, busy], [None, busy], [None, {"ok": True, "id": 2}]],
        },
        unanswered_then_accepted={
            "body": "Evening classes",
            "acks": [[{"message": "timeout"}], [None, {"ok": True, "id": 3}]],
        },
        too_big={"body": "x" * 70_000, "acks": []},
    )
    assert results["accepted"] == {"queued": 0, "emitted": 1, "left": 0, "said": ""}
    assert results["refused"] == {"queued": 0, "emitted": 1, "left": 0, "said": "No."}
    assert results["busy_then_accepted"] == {"queued": 1, "emitted": 3, "left": 0, "said": ""}
    assert results["unanswered_then_accepted"]["emitted"] == 2
    assert results["unanswered_then_accepted"]["left"] == 0
    assert results["too_big"] == {
        "queued": 0,
        "emitted": 0,
        "left": 0,
        "said": "Too long to send.",
    }


# --- each bug found, kept fixed ----------------------------------------------------------


def test_clean_text_strips_controls_and_bidi_and_repairs_surrogates():
    assert clean_text("a\x00b\x07c\u202ed\u2066e\u2069\r\n\tf") == "abcde\r\n\tf"
    assert clean_text("\ud800x") == "\ufffdx"
    assert clean_text("\ud83d\ude00") == "\U0001f600"  # a pair split in two is joined
    assert clean_text("مرحبا\u200f") == "مرحبا\u200f"  # a right-to-left mark is kept
    assert clean_text(None) == "" and clean_text(7) == "7"
    assert clean_json({"k\x00": ["\u202ex", 1, None]}) == {"k": ["x", 1, None]}


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (7, 7),
        (" -3 ", -3),
        ("12", 12),
        (2.0, 2),
        (str(SQL_INT_MAX), SQL_INT_MAX),
        (str(SQL_INT_MAX + 1), None),
        (10**30, None),
        ("١٢", None),
        ("1_000", None),
        ("1e3", None),
        (2.5, None),
        (float("nan"), None),
        (float("inf"), None),
        (True, None),
        ([1], None),
        (None, None),
    ],
)
def test_parse_int_takes_64_bit_integers_only(value, parsed):
    assert parse_int(value) == parsed


@pytest.mark.parametrize(
    "path",
    [
        f"/sessions/{10**30}",
        f"/sessions/{SQL_INT_MAX + 1}/projector",
        f"/backlog/needs/{10**30}",
        f"/backlog/actions/{10**30}",
        f"/print/sessions/{10**30}/report.pdf",
    ],
)
def test_an_id_beyond_64_bits_is_not_found(client, auth, path):
    auth.login()
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    "target",
    ["/\r\nSet-Cookie: evil=1", "//evil.example/", "/\\evil.example", "https://evil.example/"],
)
def test_redirect_targets_stay_on_the_site(client, target):
    page = client.get("/")
    response = client.post(
        "/language", data={"csrf_token": csrf_token(page), "language": "fr", "next": target}
    )
    assert response.status_code == 302 and response.location == "/"
    login = client.get("/auth/login")
    response = client.post(
        f"/auth/login?{urlencode({'next': target})}",
        data={"csrf_token": csrf_token(login), "email": FACILITATOR_EMAIL, "password": PASSWORD},
    )
    assert response.status_code == 302 and response.location == "/sessions/"


def test_a_form_goes_back_to_its_page_only_on_this_site(app, client, auth, make_cafe):
    code = make_cafe()
    auth.login()
    with app.app_context():
        session_id = db.session.scalar(select(Session.id).where(Session.code == code))
    page = client.get(f"/sessions/{session_id}")
    data = {"csrf_token": csrf_token(page), "name": "no.such.action"}
    url = f"/sessions/{session_id}/actions/no.such.action"
    back = client.post(url, data=data, headers={"Referer": f"/sessions/{session_id}/projector"})
    assert back.location == f"/sessions/{session_id}/projector"
    away = client.post(url, data=data, headers={"Referer": "https://evil.example/phish"})
    assert away.location == f"/sessions/{session_id}"


def test_a_personal_link_with_a_non_ascii_key_is_unknown(app, make_cafe):
    code = make_cafe()
    assert app.test_client().get(f"/j/{code}/r/é").status_code == 404
    assert app.test_client().get(role_link(app, code, "host", "1")).status_code == 302


def test_notes_are_stored_without_bidi_overrides_nul_or_lone_surrogates(
    app, make_cafe, socket_client
):
    code = make_cafe(tables=1)
    browser = app.test_client()
    join(browser, code)
    page = browser.get(f"/j/{code}")
    browser.post(
        f"/j/{code}/contribute",
        data={
            "csrf_token": csrf_token(page),
            "cid": new_cid(),
            "kind": "note",
            "body": "Evening\u202e classes\x00",
        },
    )
    phone = socket_client(browser, code=code)
    ack = phone.emit(
        "contribute",
        {"cid": new_cid(), "kind": "note", "body": "\u2066Childcare\u2069 \ud800"},
        callback=True,
    )
    assert ack["ok"] is True
    refused = phone.emit(
        "contribute", {"cid": "\ud800", "kind": "note", "body": "x"}, callback=True
    )
    assert refused["ok"] is False and "incomplete" in refused["error"]
    with app.app_context():
        bodies = db.session.scalars(select(Contribution.body).order_by(Contribution.id)).all()
    assert bodies == ["Evening classes", "Childcare \ufffd"]


def test_a_refusal_is_in_the_senders_language(app, make_cafe, socket_client):
    code = make_cafe(tables=1)
    browser = app.test_client()
    join(browser, code, language="fr")
    phone = socket_client(browser, code=code)
    for payload in (None, {"cid": "\ud800"}, {"cid": new_cid(), "kind": "note", "body": None}):
        ack = phone.emit("contribute", payload, callback=True)
        assert ack["ok"] is False and ("Veuillez" in ack["error"] or "Écrivez" in ack["error"])
    unknown = phone.emit("contribute.v2", {"cid": new_cid()}, callback=True)
    assert unknown == {
        "ok": False,
        "error": "Palabre ne connaît pas cette demande. Veuillez recharger la page.",
    }


def test_an_unexpected_failure_is_answered_and_logged_without_the_address(
    app, make_cafe, socket_client, monkeypatch, caplog
):
    code = make_cafe(tables=1)
    browser = app.test_client()
    join(browser, code)
    phone = socket_client(browser, code=code)

    def broken(*args, **kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr("palabre.contributions.accept", broken)
    ack = phone.emit("contribute", {"cid": new_cid(), "kind": "note", "body": "x"}, callback=True)
    assert ack == {"ok": False, "error": "Palabre could not do this. Please try again later."}
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "contribute" in record.getMessage() and "the disk caught fire" in caplog.text
    assert "127.0.0.1" not in caplog.text


def test_an_obstacle_ignores_answer_ids_that_are_not_numbers(instance, sockets, caplog):
    """``"²"`` passed ``str.isdigit`` and then broke ``int()``."""
    facilitator = sockets["facilitator"][1]  # on the forum
    ack = facilitator.emit(
        "method.action",
        {"cid": new_cid(), "name": "obstacle.add", "title": "No interpreter", "answers": ["²"]},
        callback=True,
    )
    assert ack == {"ok": True}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_forms_validate_the_text_as_it_will_be_stored(app, client, auth):
    """A title of bidi and NUL characters only is empty, so it is refused."""
    auth.login()
    page = client.get("/backlog/needs/new")
    client.post(
        "/backlog/needs/new",
        data={"csrf_token": csrf_token(page), "title": "\u202e\x00", "theme": "other"},
    )
    client.post(
        "/backlog/needs/new",
        data={"csrf_token": csrf_token(page), "title": "Night\u2067 buses", "theme": "other"},
    )
    with app.app_context():
        assert db.session.scalars(select(Need.title)).all() == ["Night buses"]
