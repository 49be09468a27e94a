"""The backlog's pages: needs, merging duplicates, actions, and harvesting a session into it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from palabre import contributions
from palabre.backlog import create_need
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.models import (
    Action,
    Need,
    NeedSource,
    Participant,
    Session,
    Stakeholder,
    Vote,
    hash_token,
)
from tests.conftest import csrf_token, new_cid, post_form

SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def staff(client, auth):
    auth.login()
    return client


def all_needs(app) -> list[Need]:
    with app.app_context():
        needs = db.session.scalars(select(Need).order_by(Need.id)).all()
        for need in needs:  # load what the tests read before the session ends
            _ = [(s.session_id, s.contribution_id) for s in need.sources], need.actions
        return needs


def add_need(client, title, theme="other", description=""):
    return post_form(
        client,
        "/backlog/needs/new",
        "/backlog/needs/new",
        {"title": title, "theme": theme, "description": description, "submit": "1"},
    )


@pytest.fixture
def harvest(app, make_cafe):
    """A café in its harvest phase with two key insights; the first has two dots."""
    code = make_cafe(status="live", phase_index=4)  # welcome, 3 rounds, then the harvest
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        with write_transaction():
            voter = Participant(
                session_id=session.id, token_hash=hash_token("voter"), language="en", group="1"
            )
            db.session.add(voter)
        insights = [
            contributions.transcribe(
                session,
                client_id=new_cid(),
                kind_name="insight",
                body=body,
                group=group,
                phase_index=None,
            )
            for body, group in [
                ("Evening language classes " + SCRIPT, "1"),
                ("One desk for all the paperwork", "2"),
            ]
        ]
        for _ in range(2):
            contributions.vote(session, voter, client_id=new_cid(), contribution_id=insights[0].id)
        return SimpleNamespace(
            id=session.id,
            title=session.title,
            code=code,
            insight_ids=[insight.id for insight in insights],
        )


# --- needs ------------------------------------------------------------------------------


def test_empty_backlog(staff):
    page = staff.get("/backlog/")
    assert page.status_code == 200
    assert "No needs yet" in page.text
    assert 'href="/backlog/action-plan.pdf"' in page.text
    assert 'href="/backlog/actions/new"' in page.text
    # Adding a need by hand has its own page, not a form between the needs and the actions.
    assert 'href="/backlog/needs/new"' in page.text
    assert 'action="/backlog/needs/new"' not in page.text


def test_add_need(app, staff):
    response = add_need(staff, "Evening language classes", theme="language")
    assert response.status_code == 302
    page = staff.get("/backlog/")
    assert "Need added, under the theme “Language”." in page.text
    assert "Evening language classes" in page.text
    assert "<td>Language</td>" in page.text
    (need,) = all_needs(app)
    assert need.theme == "language"
    assert need.sources == []


def test_add_need_needs_a_title(app, staff):
    response = add_need(staff, "")
    assert response.status_code == 200
    assert 'role="alert"' in response.text
    assert all_needs(app) == []


def test_a_need_typed_in_without_a_theme_gets_one_suggested(app, staff):
    add_need(staff, "Help to find a flat when the landlord refuses", theme="")
    (need,) = all_needs(app)
    assert need.theme == "housing"
    assert "under the theme “Housing”" in staff.get("/backlog/").text


def test_needs_listed_by_the_kind_of_support_chosen(app, staff, harvest):
    with app.test_request_context():
        session = db.session.get(Session, harvest.id)
        create_need("Rarely voted", session=session, dots=1, people=5)
        create_need("Most voted", session=session, dots=9)
        create_need("Somewhat voted", session=session, dots=4, people=1)
    page = staff.get("/backlog/?sort=dots").text
    assert page.index("Most voted") < page.index("Somewhat voted") < page.index("Rarely voted")
    page = staff.get("/backlog/?sort=people").text
    assert page.index("Rarely voted") < page.index("Somewhat voted") < page.index("Most voted")
    assert "9 dots" in page and "5 people raised it" in page


def test_edit_need(app, staff):
    add_need(staff, "Housing advice")
    (need,) = all_needs(app)
    url = f"/backlog/needs/{need.id}"
    page = staff.get(url)
    assert page.status_code == 200
    assert 'value="Housing advice"' in page.text
    assert "Typed in by a facilitator." in page.text
    response = post_form(
        staff,
        url,
        url,
        {
            "title": "Housing advice in Arabic",
            "description": "At the library",
            "theme": "housing",
            "submit": "1",
        },
    )
    assert response.status_code == 302
    (need,) = all_needs(app)
    assert (need.title, need.description, need.theme) == (
        "Housing advice in Arabic",
        "At the library",
        "housing",
    )


def test_edit_need_shows_errors(app, staff):
    add_need(staff, "Housing advice")
    (need,) = all_needs(app)
    url = f"/backlog/needs/{need.id}"
    response = post_form(staff, url, url, {"title": "", "theme": "housing", "submit": "1"})
    assert response.status_code == 200
    assert 'role="alert"' in response.text
    assert all_needs(app)[0].title == "Housing advice"


def test_unknown_need_is_404(staff):
    assert staff.get("/backlog/needs/999").status_code == 404


def test_merge_two_needs(app, staff, harvest):
    with app.test_request_context():
        session = db.session.get(Session, harvest.id)
        duplicate = create_need(
            "Language classes at night",
            dots=2,
            session=session,
            contribution_ids=[harvest.insight_ids[0]],
        )
        kept = create_need("Evening language classes", dots=3, session=session)
        duplicate_id, kept_id = duplicate.id, kept.id
    action = post_form(
        staff,
        "/backlog/actions/new",
        "/backlog/actions/new",
        {"title": "Open the library at night", "status": "proposed", "needs": [duplicate_id]},
    )
    assert action.status_code == 302

    page = staff.get(f"/backlog/needs/{duplicate_id}")
    # No need is chosen in advance: the other need is offered, not ticked.
    assert f'type="radio" id="into-{kept_id}" name="into" value="{kept_id}">' in page.text
    assert (
        'name="into" value="' in page.text
        and "checked" not in page.text.split('id="merge-heading"')[1].split("</form>")[0]
    )
    confirm = staff.get(f"/backlog/needs/{duplicate_id}/merge?into={kept_id}")
    assert confirm.status_code == 200
    assert "Merge two needs?" in confirm.text
    assert all_needs(app)[0].merged_into_id is None  # looking is not merging
    response = staff.post(
        f"/backlog/needs/{duplicate_id}/merge",
        data={"csrf_token": csrf_token(confirm), "into": str(kept_id), "confirmed": "1"},
    )
    assert response.status_code == 302
    assert response.location.endswith(f"/backlog/needs/{kept_id}")

    duplicate, kept = all_needs(app)
    assert duplicate.merged_into_id == kept_id
    assert [(s.session_id, s.contribution_id) for s in kept.sources] == [
        (harvest.id, harvest.insight_ids[0]),
        (harvest.id, None),
    ]
    assert duplicate.sources == []
    assert [a.title for a in kept.actions] == ["Open the library at night"]

    kept_page = staff.get(f"/backlog/needs/{kept_id}").text
    assert "Needs merged." in kept_page
    assert "5 dots" in kept_page
    assert harvest.title in kept_page  # provenance moved over
    assert "Evening language classes &lt;script&gt;" in kept_page
    assert SCRIPT not in kept_page
    index = staff.get("/backlog/").text
    assert "Language classes at night" not in index
    assert "Evening language classes" in index


def test_merge_into_itself_is_refused(app, staff):
    add_need(staff, "Housing advice")
    (need,) = all_needs(app)
    url = f"/backlog/needs/{need.id}"
    response = staff.get(f"{url}/merge?into={need.id}")
    assert response.location.endswith(url)
    assert "cannot be merged into itself" in staff.get(url).text
    assert all_needs(app)[0].merged_into_id is None


# --- actions -----------------------------------------------------------------------------


def test_add_action_linked_to_needs(app, staff):
    add_need(staff, "Housing advice")
    add_need(staff, "Evening language classes")
    first, second = all_needs(app)
    with app.app_context():
        with write_transaction():
            db.session.add(Stakeholder(name="Housing department"))
        owner_id = db.session.scalar(select(Stakeholder.id))
    page = staff.get(f"/backlog/actions/new?need={first.id}")
    assert page.status_code == 200
    # Needs are checkboxes; the one the page was opened from is ticked.
    assert f'name="needs" value="{first.id}" checked' in page.text
    assert f'name="needs" value="{second.id}">' in page.text
    response = post_form(
        staff,
        "/backlog/actions/new",
        "/backlog/actions/new",
        {
            "title": "Advice desk at the library",
            "objective": "Answer housing questions in five languages",
            "indicator": "People helped per month",
            "indicator_baseline": "0",
            "indicator_target": "1 200,5",
            "indicator_unit": "people",
            "owner_id": str(owner_id),
            "budget_amount": "10000",
            "budget_currency": "eur",
            "in_kind": "Two staff",
            "start_date": "2027-03-01",
            "end_date": "2027-12-31",
            "status": "planned",
            "needs": [str(first.id), str(second.id)],
        },
    )
    assert response.status_code == 302
    with app.app_context():
        (action,) = db.session.scalars(select(Action)).all()
        assert action.owner.name == "Housing department"
        assert (action.indicator_baseline, action.indicator_target) == (0, 1200.5)
        assert (action.budget_amount, action.budget_currency) == (10000, "EUR")
        assert str(action.end_date) == "2027-12-31"
        assert action.status == "planned"
        assert sorted(n.id for n in action.needs) == [first.id, second.id]
    assert "Action added." in staff.get(response.location).text
    index = staff.get("/backlog/").text
    assert "Advice desk at the library" in index
    assert "Planned" in index


def test_edit_action(app, staff):
    add_need(staff, "Housing advice")
    (need,) = all_needs(app)
    post_form(
        staff,
        "/backlog/actions/new",
        "/backlog/actions/new",
        {"title": "Advice desk", "status": "proposed", "needs": [str(need.id)]},
    )
    with app.app_context():
        action_id = db.session.scalar(select(Action.id))
    url = f"/backlog/actions/{action_id}"
    page = staff.get(url)
    assert page.status_code == 200
    assert f'name="needs" value="{need.id}" checked' in page.text
    response = post_form(
        staff, url, url, {"title": "Advice desk", "status": "in_progress", "submit": "1"}
    )
    assert response.status_code == 302
    with app.app_context():
        action = db.session.get(Action, action_id)
        assert action.status == "in_progress"
        assert action.needs == []
    assert "In progress" in staff.get("/backlog/").text


def test_action_needs_a_title(app, staff):
    url = "/backlog/actions/new"
    response = post_form(staff, url, url, {"title": "", "status": "proposed"})
    assert response.status_code == 200
    assert 'role="alert"' in response.text


# --- from a session to the backlog --------------------------------------------------------


def test_harvest_page_lists_candidates(staff, harvest):
    page = staff.get(f"/backlog/from-session/{harvest.id}")
    assert page.status_code == 200
    text = page.text
    assert text.index("Evening language classes") < text.index("One desk for all the paperwork")
    for insight_id in harvest.insight_ids:
        assert f'name="take-need-{insight_id}" value="1"' in text
        assert f'name="title-need-{insight_id}"' in text
        assert f'name="theme-need-{insight_id}"' in text
    assert "2 dots" in text and "0 dots" in text
    assert SCRIPT not in text
    assert "&lt;script&gt;" in text


def test_harvest_into_needs_with_provenance(app, staff, harvest):
    url = f"/backlog/from-session/{harvest.id}"
    first, second = (f"need-{i}" for i in harvest.insight_ids)
    response = post_form(
        staff,
        url,
        url,
        {
            f"take-{first}": "1",
            f"title-{first}": "Evening language classes",
            f"theme-{first}": "language",
            f"title-{second}": "not taken",
            f"theme-{second}": "services",
            "submit": "1",
        },
    )
    assert response.status_code == 302
    (need,) = all_needs(app)
    assert need.title == "Evening language classes"
    assert need.theme == "language"
    assert (need.support.dots, need.support.people, need.support.sessions) == (2, 0, 1)
    assert [(s.session_id, s.contribution_id) for s in need.sources] == [
        (harvest.id, harvest.insight_ids[0])
    ]
    assert "Needs added to the backlog: 1." in staff.get("/backlog/").text
    page = staff.get(f"/backlog/needs/{need.id}").text
    assert harvest.title in page
    assert f'href="/sessions/{harvest.id}"' in page


def test_harvest_keeps_title_and_checks_theme(app, staff, harvest):
    url = f"/backlog/from-session/{harvest.id}"
    second = f"need-{harvest.insight_ids[1]}"
    post_form(
        staff,
        url,
        url,
        {f"take-{second}": "1", f"title-{second}": "  ", f"theme-{second}": "nonsense"},
    )
    (need,) = all_needs(app)
    assert need.title == "One desk for all the paperwork"
    assert need.theme == "other"
    with app.app_context():
        assert db.session.scalar(select(NeedSource.contribution_id)) == harvest.insight_ids[1]


def test_harvest_of_session_without_insights(staff, make_cafe, app):
    code = make_cafe(status="open")
    with app.app_context():
        session_id = db.session.scalar(select(Session.id).where(Session.code == code))
    page = staff.get(f"/backlog/from-session/{session_id}")
    assert page.status_code == 200
    assert "nothing to harvest yet" in page.text


def test_a_tick_stays_on_its_candidate_while_dots_reorder_the_list(app, staff, harvest):
    """The page was read before new dots moved the second insight to the top."""
    url = f"/backlog/from-session/{harvest.id}"
    page = staff.get(url)
    second = f"need-{harvest.insight_ids[1]}"
    with app.app_context():
        session = db.session.get(Session, harvest.id)
        participant = db.session.scalars(
            select(Participant).where(Participant.session_id == session.id)
        ).first()
        for _ in range(3):
            db.session.add(
                Vote(
                    session_id=session.id,
                    participant_id=participant.id,
                    contribution_id=harvest.insight_ids[1],
                    client_id=new_cid(),
                )
            )
        db.session.commit()
    staff.post(url, data={"csrf_token": csrf_token(page), f"take-{second}": "1"})
    (need,) = all_needs(app)
    assert need.title == "One desk for all the paperwork"
    assert need.support.dots == 3
    assert [s.contribution_id for s in need.sources] == [harvest.insight_ids[1]]


def test_the_same_harvest_sent_twice_creates_nothing_twice(app, staff, harvest):
    url = f"/backlog/from-session/{harvest.id}"
    page = staff.get(url)
    first = f"need-{harvest.insight_ids[0]}"
    for _ in range(2):
        staff.post(url, data={"csrf_token": csrf_token(page), f"take-{first}": "1"})
    assert len(all_needs(app)) == 1
    again = staff.get(url).text
    assert f'name="take-{first}"' not in again
    assert "Already in the backlog" in again
    assert f'name="take-need-{harvest.insight_ids[1]}"' in again


def test_an_action_candidate_names_its_owner_and_the_needs_it_addresses(app, harvest):
    from palabre.backlog import harvest as harvest_candidates
    from palabre.methods import ACTION, BacklogCandidate

    first, second = harvest.insight_ids
    need = BacklogCandidate(title="Evening classes", contribution_ids=[first])
    action = BacklogCandidate(
        title="A volunteer-run evening class",
        kind=ACTION,
        contribution_ids=[second],
        owner="The neighbourhood association",
        addresses=[need.key],
    )
    later = BacklogCandidate(
        title="A second class", kind=ACTION, contribution_ids=[], addresses=[need.key, "need-999"]
    )
    with app.test_request_context():
        session = db.session.get(Session, harvest.id)
        # The action comes first in the list: its need is still made before it.
        assert harvest_candidates(
            session,
            [(action, action.title, "", action.addresses), (need, need.title, "", [])],
        ) == (1, 1)
        # An action harvested later finds the need harvested before; a key naming no
        # need candidate links nothing.
        harvest_candidates(session, [(later, later.title, "", later.addresses)])
        (stored_need,) = db.session.scalars(select(Need)).all()
        actions = db.session.scalars(select(Action).order_by(Action.id)).all()
        assert [(a.owner.name if a.owner else None, a.needs) for a in actions] == [
            ("The neighbourhood association", [stored_need]),
            (None, [stored_need]),
        ]
        # The owner is the register's stakeholder of that name, added once.
        assert db.session.scalars(
            select(Stakeholder.name).where(Stakeholder.name == "The neighbourhood association")
        ).all() == ["The neighbourhood association"]
