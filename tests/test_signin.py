"""Signing in and out safely: redirects, revocation, throttling, passwords, TOTP, headers."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlsplit

import pyotp
import pytest
from sqlalchemy import func, select

from palabre import auth as auth_module
from palabre import models
from palabre.database import write_transaction
from palabre.extensions import db, socketio
from palabre.models import AccountRole, Facilitator
from palabre.testing.kit import FACILITATOR_EMAIL, FACILITATOR_PASSWORD, close_app, make_app

from .conftest import csrf_token

STRONG = "quiet river stones"


def sign_in(client, email=FACILITATOR_EMAIL, password=FACILITATOR_PASSWORD, **extra):
    page = client.get("/auth/login")
    return client.post(
        "/auth/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page), **extra},
    )


def sign_out(client):
    page = client.get("/sessions/")
    return client.post("/auth/logout", data={"csrf_token": csrf_token(page)})


def cookie_jar(client) -> dict[str, str]:
    return {cookie.key: cookie.value for cookie in client._cookies.values()}


def copy_cookies(source, target, only=None) -> None:
    for name, value in cookie_jar(source).items():
        if only is None or name in only:
            target.set_cookie(name, value, domain="palabre.test")


def signed_in(client) -> bool:
    return client.get("/sessions/").status_code == 200


# --- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example/phish",
        "/\t/evil.example/phish",
        "/%5Cevil.example",
        "/ /x",
        "//evil.example",
        "https://evil.example/phish",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "/%2f/evil.example",
        "javascript:alert(1)",
        "/\r\nSet-Cookie:x=1",
    ],
)
def test_next_and_language_never_leave_the_site(client, target):
    """The issue's ``/auth/login?next=/%09/evil.example/phish`` became ``//evil.example``."""
    page = client.get("/auth/login")
    response = client.post(
        f"/auth/login?next={quote(target, safe='/%')}",
        data={
            "email": FACILITATOR_EMAIL,
            "password": FACILITATOR_PASSWORD,
            "csrf_token": csrf_token(page),
        },
    )
    assert response.location == "/sessions/"
    page = client.get("/")
    response = client.post(
        "/language", data={"csrf_token": csrf_token(page), "language": "fr", "next": target}
    )
    assert response.location == "/"


# --- revoking sign-ins -------------------------------------------------------------------


def test_signing_out_revokes_copied_cookies_and_the_remember_token(app, client):
    sign_in(client, remember="y")
    assert "remember_token" in cookie_jar(client)
    copy = app.test_client()
    copy_cookies(client, copy)
    only_remember = app.test_client()
    copy_cookies(client, only_remember, only={"remember_token"})
    assert signed_in(copy) and signed_in(only_remember)
    sign_out(client)
    assert not signed_in(client)
    assert not signed_in(copy), "a copied session cookie still works after signing out"
    assert not signed_in(only_remember), "the remember token still works after signing out"


def test_signing_out_closes_the_accounts_sockets(app, client, make_cafe):
    code = make_cafe()
    sign_in(client)
    sock = socketio.test_client(
        app, flask_test_client=client, auth={"session": code, "view": "facilitator"}
    )
    assert sock.is_connected()
    sign_out(client)
    assert not sock.is_connected()


def test_a_socket_of_a_revoked_sign_in_is_refused_at_its_next_event(app, client, make_cafe):
    """A socket in another worker process is not closed, but it can do nothing more."""
    code = make_cafe()
    sign_in(client)
    copy = app.test_client()
    copy_cookies(client, copy)
    sock = socketio.test_client(
        app, flask_test_client=copy, auth={"session": code, "view": "facilitator"}
    )
    with app.app_context(), write_transaction():
        db.session.scalar(select(Facilitator)).credentials_version += 1
    ack = sock.emit("timer.extend", {"cid": "a1", "minutes": 1}, callback=True)
    assert ack == {"ok": False, "error": "Only a facilitator can do this."}


def test_sockets_of_a_sign_in_ended_in_another_worker_close_at_the_next_sweep(
    app, client, make_cafe
):
    """Another worker process raised the version: this one's sweep closes the stale sockets."""
    code = make_cafe()
    sign_in(client)
    stale = socketio.test_client(
        app, flask_test_client=client, auth={"session": code, "view": "projector"}
    )
    phone = app.test_client()
    join_page = phone.get(f"/j/{code}")
    phone.post(f"/j/{code}", data={"csrf_token": csrf_token(join_page), "language": "en"})
    participant = socketio.test_client(app, flask_test_client=phone, auth={"session": code})
    assert stale.is_connected() and participant.is_connected()
    with app.app_context():
        assert auth_module.close_revoked_sockets() == 0, "a valid sign-in was closed"
    with app.app_context(), write_transaction():
        db.session.scalar(select(Facilitator)).credentials_version += 1  # as the other worker
    assert stale.is_connected(), "closed before any sweep: this test proves nothing"
    with app.app_context():
        assert auth_module.close_revoked_sockets() == 1
    assert not stale.is_connected() and participant.is_connected()


def test_changing_the_password_signs_out_every_other_device(app, client, make_cafe):
    code = make_cafe()
    sign_in(client)
    other_device = app.test_client()
    sign_in(other_device, remember="y")
    only_remember = app.test_client()
    copy_cookies(other_device, only_remember, only={"remember_token"})
    screen = socketio.test_client(
        app, flask_test_client=other_device, auth={"session": code, "view": "projector"}
    )
    assert screen.is_connected() and signed_in(only_remember)
    page = client.get("/auth/password")
    response = client.post(
        "/auth/password",
        data={"csrf_token": csrf_token(page), "current": FACILITATOR_PASSWORD, "password": STRONG},
    )
    assert response.status_code == 302
    assert signed_in(client), "the device that changed the password stays signed in"
    assert not signed_in(other_device)
    assert not signed_in(only_remember), "the remember token outlived the password change"
    assert not screen.is_connected(), "a screen of the old sign-in stayed open"
    assert sign_in(app.test_client(), password=STRONG).status_code == 302


def test_changing_the_password_needs_the_current_one(client):
    sign_in(client)
    page = client.get("/auth/password")
    response = client.post(
        "/auth/password",
        data={"csrf_token": csrf_token(page), "current": "not it", "password": STRONG},
    )
    assert response.status_code == 200 and 'role="alert"' in response.text


def test_guessing_the_current_password_with_a_stolen_cookie_is_throttled(client, monkeypatch):
    """A copied cookie must not be a way to find the password by trying, then change it."""
    now = [time.time()]
    monkeypatch.setattr(auth_module, "throttle_clock", lambda: now[0])
    sign_in(client)

    def change(current):
        page = client.get("/auth/password")
        return client.post(
            "/auth/password",
            data={"csrf_token": csrf_token(page), "current": current, "password": STRONG},
        )

    for _ in range(auth_module.FREE_FAILURES):
        assert change("a wrong guess").status_code == 200
    waiting = change(FACILITATOR_PASSWORD)
    assert waiting.status_code == 429 and "Try again in 1 minute" in waiting.text
    assert sign_in(client.application.test_client(), password=STRONG).status_code == 200
    now[0] += auth_module.FIRST_WAIT_S + 1
    assert change(FACILITATOR_PASSWORD).status_code == 302


def test_resetting_a_password_from_the_command_line_signs_out_everywhere(app, client, runner):
    sign_in(client)
    result = runner.invoke(args=["create-facilitator", FACILITATOR_EMAIL, "--password", STRONG])
    assert result.exit_code == 0, result.output
    assert not signed_in(client)


def test_a_disabled_account_is_signed_out_and_cannot_sign_in(app, client, make_cafe):
    code = make_cafe()
    with app.app_context(), write_transaction():
        other = Facilitator(email="other@example.org", name="Other", role=AccountRole.ADMINISTRATOR)
        other.password_hash = models.hash_password(STRONG)
        db.session.add(other)
    sign_in(client, "other@example.org", STRONG)
    sock = socketio.test_client(
        app, flask_test_client=client, auth={"session": code, "view": "facilitator"}
    )
    admin = app.test_client()
    sign_in(admin)
    page = admin.get("/admin/accounts")
    response = admin.post(
        f"/admin/accounts/{other.id}/disable", data={"csrf_token": csrf_token(page), "enable": "0"}
    )
    assert response.status_code == 302
    assert not signed_in(client)
    assert not sock.is_connected()
    assert sign_in(app.test_client(), "other@example.org", STRONG).status_code == 200


def test_the_last_administrator_cannot_be_disabled_or_demoted(app, client):
    sign_in(client)
    page = client.get("/admin/accounts")
    with app.app_context():
        me = db.session.scalar(select(Facilitator.id))
    client.post(f"/admin/accounts/{me}/disable", data={"csrf_token": csrf_token(page)})
    client.post(
        f"/admin/accounts/{me}/role", data={"csrf_token": csrf_token(page), "role": "facilitator"}
    )
    with app.app_context():
        account = db.session.get(Facilitator, me)
        assert account.role == AccountRole.ADMINISTRATOR and not account.disabled


# --- remember me and the fresh session ------------------------------------------------------


def test_remember_me_only_when_asked_and_for_30_days_at_most(app, client):
    response = sign_in(client)
    assert "remember_token" not in cookie_jar(client)
    assert all("Expires" not in h for h in response.headers.getlist("Set-Cookie")), (
        "without remember me, the sign-in cookie ends with the browser"
    )
    other = app.test_client()
    response = sign_in(other, remember="y")
    remember = next(h for h in response.headers.getlist("Set-Cookie") if "remember_token" in h)
    assert "HttpOnly" in remember
    expires = parsedate_to_datetime(SimpleCookie(remember)["remember_token"]["expires"])
    assert expires - datetime.now(UTC) <= timedelta(days=30)


def test_signing_in_without_remember_me_drops_an_older_remember_cookie(client):
    sign_in(client, remember="y")
    assert "remember_token" in cookie_jar(client)
    sign_in(client)
    assert "remember_token" not in cookie_jar(client)


def test_joining_a_session_on_a_signed_in_browser_keeps_the_sign_in_to_the_browser(
    client, make_cafe
):
    """A facilitator trying the phone's view did not ask to be remembered for 30 days."""
    code = make_cafe()
    sign_in(client)
    page = client.get(f"/j/{code}")
    joined = client.post(
        f"/j/{code}", data={"csrf_token": csrf_token(page), "language": "en", "group": "1"}
    )
    assert joined.status_code == 302
    cookies = joined.headers.getlist("Set-Cookie")
    assert cookies and all("Expires" not in cookie for cookie in cookies), cookies
    assert signed_in(client) and client.get(f"/j/{code}").status_code == 200


def test_remember_me_lasts_30_days_whatever_the_configuration(tmp_path):
    year = timedelta(days=365)
    app = make_app(tmp_path, REMEMBER_COOKIE_DURATION=year, PERMANENT_SESSION_LIFETIME=year)
    try:
        response = sign_in(app.test_client(), remember="y")
        for cookie in response.headers.getlist("Set-Cookie"):
            name = cookie.split("=", 1)[0]
            expires = parsedate_to_datetime(SimpleCookie(cookie)[name]["expires"])
            assert expires - datetime.now(UTC) <= timedelta(days=30), name
    finally:
        close_app(app)


def test_signing_in_starts_a_fresh_cookie_session(client):
    client.get("/")
    with client.session_transaction() as cookie:
        cookie["planted"] = "by someone else"
        cookie["lang"] = "fr"
    sign_in(client)
    with client.session_transaction() as cookie:
        assert "planted" not in cookie
        assert cookie["lang"] == "fr"


# --- throttling --------------------------------------------------------------------------------


def test_failed_sign_ins_make_the_account_wait_longer_each_time(app, client, monkeypatch):
    now = [time.time()]
    monkeypatch.setattr(auth_module, "throttle_clock", lambda: now[0])
    for _ in range(auth_module.FREE_FAILURES):
        assert sign_in(client, password="wrong password").status_code == 200
    # Now even the right password waits, and is not even checked.
    waiting = sign_in(client)
    assert waiting.status_code == 429 and "Try again in 1 minute" in waiting.text
    now[0] += auth_module.FIRST_WAIT_S + 1
    assert sign_in(client, password="wrong password").status_code == 200
    now[0] += auth_module.FIRST_WAIT_S + 1  # the wait has doubled
    assert sign_in(client).status_code == 429
    now[0] += auth_module.FIRST_WAIT_S
    assert sign_in(client).status_code == 302
    # A success forgets the failures.
    assert sign_in(app.test_client(), password="wrong password").status_code == 200
    assert sign_in(app.test_client()).status_code == 302


def test_failures_count_across_workers_sharing_the_database(app, tmp_path):
    """Tries spread over two app instances (two workers) on one database count together."""
    from palabre import create_app

    other_worker = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "BASE_URL": "http://palabre.test",
            "SERVER_NAME": "palabre.test",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        }
    )
    other_worker.instance_path = str(tmp_path / "other")
    try:
        workers = [app.test_client(), other_worker.test_client()]
        for attempt in range(auth_module.FREE_FAILURES):
            answer = sign_in(workers[attempt % 2], password="wrong password")
            assert answer.status_code == 200
        for worker in workers:
            assert sign_in(worker).status_code == 429, "a worker did not see the other's failures"
        with app.app_context():
            stored = db.session.scalars(select(models.LoginFailure)).all()
            assert [row.failures for row in stored] == [auth_module.FREE_FAILURES]
            assert FACILITATOR_EMAIL not in stored[0].key_hash
    finally:
        close_app(other_worker)


def test_failures_are_forgotten_after_a_quiet_day(app, client, monkeypatch):
    now = [time.time()]
    monkeypatch.setattr(auth_module, "throttle_clock", lambda: now[0])
    for _ in range(auth_module.FREE_FAILURES):
        sign_in(client, "someone@example.org", "wrong password")
    now[0] += auth_module.FORGET_AFTER_S + 1
    sign_in(client, "another@example.org", "wrong password")  # any failure tidies up
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(models.LoginFailure)) == 1


def test_unknown_addresses_are_throttled_and_checked_like_known_ones(client, monkeypatch):
    with client.application.app_context():
        auth_module._unknown_account_hash()  # made once per process, before any try counts
    hashes = []
    real = models._password_work
    monkeypatch.setattr(models, "_password_work", lambda f, *a: hashes.append(f) or real(f, *a))
    for email in (FACILITATOR_EMAIL, "nobody@example.org"):
        hashes.clear()
        for _ in range(auth_module.FREE_FAILURES):
            assert sign_in(client, email, "wrong password").status_code == 200
        assert len(hashes) == auth_module.FREE_FAILURES, "one password hash per try"
        assert sign_in(client, email, "wrong password").status_code == 429


def test_unknown_addresses_take_as_long_to_refuse(client):
    def slowest_of_three(email):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            sign_in(client, email, "wrong password")
            times.append(time.perf_counter() - start)
            auth_module.throttle().succeeded(email)
        return sorted(times)[1]

    with client.application.app_context():
        known, unknown = slowest_of_three(FACILITATOR_EMAIL), slowest_of_three("x@example.org")
    assert unknown > known * 0.6, f"unknown {unknown * 1000:.0f} ms, known {known * 1000:.0f} ms"


# --- the password policy -----------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["12345678", "password1", "azertyuiop", "motdepasse", "facilitator2024"]
)
def test_common_passwords_are_refused(app, password):
    with app.test_request_context():
        assert auth_module.password_problem(password, "facilitator@example.org")


@pytest.mark.parametrize("password", [STRONG, "Tr0ub4dor&3 with a river", "olive lantern harbour"])
def test_strong_passwords_pass(app, password):
    with app.test_request_context():
        assert auth_module.password_problem(password) is None


def test_the_command_refuses_a_common_password(runner):
    result = runner.invoke(args=["create-facilitator", "z@example.org", "--password", "12345678"])
    assert result.exit_code != 0 and "easy to guess" in result.output


# --- the first account ----------------------------------------------------------------------


def test_two_simultaneous_first_account_set_ups_make_one_account(app, monkeypatch):
    from palabre.auth import new_setup_token

    with app.app_context():
        db.session.execute(db.delete(Facilitator))
        db.session.commit()
        link = f"/auth/setup/{new_setup_token()}"
    token_file = Path(app.instance_path) / "setup_token"
    stored_hash = token_file.read_text()
    first, second = app.test_client(), app.test_client()
    pages = []
    for client in (first, second):
        client.get(link)
        pages.append(client.get("/auth/setup"))
    data = {"name": "Amina", "email": "amina@example.org", "password": STRONG}
    response = first.post("/auth/setup", data={**data, "csrf_token": csrf_token(pages[0])})
    assert response.location == "/sessions/"
    # The second request passed the first checks before the first account existed.
    token_file.write_text(stored_hash)
    answers = iter([True])
    real = auth_module.no_account_yet
    monkeypatch.setattr(auth_module, "no_account_yet", lambda: next(answers, None) or real())
    response = second.post(
        "/auth/setup",
        data={**data, "email": "bea@example.org", "csrf_token": csrf_token(pages[1])},
    )
    assert response.status_code == 302 and response.location == "/auth/login"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Facilitator)) == 1
        assert db.session.scalar(select(Facilitator.role)) == AccountRole.ADMINISTRATOR


# --- the second factor ----------------------------------------------------------------------


def turn_on_second_factor(client) -> str:
    page = client.get("/account/second-factor")
    assert "<svg" in page.text, "the page shows a QR code"
    with client.session_transaction() as cookie:
        secret = cookie["totp_setup"]
    response = client.post(
        "/account/second-factor",
        data={"csrf_token": csrf_token(page), "code": pyotp.TOTP(secret).now()},
    )
    assert response.location == "/account"
    return secret


def test_second_factor_asked_after_the_password_and_each_code_used_once(app, client):
    sign_in(client)
    secret = turn_on_second_factor(client)
    phone = app.test_client()
    response = sign_in(phone)
    assert response.location == "/auth/login/code"
    assert not signed_in(phone)
    page = phone.get("/auth/login/code")
    wrong = phone.post("/auth/login/code", data={"csrf_token": csrf_token(page), "code": "000000"})
    assert wrong.status_code == 200 and not signed_in(phone)
    # The code used to turn it on is spent: the next time step's code signs in.
    otp = pyotp.TOTP(secret)
    code = otp.at(time.time() + otp.interval)
    page = phone.get("/auth/login/code")
    response = phone.post("/auth/login/code", data={"csrf_token": csrf_token(page), "code": code})
    assert response.location == "/sessions/" and signed_in(phone)
    again = app.test_client()
    sign_in(again)
    page = again.get("/auth/login/code")
    replay = again.post("/auth/login/code", data={"csrf_token": csrf_token(page), "code": code})
    assert replay.status_code == 200 and not signed_in(again), "a code was accepted twice"


def sign_ins_audited(app, action: str = "auth.login") -> list[dict]:
    with app.app_context():
        return [
            entry.detail
            for entry in db.session.scalars(
                select(models.AuditEntry)
                .where(models.AuditEntry.action == action)
                .order_by(models.AuditEntry.id)
            )
        ]


def test_signing_out_is_in_the_audit_log_with_who_signed_out(app, client):
    """A sign-out is logged under its account; a browser signed in to nothing logs nothing."""
    sign_in(client)
    sign_out(client)
    assert not signed_in(client)
    assert sign_ins_audited(app, "auth.logout") == [{}]
    with app.app_context():
        entry = db.session.scalar(
            select(models.AuditEntry).where(models.AuditEntry.action == "auth.logout")
        )
        assert entry.facilitator_id == db.session.scalar(select(Facilitator.id))
    page = client.get("/auth/login")
    client.post("/auth/logout", data={"csrf_token": csrf_token(page)})
    assert sign_ins_audited(app, "auth.logout") == [{}]


def test_a_sign_in_is_in_the_audit_log_once_it_is_complete(app, client):
    """With the password alone, or once the second factor's code follows it; never a failure."""
    assert sign_in(app.test_client(), password="not the password").status_code == 200
    assert sign_ins_audited(app) == []
    sign_in(client)
    assert sign_ins_audited(app) == [{}]
    secret = turn_on_second_factor(client)
    phone = app.test_client()
    assert sign_in(phone).location == "/auth/login/code"
    assert sign_ins_audited(app) == [{}], "the password alone does not sign this account in"
    otp = pyotp.TOTP(secret)
    page = phone.get("/auth/login/code")
    code = otp.at(time.time() + otp.interval)
    phone.post("/auth/login/code", data={"csrf_token": csrf_token(page), "code": code})
    assert signed_in(phone)
    assert sign_ins_audited(app) == [{}, {"second_factor": True}]


def test_codes_of_the_second_factor_are_throttled(app, client, monkeypatch):
    """Six digits are a million guesses: after five wrong codes, even the right one waits."""
    now = [time.time()]
    monkeypatch.setattr(auth_module, "throttle_clock", lambda: now[0])
    secret = pyotp.random_base32()
    with app.app_context(), write_transaction():
        db.session.scalar(select(Facilitator)).totp_secret = secret

    def send_code(code):
        page = client.get("/auth/login/code")
        return client.post("/auth/login/code", data={"csrf_token": csrf_token(page), "code": code})

    assert sign_in(client).location == "/auth/login/code"
    for _ in range(auth_module.FREE_FAILURES):
        assert send_code("000000").status_code == 200
    waiting = send_code(pyotp.TOTP(secret).now())
    assert waiting.status_code == 429 and not signed_in(client)
    now[0] += auth_module.FIRST_WAIT_S + 1
    assert send_code(pyotp.TOTP(secret).now()).location == "/sessions/"


def test_a_code_typed_in_groups_or_with_arabic_digits_is_read_as_its_digits():
    """Apps show "123 456"; an Arabic or Persian phone keyboard types ١٢٣٤٥٦ or ۱۲۳۴۵۶."""
    from palabre import totp

    secret, now = pyotp.random_base32(), time.time()
    code = pyotp.TOTP(secret).at(now)
    arabic = code.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    persian = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    expected = totp.matching_step(secret, code, now=now)
    assert expected is not None
    for typed in (f"{code[:3]} {code[3:]}", arabic, persian):
        assert totp.matching_step(secret, typed, now=now) == expected, typed
    for wrong in ("12345６", "1e5", "", "１２３４５６"):
        assert totp.matching_step(secret, wrong, now=now) is None


def test_turning_the_second_factor_off_is_throttled_as_signing_in(app, client, monkeypatch):
    now = [time.time()]
    monkeypatch.setattr(auth_module, "throttle_clock", lambda: now[0])
    sign_in(client)
    secret = turn_on_second_factor(client)

    def turn_off(code):
        page = client.get("/account")
        client.post(
            "/account/second-factor/off", data={"csrf_token": csrf_token(page), "code": code}
        )
        with app.app_context():
            return db.session.scalar(select(Facilitator.totp_secret)) is None

    for _ in range(auth_module.FREE_FAILURES):
        assert not turn_off("000000")
    otp = pyotp.TOTP(secret)
    assert not turn_off(otp.at(time.time() + otp.interval)), "turned off while waiting"
    assert "Try again in 1 minute" in client.get("/account").text
    now[0] += auth_module.FIRST_WAIT_S + 1
    assert turn_off(otp.at(time.time() + otp.interval))


def test_the_code_page_without_a_password_first_goes_to_sign_in(client):
    assert client.get("/auth/login/code").location == "/auth/login"


# --- headers and cookies ------------------------------------------------------------------------


def test_security_headers_on_every_page(client):
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers


def test_https_base_url_makes_cookies_secure_and_asks_for_hsts(tmp_path):
    app = make_app(tmp_path, BASE_URL="https://palabre.city.example", SERVER_NAME="palabre.test")
    try:
        client = app.test_client()
        response = sign_in(client, remember="y")
        cookies = response.headers.getlist("Set-Cookie")
        assert cookies and all("Secure" in cookie for cookie in cookies)
        assert "max-age=" in client.get("/").headers["Strict-Transport-Security"]
    finally:
        close_app(app)


# --- a password reset by an administrator ---------------------------------------------------


def reset_by_the_administrator(app, account_id: int):
    """The administrator resets an account's password; returns the answer with the link."""
    admin = app.test_client()
    sign_in(admin)
    page = admin.get("/admin/accounts")
    return admin.post(
        f"/admin/accounts/{account_id}/reset-password", data={"csrf_token": csrf_token(page)}
    )


def reset_link(answer) -> str:
    link = re.search(r'class="reset-link">([^<]+)<', answer.text).group(1)
    return urlsplit(link).path


def a_facilitator_running_a_cafe(app, make_cafe) -> tuple[int, str]:
    code = make_cafe()
    with app.app_context(), write_transaction():
        facilitator = Facilitator(email="fatima@example.org", name="Fatima")
        facilitator.password_hash = models.hash_password(STRONG)
        db.session.add(facilitator)
        db.session.flush()
        db.session.scalar(
            select(models.Session).where(models.Session.code == code)
        ).created_by_id = facilitator.id
    return facilitator.id, code


def test_an_administrators_reset_signs_the_account_out_everywhere(app, client, make_cafe):
    facilitator_id, code = a_facilitator_running_a_cafe(app, make_cafe)
    sign_in(client, "fatima@example.org", STRONG, remember="y")
    only_remember = app.test_client()
    copy_cookies(client, only_remember, only={"remember_token"})
    sock = socketio.test_client(
        app, flask_test_client=client, auth={"session": code, "view": "facilitator"}
    )
    assert sock.is_connected() and signed_in(only_remember)
    answer = reset_by_the_administrator(app, facilitator_id)
    assert answer.status_code == 200 and "shown only once" in answer.text
    assert not signed_in(client) and not signed_in(only_remember)
    assert not sock.is_connected()
    assert sign_in(app.test_client(), "fatima@example.org", STRONG).status_code == 200, (
        "the old password still works"
    )
    with app.app_context():
        audited = db.session.scalars(select(models.AuditEntry)).all()
        assert [(e.action, e.detail) for e in audited if e.action != "auth.login"] == [
            (
                "accounts.reset_password",
                {"account_id": facilitator_id, "email": "fatima@example.org"},
            )
        ]


def test_a_reset_link_sets_a_strong_password_once(app, make_cafe):
    facilitator_id, _code = a_facilitator_running_a_cafe(app, make_cafe)
    link = reset_link(reset_by_the_administrator(app, facilitator_id))
    phone = app.test_client()
    opened = phone.get(link)
    assert opened.location == "/auth/reset", "the token stays out of the address bar"
    page = phone.get("/auth/reset")
    assert "fatima@example.org" in page.text
    weak = phone.post("/auth/reset", data={"csrf_token": csrf_token(page), "password": "12345678"})
    assert weak.status_code == 400 and "too easy to guess" in weak.text
    new_password = "amber kettle under thunder"
    done = phone.post(
        "/auth/reset", data={"csrf_token": csrf_token(page), "password": new_password}
    )
    assert done.location == "/auth/login"
    assert sign_in(app.test_client(), "fatima@example.org", new_password).status_code == 302
    again = app.test_client()
    assert again.get(link).location == "/auth/login", "a reset link works once"
    assert "does not work any more" in again.get("/auth/login").text
    with app.app_context():
        last = db.session.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id)).all()
        assert [(entry.action, entry.facilitator_id) for entry in last[-2:]] == [
            ("auth.reset_password", facilitator_id),
            ("auth.login", facilitator_id),  # with the new password
        ]


def test_a_reset_link_expires_and_a_newer_one_replaces_it(app, make_cafe, monkeypatch):
    facilitator_id, _code = a_facilitator_running_a_cafe(app, make_cafe)
    first = reset_link(reset_by_the_administrator(app, facilitator_id))
    second = reset_link(reset_by_the_administrator(app, facilitator_id))
    assert app.test_client().get(first).location == "/auth/login", "the older link still works"
    later = time.time() + (auth_module.RESET_LINK_HOURS + 1) * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert app.test_client().get(second).location == "/auth/login", "the link never expires"


def test_an_administrator_resets_neither_their_own_password_nor_a_disabled_account(app):
    with app.app_context():
        me = db.session.scalar(select(Facilitator.id).where(Facilitator.email == FACILITATOR_EMAIL))
    answer = reset_by_the_administrator(app, me)
    assert answer.status_code == 302 and answer.location == "/admin/accounts"
    assert sign_in(app.test_client()).status_code == 302
    with app.app_context(), write_transaction():
        gone = Facilitator(email="gone@example.org", name="Gone", disabled=True, password_hash="x")
        db.session.add(gone)
    assert reset_by_the_administrator(app, gone.id).location == "/admin/accounts"
    with app.app_context():
        assert db.session.get(Facilitator, gone.id).password_hash == "x"


def test_a_reset_may_turn_off_a_lost_second_factor(app, make_cafe):
    facilitator_id, _code = a_facilitator_running_a_cafe(app, make_cafe)
    with app.app_context(), write_transaction():
        db.session.get(Facilitator, facilitator_id).totp_secret = pyotp.random_base32()
    kept = reset_by_the_administrator(app, facilitator_id)
    with app.app_context():
        assert db.session.get(Facilitator, facilitator_id).totp_secret, "turned off unasked"
    admin = app.test_client()
    sign_in(admin)
    page = admin.get("/admin/accounts")
    assert "Also turn off their second factor" in page.text and kept.status_code == 200
    admin.post(
        f"/admin/accounts/{facilitator_id}/reset-password",
        data={"csrf_token": csrf_token(page), "second_factor": "off"},
    )
    with app.app_context():
        assert db.session.get(Facilitator, facilitator_id).totp_secret is None
        last = db.session.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id)).all()[
            -1
        ]
        assert last.detail["second_factor_off"] is True
