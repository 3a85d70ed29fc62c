"""Per-worker caches of reference data, invalidated by version rows.

A checkout consults the token's staff, the store, the dishes, the promotions, the levels
and the programme rules; they change a few times a day and were read again on every
request. Each gunicorn worker now keeps them in memory, per *namespace*:

- every namespace has a row in `cache_versions`; any change to one of its tables (an ORM
  flush, or a Core UPDATE/DELETE/INSERT through the session) adds 1 to its version in the
  same transaction, so the new version commits exactly when the change does;
- a transaction (a request is one) reads all versions once (one small SELECT, on first
  use) and drops what it holds under an older version. A change made by an admin on any
  worker or host is therefore seen by the very next request everywhere: no time-based
  expiry, nothing to wait for;
- within the request that made a change, that namespace is read from the database, not
  the cache (the change is not committed yet, and may still roll back).

Changes that bypass the session (psql, a data migration in raw SQL) are not seen until the
namespace's version moves: `flask --app wsgi crm refresh-caches` bumps them all.
"""
from functools import cache

from flask import current_app
from sqlalchemy import String, event, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..extensions import db
from . import rows

# namespace -> the tables its cached data is made of; a change to any of them invalidates it
# (a store's columns are copied into the token cache, a level's code into dish prices).
TABLES = {
    "auth": ("api_tokens", "staff", "stores"),
    "stores": ("stores",),
    "catalogue": ("items", "item_level_prices", "item_stores", "member_levels"),
    "promotions": ("promotions",),
    "levels": ("member_levels",),
    "programme": ("programme_settings",),
    "notifications": ("notification_templates",),
}
NAMESPACES = tuple(TABLES)
_WATCHED: dict[str, set[str]] = {}  # table -> namespaces
for _namespace, _tables in TABLES.items():
    for _table in _tables:
        _WATCHED.setdefault(_table, set()).add(_namespace)


class CacheVersion(db.Model):
    __tablename__ = "cache_versions"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


@event.listens_for(CacheVersion.__table__, "after_create")
def _seed(table, connection, **_kw):  # create_all (tests, fresh SQLite); migrations seed their own
    connection.execute(insert(table), [{"name": n, "version": 0} for n in NAMESPACES])


def _store() -> dict:
    """{namespace: (version, {key: value})} of this worker, per app (tests run several)."""
    return current_app.extensions.setdefault("refcache", {})


def _changed_here(session=None) -> set:
    """Namespaces this session's open transaction has changed (not committed yet)."""
    return (session or db.session()).info.setdefault("refcache_changed", set())


@cache
def _all_versions():  # a statement built once (core/rows.py says why)
    table = CacheVersion.__table__
    return select(table.c.name, table.c.version)


def _versions(session) -> dict:
    """The committed versions, read once per transaction (a request is one; the scheduler and
    CLI commands, long-lived, read them again in each of theirs)."""
    found = session.info.get("refcache_versions")
    if found is None:
        found = session.info["refcache_versions"] = dict(session.connection().execute(_all_versions()).all())
    return found


def get(namespace: str, key, load):
    """The cached value of `key` in `namespace`, or `load()` (kept for the next request unless
    None: unknown keys are asked again, so made-up codes cannot fill a worker's memory)."""
    session = db.session()
    session.flush()  # as a query would autoflush (free when nothing is pending): pending changes bump now
    if namespace in _changed_here(session):
        return load()
    version = _versions(session).get(namespace)
    if version is None:  # no version row (a namespace newer than the database): never cached
        return load()
    store = _store()
    held = store.get(namespace)
    if held is None or held[0] != version:
        held = store[namespace] = (version, {})
    try:
        return held[1][key]
    except KeyError:
        value = load()
        if value is not None:
            held[1][key] = value
        return value


def attach(model, columns: dict):
    """A cached row as a persistent instance of this session, without a query (it joins the
    identity map, so relationships pointing at it load without SQL either)."""
    return db.session.merge(rows.detached(model, columns), load=False)


def detached_copy(obj, **related):
    """A copy of a loaded row that belongs to no session, with these relationships set to
    detached copies too (None stays None): readable in any request without a query."""
    return rows.detached(type(obj), columns_of(obj), **{
        name: detached_copy(value) if value is not None else None for name, value in related.items()})


def columns_of(obj) -> dict:
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs}


def bump(session: Session, namespaces):
    if not namespaces:
        return
    _changed_here(session).update(namespaces)
    session.connection().execute(update(CacheVersion).where(CacheVersion.name.in_(sorted(namespaces)))
                                 .values(version=CacheVersion.version + 1))


def bump_all():
    bump(db.session, NAMESPACES)


def _tables_of(objects):
    for obj in objects:
        table = getattr(obj, "__table__", None)
        if table is not None:
            yield table.name


@event.listens_for(Session, "after_flush")
def _after_flush(session, _flush_context):
    touched = set()
    for name in _tables_of((*session.new, *session.dirty, *session.deleted)):
        touched |= _WATCHED.get(name, set())
    bump(session, touched)


@event.listens_for(Session, "do_orm_execute")
def _after_dml(state):
    """Core UPDATE/DELETE/INSERT run through the session (a token revoked with update())."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return None
    table = getattr(state.statement, "table", None)
    touched = _WATCHED.get(getattr(table, "name", None), set())
    if not touched:
        return None
    result = state.invoke_statement()
    bump(state.session, touched)
    return result


@event.listens_for(Session, "after_transaction_end")
def _transaction_over(session, transaction):
    """The transaction is over (committed or gone): the next one reads the versions again.
    Only the outermost transaction counts: a savepoint released or rolled back leaves the
    changes before it pending, so the namespace must still bypass the cache (else its
    uncommitted rows could be cached, and kept if the transaction then rolls back)."""
    if transaction.parent is not None:
        return
    session.info.pop("refcache_changed", None)
    session.info.pop("refcache_versions", None)
