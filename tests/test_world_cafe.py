"""The world café method through the app: seating, hosts, rounds, harvest."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import select

from palabre import phases, vote_totals, votes_used
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.models import Contribution, Participant, Session
from palabre.plugins.world_cafe import WorldCafe
from palabre.testing import role_link
from tests.conftest import csrf_token, join, new_cid


def session_by_code(code) -> Session:
    return db.session.scalar(select(Session).where(Session.code == code))


def participants(code) -> list[Participant]:
    return db.session.scalars(
        select(Participant).join(Session).where(Session.code == code).order_by(Participant.id)
    ).all()


def go_to(app, code, index):
    with app.test_request_context():
        phases.go_to(session_by_code(code), index)


def phone(app, code, **kwargs):
    client = app.test_client()
    join(client, code, **kwargs)
    return client


def post_note(client, code, body, kind="note"):
    page = client.get(f"/j/{code}")
    return client.post(
        f"/j/{code}/contribute",
        data={"csrf_token": csrf_token(page), "cid": new_cid(), "kind": kind, "body": body},
        follow_redirects=True,
    )


def test_plan_follows_the_configuration(app):
    with app.test_request_context():
        config = WorldCafe().default_config()
        config["rounds"] = [{"question": "A?"}, {"question": "B?"}]
        plan = WorldCafe().phases(config)
    assert [p.id for p in plan] == [
        "world_cafe:welcome",
        "world_cafe:round",
        "world_cafe:round",
        "world_cafe:harvest",
        "world_cafe:closed",
    ]
    assert [str(p.question) for p in plan[1:3]] == ["A?", "B?"]
    assert plan[1].minutes == 20 and plan[1].number == 1


def test_palabre_seats_everyone_when_the_first_round_starts(app, make_cafe):
    code = make_cafe(status="open", tables=3)
    for _ in range(10):
        phone(app, code)
    with app.app_context():
        assert all(p.group is None for p in participants(code))
    go_to(app, code, 1)
    with app.app_context():
        sizes = Counter(p.group for p in participants(code))
    assert set(sizes) == {"1", "2", "3"} and max(sizes.values()) - min(sizes.values()) <= 1


def test_hosts_stay_and_others_move_between_rounds(app, make_cafe):
    code = make_cafe(status="open", tables=3)
    host = app.test_client()
    assert host.get(role_link(app, code, "host", "2")).status_code == 302
    for _ in range(9):
        phone(app, code)
    go_to(app, code, 1)
    with app.app_context():
        first = {p.id: p.group for p in participants(code)}
    go_to(app, code, 2)
    with app.app_context():
        people = participants(code)
        second = {p.id: p.group for p in people}
        hosts = [p for p in people if p.is_host]
        assert [h.group for h in hosts] == ["2"]
        assert all(p.state["seats"] == {"1": first[p.id], "2": second[p.id]} for p in people)
    movers = [pid for pid in first if pid != hosts[0].id]
    assert any(first[pid] != second[pid] for pid in movers)


def test_participants_choose_their_table_when_configured(app, make_cafe):
    code = make_cafe(status="open", tables=4, assignment="choose")
    page = app.test_client().get(f"/j/{code}")
    assert "Table 4" in page.text
    phone(app, code, group="3")
    go_to(app, code, 1)
    with app.app_context():
        assert [p.group for p in participants(code)] == ["3"]


def test_late_arrival_sits_at_the_emptiest_table(app, make_cafe):
    code = make_cafe(tables=2, assignment="choose")
    phone(app, code, group="1")
    phone(app, code, group="1")
    phone(app, code)
    with app.app_context():
        assert [p.group for p in participants(code)] == ["1", "1", "2"]


def test_host_link_gives_its_table_and_drops_the_key_from_the_address(app, make_cafe):
    code = make_cafe(tables=3)
    client = app.test_client()
    link = role_link(app, code, "host", "3")
    response = client.get(link)
    assert response.status_code == 302 and response.location.endswith(f"/j/{code}")
    page = client.get(f"/j/{code}")
    assert "Table 3" in page.text and "host" in page.text
    assert client.get(f"/j/{code}/r/wrong").status_code == 404


def test_host_summary_is_carried_into_the_next_round(app, make_cafe):
    code = make_cafe(tables=1)
    host = app.test_client()
    host.get(role_link(app, code, "host", "1"))
    guest = phone(app, code)
    post_note(guest, code, "Childcare during language classes")
    refused = post_note(guest, code, "I summarise", kind="summary")
    assert "host writes this" in refused.text
    post_note(host, code, "Table wants childcare and evening classes", kind="summary")
    go_to(app, code, 2)
    guest_page = guest.get(f"/j/{code}").text
    assert "Previous round at this table" in guest_page
    assert "Table wants childcare and evening classes" in guest_page
    host_page = host.get(f"/j/{code}").text
    assert "Childcare during language classes" in host_page  # previous round's notes


def test_plain_form_post_works_without_javascript(app, make_cafe):
    code = make_cafe(tables=1)
    client = phone(app, code)
    page = post_note(client, code, "Interpreters at the town hall")
    assert "Sent. Thank you!" in page.text
    assert "Interpreters at the town hall" in page.text


def test_refused_form_post_keeps_the_text_and_says_why(app, make_cafe):
    code = make_cafe(tables=1)
    client = phone(app, code)
    long_note = "word " * 500
    page = post_note(client, code, long_note)
    assert "2000 characters at most" in page.text
    assert long_note.strip() in page.text  # kept in the form, not lost
    with app.app_context():
        assert db.session.scalar(select(Contribution.id)) is None


def test_resubmitted_form_is_stored_once(app, make_cafe):
    code = make_cafe(tables=1)
    client = phone(app, code)
    page = client.get(f"/j/{code}")
    data = {"csrf_token": csrf_token(page), "cid": new_cid(), "kind": "note", "body": "Once"}
    client.post(f"/j/{code}/contribute", data=data)
    client.post(f"/j/{code}/contribute", data=data)
    with app.app_context():
        assert len(db.session.scalars(select(Contribution)).all()) == 1


@pytest.fixture
def harvest(app, make_cafe):
    """A café in its harvest with two insights; returns (code, phone, insight ids)."""
    code = make_cafe(tables=2, assignment="choose", dots=3)
    host = app.test_client()
    host.get(role_link(app, code, "host", "1"))
    voter = phone(app, code, group="2")
    go_to(app, code, 4)
    post_note(host, code, "Housing advice in many languages", kind="insight")
    post_note(voter, code, "A buddy for each newcomer family", kind="insight")
    with app.app_context():
        ids = db.session.scalars(select(Contribution.id).order_by(Contribution.id)).all()
    return code, voter, ids


def vote(client, code, contribution_id, value=1):
    page = client.get(f"/j/{code}")
    return client.post(
        f"/j/{code}/vote",
        data={
            "csrf_token": csrf_token(page),
            "cid": new_cid(),
            "contribution": contribution_id,
            "value": value,
        },
        follow_redirects=True,
    )


def give_buttons(page: str) -> list[str]:
    """The "Give a dot" buttons of a phone's page, as HTML."""
    return re.findall(r"<button[^>]*data-give[^>]*>", page)


def test_dots_are_disabled_at_zero_and_can_be_taken_back(app, harvest, socket_client):
    code, voter, (housing, buddy) = harvest
    for target in (buddy, buddy, housing):
        page = vote(voter, code, target).text
    assert "Dots left: <strong data-dots-left>0</strong>" in page
    assert give_buttons(page) and all("disabled" in b for b in give_buttons(page))
    # Taken back over the socket: the phone hears its dots left and its dots on the insight.
    sock = socket_client(voter, code=code)
    cid = new_cid()
    taken = sock.emit("vote", {"cid": cid, "contribution": buddy, "value": -1}, callback=True)
    assert taken == {"ok": True, "left": 1, "mine": 1, "contribution": buddy}
    # Resent, it is not taken twice.
    again = sock.emit("vote", {"cid": cid, "contribution": buddy, "value": -1}, callback=True)
    assert again == taken
    page = voter.get(f"/j/{code}").text
    assert not any("disabled" in b for b in give_buttons(page))
    # The plain form takes back too, but only a dot this phone gave.
    assert "have no dot on this" not in vote(voter, code, housing, value=-1).text
    assert "have no dot on this" in vote(voter, code, housing, value=-1).text
    assert "cannot vote for this" in vote(voter, code, buddy, value=2).text
    with app.app_context():
        assert vote_totals(session_by_code(code)) == {buddy: 1, housing: 0}
        assert votes_used(participants(code)[-1]) == 1


def test_dots_rank_the_insights(app, harvest):
    code, voter, (housing, buddy) = harvest
    vote(voter, code, buddy)
    vote(voter, code, buddy)
    page = vote(voter, code, housing)
    # By default phones see neither totals nor ranking while voting: no bandwagon.
    assert page.text.index("A buddy for each newcomer family") > page.text.index(
        "Housing advice in many languages"
    )
    assert "All dots:" not in page.text
    with app.app_context(), write_transaction():
        session = session_by_code(code)
        session.config = {**session.config, "hide_totals": False}
    page = voter.get(f"/j/{code}")
    assert page.text.index("A buddy for each newcomer family") < page.text.index(
        "Housing advice in many languages"
    )
    assert "All dots:" in page.text
    refused = vote(voter, code, housing)
    assert "used all your dots" in refused.text
    with app.test_request_context():
        candidates = WorldCafe().backlog_candidates(session_by_code(code))
    assert [(c.title, c.votes) for c in candidates] == [
        ("A buddy for each newcomer family", 2),
        ("Housing advice in many languages", 1),
    ]
    assert candidates[0].contribution_ids == [buddy]


def test_voting_is_refused_outside_the_harvest(app, make_cafe):
    code = make_cafe(tables=1)
    client = phone(app, code)
    post_note(client, code, "a note")
    with app.app_context():
        note_id = db.session.scalar(select(Contribution.id))
    assert "Voting is not open now" in vote(client, code, note_id).text


def test_staff_pages_show_the_session(app, make_cafe, client, auth):
    code = make_cafe(tables=2)
    post_note(phone(app, code), code, "Visible on the big screen")
    auth.login()
    with app.app_context():
        session_id = session_by_code(code).id
    run = client.get(f"/sessions/{session_id}")
    assert run.status_code == 200 and "Visible on the big screen" in run.text
    assert role_link(app, code, "host", "1") in run.text
    projector = client.get(f"/sessions/{session_id}/projector")
    assert projector.status_code == 200
    assert code in projector.text and "<svg" in projector.text
    assert "Visible on the big screen" in projector.text


def test_closed_cafe_shows_participants_what_became_of_their_ideas(app, make_cafe):
    from palabre.backlog import create_need
    from palabre.database import write_transaction
    from palabre.models import Action

    code = make_cafe(tables=1)
    client = phone(app, code)
    go_to(app, code, 5)  # closed
    with app.test_request_context():
        session = session_by_code(code)
        need = create_need("Evening opening hours", session=session)
        with write_transaction():
            db.session.add(
                Action(
                    title="Open the town hall on Thursdays until 8pm",
                    status="planned",
                    needs=[db.session.merge(need)],
                )
            )
    page = client.get(f"/j/{code}").text
    assert "You said, we did" in page
    assert "Evening opening hours" in page
    assert "Open the town hall on Thursdays until 8pm" in page and "Planned" in page


def test_hidden_totals_reach_staff_only(app, harvest, socket_client, client, auth):
    code, voter, (housing, _buddy) = harvest
    phone_socket = socket_client(voter, code=code)
    auth.login()
    staff = socket_client(client, view="facilitator", code=code)
    assert phone_socket.emit("vote", {"cid": new_cid(), "contribution": housing}, callback=True)[
        "ok"
    ]
    heard = lambda sock: [  # noqa: E731
        r for r in sock.get_received() if r["args"][0].get("type") == "votes.changed"
    ]
    assert heard(phone_socket) == []
    assert heard(staff)[0]["args"][0]["data"]["total"] == 1


def test_questions_have_a_real_text_box_per_language(app, client, auth):
    """Phones show each question in their language; no "fr:" line syntax to learn."""
    auth.login()
    form = client.get("/sessions/new/world_cafe")
    assert 'name="config-questions-fr"' in form.text
    assert re.search(r'<textarea[^>]*name="config-questions-ar"[^>]*lang="ar" dir="rtl"', form.text)
    created = client.post(
        "/sessions/new/world_cafe",
        data={
            "csrf_token": csrf_token(form),
            "title": "Café in three languages",
            "languages": ["en", "fr", "ar"],
            "config-tables": "1",
            "config-questions-en": "What helps?\nWhat is hard?",
            "config-questions-fr": "Qu’est-ce qui aide ?\n\nQu’est-ce qui est dur ?",
            "config-questions-ar": "ما الذي يساعد؟\nما الصعب؟",
            "config-round_minutes": "20",
            "config-assignment": "assign",
            "config-dots": "3",
        },
    )
    assert created.status_code == 302, re.findall(r'role="alert">([^<]*)', created.text)
    with app.app_context():
        session = db.session.scalar(select(Session))
        assert session.config["rounds"] == [
            {
                "question": {
                    "en": "What helps?",
                    "fr": "Qu’est-ce qui aide ?",
                    "ar": "ما الذي يساعد؟",
                }
            },
            {
                "question": {
                    "en": "What is hard?",
                    "fr": "Qu’est-ce qui est dur ?",
                    "ar": "ما الصعب؟",
                }
            },
        ]
        code = session.code
    go_to(app, code, 0)
    go_to(app, code, 1)
    for language, question in (
        ("fr", "Qu’est-ce qui aide ?"),
        ("ar", "ما الذي يساعد؟"),
        ("en", "What helps?"),
    ):
        page = phone(app, code, language=language).get(f"/j/{code}").text
        # Marked with its own language, which "Listen" reads it in.
        assert f'id="question" class="question" lang="{language}"' in page
        assert question in page
    go_to(app, code, 2)
    assert "Qu’est-ce qui est dur ?" in phone(app, code, language="fr").get(f"/j/{code}").text

    uneven = client.post(
        "/sessions/new/world_cafe",
        data={
            "csrf_token": csrf_token(form),
            "title": "Café",
            "languages": ["en", "fr"],
            "config-tables": "1",
            "config-questions-en": "One?",
            "config-questions-fr": "Un ?\nDeux ?",
            "config-round_minutes": "20",
            "config-assignment": "assign",
            "config-dots": "3",
        },
    )
    assert "Write as many questions in each language" in uneven.text


def test_a_question_missing_in_a_phones_language_shows_the_first_in_its_language(
    app, client, auth, make_cafe
):
    """A café stored before questions had languages (a plain text and its translations)
    still works; a language without its version shows the session's first, marked so."""
    code = make_cafe()
    with app.app_context(), write_transaction():
        session = session_by_code(code)
        session.languages = ["fr", "en", "ar"]
        session.config = {
            **session.config,
            "rounds": [{"question": "Qu’est-ce qui aide ?", "translations": {"en": "What helps?"}}],
        }
    go_to(app, code, 1)
    arabic = phone(app, code, language="ar").get(f"/j/{code}").text
    assert 'id="question" class="question" lang="fr" dir="ltr">Qu’est-ce qui aide ?' in arabic
    english = phone(app, code, language="en").get(f"/j/{code}").text
    assert 'lang="en" dir="ltr">What helps?' in english


def test_paper_cards_are_typed_in_with_their_language_which_the_form_keeps(
    app, client, auth, make_cafe
):
    """Cards come in piles of one language: the form keeps the last language chosen."""
    code = make_cafe()
    with app.app_context():
        session_id = session_by_code(code).id
    auth.login()
    response = client.get(f"/sessions/{session_id}")
    page = response.text
    assert (
        re.search(r'<option (selected )?value="en"( selected)?>', page).group(0).count("selected")
    )
    for body in ("Les cours du soir sont pleins", "Il faut une crèche"):
        client.post(
            f"/sessions/{session_id}/transcribe",
            data={
                "csrf_token": csrf_token(response),
                "cid": new_cid(),
                "kind": "note",
                "group": "1",
                "phase_index": "1",
                "language": "fr",
                "body": body,
            },
        )
    page = client.get(f"/sessions/{session_id}").text
    assert (
        re.search(r'<option (selected )?value="fr"( selected)?>', page).group(0).count("selected")
    )
    with app.app_context():
        typed = db.session.scalars(
            select(Contribution).where(Contribution.transcribed.is_(True))
        ).all()
        assert [(c.body, c.language) for c in typed] == [
            ("Les cours du soir sont pleins", "fr"),
            ("Il faut une crèche", "fr"),
        ]


def test_a_phone_that_switches_language_sees_and_writes_in_its_new_one(app, make_cafe):
    """The question follows the language the phone shows now, and so does what it writes."""
    code = make_cafe()
    with app.app_context(), write_transaction():
        session = session_by_code(code)
        session.config = {
            **session.config,
            "rounds": [{"question": {"en": "What helps?", "fr": "Qu’est-ce qui aide ?"}}],
        }
    client = phone(app, code, language="en")
    page = client.get(f"/j/{code}")
    assert 'lang="en" dir="ltr">What helps?</h1>' in page.text
    client.post(
        "/language",
        data={"csrf_token": csrf_token(page), "language": "fr", "next": f"/j/{code}"},
    )
    assert 'lang="fr" dir="ltr">Qu’est-ce qui aide ?</h1>' in client.get(f"/j/{code}").text
    post_note(client, code, "Les cours du soir")
    with app.app_context():
        note = db.session.scalar(
            select(Contribution).where(Contribution.body == "Les cours du soir")
        )
        assert note.language == "fr"
