"""Who may do what: the one access check behind every staff page and socket event.

Three roles (:class:`palabre.models.AccountRole`): an **administrator** manages
accounts and instance settings, may run every session and works on the
whole backlog; a **facilitator** creates sessions and runs the ones they
own or co-run, and works on the backlog when the administrators allow it
(the instance setting :data:`palabre.settings.FACILITATORS_BACKLOG`); a
**guest** (an external facilitator invited for one evening) runs only the
sessions they were invited to, until the invitation's end. A disabled account can do nothing.

Everything goes through :func:`check`:

* a blueprint of staff pages calls :func:`protect` once; each of its
  routes is then checked before it runs, and a route with a
  ``session_id`` argument is also checked against that session;
* a route elsewhere (a plugin's page) uses :func:`admin_required`,
  :func:`facilitator_required`, :func:`staff_required`, or
  :func:`session_required` for a route with a ``session_id`` argument;
* the live layer asks :func:`may_run` for every facilitator socket and
  event.

A method's views and actions go through the core's routes and events, so a
new method is covered without writing anything. Staff requests that change
something, downloads and sign-ins are written to the audit log
(:func:`audit`), never with a participant's data; :data:`AUDIT_PHRASES` says
in words what each entry did.
"""

from __future__ import annotations

import functools
from datetime import datetime

from flask import abort, g, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import or_, select

from .database import write_transaction
from .extensions import db, login_manager
from .models import AccountRole, AuditEntry, CoFacilitator, Facilitator, Session, utcnow
from .plugin_host import plugin_host

#: What each level lets in, from the widest to the narrowest.
STAFF = "staff"  # any signed-in, enabled account, guests included
FACILITATOR = "facilitator"  # administrators and facilitators
ADMINISTRATOR = "administrator"  # administrators only
OWNER = "owner"  # a session's owner (a facilitator) or an administrator
#: Administrators, and facilitators while the instance setting lets them use the backlog.
BACKLOG = "backlog"
_ROLES = {
    STAFF: {AccountRole.ADMINISTRATOR, AccountRole.FACILITATOR, AccountRole.GUEST},
    FACILITATOR: {AccountRole.ADMINISTRATOR, AccountRole.FACILITATOR},
    ADMINISTRATOR: {AccountRole.ADMINISTRATOR},
    OWNER: {AccountRole.ADMINISTRATOR, AccountRole.FACILITATOR},
    BACKLOG: {AccountRole.ADMINISTRATOR, AccountRole.FACILITATOR},
}


def signed_in() -> Facilitator | None:
    """The signed-in, enabled account, or ``None``."""
    if current_user.is_authenticated and current_user.is_active:
        return current_user._get_current_object()
    return None


def has_level(facilitator: Facilitator | None, level: str) -> bool:
    """Whether ``facilitator``, an enabled account, holds ``level`` (STAFF, FACILITATOR, ...)."""
    if facilitator is None or facilitator.disabled:
        return False
    if level == BACKLOG and facilitator.role == AccountRole.FACILITATOR:
        return facilitators_use_backlog()
    return facilitator.role in _ROLES[level]


def facilitators_use_backlog() -> bool:
    """Whether the administrators let facilitators open and change the backlog."""
    from .settings import FACILITATORS_BACKLOG, instance_settings  # settings uses protect()

    return instance_settings()[FACILITATORS_BACKLOG] == "1"


def may_use_backlog() -> bool:
    """Template global: whether the signed-in account may open the backlog (:data:`BACKLOG`)."""
    return has_level(signed_in(), BACKLOG)


def may_run(facilitator: Facilitator | None, session: Session, now: datetime | None = None) -> bool:
    """Whether ``facilitator`` may run, see and print ``session``.

    True for an administrator, the session's owner (who created it) unless
    a guest, its co-facilitators until their access expires, and whoever
    may run its parent (a dialogue's facilitators run its meetings; an
    external facilitator invited to one meeting runs that one only).
    """
    if facilitator is None or facilitator.disabled:
        return False
    if facilitator.role == AccountRole.ADMINISTRATOR:
        return True
    if session.created_by_id == facilitator.id and facilitator.role != AccountRole.GUEST:
        return True
    now = now or utcnow()
    if any(
        co.facilitator_id == facilitator.id and (co.expires_at is None or co.expires_at > now)
        for co in session.co_facilitators
    ):
        return True
    return session.parent is not None and may_run(facilitator, session.parent, now)


def owns(facilitator: Facilitator | None, session: Session) -> bool:
    """Whether ``facilitator`` may choose who co-runs ``session``: its owner or an administrator."""
    return has_level(facilitator, ADMINISTRATOR) or (
        has_level(facilitator, FACILITATOR) and session.created_by_id == facilitator.id
    )


def sessions_run_by(facilitator: Facilitator):
    """A ``select(Session)`` of the sessions ``facilitator`` may run (:func:`may_run`).

    Sessions are nested one level deep at most (a dialogue and its meetings).
    """
    query = select(Session)
    if facilitator.role == AccountRole.ADMINISTRATOR:
        return query
    current = (
        select(CoFacilitator.session_id)
        .where(CoFacilitator.facilitator_id == facilitator.id)
        .where(or_(CoFacilitator.expires_at.is_(None), CoFacilitator.expires_at > utcnow()))
    )
    if facilitator.role == AccountRole.GUEST:
        run = Session.id.in_(current)
    else:
        run = or_(Session.created_by_id == facilitator.id, Session.id.in_(current))
    parents = select(Session.id).where(run)
    return query.where(or_(run, Session.parent_id.in_(parents)))


def check(level: str = STAFF, session_id: int | None = None) -> Session | None:
    """The access check: stop the request unless the signed-in account holds ``level``.

    ``level`` is :data:`STAFF`, :data:`FACILITATOR`, :data:`ADMINISTRATOR`,
    :data:`BACKLOG`, or :data:`OWNER` (with a session: its owner or an
    administrator). Nobody
    signed in is sent to the sign-in page; an account without the level
    gets 403. With ``session_id``, the session must exist (else 404) and the
    account must run it (:func:`may_run`; :func:`owns` for OWNER; else 403);
    the session is returned and kept as ``g.palabre_session``.
    """
    facilitator = signed_in()
    if facilitator is None:
        abort(login_manager.unauthorized())
    if not has_level(facilitator, level):
        abort(403)
    if session_id is None:
        return None
    session = db.session.get(Session, session_id) or abort(404)
    if not (owns(facilitator, session) if level == OWNER else may_run(facilitator, session)):
        abort(403)
    g.palabre_session = session
    return session


def protect(blueprint, level: str = STAFF) -> None:
    """Check every route of ``blueprint`` with :func:`check` before it runs.

    Routes with a ``session_id`` argument are also checked against that
    session. A route may ask for more with one of the decorators below.
    """

    blueprint.palabre_access = level  # as a decorated route's, for tests and tools to read

    @blueprint.before_request
    def check_access():
        session_id = (request.view_args or {}).get("session_id")
        check(level, session_id)
        if request.method == "POST":
            g.palabre_audit = True


def _required(level: str, with_session: bool):
    def decorator(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            check(level, kwargs.get("session_id") if with_session else None)
            if request.method == "POST":
                g.palabre_audit = True
            return view(*args, **kwargs)

        checked.palabre_access = level
        return checked

    return decorator


#: Route decorators: the route runs only for accounts that pass :func:`check`.
staff_required = _required(STAFF, with_session=False)
facilitator_required = _required(FACILITATOR, with_session=False)
admin_required = _required(ADMINISTRATOR, with_session=False)
#: For a route with a ``session_id`` argument: only who may run that session.
session_required = _required(STAFF, with_session=True)
#: The backlog's pages, prints and exports: administrators, and facilitators if allowed.
backlog_required = _required(BACKLOG, with_session=False)


# --- the audit log -------------------------------------------------------------

#: What the audit log says was done, by the code each entry is written with (a
#: route's endpoint, a facilitator's socket event, or a name given to
#: :func:`audit`): the past tense, the person who did it being the subject. A
#: built-in or installed method names its own routes' and facilitator actions' in
#: ``Method.audit_phrases``; an entry with no phrase shows its code alone.
AUDIT_PHRASES = {
    # Signing in, and one's own account
    "auth.login": _l("Signed in"),
    "auth.logout": _l("Signed out"),
    "auth.change_password": _l("Changed their password"),
    "auth.reset_password": _l("Set a new password with a reset link"),
    "accounts.second_factor": _l("Turned on their second factor"),
    "accounts.second_factor_off": _l("Turned off their second factor"),
    "invitations.accept": _l("Took up an invitation to run a session"),
    # Accounts and instance settings (administrators)
    "accounts.accounts": _l("Created an account"),
    "accounts.change_role": _l("Changed an account’s role"),
    "accounts.disable": _l("Disabled an account"),
    "accounts.reset_password": _l("Made a password reset link for an account"),
    "settings.edit": _l("Changed the instance settings"),
    # Sessions
    "sessions.create": _l("Created a session"),
    "sessions.edit_details": _l("Changed the session’s details"),
    "sessions.import_session": _l("Imported a session from a file"),
    "sessions.open_session": _l("Opened the session to participants"),
    "sessions.go_to_phase": _l("Moved the session to another part"),
    "phase.go": _l("Moved the session to another part"),
    "sessions.extend_timer": _l("Added time to the timer"),
    "timer.extend": _l("Added time to the timer"),
    "sessions.hide": _l("Hid a contribution"),
    "contribution.hide": _l("Hid a contribution"),
    "sessions.transcribe": _l("Typed in a note written on paper"),
    "contribution.transcribe": _l("Typed in a note written on paper"),
    "sessions.method_action": _l("Used one of the method’s tools"),
    "method.action": _l("Used one of the method’s tools"),
    "sessions.close": _l("Closed the session"),
    "sessions.reopen": _l("Reopened the session"),
    "sessions.archive": _l("Archived the session"),
    "role_links.new_link": _l("Made a new personal link"),
    "role_links.withdraw": _l("Withdrew a personal link"),
    # Who runs a session
    "team.add": _l("Added a co-facilitator"),
    "team.remove": _l("Removed a co-facilitator"),
    "team.invite": _l("Made an invitation link for an external facilitator"),
    "team.revoke": _l("Cancelled an invitation link"),
    # The backlog and the policy cycle
    "backlog.add_need": _l("Added a need"),
    "backlog.need": _l("Changed a need"),
    "backlog.merge": _l("Merged two needs"),
    "backlog.undo": _l("Undid the merging of two needs"),
    "backlog.new_action": _l("Added an action"),
    "backlog.action": _l("Changed an action"),
    "backlog.add_update": _l("Recorded progress on an action"),
    "backlog.from_session": _l("Harvested a session into the backlog"),
    "backlog.themes": _l("Added a theme"),
    "backlog.remove_theme": _l("Removed a theme"),
    "policy_cycle.assessment": _l("Updated the self-assessment"),
    "policy_cycle.import_csv": _l("Imported actions from a spreadsheet"),
    "policy_cycle.stakeholders": _l("Added a stakeholder"),
    "policy_cycle.stakeholder": _l("Changed a stakeholder"),
    # Prints and downloads
    "printing.report": _l("Printed the session report"),
    "printing.poster": _l("Printed the join poster"),
    "printing.job_pdf": _l("Downloaded a printed document"),
    "sessions.host_cards": _l("Printed the hosts’ cards"),
    "sessions.paper_cards": _l("Printed the paper cards"),
    "role_links.cards": _l("Printed the cards with personal links"),
    "sessions.export": _l("Exported the session to a file"),
    "join.qr_code_png": _l("Downloaded the join QR code"),
    "policy_cycle.action_plan": _l("Printed the action plan"),
    "policy_cycle.monitoring_report": _l("Printed the monitoring report"),
    "policy_cycle.assessment_pdf": _l("Printed the self-assessment"),
    "policy_cycle.export": _l("Exported the backlog to a file"),
}

#: Where an entry's detail says it went the other way: (code, detail key, value) -> phrase.
_AUDIT_PHRASES_REVERSED = {
    ("contribution.hide", "hidden", False): _l("Showed a hidden contribution again"),
    ("sessions.hide", "hidden", False): _l("Showed a hidden contribution again"),
    ("accounts.disable", "enabled", True): _l("Enabled an account again"),
}


#: The codes of a method's facilitator action, by socket and by form: the detail's
#: ``name`` says which action.
_METHOD_ACTIONS = ("method.action", "sessions.method_action")


def audit_phrase(
    action: str, detail: dict | None = None, session: Session | None = None
) -> str | None:
    """What the audit log entry ``action`` (with its ``detail``) says was done, or ``None``.

    A method action done in ``session`` (the entry's) is said by the phrase its
    method gives the action's name in ``audit_phrases``, else by the generic one.
    Otherwise looks in :data:`AUDIT_PHRASES`, then in each method's ``audit_phrases``;
    ``None`` for a code nobody named (a plugin's route without a phrase).
    """
    detail = detail or {}
    for (code, key, value), phrase in _AUDIT_PHRASES_REVERSED.items():
        if code == action and detail.get(key) == value:
            return phrase
    if action in _METHOD_ACTIONS and session is not None:
        # A method that is no longer installed has no phrases: the generic one is said.
        method = plugin_host().methods.get(session.method)
        name = detail.get("name")
        if method is not None and isinstance(name, str) and name in method.audit_phrases:
            return method.audit_phrases[name]
    if action in AUDIT_PHRASES:
        return AUDIT_PHRASES[action]
    for method in plugin_host().methods.values():
        if action in method.audit_phrases:
            return method.audit_phrases[action]
    return None


#: Fields of a facilitator's socket event worth keeping: never a text.
_AUDITED_FIELDS = ("name", "index", "minutes", "id", "hidden", "phase_index", "group", "kind")


def audit(
    action: str, session: Session | None = None, *, by: Facilitator | None = None, **detail
) -> None:
    """Write who (``by``, else the signed-in account) did ``action``, to ``session`` if any.

    ``detail`` holds staff-side facts only (ids, names of actions, phase
    indexes), never what a participant wrote. Runs its own write
    transaction: call it after the change, not inside its transaction.
    """
    facilitator = by or signed_in()
    with write_transaction():
        db.session.add(
            AuditEntry(
                facilitator_id=facilitator.id if facilitator else None,
                session_id=session.id if session else None,
                action=action[:80],
                detail=detail,
            )
        )


def audit_event(event: str, session: Session, data: dict) -> None:
    """Write a facilitator's socket event to the audit log, keeping only its staff-side fields."""
    detail = {
        key: data[key]
        for key in _AUDITED_FIELDS
        if isinstance(data.get(key), str | int | bool) and len(str(data[key])) <= 60
    }
    audit(event, session, **detail)


def audit_this(**detail) -> None:
    """Write this request to the audit log once it succeeds, with ``detail`` (staff-side facts).

    Checked staff POSTs and downloads are written without asking; a page that
    hands out something worth knowing about (printable cards with personal
    links) asks with this.
    """
    g.palabre_audit = True
    g.palabre_audit_detail = {**g.get("palabre_audit_detail", {}), **detail}


def audit_about(session: Session) -> None:
    """Write this request's audit entry as about ``session``, one it has just made.

    A checked request's entry names the session it checked; one that creates
    or imports a session had none to check, and its entry would name none.
    """
    g.palabre_session = session


#: The longest query value kept in the audit log (a filter such as a theme or a date).
_AUDITED_QUERY_CHARS = 40


def _download_name(response) -> str | None:
    """The file name of a download (a PDF, an export), or ``None`` for a page."""
    disposition = response.headers.get("Content-Disposition", "")
    _kind, _, name = disposition.partition("filename=")
    return name.strip('"')[:120] if name else None


def audit_request(response):
    """Write a checked staff request that succeeded to the audit log (``after_request``).

    Written: every checked staff POST, every download by a signed-in account
    (each printed PDF and export: who, which file, which filters), and the
    pages that ask with :func:`audit_this`.
    """
    if response.status_code >= 400:
        return response
    download = _download_name(response)
    if g.get("palabre_audit") or (download and signed_in() is not None):
        detail = {k: v for k, v in (request.view_args or {}).items() if k != "session_id"}
        if download:
            detail["file"] = download
            detail.update(
                (key, value)
                for key, value in request.args.items()
                if len(key) <= 20 and len(value) <= _AUDITED_QUERY_CHARS and key not in detail
            )
        detail.update(g.get("palabre_audit_detail", {}))
        audit(request.endpoint or "?", g.get("palabre_session"), **detail)
    return response


def _forbidden(_error):
    from flask import render_template

    return render_template("errors/forbidden.html"), 403


def session_owned_by_me(session: Session) -> bool:
    """Template global: whether the signed-in account may choose who runs ``session``."""
    return owns(signed_in(), session)


def init_app(app) -> None:
    """Write the audit log after each checked staff request; a page for refusals."""
    app.after_request(audit_request)
    app.register_error_handler(403, _forbidden)
    app.add_template_global(session_owned_by_me)
    app.add_template_global(may_use_backlog)
    app.add_template_global(audit_phrase)
