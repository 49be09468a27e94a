"""The backlog as the strategy's policy cycle: needs across sessions, merges and their undo,
full actions with monitoring and evaluation, the gap view, stakeholders, the city's public
"you said, we did", exports and imports, and the guide's self-assessment."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from palabre import contributions
from palabre.backlog import (
    create_need,
    duplicate_suggestions,
    merge_needs,
    session_needs,
    suggest_theme,
    undo_merge,
)
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.models import (
    Action,
    ActionUpdate,
    AssessmentMark,
    CustomTheme,
    Need,
    NeedMerge,
    NeedSource,
    Participant,
    Session,
    Stakeholder,
    Status,
    hash_token,
    utcnow,
)
from palabre.phases import plan
from palabre.policy_cycle import neutralise, read_actions_csv, to_csv
from palabre.render_pool import Rendered
from tests.conftest import csrf_token, join, new_cid, post_form

SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def staff(client, auth):
    auth.login()
    return client


@pytest.fixture
def cafe(app, make_cafe):
    """A café in its harvest phase with two key insights, the first with three dots."""
    code = make_cafe(status="live", phase_index=4)
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        with write_transaction():
            voter = Participant(
                session_id=session.id, token_hash=hash_token("v"), language="en", group="1"
            )
            db.session.add(voter)
        insights = [
            contributions.transcribe(
                session,
                client_id=new_cid(),
                kind_name="insight",
                body=body,
                group="1",
                phase_index=None,
            )
            for body in ("Evening language classes", "Help to rent a flat")
        ]
        for _ in range(3):
            contributions.vote(session, voter, client_id=new_cid(), contribution_id=insights[0].id)
        return session.id, code, [i.id for i in insights]


def needs(app) -> list[Need]:
    with app.app_context():
        found = db.session.scalars(select(Need).order_by(Need.id)).all()
        for need in found:
            _ = [(s.session_id, s.contribution_id, s.dots) for s in need.sources], need.actions
        return found


def stakeholder(app, name, **fields) -> int:
    with app.app_context():
        with write_transaction():
            row = Stakeholder(name=name, **fields)
            db.session.add(row)
        return row.id


def make_action(staff, **fields):
    data = {"title": "Advice desk", "status": "planned", **fields}
    return post_form(staff, "/backlog/actions/new", "/backlog/actions/new", data)


# --- needs: support by kind, filters, duplicates, themes ----------------------------------


def test_support_is_kept_apart_by_kind_and_named(app, staff, cafe):
    session_id, _code, insights = cafe
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        create_need("Dotted", session=session, contribution_ids=[insights[0]], dots=3)
        create_need("Named by people", session=session, people=4)
    page = staff.get("/backlog/").text
    assert "3 dots" in page and "4 people raised it" in page
    assert "They are never added together." in page
    # Dots and people are never summed into one "priority".
    assert ">7<" not in page and "7 " not in page


def test_needs_filtered_by_theme_method_session_status_and_date(app, staff, cafe, make_cafe):
    session_id, _code, _insights = cafe
    other_code = make_cafe(status="open")
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        other = db.session.scalar(select(Session).where(Session.code == other_code))
        housing = create_need("Help to rent", theme="housing", session=session)
        create_need("Night buses", theme="services", session=other)
        old = create_need("An old need", theme="housing")
        with write_transaction():
            db.session.get(Need, old.id).created_at = utcnow() - timedelta(days=400)
            db.session.add(Action(title="Rent guarantee", needs=[db.session.get(Need, housing.id)]))
        other_id = other.id

    def titles(query):
        page = staff.get(f"/backlog/?{query}").text
        return [t for t in ("Help to rent", "Night buses", "An old need") if f">{t}</a>" in page]

    assert titles("theme=housing") == ["Help to rent", "An old need"]
    assert titles("method=world_cafe") == ["Help to rent", "Night buses"]
    assert titles(f"session={other_id}") == ["Night buses"]
    assert titles("state=no_action") == ["Night buses", "An old need"]
    assert titles("state=with_action") == ["Help to rent"]
    since = (date.today() - timedelta(days=30)).isoformat()
    assert titles(f"since={since}") == ["Help to rent", "Night buses"]
    assert "Write the date as year-month-day" in staff.get("/backlog/?since=yesterday").text
    assert staff.get("/backlog/?sort=nonsense&state=nonsense").status_code == 200


def test_the_needs_and_actions_lists_come_in_pages_that_keep_filters_sort_and_place(app, staff):
    """A city's backlog: pages of needs and of actions, each an address (a link, a bookmark,
    no JavaScript) keeping the filters and the sort; counts per filter; and after editing a
    need, the facilitator is back on the same page of the same list."""
    import re
    from html import unescape
    from urllib.parse import parse_qs, urlencode, urlsplit

    from palabre.backlog import ACTIONS_PER_PAGE, NEEDS_PER_PAGE, filtered_needs
    from palabre.testing.large_backlog import fill_backlog

    with app.app_context():
        fill_backlog(needs=130, actions=60, sessions=6)
        housing = filtered_needs(theme="housing", sort="dots")
        everything = filtered_needs()
    assert len(everything) == 130 and NEEDS_PER_PAGE < 130 and len(housing) > 3

    def listed(page: str) -> list[str]:
        return [
            unescape(t)
            for t in re.findall(r'<th scope="row"><a href="[^"]*" dir="auto">([^<]*)</a>', page)
        ]

    first = staff.get("/backlog/").text
    assert listed(first) == [n.title for n in everything[:NEEDS_PER_PAGE]]
    assert "130 needs match; 1 to 50 shown." in first and "Page 1 of 3" in first
    assert first.count('class="card"') == ACTIONS_PER_PAGE
    # Each choice of a filter says how many needs it lists, the other filters kept.
    assert f"Housing ({len(housing)})</option>" in first
    assert "All open needs (130)</option>" in first

    url = "/backlog/?theme=housing&sort=dots"
    page = staff.get(url).text
    assert listed(page) == [n.title for n in housing[:NEEDS_PER_PAGE]]
    sorted_by_dots = [n.support.dots for n in housing]
    assert sorted_by_dots == sorted(sorted_by_dots, reverse=True)
    # Past the last page: the last page, not an error.
    assert staff.get("/backlog/?page=99").status_code == 200
    assert "Page 3 of 3" in staff.get("/backlog/?page=99").text
    second = staff.get("/backlog/?page=2&sort=title&action_status=planned").text
    next_link = unescape(re.search(r'rel="next" href="([^"]*)"', second).group(1))
    assert parse_qs(urlsplit(next_link).query) == {
        "page": ["3"],
        "sort": ["title"],
        "action_status": ["planned"],
    }
    with app.app_context():
        by_title = filtered_needs(sort="title")
        planned = db.session.scalar(
            select(db.func.count()).select_from(Action).where(Action.status == "planned")
        )
    assert listed(second) == [n.title for n in by_title[NEEDS_PER_PAGE : 2 * NEEDS_PER_PAGE]]
    assert second.count('class="card"') == min(planned, ACTIONS_PER_PAGE)
    assert f"Planned ({planned})" in second

    # From a need on that page, editing it comes back to that page of that list.
    here = "/backlog/?page=2&sort=title"
    link = unescape(re.findall(r'<th scope="row"><a href="([^"]*)"', staff.get(here).text)[0])
    assert parse_qs(urlsplit(link).query)["back"] == [here]
    need_page = staff.get(link).text
    assert f'href="{here.replace("&", "&amp;")}">Back to the backlog' in need_page
    saved = post_form(
        staff,
        link,
        link,
        {"title": by_title[NEEDS_PER_PAGE].title, "theme": "housing", "submit": "1"},
    )
    assert saved.status_code == 302 and saved.location == here
    # Only addresses of the backlog's list are followed back; anything else leads to its start.
    for elsewhere in ("https://evil.example/backlog/", "//evil.example/backlog/", "/auth/login"):
        saved = post_form(
            staff,
            link,
            link.split("?")[0] + "?" + urlencode({"back": elsewhere}),
            {"title": "A title", "theme": "housing", "submit": "1"},
        )
        assert saved.location == "/backlog/", elsewhere


def test_duplicates_are_suggested_from_alike_titles(app):
    with app.test_request_context():
        first = create_need("Evening language classes for adults")
        second = create_need("Language classes in the evening")
        create_need("Help to rent a flat")
        pairs = duplicate_suggestions(db.session.scalars(select(Need)).all())
        assert [(a.id, b.id) for a, b, _score in pairs] == [(first.id, second.id)]


def test_the_index_offers_to_compare_alike_needs(app, staff):
    with app.test_request_context():
        first = create_need("Evening language classes for adults").id
        second = create_need("Language classes in the evening").id
    page = staff.get("/backlog/").text
    assert "Possible duplicates" in page
    assert f"/backlog/needs/{second}/merge?into={first}" in page


def test_themes_are_suggested_from_the_words_in_every_language(app):
    with app.test_request_context():
        assert suggest_theme("Nobody explained the rent contract of my flat") == "housing"
        assert suggest_theme("Cours de français le soir") == "language"
        assert suggest_theme("موعد مع طبيب في المستشفى") == "health"
        assert suggest_theme("Something else entirely") == "other"


def test_a_team_adds_its_own_theme_which_is_then_suggested(app, staff):
    response = post_form(
        staff,
        "/backlog/themes",
        "/backlog/themes",
        {"label": "Transport", "keywords": "bus, tram, autobus"},
    )
    assert response.status_code == 302
    with app.test_request_context():
        (theme,) = db.session.scalars(select(CustomTheme)).all()
        assert suggest_theme("No night bus to the centre") == theme.key
    again = post_form(staff, "/backlog/themes", "/backlog/themes", {"label": "transport"})
    assert again.status_code == 200 and "already a theme with this name" in again.text
    assert "Transport" in staff.get("/backlog/needs/new").text


# --- merge with confirmation and undo --------------------------------------------------


def test_merge_and_undo_keep_provenance_and_support(app, staff, cafe):
    session_id, _code, insights = cafe
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        duplicate = create_need(
            "Classes at night", session=session, contribution_ids=[insights[0]], dots=3
        )
        kept = create_need(
            "Evening classes", session=session, contribution_ids=[insights[1]], people=2
        )
        duplicate_id, kept_id = duplicate.id, kept.id
    make_action(staff, needs=[str(duplicate_id)], title="Library open late")
    page = staff.get(f"/backlog/needs/{duplicate_id}/merge?into={kept_id}")
    assert "Merge two needs?" in page.text and "Classes at night" in page.text
    staff.post(
        f"/backlog/needs/{duplicate_id}/merge",
        data={"csrf_token": csrf_token(page), "into": kept_id, "confirmed": "1"},
    )
    duplicate, kept = needs(app)
    assert duplicate.merged_into_id == kept_id
    assert sorted(s.contribution_id for s in kept.sources) == sorted(insights)
    assert (kept.support.dots, kept.support.people) == (3, 2)
    assert [a.title for a in kept.actions] == ["Library open late"]

    kept_page = staff.get(f"/backlog/needs/{kept_id}")
    assert "Undo this merge" in kept_page.text
    with app.app_context():
        merge_id = db.session.scalar(select(NeedMerge.id))
    staff.post(f"/backlog/merges/{merge_id}/undo", data={"csrf_token": csrf_token(kept_page)})
    duplicate, kept = needs(app)
    assert duplicate.merged_into_id is None
    assert [s.contribution_id for s in duplicate.sources] == [insights[0]]
    assert [s.contribution_id for s in kept.sources] == [insights[1]]
    assert (duplicate.support.dots, kept.support.dots, kept.support.people) == (3, 0, 2)
    assert [a.title for a in duplicate.actions] == ["Library open late"]
    assert kept.actions == []
    assert "Merge undone" in staff.get(f"/backlog/needs/{kept_id}").text


def test_the_merge_form_picks_among_hundreds_of_needs_alike_titles_first(app, staff):
    """The merge form lists no need by the hundred: alike titles first, then a search (a
    button without JavaScript) by words, theme or session; the choice leads to the
    confirmation, and the search keeps the facilitator's place in the list."""
    with app.app_context():
        with write_transaction():
            db.session.add_all(Need(title=f"Need number {n}", theme="other") for n in range(300))
            rent = Need(title="Help to rent a first flat", theme="housing")
            alike = Need(title="Help renting a first flat", theme="housing")
            deposit = Need(title="A rent deposit guarantee", theme="housing")
            db.session.add_all([rent, alike, deposit])
        rent_id, alike_id, deposit_id = rent.id, alike.id, deposit.id
    page = staff.get(f"/backlog/needs/{rent_id}?back=/backlog/%3Fpage%3D2").text
    merge_form = page.split('id="merge-heading"')[1]
    # One alike title suggested first, then 30 of the others: never 302 options.
    assert (
        merge_form.count('type="radio" ') == 31
        and "<option value=" not in merge_form.split('id="need-theme"')[0]
    )
    assert merge_form.index(f'value="{alike_id}"') < merge_form.index("Words in the need")
    assert f'value="{rent_id}"' not in merge_form  # never into itself
    assert 'name="back" value="/backlog/?page=2"' in merge_form
    # Without JavaScript: "Find needs" comes back to this page with what it found.
    assert f'formaction="/backlog/needs/{rent_id}#merge-heading"' in merge_form
    found = staff.get(
        f"/backlog/needs/{rent_id}",
        query_string={"need_q": "DEPOSIT", "need_theme": "housing", "find_needs": "1"},
    ).text.split('id="merge-heading"')[1]
    assert found.count('type="radio" ') == 2 and "1 need found." in found
    assert f'value="{deposit_id}"' in found and 'value="DEPOSIT"' in found
    # With it: find.json leaves out the need itself and the suggestions, as the page says.
    answer = staff.get(
        "/backlog/needs/find.json",
        query_string={"need_q": "flat", "chosen": [rent_id, alike_id]},
    ).get_json()
    assert answer["needs"] == []
    confirm = staff.get(f"/backlog/needs/{rent_id}/merge?into={deposit_id}&back=/backlog/")
    assert "Merge two needs?" in confirm.text and "A rent deposit guarantee" in confirm.text
    nothing = staff.get(f"/backlog/needs/{rent_id}/merge")
    assert nothing.status_code == 302 and nothing.location.startswith(f"/backlog/needs/{rent_id}")


def test_merge_into_itself_or_into_a_cycle_is_refused(app):
    with app.test_request_context():
        a, b, c = (create_need(title) for title in ("A need", "B need", "C need"))
        with pytest.raises(ValueError, match="itself"):
            merge_needs(a, a)
        merge = merge_needs(a, b)
        with pytest.raises(ValueError, match="already merged"):
            merge_needs(b, a)  # b into a, which is merged into b: a cycle
        with pytest.raises(ValueError, match="already merged"):
            merge_needs(c, a)
        merge_needs(b, c)
        with pytest.raises(ValueError, match="merged again"):
            undo_merge(merge)
        undo_merge(db.session.scalar(select(NeedMerge).where(NeedMerge.duplicate_id == b.id)))
        undo_merge(merge)
        with pytest.raises(ValueError, match="already undone"):
            undo_merge(merge)
        assert all(n.merged_into_id is None for n in db.session.scalars(select(Need)))


def test_a_merge_confirmation_refuses_a_merged_need(app, staff):
    with app.test_request_context():
        a, b = create_need("A need"), create_need("B need")
        merge_needs(a, b)
    response = staff.get(f"/backlog/needs/{b.id}/merge?into={a.id}")
    assert response.status_code == 302
    assert "already merged" in staff.get(response.location).text


# --- actions: fields, bad input, monitoring, evaluation, gaps ----------------------------


def test_an_action_with_owner_partners_budget_dates_and_indicator(app, staff):
    owner = stakeholder(app, "Housing department")
    partner = stakeholder(app, "Refugee Women’s Association", kind="migrants")
    with app.test_request_context():
        need = create_need("Help to rent")
    response = make_action(
        staff,
        indicator="Families housed",
        indicator_baseline="0",
        indicator_target="50",
        indicator_unit="families",
        owner_id=str(owner),
        partners=[str(partner)],
        budget_amount="120 000",
        budget_currency="EUR",
        in_kind="A room at the library",
        start_date="2027-01-01",
        end_date="2027-12-31",
        needs=[str(need.id)],
    )
    assert response.status_code == 302
    with app.app_context():
        action = db.session.scalar(select(Action))
        assert [p.name for p in action.partners] == ["Refugee Women’s Association"]
        assert action.budget_amount == 120000 and action.in_kind == "A room at the library"
    page = staff.get(response.location).text
    assert "Still missing" not in page
    assert "Families housed" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start_date": "2027-06-01", "end_date": "2027-01-01"}, "The end cannot come before"),
        ({"budget_amount": "a lot"}, "Write a number"),
        ({"indicator_target": "=1+1"}, "Write a number"),
        ({"budget_currency": "€€"}, "three letters"),
        ({"budget_amount": "100", "budget_currency": ""}, "in which currency"),
        ({"end_date": "31/12/2027"}, "Write the date as year-month-day"),
    ],
)
def test_bad_action_input_is_refused_with_a_message(app, staff, fields, message):
    response = make_action(staff, **fields)
    assert response.status_code == 200
    assert message in response.text and 'role="alert"' in response.text
    with app.app_context():
        assert db.session.scalars(select(Action)).all() == []


def test_monitoring_updates_and_evaluations(app, staff, cafe):
    session_id, _code, _insights = cafe
    group = stakeholder(app, "Migrant advisory council", kind="migrants")
    make_action(staff, indicator="Families housed", indicator_target="50")
    with app.app_context():
        action_id = db.session.scalar(select(Action.id))
    url = f"/backlog/actions/{action_id}"
    page = staff.get(url)
    response = staff.post(
        f"{url}/updates",
        data={
            "csrf_token": csrf_token(page),
            "update-on_date": "2027-03-01",
            "update-progress": "12",
            "update-body": "Twelve families found a flat " + SCRIPT,
            "update-reported_by": str(group),
            "update-submit": "1",
        },
    )
    assert response.status_code == 302
    bad = staff.post(
        f"{url}/updates",
        data={
            "csrf_token": csrf_token(page),
            "evaluation-on_date": "2027-06-01",
            "evaluation-method": "",
            "evaluation-body": "",
            "evaluation-submit": "1",
        },
    )
    assert bad.status_code == 400 and 'role="alert"' in bad.text
    staff.post(
        f"{url}/updates",
        data={
            "csrf_token": csrf_token(page),
            "evaluation-on_date": "2027-06-01",
            "evaluation-method": "Mystery-shopping audit",
            "evaluation-body": "Advice is now given in Arabic",
            "evaluation-evidence": str(session_id),
            "evaluation-submit": "1",
        },
    )
    with app.app_context():
        action = db.session.get(Action, action_id)
        (update,) = action.monitoring
        assert (update.progress, update.reported_by.name) == (12, "Migrant advisory council")
        (evaluation,) = action.evaluations
        assert evaluation.evidence_session_id == session_id
        assert action.latest_progress == update
    shown = staff.get(url).text
    assert "Twelve families found a flat &lt;script&gt;" in shown and SCRIPT not in shown
    assert "Mystery-shopping audit" in shown and "Café on the intercultural plan" in shown


def test_the_action_form_finds_needs_among_hundreds_without_and_with_javascript(app, staff, cafe):
    """Not 300 checkboxes: the chosen needs, then what a search by words, theme, session finds."""
    session_id = cafe[0]
    with app.app_context():
        with write_transaction():
            db.session.add_all(Need(title=f"Need number {n}", theme="work") for n in range(296))
            rent = Need(
                title="Rent deposit for a first flat",
                theme="housing",
                sources=[NeedSource(session_id=session_id)],
            )
            cafe_need = Need(title="Un café des parents à l'école", theme="education")
            arabic = Need(title="دروس اللغة في المساء", theme="language")
            merged = Need(title="Rent help (merged away)", theme="housing", merged_into_id=None)
            db.session.add_all([rent, cafe_need, arabic, merged])
            db.session.flush()
            merged.merged_into_id = rent.id
        ids = {n.title: n.id for n in db.session.scalars(select(Need))}
    page = staff.get(f"/backlog/actions/new?need={ids['Need number 7']}")
    assert page.status_code == 200
    assert page.text.count('name="needs"') == 31  # the chosen one and 30 found
    assert f'value="{ids["Need number 7"]}" checked' in page.text
    assert "30 of 298 needs shown" in page.text  # 299 open, one chosen
    # Without JavaScript: "Find needs" sends the form back; nothing is saved, nothing lost.
    found = staff.post(
        "/backlog/actions/new",
        data={
            "csrf_token": csrf_token(page),
            "title": "Deposit guarantee " + SCRIPT,
            "status": "planned",
            "needs": [str(ids["Need number 7"])],
            "need_q": "RENT",
            "need_theme": "housing",
            "need_session": str(session_id),
            "find_needs": "1",
        },
    )
    assert found.status_code == 200
    assert found.text.count('name="needs"') == 2
    assert f'value="{ids["Need number 7"]}" checked' in found.text
    assert f'value="{ids["Rent deposit for a first flat"]}">' in found.text
    assert "merged away" not in found.text and "1 need found." in found.text
    assert 'value="Deposit guarantee &lt;script&gt;' in found.text and SCRIPT not in found.text
    assert 'value="RENT"' in found.text
    with app.app_context():
        assert db.session.scalars(select(Action)).all() == []
    # Accents, case and Arabic; what is already chosen is left out of what is found.
    answer = staff.get(
        "/backlog/needs/find.json",
        query_string={"need_q": "cafe ecole", "chosen": [ids["Need number 7"]]},
    ).get_json()
    assert answer["needs"] == [
        {"id": ids["Un café des parents à l'école"], "title": cafe_need.title, "theme": "Education"}
    ]
    assert answer["message"] == "1 need found."
    answer = staff.get("/backlog/needs/find.json", query_string={"need_q": "اللغة"}).get_json()
    assert [n["title"] for n in answer["needs"]] == ["دروس اللغة في المساء"]
    answer = staff.get(
        "/backlog/needs/find.json",
        query_string={"need_q": "number", "chosen": [ids["Need number 7"]]},
    ).get_json()
    assert len(answer["needs"]) == 30 and ids["Need number 7"] not in [
        n["id"] for n in answer["needs"]
    ]
    assert answer["message"].startswith("30 of 295 needs shown")
    saved = staff.post(
        "/backlog/actions/new",
        data={
            "csrf_token": csrf_token(page),
            "title": "Deposit guarantee",
            "status": "planned",
            "needs": [str(ids["Need number 7"]), str(ids["Rent deposit for a first flat"])],
            "need_q": "rent",
            "submit": "1",
        },
    )
    assert saved.status_code == 302
    with app.app_context():
        (action,) = db.session.scalars(select(Action)).all()
        assert sorted(n.title for n in action.needs) == [
            "Need number 7",
            "Rent deposit for a first flat",
        ]


@pytest.mark.parametrize("typed", ["31/02/2027", "2027-02-31", "next week"])
def test_a_monitoring_report_date_that_cannot_be_read_is_refused_as_typed(app, staff, typed):
    """No more "90 days ago" in place of what was typed: the date comes back with a message."""
    from palabre.print_jobs import print_jobs

    response = staff.get("/backlog/monitoring.pdf", query_string={"since": typed})
    assert response.status_code == 400
    assert "Write the date as year-month-day, such as 2027-03-01." in response.text
    assert f'value="{typed}"' in response.text and 'aria-invalid="true"' in response.text
    assert staff.get("/backlog/monitoring.pdf?since=").status_code == 400
    with app.app_context():
        assert not print_jobs().jobs
    staff.post("/language", data={"csrf_token": csrf_token(response), "language": "fr"})
    french = staff.get("/backlog/monitoring.pdf", query_string={"since": typed})
    assert french.status_code == 400
    assert "Écrivez la date" in french.text and f'value="{typed}"' in french.text


def test_a_needs_filter_date_that_cannot_be_read_is_kept_with_a_message(staff):
    response = staff.get("/backlog/?since=yesterday")
    assert response.status_code == 400
    assert 'value="yesterday"' in response.text and "Write the date as" in response.text


def test_a_monitoring_update_with_a_bad_date_stores_nothing_and_keeps_what_was_typed(app, staff):
    make_action(staff, indicator="Families housed", indicator_target="50")
    with app.app_context():
        action_id = db.session.scalar(select(Action.id))
    url = f"/backlog/actions/{action_id}"
    page = staff.get(url)
    response = staff.post(
        f"{url}/updates",
        data={
            "csrf_token": csrf_token(page),
            "update-on_date": "1st of March",
            "update-progress": "12",
            "update-body": "Twelve families found a flat",
            "update-submit": "1",
        },
    )
    assert response.status_code == 400
    assert "Write the date as year-month-day" in response.text
    assert 'value="1st of March"' in response.text
    assert "Twelve families found a flat" in response.text
    with app.app_context():
        assert db.session.scalars(select(ActionUpdate)).all() == []


def test_the_gap_view(app, staff):
    owner = stakeholder(app, "Library")
    with app.test_request_context():
        lonely = create_need("A need nobody acts on").id
        covered = create_need("A need with a full action").id
    make_action(
        staff,
        title="Complete action",
        indicator="Visits",
        indicator_target="100",
        owner_id=str(owner),
        in_kind="A room",
        start_date="2027-01-01",
        end_date="2027-02-01",
        needs=[str(covered)],
    )
    make_action(staff, title="Bare action", status="proposed")
    make_action(staff, title="Dropped action", status="dropped")
    page = staff.get("/backlog/gaps").text
    assert "A need nobody acts on" in page and "A need with a full action" not in page
    assert "Complete action" not in page and "Dropped action" not in page
    assert "Bare action" in page
    assert "no owner, no resources, no dates, no indicator" in page
    assert f'href="/backlog/actions/new?need={lonely}"' in page


# --- stakeholders -------------------------------------------------------------------------


def test_stakeholder_register_and_power_interest_matrix(app, staff):
    response = post_form(
        staff,
        "/backlog/stakeholders",
        "/backlog/stakeholders",
        {
            "name": "جمعية النساء اللاجئات",
            "kind": "migrants",
            "already_involved": "y",
            "interest": "5",
            "influence": "2",
            "how_to_involve": "Invite them to the steering body",
        },
    )
    assert response.status_code == 302
    refused = post_form(
        staff, "/backlog/stakeholders", "/backlog/stakeholders", {"name": "X", "interest": "9"}
    )
    assert refused.status_code == 200 and 'role="alert"' in refused.text
    page = staff.get("/backlog/stakeholders").text
    svg = page.split("<svg")[1].split("</svg>")[0]
    assert "<title" in svg and "<desc" in svg
    assert "جمعية النساء اللاجئات" in svg
    # The text equivalent of the chart.
    assert '<table class="chart-data">' in page and "5/5" in page and "2/5" in page
    with app.app_context():
        (row,) = db.session.scalars(select(Stakeholder)).all()
        assert (row.interest, row.influence, row.already_involved) == (5, 2, True)
    assert "جمعية النساء اللاجئات" in staff.get("/backlog/actions/new").text


# --- the city's "you said, we did" ----------------------------------------------------------


def test_the_public_page_is_anonymous_and_shows_no_hidden_contribution(app, client, cafe, staff):
    session_id, code, insights = cafe
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        shown = create_need(
            "Evening language classes", session=session, contribution_ids=[insights[0]]
        )
        create_need("A hidden insight's need", session=session, contribution_ids=[insights[1]])
        contributions.set_hidden(session, insights[1], True)
        with write_transaction():
            db.session.add(
                Action(
                    title="Classes at the library",
                    status="in_progress",
                    indicator="Learners",
                    indicator_target=40,
                    needs=[db.session.get(Need, shown.id)],
                    updates=[ActionUpdate(body="Twenty learners so far", progress=20)],
                )
            )
    client.post("/auth/logout", data={"csrf_token": csrf_token(client.get("/"))})
    page = client.get("/city/")
    assert page.status_code == 200
    text = page.text
    assert "Evening language classes" in text
    assert "Classes at the library" in text and "In progress" in text
    assert "Twenty learners so far" in text and "Learners: 20 / 40" in text
    assert "A hidden insight" not in text
    assert "facilitator@example.org" not in text and "Café on the intercultural plan" not in text
    # Each chart is one image for screen readers, named by its title and description.
    assert 'role="img" aria-labelledby="chart-status-title chart-status-desc"' in text
    assert 'id="chart-status-title">Actions, by status<' in text
    arabic = client.post(
        "/language", data={"csrf_token": csrf_token(page), "language": "ar", "next": "/city/"}
    )
    assert 'dir="rtl"' in client.get(arabic.location).text


def test_the_city_page_is_kept_until_the_backlog_changes_or_a_contribution_is_hidden(
    app, client, cafe
):
    session_id, _code, (kept, later_hidden) = cafe
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        create_need("Evening language classes", session=session, contribution_ids=[kept])
        create_need("Help to rent a flat", session=session, contribution_ids=[later_hidden])
    first = client.get("/city/").text
    assert "Evening language classes" in first and "Help to rent a flat" in first
    assert client.get("/city/").text == first
    with app.test_request_context():
        contributions.set_hidden(db.session.get(Session, session_id), later_hidden, True)
    hidden = client.get("/city/").text
    assert "Evening language classes" in hidden and "Help to rent a flat" not in hidden
    with app.test_request_context():
        create_need("Night buses after late shifts")
    assert "Night buses after late shifts" in client.get("/city/").text
    arabic = client.post(
        "/language", data={"csrf_token": csrf_token(client.get("/")), "language": "ar"}
    )
    assert arabic.status_code == 302
    in_arabic = client.get("/city/").text
    assert "قلتم، وفعلنا" in in_arabic and "Night buses after late shifts" in in_arabic


def test_a_sessions_you_said_we_did_leaves_out_what_rests_on_hidden_contributions(
    app, cafe, staff, socket_client, monkeypatch
):
    """On the phone, after a reload or a reconnect, and in the report: only what can be seen."""
    session_id, code, (kept, hidden) = cafe
    phone = app.test_client()
    join(phone, code, group="1")
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        create_need("Evening language classes", session=session, contribution_ids=[kept])
        create_need("Words nobody should read", session=session, contribution_ids=[hidden])
        with write_transaction():
            db.session.add(
                Need(
                    title="Flats for families",
                    sources=[
                        NeedSource(session_id=session_id, contribution_id=hidden, dots=5),
                        NeedSource(session_id=session_id, contribution_id=kept, dots=2),
                    ],
                )
            )
        contributions.set_hidden(session, hidden, True)
        with write_transaction():
            session.status = Status.CLOSED
            session.phase_index = len(plan(session)) - 1

    def shown_on_the_phone() -> str:
        """The page's "you said, we did" section; the hidden insight's text nowhere on it."""
        page = phone.get(f"/j/{code}")
        assert page.status_code == 200 and "Help to rent a flat" not in page.text
        return page.text.split('class="you-said-we-did"')[1].split("</section>")[0]

    before = shown_on_the_phone()
    assert "Evening language classes" in before and "Flats for families" in before
    assert "Words nobody should read" not in before
    back = socket_client(phone, code=code, last_seq=0)
    replayed = repr(back.get_received())
    assert "Help to rent a flat" not in replayed
    back.disconnect()
    assert shown_on_the_phone() == before
    newcomer = app.test_client().get(f"/j/{code}").text
    assert "Flats for families" in newcomer and "Words nobody should read" not in newcomer
    with app.test_request_context():
        needs = session_needs(db.session.get(Session, session_id))
        # Ranked by what can be seen: 2 dots, not 7.
        assert [n.title for n in needs] == ["Flats for families", "Evening language classes"]
        mixed = needs[0]
        assert (mixed.support.dots, mixed.priority) == (2, 2)
        assert [s.contribution_id for s in mixed.visible_sources] == [kept]
        everything = session_needs(db.session.get(Session, session_id), include_hidden=True)
        assert len(everything) == 3
    monkeypatch.setattr("palabre.printing.html_to_pdf", lambda html: html.encode())
    report = staff.get(f"/print/sessions/{session_id}/report.pdf").get_data(as_text=True)
    assert "Evening language classes" in report and "Flats for families" in report
    assert "Words nobody should read" not in report and "Help to rent a flat" not in report


def test_an_archived_sessions_link_still_shows_you_said_we_did(app, make_cafe, staff, client):
    code = make_cafe(status="live", phase_index=1)
    join(client, code, group="1")
    with app.test_request_context():
        session = db.session.scalar(select(Session).where(Session.code == code))
        create_need("Evening language classes", session=session)
        with write_transaction():
            session.status = Status.ARCHIVED
            session.phase_index = len(plan(session)) - 1
    page = client.get(f"/j/{code}")
    assert page.status_code == 200
    assert "You said, we did" in page.text and "Evening language classes" in page.text
    # The title keeps its own direction inside a page of another (an Arabic page, say).
    assert "<strong><bdi>Evening language classes</bdi></strong>" in page.text
    assert 'href="/city/"' in page.text
    newcomer = app.test_client().get(f"/j/{code}")
    assert newcomer.status_code == 200
    assert "Evening language classes" in newcomer.text and 'href="/city/"' in newcomer.text
    refused = client.post(
        f"/j/{code}/contribute",
        data={"csrf_token": csrf_token(page), "cid": new_cid(), "kind": "note", "body": "late"},
    )
    # Refused, and said so on the same page, which still shows what the city did.
    assert refused.status_code == 400 and "Evening language classes" in refused.text
    with app.app_context():
        assert not db.session.scalars(
            select(NeedSource).where(NeedSource.contribution_id.is_not(None))
        ).all()


# --- exports and imports --------------------------------------------------------------------


def test_csv_cells_are_neutralised_against_formula_injection():
    for dangerous in ("=1+1", "+33 6", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(dangerous) == "'" + dangerous
    assert neutralise("Évening classes") == "Évening classes"
    assert neutralise(-2.5) == "-2.5" and neutralise(None) == ""
    data = to_csv(["title"], [{"title": '=HYPERLINK("http://x")'}])
    assert data.startswith("\ufeff".encode())
    assert list(csv.reader(io.StringIO(data.decode("utf-8-sig")))) == [
        ["title"],
        ['\'=HYPERLINK("http://x")'],
    ]


def test_exports_in_csv_and_json_keep_arabic(app, staff):
    with app.test_request_context():
        create_need("دروس اللغة في المساء", theme="language")
    stakeholder(app, "=cmd|' /C calc'!A0")
    response = staff.get("/backlog/export/needs.csv")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0]["title"] == "دروس اللغة في المساء" and rows[0]["theme"] == "language"
    people = staff.get("/backlog/export/stakeholders.csv").data.decode("utf-8-sig")
    assert "'=cmd" in people
    as_json = json.loads(staff.get("/backlog/export/needs.json").data)
    assert as_json[0]["title"] == "دروس اللغة في المساء"
    assert staff.get("/backlog/export/secrets.csv").status_code == 404


def test_actions_round_trip_through_csv(app, staff):
    owner = stakeholder(app, "Housing department")
    with app.test_request_context():
        need = create_need("Help to rent")
    make_action(
        staff,
        title="=Rent guarantee fund",
        indicator="Families housed",
        indicator_baseline="-3",
        indicator_target="50",
        owner_id=str(owner),
        budget_amount="120000.5",
        budget_currency="EUR",
        start_date="2027-01-01",
        end_date="2027-12-31",
        needs=[str(need.id)],
    )
    exported = staff.get("/backlog/export/actions.csv").data
    assert b"'=Rent guarantee fund" in exported
    page = staff.get("/backlog/exchange")
    response = staff.post(
        "/backlog/import",
        data={"csrf_token": csrf_token(page), "file": (io.BytesIO(exported), "actions.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with app.app_context():
        first, second = db.session.scalars(select(Action).order_by(Action.id)).all()
        for name in (
            "title",
            "indicator",
            "indicator_baseline",
            "indicator_target",
            "owner_id",
            "budget_amount",
            "budget_currency",
            "start_date",
            "end_date",
            "status",
        ):
            assert getattr(first, name) == getattr(second, name), name
        assert second.title == "=Rent guarantee fund"
        assert [n.id for n in second.needs] == [need.id]


def test_a_failing_import_changes_nothing_and_lists_each_lines_problem(app, staff):
    stakeholder(app, "Library")
    bad = (
        "title;owner;budget_amount;start_date;end_date;status;needs\r\n"
        "Good action;Library;100;2027-01-01;2027-02-01;planned;\r\n"
        ";Library;;;;;\r\n"
        "Reading club;Nobody we know;lots;2027-05-01;2027-01-01;someday;999\r\n"
    ).encode("utf-8-sig")
    page = staff.get("/backlog/exchange")
    response = staff.post(
        "/backlog/import",
        data={"csrf_token": csrf_token(page), "file": (io.BytesIO(bad), "actions.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    text = response.text
    assert "Nothing was imported" in text
    assert "Line 3: the title is missing." in text
    for problem in (
        "“Nobody we know” is not in the stakeholder register.",
        "“lots” is not a number (budget_amount).",
        "the end comes before the start.",
        "unknown status “someday”.",
        "there is no open need number 999.",
    ):
        assert f"Line 4: {problem}" in text.replace("&#34;", '"')
    with app.app_context():
        assert db.session.scalars(select(Action)).all() == []


def test_an_import_that_is_not_utf8_or_has_no_title_column_is_refused(app):
    with app.test_request_context():
        assert "not UTF-8" in read_actions_csv("title\nCafé".encode("latin-1"))[1][0]
        assert "“title”" in read_actions_csv(b"name\nX")[1][0]
        assert read_actions_csv(b"title\n")[1] == ["The file holds no actions."]


# --- the guide's self-assessment -------------------------------------------------------------


def test_self_assessment_keeps_its_history_and_charts_it(app, staff):
    page = staff.get("/backlog/assessment")
    assert page.status_code == 200
    assert "Political leadership for co-design" in page.text
    for day, mark in (("2027-01-15", "not_yet"), ("2027-06-15", "met")):
        response = staff.post(
            "/backlog/assessment",
            data={
                "csrf_token": csrf_token(page),
                "assessed_on": day,
                "mark-3.2": mark,
                "evidence-3.2": "Objectives with actions " + SCRIPT,
                "mark-3.3": "partly",
                "submit": "1",
            },
        )
        assert response.status_code == 302
    refused = staff.post(
        "/backlog/assessment",
        data={"csrf_token": csrf_token(page), "assessed_on": "soon", "mark-1.1": "met"},
    )
    assert refused.status_code == 400 and "year-month-day" in refused.text
    with app.app_context():
        assert len(db.session.scalars(select(AssessmentMark)).all()) == 4
    shown = staff.get("/backlog/assessment").text
    svg = shown.split("<svg")[1].split("</svg>")[0]
    assert "<title" in svg and "<desc" in svg and "<polyline" in svg
    # Factor 3 went from 25 % (not yet, partly) to 75 % (met, partly).
    assert "25 %" in shown and "75 %" in shown
    assert "Last marked Met on Jun 15, 2027." in shown
    assert "&lt;script&gt;" in shown and SCRIPT not in shown


def test_council_outputs_render_their_html(app, staff, monkeypatch, cafe):
    """The action plan and monitoring report print as jobs, the assessment at once, as HTML."""
    session_id, _code, insights = cafe
    owner = stakeholder(app, "Housing department")
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        need = create_need("Help to rent", theme="housing", session=session, dots=3, people=2).id
        create_need("Evening classes " + SCRIPT, theme="language")
    make_action(
        staff,
        title="Rent guarantee fund",
        owner_id=str(owner),
        budget_amount="120000",
        budget_currency="EUR",
        needs=[str(need)],
    )
    monkeypatch.setattr("palabre.printing.html_to_pdf", lambda html: b"%PDF-1.7\n" + html.encode())
    monkeypatch.setattr(
        "palabre.printing._render_job",
        lambda html, base_url, progress: Rendered(b"%PDF-1.7\n" + html.encode(), 1, 0.0, 0.0),
    )

    def printed(url: str) -> str:
        response = staff.get(url)
        assert response.status_code == 303 and "/print/jobs/" in response.location
        job = response.location
        for _attempt in range(200):
            state = staff.get(job + ".json").get_json()
            if state["done"] or state["failed"]:
                break
            time.sleep(0.05)
        assert state["done"], state
        return staff.get(state["pdf_url"]).get_data(as_text=True)

    plan = printed("/backlog/action-plan.pdf")
    assert "The needs with most support" in plan and "Appendix B" in plan
    assert "3 dots" in plan and "2 people raised it" in plan
    assert "Housing department" in plan and "120,000" in plan
    assert "&lt;script&gt;" in plan and SCRIPT not in plan
    housing_only = printed("/backlog/action-plan.pdf?theme=housing")
    assert "Help to rent" in housing_only and "Evening classes" not in housing_only
    assert staff.get("/backlog/action-plan.pdf?theme=nonsense").status_code == 404
    report = printed("/backlog/monitoring.pdf?since=2020-01-01")
    assert "Rent guarantee fund" in report and "Help to rent" in report
    assert staff.get("/backlog/assessment.pdf").status_code == 200


def test_the_action_plan_builds_in_few_queries(app, cafe):
    """Eager loading: the queries do not grow with the number of needs and actions."""
    from sqlalchemy import event

    from palabre.policy_cycle import action_plan_context

    session_id, _code, insights = cafe

    def count_queries(needs_count):
        with app.test_request_context():
            session = db.session.get(Session, session_id)
            with write_transaction():
                for n in range(needs_count):
                    need = Need(title=f"Need {n}", sources=[NeedSource(session_id=session.id)])
                    db.session.add(need)
                    db.session.add(Action(title=f"Action {n}", needs=[need]))
            queries = []
            listener = lambda *args: queries.append(args[2])  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                context = action_plan_context()
                assert len(context["needs"]) >= needs_count
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
            return len(queries)

    assert count_queries(5) == count_queries(40) <= 15


@pytest.mark.pdf
def test_a_hidden_contribution_counts_nowhere_in_the_printed_plan_nor_on_screens(
    app, staff, cafe, make_cafe
):
    """Hiding a contribution takes its support (people, dots, ratings, its session) out of
    the printed plan, the monitoring report, the backlog's pages and the exports."""
    from pypdf import PdfReader
    from weasyprint import HTML

    from palabre.models import ActionSource
    from palabre.policy_cycle import action_plan_context, monitoring_context
    from palabre.printing import PACKAGE, document_html

    session_id, _code, (kept, hidden) = cafe
    other_code = make_cafe(status="live", phase_index=4)
    with app.test_request_context():
        other = db.session.scalar(select(Session).where(Session.code == other_code))
        elsewhere = contributions.transcribe(
            other,
            client_id=new_cid(),
            kind_name="insight",
            body="Rents",
            group="1",
            phase_index=None,
        ).id
        with write_transaction():
            need = Need(
                title="Flats for families",
                theme="housing",
                sources=[
                    NeedSource(
                        session_id=session_id,
                        contribution_id=hidden,
                        dots=5,
                        people=3,
                        rating_sum=20,
                        rating_count=4,
                    ),
                    NeedSource(session_id=session_id, contribution_id=kept, dots=2, people=1),
                    NeedSource(session_id=other.id, contribution_id=elsewhere, dots=4),
                ],
            )
            action = Action(
                title="Rent guarantee fund",
                status="planned",
                needs=[need],
                sources=[
                    ActionSource(
                        session_id=session_id, contribution_id=hidden, rating_sum=9, rating_count=3
                    )
                ],
            )
            db.session.add_all([need, action])

    def printed() -> tuple[str, str]:
        """The action plan's and the monitoring report's text, as printed."""
        texts = []
        with app.test_request_context():
            for template, document, context in (
                ("print/action_plan.html", "action-plan", action_plan_context()),
                ("print/monitoring.html", "monitoring", monitoring_context(date(2020, 1, 1))),
            ):
                html = document_html(template, document, **context)
                pdf = HTML(string=html, base_url=str(PACKAGE)).write_pdf()
                pages = PdfReader(io.BytesIO(pdf)).pages
                texts.append(" ".join(" ".join(p.extract_text() for p in pages).split()))
        return texts[0], texts[1]

    plan, _report = printed()
    assert "11 dots" in plan and "4 people raised it" in plan and "2 sessions" in plan
    assert "rated 5.0 on average by 4 people" in plan and "rated 3.0 on average by 3 people" in plan
    with app.test_request_context():
        contributions.set_hidden(db.session.get(Session, session_id), hidden, True)
        contributions.set_hidden(other, elsewhere, True)

    plan, report = printed()
    for text in (plan, report):
        assert "Flats for families" in text and "Rent guarantee fund" in text
        assert "Help to rent a flat" not in text and "Rents" not in text
    assert "2 dots" in plan and "1 person raised it" in plan and "1 session" in plan
    for gone in ("11 dots", "9 dots", "4 people", "2 sessions", "on average by", "Proposed in"):
        assert gone not in plan and gone not in report, gone
    screens = staff.get("/backlog/").text + staff.get("/backlog/gaps").text
    screens += staff.get(f"/backlog/actions/{action.id}").text
    assert "2 dots" in screens and "1 person raised it" in screens
    assert "11 dots" not in screens and "on average by" not in screens
    exported = list(csv.DictReader(io.StringIO(staff.get("/backlog/export/needs.csv").text)))
    row = next(r for r in exported if r["title"] == "Flats for families")
    assert (row["people"], row["dots"], row["ratings"], row["sessions"]) == ("1", "2", "0", "1")
