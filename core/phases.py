"""A session's plan of phases, and moving through it.

The current phase is explicit (``Session.phase_index``) and only a
facilitator moves it. Entering the first phase after the welcome makes the
session live; entering the last one closes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache

from flask_babel import get_locale
from flask_babel import gettext as _

from .database import write_transaction
from .errors import Refused
from .events import ALL, record_event
from .methods import Method, Phase
from .models import Session, Status, utcnow
from .plugin_host import get_method, plugin_host


def plan(session: Session) -> tuple[Phase, ...]:
    """The phases of ``session`` in order, from its method and configuration.

    Every write asks for the current phase; the plan is built once per
    method, configuration and language, not once per phone.
    """
    return _plan(get_method(session.method), _config_key(session.config), str(get_locale()))


#: Configurations' keys in :func:`_plan`, by the configuration object's id: the phones of
#: a session share one copy of it (:mod:`palabre.connections`), so each write need not
#: serialise it again. The object is kept with its key, so its id is not reused meanwhile;
#: a configuration is replaced, never changed in place (its JSON column would not store it).
_config_keys: dict[int, tuple[dict, str]] = {}
CONFIG_KEYS_KEPT = 256


def _config_key(config: dict) -> str:
    kept = _config_keys.get(id(config))
    if kept is not None and kept[0] is config:
        return kept[1]
    key = json.dumps(config, sort_keys=True, default=str)
    if len(_config_keys) >= CONFIG_KEYS_KEPT:
        _config_keys.pop(next(iter(_config_keys)))
    _config_keys[id(config)] = (config, key)
    return key


@lru_cache(maxsize=512)
def _plan(method: Method, config: str, language: str) -> tuple[Phase, ...]:
    # ``language`` is part of the key only: phase titles are translated.
    return tuple(method.phases(json.loads(config)))


def current_phase(session: Session) -> Phase:
    return plan(session)[session.phase_index]


def phase_payload(session: Session) -> dict:
    """What clients need to show the current phase."""
    phase = current_phase(session)
    question = phase.question
    return {
        "index": session.phase_index,
        "id": phase.id,
        "title": str(phase.title),
        "number": phase.number,
        # A text in each language is sent as its {language: text} object.
        "question": dict(question) if isinstance(question, Mapping) else question,
        "status": session.status,
        "timer_ends_at": session.timer_ends_at.isoformat() + "Z" if session.timer_ends_at else None,
    }


def go_to(session: Session, index: int) -> None:
    """Move ``session`` to the phase at ``index`` and tell everyone.

    A draft session may only go to its first phase, which opens it to
    participants. Asking for the phase the session is already in changes
    nothing, so a resent request is harmless. Raises :class:`Refused` when
    the session is closed or the index is outside the plan.
    """
    with write_transaction():
        phases = plan(session)
        running = session.status in (Status.OPEN, Status.LIVE)
        if not (running or (session.status == Status.DRAFT and index == 0)):
            raise Refused(_("This session is not running."))
        if not 0 <= index < len(phases):
            raise Refused(_("There is no such phase."))
        if running and index == session.phase_index:
            return
        previous = phases[session.phase_index] if running else None
        current = phases[index]
        now = utcnow()
        session.phase_index = index
        session.phase_started_at = now
        session.timer_ends_at = (
            now + timedelta(minutes=current.minutes) if current.minutes else None
        )
        if index == len(phases) - 1:
            session.status = Status.CLOSED
            session.closed_at = now
        elif index > 0:
            session.status = Status.LIVE
            session.started_at = session.started_at or now
        else:
            session.status = Status.OPEN
        for type_, data, rooms in get_method(session.method).on_enter_phase(session, current):
            record_event(session, type_, data, rooms)
        record_event(session, "phase.changed", phase_payload(session), [ALL])
    plugin_host().notify("phase_changed", session=session, previous=previous, current=current)


def extend_timer(session: Session, minutes: int) -> None:
    """Add ``minutes`` (1 to 30) to the current phase's timer, starting one if none runs."""
    with write_transaction():
        if session.status not in (Status.OPEN, Status.LIVE) or not 1 <= minutes <= 30:
            raise Refused(_("The timer cannot be changed now."))
        start = max(session.timer_ends_at or utcnow(), utcnow())
        session.timer_ends_at = start + timedelta(minutes=minutes)
        record_event(session, "timer.changed", phase_payload(session), [ALL])


def reopen(session: Session) -> None:
    """Reopen a closed session at the step before closing, and tell everyone.

    A closing click is not final: until the session is archived, the
    facilitator can bring it back to where it was, and phones take
    contributions again. Raises :class:`Refused` when the session is not
    closed (an archived session stays archived).
    """
    with write_transaction():
        if session.status != Status.CLOSED:
            raise Refused(_("Only a closed session can be reopened."))
        if session.purged_at is not None:
            raise Refused(_("Its contributions were purged: this session cannot be reopened."))
        index = max(len(plan(session)) - 2, 0)
        session.phase_index = index
        session.phase_started_at = utcnow()
        session.timer_ends_at = None
        session.closed_at = None
        session.status = Status.LIVE if index > 0 else Status.OPEN
        record_event(session, "phase.changed", phase_payload(session), [ALL])
    plugin_host().notify(
        "phase_changed",
        session=session,
        previous=plan(session)[-1],
        current=current_phase(session),
    )
