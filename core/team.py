"""Who runs a session with its owner: co-facilitators and one-session invitation links.

A session's owner (the account that created it) or an administrator adds
co-facilitators from the existing accounts, and makes invitation links for
an external facilitator hired for one evening: whoever opens the link first
co-runs that session, and only it, until the link's end. Only the hash of
a link's token is stored; the link is shown once.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import EmailField, IntegerField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, NumberRange

from . import access
from .auth import (
    StrongPassword,
    close_revoked_sockets,
    find_facilitator,
    revoke_sign_ins,
    start_session,
)
from .database import write_transaction
from .extensions import db
from .forms import ButtonForm, CleanForm, options
from .inputs import parse_int
from .join import base_url
from .models import AccountRole, CoFacilitator, Facilitator, Invitation, Session, hash_token, utcnow

bp = Blueprint("team", __name__, url_prefix="/sessions/<int:session_id>/team")
# Only the session's owner, or an administrator, chooses who runs it.
access.protect(bp, access.OWNER)

invitations = Blueprint("invitations", __name__, url_prefix="/invitation")

#: The longest an invitation (and so an external facilitator's access) lasts.
LONGEST_INVITATION_HOURS = 14 * 24


class AddForm(CleanForm):
    facilitator = SelectField(_l("Account"), validate_choice=False)
    submit = SubmitField(_l("Add as co-facilitator"))


class InviteForm(CleanForm):
    hours = IntegerField(
        _l("The link and the access it gives end after (hours)"),
        default=24,
        validators=[DataRequired(), NumberRange(min=1, max=LONGEST_INVITATION_HOURS)],
    )
    submit = SubmitField(_l("Make an invitation link"))


def _session(session_id: int) -> Session:
    return db.session.get(Session, session_id) or abort(404)


@bp.get("/")
def index(session_id: int):
    """The session's owner, co-facilitators, invitations, and the forms to add more."""
    run = _session(session_id)
    now = utcnow()
    add_form = AddForm()
    taken = {run.created_by_id} | {co.facilitator_id for co in run.co_facilitators}
    add_form.facilitator.choices = options(
        (account.id, f"{account.name} <{account.email}>")
        for account in db.session.scalars(
            select(Facilitator)
            .where(Facilitator.disabled.is_(False), Facilitator.role != AccountRole.GUEST)
            .order_by(Facilitator.name)
        )
        if account.id not in taken
    )
    pending = db.session.scalars(
        select(Invitation).where(
            Invitation.session_id == run.id,
            Invitation.used_by_id.is_(None),
            Invitation.expires_at > now,
        )
    ).all()
    return render_template(
        "team/index.html",
        session=run,
        now=now,
        add_form=add_form,
        invite_form=InviteForm(),
        pending=pending,
        new_link=session.pop("invitation_link", None),
    )


@bp.post("/add")
def add(session_id: int):
    run = _session(session_id)
    form = AddForm()
    account_id = parse_int(form.facilitator.data) if form.validate() else None
    account = db.session.get(Facilitator, account_id) if account_id else None
    if account is None or account.disabled or account.role == AccountRole.GUEST:
        flash(_("Choose an account to add."), "error")
    else:
        try:
            with write_transaction():
                db.session.add(CoFacilitator(session_id=run.id, facilitator_id=account.id))
        except IntegrityError:
            pass  # added twice at once: once is enough
        flash(_("%(name)s can now run this session.", name=account.name), "success")
    return redirect(url_for("team.index", session_id=run.id))


@bp.post("/<int:facilitator_id>/remove")
def remove(session_id: int, facilitator_id: int):
    """Take a co-facilitator off the session; their open screens of it stop at once."""
    run = _session(session_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    with write_transaction():
        row = db.session.scalar(
            select(CoFacilitator).where(
                CoFacilitator.session_id == run.id, CoFacilitator.facilitator_id == facilitator_id
            )
        )
        if row is not None:
            db.session.delete(row)
    account = db.session.get(Facilitator, facilitator_id)
    if account is not None and account.role == AccountRole.GUEST:
        # A guest ran this session only: end their sign-ins and sockets.
        revoke_sign_ins(account)
    else:
        close_revoked_sockets()  # their screens of this session, here; other workers' soon
    return redirect(url_for("team.index", session_id=run.id))


@bp.post("/invite")
def invite(session_id: int):
    """Make an invitation link, shown once on the team page."""
    run = _session(session_id)
    form = InviteForm()
    if not form.validate_on_submit():
        flash(
            _(
                "Give a number of hours between 1 and %(num)d.",
                num=LONGEST_INVITATION_HOURS,
            ),
            "error",
        )
        return redirect(url_for("team.index", session_id=run.id))
    token = secrets.token_urlsafe(24)
    with write_transaction():
        db.session.add(
            Invitation(
                session_id=run.id,
                token_hash=hash_token(token),
                expires_at=utcnow() + timedelta(hours=form.hours.data),
                created_by_id=current_user.id,
            )
        )
    session["invitation_link"] = base_url() + url_for("invitations.open_link", token=token)
    return redirect(url_for("team.index", session_id=run.id))


@bp.post("/invitations/<int:invitation_id>/revoke")
def revoke(session_id: int, invitation_id: int):
    run = _session(session_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    with write_transaction():
        invitation = db.session.get(Invitation, invitation_id)
        if invitation is not None and invitation.session_id == run.id:
            invitation.expires_at = utcnow()
    return redirect(url_for("team.index", session_id=run.id))


# --- opening an invitation -------------------------------------------------------------


def _valid_invitation(token_hash) -> Invitation | None:
    if not isinstance(token_hash, str):
        return None
    return db.session.scalar(
        select(Invitation).where(
            Invitation.token_hash == token_hash,
            Invitation.used_by_id.is_(None),
            Invitation.expires_at > utcnow(),
        )
    )


class GuestForm(CleanForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(
        _l("Password (8 characters or more, not a common one)"),
        validators=[DataRequired(), StrongPassword()],
    )
    submit = SubmitField(_l("Create my account and join"))


@invitations.get("/<token>")
def open_link(token: str):
    """The invitation link: checked once, kept in the cookie, then a clean URL."""
    invitation = _valid_invitation(hash_token(token))
    if invitation is None:
        return render_template("team/invitation_invalid.html"), 404
    session["invitation"] = invitation.token_hash
    return redirect(url_for("invitations.accept"))


@invitations.route("/", methods=["GET", "POST"])
def accept():
    """Take up the invitation: as the signed-in account, or with a new guest account."""
    invitation = _valid_invitation(session.get("invitation"))
    if invitation is None:
        session.pop("invitation", None)
        return render_template("team/invitation_invalid.html"), 404
    signed_in = access.signed_in()
    form = GuestForm() if signed_in is None else ButtonForm()
    if form.validate_on_submit():
        account = signed_in
        if account is None:
            if find_facilitator(form.email.data) is not None:
                form.email.errors.append(
                    _("An account already has this e-mail: sign in, then open the link again.")
                )
                return render_template("team/accept.html", form=form, invitation=invitation)
            account = Facilitator(
                email=form.email.data.strip(),
                name=form.name.data.strip(),
                role=AccountRole.GUEST,
                credentials_version=0,
            )
            account.set_password(form.password.data)
        try:
            taken_up = _take_up(invitation, account)
        except IntegrityError:  # the same e-mail signed up at the same moment
            form.email.errors.append(_("An account already has this e-mail."))
            return render_template("team/accept.html", form=form, invitation=invitation)
        if not taken_up:
            session.pop("invitation", None)
            return render_template("team/invitation_invalid.html"), 404
        session.pop("invitation", None)
        if signed_in is None:
            start_session(account, remember=False)
        access.audit("invitations.accept", invitation.session)
        return redirect(url_for("sessions.run", session_id=invitation.session_id))
    return render_template("team/accept.html", form=form, invitation=invitation)


def _take_up(invitation: Invitation, account: Facilitator) -> bool:
    """Use ``invitation`` for ``account``; ``False`` when someone used it first."""
    with write_transaction():
        fresh = db.session.get(Invitation, invitation.id)
        if fresh.used_by_id is not None or fresh.expires_at <= utcnow():
            return False
        if account.id is None:
            db.session.add(account)
            db.session.flush()
        fresh.used_by_id = account.id
        existing = db.session.scalar(
            select(CoFacilitator).where(
                CoFacilitator.session_id == fresh.session_id,
                CoFacilitator.facilitator_id == account.id,
            )
        )
        if existing is None:
            db.session.add(
                CoFacilitator(
                    session_id=fresh.session_id,
                    facilitator_id=account.id,
                    expires_at=fresh.expires_at,
                )
            )
        elif existing.expires_at is not None:
            existing.expires_at = max(existing.expires_at, fresh.expires_at)
    return True
