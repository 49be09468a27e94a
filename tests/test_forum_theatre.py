"""Forum theatre: each phase's rules, over plain forms and Socket.IO.

The fixture play is modelled on Glasgow's "The Roundabout" (the guide's
chapter 4): a person seeking asylum sent round and round the procedure.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from palabre.extensions import db
from palabre.models import Action, ActionSource, Contribution, Need, NeedSource, Session, Vote
from palabre.plugins.forum_theatre import ForumTheatre
from tests.conftest import (
    FACILITATOR_EMAIL,
    buttons_without_an_icon,
    csrf_token,
    join,
    new_cid,
    post_form,
    read_aloud_targets,
)

ROUNDABOUT = {
    "play_title": "The Roundabout",
    "synopsis": {
        "": "Amal seeks asylum and is sent from office to office, and back to the start.",
        "fr": "Amal demande l’asile et va de guichet en guichet, puis revient au départ.",
    },
    "protagonist": "Amal",
    "scenes": [
        {
            "title": "The Home Office interview",
            "description": "Eight hours, no interpreter.",
            "translations": {"fr": {"title": "L’entretien au ministère", "description": ""}},
        },
        {"title": "The housing office", "description": "Sent back for a missing letter."},
        {"title": "Back at the start", "description": "The same form, again."},
    ],
    "on_stage": True,
}
# The plan: 0 welcome, 1-3 scenes, 4 reflection, 5 forum, 6 harvest, 7 closed.
SCENE_1, REFLECTION, FORUM, HARVEST, CLOSED = 1, 4, 5, 6, 7
ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "core" / "static"
PLUGIN_TEMPLATES = ROOT / "plugins" / "forum_theatre" / "templates" / "forum_theatre"
CORE_TEMPLATES = ROOT / "templates" / "components"


@pytest.fixture
def make_forum(app):
    """Create a forum theatre session playing "The Roundabout"; returns its join code."""
    from palabre.database import write_transaction
    from palabre.join import new_join_code
    from palabre.models import Status

    def make(phase_index=SCENE_1, languages=("en", "fr", "ar"), **config):
        with app.test_request_context(), write_transaction():
            code = new_join_code()
            db.session.add(
                Session(
                    method="forum_theatre",
                    title="Forum theatre at the Tron",
                    venue="Tron Theatre, Glasgow",
                    code=code,
                    config={**ROUNDABOUT, **config},
                    languages=list(languages),
                    status=Status.LIVE if phase_index else Status.OPEN,
                    phase_index=phase_index,
                )
            )
        return code

    return make


@pytest.fixture
def staff(client, auth, socket_client):
    auth.login()

    def make(code):
        return socket_client(client, view="facilitator", code=code)

    return make


def phone(app, code, socket_client, language="en"):
    browser = app.test_client()
    join(browser, code, language=language)
    return browser, socket_client(browser, code=code)


def send(sock, kind, body=""):
    return sock.emit("contribute", {"cid": new_cid(), "kind": kind, "body": body}, callback=True)


def rate(sock, contribution, value, cid=None):
    return sock.emit(
        "vote",
        {"cid": cid or new_cid(), "contribution": contribution, "value": value},
        callback=True,
    )


def go(app, code, index):
    from palabre import phases

    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        phases.go_to(session, index)


def action(sock, name, **data):
    return sock.emit("method.action", {"cid": new_cid(), "name": name, **data}, callback=True)


def events_of(sock, type_):
    envelopes = [r["args"][0] for r in sock.get_received() if r["name"] == "event"]
    return [e["data"] for e in envelopes if e["type"] == type_]


def session_of(code) -> Session:
    return db.session.scalar(select(Session).where(Session.code == code))


# --- configuration ------------------------------------------------------------------


def test_plan_has_one_performance_phase_per_scene(app):
    with app.test_request_context():
        plan = ForumTheatre().phases(ROUNDABOUT)
        assert [p.name for p in plan] == [
            "welcome",
            "performance",
            "performance",
            "performance",
            "reflection",
            "forum",
            "harvest",
            "closed",
        ]
        assert str(plan[2].question) == "The housing office" and plan[2].number == 2
        assert "contribute:stop" in plan[FORUM].allows
        no_stage = ForumTheatre().phases({**ROUNDABOUT, "on_stage": False})
        assert "contribute:stop" not in no_stage[FORUM].allows


def scene_fields(scenes, synopsis=(("en", "Amal is sent round."),)) -> dict:
    """The new-session form's fields for ``scenes``: each a list of
    ``(language, title, description)`` versions, as a facilitator fills the cards."""
    data = {}
    for i, versions in enumerate(scenes):
        for language, title, description in versions:
            data |= {
                f"config-scenes-{i}-title-{language}": title,
                f"config-scenes-{i}-description-{language}": description,
            }
    for language, text in synopsis:
        data[f"config-synopsis-{language}"] = text
    return data


def post_new_forum(client, page, **fields):
    token = csrf_token(page)
    return client.post(
        "/sessions/new/forum_theatre",
        data={
            "csrf_token": token,
            "title": "Forum theatre at the Tron",
            "languages": ["en", "fr", "ar"],
            "config-play_title-en": "The Roundabout",
            "config-protagonist-en": "Amal",
            "config-on_stage": "y",
            **fields,
        },
    )


def card_titles(html: str, language="en") -> list[str]:
    """The title in ``language`` of each scene card, in the page's order."""
    return re.findall(rf'name="config-scenes-\d+-title-{language}" value="([^"]*)"', html)


def test_the_form_offers_one_card_per_scene_with_a_text_per_language(client, auth):
    auth.login()
    page = client.get("/sessions/new/forum_theatre").text
    # No line syntax to learn: three default scenes, as cards, in the facilitator's language.
    assert 'name="config-scenes"' not in page and "fr:" not in page
    assert card_titles(page) == [
        "At the reception desk",
        "At the other office",
        "Back at the start",
    ]
    assert page.count('<li class="scene-edit"') == 3
    # Each card: a title and a description in each language, the language named by its input.
    for language in ("en", "fr", "ar"):
        assert f'name="config-scenes-0-title-{language}"' in page
        assert f'name="config-synopsis-{language}"' in page
    assert re.search(r'name="config-scenes-0-title-ar"[^>]*lang="ar" dir="rtl"', page)
    # The buttons that shape the list post the form: they work without JavaScript.
    assert 'value="add"' in page and 'value="remove:2"' in page and 'value="up:1"' in page
    assert "formnovalidate" in page and "scenes.js" in page


def test_scenes_and_synopsis_are_stored_per_language(app, client, auth):
    auth.login()
    page = client.get("/sessions/new/forum_theatre")
    response = post_new_forum(
        client,
        page,
        **scene_fields(
            [
                [
                    ("en", "Interview", "Eight hours"),
                    ("fr", "L’entretien", "Huit heures"),
                    ("ar", "", ""),
                ],
                [("en", "", ""), ("fr", "", ""), ("ar", "", "")],  # a blank card is left out
                [("ar", "مكتب السكن", ""), ("en", "Housing office", "A letter is missing")],
            ],
            synopsis=[("en", "Amal is sent round."), ("fr", ""), ("ar", "أمل تدور")],
        ),
        **{"config-protagonist-ar": "أمل"},
    )
    assert response.status_code == 302
    with app.app_context():
        config = db.session.scalar(select(Session)).config
    assert config["synopsis"] == {"en": "Amal is sent round.", "ar": "أمل تدور"}
    assert config["protagonist"] == {"en": "Amal", "ar": "أمل"}
    assert config["scenes"] == [
        {
            "title": {"en": "Interview", "fr": "L’entretien"},
            "description": {"en": "Eight hours", "fr": "Huit heures"},
        },
        {
            "title": {"en": "Housing office", "ar": "مكتب السكن"},
            "description": {"en": "A letter is missing"},
        },
    ]
    with app.test_request_context():
        plan = ForumTheatre().phases(config)
    assert [dict(p.question) for p in plan if p.name == "performance"] == [
        {"en": "Interview", "fr": "L’entretien"},
        {"en": "Housing office", "ar": "مكتب السكن"},
    ]


def test_scenes_are_added_removed_and_moved_without_javascript(app, client, auth):
    auth.login()
    page = client.get("/sessions/new/forum_theatre")
    typed = scene_fields(
        [[("en", "First", "")], [("en", "Second", "Sent back")], [("en", "Third", "")]]
    )
    added = post_new_forum(client, page, **typed, **{"config-scenes-change": "add"})
    assert added.status_code == 200  # the form again, as typed, one card longer
    assert card_titles(added.text) == ["First", "Second", "Third", ""]
    assert "Scene 4" in added.text and "Sent back" in added.text
    moved = post_new_forum(client, page, **typed, **{"config-scenes-change": "up:1"})
    assert card_titles(moved.text) == ["Second", "First", "Third"]
    assert re.search(r'config-scenes-0-description-en"[^>]*>\s*Sent back<', moved.text)
    down = post_new_forum(client, page, **typed, **{"config-scenes-change": "down:2"})
    assert card_titles(down.text) == ["First", "Second", "Third"]  # the last stays last
    removed = post_new_forum(client, page, **typed, **{"config-scenes-change": "remove:0"})
    assert card_titles(removed.text) == ["Second", "Third"]
    with app.app_context():
        assert db.session.scalar(select(Session)) is None  # nothing created meanwhile
    # The typed translations follow their scene.
    translated = scene_fields(
        [[("en", "First", ""), ("fr", "Premier", "")], [("en", "Second", ""), ("ar", "ثاني", "")]]
    )
    swapped = post_new_forum(client, page, **translated, **{"config-scenes-change": "down:0"})
    assert card_titles(swapped.text, "ar") == ["ثاني", ""]
    assert card_titles(swapped.text, "fr") == ["", "Premier"]


@pytest.mark.parametrize(
    ("scenes", "message"),
    [
        ([[("en", "", ""), ("fr", "", "")]], "Write at least one scene."),
        (
            [[("en", "Interview", ""), ("fr", "", "Huit heures")]],
            "Give the scene a title in Français",
        ),
        ([[("en", "x" * 121, "")]], "English: at most 120 characters."),
    ],
)
def test_bad_scenes_are_explained_and_nothing_typed_is_lost(app, client, auth, scenes, message):
    auth.login()
    page = client.get("/sessions/new/forum_theatre")
    response = post_new_forum(client, page, **scene_fields(scenes))
    assert response.status_code == 200 and message in response.text
    for version in scenes[0]:
        assert version[1] in response.text
    with app.app_context():
        assert db.session.scalar(select(Session)) is None


def test_a_synopsis_is_required_in_one_language(client, auth):
    auth.login()
    page = client.get("/sessions/new/forum_theatre")
    response = post_new_forum(
        client, page, **scene_fields([[("en", "Interview", "")]], synopsis=[("en", " ")])
    )
    assert "Write this in at least one language." in response.text


def test_sessions_stored_before_the_cards_read_as_before(app, make_forum, client):
    """Stored scenes never changed shape: a synopsis under "" and scenes without a language."""
    code = make_forum(phase_index=SCENE_1)
    join(client, code, language="ar")  # no Arabic version: the texts as written
    page = client.get(f"/j/{code}").text
    assert "The Home Office interview" in page and "Amal seeks asylum" in page


# --- performance --------------------------------------------------------------------


def test_happened_is_one_tap_per_participant_per_scene(app, make_forum, socket_client, staff):
    code = make_forum()
    facilitator = staff(code)
    _browser, amina = phone(app, code, socket_client)
    _other, jonas = phone(app, code, socket_client, language="fr")
    assert send(amina, "happened")["ok"] is True
    again = send(amina, "happened")
    assert again["ok"] is False and "Already counted" in again["error"]
    assert send(jonas, "happened")["ok"] is True
    assert [e["data"] for e in events_of(facilitator, "contribution.added")] == [
        {"scene": 1},
        {"scene": 1},
    ]
    go(app, code, SCENE_1 + 1)
    assert send(amina, "happened")["ok"] is True
    with app.app_context():
        from palabre.plugins.forum_theatre import happened_counts

        assert happened_counts(session_of(code)) == {1: 2, 2: 1}


def test_phones_show_the_synopsis_and_scene_in_their_language(app, make_forum):
    code = make_forum()
    french = app.test_client()
    join(french, code, language="fr")
    page = french.get(f"/j/{code}").text
    assert "Amal demande l’asile" in page and "L’entretien au ministère" in page
    assert "Eight hours, no interpreter." in page  # untranslated description: as written
    arabic = app.test_client()
    join(arabic, code, language="ar")
    page = arabic.get(f"/j/{code}").text
    assert "Amal seeks asylum" in page and "The Home Office interview" in page
    # Switching the phone's language switches the scenes with the rest of the page.
    page = arabic.get(f"/j/{code}")
    arabic.post("/language", data={"csrf_token": csrf_token(page), "language": "fr"})
    page = arabic.get(f"/j/{code}").text
    assert "Amal demande l’asile" in page and "L’entretien au ministère" in page


def test_every_phone_action_has_an_icon_and_every_scene_and_question_a_listen_button(
    app, make_forum
):
    """For people who read little: the scene (each part marked with the language it is
    written in), the reflection's question and the forum's can be heard; every button
    carries an icon."""
    code = make_forum()
    french = app.test_client()
    join(french, code, language="fr")
    page = french.get(f"/j/{code}").text
    assert read_aloud_targets(page) == ["#scene > *"]
    # The title was translated into French; the description was not, and stays English.
    assert '<h1 class="question" lang="fr" dir="ltr">L’entretien au ministère</h1>' in page
    assert '<p class="lead" lang="en" dir="ltr">Eight hours, no interpreter.</p>' in page
    assert buttons_without_an_icon(page) == []
    for index, target in ((REFLECTION, "#question"), (FORUM, "#forum-question")):
        go(app, code, index)
        page = french.get(f"/j/{code}").text
        assert read_aloud_targets(page) == [target], index
        assert buttons_without_an_icon(page) == [], index


def test_a_tap_works_without_javascript(app, make_forum):
    code = make_forum()
    browser = app.test_client()
    join(browser, code)
    page = browser.get(f"/j/{code}")
    browser.post(
        f"/j/{code}/contribute",
        data={"csrf_token": csrf_token(page), "cid": new_cid(), "kind": "happened", "body": ""},
    )
    page = browser.get(f"/j/{code}").text
    assert "Counted. Thank you!" in page
    assert "1 person in the room said this happened" in page


# --- reflection -------------------------------------------------------------------------


def test_reflection_answers_have_limits_are_moderated_and_shown_as_text(
    app, make_forum, socket_client, staff, client
):
    code = make_forum(phase_index=REFLECTION)
    facilitator = staff(code)
    _browser, amina = phone(app, code, socket_client)
    assert send(amina, "answer", "")["ok"] is False
    too_long = send(amina, "answer", "x" * 281)
    assert too_long["ok"] is False and "280" in too_long["error"]
    ack = send(amina, "answer", "No <b>interpreter</b> at the interview")
    assert ack["ok"] is True
    assert send(amina, "stop")["ok"] is False  # not in this phase
    with app.app_context():
        session_id = session_of(code).id
    projector = client.get(f"/sessions/{session_id}/projector").text
    assert "No &lt;b&gt;interpreter&lt;/b&gt; at the interview" in projector
    hidden = facilitator.emit("contribution.hide", {"id": ack["id"], "hidden": True}, callback=True)
    assert hidden["ok"] is True
    assert "interpreter" not in client.get(f"/sessions/{session_id}/projector").text


# --- forum: the Stop! queue -------------------------------------------------------------


def test_stop_requests_get_queue_numbers_and_are_limited(app, make_forum, socket_client, staff):
    code = make_forum(phase_index=FORUM)
    facilitator = staff(code)
    browser, amina = phone(app, code, socket_client)
    _b, jonas = phone(app, code, socket_client)
    first = send(amina, "stop")
    assert first["ok"] is True and first["data"] == {"queue": 1, "state": "waiting"}
    twice = send(amina, "stop")
    assert twice["ok"] is False and "number 1" in twice["error"]
    assert send(jonas, "stop")["data"]["queue"] == 2
    assert "You are number 1 in the queue." in browser.get(f"/j/{code}").text

    assert action(facilitator, "queue.call")["ok"] is True
    changed = events_of(facilitator, "contribution.changed")
    assert [(e["data"]["queue"], e["data"]["state"]) for e in changed] == [(1, "called")]
    assert "It is your turn" in browser.get(f"/j/{code}").text
    # Called, Amina may ask again, but not endlessly.
    assert send(amina, "stop")["data"]["queue"] == 3
    assert action(facilitator, "queue.call")["ok"] is True
    assert action(facilitator, "queue.call")["ok"] is True
    assert send(amina, "stop")["ok"] is True
    action(facilitator, "queue.call")
    action(facilitator, "queue.call")
    limited = send(amina, "stop")
    assert limited["ok"] is False and "Wait a little" in limited["error"]
    empty = action(facilitator, "queue.call")
    assert empty["ok"] is False and "Nobody is waiting" in empty["error"]


def test_a_participant_socket_cannot_run_the_jokers_actions(app, make_forum, socket_client):
    code = make_forum(phase_index=FORUM)
    _browser, amina = phone(app, code, socket_client)
    send(amina, "stop")
    refused = action(amina, "queue.call")
    assert refused["ok"] is False and "Only a facilitator" in refused["error"]
    with app.app_context():
        stop = db.session.scalar(select(Contribution).where(Contribution.kind == "stop"))
        assert stop.data["state"] == "waiting"


def test_no_stop_requests_when_spectators_stay_off_stage(app, make_forum, socket_client):
    code = make_forum(phase_index=FORUM, on_stage=False)
    browser, amina = phone(app, code, socket_client)
    assert send(amina, "stop")["ok"] is False
    assert send(amina, "alternative", "Ask for an interpreter in writing")["ok"] is True
    assert "Stop! I want to try" not in browser.get(f"/j/{code}").text


# --- forum: interventions and ratings -----------------------------------------------------


def log(facilitator, tried="She asks for the decision in writing", **data):
    fields = {"scene": "1", "moment": "When the clerk says no", "happened": "He writes it"}
    return action(facilitator, "intervention.log", tried=tried, **{**fields, **data})


def test_ratings_are_refused_before_the_forum_and_for_unlogged_interventions(
    app, make_forum, socket_client, staff
):
    code = make_forum(phase_index=REFLECTION)
    facilitator = staff(code)
    _browser, amina = phone(app, code, socket_client)
    early = log(facilitator)
    assert early["ok"] is False and "during the forum" in early["error"]
    go(app, code, FORUM)
    assert rate(amina, 9999, 4)["ok"] is False  # not logged
    assert log(facilitator)["ok"] is True
    with app.app_context():
        intervention = db.session.scalar(
            select(Contribution).where(Contribution.kind == "intervention")
        )
        intervention_id = intervention.id
        assert intervention.data["number"] == 1 and intervention.participant_id is None
    go(app, code, HARVEST)
    late = rate(amina, intervention_id, 4)
    assert late["ok"] is False and "Voting is not open" in late["error"]


def test_ratings_stay_on_the_scale_and_a_new_one_replaces_the_old(
    app, make_forum, socket_client, staff
):
    code = make_forum(phase_index=FORUM)
    facilitator = staff(code)
    _b1, amina = phone(app, code, socket_client)
    _b2, jonas = phone(app, code, socket_client, language="fr")
    assert log(facilitator)["ok"] is True
    with app.app_context():
        target = db.session.scalar(
            select(Contribution.id).where(Contribution.kind == "intervention")
        )
    for value in (0, 6, "x"):
        refused = rate(amina, target, value)
        assert refused["ok"] is False and "from 1 to 5" in refused["error"]
    cid = new_cid()
    assert rate(amina, target, 2, cid=cid) == {"ok": True, "rating": 2}
    assert rate(amina, target, 2, cid=cid) == {"ok": True, "rating": 2}  # resent: nothing new
    assert rate(amina, target, 5)["rating"] == 5
    assert rate(jonas, target, 4)["ok"] is True
    last = events_of(facilitator, "votes.changed")[-1]
    assert last == {
        "id": target,
        "total": 9,
        "count": 2,
        "average": 4.5,
        "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1},
    }
    with app.app_context():
        assert db.session.query(Vote).count() == 2


def test_intervention_log_needs_what_was_tried_and_a_scene(app, make_forum, staff):
    code = make_forum(phase_index=FORUM)
    facilitator = staff(code)
    assert log(facilitator, tried="  ")["ok"] is False
    assert log(facilitator, scene="9")["ok"] is False
    assert log(facilitator, tried="x" * 501)["ok"] is False
    unknown = action(facilitator, "scene.skip")
    assert unknown["ok"] is False


def test_actions_work_as_plain_form_posts(app, make_forum, client, auth, socket_client):
    code = make_forum(phase_index=FORUM)
    _b, amina = phone(app, code, socket_client)
    send(amina, "stop")
    auth.login()
    with app.app_context():
        session_id = session_of(code).id
    run = f"/sessions/{session_id}"
    post_form(client, run, f"{run}/actions/queue.call", {})
    post_form(
        client,
        run,
        f"{run}/actions/intervention.log",
        {"scene": "2", "moment": "At the desk", "tried": "Brings a friend <i>as witness</i>"},
    )
    page = client.get(run).text
    assert "Brings a friend &lt;i&gt;as witness&lt;/i&gt;" in page
    with app.app_context():
        stop = db.session.scalar(select(Contribution).where(Contribution.kind == "stop"))
        assert stop.data["state"] == "called"
    # Signed out, the action route sends people to sign in.
    auth.logout()
    assert client.post(f"{run}/actions/queue.call").status_code in (302, 400)


# --- harvest: obstacles to needs, interventions to actions -------------------------------


def test_harvest_turns_obstacles_into_needs_and_interventions_into_actions(
    app, make_forum, socket_client, staff, client, monkeypatch
):
    code = make_forum(phase_index=REFLECTION)
    facilitator = staff(code)
    _b1, amina = phone(app, code, socket_client)
    _b2, jonas = phone(app, code, socket_client)
    answers = [
        send(amina, "answer", "No interpreter")["id"],
        send(jonas, "answer", "Nobody explained the letter")["id"],
        send(jonas, "answer", "Every office wants another form")["id"],
    ]
    go(app, code, FORUM)
    log(facilitator, tried="Asks for an interpreter before answering")
    with app.app_context():
        intervention = db.session.scalar(
            select(Contribution.id).where(Contribution.kind == "intervention")
        )
    rate(amina, intervention, 5)
    rate(jonas, intervention, 4)
    go(app, code, HARVEST)
    added = action(
        facilitator,
        "obstacle.add",
        title="Nobody speaks my language",
        answers=[str(answers[0]), str(answers[1])],
    )
    assert added["ok"] is True
    action(
        facilitator,
        "obstacle.add",
        title="The <script>forms</script> go round",
        answers=[str(answers[2])],
    )

    with app.app_context():
        session_id = session_of(code).id
    page = client.get(f"/backlog/from-session/{session_id}")
    assert "Nobody speaks my language" in page.text
    assert "Asks for an interpreter before answering" in page.text
    assert "&lt;script&gt;forms&lt;/script&gt;" in page.text
    keys = re.findall(r'name="take-([\w-]+)"', page.text)
    assert keys[2] == f"action-{intervention}"
    # Support is named by kind: people for an obstacle, ratings with their number for a try.
    assert "2 people raised it" in page.text
    assert "rated 4.5 on average by 2 people" in page.text
    # The proposed action comes with the obstacles of the same harvest ticked as what it addresses.
    assert f'name="addresses-{keys[2]}" value="{keys[0]}" checked' in page.text
    client.post(
        f"/backlog/from-session/{session_id}",
        data={
            "csrf_token": csrf_token(page),
            f"take-{keys[0]}": "1",
            f"take-{keys[2]}": "1",
            f"addresses-{keys[2]}": keys[0],
        },
    )
    with app.app_context():
        need = db.session.scalar(select(Need))
        assert need.title == "Nobody speaks my language"
        assert (need.support.people, need.support.dots, need.support.rating_count) == (2, 0, 0)
        sources = db.session.scalars(select(NeedSource.contribution_id)).all()
        assert set(answers[:2]) <= set(sources)
        proposed = db.session.scalar(select(Action))
        assert proposed.title == "Asks for an interpreter before answering"
        # Its fields are left for the team to fill; provenance stays in its sources.
        assert proposed.status == "proposed" and proposed.objective == ""
        assert (proposed.support.rating, proposed.support.rating_count) == (4.5, 2)
        assert proposed.support.people == 0 and proposed.support.dots == 0
        assert [n.title for n in proposed.needs] == ["Nobody speaks my language"]
        assert db.session.scalar(select(ActionSource.contribution_id)) == intervention

    go(app, code, CLOSED)
    monkeypatch.setattr("palabre.printing.html_to_pdf", lambda html: b"%PDF-1.7\n" + html.encode())
    report = client.get(f"/print/sessions/{session_id}/report.pdf").get_data(as_text=True)
    for expected in (
        "The Roundabout",
        "The housing office",
        "Nobody speaks my language",
        "The &lt;script&gt;forms&lt;/script&gt; go round",
        "Asks for an interpreter before answering",
        "4.5 (2)",
        # The charts: "this happened" by scene, and each intervention's ratings with n.
        '<figcaption id="chart-happened-title">',
        "Intervention #1 (n = 2)",
        # Every answer as written, in the appendix, under its part of the play.
        "Appendix: what people wrote, as written",
        "Reflection · What stopped the protagonist",
        "Every office wants another form",
    ):
        assert expected in report
    assert re.search(r'<div [^>]*role="img" aria-labelledby="chart-rating-\d+-title', report)
    assert "<script>forms" not in report
    assert FACILITATOR_EMAIL not in report and "Fatou" not in report


def test_staff_pages_render_in_every_phase(app, make_forum, client, auth):
    code = make_forum(phase_index=0)
    auth.login()
    with app.app_context():
        session_id = session_of(code).id
    for index in range(CLOSED + 1):
        go(app, code, index)
        for url in (f"/sessions/{session_id}", f"/sessions/{session_id}/projector"):
            assert client.get(url).status_code == 200, (index, url)
        if index < CLOSED:
            browser = app.test_client()
            join(browser, code)
            assert browser.get(f"/j/{code}").status_code == 200


def test_stop_requests_reach_staff_and_their_sender_only(app, make_forum, socket_client, staff):
    """150 phones need not hear every "Stop!"; the one called hears it is their turn."""
    code = make_forum(phase_index=FORUM)
    facilitator = staff(code)
    _b1, amina = phone(app, code, socket_client)
    _b2, jonas = phone(app, code, socket_client)
    stop_id = send(amina, "stop")["id"]
    send(jonas, "alternative", "Ask for the decision in writing")
    action(facilitator, "queue.call")
    # Jonas hears his own alternative, nothing of Amina's request.
    assert [e["kind"] for e in events_of(jonas, "contribution.added")] == ["alternative"]
    assert not events_of(jonas, "contribution.changed")
    assert [e["id"] for e in events_of(amina, "contribution.changed")] == [stop_id]
    assert len(events_of(facilitator, "contribution.added")) == 2
    # Replayed after a reconnect, to the same rooms only.
    with app.app_context():
        from palabre.models import Event

        rooms = db.session.scalars(select(Event.rooms).where(Event.type == "contribution.changed"))
        assert all("all" not in r for r in rooms)


def test_ratings_are_rate_limited_per_participant(app, make_forum, socket_client, staff):
    app.config["RATE_LIMIT_WRITES"] = "3/minute"
    code = make_forum(phase_index=FORUM)
    facilitator = staff(code)
    _b1, amina = phone(app, code, socket_client)
    _b2, jonas = phone(app, code, socket_client)
    log(facilitator)
    with app.app_context():
        target = db.session.scalar(
            select(Contribution.id).where(Contribution.kind == "intervention")
        )
    for value in (1, 2, 3):
        assert rate(amina, target, value)["ok"] is True
    limited = rate(amina, target, 4)
    assert limited["ok"] is False and "very fast" in limited["error"]
    assert rate(jonas, target, 4)["ok"] is True  # keyed on the participant, not the venue


def test_rating_works_without_javascript(app, make_forum, staff):
    code = make_forum(phase_index=FORUM)
    log(staff(code))
    browser = app.test_client()
    join(browser, code)
    page = browser.get(f"/j/{code}")
    assert 'name="value" value="5"' in page.text
    with app.app_context():
        target = db.session.scalar(
            select(Contribution.id).where(Contribution.kind == "intervention")
        )
    form = {"csrf_token": csrf_token(page), "contribution": target}
    browser.post(f"/j/{code}/vote", data={**form, "cid": new_cid(), "value": "3"})
    browser.post(f"/j/{code}/vote", data={**form, "cid": new_cid(), "value": "9"})
    page = browser.get(f"/j/{code}").text
    assert "Choose a rating from 1 to 5." in page
    chosen = re.findall(r'value="(\d)"\s+class="rating chosen"', page)
    assert chosen == ["3"]
    with app.app_context():
        assert db.session.scalar(select(Vote.value)) == 3


def test_phones_follow_the_harvest_as_the_projector_does(app, make_forum, socket_client, staff):
    """In the harvest the projector shows the obstacles: phones show them too, not "it is over"."""
    code = make_forum(phase_index=REFLECTION)
    facilitator = staff(code)
    browser, amina = phone(app, code, socket_client)
    answer = send(amina, "answer", "No interpreter")["id"]
    go(app, code, HARVEST)
    amina.get_received()
    added = action(facilitator, "obstacle.add", title="Nobody speaks my language", answers=answer)
    assert added["ok"] is True
    # The new obstacle reaches the phone live, and the page shows it after a reload.
    assert [e["body"] for e in events_of(amina, "contribution.added")] == [
        "Nobody speaks my language"
    ]
    page = browser.get(f"/j/{code}").text
    assert "Nobody speaks my language" in page
    assert "The forum is over" not in page
    go(app, code, CLOSED)
    assert "The forum is over" in browser.get(f"/j/{code}").text


def test_every_class_on_the_forum_screens_is_styled():
    """A chosen rating, "your turn" and the projector's counter must look like what they are."""
    css = re.sub(r"/\*.*?\*/", "", (STATIC / "palabre.css").read_text(), flags=re.S)
    styled = set(re.findall(r"\.([A-Za-z][\w-]*)", css))
    screens = [
        PLUGIN_TEMPLATES / f"{view}.html" for view in ("participant", "facilitator", "projector")
    ]
    screens += [PLUGIN_TEMPLATES / "_item.html", CORE_TEMPLATES / "contributions.html"]
    used = set()
    for template in screens:
        for attribute in re.findall(r'class="([^"]*)"', template.read_text()):
            used |= set(re.sub(r"\{[{%].*?[%}]\}", " ", attribute).split())
    # Hooks for tests and scripts, and lists styled by their items' rules.
    unstyled_on_purpose = {
        "queue-ack",
        "alternative-form",
        "answer-form",
        "note-form",
        "stop",
        "waiting",
    }
    assert used - styled - unstyled_on_purpose == set()
    for needed in ("chosen", "big-counter", "scene-card", "called", "rating", "queue"):
        assert needed in styled


def test_the_joker_logs_a_written_alternative_in_one_click_and_ends_a_turn(
    app, make_forum, socket_client, staff, client
):
    code = make_forum(phase_index=FORUM)
    facilitator = staff(code)
    _browser, amina = phone(app, code, socket_client)
    alternative = send(amina, "alternative", "Ask for the decision in writing")["id"]
    logged = action(facilitator, "intervention.log", alternative=str(alternative), scene="2")
    assert logged["ok"] is True
    with app.app_context():
        intervention = db.session.scalar(
            select(Contribution).where(Contribution.kind == "intervention")
        )
        assert intervention.body == "Ask for the decision in writing"
        assert intervention.data["written"] is True and intervention.data["scene"] == 2
    gone = action(facilitator, "intervention.log", alternative="999999", scene="1")
    assert gone["ok"] is False and "not here any more" in gone["error"]

    # "Call the next person" is disabled with an empty queue, "Done" with nobody on stage.
    with app.app_context():
        session_id = session_of(code).id
    page = client.get(f"/sessions/{session_id}").text
    assert re.search(r"<button[^>]*data-call-next[^>]*disabled", page)
    assert re.search(r"<button[^>]*data-stage-done[^>]*disabled", page)
    assert action(facilitator, "queue.done")["error"] == "Nobody is on stage."
    send(amina, "stop")
    assert action(facilitator, "queue.call")["ok"] is True
    page = client.get(f"/sessions/{session_id}").text
    assert not re.search(r"<button[^>]*data-stage-done[^>]*disabled", page)
    assert action(facilitator, "queue.done")["ok"] is True
    with app.app_context():
        stop = db.session.scalar(select(Contribution).where(Contribution.kind == "stop"))
        assert stop.data["state"] == "done"


def test_the_joker_sees_which_need_each_obstacle_went_into(app, make_forum, client, auth):
    from palabre.backlog import create_need

    code = make_forum(phase_index=HARVEST)
    auth.login()
    with app.test_request_context():
        session = session_of(code)
        obstacles = []
        for title in ("Nobody speaks my language", "Forms everywhere"):
            obstacle = Contribution(
                session_id=session.id,
                client_id=new_cid(),
                kind="obstacle",
                phase_index=HARVEST,
                body=title,
                data={"answers": [], "count": 0},
            )
            db.session.add(obstacle)
            db.session.flush()
            obstacles.append(obstacle)
        db.session.commit()
        create_need(
            "Interpreters at every desk",
            session=session,
            contribution_ids=[obstacles[0].id],
        )
        session_id = session.id
    page = client.get(f"/sessions/{session_id}").text
    assert "In the backlog as:" in page and "Interpreters at every desk" in page
    assert "not in the backlog yet" in page
