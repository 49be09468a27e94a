"""The plugin contract: every hook Palabre calls, and the marker plugins use.

Hooks are called with keyword arguments; an implementation takes only the
arguments it needs, so new arguments can be added without breaking plugins.
Each docstring is the hook's contract, and ``docs/plugins.md`` documents
every one of them (a test fails when one is missing there or untested).
"""

import pluggy

PROJECT_NAME = "palabre"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_methods():
    """Declare the co-design methods a plugin provides.

    :return: a list of :class:`palabre.methods.Method` subclasses. The core
        instantiates each once per app; two methods may not share a ``slug``.
    """


@hookspec
def register_blueprints(app):
    """Add Flask blueprints (extra pages or APIs) to the app.

    Called once while the app is built, after the core's own blueprints.

    :param app: the Flask app being built.
    :return: a list of :class:`flask.Blueprint` objects to register.
    """


@hookspec
def contribution_accepted(session, contribution):
    """Observe a contribution that has just been committed.

    Called after the database commit and after the live broadcast, for
    contributions from phones, plain form posts and paper transcriptions
    alike. Never called twice for the same contribution (a resent write is
    acknowledged but not accepted again).

    :param session: the :class:`palabre.models.Session` it belongs to.
    :param contribution: the committed :class:`palabre.models.Contribution`.
    :return: ignored.
    """


@hookspec
def phase_changed(session, previous, current):
    """Observe a session moving from one phase to another.

    Called after the change is committed and broadcast, including when a
    draft session opens into its first phase; never for a request to enter
    the phase the session is already in.

    :param session: the :class:`palabre.models.Session`.
    :param previous: the :class:`palabre.methods.Phase` left, or ``None`` when
        the session opens from its draft.
    :param current: the :class:`palabre.methods.Phase` entered.
    :return: ignored.
    """


@hookspec
def backlog_item_created(item):
    """Observe a need or an action added to the backlog.

    Called after the commit, whether the item was created by hand or
    distilled from a session's harvest.

    :param item: the new :class:`palabre.models.Need` or :class:`palabre.models.Action`.
    :return: ignored.
    """


@hookspec
def print_sections(document, session):
    """Add sections to a printed document.

    :param document: the name of the document being printed: ``"report"``
        (a session's report), ``"poster"``, or the backlog's ``"action-plan"``,
        ``"monitoring"`` (its monitoring report) and ``"assessment"``.
    :param session: the :class:`palabre.models.Session` printed, or ``None``
        for the backlog.
    :return: a list of ``(title, html)`` pairs appended as sections, or
        ``None``. ``html`` must be :class:`markupsafe.Markup` produced from a
        template, since it is inserted as is.
    """
