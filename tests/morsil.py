"""A citizen dialogue modelled on Mörsil (the guide's chapter 4), for report tests and screens.

70 residents heard (8% of the village's 875), plus 7 staff of the
municipality's services and 3 local politicians, by five community
connectors; their answers grouped into seven themes; four dialogue meetings
on those themes, each an evening of its own (a session that is part of the
dialogue) with its own date and place; three citizen-led projects; feedback
forms by phone and from paper. Everything goes through the method's own
code paths (the core's ``accept`` and ``vote``, the facilitator's actions),
only without sockets, so that building it takes seconds.

Some groups are small on purpose (3 local politicians, 3 people under 18, 3 of another
gender, 4 interviews in Tigrinya, 4 Tigrinya and 2 Ukrainian speakers at home, 2 people
answering 2 to "Did you feel heard?"): no screen, export or printed page may show them.
"""

from __future__ import annotations

import random

from palabre import contributions, phases
from palabre.actions import run as run_action
from palabre.contributions import add_by_staff
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.models import Contribution, Participant, Session, hash_token
from palabre.plugins.citizen_dialogue import interview_body, interview_data, themes_of
from palabre.plugins.citizen_dialogue.meetings import meetings_of
from palabre.testing import new_cid, new_session

GUIDE = {
    "en": [
        "What is good about living in Mörsil?",
        "What is hard in your everyday life here?",
        "What would make your life here better?",
    ],
    "fr": [
        "Qu’est-ce qui est bien à Mörsil ?",
        "Qu’est-ce qui est difficile au quotidien ici ?",
        "Qu’est-ce qui améliorerait votre vie ici ?",
    ],
    "ar": [
        "ما الجيد في العيش في مورسيل؟",
        "ما الصعب في حياتك اليومية هنا؟",
        "ما الذي قد يحسن حياتك هنا؟",
    ],
}

#: The seven themes of the perspective report, with the answers heard about each.
THEMES = [
    (
        "Getting around",
        "services",
        "How could we get to Järpen and Östersund without a car?",
        [
            "The bus to Järpen runs twice a day, never in the evening.",
            "Without a car you cannot reach the job centre in Östersund.",
            "No bus on Sundays, so we stay at home.",
        ],
    ),
    (
        "Work and internships",
        "work",
        "How could newcomers find work or an internship here?",
        [
            "I was a nurse at home; here nobody knows what my diploma means.",
            "The sawmill would take interns if someone explained the papers.",
            "Small firms need people but do not know how to reach us.",
        ],
    ),
    (
        "Learning Swedish",
        "language",
        "How could everyone practise Swedish every day?",
        [
            "The Swedish class is in the morning when I work.",
            "I learn the words in class but never speak with Swedes.",
            "A place to practise Swedish with neighbours would help.",
        ],
    ),
    (
        "Meeting places",
        "social_life",
        "Where could old and new villagers meet?",
        [
            "The football club is good, but the fee is high for big families.",
            "There is no café open in the evening for young people.",
            "The church hall is empty most of the week.",
        ],
    ),
    (
        "Housing",
        "housing",
        "What would make housing work for families here?",
        [
            "Our flat is too small for five children.",
            "Empty houses stand in the village while we wait for a flat.",
            "The heating bill in winter is a shock.",
        ],
    ),
    (
        "Children and school",
        "education",
        "How could the school and families work together?",
        [
            "The teachers are kind, but the letters from school are only in Swedish.",
            "My daughter needs help with homework and I cannot give it.",
            "The after-school club is full.",
        ],
    ),
    (
        "Being welcomed",
        "rights",
        "How could the municipality and villagers welcome newcomers?",
        [
            "Nobody told us where to ask when we arrived.",
            "The neighbours greet us, but we never enter each other's homes.",
            "The information evening was only in Swedish.",
        ],
    ),
]

PLACES = ["home"] * 20 + ["shop"] * 14 + ["school"] * 12 + ["workplace"] * 10
PLACES += ["association"] * 8 + ["phone"] * 6
LANGUAGES_HEARD = ["local"] * 30 + ["ar"] * 18 + ["so"] * 9 + ["fa"] * 7 + ["ti"] * 4
LANGUAGES_HEARD += ["other"] * 2
AGES = ["18_29"] * 16 + ["30_44"] * 22 + ["45_64"] * 17 + ["65_plus"] * 8 + ["under_18"] * 3
AGES += [""] * 4
GENDERS = ["woman"] * 38 + ["man"] * 29 + ["other"] * 3
HOME_LANGUAGES = ["local"] * 26 + ["ar"] * 19 + ["so"] * 10 + ["fa"] * 5 + ["ti"] * 4
HOME_LANGUAGES += ["uk"] * 2 + [""] * 4
TIMES = ["under_1"] * 12 + ["1_5"] * 30 + ["over_5"] * 16 + ["born_here"] * 12

#: The four meetings: their evening, their place, their themes.
MEETINGS = [
    ("2026-03-05T18:30", "Mörsil community hall", ("Getting around", "Work and internships")),
    ("2026-03-19T18:30", "Mörsil school library", ("Learning Swedish", "Children and school")),
    ("2026-04-02T18:30", "Mörsil community hall", ("Meeting places", "Housing")),
    ("2026-04-16T18:30", "Mörsil church hall", ("Being welcomed",)),
]
#: Staff of the services and local politicians heard besides the 70 residents.
OFFICIALS = ["staff"] * 7 + ["politician"] * 3
IDEAS = {
    "Getting around": ["A village car pool to Järpen, organised on a phone group"],
    "Work and internships": ["Open days at the sawmill for newcomers"],
    "Learning Swedish": ["A language café at the library on Thursday evenings"],
    "Children and school": ["Homework help by retired teachers"],
    "Meeting places": ["Saturday football for all ages, free for families"],
    "Housing": ["A list of empty houses that owners would rent"],
    "Being welcomed": ["A welcome walk in many languages each spring"],
}
PROJECTS = [
    ("A village car pool to Järpen, organised on a phone group", "Car pool to Järpen",
     "Mörsil village association", "Insurance for volunteer drivers"),
    ("A language café at the library on Thursday evenings", "Language café at the library",
     "Language café volunteers", "The library open on Thursday evenings"),
    ("Saturday football for all ages, free for families", "Saturday football for all",
     "Mörsil IF parents' group", "The sports hall on Saturday mornings"),
]  # fmt: skip
FEEDBACK = [(5, 4, 4)] * 9 + [(4, 4, 3)] * 8 + [(3, 3, 2)] * 5 + [(2, 3, 1)] * 2
FEEDBACK_COMMENTS = {0: "For the first time someone asked me.", 9: "Too few evenings."}

# The plan: 0 preparation, 1 listening, 2 theming, 3 meetings, 4 projects, 5 feedback, 6 closed.
LISTENING, THEMING, MEETINGS_PHASE, PROJECTS_PHASE, FEEDBACK_PHASE, CLOSED = 1, 2, 3, 4, 5, 6
# A meeting's plan: 0 welcome, 1 views, ideas and dots, 2 closed.
MEETING_WORK, MEETING_CLOSED = 1, 2


def _participant(session, name: str, language: str = "en") -> Participant:
    with write_transaction():
        participant = Participant(
            session_id=session.id, token_hash=hash_token(f"{session.id}-{name}"), language=language
        )
        db.session.add(participant)
    return participant


def build_morsil(app, *, closed: bool = True, languages=("en", "fr", "ar")):
    """Create the Mörsil dialogue; returns its ``SessionRef``.

    With ``closed=False`` it stays in its feedback stage, with the feedback given.
    """
    ref = new_session(
        app,
        "citizen_dialogue",
        {
            "guide": GUIDE,
            "population": 875,
            "population_by_age": {
                "under_18": 210,
                "18_29": 140,
                "30_44": 180,
                "45_64": 200,
                "65_plus": 145,
            },
        },
        phase=LISTENING,
        title="Citizen dialogue in Mörsil",
        languages=languages,
    )
    with app.test_request_context():
        session = db.session.get(Session, ref.id)
        session.venue = "Mörsil, Åre municipality"
        _interviews(session)
        phases.go_to(session, THEMING)
        _themes(session)
        phases.go_to(session, MEETINGS_PHASE)
        for number, (starts_at, venue, names) in enumerate(MEETINGS, start=1):
            _meeting(session, number, starts_at, venue, names)
        phases.go_to(session, PROJECTS_PHASE)
        _projects(session)
        phases.go_to(session, FEEDBACK_PHASE)
        _feedback(session)
        if closed:
            phases.go_to(session, CLOSED)
    return ref


#: Answers per theme: 210 answers (three per interview), as unevenly as people spoke.
WEIGHTS = (42, 36, 33, 30, 27, 24, 18)


def _interviews(session) -> None:
    texts = [
        texts[j % len(texts)]
        for (_name, _c, _p, texts), weight in zip(THEMES, WEIGHTS, strict=True)
        for j in range(weight)
    ]
    random.Random(8).shuffle(texts)
    answers = iter(texts)
    with write_transaction():
        for k in range(70):
            fields = {
                "language": LANGUAGES_HEARD[k],
                "place": PLACES[k],
                "consent": "yes",
                "age": AGES[k],
                "gender": GENDERS[k],
                "time_in_city": TIMES[k],
                "home_language": HOME_LANGUAGES[k],
            }
            for question in range(1, 4):
                fields[f"q{question}"] = next(answers)
            fields["respondent"] = "resident"
            connector = f"C-0{k % 5 + 1}"
            data = interview_data(session, fields, by="connector", connector=connector)
            add_by_staff(session, "interview", interview_body(data), data)
        for k, respondent in enumerate(OFFICIALS):
            # Staff and politicians answered one question each, in the local language.
            _name, _c, _p, theme_texts = THEMES[k % len(THEMES)]
            fields = {
                "language": "local",
                "place": "workplace",
                "consent": "yes",
                "respondent": respondent,
                "q3": theme_texts[k % len(theme_texts)],
            }
            data = interview_data(session, fields, by="paper", connector=None)
            add_by_staff(session, "interview", interview_body(data), data)


def _action(session, name, **data) -> None:
    run_action(session, name, {"name": name, **data})


def _themes(session) -> None:
    for name, category, prompt, _texts in THEMES:
        _action(
            session, "theme.create", **{"name-en": name}, **{"prompt-en": prompt}, category=category
        )
    by_name = {theme.body: theme for theme in themes_of(session)}
    texts = {text: name for name, _c, _p, answers in THEMES for text in answers}
    refs: dict[str, list[str]] = {}
    for interview in contributions.visible(session, kind="interview"):
        for answer in interview.data["answers"]:
            theme = texts[answer["text"]]
            refs.setdefault(theme, []).append(f"{interview.id}:{answer['q']}")
    for name, theme_refs in refs.items():
        _action(session, "answers.move", answers=theme_refs, theme=str(by_name[name].id))
        # The first answer of each of its texts is a quote.
        seen = set()
        for ref in theme_refs:
            interview_id, question = (int(x) for x in ref.split(":"))
            text = db.session.get(Contribution, interview_id).data["answers"]
            text = next(a["text"] for a in text if a["q"] == question)
            if text not in seen:
                seen.add(text)
                _action(session, "quote.toggle", theme=str(by_name[name].id), answer=ref)


def _meeting(session, number: int, starts_at: str, venue: str, names) -> None:
    """Schedule a meeting from the dialogue, then hold it: its own phones, views, ideas, dots."""
    by_name = {theme.body: theme for theme in themes_of(session)}
    _action(
        session,
        "meeting.schedule",
        starts_at=starts_at,
        venue=venue,
        themes=[str(by_name[n].id) for n in names],
    )
    meeting = meetings_of(session)[number - 1]
    phases.go_to(meeting, 0)
    phases.go_to(meeting, MEETING_WORK)
    people = [_participant(meeting, f"m{number}-{k}") for k in range(8)]
    ideas = []
    for k, person in enumerate(people):
        theme = by_name[names[k % len(names)]]
        contributions.accept(
            meeting,
            person,
            client_id=new_cid(),
            kind_name="view",
            body=f"View {k + 1} on {theme.body.lower()}: it matters to my family.",
            fields={"theme": str(theme.id)},
        )
        if k < len(names):
            ideas.append(
                contributions.accept(
                    meeting,
                    person,
                    client_id=new_cid(),
                    kind_name="idea",
                    body=IDEAS[names[k]][0],
                    fields={"theme": str(theme.id)},
                )
            )
    for k, person in enumerate(people):
        for idea in ideas[: 1 + k % 2]:
            contributions.vote(meeting, person, client_id=new_cid(), contribution_id=idea.id)
    phases.go_to(meeting, MEETING_CLOSED)


def _projects(session) -> None:
    ideas = {
        idea.body: idea
        for meeting in meetings_of(session)
        for idea in contributions.visible(meeting, kind="idea")
    }
    for idea_text, title, lead, from_city in PROJECTS:
        _action(
            session,
            "project.propose",
            idea=str(ideas[idea_text].id),
            title=title,
            lead_group=lead,
            from_city=from_city,
        )
    first = contributions.visible(session, kind="project")[0]
    _action(
        session,
        "project.update",
        project=str(first.id),
        status="started",
        lead_group=first.data["lead_group"],
        from_city=first.data["from_city"],
    )


def _feedback(session) -> None:
    for k, (heard, express, change) in enumerate(FEEDBACK):
        comment = FEEDBACK_COMMENTS.get(k, "")
        if k % 4 == 3:  # one form in four was filled in on paper
            _action(
                session,
                "feedback.transcribe",
                heard=str(heard),
                express=str(express),
                change=str(change),
                comment=comment,
            )
            continue
        contributions.accept(
            session,
            _participant(session, f"f{k}"),
            client_id=new_cid(),
            kind_name="feedback",
            body=comment,
            fields={"heard": str(heard), "express": str(express), "change": str(change)},
        )
