"""HTTP security headers and cookie flags, set once for every response.

* ``Content-Security-Policy``: scripts, styles, images, fonts and
  connections from this site only; no inline script (pages load their
  scripts from ``static/`` and pass data in ``data-*`` attributes); style
  attributes are allowed (QR codes and print bars use them); no page may
  be framed (``frame-ancestors 'none'``), no plugin object, forms post
  only here.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``.
* When ``BASE_URL`` is https: ``Strict-Transport-Security``, and the
  cookies get ``Secure``.
"""

from __future__ import annotations

from datetime import timedelta

from flask import request

#: One year, as browsers' HSTS preload lists ask.
HSTS_SECONDS = 365 * 24 * 3600
#: The longest a "keep me signed in" cookie may last.
MAX_REMEMBER = timedelta(days=30)


def content_security_policy(host: str) -> str:
    """The policy for a page served at ``host``: this site only, no inline script."""
    # 'self' covers same-origin WebSockets in current browsers; older phones need them named.
    sockets = f"ws://{host} wss://{host}" if host else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self' {sockets}".strip(),
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def init_app(app) -> None:
    """Add the headers to every response; mark cookies ``Secure`` behind an https ``BASE_URL``."""
    # "Keep me signed in" lasts 30 days at most, whatever the configuration says.
    app.config["REMEMBER_COOKIE_DURATION"] = min(
        app.config["REMEMBER_COOKIE_DURATION"], MAX_REMEMBER
    )
    https = str(app.config.get("BASE_URL") or "").lower().startswith("https://")
    if https:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", content_security_policy(request.host))
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        if https:
            headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
        return response
