"""Form pieces shared by the core's pages and the plugins' configuration forms."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import SelectChoice
from wtforms.fields import PasswordField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

from .i18n import wtforms_translations
from .inputs import clean_text


class CleanForm(FlaskForm):
    """A form whose text fields pass through :func:`palabre.inputs.clean_text`.

    Every form of the core and the built-in plugins derives from it, so that
    what a person types is stored without NUL, control or bidi override
    characters, and validators (required, length) see the text as stored.
    Passwords are left exactly as typed.
    """

    class Meta:
        def bind_field(self, form, unbound_field, options):
            field_class = unbound_field.field_class
            if issubclass(field_class, StringField) and not issubclass(field_class, PasswordField):
                filters = unbound_field.kwargs.get("filters", ())
                options = {**options, "filters": [clean_text, *filters]}
            return super().bind_field(form, unbound_field, options)

        def get_translations(self, form):
            return wtforms_translations()


def options(pairs: Iterable[tuple[object, object]]) -> list[SelectChoice]:
    """Turn ``(value, label)`` pairs into choices for a select or radio field."""
    return [SelectChoice(value, label) for value, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as checkboxes, easier to tap than a list box."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ButtonForm(CleanForm):
    """A button that posts: only the CSRF token is needed."""
