"""What Palabre logs, and how: plain lines for a person, JSON lines for a log collector.

Palabre logs events about itself (a socket event that failed, a plugin that
did not load, a busy database), never about people: no address, user agent,
cookie, name or contribution text goes into a message (``palabre serve``
does not even learn addresses). With ``LOG_FORMAT = "json"`` each record is
one JSON object per line, so that a hosted instance's collector (journald,
Loki, ...) can filter on level, logger and worker without parsing text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

#: The logger of the app and of every ``palabre.*`` module.
LOGGER = "palabre"
#: Marks the handler :func:`configure_logging` installed, so a second app replaces it.
_HANDLER_NAME = "palabre.json"


class JsonLines(logging.Formatter):
    """One JSON object per record: ``time`` (UTC), ``level``, ``logger``, ``worker``, ``message``.

    ``exception`` holds the traceback when there is one. Nothing else of the
    record is copied: extra attributes could carry what must not be logged.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "worker": os.getpid(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StandardError(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(app) -> None:
    """Write Palabre's records as JSON lines to standard error when ``LOG_FORMAT`` is "json"."""
    from flask.logging import default_handler

    logger = logging.getLogger(LOGGER)
    replaced = [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]
    for handler in replaced:
        logger.removeHandler(handler)
    if app.config["LOG_FORMAT"] != "json":
        if replaced:  # put back the text handler the JSON one stood in for
            logger.addHandler(default_handler)
        return
    handler = _StandardError()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonLines())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    # Flask's own handler would write each record a second time, as text.
    logger.removeHandler(default_handler)
