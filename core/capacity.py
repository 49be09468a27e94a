"""Capacity limits that keep one browser from filling the room's server.

A laptop serves a whole room. Without limits one cookie could hold hundreds
of sockets, each an open file, until no phone can connect any more; one
script could ask for QR codes or try codes as fast as it likes. Limits are
keyed on who is asking (a participant, a facilitator, an anonymous browser)
or on the session, never on an address: a whole venue shares one address.

Sockets are counted per owner with a Socket.IO room of the owner's own:
Socket.IO forgets a socket's rooms when it goes, so the count cannot drift
when a phone vanishes without saying goodbye. When an owner opens one socket
too many, the *oldest* one is closed, not the new one: a phone whose Wi-Fi
dropped reconnects at once, even while its dead sockets still wait for their
ping timeout, and a tab left open on another phone stops quietly (the
Socket.IO client does not reconnect after a server disconnect).

With several worker processes (``MESSAGE_QUEUE``) each process counts its
own sockets, so an owner may hold the cap once per process.
"""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user
from flask_socketio import disconnect, join_room

from .extensions import socketio
from .models import Participant

NAMESPACE = "/"
#: WSGI environment key of a callable that cuts the request's connection;
#: ``palabre serve`` provides it (see :class:`palabre.serve.PrivateHandler`).
HANG_UP = "palabre.hang_up"
#: Seconds a closed socket's client has to close its connection itself.
HANG_UP_GRACE_S = 1


def socket_owner(participant: Participant | None) -> str:
    """Whose socket this is: the participant's, else the signed-in facilitator's."""
    if participant is not None:
        return f"participant:{participant.id}"
    return facilitator_owner(current_user.id)


def facilitator_owner(facilitator_id: int) -> str:
    """The owner name of a facilitator account's sockets."""
    return f"facilitator:{facilitator_id}"


def owner_room(owner: str) -> str:
    """The Socket.IO room holding every socket of ``owner`` in this process."""
    return f"sockets:{owner}"


def socket_cap(owner: str) -> int:
    """How many sockets ``owner`` may hold at once (``SOCKETS_PER_*`` settings)."""
    if owner.startswith("participant:"):
        return current_app.config["SOCKETS_PER_PARTICIPANT"]
    return current_app.config["SOCKETS_PER_FACILITATOR"]


def owner_sockets(owner: str) -> list[str]:
    """The sockets ``owner`` holds in this process, oldest first."""
    return [
        sid
        for sid, _eio_sid in socketio.server.manager.get_participants(NAMESPACE, owner_room(owner))
    ]


def admit_socket(owner: str) -> list[str]:
    """Count the connecting socket (``request.sid``) as ``owner``'s.

    Call at the end of a successful ``connect`` handler. When ``owner`` then
    holds more sockets than its cap, its oldest connected ones are closed;
    returns their ids (empty when none was).
    """
    join_room(owner_room(owner))
    sockets = owner_sockets(owner)
    excess = sockets[: max(0, len(sockets) - socket_cap(owner))]
    closed = []
    for sid in excess:
        if sid == request.sid or not socketio.server.manager.is_connected(sid, NAMESPACE):
            continue  # still connecting: it meets the cap at its own admission
        transport = socketio.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        environ = socketio.server.environ.get(transport) or {}
        disconnect(sid=sid, namespace=NAMESPACE)
        socketio.start_background_task(_close_transport, transport, environ)
        closed.append(sid)
    return closed


def _close_transport(eio_sid: str | None, environ: dict) -> None:
    """Close a socket's Engine.IO transport, and cut its connection if it lingers.

    A well-behaved client closes its connection once told to go. A script
    need not: its WebSocket would keep two open files until the ping
    timeout. A WebSocket connection carries nothing else, so after a grace
    period it is cut; a connection that carried long-polling requests may be
    serving other requests of the browser, and is left alone.
    """
    if eio_sid is not None:
        socketio.server.eio.disconnect(eio_sid)
    hang_up = environ.get(HANG_UP)
    if hang_up is not None and environ.get("HTTP_UPGRADE", "").lower() == "websocket":
        socketio.sleep(HANG_UP_GRACE_S)
        hang_up()
