"""Personal links: a table's host link opens that table only; a withdrawn link ends the role."""

from __future__ import annotations

import pytest
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from palabre import HOST, ContributionKind, Method, Phase, Role, contribute, hookimpl
from palabre.extensions import db
from palabre.models import Contribution, Participant, RoleLink, Session, Status
from palabre.testing import new_phone, role_link
from palabre.testing.kit import csrf_token


class Interviews(Method):
    """A method whose interviews only community connectors record."""

    slug = "interviews"
    title = "Interviews"
    contribution_kinds = {"answer": ContributionKind("answer", _l("Answer"), grouped=False)}
    roles = {"connector": Role("connector", _l("Community connector"), code_prefix="C")}

    def phases(self, config):
        return [
            Phase("interviews:listening", "Listening", frozenset({contribute("answer")})),
            Phase("interviews:closed", "Closed"),
        ]

    def check_contribution(self, session, participant, kind, data):
        if participant.role != "connector":
            return "Only a community connector records interviews."
        return None


class InterviewsPlugin:
    @hookimpl
    def register_methods(self):
        return [Interviews]


@pytest.fixture
def palabre_plugins(tmp_path):
    folder = tmp_path / "templates" / "interviews"
    folder.mkdir(parents=True)
    for view in ("participant", "projector", "report"):
        (folder / f"{view}.html").write_text("{{ session.title }}")
    (folder / "facilitator.html").write_text('{% extends "method/facilitator.html" %}')
    Interviews.template_folder = tmp_path / "templates"
    return (InterviewsPlugin(),)


@pytest.fixture
def palabre_config():
    return {"BASE_URL": "http://192.0.2.10:5000"}


def participant_of(app, code: str) -> list[Participant]:
    with app.app_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        return list(db.session.scalars(select(Participant).where(Participant.session == session)))


def links(app, code: str) -> list[RoleLink]:
    with app.app_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        return list(db.session.scalars(select(RoleLink).where(RoleLink.session_id == session.id)))


def test_each_cafe_table_gets_its_own_host_link_with_the_session(palabre_app, make_session):
    cafe = make_session("world_cafe", {"tables": 3}, phase=0)
    made = links(palabre_app, cafe.code)
    assert sorted((link.role, link.group) for link in made) == [
        (HOST, "1"),
        (HOST, "2"),
        (HOST, "3"),
    ]
    assert len({link.key for link in made}) == 3

    phone = palabre_app.test_client()
    phone.get(role_link(palabre_app, cafe.code, HOST, "2"))
    (host,) = participant_of(palabre_app, cafe.code)
    assert host.is_host and host.group == "2"


def test_a_facilitator_sees_each_link_as_a_qr_code_on_the_network_address(
    palabre_app, make_session, facilitator_client
):
    cafe = make_session("world_cafe", {"tables": 2}, phase=0)
    page = facilitator_client.get(f"/sessions/{cafe.id}").text
    path = role_link(palabre_app, cafe.code, HOST, "1")
    assert f'href="http://192.0.2.10:5000{path}"' in page
    assert page.count('class="role-link-qr"') == 2 and "<svg" in page
    assert "localhost" not in page

    cards = facilitator_client.get(f"/sessions/{cafe.id}/links/{HOST}/cards")
    assert cards.status_code == 200 and cards.text.count('class="role-card"') == 2
    assert f"http://192.0.2.10:5000{path}" in cards.text
    assert (
        palabre_app.test_client().get(f"/sessions/{cafe.id}/links/{HOST}/cards").status_code == 302
    )


def test_replacing_a_table_link_ends_the_old_one_and_its_phones_role(
    palabre_app, make_session, facilitator_client
):
    cafe = make_session("world_cafe", {"tables": 2}, phase=1)
    old = role_link(palabre_app, cafe.code, HOST, "1")
    phone = new_phone(palabre_app, cafe.code).client
    phone.get(old)
    assert participant_of(palabre_app, cafe.code)[0].is_host

    run = facilitator_client.get(f"/sessions/{cafe.id}")
    token = csrf_token(run.text)
    answer = facilitator_client.post(
        f"/sessions/{cafe.id}/links/{HOST}", data={"csrf_token": token, "group": "1"}
    )
    assert answer.status_code == 302 and answer.location.endswith("#role-links")

    assert not participant_of(palabre_app, cafe.code)[0].is_host
    withdrawn = palabre_app.test_client().get(old)
    assert withdrawn.status_code == 410 and "no longer works" in withdrawn.text
    new = role_link(palabre_app, cafe.code, HOST, "1")
    assert new != old and palabre_app.test_client().get(new).status_code == 302


def test_a_withdrawn_connector_loses_the_role_at_once_and_keeps_what_was_sent(
    palabre_app, make_session, facilitator_client
):
    dialogue = make_session("interviews", phase=0, status=Status.LIVE)
    first = role_link(palabre_app, dialogue.code, "connector")
    phone = new_phone(palabre_app, dialogue.code)
    phone.client.get(first)
    phone.connect()
    assert phone.contribute("answer", "The bus stops at six")["ok"] is True

    # Codes name the holder without naming a person, and are never reused.
    with palabre_app.test_request_context():
        from palabre.database import write_transaction
        from palabre.role_links import issue_role_link

        session = db.session.get(Session, dialogue.id)
        with write_transaction():
            second = issue_role_link(session, "connector")
        assert second.code == "C-02"

    (link,) = [link for link in links(palabre_app, dialogue.code) if link.code == "C-01"]
    token = csrf_token(facilitator_client.get(f"/sessions/{dialogue.id}").text)
    facilitator_client.post(
        f"/sessions/{dialogue.id}/links/{link.id}/withdraw", data={"csrf_token": token}
    )

    refused = phone.contribute("answer", "Sent after the link was withdrawn")
    assert refused["ok"] is False and "connector" in refused["error"]
    with palabre_app.app_context():
        kept = db.session.scalars(select(Contribution.body)).all()
        assert kept == ["The bus stops at six"]
        (holder,) = participant_of(palabre_app, dialogue.code)
        assert holder.role is None and holder.role_link_id == link.id
    page = palabre_app.test_client().get(first)
    assert page.status_code == 410 and "Everything already sent through it is kept" in page.text


def test_links_of_archived_or_closed_sessions_give_no_role(palabre_app, make_session):
    cafe = make_session("world_cafe", {"tables": 2}, phase=1)
    link = role_link(palabre_app, cafe.code, HOST, "1")
    with palabre_app.app_context():
        session = db.session.get(Session, cafe.id)
        session.status = Status.CLOSED
        db.session.commit()
    closed = palabre_app.test_client().get(link)
    assert closed.status_code == 200 and "This session is over" in closed.text
    with palabre_app.app_context():
        db.session.get(Session, cafe.id).status = Status.ARCHIVED
        db.session.commit()
    assert palabre_app.test_client().get(link).status_code == 404
    assert participant_of(palabre_app, cafe.code) == []


def test_a_link_of_one_session_does_not_open_another(palabre_app, make_session):
    one = make_session("world_cafe", {"tables": 2}, phase=1)
    other = make_session("world_cafe", {"tables": 2}, phase=1)
    key = role_link(palabre_app, one.code, HOST, "1").rsplit("/", 1)[1]
    assert palabre_app.test_client().get(f"/j/{other.code}/r/{key}").status_code == 404


def test_a_withdrawn_link_speaks_the_phones_language(palabre_app, make_session):
    cafe = make_session("world_cafe", {"tables": 1}, phase=1)
    link = role_link(palabre_app, cafe.code, HOST, "1")
    with palabre_app.test_request_context():
        from palabre.database import write_transaction
        from palabre.role_links import issue_role_link

        with write_transaction():
            issue_role_link(db.session.get(Session, cafe.id), HOST, "1")
    phone = palabre_app.test_client()
    phone.post("/language", data={"language": "fr", "csrf_token": csrf_token(phone.get("/").text)})
    page = phone.get(link)
    assert page.status_code == 410 and 'lang="fr"' in page.text
    assert "This link no longer works" not in page.text
