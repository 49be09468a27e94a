"""Light pages for slow phones: compressed responses, static files cached by content digest."""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

from palabre import delivery

STATIC_URL = re.compile(r'(?:href|src)="(/static/[^"?]+)\?v=([0-9a-f]{12})"')


def test_pages_are_compressed_for_browsers_that_accept_it(client):
    compressed = client.get("/", headers={"Accept-Encoding": "gzip, deflate"})
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed.headers["Vary"]
    plain = client.get("/", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    # The same page (but for its fresh CSRF token), in about half the bytes or less.
    page = gzip.decompress(compressed.data)
    assert page.startswith(b"<!doctype html>") and abs(len(page) - len(plain.data)) < 64
    assert len(compressed.data) < len(page) * 0.6


def test_static_files_are_addressed_by_digest_and_kept_a_year(client):
    page = client.get("/").text
    found = dict(STATIC_URL.findall(page))
    assert "/static/palabre.css" in found
    with client.get(f"/static/palabre.css?v={found['/static/palabre.css']}") as css:
        assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert css.content_type == "text/css; charset=utf-8"
        plain = css.data

    gzipped = client.get(
        f"/static/palabre.css?v={found['/static/palabre.css']}",
        headers={"Accept-Encoding": "gzip"},
    )
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gzipped.data) == plain
    assert len(gzipped.data) < len(plain) / 2


def test_a_static_file_asked_for_without_its_digest_is_revalidated(client):
    for url in ("/static/palabre.css", "/static/palabre.css?v=000000000000"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"
        response.close()
    assert client.get("/static/../pyproject.toml?v=000000000000").status_code == 404
    assert client.get("/static/missing.js?v=000000000000").status_code == 404


def test_a_changed_file_gets_a_new_address(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "static_folder", str(tmp_path))
    (tmp_path / "palabre.css").write_text("body { color: black }")
    with app.test_request_context():
        from flask import url_for

        first = url_for("static", filename="palabre.css")
        (tmp_path / "palabre.css").write_text("body { color: navy }")
        second = url_for("static", filename="palabre.css")
    assert first != second and first.startswith("/static/palabre.css?v=")


def test_a_page_links_a_changed_file_by_its_new_address(app, tmp_path, monkeypatch):
    """Templates keep static addresses between pages, but never past a change of the file."""
    monkeypatch.setattr(app, "static_folder", str(tmp_path))
    (tmp_path / "palabre.css").write_text("body { color: black }")
    link = "{{ url_for('static', filename='palabre.css') }}"
    with app.test_request_context():
        from flask import render_template_string

        first, again = render_template_string(link), render_template_string(link)
        (tmp_path / "palabre.css").write_text("body { color: navy }")
        changed = render_template_string(link)
        (tmp_path / "palabre.css").unlink()
        gone = render_template_string(link)
    assert first == again and first.startswith("/static/palabre.css?v=")
    assert changed != first and changed.startswith("/static/palabre.css?v=")
    assert gone == "/static/palabre.css"


def test_each_version_is_compressed_once(app, client):
    delivery._gzipped.cache_clear()
    url = STATIC_URL.search(client.get("/j/NOCODE").text)
    assert url, "the page links a static file by digest"
    for _ in range(5):
        client.get(f"{url[1]}?v={url[2]}", headers={"Accept-Encoding": "gzip"})
    info = delivery._gzipped.cache_info()
    assert info.misses == 1 and info.hits == 4


def test_scripts_and_the_stylesheet_are_sent_minified_and_still_work(app, client, tmp_path):
    """Comments are for readers of the source: phones get the code alone, which still parses."""
    page = client.get("/").text
    found = dict(STATIC_URL.findall(page))
    css = client.get(f"/static/palabre.css?v={found['/static/palabre.css']}").data
    source = (Path(app.static_folder) / "palabre.css").read_bytes()
    assert len(css) < len(source) * 0.8 and b"/*" not in css
    assert b".skip-link{" in css
    with app.test_request_context():
        from flask import url_for

        live_url = url_for("static", filename="live.js")
    script = client.get(live_url).data
    source = (Path(app.static_folder) / "live.js").read_bytes()
    assert len(script) < len(source) * 0.7 and b"The server's limit on one message" not in script
    served = tmp_path / "live.min.js"
    served.write_bytes(script)
    assert subprocess.run(["node", "--check", str(served)]).returncode == 0
