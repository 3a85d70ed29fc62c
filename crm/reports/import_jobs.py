"""CSV imports as background jobs, so no request holds a worker while 100,000 rows go in.

The upload request checks the encoding and the header (422 at once), stores the file in an
`import_jobs` row, commits and answers 202; then a runner takes the job:

* a thread started in the web process that took the upload (`start`), or
* the scheduler (`run_pending`, from crm/campaigns/jobs.py), which takes any job still
  queued or whose runner stopped (a worker killed mid-import, a host gone): a runner holds
  a lease that it renews with every chunk, and a job whose lease lapsed is taken over.

A runner claims a job with one conditional UPDATE whose row count decides, so two runners
never work on the same job; each chunk's rows and the job's progress are committed in one
transaction, and the progress is written only while the runner still holds the job, so a
runner that lost its lease rolls its chunk back. The job runs in two passes (imports.py):
checking every row (writes nothing; restarted from the top after a takeover), then writing
the good rows a chunk per transaction (resumed after the last committed chunk). A file
with bad rows ends `failed` with nothing imported, unless the caller asked to skip them.
A dry run stops after the first pass: `done` with every bad row listed, nothing written.
Checks and stays are read and written by imports.py, members by members/legacy_import.py
(the same functions: rows, count_rows, check_chunk, write_chunk, and a Lookups per file).
"""
import logging
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..core import audit, background, locks
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.timeutil import utcnow
from ..errors import Invalid
from ..extensions import db
from ..members import legacy_import
from . import imports
from .models import ImportJob

log = logging.getLogger("crm.imports")
MAX_ERRORS = 1000  # bad rows kept with their line and message; error_count counts them all
MAX_ATTEMPTS = 5  # a job whose runners stopped this often (a fault, not a restart) is failed
WRITE_TRIES = 3  # a chunk that lost a race (the same number imported by another job) is tried again


KINDS = (*imports.KINDS, "members")


def _reader(kind):
    """The module that reads, checks and writes rows of this kind."""
    return legacy_import if kind == "members" else imports


def _lookups(job_id: int, kind: str):
    return legacy_import.Lookups(job_id, _actor(job_id)) if kind == "members" else imports.Lookups(_actor(job_id))


class LostLease(Exception):
    """Another runner took the job over after this one's lease lapsed."""


def create(actor: Actor, kind: str, raw: bytes | str, *, filename: str = "", skip_bad_rows: bool = False,
           dry_run: bool = False) -> ImportJob:
    """A queued job holding the file (as UTF-8, with the encoding it was sent in: UTF-8 or
    GB18030/GBK); an encoding neither reads, or a bad header, is refused here (422)."""
    if kind not in KINDS:
        raise Invalid(_("Choose checks, stays or members."), field="kind")
    text, encoding = imports.decode(raw if isinstance(raw, str) else bytes(raw))
    raw = text.encode("utf-8")  # kept as UTF-8 whatever it came in: the passes read it as such
    total = _reader(kind).count_rows(raw, kind)
    job = ImportJob(kind=kind, filename=(filename or "")[:255], content=raw, encoding=encoding,
                    skip_bad_rows=skip_bad_rows, dry_run=dry_run,
                    locale=str(get_locale() or "en"), total=total, errors=[], bad_lines=[],
                    created_by=actor.staff_id, address=(actor.address or "")[:64])
    db.session.add(job)
    db.session.flush()
    return job


def get(job_id: int) -> ImportJob:
    return get_or_404(ImportJob, job_id, _("No such import."), code="import_not_found")


def recent(limit: int = 20) -> list[ImportJob]:
    return list(db.session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)))


def status(job: ImportJob) -> dict:
    """What the status endpoint and the imports page show of a job."""
    return {"id": job.id, "kind": job.kind, "filename": job.filename, "encoding": job.encoding,
            "skip_bad_rows": job.skip_bad_rows, "dry_run": job.dry_run,
            "status": job.status, "phase": job.phase, "total": job.total, "checked": job.checked, "done": job.done,
            "imported": job.imported, "updated": job.updated, "skipped": job.skipped,
            "error_count": job.error_count, "errors": job.errors or [], "failure": job.failure,
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at}


def progress(job: ImportJob) -> tuple[int, int]:
    """(value, max) of a progress bar over both passes (a dry run has only the first)."""
    if job.dry_run:
        return job.checked, max(job.total, 1)
    return job.checked + job.done, max(2 * job.total, 1)


def start(job_id: int):
    """Run a committed job: in a thread of this process (or here and now with IMPORT_RUN_INLINE)."""
    background.start(run_job, job_id, inline=current_app.config["IMPORT_RUN_INLINE"], label="import job")


def _lease():
    return timedelta(seconds=current_app.config["IMPORT_LEASE_SECONDS"])


def claim(job_id: int, runner: str) -> bool:
    """Take the job if it is queued or its holder's lease lapsed; the row count decides."""
    now = utcnow()
    taken = db.session.execute(update(ImportJob).where(
        ImportJob.id == job_id,
        or_(ImportJob.status == "queued", and_(ImportJob.status == "running", ImportJob.lease_until < now)),
    ).values(status="running", runner=runner, lease_until=now + _lease(), attempts=ImportJob.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return taken.rowcount == 1


def _save(job_id: int, runner: str, **values):
    """Write the job's progress (and renew the lease) in the current transaction, if this runner
    still holds it; otherwise roll the transaction back and raise LostLease."""
    if values.get("status") in ("done", "failed"):
        values.update(finished_at=utcnow(), lease_until=None, content=None)  # the file is not needed any more
    else:
        values["lease_until"] = utcnow() + _lease()
    held = db.session.execute(update(ImportJob).where(
        ImportJob.id == job_id, ImportJob.runner == runner, ImportJob.status == "running",
    ).values(**values).execution_options(synchronize_session=False))
    if held.rowcount != 1:
        db.session.rollback()
        raise LostLease()


def run_job(job_id: int, runner: str | None = None) -> bool:
    """Claim the job and take it to its end. False if another runner holds it, it had finished,
    or this runner lost it on the way."""
    runner = runner or secrets.token_hex(8)
    if not claim(job_id, runner):
        return False
    job = db.session.get(ImportJob, job_id)
    if job.started_at is None:
        db.session.execute(update(ImportJob).where(ImportJob.id == job_id).values(started_at=utcnow())
                           .execution_options(synchronize_session=False))
        db.session.commit()
    try:
        with force_locale(job.locale):
            if job.attempts > MAX_ATTEMPTS:
                log.error("import job %s: stopped %d times; given up", job_id, job.attempts - 1)
                _save(job_id, runner, status="failed", failure="stopped")
                db.session.commit()
                return True
            if job.phase == "checking" and not _check(job, runner):
                return True
            _write(job, runner)
        return True
    except LostLease:
        log.warning("import job %s: taken over by another runner", job_id)
        return False
    except Exception:
        db.session.rollback()
        # Let the next runner (the scheduler) try again at once rather than after the lease.
        db.session.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.runner == runner)
                           .values(lease_until=utcnow()).execution_options(synchronize_session=False))
        db.session.commit()
        raise


def _check(job: ImportJob, runner: str) -> bool:
    """The first pass. True if the rows may be written; False if the job failed on bad rows."""
    job_id, kind, raw, skip, dry_run = job.id, job.kind, job.content, job.skip_bad_rows, job.dry_run
    size = current_app.config["IMPORT_CHUNK_ROWS"]
    reader = _reader(kind)
    look, seen, errors, bad_lines, checked, error_count = _lookups(job_id, kind), {}, [], [], 0, 0
    for chunk in imports.chunks(reader.rows(raw, kind), size):
        found = reader.check_chunk(kind, chunk, look, seen)
        checked += len(chunk)
        error_count += len(found)
        errors += found[:MAX_ERRORS - len(errors)]
        if skip:
            bad_lines += [e["line"] for e in found]
        _save(job_id, runner, checked=checked, error_count=error_count)
        db.session.commit()
    if dry_run:  # what a real run would do: new rows (members: those not imported before) and the rest
        new = getattr(look, "new", checked - error_count)
        _save(job_id, runner, status="done", total=checked, errors=errors, imported=new, skipped=checked - new)
        audit.record(_actor(job_id), f"import.{kind}", entity_type="import_jobs", entity_id=job_id, dry_run=True,
                     checked=checked, error_count=error_count)
        db.session.commit()
        return False
    if error_count and not skip:
        _save(job_id, runner, status="failed", failure="bad_rows", total=checked, errors=errors, skipped=checked)
        db.session.commit()
        return False
    _save(job_id, runner, phase="writing", total=checked, errors=errors, bad_lines=bad_lines)
    db.session.commit()
    return True


def _write(job: ImportJob, runner: str):
    """The second pass, from the first row no runner has committed yet."""
    job_id, kind, raw, done = job.id, job.kind, job.content, job.done
    counts = {"imported": job.imported, "updated": job.updated, "skipped": job.skipped}
    errors, error_count, bad = list(job.errors or []), job.error_count, set(job.bad_lines or ())
    size = current_app.config["IMPORT_CHUNK_ROWS"]
    reader = _reader(kind)
    look = _lookups(job_id, kind)
    remaining = reader.rows(raw, kind)
    for _row in range(done):  # committed by an earlier runner
        next(remaining)
    for chunk in imports.chunks(remaining, size):
        good = [row for row in chunk if row[0] not in bad]
        imported, updated, late = _write_chunk(job_id, runner, kind, good, look)
        done += len(chunk)
        counts["imported"] += imported
        counts["updated"] += updated
        counts["skipped"] += len(chunk) - imported - updated  # bad rows, and members imported before
        extra = {}
        if late:  # a row that stopped being valid after the first pass
            error_count += len(late)
            errors += late[:MAX_ERRORS - len(errors)]
            extra = {"errors": list(errors), "error_count": error_count}
        _save(job_id, runner, done=done, **counts, **extra)
        db.session.commit()
    actor = _actor(job_id)
    _save(job_id, runner, status="done")
    audit.record(actor, f"import.{kind}", entity_type="import_jobs", entity_id=job_id, **counts)
    db.session.commit()
    log.info("import job %s (%s): %d rows, %d new, %d updated, %d skipped", job_id, kind, done, counts["imported"],
             counts["updated"], counts["skipped"])


def _write_chunk(job_id, runner, kind, good, look):
    """Write one chunk; a chunk that lost a race to another import of the same numbers is rolled
    back and written again (the numbers the other committed are then updated, not inserted)."""
    for attempt in range(1, WRITE_TRIES + 1):
        try:
            return _reader(kind).write_chunk(kind, good, look)
        except (IntegrityError, DBAPIError) as exc:
            db.session.rollback()
            if attempt == WRITE_TRIES or not (isinstance(exc, IntegrityError) or locks.is_retryable(exc)):
                raise
            log.info("import job %s: a chunk met a concurrent import; writing it again", job_id)
    raise AssertionError("unreachable")


def _actor(job_id: int) -> Actor:
    """Who uploaded the file, for the audit log."""
    job = db.session.get(ImportJob, job_id)
    return Actor.of_staff(job.created_by, job.address, otherwise="import")


def pending_ids() -> list[int]:
    """Jobs nobody is running: queued, or left `running` by a runner whose lease lapsed."""
    now = utcnow()
    ids = list(db.session.scalars(select(ImportJob.id).where(or_(
        ImportJob.status == "queued", and_(ImportJob.status == "running", ImportJob.lease_until < now)))
        .order_by(ImportJob.id)))
    db.session.rollback()  # no read transaction left open while the jobs run
    return ids


def run_pending() -> int:
    """The scheduler's pick-up: run every job nobody is running; returns how many it finished."""
    return background.run_each(pending_ids(), run_job, "import job")
