"""The server's side of :mod:`palabre.pdf_worker`: warm WeasyPrint processes.

A worker is started on first use and kept for the next document (WeasyPrint
is imported once, fonts stay loaded); it exits by itself when idle, and is
retired after a document that left it large. At most ``size`` documents
render at once; others wait their turn cooperatively (the lock and the pipes
are gevent's under ``palabre serve``), so the live layer keeps running.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .pdf_worker import IDLE_EXIT_S

#: The worker script, run by path so that it imports nothing of Palabre.
WORKER_SCRIPT = Path(__file__).resolve().with_name("pdf_worker.py")
#: Idle workers older than this are replaced rather than used: they are about to exit.
REUSE_WITHIN_S = IDLE_EXIT_S - 30
#: A worker whose memory passed this after a document is replaced by a fresh one.
RETIRE_ABOVE_MB = 250


class PrintError(RuntimeError):
    """WeasyPrint failed, or its worker died; the message says why."""


@dataclass
class Rendered:
    """A finished PDF and what its worker said about it."""

    pdf: bytes
    pages: int
    render_s: float
    #: The worker's memory after the document.
    rss_mb: float


#: ``progress(step, page)``: ``step`` is one of the worker's steps, ``page`` set while laying out.
Progress = Callable[[str, int | None], None]


class Worker:
    """One :mod:`palabre.pdf_worker` process and its pipes."""

    def __init__(self):
        # Its error output, read only if it dies; a file, so it never fills up as a pipe would.
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            # -I: no script folder on sys.path, no PYTHON* variables, no user site.
            [sys.executable, "-I", str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
        )
        self.import_s: float | None = None
        self.retire = False
        self.idle_since = time.monotonic()
        ready = self._message()
        if "ready" not in ready:
            raise PrintError(f"the PDF worker did not start: {ready}")
        self.import_s = ready["ready"]["import_s"]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def _message(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.errors.seek(0)
            output = self.errors.read().decode(errors="replace")[-2000:]
            raise PrintError(f"the PDF worker stopped (exit {self.process.returncode}): {output}")
        return json.loads(line)

    def render(self, html: str, base_url: str, progress: Progress | None, timeout: float):
        """Send one document and wait for its PDF, passing progress on.

        Kills the worker if the PDF is not back within ``timeout`` seconds.
        """
        body = html.encode()
        watchdog = threading.Timer(timeout, self.process.kill)
        watchdog.start()
        try:
            header = json.dumps({"html_bytes": len(body), "base_url": base_url}).encode()
            self.process.stdin.write(header + b"\n" + body)
            self.process.stdin.flush()
            while "progress" in (message := self._message()):
                if progress is not None:
                    progress(message["progress"]["step"], message["progress"]["page"])
            if "error" in message:
                raise PrintError(message["error"])
            pdf = self.process.stdout.read(message["pdf_bytes"])
        except (BrokenPipeError, OSError) as error:
            raise PrintError(f"the PDF worker stopped: {error}") from error
        finally:
            watchdog.cancel()
        self.retire = message["rss_mb"] > RETIRE_ABOVE_MB
        return Rendered(pdf, message["pages"], message["render_s"], message["rss_mb"])

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.errors.close()


class RenderPool:
    """Up to ``size`` warm workers; :meth:`render` borrows one per document."""

    def __init__(self, size: int = 1):
        self.size = size
        self._turns = threading.BoundedSemaphore(size)
        self._idle: list[Worker] = []

    def render(
        self, html: str, base_url: str, progress: Progress | None = None, timeout: float = 120
    ) -> Rendered:
        """Render ``html`` to PDF in a worker; raise :class:`PrintError` if that fails.

        A worker that stopped while idle (its idle time ran out) is replaced
        before the document is sent, never after, so a document is sent once.
        """
        with self._turns:
            worker = self._take()
            try:
                rendered = worker.render(html, base_url, progress, timeout)
            except PrintError:
                worker.stop()
                raise
            if worker.retire:
                worker.stop()
            else:
                worker.idle_since = time.monotonic()
                self._idle.append(worker)
            return rendered

    def _take(self) -> Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive() and time.monotonic() - worker.idle_since < REUSE_WITHIN_S:
                return worker
            worker.stop()
        return Worker()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().stop()
