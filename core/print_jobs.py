"""Large printouts as background jobs, and their PDFs kept until the backlog changes.

The action plan of a city's whole backlog runs to dozens of pages and takes
seconds to lay out. A facilitator who asks for it gets a job (shared with
anyone asking for the same document meanwhile) and a page that follows its
progress; the PDF is then kept in the instance folder, under the backlog's
current *generation*, and handed out at once until the backlog changes.

The generation is a random token in ``print-cache/backlog.generation``. Any
commit that writes a backlog row (:data:`BACKLOG_MODELS`, or a session's
title or purge date, which the plan prints) replaces it, after the write lock is released;
PDFs of older generations are never served again and are deleted when a new
one is stored. A job reads the generation *before* it reads the backlog, so
a write landing while it runs leaves its PDF under the older token, unused.
The file lives beside the database, so every process of one instance sees it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

from .database import WRITE_LOCK_KEY, after_commit
from .models import (
    Action,
    ActionSource,
    ActionUpdate,
    Contribution,
    CustomTheme,
    Need,
    NeedMerge,
    NeedSource,
    Session,
    Stakeholder,
)

#: Rows whose writes change the printed plan or monitoring report (stakeholders
#: are owners and partners, custom themes name needs). New backlog models belong here.
BACKLOG_MODELS: tuple[type, ...] = (
    Need,
    NeedSource,
    NeedMerge,
    Action,
    ActionSource,
    ActionUpdate,
    Stakeholder,
    CustomTheme,
)
#: Columns of other models the plan prints, or the city's page shows (a contribution
#: hidden takes the needs resting on it off that page).
PRINTED_COLUMNS: dict[type, tuple[str, ...]] = {
    Session: ("title", "purged_at"),
    Contribution: ("hidden",),
}
#: ``app.extensions`` key of the app's :class:`PrintJobs`.
EXTENSION_KEY = "palabre.print_jobs"
CACHE_FOLDER = "print-cache"
#: Finished jobs remembered (for their progress pages); older ones are forgotten.
JOBS_KEPT = 50
_CHANGED = "palabre.backlog_changed"

#: Steps of a job, in order, with the share of the work done when each starts.
STEPS = {"queued": 0, "gathering": 2, "parse": 8, "style": 12, "layout": 20, "pdf": 92, "done": 100}


@dataclass
class PrintJob:
    """One printout on its way: where it stands, and its file once done."""

    id: str
    document: str
    key: str
    generation: str
    #: Where to ask for this document again (its PDF is gone once a newer one is printed).
    again: str = "/"
    #: Pages expected, from the last time this document was printed (None the first time).
    expected_pages: int | None = None
    step: str = "queued"
    page: int = 0
    pages: int | None = None
    error: str | None = None
    path: Path | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def done(self) -> bool:
        return self.step == "done"

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def percent(self) -> int:
        """Share of the work done, 0 to 100; laying out pages counts by page."""
        if self.step == "layout" and self.expected_pages:
            share = min(self.page / self.expected_pages, 1)
            return int(STEPS["layout"] + share * (STEPS["pdf"] - STEPS["layout"] - 2))
        return STEPS.get(self.step, 0)

    @property
    def seconds(self) -> float:
        return round((self.finished or time.monotonic()) - self.started, 1)

    def progress(self, step: str, page: int | None) -> None:
        """The worker's progress callback."""
        self.step = step
        if page:
            self.page = max(self.page, page)


class PrintJobs:
    """An app's print jobs and PDF cache (one per app, in ``app.extensions``)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.jobs: dict[str, PrintJob] = {}
        self._running: dict[str, PrintJob] = {}
        self._pages: dict[str, int] = {}
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    # --- the backlog's generation -------------------------------------------------

    @property
    def _generation_file(self) -> Path:
        return self.folder / "backlog.generation"

    def generation(self) -> str:
        """The backlog's current generation token (made on first use)."""
        try:
            return self._generation_file.read_text().strip()
        except FileNotFoundError:
            return self.bump()

    def bump(self) -> str:
        """Start a new generation: every PDF printed so far is out of date."""
        token = secrets.token_hex(8)
        self.folder.mkdir(parents=True, exist_ok=True)
        fresh = self.folder / f".generation-{token}"
        fresh.write_text(token)
        os.replace(fresh, self._generation_file)
        return token

    # --- the cache ----------------------------------------------------------------

    def _path(self, key: str, generation: str) -> Path:
        return self.folder / f"{key}.{generation}.pdf"

    def cached(self, key: str) -> Path | None:
        """The PDF of ``key`` for the backlog as it is now, if one was printed."""
        path = self._path(key, self.generation())
        return path if path.exists() else None

    def _store(self, job: PrintJob, pdf: bytes) -> Path:
        path = self._path(job.key, job.generation)
        partial = path.with_suffix(".part")
        partial.write_bytes(pdf)
        os.replace(partial, path)
        for old in self.folder.glob(f"{job.key}.*.pdf"):
            if old != path:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
        return path

    # --- jobs ---------------------------------------------------------------------

    def start(
        self,
        app: Flask,
        document: str,
        key: str,
        build_html: Callable[[], tuple[str, str]],
        render: Callable[..., object],
        again: str = "/",
    ) -> PrintJob:
        """The job printing ``key`` now: the one under way, or a new one.

        ``build_html()`` returns ``(html, base_url)``; it runs in the job,
        off the live layer's loop (see :func:`palabre.concurrency.off_the_loop`),
        inside an app context. ``render(html, base_url, progress)`` returns a
        :class:`palabre.render_pool.Rendered`.
        """
        generation = self.generation()
        with self._lock:
            running = self._running.get(key)
            if running is not None and running.generation == generation:
                return running
            job = PrintJob(
                id=secrets.token_urlsafe(9),
                document=document,
                key=key,
                generation=generation,
                again=again,
                expected_pages=self._pages.get(key),
            )
            self.jobs[job.id] = job
            self._running[key] = job
            finished = [old for old in self.jobs.values() if old.finished is not None]
            for old in finished[: max(0, len(finished) - JOBS_KEPT)]:
                del self.jobs[old.id]
        thread = threading.Thread(
            target=self._run, args=(app, job, build_html, render), daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return job

    def wait_for_running(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every job under way to end; whether they all did.

        For whoever closes the app's database: a job still reading it holds a
        connection, and on PostgreSQL locks on its tables.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    def _run(self, app, job: PrintJob, build_html, render) -> None:
        from .concurrency import off_the_loop

        try:
            job.step = "gathering"
            html, base_url = off_the_loop(_in_app_context, app, build_html)
            with app.app_context():
                rendered = render(html, base_url, job.progress)
            job.path = self._store(job, rendered.pdf)
            job.pages = rendered.pages
            self._pages[job.key] = rendered.pages
            job.step = "done"
        except Exception as error:  # noqa: BLE001  (shown to the facilitator, who may retry)
            job.error = str(error)[-500:] or type(error).__name__
            app.logger.exception("printing %s failed", job.document)
        finally:
            job.finished = time.monotonic()
            with self._lock:
                if self._running.get(job.key) is job:
                    del self._running[job.key]
                self._threads.discard(threading.current_thread())


def _in_app_context(app: Flask, build: Callable):
    with app.app_context():
        from .extensions import db

        try:
            return build()
        finally:
            db.session.remove()


def print_jobs(app: Flask | None = None) -> PrintJobs:
    """The app's :class:`PrintJobs` (the current app's by default)."""
    app = app or current_app._get_current_object()
    jobs = app.extensions.get(EXTENSION_KEY)
    if jobs is None:
        jobs = app.extensions[EXTENSION_KEY] = PrintJobs(Path(app.instance_path) / CACHE_FOLDER)
    return jobs


# --- invalidation: any backlog write starts a new generation --------------------------------


def watch_backlog_writes(session_factory) -> None:
    """Start a new backlog generation after each commit that wrote a printed row.

    Installed once on ``session_factory`` (``db.session``). ORM bulk
    statements on backlog models count too. The new generation is written
    after the write lock is released (a file write is I/O).
    """
    for name, listener in (
        ("after_flush", _note_flushed_rows),
        ("do_orm_execute", _note_bulk_statement),
        ("after_commit", _after_commit),
        ("after_soft_rollback", _after_rollback),
    ):
        if not event.contains(session_factory, name, listener):
            event.listen(session_factory, name, listener)


def _changes_the_plan(row) -> bool:
    if isinstance(row, BACKLOG_MODELS):
        return True
    columns = PRINTED_COLUMNS.get(type(row), ())
    if not columns:
        return False
    state = row.__mapper__.class_manager.state_getter()(row)
    return any(state.attrs[name].history.has_changes() for name in columns)


def _note_flushed_rows(session: OrmSession, flush_context) -> None:
    if session.info.get(_CHANGED):
        return
    rows = (*session.new, *session.dirty, *session.deleted)
    if any(_changes_the_plan(row) for row in rows):
        session.info[_CHANGED] = True


def _note_bulk_statement(state) -> None:
    writes = state.is_insert or state.is_update or state.is_delete
    mapper = state.bind_mapper
    if writes and mapper is not None and issubclass(mapper.class_, BACKLOG_MODELS):
        state.session.info[_CHANGED] = True


def _after_commit(session: OrmSession) -> None:
    if not session.info.pop(_CHANGED, False):
        return
    app = current_app._get_current_object()
    jobs = print_jobs(app)
    lock = app.extensions.get(WRITE_LOCK_KEY)
    if lock is not None and lock.held_by_current():
        # Inside write_transaction: after the lock is released, with its other callbacks.
        after_commit(jobs.bump)
    else:
        jobs.bump()


def _after_rollback(session: OrmSession, previous_transaction) -> None:
    session.info.pop(_CHANGED, None)
