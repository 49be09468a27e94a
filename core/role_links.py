"""Personal links: how a table host, a connector or an evaluator gets their role.

A method declares its roles (:attr:`palabre.Method.roles`); the facilitator
hands each person a link of their own, as a QR code or a printed card.
Opening it on a phone gives that phone the role in the session, with no
account and no name: the link carries a short code such as ``C-03``. The
facilitator can withdraw a link at any moment; the phones that took it lose
the role at once (the role is read from the database on every request and
socket event), while what they already sent stays.

A role given ``per_group`` (a café table's host) has one active link per
group; making a new one withdraws the old. A session's per-group links are
made with the session, so the host cards are ready before the evening.
"""

from __future__ import annotations

import secrets

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import func, select, update

from . import access
from .database import write_transaction
from .events import current_participant
from .extensions import db
from .forms import ButtonForm
from .i18n import LANGUAGES, browser_language
from .methods import Role
from .models import Participant, RoleLink, Session, Status, utcnow
from .plugin_host import get_method

bp = Blueprint("role_links", __name__)

#: Sessions in which a link can be taken: a closed or archived session has
#: nothing left for a host, connector or evaluator to do.
TAKING_STATUSES = (Status.DRAFT, Status.OPEN, Status.LIVE)


def _role(session: Session, name: str) -> Role:
    role = get_method(session.method).roles.get(name)
    if role is None:
        raise ValueError(f"{session.method} has no role {name!r}")
    return role


def issue_role_link(session: Session, role_name: str, group: str | None = None) -> RoleLink:
    """Make a new personal link for ``role_name``; call inside a write transaction.

    For a role given per group, ``group`` must be one of the session's
    groups, and the group's previous link is withdrawn. Otherwise the link
    gets the next free code of the role (``C-01``, ``C-02``, ...).
    """
    role = _role(session, role_name)
    if role.per_group:
        labels = dict(get_method(session.method).groups(session.config))
        if group not in labels:
            raise ValueError(f"{group!r} is not a group of session {session.id}")
        for old in role_links_of(session, role_name, group=group):
            revoke_role_link(old)
        code = group
    else:
        group = None
        made = db.session.scalar(
            select(func.count())
            .select_from(RoleLink)
            .where(RoleLink.session_id == session.id, RoleLink.role == role_name)
        )
        prefix = role.code_prefix or role.name[:1].upper()
        code = f"{prefix}-{made + 1:02d}"
    link = RoleLink(
        session_id=session.id,
        role=role_name,
        group=group,
        code=code,
        key=secrets.token_urlsafe(16),
    )
    db.session.add(link)
    db.session.flush()
    return link


def issue_group_links(session: Session) -> None:
    """Give each group a link of each per-group role it lacks; inside a write transaction."""
    method = get_method(session.method)
    for role in method.roles.values():
        if not role.per_group:
            continue
        for group, _label in method.groups(session.config):
            if not role_links_of(session, role.name, group=group):
                issue_role_link(session, role.name, group)


def revoke_role_link(link: RoleLink) -> None:
    """Withdraw ``link``; inside a write transaction. Its phones lose the role at once."""
    if link.revoked_at is None:
        link.revoked_at = utcnow()
    db.session.execute(
        update(Participant)
        .where(Participant.role_link_id == link.id, Participant.role == link.role)
        .values(role=None)
    )


@bp.app_template_global()
def role_links_of(session: Session, role_name: str | None = None, *, group=None) -> list[RoleLink]:
    """The session's active links, of one role (and group) when named, oldest first."""
    query = select(RoleLink).where(RoleLink.session_id == session.id, RoleLink.revoked_at.is_(None))
    if role_name is not None:
        query = query.where(RoleLink.role == role_name)
    if group is not None:
        query = query.where(RoleLink.group == group)
    return list(db.session.scalars(query.order_by(RoleLink.id)))


@bp.app_template_global()
def role_link_url(link: RoleLink) -> str:
    """The link's full address, on the same network address as the join QR code."""
    from .join import base_url

    session = db.session.get(Session, link.session_id)
    return base_url() + url_for("role_links.take", code=session.code, key=link.key)


@bp.app_template_global()
def role_link_qr(link: RoleLink) -> Markup:
    """Inline SVG QR code of a personal link."""
    from .join import qr_svg

    return Markup(qr_svg(role_link_url(link)))


# --- the phone's side ---------------------------------------------------------


@bp.get("/j/<code>/r/<key>")
def take(code: str, key: str):
    """Open a personal link: this phone takes its role, then lands on the session.

    The key leaves the address bar at once (a redirect), so it stays out of
    the browser's history. A withdrawn link says so, in the phone's language.
    """
    from .join import add_participant, unknown_code

    link = db.session.scalar(select(RoleLink).where(RoleLink.key == key))
    session = db.session.get(Session, link.session_id) if link else None
    if session is None or session.code != code or session.status == Status.ARCHIVED:
        return unknown_code(code)
    if not link.active:
        return render_template("join/link_withdrawn.html", session=session), 410
    if session.status not in TAKING_STATUSES:
        return render_template("join/closed.html", session=session)
    participant = current_participant(session)
    if participant is None:
        # The language this phone reads its pages in (chosen, else the browser's), as the
        # join form picks it: the rubric and scenarios then come in it when written in it.
        language = (
            cookie.get("lang") or browser_language(LANGUAGES) or (session.languages or ["en"])[0]
        )
        add_participant(session, language, {"group": link.group}, role_link=link)
    else:
        with write_transaction():
            participant.role = link.role
            participant.role_link_id = link.id
            if link.group is not None:
                participant.group = link.group
    return redirect(url_for("join.join", code=session.code))


# --- the facilitator's side -----------------------------------------------------


def _facilitated_session(session_id: int) -> Session:
    return db.session.get(Session, session_id) or abort(404)


def _back_to_session(session: Session):
    return redirect(url_for("sessions.run", session_id=session.id) + "#role-links")


@bp.post("/sessions/<int:session_id>/links/<role_name>")
@access.session_required
def new_link(session_id: int, role_name: str):
    """Make a link for ``role_name`` (for a per-group role: a fresh one for ``group``)."""
    session = _facilitated_session(session_id)
    method = get_method(session.method)
    if role_name not in method.roles or not ButtonForm().validate_on_submit():
        abort(400)
    group = request.form.get("group") or None
    if method.roles[role_name].per_group and group not in dict(method.groups(session.config)):
        abort(400)
    with write_transaction():
        link = issue_role_link(session, role_name, group)
    flash(_("New link %(code)s made. The old one, if any, no longer works.", code=link.code))
    return _back_to_session(session)


@bp.post("/sessions/<int:session_id>/links/<int:link_id>/withdraw")
@access.session_required
def withdraw(session_id: int, link_id: int):
    """Withdraw a link: whoever opened it loses the role now; what they sent stays."""
    session = _facilitated_session(session_id)
    link = db.session.get(RoleLink, link_id)
    if link is None or link.session_id != session.id or not ButtonForm().validate_on_submit():
        abort(404)
    with write_transaction():
        revoke_role_link(link)
    flash(_("Link %(code)s withdrawn.", code=link.code), "success")
    return _back_to_session(session)


@bp.get("/sessions/<int:session_id>/links/<role_name>/cards")
@access.session_required
def cards(session_id: int, role_name: str):
    """Printable cards, one per active link of a role, each with its QR code.

    For a role used ``away`` from the venue, the page (not the print) warns
    while Palabre has no public address: the cards would lead phones to this
    computer on the local network.
    """
    session = _facilitated_session(session_id)
    method = get_method(session.method)
    role = method.roles.get(role_name) or abort(404)
    access.audit_this()  # printed cards carry the links: the log says who printed them
    return render_template(
        "join/role_cards.html",
        session=session,
        role=role,
        links=role_links_of(session, role_name),
        group_labels=dict(method.groups(session.config)),
        needs_public_address=role.away and not current_app.config.get("BASE_URL"),
    )
