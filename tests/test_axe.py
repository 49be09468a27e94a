"""Every kind of page scanned by axe-core in Chromium, in English, French and Arabic.

A real ``palabre serve`` holds one session of each built-in method, each in
the phase a phone sees most (a café's round, the play, an interview, a closed
session's "you said, we did"); a phone joins each in the language under test
and a facilitator, switched to that language, opens the staff pages. axe-core
checks each page against the WCAG 2.x A and AA rules: none may be broken.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from palabre.testing import Facilitator
from tests.test_browser import EMAIL, PASSWORD, browser, server  # noqa: F401  (fixtures)
from tests.test_room import CAFE, DIALOGUE, ROUND_1, THEATRE

pytestmark = pytest.mark.browser

LANGUAGES = ("en", "fr", "ar")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture(scope="module")
def sessions(server):  # noqa: F811  (the fixture imported above)
    """One session per method, in all three languages, and each one's code and id."""

    async def create():
        async with Facilitator(server) as facilitator:
            await facilitator.sign_in(EMAIL, PASSWORD)
            made = {}
            for name, method, config, phase in (
                ("cafe", "world_cafe", CAFE, ROUND_1),
                ("theatre", "forum_theatre", THEATRE, 1),
                ("dialogue", "citizen_dialogue", DIALOGUE, None),
                ("audit", "mystery_shopping", {"scale": "4"}, None),
                ("closed", "world_cafe", CAFE, None),
            ):
                session = await facilitator.start_session(
                    method, config, phase=phase, title=f"Axe {name}", languages=LANGUAGES
                )
                made[name] = session
            await facilitator.post_action(made["closed"], "close")
            return made

    # Its own thread: Playwright's synchronous API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, create()).result()


def violations(page) -> list[str]:
    """axe-core's WCAG A/AA violations on ``page``, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
    ]


def scan(page, url: str, found: dict) -> None:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    assert response.ok and "/auth/login" not in page.url, f"{url} did not open: {page.url}"
    problems = violations(page)
    if problems:
        found[url] = problems


@pytest.mark.parametrize("language", LANGUAGES)
def test_phone_pages_break_no_wcag_rule(server, browser, sessions, language):  # noqa: F811
    found: dict[str, list[str]] = {}
    for name in ("cafe", "theatre", "dialogue", "closed"):
        context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
        page = context.new_page()
        join_url = f"{server}/j/{sessions[name].code}"
        scan(page, server + "/", found)
        scan(page, join_url, found)
        if name != "closed":
            page.check(f"input[name=language][value={language}]")
            page.click(f"form[action$='/j/{sessions[name].code}'] [type=submit]")
            page.wait_for_load_state("networkidle")
            scan(page, join_url, found)
            # The participant's page, in the language chosen.
            assert page.locator("html").get_attribute("lang") == language
            assert page.locator(".phase-card").count() == 1
        context.close()
    assert not found, found


@pytest.mark.parametrize("language", LANGUAGES)
def test_staff_pages_break_no_wcag_rule(server, browser, sessions, language):  # noqa: F811
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(server + "/auth/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.select_option("#language-select", language)
    page.click(".language-switch button")
    found: dict[str, list[str]] = {}
    pages = ["/sessions/", "/sessions/new/world_cafe", "/backlog/", "/settings/"]
    for session in sessions.values():
        pages += [f"/sessions/{session.id}", f"/sessions/{session.id}/projector"]
    for path in pages:
        scan(page, server + path, found)
    context.close()
    assert not found, found
