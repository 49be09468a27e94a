"""Survey, a Palabre method: statements rated on a scale, with comments.

After the city of Oulu's survey of its Ukrainian community (the seed guide's
chapter 4): a few statements, each rated by everyone from "strongly
disagree" to "strongly agree", with a comment if they wish. The room sees
the distributions live on the projector; the report prints them as bar
charts with the comments; statements that score low become backlog
candidates, with the ratings and comments that show why.

Written as any third-party method is, from ``palabre``'s public surface only:
read it with Palabre's ``docs/plugins.md`` at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, FloatField, IntegerField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from palabre import (
    VOTE,
    BacklogCandidate,
    CleanForm,
    Contribution,
    ContributionKind,
    Method,
    Phase,
    Refused,
    Status,
    Vote,
    add_by_staff,
    contribute,
    db,
    hookimpl,
    my_ratings,
    options,
    session_actions,
    session_needs,
    visible,
)

MAX_STATEMENTS = 20
MAX_STATEMENT = 300
MAX_LABEL = 40

#: The scales a session may use. A kind's rating scale is fixed when the
#: method is declared, so each scale is a kind of statement of its own;
#: the session's configuration picks one.
SCALES = {"4": (1, 4), "5": (1, 5), "7": (1, 7)}
STATEMENT_KINDS = {key: f"statement_{key}" for key in SCALES}

#: Colours of each scale's values, lowest first, and the text written on each:
#: a diverging red-blue palette (ColorBrewer RdBu), readable by people who do
#: not tell red from green, in print as on screen.
PALETTES = {
    4: [("#ca0020", "#fff"), ("#f4a582", "#111"), ("#92c5de", "#111"), ("#0571b0", "#fff")],
    5: [
        ("#ca0020", "#fff"),
        ("#f4a582", "#111"),
        ("#c8c8c8", "#111"),
        ("#92c5de", "#111"),
        ("#0571b0", "#fff"),
    ],
    7: [
        ("#b2182b", "#fff"),
        ("#ef8a62", "#111"),
        ("#fddbc7", "#111"),
        ("#c8c8c8", "#111"),
        ("#d1e5f0", "#111"),
        ("#67a9cf", "#111"),
        ("#2166ac", "#fff"),
    ],
}


def default_statements() -> str:
    """What Oulu's survey asked about, as statements to agree or disagree with."""
    return "\n".join(
        [
            _("I know what registering with the city's services would mean for me."),
            _("I would like to stay in this city."),
            _("I have enough chances to meet people here."),
            _("I can manage everyday matters in the local language."),
            _("I know where to find help when I need it."),
        ]
    )


def statements_in(text: str | None) -> list[str]:
    """The statements typed one per line, blank lines left out."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class SurveyConfig(CleanForm):
    statements = TextAreaField(
        _l("Statements, one per line"),
        default=default_statements,
        validators=[DataRequired()],
    )
    scale = RadioField(
        _l("Scale"),
        choices=options(
            [
                ("4", _l("1 to 4 (no middle answer)")),
                ("5", _l("1 to 5")),
                ("7", _l("1 to 7")),
            ]
        ),
        default="5",
    )
    low_label = StringField(
        _l("What the lowest score means"),
        default=lambda: _("Strongly disagree"),
        validators=[DataRequired(), Length(max=MAX_LABEL)],
    )
    high_label = StringField(
        _l("What the highest score means"),
        default=lambda: _("Strongly agree"),
        validators=[DataRequired(), Length(max=MAX_LABEL)],
    )
    comments = BooleanField(_l("Ask for a comment on each statement"), default=True)
    threshold = FloatField(
        _l("Statements whose mean score is under this go to the backlog"),
        default=2.5,
        validators=[InputRequired()],
    )
    minutes = IntegerField(
        _l("Minutes for answering"), default=10, validators=[NumberRange(min=1, max=120)]
    )

    def validate_statements(self, field):
        statements = statements_in(field.data)
        if not statements:
            raise ValidationError(_("Write at least one statement."))
        if len(statements) > MAX_STATEMENTS:
            raise ValidationError(_("At most %(n)d statements.", n=MAX_STATEMENTS))
        if any(len(s) > MAX_STATEMENT for s in statements):
            raise ValidationError(_("Keep each statement under %(n)d characters.", n=MAX_STATEMENT))

    def validate_threshold(self, field):
        low, high = SCALES.get(self.scale.data, SCALES["5"])
        if field.data is not None and not low < field.data <= high:
            raise ValidationError(
                _("Choose a score above %(low)d and up to %(high)d.", low=low, high=high)
            )


@dataclass
class Result:
    """What a session's participants said of one statement."""

    statement: Contribution
    #: How many people gave each value of the scale, lowest first.
    distribution: dict[int, int]
    comments: list[Contribution] = field(default_factory=list)
    threshold: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.distribution.values())

    @property
    def mean(self) -> float | None:
        if not self.count:
            return None
        return sum(value * n for value, n in self.distribution.items()) / self.count

    @property
    def low(self) -> bool:
        """Whether the statement scores under the session's threshold."""
        return self.mean is not None and self.mean < self.threshold

    def share(self, value: int) -> float:
        """The percentage of answers that gave ``value``, for a bar's length."""
        return 100 * self.distribution[value] / self.count if self.count else 0.0

    def below_middle(self) -> int:
        """How many answers fall in the lower half of the scale."""
        values = sorted(self.distribution)
        middle = (values[0] + values[-1]) / 2
        return sum(n for value, n in self.distribution.items() if value < middle)


class Survey(Method):
    slug = "survey"
    title = _l("Survey")
    description = _l(
        "Everyone rates a few statements from their phone and may comment on each; "
        "the room sees the answers live, and low scores go to the backlog."
    )
    config_form = SurveyConfig
    contribution_kinds = {
        **{
            name: ContributionKind(
                name, _l("Statement"), max_length=MAX_STATEMENT, grouped=False, rating=SCALES[key]
            )
            for key, name in STATEMENT_KINDS.items()
        },
        # A comment names its statement (reply_to). Only staff, the projector
        # and its writer get it live: phones do not read each other's answers.
        "comment": ContributionKind(
            "comment",
            _l("Comment"),
            max_length=1000,
            grouped=False,
            staff_only=True,
            answers=tuple(STATEMENT_KINDS.values()),
        ),
    }
    votable_kinds = tuple(STATEMENT_KINDS.values())

    def config_from_form(self, form) -> dict:
        return {
            "statements": statements_in(form.statements.data),
            "scale": form.scale.data if form.scale.data in SCALES else "5",
            "low_label": form.low_label.data,
            "high_label": form.high_label.data,
            "comments": bool(form.comments.data),
            "threshold": float(form.threshold.data),
            "minutes": form.minutes.data,
        }

    def phases(self, config):
        # While answering and while the results are shown, ratings and comments
        # are taken: latecomers count, and the bars move while the room talks.
        answering = {VOTE, *([contribute("comment")] if config.get("comments", True) else [])}
        return [
            Phase("survey:welcome", _("Welcome")),
            Phase(
                "survey:answering",
                _("Answering"),
                allows=frozenset(answering),
                minutes=config.get("minutes"),
            ),
            Phase("survey:results", _("Results"), allows=frozenset(answering)),
            Phase("survey:closed", _("Closed")),
        ]

    # --- the statements, made when the survey starts ---------------------------------

    def on_enter_phase(self, session, phase):
        """Leaving the welcome, write the statements as the session's own contributions.

        Ratings and comments need something to attach to; made once, they stay
        (going back and forth between phases does not make them again).
        """
        if phase.name == "welcome" or self.statements(session, hidden_too=True):
            return []
        kind = self.statement_kind(session.config)
        for number, text in enumerate(session.config.get("statements", []), start=1):
            add_by_staff(session, kind, text, {"number": number})
        return []

    def prepare_contribution(self, session, participant, contribution):
        """A comment is about one statement: refuse one that names none."""
        if contribution.kind == "comment" and contribution.reply_to_id is None:
            raise Refused(_("Choose the statement your comment is about."))

    # --- reading a session ----------------------------------------------------------------

    def statement_kind(self, config) -> str:
        return STATEMENT_KINDS.get(str(config.get("scale", "5")), STATEMENT_KINDS["5"])

    def scale(self, config) -> tuple[int, int]:
        return SCALES.get(str(config.get("scale", "5")), SCALES["5"])

    def statements(self, session, hidden_too=False) -> list[Contribution]:
        kinds = STATEMENT_KINDS.values()
        if hidden_too:
            query = db.select(Contribution).where(
                Contribution.session_id == session.id, Contribution.kind.in_(kinds)
            )
            return db.session.scalars(query.order_by(Contribution.id)).all()
        return [c for c in visible(session) if c.kind in kinds]

    def results(self, session, hidden_comments=False) -> list[Result]:
        """Each visible statement with its ratings' distribution and its comments.

        Hidden (moderated) comments are left out, unless ``hidden_comments``
        (the facilitator's screen, where they can be restored).
        """
        low, high = self.scale(session.config)
        threshold = float(session.config.get("threshold", 2.5))
        counts = db.session.execute(
            db.select(Vote.contribution_id, Vote.value, db.func.count(Vote.id))
            .where(Vote.session_id == session.id)
            .group_by(Vote.contribution_id, Vote.value)
        ).all()
        results = {
            s.id: Result(s, dict.fromkeys(range(low, high + 1), 0), threshold=threshold)
            for s in self.statements(session)
        }
        for statement_id, value, n in counts:
            if statement_id in results and value in results[statement_id].distribution:
                results[statement_id].distribution[value] = n
        if hidden_comments:
            comments = db.session.scalars(
                db.select(Contribution)
                .where(Contribution.session_id == session.id, Contribution.kind == "comment")
                .order_by(Contribution.id)
            ).all()
        else:
            comments = visible(session, kind="comment")
        for comment in comments:
            if comment.reply_to_id in results:
                results[comment.reply_to_id].comments.append(comment)
        return list(results.values())

    def common_context(self, session, hidden_comments=False) -> dict:
        low, high = self.scale(session.config)
        scale = list(range(low, high + 1))
        return {
            "results": self.results(session, hidden_comments),
            "scale": scale,
            "colours": dict(zip(scale, PALETTES[len(scale)], strict=True)),
            "low_label": session.config.get("low_label", ""),
            "high_label": session.config.get("high_label", ""),
            "threshold": float(session.config.get("threshold", 2.5)),
            "asks_comments": session.config.get("comments", True),
        }

    def view_context(self, session, view, participant=None):
        context = self.common_context(session, hidden_comments=view == "facilitator")
        if participant is not None:
            context["my_ratings"] = my_ratings(participant)
            context["my_comments"] = [
                c for c in visible(session, kind="comment") if c.participant_id == participant.id
            ]
            # "You said, we did" once it is over: what the backlog made of it.
            over = session.status in (Status.CLOSED, Status.ARCHIVED)
            context["needs"] = session_needs(session) if over else []
            context["actions"] = session_actions(session) if over else []
        return context

    def report_context(self, session):
        return {
            **self.common_context(session),
            "needs": session_needs(session),
            "actions": session_actions(session),
        }

    def backlog_candidates(self, session):
        """Statements whose mean is under the threshold, lowest first.

        The provenance is the statement, then its comments; the description
        gives the mean and the number of ratings; the priority (``votes``) is
        how many people answered in the lower half of the scale.
        """
        low, high = self.scale(session.config)
        results = sorted(
            (r for r in self.results(session) if r.low), key=lambda r: (r.mean, r.statement.id)
        )
        return [
            BacklogCandidate(
                title=result.statement.body[:200],
                description=_(
                    "Mean score %(mean).1f on a scale from %(low)d (%(low_label)s) to "
                    "%(high)d (%(high_label)s), from %(count)d ratings; %(below)d in the "
                    "lower half.",
                    mean=result.mean,
                    low=low,
                    high=high,
                    low_label=session.config.get("low_label", ""),
                    high_label=session.config.get("high_label", ""),
                    count=result.count,
                    below=result.below_middle(),
                ),
                contribution_ids=[result.statement.id, *(c.id for c in result.comments)],
                votes=result.below_middle(),
            )
            for result in results
        ]


# The live bars and the rating buttons' looks: files of this package, served
# under a prefix no core route uses.
assets = Blueprint(
    "palabre_survey",
    __name__,
    static_folder="static",
    static_url_path="/static",
    url_prefix="/plugins/survey",
)


@hookimpl
def register_methods():
    return [Survey]


@hookimpl
def register_blueprints():
    return [assets]
