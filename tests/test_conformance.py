"""The plugin contract, checked by the test kit that ships with Palabre.

The built-in methods pass ``assert_method_conforms`` like any third-party
method would; a method that breaks the contract is caught, with a message
that says how.
"""

from __future__ import annotations

import pytest

from palabre import ContributionKind, Method, Phase, contribute, hookimpl


@pytest.mark.pdf
@pytest.mark.parametrize("method", ["world_cafe", "forum_theatre", "mystery_shopping"])
def test_the_built_in_methods_conform(assert_method_conforms, method):
    assert_method_conforms(method)


class Careless(Method):
    """Its projector fails in Arabic."""

    slug = "careless"
    title = "Careless"
    contribution_kinds = {"note": ContributionKind("note", "Note", grouped=False)}

    def phases(self, config):
        takes = frozenset({contribute("note")})
        return [
            Phase("careless:welcome", "Welcome"),
            Phase("careless:talk", "Talk", allows=takes),
            Phase("careless:closed", "Closed", allows=takes),
        ]


@pytest.fixture
def palabre_plugins(tmp_path):
    folder = tmp_path / "templates" / "careless"
    folder.mkdir(parents=True)
    for view in ("participant", "facilitator", "projector", "report"):
        (folder / f"{view}.html").write_text(
            '{% extends "base.html" %}{% block content %}{{ session.title }}{% endblock %}'
        )
    (folder / "projector.html").write_text(
        '{% extends "base.html" %}{% block content %}'
        '{% if page_lang == "ar" %}{{ session.no_such_field.upper() }}{% endif %}'
        "{% endblock %}"
    )
    Careless.template_folder = tmp_path / "templates"

    class Plugin:
        @hookimpl
        def register_methods(self):
            return [Careless]

    return [Plugin()]


def test_a_method_that_breaks_the_contract_is_caught(assert_method_conforms):
    with pytest.raises(
        AssertionError,
        match=r"careless, phase 0 \(careless:welcome\), in ar, projector view: UndefinedError",
    ):
        assert_method_conforms("careless")


def test_the_fixtures_run_a_session_from_phones(make_session, make_phone, go_to_phase):
    session = make_session("careless", phase=0)
    phone = make_phone(session.code, language="ar")
    assert phone.contribute("note", "مرحبا")["ok"] is False
    go_to_phase(session, 1)
    ack = phone.contribute("note", "مرحبا")
    assert ack["ok"] is True
    assert phone.events("contribution.added")[-1]["data"]["body"] == "مرحبا"
    assert 'dir="rtl"' in phone.page().text
