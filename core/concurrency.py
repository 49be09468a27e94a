"""Running CPU-heavy calls without holding up the live layer.

``palabre serve`` runs every connection as a greenlet on one thread: a call
that computes for 100 ms holds up every phone for 100 ms. Such calls go
through :func:`off_the_loop`, which runs them on a real thread when the
process is served by gevent (the calls used here release the GIL), and
directly otherwise (tests, command-line tools).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from gevent import monkey

T = TypeVar("T")


def served_by_gevent() -> bool:
    """Whether ``palabre serve`` has patched this process for gevent."""
    return monkey.is_module_patched("socket")


def off_the_loop(func: Callable[..., T], *args) -> T:
    """Call ``func(*args)`` without blocking other connections; return its result."""
    if not served_by_gevent():
        return func(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(func, args)


#: How much lower than the live layer's thread the background thread runs
#: (Linux niceness; the scheduler then gives the live layer about ten times
#: as much of a busy core).
BACKGROUND_NICENESS = 10
_background_pool = None


def in_the_background(func: Callable[..., T], *args) -> T:
    """Call ``func(*args)`` on one low-priority thread, one call at a time; return its result.

    For work that is slow on purpose and may come in floods, such as
    checking passwords: a flood of them then keeps at most one core busy,
    at a lower priority than the live layer, and queues. Runs directly when
    not served by gevent (tests, command-line tools).
    """
    global _background_pool
    if not served_by_gevent():
        return func(*args)
    if _background_pool is None:
        from gevent.threadpool import ThreadPool

        _background_pool = ThreadPool(1)
    return _background_pool.apply(_at_low_priority, (func, *args))


def _at_low_priority(func, *args):
    """Lower this (background) thread's priority, then call ``func``; Linux only, else as is."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
    return func(*args)


def page_off_the_loop(render: Callable[[], T]) -> T:
    """Call ``render()`` (a page built from much of the database) without blocking the room.

    Under gevent it runs on a real thread (:func:`off_the_loop`) in a copy of
    the current request context, with its own database session: a backlog
    page of hundreds of needs takes a second or more to build, which the
    phones of a live session must not wait for. Read-only pages: ``render``
    writes nothing (a flashed message is fine, the cookie session is shared).
    """
    if not served_by_gevent():
        return render()
    from flask import copy_current_request_context

    return off_the_loop(copy_current_request_context(render))
