"""Engine tuning that makes SQLite safe for concurrent writers.

SQLite: WAL (readers never block the writer), a busy timeout, foreign keys on,
and `BEGIN IMMEDIATE` for write transactions so two writers serialise at BEGIN
instead of failing at COMMIT. pysqlite's own implicit transactions are switched off
(isolation_level=None) so SQLAlchemy's BEGIN below is the only one.
Read-only requests (GET/HEAD) begin deferred so they never wait for a writer.
"""
import contextvars
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

_write_intent = contextvars.ContextVar("sqlite_write_intent", default=True)


def set_write_intent(value: bool):
    """Mark the current context as read-only (False) or writing (True)."""
    return _write_intent.set(value)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_conn, _record):
    if not isinstance(dbapi_conn, sqlite3.Connection):
        return
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn):
    if conn.dialect.name != "sqlite":
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")
