"""The instance's own settings, changed by administrators only.

* who organises (a name and a logo for the printed reports);
* how long the text of contributions is kept (:mod:`palabre.retention`);
* whether facilitators may open and change the backlog (administrators always may);
* which other sites may show the projector view in a frame (none unless listed).

Stored one row per name in :class:`palabre.models.InstanceSetting`; read with
:func:`instance_settings` (a template global, so print templates can put the
organiser on their cover). Only names listed in :data:`DEFAULTS` exist.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, StringField, SubmitField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

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
#: "1" when facilitators may open and change the backlog, "" when only administrators may.
FACILITATORS_BACKLOG = "facilitators_backlog"
#: Origins (one per line) of the sites that may show the projector view in a frame.
PROJECTOR_FRAME_ANCESTORS = "projector_frame_ancestors"
#: Every setting and its value when never set. Nothing is purged unless an administrator
#: chooses a period: deleting what people said must be a decision, not an upgrade's side effect.
DEFAULTS = {
    ORGANISER_NAME: "",
    ORGANISER_LOGO: "",
    RETENTION_MONTHS: "",
    FACILITATORS_BACKLOG: "1",
    PROJECTOR_FRAME_ANCESTORS: "",
}
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


#: A host as a Content-Security-Policy source may name it: letters, digits, dots,
#: hyphens, optionally ``*.`` in front for every subdomain.
_HOST = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
#: Frame ancestors an instance may list, so that the header stays short.
MAX_FRAME_ANCESTORS = 20


def frame_ancestor_origins(text: str) -> list[str]:
    """The origins listed in ``text`` (one per line or separated by spaces), normalised.

    Each is ``http(s)://host[:port]``, as a Content-Security-Policy source
    expression names a site; raises ``ValueError`` naming the first entry
    that is not one (a path, a keyword such as ``*``, a quote or a ``;``
    that would change the policy), or :class:`TooManyOrigins` beyond
    :data:`MAX_FRAME_ANCESTORS`.
    """
    origins = []
    for entry in text.split():
        parts = urlsplit(entry.lower())
        try:
            port = parts.port
        except ValueError:
            raise ValueError(entry) from None
        host = parts.hostname or ""
        if (
            parts.scheme not in ("http", "https")
            or not _HOST.fullmatch(host)
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
            or parts.password is not None
        ):
            raise ValueError(entry)
        origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_FRAME_ANCESTORS:
        raise TooManyOrigins(origins[MAX_FRAME_ANCESTORS])
    return origins


class TooManyOrigins(ValueError):
    """More frame ancestors than :data:`MAX_FRAME_ANCESTORS`."""


def projector_frame_ancestors() -> list[str]:
    """The origins that may frame the projector view; none unless the administrators listed some."""
    return frame_ancestor_origins(instance_settings()[PROJECTOR_FRAME_ANCESTORS])


def _frame_ancestors_check(form, field) -> None:
    try:
        frame_ancestor_origins(field.data or "")
    except TooManyOrigins:
        raise ValidationError(
            ngettext(
                "List at most %(num)d site.", "List at most %(num)d sites.", MAX_FRAME_ANCESTORS
            )
        ) from None
    except ValueError as error:
        raise ValidationError(
            _(
                "“%(entry)s” is not a site's address such as https://slides.example.org.",
                entry=str(error),
            )
        ) from None


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
    facilitators_backlog = BooleanField(
        _l("Facilitators may open and change the backlog"),
        description=_l(
            "Its needs, actions, stakeholders, printed plans and exports. Without it, only "
            "administrators see the backlog and harvest sessions into it; the public page of "
            "what became of people's ideas stays as it is."
        ),
    )
    projector_frame_ancestors = TextAreaField(
        _l("Sites that may show the projector screen in a frame"),
        validators=[Length(max=2000), _frame_ancestors_check],
        description=_l(
            "One address per line, such as https://slides.example.org, for a slide or "
            "streaming tool that embeds the projector screen. Leave empty so that no other "
            "site can frame any page of Palabre."
        ),
    )
    submit = SubmitField(_l("Save the settings"))


access.protect(bp, access.ADMINISTRATOR)
#: Settings whose new values the audit log keeps (the logo is too big to keep).
AUDITED = (ORGANISER_NAME, RETENTION_MONTHS, FACILITATORS_BACKLOG, PROJECTOR_FRAME_ANCESTORS)


@bp.route("/", methods=["GET", "POST"])
def edit():
    """The settings page: the organiser, the retention period, the backlog, the projector."""
    current = instance_settings()
    form = SettingsForm(
        organiser_name=current[ORGANISER_NAME],
        retention_months=int(current[RETENTION_MONTHS]) if current[RETENTION_MONTHS] else None,
        facilitators_backlog=current[FACILITATORS_BACKLOG] == "1",
        projector_frame_ancestors=current[PROJECTOR_FRAME_ANCESTORS],
    )
    if form.validate_on_submit():
        values = {
            ORGANISER_NAME: (form.organiser_name.data or "").strip(),
            RETENTION_MONTHS: str(form.retention_months.data or ""),
            FACILITATORS_BACKLOG: "1" if form.facilitators_backlog.data else "",
            PROJECTOR_FRAME_ANCESTORS: "\n".join(
                frame_ancestor_origins(form.projector_frame_ancestors.data or "")
            ),
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
        access.audit_this(**{name: values[name] for name in AUDITED})
        flash(_("Settings saved."), "success")
        return redirect(url_for("settings.edit"))
    status = 400 if form.errors else 200
    return render_template("settings/edit.html", form=form, settings=current), status
