"""Facilitator accounts: sign-in, sign-out, the CLI command, the first-account link, CSRF."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select

from palabre.extensions import db
from palabre.models import Facilitator
from tests.conftest import FACILITATOR_EMAIL, PASSWORD, csrf_token

#: A strong password for accounts the tests create.
OTHER = "quiet river stones"

FACILITATOR_PAGES = [
    "/sessions/",
    "/sessions/new/world_cafe",
    "/backlog/",
    "/backlog/actions/new",
    "/backlog/action-plan.pdf",
]


def test_login_page(client):
    page = client.get("/auth/login")
    assert page.status_code == 200
    assert '<label for="email">' in page.text
    assert 'autocomplete="username"' in page.text
    assert 'autocomplete="current-password"' in page.text
    assert 'name="csrf_token"' in page.text


def test_sign_in(client, auth):
    response = auth.login()
    assert response.status_code == 302
    assert response.location.endswith("/sessions/")
    assert client.get("/sessions/").status_code == 200


def test_sign_in_is_case_insensitive_on_email(client, auth):
    assert auth.login(email=FACILITATOR_EMAIL.upper()).status_code == 302
    assert client.get("/sessions/").status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [(FACILITATOR_EMAIL, "wrong password"), ("nobody@example.org", PASSWORD)],
)
def test_sign_in_refused(client, auth, email, password):
    response = auth.login(email=email, password=password)
    assert response.status_code == 200
    assert "do not match" in response.text
    assert 'role="alert"' in response.text
    assert client.get("/sessions/").status_code == 302


def test_invalid_email_shows_field_error(client):
    page = client.get("/auth/login")
    response = client.post(
        "/auth/login",
        data={"email": "not an address", "password": "x", "csrf_token": csrf_token(page)},
    )
    assert response.status_code == 200
    assert 'class="field-error"' in response.text
    assert 'aria-invalid="true"' in response.text


def test_sign_in_follows_only_local_next(client):
    page = client.get("/auth/login")
    data = {"email": FACILITATOR_EMAIL, "password": PASSWORD, "csrf_token": csrf_token(page)}
    response = client.post("/auth/login?next=/backlog/", data=data)
    assert response.location.endswith("/backlog/")
    client.post("/auth/logout", data={"csrf_token": csrf_token(client.get("/sessions/"))})
    page = client.get("/auth/login")
    data["csrf_token"] = csrf_token(page)
    response = client.post("/auth/login?next=//evil.example/", data=data)
    assert response.location.endswith("/sessions/")


def test_sign_out(client, auth):
    auth.login()
    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/sessions/").status_code == 302


@pytest.mark.parametrize("url", FACILITATOR_PAGES)
def test_facilitator_pages_need_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/auth/login" in response.location
    follow = client.get(response.location)
    assert "Please sign in as a facilitator" in follow.text


def test_participant_pages_need_no_sign_in(client):
    assert client.get("/").status_code == 200


def test_post_without_csrf_token_is_refused(client, auth):
    response = client.post("/auth/login", data={"email": FACILITATOR_EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    auth.login()
    assert client.post("/auth/logout").status_code == 400
    assert client.post("/backlog/needs/new", data={"title": "Evening classes"}).status_code == 400
    assert client.post("/", data={"code": "ACDEFG"}).status_code == 400


def test_create_facilitator_command(app, client, auth, runner):
    first = "olive lantern harbour"
    result = runner.invoke(args=["create-facilitator", "x@example.org", "--password", first])
    assert result.exit_code == 0, result.output
    assert "Created facilitator x@example.org" in result.output
    assert auth.login("x@example.org", first).status_code == 302

    result = runner.invoke(args=["create-facilitator", "X@example.org", "--password", OTHER])
    assert "Updated" in result.output
    with app.app_context():
        accounts = db.session.scalars(
            select(Facilitator).where(Facilitator.email.like("x@%"))
        ).all()
        assert len(accounts) == 1
        assert accounts[0].password_hash != OTHER
        assert accounts[0].check_password(OTHER)


def test_create_facilitator_refuses_short_password(app, runner):
    result = runner.invoke(args=["create-facilitator", "y@example.org", "--password", "short"])
    assert result.exit_code != 0
    assert "8 characters" in result.output
    with app.app_context():
        assert (
            db.session.scalar(select(Facilitator).where(Facilitator.email == "y@example.org"))
            is None
        )


@pytest.fixture
def no_facilitator(app):
    with app.app_context():
        db.session.execute(delete(Facilitator))
        db.session.commit()


def new_setup_link(app) -> str:
    from palabre.auth import new_setup_token

    with app.app_context():
        return f"/auth/setup/{new_setup_token()}"


def test_setup_link_creates_first_facilitator(app, client, no_facilitator):
    link = new_setup_link(app)
    response = client.get(link)
    assert response.status_code == 302
    assert response.location.endswith("/auth/setup")  # the token leaves the address bar
    page = client.get("/auth/setup")
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in page.text
    response = client.post(
        "/auth/setup",
        data={
            "name": "Amina",
            "email": "amina@example.org",
            "password": "olive lantern harbour",
            "csrf_token": csrf_token(page),
        },
    )
    assert response.status_code == 302
    assert response.location.endswith("/sessions/")
    assert client.get("/sessions/").status_code == 200  # signed in
    assert not (Path(app.instance_path) / "setup_token").exists()
    with app.app_context():
        assert db.session.scalar(select(Facilitator.name)) == "Amina"

    # The link works once only.
    other = app.test_client()
    response = other.get(link)
    assert response.location.endswith("/auth/login")
    assert other.get("/auth/setup").location.endswith("/auth/login")


def test_setup_refuses_short_password(app, client, no_facilitator):
    client.get(new_setup_link(app))
    page = client.get("/auth/setup")
    response = client.post(
        "/auth/setup",
        data={
            "name": "A",
            "email": "a@example.org",
            "password": "short",
            "csrf_token": csrf_token(page),
        },
    )
    assert response.status_code == 200
    assert 'role="alert"' in response.text
    with app.app_context():
        assert db.session.scalar(select(Facilitator)) is None


def test_setup_link_with_wrong_token(app, client, no_facilitator):
    new_setup_link(app)
    response = client.get("/auth/setup/not-the-token")
    assert response.location.endswith("/auth/login")
    assert client.get("/auth/setup").location.endswith("/auth/login")


def test_setup_link_useless_once_a_facilitator_exists(app, client):
    response = client.get(new_setup_link(app))
    assert response.location.endswith("/auth/login")
