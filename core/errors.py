"""The one exception the core raises for a request it refuses."""


class Refused(Exception):
    """A write refused for a reason the person should read.

    ``message`` is already translated into the person's language.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
