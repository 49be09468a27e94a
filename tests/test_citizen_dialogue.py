"""Citizen dialogue: each stage's rules, small groups kept out of sight, offline resends.

Connectors are phones that opened a personal link of the role ``connector``
(C-01, C-02, ...); residents are phones that joined through the public QR code.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections import Counter

import pytest
from sqlalchemy import select

from palabre.extensions import db
from palabre.models import Action, Contribution, Facilitator, Need, Session
from palabre.plugins.citizen_dialogue import (
    CitizenDialogue,
    parse_population,
)
from palabre.plugins.citizen_dialogue.meetings import DialogueMeeting, meetings_of
from palabre.plugins.citizen_dialogue.reach import SMALL_GROUPS, Row, filtered, protect
from palabre.plugins.citizen_dialogue.theming import suggestions
from palabre.testing import new_cid, role_link
from palabre.testing.kit import SessionRef
from tests.conftest import buttons_without_an_icon, read_aloud_targets

# The plan: 0 preparation, 1 listening, 2 theming, 3 meetings, 4 projects, 5 feedback, 6 closed.
LISTENING, THEMING, MEETINGS, PROJECTS, FEEDBACK, CLOSED = 1, 2, 3, 4, 5, 6
# A meeting's plan: 0 welcome, 1 views, ideas and dots, 2 closed.
MEETING_WORK, MEETING_CLOSED = 1, 2
GUIDE = {
    "en": ["What is good about living here?", "What is hard here?", "What would help?"],
    "fr": [
        "Qu’est-ce qui est bien ici ?",
        "Qu’est-ce qui est difficile ?",
        "Qu’est-ce qui aiderait ?",
    ],
    "ar": ["ما الجيد في العيش هنا؟", "ما الصعب هنا؟", "ما الذي قد يساعد؟"],
}
CONFIG = {"guide": GUIDE, "population": 875, "population_by_age": {"18_29": 150, "30_44": 200}}


def interview(**overrides) -> dict:
    fields = {
        "q1": "The forest and the quiet.",
        "q2": "The bus to Järpen runs twice a day.",
        "language": "ar",
        "place": "shop",
        "consent": "yes",
        "respondent": "resident",
        "age": "30_44",
    }
    return {**fields, **overrides}


@pytest.fixture
def dialogue(make_session):
    def make(phase=LISTENING, **config):
        return make_session("citizen_dialogue", config={**CONFIG, **config}, phase=phase)

    return make


@pytest.fixture
def connector(palabre_app):
    """A phone holding a connector's personal link."""
    from palabre.testing.kit import TestPhone

    def make(code, language="en"):
        phone = TestPhone(palabre_app, code, palabre_app.test_client()).join(language)
        response = phone.client.get(role_link(palabre_app, code, "connector"))
        assert response.status_code == 302
        return phone.connect()

    return make


def act(facilitator_client, session, name, **data):
    """Run a facilitator action as the run screen's form does; returns the page after."""
    page = facilitator_client.get(f"/sessions/{session.id}")
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    return facilitator_client.post(
        f"/sessions/{session.id}/actions/{name}",
        data={"csrf_token": token, "name": name, **data},
        follow_redirects=True,
    )


def stored(session, kind) -> list[Contribution]:
    return db.session.scalars(
        select(Contribution)
        .where(Contribution.session_id == session.id, Contribution.kind == kind)
        .order_by(Contribution.id)
    ).all()


def test_the_dialogue_keeps_the_contract(assert_method_conforms):
    assert_method_conforms("citizen_dialogue")


# --- configuration and stages ---------------------------------------------------------


def test_the_plan_has_every_stage_and_listening_goes_on_while_theming(palabre_app):
    with palabre_app.test_request_context():
        plan = CitizenDialogue().phases({})
        meeting_plan = DialogueMeeting().phases({})
    names = [phase.name for phase in plan]
    assert names == [
        "preparation",
        "listening",
        "theming",
        "meetings",
        "projects",
        "feedback",
        "closed",
    ]
    assert plan[LISTENING].allowing("contribute:interview")
    assert plan[THEMING].allowing("contribute:interview")
    # The meetings are sessions of their own: the dialogue's phones only learn when they are.
    assert not plan[MEETINGS].allows
    assert plan[FEEDBACK].allowing("contribute:feedback")
    work = meeting_plan[MEETING_WORK]
    assert work.allowing("contribute:idea") and work.allowing("contribute:view")
    assert work.allowing("vote") and not meeting_plan[0].allows


def test_the_guide_is_entered_per_language_with_real_inputs(facilitator_client):
    page = facilitator_client.get("/sessions/new/citizen_dialogue").text
    for code in ("en", "fr", "ar"):
        assert f'name="config-guide-{code}"' in page
        assert f'name="config-feedback-{code}"' in page
    arabic = re.search(r'<textarea[^>]*name="config-guide-ar"[^>]*>', page).group(0)
    assert 'dir="rtl"' in arabic and 'lang="ar"' in arabic
    # Each language's default questions are typed in that language, not copied from English.
    french = re.search(r'name="config-guide-fr"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert "Qu’est-ce qui est bien" in french


def test_guides_in_several_languages_must_have_as_many_questions(palabre_app):
    from palabre.plugins.citizen_dialogue import CitizenDialogueConfig

    with palabre_app.test_request_context(method="POST"):
        form = CitizenDialogueConfig(
            formdata=None,
            data={
                "guide": {"en": "One?\nTwo?", "fr": "Un ?", "ar": ""},
                "feedback": {"en": "A?\nB?\nC?"},
                "population": 100,
                "respondent_types": ["resident"],
            },
            meta={"csrf": False},
        )
        assert not form.validate()
        assert "same number of questions" in " ".join(form.guide.errors)


def test_the_population_by_each_profile_question_is_read_line_by_line():
    assert parse_population("18_29: 140\n65_plus=90\n", "age") == {"18_29": 140, "65_plus": 90}
    assert parse_population("woman: 430\n\nman = 410", "gender") == {"woman": 430, "man": 410}
    for text, field in (
        ("young people: 12", "age"),
        ("18_29: 12", "gender"),
        ("ar: many", "home_language"),
    ):
        with pytest.raises(ValueError):
            parse_population(text, field)


def test_the_form_takes_the_population_by_gender_and_refuses_unknown_keys(palabre_app):
    from werkzeug.datastructures import MultiDict

    from palabre.plugins.citizen_dialogue import CitizenDialogueConfig

    def form(gender):
        return CitizenDialogueConfig(
            formdata=MultiDict(
                {
                    "guide-en": "One?",
                    "feedback-en": "A?\nB?\nC?",
                    "population": "875",
                    "population_by_age": "18_29: 150",
                    "population_by_gender": gender,
                    "respondent_types": "resident",
                }
            ),
            meta={"csrf": False},
        )

    with palabre_app.test_request_context(method="POST"):
        page = str(form("").population_by_gender.label)
        assert "Gender: people living in the area, where known" in page
        assert "keys: woman, man, other" in page
        good = form("woman: 430\nman: 410")
        assert good.validate(), good.errors
        config = CitizenDialogue().config_from_form(good)
        assert config["population_by_gender"] == {"woman": 430, "man": 410}
        # Age keeps the key it always had, so that the sessions made before read as they were.
        assert config["population_by_age"] == {"18_29": 150}
        bad = form("women: 430")
        assert not bad.validate()
        assert bad.errors == {
            "population_by_gender": [
                "Write one answer per line, one of the keys listed and a number, such as "
                "“woman: 140”."
            ]
        }


def test_a_phone_sees_the_guide_in_its_language_else_the_sessions_first(
    dialogue, make_phone, make_session
):
    session = dialogue()
    assert "ما الصعب هنا؟" in make_phone(session.code, language="ar").page().text
    only_english = make_session(
        "citizen_dialogue", config={**CONFIG, "guide": {"en": GUIDE["en"]}}, phase=LISTENING
    )
    assert "What is hard here?" in make_phone(only_english.code, language="ar").page().text


def test_each_question_can_be_heard_in_its_language_and_every_action_carries_an_icon(
    palabre_app, dialogue, make_phone, make_session, connector, go_to_phase
):
    """For people who read little: a "Listen" button per guide and feedback question, each
    question marked with the language it is written in (the phone's, else the session's
    first that has it)."""
    session = dialogue()
    for phone in (make_phone(session.code, language="ar"), connector(session.code, "ar")):
        page = phone.page().text
        assert read_aloud_targets(page) == ["#iv-q1-label", "#iv-q2-label", "#iv-q3-label"]
        assert 'id="iv-q2-label" lang="ar" dir="auto">ما الصعب هنا؟</label>' in page
        assert buttons_without_an_icon(page) == []
    only_english = make_session(
        "citizen_dialogue", config={**CONFIG, "guide": {"en": GUIDE["en"]}}, phase=LISTENING
    )
    page = make_phone(only_english.code, language="ar").page().text
    assert 'id="iv-q2-label" lang="en" dir="auto">What is hard here?</label>' in page
    go_to_phase(session, FEEDBACK)
    page = make_phone(session.code, language="fr").page().text
    assert read_aloud_targets(page) == ["#feedback-heard", "#feedback-express", "#feedback-change"]
    assert buttons_without_an_icon(page) == []


# --- listening -------------------------------------------------------------------------


def test_a_connector_records_an_interview_with_its_code(palabre_app, dialogue, connector):
    session = dialogue()
    phone = connector(session.code)
    ack = phone.contribute("interview", **interview())
    assert ack["ok"], ack
    assert ack["data"]["connector"] == "C-01"
    assert ack["data"]["answers"] == [
        {"q": 0, "text": "The forest and the quiet."},
        {"q": 1, "text": "The bus to Järpen runs twice a day."},
    ]
    assert ack["data"]["profile"] == {"age": "30_44"}
    assert "Community connector" in phone.page().text and "C-01" in phone.page().text


def test_an_interview_needs_consent_an_answer_and_known_values(dialogue, connector):
    phone = connector(dialogue().code)
    no_consent = phone.contribute("interview", **interview(consent=""))
    assert "agreed to take part" in no_consent["error"]
    empty = phone.contribute("interview", **interview(q1=" ", q2=""))
    assert "at least one answer" in empty["error"]
    assert "too long" in phone.contribute("interview", **interview(q1="x" * 2001))["error"]
    assert (
        "where the interview" in phone.contribute("interview", **interview(place="moon"))["error"]
    )
    assert "language" in phone.contribute("interview", **interview(language="xx"))["error"]
    assert (
        "Choose one of the answers" in phone.contribute("interview", **interview(age="42"))["error"]
    )


def test_a_resident_answers_the_guide_through_the_public_qr(dialogue, make_phone):
    session = dialogue()
    phone = make_phone(session.code, language="fr")
    ack = phone.contribute("interview", q3="Un bus le soir.", consent="yes", place="home")
    assert ack["ok"], ack
    # A resident cannot say where a connector went: it is "answered alone", in the phone's language.
    assert ack["data"]["place"] == "self" and ack["data"]["language"] == "fr"
    assert ack["data"]["by"] == "self" and "connector" not in ack["data"]


def test_a_repeated_interview_is_stored_once(palabre_app, dialogue, connector):
    session = dialogue()
    phone = connector(session.code)
    payload = {"cid": new_cid(), "kind": "interview", **interview()}
    first = phone.socket.emit("contribute", payload, callback=True)
    # The phone went offline before the acknowledgement and sends it again on reconnection.
    phone.socket.disconnect()
    phone.connect()
    again = phone.socket.emit("contribute", payload, callback=True)
    assert first["ok"] and again["ok"] and again["id"] == first["id"]
    with palabre_app.app_context():
        assert len(stored(db.session.get(Session, session.id), "interview")) == 1


def test_a_withdrawn_connector_link_is_refused_and_its_interviews_kept(
    palabre_app, dialogue, connector
):
    from palabre.database import write_transaction
    from palabre.role_links import revoke_role_link, role_links_of

    session = dialogue()
    phone = connector(session.code)
    assert phone.contribute("interview", **interview())["ok"]
    with palabre_app.test_request_context(), write_transaction():
        for link in role_links_of(db.session.get(Session, session.id), "connector"):
            revoke_role_link(link)
    refused = phone.contribute("interview", **interview(q1="Another one"))
    assert not refused["ok"] and "withdrawn" in refused["error"]
    assert "withdrawn" in phone.page().text
    with palabre_app.app_context():
        kept = stored(db.session.get(Session, session.id), "interview")
        assert [i.data["connector"] for i in kept] == ["C-01"]


def test_connector_cards_warn_when_there_is_no_public_address(
    palabre_app, dialogue, connector, facilitator_client
):
    """Connectors interview people at home, in shops and schools: their links must work
    away from the venue, so the cards say when Palabre has no public address."""
    session = dialogue()
    connector(session.code)
    warning = "These links are opened away from the venue, but Palabre has no public address"
    palabre_app.config["BASE_URL"] = None
    cards = facilitator_client.get(f"/sessions/{session.id}/links/connector/cards").text
    assert warning in cards
    palabre_app.config["BASE_URL"] = "https://palabre.city.example"
    cards = facilitator_client.get(f"/sessions/{session.id}/links/connector/cards").text
    assert warning not in cards and "https://palabre.city.example/j/" in cards


def test_interviews_stop_when_the_meetings_start(dialogue, connector):
    phone = connector(dialogue(phase=MEETINGS).code)
    refused = phone.contribute("interview", **interview())
    assert "over" in refused["error"]


def test_an_interview_from_paper(palabre_app, dialogue, facilitator_client):
    session = dialogue(phase=THEMING)
    act(facilitator_client, session, "interview.transcribe", **interview(q1="Written on paper"))
    with palabre_app.app_context():
        (paper,) = stored(db.session.get(Session, session.id), "interview")
        assert paper.data["by"] == "paper" and paper.body.startswith("Written on paper")


def test_an_interview_works_without_javascript(palabre_app, dialogue, connector):
    from palabre.testing import csrf_token

    session = dialogue()
    phone = connector(session.code)
    page = phone.page()
    assert 'class="interview-form"' in page.text
    cid = new_cid()
    data = {"csrf_token": csrf_token(page.text), "cid": cid, "kind": "interview", **interview()}
    phone.client.post(f"/j/{session.code}/contribute", data=data)
    phone.client.post(f"/j/{session.code}/contribute", data=data)
    with palabre_app.app_context():
        (stored_interview,) = stored(db.session.get(Session, session.id), "interview")
        assert stored_interview.data["place"] == "shop"


def test_an_interview_records_who_it_was_with(palabre_app, dialogue, connector, make_phone):
    session = dialogue(respondent_types=["resident", "staff"])
    phone = connector(session.code)
    assert "Staff of a service" in phone.page().text
    assert "A local politician" not in phone.page().text
    missing = phone.contribute("interview", **interview(respondent=""))
    assert "Choose who the interview was with" in missing["error"]
    not_offered = phone.contribute("interview", **interview(respondent="politician"))
    assert "Choose who the interview was with" in not_offered["error"]
    assert phone.contribute("interview", **interview(respondent="staff"))["ok"]
    # A resident answering alone may skip the question.
    alone = make_phone(session.code)
    assert alone.contribute("interview", **interview(respondent=""))["ok"]
    # With one kind offered, connectors need not choose it.
    only_residents = dialogue(respondent_types=["resident"])
    answered = connector(only_residents.code).contribute("interview", **interview(respondent=""))
    assert answered["ok"]
    with palabre_app.app_context():
        assert [i.data.get("respondent") for i in stored(session, "interview")] == [
            "staff",
            None,
        ]
        (only,) = stored(db.session.get(Session, only_residents.id), "interview")
        assert only.data["respondent"] == "resident"


def test_the_reach_counts_each_kind_of_person_heard(
    palabre_app, dialogue, facilitator_client, tmp_path
):
    session = dialogue()
    fill(
        palabre_app,
        session,
        [interview()] * 8
        + [interview(respondent="staff")] * 6
        + [interview(respondent="politician")] * 5,
    )
    screen = figures_of(facilitator_client.get(f"/sessions/{session.id}").text)
    # The share of the population counts the 8 residents only: 8 of 875.
    assert "19" in screen and "8 residents" in screen and "0.9%" in screen
    who = screen.split('id="chart-reach-respondent"')[1].split("</figure>")[0]
    assert re.findall(r'<th scope="row" dir="auto">([^<]*)</th><td class="num">(\d+)', who) == [
        ("A resident", "8"),
        ("Staff of a service", "6"),
        ("A local politician", "5"),
    ]
    rows = list(
        csv.reader(
            io.StringIO(facilitator_client.get(f"/citizen-dialogue/{session.id}/reach.csv").text)
        )
    )
    assert ["Who was heard", "Staff of a service", "6", ""] in rows
    staff = facilitator_client.get(f"/sessions/{session.id}?filter=respondent:staff").text
    assert "its figures are not shown" not in staff and "6" in figures_of(staff)
    pdf = facilitator_client.get(f"/print/sessions/{session.id}/report.pdf?part=perspective")
    printed = " ".join(pdf_text(pdf.data, tmp_path, "who").split())
    assert "Who was heard" in printed and "A local politician" in printed
    # Three politicians are too few to show, on screen and in print, and the share of the
    # population then counts everyone heard, so that it does not tell their number.
    fewer = dialogue()
    fill(
        palabre_app,
        fewer,
        [interview()] * 8 + [interview(respondent="politician")] * 3,
    )
    screen = figures_of(facilitator_client.get(f"/sessions/{fewer.id}").text)
    assert "A local politician" not in screen and "residents" not in screen
    assert "11 people heard, 1.3%" in " ".join(re.sub("<[^>]+>", " ", screen).split())
    pdf = facilitator_client.get(f"/print/sessions/{fewer.id}/report.pdf?part=perspective")
    assert "A local politician" not in pdf_text(pdf.data, tmp_path, "fewer")


# --- reach and small groups --------------------------------------------------------------


def test_groups_under_five_are_pooled_and_never_recoverable():
    labels = {"a": "A", "b": "B", "c": "C", "d": "D"}
    rows = protect({"a": 12, "b": 7, "c": 3, "d": 1}, labels)
    # c and d together are 4: b joins them, so that nothing subtracts back to a small group.
    assert rows == [Row("a", "A", 12), Row(SMALL_GROUPS, rows[-1].label, 11)]
    assert protect({"a": 3}, labels)[0].count is None
    assert protect({"a": 5, "b": 6}, labels) == [Row("a", "A", 5), Row("b", "B", 6)]
    for counts in ({"a": 9, "b": 2}, {"a": 4, "b": 4, "c": 20}, {"a": 1, "b": 1, "c": 1}):
        assert all(row.count is None or row.count >= 5 for row in protect(counts, labels))


def test_a_filter_that_would_show_or_leave_out_a_small_group_is_refused():
    class Interview:
        def __init__(self, place):
            self.data = {"place": place}

    interviews = [Interview("home")] * 8 + [Interview("shop")] * 3
    # 3 at a shop: too few to show; "home" leaves those 3 out: refused too.
    assert filtered(interviews, "place", "shop")[1]
    assert filtered(interviews, "place", "home")[1]
    assert filtered(interviews, "place", "<script>")[1]
    assert filtered(interviews + [Interview("shop")] * 2, "place", "home") == (
        interviews[:8],
        None,
    )


def fill(palabre_app, session, interviews):
    from palabre.contributions import add_by_staff
    from palabre.database import write_transaction
    from palabre.plugins.citizen_dialogue import interview_body, interview_data

    with palabre_app.test_request_context(), write_transaction():
        s = db.session.get(Session, session.id)
        for fields in interviews:
            data = interview_data(s, fields, by="paper", connector=None)
            add_by_staff(s, "interview", interview_body(data), data)


def test_reach_on_screen_and_in_the_export_hides_small_groups(
    palabre_app, dialogue, facilitator_client
):
    session = dialogue()
    fill(
        palabre_app,
        session,
        [interview(age="30_44")] * 9
        + [interview(age="65_plus", gender="woman", place="home")] * 2
        + [interview(age="18_29", place="home")] * 3,
    )

    screen = figures_of(facilitator_client.get(f"/sessions/{session.id}").text)
    assert "14" in screen and "1.6%" in screen
    assert "65 or older" not in screen and "fewer than 5" in screen
    export = facilitator_client.get(f"/citizen-dialogue/{session.id}/reach.csv")
    assert export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.text)))
    ages = [row for row in rows if row[0] == "Age"]
    assert [row[1] for row in ages][0] == "30 to 44" and ages[0][2] == "9"
    assert not any(row[1] in ("65 or older", "18 to 29") for row in rows)
    for row in rows[1:]:
        assert not row[2].isdigit() or int(row[2]) >= 5 or row[0] == "Reach"
    # Filtered on the 5 interviews at home, the 2 women of 65 or older stay pooled.
    home = facilitator_client.get(f"/citizen-dialogue/{session.id}/reach.csv?filter=place:home")
    assert "65 or older" not in home.text and "Woman" not in home.text
    at_home = figures_of(facilitator_client.get(f"/sessions/{session.id}?filter=place:home").text)
    assert "65 or older" not in at_home
    refused = facilitator_client.get(f"/sessions/{session.id}?filter=language:so").text
    assert "its figures are not shown" in refused
    assert (
        "its figures are not shown"
        in facilitator_client.get(
            f"/citizen-dialogue/{session.id}/reach.csv?filter=language:so"
        ).text
    )


def test_how_interviews_came_in_and_per_connector_hides_small_groups(
    palabre_app, dialogue, facilitator_client
):
    """Three residents answered alone, two interviews by C-02: each a small group of people
    heard, pooled on the run screen so that no total subtracts back to it."""
    from palabre.contributions import add_by_staff
    from palabre.database import write_transaction
    from palabre.plugins.citizen_dialogue import interview_body, interview_data

    session = dialogue()
    ways = [("connector", "C-01")] * 6 + [("connector", "C-02")] * 2 + [("paper", None)] * 6
    ways += [("self", None)] * 3
    with palabre_app.test_request_context(), write_transaction():
        s = db.session.get(Session, session.id)
        for by, code in ways:
            data = interview_data(s, interview(), by=by, connector=code, language="ar")
            add_by_staff(s, "interview", interview_body(data), data)
    screen = figures_of(facilitator_client.get(f"/sessions/{session.id}").text)
    reach = " ".join(re.sub("<[^>]+>", " ", screen).split())
    # The 3 alone are pooled with the 6 from paper; the connectors' 8 are shown.
    assert "Recorded by community connectors: 8" in reach
    assert "Answered alone" not in reach and "Typed in from paper" not in reach
    assert "pooled so that no group of fewer than 5 people can be seen: 9" in reach
    # C-02's 2 interviews are counted with C-01's 6, both codes named.
    assert "C-01 · C-02 8" in reach and "C-02 2" not in reach and "C-01 6" not in reach


def test_the_projector_charts_the_reach_while_listening(palabre_app, dialogue, facilitator_client):
    session = dialogue()
    fill(
        palabre_app,
        session,
        [interview(age="30_44")] * 9
        + [interview(age="18_29", respondent="staff")] * 6
        + [interview(age="65_plus", respondent="politician")] * 2,
    )
    projector = facilitator_client.get(f"/sessions/{session.id}/projector").text
    share = projector.split('id="chart-projector-share"')[1].split("</figure>")[0]
    # The share counts residents: 9 of the 875 living in the area, drawn with the shared chart.
    assert re.findall(r'<td class="num">(\d+)</td>', share) == ["9", "875"]
    assert "17 people heard so far." in projector
    who = projector.split('id="chart-projector-respondent"')[1].split("</figure>")[0]
    assert "A resident" in who and "A local politician" not in who
    assert "Age: those heard against the area’s population" in projector
    assert "65 or older" not in projector
    # The charts come from the same component as on the run screen and in print.
    assert '<figure class="chart bar-chart" id="chart-projector-share">' in projector


def test_the_projector_and_run_screen_show_the_questions_in_their_language(
    palabre_app, facilitator_client, dialogue
):
    """Switched to Arabic, the big screen and the run screen show the Arabic feedback
    questions, as phones do."""
    arabic = [
        "هل شعرت أنه تم الاستماع إليك؟",
        "هل استطعت التعبير عن آرائك؟",
        "هل ساهمت في التغيير؟",
    ]
    session = dialogue(
        phase=FEEDBACK,
        feedback={"en": ["Heard?", "Expressed?", "Changed?"], "ar": arabic},
    )
    feedback_forms(palabre_app, session, [(4, 4, 4)] * 5)
    assert "Heard?" in facilitator_client.get(f"/sessions/{session.id}/projector").text
    for screen in (f"/sessions/{session.id}/projector", f"/sessions/{session.id}"):
        page = facilitator_client.get(screen, headers={"Accept-Language": "ar"}).text
        chart = page.split('id="chart-feedback-heard"')[1].split("</figure>")[0]
        assert arabic[0] in chart and "Heard?" not in chart


def test_the_reach_export_is_for_facilitators_only(dialogue, palabre_app):
    session = dialogue()
    response = palabre_app.test_client().get(f"/citizen-dialogue/{session.id}/reach.csv")
    assert response.status_code in (302, 401)


# --- theming ---------------------------------------------------------------------------------


def themes(palabre_app, session):
    with palabre_app.app_context():
        return {
            t.body: t
            for t in stored(db.session.get(Session, session.id), "theme")
            if not t.data.get("merged_into")
        }


def test_theming_create_rename_move_quote_merge(palabre_app, dialogue, facilitator_client):
    session = dialogue(phase=THEMING)
    fill(
        palabre_app,
        session,
        [
            interview(q1="The bus never comes in the evening", q2=""),
            interview(q1="No bus on Sundays, the bus is a problem", q2=""),
            interview(q1="Too few places in Swedish class", q2=""),
        ],
    )
    act(
        facilitator_client,
        session,
        "theme.create",
        **{"name-en": "Transport"},
        **{"name-ar": "النقل"},
    )
    act(facilitator_client, session, "theme.create", **{"name-en": "Language"}, category="language")
    refused = act(facilitator_client, session, "theme.create", **{"name-en": " "})
    assert "Name the theme" in refused.text
    transport, language = (
        themes(palabre_app, session)["Transport"],
        themes(palabre_app, session)["Language"],
    )
    with palabre_app.app_context():
        interviews = stored(db.session.get(Session, session.id), "interview")
    bus_1, bus_2, swedish = (f"{i.id}:0" for i in interviews)
    act(facilitator_client, session, "answers.move", answers=[bus_1], theme=transport.id)
    act(facilitator_client, session, "answers.move", answers=[swedish], theme=language.id)

    # The second bus answer is suggested for Transport, computed here from shared words.
    with palabre_app.test_request_context():
        s = db.session.get(Session, session.id)
        from palabre.plugins.citizen_dialogue import themes_of
        from palabre.plugins.citizen_dialogue.theming import answers_of

        assert suggestions(answers_of(stored(s, "interview")), themes_of(s)) == {
            bus_2: transport.id
        }
    page = facilitator_client.get(f"/sessions/{session.id}").text
    assert "Suggested theme:" in page

    act(facilitator_client, session, "answers.move", answers=[bus_2], theme=transport.id)
    act(facilitator_client, session, "quote.toggle", theme=transport.id, answer=bus_2)
    assert (
        "must be one of the theme"
        in act(facilitator_client, session, "quote.toggle", theme=transport.id, answer=swedish).text
    )
    act(
        facilitator_client,
        session,
        "theme.rename",
        theme=transport.id,
        **{"name-en": "Buses"},
        **{"name-fr": "Bus"},
    )
    assert set(themes(palabre_app, session)) == {"Buses", "Language"}
    buses = themes(palabre_app, session)["Buses"]
    assert buses.data["answers"] == [bus_1, bus_2] and buses.data["quotes"] == [bus_2]
    assert buses.data["names"] == {"en": "Buses", "fr": "Bus"}

    act(facilitator_client, session, "theme.merge", theme=language.id, into=buses.id)
    (merged,) = themes(palabre_app, session).values()
    assert merged.data["answers"] == [bus_1, bus_2, swedish]
    # Moving an answer out of every theme also drops it as a quote.
    act(facilitator_client, session, "answers.move", answers=[bus_2], theme="")
    (merged,) = themes(palabre_app, session).values()
    assert merged.data["answers"] == [bus_1, swedish] and merged.data["quotes"] == []


# --- meetings, projects, backlog ------------------------------------------------------------


def themed_dialogue(palabre_app, dialogue, facilitator_client):
    """A dialogue with six interviews grouped in one theme, "Transport", in its meetings stage."""
    session = dialogue(phase=THEMING)
    fill(palabre_app, session, [interview(q1="The bus never comes", q2="")] * 6)
    act(
        facilitator_client,
        session,
        "theme.create",
        **{"name-en": "Transport"},
        **{"prompt-en": "How could we get around better?"},
        **{"prompt-ar": "كيف نتنقل بشكل أفضل؟"},
        category="services",
    )
    transport = themes(palabre_app, session)["Transport"]
    with palabre_app.app_context():
        refs = [f"{i.id}:0" for i in stored(db.session.get(Session, session.id), "interview")]
    act(facilitator_client, session, "answers.move", answers=refs, theme=transport.id)
    return session, transport


def schedule(facilitator_client, session, theme_ids, starts_at="2026-03-05T18:30"):
    return act(
        facilitator_client,
        session,
        "meeting.schedule",
        starts_at=starts_at,
        venue="Mörsil community hall",
        themes=[str(t) for t in theme_ids],
    )


def the_meetings(palabre_app, session) -> list[SessionRef]:
    with palabre_app.app_context():
        return [
            SessionRef(m.id, m.code, m.method)
            for m in meetings_of(db.session.get(Session, session.id))
        ]


def test_a_meeting_is_scheduled_as_an_evening_of_its_own(palabre_app, dialogue, facilitator_client):
    session, transport = themed_dialogue(palabre_app, dialogue, facilitator_client)
    assert (
        "Give the date and time" in schedule(facilitator_client, session, [transport.id], "").text
    )
    assert "Choose at least one theme" in schedule(facilitator_client, session, []).text
    assert the_meetings(palabre_app, session) == []
    schedule(facilitator_client, session, [transport.id], "2026-03-19T18:30")
    schedule(facilitator_client, session, [transport.id], "2026-03-05T18:30")
    first, second = the_meetings(palabre_app, session)
    with palabre_app.app_context():
        meeting = db.session.get(Session, first.id)
        dialogue_ = db.session.get(Session, session.id)
        assert meeting.parent_id == dialogue_.id and meeting.method == "dialogue_meeting"
        assert meeting.starts_at.isoformat() == "2026-03-05T18:30:00"
        assert meeting.venue == "Mörsil community hall" and meeting.status == "draft"
        assert meeting.languages == dialogue_.languages and meeting.config["themes"] == [
            transport.id
        ]
        assert meeting.code != dialogue_.code != second.code
    # The dialogue's screen lists both, by date, each with its own code and run link.
    page = facilitator_client.get(f"/sessions/{session.id}").text
    assert page.index(first.code) < page.index(second.code)
    assert f"/sessions/{first.id}/team" in page
    # Its own run screen, QR code, projector and poster; not startable on its own.
    assert facilitator_client.get(f"/sessions/{first.id}").status_code == 200
    assert "Transport" in facilitator_client.get(f"/sessions/{first.id}/projector").text
    assert facilitator_client.get(f"/print/sessions/{first.id}/poster.pdf").status_code == 200
    assert facilitator_client.get("/sessions/new/dialogue_meeting").status_code == 404
    assert "/sessions/new/dialogue_meeting" not in facilitator_client.get("/sessions/").text


def opened_meeting(palabre_app, dialogue, facilitator_client, go_to_phase):
    """A themed dialogue with one meeting on its transport theme, the meeting open:
    ``(dialogue session, transport theme, meeting)``."""
    session, transport = themed_dialogue(palabre_app, dialogue, facilitator_client)
    go_to_phase(session, MEETINGS)
    schedule(facilitator_client, session, [transport.id])
    (meeting,) = the_meetings(palabre_app, session)
    go_to_phase(meeting, 0)
    return session, transport, meeting


def test_a_meetings_prompts_can_be_heard_in_their_language_and_its_actions_carry_icons(
    palabre_app, dialogue, facilitator_client, make_phone, go_to_phase
):
    session, transport, meeting = opened_meeting(
        palabre_app, dialogue, facilitator_client, go_to_phase
    )
    go_to_phase(meeting, MEETING_WORK)
    prompt = f"#prompt-{transport.id}"
    arabic, french = make_phone(meeting.code, language="ar"), make_phone(meeting.code, "fr")
    page = arabic.page().text
    assert read_aloud_targets(page) == [prompt]
    assert f'id="prompt-{transport.id}" lang="ar"' in page
    assert buttons_without_an_icon(page) == []
    # No French prompt: the dialogue's first language that has one, marked so.
    assert f'id="prompt-{transport.id}" lang="en"' in french.page().text


def test_a_meeting_runs_on_its_themes_and_its_ideas_become_projects_in_the_backlog(
    palabre_app, dialogue, facilitator_client, make_phone, go_to_phase
):
    session, transport, meeting = opened_meeting(
        palabre_app, dialogue, facilitator_client, go_to_phase
    )
    phone = make_phone(meeting.code, language="ar")
    assert "كيف نتنقل بشكل أفضل؟" in phone.page().text
    # The dialogue's own phones are told when and where, not sent to the meeting.
    resident = make_phone(session.code).page().text
    assert "Mörsil community hall" in resident and "Transport" in resident
    go_to_phase(meeting, MEETING_WORK)
    view = phone.contribute("view", "The last bus leaves at six")
    idea = phone.contribute("idea", "A village car pool on a phone group")
    assert view["ok"] and idea["ok"]
    assert idea["data"] == {"theme": transport.id}
    other = make_phone(meeting.code)
    assert other.vote(idea["id"])["ok"] and phone.vote(idea["id"])["ok"]
    assert "Choose one of this meeting" in other.contribute("idea", "x", theme="999")["error"]
    assert "Write something" in other.contribute("idea", "")["error"]
    go_to_phase(meeting, MEETING_CLOSED)

    go_to_phase(session, PROJECTS)
    # The meeting's idea comes back to the dialogue with its dots and its meeting.
    page = facilitator_client.get(f"/sessions/{session.id}").text
    assert "A village car pool on a phone group" in page and "Dialogue meeting: Transport" in page
    # Two phones took part: a group under five, so no number.
    assert "Fewer than 5 people took part from a phone" in page
    assert "2 people took part" not in page
    refused = act(facilitator_client, session, "project.propose", idea=idea["id"], lead_group="")
    assert "Name the group" in refused.text
    act(
        facilitator_client,
        session,
        "project.propose",
        idea=idea["id"],
        title="Car pool",
        lead_group="Mörsil village association",
        from_city="Insurance for the drivers",
    )
    assert (
        "already a project"
        in act(facilitator_client, session, "project.propose", idea=idea["id"], lead_group="x").text
    )
    # An idea of another dialogue's meeting is not this dialogue's to take.
    stranger, stranger_theme = themed_dialogue(palabre_app, dialogue, facilitator_client)
    schedule(facilitator_client, stranger, [stranger_theme.id])
    assert (
        "not here any more"
        in act(
            facilitator_client, stranger, "project.propose", idea=idea["id"], lead_group="x"
        ).text
    )
    go_to_phase(session, CLOSED)

    page = facilitator_client.get(f"/backlog/from-session/{session.id}").text
    assert "Transport" in page and "Car pool" in page
    from palabre.backlog import harvest
    from palabre.plugin_host import get_method

    with palabre_app.test_request_context():
        s = db.session.get(Session, session.id)
        candidates = get_method("citizen_dialogue").backlog_candidates(s)
        harvest(s, [(c, c.title, c.theme, c.addresses) for c in candidates])
        action = db.session.scalar(select(Action))
        need = db.session.scalar(select(Need))
        assert action.owner.name == "Mörsil village association"
        assert action.needs == [need] and need.theme == "services" and need.support.people == 6


def test_an_external_facilitator_runs_one_meeting_and_nothing_else(
    palabre_app, dialogue, facilitator_client, go_to_phase
):
    from palabre.testing import csrf_token

    session, transport = themed_dialogue(palabre_app, dialogue, facilitator_client)
    with palabre_app.app_context():
        # The dialogue's owner is the signed-in facilitator, as when made from the list.
        from palabre.database import write_transaction

        with write_transaction():
            owner = db.session.scalar(select(Facilitator))
            db.session.get(Session, session.id).created_by_id = owner.id
    schedule(facilitator_client, session, [transport.id], "2026-03-05T18:30")
    schedule(facilitator_client, session, [transport.id], "2026-03-19T18:30")
    first, second = the_meetings(palabre_app, session)
    team = facilitator_client.get(f"/sessions/{first.id}/team/").text
    facilitator_client.post(
        f"/sessions/{first.id}/team/invite", data={"csrf_token": csrf_token(team), "hours": "6"}
    )
    team = facilitator_client.get(f"/sessions/{first.id}/team/").text
    link = re.search(r"https?://[^\s\"<]+(/invitation/[\w-]+)", team).group(1)
    external = palabre_app.test_client()
    external.get(link)
    accept = external.get("/invitation/").text
    done = external.post(
        "/invitation/",
        data={
            "csrf_token": csrf_token(accept),
            "name": "Anna, facilitator",
            "email": "anna@example.org",
            "password": "a long walk to Järpen",
        },
    )
    assert done.status_code == 302 and done.location.endswith(f"/sessions/{first.id}")
    assert external.get(f"/sessions/{first.id}").status_code == 200
    assert external.get(f"/sessions/{first.id}/projector").status_code == 200
    # Not the dialogue (its interviews, reach, exports, report), nor another meeting.
    assert external.get(f"/sessions/{session.id}").status_code == 403
    assert external.get(f"/sessions/{second.id}").status_code == 403
    assert external.get(f"/citizen-dialogue/{session.id}/reach.csv").status_code == 403
    assert external.get(f"/print/sessions/{session.id}/report.pdf").status_code == 403
    listed = external.get("/sessions/").text
    assert first.code in listed and session.code not in listed and second.code not in listed
    # Their run screen names the dialogue without linking to it.
    page = external.get(f"/sessions/{first.id}").text
    assert f'href="/sessions/{session.id}' not in page
    # The dialogue's facilitator runs every meeting through the dialogue.
    assert facilitator_client.get(f"/sessions/{second.id}").status_code == 200


def test_who_runs_a_dialogue_runs_its_meetings_not_the_other_way_round(
    palabre_app, dialogue, facilitator_client
):
    from palabre.access import may_run, sessions_run_by
    from palabre.database import write_transaction
    from palabre.models import AccountRole, CoFacilitator

    session, transport = themed_dialogue(palabre_app, dialogue, facilitator_client)
    schedule(facilitator_client, session, [transport.id])
    (meeting,) = the_meetings(palabre_app, session)
    with palabre_app.app_context():
        with write_transaction():
            owner = Facilitator(email="o@example.org", name="O", password_hash="x")
            colleague = Facilitator(email="c@example.org", name="C", password_hash="x")
            guest = Facilitator(
                email="g@example.org", name="G", password_hash="x", role=AccountRole.GUEST
            )
            db.session.add_all([owner, colleague, guest])
            db.session.flush()
            db.session.get(Session, session.id).created_by_id = owner.id
            db.session.add(CoFacilitator(session_id=session.id, facilitator_id=colleague.id))
            db.session.add(CoFacilitator(session_id=meeting.id, facilitator_id=guest.id))
        dialogue_, meeting_ = (
            db.session.get(Session, session.id),
            db.session.get(Session, meeting.id),
        )
        for account in (owner, colleague):
            assert may_run(account, dialogue_) and may_run(account, meeting_)
            runs = set(db.session.scalars(sessions_run_by(account)))
            assert {dialogue_, meeting_} <= runs
        assert may_run(guest, meeting_) and not may_run(guest, dialogue_)
        assert set(db.session.scalars(sessions_run_by(guest))) == {meeting_}


# --- feedback --------------------------------------------------------------------------------


def test_feedback_by_phone_once_and_from_paper(
    palabre_app, dialogue, make_phone, facilitator_client
):
    session = dialogue(phase=FEEDBACK)
    phone = make_phone(session.code)
    assert "Did you feel heard?" in phone.page().text
    assert (
        "from 1 to 5" in phone.contribute("feedback", heard="6", express="3", change="2")["error"]
    )
    assert "from 1 to 5" in phone.contribute("feedback", heard="4")["error"]
    assert phone.contribute("feedback", "Good evenings", heard="5", express="4", change="3")["ok"]
    assert (
        "already counted"
        in phone.contribute("feedback", heard="1", express="1", change="1")["error"]
    )
    act(facilitator_client, session, "feedback.transcribe", heard="2", express="2", change="1")
    with palabre_app.app_context():
        forms = stored(db.session.get(Session, session.id), "feedback")
        assert [(f.data["heard"], f.data.get("paper", False)) for f in forms] == [
            (5, False),
            (2, True),
        ]
    screen = facilitator_client.get(f"/sessions/{session.id}").text
    # Two forms: a group under five, so no figure at all, but the comment is there.
    assert "Fewer than 5 answers: not shown" in screen and "Good evenings" in screen
    assert "Average" not in screen


def feedback_forms(palabre_app, session, ratings):
    """Type in feedback forms from paper: ``ratings`` are (heard, express, change) triples."""
    from palabre.actions import run as run_action

    with palabre_app.test_request_context():
        s = db.session.get(Session, session.id)
        for heard, express, change in ratings:
            run_action(
                s,
                "feedback.transcribe",
                {"heard": str(heard), "express": str(express), "change": str(change)},
            )


def test_feedback_answers_of_fewer_than_five_people_are_pooled_everywhere(
    palabre_app, dialogue, facilitator_client, make_phone, tmp_path
):
    """On the run screen, the projector, the CSV export and the printed report alike."""
    session = dialogue(phase=FEEDBACK)
    # heard: 5 ×7, 4 ×6, 2 ×2, 1 ×1: the 2s and the 1 are pooled (3 people: the 4s join).
    # express: 4 ×16, a single bar, with its average. change: 3 ×9, 2 ×7.
    feedback_forms(
        palabre_app,
        session,
        [(5, 4, 3)] * 7 + [(4, 4, 2)] * 6 + [(2, 4, 3)] * 2 + [(1, 4, 2)],
    )
    screen = facilitator_client.get(f"/sessions/{session.id}").text
    projector = facilitator_client.get(f"/sessions/{session.id}/projector").text
    for page in (screen, projector):
        heard = page.split('id="chart-feedback-heard"')[1].split("</figure>")[0]
        assert re.findall(
            r'<th scope="row" dir="auto">([^<]*)</th><td class="num">(\d+)', heard
        ) == [
            ("1 · 2 · 4", "9"),
            ("3", "0"),
            ("5", "7"),
        ]
        assert "counted together: 1, 2, 4" in page
        # No average where a bar is pooled; the other questions keep theirs.
        assert "Average: 4.0 out of 5" in page and "Average: 2.6 out of 5" in page
        assert page.count("Average:") == 2
    rows = list(
        csv.reader(
            io.StringIO(facilitator_client.get(f"/citizen-dialogue/{session.id}/feedback.csv").text)
        )
    )
    heard_rows = [row[1:] for row in rows if row[0] == "Did you feel heard?"]
    assert heard_rows == [["1 · 2 · 4", "9"], ["3", "0"], ["5", "7"]]
    for row in rows[1:]:
        assert not row[2].isdigit() or int(row[2]) in (0,) or int(row[2]) >= 5, row
    pdf = facilitator_client.get(f"/print/sessions/{session.id}/report.pdf")
    printed = " ".join(pdf_text(pdf.data, tmp_path, "feedback").split())
    assert "counted together: 1, 2, 4" in printed and "Average: 4.0 out of 5" in printed
    assert "Average: 4.3" not in printed
    # Under five forms in all: nothing but the message, on every surface.
    few = dialogue(phase=FEEDBACK)
    feedback_forms(palabre_app, few, [(5, 5, 5)] * 4)
    for page in (
        facilitator_client.get(f"/sessions/{few.id}").text,
        facilitator_client.get(f"/sessions/{few.id}/projector").text,
    ):
        assert "chart-feedback" not in page and "Fewer than 5 answers: not shown" in page
    export = facilitator_client.get(f"/citizen-dialogue/{few.id}/feedback.csv").text
    assert "fewer than 5" in export and ",4" not in export
    printed = " ".join(
        pdf_text(
            facilitator_client.get(f"/print/sessions/{few.id}/report.pdf").data, tmp_path, "few"
        ).split()
    )
    assert "Fewer than 5 answers: not shown" in printed and "n = 4" not in printed


def test_the_feedback_export_is_for_facilitators_only(dialogue, palabre_app):
    session = dialogue(phase=FEEDBACK)
    response = palabre_app.test_client().get(f"/citizen-dialogue/{session.id}/feedback.csv")
    assert response.status_code in (302, 401)


# --- the Mörsil dialogue: reports -------------------------------------------------------------


@pytest.fixture
def morsil(palabre_app):
    from tests.morsil import build_morsil

    return build_morsil(palabre_app)


def pdf_text(pdf: bytes, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return done.stdout.decode()


def pdf_pages(pdf: bytes, tmp_path, name: str) -> list:
    """The pages as PNG images (60 dpi), as a person would look at them."""
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(path), str(tmp_path / name)], check=True)
    return sorted(tmp_path.glob(f"{name}-*.png"))


SMALL_GROUP_LABELS = ("Under 18", "Tigrinya", "Ukrainian", "In another way", "A local politician")


def test_the_morsil_fixture_is_the_guides_dialogue(palabre_app, morsil):
    from tests.morsil import MEETINGS, THEMES, WEIGHTS

    with palabre_app.app_context():
        session = db.session.get(Session, morsil.id)
        interviews = stored(session, "interview")
        assert Counter(i.data["respondent"] for i in interviews) == {
            "resident": 70,
            "staff": 7,
            "politician": 3,
        }
        themed = [t for t in stored(session, "theme") if not t.data.get("merged_into")]
        assert [t.body for t in themed] == [name for name, *_rest in THEMES]
        # The residents' answers, and one answer from each of the ten officials.
        assert [len(t.data["answers"]) for t in themed] == [
            weight + extra for weight, extra in zip(WEIGHTS, (2, 2, 2, 1, 1, 1, 1), strict=True)
        ]
        assert len(stored(session, "project")) == 3
        assert len(stored(session, "feedback")) == 24
        # Four evenings, each a session of the dialogue with its date, place and ideas.
        meetings = meetings_of(session)
        assert [(m.starts_at.isoformat(), m.venue) for m in meetings] == [
            (f"{starts_at}:00", venue) for starts_at, venue, _names in MEETINGS
        ]
        assert all(m.status == "closed" and stored(m, "idea") for m in meetings)


def test_the_perspective_report_prints_themes_quotes_and_reach(
    morsil, facilitator_client, tmp_path
):
    response = facilitator_client.get(f"/print/sessions/{morsil.id}/report.pdf?part=perspective")
    assert response.mimetype == "application/pdf"
    text = pdf_text(response.data, tmp_path, "perspective")
    squashed = " ".join(text.split())
    assert "PERSPECTIVE REPORT" in squashed.upper()
    assert "80 people heard: 70 residents, 8.0% of the 875 people living in the area" in squashed
    for theme in ("Getting around", "Learning Swedish", "Being welcomed", "Children and school"):
        assert theme in squashed
    assert "“The bus to Järpen runs twice a day, never in the evening.”" in squashed
    assert "What is good about living in Mörsil?" in squashed
    assert "Answers per theme" in squashed
    assert "Age: those heard against the area’s population" in squashed
    # The perspective report stops before the meetings.
    assert "Dialogue meeting 1" not in squashed and "Car pool to Järpen" not in squashed
    for label in SMALL_GROUP_LABELS:
        assert label not in squashed, label
    assert "Others, fewer than 5 people each" in squashed
    pages = pdf_pages(response.data, tmp_path, "perspective")
    assert 3 <= len(pages) <= 12


def test_the_final_report_tells_the_whole_process(morsil, facilitator_client, tmp_path):
    response = facilitator_client.get(f"/print/sessions/{morsil.id}/report.pdf")
    squashed = " ".join(pdf_text(response.data, tmp_path, "final").split())
    assert "CITIZEN DIALOGUE: FINAL REPORT" in squashed.upper()
    assert "8.0% of the 875" in squashed
    for number in range(1, 5):
        assert f"Dialogue meeting {number}" in squashed
    assert "Car pool to Järpen" in squashed and "Mörsil village association" in squashed
    assert "Insurance for volunteer drivers" in squashed and "Under way" in squashed
    assert "Did you feel heard?" in squashed and "Could you contribute to change?" in squashed
    assert "24 forms, 6 of them from paper." in squashed
    assert "For the first time someone asked me." in squashed
    # The appendix lists the feedback's comments, not a dash for each form without one.
    appendix = squashed.split("Appendix")[-1]
    assert "Feedback · Feedback (2 texts) 1. For the first time someone asked me." in appendix
    assert not re.search(r"\d\. - ", appendix)
    for label in SMALL_GROUP_LABELS:
        assert label not in squashed, label
    assert len(pdf_pages(response.data, tmp_path, "final")) >= 4


def test_a_meetings_printout_carries_its_themes_from_the_perspective_report(
    palabre_app, morsil, facilitator_client, tmp_path
):
    with palabre_app.app_context():
        first = meetings_of(db.session.get(Session, morsil.id))[0]
        meeting_id = first.id
    response = facilitator_client.get(f"/print/sessions/{meeting_id}/report.pdf")
    assert response.mimetype == "application/pdf"
    squashed = " ".join(pdf_text(response.data, tmp_path, "meeting").split())
    assert "Part of the citizen dialogue: Citizen dialogue in Mörsil" in squashed
    assert "Getting around" in squashed and "44 answers" in squashed
    assert "“The bus to Järpen runs twice a day, never in the evening.”" in squashed
    assert "How could we get to Järpen and Östersund without a car?" in squashed
    assert "8 people took part from a phone" in squashed
    assert "A village car pool to Järpen, organised on a phone group" in squashed
    # The meeting's own ideas only, not another evening's.
    assert "language café" not in squashed


def test_the_report_prints_in_arabic_right_to_left(morsil, facilitator_client, tmp_path):
    response = facilitator_client.get(
        f"/print/sessions/{morsil.id}/report.pdf", headers={"Accept-Language": "ar"}
    )
    assert response.mimetype == "application/pdf"
    # pdftotext marks each run of text with its direction (U+202A to U+202E): left out.
    text = re.sub("[\u202a-\u202e]", "", pdf_text(response.data, tmp_path, "arabic"))
    text = " ".join(text.split())
    # (The colon of "Citizen dialogue: final report" comes out of its place.)
    assert "حوار المواطنين" in text and "التقرير النهائي" in text and "لقاءات الحوار" in text
    # The guide as the team wrote it in Arabic, not the session's first language.
    assert "ما الجيد في العيش في مورسيل؟" in text
    assert "What is good about living in Mörsil?" not in text
    assert "Citizen dialogue in Mörsil" in text


def figures_of(page: str) -> str:
    """The reach section of the run screen, without its filter's lists of choices."""
    section = page.split('<section class="reach"')[1].split("</section>")[0]
    return re.sub(r"<select.*?</select>", "", section, flags=re.S)


def test_those_heard_are_compared_with_the_population_by_gender_small_groups_pooled(
    palabre_app, dialogue, facilitator_client, tmp_path
):
    session = dialogue(population_by_gender={"woman": 450, "man": 400, "other": 25})
    fill(
        palabre_app,
        session,
        [interview(gender="woman")] * 10
        + [interview(gender="man")] * 6
        + [interview(gender="other")] * 3,
    )
    screen = figures_of(facilitator_client.get(f"/sessions/{session.id}").text)
    heading = "Gender: those heard against the area’s population"
    table = screen.split(f"<h3>{heading}</h3>")[1].split("</table>")[0]
    cells = [
        re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", row)
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]
    # The three who answered "in another way" are too few: the men join them, as for age,
    # so that neither group can be told from the other, nor from the population's figures.
    assert cells == [
        ["Gender", "Heard", "Share of those heard", "Share of the population"],
        ["Woman", "10", "53 %", "51 %"],
        [
            "Others, pooled so that no group of fewer than 5 people can be seen",
            "9",
            "47 %",
            "–",
        ],
    ]
    assert f'<figcaption id="reach-against-gender-caption">{heading}</figcaption>' in screen
    assert "In another way" not in screen
    # Age keeps its comparison, read from the key sessions always had.
    assert "Age: those heard against the area’s population" in screen
    # The projector has room for one comparison: the first question with figures, age.
    projector = facilitator_client.get(f"/sessions/{session.id}/projector").text
    assert "Age: those heard against the area’s population" in projector
    assert heading not in projector and "In another way" not in projector
    pdf = facilitator_client.get(f"/print/sessions/{session.id}/report.pdf?part=perspective")
    printed = " ".join(pdf_text(pdf.data, tmp_path, "gender").split())
    assert heading in printed and "53 %" in printed and "51 %" in printed
    assert "In another way" not in printed


def test_every_screen_of_the_morsil_dialogue_hides_small_groups(
    palabre_app, morsil, facilitator_client
):
    reach = figures_of(facilitator_client.get(f"/sessions/{morsil.id}").text)
    for label in SMALL_GROUP_LABELS:
        assert label not in reach, label
    export = facilitator_client.get(f"/citizen-dialogue/{morsil.id}/reach.csv").text
    for label in SMALL_GROUP_LABELS:
        assert label not in export, label
    # Through every filter, on screen and in the export.
    from palabre.plugins.citizen_dialogue.reach import FILTERS, MINIMUM_GROUP

    for by, values in FILTERS.items():
        for value in values:
            screen = facilitator_client.get(f"/sessions/{morsil.id}?filter={by}:{value}").text
            reach = figures_of(screen)
            rows = list(
                csv.reader(
                    io.StringIO(
                        facilitator_client.get(
                            f"/citizen-dialogue/{morsil.id}/reach.csv?filter={by}:{value}"
                        ).text
                    )
                )
            )
            for row in rows[1:]:
                if len(row) > 2 and row[2].isdigit():
                    assert int(row[2]) >= MINIMUM_GROUP, (by, value, row)
            for label in SMALL_GROUP_LABELS:
                assert label not in reach and label not in str(rows), (by, value, label)


def test_the_morsil_harvest_links_projects_to_their_themes_needs(palabre_app, morsil):
    from palabre.backlog import harvest
    from palabre.plugin_host import get_method

    with palabre_app.test_request_context():
        session = db.session.get(Session, morsil.id)
        candidates = get_method("citizen_dialogue").backlog_candidates(session)
        assert harvest(session, [(c, c.title, c.theme, c.addresses) for c in candidates]) == (
            7,
            3,
        )
        actions = db.session.scalars(select(Action).order_by(Action.id)).all()
        assert [(a.owner.name, [n.title for n in a.needs]) for a in actions] == [
            ("Mörsil village association", ["Getting around"]),
            ("Language café volunteers", ["Learning Swedish"]),
            ("Mörsil IF parents' group", ["Meeting places"]),
        ]
