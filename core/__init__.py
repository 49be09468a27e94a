"""Palabre: the app factory, and the one surface method plugins import from.

A plugin writes ``from palabre import hookimpl, Method, Phase, ...``; every
name in :data:`__all__` is documented in ``docs/plugins.md`` and kept there
by a test. The core's modules (``palabre.contributions``,
``palabre.models``, ...) are its own business and may change.

The helpers that need the database are imported on first use (PEP 562), so
that ``palabre serve`` can patch the standard library for gevent before
anything heavy is imported.
"""

from __future__ import annotations

import importlib
import os
import secrets
from datetime import timedelta
from pathlib import Path

import jinja2
from flask import Flask

from .errors import Refused, Unavailable
from .hookspecs import hookimpl
from .methods import (
    ACTION,
    HOST,
    NEED,
    VOTE,
    BacklogCandidate,
    ContributionKind,
    Method,
    Phase,
    Role,
    contribute,
)

#: Public names imported on first use, and the module each comes from.
_LAZY = {
    # Reading a session's contributions and votes (views, reports, candidates).
    "visible": "contributions",
    "vote_totals": "contributions",
    "votes_used": "contributions",
    "rating_summaries": "contributions",
    "my_ratings": "contributions",
    # Changing contributions inside Method.run_action.
    "add_by_staff": "contributions",
    "update_data": "contributions",
    # A session's plan of phases, and its current phase (built once per configuration and language).
    "plan": "phases",
    "current_phase": "phases",
    # Rooms a method's events go to.
    "ALL": "events",
    "FACILITATORS": "events",
    "PROJECTOR": "events",
    "group_room": "events",
    "participant_room": "events",
    # What a session, a participant, a contribution, a need are.
    "Session": "models",
    "Participant": "models",
    "Contribution": "models",
    "Need": "models",
    "Action": "models",
    "Theme": "models",
    "Status": "models",
    "Vote": "models",
    "RoleLink": "models",
    # Querying: the database session (read inside views; write only where a
    # Method callback says it runs in the core's write transaction).
    "db": "extensions",
    # Configuration forms: a form that cleans what is typed into it, choices.
    "CleanForm": "forms",
    "options": "forms",
    # Numbers a client sent, read without ever raising.
    "parse_int": "inputs",
    # Languages Palabre speaks: code -> (name, direction).
    "LANGUAGES": "i18n",
    # What a facilitator writes for the room, in each of the session's languages.
    "Texts": "authored",
    "TextsField": "authored",
    "text_in": "authored",
    "Shown": "authored",
    # What became of a session: its needs and actions in the backlog.
    "session_needs": "backlog",
    "session_actions": "backlog",
    # Evaluation entries on actions, resting on a session's contributions (findings).
    "record_evaluation": "policy_cycle",
    "withdraw_evaluation": "policy_cycle",
    "session_evaluations": "policy_cycle",
    # Personal links giving a person a role (a host, a connector, an evaluator).
    # A session that is part of another (a dialogue's meeting), from Method.run_action.
    "add_session": "sessions",
    "issue_role_link": "role_links",
    "revoke_role_link": "role_links",
    "role_links_of": "role_links",
    "role_link_url": "role_links",
    # Rate limits keyed on a participant, never an address: ratelimit.allow(key, "5/minute").
    "ratelimit": None,
    # Who may use a plugin's page: the one access check of every staff route and event.
    "protect": "access",
    "staff_required": "access",
    "facilitator_required": "access",
    "admin_required": "access",
    "session_required": "access",
    "may_run": "access",
}

__all__ = [
    "create_app",
    "hookimpl",
    "Method",
    "Phase",
    "ContributionKind",
    "BacklogCandidate",
    "Role",
    "HOST",
    "NEED",
    "ACTION",
    "VOTE",
    "contribute",
    "Refused",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
        value = module if _LAZY[name] is None else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_app(test_config: dict | None = None, plugins=()) -> Flask:
    """Build a Palabre app.

    Configuration comes, each overriding the one before, from the defaults
    below, ``config.py`` in the instance folder, ``PALABRE_*`` environment
    variables (``PALABRE_BASE_URL`` sets ``BASE_URL``) and ``test_config``.
    ``plugins`` are extra hook-implementing objects (see
    :func:`palabre.plugin_host.build_plugin_host`).
    """
    from . import (
        access,
        accounts,
        auth,
        authored,
        backlog,
        delivery,
        health,
        i18n,
        join,
        live,  # importing it registers the socket events
        logs,
        policy_cycle,
        printing,
        ratelimit,
        role_links,
        security,
        sessions,
        settings,
        team,
    )
    from .concurrency import served_by_gevent
    from .database import configure_engine
    from .extensions import babel, csrf, db, login_manager, migrate, socketio
    from .inputs import DatabaseIdConverter, keep_stored_text_clean
    from .plugin_host import build_plugin_host, plugins_command
    from .print_jobs import watch_backlog_writes

    app = Flask(
        __name__,
        # PALABRE_INSTANCE picks another instance folder (database, secret key).
        instance_path=_instance_from_environment(),
        instance_relative_config=True,
        # The shared templates: templates/ in a checkout, palabre/templates once installed.
        template_folder=str(Path(importlib.import_module("palabre.templates").__file__).parent),
    )
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance / 'palabre.db'}",
        # Public address phones use to join, e.g. https://palabre.city.example;
        # when unset the server's address on the local network is used.
        BASE_URL=None,
        # Redis URL shared by several worker processes, when there are several.
        MESSAGE_QUEUE=None,
        # How live sockets may reach the server, in the order phones try them:
        # a WebSocket first (fewer round trips on a slow phone), long-polling
        # if it fails. ``palabre serve --workers N`` allows ["websocket"] only,
        # as a connection may reach any worker (see docs/deploy.md).
        SOCKET_TRANSPORTS=["websocket", "polling"],
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        # "Keep me signed in": only when asked, and never longer than this.
        REMEMBER_COOKIE_DURATION=timedelta(days=30),
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
        # The core's catalog; create_app adds each plugin's (palabre.i18n.use_catalogs).
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        MAX_CONTENT_LENGTH=1024 * 1024,
        # Times are stored in UTC and shown in this zone, e.g. "Europe/Madrid".
        BABEL_DEFAULT_TIMEZONE="UTC",
        # Live writes one participant may send per minute.
        RATE_LIMIT_WRITES="30/minute",
        # Joins one session accepts per minute: 500 phones scanning within
        # 10 s get in; a script creating participants without end does not.
        RATE_LIMIT_JOINS="1200/minute",
        # QR code images (/s/<code>/qr.svg|png) per browser and overall.
        RATE_LIMIT_QR_PER_BROWSER="30/minute",
        RATE_LIMIT_QR_OVERALL="300/minute",
        # Codes typed on the home page per browser and overall.
        RATE_LIMIT_CODES_PER_BROWSER="20/minute",
        RATE_LIMIT_CODES_OVERALL="1200/minute",
        RATE_LIMIT_STORAGE="memory://",
        # Fail a write transaction that yields to another greenlet (see
        # palabre.database); unset, it is on in tests and debug mode only.
        STRICT_WRITES=None,
        # Installed plugins (entry-point or distribution names) not to load.
        DISABLED_PLUGINS=(),
        # Sockets one participant (a phone with a few tabs) and one
        # facilitator (run screen, projector, tablets) may hold at once;
        # beyond, the oldest is closed (see core/capacity.py).
        SOCKETS_PER_PARTICIPANT=4,
        SOCKETS_PER_FACILITATOR=12,
        # Seconds between the server's pings, and how long a pong may take.
        # A phone that stays silent for both (asleep, gone, out of range) is
        # dropped after 45 s and reconnects when it comes back; 25 s of grace
        # lets a weak Wi-Fi retransmit, and a ping every 20 s keeps access
        # points that drop idle connections after 30 s from doing so.
        SOCKET_PING_INTERVAL=20,
        SOCKET_PING_TIMEOUT=25,
        # Seconds ``palabre serve`` waits for a request line, and then for
        # its headers, before closing the connection (half-open or idle
        # keep-alive connections would otherwise hold a file each forever).
        REQUEST_HEADER_TIMEOUT=20,
        # "text" (lines for a person) or "json" (one object per line, for a
        # hosted instance's log collector); see palabre.logs.
        LOG_FORMAT="text",
        # PDFs rendered at once, each by a WeasyPrint worker process using a
        # CPU (see core/render_pool.py): one leaves the other core to the room.
        PRINT_WORKERS=1,
        # The largest session file "Import a session" reads, in bytes.
        IMPORT_MAX_BYTES=30 * 1024 * 1024,
        # Seconds after start, then between rounds, that ``palabre serve``
        # purges sessions past their retention (see palabre.retention).
        PURGE_FIRST_AFTER_S=60,
        PURGE_EVERY_S=6 * 3600,
    )
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("PALABRE")
    if test_config:
        app.config.update(test_config)
    if app.config["STRICT_WRITES"] is None:
        app.config["STRICT_WRITES"] = app.testing or app.debug
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret_key")

    logs.configure_logging(app)
    db.init_app(app)
    keep_stored_text_clean(db.session)
    watch_backlog_writes(db.session)
    with app.app_context():
        configure_engine(app, db.engine)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    babel.init_app(app, locale_selector=i18n.select_locale)
    csrf.init_app(app)
    login_manager.init_app(app)
    app.session_interface = live.SocketAwareSessionInterface()
    socketio.init_app(
        app,
        # `palabre serve` patches the process for gevent: serve on it. Left to
        # choose, Flask-SocketIO picks "threading" under any Flask CLI command,
        # and its run() then refuses to start (Werkzeug is not for production).
        async_mode="gevent" if served_by_gevent() else None,
        message_queue=app.config["MESSAGE_QUEUE"],
        # Same origin only: never "*".
        cors_allowed_origins=None,
        max_http_buffer_size=live.MAX_MESSAGE_BYTES,
        # Neither the server nor Engine.IO logs requests: logs would hold addresses.
        logger=False,
        engineio_logger=False,
        ping_interval=app.config["SOCKET_PING_INTERVAL"],
        ping_timeout=app.config["SOCKET_PING_TIMEOUT"],
        transports=app.config["SOCKET_TRANSPORTS"],
    )

    disabled = app.config["DISABLED_PLUGINS"]
    if isinstance(disabled, str):  # PALABRE_DISABLED_PLUGINS=survey,other
        disabled = [name.strip() for name in disabled.split(",") if name.strip()]
    with app.test_request_context():  # checking methods reads their configuration forms
        host = build_plugin_host(plugins, disabled=disabled)
    app.extensions["palabre"] = host
    i18n.use_catalogs(app, host)
    app.jinja_loader = jinja2.ChoiceLoader(
        [app.jinja_loader]
        + [jinja2.FileSystemLoader(str(m.template_folder)) for m in host.methods.values()]
    )

    ratelimit.init_app(app)
    delivery.init_app(app)
    security.init_app(app)
    access.init_app(app)
    # Before any blueprint: rules bind their converters when they are added.
    app.url_map.converters["int"] = DatabaseIdConverter
    app.context_processor(i18n.template_globals)
    app.add_template_global(settings.instance_settings)
    app.add_template_filter(authored.in_language_filter, "in_language")
    app.add_template_filter(authored.every_language_filter, "in_every_language")
    for blueprint in (
        auth.bp,
        sessions.bp,
        join.bp,
        role_links.bp,
        backlog.bp,
        policy_cycle.bp,
        policy_cycle.city,
        printing.bp,
        settings.bp,
        accounts.bp,
        team.bp,
        team.invitations,
        health.bp,
    ):
        app.register_blueprint(blueprint)
    for blueprints in host.notify("register_blueprints", app=app):
        for blueprint in blueprints:
            app.register_blueprint(blueprint)
    app.register_error_handler(Unavailable, _unavailable)
    auth.register_commands(app)
    app.cli.add_command(plugins_command)
    return app


def _unavailable(error):
    """The database could not take a write now (busy, disk full): 503, nothing half-stored."""
    from flask import render_template

    page = render_template("errors/unavailable.html", message=error.message)
    return page, 503, {"Retry-After": "5"}


def _instance_from_environment() -> str | None:
    folder = os.environ.get("PALABRE_INSTANCE")
    return os.path.abspath(folder) if folder else None


def _instance_secret(path: Path) -> str:
    """Read the secret key from ``path``, creating it on first run."""
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
