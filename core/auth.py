"""Staff accounts: signing in and out, passwords, the first account, the command that makes one.

Participants never sign in. Who may do what once signed in is
:mod:`palabre.access`; accounts are managed in :mod:`palabre.accounts`.
"""

from __future__ import annotations

import functools
import math
import secrets
import time
from pathlib import Path

import click
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import delete, func, select
from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, ValidationError
from zxcvbn import zxcvbn

from . import access, capacity, events, totp
from .database import write_transaction
from .extensions import db, login_manager, socketio
from .forms import CleanForm
from .inputs import local_path, parse_int
from .models import (
    AccountRole,
    Facilitator,
    LoginFailure,
    Session,
    Status,
    check_password,
    hash_password,
    hash_token,
)

bp = Blueprint("auth", __name__, url_prefix="/auth")

login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in as a facilitator to see this page.")

#: Failed sign-ins an account may have before it must wait; each one more doubles the wait.
FREE_FAILURES = 5
FIRST_WAIT_S = 15
LONGEST_WAIT_S = 15 * 60
#: Failures of an address are forgotten after a day without any.
FORGET_AFTER_S = 24 * 3600


@login_manager.user_loader
def load_facilitator(cookie_id: str) -> Facilitator | None:
    """The account a sign-in or remember-me cookie names, if that cookie is still valid.

    The cookie holds ``"<id>:<credentials version>"`` (``Facilitator.get_id``):
    a cookie from before a sign-out or a password change names an older
    version and signs nobody in; neither does one of a disabled account.
    """
    account_id, _, version = str(cookie_id).partition(":")
    account_id, version = parse_int(account_id), parse_int(version)
    if account_id is None or version is None:
        return None
    facilitator = db.session.get(Facilitator, account_id)
    if facilitator is None or facilitator.credentials_version != version:
        return None
    return facilitator if facilitator.is_active else None


# --- the password policy -----------------------------------------------------------

#: zxcvbn's score (0-4) a password must reach: 3 is "safely unguessable" online.
MIN_PASSWORD_SCORE = 3
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 200
#: zxcvbn refuses longer passwords; their first characters are plenty to judge.
_ZXCVBN_MAX = 72


def password_problem(password: str, *about_the_account: str) -> str | None:
    """Why ``password`` is refused, in the reader's language, or ``None`` when it is good.

    Refuses passwords shorter than 8 characters, and those that zxcvbn (a
    maintained estimator built on lists of leaked passwords, names and
    words) finds easy to guess, including ones made of ``about_the_account``
    (the e-mail, the name).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return ngettext(
            "Use at least %(num)d character.",
            "Use at least %(num)d characters.",
            MIN_PASSWORD_LENGTH,
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        return ngettext(
            "Use at most %(num)d character.", "Use at most %(num)d characters.", MAX_PASSWORD_LENGTH
        )
    inputs = [part for text in about_the_account for part in text.replace("@", " ").split()]
    if zxcvbn(password[:_ZXCVBN_MAX], user_inputs=inputs)["score"] < MIN_PASSWORD_SCORE:
        return _(
            "This password is too easy to guess: it is common, or close to a common one. "
            "A few unrelated words make a strong password that is easy to remember."
        )
    return None


class StrongPassword:
    """WTForms validator: :func:`password_problem` with the form's e-mail and name fields."""

    def __call__(self, form, field):
        about = [str(form[name].data or "") for name in ("email", "name") if name in form]
        if current_user.is_authenticated:
            about += [current_user.email, current_user.name]
        problem = password_problem(field.data or "", *about)
        if problem:
            raise ValidationError(problem)


# --- throttling failed sign-ins -------------------------------------------------------


class LoginThrottle:
    """Failed sign-ins per e-mail address, known or not, with a wait that doubles.

    After :data:`FREE_FAILURES` failures, the address must wait
    :data:`FIRST_WAIT_S` seconds, then twice as long after each further
    failure, up to :data:`LONGEST_WAIT_S`; a success forgets its failures,
    and so does a day without any (:data:`FORGET_AFTER_S`). Unknown
    addresses are throttled exactly like known ones, so that the answers
    never tell whether an account exists.

    The counts live in the database (:class:`palabre.models.LoginFailure`,
    addresses hashed), so every worker process of an instance (``palabre
    serve --workers N`` on PostgreSQL, or a second server on the same
    SQLite file) counts the same failures: spreading tries over workers
    gains nothing. Checking is a read; a failure is one short write
    transaction, which yields to nothing while it holds the write lock.
    """

    @staticmethod
    def _key(email: str) -> str:
        return hash_token(email.strip().lower())

    def wait(self, email: str) -> int:
        """Seconds ``email`` must still wait before its next try (0: it may try now)."""
        row = db.session.get(LoginFailure, self._key(email))
        db.session.commit()  # no read transaction held while the slow check waits
        if row is None:
            return 0
        return max(0, math.ceil(row.wait_until - throttle_clock()))

    def failed(self, email: str) -> None:
        """Count one failure of ``email``; from the :data:`FREE_FAILURES`-th, it must wait."""
        key, now = self._key(email), throttle_clock()
        with write_transaction():
            # Failures nobody repeated for a day are forgotten, so the table stays small.
            db.session.execute(
                delete(LoginFailure).where(LoginFailure.failed_at < now - FORGET_AFTER_S)
            )
            row = db.session.get(LoginFailure, key)
            if row is None:
                row = LoginFailure(key_hash=key, failures=0)
                db.session.add(row)
            row.failures += 1
            wait = 0.0
            if row.failures >= FREE_FAILURES:
                wait = min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** (row.failures - FREE_FAILURES))
            row.wait_until, row.failed_at = now + wait, now

    def succeeded(self, email: str) -> None:
        """Forget the failures of ``email`` (a write only when it had some)."""
        key = self._key(email)
        had_failures = db.session.get(LoginFailure, key) is not None
        db.session.commit()
        if had_failures:
            with write_transaction():
                db.session.execute(delete(LoginFailure).where(LoginFailure.key_hash == key))


#: The throttle's clock: wall time, the same in every worker process (tests move it on).
throttle_clock = time.time


def throttle() -> LoginThrottle:
    return current_app.extensions.setdefault("palabre_login_throttle", LoginThrottle())


def wait_message(seconds: int) -> str:
    """What a throttled account reads: how many minutes to wait, rounded up."""
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many failed attempts for this account. Try again in %(num)d minute.",
        "Too many failed attempts for this account. Try again in %(num)d minutes.",
        minutes,
    )


@functools.cache
def _unknown_account_hash() -> str:
    """A hash checked when no account has the e-mail, so the answer takes as long."""
    return hash_password(secrets.token_urlsafe(16))  # slow: off the loop, like every hash


def check_credentials(email: str, password: str) -> Facilitator | None:
    """The enabled account with this e-mail and password, or ``None``.

    Takes as long for an unknown e-mail as for a known one. Does not throttle:
    see :class:`LoginThrottle`.
    """
    facilitator = find_facilitator(email)
    password_hash = facilitator.password_hash if facilitator else _unknown_account_hash()
    # End the read transaction before the slow check: sign-ins queued for it
    # must not hold the database connections the room's writes need.
    db.session.commit()
    if not check_password(password_hash, password):
        return None
    return facilitator if facilitator is not None and facilitator.is_active else None


# --- signing in and out ----------------------------------------------------------------


class LoginForm(CleanForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    remember = BooleanField(
        _l("Keep me signed in on this device for 30 days"),
        description=_l("Only on a device that is yours alone."),
    )
    submit = SubmitField(_l("Sign in"))


class CodeForm(CleanForm):
    code = StringField(
        _l("Code from your authenticator app"),
        validators=[DataRequired(), Length(max=10)],
    )
    submit = SubmitField(_l("Confirm"))


def find_facilitator(email: str) -> Facilitator | None:
    return db.session.scalar(
        select(Facilitator).where(func.lower(Facilitator.email) == email.strip().lower())
    )


#: What the cookie keeps across signing in and out: the interface language, the
#: participant tokens of this browser, an invitation being taken up.
KEPT_ON_SIGN_IN = ("lang", "p", "invitation")


def start_session(facilitator: Facilitator, remember: bool) -> None:
    """Sign ``facilitator`` in on a fresh cookie session.

    Everything the cookie held before is dropped but the interface language
    and the participant tokens, so that a cookie planted before signing in
    carries nothing over. Without ``remember`` the cookie ends with the
    browser; with it, the remember-me cookie lasts ``REMEMBER_COOKIE_DURATION``.
    """
    kept = {key: session[key] for key in KEPT_ON_SIGN_IN if key in session}
    session.clear()
    session.update(kept)
    session.permanent = remember
    login_user(facilitator, remember=remember)
    if (
        not remember
        and current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
    ):
        # An older "keep me signed in" cookie of this browser goes too (Flask-Login's way).
        session["_remember"] = "clear"


def revoke_sign_ins(facilitator: Facilitator) -> None:
    """End every sign-in of ``facilitator``: cookies on any device, remember-me, open sockets.

    Raises its credentials version, which every such cookie names, then
    closes the live sockets it has open in this process; other worker
    processes close theirs at their next sweep (:func:`close_revoked_sockets`),
    and refuse any event they send meanwhile.
    """
    with write_transaction():
        db.session.get(Facilitator, facilitator.id).credentials_version += 1
    for sid in capacity.owner_sockets(capacity.facilitator_owner(facilitator.id)):
        socketio.server.disconnect(sid, namespace=capacity.NAMESPACE)


#: Prefix of the Socket.IO room of a staff socket: its account, sign-in and session.
STAFF_SOCKET_ROOM = "staff:"
#: How often each worker process looks for staff sockets whose access has ended.
REVOKED_SWEEP_S = 5.0


def staff_socket_room(facilitator: Facilitator, session_id: int) -> str:
    """The room a staff socket joins: account, credentials version signed in with, session."""
    return f"{STAFF_SOCKET_ROOM}{facilitator.id}:{facilitator.credentials_version}:{session_id}"


def close_revoked_sockets() -> int:
    """Close this process's staff sockets whose access has ended; how many were closed.

    A socket is closed when its sign-in ended (a sign-out, a password change
    or reset, possibly in another worker process, raised the account's
    credentials version), when its account is disabled or gone, or when the
    account no longer runs the session (taken off it, or a guest's
    invitation over: :func:`palabre.access.may_run`). One read of the
    accounts and sessions concerned.
    """
    # python-socketio keeps no public list of a process's rooms; its manager's map is it.
    opened = {}
    for room in socketio.server.manager.rooms.get(capacity.NAMESPACE, {}):
        if isinstance(room, str) and room.startswith(STAFF_SOCKET_ROOM):
            account_id, version, session_id = map(
                int, room.removeprefix(STAFF_SOCKET_ROOM).split(":")
            )
            opened[room] = (account_id, version, session_id)
    if not opened:
        return 0
    accounts = {
        account.id: account
        for account in db.session.scalars(
            select(Facilitator).where(Facilitator.id.in_({a for a, _v, _s in opened.values()}))
        )
    }
    sessions = {
        run.id: run
        for run in db.session.scalars(
            select(Session).where(Session.id.in_({s for _a, _v, s in opened.values()}))
        )
    }
    ended = [
        room
        for room, (account_id, version, session_id) in opened.items()
        if (account := accounts.get(account_id)) is None
        or account.credentials_version != version
        or (run := sessions.get(session_id)) is None
        or run.status == Status.ARCHIVED
        or not access.may_run(account, run)
    ]
    db.session.commit()  # no read transaction held while sockets close
    closed = 0
    for room in ended:
        for sid, _eio_sid in list(
            socketio.server.manager.get_participants(capacity.NAMESPACE, room)
        ):
            socketio.server.disconnect(sid, namespace=capacity.NAMESPACE)
            closed += 1
    return closed


def close_session_sockets(session_id: int) -> int:
    """Send this process's sockets of a session ``resync``, then close them; how many.

    For an archived session, which takes nothing more: its phones and
    screens reload to its read-only page (``live.js`` reloads on
    ``resync``, and the page of an archived session opens no socket), and
    the sockets stop holding connections the room's phones may need.
    """
    everyone = events.room(session_id, events.ALL)  # every socket of a session is in it
    socketio.emit("resync", {}, to=everyone, ignore_queue=True)
    open_sockets = [
        sid
        for sid, _eio_sid in socketio.server.manager.get_participants(capacity.NAMESPACE, everyone)
    ]
    for sid in open_sockets:
        socketio.server.disconnect(sid, namespace=capacity.NAMESPACE)
    return len(open_sockets)


def close_archived_sessions_sockets() -> int:
    """Close this process's sockets of sessions archived meanwhile; how many were closed.

    The process that archives a session closes its own sockets at once
    (:func:`close_session_sockets`); this is how the other worker processes
    close theirs. One read of the sessions concerned.
    """
    session_ids = set()
    for name in socketio.server.manager.rooms.get(capacity.NAMESPACE, {}):
        if isinstance(name, str) and name.startswith("s") and name.endswith(f":{events.ALL}"):
            session_id = parse_int(name[1 : -len(events.ALL) - 1])
            if session_id is not None:
                session_ids.add(session_id)
    if not session_ids:
        return 0
    archived = db.session.scalars(
        select(Session.id).where(Session.id.in_(session_ids), Session.status == Status.ARCHIVED)
    ).all()
    db.session.commit()  # no read transaction held while sockets close
    return sum(close_session_sockets(session_id) for session_id in archived)


def sweep_revoked_sockets(app) -> None:
    """Every :data:`REVOKED_SWEEP_S` seconds, for ever, close the sockets whose access ended.

    Started by ``palabre serve`` in each worker process: a sign-out closes
    that process's sockets at once, the others' at their next sweep
    (:func:`close_revoked_sockets`); a guest's screens close when the
    invitation ends; the phones and screens of an archived session close
    too (:func:`close_archived_sessions_sockets`).
    """
    while True:
        socketio.sleep(REVOKED_SWEEP_S)
        with app.app_context():
            try:
                close_revoked_sockets()
                close_archived_sessions_sockets()
            except Exception:  # a database hiccup: the next sweep tries again
                app.logger.exception("could not look for revoked sign-ins")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data
        if wait := throttle().wait(email):
            flash(wait_message(wait), "error")
            return render_template("auth/login.html", form=form), 429
        facilitator = check_credentials(email, form.password.data)
        if facilitator is None:
            throttle().failed(email)
            flash(_("This e-mail and password do not match."), "error")
            return render_template("auth/login.html", form=form)
        throttle().succeeded(email)
        # Only follow local paths, never another site.
        target = local_path(request.args.get("next"), url_for("sessions.index"))
        if facilitator.totp_secret:
            session.clear()
            session["second_factor"] = {
                "id": facilitator.id,
                "version": facilitator.credentials_version,
                "remember": bool(form.remember.data),
                "next": target,
            }
            return redirect(url_for("auth.second_factor"))
        start_session(facilitator, remember=bool(form.remember.data))
        access.audit("auth.login", by=facilitator)
        return redirect(target)
    return render_template("auth/login.html", form=form)


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor():
    """The second step of signing in, for accounts with a second factor."""
    pending = session.get("second_factor") or {}
    facilitator = db.session.get(Facilitator, parse_int(pending.get("id")) or 0)
    if facilitator is None or facilitator.credentials_version != pending.get("version"):
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        key = f"totp:{facilitator.id}"
        if wait := throttle().wait(key):
            flash(wait_message(wait), "error")
            return render_template("auth/second_factor.html", form=form), 429
        step = totp.accepted_step(facilitator, form.code.data)
        if step is None:
            throttle().failed(key)
            flash(_("This code is not right. Type the code your app shows now."), "error")
            return render_template("auth/second_factor.html", form=form)
        throttle().succeeded(key)
        with write_transaction():
            db.session.get(Facilitator, facilitator.id).totp_last_step = step
        start_session(facilitator, remember=bool(pending.get("remember")))
        access.audit("auth.login", by=facilitator, second_factor=True)
        return redirect(local_path(pending.get("next"), url_for("sessions.index")))
    return render_template("auth/second_factor.html", form=form)


@bp.post("/logout")
def logout():
    """Sign out everywhere: every cookie of the account stops working, its sockets close."""
    if current_user.is_authenticated:
        revoke_sign_ins(current_user)
        access.audit("auth.logout", by=current_user._get_current_object())
        logout_user()
        kept = {key: session[key] for key in KEPT_ON_SIGN_IN if key in session}
        session.clear()
        session.update(kept)
    return redirect(url_for("join.home"))


class PasswordChangeForm(CleanForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[DataRequired(), StrongPassword()])
    submit = SubmitField(_l("Change the password"))


@bp.route("/password", methods=["GET", "POST"])
@access.staff_required
def change_password():
    """Change one's own password; every other sign-in of the account ends.

    Wrong current passwords are throttled as sign-ins are: a stolen cookie
    must not be a way to guess the password, then change it.
    """
    form = PasswordChangeForm()
    me = access.signed_in()
    if form.validate_on_submit():
        key = f"password:{me.id}"
        if wait := throttle().wait(key):
            form.current.errors.append(wait_message(wait))
            return render_template("auth/password.html", form=form), 429
        db.session.commit()  # no read transaction held while the slow check waits
        if not me.check_password(form.current.data):
            throttle().failed(key)
            form.current.errors.append(_("This is not your current password."))
        else:
            throttle().succeeded(key)
            password_hash = hash_password(form.password.data)
            with write_transaction():
                db.session.get(Facilitator, me.id).password_hash = password_hash
            revoke_sign_ins(me)
            start_session(me, remember=False)
            flash(_("Password changed. You are signed out on every other device."), "success")
            return redirect(url_for("sessions.index"))
    return render_template("auth/password.html", form=form)


# --- a password reset by an administrator ------------------------------------------------

#: How long a reset link works: three days, as Django's default, so that it can be
#: passed on in person or by phone over a weekend.
RESET_LINK_HOURS = 72


def _reset_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="palabre.password-reset")


def _reset_fingerprint(facilitator: Facilitator) -> list:
    """What a reset link names of its account; any sign-out or new password changes it."""
    # 16 hex digits of the hash are plenty inside a signed token, and keep the link short.
    return [
        facilitator.id,
        facilitator.credentials_version,
        hash_token(facilitator.password_hash)[:16],
    ]


def lock_out_for_reset(facilitator: Facilitator, second_factor_off: bool = False) -> str:
    """Lock ``facilitator`` out; the token of the one-time link that sets its new password.

    The account's password is replaced by a random one nobody knows, every
    sign-in of it ends (:func:`revoke_sign_ins`: cookies, remember-me,
    sockets), and the token (stored nowhere) works once, for
    :data:`RESET_LINK_HOURS`: setting a password, or another reset, changes
    what it names. Needs no e-mail server: the administrator passes the
    link on. With ``second_factor_off`` (a lost phone), the account's second
    factor is turned off too; its owner may turn it on again once signed in.
    """
    unknown = hash_password(secrets.token_urlsafe(32))  # slow: before the write lock
    with write_transaction():
        account = db.session.get(Facilitator, facilitator.id)
        account.password_hash = unknown
        if second_factor_off:
            account.totp_secret, account.totp_last_step = None, 0
    revoke_sign_ins(facilitator)
    return _reset_signer().dumps(_reset_fingerprint(db.session.get(Facilitator, facilitator.id)))


def account_to_reset(token) -> Facilitator | None:
    """The enabled account a reset link's ``token`` names, if the link still works."""
    try:
        fingerprint = _reset_signer().loads(str(token), max_age=RESET_LINK_HOURS * 3600)
    except BadData:
        return None
    if not isinstance(fingerprint, list) or len(fingerprint) != 3:
        return None
    facilitator = db.session.get(Facilitator, parse_int(fingerprint[0]) or 0)
    if facilitator is None or not facilitator.is_active:
        return None
    return facilitator if _reset_fingerprint(facilitator) == fingerprint else None


def _link_expired() -> str:
    return _(
        "This link to set a password does not work any more. Ask an administrator for a new one."
    )


class ResetForm(CleanForm):
    password = PasswordField(_l("New password"), validators=[DataRequired()])
    submit = SubmitField(_l("Set my password"))


@bp.get("/reset/<token>")
def reset_link(token: str):
    """The link an administrator passed on: checked, kept in the cookie, then a clean URL."""
    if account_to_reset(token) is None:
        flash(_link_expired(), "error")
        return redirect(url_for("auth.login"))
    session["password_reset"] = token
    return redirect(url_for("auth.reset_password"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_password():
    """Set a new password with a reset link; then sign in with it (and the second factor)."""
    facilitator = account_to_reset(session.get("password_reset"))
    if facilitator is None:
        session.pop("password_reset", None)
        flash(_link_expired(), "error")
        return redirect(url_for("auth.login"))
    form = ResetForm()
    if form.validate_on_submit():
        problem = password_problem(form.password.data, facilitator.email, facilitator.name)
        if problem:
            form.password.errors.append(problem)
            return render_template("auth/reset.html", form=form, account=facilitator), 400
        password_hash = hash_password(form.password.data)
        with write_transaction():
            db.session.get(Facilitator, facilitator.id).password_hash = password_hash
        revoke_sign_ins(facilitator)  # the link, and anything else, stops working
        session.pop("password_reset", None)
        access.audit("auth.reset_password", by=facilitator)
        flash(_("Password set. Sign in with it."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form, account=facilitator)


def register_commands(app) -> None:
    @app.cli.command("create-facilitator")
    @click.argument("email")
    @click.option("--name", default="", help="Name shown to other facilitators.")
    @click.option(
        "--role",
        type=click.Choice([AccountRole.ADMINISTRATOR, AccountRole.FACILITATOR]),
        default=None,
        help="administrator or facilitator; the first account is an administrator.",
    )
    @click.password_option(help="Asked for when not given.")
    def create_facilitator(email: str, name: str, role: str | None, password: str) -> None:
        """Create an account, or reset its password (which signs it out everywhere)."""
        with current_app.test_request_context():  # the message's language
            problem = password_problem(password, email, name)
        if problem:
            raise click.BadParameter(problem, param_hint="password")
        # Hash first: nothing slow runs while the database is locked for writing.
        password_hash = hash_password(password)
        with write_transaction():
            facilitator = find_facilitator(email)
            if facilitator is None:
                first = no_account_yet()
                facilitator = Facilitator(
                    email=email.strip(),
                    name=name or email.split("@")[0],
                    role=role or (AccountRole.ADMINISTRATOR if first else AccountRole.FACILITATOR),
                    credentials_version=0,
                )
                db.session.add(facilitator)
                verb = "Created"
            else:
                facilitator.credentials_version += 1
                facilitator.role = role or facilitator.role
                verb = "Updated"
            facilitator.password_hash = password_hash
        click.echo(f"{verb} {facilitator.role} {facilitator.email}.")


def current_facilitator() -> Facilitator | None:
    """The signed-in facilitator, or ``None``."""
    return current_user if current_user.is_authenticated else None


# --- the first facilitator ---------------------------------------------------------

SETUP_TOKEN_FILE = "setup_token"


def _setup_token_path():
    return Path(current_app.instance_path) / SETUP_TOKEN_FILE


def new_setup_token() -> str:
    """Create the one-time link token that lets the first facilitator sign up."""
    token = secrets.token_urlsafe(24)
    path = _setup_token_path()
    path.write_text(hash_token(token))
    path.chmod(0o600)
    return token


def no_account_yet() -> bool:
    return not db.session.scalar(select(func.count()).select_from(Facilitator))


class SetupForm(CleanForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email()])
    password = PasswordField(
        _l("Password (8 characters or more, not a common one)"), validators=[StrongPassword()]
    )
    submit = SubmitField(_l("Create my account"))


@bp.get("/setup/<token>")
def setup_link(token: str):
    """The link ``palabre serve`` prints: checked once, then a clean URL."""
    path = _setup_token_path()
    expected = path.read_text().strip() if path.exists() else ""
    if expected and no_account_yet() and secrets.compare_digest(hash_token(token), expected):
        session["setup"] = expected
        return redirect(url_for("auth.setup"))
    flash(_("This set-up link is not valid any more. Sign in instead."), "error")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Create the first account, an administrator.

    Two people opening the link at once both see the form; the first to
    send it gets the account, the second is asked to sign in.
    """
    path = _setup_token_path()
    expected = path.read_text().strip() if path.exists() else None
    if not expected or session.get("setup") != expected or not no_account_yet():
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.validate_on_submit():
        facilitator = Facilitator(
            email=form.email.data.strip(),
            name=form.name.data.strip(),
            role=AccountRole.ADMINISTRATOR,
            credentials_version=0,
        )
        facilitator.set_password(form.password.data)
        with write_transaction():
            # Checked again with the write lock held: someone may have been faster.
            first = no_account_yet()
            if first:
                db.session.add(facilitator)
        session.pop("setup", None)
        if not first:
            flash(_("Palabre is already set up. Sign in instead."), "error")
            return redirect(url_for("auth.login"))
        path.unlink(missing_ok=True)
        start_session(facilitator, remember=False)
        return redirect(url_for("sessions.index"))
    return render_template("auth/setup.html", form=form)
