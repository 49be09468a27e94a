"""``/health``: the database and the message queue a worker depends on, and nothing else."""

from __future__ import annotations

from sqlalchemy import text

from palabre import health
from palabre.testing.kit import TEST_REDIS_VARIABLE, required_server
from palabre.testing.room import free_port


def test_a_healthy_worker_without_a_message_queue_says_so(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "message_queue": "unused"}
    assert response.headers["Cache-Control"] == "no-store"


def test_an_unreachable_database_answers_503(client, monkeypatch):
    monkeypatch.setattr(health, "text", lambda _sql: text("SELECT * FROM no_such_table"))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json["database"] == "unreachable"


def test_an_unreachable_message_queue_answers_503(app, client):
    app.config["MESSAGE_QUEUE"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json == {"database": "ok", "message_queue": "unreachable"}


def test_a_reachable_message_queue_is_ok(app, client):
    app.config["MESSAGE_QUEUE"] = required_server(TEST_REDIS_VARIABLE, "a message queue to reach")
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "message_queue": "ok"}
