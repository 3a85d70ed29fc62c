"""Health checks for load balancers and supervisors.

GET /healthz is liveness: the process is up and answering. It touches no database, so a
database outage does not get healthy workers restarted. GET /readyz is readiness: the
database answers and accepts writes (not down, not a read-only standby, not
`default_transaction_read_only`); 503 with Retry-After otherwise, so traffic is held back.
Its `scheduler` field says whether a `crm scheduler` has renewed its lease lately; it does
not change the status (the web serves without one), but monitoring should alert on it.
"""
from flask import Blueprint, jsonify
from sqlalchemy import text

from .auth.access import public
from .campaigns import jobs
from .errors import RETRY_AFTER_SECONDS, unavailable_reason
from .extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@public
def readyz():
    try:
        db.session.execute(text("SELECT 1"))
        read_only = (db.session.get_bind().dialect.name == "postgresql"
                     and db.session.execute(text("SHOW transaction_read_only")).scalar() == "on")
        # Informational: the web serves without a scheduler, but a monitor should alert on it.
        scheduler = "not_running" if jobs.scheduler_down() else "ok"
        db.session.rollback()
    except Exception as exc:
        if not unavailable_reason(exc):
            raise
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001, S110 - the connection is already gone; the pool replaces it
            pass
        return _not_ready("unreachable")
    if read_only:
        return _not_ready("read_only")
    return jsonify({"status": "ok", "database": "ok", "scheduler": scheduler})


def _not_ready(state):
    # Drop this worker's pooled connections: one opened while the database was read-only stays
    # read-only for life, so the next check (or request) must start on a fresh one.
    db.engine.dispose()
    resp = jsonify({"status": "unavailable", "database": state})
    resp.status_code = 503
    resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return resp
