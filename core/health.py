"""``/health``: whether this worker reaches its database and message queue.

For a load balancer, a monitoring probe or systemd's watchdog on a hosted
instance (``docs/deploy.md``). It says nothing about anyone: no session, no
count, no version; only which of the two is unreachable.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

bp = Blueprint("health", __name__)

#: Seconds the message queue has to answer before it counts as unreachable.
QUEUE_TIMEOUT_S = 2


def database_reachable() -> bool:
    """Whether a trivial query on the database answers."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return False
    return True


def message_queue_reachable(url: str) -> bool:
    """Whether the Redis server at ``url`` answers a ping within :data:`QUEUE_TIMEOUT_S`."""
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=QUEUE_TIMEOUT_S, socket_connect_timeout=QUEUE_TIMEOUT_S
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@bp.get("/health")
def health():
    """200 ``{"database": "ok", "message_queue": "ok" | "unused"}``, or 503 naming what failed."""
    checks = {"database": "ok" if database_reachable() else "unreachable"}
    queue = current_app.config.get("MESSAGE_QUEUE")
    if not queue:
        checks["message_queue"] = "unused"
    else:
        checks["message_queue"] = "ok" if message_queue_reachable(queue) else "unreachable"
    healthy = "unreachable" not in checks.values()
    return jsonify(checks), 200 if healthy else 503, {"Cache-Control": "no-store"}
