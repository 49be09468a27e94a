"""Running CPU-heavy calls without holding up the live layer.

``palabre serve`` runs every connection as a greenlet on one thread: a call
that computes for 100 ms holds up every phone for 100 ms. Such calls go
through :func:`off_the_loop`, which runs them on a real thread when the
process is served by gevent (the calls used here release the GIL), and
directly otherwise (tests, command-line tools).
"""

from __future__ import annotations

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
