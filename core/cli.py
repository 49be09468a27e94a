"""The ``palabre`` command: ``serve``, ``backup``, ``restore``, ``export``, ``purge``, ..."""

from __future__ import annotations

import sys


def main() -> None:
    """Console entry point."""
    if sys.argv[1:2] == ["serve"]:
        # The server runs on gevent; patch the standard library before
        # anything else imports it, so database, Redis and child-process
        # calls yield to other connections instead of blocking them.
        from gevent import monkey

        monkey.patch_all()
    from flask.cli import FlaskGroup

    from . import create_app
    from .backups import backup_command, restore_command
    from .retention import purge_command
    from .scaffold import new_method_command
    from .serve import serve
    from .transfer import export_command, import_command

    cli = FlaskGroup(
        create_app=lambda: create_app(),
        add_version_option=False,
        help="Palabre: co-design sessions with everyone in the room.",
    )
    cli.add_command(serve)
    cli.add_command(backup_command)
    cli.add_command(restore_command)
    cli.add_command(new_method_command)
    cli.add_command(export_command)
    cli.add_command(import_command)
    cli.add_command(purge_command)
    cli.main(prog_name="palabre")
