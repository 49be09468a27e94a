"""The one exception the core raises for a request it refuses."""


class Refused(Exception):
    """A write refused for a reason the person should read.

    ``message`` is already translated into the person's language.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


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
