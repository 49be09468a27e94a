"""Form pieces shared by the core's pages and the plugins' configuration forms."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import SelectChoice
from wtforms.fields import SelectMultipleField
from wtforms.widgets import CheckboxInput, ListWidget


def options(pairs: Iterable[tuple[object, object]]) -> list[SelectChoice]:
    """Turn ``(value, label)`` pairs into choices for a select or radio field."""
    return [SelectChoice(value, label) for value, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as checkboxes, easier to tap than a list box."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ButtonForm(FlaskForm):
    """A button that posts: only the CSRF token is needed."""
