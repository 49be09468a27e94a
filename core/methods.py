"""The base class every co-design method derives from.

A method declares, as data, its phases, the kinds of contribution it accepts
and its configuration form; it provides its participant, facilitator and
projector templates (under ``templates/<slug>/`` in its own package), its
printable report and the backlog candidates it distils from a session.
The core owns storage, the live layer and permissions: a method never
writes to the database behind the core's back except in the few callbacks
documented below, which run inside the core's write transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import gettext as _

from .authored import Shown
from .errors import Refused

# Features a phase may allow. ``contribute:<kind>`` lets participants send
# contributions of that kind; ``vote`` lets them vote.
VOTE = "vote"


def contribute(kind: str) -> str:
    """Name the feature that allows contributions of ``kind`` in a phase."""
    return f"contribute:{kind}"


@dataclass(frozen=True)
class Phase:
    """One step of a session, moved by the facilitator, never by the clock.

    ``id`` is ``"<method slug>:<name>"``. A method whose plan repeats a phase
    (a café's rounds) gives each occurrence a ``number``. ``minutes`` is the
    suggested length shown as a timer, or ``None`` when untimed.
    """

    id: str
    title: str
    allows: frozenset[str] = frozenset()
    number: int | None = None
    minutes: int | None = None
    #: What participants are asked: a :class:`palabre.Texts` (a text in each language) or a
    #: plain string; templates show it with ``phase.question|in_language``.
    question: object = None

    @property
    def name(self) -> str:
        """The part of the id after the method slug, e.g. ``"round"``."""
        return self.id.split(":", 1)[1]

    def allowing(self, feature: str) -> bool:
        return feature in self.allows


@dataclass(frozen=True)
class ContributionKind:
    """A kind of contribution and the rules its text must follow."""

    name: str
    title: str
    max_length: int = 2000
    # Who may send it: participants at large, or only the host of a group.
    hosts_only: bool = False
    # Whether the contribution belongs to the sender's group (café table).
    grouped: bool = True
    # Whether everyone in the session sees it live, not only the group.
    seen_by_all: bool = False
    # Whether only the facilitators, the projector and its sender get it
    # live (a "Stop!" request): phones of a large audience are spared.
    staff_only: bool = False
    # Whether it must have text; a one-tap signal (a "Stop!") has none.
    needs_text: bool = True
    # When set, votes on contributions of this kind are ratings on this
    # inclusive scale: one per participant, a new one replacing the old.
    # Without it, votes are dots counted against ``Method.vote_budget``.
    rating: tuple[int, int] | None = None
    # Kinds of contribution this kind may answer: a participant's comment
    # names the statement it is about with ``reply_to``. Empty: answers none.
    answers: tuple[str, ...] = ()
    # Named text fields a participant sends along with the body (an
    # interview's answers, a visit report's scores): each is cleaned and
    # refused over ``max_length`` as the body is, given to
    # ``Method.check_contribution`` in ``data["fields"]`` and stored in
    # ``Contribution.data`` before ``prepare_contribution``. A name ending in
    # ``*`` takes every field starting with what precedes it (``"score-*"``:
    # one score per criterion of the session). A field not sent is left out;
    # any name not declared here is ignored.
    fields: tuple[str, ...] = ()


NEED = "need"
ACTION = "action"

#: The role of a group's host (a café table's host): the core lets only a
#: participant holding it send a kind declared ``hosts_only``.
HOST = "host"


@dataclass(frozen=True)
class Role:
    """A part one person plays in a session, given by a personal link.

    A table host, a community connector recording interviews, an evaluator
    filing visit reports: the facilitator hands each a link (and its QR
    code) made for them; opening it gives that phone the role until the
    facilitator withdraws the link. Nobody's name is stored: a link has a
    short code such as ``C-03`` (``code_prefix`` and a number) or, when
    ``per_group``, the group it is for (one link per café table). A role
    whose links are opened ``away`` from the venue (an evaluator's visits)
    has its printable cards warn when Palabre has no public address.
    """

    name: str
    title: str
    per_group: bool = False
    code_prefix: str = ""
    away: bool = False


@dataclass
class BacklogCandidate:
    """A need or action a method proposes from a session, with provenance.

    ``kind`` is :data:`NEED` (the default) or :data:`ACTION`; an action
    becomes a proposed :class:`palabre.models.Action` (its ``description``
    is shown to the facilitator harvesting it, never stored as its
    objective). The first of ``contribution_ids`` is the candidate's
    subject (the insight, obstacle or intervention itself; others, such as
    answers naming it, may follow and grow while people answer): it gives
    the candidate its stable :attr:`key`.

    Support is kept by kind and never added across kinds: ``people`` who
    raised it (answers naming an obstacle), ``votes`` (the dots participants
    gave it) and ``rating`` (the mean rating and how many rated, or
    ``None``). For an action, ``owner`` names the group responsible for it
    (a citizen group leading a project), the register's stakeholder of that
    name, made if there is none; ``addresses`` lists the keys of the need
    candidates of the same session it answers (harvested with it or before);
    the facilitator may change them before harvesting.
    """

    title: str
    description: str = ""
    theme: str = ""
    contribution_ids: list[int] = field(default_factory=list)
    votes: int = 0
    kind: str = NEED
    people: int = 0
    rating: tuple[float, int] | None = None
    owner: str = ""
    addresses: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """A stable identity within its session, for forms: never a position in a list.

        Candidates move while dots arrive; a ticked box must still mean the
        same one. ``"need-12"`` for the subject contribution 12, or, for a
        candidate with no contribution, its kind and a digest of its title.
        """
        if self.contribution_ids:
            return f"{self.kind}-{self.contribution_ids[0]}"
        digest = hashlib.sha256(self.title.encode("utf-8", "replace")).hexdigest()[:12]
        return f"{self.kind}-t{digest}"


class Method:
    """Base class of a co-design method; subclass it in a plugin.

    Subclasses set the class attributes and override the methods whose
    docstring says so. Templates are looked up as ``<slug>/participant.html``,
    ``<slug>/facilitator.html``, ``<slug>/projector.html`` and
    ``<slug>/report.html`` in the ``templates`` folder next to the module
    that defines the subclass.
    """

    #: Unique, stable identifier used in URLs, phase ids and the database.
    slug: str = ""
    #: Translatable title and description (use ``lazy_gettext``).
    title: str = ""
    description: str = ""
    #: The :class:`flask_wtf.FlaskForm` subclass configuring a session.
    config_form: type | None = None
    #: The kinds of contribution this method accepts, by name.
    contribution_kinds: dict[str, ContributionKind] = {}
    #: Kinds of contribution participants may vote on in a voting phase.
    votable_kinds: tuple[str, ...] = ()
    #: Names of the actions a facilitator may ask for (see :meth:`run_action`).
    facilitator_actions: tuple[str, ...] = ()
    #: The roles given by personal links, by name (see :class:`Role`).
    roles: dict[str, Role] = {}
    #: The slug of the method whose sessions this one's sessions are part of
    #: (a dialogue meeting is part of a citizen dialogue), or ``None``. Such
    #: sessions are made from their parent (:func:`palabre.add_session`),
    #: never from the list of methods.
    part_of: str | None = None
    #: What the audit log says was done, as a past-tense phrase (``lazy_gettext``),
    #: by the name of one of :attr:`facilitator_actions` ("Merged two themes") and by
    #: the endpoint (``"<blueprint>.<view>"``) of one of the method's own routes
    #: ("Downloaded the payment sheet"). An action without one is said as "Used one
    #: of the method's tools"; a route without one shows its endpoint.
    audit_phrases: dict[str, str] = {}

    # --- declared data -------------------------------------------------

    def phases(self, config: dict) -> list[Phase]:
        """Return the session's plan: its phases in order. Must override.

        The first phase is the one a session opens in; the last is its
        closing phase.
        """
        raise NotImplementedError

    def default_config(self) -> dict:
        """Return the configuration a new session starts from.

        The default reads the defaults of :attr:`config_form`'s fields.
        """
        if self.config_form is None:
            return {}
        form = self.config_form(formdata=None, meta={"csrf": False})
        return self.config_from_form(form)

    def config_from_form(self, form) -> dict:
        """Turn a validated :attr:`config_form` into a JSON-able dict.

        The default keeps every field's data (a :class:`palabre.TextsField`'s as a
        ``{language: text}`` dict).
        """
        from .authored import Texts

        return {
            k: v.to_json() if isinstance(v, Texts) else v
            for k, v in form.data.items()
            if k not in ("csrf_token", "submit")
        }

    def form_data(self, session) -> dict:
        """A session's stored configuration as :attr:`config_form`'s data, to edit it.

        The edit page builds the form with ``data=form_data(session)``. Default:
        ``session.config`` itself, for a form whose fields are named as its keys;
        override it when :meth:`config_from_form` reshapes the data.
        """
        return dict(session.config)

    def edited_config(self, session, form) -> dict:
        """The configuration of ``session`` once a facilitator has edited it.

        Called by the edit page with the validated :attr:`config_form`, inside the
        write transaction (read what you need; do not commit), after the core has
        checked the session's details and languages and before it checks that the
        phases already reached and the groups holding people or contributions are
        kept. Raise :class:`palabre.Refused` with a translated message to refuse a
        change the session's state does not allow (``session.status``,
        ``session.phase_index``); nothing is saved. Default: the stored configuration
        updated with :meth:`config_from_form`.
        """
        return {**session.config, **self.config_from_form(form)}

    @property
    def template_folder(self) -> Path:
        """The folder holding this method's ``<slug>/`` templates."""
        import sys

        return Path(sys.modules[type(self).__module__].__file__).parent / "templates"

    def groups(self, config: dict) -> list[tuple[str, str]]:
        """The session's sub-groups (café tables) as ``(value, label)`` pairs.

        Each group has its own live room and may have a host. Default: none.
        """
        return []

    def participants_choose_group(self, config: dict) -> bool:
        """Whether the join page asks participants to pick a group. Default: no."""
        return False

    def vote_budget(self, config: dict) -> int:
        """How many votes (dots) each participant has in a voting phase. Default: 0."""
        return 0

    def phones_see_vote_totals(self, config: dict) -> bool:
        """Whether participants see the dot totals while voting; if not, only staff hear them."""
        return True

    def template(self, view: str) -> str:
        """Name the template of ``view`` (participant, facilitator, ...)."""
        return f"{self.slug}/{view}.html"

    # --- behaviour the core calls --------------------------------------

    def on_join(self, session, participant, choices: dict) -> None:
        """Place a participant who just joined (e.g. at a café table).

        Runs inside the core's write transaction. ``choices`` holds what the
        join form sent (such as a chosen ``group``). Default: nothing.
        """

    def on_enter_phase(self, session, phase: Phase) -> list[tuple[str, dict, list[str]]]:
        """Update method state when ``session`` enters ``phase``.

        Runs inside the core's write transaction, before the phase change is
        broadcast. Returns extra live events as ``(type, data, rooms)``
        triples (rooms as in :func:`palabre.live.record_event`). Default: none.
        """
        return []

    def check_contribution(self, session, participant, kind: ContributionKind, data: dict):
        """Refuse a contribution the method's own rules forbid.

        Return a translated message to refuse, or ``None`` to accept. The
        core has already checked the phase, the text and the kind's
        ``hosts_only`` flag. ``data`` is ``{"body": <text>, "fields":
        {<name>: <text>}}``, the fields being those of ``kind.fields`` that
        were sent. Default: accept.
        """
        return None

    def prepare_contribution(self, session, participant, contribution) -> None:
        """Fill in method-specific fields of a contribution about to be stored.

        Runs inside the core's write transaction, after every check and just
        before the insert, for contributions from participants (not paper
        transcriptions); set ``contribution.data`` here (a queue number, the
        scene it is about). Raise :class:`palabre.errors.Refused` to refuse:
        checks that must not race (one per person) belong here, since they
        run with the write lock held. Default: nothing.
        """

    def run_action(self, session, name: str, data: dict) -> list[tuple[str, dict, list[str]]]:
        """Do the facilitator action ``name`` (one of :attr:`facilitator_actions`).

        The core calls it only for a signed-in facilitator, inside its write
        transaction; ``data`` is what the socket event or form sent (values
        are strings, or lists of strings for repeated form fields). The
        method may add or change its session's contributions here. Raise
        :class:`palabre.errors.Refused` with a translated message to refuse.
        Returns live events as ``(type, data, rooms)`` triples, recorded and
        broadcast by the core. Default: refuses every action.
        """
        raise Refused(_("This action does not exist."))

    def view_context(self, session, view: str, participant=None) -> dict:
        """Return extra template variables for ``view``. Default: none."""
        return {}

    def report_context(self, session) -> dict:
        """Return the template variables of the printable report."""
        return {}

    def raw_answers(self, session, *, leave_out=()) -> list[tuple[str, list[str | Shown]]]:
        """Return the report's appendix: what people wrote, as written, in groups.

        A list of ``(heading, texts)``; the report prints it last, each text in its
        own writing direction, so a reader can check the summary against what was
        said. A text may be a :class:`palabre.Shown` naming the language
        it was written in, which the PDF then marks (``lang``) for screen readers.
        Hidden contributions never appear. The default takes every visible
        contribution with text, grouped by part of the session, then table (for
        methods with groups), then kind, each with its language where known; kinds
        named in ``leave_out`` are left out.
        Override it to group otherwise, or to leave out what must stay off paper.
        """
        from .contributions import visible
        from .phases import plan

        titles = [str(phase.title) for phase in plan(session)]
        tables = {value: str(label) for value, label in self.groups(session.config)}
        grouped: dict[tuple, list[str]] = {}
        for contribution in visible(session):
            if contribution.kind in leave_out or not (contribution.body or "").strip():
                continue
            kind = self.contribution_kinds.get(contribution.kind)
            where = (
                contribution.phase_index,
                contribution.group or "",
                kind.title if kind else contribution.kind,
            )
            written = Shown(contribution.body, contribution.language or "")
            grouped.setdefault(where, []).append(written)
        order = {value: n for n, value in enumerate(tables)}
        return [
            (
                " · ".join(
                    str(part)
                    for part in (
                        titles[index] if index < len(titles) else "",
                        tables.get(group, group),
                        kind_title,
                    )
                    if part
                ),
                texts,
            )
            for (index, group, kind_title), texts in sorted(
                grouped.items(),
                key=lambda item: (item[0][0], order.get(item[0][1], len(order)), item[0][1]),
            )
        ]

    def backlog_candidates(self, session) -> list[BacklogCandidate]:
        """Return what the session proposes for the backlog, best first."""
        return []
