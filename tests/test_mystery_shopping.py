"""Mystery shopping: each stage's rules, evaluators' reports, the scorecard, payments, the report.

The fixture audit is modelled on the guide's Toynbee Hall example (chapter 4):
six community researchers, paid for their time, visit four immigration advice
services in East London following prepared scenarios.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import date, timedelta

import pytest
from flask import url_for
from sqlalchemy import select

from palabre import contributions
from palabre.database import WRITE_LOCK_KEY, write_transaction
from palabre.extensions import db, socketio
from palabre.models import (
    Action,
    ActionUpdate,
    Contribution,
    Need,
    NeedSource,
    RoleLink,
    Session,
)
from palabre.plugins.mystery_shopping import (
    DEBRIEF,
    FIELDWORK,
    PREPARATION,
    REPORT,
    MysteryShopping,
)
from palabre.plugins.mystery_shopping.audit import default_audit, text_in
from palabre.plugins.mystery_shopping.scorecard import spreadsheet_cell
from palabre.role_links import issue_role_link, revoke_role_link
from palabre.testing import TestPhone, csrf_token, new_cid
from tests.conftest import buttons_without_an_icon, read_aloud_targets

SERVICES = [
    {
        "id": "s1",
        "name": {"en": "Tower Hamlets Law Centre", "fr": "Centre juridique de Tower Hamlets"},
        "kind": {"en": "Free legal advice"},
        "area": {"en": "Whitechapel"},
    },
    {"id": "s2", "name": {"en": "East End Advice Desk"}, "kind": {"en": "Charity"}, "area": {}},
    {"id": "s3", "name": {"en": "Poplar Migrant Help"}, "kind": {"en": "Charity"}, "area": {}},
    {"id": "s4", "name": {"en": "Stepney Visa Consultants"}, "kind": {"en": "Private"}, "area": {}},
]
SCENARIO = {
    "id": "p9",
    "persona": {"en": "A carer on a spouse visa", "fr": "Une aidante avec un visa de conjointe"},
    "problem": {"en": "Her visa ends in two months."},
    "ask": {"en": "How do I extend it, and is there free advice?"},
    "good_answer": {"en": "Names the extension route and free advice."},
}


def audit_config(scale: int = 4, **changes) -> dict:
    """The default audit of the given scale with the four services and one more scenario."""
    with_defaults = default_audit(scale)
    return {
        **with_defaults,
        "services": SERVICES,
        "scenarios": [*with_defaults["scenarios"], SCENARIO],
        "hourly_rate": "12.00",
        "currency": "GBP",
        **changes,
    }


def config_of(app, ref) -> dict:
    """The audit's stored preparation, as the app sees it now."""
    with app.app_context():
        return db.session.get(Session, ref.id).config


def make_audit(palabre_app, make_session, phase=FIELDWORK, status=None, **config):
    with palabre_app.test_request_context():
        return make_session(
            "mystery_shopping", config=audit_config(**config), phase=phase, status=status
        )


def evaluator(app, ref, language="en") -> tuple[TestPhone, int]:
    """A phone that opened a new evaluator link of its own; returns it and the link's id."""
    with app.test_request_context(), write_transaction():
        link = issue_role_link(db.session.get(Session, ref.id), "evaluator")
        path, link_id = url_for("role_links.take", code=ref.code, key=link.key), link.id
    phone = TestPhone(app, ref.code, app.test_client())
    with phone.client.session_transaction() as cookie:
        cookie["lang"] = language
    assert phone.client.get(path).status_code == 302
    return phone.connect(), link_id


def assign(app, ref, link_id, service, scenario="p1") -> str:
    """Give an evaluator a visit, as the facilitator's form does; returns its id."""
    from palabre import actions

    with app.test_request_context():
        session = db.session.get(Session, ref.id)
        actions.run(
            session,
            "assignment.add",
            {"link": str(link_id), "service": service, "scenario": scenario},
        )
        return db.session.get(Session, ref.id).config["assignments"][-1]["id"]


def report(phone, visit, scores=(), body="Told to come back next week.", **fields):
    """File a visit report: ``scores`` for the criteria c1, c2, ... in order (None: not scored)."""
    payload = {
        "assignment": visit,
        "date": date.today().isoformat(),
        "followed": "yes",
        "minutes": "90",
        "expenses": "4.80",
    }
    for number, score in enumerate(scores, start=1):
        payload[f"score-c{number}"] = "" if score is None else str(score)
    payload.update(fields)
    return phone.contribute("visit", body, **payload)


def action(client, ref, name, **data):
    run = client.get(f"/sessions/{ref.id}")
    return client.post(
        f"/sessions/{ref.id}/actions/{name}",
        data={"csrf_token": csrf_token(run.text), **data},
        headers={"Referer": f"/sessions/{ref.id}"},
        follow_redirects=True,
    )


def stored(app, ref, kind="visit") -> list[dict]:
    """The contributions of ``kind`` stored in the session: their text and fields."""
    with app.app_context():
        rows = db.session.scalars(
            select(Contribution)
            .where(Contribution.session_id == ref.id, Contribution.kind == kind)
            .order_by(Contribution.id)
        )
        return [{"id": c.id, "body": c.body, "data": c.data} for c in rows]


# --- the audit's defaults -------------------------------------------------------------


def test_a_new_audit_starts_from_the_guides_rubric_in_every_language(palabre_app):
    with palabre_app.test_request_context():
        audit = default_audit(5)
    assert audit["scale"] == 5
    titles = [c["title"] for c in audit["criteria"]]
    assert [t["en"] for t in titles] == [
        "Advice understandable",
        "Advice accurate",
        "Free options mentioned",
        "Respect and professional ethics",
        "Language support or interpreter",
        "Waiting time",
        "Physical accessibility",
    ]
    assert titles[0]["fr"] == "Conseil compréhensible"
    assert titles[0]["ar"] and titles[0]["ar"] != titles[0]["en"]
    assert all(c["guidance"]["en"] for c in audit["criteria"])
    assert set(audit["scenarios"][0]) == {"id", "persona", "problem", "ask", "good_answer"}


def test_a_text_is_read_in_the_readers_language_else_the_audits_first():
    texts = {"en": "Law centre", "fr": "Centre juridique"}
    assert text_in(texts, "fr", ["en", "fr"]) == "Centre juridique"
    assert text_in(texts, "ar", ["en", "fr", "ar"]) == "Law centre"
    assert text_in({"fr": "Centre"}, "ar", ["en", "ar"]) == "Centre"
    assert text_in(None, "en", ["en"]) == ""


def test_the_audit_is_created_from_the_new_session_page(palabre_app, facilitator_client):
    page = facilitator_client.get("/sessions/new/mystery_shopping")
    assert "Rubric scale" in page.text
    response = facilitator_client.post(
        "/sessions/new/mystery_shopping",
        data={
            "csrf_token": csrf_token(page.text),
            "title": "Immigration advice audit",
            "languages": ["en", "ar"],
            "config-scale": "5",
            "config-hourly_rate": "14.50",
            "config-currency": "GBP",
        },
    )
    assert response.status_code == 302
    with palabre_app.app_context():
        config = db.session.scalar(
            select(Session.config).where(Session.method == "mystery_shopping")
        )
    assert config["scale"] == 5
    assert config["hourly_rate"] == "14.50"
    assert len(config["criteria"]) == 7


# --- preparation ----------------------------------------------------------------------


def test_services_are_prepared_per_language_in_a_draft(
    palabre_app, make_session, facilitator_client
):
    ref = make_audit(palabre_app, make_session, phase=PREPARATION, status="draft", services=[])
    run = facilitator_client.get(f"/sessions/{ref.id}")
    # One real input per language of the audit, each with its language and direction.
    assert 'name="name-ar" maxlength="120" lang="ar" dir="rtl"' in run.text
    done = action(
        facilitator_client,
        ref,
        "service.save",
        **{"name-en": "Law Centre", "name-ar": "مركز القانون", "kind-en": "Legal advice"},
    )
    assert done.status_code == 200
    service = config_of(palabre_app, ref)["services"][0]
    assert service["name"] == {"en": "Law Centre", "ar": "مركز القانون"}
    assert service["area"] == {}
    # Edited in place, by its id.
    action(
        facilitator_client, ref, "service.save", id=service["id"], **{"name-en": "Law Centre E1"}
    )
    assert config_of(palabre_app, ref)["services"][0]["name"] == {"en": "Law Centre E1"}

    refused = action(facilitator_client, ref, "service.save", **{"kind-en": "No name"})
    assert "Fill in the required fields, in at least one language." in refused.text
    long = action(facilitator_client, ref, "service.save", **{"name-en": "x" * 121})
    assert "This is too long: 120 characters at most." in long.text
    assert len(config_of(palabre_app, ref)["services"]) == 1


def test_criteria_and_scenarios_are_edited_in_preparation(
    palabre_app, make_session, facilitator_client
):
    ref = make_audit(palabre_app, make_session, phase=PREPARATION)
    action(
        facilitator_client,
        ref,
        "criterion.save",
        **{"title-en": "Written follow-up", "guidance-fr": "Un courrier a-t-il suivi ?"},
    )
    criteria = config_of(palabre_app, ref)["criteria"]
    assert criteria[-1]["title"] == {"en": "Written follow-up"}
    assert criteria[-1]["guidance"] == {"fr": "Un courrier a-t-il suivi ?"}
    action(facilitator_client, ref, "item.remove", type="criterion", id=criteria[-1]["id"])
    assert len(config_of(palabre_app, ref)["criteria"]) == 7

    action(
        facilitator_client,
        ref,
        "scenario.save",
        **{"persona-en": "A student", "problem-en": "Refused a visa", "ask-ar": "ماذا أفعل؟"},
    )
    scenario = config_of(palabre_app, ref)["scenarios"][-1]
    assert scenario["ask"] == {"ar": "ماذا أفعل؟"} and scenario["good_answer"] == {}


def test_visits_are_assigned_to_active_evaluator_links_only(
    palabre_app, make_session, facilitator_client
):
    ref = make_audit(palabre_app, make_session, phase=PREPARATION)
    _phone, link_id = evaluator(palabre_app, ref)
    done = action(
        facilitator_client, ref, "assignment.add", link=link_id, service="s1", scenario="p9"
    )
    assert "E-01" in done.text
    twice = action(
        facilitator_client, ref, "assignment.add", link=link_id, service="s1", scenario="p9"
    )
    assert "This evaluator already has this visit." in twice.text
    unknown = action(
        facilitator_client, ref, "assignment.add", link=link_id, service="s9", scenario="p9"
    )
    assert "Choose a service and a scenario of this audit." in unknown.text
    # A service with a visit assigned cannot be removed from under it.
    kept = action(facilitator_client, ref, "item.remove", type="service", id="s1")
    assert "remove those assignments first" in kept.text
    with palabre_app.test_request_context(), write_transaction():
        revoke_role_link(db.session.get(RoleLink, link_id))
    withdrawn = action(
        facilitator_client, ref, "assignment.add", link=link_id, service="s2", scenario="p9"
    )
    assert "Choose an evaluator whose link is active." in withdrawn.text
    assert len(config_of(palabre_app, ref)["assignments"]) == 1


def test_an_evaluator_reads_their_visits_in_their_language(palabre_app, make_session):
    ref = make_audit(palabre_app, make_session, phase=PREPARATION)
    phone, link_id = evaluator(palabre_app, ref, language="fr")
    assign(palabre_app, ref, link_id, "s1", "p9")
    other, other_link = evaluator(palabre_app, ref)
    assign(palabre_app, ref, other_link, "s4", "p9")
    page = phone.page().text
    assert "Évaluateur E-01" in page or "E-01" in page
    assert "Centre juridique de Tower Hamlets" in page
    assert "Une aidante avec un visa de conjointe" in page
    # Not translated: in the audit's first language.
    assert "Her visa ends in two months." in page
    assert "Stepney Visa Consultants" not in page
    # Someone who joined with the session's code is no evaluator.
    stranger = TestPhone(palabre_app, ref.code, palabre_app.test_client()).join()
    assert "This audit is for its evaluators" in stranger.page().text


def test_an_evaluators_scenario_and_rubric_can_be_heard_and_every_action_has_an_icon(
    palabre_app, make_session
):
    """For people who read little: "Listen" reads a scenario and the rubric, each text in
    the language it is written in (the phone's, else the audit's first); the report's
    button carries an icon."""
    ref = make_audit(palabre_app, make_session, phase=PREPARATION)
    phone, link_id = evaluator(palabre_app, ref, language="fr")
    visit = assign(palabre_app, ref, link_id, "s1", "p9")
    page = phone.page().text
    assert read_aloud_targets(page) == [f"#scenario-{visit} > *", "#rubric > *"]
    assert 'lang="fr" dir="ltr">Une aidante avec un visa de conjointe' in page
    assert 'lang="en" dir="ltr">Her visa ends in two months.' in page  # not translated
    assert buttons_without_an_icon(page) == []
    fieldwork = make_audit(palabre_app, make_session, phase=FIELDWORK)
    phone, link_id = evaluator(palabre_app, fieldwork, language="fr")
    visit = assign(palabre_app, fieldwork, link_id, "s1", "p9")
    page = phone.page().text
    assert read_aloud_targets(page) == [f"#scenario-{visit} > *"]
    assert buttons_without_an_icon(page) == []


def test_an_evaluator_link_opened_on_an_arabic_phone_reads_the_rubric_in_arabic(
    palabre_app, make_session
):
    ref = make_audit(palabre_app, make_session, phase=PREPARATION)
    with palabre_app.test_request_context(), write_transaction():
        link = issue_role_link(db.session.get(Session, ref.id), "evaluator")
        path = url_for("role_links.take", code=ref.code, key=link.key)
    browser = palabre_app.test_client()
    headers = {"Accept-Language": "ar,en;q=0.5"}
    assert browser.get(path, headers=headers).status_code == 302
    page = browser.get(f"/j/{ref.code}", headers=headers).text
    with palabre_app.test_request_context():
        arabic = default_audit(4)["criteria"][0]["title"]["ar"]
    assert 'lang="ar" dir="rtl"' in page and arabic in page
    assert "Advice understandable" not in page


def test_the_address_warning_shows_until_a_public_address_is_set(
    palabre_app, make_session, facilitator_client
):
    ref = make_audit(palabre_app, make_session, phase=PREPARATION)
    cafe = make_session("world_cafe")
    warning = "These links are opened away from the venue, but Palabre has no public address"

    def cards(session_id, role) -> str:
        return facilitator_client.get(f"/sessions/{session_id}/links/{role}/cards").text

    palabre_app.config["BASE_URL"] = None
    assert "This audit needs a public address" in facilitator_client.get(f"/sessions/{ref.id}").text
    # The printable cards say so too, on the page, not on paper; a café's hosts are in the room.
    assert f'<p class="no-print flash flash-warning" role="note">{warning}' in cards(
        ref.id, "evaluator"
    )
    assert warning not in cards(cafe.id, "host")
    palabre_app.config["BASE_URL"] = "https://palabre.city.example"
    run = facilitator_client.get(f"/sessions/{ref.id}").text
    assert "This audit needs a public address" not in run
    assert warning not in cards(ref.id, "evaluator")


# --- the stages' rules -----------------------------------------------------------------


def test_each_stage_takes_only_its_own_work(
    palabre_app, make_session, go_to_phase, facilitator_client
):
    ref = make_audit(palabre_app, make_session, phase=PREPARATION)
    phone, link_id = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s1")
    early = report(phone, visit, scores=[3])
    assert early == {"ok": False, "error": "This session is not taking contributions now."}
    assert (
        "Findings are agreed in the debrief."
        in action(facilitator_client, ref, "finding.add", body="Too early").text
    )

    go_to_phase(ref, FIELDWORK)
    assert report(phone, visit, scores=[3])["ok"]
    assert not phone.contribute("context", "Not yet")["ok"]
    fixed = action(facilitator_client, ref, "criterion.save", **{"title-en": "Late criterion"})
    assert "The rubric is fixed once fieldwork has started." in fixed.text
    # New services and visits can still be arranged during the fieldwork.
    action(facilitator_client, ref, "service.save", **{"name-en": "Bow Advice Shop"})
    assert config_of(palabre_app, ref)["services"][-1]["name"] == {"en": "Bow Advice Shop"}
    kept = action(facilitator_client, ref, "assignment.remove", id=visit)
    assert "A report was filed for this visit: it stays." in kept.text

    unreported = assign(palabre_app, ref, link_id, "s2")

    go_to_phase(ref, DEBRIEF)
    late = report(phone, unreported, scores=[2])
    assert late == {
        "ok": False,
        "error": "This part of the session is over: your note was not added.",
    }
    assert (
        "The audit’s preparation is closed once the debrief starts."
        in action(facilitator_client, ref, "service.save", **{"name-en": "Too late"}).text
    )
    assert phone.contribute("context", "The desk was short-staffed that week.")["ok"]
    assert not phone.contribute("finding", "Evaluators do not write findings")["ok"]
    action(facilitator_client, ref, "finding.add", body="Free options were rarely mentioned.")
    [finding] = stored(palabre_app, ref, "finding")
    assert finding["data"]["agreed"] is False
    # Evaluators go through the findings with the facilitator: live on their phones.
    heard = [e["data"] for e in phone.events("contribution.added")]
    assert [e["body"] for e in heard if e["kind"] == "finding"] == [
        "Free options were rarely mentioned."
    ]
    action(facilitator_client, ref, "finding.agree", id=finding["id"], agreed="1")
    assert stored(palabre_app, ref, "finding")[0]["data"]["agreed"] is True
    shared = phone.page().text.split('id="shared-findings"')[1]
    assert 'Free options were rarely mentioned.</span> <span class="badge">Agreed</span>' in shared

    go_to_phase(ref, REPORT)
    assert not phone.contribute("context", "After the debrief")["ok"]


# --- visit reports ------------------------------------------------------------------------


def test_a_visit_report_is_stored_with_its_fields_and_an_ethics_concern_alerts_at_once(
    palabre_app, make_session, facilitator_client
):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    other, other_link = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s4", "p9")
    staff = socketio.test_client(
        palabre_app,
        flask_test_client=facilitator_client,
        auth={"session": ref.code, "view": "facilitator"},
    )

    ack = report(
        phone,
        visit,
        scores=[1, 2, None, 1],
        body="The adviser asked £900 upfront and said the case was certain to win.",
        ethics="1",
        **{"note-c4": "Pushed a paid case; no free option named."},
    )
    assert ack["ok"], ack
    assert stored(palabre_app, ref)[0]["data"] == {
        "assignment": visit,
        "service": "s4",
        "scenario": "p9",
        "code": "E-01",
        "date": date.today().isoformat(),
        "scores": {"c1": 1, "c2": 2, "c4": 1},
        "notes": {"c4": "Pushed a paid case; no free option named."},
        "followed": "yes",
        "ethics": True,
        "minutes": 90,
        "expenses": "4.80",
    }
    alerts = [
        e["data"]
        for r in staff.get_received()
        if r["name"] == "event"
        for e in [r["args"][0]]
        if e["type"] == "contribution.added"
    ]
    assert alerts and alerts[0]["data"]["ethics"] is True
    # Another evaluator's phone does not hear of it.
    assert not [r for r in other.socket.get_received() if r["name"] == "event"]
    run = facilitator_client.get(f"/sessions/{ref.id}").text
    assert 'data-where-ethics="true"' in run and "£900 upfront" in run
    assert "Pushed a paid case; no free option named." in run and "90 minutes, 4.80 GBP" in run


def test_the_run_screen_gets_a_live_report_complete_as_a_reload_shows_it(
    palabre_app, make_session, facilitator_client
):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s4", "p9")
    ack = report(
        phone,
        visit,
        scores=[1, 2, None, 1],
        body="Asked <b>£900</b> upfront.",
        ethics="1",
        **{"note-c4": "Pushed a paid case."},
    )
    other_audit = make_audit(palabre_app, make_session)
    url = f"/mystery-shopping/sessions/{ref.id}/visits?ids={ack['id']},oops,99999"
    items = facilitator_client.get(url)
    assert items.status_code == 200
    html = items.text
    reports, concerns = html.split('data-items-for="concerns"')
    for part in (reports, concerns):
        assert f'data-contribution-id="{ack["id"]}"' in part
        assert "Asked &lt;b&gt;£900&lt;/b&gt; upfront." in part
        assert "Stepney Visa Consultants" in part and "E-01" in part
        assert "A carer on a spouse visa" in part  # the scenario
        assert "Pushed a paid case." in part and "90 minutes, 4.80 GBP" in part
        assert "Ethics concern" in part
    assert "Hide" in reports
    # The items a reload shows are the same.
    run = facilitator_client.get(f"/sessions/{ref.id}").text
    start = reports.index("<li")
    item = reports[start : reports.index("</li>", start)]
    assert item in run
    # Another audit's reports are not shown through this audit's address.
    assert (
        'data-contribution-id="'
        not in facilitator_client.get(
            f"/mystery-shopping/sessions/{other_audit.id}/visits?ids={ack['id']}"
        ).text.split("<ul")[1]
    )


def test_a_report_may_be_posted_without_javascript(palabre_app, make_session):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s2")
    page = phone.page()
    assert 'data-visit-draft="' in page.text
    response = phone.client.post(
        f"/j/{ref.code}/contribute",
        data={
            "csrf_token": csrf_token(page.text),
            "cid": new_cid(),
            "kind": "visit",
            "body": "Seen after ten minutes, clear answer.",
            "assignment": visit,
            "date": date.today().isoformat(),
            "score-c1": "4",
            "score-c2": "",
            "followed": "partly",
            "minutes": "45",
            "expenses": "2,40",
        },
    )
    assert response.status_code == 302
    data = stored(palabre_app, ref)[0]["data"]
    assert data["scores"] == {"c1": 4}
    assert data["expenses"] == "2.40" and data["followed"] == "partly"
    assert "The report of this visit was already sent." in phone.page().text


def test_the_first_visit_still_to_report_is_open_on_the_phone(palabre_app, make_session):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    first, second = assign(palabre_app, ref, link_id, "s1"), assign(palabre_app, ref, link_id, "s2")

    def opened(page: str) -> list[str]:
        return re.findall(r'<details class="visit card" open>\s*<summary[^>]*>([^<]*)<', page)

    assert opened(phone.page().text) == ["Tower Hamlets Law Centre · To report"]
    assert f'value="{first}"' in phone.page().text
    assert report(phone, first, scores=[3])["ok"]
    page = phone.page().text
    assert opened(page) == ["East End Advice Desk · To report"]
    assert "Tower Hamlets Law Centre · Report sent</summary>" in page
    assert f'name="assignment" value="{second}"' in page


def test_a_report_refused_without_javascript_comes_back_with_every_field_and_each_problem(
    palabre_app, make_session
):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref, language="fr")
    assign(palabre_app, ref, link_id, "s1")
    visit = assign(palabre_app, ref, link_id, "s2")
    page = phone.page()
    sent = {
        "cid": new_cid(),
        "kind": "visit",
        "body": "On m’a demandé 500 £ pour <b>un dossier</b> sans espoir.",
        "assignment": visit,
        "date": date.today().isoformat(),
        "score-c1": "9",
        "score-c2": "3",
        "note-c2": "Jargon juridique",
        "followed": "partly",
        "ethics": "1",
        "minutes": "45",
        "expenses": "4,5x",
    }
    response = phone.client.post(
        f"/j/{ref.code}/contribute", data={"csrf_token": csrf_token(page.text), **sent}
    )
    assert response.status_code == 400
    html = response.text
    # The message on top, in French, and each problem beside its field.
    assert "Le rapport n’a pas été envoyé\u00a0: 2 réponses sont à corriger" in html
    for field, message in (
        ("score-c1", "Notez «\u00a0Conseil compréhensible\u00a0» de 1 à 4."),
        ("expenses", "Indiquez les frais sous forme de montant, par exemple 4.50."),
    ):
        assert (
            f'id="problem-{visit}-{field}" data-problem-for="{field}" role="alert">{message}</p>'
            in html
        )
    assert f'id="problem-{visit}-minutes" data-problem-for="minutes" role="alert" hidden>' in html
    # Everything typed is back in its field, HTML as text; the other visit's form is untouched.
    assert (
        ">On m’a demandé 500 £ pour &lt;b&gt;un dossier&lt;/b&gt; sans espoir.</textarea>" in html
    )
    assert ">Jargon juridique</textarea>" in html
    assert 'name="score-c2" value="3" checked>' in html
    assert 'name="followed" value="partly" required checked>' in html
    assert f'id="ethics-{visit}" name="ethics" value="1" checked>' in html
    assert 'name="minutes" min="0" max="1440" inputmode="numeric" value="45"' in html
    assert f'value="4,5x" aria-describedby="problem-{visit}-expenses" aria-invalid="true">' in html
    # Checked: this visit's seven criteria (c2 at 3, the others "not observed", the score
    # off the scale too), its "followed" and ethics boxes; the other visit's defaults.
    assert html.count(" checked>") == (7 + 1 + 1) + (7 + 1)
    assert stored(palabre_app, ref) == []

    # Corrected and sent again (a fresh page's token), it is stored once.
    fixed = {**sent, "score-c1": "2", "expenses": "4,50"}
    response = phone.client.post(
        f"/j/{ref.code}/contribute", data={"csrf_token": csrf_token(html), **fixed}
    )
    assert response.status_code == 302
    [visit_report] = stored(palabre_app, ref)
    assert visit_report["data"]["scores"] == {"c1": 2, "c2": 3}
    assert visit_report["data"]["ethics"] is True


def test_a_refused_report_over_the_socket_names_each_field_at_fault(palabre_app, make_session):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s1")
    ack = report(phone, visit, scores=[3, 7], body="", minutes="-1")
    assert ack == {
        "ok": False,
        "error": "Write something before sending.",
        "fields": {"body": "Write something before sending."},
    }
    ack = report(phone, visit, scores=[3, 7], minutes="-1", date="")
    assert ack["error"] == "The report was not sent: 3 answers need correcting, marked below."
    assert ack["fields"] == {
        "date": "Give the date of the visit.",
        "score-c2": "Give “Advice accurate” a score from 1 to 4.",
        "minutes": "Give the time the visit took, in minutes (at most a day).",
    }
    # A refusal that is about no one field names none.
    ack = report(phone, "a999", scores=[3])
    assert ack == {
        "ok": False,
        "error": "This visit is not assigned to you. Choose one of your visits.",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"score-c1": "5"}, "Give “Advice understandable” a score from 1 to 4."),
        ({"score-c2": "0"}, "Give “Advice accurate” a score from 1 to 4."),
        ({"score-c1": "three"}, "a score from 1 to 4"),
        ({"note-c1": "x" * 501}, "too long: 500 characters at most"),
        ({"date": "yesterday"}, "Give the date of the visit."),
        ({"date": (date.today() + timedelta(days=9)).isoformat()}, "cannot be in the future"),
        ({"followed": "maybe"}, "Say whether you could follow the scenario."),
        ({"minutes": "-5"}, "in minutes"),
        ({"expenses": "=1+2"}, "Give the expenses as an amount"),
        ({"expenses": "99999"}, "need the facilitator"),
        ({"assignment": "a999"}, "This visit is not assigned to you."),
    ],
)
def test_a_bad_report_is_refused_with_a_clear_message(palabre_app, make_session, fields, message):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s1")
    ack = report(phone, visit, scores=[3, 3], **fields)
    assert not ack["ok"] and message in ack["error"]
    assert stored(palabre_app, ref) == []


def test_a_report_for_someone_elses_visit_is_refused(palabre_app, make_session):
    ref = make_audit(palabre_app, make_session)
    phone, _link = evaluator(palabre_app, ref)
    _other, other_link = evaluator(palabre_app, ref)
    theirs = assign(palabre_app, ref, other_link, "s3")
    ack = report(phone, theirs, scores=[2])
    assert ack == {
        "ok": False,
        "error": "This visit is not assigned to you. Choose one of your visits.",
    }


def test_a_withdrawn_code_files_no_report_and_its_reports_stay(palabre_app, make_session):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    first, second = assign(palabre_app, ref, link_id, "s1"), assign(palabre_app, ref, link_id, "s2")
    assert report(phone, first, scores=[4])["ok"]
    with palabre_app.test_request_context(), write_transaction():
        revoke_role_link(db.session.get(RoleLink, link_id))
    ack = report(phone, second, scores=[4])
    assert ack == {"ok": False, "error": "Your evaluator link was withdrawn: nothing was stored."}
    assert [v["data"]["code"] for v in stored(palabre_app, ref)] == ["E-01"]
    assert "Your evaluator link was withdrawn." in phone.page().text


def test_a_report_sent_twice_is_stored_once(palabre_app, make_session):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s1")
    payload = {
        "cid": new_cid(),
        "kind": "visit",
        "body": "Long queue.",
        "assignment": visit,
        "date": date.today().isoformat(),
        "followed": "no",
    }
    first = phone.socket.emit("contribute", payload, callback=True)
    again = phone.socket.emit("contribute", payload, callback=True)
    assert first["ok"] and again == first
    # The same visit reported again from a fresh form is refused, not stored twice.
    other = report(phone, visit, scores=[1])
    assert other == {"ok": False, "error": "The report of this visit was already sent. Thank you!"}
    assert len(stored(palabre_app, ref)) == 1


def test_a_report_resent_before_the_first_was_stored_gets_the_first_answer(
    palabre_app, make_session, monkeypatch
):
    """Two copies at once (a phone's outbox resending): the second passes the checks made
    before the write lock, as the first did (its client id is looked for there only when a
    check refuses it). It then meets the first under the lock and gets its answer, instead
    of being refused as a second report of the visit."""
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s1")
    payload = {
        "cid": new_cid(),
        "kind": "visit",
        "body": "Long queue.",
        "assignment": visit,
        "date": date.today().isoformat(),
        "followed": "no",
    }
    first = phone.socket.emit("contribute", payload, callback=True)
    look_for = contributions._existing
    looked_under_the_lock = []

    def looked_for(session_id, client_id):
        looked_under_the_lock.append(palabre_app.extensions[WRITE_LOCK_KEY].held_by_current())
        return look_for(session_id, client_id)

    monkeypatch.setattr(contributions, "_existing", looked_for)
    again = phone.socket.emit("contribute", payload, callback=True)
    assert first["ok"] and again == first
    assert looked_under_the_lock == [True]
    assert len(stored(palabre_app, ref)) == 1


def test_an_oversized_report_is_refused_and_html_is_shown_as_text(
    palabre_app, make_session, facilitator_client
):
    ref = make_audit(palabre_app, make_session)
    phone, link_id = evaluator(palabre_app, ref)
    visit = assign(palabre_app, ref, link_id, "s1")
    too_long = report(phone, visit, body="x" * 4001)
    assert not too_long["ok"] and "4000 characters at most" in too_long["error"]
    html = '<script>alert("x")</script><b>bold</b>'
    assert report(phone, visit, scores=[2], body=html, **{"note-c1": html})["ok"]
    run = facilitator_client.get(f"/sessions/{ref.id}").text
    assert html not in run
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in run


def test_structured_fields_reach_only_kinds_that_declare_them(
    palabre_app, make_session, make_phone
):
    # The forum theatre's reflection, after its three default scenes, takes answers.
    theatre = make_session("forum_theatre", phase=4)
    phone = make_phone(theatre.code)
    ack = phone.contribute("answer", "The forms", score="5", injected={"x": 1})
    assert ack == {"ok": True, "id": ack["id"], "data": {}}
    assert stored(palabre_app, theatre, "answer")[0]["data"] == {}


# --- the scorecard, six evaluators and four services --------------------------------------

#: Scores of the criteria c1..c7 per report, by service. s1 has six reports, s2 three,
#: s3 two (under the small-number rule), s4 none.
SCORES = {
    "s1": [
        [4, 4, 3, None, 4, 2, 4],
        [3, 4, 2, None, 4, 2, 4],
        [4, 3, 3, 4, 4, 1, 4],
        [2, 3, 1, 4, 3, 2, 4],
        [4, 4, 3, 4, 4, 2, 3],
        [3, 4, 2, 3, 4, 1, 4],
    ],
    "s2": [[2, 1, 1, 2, 1, 3, 2], [1, 2, 1, 1, 2, 3, 2], [2, 2, 1, 1, 1, 4, 2]],
    "s3": [[1, 1, 1, 1, 1, 1, 1], [4, 4, 4, 4, 4, 4, 4]],
}


@pytest.fixture
def toynbee(palabre_app, make_session):
    """An audit in its debrief: six evaluators' reports on four advice services."""
    ref = make_audit(palabre_app, make_session)
    phones = [evaluator(palabre_app, ref) for _ in range(6)]
    for service, reports in SCORES.items():
        for number, scores in enumerate(reports):
            phone, link_id = phones[number]
            visit = assign(palabre_app, ref, link_id, service, "p9")
            ack = report(
                phone, visit, scores, body=f"Visit {number + 1} to {service}: <i>long wait</i>."
            )
            assert ack["ok"], ack
    with palabre_app.test_request_context():
        from palabre import phases

        phases.go_to(db.session.get(Session, ref.id), DEBRIEF)
    return ref


def test_the_scorecard_shows_distributions_per_service_and_criterion(palabre_app, toynbee):
    from palabre.plugin_host import get_method

    with palabre_app.test_request_context():
        session = db.session.get(Session, toynbee.id)
        cards = get_method("mystery_shopping").view_context(session, "projector")["scorecard"]
    law, desk, poplar, stepney = cards
    assert (law["reports"], desk["reports"], poplar["reports"], stepney["reports"]) == (6, 3, 2, 0)
    assert law["shown"] and desk["shown"] and not poplar["shown"] and not stepney["shown"]
    understandable, accurate, free, ethics, language, waiting, access = law["rows"]
    assert understandable["counts"] == [0, 1, 2, 3] and understandable["mean"] == 3.3
    assert waiting["counts"] == [2, 4, 0, 0] and waiting["mean"] == 1.7
    assert ethics["counts"] == [0, 0, 1, 3] and ethics["unscored"] == 2
    assert desk["rows"][0]["counts"] == [1, 2, 0, 0]
    # Under the rule: no distribution, no mean, from which two evaluators could be told apart.
    assert all(row["counts"] == [] and row["mean"] is None for row in poplar["rows"])


def test_a_criterion_scored_fewer_than_three_times_shows_no_figures(palabre_app, make_session):
    from palabre.plugin_host import get_method

    ref = make_audit(palabre_app, make_session)
    for number in range(3):
        phone, link_id = evaluator(palabre_app, ref)
        scores = [3, 4 if number == 0 else None]
        assert report(phone, assign(palabre_app, ref, link_id, "s1"), scores)["ok"]
    with palabre_app.test_request_context():
        session = db.session.get(Session, ref.id)
        card = get_method("mystery_shopping").view_context(session, "projector")["scorecard"][0]
    assert card["shown"]
    assert card["rows"][0]["counts"] == [0, 0, 3, 0]
    assert card["rows"][1] | {"criterion": None} == {
        "criterion": None,
        "counts": [],
        "scored": 1,
        "unscored": 2,
        "shown": False,
        "mean": None,
    }


def test_the_small_number_rule_holds_on_screen(facilitator_client, toynbee):
    run = facilitator_client.get(f"/sessions/{toynbee.id}").text
    assert run.count('class="score-chart"') == 2
    assert run.count("Fewer than 3 reports on this service (2)") == 1
    assert run.count("No visit report on this service.") == 1
    assert "<title" in run and "<desc" in run


def test_the_projector_shows_only_the_agreed_findings_in_the_report(
    facilitator_client, go_to_phase, toynbee
):
    def projector() -> str:
        return facilitator_client.get(f"/sessions/{toynbee.id}/projector").text

    assert "Context from the evaluators" in projector()
    action(facilitator_client, toynbee, "finding.add", body="Waits are <b>long</b>.", service="s1")
    [finding] = stored(facilitator_client.application, toynbee, "finding")
    go_to_phase(toynbee, REPORT)
    assert "No findings were agreed." in projector()
    go_to_phase(toynbee, DEBRIEF)
    action(facilitator_client, toynbee, "finding.agree", id=finding["id"], agreed="1")
    action(facilitator_client, toynbee, "finding.add", body="Not agreed, not shown.")
    go_to_phase(toynbee, REPORT)
    shown = projector()
    assert "Waits are &lt;b&gt;long&lt;/b&gt;." in shown and "Not agreed, not shown." not in shown
    assert "No findings were agreed." not in shown and "E-0" not in shown


# --- findings, the backlog and the report ------------------------------------------------


def agreed_finding(app, client, ref, body, **fields):
    action(client, ref, "finding.add", body=body, **fields)
    finding = stored(app, ref, "finding")[-1]
    action(client, ref, "finding.agree", id=finding["id"], agreed="1")
    return finding


def evaluation_entries(app) -> list[dict]:
    """Every evaluation entry of the backlog: its action, text and evidence."""
    with app.app_context():
        return [
            {
                "action": u.action_id,
                "method": u.method,
                "body": u.body,
                "session": u.evidence_session_id,
                "finding": u.evidence_contribution_id,
            }
            for u in db.session.scalars(
                select(ActionUpdate)
                .where(ActionUpdate.kind == "evaluation")
                .order_by(ActionUpdate.action_id)
            )
        ]


@pytest.fixture
def two_actions(palabre_app) -> tuple[int, int]:
    """The plan's actions an audit evaluates: one names an audited service, one does not."""
    with palabre_app.test_request_context(), write_transaction():
        training = Action(title="Train advice staff at the East End Advice Desk")
        legal_aid = Action(title="Fund free legal aid sessions")
        db.session.add_all([training, legal_aid])
        db.session.flush()
        return training.id, legal_aid.id


def test_an_agreed_finding_is_recorded_as_an_evaluation_of_the_actions_it_evaluates(
    palabre_app, facilitator_client, toynbee, two_actions
):
    training, legal_aid = two_actions
    with palabre_app.test_request_context(), write_transaction():
        audit_method = f"Mystery-shopping audit “{db.session.get(Session, toynbee.id).title}”"
        db.session.add(
            ActionUpdate(action_id=training, kind="evaluation", method="Survey", body="Typed")
        )
    action(
        facilitator_client,
        toynbee,
        "finding.add",
        body="Advisers rarely mention free legal aid.",
        service="s2",
        criterion="c3",
    )
    [finding] = stored(palabre_app, toynbee, "finding")
    page = facilitator_client.get(f"/sessions/{toynbee.id}").text
    # The action naming the finding's service is offered first, marked.
    assert page.index("Train advice staff at the East End") < page.index("Fund free legal aid")
    assert page.count("names this service") == 1

    def link(*actions, **fields):
        return action(
            facilitator_client,
            toynbee,
            "finding.link",
            id=finding["id"],
            actions=[str(a) for a in actions],
            **fields,
        )

    link(training, legal_aid)
    # Linked but not agreed yet: nothing is recorded.
    assert [e["method"] for e in evaluation_entries(palabre_app)] == ["Survey"]
    for _twice in range(2):
        action(facilitator_client, toynbee, "finding.agree", id=finding["id"], agreed="1")
    entries = [e for e in evaluation_entries(palabre_app) if e["finding"]]
    assert [e["action"] for e in entries] == [training, legal_aid]
    for entry in entries:
        assert entry["session"] == toynbee.id and entry["finding"] == finding["id"]
        assert entry["method"] == audit_method
        assert entry["body"] == (
            "Advisers rarely mention free legal aid. — "
            "About: East End Advice Desk · Free options mentioned."
        )
        assert "E-0" not in entry["body"] + entry["method"]
    run = facilitator_client.get(f"/sessions/{toynbee.id}").text
    assert "Recorded as evaluation of:" in run

    # The action's page and the council's monitoring report show it, with its evidence.
    action_page = facilitator_client.get(f"/backlog/actions/{legal_aid}").text
    assert "Advisers rarely mention free legal aid." in action_page
    assert f"/sessions/{toynbee.id}" in action_page
    from palabre.policy_cycle import monitoring_context

    with palabre_app.test_request_context():
        recent = monitoring_context(date.today() - timedelta(days=1))["recent"]
        monitored = [u for _action, updates in recent for u in updates if u.kind == "evaluation"]
        assert {u.evidence_session_id for u in monitored if u.method != "Survey"} == {toynbee.id}

    # Unlinked from one action, its entry there goes; the team's own entry stays.
    link(training)
    assert [(e["action"], e["method"]) for e in evaluation_entries(palabre_app)] == [
        (training, "Survey"),
        (training, audit_method),
    ]
    # No longer agreed, it is evidence for nothing.
    action(facilitator_client, toynbee, "finding.agree", id=finding["id"], agreed="0")
    assert [e["method"] for e in evaluation_entries(palabre_app)] == ["Survey"]


def test_a_findings_links_are_checked_and_kept_to_the_debrief(
    palabre_app, facilitator_client, toynbee, go_to_phase, two_actions
):
    training, _legal_aid = two_actions
    action(facilitator_client, toynbee, "finding.add", body="Long waits")
    [finding] = stored(palabre_app, toynbee, "finding")
    page = action(facilitator_client, toynbee, "finding.link", id=finding["id"], actions=["99999"])
    assert "This action is not in the backlog any more. Reload the page." in page.text
    page = action(facilitator_client, toynbee, "finding.link", id="99999", actions=[training])
    assert "This finding does not exist." in page.text
    assert stored(palabre_app, toynbee, "finding")[0]["data"]["actions"] == []
    go_to_phase(toynbee, FIELDWORK)
    page = action(facilitator_client, toynbee, "finding.link", id=finding["id"], actions=[training])
    assert "Findings are agreed in the debrief." in page.text
    assert stored(palabre_app, toynbee, "finding")[0]["data"]["actions"] == []


def test_agreed_findings_become_the_needs_or_actions_the_debrief_proposed(
    palabre_app, facilitator_client, toynbee
):
    agreed_finding(
        palabre_app,
        facilitator_client,
        toynbee,
        "Advisers rarely mention free legal aid.",
        service="s2",
        criterion="c3",
    )
    as_action = agreed_finding(
        palabre_app, facilitator_client, toynbee, "Publish a list of free advice desks."
    )
    action(facilitator_client, toynbee, "finding.link", id=as_action["id"], propose="action")
    evidence_only = agreed_finding(palabre_app, facilitator_client, toynbee, "Seats are fine.")
    action(facilitator_client, toynbee, "finding.link", id=evidence_only["id"], propose="none")
    action(facilitator_client, toynbee, "finding.add", body="Not agreed, stays out.")
    from palabre.plugin_host import get_method

    with palabre_app.test_request_context():
        session = db.session.get(Session, toynbee.id)
        candidates = get_method("mystery_shopping").backlog_candidates(session)
    assert [(c.title, c.kind) for c in candidates] == [
        ("Advisers rarely mention free legal aid.", "need"),
        ("Publish a list of free advice desks.", "action"),
    ]
    description = candidates[0].description
    assert "East End Advice Desk" in description and "Free options mentioned" in description
    assert candidates[0].theme == "services"

    page = facilitator_client.get(f"/backlog/from-session/{toynbee.id}")
    assert "Advisers rarely mention free legal aid." in page.text
    form = {"csrf_token": csrf_token(page.text)}
    form.update({f"take-{c.key}": "1" for c in candidates})
    facilitator_client.post(f"/backlog/from-session/{toynbee.id}", data=form)
    with palabre_app.app_context():
        need = db.session.scalar(select(Need))
        assert need.title == "Advisers rarely mention free legal aid."
        assert need.theme == "services" and "East End Advice Desk" in need.description
        assert db.session.scalar(select(NeedSource)).session_id == toynbee.id
        titles = db.session.scalars(select(Action.title)).all()
        assert titles == ["Publish a list of free advice desks."]


def pdf_text(data: bytes) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    )
    return done.stdout.decode()


@pytest.mark.pdf
def test_the_audit_report_prints_scorecards_quotes_and_findings_but_no_codes(
    palabre_app, facilitator_client, go_to_phase, toynbee, tmp_path
):
    agreed_finding(
        palabre_app,
        facilitator_client,
        toynbee,
        "Waiting times at the law centre are <em>long</em>.",
        service="s1",
    )
    # Written in the debrief but never agreed: it stays off the report for the services.
    action(facilitator_client, toynbee, "finding.add", body="Draft: the desk seemed rude.")
    go_to_phase(toynbee, REPORT)
    response = facilitator_client.get(f"/print/sessions/{toynbee.id}/report.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    text = " ".join(pdf_text(response.data).split())
    assert "MYSTERY SHOPPING AUDIT REPORT" in text.upper()
    # In the agreed findings and under its service; the appendix holds what evaluators wrote.
    assert text.count("Waiting times at the law centre are <em>long</em>.") == 2
    assert "the desk seemed rude" not in text
    assert "Scores given to Tower Hamlets Law Centre, by criterion" in text
    assert text.count("Fewer than 3 reports on this service (2)") == 1
    assert text.count("No visit report on this service.") == 1
    assert "<i>long wait</i>" in text  # HTML printed as text
    assert "E-01" not in text and "E-06" not in text
    assert date.today().isoformat() not in text
    pages = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-", str(pages)], input=response.data, check=True
    )
    assert len(list(tmp_path.glob("page*.png"))) >= 2
    # Each text of the appendix names the language it was written in, for the PDF's tags.
    with palabre_app.test_request_context():
        session = db.session.get(Session, toynbee.id)
        written = [t for _h, texts in MysteryShopping().raw_answers(session) for t in texts]
    assert written and {text.lang for text in written} == {"en"}


# --- the payment sheet ---------------------------------------------------------------------


def test_the_payment_sheet_sums_time_and_expenses_per_evaluator_code(
    palabre_app, facilitator_client, toynbee
):
    response = facilitator_client.get(f"/mystery-shopping/sessions/{toynbee.id}/payments.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0] == [
        "Evaluator code",
        "Visits",
        "Minutes",
        "Expenses",
        "Pay for time",
        "Total",
        "Currency",
    ]
    # E-01 and E-02 filed a report on each of s1, s2, s3; E-03 on s1 and s2; the rest on s1.
    by_code = {row[0]: row[1:] for row in rows[1:]}
    assert by_code["E-01"] == ["3", "270", "14.40", "54.00", "68.40", "GBP"]
    assert by_code["E-03"] == ["2", "180", "9.60", "36.00", "45.60", "GBP"]
    assert by_code["E-06"] == ["1", "90", "4.80", "18.00", "22.80", "GBP"]
    assert len(rows) == 7


def test_the_payment_sheet_cannot_carry_a_formula(palabre_app, make_session, facilitator_client):
    ref = make_audit(palabre_app, make_session, currency='=HYPERLINK("http://x")')
    phone, link_id = evaluator(palabre_app, ref)
    assert report(phone, assign(palabre_app, ref, link_id, "s1"))["ok"]
    response = facilitator_client.get(f"/mystery-shopping/sessions/{ref.id}/payments.csv")
    assert "'=HYPERLINK" in response.data.decode("utf-8-sig")
    assert [spreadsheet_cell(v) for v in ("+1", "-1", "@x", "E-01", "12")] == [
        "'+1",
        "'-1",
        "'@x",
        "E-01",
        "12",
    ]


def test_the_payment_sheet_is_for_facilitators_only(palabre_app, make_session):
    ref = make_audit(palabre_app, make_session)
    response = palabre_app.test_client().get(f"/mystery-shopping/sessions/{ref.id}/payments.csv")
    assert response.status_code in (302, 401)
    with palabre_app.test_client().get("/mystery-shopping/static/visit.js") as script:
        assert script.status_code == 200


def test_fields_of_the_wrong_shape_are_refused_not_crashed_on(
    palabre_app, make_session, facilitator_client
):
    ref = make_audit(palabre_app, make_session, phase=DEBRIEF)
    phone, _link = evaluator(palabre_app, ref)
    # A list where one value is expected: a context about no service, kept without it.
    ack = phone.contribute("context", "Busy week.", service=["s1", "s2"])
    assert ack["ok"] and ack["data"] == {}
    removed = action(facilitator_client, ref, "item.remove", type=["service", "x"], id="s1")
    assert "This item is not part of the audit any more." in removed.text
