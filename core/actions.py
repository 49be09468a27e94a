"""Facilitator actions a method declares: calling the next person, logging what happened.

A method names its actions in ``Method.facilitator_actions`` and does them in
``Method.run_action``; the core checks who asks (a signed-in facilitator,
never a participant's socket), runs the action inside its write transaction
and broadcasts the events it returns. The live layer (``method.action``) and
plain form posts (``/sessions/<id>/actions/<name>``) both come through here.
"""

from __future__ import annotations

from flask_babel import gettext as _

from .database import write_transaction
from .errors import Refused
from .events import record_event
from .inputs import clean_text
from .models import Session, Status
from .plugin_host import get_method

MAX_FIELD = 4000


def clean_data(data: dict) -> dict:
    """Keep string values (and lists of strings), each cleaned and cut to a sane length.

    Numbers become strings as a form would send them; text passes through
    :func:`palabre.inputs.clean_text`, so a method stores no malformed text.
    """
    cleaned = {}
    for key, value in (data or {}).items():
        if key in ("csrf_token", "submit", "name"):
            continue
        if isinstance(value, list):
            cleaned[clean_text(key)] = [clean_text(item)[:MAX_FIELD] for item in value[:500]]
        elif value is not None:
            cleaned[clean_text(key)] = clean_text(value)[:MAX_FIELD]
    return cleaned


def run(session: Session, name: str, data: dict) -> None:
    """Run the method action ``name`` for a facilitator, and broadcast its events.

    Actions also run in a draft session, so that what a method prepares
    (an audit's services and scenarios) is ready before anyone joins.
    Raises :class:`Refused` when the method has no such action, the session
    is archived, or the method refuses.
    """
    method = get_method(session.method)
    if name not in method.facilitator_actions:
        raise Refused(_("This action does not exist."))
    with write_transaction():
        if session.status not in (Status.DRAFT, Status.OPEN, Status.LIVE, Status.CLOSED):
            raise Refused(_("This session is not running."))
        for type_, event_data, rooms in method.run_action(session, name, clean_data(data)) or ():
            record_event(session, type_, event_data, rooms)
