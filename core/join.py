"""Joining a session: short codes, QR codes, the anonymous cookie, phone pages.

Everything a participant does over HTTP is here, and works without
JavaScript: the join page, the participant view, and plain form posts for
contributions and votes (the live layer does the same over Socket.IO).
"""

from __future__ import annotations

import functools
import io
import ipaddress
import json
import secrets
import time
import uuid
from urllib.parse import urlsplit

import psutil
import qrcode
import qrcode.image.svg
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask import session as cookie
from flask_babel import get_locale, refresh
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import bindparam, func, select
from werkzeug.local import LocalProxy
from wtforms import HiddenField, RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from . import connections, contributions, ratelimit
from .backlog import session_actions, session_needs
from .database import insert_now, write_transaction
from .errors import Refused, Unavailable
from .events import FACILITATORS, PROJECTOR, announce, current_participant
from .extensions import db, socketio
from .forms import CleanForm, options
from .i18n import LANGUAGES, browser_language
from .inputs import local_path
from .models import Participant, RoleLink, Session, Status, hash_token
from .phases import current_phase, plan
from .plugin_host import get_method

bp = Blueprint("join", __name__)

#: Letters and digits nobody confuses when reading them off a screen
#: (no 0/O, 1/I/L, 2/Z, 5/S, 8/B).
CODE_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 6
#: Wrong codes one browser, and the whole instance, may try before waiting.
WRONG_CODES_PER_BROWSER = "10/minute"
WRONG_CODES_OVERALL = "300/minute"


def new_join_code() -> str:
    """A random, unused join code: not sequential, not guessable in order."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if db.session.scalar(select(Session.id).where(Session.code == code)) is None:
            return code


def normalise_code(text: str) -> str:
    """Read a typed code leniently: case, spaces, dashes and look-alikes."""
    lookalike = str.maketrans({"0": "Q", "O": "Q", "1": "T", "I": "T", "L": "T"})
    return "".join(ch for ch in text.upper() if ch.isalnum()).translate(lookalike)


# --- addresses and QR codes -------------------------------------------------


def lan_address() -> str | None:
    """This machine's IPv4 address on the local network, if it has one."""
    candidates = []
    stats = psutil.net_if_stats()
    for name, addresses in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        for address in addresses:
            if address.family.name != "AF_INET":
                continue
            ip = ipaddress.ip_address(address.address)
            if ip.is_loopback or ip.is_link_local:
                continue
            # Prefer private (venue Wi-Fi) addresses over public ones.
            candidates.append((not ip.is_private, address.address))
    return min(candidates)[1] if candidates else None


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or an address) is this machine only: ``localhost``, 127.x, ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def base_url() -> str:
    """The address phones use to reach this server, without a trailing slash.

    ``BASE_URL`` when configured; otherwise the address the request came
    to, except that ``localhost`` is replaced by the machine's address on
    the local network, since a phone cannot open ``localhost`` -- unless
    the server listens on loopback only (``LISTEN_HOST``, set by ``palabre
    serve --host 127.0.0.1``): nothing answers on the network address then,
    so the loopback address, which does answer on this computer, is kept.
    """
    configured = current_app.config.get("BASE_URL")
    if configured:
        return configured.rstrip("/")
    parts = urlsplit(request.host_url)
    listening_on_loopback = is_loopback(current_app.config.get("LISTEN_HOST"))
    if is_loopback(parts.hostname) and not listening_on_loopback and (lan := lan_address()):
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{lan}{port}"
    return request.host_url.rstrip("/")


def join_url(session: Session) -> str:
    return base_url() + url_for("join.join", code=session.code)


def qr_svg(data: str) -> str:
    """An SVG QR code for ``data``, scalable to any size."""
    image = qrcode.make(
        data,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=2,
    )
    return image.to_string(encoding="unicode")


def qr_png(data: str, box_size: int = 12) -> bytes:
    image = qrcode.make(data, box_size=box_size, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@bp.app_template_global()
def join_qr(session: Session) -> Markup:
    """Inline SVG QR code of a session's join URL, for pages and prints."""
    return Markup(qr_svg(join_url(session)))


@bp.app_template_global()
def session_join_url(session: Session) -> str:
    return join_url(session)


# --- forms -------------------------------------------------------------------


class CodeForm(CleanForm):
    code = StringField(_l("Session code"), validators=[DataRequired(), Length(max=20)])
    submit = SubmitField(_l("Join"))


class JoinForm(CleanForm):
    language = RadioField(_l("Your language"), validators=[DataRequired()])
    group = RadioField(_l("Your table"), validate_choice=False)
    submit = SubmitField(_l("Join"))


class ContributionForm(CleanForm):
    """The no-JavaScript way to contribute; ``cid`` makes a resubmission harmless."""

    cid = HiddenField(default=lambda: uuid.uuid4().hex)
    kind = HiddenField()
    # The contribution this one answers, for kinds that answer (see ContributionKind.answers).
    reply_to = HiddenField()
    body = TextAreaField(_l("Your note"))
    submit = SubmitField(_l("Send"))


class VoteForm(CleanForm):
    cid = HiddenField(default=lambda: uuid.uuid4().hex)
    contribution = HiddenField()
    submit = SubmitField(_l("Give a dot"))


# --- pages ---------------------------------------------------------------------


#: Every request of a phone asks: built once (building costs more than running it).
#: Every status but a draft's (open, live, closed, archived); not an ``IN`` list, whose
#: parameters SQLAlchemy expands again at every execution.
_JOINABLE_SESSION = select(Session).where(
    Session.code == bindparam("code"), Session.status != Status.DRAFT
)


def _joinable_session(code: str) -> Session | None:
    """The session a code names, once open; closed and archived ones still show their results.

    An archived session stays reachable so that its participants' links keep
    showing what became of what they said ("you said, we did").
    """
    return db.session.scalar(_JOINABLE_SESSION, {"code": normalise_code(code)})


_HEAD_COUNT = (
    select(func.count())
    .select_from(Participant)
    .where(Participant.session_id == bindparam("session_id"))
)


def participant_count(session: Session) -> int:
    return db.session.scalar(_HEAD_COUNT, {"session_id": session.id})


def _visitor_key() -> str:
    """An anonymous per-browser key for rate limits; not linked to anything."""
    if "visitor" not in cookie:
        cookie["visitor"] = secrets.token_urlsafe(16)
    return cookie["visitor"]


def _within_limits(name: str, per_browser: str, overall: str) -> bool:
    """Count one request by this browser against ``per_browser``, then ``overall``.

    ``False`` once either is exceeded. A browser over its own limit is not
    counted overall, so it cannot use up everyone else's allowance; the
    overall limit stops a script that drops its cookies, since each request
    without one looks like a new browser.
    """
    return ratelimit.allow(f"{name}:{_visitor_key()}", per_browser) and ratelimit.allow(
        f"{name}:*", overall
    )


def _too_many_wrong_codes() -> bool:
    return not _within_limits("badcode", WRONG_CODES_PER_BROWSER, WRONG_CODES_OVERALL)


def _slow_down(response):
    """Answer 429, asking the browser to wait before the next try."""
    response = current_app.make_response(response)
    response.status_code = 429
    response.headers["Retry-After"] = "60"
    return response


def unknown_code(code: str):
    """The page for a code or link that leads nowhere (slowed down after many tries)."""
    if _too_many_wrong_codes():
        return render_template("join/slow_down.html"), 429
    return render_template("join/unknown.html", code=code, form=CodeForm()), 404


@bp.route("/", methods=["GET", "POST"])
def home():
    """Where people without a camera type the code shown on the screen."""
    form = CodeForm()
    if form.validate_on_submit():
        config = current_app.config
        if not _within_limits(
            "codes", config["RATE_LIMIT_CODES_PER_BROWSER"], config["RATE_LIMIT_CODES_OVERALL"]
        ):
            flash(
                _("Many codes were typed in this browser. Wait a minute, then try again."), "error"
            )
            return _slow_down(render_template("join/home.html", form=form))
        return redirect(url_for("join.join", code=normalise_code(form.code.data)))
    return render_template("join/home.html", form=form)


@bp.route("/language", methods=["POST"])
def choose_language():
    """Switch the interface language; goes back to the page it came from."""
    language = request.form.get("language", "")
    if language in LANGUAGES:
        cookie["lang"] = language
    return redirect(local_path(request.form.get("next"), url_for("join.home")))


@bp.route("/j/<code>", methods=["GET", "POST"])
def join(code: str):
    """The join URL in the QR code: the join form, then the participant view."""
    session, participant = connections.session_and_phone(normalise_code(code), drafts=False)
    if session is None:
        return unknown_code(code)
    if code != session.code:
        return redirect(url_for("join.join", code=session.code))
    if participant is None or session.purged_at is not None:
        # Once purged, a phone that took part sees the closing page too: the text is gone.
        return _join_form(session)
    return participant_view(session, participant)


def _join_form(session: Session):
    method = get_method(session.method)
    if session.status in (Status.CLOSED, Status.ARCHIVED):
        return render_template(
            "join/closed.html",
            session=session,
            needs=session_needs(session),
            actions=session_actions(session),
        )
    offered = [lang for lang in session.languages if lang in LANGUAGES] or list(LANGUAGES)
    # The language chosen on this phone before, else the phone's own, else the session's first.
    chosen = cookie.get("lang")
    preselected = chosen if chosen in offered else browser_language(offered) or offered[0]
    page_key = _join_page_key(session, preselected)
    if page_key is not None and (page := _join_pages().get(page_key)) is not None:
        return page.replace(_CSRF_PLACEHOLDER, generate_csrf())
    form = JoinForm()
    form.language.choices = options((lang, LANGUAGES[lang][0]) for lang in offered)
    if not form.language.data:
        form.language.data = preselected
    if method.participants_choose_group(session.config):
        form.group.choices = options(method.groups(session.config))
    else:
        del form.group
    if form.validate_on_submit():
        if not ratelimit.allow(f"joins:{session.id}", current_app.config["RATE_LIMIT_JOINS"]):
            # Ask them to wait in the language they have just chosen.
            cookie["lang"] = form.language.data
            refresh()
            flash(
                _("Many people are joining at once. Wait a few seconds, then tap Join again."),
                "error",
            )
            return _slow_down(
                render_template("join/join.html", session=session, form=form, method=method)
            )
        chosen = form.group.data if "group" in form else None
        add_participant(session, form.language.data, {"group": chosen})
        cookie["lang"] = form.language.data
        return redirect(url_for("join.join", code=session.code))
    page = render_template("join/join.html", session=session, form=form, method=method)
    if page_key is not None:
        _keep_join_page(page_key, page.replace(generate_csrf(), _CSRF_PLACEHOLDER))
    return page


#: Join pages kept rendered, per app: a burst of phones scanning the QR code asks
#: for the same few pages (one per session and language) hundreds of times.
JOIN_PAGES_KEY = "palabre.join_pages"
JOIN_PAGES_KEPT = 64
#: Where a kept page had its browser's CSRF token: each browser gets its own.
_CSRF_PLACEHOLDER = "\x00csrf-token\x00"


def _join_page_key(session: Session, preselected: str) -> tuple | None:
    """What the join form's page shows depends on, when it may be kept; ``None`` otherwise.

    Everything the page shows but the CSRF token: the session's fields it
    shows or decides from (a change makes a new key, so an edited session
    is never shown as it was), the page's language, the language ticked,
    the address the language switch comes back to. Not kept: a post (it
    may show errors), a page with a message flashed, a signed-in account's
    page (its menu).
    """
    if request.method != "GET" or "_flashes" in cookie or current_user.is_authenticated:
        return None
    config = json.dumps(session.config, sort_keys=True, default=str)
    return (
        session.id,
        session.code,
        session.method,
        session.status,
        session.title,
        session.venue,
        tuple(session.languages or ()),
        config,
        str(get_locale()),
        preselected,
        request.full_path,
    )


def _join_pages() -> dict:
    return current_app.extensions.setdefault(JOIN_PAGES_KEY, {})


def _keep_join_page(key: tuple, page: str) -> None:
    pages = _join_pages()
    if len(pages) >= JOIN_PAGES_KEPT:
        pages.pop(next(iter(pages)))  # the oldest kept
    pages[key] = page


def add_participant(
    session: Session, language: str, choices: dict, role_link: RoleLink | None = None
) -> Participant:
    """Create an anonymous participant and give this browser its token cookie.

    Only the token's hash is stored. A participant arriving through a
    personal link holds its role from the start. The method places the
    participant (``on_join``) and the staff screens hear the new head count.
    The token outlives the browser, but not when a staff member signed in
    on this browser without "keep me signed in": the cookie holds that
    sign-in too, which must end with the browser.
    """
    token = secrets.token_urlsafe(32)
    session_id, method = session.id, get_method(session.method)
    with write_transaction():
        # Seated by the session as it is now, under the lock, read without an ORM query.
        session = connections.session_as_now(session_id) or session
        participant = insert_now(
            Participant(
                session_id=session_id,
                token_hash=hash_token(token),
                language=language,
                role=role_link.role if role_link else None,
                role_link_id=role_link.id if role_link else None,
            )
        )
        db.session.add(participant)  # the method seats it
        method.on_join(session, participant, choices)
    head_count_changed(participant.session_id)
    if not current_user.is_authenticated:
        cookie.permanent = True
    cookie["p"] = {**(cookie.get("p") or {}), str(session.id): token}
    return participant


#: A session's staff screens hear its head count at most this often: a burst of 500
#: joins costs a few counts and broadcasts, not 500 of each, and the last one sent
#: always counts every join.
HEAD_COUNT_INTERVAL_S = 0.5
#: Where an app keeps, per session, when its head count was last sent and whether
#: a later one is due (``app.extensions``).
HEAD_COUNTS_KEY = "palabre.head_counts"


def head_count_changed(session_id: int) -> None:
    """Tell the session's staff screens and projector its head count, now or shortly.

    Called after a join's commit, never under the write lock. The first
    join after a quiet :data:`HEAD_COUNT_INTERVAL_S` is announced at once;
    the joins that follow within it are announced together when it ends, by
    one count read then. ``participants.changed`` is a passing state: not
    stored, not numbered, not replayed (500 joins must not fill the replay
    log every connecting phone reads); a staff socket that connects is sent
    the current count instead (``palabre.live``). The flag saying a count is
    cleared before that count is read, so a join committed after the read
    finds no count due and sends or schedules its own: the last count sent
    includes every join.
    """
    app = current_app._get_current_object()
    counts = app.extensions.setdefault(HEAD_COUNTS_KEY, {"sent": {}, "due": set()})
    if session_id in counts["due"]:
        return  # the count due reads the database after this join's commit
    wait = counts["sent"].get(session_id, -HEAD_COUNT_INTERVAL_S) + HEAD_COUNT_INTERVAL_S
    wait -= time.monotonic()
    if wait <= 0:
        _send_head_count(counts, session_id)
        return
    counts["due"].add(session_id)
    server = socketio.server

    def later():
        socketio.sleep(wait)
        if socketio.server is not server:
            return  # another app is served now (tests make one after another): nobody to tell
        with app.app_context():
            counts["due"].discard(session_id)
            try:
                _send_head_count(counts, session_id)
            except Exception:  # a database hiccup: the next join or staff connection says it
                app.logger.exception("could not send a session's head count")

    socketio.start_background_task(later)


def _send_head_count(counts: dict, session_id: int) -> None:
    counts["sent"][session_id] = time.monotonic()
    count = db.session.scalar(_HEAD_COUNT, {"session_id": session_id})
    announce(session_id, "participants.changed", {"count": count}, [FACILITATORS, PROJECTOR])


def participant_view(
    session: Session,
    participant: Participant,
    draft: dict[str, str] | None = None,
    refusal: Refused | Unavailable | None = None,
):
    """Render the method's participant page for the current phase.

    After a refused plain post, ``draft`` is what the form sent, by field
    name (the body included), and ``refusal`` why it was refused: templates
    refill their fields from ``draft`` and show ``refusal.fields`` beside
    theirs (both are empty otherwise).
    """
    method = get_method(session.method)
    # Read the sequence number first: the page then holds everything up to it.
    seq = session.seq
    phase = current_phase(session)
    context = method.view_context(session, "participant", participant=participant)
    return render_template(
        method.template("participant"),
        session=session,
        method=method,
        phase=phase,
        plan=plan(session),
        participant=participant,
        seq=seq,
        contribution_form=_built_on_use(
            lambda: ContributionForm(formdata=None, body=(draft or {}).get("body", ""))
        ),
        vote_form=_built_on_use(VoteForm),
        draft=draft or {},
        refused_fields=getattr(refusal, "fields", {}),
        **context,
    )


def _built_on_use(build):
    """What ``build()`` returns, built when a template first uses it (once).

    A phone's page shows the note form or the vote form in some phases
    only; building both forms at every page costs a third of a millisecond
    per phone in a burst of joins.
    """
    return LocalProxy(functools.cache(build))


def _require_participant(code: str) -> tuple[Session, Participant]:
    session = _joinable_session(code)
    if session is None:
        abort(404)
    participant = current_participant(session)
    if participant is None:
        abort(redirect(url_for("join.join", code=session.code)))
    return session, participant


@bp.post("/j/<code>/contribute")
def contribute(code: str):
    """Plain form post of a contribution, for phones without JavaScript.

    Stored: back to the participant's page. Refused (or not taken now): the
    page is shown again at once with everything that was sent still in its
    fields and the reasons, each beside its field when the refusal names
    fields, so that nothing typed is lost.
    """
    session, participant = _require_participant(code)
    form = ContributionForm()
    refusal: Refused | Unavailable = Refused(_("Your note could not be sent. Please try again."))
    if form.validate_on_submit():
        try:
            contributions.accept(
                session,
                participant,
                client_id=form.cid.data,
                kind_name=form.kind.data,
                body=form.body.data or "",
                reply_to=form.reply_to.data,
                # The kind's declared fields; accept() ignores any other.
                fields=request.form.to_dict(),
            )
            flash(_("Sent. Thank you!"), "success")
            return redirect(url_for("join.join", code=session.code))
        except (Refused, Unavailable) as refused:
            refusal = refused
    flash(refusal.message, "error")
    draft = {
        name: value
        for name, value in request.form.items()
        if name not in ("csrf_token", "cid", "submit")
    }
    page = participant_view(session, participant, draft=draft, refusal=refusal)
    if isinstance(refusal, Unavailable):
        return page, 503, {"Retry-After": "5"}
    return page, 400


@bp.post("/j/<code>/vote")
def vote(code: str):
    """Plain form post of one dot."""
    session, participant = _require_participant(code)
    form = VoteForm()
    if form.validate_on_submit():
        try:
            contributions.vote(
                session,
                participant,
                client_id=form.cid.data,
                contribution_id=form.contribution.data,
                value=request.form.get("value", 1),
            )
        except Refused as refusal:
            flash(refusal.message, "error")
    return redirect(url_for("join.join", code=session.code))


def _qr_session(code: str) -> Session:
    """The session of a QR code image request, within the QR rate limits."""
    config = current_app.config
    if not _within_limits(
        "qr", config["RATE_LIMIT_QR_PER_BROWSER"], config["RATE_LIMIT_QR_OVERALL"]
    ):
        abort(_slow_down(_("Too many QR codes were asked for. Wait a minute, then try again.")))
    return db.session.scalar(select(Session).where(Session.code == code)) or abort(404)


@bp.get("/s/<code>/qr.svg")
def qr_code_svg(code: str):
    session = _qr_session(code)
    return current_app.response_class(qr_svg(join_url(session)), mimetype="image/svg+xml")


@bp.get("/s/<code>/qr.png")
def qr_code_png(code: str):
    session = _qr_session(code)
    return send_file(
        io.BytesIO(qr_png(join_url(session))),
        mimetype="image/png",
        download_name=f"palabre-{session.code}.png",
    )
