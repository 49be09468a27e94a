"""Retention: an old session's contributions lose their text; counts and provenance stay."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from sqlalchemy import func, select

from palabre.backlog import session_needs
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.models import Contribution, Event, Participant, Session, Vote
from palabre.policy_cycle import action_plan_context
from palabre.printing import document_html
from palabre.retention import (
    add_months,
    purge_command,
    purge_due,
    purge_session,
    sessions_due,
)
from palabre.settings import RETENTION_MONTHS, save_settings
from palabre.testing.kit import sign_in
from palabre.transfer import export_session
from tests.test_printing import pdf_text
from tests.test_transfer import build_cafe, build_forum, harvest_everything

TEXTS = (
    "سكن بأسعار معقولة قرب المدرسة",
    "Des cours de langue le soir",
    "Something rude about a neighbour",
    "Housing near schools",
    "Evening language classes",
)


def closed_long_ago(app, ref, months=13) -> None:
    with app.app_context(), write_transaction():
        session = db.session.get(Session, ref.id)
        session.closed_at = add_months(datetime(2026, 11, 30, 10), -months)


def counts(app, session_id: int) -> dict:
    with app.test_request_context():
        session = db.session.get(Session, session_id)

        def count(model):
            return db.session.scalar(
                select(func.count()).select_from(model).where(model.session_id == session_id)
            )

        return {
            "contributions": count(Contribution),
            "participants": count(Participant),
            "votes": count(Vote),
            "needs": [
                (n.title, n.support.people, n.support.dots, n.support.sessions, len(n.sources))
                for n in session_needs(session)
            ],
        }


def test_months_are_calendar_months():
    assert add_months(datetime(2026, 3, 31, 9), -1) == datetime(2026, 2, 28, 9)
    assert add_months(datetime(2025, 12, 15), 12) == datetime(2026, 12, 15)
    assert add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)


def test_nothing_is_due_until_an_administrator_sets_a_period(app):
    ref = build_cafe(app)
    closed_long_ago(app, ref, months=120)
    with app.app_context():
        assert sessions_due() == []
        save_settings({RETENTION_MONTHS: "12"})
        assert [s.id for s in sessions_due()] == [ref.id]


def test_a_session_may_keep_its_own_period(app):
    kept, short = build_cafe(app), build_forum(app)
    closed_long_ago(app, kept, months=13)
    closed_long_ago(app, short, months=3)
    with app.app_context():
        save_settings({RETENTION_MONTHS: "12"})
        with write_transaction():
            db.session.get(Session, kept.id).retention_months = 0  # for good
            db.session.get(Session, short.id).retention_months = 2
        assert [s.id for s in sessions_due(datetime(2026, 11, 30, 12))] == [short.id]


def test_a_live_session_is_never_purged(app):
    ref = build_cafe(app)
    closed_long_ago(app, ref)
    with app.app_context(), write_transaction():
        db.session.get(Session, ref.id).status = "live"
    with app.app_context():
        save_settings({RETENTION_MONTHS: "1"})
        assert sessions_due() == []


def test_purge_empties_the_text_and_keeps_every_count(app):
    ref = build_cafe(app)
    harvest_everything(app, ref)
    closed_long_ago(app, ref)
    before = counts(app, ref.id)
    with app.test_request_context():
        save_settings({RETENTION_MONTHS: "12"})
        [purged] = purge_due()
        assert purged.session_id == ref.id and purged.contributions == 5
        session = db.session.get(Session, ref.id)
        assert session.purged_at is not None
        rows = db.session.scalars(
            select(Contribution).where(Contribution.session_id == ref.id)
        ).all()
        assert {(c.body, json.dumps(c.data)) for c in rows} == {("", "{}")}
    assert counts(app, ref.id) == before
    # The replay log keeps its sequence, never the text.
    with app.app_context():
        stored = json.dumps(
            [e.data for e in db.session.scalars(select(Event).where(Event.session_id == ref.id))],
            ensure_ascii=False,
        )
    assert stored != "[]"
    assert not any(text in stored for text in TEXTS)
    # Purging again changes nothing.
    with app.test_request_context():
        assert purge_session(ref.id).contributions == 0


def test_provenance_of_purged_contributions_reads_sensibly(app):
    ref = build_cafe(app)
    harvest_everything(app, ref)
    closed_long_ago(app, ref)
    with app.test_request_context():
        save_settings({RETENTION_MONTHS: "12"})
        purge_due()
        need_id = session_needs(db.session.get(Session, ref.id))[0].id
    staff = sign_in(app.test_client())
    need_page = staff.get(f"/backlog/needs/{need_id}").text
    assert re.search(
        r"1 contribution, purged on \w+ \d+, \d{4} under the retention policy", need_page
    )
    assert not any(text in need_page for text in TEXTS[:3])
    run = staff.get(f"/sessions/{ref.id}").text
    assert "deleted on" in run and "under the retention policy" in run
    assert "Housing near schools" in run  # the need it fed, not the contribution
    assert "5 contributions, their text purged" in run
    with app.test_request_context():
        plan = document_html("print/action_plan.html", "action-plan", None, **action_plan_context())
    assert "purged on" in plan
    assert not any(text in plan for text in TEXTS[:3])
    # The participant's page: the closing page with what became of the session.
    with app.app_context():
        code = db.session.get(Session, ref.id).code
    closed = app.test_client().get(f"/j/{code}").text
    assert "Housing near schools" in closed


@pytest.mark.pdf
def test_a_purged_sessions_report_prints_its_counts_and_needs(app):
    ref = build_cafe(app)
    harvest_everything(app, ref)
    closed_long_ago(app, ref)
    with app.test_request_context():
        save_settings({RETENTION_MONTHS: "12"})
        purge_due()
    report = sign_in(app.test_client()).get(f"/print/sessions/{ref.id}/report.pdf")
    text = " ".join(pdf_text(report).split())
    assert "under the retention policy" in text
    assert "Housing near schools" in text
    assert "Des cours de langue" not in text


def test_an_export_after_the_purge_carries_no_purged_text(app):
    ref = build_forum(app)
    harvest_everything(app, ref)
    closed_long_ago(app, ref)
    with app.test_request_context():
        save_settings({RETENTION_MONTHS: "12"})
        purge_due()
        document = export_session(db.session.get(Session, ref.id))
    text = json.dumps(document, ensure_ascii=False)
    assert "No interpreter" not in text and "Nobody explained the letter" not in text
    assert document["session"]["purged_at"]
    # The needs and their support travel: only the contributions' text is gone.
    assert document["needs"] and document["needs"][0]["title"] == "Nobody speaks my language"


def test_a_purged_session_cannot_be_reopened(app):
    ref = build_cafe(app)
    closed_long_ago(app, ref)
    with app.test_request_context():
        save_settings({RETENTION_MONTHS: "12"})
        purge_due()
    staff = sign_in(app.test_client())
    page = staff.get(f"/sessions/{ref.id}")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token is None or staff.post(
        f"/sessions/{ref.id}/reopen", data={"csrf_token": token.group(1)}
    )
    with app.app_context():
        assert db.session.get(Session, ref.id).status == "closed"


def test_the_purge_command_lists_then_purges(app):
    ref = build_cafe(app)
    closed_long_ago(app, ref)
    runner = app.test_cli_runner()
    nothing = runner.invoke(purge_command, [])
    assert "No session is due for purging" in nothing.output
    with app.app_context():
        save_settings({RETENTION_MONTHS: "12"})
    dry = runner.invoke(purge_command, ["--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"Would purge Session {ref.id}" in dry.output and "5 contributions" in dry.output
    assert "Nothing was changed" in dry.output
    with app.app_context():
        assert db.session.get(Session, ref.id).purged_at is None
    done = runner.invoke(purge_command, [])
    assert done.exit_code == 0, done.output
    assert f"Purged Session {ref.id}" in done.output
    with app.app_context():
        assert db.session.get(Session, ref.id).purged_at is not None


def test_administrators_set_the_period_on_the_settings_page(app):
    staff = sign_in(app.test_client())
    page = staff.get("/settings/")
    assert 'name="retention_months"' in page.text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    staff.post(
        "/settings/", data={"csrf_token": token, "organiser_name": "", "retention_months": "18"}
    )
    with app.app_context():
        from palabre.retention import instance_retention

        assert instance_retention() == 18
    refused = staff.post(
        "/settings/", data={"csrf_token": token, "organiser_name": "", "retention_months": "-3"}
    )
    assert refused.status_code == 400 and "field-error" in refused.text
