"""Accepting contributions and votes: the rules every method shares.

Phones (over Socket.IO), plain form posts and staff transcribing paper all
come through here, so the checks are the same whichever way a note arrives.
Writes are idempotent on the sender's ``client_id``: a resent write returns
what was stored the first time and stores nothing new.
"""

from __future__ import annotations

import uuid

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm.attributes import set_committed_value

from . import ratelimit
from .database import execute_core, insert_now, write_transaction
from .errors import Refused
from .events import (
    ALL,
    FACILITATORS,
    PROJECTOR,
    group_room,
    participant_room,
    record_event,
    scrub_contribution_events,
)
from .extensions import db
from .i18n import LANGUAGES, current_language
from .inputs import clean_text, is_clean, parse_int
from .methods import VOTE, ContributionKind, Method, contribute
from .models import Contribution, Participant, Session, Status, Vote
from .phases import current_phase, plan
from .plugin_host import get_method, plugin_host

MAX_CLIENT_ID = 64
#: Longest name of a contribution's field that is kept (a criterion's score).
MAX_FIELD_NAME = 60


def contribution_payload(contribution: Contribution) -> dict:
    """A contribution as live clients receive it. The body is plain text."""
    return {
        "id": contribution.id,
        "kind": contribution.kind,
        "body": contribution.body,
        "data": contribution.data or {},
        "group": contribution.group,
        "phase_index": contribution.phase_index,
        "transcribed": contribution.transcribed,
        "hidden": contribution.hidden,
        "reply_to": contribution.reply_to_id,
        "language": contribution.language,
    }


def visible(session: Session, **filters) -> list[Contribution]:
    """A session's contributions in order, hidden ones left out.

    ``filters`` are column values, e.g. ``kind="note", group="3"``.
    """
    query = select(Contribution).where(
        Contribution.session_id == session.id, Contribution.hidden.is_(False)
    )
    for name, value in filters.items():
        query = query.where(getattr(Contribution, name) == value)
    return db.session.scalars(query.order_by(Contribution.id)).all()


def vote_totals(session: Session) -> dict[int, int]:
    """Votes per contribution id in a session."""
    rows = db.session.execute(
        select(Vote.contribution_id, func.sum(Vote.value))
        .where(Vote.session_id == session.id)
        .group_by(Vote.contribution_id)
    )
    return {contribution_id: int(total) for contribution_id, total in rows}


def contribution_rooms(method: Method, contribution: Contribution) -> list[str]:
    """Who sees a contribution live: its group (or everyone), staff, projector.

    ``method`` is its session's. A ``staff_only`` kind goes to the staff,
    the projector and its sender only.
    """
    kind = method.contribution_kinds.get(contribution.kind)
    if kind and kind.staff_only:
        sender = (
            [participant_room(contribution.participant_id)] if contribution.participant_id else []
        )
        return [FACILITATORS, PROJECTOR, *sender]
    if contribution.group and not (kind and kind.seen_by_all):
        return [group_room(contribution.group), FACILITATORS, PROJECTOR]
    return [ALL, FACILITATORS, PROJECTOR]


def _kind(session: Session, kind_name: str) -> ContributionKind:
    kind = get_method(session.method).contribution_kinds.get(kind_name)
    if kind is None:
        raise Refused(_("This kind of contribution is not accepted here."))
    return kind


def _clean_body(kind: ContributionKind, body) -> str:
    body = clean_text(body).strip()
    if not kind.needs_text:
        body = body[: kind.max_length]
    elif not body:
        message = _("Write something before sending.")
        raise Refused(message, fields={"body": message})
    if len(body) > kind.max_length:
        raise Refused(_too_long(kind), fields={"body": _too_long(kind)})
    return body


def _clean_client_id(client_id) -> str:
    # Refused, not cleaned: a cleaned id would not match the same write resent.
    if (
        not isinstance(client_id, str)
        or not client_id
        or len(client_id) > MAX_CLIENT_ID
        or not is_clean(client_id)
    ):
        raise Refused(_("Your phone sent an incomplete message. Please try again."))
    return client_id


#: Looked for at every note: built once (building costs more than running it), on the
#: table's columns, to be run by :func:`execute_core`.
_STORED_ID = select(Contribution.__table__.c.id).where(
    Contribution.__table__.c.session_id == bindparam("session_id"),
    Contribution.__table__.c.client_id == bindparam("client_id"),
)


def _existing(session_id: int, client_id: str) -> Contribution | None:
    """The contribution stored under ``client_id`` in session ``session_id``, if any."""
    found = execute_core(_STORED_ID, {"session_id": session_id, "client_id": client_id}).scalar()
    return None if found is None else db.session.get(Contribution, found)


def _store(
    session: Session, contribution: Contribution, participant: Participant | None = None
) -> Contribution:
    """Insert and broadcast; on a concurrent duplicate, return the first copy.

    For a participant's contribution, the method's ``prepare_contribution``
    runs first, inside the same transaction. The same write resent while
    the first was on its way (a phone's outbox) may have passed the
    caller's checks: its client id is looked for here, under the write
    lock, before the method's rules, which would otherwise refuse the
    resend as a second report of what the first one stored. Nothing here
    reads ``session`` under the lock (a method's rules may): a staff
    member's is the ORM's, which the write transaction has expired, and
    reading it again is a query. A phone's session and participant are its
    worker's read-only copies (:mod:`palabre.connections`), confirmed under
    the lock.
    """
    method = get_method(session.method)
    with write_transaction():
        existing = _existing(contribution.session_id, contribution.client_id)
        if existing is None:
            if participant is not None:
                method.prepare_contribution(session, participant, contribution)
            insert_now(contribution)
            # Its relationships, as a loaded contribution has them, for the hooks below.
            set_committed_value(contribution, "session", session)
            set_committed_value(contribution, "participant", participant)
            record_event(
                session,
                "contribution.added",
                contribution_payload(contribution),
                contribution_rooms(method, contribution),
            )
    if existing is not None:
        return existing
    plugin_host().notify("contribution_accepted", session=session, contribution=contribution)
    return contribution


def accept(
    session: Session,
    participant: Participant,
    *,
    client_id: str,
    kind_name: str,
    body: str,
    reply_to=None,
    fields: dict | None = None,
) -> Contribution:
    """Store a participant's contribution and broadcast it.

    ``reply_to`` is the id of the contribution it answers, for a kind whose
    :attr:`~palabre.methods.ContributionKind.answers` allows it. ``fields``
    are the named texts sent along (an interview's answers); only the
    kind's declared :attr:`~palabre.methods.ContributionKind.fields` are
    kept, and they start the contribution's ``data``. Raises
    :class:`Refused`, with a message in the participant's language, when the
    session or current phase does not take this kind, the text is empty or
    too long, it answers nothing it may answer, the participant sends too
    fast, or the method's own rules say no. A ``client_id`` already stored
    returns the stored contribution, whatever the checks would say now: the
    phone is only resending something whose acknowledgement it missed.
    """
    client_id = _clean_client_id(client_id)
    try:
        kind = _kind(session, kind_name)
        _check_phase_takes(session, kind)
        body = _clean_body(kind, body)
        answered = _answered(session, kind, reply_to)
        sent_fields = _clean_fields(kind, fields)
        if kind.hosts_only and not participant.is_host:
            raise Refused(_("Only the table's host can send this."))
        method = get_method(session.method)
        refusal = method.check_contribution(
            session, participant, kind, {"body": body, "fields": sent_fields}
        )
        if refusal:
            raise Refused(refusal)
        _check_rate(participant)
    except Refused:
        # A resend of what is stored is answered as stored, whatever the checks now
        # say; looked for only on a refusal, so that a new note costs one query less
        # (_store looks again under the write lock).
        if (existing := _existing(session.id, client_id)) is not None:
            return existing
        raise
    contribution = Contribution(
        session_id=session.id,
        participant_id=participant.id,
        client_id=client_id,
        kind=kind.name,
        phase_index=session.phase_index,
        group=participant.group if kind.grouped else None,
        body=body,
        data=dict(sent_fields),
        reply_to_id=answered.id if answered else None,
        language=writing_language(session, participant),
    )
    return _store(session, contribution, participant)


def writing_language(session: Session, participant: Participant) -> str:
    """The language a phone writes in: the one it shows now (a phone may switch after
    joining), if the session offers it, else the one it joined in."""
    shown = current_language()
    return shown if shown in (session.languages or ()) else participant.language


def _clean_fields(kind: ContributionKind, fields) -> dict[str, str]:
    """The kind's declared fields that were sent, cleaned; too long is refused, not cut.

    A number or a yes/no a script sent becomes its text, as a form would send it.
    """
    if not kind.fields or not isinstance(fields, dict):
        return {}
    exact = {name for name in kind.fields if not name.endswith("*")}
    prefixes = tuple(name[:-1] for name in kind.fields if name.endswith("*"))
    cleaned = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not (
            name in exact or (prefixes and name.startswith(prefixes))
        ):
            continue
        if isinstance(value, bool | int | float):
            value = str(value).lower() if isinstance(value, bool) else str(value)
        if not isinstance(value, str):
            continue
        value = clean_text(value).strip()
        if len(value) > kind.max_length:
            raise Refused(_too_long(kind), fields={name[:MAX_FIELD_NAME]: _too_long(kind)})
        cleaned[name[:MAX_FIELD_NAME]] = value
    return cleaned


def _too_long(kind: ContributionKind) -> str:
    return ngettext(
        "This is too long: %(num)d character at most.",
        "This is too long: %(num)d characters at most.",
        kind.max_length,
    )


def _check_phase_takes(session: Session, kind: ContributionKind) -> None:
    """Refuse, saying why, a kind the session or its current phase does not take now."""
    if session.status != Status.LIVE:
        raise Refused(_("This session is not taking contributions now."))
    feature = contribute(kind.name)
    if current_phase(session).allowing(feature):
        return
    phases = plan(session)
    if any(phase.allowing(feature) for phase in phases[: session.phase_index]):
        raise Refused(_("This part of the session is over: your note was not added."))
    if any(phase.allowing(feature) for phase in phases[session.phase_index + 1 :]):
        raise Refused(_("“%(kind)s” opens later in the session.", kind=kind.title))
    raise Refused(_("“%(kind)s” is not taken in this part of the session.", kind=kind.title))


def _answered(session: Session, kind: ContributionKind, reply_to) -> Contribution | None:
    """The contribution a new one answers, checked; ``None`` when it answers none."""
    if reply_to in (None, ""):
        return None
    if not kind.answers:
        raise Refused(_("“%(kind)s” cannot answer another contribution.", kind=kind.title))
    target = db.session.get(Contribution, _int(reply_to))
    if (
        target is None
        or target.session_id != session.id
        or target.hidden
        or target.kind not in kind.answers
    ):
        raise Refused(_("What you are answering is not here any more."))
    return target


def transcribe(
    session: Session,
    *,
    client_id: str,
    kind_name: str,
    body: str,
    group: str | None,
    phase_index: int | None,
    language: str | None = None,
) -> Contribution:
    """Store a note that staff typed in from paper, marked as transcribed.

    Staff may transcribe into any group and any phase that has been reached,
    while the session is live or closed; the note stays anonymous.
    ``language`` is the card's (one of :data:`palabre.i18n.LANGUAGES`,
    anything else is stored as not known).
    """
    client_id = _clean_client_id(client_id)
    existing = _existing(session.id, client_id)
    if existing is not None:
        return existing
    kind = _kind(session, kind_name)
    if session.status not in (Status.OPEN, Status.LIVE, Status.CLOSED):
        raise Refused(_("This session does not take notes now."))
    try:
        phase_index = session.phase_index if phase_index in (None, "") else int(phase_index)
    except (TypeError, ValueError):
        phase_index = -1
    if not 0 <= phase_index <= min(session.phase_index, len(plan(session)) - 1):
        raise Refused(_("Choose a part of the session that has already started."))
    body = _clean_body(kind, body)
    contribution = Contribution(
        session_id=session.id,
        client_id=client_id,
        kind=kind.name,
        phase_index=phase_index,
        group=str(group) if kind.grouped and group not in (None, "") else None,
        body=body,
        data={},
        transcribed=True,
        language=language if language in LANGUAGES else None,
    )
    return _store(session, contribution)


def add_by_staff(
    session: Session, kind_name: str, body: str, data: dict | None = None
) -> Contribution:
    """Store and broadcast a contribution the session itself makes (a logged intervention).

    For :meth:`palabre.methods.Method.run_action` and
    :meth:`palabre.methods.Method.on_enter_phase` (a survey's statements):
    runs inside their write transaction, checks the kind and the text as for
    anyone, and is not marked transcribed. The ``contribution_accepted``
    hook is not called.
    """
    kind = _kind(session, kind_name)
    contribution = Contribution(
        session_id=session.id,
        client_id=f"staff:{uuid.uuid4().hex}",
        kind=kind.name,
        phase_index=session.phase_index,
        body=_clean_body(kind, body),
        data=dict(data or {}),
    )
    db.session.add(contribution)
    db.session.flush()
    record_event(
        session,
        "contribution.added",
        contribution_payload(contribution),
        contribution_rooms(get_method(session.method), contribution),
    )
    return contribution


def update_data(session: Session, contribution: Contribution, **changes) -> None:
    """Change structured fields of a contribution and broadcast ``contribution.changed``.

    For :meth:`palabre.methods.Method.run_action`: runs inside its write transaction.
    """
    # Reassign the dict so SQLAlchemy sees the JSON column change.
    contribution.data = {**(contribution.data or {}), **changes}
    record_event(
        session,
        "contribution.changed",
        contribution_payload(contribution),
        contribution_rooms(get_method(session.method), contribution),
    )


def set_hidden(session: Session, contribution_id, hidden: bool) -> Contribution:
    """Hide an abusive contribution everywhere at once, or restore it. Never deletes."""
    with write_transaction():
        contribution = db.session.get(Contribution, _int(contribution_id))
        if contribution is None or contribution.session_id != session.id:
            raise Refused(_("This contribution does not exist."))
        if contribution.hidden != hidden:
            contribution.hidden = hidden
            # A hidden text is not sent again, nor kept in the replay log.
            if hidden:
                scrub_contribution_events(session, contribution.id)
            payload = (
                {"id": contribution.id, "hidden": True}
                if hidden
                else contribution_payload(contribution)
            )
            record_event(
                session,
                "contribution.hidden" if hidden else "contribution.restored",
                payload,
                contribution_rooms(get_method(session.method), contribution),
            )
    return contribution


def _rating_kinds(session: Session) -> list[str]:
    kinds = get_method(session.method).contribution_kinds.values()
    return [kind.name for kind in kinds if kind.rating]


def votes_used(participant: Participant) -> int:
    """The dots a participant has given (ratings are not dots)."""
    return db.session.scalar(
        select(func.coalesce(func.sum(Vote.value), 0))
        .join(Contribution, Contribution.id == Vote.contribution_id)
        .where(
            Vote.participant_id == participant.id,
            Contribution.kind.not_in(_rating_kinds(participant.session)),
        )
    )


def _dots_used_and_given(
    session: Session, participant: Participant, contribution_id: int
) -> tuple[int, int]:
    """:func:`votes_used` and :func:`dots_given` in one query, for a vote on the hot path."""
    on_this = case((Vote.contribution_id == contribution_id, Vote.value), else_=0)
    used, mine = db.session.execute(
        select(func.coalesce(func.sum(Vote.value), 0), func.coalesce(func.sum(on_this), 0))
        .join(Contribution, Contribution.id == Vote.contribution_id)
        .where(
            Vote.participant_id == participant.id,
            Contribution.kind.not_in(_rating_kinds(session)),
        )
    ).one()
    return used, mine


def dots_given(participant: Participant, contribution_id: int) -> int:
    """The dots ``participant`` gives ``contribution_id`` now, dots taken back deducted."""
    return db.session.scalar(
        select(func.coalesce(func.sum(Vote.value), 0)).where(
            Vote.participant_id == participant.id, Vote.contribution_id == contribution_id
        )
    )


def vote_summary(contribution_id: int, scale: tuple[int, int] | None = None) -> dict:
    """What ``votes.changed`` says of a contribution: total, count and average.

    For a rating kind (``scale`` given), also the ``distribution``: how many
    people gave each value of the scale, every value present.
    """
    rows = db.session.execute(
        select(Vote.value, func.count(Vote.id))
        .where(Vote.contribution_id == contribution_id)
        .group_by(Vote.value)
    ).all()
    total = sum(value * n for value, n in rows)
    count = sum(n for _value, n in rows)
    average = round(total / count, 2) if count else None
    summary = {"id": contribution_id, "total": total, "count": count, "average": average}
    if scale is not None:
        given = dict(rows)
        low, high = scale
        summary["distribution"] = {str(v): given.get(v, 0) for v in range(low, high + 1)}
    return summary


def rating_summaries(session: Session) -> dict[int, dict]:
    """``{"count", "average"}`` of the ratings per contribution id in a session."""
    rows = db.session.execute(
        select(Vote.contribution_id, func.count(Vote.id), func.avg(Vote.value))
        .where(Vote.session_id == session.id)
        .group_by(Vote.contribution_id)
    )
    return {cid: {"count": n, "average": round(float(avg), 1)} for cid, n, avg in rows}


def my_ratings(participant: Participant) -> dict[int, int]:
    """The rating a participant gave, per contribution id."""
    rows = db.session.execute(
        select(Vote.contribution_id, Vote.value).where(Vote.participant_id == participant.id)
    )
    return dict(rows.all())


def vote(
    session: Session, participant: Participant, *, client_id: str, contribution_id, value=1
) -> dict:
    """Give one dot to a contribution, or rate it; return what the phone is told.

    For a contribution whose kind has a ``rating`` scale, the vote is a
    rating: ``value`` must be within the scale, a participant's new rating
    of the same contribution replaces the old one, and the result is
    ``{"rating": <the value kept>}``. Otherwise it is one dot (``value``
    1), or one of the participant's dots on it taken back (``value`` -1,
    stored as a -1 vote so that a resent take-back is recognised), and the
    result is ``{"left": <dots the participant has left>, "mine": <dots
    they now give this contribution>, "contribution": <its id>}``.

    Raises :class:`Refused` outside a voting phase, for a contribution not
    open to votes, for a rating off the scale, when no dot is left, or when
    taking back a dot the participant did not give. A resent ``client_id``
    changes nothing and gets the same kind of result.
    """
    client_id = _clean_client_id(client_id)
    method = get_method(session.method)
    budget = method.vote_budget(session.config)
    # The rate limit may yield to other phones: it runs before the transaction. A resend
    # of a vote already stored is answered as stored even when the phone is over its
    # limit; looked for only then, so that a new vote costs one query less.
    try:
        _check_rate(participant)
    except Refused:
        if (done := _resent_vote(participant, client_id, budget)) is not None:
            return done
        raise
    with write_transaction():
        if (done := _resent_vote(participant, client_id, budget)) is not None:
            return done
        if session.status != Status.LIVE or not current_phase(session).allowing(VOTE):
            raise Refused(_("Voting is not open now."))
        target = db.session.get(Contribution, _int(contribution_id))
        if (
            target is None
            or target.session_id != session.id
            or target.hidden
            or target.kind not in method.votable_kinds
        ):
            raise Refused(_("You cannot vote for this."))
        kind = method.contribution_kinds.get(target.kind)
        if kind is not None and kind.rating:
            return {"rating": _rate(session, participant, target, kind, client_id, value)}
        step = _int(value)
        if step not in (1, -1):
            raise Refused(_("You cannot vote for this."))
        used, mine = _dots_used_and_given(session, participant, target.id)
        if step == 1 and used >= budget:
            raise Refused(_("You have used all your dots."))
        if step == -1 and mine <= 0:
            raise Refused(_("You have no dot on this to take back."))
        db.session.add(
            Vote(
                session_id=session.id,
                participant_id=participant.id,
                contribution_id=target.id,
                client_id=client_id,
                value=step,
            )
        )
        db.session.flush()
        rooms = (
            [ALL] if method.phones_see_vote_totals(session.config) else [FACILITATORS, PROJECTOR]
        )
        record_event(session, "votes.changed", vote_summary(target.id), rooms)
        return {"left": budget - used - step, "mine": mine + step, "contribution": target.id}


def _check_rate(participant: Participant) -> None:
    """Refuse a participant who writes faster than ``RATE_LIMIT_WRITES``.

    May yield (a shared rate-limit store is on the network): never call it
    inside a write transaction.
    """
    if not ratelimit.allow(f"write:{participant.id}", current_app.config["RATE_LIMIT_WRITES"]):
        raise Refused(_("You are sending very fast. Wait a moment and send again."))


def _resent_vote(participant: Participant, client_id: str, budget: int) -> dict | None:
    """What :func:`vote` answers a resent ``client_id``, or ``None`` for a new one."""
    already = db.session.scalar(
        select(Vote).where(Vote.participant_id == participant.id, Vote.client_id == client_id)
    )
    if already is None:
        return None
    kind = get_method(participant.session.method).contribution_kinds.get(_vote_kind(already))
    if kind and kind.rating:
        return {"rating": already.value}
    return {
        "left": budget - votes_used(participant),
        "mine": dots_given(participant, already.contribution_id),
        "contribution": already.contribution_id,
    }


def _vote_kind(vote_: Vote) -> str:
    return db.session.scalar(
        select(Contribution.kind).where(Contribution.id == vote_.contribution_id)
    )


def _rate(session, participant, target, kind, client_id, value) -> int:
    """Store or replace a participant's rating; runs inside :func:`vote`'s transaction."""
    low, high = kind.rating
    value = _int(value)
    if not low <= value <= high:
        raise Refused(_("Choose a rating from %(low)d to %(high)d.", low=low, high=high))
    rating = db.session.scalar(
        select(Vote).where(Vote.participant_id == participant.id, Vote.contribution_id == target.id)
    )
    if rating is None:
        rating = Vote(
            session_id=session.id, participant_id=participant.id, contribution_id=target.id
        )
        db.session.add(rating)
    rating.value = value
    # The newest write's id, so that its resending is recognised.
    rating.client_id = client_id
    db.session.flush()
    record_event(session, "votes.changed", vote_summary(target.id, kind.rating), [ALL])
    return value


def _int(value) -> int:
    """An id or number a client sent, or -1 (which no id matches) for anything else."""
    return parse_int(value, default=-1)
