"""Everything Palabre stores. Nothing here identifies a participant.

A participant is known only by the SHA-256 hash of a random token kept in
their browser's cookie; no name, address, IP address or user agent is ever
stored. Contributions are never deleted, only hidden; the retention policy
empties their text once a session is old enough (:mod:`palabre.retention`).
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, date, datetime

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .concurrency import in_the_background
from .extensions import db
from .methods import HOST


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def hash_token(token: str) -> str:
    """Hash a participant token; only this hash is ever stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _password_work(func, *args):
    """Hash or check a password: slow on purpose, so one at a time, behind the live layer."""
    return in_the_background(func, *args)


def hash_password(password: str) -> str:
    """A facilitator password's hash. Deliberately slow: computed off the live layer's loop."""
    return _password_work(generate_password_hash, password)


def check_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; as slow as :func:`hash_password`."""
    return _password_work(check_password_hash, password_hash, password)


class AccountRole(enum.StrEnum):
    """What an account may do (see :mod:`palabre.access`)."""

    ADMINISTRATOR = "administrator"  # accounts, instance settings, every session, the backlog
    FACILITATOR = "facilitator"  # their own sessions, the ones they co-run, the backlog
    GUEST = "guest"  # an external facilitator: only the sessions they were invited to


class Facilitator(UserMixin, db.Model):
    """A staff account: an administrator, a facilitator or an invited guest."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=AccountRole.FACILITATOR)
    disabled: Mapped[bool] = mapped_column(default=False)
    # Part of every cookie that signs this account in (see get_id): raising it
    # on sign-out or a password change revokes every such cookie at once.
    credentials_version: Mapped[int] = mapped_column(default=0)
    # Base32 secret of the optional second factor (TOTP), and the last time
    # step used, so that a code is accepted once.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def get_id(self) -> str:
        """What the sign-in and remember-me cookies hold: the id and the credentials' version."""
        return f"{self.id}:{self.credentials_version}"

    @property
    def is_active(self) -> bool:
        return not self.disabled

    @property
    def is_admin(self) -> bool:
        return self.role == AccountRole.ADMINISTRATOR

    def set_password(self, password: str) -> None:
        """Set the password; call it before a write transaction, not inside (it is slow)."""
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return check_password(self.password_hash, password)


class Status(enum.StrEnum):
    """A session's lifecycle: draft -> open -> live -> closed -> archived."""

    DRAFT = "draft"  # being prepared; nobody can join
    OPEN = "open"  # people can join and wait in the welcome phase
    LIVE = "live"  # moving through the method's phases
    CLOSED = "closed"  # over; contributions refused, results readable
    ARCHIVED = "archived"  # hidden from the facilitators' list


class Session(db.Model):
    """One run of a method: a café evening, a theatre forum, ..."""

    __tablename__ = "palabre_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    method: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[str] = mapped_column(String(12), default=Status.DRAFT)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    # Language codes offered to participants, the first being the default.
    languages: Mapped[list] = mapped_column(JSON, default=list)
    venue: Mapped[str] = mapped_column(String(200), default="")
    # When the session takes place (local time of the venue), for the list, posters and reports.
    starts_at: Mapped[datetime | None]
    # The venue's Wi-Fi, shown on the projector and the poster so phones can get online.
    wifi_name: Mapped[str] = mapped_column(String(100), default="")
    wifi_password: Mapped[str] = mapped_column(String(100), default="")
    # Position of the current phase in the method's plan for this config.
    phase_index: Mapped[int] = mapped_column(default=0)
    phase_started_at: Mapped[datetime | None]
    timer_ends_at: Mapped[datetime | None]
    # Last sequence number given to a live event of this session.
    seq: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("facilitator.id"))
    # The longer session this one is part of (a citizen dialogue, for one of its
    # meetings): whoever runs the parent runs it too, not the other way round.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("palabre_session.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # The export id of the file this session was imported from (palabre.transfer),
    # so that the same file is not imported twice.
    imported_from: Mapped[str | None] = mapped_column(String(32), unique=True)
    # When its contributions' text was purged under the retention policy
    # (palabre.retention); its counts and backlog provenance stay.
    purged_at: Mapped[datetime | None]
    # Months its contributions are kept after it closes; None: the instance's setting.
    retention_months: Mapped[int | None]

    created_by: Mapped[Facilitator | None] = relationship()
    parent: Mapped[Session | None] = relationship(remote_side="Session.id")
    participants: Mapped[list[Participant]] = relationship(back_populates="session")
    co_facilitators: Mapped[list[CoFacilitator]] = relationship(
        back_populates="session", cascade="all, delete-orphan"
    )


class CoFacilitator(db.Model):
    """An account that runs a session with its owner (``Session.created_by``).

    ``expires_at`` ends the access of an external facilitator invited for
    one evening; ``None`` is until the owner removes them.
    """

    __table_args__ = (UniqueConstraint("session_id", "facilitator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"), index=True)
    facilitator_id: Mapped[int] = mapped_column(ForeignKey("facilitator.id"), index=True)
    expires_at: Mapped[datetime | None]
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[Session] = relationship(back_populates="co_facilitators")
    facilitator: Mapped[Facilitator] = relationship()


class Invitation(db.Model):
    """A link that lets an external facilitator co-run one session until it expires.

    Only the hash of the link's token is stored. Used once: whoever opens it
    first becomes a co-facilitator of the session until ``expires_at``.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("facilitator.id"))
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("facilitator.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[Session] = relationship()


class AuditEntry(db.Model):
    """Who did what to a session or an account. Never a participant's data.

    ``action`` names what was asked (a route's endpoint or a socket event,
    such as ``sessions.archive`` or ``phase.go``); ``detail`` holds only
    staff-side facts (a phase index, an action's name, an account's e-mail),
    never the text of a contribution.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("facilitator.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("palabre_session.id"), index=True)
    action: Mapped[str] = mapped_column(String(80))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    facilitator: Mapped[Facilitator | None] = relationship()
    session: Mapped[Session | None] = relationship()


class LoginFailure(db.Model):
    """Failed sign-ins of one e-mail address (or one account's second factor), by hash.

    Kept in the database so that every worker process of an instance counts
    the same failures (see :class:`palabre.auth.LoginThrottle`). Times are
    seconds since the epoch. Never an address in clear, nor who tried.
    """

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    #: When the next try is allowed.
    wait_until: Mapped[float] = mapped_column(default=0.0)
    #: When the last failure happened; failures older than a day are forgotten.
    failed_at: Mapped[float] = mapped_column(index=True)


class InstanceSetting(db.Model):
    """One setting of this Palabre instance (the organiser's name, its logo), by name.

    Read and written through :mod:`palabre.settings`, which knows the names
    and their defaults.
    """

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Participant(db.Model):
    """An anonymous person taking part in one session."""

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str] = mapped_column(String(12))
    # The sub-group the participant is in now (a café table), if any.
    group: Mapped[str | None] = mapped_column(String(40))
    # The role this phone holds through a personal link (palabre.role_links),
    # or None. Withdrawing the link clears it; ``role_link_id`` stays, so
    # what was sent through a withdrawn link keeps its code (a payment sheet).
    role: Mapped[str | None] = mapped_column(String(30))
    role_link_id: Mapped[int | None] = mapped_column(ForeignKey("role_link.id"))
    # Method-specific state, such as the tables a café participant sat at.
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[Session] = relationship(back_populates="participants")
    role_link: Mapped[RoleLink | None] = relationship()

    @property
    def is_host(self) -> bool:
        """Whether this phone is its group's host (a café table's)."""
        return self.role == HOST


class RoleLink(db.Model):
    """A personal link giving one person a role in a session (see palabre.role_links).

    The key is kept as it is, not hashed, so the facilitator can show the
    link's QR code again all evening; it is a bearer secret like a host
    card handed over in the room, and withdrawing the link ends it.
    """

    __tablename__ = "role_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"), index=True)
    role: Mapped[str] = mapped_column(String(30))
    # The group the link is for (a café table), for a role given per group.
    group: Mapped[str | None] = mapped_column(String(40))
    # A short code naming the holder without naming a person ("C-03").
    code: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Contribution(db.Model):
    """Something said in a session: a note, a summary, an insight, ..."""

    __table_args__ = (UniqueConstraint("session_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"), index=True)
    # Null for notes transcribed from paper by staff.
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"))
    # Generated by the sender so that a resent write is stored once.
    client_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    phase_index: Mapped[int]
    group: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    # Structured, method-specific fields (a scene, a queue number, an
    # intervention's moment and outcome); never personal data.
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    transcribed: Mapped[bool] = mapped_column(default=False)
    # The language it was written in (a code of palabre.i18n.LANGUAGES): the phone's chosen
    # language, or a paper card's. None when not known (contributions from before it was kept).
    language: Mapped[str | None] = mapped_column(String(10))
    hidden: Mapped[bool] = mapped_column(default=False)
    # The contribution this one answers (a comment on a statement), if any.
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("contribution.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[Session] = relationship()
    participant: Mapped[Participant | None] = relationship()


class Vote(db.Model):
    """One dot (or rating) a participant gave a contribution."""

    __table_args__ = (UniqueConstraint("participant_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    contribution_id: Mapped[int] = mapped_column(ForeignKey("contribution.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(db.Model):
    """A live event as broadcast, kept so reconnecting clients can replay it."""

    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"))
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict] = mapped_column(JSON)
    # Room names relative to the session: "all", "facilitators", "g:<group>", "p:<id>".
    rooms: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HandledRequest(db.Model):
    """A facilitator's live request already carried out, kept by its client id.

    A facilitator's screen resends what it saw no acknowledgement for; the
    stored acknowledgement is sent again instead of doing the request twice
    (a timer extended twice, the next person in a queue called twice).
    """

    __table_args__ = (UniqueConstraint("session_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    ack: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Theme(enum.StrEnum):
    """The default themes of needs, from the areas of migrants' lives the guide names.

    A team adds its own themes (:class:`CustomTheme`); these stay available.
    """

    HOUSING = "housing"
    HEALTH = "health"
    WORK = "work"
    EDUCATION = "education"
    LANGUAGE = "language"
    RIGHTS = "rights"
    SOCIAL_LIFE = "social_life"
    SERVICES = "services"
    OTHER = "other"


class CustomTheme(db.Model):
    """A theme a team added to the defaults, with words that suggest it."""

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(80))
    # Words (separated by commas) whose presence in a need suggests this theme.
    keywords: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


need_action = db.Table(
    "need_action",
    db.Column("need_id", ForeignKey("need.id"), primary_key=True),
    db.Column("action_id", ForeignKey("action.id"), primary_key=True),
)

action_partner = db.Table(
    "action_partner",
    db.Column("action_id", ForeignKey("action.id"), primary_key=True),
    db.Column("stakeholder_id", ForeignKey("stakeholder.id"), primary_key=True),
)


class Need(db.Model):
    """A need named by participants, feeding the strategy's action plan.

    Its support is kept by kind on its sources (people, dots, ratings), so
    that merging and undoing a merge move it with them.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    theme: Mapped[str] = mapped_column(String(40), default=Theme.OTHER)
    # Set when merged as a duplicate into another need; the need is then hidden.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("need.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    sources: Mapped[list[NeedSource]] = relationship(
        back_populates="need", cascade="all, delete-orphan", order_by="NeedSource.id"
    )
    actions: Mapped[list[Action]] = relationship(secondary=need_action, back_populates="needs")

    @property
    def visible_sources(self) -> list[NeedSource]:
        """Its sources but those resting on a hidden contribution: the only ones that count."""
        return visible(self.sources)

    @property
    def support(self) -> Support:
        """People, dots, ratings and sessions behind this need, each kept apart.

        Counted on :attr:`visible_sources` only: a contribution the
        facilitators hid counts nowhere, on no screen and in no report.
        """
        return Support.of(self.visible_sources)

    @property
    def priority(self) -> int:
        """The dots participants gave to what can still be seen (a café's report ranks by them)."""
        return self.support.dots


class NeedSource(db.Model):
    """Where a need came from: a session, the contributions behind it, and their support.

    The support figures sit on the source row of the candidate's subject
    contribution (its other rows carry zeros), so that they move with it.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("need.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"))
    contribution_id: Mapped[int | None] = mapped_column(ForeignKey("contribution.id"))
    # People who raised it (a forum theatre's answers naming an obstacle).
    people: Mapped[int] = mapped_column(default=0)
    # Dots participants gave it (a café's key insight).
    dots: Mapped[int] = mapped_column(default=0)
    # Ratings: their sum and how many, so that merged means stay exact.
    rating_sum: Mapped[float] = mapped_column(default=0)
    rating_count: Mapped[int] = mapped_column(default=0)

    need: Mapped[Need] = relationship(back_populates="sources")
    session: Mapped[Session] = relationship()
    # Joined: whether it is hidden decides whether its support counts, wherever it is read.
    contribution: Mapped[Contribution | None] = relationship(lazy="joined")


def visible(sources: list) -> list:
    """The provenance rows of ``sources`` resting on no contribution or on one not hidden."""
    return [s for s in sources if s.contribution is None or not s.contribution.hidden]


class Support:
    """Each kind of support of a need or action, never added across kinds."""

    __slots__ = ("people", "dots", "rating_sum", "rating_count", "sessions")

    def __init__(self, people=0, dots=0, rating_sum=0.0, rating_count=0, sessions=0):
        self.people = people
        self.dots = dots
        self.rating_sum = rating_sum
        self.rating_count = rating_count
        self.sessions = sessions

    @classmethod
    def of(cls, sources) -> Support:
        return cls(
            people=sum(s.people for s in sources),
            dots=sum(s.dots for s in sources),
            rating_sum=sum(s.rating_sum for s in sources),
            rating_count=sum(s.rating_count for s in sources),
            sessions=len({s.session_id for s in sources}),
        )

    @property
    def rating(self) -> float | None:
        """The mean rating, or ``None`` when nobody rated."""
        return round(self.rating_sum / self.rating_count, 1) if self.rating_count else None


class ActionStatus(enum.StrEnum):
    PROPOSED = "proposed"
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DROPPED = "dropped"


class Stakeholder(db.Model):
    """An organisation or group with a part in the strategy, as the guide maps them."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # What it is: a city department, an NGO, a migrant representatives' group, ...
    kind: Mapped[str] = mapped_column(String(40), default="organisation")
    role: Mapped[str] = mapped_column(Text, default="")
    already_involved: Mapped[bool] = mapped_column(default=False)
    # 1 (low) to 5 (high), for the power-interest matrix.
    interest: Mapped[int] = mapped_column(default=3)
    influence: Mapped[int] = mapped_column(default=3)
    knowledge: Mapped[str] = mapped_column(Text, default="")
    how_to_involve: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Action(db.Model):
    """Something the city will do about one or more needs."""

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    objective: Mapped[str] = mapped_column(Text, default="")
    # The indicator: what is measured, from where to where, in what unit.
    indicator: Mapped[str] = mapped_column(Text, default="")
    indicator_baseline: Mapped[float | None]
    indicator_target: Mapped[float | None]
    indicator_unit: Mapped[str] = mapped_column(String(40), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("stakeholder.id"))
    # Resources: an amount in a currency, or what is given in kind, or both.
    budget_amount: Mapped[float | None]
    budget_currency: Mapped[str] = mapped_column(String(3), default="")
    in_kind: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(20), default=ActionStatus.PROPOSED)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Stakeholder | None] = relationship(foreign_keys=[owner_id])
    partners: Mapped[list[Stakeholder]] = relationship(
        secondary=action_partner, order_by="Stakeholder.name"
    )
    needs: Mapped[list[Need]] = relationship(secondary=need_action, back_populates="actions")
    sources: Mapped[list[ActionSource]] = relationship(
        back_populates="action", cascade="all, delete-orphan", order_by="ActionSource.id"
    )
    updates: Mapped[list[ActionUpdate]] = relationship(
        back_populates="action", order_by="[ActionUpdate.on_date, ActionUpdate.id]"
    )

    @property
    def visible_sources(self) -> list[ActionSource]:
        """Its sources but those resting on a hidden contribution: the only ones that count."""
        return visible(self.sources)

    @property
    def support(self) -> Support:
        """How the audience judged it (ratings with their number) and the sessions it came from.

        Counted on :attr:`visible_sources` only, as a need's support is.
        """
        return Support.of(self.visible_sources)

    @property
    def monitoring(self) -> list[ActionUpdate]:
        return [u for u in self.updates if u.kind == UpdateKind.MONITORING]

    @property
    def evaluations(self) -> list[ActionUpdate]:
        return [u for u in self.updates if u.kind == UpdateKind.EVALUATION]

    @property
    def latest_progress(self) -> ActionUpdate | None:
        """The most recent monitoring update, or ``None``."""
        monitoring = self.monitoring
        return monitoring[-1] if monitoring else None


class ActionSource(db.Model):
    """Where a proposed action came from: a session, the contributions, how it was rated."""

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("action.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("palabre_session.id"))
    contribution_id: Mapped[int | None] = mapped_column(ForeignKey("contribution.id"))
    people: Mapped[int] = mapped_column(default=0)
    dots: Mapped[int] = mapped_column(default=0)
    rating_sum: Mapped[float] = mapped_column(default=0)
    rating_count: Mapped[int] = mapped_column(default=0)

    action: Mapped[Action] = relationship(back_populates="sources")
    session: Mapped[Session] = relationship()
    # Joined, as a need's source's is.
    contribution: Mapped[Contribution | None] = relationship(lazy="joined")


class UpdateKind(enum.StrEnum):
    MONITORING = "monitoring"
    EVALUATION = "evaluation"


class ActionUpdate(db.Model):
    """A monitoring update or an evaluation entry recorded against an action.

    Monitoring: the date, the indicator's value then (``progress``), a note,
    and who reported (a stakeholder, such as a migrant representatives'
    group). Evaluation: the method, the findings (``body``) and, as
    evidence, a session (a later mystery-shopping audit, say) and, when the
    entry was recorded from it, the contribution it rests on (the audit's
    agreed finding): one entry per action and piece of evidence.
    """

    __table_args__ = (UniqueConstraint("action_id", "evidence_contribution_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("action.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default=UpdateKind.MONITORING)
    on_date: Mapped[date] = mapped_column(default=lambda: utcnow().date())
    progress: Mapped[float | None]
    body: Mapped[str] = mapped_column(Text)
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("stakeholder.id"))
    method: Mapped[str] = mapped_column(String(200), default="")
    evidence_session_id: Mapped[int | None] = mapped_column(ForeignKey("palabre_session.id"))
    evidence_contribution_id: Mapped[int | None] = mapped_column(
        ForeignKey("contribution.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    action: Mapped[Action] = relationship(back_populates="updates")
    reported_by: Mapped[Stakeholder | None] = relationship()
    evidence_session: Mapped[Session | None] = relationship()


class NeedMerge(db.Model):
    """A need merged into another, remembered so that the merge can be undone.

    ``source_ids`` are the provenance rows moved over; ``action_ids`` the
    actions that addressed the duplicate, and ``added_action_ids`` those of
    them that the merge linked to the kept need.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    duplicate_id: Mapped[int] = mapped_column(ForeignKey("need.id"))
    into_id: Mapped[int] = mapped_column(ForeignKey("need.id"), index=True)
    source_ids: Mapped[list] = mapped_column(JSON, default=list)
    action_ids: Mapped[list] = mapped_column(JSON, default=list)
    added_action_ids: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None]

    duplicate: Mapped[Need] = relationship(foreign_keys=[duplicate_id])
    into: Mapped[Need] = relationship(foreign_keys=[into_id])


class AssessmentMark(db.Model):
    """One criterion of the guide's key success factors, marked on a date, with evidence.

    Marks are never overwritten: each assessment adds rows, so the history stays.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    assessed_on: Mapped[date] = mapped_column(index=True)
    # "<factor number>.<criterion number>", as in palabre.assessment.FACTORS.
    criterion: Mapped[str] = mapped_column(String(10))
    # "met", "partly" or "not_yet".
    mark: Mapped[str] = mapped_column(String(10))
    evidence: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
