"""``palabre serve``: check and migrate the database, then serve Palabre on the network.

A laptop serving a room must hold up against phones that vanish mid-request,
scripts that open connections and never finish them, and being stopped with
Ctrl+C. So ``palabre serve``:

* refuses to start on an empty or damaged database file, rather than
  putting a new, empty instance in its place (see :mod:`palabre.backups`);
* raises its open-file limit to the hard limit (every connection is an open
  file; the usual soft limit of 1,024 stops a laptop at about 500 phones)
  and, near that limit, stops accepting connections rather than failing
  them and the database with it;
* closes a connection whose request line, then headers, do not arrive within
  ``REQUEST_HEADER_TIMEOUT`` seconds (20: weak Wi-Fi retransmits within
  that; a half-open or idle keep-alive connection does not hold a file
  forever). Live sockets are dropped by Engine.IO's pings instead
  (``SOCKET_PING_INTERVAL`` and ``SOCKET_PING_TIMEOUT`` in ``core/__init__.py``);
* never learns, so never logs, a client's address: the WSGI server drops it
  on accept, and its error log (malformed requests) is written without it;
* on SIGINT (Ctrl+C) or SIGTERM, stops accepting, lets requests under way
  finish for a few seconds, then checkpoints the SQLite write-ahead log into
  the database file, so ``palabre.db`` alone holds everything.

``palabre serve --workers N`` runs N such servers as child processes on one
port (``SO_REUSEPORT``: the kernel spreads connections among them), for a
deployment on PostgreSQL with Redis as the message queue between them (see
``docs/deploy.md``). The first process migrates the database, then watches
its workers and starts again one that died. As a connection may reach any
worker, live sockets use WebSocket only (no long-polling, whose requests
must all reach the same worker), and rate limits are counted in Redis.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path

import click
import gevent
import gevent.event
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from gevent import pywsgi
from gevent.pool import Pool
from sqlalchemy import func, select

from .auth import new_setup_token, sweep_revoked_sockets
from .backups import DatabaseFileError, database_problem, refusal, sqlite_file, take_lock
from .capacity import HANG_UP
from .concurrency import served_by_gevent
from .extensions import db, socketio
from .join import is_loopback, lan_address
from .models import Facilitator
from .retention import purge_periodically

try:
    import resource
except ImportError:  # Windows: no open-file limit to raise
    resource = None

#: Open files kept free for the database, PDF rendering and the like.
FILES_KEPT_FREE = 200
#: Open files one connection may take: a WebSocket holds a copy of its socket.
FILES_PER_CONNECTION = 2
#: Below this many open files, warn that the room may not all get in.
FEW_FILES = 4096
#: Seconds requests under way may take to finish once the server is asked to stop.
STOP_GRACE_S = 3
#: The garbage collector's thresholds while serving: young collections every 20,000
#: allocations instead of 700, the next generation every 20 of those, a full collection
#: at most every 100 of these (the defaults: 700, 10, 10). A burst of phones
#: allocates fast; at the defaults the collector ran 1,600 times in a join and a write
#: burst and 13 times in full, each full run stopping every phone for about 50 ms; with
#: these, 48 times and never in full: its share of the server's CPU went from 5.5% to 2.7%.
GC_THRESHOLDS = (20_000, 20, 100)
#: What the server records as every client's address.
NO_ADDRESS = "-"
#: Connections waiting to be accepted, per worker (the kernel's backlog).
LISTEN_BACKLOG = 2048
#: Seconds between two checks that every worker is alive, and before restarting one.
WORKER_CHECK_S = 1


class _SlowRequest(ValueError):
    """The request's headers did not arrive in time (a client error, answered 400)."""


class PrivateHandler(pywsgi.WSGIHandler):
    """gevent's request handler with deadlines for slow requests and no address in logs."""

    def read_requestline(self):
        # A timeout is an OSError: gevent closes the connection without a word.
        late = TimeoutError("no request line in time")
        with gevent.Timeout(self.server.request_timeout, late):
            return super().read_requestline()

    def read_request(self, raw_requestline):
        late = _SlowRequest(f"headers not complete within {self.server.request_timeout} s")
        with gevent.Timeout(self.server.request_timeout, late):
            return super().read_request(raw_requestline)

    def get_environ(self):
        environ = super().get_environ()
        environ[HANG_UP] = functools.partial(_hang_up, self.socket)
        return environ

    def log_error(self, msg, *args):
        # gevent's own version starts the line with the socket, whose
        # description holds the client's address.
        try:
            message = msg % args if args else msg
        except (TypeError, ValueError):
            message = f"{msg!r} {args!r}"
        self.server.error_log.write(message + "\n")


def _hang_up(sock: socket.socket) -> None:
    """End a connection at once, whoever holds its socket (WebSockets hold a copy)."""
    with contextlib.suppress(OSError):  # already closed: nothing to do
        sock.shutdown(socket.SHUT_RDWR)


class PrivateWSGIServer(pywsgi.WSGIServer):
    """gevent's WSGI server, without client addresses and with request deadlines.

    ``request_timeout`` is the seconds allowed for a request line and then
    for its headers; ``max_connections`` caps connections open at once.
    """

    handler_class = PrivateHandler

    def __init__(self, listener, application, *, request_timeout: float, max_connections: int):
        super().__init__(
            listener,
            application,
            spawn=Pool(max_connections),
            # No access log: it would record every visitor's address.
            log=None,
        )
        self.request_timeout = request_timeout

    def do_read(self):
        accepted = super().do_read()
        if not accepted:
            return accepted
        sock, _address = accepted
        # Forgotten on arrival: nothing downstream can log or store it.
        return sock, NO_ADDRESS

    def handle(self, sock, address):
        try:
            super().handle(sock, address)
        except Exception:
            # Reported here, not by gevent, whose report shows the socket
            # and so the client's address.
            traceback.print_exc()


def raise_open_file_limit() -> int | None:
    """Raise this process's soft limit on open files to its hard limit.

    Returns the limit in force afterwards (``None`` where there is none).
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # Where the hard limit is "unlimited" the system caps the soft one
        # (macOS: 10,240); keep what there is if it refuses.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def checkpoint(database: Path) -> bool:
    """Move everything from the write-ahead log into ``database``; ``True`` when done.

    Call once the server has stopped: any connection still reading keeps
    the log from being emptied.
    """
    db.engine.dispose()
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
        busy, _pages, _moved = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


def phones_address(configured: str | None, host: str, port: int) -> tuple[str, str | None]:
    """The address phones are told to open, and a warning when phones cannot reach it.

    ``configured`` is ``BASE_URL``. Without it, a server listening on every
    interface is reached at this machine's network address; one listening
    on loopback only (``--host 127.0.0.1``) answers on this computer alone,
    so its QR codes encode the loopback address and the warning says how to
    let phones in.
    """
    if configured:
        return configured.rstrip("/"), None
    if is_loopback(host):
        shown = "127.0.0.1" if host == "localhost" else f"[{host}]" if ":" in host else host
        address = f"http://{shown}:{port}"
        return address, (
            f"Palabre listens on {host} only: this computer can open it, phones cannot, and "
            "the QR codes and posters show that address. To let phones join, start it with "
            "--host 0.0.0.0 (every network), or set PALABRE_BASE_URL to the address phones "
            "reach it at (behind a proxy)."
        )
    if host in ("0.0.0.0", "::", ""):
        return f"http://{lan_address() or 'localhost'}:{port}", None
    return f"http://{host}:{port}", None


@click.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port (more than one needs PostgreSQL and Redis).",
)
@click.option("--worker", is_flag=True, hidden=True, help="Run as one of --workers.")
@with_appcontext
def serve(host: str, port: int, workers: int, worker: bool) -> None:
    """Bring the database up to date and serve Palabre (Ctrl+C stops it)."""
    app = current_app._get_current_object()
    if not served_by_gevent():
        raise click.ClickException("Start the server with the palabre command: palabre serve")
    if workers > 1:
        _supervise(app, host, port, workers)
        return
    database = sqlite_file()
    lock = None
    if database is not None:
        if problem := database_problem(database):
            raise refusal(database, problem)
        lock = take_lock(database, exclusive=False)
        if lock is None:
            raise DatabaseFileError(
                f"palabre restore is replacing {database}: start Palabre once it has finished."
            )
        # Held until the server stops: palabre restore refuses to run meanwhile.
    files = raise_open_file_limit()
    # The join QR codes and posters encode an address that answers (palabre.join.base_url).
    app.config["LISTEN_HOST"] = host
    if not worker:
        upgrade()
        _welcome(app, host, port, files)
    db.session.remove()
    listener = _shared_listener(host, port) if worker else (host, port)
    server = PrivateWSGIServer(
        listener,
        app,
        request_timeout=app.config["REQUEST_HEADER_TIMEOUT"],
        max_connections=max(16, ((files or 200_000) - FILES_KEPT_FREE) // FILES_PER_CONNECTION),
    )
    socketio.wsgi_server = server  # what socketio.stop() stops, as after socketio.run()
    # Sign-outs in another worker, removals and ended invitations close staff sockets here too.
    socketio.start_background_task(sweep_revoked_sockets, app)
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, server.close)
    # Sessions past their retention are purged in the background, in short batches.
    purger = gevent.spawn(purge_periodically, app)
    # What is loaded by now (libraries, the app, its plugins) lives as long as the server:
    # the garbage collector's full collections need not walk it again, each time with
    # hundreds of phones waiting.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    server.serve_forever(stop_timeout=STOP_GRACE_S)
    purger.kill(block=False)
    if database is not None:
        if checkpoint(database):
            click.echo(f"Palabre has stopped. Everything is saved in {database}.")
        else:
            click.echo(
                f"Palabre has stopped. Part of the data is still in {database.name}-wal: "
                f"keep it with {database.name} when copying the database (or use palabre backup).",
                err=True,
            )
        lock.close()


def _welcome(app, host: str, port: int, files: int | None) -> None:
    """Say where phones join, how to create the first account, and whether files are short."""
    address, warning = phones_address(app.config.get("BASE_URL"), host, port)
    click.echo(f"Palabre is running. Phones join at {address}/")
    if warning:
        click.echo(warning, err=True)
    if not db.session.scalar(select(func.count()).select_from(Facilitator)):
        token = new_setup_token()
        click.echo(
            "No facilitator account yet. To create the first one, open\n"
            f"  http://localhost:{port}/auth/setup/{token}\n"
            "on this computer (the link works once), or run\n"
            "  palabre create-facilitator you@example.org"
        )
    if files is not None and files < FEW_FILES:
        click.echo(
            f"This system lets Palabre keep only {files} files open, so at most about "
            f"{(files - FILES_KEPT_FREE) // FILES_PER_CONNECTION} phones can be connected at "
            "once; raise it with "
            "`ulimit -n` before starting Palabre.",
            err=True,
        )


def _shared_listener(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` that the other workers bind too (``SO_REUSEPORT``)."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(LISTEN_BACKLOG)
    return listener


def worker_environment(config) -> dict[str, str]:
    """The environment of a worker: this one, with what several workers must share.

    Sockets use WebSocket only, and rate limits are counted in the message
    queue's Redis unless another shared storage is configured.
    """
    env = dict(os.environ)
    env["PALABRE_SOCKET_TRANSPORTS"] = json.dumps(["websocket"])
    if config["RATE_LIMIT_STORAGE"].startswith("memory://"):
        env["PALABRE_RATE_LIMIT_STORAGE"] = config["MESSAGE_QUEUE"]
    return env


def _supervise(app, host: str, port: int, count: int) -> None:
    """Migrate, then run ``count`` workers on ``host:port`` until SIGINT or SIGTERM.

    A worker that dies (killed, out of memory) is started again; its phones
    reconnect meanwhile to the others and catch up by replay.
    """
    if sqlite_file() is not None or not app.config.get("MESSAGE_QUEUE"):
        raise click.ClickException(
            "Several workers need a PostgreSQL database (SQLALCHEMY_DATABASE_URI) and Redis "
            "between them (MESSAGE_QUEUE): see docs/deploy.md."
        )
    files = raise_open_file_limit()
    upgrade()
    _welcome(app, host, port, files)
    db.session.remove()
    db.engine.dispose()  # the workers make their own connections
    argv = [sys.executable, "-c", "from palabre.cli import main; main()", "serve"]
    argv += ["--host", host, "--port", str(port), "--worker"]
    env = worker_environment(app.config)
    stopping = gevent.event.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stopping.set)
    running = [subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL) for _ in range(count)]
    click.echo(f"{count} workers: processes {', '.join(str(p.pid) for p in running)}.")
    while not stopping.wait(WORKER_CHECK_S):
        for index, process in enumerate(running):
            if process.poll() is not None:
                click.echo(
                    f"Worker {process.pid} stopped ({process.returncode}); starting another.",
                    err=True,
                )
                running[index] = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=STOP_GRACE_S + 10)
        except subprocess.TimeoutExpired:
            process.kill()
    click.echo("Palabre has stopped.")
