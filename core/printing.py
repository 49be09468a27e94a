"""Printable outputs: HTML templates turned into A4 PDFs by WeasyPrint.

Rendering a PDF takes seconds of CPU, so it runs in a lean worker process
(:mod:`palabre.render_pool`, :mod:`palabre.pdf_worker`) that imports
WeasyPrint and nothing of Palabre, and stays warm between documents; the
server waits for it cooperatively, and the live layer keeps broadcasting
meanwhile. A session's report and poster are small and come back at once;
the backlog's action plan and monitoring report are large, so they are
printed by a background job (:func:`print_in_background`, :mod:`palabre.print_jobs`)
with a page that shows its progress, and kept until the backlog changes.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import unicodedata
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from markupsafe import Markup

from . import access
from .extensions import db
from .i18n import LANGUAGES, current_language, direction
from .join import base_url, participant_count
from .models import Session, utcnow
from .plugin_host import get_method, plugin_host
from .print_jobs import PrintJob, print_jobs
from .render_pool import Rendered, RenderPool

bp = Blueprint("printing", __name__, url_prefix="/print")

#: Relative addresses in printed documents resolve against the package.
PACKAGE = Path(__file__).resolve().parent
#: Seconds a report or poster may take; a background job gets :data:`JOB_TIMEOUT_S`.
RENDER_TIMEOUT_S = 120
JOB_TIMEOUT_S = 600
_pool: RenderPool | None = None


def render_pool() -> RenderPool:
    """The process's pool of PDF workers, ``PRINT_WORKERS`` of them at most.

    One per process, not per app: workers know nothing of apps, and a
    process serves one app (tests make many, and share the warm workers).
    """
    global _pool
    if _pool is None:
        _pool = RenderPool(current_app.config.get("PRINT_WORKERS", 1))
        atexit.register(_pool.close)
    return _pool


def render_pdf(html: str, progress=None, timeout: float = RENDER_TIMEOUT_S) -> Rendered:
    """Turn a complete HTML document into a PDF in a warm worker, passing its progress on.

    One document renders at a time per worker, at a lower CPU priority: a
    render keeps a core busy for seconds, and the live layer must keep the other.
    """
    return render_pool().render(html, str(PACKAGE), progress, timeout)


def html_to_pdf(html: str) -> bytes:
    """Turn a complete HTML document into PDF bytes (see :func:`render_pdf`)."""
    return render_pdf(html).pdf


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


@bp.app_template_global("page_of_pages")
def page_of_pages() -> str:
    """The CSS ``content`` of the footer's "Page X of Y", in the page's language."""
    text = _("Page %(page)s of %(pages)s", page="\x00", pages="\x01")
    counters = {"\x00": "counter(page)", "\x01": "counter(pages)"}
    return " ".join(
        counters.get(part) or css_string(part) for part in re.split("([\x00\x01])", text) if part
    )


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


def document_html(template: str, document: str, session: Session | None = None, **context):
    """The complete HTML of a printed ``document`` from ``template``, with plugins' sections."""
    return render_template(
        template,
        session=session,
        document=document,
        sections=extra_sections(document, session),
        printed_at=utcnow(),
        **context,
    )


def pdf_response(pdf: bytes | Path, name: str):
    """A PDF (bytes or a file), shown in the browser under ``name``."""
    if isinstance(pdf, Path):
        pdf = pdf.read_bytes()  # a few megabytes at most; no file left open
    response = current_app.response_class(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


def render_document(template: str, document: str, session: Session | None = None, **context):
    """Render ``template`` as a PDF response, at once (for short documents)."""
    pdf = html_to_pdf(document_html(template, document, session, **context))
    name = f"palabre-{document}-{session.code if session else 'backlog'}.pdf"
    return pdf_response(pdf, name)


# Staff; a session's prints for those who run it, the backlog's jobs for who may use the backlog.
access.protect(bp)


def _session(session_id: int) -> Session:
    return db.session.get(Session, session_id) or abort(404)


@bp.get("/sessions/<int:session_id>/report.pdf")
def report(session_id: int):
    """The session's report for the council, from its method's template."""
    session = _session(session_id)
    method = get_method(session.method)
    if session.purged_at is not None:
        from .backlog import session_actions, session_needs
        from .retention import purged_contributions

        return render_document(
            "print/purged_report.html",
            "report",
            session,
            method=method,
            contribution_count=purged_contributions(session),
            participant_total=participant_count(session),
            needs=session_needs(session),
            actions=session_actions(session),
        )
    return render_document(
        method.template("report"),
        "report",
        session,
        method=method,
        **method.report_context(session),
    )


def poster_html(session: Session) -> str:
    """The join poster's HTML: the QR code, code and address, in the session's languages.

    A session in one language gets a poster wholly in that language (and
    declared so, for screen readers), whatever the facilitator's own.
    """
    home_url = base_url() + url_for("join.home")
    offered = [code for code in session.languages or () if code in LANGUAGES]
    with force_locale(offered[0]) if len(offered) == 1 else contextlib.nullcontext():
        return document_html(
            "print/poster.html",
            "poster",
            session,
            method=get_method(session.method),
            home_url=home_url,
            instructions=in_each_language(
                session, "print/poster_instructions.html", home_url=home_url
            ),
        )


@bp.get("/sessions/<int:session_id>/poster.pdf")
def poster(session_id: int):
    """An A4 poster with the QR code, code and address, in the session's languages."""
    session = _session(session_id)
    return pdf_response(html_to_pdf(poster_html(session)), f"palabre-poster-{session.code}.pdf")


# --- large documents, printed by a background job ------------------------------------------


def _job_builder(language: str, host_url: str, render_html):
    """What a print job calls, off the loop, to get a document's HTML and base URL.

    ``render_html()`` runs in a request context of its own, in the
    facilitator's language and at the address they used.
    """

    def build() -> tuple[str, str]:
        app = current_app._get_current_object()
        with app.test_request_context(base_url=host_url), force_locale(language):
            return render_html(), str(PACKAGE)

    return build


def _render_job(html: str, base_url: str, progress) -> Rendered:
    return render_pool().render(html, base_url, progress, JOB_TIMEOUT_S)


def print_in_background(template: str, document: str, key: str, context):
    """Print a backlog document as a background job, or hand out its kept PDF.

    ``context()`` returns the template's context; it runs with the HTML, off
    the loop, in the facilitator's language, and ``key`` names what it
    prints (the language is added here). The answer is the PDF if printed
    since the backlog last changed, otherwise a redirect to the progress
    page of a job (a new one, or the one under way for the same key).
    """
    language = current_language()
    key = f"{document}-{language}-{key}"
    jobs = print_jobs()
    if (path := jobs.cached(key)) is not None:
        return pdf_response(path, f"palabre-{key}.pdf")

    def render_html() -> str:
        return document_html(template, document, **context())

    build = _job_builder(language, request.host_url, render_html)
    app = current_app._get_current_object()
    job = jobs.start(app, document, key, build, _render_job, again=request.full_path)
    return redirect(url_for("printing.job", job_id=job.id), 303)


def _job(job_id: str) -> PrintJob:
    return print_jobs().jobs.get(job_id) or abort(404)


def job_state(job: PrintJob) -> dict:
    """A job as its progress page and script see it."""
    if job.failed:
        message = _("Printing failed. Nothing was lost: try again.")
    elif job.done:
        message = ngettext("Ready: %(num)d page.", "Ready: %(num)d pages.", job.pages or 0)
    elif job.step == "layout":
        message = _("Laying out page %(page)d…", page=job.page)
    elif job.step == "pdf":
        message = _("Writing the PDF…")
    else:
        message = _("Gathering the backlog…")
    return {
        "id": job.id,
        "step": job.step,
        "percent": job.percent,
        "page": job.page,
        "pages": job.pages,
        "expected_pages": job.expected_pages,
        "seconds": job.seconds,
        "done": job.done,
        "failed": job.failed,
        "message": message,
        "pdf_url": url_for("printing.job_pdf", job_id=job.id) if job.done else None,
    }


@bp.get("/jobs/<job_id>")
@access.backlog_required
def job(job_id: str):
    """A print job's progress: refreshed by the browser without JavaScript, live with it."""
    job = _job(job_id)
    return render_template("printing/job.html", job=job, state=job_state(job))


@bp.get("/jobs/<job_id>.json")
@access.backlog_required
def job_json(job_id: str):
    """A print job's state, for print_job.js."""
    return jsonify(job_state(_job(job_id)))


@bp.get("/jobs/<job_id>/document.pdf")
@access.backlog_required
def job_pdf(job_id: str):
    """A finished job's PDF; if a newer print replaced it, the document asked again."""
    job = _job(job_id)
    if not job.done:
        return redirect(url_for("printing.job", job_id=job.id), 303)
    if job.path is None or not job.path.exists():  # replaced since by a newer print
        return redirect(job.again, 303)
    return pdf_response(job.path, f"palabre-{job.key}.pdf")
