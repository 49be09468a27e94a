"""Forum theatre: a short play, then the audience stops the replay to try other ways.

As in Glasgow's "The Roundabout" on the circular, exhausting asylum
procedure: the audience watches scenes in which a protagonist meets an
obstacle they cannot overcome, and taps "this happened to me or someone I
know" for each scene; says what stopped the protagonist; then, in the forum,
spectators shout "Stop!" (a tap that gives a queue number) to come on stage,
or write an alternative instead, while the joker logs each intervention and
the audience rates it ("could this work in real life?"). In the harvest the
joker groups the answers into obstacles, which become needs, and the
interventions become proposed actions, each with its provenance.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms import BooleanField, FieldList, FormField
from wtforms.validators import ValidationError

from palabre import (
    ACTION,
    LANGUAGES,
    VOTE,
    BacklogCandidate,
    CleanForm,
    Contribution,
    ContributionKind,
    Method,
    Participant,
    Phase,
    Refused,
    Texts,
    TextsField,
    Vote,
    add_by_staff,
    contribute,
    current_phase,
    db,
    hookimpl,
    my_ratings,
    parse_int,
    ratelimit,
    rating_summaries,
    session_actions,
    session_needs,
    text_in,
    update_data,
    visible,
)

MAX_SCENES = 12
MAX_SCENE_TITLE = 120
MAX_SCENE_DESCRIPTION = 400
MAX_SYNOPSIS = 3000
#: How often one participant may ask to come on stage.
STOP_LIMIT = "3 per 10 minutes"
#: The "could this work in real life?" scale.
SCALE = (1, 5)

WAITING, CALLED, DONE = "waiting", "called", "done"


def default_scenes() -> list[dict]:
    """The form's first three scenes, The Roundabout's, in every language that has them."""
    return [
        {
            "title": Texts.from_catalog(lambda: _("At the reception desk")),
            "description": Texts.from_catalog(
                lambda: _("She is sent to another office for a form.")
            ),
        },
        {
            "title": Texts.from_catalog(lambda: _("At the other office")),
            "description": Texts.from_catalog(
                lambda: _("The form needs a letter from the first desk.")
            ),
        },
        {
            "title": Texts.from_catalog(lambda: _("Back at the start")),
            "description": Texts.from_catalog(
                lambda: _("The first desk asks again for the same form.")
            ),
        },
    ]


def scene_texts(scene: dict) -> dict[str, Texts]:
    """A stored scene's title and description, each a :class:`Texts`.

    Scenes stored before texts were kept per language
    (``{"title", "description", "language", "translations": {code: {...}}}``)
    are read the same way.
    """
    written_in = scene.get("language", "")
    translations = scene.get("translations") or {}
    return {
        part: Texts(
            {
                **Texts.of(scene.get(part), written_in),
                **{code: version.get(part, "") for code, version in translations.items()},
            }
        )
        for part in ("title", "description")
    }


class SceneForm(CleanForm):
    """One scene: its title and what happens, in each language."""

    class Meta:
        csrf = False

    title = TextsField(_l("Title"), max_length=MAX_SCENE_TITLE)
    description = TextsField(
        _l("What happens (optional)"), multiline=True, rows=2, max_length=MAX_SCENE_DESCRIPTION
    )

    def validate_title(self, field):
        missing = [code for code in self.description.data if code not in field.data]
        if missing:
            raise ValidationError(
                _(
                    "Give the scene a title in %(language)s too.",
                    language=LANGUAGES.get(missing[0], (missing[0],))[0],
                )
            )


class SceneCards:
    """Draws the list of scene cards with its own fieldset and its buttons.

    The page's field macro lets a widget with ``whole`` draw its label, help and errors.
    """

    whole = True

    def __call__(self, field, **kwargs):
        return Markup(render_template("forum_theatre/_scenes_field.html", field=field))


class ForumTheatreConfig(CleanForm):
    play_title = TextsField(
        _l("Title of the play"),
        default=lambda: Texts.from_catalog(lambda: _("The Roundabout")),
        required=True,
        max_length=200,
    )
    synopsis = TextsField(
        _l("Synopsis"),
        default=lambda: Texts.from_catalog(
            lambda: _("A woman seeking asylum is sent from office to office, and back.")
        ),
        description=_l("What the audience reads on their phones before the play."),
        multiline=True,
        required=True,
        max_length=MAX_SYNOPSIS,
    )
    protagonist = TextsField(
        _l("The protagonist"),
        default=lambda: Texts.from_catalog(lambda: _("Amal")),
        required=True,
        max_length=120,
    )
    scenes = FieldList(
        FormField(SceneForm),
        _l("Scenes"),
        default=default_scenes,
        min_entries=1,
        max_entries=MAX_SCENES,
        widget=SceneCards(),
    )
    on_stage = BooleanField(_l("Spectators may ask to come on stage"), default=True)

    def validate_scenes(self, field):
        if not any(entry.form.title.data for entry in field.entries):
            raise ValidationError(_("Write at least one scene."))

    def rearrange(self) -> bool:
        """Add, remove or move a scene when one of the cards' buttons posted the form.

        Returns whether it did (the page is then shown again, nothing is created):
        without JavaScript, these buttons are how a facilitator shapes the list.
        """
        # The cards' buttons post "<scenes' name>-change": "add", "remove:2", "up:1"...
        change = request.form.get(f"{self.scenes.name}-change", "")
        verb, _sep, where = change.partition(":")
        if verb not in ("add", "remove", "up", "down"):
            return False
        scenes = [
            {"title": entry.form.title.data, "description": entry.form.description.data}
            for entry in self.scenes.entries
        ]
        index = parse_int(where, default=-1)
        if verb == "add" and len(scenes) < MAX_SCENES:
            scenes.append({"title": Texts(), "description": Texts()})
        elif verb == "remove" and 0 <= index < len(scenes) and len(scenes) > 1:
            del scenes[index]
        elif verb == "up" and 0 < index < len(scenes):
            scenes[index - 1], scenes[index] = scenes[index], scenes[index - 1]
        elif verb == "down" and 0 <= index < len(scenes) - 1:
            scenes[index + 1], scenes[index] = scenes[index], scenes[index + 1]
        # Rebuilt from the data, so the cards are numbered in their new order.
        self.scenes.entries, self.scenes.last_index = [], -1
        self.scenes.process(None, scenes)
        return True


class ForumTheatre(Method):
    slug = "forum_theatre"
    title = _l("Forum theatre")
    description = _l(
        "A short play where a protagonist meets an obstacle; the audience says what stopped "
        "them, then stops the replay to try other ways, and rates each try."
    )
    config_form = ForumTheatreConfig
    contribution_kinds = {
        "happened": ContributionKind(
            "happened",
            _l("This happened to me or someone I know"),
            grouped=False,
            needs_text=False,
            max_length=0,
            # The projector counts the taps: 150 phones need not hear each one.
            staff_only=True,
        ),
        "answer": ContributionKind(
            "answer", _l("What stopped the protagonist"), max_length=280, grouped=False
        ),
        "stop": ContributionKind(
            "stop",
            _l("Stop! request"),
            grouped=False,
            needs_text=False,
            max_length=0,
            staff_only=True,
        ),
        "alternative": ContributionKind(
            "alternative",
            _l("Written alternative"),
            max_length=500,
            grouped=False,
            staff_only=True,
        ),
        "intervention": ContributionKind(
            "intervention", _l("Intervention"), max_length=500, grouped=False, rating=SCALE
        ),
        "obstacle": ContributionKind("obstacle", _l("Obstacle"), max_length=200, grouped=False),
    }
    votable_kinds = ("intervention",)
    facilitator_actions = ("queue.call", "queue.done", "intervention.log", "obstacle.add")
    audit_phrases = {
        "queue.call": _l("Called the next person in the queue to the stage"),
        "queue.done": _l("Ended the turn of the person on stage"),
        "intervention.log": _l("Logged an intervention"),
        "obstacle.add": _l("Grouped answers into an obstacle"),
    }

    def config_from_form(self, form) -> dict:
        return {
            "play_title": form.play_title.data.to_json(),
            "synopsis": form.synopsis.data.to_json(),
            "protagonist": form.protagonist.data.to_json(),
            "scenes": [
                {
                    "title": entry.form.title.data.to_json(),
                    "description": entry.form.description.data.to_json(),
                }
                for entry in form.scenes.entries
                if entry.form.title.data
            ],
            "on_stage": bool(form.on_stage.data),
        }

    def form_data(self, session) -> dict:
        config = session.config
        return {
            **config,
            "play_title": Texts.of(config.get("play_title")),
            "synopsis": Texts.of(config.get("synopsis")),
            "protagonist": Texts.of(config.get("protagonist")),
            "scenes": [scene_texts(scene) for scene in config.get("scenes", [])],
        }

    def phases(self, config: dict) -> list[Phase]:
        scenes = [
            Phase(
                "forum_theatre:performance",
                _("Scene %(n)d", n=number),
                allows=frozenset({contribute("happened")}),
                number=number,
                question=scene_texts(scene)["title"],
            )
            for number, scene in enumerate(config.get("scenes", []), start=1)
        ]
        forum = {contribute("alternative"), VOTE}
        if config.get("on_stage", True):
            forum.add(contribute("stop"))
        return [
            Phase("forum_theatre:welcome", _("Welcome")),
            *scenes,
            Phase(
                "forum_theatre:reflection",
                _("Reflection"),
                allows=frozenset({contribute("answer")}),
                question=_("What stopped %(name)s?", name=_name(config)),
            ),
            Phase("forum_theatre:forum", _("Forum"), allows=frozenset(forum)),
            Phase("forum_theatre:harvest", _("Harvest")),
            Phase("forum_theatre:closed", _("Closed")),
        ]

    # --- participants' contributions ----------------------------------------

    def check_contribution(self, session, participant, kind, data):
        # A second "Stop!" while waiting is refused with its number, and not counted.
        if (
            kind.name == "stop"
            and _waiting_stop(participant) is None
            and not ratelimit.allow(f"stop:{participant.id}", STOP_LIMIT)
        ):
            return _("You asked several times already. Wait a little before asking again.")
        return None

    def prepare_contribution(self, session, participant, contribution):
        # With the write lock held: two quick taps cannot both pass, and queue
        # numbers are handed out one at a time.
        if contribution.kind == "happened":
            if _mine(participant, "happened", phase_index=session.phase_index):
                raise Refused(_("Already counted for this scene. Thank you!"))
            contribution.data = {"scene": self._phase(session).number}
        elif contribution.kind == "stop":
            waiting = _waiting_stop(participant)
            if waiting is not None:
                raise Refused(
                    _("You are already in the queue: number %(n)d.", n=waiting.data["queue"])
                )
            contribution.data = {"queue": _count(session, "stop") + 1, "state": WAITING}

    # --- the joker's actions ---------------------------------------------------

    def run_action(self, session, name, data):
        phase = self._phase(session)
        if name == "queue.call":
            for called in _stops(session, CALLED):
                update_data(session, called, state=DONE)
            waiting = _stops(session, WAITING)
            if not waiting:
                raise Refused(_("Nobody is waiting in the queue."))
            update_data(session, waiting[0], state=CALLED)
        elif name == "queue.done":
            # The person on stage has finished; nobody is called until the joker says so.
            called = _stops(session, CALLED)
            if not called:
                raise Refused(_("Nobody is on stage."))
            for person in called:
                update_data(session, person, state=DONE)
        elif name == "intervention.log":
            if phase.name != "forum":
                raise Refused(_("Log interventions during the forum."))
            # A written alternative becomes an intervention in one click: its text was tried.
            alternative = _alternative(session, data.get("alternative"))
            tried = str(data.get("tried", "")).strip() or (alternative.body if alternative else "")
            if not tried:
                raise Refused(_("Write what was tried."))
            scenes = session.config.get("scenes", [])
            scene = parse_int(data.get("scene"), default=0)
            if not 1 <= scene <= len(scenes):
                raise Refused(_("Choose the scene."))
            written = alternative is not None or str(data.get("written", "")) in ("1", "on", "true")
            add_by_staff(
                session,
                "intervention",
                tried,
                {
                    "number": _count(session, "intervention") + 1,
                    "scene": scene,
                    "moment": str(data.get("moment", "")).strip()[:200],
                    "happened": str(data.get("happened", "")).strip()[:500],
                    "written": written,
                },
            )
        elif name == "obstacle.add":
            answers = data.get("answers") or []
            answers = answers if isinstance(answers, list) else [answers]
            wanted = {parse_int(answer) for answer in answers} - {None}
            ids = [c.id for c in _all(session, "answer") if c.id in wanted]
            title = str(data.get("title", "")).strip()
            if not title:
                raise Refused(_("Name the obstacle."))
            add_by_staff(session, "obstacle", title, {"answers": ids, "count": len(ids)})
        return []

    def _phase(self, session) -> Phase:
        return current_phase(session)

    # --- views -------------------------------------------------------------------

    def view_context(self, session, view, participant=None):
        config = session.config
        scenes = [scene_texts(scene) for scene in config.get("scenes", [])]
        phase = self._phase(session)
        context = {
            **play_texts(config),
            "scenes": scenes,
            "scene": scenes[phase.number - 1] if phase.name == "performance" else None,
            "happened_counts": happened_counts(session),
            "queue": _stops(session, WAITING),
            "called": _stops(session, CALLED),
            "interventions": visible(session, kind="intervention")[::-1],
            "ratings": rating_summaries(session),
            "obstacles": visible(session, kind="obstacle"),
            "scale": range(SCALE[0], SCALE[1] + 1),
            "on_stage": config.get("on_stage", True),
        }
        # Texts are Texts: each page shows them in its language (a phone's current one,
        # even after switching), else the session's first; the projector in every language.
        if view == "participant":
            context["answers"] = visible(session, kind="answer")[::-1]
            context["my_happened"] = {c.phase_index for c in _mine(participant, "happened")}
            context["my_stop"] = _waiting_stop(participant) or next(
                (c for c in _mine(participant, "stop") if c.data.get("state") == CALLED), None
            )
            context["ahead"] = (
                sum(
                    1
                    for c in context["queue"]
                    if c.data["queue"] < context["my_stop"].data["queue"]
                )
                if context["my_stop"] is not None
                else 0
            )
            context["my_ratings"] = my_ratings(participant)
            context["needs"] = session_needs(session) if phase.name == "closed" else []
            context["actions"] = session_actions(session) if phase.name == "closed" else []
        else:
            staff = view == "facilitator"
            context["scene_rows"] = scene_rows(session, context["happened_counts"])
            context["answers"] = _all(session, "answer", include_hidden=staff)[::-1]
            context["alternatives"] = _all(session, "alternative", include_hidden=staff)[::-1]
            context["grouped"] = {
                answer_id for o in context["obstacles"] for answer_id in o.data.get("answers", [])
            }
            # Which need each obstacle went into, once harvested into the backlog.
            context["need_of"] = (
                {
                    source.contribution_id: need
                    for need in session_needs(session, include_hidden=True)
                    for source in need.sources
                    if source.session_id == session.id
                }
                if staff and phase.name in ("harvest", "closed")
                else {}
            )
        return context

    def report_context(self, session):
        counts = happened_counts(session)
        ratings = rating_summaries(session)
        obstacles = sorted(
            visible(session, kind="obstacle"), key=lambda o: (-len(o.data.get("answers", [])), o.id)
        )
        everyone = db.session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.session_id == session.id)
        )
        rated_by = db.session.scalar(
            select(func.count(func.distinct(Vote.participant_id))).where(
                Vote.session_id == session.id
            )
        )
        return {
            **play_texts(session.config),
            "scenes": [scene_texts(scene) for scene in session.config.get("scenes", [])],
            "scene_rows": scene_rows(session, counts),
            "distributions": rating_distributions(session),
            "happened_counts": counts,
            "obstacles": obstacles,
            "interventions": visible(session, kind="intervention"),
            "alternatives": visible(session, kind="alternative"),
            "answers": visible(session, kind="answer"),
            "ratings": ratings,
            "needs": session_needs(session),
            "actions": session_actions(session),
            "figures": {
                "participants": everyone,
                "happened": sum(counts.values()),
                "answers": len(visible(session, kind="answer")),
                "stops": _count(session, "stop"),
                "alternatives": len(visible(session, kind="alternative")),
                "raters": rated_by,
            },
        }

    def backlog_candidates(self, session):
        """Obstacles become needs, with the people whose answers named them; interventions
        become proposed actions, with how the audience rated them, addressing the obstacles."""
        play = str(text_in(session.config.get("play_title"), session)) or session.title
        candidates = []
        obstacles = sorted(
            visible(session, kind="obstacle"), key=lambda o: (-len(o.data.get("answers", [])), o.id)
        )
        answers = {answer.id: answer for answer in _all(session, "answer")}
        for obstacle in obstacles:
            named_by = [answers[i] for i in obstacle.data.get("answers", []) if i in answers]
            candidates.append(
                BacklogCandidate(
                    title=obstacle.body[:200],
                    description=_(
                        "An obstacle named at the forum theatre “%(play)s”.",
                        play=play,
                    ),
                    contribution_ids=[obstacle.id, *(answer.id for answer in named_by)],
                    people=_people(named_by),
                )
            )
        obstacle_keys = [candidate.key for candidate in candidates]
        ratings = rating_summaries(session)
        interventions = sorted(
            visible(session, kind="intervention"),
            key=lambda i: (-(ratings.get(i.id) or {}).get("average", 0), i.id),
        )
        for intervention in interventions:
            rating = ratings.get(intervention.id)
            candidates.append(
                BacklogCandidate(
                    title=intervention.body[:200],
                    description=_(
                        "Tried in scene %(scene)d of “%(play)s”.",
                        scene=intervention.data.get("scene", 0),
                        play=play,
                    ),
                    contribution_ids=[intervention.id],
                    kind=ACTION,
                    rating=(rating["average"], rating["count"]) if rating else None,
                    addresses=list(obstacle_keys),
                )
            )
        return candidates


# --- queries -------------------------------------------------------------------


def play_texts(config: dict) -> dict[str, Texts]:
    """The play's title, synopsis and protagonist, each a :class:`Texts` (a session made
    before texts were kept per language stored the title and protagonist as plain text)."""
    return {name: Texts.of(config.get(name)) for name in ("play_title", "synopsis", "protagonist")}


def _name(config: dict) -> str:
    """The protagonist's name in the page's language, else as first written."""
    return str(Texts.of(config.get("protagonist")).shown(str(get_locale()), ()))


def rating_distributions(session) -> dict[int, list[tuple[int, int]]]:
    """For each rated intervention, ``(value, people)`` for every value of the scale."""
    rows = db.session.execute(
        select(Vote.contribution_id, Vote.value, func.count())
        .where(Vote.session_id == session.id)
        .group_by(Vote.contribution_id, Vote.value)
    ).all()
    given: dict[int, dict[int, int]] = {}
    for contribution_id, value, people in rows:
        given.setdefault(contribution_id, {})[value] = people
    low, high = SCALE
    return {
        cid: [(value, counts.get(value, 0)) for value in range(low, high + 1)]
        for cid, counts in given.items()
    }


def scene_rows(session, counts: dict[int, int]) -> list[tuple[str, int]]:
    """``("1. <scene title>", taps)`` per scene, in the play's order, for charts."""
    scenes = session.config.get("scenes", [])
    return [
        (f"{n}. {text_in(scene_texts(s)['title'], session)}", counts.get(n, 0))
        for n, s in enumerate(scenes, start=1)
    ]


def _people(contributions) -> int:
    """How many people wrote ``contributions``: each participant once, each note on paper once."""
    return len({c.participant_id for c in contributions if c.participant_id}) + sum(
        1 for c in contributions if not c.participant_id
    )


def happened_counts(session) -> dict[int, int]:
    """ "This happened to me" taps per scene number."""
    counts: dict[int, int] = {}
    for tap in visible(session, kind="happened"):
        scene = tap.data.get("scene")
        counts[scene] = counts.get(scene, 0) + 1
    return counts


def _all(session, kind, include_hidden=False) -> list[Contribution]:
    query = select(Contribution).where(
        Contribution.session_id == session.id, Contribution.kind == kind
    )
    if not include_hidden:
        query = query.where(Contribution.hidden.is_(False))
    return db.session.scalars(query.order_by(Contribution.id)).all()


def _count(session, kind) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Contribution)
        .where(Contribution.session_id == session.id, Contribution.kind == kind)
    )


def _mine(participant, kind, **filters) -> list[Contribution]:
    query = select(Contribution).where(
        Contribution.participant_id == participant.id, Contribution.kind == kind
    )
    for name, value in filters.items():
        query = query.where(getattr(Contribution, name) == value)
    return db.session.scalars(query.order_by(Contribution.id)).all()


def _stops(session, state) -> list[Contribution]:
    return [s for s in _all(session, "stop") if s.data.get("state") == state]


def _alternative(session, alternative_id) -> Contribution | None:
    """The written alternative ``alternative_id`` of ``session``, if the joker named one."""
    if alternative_id in (None, ""):
        return None
    wanted = parse_int(alternative_id, default=-1)
    alternative = next((a for a in _all(session, "alternative") if a.id == wanted), None)
    if alternative is None:
        raise Refused(_("This written alternative is not here any more."))
    return alternative


def _waiting_stop(participant) -> Contribution | None:
    return next((s for s in _mine(participant, "stop") if s.data.get("state") == WAITING), None)


@hookimpl
def register_methods():
    return [ForumTheatre]


# The pages' scripts, files of this package (the Content-Security-Policy allows
# no inline script), served under a prefix no core route uses.
assets = Blueprint(
    "forum_theatre",
    __name__,
    static_folder="static",
    static_url_path="/static",
    url_prefix="/plugins/forum_theatre",
)


@hookimpl
def register_blueprints():
    return [assets]


@hookimpl
def import_session(session, ids):
    """An imported forum: each obstacle's answers named by their new ids."""
    if session.method != ForumTheatre.slug:
        return None
    obstacles = db.session.scalars(
        select(Contribution).where(
            Contribution.session_id == session.id, Contribution.kind == "obstacle"
        )
    )
    for obstacle in obstacles:
        if "answers" in obstacle.data:
            answers = [ids.contribution(a) for a in obstacle.data["answers"]]
            obstacle.data = {**obstacle.data, "answers": [a for a in answers if a is not None]}
    return None
