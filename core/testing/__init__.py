"""Test helpers that ship with Palabre: a room of phones against a real server.

``palabre.testing.room`` starts ``palabre serve`` in a child process and drives it
as a room does: a facilitator's browser sets a session up over HTTP, phones
join through the join page and talk to the live layer over Socket.IO, at
human pace or all at once. Palabre's own tests (``tests/test_room.py``) and
benchmarks (``bench/``) use it; so can a plugin's tests.

It needs the ``test`` extra (``aiohttp`` for python-socketio's asyncio client).
"""

from .room import (
    HOST,
    Ack,
    Browser,
    Facilitator,
    LiveSession,
    LiveSocket,
    PalabreServer,
    Phone,
    Room,
    RoomError,
    ServerProcess,
    csrf_token,
    free_port,
    median,
    new_cid,
    p95,
    palabre_command,
    percentile,
    served_palabre,
)

__all__ = [
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
]
