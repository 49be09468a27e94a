"""The one exception the core raises for a request it refuses."""


class Refused(Exception):
    """A write refused for a reason the person should read.

    ``message`` is already translated into the person's language. ``fields``
    maps the names of the form's fields at fault to what is wrong with each,
    translated too (``{"expenses": "Give the expenses as an amount..."}``),
    for a form to show each message beside its field; ``message`` then says
    it all in one sentence, for a screen that shows only one.
    """

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


class Unavailable(Exception):
    """The database cannot take a write now (busy, or the disk is full).

    Nothing of the write was stored; the sender should try again later.
    Answered with HTTP 503 and, over Socket.IO, ``{"ok": false, "error":
    message, "retry": true}`` so that a phone keeps the write and resends it.
    ``message`` is already translated into the person's language.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
