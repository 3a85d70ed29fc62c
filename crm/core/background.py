"""What every leased background job (CSV imports, bulk work) shares: the scheduler's pick-up."""
import logging

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
