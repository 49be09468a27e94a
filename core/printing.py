"""Printable outputs: HTML templates turned into A4 PDFs by WeasyPrint.

Rendering a PDF takes seconds of CPU, so it runs in a child process
(``python -m palabre.printing``): the server only renders the HTML and waits
cooperatively, and the live layer keeps broadcasting meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import Markup

from . import access
from .backlog import open_needs
from .extensions import db
from .i18n import LANGUAGES, current_language, direction
from .join import base_url
from .models import Action, ActionStatus, Session, utcnow
from .plugin_host import get_method, plugin_host

bp = Blueprint("printing", __name__, url_prefix="/print")

#: Relative addresses in printed documents resolve against the package.
PACKAGE = Path(__file__).resolve().parent
RENDER_TIMEOUT_S = 120
# A threading primitive, which gevent makes cooperative when it serves.
_RENDER_SLOT = threading.BoundedSemaphore(1)


class PrintError(RuntimeError):
    """WeasyPrint failed; the message holds its error output."""


def html_to_pdf(html: str) -> bytes:
    """Turn a complete HTML document into PDF bytes, in a child process.

    One document renders at a time, at a lower CPU priority: a render keeps
    a core busy for seconds, and the live layer must keep the other.
    """
    with _RENDER_SLOT:
        return _render_in_child(html)


def _render_in_child(html: str) -> bytes:
    result = subprocess.run(
        [sys.executable, "-m", "palabre.printing"],
        input=html.encode(),
        capture_output=True,
        timeout=RENDER_TIMEOUT_S,
    )
    if result.returncode != 0 or not result.stdout.startswith(b"%PDF"):
        raise PrintError(result.stderr.decode(errors="replace")[-2000:])
    return result.stdout


def extra_sections(document: str, session: Session | None) -> list[tuple[str, Markup]]:
    """Sections plugins add to a printout (the ``print_sections`` hook)."""
    sections = []
    for added in plugin_host().hook.print_sections(document=document, session=session):
        sections.extend(added or ())
    return sections


@bp.app_template_filter("css_string")
def css_string(text) -> str:
    """Quote ``text`` as a CSS string, escaping all but letters, digits and spaces."""
    escaped = "".join(ch if ch.isalnum() or ch == " " else f"\\{ord(ch):x} " for ch in str(text))
    return f'"{escaped}"'


@bp.app_template_filter("inline_url")
def inline_url(url: str) -> str:
    """An address to print inside a sentence, in any writing direction.

    Isolated left-to-right (U+2066..U+2069) so it keeps its order inside
    Arabic text, and joined (U+2060) after the scheme so it never breaks
    after ``http://``. (A ``white-space: nowrap`` span would do, but
    WeasyPrint then breaks the line before it in the wrong place.)
    """
    return "\u2066" + url.replace("://", ":/\u2060/\u2060", 1) + "\u2069"


@bp.app_template_filter("text_dir")
def text_dir(text) -> str:
    """``"rtl"`` or ``"ltr"``: the direction of someone's text, as ``dir="auto"`` finds it.

    WeasyPrint ignores ``dir="auto"``, so the printouts set each note's
    direction from its first strongly directional character; text without
    one follows the page.
    """
    for char in str(text):
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return direction(current_language())


def in_each_language(session: Session, template: str, **context) -> list[Markup]:
    """Render ``template`` once in each of the session's languages.

    Each rendering runs under :func:`flask_babel.force_locale`, so its
    ``_()`` strings, ``page_lang`` and ``page_dir`` are those of the
    language. Sessions without languages offer them all (as the join page does).
    """
    codes = [code for code in session.languages or () if code in LANGUAGES] or list(LANGUAGES)
    blocks = []
    for code in codes:
        with force_locale(code):
            blocks.append(Markup(render_template(template, session=session, **context)))
    return blocks


def render_document(template: str, document: str, session: Session | None = None, **context):
    """Render ``template`` as a PDF download response."""
    html = render_template(
        template,
        session=session,
        document=document,
        sections=extra_sections(document, session),
        printed_at=utcnow(),
        **context,
    )
    pdf = html_to_pdf(html)
    name = f"palabre-{document}-{session.code if session else 'backlog'}.pdf"
    response = current_app.response_class(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


# Staff; a session's prints for those who run it, the backlog's for facilitators.
access.protect(bp)


def _session(session_id: int) -> Session:
    return db.session.get(Session, session_id) or abort(404)


@bp.get("/sessions/<int:session_id>/report.pdf")
def report(session_id: int):
    """The session's report for the council, from its method's template."""
    session = _session(session_id)
    method = get_method(session.method)
    return render_document(
        method.template("report"),
        "report",
        session,
        method=method,
        **method.report_context(session),
    )


@bp.get("/sessions/<int:session_id>/poster.pdf")
def poster(session_id: int):
    """An A4 poster with the QR code, code and address, in the session's languages."""
    session = _session(session_id)
    home_url = base_url() + url_for("join.home")
    return render_document(
        "print/poster.html",
        "poster",
        session,
        method=get_method(session.method),
        home_url=home_url,
        instructions=in_each_language(session, "print/poster_instructions.html", home_url=home_url),
    )


@bp.get("/backlog.pdf")
@access.facilitator_required
def backlog():
    """The needs and actions plan, for council review."""

    actions = db.session.scalars(db.select(Action).order_by(Action.id)).all()
    return render_document(
        "print/backlog.html",
        "backlog",
        needs=open_needs(),
        actions=actions,
        statuses=list(ActionStatus),
        title=_("Needs and actions"),
    )


def _main() -> None:
    """Child process: HTML on standard input, PDF on standard output."""
    from weasyprint import HTML

    os.nice(10)  # let the server's live layer go first
    html = sys.stdin.buffer.read().decode()
    sys.stdout.buffer.write(HTML(string=html, base_url=str(PACKAGE)).write_pdf())


if __name__ == "__main__":
    _main()
