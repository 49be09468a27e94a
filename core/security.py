"""HTTP security headers and cookie flags, set once for every response.

* ``Content-Security-Policy``: scripts, styles, images, fonts and
  connections from this site only; no inline script (pages load their
  scripts from ``static/`` and pass data in ``data-*`` attributes) and no
  inline style (no ``style`` attribute nor ``<style>`` block: classes, and
  SVG presentation attributes for charts); no page may be framed
  (``frame-ancestors 'none'``) but one a view lets named sites frame
  (:func:`allow_framing_by`: the projector view, for the sites the
  administrators list); no plugin object; forms post only here.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``.
* When ``BASE_URL`` is https: ``Strict-Transport-Security``, and the
  cookies get ``Secure``.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from flask import g, request

#: One year, as browsers' HSTS preload lists ask.
HSTS_SECONDS = 365 * 24 * 3600
#: The longest a "keep me signed in" cookie may last.
MAX_REMEMBER = timedelta(days=30)


@lru_cache(maxsize=64)  # the same for every response from a host: built once
def content_security_policy(host: str, frame_ancestors: tuple[str, ...] = ()) -> str:
    """The policy for a page served at ``host``: this site only, no inline script or style.

    ``frame_ancestors`` are the origins that may show the page in a frame;
    none when empty.
    """
    # 'self' covers same-origin WebSockets in current browsers; older phones need them named.
    sockets = f"ws://{host} wss://{host}" if host else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self' {sockets}".strip(),
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors " + (" ".join(frame_ancestors) or "'none'"),
        ]
    )


def allow_framing_by(origins: list[str]) -> None:
    """Let the sites at ``origins`` (``https://host[:port]``) show this response in a frame."""
    g.palabre_frame_ancestors = tuple(origins)


def init_app(app) -> None:
    """Add the headers to every response; mark cookies ``Secure`` behind an https ``BASE_URL``."""
    # "Keep me signed in" lasts 30 days at most, whatever the configuration says: the
    # remember-me cookie, and the cookie session, which holds the sign-in when it is kept.
    for setting in ("REMEMBER_COOKIE_DURATION", "PERMANENT_SESSION_LIFETIME"):
        app.config[setting] = min(app.config[setting], MAX_REMEMBER)
    https = str(app.config.get("BASE_URL") or "").lower().startswith("https://")
    if https:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True

    @app.after_request
    def security_headers(response):
        headers = response.headers
        ancestors = g.get("palabre_frame_ancestors", ())
        headers.setdefault(
            "Content-Security-Policy", content_security_policy(request.host, ancestors)
        )
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if not ancestors:
            # Older browsers know only this header, which cannot name sites: where some
            # may frame the page, the policy's frame-ancestors alone speaks.
            headers.setdefault("X-Frame-Options", "DENY")
        if https:
            headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
        return response
