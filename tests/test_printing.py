"""Printed outputs: the café report and the join poster as PDFs (the plan: test_print_jobs.py).

The PDFs are rendered for real by WeasyPrint (in its child process) and read
back with pypdf, so these tests check what a council member would read.
"""

from __future__ import annotations

import io
import unicodedata
import uuid
from datetime import date, datetime

import pytest
from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import Markup
from pypdf import PdfReader

from palabre import HOST, create_app, hookimpl
from palabre.backlog import create_need
from palabre.extensions import db
from palabre.i18n import LANGUAGES
from palabre.models import (
    Action,
    ActionStatus,
    Contribution,
    Facilitator,
    Participant,
    Session,
    Stakeholder,
    Status,
    Theme,
    Vote,
    hash_token,
)
from palabre.plugins.world_cafe import WorldCafe
from palabre.printing import css_string

from .conftest import PASSWORD, AuthActions

SCRIPT_NOTE = "<script>alert(1)</script> & <b>bold</b>"
CODE = "K7M3QX"
FACILITATOR_EMAIL = "facilitator@example.org"
FACILITATOR_NAME = "Fatou"


def make_cafe(app) -> int:
    """A live world café with notes, a paper note, a hidden note, insights and dots."""
    with app.test_request_context():
        method = WorldCafe()
        config = method.default_config()
        config["tables"] = 2
        session = Session(
            method=method.slug,
            title="Café on the intercultural plan",
            code=CODE,
            languages=["en", "fr", "ar"],
            status=Status.LIVE,
            venue="Centro Cívico Delicias",
            config=config,
            created_by_id=db.session.scalar(db.select(Facilitator.id)),
            started_at=datetime(2025, 3, 14, 18, 0),
        )
        db.session.add(session)
        db.session.flush()
        people = [
            Participant(
                session_id=session.id,
                token_hash=hash_token(uuid.uuid4().hex),
                language=lang,
                group=str(1 + n % 2),
                role=HOST if n < 2 else None,
            )
            for n, lang in enumerate(["en", "fr", "ar", "en"])
        ]
        db.session.add_all(people)
        db.session.flush()

        def add(kind, body, phase_index, group, participant=None, **flags):
            contribution = Contribution(
                session_id=session.id,
                participant_id=participant.id if participant else None,
                client_id=uuid.uuid4().hex,
                kind=kind,
                phase_index=phase_index,
                group=group,
                body=body,
                **flags,
            )
            db.session.add(contribution)
            db.session.flush()
            return contribution

        # Phase 0 is the welcome; rounds are phases 1..3; the harvest is 4.
        add("note", "Finding a flat takes months", 1, "1", people[0])
        add("note", SCRIPT_NOTE, 1, "1", people[2])
        add("note", "The library helped with homework", 1, "2", people[1])
        add("note", "Evening language classes are full", 1, "2", transcribed=True, language="ar")
        add("note", "Insulting note nobody should print", 1, "2", people[3], hidden=True)
        add("summary", "Housing and language come first", 1, "1", people[0])
        add("note", "Doctors speak only Spanish", 2, "1", people[2])
        housing = add("insight", "More social housing for newcomers", 4, "1", people[0])
        classes = add("insight", "Free evening language classes", 4, "2", people[1])
        for n, person in enumerate(people):
            db.session.add(
                Vote(
                    session_id=session.id,
                    participant_id=person.id,
                    contribution_id=(housing if n < 3 else classes).id,
                    client_id=uuid.uuid4().hex,
                )
            )
        session.phase_index = 4
        db.session.commit()
        need = create_need(
            "Affordable housing for newcomers",
            description="Key insight of Table 1.",
            theme=Theme.HOUSING,
            dots=3,
            session=session,
            contribution_ids=[housing.id],
        )
        action = Action(
            title="Rental guarantee fund",
            objective="Help 50 families rent a first flat",
            indicator="Families housed within a year",
            owner=Stakeholder(name="Housing department"),
            budget_amount=120000,
            budget_currency="EUR",
            start_date=date(2025, 9, 1),
            end_date=date(2026, 6, 30),
            status=ActionStatus.PLANNED,
        )
        action.needs = [need]
        db.session.add(action)
        db.session.commit()
        return session.id


def pdf_text(response) -> str:
    """The text of a PDF response, after checking it is one."""
    assert response.status_code == 200, response.text[:500]
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(response.data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    # Arabic glyphs come back as presentation forms; fold them to letters.
    return unicodedata.normalize("NFKC", text)


def flat(text: str) -> str:
    """Text with line breaks and repeated spaces folded, for phrases that wrap."""
    return " ".join(text.split())


def page_count(response) -> int:
    return len(PdfReader(io.BytesIO(response.data)).pages)


def assert_no_personal_data(text: str) -> None:
    assert FACILITATOR_EMAIL not in text
    assert FACILITATOR_NAME not in text


@pytest.mark.pdf
def test_report_pdf(app, client, auth):
    session_id = make_cafe(app)
    auth.login()
    response = client.get(f"/print/sessions/{session_id}/report.pdf")
    text = pdf_text(response)
    words = flat(text)

    assert "Café on the intercultural plan" in text
    assert "Centro Cívico Delicias" in text
    assert CODE in text
    assert "Français" in text
    # A note written in Arabic is tagged so in the English report, as is the session's
    # languages line's "العربية": a screen reader switches voice for each.
    tagged = tagged_languages(PdfReader(io.BytesIO(response.data)))
    assert tagged.count("ar") >= 2, tagged
    assert "What has helped you most since you arrived in the city?" in words
    for note in (
        "Finding a flat takes months",
        "The library helped with homework",
        "Doctors speak only Spanish",
        "Housing and language come first",
    ):
        assert note in words
    # Paper notes are marked, with their language when it is not the report's; hidden notes
    # are left out.
    assert "Evening language classes are full (paper) (العربية)" in words.replace(
        "( العربية )", "(العربية)"
    )
    assert "Insulting note" not in text
    # HTML in a note prints as text, never as markup.
    assert SCRIPT_NOTE in words
    # Ranked insights with their dots, the needs, the figures.
    assert words.index("More social housing for newcomers") < words.index(
        "Free evening language classes"
    )
    assert "Affordable housing for newcomers" in words
    assert "participants" in text and "dots given" in text
    pages = page_count(response)
    assert pages >= 2
    for number in range(1, pages + 1):
        assert f"Page {number} of {pages}" in text
    assert_no_personal_data(text)


@pytest.mark.pdf
def test_poster_pdf(app, client, auth):
    session_id = make_cafe(app)
    auth.login()
    response = client.get(f"/print/sessions/{session_id}/poster.pdf")
    text = pdf_text(response)
    words = flat(text)

    assert page_count(response) == 1
    assert CODE in text
    assert f"http://palabre.test/j/{CODE}" in text
    assert "Café on the intercultural plan" in text
    assert "Centro Cívico Delicias" in text
    with app.test_request_context():
        for lang in ("en", "fr"):
            with force_locale(lang):
                expected = _(
                    "Scan with your phone camera, or open %(url)s and type the code.",
                    url="http://palabre.test/",
                )
                assert expected in words, lang
                assert _("No account, no name needed.") in words, lang
    # Each language is named in itself, Arabic included.
    assert "Français" in text
    assert "العربية" in text.replace(" ", "")
    assert_no_personal_data(text)


def embedded_fonts(pdf: bytes) -> set[str]:
    """The names of the fonts a PDF's pages use, without their subset prefix ("ABCDEF+")."""
    names = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]).split("+", 1)[-1])
    return names


@pytest.mark.pdf
def test_a_poster_in_all_fifteen_languages_fits_a_sheet_in_real_glyphs(app, client, auth):
    """Greek, Cyrillic, Arabic, Farsi and Tigrinya print in fonts that have their letters
    (no empty boxes), and every language's block fits on the one A4 sheet."""
    session_id = make_cafe(app)
    with app.app_context():
        db.session.get(Session, session_id).languages = list(LANGUAGES)
        db.session.commit()
    auth.login()
    response = client.get(f"/print/sessions/{session_id}/poster.pdf")
    text = pdf_text(response).replace(" ", "")
    assert page_count(response) == 1
    for code, (name, _direction) in LANGUAGES.items():
        assert name.replace(" ", "") in text, code
    fonts = embedded_fonts(response.data)
    assert {"Noto-Sans-Arabic", "Noto-Sans-Ethiopic-Bold"} <= fonts, fonts
    assert all(font.startswith(("Noto-Sans", "DejaVu-Sans")) for font in fonts), fonts
    # Tagged: the document in the facilitator's language, each block in its own.
    reader = PdfReader(io.BytesIO(response.data))
    assert reader.trailer["/Root"]["/Lang"] == "en"
    assert set(LANGUAGES) - {"en"} <= set(tagged_languages(reader)), tagged_languages(reader)


def tagged_languages(reader) -> list[str]:
    """The ``/Lang`` of every element of a PDF's structure tree, in reading order."""
    found = []

    def walk(node):
        node = node.get_object()
        if isinstance(node, dict):
            if "/Lang" in node and node.get("/Type") == "/StructElem":
                found.append(str(node["/Lang"]))
            kids = node.get("/K", [])
            for kid in kids if isinstance(kids, list) else [kids]:
                if hasattr(kid, "get_object") or isinstance(kid, dict):
                    walk(kid)

    walk(reader.trailer["/Root"]["/StructTreeRoot"])
    return found


def test_report_appendix_marks_each_text_with_the_language_it_was_written_in(app):
    """Method.raw_answers gives each contribution's language where known, and the
    appendix marks it (lang), so the PDF tags it for screen readers."""
    from palabre.plugin_host import get_method
    from palabre.printing import document_html

    session_id = make_cafe(app)
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        method = get_method(session.method)
        groups = method.raw_answers(session)
        html = document_html(
            method.template("report"),
            "report",
            session,
            method=method,
            **method.report_context(session),
        )
    written = {str(text): text.lang for _heading, texts in groups for text in texts}
    assert written["Evening language classes are full"] == "ar"
    assert written["Finding a flat takes months"] == ""  # not known: not guessed
    appendix = html.split('class="appendix raw-answers')[1]
    assert (
        '<li dir="ltr" lang="ar"><span class="user-text">Evening language classes are full'
        in appendix
    )
    assert '<li dir="ltr"><span class="user-text">Finding a flat takes months' in appendix


def test_printing_needs_a_facilitator(app, client):
    session_id = make_cafe(app)
    for url in (
        f"/print/sessions/{session_id}/report.pdf",
        f"/print/sessions/{session_id}/poster.pdf",
        "/backlog/action-plan.pdf",
        "/backlog/monitoring.pdf",
        "/print/jobs/anything",
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert "/auth/login" in response.headers["Location"]


def test_unknown_session_is_404(app, client, auth):
    auth.login()
    assert client.get("/print/sessions/999/report.pdf").status_code == 404


def test_css_string_escapes_quotes():
    assert css_string("page") == '"page"'
    assert css_string('a"b\\c') == '"a\\22 b\\5c c"'
    assert css_string("página") == '"página"'


class ExtraSection:
    """A throwaway plugin adding a section to every printout."""

    @hookimpl
    def print_sections(self, document, session):
        if document == "report":
            return [("Extra", Markup("<p>Extra section text</p>"))]
        return None


@pytest.mark.pdf
def test_print_sections_hook_adds_a_section(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'palabre.db'}",
            "BASE_URL": "http://palabre.test",
            "SERVER_NAME": "palabre.test",
        },
        plugins=[ExtraSection()],
    )
    app.instance_path = str(tmp_path)
    try:
        with app.app_context():
            db.create_all()
            facilitator = Facilitator(email=FACILITATOR_EMAIL, name=FACILITATOR_NAME)
            facilitator.set_password(PASSWORD)
            db.session.add(facilitator)
            db.session.commit()
        session_id = make_cafe(app)
        client = app.test_client()
        AuthActions(client).login()
        text = pdf_text(client.get(f"/print/sessions/{session_id}/report.pdf"))
        assert "Extra section text" in text
        assert "Finding a flat takes months" in text
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def structure(pdf: PdfReader) -> list[str]:
    """The structure types of a tagged PDF's tree, depth first (``/H1``, ``/P``, ``/Table``...)."""
    found = []

    def walk(node) -> None:
        node = node.get_object()
        if not isinstance(node, dict):
            return
        if "/S" in node:
            found.append(node["/S"])
        kids = node.get("/K")
        for kid in kids if isinstance(kids, list) else [kids] if kids is not None else []:
            walk(kid)

    walk(pdf.trailer["/Root"]["/StructTreeRoot"])
    return found


@pytest.mark.pdf
def test_printouts_are_tagged_in_their_language(app, client, auth):
    """PDF/UA: a structure tree a screen reader follows, and the document's language."""
    session_id = make_cafe(app)
    auth.login()
    report = PdfReader(io.BytesIO(client.get(f"/print/sessions/{session_id}/report.pdf").data))
    root = report.trailer["/Root"]
    assert root["/MarkInfo"]["/Marked"] == True  # noqa: E712  (a PDF boolean object)
    assert root["/Lang"] == "en"
    tags = structure(report)
    assert "/H1" in tags and "/Table" in tags and "/P" in tags
    # A session in Arabic only: its poster is Arabic, and says so.
    with app.app_context():
        db.session.get(Session, session_id).languages = ["ar"]
        db.session.commit()
    poster = PdfReader(io.BytesIO(client.get(f"/print/sessions/{session_id}/poster.pdf").data))
    assert poster.trailer["/Root"]["/Lang"] == "ar"
    assert "/H1" in structure(poster)
    assert "شارك من هاتفك" in poster.pages[0].extract_text()


@pytest.mark.pdf
def test_paper_cards_carry_the_questions_languages_and_join_code(app, client, auth):
    """For those without a phone: two cards to a page, in the session's languages."""
    session_id = make_cafe(app)
    auth.login()
    response = client.get(f"/sessions/{session_id}/paper-cards.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response)
    words = flat(text)
    assert page_count(response) == 1
    assert words.count("What has helped you most since you arrived in the city?") == 2
    assert words.count(CODE) >= 2
    assert "Français" in text and "العربية" in text.replace(" ", "")
    instructions = (
        "Write one idea per card, in your own language. "
        "Give it to a facilitator: it counts like a note sent from a phone."
    )
    how_to = "Tick your language below, or scan the code to join from a phone."
    with app.test_request_context(), force_locale("fr"):
        assert flat(_(instructions)) in words
        assert flat(_(how_to)) in words
    # Every instruction is in each of the card's languages, none in the staff's alone.
    assert words.count(how_to) == 2
    assert "Or join from a phone" not in words and "Language of this card" not in words
    assert_no_personal_data(text)


@pytest.mark.pdf
def test_paper_cards_of_many_languages_come_a_sheet_per_language(app, client, auth):
    """Fifteen languages' questions would not fit half a page: each language gets its
    sheet of two cards, wholly in it (questions, instructions, its box ticked); one
    language can be asked for alone."""
    session_id = make_cafe(app)
    with app.app_context():
        db.session.get(Session, session_id).languages = list(LANGUAGES)
        db.session.commit()
    auth.login()
    response = client.get(f"/sessions/{session_id}/paper-cards.pdf")
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages) == len(LANGUAGES)
    how_to = "Tick your language below, or scan the code to join from a phone."
    question = "What has helped you most since you arrived in the city?"
    for page, code in zip(reader.pages, LANGUAGES, strict=True):
        words = flat(page.extract_text())
        with app.test_request_context(), force_locale(code):
            if code not in ("ar", "fa"):  # pypdf reads right-to-left lines out of order
                assert words.count(flat(_(how_to))) == 2, code
                assert words.count(flat(_(question))) == 2, code
        assert words.count(f"/j/{CODE}") == 2
        assert "☒" in words and "☐" not in words
    # Tigrinya alone: one sheet, in Tigrinya only.
    response = client.get(f"/sessions/{session_id}/paper-cards.pdf?language=ti")
    words = flat(pdf_text(response))
    assert page_count(response) == 1
    with app.test_request_context(), force_locale("ti"):
        assert words.count(flat(_(how_to))) == 2
    assert how_to not in words and "ቋንቋ" in words


@pytest.mark.pdf
def test_chart_words_print_shaped_and_in_reading_order_in_every_script(app, tmp_path):
    """Every chart of the PDFs writes its words as HTML text: pdftotext reads an Arabic
    label in its logical order (WeasyPrint drew SVG <text> unshaped and reversed)."""
    import subprocess

    from flask import render_template_string
    from weasyprint import HTML

    from palabre.printing import PACKAGE

    labels = ["مترجمون في المركز الصحي", "دروس مسائية", "Cours du soir"]
    document = """<html lang="ar" dir="rtl"><head><style>{% include "print/print.css" %}
      {% include "print/_policy_cycle.css" %}</style></head><body>
      {% from "components/charts.html" import bar_chart, histogram %}
      {% from "citizen_dialogue/_chart.html" import paired_bar_chart %}
      {% from "backlog/_charts.html" import lines %}
      {{ bar_chart("bars", "النقاط", rows) }}
      {{ histogram("rating", "التقييم", [(1, 0), (2, 1), (3, 4), (4, 2), (5, 1)]) }}
      {{ paired_bar_chart("المقارنة", pairs, "من استمعنا إليهم", "السكان") }}
      {{ lines("history", "التقدم", "", dates, [("العامل 1", [0, 50, 100])]) }}
      </body></html>"""
    with app.test_request_context(), force_locale("ar"):
        html = render_template_string(
            document,
            rows=[(label, n) for n, label in enumerate(labels, start=3)],
            pairs=[(labels[1], 40, 25), (labels[0], 10, None)],
            dates=[date(2026, 3, 1), date(2026, 9, 1), date(2027, 3, 1)],
        )
    # No SVG text but the line chart's axis (digits and %).
    assert "<text" not in html.split('aria-labelledby="history-title')[0]
    pdf = tmp_path / "charts.pdf"
    pdf.write_bytes(HTML(string=html, base_url=str(PACKAGE)).write_pdf())
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for label in labels:
        assert text.count(label) >= 2, label  # in the picture and in its table
