"""Rate limits, keyed on an anonymous participant or browser, never on an address.

A whole venue reaches Palabre through one Wi-Fi address, so limiting by IP
address would silence a room. Limits use the ``limits`` library with the
storage named by ``RATE_LIMIT_STORAGE`` (memory, or Redis when several
processes serve one instance).
"""

from __future__ import annotations

from flask import current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


def init_app(app) -> None:
    storage = storage_from_string(app.config["RATE_LIMIT_STORAGE"])
    app.extensions["rate_limiter"] = MovingWindowRateLimiter(storage)


def allow(key: str, limit: str) -> bool:
    """Count one hit on ``key``; ``False`` once ``limit`` ("30/minute") is exceeded."""
    return current_app.extensions["rate_limiter"].hit(parse(limit), key)
