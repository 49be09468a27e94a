"""The live layer: Socket.IO rooms, sequenced events, replay, and socket events.

See ``docs/live-protocol.md`` for the protocol as clients see it. In short:

* A socket connects with ``auth = {"session": <join code>, "view":
  "participant" | "facilitator" | "projector", "last_seq": <int>}``. A
  participant is recognised by the token cookie set by the join page; the
  other views need a signed-in facilitator.
* Every broadcast is ``event`` with ``{"seq", "type", "data"}``; ``seq``
  grows by one per session. Events are stored with the rooms they went to,
  and a socket that connects with ``last_seq`` gets what it missed.
* Every write carries a client-generated ``cid`` and is acknowledged only
  after its commit, with ``{"ok": true, ...}`` or ``{"ok": false, "error":
  <message in the sender's language>}``.
"""

from __future__ import annotations

import functools
import threading

from flask import current_app, request
from flask import session as cookie
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_socketio import join_room
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from . import access, actions, capacity, connections, contributions, phases, replay
from .auth import staff_socket_room
from .database import busy_message, write_transaction
from .errors import Refused, Unavailable
from .events import (
    ALL,
    FACILITATORS,
    PROJECTOR,
    group_room,
    participant_room,
    room,
)
from .extensions import db, socketio
from .inputs import is_clean, parse_int
from .join import participant_count
from .models import HandledRequest, Participant, Session, Status

#: The largest Socket.IO message accepted; a bigger one closes the connection.
#: The largest legitimate one is far smaller: a 2,000-character note, or a
#: facilitator action's few fields of at most 4,000 characters each.
MAX_MESSAGE_BYTES = 64 * 1024

# --- connection ---------------------------------------------------------


class SocketAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, read once per live socket instead of at each of its events.

    Flask-SocketIO runs each event of a socket in a request context made from
    the socket's handshake, where Flask opens the cookie session again
    (checking its signature, decoding it) only for Flask-SocketIO to replace
    it with the socket's own copy, kept in the handshake's environ since the
    first event (``saved_session``). That copy is what is opened instead.
    """

    def open_session(self, app, request):
        saved = request.environ.get("saved_session")
        return saved if saved is not None else super().open_session(app, request)

    def get_signing_serializer(self, app):
        """Flask's signing serializer, built once per app and keys, not at each open and save."""
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = app.extensions.get(SIGNING_SERIALIZER_KEY)
        if kept is None or kept[0] != keys:
            kept = (keys, super().get_signing_serializer(app))
            app.extensions[SIGNING_SERIALIZER_KEY] = kept
        return kept[1]


#: Where an app keeps its cookie's signing serializer, with the keys it was built from.
SIGNING_SERIALIZER_KEY = "palabre.signing_serializer"


def rooms_for(view: str, participant: Participant | None) -> list[str]:
    """The relative rooms a socket joins for its view."""
    if view == "participant":
        names = [ALL, participant_room(participant.id)]
        if participant.group:
            names.append(group_room(participant.group))
        return names
    return [ALL, FACILITATORS if view == "facilitator" else PROJECTOR]


@socketio.on("connect")
def on_connect(auth):
    """A phone, facilitator screen or projector connects.

    Refused (the client sees a connect error) when the session is unknown
    or archived, when a participant has not joined through the join page,
    or when a facilitator or projector view comes from an account that may
    not run the session (:func:`palabre.access.may_run`).
    """
    auth = auth if isinstance(auth, dict) else {}
    code, view = auth.get("session"), auth.get("view", "participant")
    if not isinstance(code, str) or not is_clean(code) or len(code) > 20:
        return False
    if view not in ("participant", "facilitator", "projector"):
        return False
    participant = None
    if view == "participant":
        session, participant = connections.session_and_phone(code)
    else:
        session = db.session.scalar(_SESSION_BY_CODE, {"code": code})
    if session is None or session.status == Status.ARCHIVED:
        return False
    if view == "participant":
        if participant is None:
            return False
    elif not access.may_run(access.signed_in(), session):
        return False
    else:
        # Closed by its worker's sweep once this access ends (palabre.auth.close_revoked_sockets).
        join_room(staff_socket_room(access.signed_in(), session.id))
    rooms = rooms_for(view, participant)
    for name in rooms:
        join_room(room(session.id, name))
    # The socket's own copy of the cookie session remembers who it is.
    cookie["live"] = {
        "session_id": session.id,
        "view": view,
        "participant_id": participant.id if participant else None,
    }
    _replay(session, rooms, auth.get("last_seq"))
    if view != "participant":
        # Head counts are not in the replay log: send the current one.
        envelope = {"type": "participants.changed", "data": {"count": participant_count(session)}}
        socketio.emit("event", envelope, to=request.sid, ignore_queue=True)
    capacity.admit_socket(capacity.socket_owner(participant))


def _replay(session: Session, rooms: list[str], last_seq) -> None:
    """Send this socket the events it missed since ``last_seq``."""
    last_seq = parse_int(last_seq)
    if last_seq is None or replay.nothing_after(session, last_seq):
        return
    missed = replay.missed(session, rooms, last_seq)
    if missed is None:
        socketio.emit("resync", {"seq": session.seq}, to=request.sid, ignore_queue=True)
        return
    replay.send(missed)


#: Asked at every connection: built once (building costs more than running it).
_SESSION_BY_CODE = select(Session).where(Session.code == bindparam("code"))


def _connection() -> tuple[Session | None, Participant | None, str]:
    """The session, participant (for a phone) and view this socket connected as, read afresh.

    A phone's writes use the rows its worker keeps instead (:func:`_as_participant`).
    """
    live = cookie.get("live") or {}
    session_id, participant_id = live.get("session_id") or 0, live.get("participant_id")
    if not participant_id:
        return db.session.get(Session, session_id), None, live.get("view", "")
    row = db.session.execute(
        connections.SESSION_AND_PARTICIPANT,
        {"session_id": session_id, "participant_id": participant_id},
    ).first()
    session, participant = row if row else (None, None)
    return session, participant, live.get("view", "")


def _as_participant(write):
    """``write(session, participant)`` for this socket's phone (see :mod:`palabre.connections`).

    Raises :class:`Refused` for a socket that is not a phone's, or whose
    participant or session is gone.
    """
    live = cookie.get("live") or {}
    session_id, participant_id = live.get("session_id"), live.get("participant_id")
    if not session_id or not participant_id:
        raise Refused(_("You are not part of this session."))
    return connections.as_participant(session_id, participant_id, write)


def _payload(data) -> dict:
    return data if isinstance(data, dict) else {}


def _text(data: dict, key: str) -> str:
    """A text field of a payload; ``""`` when it is missing or not text (``null``, a number)."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _refused(error: str, fields: dict[str, str] | None = None) -> dict:
    """A refusal's acknowledgement; ``fields``, when a form's fields are at fault, per field."""
    return {"ok": False, "error": error, **({"fields": fields} if fields else {})}


def _try_again(unavailable: Unavailable) -> dict:
    """The acknowledgement of a write the server could not take now: the phone resends it."""
    return {"ok": False, "error": unavailable.message, "retry": True}


def _incomplete() -> Refused:
    return Refused(_("This request is incomplete. Please try again."))


def one_payload(handler):
    """Call ``handler`` with the event's first argument only, or ``None`` when there is none.

    Clients send one payload per event; one that sends none or several gets
    the handler's answer all the same, not a ``TypeError``.
    """

    @functools.wraps(handler)
    def called(*args):
        return handler(args[0] if args else None)

    return called


@socketio.on("replay")
@one_payload
def on_replay(data):
    """A connected client fills a gap in the sequence numbers it received: ``{after}``.

    With several workers two events can cross on their way through the
    message queue, and a client also never receives the events of rooms it
    is not in; ``live.js`` waits a moment for a missing number, then asks.
    Answered with ``{"ok": true, "seq": <n>, "events": [...]}``: every event
    for this socket's rooms numbered after ``after`` up to ``n``, the
    session's number when asked (the numbers between that are not there
    went to other rooms); ``{"ok": false, "resync": true}`` when there are
    too many, and the page should reload.
    """
    session, participant, view = _connection()
    after = parse_int(_payload(data).get("after"))
    if session is None or after is None or (view == "participant" and participant is None):
        return _refused(_("This request is incomplete. Please try again."))
    # Checked again at each replay, as on connection: an archived session replays nothing,
    # and a staff socket whose access ended (its sweep not yet come) gets nothing more.
    if session.status == Status.ARCHIVED:
        return _refused(_("You are not part of this session."))
    if view != "participant" and not access.may_run(access.signed_in(), session):
        return _refused(_("Only a facilitator can do this."))
    # Read the session's number first: every event up to it is committed
    # (events commit in the order of their numbers), so the answer has no hole.
    upto = session.seq
    missed = replay.missed(session, rooms_for(view, participant), after, upto)
    if missed is None:
        return {"ok": False, "resync": True}
    return {"ok": True, "seq": upto, "events": [event.envelope for event in missed]}


# --- whatever else arrives --------------------------------------------------


@socketio.on_error_default
def on_unexpected_error(error: Exception):
    """Answer a socket event whose handler failed, so the sender is never left waiting.

    Flask-SocketIO sends this function's return value as the event's
    acknowledgement: a refusal in the sender's language, which the phone's
    outbox drops. A connection that failed is refused. The traceback is
    logged with the event's name only, never the client's address.
    """
    event = (getattr(request, "event", None) or {}).get("message", "?")
    if isinstance(error, PoolTimeout):
        # Every connection of this process's pool stayed taken for the pool's whole
        # timeout (a storm of phones on PostgreSQL): busy, nothing was stored.
        error = Unavailable(busy_message())
    if isinstance(error, Unavailable):
        # Busy or full: expected under load, nothing stored, the phone resends.
        current_app.logger.warning("Socket event %r deferred: %s", event, error.message)
        return False if event == "connect" else _try_again(error)
    current_app.logger.error("Socket event %r failed", event, exc_info=error)
    if event == "connect":
        return False
    return _refused(_("Palabre could not do this. Please try again later."))


@socketio.on("*")
def on_unknown_event(event, *_arguments):
    """An event nobody handles (a misspelt name, an older or newer client): refused.

    Without this handler Socket.IO would not acknowledge it, and a phone
    would keep it in its outbox and resend it forever.
    """
    current_app.logger.info("Unknown socket event %r refused", str(event)[:60])
    return _refused(_("Palabre does not know this request. Please reload the page."))


# --- participant writes ---------------------------------------------------


@socketio.on("contribute")
@one_payload
def on_contribute(data):
    """A participant sends a contribution: ``{cid, kind, body, reply_to?, <field>?...}``.

    The kind's declared ``fields`` are read from the payload's other keys.

    Acknowledged with ``{"ok": true, "id": <contribution id>, "data":
    <its structured fields>}`` after the commit (``data`` holds what the
    method filled in, such as a queue number); the ``contribution.added``
    event goes to the sender's group, the facilitators and the projector.
    """
    data = _payload(data)
    try:
        contribution = _as_participant(
            lambda session, participant: contributions.accept(
                session,
                participant,
                client_id=data.get("cid"),
                kind_name=_text(data, "kind"),
                body=_text(data, "body"),
                reply_to=data.get("reply_to"),
                fields=data,
            )
        )
    except Refused as refusal:
        return _refused(refusal.message, refusal.fields)
    return {"ok": True, "id": contribution.id, "data": contribution.data or {}}


@socketio.on("vote")
@one_payload
def on_vote(data):
    """A participant votes: ``{cid, contribution, value}``.

    ``value`` -1 takes back one of the participant's dots on it. Acknowledged
    with ``{"ok": true, "left": <dots left>, "mine": <their dots on it>,
    "contribution": <its id>}`` for a dot, or
    ``{"ok": true, "rating": <value kept>}`` for a rating (a contribution
    whose kind has a ``rating`` scale); the ``votes.changed`` event goes to
    everyone in the session.
    """
    data = _payload(data)
    try:
        result = _as_participant(
            lambda session, participant: contributions.vote(
                session,
                participant,
                client_id=data.get("cid"),
                contribution_id=data.get("contribution"),
                value=data.get("value", 1),
            )
        )
    except Refused as refusal:
        return _refused(refusal.message)
    return {"ok": True, **result}


# --- facilitator events ---------------------------------------------------


def facilitator_event(handler):
    """Refuse the event unless it comes from the socket of an account that runs the session.

    The check (:func:`palabre.access.may_run`) is made at every event, not
    only on connection: an account signed out, disabled, or no longer a
    co-facilitator is refused at once. What was done goes to the audit log.
    """

    @functools.wraps(handler)
    @one_payload
    def guarded(data):
        session, _participant, view = _connection()
        if (
            session is None
            or view not in ("facilitator", "projector")
            or session.status == Status.ARCHIVED
            or not access.may_run(access.signed_in(), session)
        ):
            return _refused(_("Only a facilitator can do this."))
        data = _payload(data)
        client_id = data.get("cid") or ""
        if not isinstance(client_id, str) or len(client_id) > 64 or not is_clean(client_id):
            return _refused(_incomplete().message)
        if not client_id:
            ack = _do(handler, session, data)
            if ack.get("ok"):
                access.audit_event(request.event["message"], session, data)
            return ack
        if (done := _handled(session, client_id)) is not None:
            return done.ack
        key = (session.id, client_id)
        if (first := _in_flight.get(key)) is not None:
            # The same request, resent while it is being done (two workers never see
            # both: one socket's events reach one worker): the first one's answer.
            first.done.wait(IN_FLIGHT_WAIT_S)
            return first.ack or _refused_for_now()
        _in_flight[key] = mine = _InFlight()
        try:
            mine.ack = _do(handler, session, data)
            if mine.ack.get("ok"):
                _remember(session, client_id, mine.ack)
                access.audit_event(request.event["message"], session, data)
            return mine.ack
        finally:
            del _in_flight[key]
            mine.done.set()

    return guarded


#: Seconds a resent facilitator request waits for the first one to be done.
IN_FLIGHT_WAIT_S = 30


class _InFlight:
    """A facilitator request under way in this process, and its answer once it has one."""

    def __init__(self):
        self.done = threading.Event()  # gevent's under `palabre serve`: waiting yields
        self.ack: dict | None = None


#: Facilitator requests under way in this process, by ``(session id, client id)``.
_in_flight: dict[tuple[int, str], _InFlight] = {}


def _do(handler, session: Session, data: dict) -> dict:
    """Run a facilitator event's handler; a refusal becomes its answer."""
    try:
        return handler(session, data)
    except Refused as refusal:
        return _refused(refusal.message)


def _refused_for_now() -> dict:
    """The answer to a resend whose first request failed: nothing done, send it again."""
    return {
        "ok": False,
        "error": _("Palabre could not do this. Please try again later."),
        "retry": True,
    }


def _handled(session: Session, client_id: str) -> HandledRequest | None:
    return db.session.scalar(
        select(HandledRequest).where(
            HandledRequest.session_id == session.id, HandledRequest.client_id == client_id
        )
    )


def _remember(session: Session, client_id: str, ack: dict) -> None:
    """Keep a facilitator request's acknowledgement, so a resend gets it again."""
    try:
        with write_transaction():
            db.session.add(HandledRequest(session_id=session.id, client_id=client_id, ack=ack))
    except IntegrityError:
        pass  # the same request, resent while it was being done: already kept


@socketio.on("phase.go")
@facilitator_event
def on_phase_go(session, data):
    """A facilitator moves the session to the phase at ``{index}``.

    Broadcasts ``phase.changed`` to everyone; acknowledged with the new index.
    """
    index = parse_int(data.get("index", session.phase_index + 1))
    if index is None:
        raise _incomplete()
    phases.go_to(session, index)
    return {"ok": True, "index": session.phase_index}


@socketio.on("timer.extend")
@facilitator_event
def on_timer_extend(session, data):
    """A facilitator adds ``{minutes}`` to the running timer; broadcasts ``timer.changed``."""
    minutes = parse_int(data.get("minutes", 1))
    if minutes is None:
        raise _incomplete()
    phases.extend_timer(session, minutes)
    return {"ok": True}


@socketio.on("contribution.hide")
@facilitator_event
def on_hide(session, data):
    """A facilitator hides (``{id, hidden: true}``) or restores a contribution.

    Broadcasts ``contribution.hidden`` or ``contribution.restored`` to everyone.
    """
    hidden = data.get("hidden", True) not in (False, 0, "0", "false")
    contributions.set_hidden(session, data.get("id"), hidden)
    return {"ok": True}


@socketio.on("contribution.transcribe")
@facilitator_event
def on_transcribe(session, data):
    """Staff type in a paper note: ``{cid, kind, body, group, phase_index, language}``.

    Stored as transcribed and anonymous, broadcast like a phone's note.
    """
    phase_index = data.get("phase_index")
    if phase_index not in (None, ""):
        phase_index = parse_int(phase_index, default=-1)  # -1: no such phase, refused
    contribution = contributions.transcribe(
        session,
        client_id=data.get("cid"),
        kind_name=_text(data, "kind"),
        body=_text(data, "body"),
        group=_text(data, "group") or None,
        phase_index=phase_index,
        language=_text(data, "language") or None,
    )
    return {"ok": True, "id": contribution.id}


@socketio.on("method.action")
@facilitator_event
def on_method_action(session, data):
    """A facilitator asks for one of the method's actions: ``{name, ...fields}``.

    The method does it inside the core's write transaction (see
    ``Method.run_action``) and its events are broadcast to the rooms it
    names; acknowledged with ``{"ok": true}``. A participant's socket is
    refused.
    """
    actions.run(session, _text(data, "name"), data)
    return {"ok": True}
