"""Facilitator accounts: sign-in, sign-out, and the command that creates one.

Only facilitators create and run sessions. Participants never sign in.
"""

from __future__ import annotations

import secrets
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
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length

from .database import write_transaction
from .extensions import db, login_manager
from .forms import CleanForm
from .inputs import local_path
from .models import Facilitator, hash_password, hash_token

bp = Blueprint("auth", __name__, url_prefix="/auth")

login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in as a facilitator to see this page.")


@login_manager.user_loader
def load_facilitator(facilitator_id: str) -> Facilitator | None:
    return db.session.get(Facilitator, int(facilitator_id))


class LoginForm(CleanForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    submit = SubmitField(_l("Sign in"))


def find_facilitator(email: str) -> Facilitator | None:
    return db.session.scalar(
        select(Facilitator).where(func.lower(Facilitator.email) == email.strip().lower())
    )


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        facilitator = find_facilitator(form.email.data)
        if facilitator and facilitator.check_password(form.password.data):
            login_user(facilitator, remember=True)
            # Only follow local paths, never another site.
            return redirect(local_path(request.args.get("next"), url_for("sessions.index")))
        flash(_("This e-mail and password do not match."), "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    logout_user()
    return redirect(url_for("join.home"))


def register_commands(app) -> None:
    @app.cli.command("create-facilitator")
    @click.argument("email")
    @click.option("--name", default="", help="Name shown to other facilitators.")
    @click.password_option(help="Asked for when not given.")
    def create_facilitator(email: str, name: str, password: str) -> None:
        """Create a facilitator account, or reset its password."""
        if len(password) < 8:
            raise click.BadParameter("use at least 8 characters", param_hint="password")
        # Hash first: nothing slow runs while the database is locked for writing.
        password_hash = hash_password(password)
        with write_transaction():
            facilitator = find_facilitator(email)
            if facilitator is None:
                facilitator = Facilitator(email=email.strip(), name=name or email.split("@")[0])
                db.session.add(facilitator)
                verb = "Created"
            else:
                verb = "Updated"
            facilitator.password_hash = password_hash
        click.echo(f"{verb} facilitator {facilitator.email}.")


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


def _no_facilitator_yet() -> bool:
    return not db.session.scalar(select(func.count()).select_from(Facilitator))


class SetupForm(CleanForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password (8 characters or more)"), validators=[Length(min=8)])
    submit = SubmitField(_l("Create my account"))


@bp.get("/setup/<token>")
def setup_link(token: str):
    """The link ``palabre serve`` prints: checked once, then a clean URL."""
    path = _setup_token_path()
    expected = path.read_text().strip() if path.exists() else ""
    if expected and _no_facilitator_yet() and secrets.compare_digest(hash_token(token), expected):
        session["setup"] = expected
        return redirect(url_for("auth.setup"))
    flash(_("This set-up link is not valid any more. Sign in instead."), "error")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Create the first facilitator account."""
    path = _setup_token_path()
    expected = path.read_text().strip() if path.exists() else None
    if not expected or session.get("setup") != expected or not _no_facilitator_yet():
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.validate_on_submit():
        facilitator = Facilitator(email=form.email.data.strip(), name=form.name.data.strip())
        facilitator.set_password(form.password.data)
        with write_transaction():
            db.session.add(facilitator)
        path.unlink(missing_ok=True)
        session.pop("setup", None)
        login_user(facilitator, remember=True)
        return redirect(url_for("sessions.index"))
    return render_template("auth/setup.html", form=form)
