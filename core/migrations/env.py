"""Alembic environment for Palabre, run by Flask-Migrate (``palabre db ...``).

The app built by :func:`palabre.create_app` provides the engine and the models'
metadata; ``palabre serve`` runs ``upgrade`` before serving.

Revisions are rendered in batch mode so that later ``ALTER``s also work on
SQLite (which cannot alter a column or constraint in place), and every
constraint carries an explicit name so that a later revision can drop it by
the same name on SQLite and PostgreSQL alike.
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config

# Configure logging from alembic.ini only when nobody has configured it yet
# (``palabre db`` on the command line), and never silence loggers the app or
# the test runner set up before.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_engine_url() -> str:
    return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")


config.set_main_option("sqlalchemy.url", get_engine_url())
target_db = current_app.extensions["migrate"].db


def get_metadata():
    return target_db.metadata


def configure_args() -> dict:
    args = dict(current_app.extensions["migrate"].configure_args)
    # SQLite can only alter a table by copying it: let Alembic do that.
    args.setdefault("render_as_batch", True)
    args.setdefault("compare_type", True)
    return args


def run_migrations_offline() -> None:
    """Write the SQL to standard output (``palabre db upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=get_metadata(),
        literal_binds=True,
        **configure_args(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the app's database."""

    def process_revision_directives(context, revision, directives):
        # ``palabre db migrate`` with no change to the models writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    args = configure_args()
    args.setdefault("process_revision_directives", process_revision_directives)
    with get_engine().connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # The engine really begins transactions on SQLite (palabre.database),
            # so a failed revision is rolled back whole. Batch mode rebuilds a
            # table by copying and dropping it, which enforced foreign keys
            # would refuse for a table others refer to: they are checked once
            # at the end instead.
            args.setdefault("transactional_ddl", True)
            _sqlite_pragma(connection, "foreign_keys=OFF")
        try:
            context.configure(connection=connection, target_metadata=get_metadata(), **args)
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"foreign keys broken by the migration: {broken}")
        finally:
            if sqlite:
                _sqlite_pragma(connection, "foreign_keys=ON")


def _sqlite_pragma(connection, pragma: str) -> None:
    """Run a PRAGMA outside any transaction, where SQLite honours it."""
    if connection.in_transaction():
        connection.rollback()
    connection.connection.driver_connection.execute(f"PRAGMA {pragma}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
