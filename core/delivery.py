"""Light pages for slow phones: compressed responses, static files cached for good.

A participant on a venue's weak Wi-Fi, or an old phone on a prepaid plan,
pays for every byte before their first note. So:

* Static files are addressed with a digest of their content
  (``/static/live.js?v=3f2a9c1e0b``, added by ``url_for`` itself): the
  browser keeps them a year without asking again, and a new version gets a
  new address. Asked for without the current digest (an old page), they
  are revalidated on each use.
* Text responses (pages, CSS, JavaScript, SVG, JSON) are gzip-compressed
  for browsers that accept it (Flask-Compress). The core's static files are
  compressed once per version and kept in memory: 500 phones scanning the
  QR code within ten seconds cost one compression of the Socket.IO client,
  not 500.
* The core's own scripts and stylesheet are minified first (rjsmin,
  rcssmin): their comments are for the people who read the source, not for
  a phone on a prepaid plan.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
from functools import lru_cache

import rcssmin
import rjsmin
from flask import Flask, current_app, has_request_context, request, send_from_directory
from flask_compress import Compress
from werkzeug.security import safe_join

#: How long a browser keeps a static file asked for by its digest.
A_YEAR = 365 * 24 * 3600
COMPRESSED_TYPES = (
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
    "text/plain",
)

compress = Compress()


def init_app(app: Flask) -> None:
    """Compress text responses and serve static files by content digest."""
    app.config.setdefault("COMPRESS_ALGORITHM", ["gzip"])
    app.config.setdefault("COMPRESS_LEVEL", 6)
    app.config.setdefault("COMPRESS_MIMETYPES", list(COMPRESSED_TYPES))
    # Socket.IO's long-polling answers are not compressed here (engine.io
    # answers them before Flask); event streams must not be buffered.
    app.config.setdefault("COMPRESS_STREAMS", False)
    compress.init_app(app)
    app.url_defaults(_add_digest)
    app.view_functions["static"] = _static_file
    app.jinja_env.globals["url_for"] = _url_for_keeping_static_addresses(app)


#: Static addresses a template's ``url_for`` keeps, at most (templates name a few dozen files).
STATIC_ADDRESSES_KEPT = 256


def _url_for_keeping_static_addresses(app: Flask):
    """The templates' ``url_for``: a static file's address built once per version of the file.

    A phone's page links eight static files; building their addresses (the
    route, the digest) at every page costs a tenth of its rendering. Each
    use still looks at the file (its size and time), so a changed file gets
    its new address at once; other addresses are built as Flask builds them.
    """
    build = app.url_for
    kept: dict[tuple[str, str, str], tuple[str, tuple[int, int], str]] = {}

    def url_for(endpoint: str, **values) -> str:
        if endpoint != "static" or values.keys() != {"filename"} or not has_request_context():
            return build(endpoint, **values)
        key = (app.static_folder, request.script_root, values["filename"])
        if (known := kept.get(key)) is not None:
            path, version, address = known
            try:
                stat = os.stat(path)
            except OSError:
                return build(endpoint, **values)
            if (stat.st_mtime_ns, stat.st_size) == version:
                return address
        path = safe_join(app.static_folder, values["filename"])
        try:
            stat = os.stat(path) if path else None  # before the digest: a later change rebuilds
        except OSError:
            stat = None
        address = build(endpoint, **values)
        if stat is not None:
            if len(kept) >= STATIC_ADDRESSES_KEPT:
                kept.clear()
            kept[key] = (path, (stat.st_mtime_ns, stat.st_size), address)
        return address

    return url_for


def _add_digest(endpoint: str, values: dict) -> None:
    """``url_for("static", filename=...)`` gets ``v=<digest>`` of the file's content."""
    if endpoint != "static" or "v" in values or "filename" not in values:
        return
    path = safe_join(current_app.static_folder, values["filename"])
    digest = _digest_of(path) if path else None
    if digest:
        values["v"] = digest


def _digest_of(path: str) -> str | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return _digest(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _digest(path: str, _mtime_ns: int, _size: int) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()[:12]


@lru_cache(maxsize=64)
def _served(path: str, _mtime_ns: int, _size: int) -> bytes:
    """A static file as sent: the core's scripts and stylesheets minified, the rest as is."""
    with open(path, "rb") as file:
        content = file.read()
    if ".min." in os.path.basename(path):
        return content
    if path.endswith(".js"):
        return rjsmin.jsmin(content)
    if path.endswith(".css"):
        return rcssmin.cssmin(content)
    return content


@lru_cache(maxsize=64)
def _gzipped(path: str, mtime_ns: int, size: int) -> bytes:
    return gzip.compress(_served(path, mtime_ns, size), compresslevel=9, mtime=0)


def _static_file(filename: str):
    """The core's static files: by digest, cached a year, and compressed once."""
    folder = current_app.static_folder
    path = safe_join(folder, filename)
    digest = _digest_of(path) if path else None
    if digest is None or request.args.get("v") != digest:
        response = send_from_directory(folder, filename)
        response.headers["Cache-Control"] = "no-cache"
        return response
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if mimetype == "text/javascript" or mimetype.startswith("text/"):
        mimetype = f"{mimetype}; charset=utf-8"
    accepts_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    stat = os.stat(path)
    if accepts_gzip and mimetype.split(";")[0] in COMPRESSED_TYPES:
        response = current_app.response_class(
            _gzipped(path, stat.st_mtime_ns, stat.st_size), content_type=mimetype
        )
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = current_app.response_class(
            _served(path, stat.st_mtime_ns, stat.st_size), content_type=mimetype
        )
    response.headers["Cache-Control"] = f"public, max-age={A_YEAR}, immutable"
    response.headers["Vary"] = "Accept-Encoding"
    return response
