"""Themes of the perspective report: answers grouped, and suggestions computed here.

An answer is one question of one interview, named by a reference
``"<interview id>:<question index>"``. A theme is a staff contribution of
kind ``theme`` whose ``data`` holds its names and meeting prompts per
language, the references of its answers and of its chosen quotes, and,
once merged into another, ``merged_into``. Suggestions compare the words of
answers with plain Python on the server: no text is sent anywhere.
"""

from __future__ import annotations

import re
from collections import Counter

from palabre import Contribution, Texts, visible

#: Words too common to say two answers are about the same thing
#: (English, French and Swedish; words under three letters are dropped anyway).
_STOPWORD_TEXT = """
    the and for are was were you our not but has had can all one its out who how why too
    any get got has him her his she they way may off own per via yes les des une est pas
    qui que par sur aux ces ses och att det som för med har den ett
    about after again also because been before being could does doing down each from have
    having here into just like more most much need needs only other over same should some
    such than that their them then there these they this those through very want what when
    where which while with would your there's it's don't dont
    avec aussi avoir cette dans elle elles entre être fait faire leur mais même nous notre
    pour plus sans sont tout tous très vous quand comme parce
    inte eller från till också någon några mycket
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def answer_ref(interview_id: int, question: int) -> str:
    return f"{interview_id}:{question}"


def parse_ref(ref) -> tuple[int, int] | None:
    """``(interview id, question index)`` from a reference, or ``None`` if malformed."""
    left, sep, right = str(ref).partition(":")
    if not sep or not left.isdigit() or not right.isdigit():
        return None
    return int(left), int(right)


def answers_of(interviews) -> dict[str, dict]:
    """Every non-empty answer, by reference: ``{"ref", "interview", "question", "text"}``."""
    found = {}
    for interview in interviews:
        for answer in (interview.data or {}).get("answers", []):
            if answer.get("text"):
                ref = answer_ref(interview.id, answer["q"])
                found[ref] = {
                    "ref": ref,
                    "interview": interview.id,
                    "question": answer["q"],
                    "text": answer["text"],
                }
    return found


def words(text: str) -> set[str]:
    return {w for w in (m.casefold() for m in _WORD.findall(text or "")) if w not in STOPWORDS}


def suggestions(answers: dict[str, dict], themes) -> dict[str, int]:
    """For each answer in no theme, the theme whose answers share most of its words.

    Returns ``{answer reference: theme id}``; answers sharing nothing with
    any theme get no suggestion. The score is the share of the answer's own
    words found in the theme (its names and answers), so that a big theme
    does not win only by being big.
    """
    placed = {ref for theme in themes for ref in theme.data.get("answers", [])}
    vocabulary = {}
    for theme in themes:
        theme_words = set()
        for name in (theme.data.get("names") or {}).values():
            theme_words |= words(name)
        for ref in theme.data.get("answers", []):
            if ref in answers:
                theme_words |= words(answers[ref]["text"])
        vocabulary[theme.id] = theme_words
    suggested = {}
    for ref, answer in answers.items():
        if ref in placed:
            continue
        own = words(answer["text"])
        if not own:
            continue
        scores = {tid: len(own & vocab) / len(own) for tid, vocab in vocabulary.items()}
        best = max(scores, key=lambda tid: (scores[tid], -tid), default=None)
        if best is not None and scores[best] > 0:
            suggested[ref] = best
    return suggested


def shared_words(answers: dict[str, dict], themes, top: int = 8) -> list[tuple[str, list[str]]]:
    """Words that several answers in no theme share: candidates for new themes.

    Returns up to ``top`` pairs ``(word, [answer references])``, the most
    shared first, each word shared by at least two answers.
    """
    placed = {ref for theme in themes for ref in theme.data.get("answers", [])}
    by_word: dict[str, list[str]] = {}
    counts: Counter = Counter()
    for ref, answer in answers.items():
        if ref in placed:
            continue
        for word in words(answer["text"]):
            by_word.setdefault(word, []).append(ref)
            counts[word] += 1
    common = [(word, by_word[word]) for word, n in counts.most_common() if n >= 2]
    return common[:top]


def themes_of(session) -> list[Contribution]:
    """The session's themes still standing (not merged into another), in order."""
    return [t for t in visible(session, kind="theme") if not t.data.get("merged_into")]


def first_text(texts: dict[str, str], session, language: str | None = None) -> str:
    """The text in ``language``, else in the session's first language that has one."""
    return Texts.of(texts).shown(language, session.languages or ()).text


def theme_name(theme, language, session) -> str:
    return first_text(theme.data.get("names") or {}, session, language) or theme.body


def theme_prompt(theme, language, session) -> str:
    return first_text(theme.data.get("prompts") or {}, session, language)


def theme_prompt_language(theme, language, session) -> str | None:
    """The language :func:`theme_prompt` gives the prompt in (for ``lang``, read-aloud)."""
    prompts = theme.data.get("prompts") or {}
    return Texts.of(prompts).shown(language, session.languages or ()).lang if prompts else None
