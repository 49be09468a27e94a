"""Who may use what: every route and every socket event, tried as nine kinds of visitor.

The tables below hold one row per route (endpoint and method) and per socket
event; the tests fail when the app has a route or an event without a row, so
that nothing new is added without saying who may use it.

The visitors, around session A (a world café owned by a facilitator, in its
harvest) and session B (another facilitator's café):

* nobody: a browser with no cookie;
* participant: a phone that joined A, at table 1;
* other_participant: a phone that joined B;
* host: the host of another table of A (table 2);
* other_facilitator: a facilitator who owns B, not A;
* co_facilitator: an external facilitator who took up A's invitation link (a guest);
* co_runner: a facilitator whom A's owner added to its team;
* owner: the facilitator who created A;
* administrator: the instance's administrator.

Routes are tried twice: with the backlog open to facilitators (the default)
and with it closed to them by the administrators (the instance setting).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from palabre import HOST, access, printing, settings
from palabre.auth import close_archived_sessions_sockets, close_revoked_sockets
from palabre.database import write_transaction
from palabre.extensions import db, socketio
from palabre.models import (
    AccountRole,
    AuditEntry,
    Contribution,
    Facilitator,
    Invitation,
    Participant,
    RoleLink,
    Session,
    Vote,
)
from palabre.plugin_host import plugin_host
from palabre.settings import FACILITATORS_BACKLOG, save_settings
from palabre.testing.kit import FACILITATOR_EMAIL, FACILITATOR_PASSWORD, csrf_token, new_session

from .conftest import join

PASSWORD = "quiet river stones"

# --- who may use a route ----------------------------------------------------------------

ANYONE = "anyone"
PARTICIPANT = "participant"  # a phone of session A (its hosts included)
STAFF = "staff"  # any signed-in account
FACILITATOR = "facilitator"  # administrators and facilitators, not guests
RUNS = "runs"  # who runs session A: its owner, its co-facilitators, administrators
BACKLOG = "backlog"  # administrators, and facilitators while the backlog is open to them
RUNS_BACKLOG = "runs, uses the backlog"  # who runs A and may use the backlog
OWNER = "owner"  # A's owner and administrators
ADMINISTRATOR = "administrator"
NOBODY = "nobody"  # refused to everyone (an unknown socket event)
CONNECTED = "connected"  # any socket of session A: its phones and who runs it

VISITORS = (
    "nobody",
    "participant",
    "other_participant",
    "host",
    "other_facilitator",
    "co_facilitator",
    "co_runner",
    "owner",
    "administrator",
)
#: Facilitators who are not guests, but not A's owner either.
_OTHER_FACILITATORS = {"other_facilitator", "co_runner"}
ALLOWED = {
    ANYONE: set(VISITORS),
    PARTICIPANT: {"participant", "host"},
    STAFF: {*_OTHER_FACILITATORS, "co_facilitator", "owner", "administrator"},
    FACILITATOR: {*_OTHER_FACILITATORS, "owner", "administrator"},
    RUNS: {"co_facilitator", "co_runner", "owner", "administrator"},
    RUNS_BACKLOG: {"co_runner", "owner", "administrator"},
    BACKLOG: {*_OTHER_FACILITATORS, "owner", "administrator"},
    OWNER: {"owner", "administrator"},
    ADMINISTRATOR: {"administrator"},
    NOBODY: set(),
    CONNECTED: {"participant", "host", "co_facilitator", "co_runner", "owner", "administrator"},
}
#: Who gets in where the administrators closed the backlog to facilitators.
ALLOWED_BACKLOG_CLOSED = {**ALLOWED, BACKLOG: {"administrator"}, RUNS_BACKLOG: {"administrator"}}

#: (endpoint, method) -> who may use it. Every route of the app has a row.
ROUTES = {
    ("static", "GET"): ANYONE,
    ("health.health", "GET"): ANYONE,
    ("forum_theatre.static", "GET"): ANYONE,
    ("mystery_shopping.static", "GET"): ANYONE,
    ("citizen_dialogue.static", "GET"): ANYONE,
    ("citizen_dialogue.reach_csv", "GET"): RUNS,
    ("citizen_dialogue.feedback_csv", "GET"): RUNS,
    ("mystery_shopping.payments", "GET"): RUNS,
    ("mystery_shopping.visits", "GET"): RUNS,
    ("join.home", "GET"): ANYONE,
    ("join.home", "POST"): ANYONE,
    ("join.choose_language", "POST"): ANYONE,
    ("join.join", "GET"): ANYONE,
    ("join.join", "POST"): ANYONE,
    ("join.contribute", "POST"): PARTICIPANT,
    ("join.vote", "POST"): PARTICIPANT,
    ("role_links.take", "GET"): ANYONE,
    ("join.qr_code_svg", "GET"): ANYONE,
    ("join.qr_code_png", "GET"): ANYONE,
    ("auth.login", "GET"): ANYONE,
    ("auth.login", "POST"): ANYONE,
    ("auth.second_factor", "GET"): ANYONE,
    ("auth.second_factor", "POST"): ANYONE,
    ("auth.setup_link", "GET"): ANYONE,
    ("auth.setup", "GET"): ANYONE,
    ("auth.setup", "POST"): ANYONE,
    ("auth.change_password", "GET"): STAFF,
    ("auth.change_password", "POST"): STAFF,
    ("auth.logout", "POST"): ANYONE,
    ("auth.reset_link", "GET"): ANYONE,
    ("auth.reset_password", "GET"): ANYONE,
    ("auth.reset_password", "POST"): ANYONE,
    ("invitations.open_link", "GET"): ANYONE,
    ("invitations.accept", "GET"): ANYONE,
    ("invitations.accept", "POST"): ANYONE,
    ("accounts.account", "GET"): STAFF,
    ("accounts.second_factor", "GET"): STAFF,
    ("accounts.second_factor", "POST"): STAFF,
    ("accounts.second_factor_off", "POST"): STAFF,
    ("accounts.accounts", "GET"): ADMINISTRATOR,
    ("accounts.accounts", "POST"): ADMINISTRATOR,
    ("accounts.change_role", "POST"): ADMINISTRATOR,
    ("accounts.disable", "POST"): ADMINISTRATOR,
    ("accounts.reset_password", "POST"): ADMINISTRATOR,
    ("accounts.audit_log", "GET"): ADMINISTRATOR,
    ("sessions.index", "GET"): STAFF,
    ("sessions.create", "GET"): FACILITATOR,
    ("sessions.create", "POST"): FACILITATOR,
    ("sessions.run", "GET"): RUNS,
    ("sessions.projector", "GET"): RUNS,
    ("sessions.open_session", "POST"): RUNS,
    ("sessions.go_to_phase", "POST"): RUNS,
    ("sessions.extend_timer", "POST"): RUNS,
    ("sessions.hide", "POST"): RUNS,
    ("sessions.transcribe", "POST"): RUNS,
    ("sessions.paper_cards", "GET"): RUNS,
    ("sessions.method_action", "POST"): RUNS,
    ("sessions.edit_details", "GET"): RUNS,
    ("sessions.edit_details", "POST"): RUNS,
    ("sessions.host_cards", "GET"): RUNS,
    ("sessions.close", "GET"): RUNS,
    ("sessions.export", "GET"): RUNS_BACKLOG,
    ("sessions.import_session", "GET"): FACILITATOR,
    ("sessions.import_session", "POST"): FACILITATOR,
    ("sessions.close", "POST"): RUNS,
    ("sessions.reopen", "POST"): RUNS,
    ("sessions.archive", "POST"): RUNS,
    ("role_links.new_link", "POST"): RUNS,
    ("role_links.withdraw", "POST"): RUNS,
    ("role_links.cards", "GET"): RUNS,
    ("settings.edit", "GET"): ADMINISTRATOR,
    ("settings.edit", "POST"): ADMINISTRATOR,
    ("team.index", "GET"): OWNER,
    ("team.add", "POST"): OWNER,
    ("team.remove", "POST"): OWNER,
    ("team.invite", "POST"): OWNER,
    ("team.revoke", "POST"): OWNER,
    ("backlog.index", "GET"): BACKLOG,
    ("backlog.add_need", "POST"): BACKLOG,
    ("backlog.need", "GET"): BACKLOG,
    ("backlog.need", "POST"): BACKLOG,
    ("backlog.merge", "POST"): BACKLOG,
    ("backlog.new_action", "GET"): BACKLOG,
    ("backlog.new_action", "POST"): BACKLOG,
    ("backlog.action", "GET"): BACKLOG,
    ("backlog.action", "POST"): BACKLOG,
    ("backlog.from_session", "GET"): RUNS_BACKLOG,
    ("backlog.from_session", "POST"): RUNS_BACKLOG,
    ("backlog.add_need", "GET"): BACKLOG,
    ("backlog.add_update", "POST"): BACKLOG,
    ("backlog.gaps", "GET"): BACKLOG,
    ("backlog.merge", "GET"): BACKLOG,
    ("backlog.remove_theme", "POST"): BACKLOG,
    ("backlog.themes", "GET"): BACKLOG,
    ("backlog.themes", "POST"): BACKLOG,
    ("backlog.undo", "POST"): BACKLOG,
    ("backlog.find_needs_json", "GET"): BACKLOG,
    ("city.you_said_we_did", "GET"): ANYONE,
    ("policy_cycle.action_plan", "GET"): BACKLOG,
    ("policy_cycle.assessment", "GET"): BACKLOG,
    ("policy_cycle.assessment", "POST"): BACKLOG,
    ("policy_cycle.assessment_pdf", "GET"): BACKLOG,
    ("policy_cycle.exchange", "GET"): BACKLOG,
    ("policy_cycle.export", "GET"): BACKLOG,
    ("policy_cycle.import_csv", "POST"): BACKLOG,
    ("policy_cycle.monitoring_report", "GET"): BACKLOG,
    ("policy_cycle.stakeholder", "GET"): BACKLOG,
    ("policy_cycle.stakeholder", "POST"): BACKLOG,
    ("policy_cycle.stakeholders", "GET"): BACKLOG,
    ("policy_cycle.stakeholders", "POST"): BACKLOG,
    ("printing.report", "GET"): RUNS,
    ("printing.poster", "GET"): RUNS,
    ("printing.job", "GET"): BACKLOG,
    ("printing.job_json", "GET"): BACKLOG,
    ("printing.job_pdf", "GET"): BACKLOG,
}

#: Routes that change who a visitor is (joining makes a participant, signing out a
#: stranger): tried last.
CHANGE_WHO_YOU_ARE = {("join.join", "POST"), ("auth.logout", "POST")}

#: Socket event -> who may send it on a socket of session A. Every event has a row.
EVENTS = {
    "connect": None,  # tried view by view in test_connecting_to_a_session
    "contribute": PARTICIPANT,
    "vote": PARTICIPANT,
    "phase.go": RUNS,
    "timer.extend": RUNS,
    "contribution.hide": RUNS,
    "contribution.transcribe": RUNS,
    "method.action": RUNS,
    "replay": CONNECTED,
    "*": NOBODY,
}
#: View -> who may open a socket of session A with it.
VIEWS = {"participant": PARTICIPANT, "facilitator": RUNS, "projector": RUNS}


# --- the instance -----------------------------------------------------------------------


def sign_in_as(client, email: str, password: str = PASSWORD):
    page = client.get("/auth/login")
    response = client.post(
        "/auth/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 302, f"{email} could not sign in"
    return client


def add_account(app, email: str, role=AccountRole.FACILITATOR) -> int:
    account = Facilitator(email=email, name=email.split("@")[0], role=role)
    account.set_password(PASSWORD)
    with app.app_context(), write_transaction():
        db.session.add(account)
    return account.id


def owned_session(app, owner_id: int, **kwargs) -> tuple[int, str]:
    """A café of ``owner_id`` whose participants choose their table."""
    made = new_session(app, "world_cafe", {"tables": 3, "assignment": "choose"}, **kwargs)
    with app.app_context(), write_transaction():
        db.session.get(Session, made.id).created_by_id = owner_id
    return made.id, made.code


def take_up_invitation(app, owner, session_id: int, email: str):
    """The owner makes an invitation link; a new browser takes it up with a guest account."""
    page = owner.get(f"/sessions/{session_id}/team/")
    owner.post(
        f"/sessions/{session_id}/team/invite",
        data={"csrf_token": csrf_token(page.text), "hours": "6"},
    )
    link = re.search(r'class="invitation-link">([^<]+)<', owner.get(page.request.path).text)
    guest = app.test_client()
    assert guest.get(urlsplit(link.group(1)).path).status_code == 302
    form = guest.get("/invitation/")
    response = guest.post(
        "/invitation/",
        data={
            "csrf_token": csrf_token(form.text),
            "name": "Ilse",
            "email": email,
            "password": PASSWORD,
        },
    )
    assert response.location == f"/sessions/{session_id}", response.text
    return guest


class Instance:
    """Sessions A and B, their people, and one of everything a route's path can name."""

    def __init__(self, app):
        self.app = app
        owner_id = add_account(app, "owner@example.org")
        other_id = add_account(app, "other@example.org")
        co_runner_id = add_account(app, "corunner@example.org")
        self.spare_id = add_account(app, "spare@example.org")
        self.a, self.code = owned_session(app, owner_id, phase=4)  # the harvest
        self.b, self.code_b = owned_session(app, other_id, phase=1)
        owner = sign_in_as(app.test_client(), "owner@example.org")
        administrator = sign_in_as(app.test_client(), FACILITATOR_EMAIL, FACILITATOR_PASSWORD)
        self.people = {
            "nobody": app.test_client(),
            "participant": app.test_client(),
            "other_participant": app.test_client(),
            "host": app.test_client(),
            "other_facilitator": sign_in_as(app.test_client(), "other@example.org"),
            "co_facilitator": take_up_invitation(app, owner, self.a, "ilse@example.org"),
            "co_runner": sign_in_as(app.test_client(), "corunner@example.org"),
            "owner": owner,
            "administrator": administrator,
        }
        team = owner.get(f"/sessions/{self.a}/team/")
        added = owner.post(
            f"/sessions/{self.a}/team/add",
            data={"csrf_token": csrf_token(team.text), "facilitator": str(co_runner_id)},
        )
        assert added.status_code == 302
        join(self.people["participant"], self.code, group="1")
        join(self.people["host"], self.code, group="2")
        join(self.people["other_participant"], self.code_b, group="1")
        with app.app_context(), write_transaction():
            at_table_2 = select(Participant).where(
                Participant.session_id == self.a, Participant.group == "2"
            )
            host = db.session.scalars(at_table_2).one()
            host.role = HOST
        page = f"/j/{self.code}"
        people = self.people["participant"]
        people.post(
            f"{page}/contribute",
            data={
                "csrf_token": csrf_token(people.get(page).text),
                "cid": uuid.uuid4().hex,
                "kind": "insight",
                "body": "Evening classes",
            },
        )
        self.tokens = {name: csrf_token(c.get("/").text) for name, c in self.people.items()}
        with app.app_context():
            self.contribution = db.session.scalar(
                select(Contribution.id).where(Contribution.session_id == self.a)
            )
            self.invitation = db.session.scalar(select(Invitation.id))
            self.link = db.session.scalar(select(RoleLink.id).where(RoleLink.session_id == self.a))
        self.arguments = {
            "session_id": str(self.a),
            "code": self.code,
            "group": "1",
            "slug": "world_cafe",
            "contribution_id": str(self.contribution),
            "need_id": "1",
            "action_id": "1",
            "token": "not-a-token",
            "filename": "live.js",
            "account_id": str(self.spare_id),
            "facilitator_id": str(self.spare_id),
            "invitation_id": str(self.invitation),
            "name": "no.such.action",
            "key": "not-a-key",
            "stakeholder_id": "1",
            "merge_id": "1",
            "what": "needs",
            "kind": "csv",
            "role_name": HOST,
            "link_id": str(self.link),
            "job_id": "no-such-job",
        }

        #: Pages seen with inline styles or scripts: (url, visitor, what was found).
        self.styled = []

    def url(self, rule) -> str:
        return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: self.arguments[m.group(1)], rule.rule)

    def stored(self, model, client_id: str) -> bool:
        with self.app.app_context():
            found = db.session.scalar(select(model.id).where(model.client_id == client_id))
        return found is not None


@pytest.fixture
def instance(app, monkeypatch):
    # Whether a print is allowed is the question here, not how it looks: no WeasyPrint.
    monkeypatch.setattr(printing, "html_to_pdf", lambda html: b"%PDF-1.7 test")
    return Instance(app)


def refused(response) -> bool:
    """Whether the access check stopped the request: 403, or off to sign in first."""
    if response.status_code == 403:
        return True
    return response.status_code == 302 and response.location.startswith("/auth/login?next=")


#: An inline style: a ``style`` attribute or a ``<style>`` block, which the policy refuses.
INLINE_STYLE = re.compile(r"<style[\s>]|<[^>]*\sstyle\s*=", re.IGNORECASE)


#: An inline script: a ``<script>`` without ``src``, an ``on...=`` handler, a ``javascript:`` link.
INLINE_SCRIPT = re.compile(
    r"<script\b(?![^>]*\ssrc\s*=)[^>]*>"
    r"|<[a-z][^>]*\son[a-z]+\s*="
    r"|<[^>]*\s(?:href|src|action|formaction)\s*=\s*[\"']?\s*javascript:",
    re.IGNORECASE,
)


def inline_styles(response) -> list[str]:
    """The inline styles and scripts of an HTML page (none allowed: the policy drops them)."""
    if response.mimetype != "text/html":
        return []
    return [
        match.group(0)[:120]
        for pattern in (INLINE_STYLE, INLINE_SCRIPT)
        for match in pattern.finditer(response.text)
    ]


def try_route(instance, visitor: str, rule, method: str) -> bool:
    """Use ``rule`` as ``visitor``; ``True`` when they got through.

    Every page seen is searched for inline styles and scripts, kept in ``instance.styled``.
    """
    client = instance.people[visitor]
    url = instance.url(rule)
    if method == "GET":
        with client.get(url) as response:
            if styles := inline_styles(response):
                instance.styled.append((url, visitor, styles))
            return not refused(response)
    data = {"csrf_token": instance.tokens[visitor], "cid": uuid.uuid4().hex}
    if rule.endpoint == "join.contribute":
        data.update(kind="insight", body="More evening classes")
        client.post(url, data=data)
        return instance.stored(Contribution, data["cid"])
    if rule.endpoint == "join.vote":
        data.update(contribution=str(instance.contribution))
        client.post(url, data=data)
        return instance.stored(Vote, data["cid"])
    return not refused(client.post(url, data=data))


def test_every_route_has_a_row(app):
    routes = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes - set(ROUTES) == set(), "say in ROUTES who may use these routes"
    assert set(ROUTES) - routes == set(), "ROUTES lists routes the app does not have"


def test_every_socket_event_has_a_row(app):
    assert set(socketio.server.handlers["/"]) == set(EVENTS)


def close_the_backlog_to_facilitators(app, closed: bool = True) -> None:
    with app.app_context():
        save_settings({FACILITATORS_BACKLOG: "" if closed else "1"})


@pytest.mark.parametrize("backlog", ["open to facilitators", "closed to facilitators"])
def test_every_route_lets_in_whom_it_should_and_nobody_else(instance, backlog):
    closed = backlog == "closed to facilitators"
    allowed = ALLOWED_BACKLOG_CLOSED if closed else ALLOWED
    rules = {rule.endpoint: rule for rule in instance.app.url_map.iter_rules()}
    wrong = []
    tried = sorted(ROUTES, key=lambda row: row in CHANGE_WHO_YOU_ARE)
    for endpoint, method in tried:
        for visitor in VISITORS:
            # The settings form, posted empty by the administrator, unticks the box: tick it again.
            close_the_backlog_to_facilitators(instance.app, closed)
            got_in = try_route(instance, visitor, rules[endpoint], method)
            if got_in != (visitor in allowed[ROUTES[endpoint, method]]):
                wrong.append((method, endpoint, visitor, "got in" if got_in else "refused"))
    assert wrong == [], "\n".join(map(str, wrong))
    assert instance.styled == [], (
        "no inline style nor script: the Content-Security-Policy refuses them"
    )


def test_every_post_without_its_csrf_token_is_refused(instance):
    """A forged form from another site carries the cookie but not the page's token."""
    rules = {rule.endpoint: rule for rule in instance.app.url_map.iter_rules()}
    administrator, participant = instance.people["administrator"], instance.people["participant"]
    with instance.app.app_context():
        entries_before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    accepted = []
    for endpoint, method in ROUTES:
        if method != "POST":
            continue
        url = instance.url(rules[endpoint])
        for visitor in (administrator, participant):
            data = {"cid": uuid.uuid4().hex, "kind": "insight", "body": "Forged", "title": "Forged"}
            answer = visitor.post(url, data=data)
            if answer.status_code != 400:
                accepted.append((endpoint, answer.status_code))
    assert accepted == [], accepted
    with instance.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == entries_before


def test_the_backlog_closed_to_facilitators_leaves_no_way_in_nor_link(instance):
    """Pages link to the backlog only for who may open it; the public page stays public."""
    close_the_backlog_to_facilitators(instance.app)
    owner = instance.people["owner"]
    for page in ("/sessions/", f"/sessions/{instance.a}"):
        text = owner.get(page).text
        assert "/backlog/" not in text, page
    assert "/backlog/" in instance.people["administrator"].get(f"/sessions/{instance.a}").text
    assert instance.people["nobody"].get("/city/").status_code == 200
    close_the_backlog_to_facilitators(instance.app, closed=False)
    assert "/backlog/" in owner.get(f"/sessions/{instance.a}").text


def connect(instance, visitor: str, view: str, code: str | None = None):
    return socketio.test_client(
        instance.app,
        flask_test_client=instance.people[visitor],
        auth={"session": code or instance.code, "view": view},
    )


def test_connecting_to_a_session(instance):
    wrong = []
    for view, level in VIEWS.items():
        for visitor in VISITORS:
            sock = connect(instance, visitor, view)
            if sock.is_connected() != (visitor in ALLOWED[level]):
                wrong.append((view, visitor, sock.is_connected()))
            if sock.is_connected():
                sock.disconnect()
    assert wrong == [], "\n".join(map(str, wrong))


EXAMPLES = {
    "contribute": {"kind": "insight", "body": "Childcare during classes"},
    "vote": {"contribution": None},
    "phase.go": {"index": 4},
    "timer.extend": {"minutes": 1},
    "contribution.hide": {"id": None, "hidden": False},
    "contribution.transcribe": {"kind": "insight", "body": "From paper", "group": "1"},
    "method.action": {"name": "no.such.action"},
    "replay": {"after": 0},
    "no.such.event": {},
}
NOT_YOURS = ("You are not part of this session.", "Only a facilitator can do this.")


def test_every_socket_event_answers_whom_it_should_and_refuses_the_others(instance):
    """Each visitor opens the socket they can on session A (facilitator, else participant)."""
    wrong = []
    for visitor in VISITORS:
        sock = connect(instance, visitor, "facilitator")
        if not sock.is_connected():
            sock = connect(instance, visitor, "participant")
        for event, level in EVENTS.items():
            if level is None:
                continue
            sent = event if event != "*" else "no.such.event"
            payload = {"cid": uuid.uuid4().hex, **EXAMPLES[sent]}
            for key in ("contribution", "id"):
                if key in payload:
                    payload[key] = instance.contribution
            if sock.is_connected():
                ack = sock.emit(sent, payload, callback=True)
                answered = ack.get("ok") or ack.get("error") not in NOT_YOURS
                got_in = answered and sent != "no.such.event"
            else:
                got_in = False  # no socket on A, so nothing to send A
            if got_in != (visitor in ALLOWED[level]):
                wrong.append((event, visitor, "got in" if got_in else "refused"))
        if sock.is_connected():
            sock.disconnect()
    assert wrong == [], "\n".join(map(str, wrong))


# --- the stories behind the table ---------------------------------------------------------


def test_each_facilitator_lists_only_the_sessions_they_run(instance):
    def listed(visitor):
        page = instance.people[visitor].get("/sessions/?archived=1").text
        return {code for code in (instance.code, instance.code_b) if code in page}

    assert listed("owner") == {instance.code}
    assert listed("other_facilitator") == {instance.code_b}
    assert listed("co_facilitator") == {instance.code}
    assert listed("co_runner") == {instance.code}
    assert listed("administrator") == {instance.code, instance.code_b}


def test_an_invitation_link_works_once_and_for_one_session_only(instance):
    app = instance.app
    with app.app_context():
        used = db.session.get(Invitation, instance.invitation)
        assert used.used_by_id is not None
    guest = instance.people["co_facilitator"]
    assert guest.get(f"/sessions/{instance.b}").status_code == 403
    assert guest.get("/sessions/new/world_cafe").status_code == 403
    assert guest.get("/backlog/").status_code == 403


def new_invitation_link(instance) -> tuple[int, str]:
    """The owner makes an invitation link to A; its id and path."""
    owner = instance.people["owner"]
    page = owner.get(f"/sessions/{instance.a}/team/")
    owner.post(
        f"/sessions/{instance.a}/team/invite",
        data={"csrf_token": csrf_token(page.text), "hours": "6"},
    )
    link = re.search(r'class="invitation-link">([^<]+)<', owner.get(page.request.path).text)
    with instance.app.app_context():
        newest = db.session.scalar(select(Invitation.id).order_by(Invitation.id.desc()))
    return newest, urlsplit(link.group(1)).path


def test_an_invitation_link_not_taken_up_in_time_or_cancelled_opens_nothing(instance):
    from palabre.models import utcnow

    owner = instance.people["owner"]
    late_id, late = new_invitation_link(instance)
    with instance.app.app_context(), write_transaction():
        db.session.get(Invitation, late_id).expires_at = utcnow()
    assert instance.app.test_client().get(late).status_code == 404
    # Cancelled by the owner while a stranger had its form open: the form takes nothing.
    cancelled_id, cancelled = new_invitation_link(instance)
    stranger = instance.app.test_client()
    assert stranger.get(cancelled).status_code == 302
    form = stranger.get("/invitation/")
    assert form.status_code == 200
    page = owner.get(f"/sessions/{instance.a}/team/")
    owner.post(
        f"/sessions/{instance.a}/team/invitations/{cancelled_id}/revoke",
        data={"csrf_token": csrf_token(page.text)},
    )
    taken = stranger.post(
        "/invitation/",
        data={
            "csrf_token": csrf_token(form.text),
            "name": "Mallory",
            "email": "mallory@example.org",
            "password": PASSWORD,
        },
    )
    assert taken.status_code == 404
    assert stranger.get(f"/sessions/{instance.a}").status_code != 200
    with instance.app.app_context():
        assert (
            db.session.scalar(select(Facilitator).where(Facilitator.email == "mallory@example.org"))
            is None
        )


def test_a_guests_access_ends_with_the_invitation(instance):
    from palabre.models import CoFacilitator, utcnow

    guest = instance.people["co_facilitator"]
    sock = connect(instance, "co_facilitator", "facilitator")
    assert sock.is_connected()
    with instance.app.app_context(), write_transaction():
        for row in db.session.scalars(select(CoFacilitator)):
            row.expires_at = utcnow()
    assert guest.get(f"/sessions/{instance.a}").status_code == 403
    ack = sock.emit("timer.extend", {"cid": uuid.uuid4().hex, "minutes": 1}, callback=True)
    assert ack == {"ok": False, "error": "Only a facilitator can do this."}
    replay = sock.emit("replay", {"after": 0}, callback=True)
    assert replay == {"ok": False, "error": "Only a facilitator can do this."}
    # The sweep every worker runs closes the screen, which would otherwise go on receiving.
    with instance.app.app_context():
        assert close_revoked_sockets() == 1
    assert not sock.is_connected()


def test_removing_a_co_facilitator_closes_their_screens_of_the_session(instance):
    owner = instance.people["owner"]
    page = owner.get(f"/sessions/{instance.a}/team/")
    owner.post(
        f"/sessions/{instance.a}/team/add",
        data={"csrf_token": csrf_token(page.text), "facilitator": str(instance.spare_id)},
    )
    spare = sign_in_as(instance.app.test_client(), "spare@example.org")
    screen = socketio.test_client(
        instance.app, flask_test_client=spare, auth={"session": instance.code, "view": "projector"}
    )
    assert screen.is_connected()
    owner.post(
        f"/sessions/{instance.a}/team/{instance.spare_id}/remove",
        data={"csrf_token": csrf_token(page.text)},
    )
    assert not screen.is_connected()
    assert spare.get("/sessions/").status_code == 200, "still signed in: only the screen closed"


def test_removing_a_guest_closes_their_screens(instance):
    guest_sock = connect(instance, "co_facilitator", "projector")
    assert guest_sock.is_connected()
    owner = instance.people["owner"]
    with instance.app.app_context():
        guest_id = db.session.scalar(
            select(Facilitator.id).where(Facilitator.email == "ilse@example.org")
        )
    page = owner.get(f"/sessions/{instance.a}/team/")
    assert "Ilse" in page.text
    owner.post(
        f"/sessions/{instance.a}/team/{guest_id}/remove", data={"csrf_token": csrf_token(page.text)}
    )
    assert not guest_sock.is_connected()
    assert instance.people["co_facilitator"].get(f"/sessions/{instance.a}").status_code != 200


def test_a_phone_connected_before_the_archive_replays_nothing(instance):
    phone = connect(instance, "participant", "participant")
    assert phone.emit("replay", {"after": 0}, callback=True)["ok"]
    with instance.app.app_context(), write_transaction():
        db.session.get(Session, instance.a).status = "archived"
    refused_replay = phone.emit("replay", {"after": 0}, callback=True)
    assert refused_replay == {"ok": False, "error": "You are not part of this session."}


def test_sockets_open_when_the_session_is_archived_can_do_nothing_more(instance):
    """Before the sweep closes a screen, and while a phone stays connected: every event refused."""
    phone = connect(instance, "participant", "participant")
    screen = connect(instance, "owner", "facilitator")
    assert phone.is_connected() and screen.is_connected()
    with instance.app.app_context(), write_transaction():
        db.session.get(Session, instance.a).status = "archived"
    answers = {}
    for event, example in EXAMPLES.items():
        payload = {"cid": uuid.uuid4().hex, **example}
        for key in ("contribution", "id"):
            if key in payload:
                payload[key] = instance.contribution
        for name, sock in (("phone", phone), ("screen", screen)):
            answers[event, name] = sock.emit(event, payload, callback=True)
    assert [key for key, ack in answers.items() if ack.get("ok")] == []
    with instance.app.app_context():
        assert db.session.get(Session, instance.a).phase_index == 4, "the archive was changed"


def test_archiving_a_session_reloads_and_closes_its_phones_and_screens(instance):
    """They would otherwise hold the server's connections for nothing: every event is refused."""
    phone = connect(instance, "participant", "participant")
    screen = connect(instance, "owner", "facilitator")
    elsewhere = connect(instance, "other_participant", "participant", instance.code_b)
    assert phone.is_connected() and screen.is_connected() and elsewhere.is_connected()
    for sock in (phone, screen, elsewhere):
        sock.get_received()
    owner = instance.people["owner"]
    with instance.app.app_context(), write_transaction():
        db.session.get(Session, instance.a).status = "closed"
    page = owner.get(f"/sessions/{instance.a}")
    archived = owner.post(
        f"/sessions/{instance.a}/archive", data={"csrf_token": csrf_token(page.text)}
    )
    assert archived.status_code == 302
    for sock in (phone, screen):
        assert not sock.is_connected()
        # live.js reloads on resync, sent first: the page of an archived session is read-only.
        assert [message["name"] for message in sock.queue] == ["resync"]
    assert elsewhere.is_connected() and elsewhere.get_received() == []


def test_the_sweep_closes_sockets_of_a_session_another_process_archived(instance):
    phone = connect(instance, "participant", "participant")
    projector = connect(instance, "owner", "projector")
    elsewhere = connect(instance, "other_participant", "participant", instance.code_b)
    with instance.app.app_context():
        assert close_archived_sessions_sockets() == 0, "a session still running was closed"
        with write_transaction():  # as another worker process would
            db.session.get(Session, instance.a).status = "archived"
        assert close_archived_sessions_sockets() == 2
    assert not phone.is_connected() and not projector.is_connected()
    assert elsewhere.is_connected()


def test_an_archived_sessions_phones_and_screens_cannot_connect(instance):
    with instance.app.app_context(), write_transaction():
        db.session.get(Session, instance.a).status = "archived"
    for visitor, view in (("participant", "participant"), ("owner", "facilitator")):
        assert not connect(instance, visitor, view).is_connected()
    # Its phones keep a read-only page with what became of their ideas (issue 9): nothing to send.
    page = instance.people["host"].get(f"/j/{instance.code}")
    assert page.status_code == 200 and "/contribute" not in page.text
    assert "palabreLive" not in page.text and "live.js" not in page.text


def test_the_audit_log_says_who_did_what_without_what_participants_wrote(instance):
    owner = instance.people["owner"]
    sock = connect(instance, "owner", "facilitator")
    secret_note = "My neighbour Farid has no papers"
    payload = {"cid": uuid.uuid4().hex, "kind": "insight", "body": secret_note, "group": "1"}
    assert sock.emit("contribution.transcribe", payload, callback=True)["ok"]
    assert sock.emit("timer.extend", {"cid": uuid.uuid4().hex, "minutes": 2}, callback=True)["ok"]
    page = owner.get(f"/sessions/{instance.a}")
    owner.post(f"/sessions/{instance.a}/archive", data={"csrf_token": csrf_token(page.text)})
    administrator = instance.people["administrator"]
    log = administrator.get(f"/admin/audit?session={instance.a}")
    assert log.status_code == 200
    for action in ("contribution.transcribe", "timer.extend", "sessions.archive", "team.invite"):
        assert action in log.text
    assert secret_note not in log.text
    assert "owner" in log.text and "Ilse" in log.text
    assert owner.get("/admin/audit").status_code == 403


def audit_rows(page: str) -> list[str]:
    """The audit log page's entries, each row's HTML."""
    return re.findall(r'<tr data-entry="\d+">(.*?)</tr>', page, re.S)


def test_the_audit_log_says_in_words_what_was_done_in_the_readers_language(instance):
    """Each entry says what was done in words, its code and detail kept after it, left to right."""
    owner = instance.people["owner"]
    sock = connect(instance, "owner", "facilitator")
    assert sock.emit("phase.go", {"cid": uuid.uuid4().hex, "index": 3}, callback=True)["ok"]
    assert owner.get(f"/print/sessions/{instance.a}/report.pdf").status_code == 200
    # Signing in and the owner's adding a co-runner to A's team were done by the instance.
    done = {
        "auth.login": {"en": "Signed in", "fr": "S’est connecté·e"},
        "team.add": {"en": "Added a co-facilitator", "fr": "A ajouté un·e co-animateur·rice"},
        "phase.go": {
            "en": "Moved the session to another part",
            "fr": "A fait passer la séance à une autre partie",
        },
        "printing.report": {
            "en": "Printed the session report",
            "fr": "A imprimé le rapport de la séance",
        },
    }
    administrator = instance.people["administrator"]
    for language in ("en", "fr"):
        page = administrator.get("/admin/audit", headers={"Accept-Language": language})
        assert f'<html lang="{language}"' in page.text
        rows = audit_rows(page.text)
        for code, phrases in done.items():
            row = next(row for row in rows if f"<code>{code}</code>" in row)
            assert f'<span class="audit-phrase">{phrases[language]}</span>' in row, (code, row)
            assert '<bdi dir="ltr"><code>' in row, "the code reads left to right"
    report_row = next(row for row in rows if "<code>printing.report</code>" in row)
    assert f"<small>file=palabre-report-{instance.code}.pdf</small>" in report_row


def test_every_action_the_audit_log_can_record_has_a_phrase(instance):
    """Every checked staff post, facilitator socket event and named entry says what it did.

    A code without a phrase would show as a bare endpoint to the administrators; a
    phrase whose code nothing writes any more would be a stale one.
    """
    app = instance.app
    guarded_posts = set()
    for rule in app.url_map.iter_rules():
        blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
        checked = getattr(app.view_functions[rule.endpoint], "palabre_access", None) or getattr(
            blueprint, "palabre_access", None
        )
        if "POST" in rule.methods and checked:
            guarded_posts.add(rule.endpoint)
    facilitator_events = {event for event, level in EVENTS.items() if level == RUNS}
    named = {
        code
        for module in Path(access.__file__).parent.glob("*.py")
        for code in re.findall(r'access\.audit\(\s*"([\w.]+)"', module.read_text())
    }
    assert {"auth.login", "auth.reset_password", "invitations.accept"} <= named
    recorded = guarded_posts | facilitator_events | named
    with app.test_request_context():
        missing = sorted(code for code in recorded if access.audit_phrase(code) is None)
        assert missing == [], "give these a phrase in palabre.access.AUDIT_PHRASES"
        # The downloads, printed PDFs and exports, each written by who took it.
        downloads = {
            "printing.report",
            "printing.poster",
            "printing.job_pdf",
            "sessions.host_cards",
            "sessions.paper_cards",
            "sessions.export",
            "role_links.cards",
            "join.qr_code_png",
            "policy_cycle.action_plan",
            "policy_cycle.monitoring_report",
            "policy_cycle.assessment_pdf",
            "policy_cycle.export",
            "citizen_dialogue.reach_csv",
            "citizen_dialogue.feedback_csv",
            "mystery_shopping.payments",
        }
        assert [code for code in sorted(downloads) if access.audit_phrase(code) is None] == []
        endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
        stale = set(access.AUDIT_PHRASES) - endpoints - set(EVENTS) - named
        assert stale == set(), "phrases for codes nothing writes"
        assert access.audit_phrase("some_plugin.its_own_route") is None, "shown as its code"


def test_every_action_of_every_built_in_method_says_what_it_did(app):
    """Each facilitator action of a built-in method is said by a phrase of its own.

    The phrase is looked up in the method of the entry's session, whether the action came
    by socket or by form; a phrase that names neither one of the method's actions nor a
    route would be a stale one.
    """
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    with app.test_request_context():
        host = plugin_host()
        generic = str(access.AUDIT_PHRASES["method.action"])
        built_in = [
            slug for plugin in host.loaded if plugin.source == "built-in" for slug in plugin.methods
        ]
        assert {"forum_theatre", "citizen_dialogue", "dialogue_meeting", "mystery_shopping"} <= set(
            built_in
        )
        for slug in built_in:
            method = host.methods[slug]
            said = {}
            for name in method.facilitator_actions:
                for code in ("method.action", "sessions.method_action"):
                    phrase = access.audit_phrase(code, {"name": name}, Session(method=slug))
                    said[name] = str(phrase)
                    assert said[name] != generic, f"give {slug}'s {name} a phrase in audit_phrases"
            assert len(set(said.values())) == len(said), f"{slug}: two actions said alike"
            stale = set(method.audit_phrases) - set(method.facilitator_actions) - endpoints
            assert stale == set(), f"{slug}: phrases for nothing it does"
        # An action nobody named, a method no longer installed, no session: the generic phrase.
        for detail, session in (
            ({"name": "no.such.action"}, Session(method="forum_theatre")),
            ({"name": "queue.call"}, Session(method="no_such_method")),
            ({"name": "queue.call"}, None),
            ({"name": ["queue.call"]}, Session(method="forum_theatre")),
        ):
            assert str(access.audit_phrase("method.action", detail, session)) == generic


def test_the_audit_log_says_which_tool_of_its_method_a_facilitator_used(instance):
    """One action of each method with actions, by form or by socket, in the reader's language."""
    app, administrator = instance.app, instance.people["administrator"]
    token = instance.tokens["administrator"]

    def act(session_id: int, name: str, **data):
        answer = administrator.post(
            f"/sessions/{session_id}/actions/{name}", data={"csrf_token": token, **data}
        )
        assert answer.status_code == 302
        refusal = re.search(
            r'class="flash flash-error" role="alert">([^<]+)<',
            administrator.get(answer.location).text,
        )
        assert refusal is None, f"{name} was refused: {refusal.group(1)}"

    dialogue = new_session(app, "citizen_dialogue", title="Dialogue")
    act(dialogue.id, "theme.create", **{"name-en": "Housing"})
    with app.app_context():
        theme = db.session.scalar(
            select(Contribution.id).where(
                Contribution.session_id == dialogue.id, Contribution.kind == "theme"
            )
        )
    act(
        dialogue.id,
        "meeting.schedule",
        starts_at="2026-12-03T18:30",
        venue="Library",
        themes=str(theme),
    )
    with app.app_context():
        meeting = db.session.scalar(select(Session.id).where(Session.parent_id == dialogue.id))
    act(meeting, "meeting.themes", themes=str(theme))
    audit = new_session(app, "mystery_shopping", title="Audit")
    act(audit.id, "service.save", **{"name-en": "Town hall"})
    theatre = new_session(app, "forum_theatre", title="Theatre")
    sock = connect(instance, "administrator", "facilitator", theatre.code)
    done = sock.emit(
        "method.action",
        {"cid": uuid.uuid4().hex, "name": "obstacle.add", "title": "No interpreter"},
        callback=True,
    )
    assert done["ok"], done
    said = {
        "theme.create": {"en": "Added a theme", "fr": "A ajouté un thème"},
        "meeting.themes": {
            "en": "Chose the meeting’s themes",
            "fr": "A choisi les thèmes de la rencontre",
        },
        "service.save": {
            "en": "Added or changed a service to audit",
            "fr": "A ajouté ou modifié un service à auditer",
        },
        "obstacle.add": {
            "en": "Grouped answers into an obstacle",
            "fr": "A regroupé des réponses en un obstacle",
        },
    }
    for language in ("en", "fr"):
        page = administrator.get("/admin/audit", headers={"Accept-Language": language})
        rows = audit_rows(page.text)
        for name, phrases in said.items():
            row = next(row for row in rows if f"<small>name={name}</small>" in row)
            assert f'<span class="audit-phrase">{phrases[language]}</span>' in row, (name, row)
        socket_row = next(row for row in rows if "<small>name=obstacle.add</small>" in row)
        assert "<code>method.action</code>" in socket_row


def test_an_entry_says_whether_it_hid_or_showed_again_disabled_or_enabled(instance):
    owner, administrator = instance.people["owner"], instance.people["administrator"]
    hide = f"/sessions/{instance.a}/contributions/{instance.contribution}/hide"
    for hidden in ("1", "0"):
        owner.post(hide, data={"csrf_token": instance.tokens["owner"], "hidden": hidden})
    disable = f"/admin/accounts/{instance.spare_id}/disable"
    for enable in ("0", "1"):
        token = instance.tokens["administrator"]
        administrator.post(disable, data={"csrf_token": token, "enable": enable})
    rows = audit_rows(administrator.get("/admin/audit").text)
    said = [re.search(r'class="audit-phrase">([^<]+)<', row).group(1) for row in rows[:4]]
    assert said == [
        "Enabled an account again",
        "Disabled an account",
        "Showed a hidden contribution again",
        "Hid a contribution",
    ]
    with instance.app.test_request_context():
        shown_again = access.audit_phrase("contribution.hide", {"id": 4, "hidden": False})
        assert shown_again == "Showed a hidden contribution again", "the socket's event too"


def test_the_audit_log_says_which_account_an_administrator_changed_and_how(instance):
    administrator = instance.people["administrator"]
    page = administrator.get("/admin/accounts")
    token = csrf_token(page.text)
    administrator.post(
        "/admin/accounts",
        data={
            "csrf_token": token,
            "name": "Noor",
            "email": "noor@example.org",
            "role": AccountRole.FACILITATOR,
            "password": PASSWORD,
        },
    )
    spare = instance.spare_id
    administrator.post(
        f"/admin/accounts/{spare}/role",
        data={"csrf_token": token, "role": AccountRole.ADMINISTRATOR},
    )
    administrator.post(f"/admin/accounts/{spare}/disable", data={"csrf_token": token})
    with instance.app.app_context():
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        logged = [(entry.action, entry.detail) for entry in entries][-3:]
    assert logged == [
        ("accounts.accounts", {"email": "noor@example.org", "role": AccountRole.FACILITATOR}),
        (
            "accounts.change_role",
            {"account_id": spare, "email": "spare@example.org", "role": "administrator"},
        ),
        (
            "accounts.disable",
            {"account_id": spare, "email": "spare@example.org", "enabled": False},
        ),
    ]


def test_the_audit_log_goes_back_page_by_page_to_its_first_entry(instance, monkeypatch):
    from palabre import accounts

    monkeypatch.setattr(accounts, "AUDIT_PAGE", 2)
    with instance.app.app_context():
        everything = db.session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()
        of_a = db.session.scalars(
            select(AuditEntry.id).where(AuditEntry.session_id == instance.a)
        ).all()
    assert len(everything) > 2 and len(of_a) > 2, "too few entries to need pages"
    administrator = instance.people["administrator"]
    for first_page, ids in (
        ("/admin/audit", everything),
        (f"/admin/audit?session={instance.a}", of_a),
    ):
        seen, url = [], first_page
        while url:
            page = administrator.get(url)
            assert page.status_code == 200
            seen += [int(n) for n in re.findall(r'<tr data-entry="(\d+)"', page.text)]
            found = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else None
        assert seen == sorted(ids, reverse=True), first_page
    beyond = administrator.get("/admin/audit?page=999")
    assert beyond.status_code == 200 and 'rel="prev"' in beyond.text


# --- headers: inline styles and frames ----------------------------------------------------


def test_no_page_may_use_inline_styles_nor_be_framed_by_default(instance):
    for visitor, page in (("nobody", "/"), ("owner", f"/sessions/{instance.a}/projector")):
        response = instance.people[visitor].get(page)
        policy = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "style-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"


def save_frame_ancestors(instance, text: str):
    administrator = instance.people["administrator"]
    page = administrator.get("/settings/")
    return administrator.post(
        "/settings/",
        data={
            "csrf_token": csrf_token(page.text),
            "facilitators_backlog": "y",
            "projector_frame_ancestors": text,
        },
    )


def test_the_administrators_let_named_sites_frame_the_projector_and_nothing_else(instance):
    saved = save_frame_ancestors(instance, "https://Slides.Example.org/\nhttp://localhost:8080")
    assert saved.status_code == 302
    projector = instance.people["owner"].get(f"/sessions/{instance.a}/projector")
    policy = projector.headers["Content-Security-Policy"]
    assert "frame-ancestors https://slides.example.org http://localhost:8080;" in policy + ";"
    assert "X-Frame-Options" not in projector.headers  # it cannot name sites
    for page in (f"/sessions/{instance.a}", "/settings/", "/"):
        response = instance.people["administrator"].get(page)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], page
    # Refused to whoever does not run the session, framed or not.
    assert refused(instance.people["other_facilitator"].get(f"/sessions/{instance.a}/projector"))


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "'self'",
        "https://a.example/path",
        "javascript:alert(1)",
        "https://a.example;script-src",
    ],
)
def test_a_frame_ancestor_must_be_a_sites_address(instance, entry):
    refused_form = save_frame_ancestors(instance, f"https://ok.example\n{entry}")
    assert refused_form.status_code == 400
    assert "is not a site&#39;s address" in refused_form.text
    projector = instance.people["owner"].get(f"/sessions/{instance.a}/projector")
    assert "frame-ancestors 'none'" in projector.headers["Content-Security-Policy"]


def test_prints_and_exports_are_in_the_audit_log_without_participants_data(instance):
    owner = instance.people["owner"]
    downloads = (
        f"/print/sessions/{instance.a}/report.pdf",
        f"/sessions/{instance.a}/host-cards.pdf",
        "/backlog/export/needs.csv",
    )
    for url in downloads:
        assert owner.get(url).status_code == 200, url
    cards = owner.get(f"/sessions/{instance.a}/links/{HOST}/cards")
    assert cards.status_code == 200
    with instance.app.app_context():
        entries = [
            (entry.facilitator.email, entry.action, entry.session_id, entry.detail)
            for entry in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
    printed = [entry for entry in entries if entry[0] == "owner@example.org"][-4:]
    assert printed == [
        (
            "owner@example.org",
            "printing.report",
            instance.a,
            {"file": f"palabre-report-{instance.code}.pdf"},
        ),
        (
            "owner@example.org",
            "sessions.host_cards",
            instance.a,
            {"file": f"palabre-host_cards-{instance.code}.pdf"},
        ),
        (
            "owner@example.org",
            "policy_cycle.export",
            None,
            {"what": "needs", "kind": "csv", "file": printed[2][3]["file"]},
        ),
        ("owner@example.org", "role_links.cards", instance.a, {"role_name": HOST}),
    ]
    log = instance.people["administrator"].get("/admin/audit").text
    assert "printing.report" in log and "Evening classes" not in log


def test_the_frame_ancestors_are_few(instance):
    many = "\n".join(f"https://tool-{n}.example" for n in range(settings.MAX_FRAME_ANCESTORS + 1))
    answer = save_frame_ancestors(instance, many)
    assert answer.status_code == 400 and "List at most" in answer.text
