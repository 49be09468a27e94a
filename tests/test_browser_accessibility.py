"""Accessibility in Chromium: axe-core's rules, screen readers, keyboards, zoom, no JavaScript.

A real ``palabre serve`` holds one session of each built-in method, each in
the phase a phone sees most (a café's round, the play, an interview, a closed
session's "you said, we did"); a phone joins each in the language under test
and a facilitator, switched to that language, opens the staff pages. axe-core
checks each page against the WCAG 2.x A and AA rules: none may be broken.
The other tests go through what Chromium exposes to assistive technology
(roles, live regions, the focus) on a café's phone and facilitator screens.
"""

# The fixtures `server` and `browser` come from test_browser.py, named as parameters below.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
from pathlib import Path

import axe_playwright_python
import pytest

from palabre.i18n import LANGUAGES, STAFF_LANGUAGES
from palabre.testing import Facilitator
from tests.test_browser import EMAIL, PASSWORD, browser, server  # noqa: F401  (fixtures)
from tests.test_room import CAFE, DIALOGUE, FORUM, ROUND_1, THEATRE

pytestmark = pytest.mark.browser

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
#: axe-core itself, loaded into every page of a scanning browser before the page's own scripts.
AXE_SCRIPT = Path(axe_playwright_python.__file__).parent / "axe.min.js"
#: What axe is asked: the WCAG A/AA rules, and only what breaks them (not what passes).
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
AXE_RUN = f"axe.run(document, {json.dumps(AXE_OPTIONS)})"
#: The staff pages of any session; the projector, read by the room, is a participant's page.
STAFF_PAGES = ["/sessions/", "/sessions/new/world_cafe", "/backlog/", "/settings/"]


@pytest.fixture(scope="module")
def sessions(server):
    """One session per method, in all fifteen languages, and each one's code and id."""

    async def create():
        async with Facilitator(server) as facilitator:
            await facilitator.sign_in(EMAIL, PASSWORD)
            made = {}
            for name, method, config, phase in (
                ("cafe", "world_cafe", CAFE, ROUND_1),
                ("theatre", "forum_theatre", THEATRE, 1),
                ("forum", "forum_theatre", THEATRE, FORUM),
                ("dialogue", "citizen_dialogue", DIALOGUE, None),
                ("audit", "mystery_shopping", {"scale": "4"}, None),
                ("closed", "world_cafe", CAFE, None),
                ("waiting", "world_cafe", CAFE, None),
            ):
                session = await facilitator.start_session(
                    method, config, phase=phase, title=f"Axe {name}", languages=tuple(LANGUAGES)
                )
                made[name] = session
            await facilitator.post_action(made["closed"], "close")
            return made

    # Its own thread: Playwright's synchronous API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, create()).result()


@pytest.fixture(scope="module")
def evaluator_link(server) -> str:
    """The path of an evaluator's link to an audit in its fieldwork, with a visit to report."""

    async def create():
        async with Facilitator(server) as facilitator:
            await facilitator.sign_in(EMAIL, PASSWORD)
            audit = await facilitator.start_session(
                "mystery_shopping",
                {"scale": "4"},
                phase=1,
                title="Axe fieldwork",
                languages=tuple(LANGUAGES),
            )
            await facilitator.post_action(audit, "actions/service.save", {"name-en": "Law Centre"})
            await facilitator.post_action(audit, "links/evaluator")
            run = (await facilitator.get(f"/sessions/{audit.id}")).text
            visit = {
                name: re.search(
                    rf'<select id="assign-{name}" name="{name}"><option value="(\w+)"', run
                ).group(1)
                for name in ("link", "service", "scenario")
            }
            await facilitator.post_action(audit, "actions/assignment.add", visit)
            return (await facilitator.role_links(audit, "evaluator"))["E-01"]

    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, create()).result()


def scanning_context(browser, **options):
    """A browser context whose pages all carry axe-core from their first script on."""
    context = browser.new_context(**options)
    context.add_init_script(path=str(AXE_SCRIPT))
    return context


def violations(page) -> list[str]:
    """axe-core's WCAG A/AA violations on ``page``, one line each."""
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in page.evaluate(AXE_RUN)["violations"]
    ]


def scan(page, url: str | None, found: dict, language: str) -> None:
    """Open ``url`` (``None``: the page as it is) and note its violations under its address.

    The page is scanned once loaded: its live layer may still be connecting, which changes
    nothing axe looks at (a class on ``<html>``, the status line's words later).
    """
    if url is not None:
        response = page.goto(url, wait_until="load")
        assert response.ok and "/auth/login" not in page.url, f"{url} did not open: {page.url}"
    assert page.locator("html").get_attribute("lang") == language, page.url
    problems = violations(page)
    if problems:
        found[page.url] = problems


@pytest.mark.parametrize("language", LANGUAGES)
def test_phone_pages_break_no_wcag_rule(server, browser, sessions, evaluator_link, language):
    """The home page, each method's join form and phone page, and a closed session's "you
    said, we did", in the language the phone chose on the join form; an evaluator's visit
    report, in the phone's language."""
    found: dict[str, list[str]] = {}
    context = scanning_context(
        browser,
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        extra_http_headers={"Accept-Language": language},
    )
    page = context.new_page()
    scan(page, server + "/", found, language)
    for name in ("cafe", "theatre", "dialogue", "closed"):
        context.clear_cookies()  # a new phone for each session
        join_url = f"{server}/j/{sessions[name].code}"
        scan(page, join_url, found, language)
        if name != "closed":
            page.check(f"input[name=language][value={language}]")
            page.click(f"form[action$='/j/{sessions[name].code}'] [type=submit]")
            page.wait_for_selector(".phase-card")
            scan(page, None, found, language)
    context.clear_cookies()
    page.goto(server + evaluator_link)
    page.wait_for_selector(".visit-form")
    scan(page, None, found, language)
    context.close()
    assert not found, found


@pytest.fixture(scope="module")
def staff_page(server, browser):
    """A facilitator's page, signed in once for every language's scan."""
    context = scanning_context(browser, viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(server + "/auth/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r"/sessions/"))
    yield page
    context.close()


#: Sessions whose screens are scanned in every language: one of each method. The others (a
#: closed café, a café waiting to start) are other states of the same pages: in English.
EVERY_LANGUAGE = ("cafe", "theatre", "dialogue", "audit")


@pytest.mark.parametrize("language", LANGUAGES)
def test_staff_pages_break_no_wcag_rule(server, staff_page, sessions, language):
    """Staff pages in the staff's languages, and the projectors in all fifteen (a staff page
    in another language is the English one, scanned with it)."""
    page = staff_page
    # The switch of a staff page offers the staff's languages; a join page's, all of them.
    page.goto(f"{server}/j/{sessions['cafe'].code}")
    page.select_option("#language-select", language)
    page.click(".language-switch button")
    scanned = sessions if language == "en" else {name: sessions[name] for name in EVERY_LANGUAGE}
    paths = [] if language not in STAFF_LANGUAGES else list(STAFF_PAGES)
    for session in scanned.values():
        if language in STAFF_LANGUAGES:
            paths.append(f"/sessions/{session.id}")
        paths.append(f"/sessions/{session.id}/projector")
    found: dict[str, list[str]] = {}
    for path in paths:
        scan(page, server + path, found, language)
    assert not found, found


def joined_phone(browser, server, code: str, width: int = 360, **options):
    context = browser.new_context(
        viewport={"width": width, "height": 740}, is_mobile=True, **options
    )
    page = context.new_page()
    page.goto(f"{server}/j/{code}")
    page.click(f"form[action$='/j/{code}'] [type=submit]")
    page.wait_for_selector(".phase-card")
    return page


def live_on(page) -> None:
    """Wait until the page's live layer is connected (polled: the page allows no eval)."""
    for _ in range(100):
        if page.evaluate("document.documentElement.classList.contains('live-connected')"):
            return
        page.wait_for_timeout(100)
    raise AssertionError("the live layer did not connect")


def test_a_screen_reader_hears_new_notes_and_sends_but_not_every_second(server, browser, sessions):
    page = joined_phone(browser, server, sessions["cafe"].code)
    live_on(page)
    timer = page.get_by_role("timer")
    assert timer.count() == 1
    # The timer is silent: no live region holds it.
    assert page.evaluate(
        "!document.querySelector('[role=timer]').closest('[aria-live]:not([aria-live=off])')"
    )
    log = page.get_by_role("log").first
    assert log.locator("ul, ol").count() == 1
    page.fill("textarea[name=body]", "The bus to the centre stops at eight")
    page.click(".note-form [type=submit]")
    status = page.get_by_role("status").filter(has_text="Sent.")
    status.wait_for(state="attached", timeout=10_000)
    log.get_by_text("The bus to the centre stops at eight").wait_for(timeout=10_000)
    # At five minutes left, the status line says so once.
    page.evaluate(
        "document.querySelector('[data-timer]').dataset.endsAt ="
        " new Date(Date.now() + 301500).toISOString()"
    )
    page.get_by_role("status").filter(has_text="Five minutes left.").wait_for(
        state="attached", timeout=6000
    )
    page.context.close()


def test_the_keyboard_skips_the_top_bar_and_keeps_its_place_across_reloads(
    server, browser, sessions
):
    page = joined_phone(browser, server, sessions["cafe"].code)
    live_on(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # A reload (as a new phase brings) puts the focus back in the note box.
    page.focus("textarea[name=body]")
    page.reload()
    page.wait_for_selector(".phase-card")
    focused = page.evaluate("document.activeElement.name")
    assert focused == "body"
    page.context.close()


def test_without_javascript_no_page_promises_to_change_by_itself(server, browser, sessions):
    page = joined_phone(browser, server, sessions["waiting"].code, java_script_enabled=False)
    assert page.get_by_text("Reload this page in a moment to see what is new.").is_visible()
    assert not page.get_by_text("it changes by itself", exact=False).is_visible()
    page.context.close()
    page = joined_phone(browser, server, sessions["waiting"].code)
    live_on(page)
    assert page.get_by_text("it changes by itself", exact=False).is_visible()
    assert not page.get_by_text("Reload this page in a moment to see what is new.").is_visible()
    page.context.close()


#: Languages whose phone pages are checked for sideways overflow: English and Arabic, the
#: longest words (German, Finnish, Greek), Farsi (right to left) and Tigrinya (Ge'ez script).
NARROW_LANGUAGES = ["en", "ar", "de", "fi", "el", "fa", "ti"]
#: Each box of text whose content is wider than the box: cut off, or spilling over its
#: neighbours (a page can hide that from the document's own scroll width).
SPILLING_TEXT = """() => Array.from(document.querySelectorAll(
    'h1, h2, h3, p, label, legend, button, a, summary, li, dt, dd, .badge, .phase-card'))
  .filter(e => e.offsetParent !== null && e.clientWidth > 1)  // shown, not screen-reader-only
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => e.tagName + ' ' + e.textContent.trim().slice(0, 40) + ' '
            + (e.scrollWidth - e.clientWidth) + 'px')"""


@pytest.mark.parametrize("language", NARROW_LANGUAGES)
def test_phone_pages_fit_320_pixels_and_double_text_size(server, browser, sessions, language):
    """At 360 CSS px, at 320 (a 640 px phone at 200% zoom), and with the text twice as big,
    nothing needs scrolling sideways and no text spills out of its box (WCAG 1.4.4 and
    1.4.10), in the languages with the longest words and in both other scripts' directions."""
    spilling = {}
    for name in ("cafe", "forum", "dialogue", "audit"):
        code = sessions[name].code
        context = browser.new_context(
            viewport={"width": 320, "height": 640},
            is_mobile=True,
            extra_http_headers={"Accept-Language": language},
        )
        page = context.new_page()
        for step in ("home", "join", "participant"):
            if step == "home":
                page.goto(server + "/")
            elif step == "join":
                page.goto(f"{server}/j/{code}")
            else:
                page.check(f"input[name=language][value={language}]")
                page.click(f"form[action$='/j/{code}'] [type=submit]")
                page.wait_for_selector(".phase-card")
            assert page.locator("html").get_attribute("lang") == language
            for width, text_size in ((360, "100%"), (320, "100%"), (320, "200%")):
                page.set_viewport_size({"width": width, "height": 640})
                page.evaluate(f"document.documentElement.style.fontSize = '{text_size}'")
                where = f"{name} {step} at {width}px, {text_size} text"
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 1, f"{where}: {overflow}px sideways"
                spilling[where] = page.evaluate(SPILLING_TEXT)
            page.evaluate("document.documentElement.style.fontSize = ''")
        context.close()
    assert not any(spilling.values()), {where: found for where, found in spilling.items() if found}


# Tap targets on a phone page and what each is: a radio button or checkbox counts with the
# label around it (the whole row is the target); links inside a sentence are exempt (WCAG 2.5.8).
SMALL_TARGETS = """() => Array.from(document.querySelectorAll(
    'a, button, input:not([type=hidden]), select, textarea, summary'))
  .filter(e => e.offsetParent !== null && !e.closest('p'))
  .map(e => [e, e.closest('label') || e])
  .map(([e, target]) => [e.tagName + ' ' + (e.name || e.textContent.trim().slice(0, 30)),
                         target.getBoundingClientRect()])
  .filter(([, box]) => box.width < 44 || box.height < 44)
  .map(([what, box]) => what + ' ' + Math.round(box.width) + 'x' + Math.round(box.height))"""


def test_every_tap_target_on_a_phone_is_at_least_44_pixels(server, browser, sessions):
    small = {}
    for name in ("cafe", "theatre", "dialogue", "waiting"):
        code = sessions[name].code
        context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
        page = context.new_page()
        page.goto(f"{server}/j/{code}")
        small[f"{name} join"] = page.evaluate(SMALL_TARGETS)
        page.click(f"form[action$='/j/{code}'] [type=submit]")
        page.wait_for_selector(".phase-card")
        small[f"{name} page"] = page.evaluate(SMALL_TARGETS)
        context.close()
    assert not any(small.values()), small


# A phone whose speech synthesis has the voices in VOICES (a list of language tags) and
# records what it is asked to say.
FAKE_SPEECH = """
  window.spoken = [];
  const voices = VOICES.map((lang) => ({ lang: lang, name: lang }));
  speechSynthesis.getVoices = () => voices;
  speechSynthesis.speak = (utterance) => window.spoken.push([utterance.text, utterance.lang]);
  speechSynthesis.cancel = () => {};
  // A real utterance takes only real voices.
  window.SpeechSynthesisUtterance = class { constructor(text) { this.text = text; } };
"""


@pytest.mark.parametrize("voices", [["en-GB", "ar-SA"], ["ar-SA"]])
def test_a_question_is_read_aloud_in_its_own_language_when_the_phone_has_a_voice(
    server, browser, sessions, voices
):
    """The café's question is in English (the session's first language): an Arabic phone
    with an English voice reads it in English; one without any shows no Listen button."""
    code = sessions["cafe"].code
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    context.add_init_script(FAKE_SPEECH.replace("VOICES", json.dumps(voices)))
    page = context.new_page()
    page.goto(f"{server}/j/{code}")
    page.check("input[name=language][value=ar]")
    page.click(f"form[action$='/j/{code}'] [type=submit]")
    page.wait_for_selector(".phase-card")
    listen = page.locator("[data-read-aloud]")
    if "en-GB" in voices:
        listen.click()
        question = page.locator("#question").inner_text().strip()
        assert page.evaluate("window.spoken") == [[question, "en"]]
    else:
        assert listen.is_hidden()
    context.close()


def test_every_action_on_a_cafe_phone_carries_an_icon(server, browser, sessions):
    code = sessions["cafe"].code
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{server}/j/{code}")
    without = """Array.from(document.querySelectorAll('main button'))
      .filter(b => b.offsetParent !== null && !b.querySelector('svg.icon'))
      .map(b => b.textContent.trim())"""
    assert page.evaluate(without) == []
    page.click(f"form[action$='/j/{code}'] [type=submit]")
    page.wait_for_selector(".phase-card")
    assert page.locator("main button svg.icon").count() >= 1
    assert page.evaluate(without) == []
    context.close()


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focus is on ``selector``, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_a_cafe_runs_from_the_keyboard_alone(server, browser):
    """A facilitator moves through the rounds and a phone writes, with Tab and Enter only;
    after each reload the focus is back where it was, so Enter goes on."""

    async def create():
        async with Facilitator(server) as facilitator:
            await facilitator.sign_in(EMAIL, PASSWORD)
            return await facilitator.start_session("world_cafe", CAFE, title="Keyboard café")

    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        session = thread.submit(asyncio.run, create()).result()

    staff = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    staff.goto(server + "/auth/login")
    staff.fill("input[name=email]", EMAIL)
    staff.fill("input[name=password]", PASSWORD)
    staff.keyboard.press("Enter")
    staff.wait_for_url(re.compile(r"/sessions/"))
    staff.goto(f"{server}/sessions/{session.id}")

    phone = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True).new_page()
    phone.goto(f"{server}/j/{session.code}")
    tab_to(phone, f"form[action$='/j/{session.code}'] [type=submit]")
    phone.keyboard.press("Enter")
    phone.wait_for_selector(".phase-card")

    tab_to(staff, "[data-next-phase]")
    staff.keyboard.press("Enter")
    staff.wait_for_selector(".plan li.current button:has-text('Round 1')")
    # The focus came back to the next-phase button: Enter alone moves on again later.
    assert staff.evaluate("document.activeElement.matches('[data-next-phase]')")

    phone.wait_for_selector("textarea[name=body]", timeout=15_000)
    live_on(phone)
    tab_to(phone, "textarea[name=body]")
    phone.keyboard.type("Buses stop too early in the evening")
    tab_to(phone, ".note-form [type=submit]")
    phone.keyboard.press("Enter")
    phone.get_by_role("status").filter(has_text="Sent.").wait_for(state="attached")

    staff.keyboard.press("Enter")
    staff.wait_for_selector(".plan li.current button:has-text('Round 2')")
    phone.context.close()
    staff.context.close()
