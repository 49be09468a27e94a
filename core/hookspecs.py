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


@hookspec
def export_session(session):
    """Add a plugin's own part to a session's export file.

    Called while ``session`` is exported (the run screen's "Export" link,
    ``palabre export``), for every session whatever its method. A plugin
    that keeps rows of its own about a session returns them here; one that
    keeps everything in the core's rows (``Session.config``,
    ``Contribution.data``, ``Participant.state``) needs nothing here, since
    those are exported as they are.

    :param session: the :class:`palabre.models.Session` exported.
    :return: a dict of JSON-able values under keys of the plugin's own (its
        slug), merged into the file's ``"plugins"`` object, or ``None``.
        Never put personal data in it.
    """


@hookspec
def import_session(session, parts, ids):
    """Take a plugin's part of an imported session: its own rows, and the ids it keeps in JSON.

    Called inside the import's write transaction, after the core has written
    the new session's rows and before the commit: write with ``db.session``,
    do not commit, do nothing that waits (no I/O, no network). The session's
    ``config``, its contributions' ``data`` and its participants' ``state``
    arrive as they were in the file, so ids of the old instance kept there (a
    contribution's, a personal link's) must be translated with ``ids``.

    :param session: the new :class:`palabre.models.Session` (with its new id).
    :param parts: the file's ``"plugins"`` object: every plugin's part, keyed
        as :func:`export_session` returned them (empty for a file without).
    :param ids: a :class:`palabre.transfer.IdMap`: ``ids.contribution(old)``,
        ``ids.participant(old)``, ``ids.role_link(old)``, ``ids.need(old)``,
        ``ids.action(old)`` give the new id of a record of the file, or
        ``None`` when the file has none such.
    :return: the keys of ``parts`` the plugin took (a list), or ``None``. A
        file with a part no plugin takes is refused (its plugin is not
        installed). Raise :class:`palabre.Refused` with a translated message
        to refuse the file: nothing of it is written.
    """
