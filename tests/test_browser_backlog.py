"""End to end in headless Chromium: from a closed café and a forum theatre harvest to the plan.

A facilitator harvests a closed café's key insight and a forum theatre's obstacle and
intervention into the backlog (the proposed action arrives linked to the obstacle's need),
registers a stakeholder, gives the action an owner, a budget and an indicator, records
progress; an anonymous visitor sees it on the city's "you said, we did" page; the action
plan PDF says it all.
"""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from tests import test_browser
from tests.test_browser import (
    EMAIL,
    advance,
    create_and_open,
    phone,
    signed_in_facilitator,
    wait_until,
)

pytestmark = pytest.mark.browser

# The real server and the headless browser of the browser tests, one of each for this module.
server = test_browser.server
browser = test_browser.browser


def close(facilitator) -> None:
    """Close the session from its last phase: "Next" asks first, then it is closed."""
    facilitator.click("[data-next-phase]")
    facilitator.click("[data-confirm-close]")
    facilitator.wait_for_selector("[data-reopen]")


def harvest_all(facilitator, run_url: str) -> None:
    """Tick every candidate on the session's harvest page and send it."""
    facilitator.goto(run_url.replace("/sessions/", "/backlog/from-session/"))
    for box in facilitator.locator("input[name^=take-]").all():
        box.check()
    facilitator.click("form button[name=submit]")
    facilitator.wait_for_selector("h1:text('Needs and actions')")


def test_from_closed_sessions_to_the_action_plan_and_the_public_page(server, browser):
    facilitator = signed_in_facilitator(browser, server)

    # A café, run to its end: one key insight with a dot.
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Café on housing")
    facilitator.fill("input[name=config-tables]", "1")
    facilitator.fill("textarea[name=config-questions-en]", "What should the city change?")
    cafe_url, cafe_code = create_and_open(facilitator)
    amina = phone(browser, f"{server}/j/{cafe_code}")
    amina.click("button[type=submit], input[type=submit]")
    advance(facilitator, "Round 1")
    advance(facilitator, "Harvest")
    amina.locator("details.insight-form summary").click()
    amina.fill("textarea[name=body]", "Help to rent a first flat")
    amina.click("details.insight-form [type=submit]")
    amina.wait_for_selector(".vote-form button[data-give]")
    amina.locator(".vote-form button[data-give]").first.click()
    facilitator.wait_for_selector("text=Help to rent a first flat")
    close(facilitator)
    harvest_all(facilitator, cafe_url)
    facilitator.wait_for_selector("text=1 dot")

    # A forum theatre: an obstacle named by two people, an intervention rated 4.5.
    facilitator.goto(server + "/sessions/new/forum_theatre")
    facilitator.fill("input[name=title]", "Forum theatre at the Tron")
    facilitator.fill("input[name=config-scenes-0-title-en]", "The interview")
    for _ in range(2):  # one scene is enough here
        facilitator.click("[data-scene]:last-child [data-scene-change=remove]")
    forum_url, forum_code = create_and_open(facilitator)
    phones = []
    for _ in range(2):
        page = phone(browser, f"{server}/j/{forum_code}")
        page.click("button[type=submit], input[type=submit]")
        phones.append(page)
    advance(facilitator, "Scene 1")
    advance(facilitator, "Reflection")
    for page, text in zip(phones, ("No interpreter", "Nobody explained"), strict=True):
        page.wait_for_selector(".answer-form textarea")
        page.fill(".answer-form textarea", text)
        page.click(".answer-form [type=submit]")
    advance(facilitator, "Forum")
    facilitator.select_option("select[name=scene]", "1")
    facilitator.fill("textarea[name=tried]", "Ask for an interpreter before answering")
    facilitator.click(".intervention-form [type=submit]")
    for page, stars in zip(phones, ("5", "4"), strict=True):
        page.wait_for_selector(".interventions .rating-form")
        page.click(f".interventions .rating-form button[value='{stars}']")
    facilitator.wait_for_selector(".interventions [data-average-for]:text-is('4.5')")
    advance(facilitator, "Harvest")
    facilitator.wait_for_selector(".answers-to-group")
    for box in facilitator.locator(".answers-to-group input[name=answers]").all():
        box.check()
    facilitator.fill("input[name=title]", "Nobody speaks my language")
    facilitator.click(".obstacle-form [type=submit]")
    facilitator.wait_for_selector("text=Nobody speaks my language · 2 answers")
    harvest_all(facilitator, forum_url)
    needs = facilitator.locator("table.needs").inner_text()
    assert "2 people raised it" in needs and "1 dot" in needs
    # The proposed action came linked to the obstacle's need, with its rating.
    facilitator.click("text=Ask for an interpreter before answering >> nth=0")
    facilitator.wait_for_selector("text=rated 4.5 on average by 2 people")
    needs_box = facilitator.locator("fieldset:has(legend:text('Needs it addresses'))")
    assert needs_box.locator("label:has-text('Nobody speaks my language') input").is_checked()
    action_url = facilitator.url

    # A stakeholder, then the action's owner, budget and indicator.
    facilitator.goto(server + "/backlog/stakeholders")
    facilitator.fill("input[name=name]", "Interpreting service")
    facilitator.fill("input[name=interest]", "4")
    facilitator.fill("input[name=influence]", "5")
    facilitator.click("form:has(input[name=name]) [type=submit]")
    facilitator.wait_for_selector("text=Stakeholder added.")
    assert facilitator.locator("svg title#matrix-title").count() == 1
    facilitator.goto(action_url)
    facilitator.select_option("select[name=owner_id]", label="Interpreting service")
    facilitator.fill("input[name=indicator]", "Interviews with an interpreter")
    facilitator.fill("input[name=indicator_baseline]", "10")
    facilitator.fill("input[name=indicator_target]", "90")
    facilitator.fill("input[name=indicator_unit]", "%")
    facilitator.fill("input[name=budget_amount]", "abc")
    facilitator.select_option("select[name=status]", "in_progress")
    facilitator.click("form:has(input[name=title]) button[name=submit]")
    facilitator.wait_for_selector("text=Write a number, such as 1200 or 1200.50.")
    facilitator.fill("input[name=budget_amount]", "25000")
    facilitator.fill("input[name=start_date]", "2027-01-01")
    facilitator.fill("input[name=end_date]", "2027-12-31")
    facilitator.click("form:has(input[name=title]) button[name=submit]")
    facilitator.wait_for_selector("text=Action saved.")

    # Progress reported.
    facilitator.fill("input[name=update-progress]", "45")
    facilitator.fill("textarea[name=update-body]", "Interpreters booked for half the interviews")
    facilitator.click("button[name=update-submit]")
    facilitator.wait_for_selector("text=Progress recorded.")

    # Anyone sees it on the city's page, with nobody named.
    visitor = browser.new_context().new_page()
    visitor.goto(server + "/city/")
    public = visitor.inner_text("main")
    for expected in (
        "Nobody speaks my language",
        "Ask for an interpreter before answering",
        "In progress",
        "Interpreters booked for half the interviews",
        "Help to rent a first flat",
    ):
        assert expected in public, expected
    assert EMAIL not in visitor.content() and "Forum theatre at the Tron" not in public

    # The action plan for the council: printed by a job, whose page follows it live.
    facilitator.goto(server + "/backlog/")
    facilitator.click("text=Print the action plan (PDF)")
    facilitator.wait_for_selector("a.job-ready:visible", timeout=120_000)
    assert "/print/jobs/" in facilitator.url
    plan = facilitator.request.get(server + facilitator.get_attribute("a.job-ready", "href"))
    assert plan.ok and plan.headers["content-type"] == "application/pdf"
    text = " ".join(
        "".join(p.extract_text() for p in PdfReader(io.BytesIO(plan.body())).pages).split()
    )
    for expected in (
        "action plan",
        "Nobody speaks my language",
        "2 people raised it",
        "1 dot",
        "Ask for an interpreter before answering",
        "Interpreting service",
        "25,000 EUR",
        "Interviews with an interpreter",
        "target 90",
        "45 % · The team",  # the monitoring update, in Appendix B
        "Interpreters booked for half the interviews",
    ):
        assert expected in text, expected
    assert EMAIL not in text


def test_the_merge_form_finds_the_need_as_it_is_typed(server, browser):
    """need_picker.js on the merge form: the search follows the typing (Enter does not send
    the form), a need found is chosen with its radio button, and the confirmation follows."""
    facilitator = signed_in_facilitator(browser, server)
    for title in ("Zebra crossing near the school", "Quiet room for homework", "Study hall"):
        facilitator.goto(server + "/backlog/needs/new")
        facilitator.fill("input[name=title]", title)
        facilitator.click("form button[name=submit]")
        facilitator.wait_for_selector("h1:text('Needs and actions')")
    facilitator.click("a:text('Quiet room for homework')")
    facilitator.wait_for_selector("#merge-heading")
    facilitator.fill("#need-q", "zebra")
    facilitator.press("#need-q", "Enter")
    found = facilitator.locator(".found-needs label:has-text('Zebra crossing near the school')")
    found.wait_for()
    # The list narrows as the answer to the search arrives: wait for it, not for the first match.
    wait_until(facilitator, "document.querySelectorAll('.found-needs li').length === 1")
    assert facilitator.locator(".found-needs li").count() == 1
    assert "/merge" not in facilitator.url  # Enter searched, it did not send the form
    found.locator("input[type=radio]").check()
    # Chosen, it moves up with the suggestions, so that another search keeps it.
    assert facilitator.locator(".chosen-needs input[type=radio]:checked").count() == 1
    facilitator.click("button:text('Compare before merging')")
    facilitator.wait_for_selector("h1:text('Merge two needs?')")
    assert "Zebra crossing near the school" in facilitator.content()
    facilitator.context.close()
