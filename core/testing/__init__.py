"""Test helpers that ship with Palabre.

* :mod:`palabre.testing.kit`: a method tested in one process (an app on a
  throw-away database, sessions in any phase, phones joining and talking to
  the live layer, :func:`~palabre.testing.kit.assert_method_conforms`), and
  the pytest fixtures around it in :mod:`palabre.testing.pytest_plugin`,
  which pytest loads by itself wherever Palabre is installed;
* :mod:`palabre.testing.room`: a room of phones against a real ``palabre
  serve`` in a child process, at human pace or all at once, for tests and
  benchmarks under load. It needs the ``test`` extra (``aiohttp``);
* :mod:`palabre.testing.faults`: on such a room, phones that write as
  ``live.js`` does (an outbox resent after reconnecting) through a reconnect
  storm or a worker killed mid-session, and the checks that nothing was lost
  or doubled and every phone caught up.

Names are imported on first use, so loading the pytest fixtures does not
need the ``test`` extra.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "kit": (
        "FACILITATOR_EMAIL",
        "FACILITATOR_PASSWORD",
        "SessionRef",
        "TestPhone",
        "assert_method_conforms",
        "close_app",
        "go_to",
        "make_app",
        "new_phone",
        "new_session",
        "role_link",
        "sign_in",
    ),
    "room": (
        "HOST",
        "Ack",
        "Browser",
        "Facilitator",
        "LiveSession",
        "LiveSocket",
        "PalabreServer",
        "Phone",
        "Room",
        "RoomError",
        "ServerProcess",
        "csrf_token",
        "free_port",
        "median",
        "new_cid",
        "p95",
        "palabre_command",
        "percentile",
        "served_palabre",
    ),
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
