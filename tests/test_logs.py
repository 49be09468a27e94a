"""Logs as JSON lines for a hosted instance's collector, about Palabre and never about people."""

from __future__ import annotations

import json
import logging

import pytest

from palabre.logs import LOGGER
from palabre.testing.kit import close_app, make_app


@pytest.fixture
def json_app(tmp_path):
    app = make_app(tmp_path / "json", LOG_FORMAT="json")
    yield app
    close_app(app)
    close_app(make_app(tmp_path / "text"))  # an app with text logs removes the JSON handler


def test_records_are_json_lines_with_only_their_own_fields(json_app, capsys):
    json_app.logger.warning("Socket event %r deferred: %s", "contribute", "busy")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger(f"{LOGGER}.live").exception("Socket event %r failed", "vote")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert [(e["level"], e["logger"], e["message"]) for e in lines] == [
        ("warning", "palabre", "Socket event 'contribute' deferred: busy"),
        ("error", "palabre.live", "Socket event 'vote' failed"),
    ]
    assert "RuntimeError: boom" in lines[1]["exception"]
    for entry in lines:
        assert set(entry) <= {"time", "level", "logger", "worker", "message", "exception"}


def test_a_failing_socket_event_logs_its_name_and_not_who_sent_it(json_app, capsys, monkeypatch):
    from palabre import live
    from palabre.testing.kit import new_phone, new_session

    session = new_session(json_app, "world_cafe")
    phone = new_phone(json_app, session.code)
    monkeypatch.setattr(live.contributions, "accept", lambda *a, **k: 1 / 0)
    ack = phone.contribute("note", "Evening classes")
    phone.close()
    assert ack["ok"] is False
    [entry] = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert entry["message"] == "Socket event 'contribute' failed"
    assert "ZeroDivisionError" in entry["exception"]
    assert "Evening classes" not in json.dumps(entry) and "127.0.0.1" not in json.dumps(entry)


def test_an_app_with_text_logs_puts_flasks_handler_back(json_app, tmp_path):
    from flask.logging import default_handler

    logger = logging.getLogger(LOGGER)
    assert default_handler not in logger.handlers
    close_app(make_app(tmp_path / "plain"))
    assert default_handler in logger.handlers
    assert not [h for h in logger.handlers if h.get_name() == "palabre.json"]
