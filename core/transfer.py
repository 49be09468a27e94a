"""Moving a session between instances: one JSON file out, a new session in.

A facilitator who runs a session on a laptop downloads it
(:func:`export_session`, the run screen's "Export" link or ``palabre export``)
and an account of another instance imports the file (:func:`import_session`,
the "Import a session" page or ``palabre import``). The format is
documented in ``docs/export-format.md``; :data:`VERSION` is its version.

What goes in the file: the session with its method's configuration and
phase, its personal links without their keys, its participants as
anonymous rows (no token, nothing else: there is nothing else), its
contributions (hidden ones with their text and fields emptied, as in
every other place they are shown), votes and ratings, and the part of the
backlog that came from the session (its needs and actions, their
provenance and support, the stakeholders and custom themes they name),
plus what plugins add through the ``export_session`` hook. A session with
sessions of its own (a citizen dialogue's meetings) carries them, each with
its links, participants, contributions and votes, and the backlog part is
the whole family's. The live event log is not exported: it only serves
phones connected to the old instance.

An import checks the whole file before writing anything, then writes it in
one transaction: a new session and its own sessions (new ids, a new join
code when one is taken, new link keys, new participant tokens nobody
holds), with every reference remapped, then the ``import_session`` hook, which lets plugins
remap the ids they keep in JSON or restore their own rows. Nothing already
on the instance is changed: stakeholders and themes of the same name are
reused as they are, others are added. A file imported once is refused the
second time (by its ``export_id``), unless it is imported as a copy.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .concurrency import off_the_loop
from .database import write_transaction
from .errors import Refused
from .extensions import db
from .i18n import LANGUAGES
from .inputs import clean_json, clean_text
from .join import new_join_code
from .models import (
    Action,
    ActionSource,
    ActionUpdate,
    Contribution,
    CustomTheme,
    Facilitator,
    Need,
    NeedSource,
    Participant,
    RoleLink,
    Session,
    Stakeholder,
    Status,
    Theme,
    Vote,
    hash_token,
    utcnow,
)
from .plugin_host import plugin_host

#: What the file says it is, and the version of its format.
FORMAT = "palabre-session"
VERSION = 2
#: Older versions an import still reads (see :func:`_upgrade`).
READABLE_VERSIONS = (1, VERSION)
#: The largest file an import reads, in bytes (the ``IMPORT_MAX_BYTES`` setting overrides it).
IMPORT_MAX_BYTES = 30 * 1024 * 1024


class ImportRefused(Refused):
    """A file that cannot be imported; ``message`` says why, in the reader's language."""


class ExportRefused(Refused):
    """A session that cannot be exported on its own; ``message`` says why."""


# --- export ------------------------------------------------------------------------------


def _when(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _support(source, held: set[int], position: dict[int, int]) -> dict:
    """A source's support, its session (a ``position`` in the file) and its contribution
    when the file holds it (``held``)."""
    return {
        "session": position[source.session_id],
        "contribution": source.contribution_id if source.contribution_id in held else None,
        "people": source.people,
        "dots": source.dots,
        "rating_sum": source.rating_sum,
        "rating_count": source.rating_count,
    }


def session_family(session: Session) -> list[Session]:
    """``session`` then the sessions of its own (a dialogue's meetings), oldest first."""
    children = db.session.scalars(
        select(Session).where(Session.parent_id == session.id).order_by(Session.id)
    ).all()
    return [session, *children]


def family_backlog(session_ids: list[int]) -> tuple[list[Need], list[Action]]:
    """The needs with provenance in these sessions (not merged away), and the actions they concern.

    An action concerns them when it was proposed from one, addresses one of
    those needs ("you said, we did"), or was evaluated with one as evidence
    (an audit's agreed finding).
    """
    needs = db.session.scalars(
        select(Need)
        .where(
            Need.merged_into_id.is_(None),
            Need.id.in_(select(NeedSource.need_id).where(NeedSource.session_id.in_(session_ids))),
        )
        .order_by(Need.id)
    ).all()
    need_ids = [need.id for need in needs]
    actions = db.session.scalars(
        select(Action)
        .where(
            or_(
                Action.id.in_(
                    select(ActionSource.action_id).where(ActionSource.session_id.in_(session_ids))
                ),
                Action.needs.any(Need.id.in_(need_ids)),
                Action.updates.any(ActionUpdate.evidence_session_id.in_(session_ids)),
            )
        )
        .order_by(Action.id)
    ).all()
    return needs, actions


def _session_part(session: Session) -> dict:
    """One session of the file: its record, links, participants, contributions, votes, plugins."""
    rows = lambda model: db.session.scalars(  # noqa: E731
        select(model).where(model.session_id == session.id).order_by(model.id)
    ).all()
    plugins: dict = {}
    for part in plugin_host().hook.export_session(session=session):
        if part:
            plugins.update(part)
    return {
        "session": {
            "method": session.method,
            "title": session.title,
            "code": session.code,
            "status": session.status,
            "config": session.config or {},
            "languages": session.languages or [],
            "venue": session.venue,
            "starts_at": _when(session.starts_at),
            "wifi_name": session.wifi_name,
            "wifi_password": session.wifi_password,
            "phase_index": session.phase_index,
            "phase_started_at": _when(session.phase_started_at),
            "timer_ends_at": _when(session.timer_ends_at),
            "created_at": _when(session.created_at),
            "started_at": _when(session.started_at),
            "closed_at": _when(session.closed_at),
            "purged_at": _when(session.purged_at),
            "retention_months": session.retention_months,
        },
        "role_links": [
            {
                "id": link.id,
                "role": link.role,
                "group": link.group,
                "code": link.code,
                "created_at": _when(link.created_at),
                "revoked_at": _when(link.revoked_at),
            }
            for link in rows(RoleLink)
        ],
        "participants": [
            {
                "id": participant.id,
                "language": participant.language,
                "group": participant.group,
                "role": participant.role,
                "role_link": participant.role_link_id,
                "state": participant.state or {},
                "joined_at": _when(participant.joined_at),
            }
            for participant in rows(Participant)
        ],
        "contributions": [
            {
                "id": c.id,
                "participant": c.participant_id,
                "client_id": c.client_id,
                "kind": c.kind,
                "phase_index": c.phase_index,
                "group": c.group,
                # A hidden contribution is kept for the counts and the provenance, never its text.
                "body": "" if c.hidden else c.body,
                "data": {} if c.hidden else (c.data or {}),
                "transcribed": c.transcribed,
                "language": c.language,
                "hidden": c.hidden,
                "reply_to": c.reply_to_id,
                "created_at": _when(c.created_at),
            }
            for c in rows(Contribution)
        ],
        "votes": [
            {
                "participant": v.participant_id,
                "contribution": v.contribution_id,
                "client_id": v.client_id,
                "value": v.value,
                "created_at": _when(v.created_at),
            }
            for v in rows(Vote)
        ],
        "plugins": plugins,
    }


def export_session(session: Session) -> dict:
    """Everything the file holds about ``session`` and its own sessions (see the module).

    A session that belongs to another (a dialogue's meeting) does not travel
    alone: :class:`ExportRefused` says to export the one it belongs to.
    """
    if session.parent_id is not None:
        raise ExportRefused(
            _(
                "This session is part of “%(title)s” and travels with it: export that one.",
                title=session.parent.title,
            )
        )
    family = session_family(session)
    position = {member.id: n for n, member in enumerate(family)}
    needs, actions = family_backlog(list(position))
    stakeholders: dict[int, Stakeholder] = {}
    for action in actions:
        reporters = [update.reported_by for update in action.updates]
        for stakeholder in (action.owner, *action.partners, *reporters):
            if stakeholder is not None:
                stakeholders[stakeholder.id] = stakeholder
    theme_keys = {need.theme for need in needs}
    themes = db.session.scalars(select(CustomTheme).where(CustomTheme.key.in_(theme_keys))).all()
    exported_needs = {need.id for need in needs}
    held = set(
        db.session.scalars(
            select(Contribution.id).where(Contribution.session_id.in_(list(position)))
        )
    )

    def support(sources) -> list[dict]:
        return [_support(s, held, position) for s in sources if s.session_id in position]

    return {
        "format": FORMAT,
        "version": VERSION,
        "export_id": uuid.uuid4().hex,
        "exported_at": _when(utcnow()),
        **_session_part(session),
        "children": [_session_part(child) for child in family[1:]],
        "themes": [{"key": t.key, "label": t.label, "keywords": t.keywords} for t in themes],
        "stakeholders": [
            {
                "id": s.id,
                "name": s.name,
                "kind": s.kind,
                "role": s.role,
                "already_involved": s.already_involved,
                "interest": s.interest,
                "influence": s.influence,
                "knowledge": s.knowledge,
                "how_to_involve": s.how_to_involve,
            }
            for s in stakeholders.values()
        ],
        "needs": [
            {
                "id": need.id,
                "title": need.title,
                "description": need.description,
                "theme": need.theme,
                "created_at": _when(need.created_at),
                "sources": support(need.sources),
            }
            for need in needs
        ],
        "actions": [
            {
                "id": action.id,
                "title": action.title,
                "objective": action.objective,
                "indicator": action.indicator,
                "indicator_baseline": action.indicator_baseline,
                "indicator_target": action.indicator_target,
                "indicator_unit": action.indicator_unit,
                "owner": action.owner_id,
                "partners": [p.id for p in action.partners],
                "budget_amount": action.budget_amount,
                "budget_currency": action.budget_currency,
                "in_kind": action.in_kind,
                "start_date": _when(action.start_date),
                "end_date": _when(action.end_date),
                "status": action.status,
                "created_at": _when(action.created_at),
                "needs": [n.id for n in action.needs if n.id in exported_needs],
                "sources": support(action.sources),
                "updates": [
                    {
                        "kind": u.kind,
                        "on_date": _when(u.on_date),
                        "progress": u.progress,
                        "body": u.body,
                        "reported_by": u.reported_by_id,
                        "method": u.method,
                        # The session it was evaluated with, when the file holds it.
                        "evidence_session": position.get(u.evidence_session_id),
                        # The contribution it rests on (an audit's agreed finding), if held.
                        "evidence": u.evidence_contribution_id
                        if u.evidence_contribution_id in held
                        else None,
                    }
                    for u in action.updates
                ],
            }
            for action in actions
        ],
    }


def export_json(session: Session) -> bytes:
    """The export file's bytes: UTF-8 JSON, readable, Arabic and French left as they are."""
    return json.dumps(export_session(session), ensure_ascii=False, indent=1).encode()


# --- checking a file ----------------------------------------------------------------------

# Field checkers: each takes a value and returns it (converted) or raises ValueError.


def _text(limit: int | None = None) -> Callable:
    def check(value):
        if not isinstance(value, str) or (limit is not None and len(value) > limit):
            raise ValueError
        return value

    return check


def _optional(check: Callable) -> Callable:
    return lambda value: None if value is None else check(value)


def _integer(value):
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**62:
        raise ValueError
    return value


def _number(value):
    if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) >= 1e15:
        raise ValueError
    return float(value)


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError
    return value


def _moment(value):
    if not isinstance(value, str):
        raise ValueError
    return datetime.fromisoformat(value).replace(tzinfo=None)


def _day(value):
    if not isinstance(value, str):
        raise ValueError
    return date.fromisoformat(value)


def _object(value):
    if not isinstance(value, dict):
        raise ValueError
    return value


def _list_of(check: Callable) -> Callable:
    def checked(value):
        if not isinstance(value, list):
            raise ValueError
        return [check(item) for item in value]

    return checked


_TEXT = _text()
SCHEMA: dict[str, dict[str, Callable]] = {
    "session": {
        "method": _text(60),
        "title": _text(200),
        "code": _text(12),
        "status": _text(12),
        "config": _object,
        "languages": _list_of(_text(12)),
        "venue": _text(200),
        "starts_at": _optional(_moment),
        "wifi_name": _text(100),
        "wifi_password": _text(100),
        "phase_index": _integer,
        "phase_started_at": _optional(_moment),
        "timer_ends_at": _optional(_moment),
        "created_at": _moment,
        "started_at": _optional(_moment),
        "closed_at": _optional(_moment),
        "purged_at": _optional(_moment),
        "retention_months": _optional(_integer),
    },
    "role_links": {
        "id": _integer,
        "role": _text(30),
        "group": _optional(_text(40)),
        "code": _text(20),
        "created_at": _moment,
        "revoked_at": _optional(_moment),
    },
    "participants": {
        "id": _integer,
        "language": _text(12),
        "group": _optional(_text(40)),
        "role": _optional(_text(30)),
        "role_link": _optional(_integer),
        "state": _object,
        "joined_at": _moment,
    },
    "contributions": {
        "id": _integer,
        "participant": _optional(_integer),
        "client_id": _text(64),
        "kind": _text(40),
        "phase_index": _integer,
        "group": _optional(_text(40)),
        "body": _TEXT,
        "data": _object,
        "transcribed": _boolean,
        "language": _optional(_text(12)),
        "hidden": _boolean,
        "reply_to": _optional(_integer),
        "created_at": _moment,
    },
    "votes": {
        "participant": _integer,
        "contribution": _integer,
        "client_id": _text(64),
        "value": _integer,
        "created_at": _moment,
    },
    "themes": {"key": _text(40), "label": _text(80), "keywords": _TEXT},
    "stakeholders": {
        "id": _integer,
        "name": _text(200),
        "kind": _text(40),
        "role": _TEXT,
        "already_involved": _boolean,
        "interest": _integer,
        "influence": _integer,
        "knowledge": _TEXT,
        "how_to_involve": _TEXT,
    },
    "sources": {
        "session": _integer,
        "contribution": _optional(_integer),
        "people": _integer,
        "dots": _integer,
        "rating_sum": _number,
        "rating_count": _integer,
    },
    "needs": {
        "id": _integer,
        "title": _text(200),
        "description": _TEXT,
        "theme": _text(40),
        "created_at": _moment,
        "sources": _list_of(_object),
    },
    "updates": {
        "kind": _text(20),
        "on_date": _day,
        "progress": _optional(_number),
        "body": _TEXT,
        "reported_by": _optional(_integer),
        "method": _text(200),
        "evidence_session": _optional(_integer),
        "evidence": _optional(_integer),
    },
    "actions": {
        "id": _integer,
        "title": _text(200),
        "objective": _TEXT,
        "indicator": _TEXT,
        "indicator_baseline": _optional(_number),
        "indicator_target": _optional(_number),
        "indicator_unit": _text(40),
        "owner": _optional(_integer),
        "partners": _list_of(_integer),
        "budget_amount": _optional(_number),
        "budget_currency": _text(3),
        "in_kind": _TEXT,
        "start_date": _optional(_day),
        "end_date": _optional(_day),
        "status": _text(20),
        "created_at": _moment,
        "needs": _list_of(_integer),
        "sources": _list_of(_object),
        "updates": _list_of(_object),
    },
}
#: The lists of records each session of a file holds, each checked against ``SCHEMA``.
SESSION_LISTS = ("role_links", "participants", "contributions", "votes")
#: The lists of records of the backlog part, once per file.
BACKLOG_LISTS = ("themes", "stakeholders", "needs", "actions")


def _record(kind: str, value, where: str) -> dict:
    """``value`` checked against ``SCHEMA[kind]``; else :class:`ImportRefused` naming ``where``."""
    if not isinstance(value, dict):
        raise ImportRefused(_("The file is damaged: %(where)s is not a record.", where=where))
    record = {}
    for name, check in SCHEMA[kind].items():
        if name not in value:
            raise ImportRefused(
                _("The file is damaged: %(where)s has no “%(name)s”.", where=where, name=name)
            )
        try:
            record[name] = check(value[name])
        except (ValueError, TypeError):
            raise ImportRefused(
                _(
                    "The file is damaged: “%(name)s” of %(where)s is not valid.",
                    where=where,
                    name=name,
                )
            ) from None
    return record


def _json_or_none(raw: bytes):
    """The JSON value in ``raw``, or ``None`` when it is not UTF-8 JSON (or is ``null``)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def parse_export(raw: bytes) -> dict:
    """Read and check an export file; raises :class:`ImportRefused` saying what is wrong.

    Checks its size, that it is JSON, its format and version, every record's
    fields, and that every reference points at a record of the file. Reads
    no database; the checks that do are in :func:`import_session`.
    """
    limit = current_app.config.get("IMPORT_MAX_BYTES", IMPORT_MAX_BYTES)
    if len(raw) > limit:
        raise ImportRefused(
            _("This file is too big: %(size)d MB at most.", size=limit // (1024 * 1024))
        )
    # Decoding megabytes takes a while: on a thread, so the rooms go on meanwhile.
    document = off_the_loop(_json_or_none, raw)
    if document is None:
        raise ImportRefused(_("This is not a Palabre session file: it is not JSON."))
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportRefused(_("This is not a Palabre session file."))
    if document.get("version") not in READABLE_VERSIONS:
        raise ImportRefused(
            _(
                "This file is in version %(version)s of the format; this Palabre reads "
                "version %(ours)d. Export the session again with the same version of Palabre.",
                version=str(document.get("version"))[:20],
                ours=VERSION,
            )
        )
    export_id = document.get("export_id")
    if not isinstance(export_id, str) or not export_id.isalnum() or len(export_id) != 32:
        raise ImportRefused(_("The file is damaged: %(where)s is not valid.", where="export_id"))
    _upgrade(document)
    children = document.get("children")
    if not isinstance(children, list):
        raise ImportRefused(_("The file is damaged: %(where)s is not valid.", where="children"))
    checked = {
        "export_id": export_id,
        **_part(document, ""),
        "children": [_part(child, f"children[{n}].") for n, child in enumerate(children)],
    }
    for name in BACKLOG_LISTS:
        checked[name] = _records(document, name, name)
    for need in checked["needs"]:
        need["sources"] = [_record("sources", s, "needs.sources") for s in need["sources"]]
    for action in checked["actions"]:
        action["sources"] = [_record("sources", s, "actions.sources") for s in action["sources"]]
        action["updates"] = [_record("updates", u, "actions.updates") for u in action["updates"]]
    _check_references(checked)
    return checked


def _upgrade(document: dict) -> None:
    """Bring a file of version 1 to the current shape, in place.

    Version 1 held one session: no ``children``, its sources without a
    ``session`` (all this one) and ``evidence_is_this_session`` where
    updates now say ``evidence_session``. Values of the wrong type are left
    for the checks to refuse.
    """
    if document.get("version") != 1:
        return
    document.setdefault("children", [])
    for item in (*_dicts(document.get("needs")), *_dicts(document.get("actions"))):
        for source in _dicts(item.get("sources")):
            source.setdefault("session", 0)
        for entry in _dicts(item.get("updates")):
            if "evidence_is_this_session" in entry:
                entry["evidence_session"] = 0 if entry.pop("evidence_is_this_session") else None


def _dicts(value) -> list[dict]:
    """The dicts of ``value`` when it is a list, else nothing."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _records(document, name: str, where: str) -> list[dict]:
    """The list ``name`` of ``document``, each record checked; refused when it is not a list."""
    items = document.get(name) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ImportRefused(_("The file is damaged: it has no list of %(name)s.", name=where))
    return [_record(name, item, f"{where}[{n}]") for n, item in enumerate(items)]


def _part(part, where: str) -> dict:
    """One session of the file, checked: its record, its lists of records and its plugins."""
    if not isinstance(part, dict):
        raise ImportRefused(_("The file is damaged: %(where)s is not a record.", where=where[:-1]))
    checked = {
        "session": _record("session", part.get("session"), f"{where}session"),
        "plugins": part.get("plugins", {}),
    }
    if not isinstance(checked["plugins"], dict):
        raise ImportRefused(
            _("The file is damaged: %(where)s is not valid.", where=f"{where}plugins")
        )
    for name in SESSION_LISTS:
        checked[name] = _records(part, name, f"{where}{name}")
    return checked


def _check_references(document: dict) -> None:
    """Refuse a file whose records point at ids it does not hold, or hold an id twice.

    A session's participants, votes and replies point into that session; the
    backlog's sources and evidence into any session of the file.
    """
    parts = [document, *document["children"]]

    def unique(values: list, name: str) -> set:
        if len(set(values)) != len(values):
            raise ImportRefused(_("The file is damaged: two %(name)s share an id.", name=name))
        return set(values)

    def known(value, ids: set, name: str, where: str) -> None:
        if value is not None and value not in ids:
            raise ImportRefused(
                _(
                    "The file is damaged: a record of “%(where)s” refers to %(name)s %(id)d, "
                    "which it does not hold.",
                    where=where,
                    name=name,
                    id=value,
                )
            )

    every = {
        name: unique([r["id"] for part in parts for r in part[name]], name)
        for name in ("role_links", "participants", "contributions")
    }
    for part in parts:
        links = {r["id"] for r in part["role_links"]}
        people = {r["id"] for r in part["participants"]}
        notes = {r["id"] for r in part["contributions"]}
        for p in part["participants"]:
            known(p["role_link"], links, "role_links", "participants")
        for c in part["contributions"]:
            known(c["participant"], people, "participants", "contributions")
            known(c["reply_to"], notes, "contributions", "contributions")
        for v in part["votes"]:
            known(v["participant"], people, "participants", "votes")
            known(v["contribution"], notes, "contributions", "votes")
    sessions = set(range(len(parts)))
    stakeholders = unique([r["id"] for r in document["stakeholders"]], "stakeholders")
    needs = unique([r["id"] for r in document["needs"]], "needs")
    unique([r["id"] for r in document["actions"]], "actions")
    for need in document["needs"]:
        for source in need["sources"]:
            known(source["session"], sessions, "sessions", "needs")
            known(source["contribution"], every["contributions"], "contributions", "needs")
    for action in document["actions"]:
        known(action["owner"], stakeholders, "stakeholders", "actions")
        for partner in action["partners"]:
            known(partner, stakeholders, "stakeholders", "actions")
        for need in action["needs"]:
            known(need, needs, "needs", "actions")
        for source in action["sources"]:
            known(source["session"], sessions, "sessions", "actions")
            known(source["contribution"], every["contributions"], "contributions", "actions")
        for entry in action["updates"]:
            known(entry["reported_by"], stakeholders, "stakeholders", "actions")
            known(entry["evidence_session"], sessions, "sessions", "actions")
            known(entry["evidence"], every["contributions"], "contributions", "actions")


# --- import -------------------------------------------------------------------------------


@dataclass
class IdMap:
    """Old ids (in the file) to new ids (on this instance), by kind of record.

    Plugins receive it in the ``import_session`` hook: ``ids.contribution(7)``
    is the new id of the file's contribution 7, or ``None`` when the file
    had none such (likewise ``participant``, ``role_link``, ``need``,
    ``action``).
    """

    contributions: dict[int, int] = field(default_factory=dict)
    participants: dict[int, int] = field(default_factory=dict)
    role_links: dict[int, int] = field(default_factory=dict)
    needs: dict[int, int] = field(default_factory=dict)
    actions: dict[int, int] = field(default_factory=dict)

    def contribution(self, old) -> int | None:
        return self.contributions.get(old) if isinstance(old, int) else None

    def participant(self, old) -> int | None:
        return self.participants.get(old) if isinstance(old, int) else None

    def role_link(self, old) -> int | None:
        return self.role_links.get(old) if isinstance(old, int) else None

    def need(self, old) -> int | None:
        return self.needs.get(old) if isinstance(old, int) else None

    def action(self, old) -> int | None:
        return self.actions.get(old) if isinstance(old, int) else None


@dataclass
class Imported:
    """What an import made."""

    session: Session
    contributions: int
    needs: int
    actions: int


def already_imported(export_id: str) -> Session | None:
    """The session made from the file ``export_id``, if it was imported here before."""
    return db.session.scalar(select(Session).where(Session.imported_from == export_id))


def _already_message(session: Session) -> str:
    return _(
        "This file was already imported, as the session “%(title)s” (number %(id)d). "
        "Import it as a copy only if you want the session twice.",
        title=session.title,
        id=session.id,
    )


def import_session(raw: bytes, owner: Facilitator | None = None, as_copy: bool = False) -> Imported:
    """Check ``raw`` (an export file's bytes) and write it as a new session, all or nothing.

    ``owner`` becomes the session's owner (``None``: only administrators run
    it). A file already imported is refused unless ``as_copy``. Raises
    :class:`ImportRefused` with a translated message; then nothing is written.
    """
    document = parse_export(raw)
    parts = [document, *document["children"]]
    for part in parts:
        _check_against_method(part)
    if not as_copy and (earlier := already_imported(document["export_id"])) is not None:
        raise ImportRefused(_already_message(earlier))
    try:
        with write_transaction():
            result = _write(document, owner, None if as_copy else document["export_id"])
            for part, session in zip(parts, result.sessions, strict=True):
                _plugins_take(part["plugins"], session, result.ids)
    except IntegrityError:
        earlier = already_imported(document["export_id"])
        if earlier is None:
            raise
        raise ImportRefused(_already_message(earlier)) from None
    return Imported(result.sessions[0], result.contributions, result.needs, result.actions)


def _plugins_take(parts: dict, session: Session, ids: IdMap) -> None:
    """The ``import_session`` hook for one new session; refused when a part is left over."""
    taken: list = []
    for keys in plugin_host().hook.import_session(session=session, parts=parts, ids=ids):
        taken.extend(keys or [])
    if missing := sorted(set(parts) - set(taken)):
        raise ImportRefused(
            _(
                "This file holds data of a plugin not installed here (%(names)s). "
                "Install it, then import the file again.",
                names=", ".join(str(name)[:60] for name in missing),
            )
        )


def _check_against_method(part: dict) -> None:
    """Refuse a session of the file this instance cannot show: method, status, phase, kinds."""
    meta = part["session"]
    method = plugin_host().methods.get(meta["method"])
    if method is None:
        raise ImportRefused(
            _(
                "This session uses the method “%(method)s”, which is not installed here. "
                "Install its plugin, then import the file again.",
                method=meta["method"],
            )
        )
    damaged = _("The file is damaged: %(where)s is not valid.", where="session")
    if meta["status"] not in {str(status) for status in Status}:
        raise ImportRefused(damaged)
    if any(language not in LANGUAGES for language in meta["languages"]):
        raise ImportRefused(damaged)
    try:
        plan = method.phases(meta["config"])
    except Exception:  # noqa: BLE001 (any failure means this version cannot read the config)
        plan = []
    if not 0 <= meta["phase_index"] < len(plan):
        raise ImportRefused(
            _(
                "This session's set-up does not fit the method “%(method)s” installed here "
                "(another version?).",
                method=method.title,
            )
        )
    kinds = {c["kind"] for c in part["contributions"]} - set(method.contribution_kinds)
    if kinds:
        raise ImportRefused(
            _(
                "This file holds contributions of a kind the method “%(method)s” installed "
                "here does not know (%(kinds)s): another version?",
                method=method.title,
                kinds=", ".join(sorted(kinds)),
            )
        )


@dataclass
class _Written:
    sessions: list[Session]
    ids: IdMap
    contributions: int
    needs: int
    actions: int


def _write(document: dict, owner: Facilitator | None, export_id: str | None) -> _Written:
    """Add the file's rows with new ids; runs inside the import's write transaction."""
    ids = IdMap()
    root = _write_session(document, owner, export_id, None, ids)
    sessions = [root] + [
        _write_session(child, owner, None, root, ids) for child in document["children"]
    ]
    known_themes = {str(t) for t in Theme} | set(db.session.scalars(select(CustomTheme.key)))
    for theme in document["themes"]:
        if theme["key"] not in known_themes:
            db.session.add(CustomTheme(**theme))
            known_themes.add(theme["key"])
    stakeholders = {s["id"]: _stakeholder(s) for s in document["stakeholders"]}

    def sources(model, items: list[dict]) -> list:
        return [
            model(
                session_id=sessions[s["session"]].id,
                contribution_id=ids.contributions.get(s["contribution"]),
                people=s["people"],
                dots=s["dots"],
                rating_sum=s["rating_sum"],
                rating_count=s["rating_count"],
            )
            for s in items
        ]

    needs = {}
    for n in document["needs"]:
        theme = n["theme"] if n["theme"] in known_themes else Theme.OTHER
        needs[n["id"]] = Need(
            title=n["title"],
            description=n["description"],
            theme=theme,
            created_at=n["created_at"],
            sources=sources(NeedSource, n["sources"]),
        )
    db.session.add_all(needs.values())
    db.session.flush()
    ids.needs.update({old: need.id for old, need in needs.items()})
    actions = {}
    for a in document["actions"]:
        fields = {
            k: v
            for k, v in a.items()
            if k not in ("id", "owner", "partners", "needs", "sources", "updates")
        }
        action = Action(
            **fields,
            owner=stakeholders.get(a["owner"]),
            partners=list({stakeholders[p].name: stakeholders[p] for p in a["partners"]}.values()),
            needs=[needs[n] for n in a["needs"]],
            sources=sources(ActionSource, a["sources"]),
        )
        action.updates = [
            ActionUpdate(
                kind=u["kind"],
                on_date=u["on_date"],
                progress=u["progress"],
                body=u["body"],
                reported_by=stakeholders.get(u["reported_by"]),
                method=u["method"],
                evidence_session=sessions[u["evidence_session"]]
                if u["evidence_session"] is not None
                else None,
                evidence_contribution_id=ids.contributions.get(u["evidence"]),
            )
            for u in a["updates"]
        ]
        actions[a["id"]] = action
    db.session.add_all(actions.values())
    db.session.flush()
    ids.actions.update({old: action.id for old, action in actions.items()})
    contributions = sum(len(part["contributions"]) for part in [document, *document["children"]])
    return _Written(sessions, ids, contributions, len(needs), len(actions))


def _write_session(
    part: dict,
    owner: Facilitator | None,
    export_id: str | None,
    parent: Session | None,
    ids: IdMap,
) -> Session:
    """Add one session of the file with its links, participants, contributions and votes."""
    meta = dict(part["session"])
    code = meta.pop("code")
    if db.session.scalar(select(Session.id).where(Session.code == code)) is not None or not code:
        code = new_join_code()
    session = Session(
        **meta,
        code=code,
        created_by_id=owner.id if owner else None,
        imported_from=export_id,
        parent_id=parent.id if parent else None,
    )
    db.session.add(session)
    db.session.flush()
    links = part["role_links"]
    new_links = _insert_rows(
        RoleLink,
        [
            {
                "session_id": session.id,
                "key": secrets.token_urlsafe(16),
                **{k: v for k, v in link.items() if k != "id"},
            }
            for link in links
        ],
    )
    ids.role_links.update(zip((link["id"] for link in links), new_links, strict=True))
    # The bulk of a file, participants, contributions and votes, goes in with one statement
    # each (ids returned in order): the write lock is held for milliseconds, not a second.
    people = part["participants"]
    new_people = _insert_rows(
        Participant,
        [
            {
                "session_id": session.id,
                # A token nobody holds: the people of the old instance do not carry over.
                "token_hash": hash_token(secrets.token_urlsafe(24)),
                "language": clean_text(p["language"]),
                "group": clean_text(p["group"]) if p["group"] is not None else None,
                "role": clean_text(p["role"]) if p["role"] is not None else None,
                "role_link_id": ids.role_links.get(p["role_link"]),
                "state": clean_json(p["state"]),
                "joined_at": p["joined_at"],
            }
            for p in people
        ],
    )
    ids.participants.update(zip((p["id"] for p in people), new_people, strict=True))
    notes = part["contributions"]
    new_notes = _insert_rows(
        Contribution,
        [
            {
                "session_id": session.id,
                "participant_id": ids.participants.get(c["participant"]),
                "client_id": clean_text(c["client_id"]),
                "kind": c["kind"],
                "phase_index": c["phase_index"],
                "group": clean_text(c["group"]) if c["group"] is not None else None,
                "body": clean_text(c["body"]),
                "data": clean_json(c["data"]),
                "transcribed": c["transcribed"],
                "language": clean_text(c["language"]) if c["language"] is not None else None,
                "hidden": c["hidden"],
                "created_at": c["created_at"],
            }
            for c in notes
        ],
    )
    ids.contributions.update(zip((c["id"] for c in notes), new_notes, strict=True))
    replies = [
        {"id": ids.contributions[c["id"]], "reply_to_id": ids.contributions[c["reply_to"]]}
        for c in notes
        if c["reply_to"] is not None
    ]
    if replies:
        db.session.execute(update(Contribution), replies)
    _insert_rows(
        Vote,
        [
            {
                "session_id": session.id,
                "participant_id": ids.participants[v["participant"]],
                "contribution_id": ids.contributions[v["contribution"]],
                "client_id": clean_text(v["client_id"]),
                "value": v["value"],
                "created_at": v["created_at"],
            }
            for v in part["votes"]
        ],
    )
    return session


def _insert_rows(model, rows: list[dict]) -> list[int]:
    """Insert ``rows`` of ``model`` in one statement; returns their new ids, in order."""
    if not rows:
        return []
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(db.session.scalars(statement, rows))


def _stakeholder(record: dict) -> Stakeholder:
    """The instance's stakeholder of that name, unchanged; else a new one from the file."""
    found = db.session.scalar(select(Stakeholder).where(Stakeholder.name == record["name"]))
    if found is None:
        found = Stakeholder(**{k: v for k, v in record.items() if k != "id"})
        db.session.add(found)
    return found


# --- the commands -----------------------------------------------------------------------


@click.command("export")
@click.argument("session_id", type=int)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_command(session_id: int, file: Path) -> None:
    """Write the session SESSION_ID, with its backlog provenance, into the JSON file FILE."""
    session = db.session.get(Session, session_id)
    if session is None:
        raise click.ClickException(f"There is no session {session_id}.")
    if not file.resolve().parent.is_dir():
        raise click.ClickException(f"There is no folder {file.resolve().parent}: create it first.")
    with current_app.test_request_context():  # plugins may render or translate
        try:
            data = export_json(session)
        except ExportRefused as refusal:
            raise click.ClickException(refusal.message) from None
    partial = file.with_name(f".{file.name}.partial")
    partial.write_bytes(data)
    # What participants wrote: readable by this account only, like a backup.
    partial.chmod(0o600)
    partial.replace(file)
    click.echo(f"Exported session {session.id} “{session.title}” to {file} ({len(data)} bytes).")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--owner", metavar="EMAIL", help="The account that will own the session.")
@click.option("--as-copy", is_flag=True, help="Import a file that was already imported, again.")
@with_appcontext
def import_command(file: Path, owner: str | None, as_copy: bool) -> None:
    """Import the session file FILE (made by palabre export) as a new session."""
    account = None
    if owner:
        account = db.session.scalar(select(Facilitator).where(Facilitator.email == owner.lower()))
        if account is None:
            raise click.ClickException(f"There is no account {owner}.")
    limit = current_app.config.get("IMPORT_MAX_BYTES", IMPORT_MAX_BYTES)
    with file.open("rb") as stream:
        raw = stream.read(limit + 1)
    try:
        with current_app.test_request_context():  # messages and plugins need a request
            imported = import_session(raw, owner=account, as_copy=as_copy)
    except ImportRefused as refusal:
        raise click.ClickException(f"Nothing was imported. {refusal.message}") from None
    click.echo(
        f"Imported {file} as session {imported.session.id} “{imported.session.title}” "
        f"(join code {imported.session.code}): {imported.contributions} contributions, "
        f"{imported.needs} needs, {imported.actions} actions."
    )
