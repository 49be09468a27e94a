"""Sessions of every method with 3, 30 or 300 contributions, for the printed reports' layout.

Each builder writes straight to the database, in the shapes the methods store (the
methods' own tests cover how they get there), so that a 300-contribution report is
built in a second: notes, answers and reports of uneven lengths, in English, French
and Arabic, some hidden (never printed), with votes, ratings and needs where the
method has them. ``build(app, slug, n)`` returns the session's id;
``build_backlog(app, n)`` fills the backlog with ``n`` needs and a third as many actions.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from palabre import HOST
from palabre.backlog import create_need
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.models import (
    Action,
    ActionStatus,
    Contribution,
    Participant,
    Session,
    Stakeholder,
    Theme,
    Vote,
    hash_token,
)
from palabre.testing import new_session

#: Sentences people wrote, in three languages and three lengths, cycled through.
SAID = [
    "Finding a flat takes months.",
    "Les cours du soir sont complets dès septembre, et il n’y a pas de garde d’enfants.",
    "نحتاج إلى مترجم في المستشفى، لأن الأطباء لا يتكلمون العربية.",
    "The library helped my children with homework; the staff explained the school system "
    "to us slowly and twice, which nobody else had done in a year.",
    "🙏 Thank you to the volunteers at the food bank.",
    "Nobody told us which office to go to first, so we went to four offices in one week, "
    "lost two days of work and still did not have the right form at the end of it.",
    "Il faut des informations en plusieurs langues à la mairie.",
]


def said(n: int) -> str:
    """The ``n``-th sentence, numbered so each text is unique."""
    return f"{SAID[n % len(SAID)]} ({n + 1})"


def _people(session: Session, count: int, *, groups: int = 0) -> list[Participant]:
    languages = ("en", "fr", "ar")
    people = [
        Participant(
            session_id=session.id,
            token_hash=hash_token(uuid.uuid4().hex),
            language=languages[k % 3],
            group=str(1 + k % groups) if groups else None,
            role=HOST if groups and k < groups else None,
        )
        for k in range(count)
    ]
    db.session.add_all(people)
    db.session.flush()
    return people


def _add(session, kind, body, phase, *, person=None, group=None, data=None, **flags):
    contribution = Contribution(
        session_id=session.id,
        participant_id=person.id if person else None,
        client_id=uuid.uuid4().hex,
        kind=kind,
        phase_index=phase,
        group=group,
        body=body,
        data=data or {},
        **flags,
    )
    db.session.add(contribution)
    db.session.flush()
    return contribution


def _vote(session, person, contribution, value=1):
    db.session.add(
        Vote(
            session_id=session.id,
            participant_id=person.id,
            contribution_id=contribution.id,
            client_id=uuid.uuid4().hex,
            value=value,
        )
    )


def _need(session, n, contributions):
    create_need(
        f"Need {n + 1}: {said(n)[:120]}",
        description=said(n + 3),
        theme=[Theme.HOUSING, Theme.HEALTH, Theme.WORK, Theme.LANGUAGE][n % 4],
        session=session,
        contribution_ids=[c.id for c in contributions],
    )


def _session(app, slug, n, phase, config=None) -> int:
    ref = new_session(
        app, slug, config, phase=phase, title=f"{slug.replace('_', ' ').title()} with {n}"
    )
    with app.app_context(), write_transaction():
        session = db.session.get(Session, ref.id)
        session.venue = "Centro Cívico Delicias"
        session.starts_at = datetime(2026, 3, 14, 18, 0)
    return ref.id


def world_cafe(app, n: int) -> int:
    """Notes and table summaries over three rounds at five tables, insights with dots."""
    session_id = _session(app, "world_cafe", n, 4)
    with app.test_request_context(), write_transaction():
        session = db.session.get(Session, session_id)
        people = _people(session, max(3, n // 3), groups=5)
        insights = []
        for k in range(n):
            person = people[k % len(people)]
            if k % 6 == 5:
                insights.append(_add(session, "insight", said(k), 4, person=person, group="1"))
            elif k % 10 == 9:
                _add(session, "summary", said(k), 1 + k % 3, person=person, group=person.group)
            else:
                _add(
                    session,
                    "note",
                    said(k),
                    1 + k % 3,
                    person=person,
                    group=person.group,
                    hidden=k % 13 == 12,
                    transcribed=k % 11 == 10,
                )
        for k, person in enumerate(people):
            if insights:
                _vote(session, person, insights[k % len(insights)])
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        for k, insight in enumerate(insights[:10]):
            _need(session, k, [insight])
    return session_id


def forum_theatre(app, n: int) -> int:
    """Taps, reflection answers, written alternatives, interventions rated, obstacles."""
    session_id = _session(app, "forum_theatre", n, 6)
    with app.test_request_context(), write_transaction():
        session = db.session.get(Session, session_id)
        people = _people(session, max(3, n // 2))
        answers, interventions = [], []
        for k in range(n):
            person = people[k % len(people)]
            if k % 4 == 0:
                _add(session, "happened", "", 1 + k % 3, person=person, data={"scene": 1 + k % 3})
            elif k % 4 == 1:
                answers.append(_add(session, "answer", said(k), 4, person=person))
            elif k % 8 == 2:
                _add(session, "alternative", said(k), 5, person=person, hidden=k % 16 == 10)
            else:
                interventions.append(
                    _add(
                        session,
                        "intervention",
                        said(k),
                        5,
                        data={
                            "number": len(interventions) + 1,
                            "scene": 1 + k % 3,
                            "moment": "At the desk",
                            "happened": said(k + 1),
                            "written": False,
                        },
                    )
                )
        for k, intervention in enumerate(interventions):
            for j, person in enumerate(people[: 1 + k % 7]):
                _vote(session, person, intervention, 1 + (j + k) % 5)
        obstacles = []
        for k in range(max(1, len(answers) // 5)):
            group = answers[k * 5 : k * 5 + 5]
            obstacles.append(
                _add(
                    session,
                    "obstacle",
                    f"Obstacle {k + 1}: {said(k)[:80]}",
                    6,
                    data={"answers": [a.id for a in group], "count": len(group)},
                )
            )
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        for k, obstacle in enumerate(obstacles[:10]):
            _need(session, k, [obstacle])
    return session_id


def citizen_dialogue(app, n: int) -> int:
    """Interviews of three answers each (about ``n`` answers), by connectors, in the listening."""
    from palabre.plugins.citizen_dialogue import interview_body, interview_data

    from .morsil import AGES, GENDERS, GUIDE, HOME_LANGUAGES, LANGUAGES_HEARD, PLACES, TIMES

    session_id = _session(app, "citizen_dialogue", n, 1, {"guide": GUIDE, "population": 875})
    with app.test_request_context(), write_transaction():
        session = db.session.get(Session, session_id)
        for k in range(max(1, n // 3)):
            fields = {
                "language": LANGUAGES_HEARD[k % 70],
                "place": PLACES[k % 70],
                "consent": "yes",
                "respondent": "resident",
                "age": AGES[k % 70],
                "gender": GENDERS[k % 70],
                "time_in_city": TIMES[k % 70],
                "home_language": HOME_LANGUAGES[k % 70],
                **{f"q{q}": said(3 * k + q) for q in range(1, 4)},
            }
            data = interview_data(session, fields, by="connector", connector=f"C-0{k % 5 + 1}")
            _add(session, "interview", interview_body(data), 1, data=data, hidden=k % 17 == 16)
    return session_id


def mystery_shopping(app, n: int) -> int:
    """Visit reports on the default services by six evaluators, findings and context."""
    from palabre.plugins.mystery_shopping.audit import default_audit

    audit = {
        **default_audit(4),
        "services": [
            {"id": f"s{k}", "name": {"en": name}, "kind": {"en": "Advice"}, "area": {}}
            for k, name in enumerate(
                ["Tower Hamlets Law Centre", "East End Advice Desk", "Poplar Migrant Help"],
                start=1,
            )
        ],
    }
    session_id = _session(app, "mystery_shopping", n, 2, audit)
    with app.test_request_context(), write_transaction():
        session = db.session.get(Session, session_id)
        services = [s["id"] for s in session.config["services"]]
        criteria = [c["id"] for c in session.config["criteria"]]
        people = _people(session, 6)
        for k in range(n):
            person = people[k % 6]
            if k % 5 == 4:
                _add(
                    session,
                    "finding",
                    said(k),
                    2,
                    data={"service": services[k % len(services)], "agreed": k % 2 == 0},
                )
            elif k % 10 == 3:
                _add(session, "context", said(k), 2, person=person)
            else:
                _add(
                    session,
                    "visit",
                    said(k),
                    1,
                    person=person,
                    data={
                        "service": services[k % len(services)],
                        "code": f"E{k % 6 + 1}",
                        "scores": {c: 1 + (k + j) % 4 for j, c in enumerate(criteria)},
                        "minutes": 90,
                        "expenses": "4.80",
                        "date": date(2026, 3, 1 + k % 28).isoformat(),
                    },
                    hidden=k % 19 == 18,
                )
    return session_id


BUILDERS = {
    "world_cafe": world_cafe,
    "forum_theatre": forum_theatre,
    "citizen_dialogue": citizen_dialogue,
    "mystery_shopping": mystery_shopping,
}


def build(app, slug: str, n: int) -> int:
    return BUILDERS[slug](app, n)


def build_backlog(app, n: int) -> None:
    """``n`` needs from a café, and an action for every third, for the council's plan."""
    session_id = _session(app, "world_cafe", n, 4)
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        for k in range(n):
            _need(session, k, [])
        with write_transaction():
            from palabre.models import Need

            needs = db.session.scalars(db.select(Need).order_by(Need.id)).all()
            owner = Stakeholder(name="Housing department")
            for k, need in enumerate(needs[::3]):
                action = Action(
                    title=f"Action {k + 1}: {said(k)[:100]}",
                    objective=said(k + 1),
                    indicator="Families helped within a year",
                    owner=owner,
                    budget_amount=12000 + k,
                    budget_currency="EUR",
                    start_date=date(2026, 9, 1),
                    end_date=date(2027, 6, 30),
                    status=ActionStatus.PLANNED,
                )
                action.needs = [need]
                db.session.add(action)
