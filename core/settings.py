"""The instance's own settings: who organises (a name and a logo for the printed reports),
and how long the text of contributions is kept (:mod:`palabre.retention`).

Stored one row per name in :class:`palabre.models.InstanceSetting`; read with
:func:`instance_settings` (a template global, so print templates can put the
organiser on their cover) and changed on the settings page by an
administrator. Only names listed in :data:`DEFAULTS` exist.
"""

from __future__ import annotations

import base64

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, StringField, SubmitField
from wtforms.validators import Length, NumberRange, Optional

from . import access
from .database import write_transaction
from .extensions import db
from .forms import CleanForm
from .models import InstanceSetting

bp = Blueprint("settings", __name__, url_prefix="/settings")

ORGANISER_NAME = "organiser_name"
ORGANISER_LOGO = "organiser_logo"
#: Months the text of contributions is kept after a session closes; "" keeps it for good.
RETENTION_MONTHS = "retention_months"
#: Every setting and its value when never set. Nothing is purged unless an administrator
#: chooses a period: deleting what people said must be a decision, not an upgrade's side effect.
DEFAULTS = {ORGANISER_NAME: "", ORGANISER_LOGO: "", RETENTION_MONTHS: ""}
#: The largest logo accepted, in bytes: it is embedded in every printed report.
MAX_LOGO_BYTES = 300_000
#: Logo formats accepted, by their first bytes (never SVG: it can carry scripts).
LOGO_FORMATS = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def instance_settings() -> dict[str, str]:
    """Every setting by name, defaults filled in. The logo is a ``data:`` URL, or ``""``."""
    stored = dict(db.session.execute(select(InstanceSetting.name, InstanceSetting.value)).all())
    return {name: stored.get(name, default) for name, default in DEFAULTS.items()}


def save_settings(values: dict[str, str]) -> None:
    """Store ``values`` (names from :data:`DEFAULTS` only; others raise ``KeyError``)."""
    with write_transaction():
        for name, value in values.items():
            if name not in DEFAULTS:
                raise KeyError(name)
            setting = db.session.get(InstanceSetting, name)
            if setting is None:
                db.session.add(InstanceSetting(name=name, value=value))
            else:
                setting.value = value


def logo_data_url(data: bytes) -> str | None:
    """A ``data:`` URL for a PNG or JPEG logo, or ``None`` when it is neither or too big."""
    if not data or len(data) > MAX_LOGO_BYTES:
        return None
    for magic, mimetype in LOGO_FORMATS.items():
        if data.startswith(magic):
            return f"data:{mimetype};base64,{base64.b64encode(data).decode()}"
    return None


class SettingsForm(CleanForm):
    organiser_name = StringField(
        _l("Organiser"),
        validators=[Length(max=200)],
        description=_l("Printed on the cover of every report, e.g. “City of Zaragoza”."),
    )
    logo = FileField(
        _l("Logo (PNG or JPEG, up to 300 KB)"),
        description=_l("Printed on the cover of every report."),
    )
    remove_logo = BooleanField(_l("Remove the logo"))
    retention_months = IntegerField(
        _l("Keep what participants wrote for (months after a session closes)"),
        validators=[Optional(), NumberRange(min=1, max=600)],
        description=_l(
            "Then the text of the session's contributions is deleted; its counts and the "
            "needs and actions it fed stay in the backlog. Leave empty to keep everything."
        ),
    )
    submit = SubmitField(_l("Save the settings"))


access.protect(bp, access.ADMINISTRATOR)


@bp.route("/", methods=["GET", "POST"])
def edit():
    """The instance settings page: the organiser's name and logo, the retention period."""
    current = instance_settings()
    form = SettingsForm(
        organiser_name=current[ORGANISER_NAME],
        retention_months=int(current[RETENTION_MONTHS]) if current[RETENTION_MONTHS] else None,
    )
    if form.validate_on_submit():
        values = {
            ORGANISER_NAME: (form.organiser_name.data or "").strip(),
            RETENTION_MONTHS: str(form.retention_months.data or ""),
        }
        upload = request.files.get(form.logo.name)
        if form.remove_logo.data:
            values[ORGANISER_LOGO] = ""
        elif upload and upload.filename:
            logo = logo_data_url(upload.read(MAX_LOGO_BYTES + 1))
            if logo is None:
                form.logo.errors = [_("Choose a PNG or JPEG image of at most 300 KB.")]
                return render_template("settings/edit.html", form=form, settings=current), 400
            values[ORGANISER_LOGO] = logo
        save_settings(values)
        flash(_("Settings saved."), "success")
        return redirect(url_for("settings.edit"))
    return render_template("settings/edit.html", form=form, settings=current)
