"""``palabre serve``: migrate the database and serve Palabre on the network."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import func, select

from .auth import new_setup_token
from .extensions import db, socketio
from .join import lan_address
from .models import Facilitator


@click.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@with_appcontext
def serve(host: str, port: int) -> None:
    """Bring the database up to date and serve Palabre (Ctrl+C stops it)."""
    app = current_app._get_current_object()
    upgrade()
    base = app.config.get("BASE_URL") or f"http://{lan_address() or 'localhost'}:{port}"
    click.echo(f"Palabre is running. Phones join at {base.rstrip('/')}/")
    if not db.session.scalar(select(func.count()).select_from(Facilitator)):
        token = new_setup_token()
        click.echo(
            "No facilitator account yet. To create the first one, open\n"
            f"  http://localhost:{port}/auth/setup/{token}\n"
            "on this computer (the link works once), or run\n"
            "  palabre create-facilitator you@example.org"
        )
    db.session.remove()
    # No access log: it would record every visitor's address.
    socketio.run(app, host=host, port=port, log_output=False)
