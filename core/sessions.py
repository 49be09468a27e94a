"""Facilitators' pages: creating sessions and running them live.

Each control is a plain form post (CSRF-protected) so it works without
JavaScript; the live facilitator screen sends the same actions over
Socket.IO (see :mod:`palabre.live`), and both call the same functions.
"""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.file import FileField
from markupsafe import Markup
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields import DateTimeLocalField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from . import (
    access,
    actions,
    authored,
    contributions,
    editing,
    phases,
    retention,
    role_links,
    security,
    settings,
    transfer,
)
from .auth import close_session_sockets
from .charts import participation
from .database import write_transaction
from .errors import Refused
from .extensions import db
from .forms import ButtonForm, CleanForm, MultiCheckboxField, options
from .i18n import LANGUAGES, current_language
from .inputs import parse_int, same_site_path
from .join import new_join_code, participant_count
from .models import Participant, Session, Status, utcnow
from .plugin_host import get_method, plugin_host
from .printing import in_each_language, render_document

bp = Blueprint("sessions", __name__, url_prefix="/sessions")

STATUS_LABELS = {
    Status.DRAFT: _l("Draft"),
    Status.OPEN: _l("Open"),
    Status.LIVE: _l("Live"),
    Status.CLOSED: _l("Closed"),
    Status.ARCHIVED: _l("Archived"),
}


# Templates compare times with the database's (naive UTC): the timer says when time is up.
bp.add_app_template_global(utcnow, "now_utc")
# Who took part, for the participation charts of the run screen and the reports.
bp.add_app_template_global(participation)


@bp.app_template_global()
def session_status_label(status: str) -> str:
    """A session's status in the reader's language."""
    return str(STATUS_LABELS.get(status, status))


# Every page here is for staff; a session's pages for those who run it.
access.protect(bp)


class SessionDetailsForm(CleanForm):
    """A session's facts, set when it is created and changed at any time."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    starts_at = DateTimeLocalField(
        _l("Date and time"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description=_l("Shown in your list of sessions, on the poster and in the report."),
    )
    venue = StringField(_l("Venue"), validators=[Length(max=200)])
    wifi_name = StringField(
        _l("Venue Wi-Fi name (optional)"),
        validators=[Length(max=100)],
        description=_l("Shown on the projector and the join poster, so phones can get online."),
    )
    wifi_password = StringField(_l("Venue Wi-Fi password (optional)"), validators=[Length(max=100)])

    def details(self) -> dict:
        """The facts as the session stores them."""
        return {
            "title": self.title.data.strip(),
            "starts_at": self.starts_at.data,
            "venue": (self.venue.data or "").strip(),
            "wifi_name": (self.wifi_name.data or "").strip(),
            "wifi_password": (self.wifi_password.data or "").strip(),
        }


class SessionForm(SessionDetailsForm):
    languages = MultiCheckboxField(
        _l("Languages offered to participants"),
        choices=options((code, name) for code, (name, _dir) in LANGUAGES.items()),
        validators=[DataRequired(_l("Choose at least one language."))],
    )
    submit = SubmitField(_l("Create the session"))


class TranscribeForm(CleanForm):
    cid = HiddenField(default=lambda: uuid.uuid4().hex)
    kind = SelectField(_l("Kind"))
    group = SelectField(_l("Table"), validate_choice=False)
    phase_index = SelectField(_l("Part of the session"), coerce=int, validate_choice=False)
    # The card's language; the form keeps the last one chosen, as cards come in piles.
    language = SelectField(_l("Language of the card"), validate_choice=False)
    body = TextAreaField(_l("Text of the paper note"), validators=[DataRequired()])
    submit = SubmitField(_l("Add the note"))


def add_session(method: str, *, title: str, languages, config: dict, **details) -> Session:
    """Add a draft session of ``method``; inside a write transaction, returns it flushed.

    It gets a new join code and its groups' personal links. ``details`` are
    other :class:`palabre.models.Session` columns: ``created_by_id``,
    ``starts_at``, ``venue``, the Wi-Fi, and ``parent_id`` for a session
    that is part of another (a dialogue's meeting, from the dialogue's
    ``Method.run_action``).
    """
    session = Session(
        method=method,
        title=title,
        languages=list(languages),
        config=config,
        code=new_join_code(),
        **details,
    )
    db.session.add(session)
    db.session.flush()
    role_links.issue_group_links(session)
    return session


def get_session(session_id: int) -> Session:
    return db.session.get(Session, session_id) or abort(404)


@bp.get("/")
def index():
    """The facilitator's home: their sessions and the methods to start one."""
    show_archived = request.args.get("archived") == "1"
    # Newest first: by the date it takes place, else by when it was created.
    query = access.sessions_run_by(current_user).order_by(
        func.coalesce(Session.starts_at, Session.created_at).desc(), Session.id.desc()
    )
    if not show_archived:
        query = query.where(Session.status != Status.ARCHIVED)
    sessions = db.session.scalars(query).all()
    archived = db.session.scalar(
        select(func.count()).select_from(Session).where(Session.status == Status.ARCHIVED)
    )
    counts = dict(
        db.session.execute(
            select(Participant.session_id, func.count()).group_by(Participant.session_id)
        ).all()
    )
    return render_template(
        "sessions/index.html",
        sessions=sessions,
        counts=counts,
        methods=plugin_host().methods,
        show_archived=show_archived,
        archived=archived,
    )


@bp.route("/new/<slug>", methods=["GET", "POST"])
@access.facilitator_required
def create(slug: str):
    """Create a session of a method, starting from the method's defaults."""
    method = plugin_host().methods.get(slug) or abort(404)
    if method.part_of:
        abort(404)  # made from its parent session's screen
    form = SessionForm(languages=[current_language()] if request.method == "GET" else None)
    # The configuration's texts are offered in the languages ticked (or the page's).
    authored.offer_languages(form.languages.data or [current_language()])
    config_form = method.config_form(prefix="config") if method.config_form else None
    # A button that adds, removes or moves an entry of a list (a play's scenes): the
    # page again, as it was typed, with the change made; nothing is created.
    rearranging = callable(getattr(config_form, "rearrange", None))
    if request.method == "POST" and rearranging and config_form.rearrange():
        return render_template(
            "sessions/create.html", form=form, config_form=config_form, method=method
        )
    config_ok = config_form is None or config_form.validate_on_submit()
    if form.validate_on_submit() and config_ok:
        with write_transaction():
            session = add_session(
                method.slug,
                **form.details(),
                languages=form.languages.data,
                config=method.config_from_form(config_form) if config_form else {},
                created_by_id=current_user.id,
            )
        access.audit_about(session)
        flash(_("Session created. Open it when you are ready for people to join."), "success")
        return redirect(url_for("sessions.run", session_id=session.id))
    return render_template(
        "sessions/create.html", form=form, config_form=config_form, method=method
    )


@bp.get("/<int:session_id>")
def run(session_id: int):
    """The facilitator's one screen for running a session live."""
    session = get_session(session_id)
    if session.purged_at is not None:
        return purged_summary(session)
    method = get_method(session.method)
    seq = session.seq
    transcribe_form = TranscribeForm()
    transcribe_form.kind.choices = options(
        (k.name, k.title) for k in method.contribution_kinds.values()
    )
    transcribe_form.group.choices = options([("", _("No table")), *method.groups(session.config)])
    reached = phases.plan(session)[: session.phase_index + 1]
    transcribe_form.phase_index.choices = options(enumerate(p.title for p in reached))
    transcribe_form.phase_index.data = session.phase_index
    offered = [code for code in session.languages or () if code in LANGUAGES] or list(LANGUAGES)
    transcribe_form.language.choices = options((code, LANGUAGES[code][0]) for code in offered)
    last = cookie.get("transcribe_language")
    transcribe_form.language.data = last if last in offered else offered[0]
    return render_template(
        method.template("facilitator"),
        session=session,
        method=method,
        phase=phases.current_phase(session),
        plan=phases.plan(session),
        seq=seq,
        action_form=ButtonForm(),
        transcribe_form=transcribe_form,
        participant_count=participant_count(session),
        **method.view_context(session, "facilitator"),
    )


class EditDetailsForm(SessionDetailsForm):
    languages = SessionForm.languages
    retention_months = IntegerField(
        _l("Keep what participants wrote for (months after it closes, optional)"),
        validators=[Optional(), NumberRange(min=0, max=600)],
        description=_l("Empty: as the instance's settings say. 0: keep it for good."),
    )
    submit = SubmitField(_l("Save"))

    def details(self) -> dict:
        return {**super().details(), "retention_months": self.retention_months.data}


@bp.route("/<int:session_id>/edit", methods=["GET", "POST"])
def edit_details(session_id: int):
    """Change a session after it was made: its facts, languages and configuration.

    What may change depends on its state (see :mod:`palabre.editing`); the
    method's configuration form is shown filled with what is stored
    (``Method.form_data``) and saved through ``Method.edited_config``.
    """
    session = get_session(session_id)
    method = get_method(session.method)
    posted = request.method == "POST"
    form = EditDetailsForm(obj=session)
    authored.offer_languages(form.languages.data if posted else session.languages)
    config_form = None
    if method.config_form:
        # Filled with what is stored (a post's fields take precedence).
        config_form = method.config_form(prefix="config", data=method.form_data(session))
    page = {
        "form": form,
        "config_form": config_form,
        "session": session,
        "method": method,
        "editable": _editable(session),
    }
    rearranging = callable(getattr(config_form, "rearrange", None))
    if posted and rearranging and config_form.rearrange():
        return render_template("sessions/edit.html", **page)
    # A post without the configuration's fields (a script changing the venue) leaves it be.
    config_posted = config_form is not None and any(
        key.startswith(f"{config_form._prefix}") for key in request.form
    )
    config_ok = not config_posted or config_form.validate_on_submit()
    if form.validate_on_submit() and config_ok:
        try:
            editing.edit_session(
                session,
                form.details(),
                form.languages.data,
                config_form if config_posted else None,
            )
        except Refused as refusal:
            flash(refusal.message, "error")
            return render_template("sessions/edit.html", **page), 400
        if session.status in (Status.OPEN, Status.LIVE):
            flash(_("Saved. Phones and the projector show the change now."), "success")
        else:
            flash(_("Saved."), "success")
        return _back(session)
    return render_template("sessions/edit.html", **page)


def _editable(session: Session) -> str:
    """What the edit page says may change, in the session's state."""
    if session.status == Status.DRAFT:
        return _("The session has not started: everything can change.")
    if session.status == Status.CLOSED:
        return _(
            "The session is closed: fix its texts, languages and facts; to add parts, "
            "reopen it first."
        )
    if session.status == Status.ARCHIVED:
        return _("The session is archived: it cannot be changed.")
    return _(
        "The session is running: phones and the projector show each change at once. Fix "
        "texts, add languages, tables, rounds or scenes still to come, change lengths (from "
        "the next timer on). The parts already reached, tables with people or notes and the "
        "languages people joined in stay; nothing anyone wrote is lost."
    )


@bp.get("/<int:session_id>/host-cards.pdf")
def host_cards(session_id: int):
    """One printable card per table with its host link's QR code and the table's questions."""
    session = get_session(session_id)
    method = get_method(session.method)
    tables = method.groups(session.config)
    if not tables:
        abort(404)
    questions = [
        phase.question for phase in phases.plan(session) if phase.question and phase.number
    ]
    return render_document(
        "print/host_cards.html", "host_cards", session, tables=tables, questions=questions
    )


#: Up to this many languages, a paper card carries them all; beyond, each language gets
#: a sheet of its own (fifteen languages' questions would not fit half a page).
LANGUAGES_ON_ONE_PAPER_CARD = 3


@bp.get("/<int:session_id>/paper-cards.pdf")
def paper_cards(session_id: int):
    """Cards to write on, for those without a phone: the session's questions, a box for
    the card's language, lines, and the join QR code. Two to an A4 page, to cut in half;
    staff type them in afterwards (``transcribe``), and they count like any note.

    ``?language=xx`` (one of the session's): a sheet of cards wholly in that language.
    """
    session = get_session(session_id)
    questions = list(dict.fromkeys(p.question for p in phases.plan(session) if p.question))
    return render_document(
        "print/paper_cards.html",
        "paper_cards",
        session,
        sheets=paper_card_sheets(session, questions, request.args.get("language")),
    )


def paper_card_sheets(session: Session, questions: list, language: str | None) -> list[Markup]:
    """One rendered card per sheet: in every session language on one sheet when they are
    few (:data:`LANGUAGES_ON_ONE_PAPER_CARD`), else (or for ``language``) one sheet per
    language, rendered in it."""
    codes = authored.session_languages(session)
    if language in codes:
        codes = [language]
    elif 1 < len(codes) <= LANGUAGES_ON_ONE_PAPER_CARD:
        return [
            Markup(
                render_template(
                    "print/paper_card.html",
                    session=session,
                    questions=questions,
                    card_languages=codes,
                    instructions=in_each_language(session, "print/paper_card_instructions.html"),
                )
            )
        ]
    sheets = []
    for code in codes:
        with force_locale(code):
            instructions = render_template("print/paper_card_instructions.html", session=session)
            sheets.append(
                Markup(
                    render_template(
                        "print/paper_card.html",
                        session=session,
                        questions=questions,
                        card_languages=[code],
                        instructions=[Markup(instructions)],
                    )
                )
            )
    return sheets


@bp.get("/<int:session_id>/projector")
def projector(session_id: int):
    """The big screen: QR code, code, phase, question, timer, live contributions.

    The one page that the sites listed in the instance settings may show in a
    frame (a slide or streaming tool), for whoever runs the session.
    """
    session = get_session(session_id)
    if session.purged_at is not None:
        return _back(session)
    security.allow_framing_by(settings.projector_frame_ancestors())
    method = get_method(session.method)
    return render_template(
        method.template("projector"),
        session=session,
        method=method,
        phase=phases.current_phase(session),
        seq=session.seq,
        participant_count=participant_count(session),
        join_instructions=in_each_language(session, "components/join_instructions.html"),
        **method.view_context(session, "projector"),
    )


def _back(session: Session):
    return redirect(url_for("sessions.run", session_id=session.id))


def _back_to_the_page(session: Session):
    """Back to the page the form was on (its ``Referer``) if it is ours, else the run screen."""
    fallback = url_for("sessions.run", session_id=session.id)
    return redirect(same_site_path(request.referrer, fallback, request.host))


def _checked_action(session_id: int) -> Session:
    if not ButtonForm().validate_on_submit():
        abort(400)
    return get_session(session_id)


@bp.post("/<int:session_id>/open")
def open_session(session_id: int):
    """Let people join: the session moves from draft to open (its welcome phase)."""
    session = _checked_action(session_id)
    if session.status == Status.DRAFT:
        phases.go_to(session, 0)
    return _back(session)


@bp.post("/<int:session_id>/phase")
def go_to_phase(session_id: int):
    session = _checked_action(session_id)
    try:
        # -1, for anything but an integer, is no phase: refused.
        phases.go_to(session, parse_int(request.form.get("index"), default=-1))
    except Refused as refusal:
        flash(refusal.message, "error")
    return _back(session)


@bp.post("/<int:session_id>/timer")
def extend_timer(session_id: int):
    session = _checked_action(session_id)
    try:
        # 0, for anything but an integer, is out of range: refused.
        phases.extend_timer(session, parse_int(request.form.get("minutes", 1), default=0))
    except Refused as refusal:
        flash(refusal.message, "error")
    return _back(session)


@bp.post("/<int:session_id>/contributions/<int:contribution_id>/hide")
def hide(session_id: int, contribution_id: int):
    """Hide an abusive contribution everywhere (``hidden=0`` restores it)."""
    session = _checked_action(session_id)
    hidden = request.form.get("hidden", "1") == "1"
    access.audit_this(hidden=hidden)  # the log says whether it was hidden or shown again
    try:
        contributions.set_hidden(session, contribution_id, hidden)
    except Refused as refusal:
        flash(refusal.message, "error")
    return _back_to_the_page(session)


@bp.post("/<int:session_id>/transcribe")
def transcribe(session_id: int):
    """Type in a note written on paper at a table."""
    session = get_session(session_id)
    form = TranscribeForm()
    form.kind.choices = options((k, k) for k in get_method(session.method).contribution_kinds)
    if form.validate_on_submit():
        try:
            contributions.transcribe(
                session,
                client_id=form.cid.data,
                kind_name=form.kind.data,
                body=form.body.data,
                group=form.group.data,
                phase_index=form.phase_index.data,
                language=form.language.data,
            )
            cookie["transcribe_language"] = form.language.data
            flash(_("Paper note added."), "success")
        except Refused as refusal:
            flash(refusal.message, "error")
    else:
        flash(_("Write the note's text before adding it."), "error")
    return _back(session)


@bp.post("/<int:session_id>/actions/<name>")
def method_action(session_id: int, name: str):
    """Do one of the method's facilitator actions (``Method.run_action``) from a form."""
    session = _checked_action(session_id)
    # A field sent more than once (checkboxes) arrives as a list.
    data = {key: vals if len(vals) > 1 else vals[0] for key, vals in request.form.lists()}
    try:
        actions.run(session, name, data)
    except Refused as refusal:
        flash(refusal.message, "error")
    return _back_to_the_page(session)


@bp.route("/<int:session_id>/close", methods=["GET", "POST"])
def close(session_id: int):
    """Close a session after a confirmation page; it can be reopened until archived."""
    session = get_session(session_id)
    if request.method == "POST":
        session = _checked_action(session_id)
        try:
            phases.go_to(session, len(phases.plan(session)) - 1)
            flash(_("The session is closed. You can reopen it until you archive it."), "success")
        except Refused as refusal:
            flash(refusal.message, "error")
        return _back(session)
    if session.status not in (Status.OPEN, Status.LIVE):
        return _back(session)
    return render_template(
        "sessions/close.html",
        session=session,
        action_form=ButtonForm(),
        participant_count=participant_count(session),
    )


@bp.post("/<int:session_id>/reopen")
def reopen(session_id: int):
    """Bring a closed session back to the step before closing."""
    session = _checked_action(session_id)
    try:
        phases.reopen(session)
        flash(_("The session is open again: phones can contribute."), "success")
    except Refused as refusal:
        flash(refusal.message, "error")
    return _back(session)


@bp.post("/<int:session_id>/archive")
def archive(session_id: int):
    """Hide a closed session from the list; nothing is deleted."""
    session = _checked_action(session_id)
    with write_transaction():
        if session.status == Status.CLOSED:
            session.status = Status.ARCHIVED
        else:
            flash(_("Close the session before archiving it."), "error")
    if session.status == Status.ARCHIVED:
        close_session_sockets(session.id)  # other worker processes: at their next sweep
    return redirect(url_for("sessions.index"))


# --- a purged session, export and import ------------------------------------------------


def purged_summary(session: Session):
    """What a session whose contributions were purged still shows: its counts and backlog."""
    from .backlog import session_actions, session_needs

    return render_template(
        "sessions/purged.html",
        session=session,
        method=get_method(session.method),
        contribution_count=retention.purged_contributions(session),
        participant_count=participant_count(session),
        needs=session_needs(session),
        actions=session_actions(session),
        action_form=ButtonForm(),
    )


@bp.get("/<int:session_id>/export.json")
def export(session_id: int):
    """Download the session, with its backlog provenance, as one JSON file (see docs/)."""
    # Who runs it and may use the backlog: the file carries the backlog's part too. The
    # download is written to the audit log as every download is (access.audit_request).
    session = access.check(access.BACKLOG, session_id)
    try:
        data = transfer.export_json(session)
    except transfer.ExportRefused as refusal:
        flash(refusal.message, "error")
        return redirect(url_for("sessions.run", session_id=session.id))
    name = f"palabre-session-{session.id}-{utcnow():%Y%m%d}.json"
    return Response(
        data,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class ImportForm(CleanForm):
    file = FileField(_l("Session file (.json, made by “Export”)"))
    as_copy = BooleanField(
        _l("Import it even if this file was imported here before (a second copy)")
    )
    submit = SubmitField(_l("Import the session"))


@bp.url_value_preprocessor
def _allow_big_import(endpoint, values):
    """Let the import form's upload be as big as an export file may be (before CSRF reads it)."""
    if endpoint == "sessions.import_session":
        request.max_content_length = _import_limit() + 64 * 1024


def _import_limit() -> int:
    return current_app.config.get("IMPORT_MAX_BYTES", transfer.IMPORT_MAX_BYTES)


@bp.app_errorhandler(RequestEntityTooLarge)
def _too_big(error):
    """An upload over the limit: on the import page, say so on the form; elsewhere, plain 413."""
    if request.endpoint != "sessions.import_session":
        return error
    form = ImportForm(formdata=None)
    form.file.errors = [
        _("This file is too big: %(size)d MB at most.", size=_import_limit() // 2**20)
    ]
    return render_template("sessions/import.html", form=form), 413


@bp.route("/import", methods=["GET", "POST"])
@access.facilitator_required
def import_session():
    """Import a session file exported from another instance, as a new session owned by you.

    Facilitators and administrators may: it makes a session (as they may)
    and adds its needs and actions to the backlog (which they work on);
    guests may not. Nothing is written unless the whole file is sound.
    """
    form = ImportForm()
    if form.validate_on_submit():
        upload = request.files.get(form.file.name)
        if not upload or not upload.filename:
            form.file.errors = [_("Choose the session file to import.")]
            return render_template("sessions/import.html", form=form), 400
        try:
            imported = transfer.import_session(
                upload.read(_import_limit() + 1), owner=current_user, as_copy=form.as_copy.data
            )
        except transfer.ImportRefused as refusal:
            form.file.errors = [_("Nothing was imported.") + " " + refusal.message]
            return render_template("sessions/import.html", form=form), 400
        flash(
            _(
                "Session imported. Contributions: %(contributions)d; needs added to the "
                "backlog: %(needs)d; actions: %(actions)d.",
                contributions=imported.contributions,
                needs=imported.needs,
                actions=imported.actions,
            ),
            "success",
        )
        access.audit_about(imported.session)
        return redirect(url_for("sessions.run", session_id=imported.session.id))
    return render_template("sessions/import.html", form=form)
