"""Retention: a session's raw contributions purged a set time after it closed.

The instance's administrators set how many months the text of contributions
is kept after a session closes (:data:`palabre.settings.RETENTION_MONTHS`;
empty, the default, keeps everything); a session may keep its own period
(``Session.retention_months``: ``0`` keeps it for good). Once that time has
passed, :func:`purge_session` empties every contribution's text (``body``)
and structured fields (``data``) and rewrites the stored live events that
carried them, so that no replay brings them back.

What stays: the rows themselves (so the session's counts of contributions,
participants, dots and ratings stay true), the needs and actions harvested
from the session with their provenance rows and support figures (so a need
still reads "raised by N people in M sessions"), and ``Session.purged_at``,
which the backlog pages and printed plans use to say that N contributions
behind an item were purged on that date. A purged session's own pages show
these counts instead of the method's screens, whose code expects the text.

The purge is a write path like any other: it runs in short transactions of
:data:`BATCH` rows and lets other writers in between, so a room that is live
in another session is never held up for long. It runs from ``palabre purge``
and from ``palabre serve`` (:func:`purge_periodically`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from .database import write_transaction
from .events import TEXT_EVENTS
from .extensions import db
from .models import Contribution, Event, Session, Status, utcnow

log = logging.getLogger(__name__)

#: Rows emptied per write transaction: a few milliseconds each.
BATCH = 100
#: Event types whose data carry no participant's text, kept as they are by a purge.
TEXTLESS_EVENTS = ("phase.changed", "timer.changed", "votes.changed", "contribution.hidden")


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by whole calendar months, the day clamped to the month's end."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = datetime(year + month // 12, month % 12 + 1, 1)
    last_day = (following - datetime(year, month, 1)).days
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def instance_retention() -> int | None:
    """The instance's retention in months, or ``None`` when contributions are kept for good."""
    from .settings import RETENTION_MONTHS, instance_settings

    value = instance_settings()[RETENTION_MONTHS]
    return int(value) if value.isdigit() and int(value) > 0 else None


def retention_of(session: Session, instance_months: int | None) -> int | None:
    """Months ``session``'s contributions are kept after it closes, or ``None``: for good."""
    if session.retention_months is not None:
        return session.retention_months or None
    return instance_months


def purge_due_on(session: Session, instance_months: int | None) -> datetime | None:
    """When ``session``'s contributions are due to be purged, or ``None`` (never, or not closed)."""
    months = retention_of(session, instance_months)
    if months is None or session.closed_at is None or session.purged_at is not None:
        return None
    if session.status not in (Status.CLOSED, Status.ARCHIVED):
        return None
    return add_months(session.closed_at, months)


def sessions_due(now: datetime | None = None) -> list[Session]:
    """Closed or archived sessions whose retention has run out and that are not purged yet."""
    now = now or utcnow()
    instance_months = instance_retention()
    candidates = db.session.scalars(
        select(Session)
        .where(
            Session.purged_at.is_(None),
            Session.closed_at.is_not(None),
            Session.status.in_((Status.CLOSED, Status.ARCHIVED)),
        )
        .order_by(Session.closed_at, Session.id)
    ).all()
    return [
        session
        for session in candidates
        if (due := purge_due_on(session, instance_months)) is not None and due <= now
    ]


@dataclass
class Purged:
    """What a purge emptied in one session."""

    session_id: int
    contributions: int
    events: int


def _pause() -> None:
    """Let other greenlets (a room's writes) take the write lock between two batches."""
    time.sleep(0)


def purge_session(session_id: int, now: datetime | None = None) -> Purged:
    """Empty the text of every contribution of a session and of its stored events.

    Runs in batches of :data:`BATCH` rows, one write transaction each, with a
    pause between them; safe to run again after an interruption (what is
    empty stays empty) and by two processes at once. ``Session.purged_at``
    is set by the last transaction. Hidden contributions are emptied too.
    """
    emptied = rewritten = 0
    last_id = 0
    while True:
        with write_transaction():
            rows = db.session.scalars(
                select(Contribution)
                .where(Contribution.session_id == session_id, Contribution.id > last_id)
                .order_by(Contribution.id)
                .limit(BATCH)
            ).all()
            for contribution in rows:
                if contribution.body or contribution.data:
                    contribution.body = ""
                    contribution.data = {}
                    emptied += 1
        if not rows:
            break
        last_id = rows[-1].id
        _pause()
    last_id = 0
    while True:
        with write_transaction():
            events = db.session.scalars(
                select(Event)
                .where(Event.session_id == session_id, Event.id > last_id)
                .order_by(Event.id)
                .limit(BATCH)
            ).all()
            for event in events:
                rewritten += _forget_text(event)
        if not events:
            break
        last_id = events[-1].id
        _pause()
    with write_transaction():
        session = db.session.get(Session, session_id)
        if session.purged_at is None:
            session.purged_at = now or utcnow()
    return Purged(session_id, emptied, rewritten)


def _forget_text(event: Event) -> int:
    """Rewrite a stored event so that it carries no text; 1 when it changed, else 0."""
    if event.type in TEXT_EVENTS:
        contribution_id = (event.data or {}).get("id")
        event.type = "contribution.hidden"
        event.data = {"id": contribution_id, "hidden": True}
        return 1
    if event.type not in TEXTLESS_EVENTS and event.data:
        event.data = {}
        return 1
    return 0


def purge_due(now: datetime | None = None) -> list[Purged]:
    """Purge every session due (:func:`sessions_due`); returns what was emptied in each."""
    return [purge_session(session.id, now) for session in sessions_due(now)]


def purged_contributions(session: Session) -> int:
    """How many contributions a purged session had (their rows stay, emptied)."""
    return db.session.scalar(
        select(func.count()).select_from(Contribution).where(Contribution.session_id == session.id)
    )


def purge_periodically(app) -> None:
    """``palabre serve``'s background task: purge what is due soon after start, then regularly.

    The settings ``PURGE_FIRST_AFTER_S`` (a minute) and ``PURGE_EVERY_S`` (six
    hours) say when. Runs as a greenlet of its own, in an app context; a
    failure is logged and the next round tries again. Each worker of a
    multi-worker server runs it: a purge is idempotent, so two at once only
    repeat each other's work.
    """
    time.sleep(app.config["PURGE_FIRST_AFTER_S"])
    while True:
        with app.app_context():
            try:
                for purged in purge_due():
                    log.info(
                        "Purged session %d under the retention policy: %d contributions emptied",
                        purged.session_id,
                        purged.contributions,
                    )
            except Exception:
                log.exception("The retention purge failed; it runs again later")
            finally:
                db.session.remove()
        time.sleep(app.config["PURGE_EVERY_S"])


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Only list the sessions due, purge nothing.")
@with_appcontext
def purge_command(dry_run: bool) -> None:
    """Purge the contributions of sessions whose retention period has run out."""
    instance_months = instance_retention()
    due = sessions_due()
    if not due:
        policy = (
            f"{instance_months} months after a session closes"
            if instance_months
            else "kept for good unless a session sets its own period"
        )
        click.echo(f"No session is due for purging (contributions: {policy}).")
        return
    for session in due:
        line = (
            f"Session {session.id} “{session.title}”, closed {session.closed_at:%Y-%m-%d}: "
            f"{purged_contributions(session)} contributions"
        )
        if dry_run:
            click.echo(f"Would purge {line}.")
            continue
        purged = purge_session(session.id)
        click.echo(f"Purged {line} ({purged.events} stored events rewritten).")
    if dry_run:
        click.echo("Nothing was changed (--dry-run).")
