"""Join addresses and QR codes: always something a phone on the network can open."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from palabre import join
from palabre.join import CODE_ALPHABET, CODE_LENGTH, base_url, new_join_code, normalise_code


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
