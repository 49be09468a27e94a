"""Rate limits, keyed on an anonymous participant or browser, never on an address.

A whole venue reaches Palabre through one Wi-Fi address, so limiting by IP
address would silence a room.

With ``RATE_LIMIT_STORAGE = "memory://"`` (one process, the default) limits
are token buckets in a dictionary: a check is a few arithmetic operations,
never yields to another greenlet and starts no timer, so it costs far less
than the write it guards. Another storage URL (``redis://...``, for several
processes) goes through the ``limits`` library, whose checks do network I/O:
like every check, call :func:`allow` *before* a write transaction, never
inside one.
"""

from __future__ import annotations

import time
from functools import lru_cache

from flask import current_app
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

#: Buckets kept before full (idle) ones are forgotten.
MAX_BUCKETS = 50_000


class MemoryLimiter:
    """Token buckets: ``amount`` hits per ``seconds``, refilled continuously.

    A burst of up to ``amount`` hits passes at once, then one more every
    ``seconds / amount``. Not shared between processes.
    """

    def __init__(self):
        # key -> (tokens left, when counted, when full again)
        self._buckets: dict[str, tuple[float, float, float]] = {}

    def hit(self, item: RateLimitItem, key: str) -> bool:
        capacity = float(item.amount)
        rate = capacity / item.get_expiry()
        now = time.monotonic()
        bucket_key = f"{key}|{item.amount}/{item.get_expiry()}"
        tokens, updated, _full = self._buckets.get(bucket_key, (capacity, now, now))
        tokens = min(capacity, tokens + (now - updated) * rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self._buckets) >= MAX_BUCKETS and bucket_key not in self._buckets:
            self._forget_full(now)
        self._buckets[bucket_key] = (tokens, now, now + (capacity - tokens) / rate)
        return allowed

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nothing."""
        for bucket_key, (_tokens, _updated, full) in list(self._buckets.items()):
            if now >= full:
                del self._buckets[bucket_key]
        if len(self._buckets) >= MAX_BUCKETS:  # a flood of new keys: start afresh
            self._buckets.clear()


def init_app(app) -> None:
    url = app.config["RATE_LIMIT_STORAGE"]
    if url.startswith("memory://"):
        app.extensions["rate_limiter"] = MemoryLimiter()
    else:
        app.extensions["rate_limiter"] = MovingWindowRateLimiter(storage_from_string(url))


@lru_cache(maxsize=64)
def _parse(limit: str) -> RateLimitItem:
    return parse(limit)


def allow(key: str, limit: str) -> bool:
    """Count one hit on ``key``; ``False`` once ``limit`` ("30/minute") is exceeded.

    Call it before a write transaction (it may do network I/O), never inside one.
    """
    return current_app.extensions["rate_limiter"].hit(_parse(limit), key)
