"""Join addresses and QR codes: always something a phone on the network can open."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from palabre import Session, db, join, role_link_url, role_links_of
from palabre.join import CODE_ALPHABET, CODE_LENGTH, base_url, new_join_code, normalise_code
from palabre.serve import phones_address


@pytest.fixture
def no_base_url(app):
    app.config["BASE_URL"] = None
    app.config["SERVER_NAME"] = None
    return app


def test_localhost_is_replaced_by_the_lan_address(no_base_url, monkeypatch):
    monkeypatch.setattr(join, "lan_address", lambda: "192.168.1.20")
    with no_base_url.test_request_context("/", base_url="http://localhost:5000"):
        assert base_url() == "http://192.168.1.20:5000"
    with no_base_url.test_request_context("/", base_url="http://127.0.0.1:8080"):
        assert base_url() == "http://192.168.1.20:8080"


def test_an_address_phones_already_use_is_kept(no_base_url, monkeypatch):
    monkeypatch.setattr(join, "lan_address", lambda: "192.168.1.20")
    with no_base_url.test_request_context("/", base_url="http://10.0.0.5:5000"):
        assert base_url() == "http://10.0.0.5:5000"


def test_configured_public_address_wins(app):
    app.config["BASE_URL"] = "https://palabre.city.example/"
    with app.test_request_context("/", base_url="http://localhost:5000"):
        assert base_url() == "https://palabre.city.example"


def test_lan_address_is_never_loopback():
    address = join.lan_address()
    assert address is None or not address.startswith("127.")


def test_join_codes_are_short_unambiguous_and_not_sequential(app):
    with app.app_context():
        codes = {new_join_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set(CODE_ALPHABET) & set("0O1IL2Z5S8B")
    assert normalise_code(" ab-c 7o ") == "ABC7Q"


def test_qr_downloads(app, client, make_cafe):
    code = make_cafe()
    svg = client.get(f"/s/{code}/qr.svg")
    assert svg.mimetype == "image/svg+xml"
    assert ET.fromstring(svg.data).tag.endswith("svg")
    png = client.get(f"/s/{code}/qr.png")
    assert png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
    assert client.get("/s/NOSUCH/qr.png").status_code == 404


def test_a_server_listening_on_loopback_keeps_the_loopback_address(no_base_url, monkeypatch):
    """Nothing answers on the network address then: a QR code there would fail every phone."""
    monkeypatch.setattr(join, "lan_address", lambda: "192.168.1.20")
    no_base_url.config["LISTEN_HOST"] = "127.0.0.1"
    with no_base_url.test_request_context("/", base_url="http://127.0.0.1:5000"):
        assert base_url() == "http://127.0.0.1:5000"
    no_base_url.config["LISTEN_HOST"] = "0.0.0.0"
    with no_base_url.test_request_context("/", base_url="http://127.0.0.1:5000"):
        assert base_url() == "http://192.168.1.20:5000"


@pytest.mark.parametrize(
    ("host", "expected", "warns"),
    [
        ("127.0.0.1", "http://127.0.0.1:5000", True),
        ("localhost", "http://127.0.0.1:5000", True),
        ("::1", "http://[::1]:5000", True),
        ("10.1.2.3", "http://10.1.2.3:5000", False),
    ],
)
def test_the_start_up_address_is_one_that_answers(host, expected, warns):
    address, warning = phones_address(None, host, 5000)
    assert address == expected
    assert (warning is not None) == warns
    assert phones_address("https://palabre.example/", host, 5000) == (
        "https://palabre.example",
        None,
    )


def test_host_links_use_the_join_address_not_localhost(no_base_url, monkeypatch, make_cafe):
    monkeypatch.setattr(join, "lan_address", lambda: "192.168.1.20")
    code = make_cafe()
    with no_base_url.test_request_context("/", base_url="http://localhost:5000"):
        session = db.session.scalar(select(Session).where(Session.code == code))
        (host_link,) = role_links_of(session, "host")[:1]
        link = role_link_url(host_link)
        assert link.startswith("http://192.168.1.20:5000/j/")
        assert join.join_url(session).startswith("http://192.168.1.20:5000/j/")
