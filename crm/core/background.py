"""What every leased background job (CSV imports, bulk work) shares: where it starts after the
request that made it commits, and the scheduler's pick-up of jobs nobody is running."""
import logging
import threading

from flask import current_app

from ..extensions import db

log = logging.getLogger("crm.jobs")


def run_each(job_ids, run, label: str) -> int:
    """Run each job nobody is running (`run(job_id)` is truthy when it finished it); one job's
    fault is logged and must not stop the others: its lease lapses and a later tick retries it.
    Returns how many finished."""
    finished = 0
    for job_id in job_ids:
        try:
            finished += bool(run(job_id))
        except Exception:  # noqa: BLE001 — logged; retried once the lease lapses
            db.session.rollback()
            log.exception("%s %s: the runner stopped; it will be tried again", label, job_id)
    return finished


def start(run, job_id: int, *, inline: bool, label: str):
    """Run a committed job: in a thread of this process, or here and now when `inline` (tests).
    A runner that stops is logged; the scheduler takes its job over once the lease lapses."""
    if inline:
        run(job_id)
        return
    app = current_app._get_current_object()
    threading.Thread(target=_thread, args=(app, run, job_id, label), name=f"{label.replace(' ', '-')}-{job_id}",
                     daemon=True).start()


def _thread(app, run, job_id, label):
    with app.app_context():
        try:
            run(job_id)
        except Exception:  # noqa: BLE001 — logged; the scheduler takes the job over once its lease lapses
            log.exception("%s %s: the runner stopped", label, job_id)
        finally:
            db.session.remove()
