"""End to end in headless Chromium against a real `palabre serve`.

A facilitator signs in, creates and runs a café; two phones join by the join
URL, choose tables and post notes that appear on the projector; the
facilitator moves through the rounds and the harvest; the harvest PDF holds
the notes.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import websocket
from pypdf import PdfReader

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EMAIL, PASSWORD = "facilitator@example.org", "a long enough password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def palabre(*args, env, **kwargs):
    command = [sys.executable, "-c", "from palabre.cli import main; main()", *args]
    return subprocess.Popen(command, env=env, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real Palabre server on loopback, with one facilitator account."""
    port = free_port()
    instance = tmp_path_factory.mktemp("instance")
    env = {
        **os.environ,
        "PALABRE_INSTANCE": str(instance),
        "PALABRE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = open(instance / "server.log", "w+")  # noqa: SIM115 (closed below)
    process = palabre(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"palabre serve did not start:\n{log.read()}")
            time.sleep(0.3)
    created = palabre("create-facilitator", EMAIL, "--password", PASSWORD, env=env)
    assert created.wait(timeout=60) == 0
    yield base
    process.terminate()
    process.wait(timeout=20)
    log.seek(0)
    server_log = log.read()
    log.close()
    # Nothing that identifies a visitor is logged.
    assert "127.0.0.1 - -" not in server_log and "Mozilla" not in server_log


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: scripts/setup --test installs it")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def wait_until(page, expression: str, timeout: float = 15) -> None:
    """Wait until the JavaScript ``expression`` is true on ``page``, polling with
    ``page.evaluate``: Playwright's ``wait_for_function`` compiles its predicate inside the
    page, which the Content-Security-Policy (no ``unsafe-eval``) refuses when it has to poll."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(expression):
                return
        except PlaywrightError:  # the page reloading itself (a new phase): ask the next one
            pass
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(50)


def phone(browser, url):
    context = browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True)
    page = context.new_page()
    page.goto(url)
    return page


def signed_in_facilitator(browser, server):
    page = browser.new_context().new_page()
    page.goto(server + "/auth/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    return page


def create_and_open(facilitator) -> tuple[str, str]:
    """Submit the filled-in new-session form, open the session; its run URL and join code."""
    facilitator.click("form button[name=submit]")
    facilitator.wait_for_url(re.compile(r"/sessions/\d+$"))
    run_url = facilitator.url
    facilitator.click("text=Open the session")
    return run_url, facilitator.locator(".join-code strong").first.inner_text().strip()


def advance(facilitator, to: str) -> None:
    """Move to the next phase and wait until the facilitator's screen shows it."""
    facilitator.click("[data-next-phase]")
    facilitator.wait_for_selector(f".plan li.current button:has-text('{to}')")


def test_a_world_cafe_from_qr_scan_to_printed_harvest(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Café on the intercultural plan")
    facilitator.fill("input[name=config-tables]", "2")
    facilitator.fill(
        "textarea[name=config-questions-en]",
        "What helped you when you arrived?\nWhat should the city change?",
    )
    # Ticking French brings its questions out of "Other languages" (texts_field.js).
    facilitator.check("input[name=languages][value=fr]")
    facilitator.fill(
        "textarea[name=config-questions-fr]",
        "Qu’est-ce qui vous a aidé en arrivant ?\nQue devrait changer la ville ?",
    )
    facilitator.check("input[name=config-assignment][value=choose]")
    run_url, code = create_and_open(facilitator)

    projector = browser.new_context(storage_state=facilitator.context.storage_state()).new_page()
    projector.goto(run_url + "/projector")
    assert code in projector.content()

    amina = phone(browser, f"{server}/j/{code}")
    amina.check("input[name=language][value=en]")
    amina.check("input[name=group][value='1']")
    amina.click("button[type=submit], input[type=submit]")
    jonas = phone(browser, f"{server}/j/{code}")
    jonas.check("input[name=language][value=fr]")
    jonas.check("input[name=group][value='2']")
    jonas.click("button[type=submit], input[type=submit]")
    assert jonas.locator("html").get_attribute("lang") == "fr"

    # Round 1: phones reload by themselves when the facilitator moves on.
    advance(facilitator, "Round 1")
    amina.wait_for_selector("text=What helped you when you arrived?")
    projector.wait_for_selector("text=What helped you when you arrived?")
    amina.fill("textarea[name=body]", "The library's <b>free</b> language café")
    amina.click(".note-form [type=submit]")
    projector.wait_for_selector("text=The library's <b>free</b> language café")
    jonas.wait_for_selector("textarea[name=body]")
    jonas.fill("textarea[name=body]", "Des horaires du soir à la mairie")
    jonas.click(".note-form [type=submit]")
    projector.wait_for_selector("text=Des horaires du soir à la mairie")
    facilitator.wait_for_selector("text=Des horaires du soir à la mairie")
    # Table 2's note did not reach table 1.
    assert "Des horaires du soir" not in amina.content()

    # Round 2, then the harvest.
    advance(facilitator, "Round 2")
    amina.wait_for_selector("text=What should the city change?")
    amina.fill("textarea[name=body]", "Interpreters at the town hall")
    amina.click(".note-form [type=submit]")
    projector.wait_for_selector("text=Interpreters at the town hall")
    advance(facilitator, "Harvest")
    amina.locator("details.insight-form summary").click()
    amina.fill("textarea[name=body]", "One desk for all newcomer questions")
    amina.click("details.insight-form [type=submit]")
    jonas.wait_for_selector("text=One desk for all newcomer questions")
    jonas.locator(".vote-form [data-give]").first.click()
    projector.wait_for_selector(".insights [data-votes='1']")

    # Into the backlog, then the printed harvest.
    facilitator.goto(run_url.replace("/sessions/", "/backlog/from-session/"))
    facilitator.check("input[name^=take-] >> nth=0")
    facilitator.click("form button[name=submit]")
    facilitator.wait_for_selector("text=One desk for all newcomer questions")
    report_url = run_url.replace("/sessions/", "/print/sessions/") + "/report.pdf"
    report = facilitator.request.get(report_url)
    assert report.ok and report.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(report.body())).pages)
    for expected in (
        "The library's <b>free</b> language café",
        "Des horaires du soir à la mairie",
        "Interpreters at the town hall",
        "One desk for all newcomer questions",
    ):
        assert expected in " ".join(text.split())


def test_phone_offline_keeps_its_note_and_sends_it_later(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Weak Wi-Fi café")
    facilitator.fill("input[name=config-tables]", "1")
    _run_url, code = create_and_open(facilitator)
    amina = phone(browser, f"{server}/j/{code}")
    amina.click("button[type=submit], input[type=submit]")
    advance(facilitator, "Round 1")
    amina.wait_for_selector(".note-form")
    wait_until(amina, "document.documentElement.classList.contains('live-connected')")

    amina.context.set_offline(True)
    amina.evaluate("window.palabreLive.socket.io.engine.close()")
    amina.fill("textarea[name=body]", "Sent from the basement")
    amina.click(".note-form [type=submit]")
    assert "Sent from the basement" in amina.evaluate("JSON.stringify(localStorage)")
    amina.context.set_offline(False)
    facilitator.wait_for_selector("text=Sent from the basement", timeout=30000)
    wait_until(amina, "!JSON.stringify(localStorage).includes('Sent from the basement')")


def test_sockets_from_another_origin_are_refused(server):
    url = server.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, origin="http://evil.example", timeout=5)
    same = websocket.create_connection(url, origin=server, timeout=5)
    assert same.recv().startswith("0{")  # Engine.IO open packet
    same.close()


def test_a_forum_theatre_evening_from_the_play_to_the_printed_report(server, browser):
    """The Roundabout: a joker, a projector and three phones, Stop! queue to backlog."""
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/forum_theatre")
    facilitator.fill("input[name=title]", "Forum theatre at the Tron")
    facilitator.fill("input[name=config-play_title-en]", "The Roundabout")
    facilitator.fill(
        "textarea[name=config-synopsis-en]",
        "Amal seeks asylum and is sent round and round.",
    )
    # Ticking French brings its inputs out of "Other languages" (texts_field.js).
    facilitator.check("input[name=languages][value=fr]")
    facilitator.fill("textarea[name=config-synopsis-fr]", "Amal tourne en rond.")
    facilitator.fill("input[name=config-protagonist-en]", "Amal")
    # The scene cards: two of the three default ones rewritten, the third removed.
    facilitator.fill("input[name=config-scenes-0-title-en]", "The interview")
    facilitator.fill("input[name=config-scenes-0-title-fr]", "L’entretien")
    facilitator.fill("textarea[name=config-scenes-0-description-en]", "Eight hours, no interpreter")
    facilitator.fill(
        "textarea[name=config-scenes-0-description-fr]", "Huit heures, sans interprète"
    )
    facilitator.fill("input[name=config-scenes-1-title-en]", "The housing office")
    facilitator.fill("textarea[name=config-scenes-1-description-en]", "A letter is missing")
    facilitator.click("#config-scenes-2 [data-scene-change=remove]")
    assert facilitator.locator("[data-scene]").count() == 2
    run_url, code = create_and_open(facilitator)
    projector = browser.new_context(storage_state=facilitator.context.storage_state()).new_page()
    projector.goto(run_url + "/projector")
    projector.wait_for_selector("text=The Roundabout")

    phones = []
    for language in ("en", "fr", "en"):
        page = phone(browser, f"{server}/j/{code}")
        page.check(f"input[name=language][value={language}]")
        page.click("button[type=submit], input[type=submit]")
        phones.append(page)
    amina, jonas, rahel = phones
    jonas.wait_for_selector("text=Amal tourne en rond.")

    # The performance: one tap per phone and scene, counted live on the projector.
    advance(facilitator, "Scene 1")
    projector.wait_for_selector("text=The interview")
    for page in (amina, rahel):
        page.wait_for_selector(".happened-form button")
        page.click(".happened-form button")
        page.wait_for_selector(".happened-done")
    projector.wait_for_selector(".big-counter strong:text-is('2')")
    advance(facilitator, "Scene 2")
    amina.wait_for_selector("text=A letter is missing")

    # Reflection: short answers on the projector's wall, shown as text.
    advance(facilitator, "Reflection")
    answers = {
        amina: "No <b>interpreter</b> at the interview",
        jonas: "Personne n’explique la lettre",
        rahel: "Every office wants another form",
    }
    for page, text in answers.items():
        page.wait_for_selector(".answer-form textarea")
        page.fill(".answer-form textarea", text)
        page.click(".answer-form [type=submit]")
    for text in answers.values():
        projector.wait_for_selector(f"text={text}")

    # The forum: two Stop! requests, one written alternative.
    advance(facilitator, "Forum")
    amina.wait_for_selector(".stop-form button")
    amina.click(".stop-form button")
    amina.wait_for_selector("text=You are number 1 in the queue.")
    rahel.wait_for_selector(".stop-form button")
    rahel.click(".stop-form button")
    rahel.wait_for_selector("text=You are number 2 in the queue.")
    jonas.locator("details.alternative-form summary").click()
    jonas.fill("details.alternative-form textarea", "Demander la décision par écrit")
    jonas.click("details.alternative-form [type=submit]")
    facilitator.wait_for_selector("text=Demander la décision par écrit")
    facilitator.wait_for_selector(".queue.waiting li >> nth=1")
    projector.wait_for_selector(".queue.waiting li >> nth=1")

    facilitator.click("[data-call-next]")
    amina.wait_for_selector("text=It is your turn: come to the stage!")
    projector.wait_for_selector(".queue.called li:has-text('1')")
    facilitator.select_option("select[name=scene]", "1")
    facilitator.fill("input[name=moment]", "When the officer refuses an interpreter")
    facilitator.fill("textarea[name=tried]", "She asks for the <i>refusal</i> in writing")
    facilitator.fill("textarea[name=happened]", "The officer finds an interpreter")
    facilitator.click(".intervention-form [type=submit]")
    for page in (amina, jonas):
        page.wait_for_selector(".interventions .rating-form")
    amina.click(".interventions .rating-form button[value='5']")
    jonas.click(".interventions .rating-form button[value='4']")
    projector.wait_for_selector(".interventions [data-average-for]:text-is('4.5')")

    facilitator.click("[data-call-next]")
    rahel.wait_for_selector("text=It is your turn: come to the stage!")
    facilitator.fill("textarea[name=tried]", "Demander la décision par écrit")
    facilitator.check("input[name=written]")
    facilitator.click(".intervention-form [type=submit]")
    second = ".interventions li:has-text('Demander la décision par écrit') .rating-form"
    rahel.wait_for_selector(second)
    rahel.click(second + " button[value='2']")
    facilitator.wait_for_selector(".interventions [data-average-for]:text-is('2.0')")

    # The harvest: answers grouped into an obstacle, then into the backlog.
    advance(facilitator, "Harvest")
    facilitator.wait_for_selector(".answers-to-group")
    for text in ("No <b>interpreter</b>", "Personne n’explique"):
        answer = facilitator.locator(".answers-to-group li", has_text=text)
        answer.locator("input[name=answers]").check()
    facilitator.fill("input[name=title]", "Nobody speaks my language")
    facilitator.click(".obstacle-form [type=submit]")
    facilitator.wait_for_selector("text=Nobody speaks my language · 2 answers")
    projector.wait_for_selector(".obstacles li:has-text('Nobody speaks my language')")
    facilitator.goto(run_url.replace("/sessions/", "/backlog/from-session/"))
    facilitator.check("input[name^=take-] >> nth=0")
    facilitator.check("input[name^=take-] >> nth=1")
    facilitator.click("form button[name=submit]")
    facilitator.wait_for_selector("text=Nobody speaks my language")
    facilitator.wait_for_selector("text=She asks for the <i>refusal</i> in writing")

    report_url = run_url.replace("/sessions/", "/print/sessions/") + "/report.pdf"
    report = facilitator.request.get(report_url)
    assert report.ok and report.headers["content-type"] == "application/pdf"
    text = " ".join(
        "".join(p.extract_text() for p in PdfReader(io.BytesIO(report.body())).pages).split()
    )
    for expected in (
        "The Roundabout",
        "The housing office",
        "Nobody speaks my language",
        "She asks for the <i>refusal</i> in writing",
        "The officer finds an interpreter",
        "4.5 (2)",
        "Demander la décision par écrit",
        "Proposed actions",
    ):
        assert expected in text, expected
    assert EMAIL not in text


#: What a phone may download before its first note is acknowledged (issue 14).
FIRST_NOTE_BUDGET_BYTES = 40 * 1024
#: A slow phone: 400 kbit/s each way and 400 ms of latency.
SLOW_PHONE = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400_000 / 8,
    "uploadThroughput": 400_000 / 8,
}


def test_a_slow_phone_joins_and_sends_its_first_note_within_budget(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Prepaid plan café")
    facilitator.fill("input[name=config-tables]", "1")
    _run_url, code = create_and_open(facilitator)
    advance(facilitator, "Round 1")

    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    network = context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", SLOW_PHONE)
    downloaded = []
    network.on("Network.loadingFinished", lambda e: downloaded.append(e["encodedDataLength"]))
    network.on(
        "Network.webSocketFrameReceived",
        lambda event: downloaded.append(len(event["response"]["payloadData"])),
    )

    page.goto(f"{server}/j/{code}")
    page.wait_for_timeout(2000)  # reading the form and picking a language
    tapped = time.monotonic()
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_selector(".note-form")
    # Polled from here: the page's Content-Security-Policy allows no script built from a
    # string, and the network emulation's session makes Playwright's own wait build one.
    deadline = time.monotonic() + 30
    connected = "document.documentElement.classList.contains('live-connected')"
    while not page.evaluate(connected):
        assert time.monotonic() < deadline, "the live socket never connected"
        time.sleep(0.02)
    joined = time.monotonic()
    page.fill("textarea[name=body]", "Evening classes near the station")
    typed = time.monotonic()
    page.click(".note-form [type=submit]")
    # Acknowledged: the note has left the phone's outbox.
    deadline = time.monotonic() + 30
    while "Evening classes near the station" in page.evaluate("JSON.stringify(localStorage)"):
        assert time.monotonic() < deadline, "the first note was never acknowledged"
        time.sleep(0.02)
    acknowledged = time.monotonic()
    context.close()

    # Tapping "Join" to connected, then "Send" to acknowledged: the phone's waits.
    join_to_ack = (joined - tapped) + (acknowledged - typed)
    print(f"slow phone: {sum(downloaded)} bytes, {join_to_ack:.2f} s from Join to first ack")
    assert sum(downloaded) <= FIRST_NOTE_BUDGET_BYTES, downloaded
    assert join_to_ack < 3.0


def test_a_half_typed_note_survives_the_facilitator_moving_on(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Café with drafts")
    facilitator.fill("input[name=config-tables]", "1")
    _run_url, code = create_and_open(facilitator)
    amina = phone(browser, f"{server}/j/{code}")
    amina.click("button[type=submit], input[type=submit]")
    advance(facilitator, "Round 1")
    amina.wait_for_selector(".note-form textarea")
    wait_until(amina, "document.documentElement.classList.contains('live-connected')")
    amina.locator(".note-form textarea").press_sequentially("Half a thought about the bus")
    # The facilitator moves on: the phone reloads by itself, and the text is still there.
    advance(facilitator, "Round 2")
    amina.wait_for_selector("text=What is hardest for you or your family here?")
    wait_until(
        amina,
        "document.querySelector('.note-form textarea').value === 'Half a thought about the bus'",
    )
    # Sent, the draft is gone: a later reload shows an empty box.
    amina.click(".note-form [type=submit]")
    facilitator.wait_for_selector("text=Half a thought about the bus")
    amina.reload()
    amina.wait_for_selector(".note-form textarea")
    assert amina.locator(".note-form textarea").input_value() == ""


def test_scene_cards_are_added_moved_and_removed_in_the_page(server, browser):
    """The play's scenes as cards: with JavaScript the buttons change the page, no reload."""
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/forum_theatre")
    facilitator.fill("input[name=title]", "Three scenes, reordered")
    cards = facilitator.locator("[data-scene]")
    assert cards.count() == 3
    facilitator.click("[data-scene-change=add]")
    assert cards.count() == 4
    new = facilitator.locator("input[name=config-scenes-3-title-en]")
    assert new.input_value() == "" and new.evaluate("box => box === document.activeElement")
    new.fill("The appeal")
    facilitator.check("input[name=languages][value=fr]")
    facilitator.fill("input[name=config-scenes-3-title-fr]", "L’appel")
    # The new scene up to second place: renumbered, with its translation.
    facilitator.click("#config-scenes-3 [data-scene-change=up]")
    facilitator.click("#config-scenes-2 [data-scene-change=up]")
    assert facilitator.locator("#config-scenes-1 .scene-number").inner_text() == "Scene 2"
    assert facilitator.input_value("input[name=config-scenes-1-title-en]") == "The appeal"
    assert facilitator.input_value("input[name=config-scenes-1-title-fr]") == "L’appel"
    assert facilitator.locator("#config-scenes-0 [data-scene-change=up]").is_disabled()
    facilitator.click("#config-scenes-0 [data-scene-change=remove]")
    assert cards.count() == 3
    run_url, _code = create_and_open(facilitator)
    facilitator.goto(run_url)
    page = facilitator.content()
    assert page.index("The appeal") < page.index("At the other office") < page.index("Back at")


def test_close_confirm_and_reopen(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Café closed by mistake")
    facilitator.fill("input[name=config-tables]", "1")
    run_url, code = create_and_open(facilitator)
    amina = phone(browser, f"{server}/j/{code}")
    amina.click("button[type=submit], input[type=submit]")
    for step in ("Round 1", "Round 2", "Round 3", "Harvest"):
        advance(facilitator, step)
    # "Next" is now closing: it asks first, and "No" changes nothing.
    facilitator.click("[data-next-phase]")
    facilitator.wait_for_selector("text=Yes, close the session")
    facilitator.click("text=No, go back")
    facilitator.wait_for_url(run_url)
    facilitator.wait_for_selector(".now strong:text-is('Harvest')")
    facilitator.click("[data-next-phase]")
    facilitator.click("[data-confirm-close]")
    facilitator.wait_for_selector("[data-reopen]")
    amina.wait_for_selector("text=Thank you!")
    facilitator.click("[data-reopen]")
    facilitator.wait_for_selector(".now strong:text-is('Harvest')")
    amina.wait_for_selector("text=Harvest: what matters most?")


def test_dots_disable_at_zero_and_can_be_taken_back(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Café with two dots")
    facilitator.fill("input[name=config-tables]", "1")
    facilitator.fill("input[name=config-dots]", "2")
    _run_url, code = create_and_open(facilitator)
    amina = phone(browser, f"{server}/j/{code}")
    amina.click("button[type=submit], input[type=submit]")
    for step in ("Round 1", "Round 2", "Round 3", "Harvest"):
        advance(facilitator, step)
    amina.wait_for_selector("details.insight-form summary")
    wait_until(amina, "document.documentElement.classList.contains('live-connected')")
    amina.locator("details.insight-form summary").click()
    amina.fill("details.insight-form textarea", "A buddy for each family")
    amina.click("details.insight-form [type=submit]")
    give = amina.locator(".insights [data-give]").first
    give.wait_for()
    give.click()
    amina.wait_for_selector("[data-dots-left]:text-is('1')")
    amina.wait_for_selector(".insights [data-mine-count]:text-is('1')")
    give.click()
    # At 0 the button is disabled at once, without a reload and without an error.
    amina.wait_for_selector("[data-dots-left]:text-is('0')")
    assert give.is_disabled()
    assert amina.locator("#live-message").is_hidden()
    amina.locator(".insights [data-take-back]").first.click()
    amina.wait_for_selector("[data-dots-left]:text-is('1')")
    amina.wait_for_selector(".insights [data-mine-count]:text-is('1')")
    assert give.is_enabled()
    amina.reload()
    amina.wait_for_selector("[data-dots-left]:text-is('1')")


def test_a_host_qr_code_opens_the_host_view(server, browser):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", "Café with hosts")
    facilitator.fill("input[name=config-tables]", "2")
    create_and_open(facilitator)
    facilitator.locator(".role-links summary").click()
    table_2 = facilitator.locator('.role-link[data-group="2"]')
    assert table_2.locator(".role-link-qr svg").is_visible()
    link = table_2.locator(".role-link-url").get_attribute("href")
    assert link.startswith(server + "/j/")
    host = phone(browser, link)
    host.wait_for_selector("text=you are its host")
    assert host.url == f"{server}/j/{link.split('/')[4]}"  # the key left the address bar


#: Smallest text allowed on the projector, in CSS pixels: read from the back of a room.
PROJECTOR_MIN_FONT_PX = 20
#: Notes, the timer and the counts: bigger still.
PROJECTOR_MAIN_FONT_PX = 28
#: The screen's headline (the question, the scene) and its big counters, as a share of the
#: screen's height: what the back row reads first, at any projector's resolution.
PROJECTOR_HEADLINE_SHARE = 0.035
PROJECTOR_COUNTER_SHARE = 0.06
MEASURE_PROJECTOR = """
([minimum, main, headline, counter]) => {
  const small = [], cut = [], faint = [];
  const width = window.innerWidth, height = window.innerHeight;
  const rgb = (s) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(s);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(",").map(Number);
    return {r, g, b, a};
  };
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const luminance = ({r, g, b}) => {
    const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const seen = (el, box, style) => style.visibility !== "hidden" && box.width > 0
    && box.height > 0 && !el.closest("[hidden], template, svg, .visually-hidden");
  for (const el of document.querySelectorAll("body *")) {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    // Above the top edge (the skip link until a keyboard reaches it): not on the screen.
    if (!seen(el, box, style) || box.bottom <= 0) continue;
    const ownText = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    const size = parseFloat(style.fontSize);
    if (ownText && size < minimum) small.push(`${el.tagName}.${el.className}: ${size}px`);
    const isMain = el.matches(".wall li, .wall li *, [data-timer-text], .projector-main .count");
    if (ownText && isMain && size < main) small.push(`main ${el.tagName}: ${size}px`);
    if (box.right > width + 1 || box.left < -1)
      cut.push(`${el.tagName}.${el.className} ${box.left}-${box.right}`);
    if (el.scrollWidth > el.clientWidth + 1 && ["hidden", "clip"].includes(style.overflowX))
      cut.push(`${el.tagName}.${el.className} clipped`);
    if (ownText) {
      const [fg, bg] = [rgb(style.color), behind(el)];
      const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
      const ratio = (light + 0.05) / (dark + 0.05);
      const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight, 10) >= 700);
      const enough = large ? 3 : 4.5;
      if (ratio < enough) faint.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)}`);
    }
  }
  // What the room must see whole, on the screen, not below its bottom edge.
  const key = ".projector-main h1, .projector-main .question, .big-counter, [data-timer-text],"
    + " .projector-join .qr, .join-code, [data-times-up]";
  for (const el of document.querySelectorAll(key)) {
    const box = el.getBoundingClientRect();
    if (seen(el, box, getComputedStyle(el)) && (box.bottom > height + 1 || box.top < -1))
      cut.push(`${el.tagName}.${el.className} below the screen: ${box.top}-${box.bottom}`);
  }
  const first = document.querySelector(".projector-main h1, .projector-main .question");
  const headlinePx = first ? parseFloat(getComputedStyle(first).fontSize) : 0;
  if (first && headlinePx < headline * height) small.push(`headline: ${headlinePx}px`);
  for (const el of document.querySelectorAll(".big-counter strong")) {
    const px = parseFloat(getComputedStyle(el).fontSize);
    if (px < counter * height) small.push(`counter: ${px}px`);
  }
  return {small, cut, faint, headlinePx, scroll: document.documentElement.scrollWidth - width};
}
"""


def assert_readable(page, what: str) -> None:
    """What a room sees on ``page``: big enough, contrasted, nothing cut or off the screen.

    With ``PALABRE_SHOTS`` naming a folder, the screen is saved there for a look.
    """
    if os.environ.get("PALABRE_SHOTS"):
        size = page.viewport_size
        name = f"{what.replace(' ', '-')}-{size['width']}x{size['height']}.png"
        page.screenshot(path=os.path.join(os.environ["PALABRE_SHOTS"], name))
    measured = page.evaluate(
        MEASURE_PROJECTOR,
        [
            PROJECTOR_MIN_FONT_PX,
            PROJECTOR_MAIN_FONT_PX,
            PROJECTOR_HEADLINE_SHARE,
            PROJECTOR_COUNTER_SHARE,
        ],
    )
    assert measured["small"] == [], f"{what}: text too small {measured['small'][:5]}"
    assert measured["cut"] == [], f"{what}: cut off {measured['cut'][:5]}"
    assert measured["faint"] == [], f"{what}: contrast too low {measured['faint'][:5]}"
    assert measured["scroll"] <= 0, f"{what}: scrolls sideways by {measured['scroll']}px"


def test_the_projector_checks_see_what_a_room_would_miss(browser):
    """Pale, small, cut and off-screen text are each reported."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.set_content(
        """<main class="projector-main"><h1 style="font-size: 20px">A small headline</h1>
        <p style="color: #bbb; font-size: 22px">Pale grey on white</p>
        <p class="question" style="font-size: 40px; margin-top: 900px">Below the screen</p>
        <p style="font-size: 24px; width: 3000px">Wider than the screen</p></main>"""
    )
    measured = page.evaluate(
        MEASURE_PROJECTOR,
        [
            PROJECTOR_MIN_FONT_PX,
            PROJECTOR_MAIN_FONT_PX,
            PROJECTOR_HEADLINE_SHARE,
            PROJECTOR_COUNTER_SHARE,
        ],
    )
    assert measured["small"] == ["headline: 20px"]
    assert [f.split(":")[0] for f in measured["faint"]] == ["P."]
    assert any("below the screen" in c for c in measured["cut"])
    assert measured["scroll"] > 0
    page.close()


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1280, 720)])
def test_every_methods_projector_is_readable_from_the_back(server, browser, width, height):
    """The forum theatre, the citizen dialogue and the audit's debrief on a projector."""
    facilitator = signed_in_facilitator(browser, server)
    context = browser.new_context(viewport={"width": width, "height": height})

    def projector_of(run_url):
        context.add_cookies(facilitator.context.cookies())
        page = context.new_page()
        page.goto(run_url + "/projector")
        return page

    facilitator.goto(server + "/sessions/new/forum_theatre")
    facilitator.fill("input[name=title]", "The Roundabout at the Tron Theatre, Glasgow")
    facilitator.check("input[name=languages][value=ar]")
    run_url, code = create_and_open(facilitator)
    forum = projector_of(run_url)
    assert_readable(forum, "forum welcome")
    advance(facilitator, "Scene 1")
    amina = phone(browser, f"{server}/j/{code}")
    amina.click("button[type=submit], input[type=submit]")
    amina.click(".happened-form button")
    forum.wait_for_selector(".big-counter strong:text-is('1')")
    assert_readable(forum, "forum scene")
    for step in ("Scene 2", "Scene 3", "Reflection", "Forum"):
        advance(facilitator, step)
    forum.wait_for_selector("text=Forum")
    assert_readable(forum, "forum")

    facilitator.goto(server + "/sessions/new/citizen_dialogue")
    facilitator.fill("input[name=title]", "Citizen dialogue in Mörsil")
    run_url, _code = create_and_open(facilitator)
    advance(facilitator, "Listening")
    dialogue = projector_of(run_url)
    assert_readable(dialogue, "dialogue listening")

    facilitator.goto(server + "/sessions/new/mystery_shopping")
    facilitator.fill("input[name=title]", "Immigration advice audit")
    run_url, _code = create_and_open(facilitator)
    advance(facilitator, "Fieldwork")
    advance(facilitator, "Debrief")
    debrief = projector_of(run_url)
    assert_readable(debrief, "audit debrief")
    advance(facilitator, "Report")
    debrief.reload()
    assert_readable(debrief, "audit report")
    context.close()


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1280, 720)])
def test_the_projector_is_readable_and_nothing_is_cut_off(server, browser, width, height):
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/world_cafe")
    facilitator.fill("input[name=title]", f"Projector at {width}x{height}")
    facilitator.fill("input[name=config-tables]", "3")
    facilitator.fill("input[name=wifi_name]", "CasaDeLasCulturas-Invitados")
    facilitator.fill("input[name=wifi_password]", "bienvenida2026")
    facilitator.check("input[name=languages][value=fr]")
    facilitator.check("input[name=languages][value=ar]")
    run_url, code = create_and_open(facilitator)
    context = browser.new_context(
        storage_state=facilitator.context.storage_state(),
        viewport={"width": width, "height": height},
    )
    projector = context.new_page()
    projector.goto(run_url + "/projector")
    # The welcome: a big QR code, the Wi-Fi, how to join in each language of the session.
    projector.wait_for_selector("text=CasaDeLasCulturas-Invitados")
    assert projector.locator(".join-instructions li").count() == 3
    assert projector.locator(".join-instructions li[lang=ar][dir=rtl]").count() == 1
    big_qr = projector.locator(".projector-join .qr").bounding_box()["width"]
    assert big_qr > width * 0.2
    assert_readable(projector, "welcome")

    amina = phone(browser, f"{server}/j/{code}")
    amina.click("button[type=submit], input[type=submit]")
    advance(facilitator, "Round 1")
    projector.wait_for_selector(".join-in-corner")
    small_qr = projector.locator(".projector-join .qr").bounding_box()["width"]
    assert small_qr < width * 0.16
    for n in range(12):
        amina.fill("textarea[name=body]", f"Note {n}: " + "evening classes at the library " * 3)
        amina.click(".note-form [type=submit]")
        projector.wait_for_selector(f"text=Note {n}:")
    assert_readable(projector, "a round with notes")
    # Time's up: said in words, and the café says to change tables.
    projector.evaluate(
        "document.querySelector('[data-timer]').dataset.endsAt ="
        " new Date(Date.now() - 1000).toISOString()"
    )
    projector.wait_for_selector("[data-times-up]:has-text('change tables')")
    assert_readable(projector, "time's up")
    context.close()


def test_a_mystery_shopping_audit_from_preparation_to_the_printed_report(server, browser):
    """Two services, two evaluators (one offline, one with an ethics concern), debrief, backlog."""
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/mystery_shopping")
    facilitator.fill("input[name=title]", "Immigration advice audit")
    run_url, _code = create_and_open(facilitator)

    for name in ("Tower Hamlets Law Centre", "East End Advice Desk"):
        add = facilitator.locator("#services details.add")
        if add.get_attribute("open") is None:
            add.locator("summary").click()
        add.locator("input[name=name-en]").fill(name)
        add.locator("button").click()
        facilitator.wait_for_selector(f"#services summary:has-text('{name}')")
    links = facilitator.locator("#role-links-evaluator")
    for count in (1, 2):
        if links.get_attribute("open") is None:
            links.locator("summary").click()
        links.locator("button:has-text('Make a new link')").click()
        links = facilitator.locator("#role-links-evaluator")
        facilitator.wait_for_selector(
            f"#role-links-evaluator .role-link >> nth={count - 1}", state="attached"
        )
    for code, service in (("E-01", "Tower Hamlets Law Centre"), ("E-02", "East End Advice Desk")):
        facilitator.select_option("#assign-link", label=code)
        facilitator.select_option("#assign-service", label=service)
        facilitator.click("text=Assign this visit")
        facilitator.wait_for_selector(f"#assignments td:has-text('{service}')")
    urls = {
        code: facilitator.locator(f".role-link[data-code='{code}'] .role-link-url").get_attribute(
            "href"
        )
        for code in ("E-01", "E-02")
    }
    amina, bilal = phone(browser, urls["E-01"]), phone(browser, urls["E-02"])
    assert "Tower Hamlets Law Centre" in amina.inner_text("main")
    assert "East End Advice Desk" not in amina.inner_text("main")
    advance(facilitator, "Fieldwork")

    # What Amina types is kept as a draft on her phone: a reload loses nothing.
    amina.wait_for_selector(".visit-form")
    amina.check("input[name=score-c2][value='3']")
    amina.fill(
        ".visit-form textarea[name=note-c2]", "Right about the fee, wrong about the deadline."
    )
    amina.reload()
    amina.wait_for_selector(".visit-form")
    assert amina.is_checked("input[name=score-c2][value='3']")
    assert amina.input_value(".visit-form textarea[name=note-c2]").startswith("Right about the fee")

    # Amina reports from the street, without a connection: the report waits on her phone.
    wait_until(amina, "document.documentElement.classList.contains('live-connected')")
    amina.context.set_offline(True)
    amina.evaluate("window.palabreLive.socket.io.engine.close()")
    amina.check("input[name=score-c1][value='2']")
    amina.check("input[name=score-c3][value='1']")
    amina.fill(
        ".visit-form textarea[name=body]", "Told a lawyer costs 900 pounds; no free option named."
    )
    amina.fill(".visit-form input[name=expenses]", "4.80")
    amina.click(".visit-form [type=submit]")
    assert "no free option named" in amina.evaluate("JSON.stringify(localStorage)")
    amina.context.set_offline(False)
    facilitator.wait_for_selector("#reports li:has-text('no free option named')", timeout=30000)
    wait_until(amina, "!JSON.stringify(localStorage).includes('no free option named')")

    # Bilal flags an ethics concern: it reaches the facilitator's screen at once, no reload.
    bilal.wait_for_selector(".visit-form")
    bilal.check("input[name=score-c4][value='1']")
    bilal.fill(".visit-form textarea[name=body]", "The adviser asked for cash upfront.")
    bilal.check(".visit-form input[name=ethics]")
    bilal.click(".visit-form [type=submit]")
    facilitator.wait_for_selector("#concerns li:has-text('asked for cash upfront')", timeout=15000)
    # His phone says the visit is reported, as a reload would.
    bilal.wait_for_selector("details.visit > summary:has-text('Report sent')")
    assert "E-02" in facilitator.inner_text("#concerns")
    # Complete at once, as a reload would show it: service, scenario, scores, time, expenses.
    concern = facilitator.locator("#concerns li", has_text="asked for cash upfront")
    concern.locator(".visit-scores dl").wait_for(timeout=15000)
    shown = concern.inner_text()
    for expected in ("East End Advice Desk", "Scenario:", "60 minutes, 0.00 EUR", "Ethics concern"):
        assert expected in shown, expected
    amina_item = facilitator.locator("#reports li", has_text="no free option named")
    amina_item.locator(".visit-scores").wait_for(timeout=15000)
    amina_item.locator(".visit-scores summary").click()
    assert "Right about the fee, wrong about the deadline." in amina_item.inner_text()
    assert "Sent" in facilitator.locator("[data-report-status-for]").first.text_content()

    # An action of the plan this audit evaluates, written in the backlog meanwhile.
    facilitator.goto(server + "/backlog/actions/new")
    facilitator.fill("input[name=title]", "Train the staff of the East End Advice Desk")
    facilitator.click("form [type=submit]:has-text('Save the action')")
    facilitator.wait_for_url(lambda url: "/actions/new" not in url)
    action_url = facilitator.url
    facilitator.goto(run_url)

    advance(facilitator, "Debrief")
    amina.wait_for_selector("textarea#context-body")
    amina.fill("textarea#context-body", "The desk was covering for two colleagues.")
    amina.click(".note-form [type=submit]")
    facilitator.wait_for_selector("#contexts li:has-text('covering for two colleagues')")
    facilitator.fill("#finding-body", "Free legal advice is rarely mentioned.")
    facilitator.select_option("#finding-service", label="East End Advice Desk")
    facilitator.click("text=Add the finding")
    # Linked to the action naming its service, offered first, then agreed: an evaluation entry.
    finding = facilitator.locator("#findings li", has_text="rarely mentioned")
    finding.locator(".finding-links summary").click()
    suggested = finding.locator("label.choice", has_text="names this service")
    assert "Train the staff of the East End Advice Desk" in suggested.inner_text()
    suggested.locator("input").check()
    finding.locator("button:has-text('Save the links')").click()
    facilitator.click("#findings button:has-text('Mark as agreed')")
    facilitator.wait_for_selector("#findings li.agreed")
    assert "Recorded as evaluation of:" in facilitator.inner_text("#findings")
    facilitator.goto(action_url)
    evaluation = facilitator.inner_text("section[aria-labelledby=evaluation-heading]")
    assert "Free legal advice is rarely mentioned." in evaluation
    assert "Immigration advice audit" in evaluation and "E-0" not in evaluation
    facilitator.goto(run_url)

    advance(facilitator, "Report")
    facilitator.click("text=Turn the agreed findings into needs in the backlog")
    facilitator.check("input[type=checkbox][name^=take-]")
    facilitator.click("form button[name=submit]")
    facilitator.goto(server + "/backlog/")
    assert "Free legal advice is rarely mentioned." in facilitator.inner_text("main")

    report = facilitator.request.get(
        run_url.replace("/sessions/", "/print/sessions/") + "/report.pdf"
    )
    assert report.ok and report.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(report.body()))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    for expected in (
        "Free legal advice is rarely mentioned.",
        "Tower Hamlets Law Centre",
        "Fewer than 3 reports on this service",
        "The adviser asked for cash upfront.",
        "Evaluation of the plan’s actions",
        "Train the staff of the East End Advice Desk",
    ):
        assert expected in text, expected
    assert "E-01" not in text and "E-02" not in text


def test_a_citizen_dialogue_from_interviews_to_the_perspective_report(server, browser):
    """A connector records two interviews (one offline), themes, a meeting, a project.

    The meeting is scheduled from the dialogue and held as a session of its own: its own
    code for the phones, its own run screen.
    """
    facilitator = signed_in_facilitator(browser, server)
    facilitator.goto(server + "/sessions/new/citizen_dialogue")
    facilitator.fill("input[name=title]", "Citizen dialogue in Mörsil")
    facilitator.fill("input[name=config-population]", "875")
    facilitator.check("input[name=languages][value=fr]")
    run_url, code = create_and_open(facilitator)
    advance(facilitator, "Listening")

    # The facilitator hands a connector their personal link.
    facilitator.locator("#role-links-connector summary").click()
    facilitator.click("#role-links-connector button:has-text('Make a new link')")
    facilitator.locator("#role-links-connector summary").click()
    link = facilitator.locator("#role-links-connector .role-link-url").first.inner_text()
    assert "localhost" not in link and link.startswith(server)
    connector = phone(browser, link)
    connector.wait_for_selector("text=C-01")
    wait_until(connector, "document.documentElement.classList.contains('live-connected')")

    def record(answers, place):
        connector.select_option("#iv-respondent", "resident")
        connector.select_option("#iv-language", "ar")
        connector.select_option("#iv-place", place)
        for name, text in answers.items():
            connector.fill(f".interview-form textarea[name={name}]", text)
        connector.check("input[name=consent]")
        connector.click(".interview-form [type=submit]")

    record({"q1": "The forest", "q2": "The bus to Järpen runs twice a day"}, "shop")
    connector.wait_for_selector(".outbox li.sent")
    # Out of reach of the Wi-Fi: the interview waits on the phone, then goes.
    connector.context.set_offline(True)
    connector.evaluate("window.palabreLive.socket.io.engine.close()")
    record({"q2": "No bus in the evening, so no evening class"}, "home")
    assert "No bus in the evening" in connector.evaluate("JSON.stringify(localStorage)")
    assert connector.input_value(".interview-form textarea[name=q2]") == ""
    connector.context.set_offline(False)
    connector.wait_for_selector(".outbox li.sent >> nth=1", timeout=30000)
    wait_until(connector, "!JSON.stringify(localStorage).includes('No bus in the evening')")

    # Theming: one theme, both bus answers in it, one picked as the quote.
    advance(facilitator, "Theming")
    facilitator.goto(run_url)
    facilitator.fill("input[name=name-en]", "Getting around")
    facilitator.fill("textarea[name=prompt-en]", "How could we get around without a car?")
    facilitator.click(".create-theme [type=submit]")
    for text in ("The bus to Järpen", "No bus in the evening"):
        facilitator.locator(".answers li", has_text=text).locator("input[name=answers]").check()
    facilitator.click("#move-unthemed ~ button")
    theme = facilitator.locator("article.theme", has_text="Getting around")
    theme.locator("li", has_text="The bus to Järpen").locator("button").click()
    facilitator.wait_for_selector("article.theme .badge:has-text('Quote')")

    # The meeting on that theme, scheduled for its evening, then held with two phones.
    advance(facilitator, "Dialogue meetings")
    facilitator.goto(run_url)
    facilitator.fill("#meeting-starts", "2026-03-05T18:30")
    facilitator.fill("#meeting-venue", "Mörsil community hall")
    facilitator.check(".meetings input[name=themes]")
    facilitator.click(".meetings form [type=submit]")
    facilitator.click(".meeting-list a:has-text('Run this meeting')")
    facilitator.wait_for_url(re.compile(r"/sessions/\d+$"))
    meeting_url = facilitator.url
    assert meeting_url != run_url
    facilitator.click("text=Open the session")
    meeting_code = facilitator.locator(".join-code strong").first.inner_text().strip()
    assert meeting_code != code
    amina = phone(browser, f"{server}/j/{meeting_code}")
    amina.click("button[type=submit], input[type=submit]")
    jonas = phone(browser, f"{server}/j/{meeting_code}")
    jonas.check("input[name=language][value=fr]")
    jonas.click("button[type=submit], input[type=submit]")
    amina.wait_for_selector("text=How could we get around without a car?")
    advance(facilitator, "Views, ideas and dots")
    amina.fill("#idea-body", "A village car pool on a phone group")
    amina.click("form:has(#idea-body) [type=submit]")
    jonas.wait_for_selector("#ideas li:has-text('A village car pool')")
    jonas.fill("#view-body", "Le dernier bus part à six heures")
    jonas.click("form:has(#view-body) [type=submit]")
    amina.wait_for_selector("#views li:has-text('Le dernier bus')")
    jonas.locator("#ideas .vote-form [data-give]").first.click()
    amina.locator("#ideas .vote-form [data-give]").first.click()
    facilitator.wait_for_selector(".insights [data-votes='2']")

    # Back at the dialogue, the meeting's idea becomes a citizen-led project, then goes to
    # the backlog.
    facilitator.goto(run_url)
    advance(facilitator, "Projects")
    facilitator.goto(run_url)
    facilitator.locator(".projects-panel details summary", has_text="A village car pool").click()
    facilitator.fill("input[name=lead_group]", "Mörsil village association")
    facilitator.fill("textarea[name=from_city]", "Insurance for volunteer drivers")
    facilitator.click(".projects-panel form:has(input[name=idea]) [type=submit]")
    facilitator.wait_for_selector(".projects li:has-text('Mörsil village association')")
    advance(facilitator, "Feedback")
    # The last phase comes with closing the session, which asks first.
    facilitator.click("[data-next-phase]")
    facilitator.click("[data-confirm-close]")
    facilitator.wait_for_selector("[data-reopen]")
    facilitator.goto(run_url.replace("/sessions/", "/backlog/from-session/"))
    facilitator.check("input[name^=take-] >> nth=0")
    facilitator.check("input[name^=take-] >> nth=1")
    facilitator.click("form button[name=submit]")
    facilitator.wait_for_selector("text=A village car pool on a phone group")

    report_url = run_url.replace("/sessions/", "/print/sessions/") + "/report.pdf"
    report = facilitator.request.get(report_url + "?part=perspective")
    assert report.ok and report.headers["content-type"] == "application/pdf"
    text = " ".join(
        "".join(p.extract_text() for p in PdfReader(io.BytesIO(report.body())).pages).split()
    )
    for expected in (
        "Citizen dialogue in Mörsil",
        "Getting around",
        "“The bus to Järpen runs twice a day”",
        "2 people heard",
        "of the 875 people living in the area",
    ):
        assert expected in text, expected
    assert EMAIL not in text and "C-01" not in text
