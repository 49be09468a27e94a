"""Accounts: administrators manage them and read the audit log; everyone manages their own.

Administrators create accounts (with a first password they pass on),
change roles, disable or enable accounts (disabling one signs it out
everywhere at once), and reset a forgotten password: the account is signed
out everywhere and the administrator gets a one-time link to pass on, with
which its owner sets a new password (no e-mail server needed). Each account
turns its second factor (TOTP) on or off from its own page.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms import EmailField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length

from . import access, totp
from .auth import (
    RESET_LINK_HOURS,
    CodeForm,
    StrongPassword,
    find_facilitator,
    lock_out_for_reset,
    revoke_sign_ins,
    throttle,
    wait_message,
)
from .backlog import Page
from .database import write_transaction
from .extensions import db
from .forms import ButtonForm, CleanForm, options
from .inputs import parse_int
from .join import base_url, qr_svg
from .models import AccountRole, AuditEntry, Facilitator, Session, hash_password

bp = Blueprint("accounts", __name__)

ROLE_LABELS = {
    AccountRole.ADMINISTRATOR: _l("Administrator"),
    AccountRole.FACILITATOR: _l("Facilitator"),
    AccountRole.GUEST: _l("Invited facilitator"),
}
#: Audit entries shown on one page.
AUDIT_PAGE = 200


@bp.app_template_global()
def role_label(role: str) -> str:
    """An account's role in the reader's language."""
    return str(ROLE_LABELS.get(role, role))


class AccountForm(CleanForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField(
        _l("Role"),
        choices=options(
            (r, ROLE_LABELS[r]) for r in (AccountRole.FACILITATOR, AccountRole.ADMINISTRATOR)
        ),
    )
    password = PasswordField(
        _l("First password"),
        description=_l("Pass it on in person; they can change it once signed in."),
        validators=[DataRequired(), StrongPassword()],
    )
    submit = SubmitField(_l("Create the account"))


class RoleForm(CleanForm):
    role = SelectField(_l("Role"), choices=options(ROLE_LABELS.items()))
    submit = SubmitField(_l("Change the role"))


def _administrators_left(without: Facilitator) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Facilitator)
        .where(
            Facilitator.role == AccountRole.ADMINISTRATOR,
            Facilitator.disabled.is_(False),
            Facilitator.id != without.id,
        )
    )


@bp.route("/admin/accounts", methods=["GET", "POST"])
@access.admin_required
def accounts():
    """Every account, and the form that creates one."""
    form = AccountForm()
    if form.validate_on_submit():
        if find_facilitator(form.email.data) is not None:
            form.email.errors.append(_("An account already has this e-mail."))
        else:
            password_hash = hash_password(form.password.data)
            with write_transaction():
                db.session.add(
                    Facilitator(
                        email=form.email.data.strip(),
                        name=form.name.data.strip(),
                        role=form.role.data,
                        password_hash=password_hash,
                        credentials_version=0,
                    )
                )
            access.audit_this(email=form.email.data.strip(), role=form.role.data)
            flash(_("Account created."), "success")
            return redirect(url_for("accounts.accounts"))
    everyone = db.session.scalars(select(Facilitator).order_by(Facilitator.name)).all()
    return render_template(
        "accounts/index.html",
        form=form,
        accounts=everyone,
        roles=ROLE_LABELS.items(),
    )


def _account(account_id: int) -> Facilitator:
    return db.session.get(Facilitator, account_id) or abort(404)


@bp.post("/admin/accounts/<int:account_id>/role")
@access.admin_required
def change_role(account_id: int):
    account = _account(account_id)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    if (
        account.is_admin
        and form.role.data != AccountRole.ADMINISTRATOR
        and not _administrators_left(account)
    ):
        flash(_("Palabre needs at least one administrator."), "error")
    else:
        with write_transaction():
            db.session.get(Facilitator, account.id).role = form.role.data
        access.audit_this(email=account.email, role=form.role.data)
    return redirect(url_for("accounts.accounts"))


@bp.post("/admin/accounts/<int:account_id>/disable")
@access.admin_required
def disable(account_id: int):
    """Disable an account (``enable=1`` enables it again); disabling signs it out everywhere."""
    account = _account(account_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    enable = request.form.get("enable") == "1"
    if not enable and account.is_admin and not _administrators_left(account):
        flash(_("Palabre needs at least one administrator."), "error")
        return redirect(url_for("accounts.accounts"))
    with write_transaction():
        db.session.get(Facilitator, account.id).disabled = not enable
    if not enable:
        revoke_sign_ins(account)
    access.audit_this(email=account.email, enabled=enable)
    flash(_("Account enabled.") if enable else _("Account disabled."), "success")
    return redirect(url_for("accounts.accounts"))


@bp.post("/admin/accounts/<int:account_id>/reset-password")
@access.admin_required
def reset_password(account_id: int):
    """Sign the account out everywhere and show a one-time link that sets its new password.

    The link is shown on this answer only, never stored: refreshing the page
    makes a new one, and the older stops working.
    """
    account = _account(account_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if account.id == current_user.id:
        flash(_("Change your own password from your account page."), "error")
        return redirect(url_for("accounts.accounts"))
    if account.disabled:
        flash(_("Enable the account first."), "error")
        return redirect(url_for("accounts.accounts"))
    second_factor_off = bool(account.totp_secret) and request.form.get("second_factor") == "off"
    token = lock_out_for_reset(account, second_factor_off=second_factor_off)
    access.audit_this(email=account.email)
    if second_factor_off:
        access.audit_this(second_factor_off=True)
    link = base_url() + url_for("auth.reset_link", token=token)
    return render_template(
        "accounts/reset_link.html",
        account=account,
        link=link,
        qr=Markup(qr_svg(link)),
        hours=RESET_LINK_HOURS,
    )


@bp.get("/admin/audit")
@access.admin_required
def audit_log():
    """Who did what, newest first, :data:`AUDIT_PAGE` entries a page (``?page=``).

    ``?session=<id>`` shows one session's entries only.
    """
    query = select(AuditEntry)
    session_id = parse_int(request.args.get("session"))
    shown = db.session.get(Session, session_id) if session_id else None
    if shown is not None:
        query = query.where(AuditEntry.session_id == shown.id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    page = Page.of(parse_int(request.args.get("page"), low=1), total, AUDIT_PAGE)
    entries = db.session.scalars(
        query.order_by(AuditEntry.id.desc()).offset(page.start).limit(page.size)
    ).all()
    return render_template("accounts/audit.html", entries=entries, shown=shown, page=page)


# --- one's own account ------------------------------------------------------------


@bp.get("/account")
@access.staff_required
def account():
    """The signed-in account: its role, password and second factor."""
    return render_template("accounts/account.html")


@bp.route("/account/second-factor", methods=["GET", "POST"])
@access.staff_required
def second_factor():
    """Turn the second factor on: scan the QR code, then type one code to confirm."""
    secret = session.get("totp_setup")
    form = CodeForm()
    if secret and form.validate_on_submit():
        step = totp.matching_step(secret, form.code.data)
        if step is None:
            form.code.errors.append(_("This code is not right. Type the code your app shows now."))
        else:
            with write_transaction():
                me = db.session.get(Facilitator, current_user.id)
                me.totp_secret, me.totp_last_step = secret, step
            session.pop("totp_setup", None)
            flash(_("Second factor on: signing in will ask for a code."), "success")
            return redirect(url_for("accounts.account"))
    if not secret or request.method == "GET":
        secret = session["totp_setup"] = totp.new_secret()
    uri = totp.provisioning_uri(secret, current_user.email)
    return render_template(
        "accounts/second_factor.html", form=form, secret=secret, qr=Markup(qr_svg(uri))
    )


@bp.post("/account/second-factor/off")
@access.staff_required
def second_factor_off():
    """Turn the second factor off; it takes a current code, throttled as when signing in."""
    form = CodeForm()
    key = f"totp:{current_user.id}"
    if wait := throttle().wait(key):
        flash(wait_message(wait), "error")
        return redirect(url_for("accounts.account"))
    if form.validate_on_submit() and totp.accepted_step(current_user, form.code.data) is not None:
        throttle().succeeded(key)
        with write_transaction():
            me = db.session.get(Facilitator, current_user.id)
            me.totp_secret, me.totp_last_step = None, 0
        flash(_("Second factor off."), "success")
    else:
        throttle().failed(key)
        flash(_("This code is not right. Type the code your app shows now."), "error")
    return redirect(url_for("accounts.account"))
