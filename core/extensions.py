"""Flask extensions, created once here and bound in :func:`palabre.create_app`."""

import greenlet
from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from .i18n import PerAppDomain


class Base(DeclarativeBase):
    # Named constraints, so that later migrations can alter them (SQLite
    # rebuilds tables in batch mode and must know what to drop).
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


#: The connection each greenlet that holds a SQLite write lock writes on
#: (filled by :func:`palabre.database.write_transaction` while it holds the lock).
WRITING: dict = {}


def writing_connection():
    """The connection of the SQLite write transaction this greenlet runs, if any."""
    return WRITING.get(greenlet.getcurrent()) if WRITING else None


class WritingSession(Session):
    """The ORM session: inside a SQLite write transaction, on that transaction's connection.

    A write transaction there begins on a connection each process keeps for
    its writes (:func:`palabre.database.write_transaction`); what the block
    reads or changes through the ORM joins it, and the session neither
    commits nor closes it.
    """

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return writing_connection() or super().get_bind(mapper, clause, bind, **kwargs)


# Objects keep what was just committed instead of reloading it on the next
# read: a phone's acknowledgement and broadcast cost no extra query. Reads
# that must be fresh are: palabre.database.write_transaction expires everything
# when it takes the write lock.
db = SQLAlchemy(
    model_class=Base, session_options={"expire_on_commit": False, "class_": WritingSession}
)
migrate = Migrate()
babel = Babel()
# Catalogs cached per app, not per process: apps differ by their plugins' catalogs.
babel.domain_instance = PerAppDomain()
csrf = CSRFProtect()
login_manager = LoginManager()
socketio = SocketIO()
