"""Screenshots of Palabre's main screens, for docs/screens/ (run by scripts/screens).

Starts a real ``palabre serve`` on a throwaway instance, plays a world café
and a forum theatre evening with a facilitator, a projector and phones in
headless Chromium, and saves each main screen at the sizes people meet it:
phones at 360x740 (English and Arabic), the facilitator at 1366x768, the
projector at 1920x1080 and 1280x720; the printed report and poster as PNG
pages (``pdftoppm -r 60``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from palabre.testing import served_palabre
from palabre.testing.kit import FACILITATOR_EMAIL, FACILITATOR_PASSWORD

OUT = Path(__file__).resolve().parent.parent / "docs" / "screens"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1366, "height": 768}


def shot(page, name: str, full_page: bool = False) -> None:
    page.wait_for_timeout(300)  # let fonts and live updates settle
    page.screenshot(path=OUT / f"{name}.png", full_page=full_page)
    print(f"docs/screens/{name}.png")


def pdf_pages(data: bytes, name: str, pages: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "out.pdf"
        pdf.write_bytes(data)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", "-l", str(pages), pdf, OUT / name], check=True
        )
    for made in sorted(OUT.glob(f"{name}-*.png")):
        print(f"docs/screens/{made.name}")


class Play:
    """A facilitator's browser, and the phones and projectors they open."""

    def __init__(self, browser, base: str):
        self.browser, self.base = browser, base
        self.facilitator = browser.new_context(viewport=LAPTOP).new_page()
        self.facilitator.goto(base + "/auth/login")
        self.facilitator.fill("input[name=email]", FACILITATOR_EMAIL)
        self.facilitator.fill("input[name=password]", FACILITATOR_PASSWORD)
        self.facilitator.click("button[type=submit]")

    def create(self, method: str, fields: dict, languages=("fr", "ar")) -> tuple[str, str]:
        page = self.facilitator
        page.goto(f"{self.base}/sessions/new/{method}")
        for name, value in fields.items():
            page.fill(f"[name={name}]", value)
        for language in languages:
            page.check(f"input[name=languages][value={language}]")
        page.click("form button[name=submit]")
        page.wait_for_url(re.compile(r"/sessions/\d+$"))
        run_url = page.url
        page.click("text=Open the session")
        code = page.locator(".join-code strong").first.inner_text().strip()
        return run_url, code

    def phone(self, code: str, language: str = "en", group: str | None = None):
        page = self.browser.new_context(viewport=PHONE, is_mobile=True).new_page()
        page.goto(f"{self.base}/j/{code}")
        page.check(f"input[name=language][value={language}]")
        if group:
            page.check(f"input[name=group][value='{group}']")
        page.click("form [type=submit]")
        page.wait_for_selector(".phase-card")
        return page

    def projector(self, run_url: str, width: int, height: int):
        context = self.browser.new_context(
            storage_state=self.facilitator.context.storage_state(),
            viewport={"width": width, "height": height},
        )
        page = context.new_page()
        page.goto(run_url + "/projector")
        return page

    def next(self) -> None:
        before = self.facilitator.locator(".now strong").inner_text()
        self.facilitator.click("[data-next-phase]")
        # Polled from here: the page's Content-Security-Policy allows no eval.
        expect(self.facilitator.locator(".now strong")).not_to_have_text(before)


def cafe(play: Play) -> None:
    run_url, code = play.create(
        "world_cafe",
        {
            "title": "Café on the intercultural plan",
            "venue": "Casa de las Culturas",
            "starts_at": "2026-03-14T18:30",
            "wifi_name": "Casa-Invitados",
            "wifi_password": "bienvenida",
            "config-tables": "3",
            "config-dots": "3",
        },
    )
    big = play.projector(run_url, 1920, 1080)
    small = play.projector(run_url, 1280, 720)
    shot(big, "projector-welcome-1920x1080")
    shot(small, "projector-welcome-1280x720")
    amina = play.phone(code, "en")
    karim = play.phone(code, "ar")
    shot(amina, "phone-welcome-en")
    play.next()
    amina.wait_for_selector(".note-form textarea")
    karim.wait_for_selector(".note-form textarea")
    notes = [
        (amina, "Evening language classes are always full"),
        (karim, "لا أحد يشرح الرسائل الرسمية"),
        (amina, "The library's homework club helped my son 🙏"),
        (karim, "مواعيد الطبيب بعيدة جداً"),
    ]
    for page, text in notes:
        page.fill(".note-form textarea", text)
        page.click(".note-form [type=submit]")
        big.wait_for_selector(f"text={text}")
    amina.fill(".note-form textarea", "Half typed: the bus to the")
    shot(amina, "phone-round-en", full_page=True)
    shot(karim, "phone-round-ar", full_page=True)
    shot(play.facilitator, "facilitator-round")
    shot(play.facilitator, "facilitator-round-full", full_page=True)
    shot(big, "projector-round-1920x1080")
    shot(small, "projector-round-1280x720")
    big.evaluate(
        "document.querySelector('[data-timer]').dataset.endsAt ="
        " new Date(Date.now() - 1000).toISOString()"
    )
    big.wait_for_selector("[data-times-up]:visible")
    shot(big, "projector-times-up-1920x1080")
    for _ in range(3):
        play.next()
    amina.wait_for_selector("details.insight-form summary")
    for page, text in (
        (amina, "One desk for all newcomer questions"),
        (karim, "مترجمون في البلدية"),
    ):
        page.locator("details.insight-form summary").click()
        page.fill("details.insight-form textarea", text)
        page.click("details.insight-form [type=submit]")
        big.wait_for_selector(f"text={text}")
    for _ in range(3):
        amina.locator(".insights [data-give]:enabled").first.click()
        amina.wait_for_timeout(400)
    shot(amina, "phone-harvest-no-dots-left-en", full_page=True)
    shot(big, "projector-harvest-1920x1080")
    shot(play.facilitator, "facilitator-harvest")
    play.facilitator.click("[data-next-phase]")
    play.facilitator.wait_for_selector("[data-confirm-close]")
    shot(play.facilitator, "facilitator-close-confirmation")
    play.facilitator.click("[data-confirm-close]")
    play.facilitator.wait_for_selector("[data-reopen]")
    shot(play.facilitator, "facilitator-closed")
    report = play.facilitator.request.get(
        run_url.replace("/sessions/", "/print/sessions/") + "/report.pdf", timeout=120_000
    )
    pdf_pages(report.body(), "report-cafe", 4)
    poster = play.facilitator.request.get(
        run_url.replace("/sessions/", "/print/sessions/") + "/poster.pdf", timeout=120_000
    )
    pdf_pages(poster.body(), "poster-cafe", 1)


def forum(play: Play) -> None:
    # The play's scenes as cards, a title and a description in each language of the session.
    play.facilitator.goto(f"{play.base}/sessions/new/forum_theatre")
    play.facilitator.check("input[name=languages][value=ar]")
    play.facilitator.locator("#config-scenes").screenshot(path=OUT / "new-forum-scenes.png")
    print("docs/screens/new-forum-scenes.png")
    run_url, code = play.create(
        "forum_theatre",
        {
            "title": "Forum theatre at the Tron",
            "venue": "Tron Theatre",
            "config-protagonist-en": "Amal",
        },
    )
    big = play.projector(run_url, 1920, 1080)
    phones = [play.phone(code, language) for language in ("en", "ar", "en")]
    play.next()
    for page in phones[:2]:
        page.click(".happened-form button")
        page.wait_for_selector(".happened-done")
    shot(phones[0], "phone-forum-scene-en")
    shot(big, "projector-forum-scene-1920x1080")
    for _ in range(4):
        play.next()
    phones[0].wait_for_selector(".stop-form button")
    phones[0].click(".stop-form button")
    phones[0].wait_for_selector(".queue-number")
    play.facilitator.wait_for_selector(".queue.waiting li")
    play.facilitator.click("[data-call-next]")
    phones[0].wait_for_selector(".badge.called")
    play.facilitator.fill("textarea[name=tried]", "She asks for the decision in writing")
    play.facilitator.click(".intervention-form [type=submit]")
    phones[1].wait_for_selector(".interventions .rating-form")
    phones[1].click(".interventions .rating-form button[value='4']")
    phones[1].wait_for_selector("button.rating.chosen")
    shot(phones[0], "phone-forum-your-turn-en")
    shot(phones[1], "phone-forum-rating-ar", full_page=True)
    shot(play.facilitator, "joker-forum", full_page=True)
    shot(big, "projector-forum-1920x1080")
    report = play.facilitator.request.get(
        run_url.replace("/sessions/", "/print/sessions/") + "/report.pdf", timeout=120_000
    )
    pdf_pages(report.body(), "report-forum", 4)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory() as folder, served_palabre(Path(folder)) as server:
        server.create_facilitator()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            play = Play(browser, server.url)
            play.facilitator.goto(server.url + "/sessions/")
            cafe(play)
            forum(play)
            play.facilitator.goto(server.url + "/sessions/")
            shot(play.facilitator, "sessions-list")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
