"""Bulk work on an audience as background jobs with progress, idempotent and reversible.

`create` checks the action and its parameters, snapshots the audience's members into one
`bulk_job_effects` row each (one INSERT … SELECT; tombstoned and anonymised members left
out) and queues the job; a runner then takes it like an import job (reports/import_jobs.py):
a thread of the web process that created it, or the scheduler (`run_pending`) for a job
still queued or whose runner's lease lapsed. A chunk of members is one transaction: each
member's row is moved from `pending` by a conditional UPDATE whose row count decides, the
effect is written beside it and the job's progress with it, only while the runner still
holds the lease. So a member is never done twice, whatever runs twice.

Lock order (core/locks.py): a chunk first takes its members' locks, lowest id first (as a
merge takes its two), then
the effects: a coupon's stock row (step 6) is taken only once every member lock is held,
and a points grant first locks the chunk's points accounts highest id first, as the nightly
expiry (which takes no member lock) locks them, so neither waits on the other in a cycle.

A manager's reversal (`request_reversal`, once: a second is 409) runs the same way over the
applied rows: points taken back as a negative adjustment (what was already spent is the
shortfall, as a void writes off spent earnings), unused coupons cancelled (used ones kept),
a tag undone only where the job changed it, a level restored only while the member is still
at the level the job set.
"""
import logging
import secrets
from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, case, delete, func, insert, literal, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..auth.roles import ADMIN, MANAGER
from ..campaigns import audiences
from ..core import audit, background, locks, reasons
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.timeutil import local_today, utcnow, zone
from ..coupons import service as coupons
from ..errors import Conflict, DomainError, Forbidden, Invalid
from ..extensions import db
from ..members import levels
from ..members.models import Member, MemberTag
from ..points import service as points
from .models import ACTIONS, BulkJob, BulkJobEffect

log = logging.getLogger("crm.bulk")
CHUNK = 200  # members per transaction
MAX_ATTEMPTS = 5  # a job whose runners stopped this often (a fault, not a restart) is failed
TRIES = 3  # a chunk that lost a deadlock is run again
MAX_POINTS = 1_000_000
MAX_EXPIRY_YEARS = 10
TAG_LENGTH = 32
LEVEL_ROLES = frozenset({MANAGER, ADMIN})


class LostLease(Exception):
    """Another runner took the job over after this one's lease lapsed."""


# Creating --------------------------------------------------------------------------------

def clean_params(actor: Actor, action: str, data: dict) -> dict:
    """The action's parameters, checked (422 with the field; 403 for a level set by a non-manager)."""
    if action not in ACTIONS:
        raise Invalid(_("Choose what to do."), code="invalid_action", field="action")
    if action == "points":
        amount = data.get("points")
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_POINTS:
            raise Invalid(_("Grant a whole number of points from 1 to %(max)s.", max=f"{MAX_POINTS:,}"),
                          code="invalid_points", field="points")
        out = {"points": amount}
        expires = data.get("expires_on")
        if expires not in (None, ""):
            try:
                expires = expires if isinstance(expires, date) else date.fromisoformat(str(expires))
            except ValueError:
                raise Invalid(_("Use a date like 2027-03-31."), code="invalid_expiry", field="expires_on") from None
            if expires < local_today():
                raise Invalid(_("The points would expire before they are given."), code="invalid_expiry",
                              field="expires_on")
            if expires > local_today() + timedelta(days=366 * MAX_EXPIRY_YEARS):
                raise Invalid(_("Choose a day at most %(years)d years ahead.", years=MAX_EXPIRY_YEARS),
                              code="invalid_expiry", field="expires_on")
            out["expires_on"] = expires.isoformat()
        return out
    if action == "coupon":
        code = str(data.get("coupon_type") or "").strip().upper()
        found = db.session.scalar(select(coupons.CouponDefinition).where(coupons.CouponDefinition.code == code)) \
            if code else None
        if found is None:
            raise Invalid(_("Choose a coupon type."), code="unknown_coupon_type", field="coupon_type")
        if not found.active:
            raise Invalid(_("This coupon type is no longer issued."), code="coupon_type_inactive",
                          field="coupon_type")
        return {"coupon_type": found.code}
    if action in ("tag_add", "tag_remove"):
        tag = str(data.get("tag") or "").strip()
        if not tag or len(tag) > TAG_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in tag):
            raise Invalid(_("Give a tag of 1 to %(max)d characters.", max=TAG_LENGTH), code="invalid_tag",
                          field="tag")
        return {"tag": tag}
    if actor.role not in LEVEL_ROLES:
        raise Forbidden(_("Only a manager may change members' levels."), code="level_change_forbidden",
                        field="action")
    code = str(data.get("level") or "").strip()
    if not code or db.session.scalar(select(levels.MemberLevel.id).where(levels.MemberLevel.code == code)) is None:
        raise Invalid(_("Choose a level."), code="unknown_level", field="level")
    return {"level": code}


def create(actor: Actor, data: dict) -> BulkJob:
    """A queued job over the audience's members as they are now (the snapshot)."""
    action = data.get("action")
    params = clean_params(actor, action, data)
    reason = reasons.required(data.get("reason"), _("Say why (members and managers see it in the history)."))
    audience_id = data.get("audience_id")
    audience = db.session.get(audiences.Audience, audience_id) \
        if isinstance(audience_id, int) and not isinstance(audience_id, bool) else None
    if audience is None:
        raise Invalid(_("Choose an audience."), code="audience_not_found", field="audience_id")
    job = BulkJob(action=action, params=params, audience_id=audience.id, audience_name=audience.name,
                  reason=reason, created_by=actor.staff_id, address=(actor.address or "")[:64])
    db.session.add(job)
    db.session.flush()
    who = select(literal(job.id), Member.id, literal("pending"), literal(False), literal(0)).where(
        *audiences.conditions(audiences.clean(audience.filters)),
        Member.merged_into_id.is_(None), Member.anonymised_at.is_(None))
    db.session.execute(insert(BulkJobEffect).from_select(
        ["job_id", "member_id", "outcome", "tag_changed", "shortfall"], who))
    job.total = db.session.scalar(select(func.count()).where(BulkJobEffect.job_id == job.id))
    if not job.total:
        raise Invalid(_("This audience has no members now."), code="audience_empty", field="audience_id")
    db.session.flush()
    audit.record(actor, "bulk_job.create", entity=job, job_action=action, params=params, audience=audience.name,
                 members=job.total, reason=reason)
    return job


def get(job_id: int) -> BulkJob:
    return get_or_404(BulkJob, job_id, _("No such bulk job."), code="bulk_job_not_found")


def jobs():
    return select(BulkJob).order_by(BulkJob.id.desc())


def effects(job_id: int):
    return (select(BulkJobEffect, Member.name).join(Member, Member.id == BulkJobEffect.member_id)
            .where(BulkJobEffect.job_id == job_id).order_by(BulkJobEffect.member_id))


def _counts(job_id: int, column) -> dict:
    return {k: n for k, n in db.session.execute(
        select(column, func.count()).where(BulkJobEffect.job_id == job_id, column.is_not(None)).group_by(column))}


def status(job: BulkJob) -> dict:
    """What the API and the pages show of a job: its progress, why members were skipped and,
    after a reversal, what it could and could not undo."""
    undone = _counts(job.id, BulkJobEffect.undo) if job.reverse_requested_at else {}
    shortfall = db.session.scalar(select(func.coalesce(func.sum(BulkJobEffect.shortfall), 0)).where(
        BulkJobEffect.job_id == job.id)) if job.reverse_requested_at and job.action == "points" else 0
    return {"id": job.id, "action": job.action, "params": job.params, "audience_id": job.audience_id,
            "audience_name": job.audience_name, "reason": job.reason, "status": job.status,
            "total": job.total, "done": job.done, "applied": job.applied, "skipped": job.skipped,
            "skipped_by_reason": _counts(job.id, BulkJobEffect.skip_reason) if job.skipped else {},
            "undone": job.undone, "undo_counts": undone, "shortfall": int(shortfall), "failure": job.failure,
            "created_by": job.created_by, "created_at": job.created_at, "started_at": job.started_at,
            "finished_at": job.finished_at, "reversed_by": job.reversed_by, "reverse_reason": job.reverse_reason,
            "reverse_requested_at": job.reverse_requested_at, "reversed_at": job.reversed_at}


def progress(job: BulkJob) -> tuple[int, int]:
    """(value, max) of the job's progress bar: the run, then (if reversed) the reversal."""
    if job.reverse_requested_at:
        return job.undone, max(job.applied, 1)
    return job.done, max(job.total, 1)


def request_reversal(actor: Actor, job_id: int, reason: str) -> BulkJob:
    """Queue the reversal of a finished (or given-up) job, once (the row count decides): 409
    `bulk_job_already_reversed` for a second, `bulk_job_not_finished` while it runs."""
    reason = reasons.required(reason, _("Give a reason for the reversal."))
    job = get(job_id)
    # A job given up half-way (failed) did what it did to the members it reached: reversible too.
    won = db.session.execute(update(BulkJob).where(BulkJob.id == job.id, BulkJob.status.in_(("done", "failed")),
                                                   BulkJob.reverse_requested_at.is_(None)).values(
        status="reversing", runner=None, lease_until=None, attempts=0, reversed_by=actor.staff_id,
        reverse_reason=reason, reverse_requested_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    db.session.refresh(job)
    if won != 1:
        if job.reverse_requested_at is not None:
            raise Conflict(_("This job has already been reversed."), code="bulk_job_already_reversed")
        raise Conflict(_("The job has not finished; reverse it when it has."), code="bulk_job_not_finished",
                       status=job.status)
    audit.record(actor, "bulk_job.reverse", entity=job, job_action=job.action, reason=reason, applied=job.applied)
    return job


# Running ---------------------------------------------------------------------------------

def start(job_id: int):
    """Run a committed job: in a thread of this process (or here and now with BULK_RUN_INLINE)."""
    background.start(run_job, job_id, inline=current_app.config["BULK_RUN_INLINE"], label="bulk job")


def _lease():
    return timedelta(seconds=current_app.config["IMPORT_LEASE_SECONDS"])


def _unheld(now):
    return or_(BulkJob.status == "queued", and_(BulkJob.status.in_(("running", "reversing")),
                                                or_(BulkJob.lease_until.is_(None), BulkJob.lease_until < now)))


def claim(job_id: int, runner: str) -> bool:
    """Take the job if nobody holds it (queued, a reversal not started, or a lapsed lease)."""
    now = utcnow()
    taken = db.session.execute(update(BulkJob).where(BulkJob.id == job_id, _unheld(now)).values(
        status=case((BulkJob.status == "queued", "running"), else_=BulkJob.status), runner=runner,
        lease_until=now + _lease(), attempts=BulkJob.attempts + 1).execution_options(synchronize_session=False))
    db.session.commit()
    return taken.rowcount == 1


def _save(job_id: int, runner: str, **values):
    """Write progress (and renew the lease) in this transaction if this runner still holds the
    job; otherwise roll the transaction back, effects and all, and raise LostLease."""
    values.setdefault("lease_until", utcnow() + _lease())
    held = db.session.execute(update(BulkJob).where(
        BulkJob.id == job_id, BulkJob.runner == runner, BulkJob.status.in_(("running", "reversing")),
    ).values(**values).execution_options(synchronize_session=False))
    if held.rowcount != 1:
        db.session.rollback()
        raise LostLease()


def run_job(job_id: int, runner: str | None = None) -> bool:
    """Claim the job and take it (or its reversal) to its end. False if another runner holds
    it, it had finished, or this runner lost it on the way."""
    runner = runner or secrets.token_hex(8)
    if not claim(job_id, runner):
        return False
    job = db.session.execute(select(BulkJob).where(BulkJob.id == job_id)
                             .execution_options(populate_existing=True)).scalar_one()
    try:
        if job.attempts > MAX_ATTEMPTS:
            log.error("bulk job %s: stopped %d times; given up", job_id, job.attempts - 1)
            _save(job_id, runner, status="failed", failure="stopped", lease_until=None, finished_at=utcnow())
            db.session.commit()
            return True
        if job.status == "running":
            _run(job, runner, _apply_chunk, _actor(job.created_by, job.address))
            _save(job_id, runner, status="done", finished_at=utcnow(), lease_until=None)
            db.session.refresh(job)
            audit.record(_actor(job.created_by, job.address), "bulk_job.done", entity=job, job_action=job.action,
                         applied=job.applied, skipped=job.skipped)
        else:
            _run(job, runner, _undo_chunk, _actor(job.reversed_by, None))
            _save(job_id, runner, status="reversed", reversed_at=utcnow(), lease_until=None)
            db.session.refresh(job)
            audit.record(_actor(job.reversed_by, None), "bulk_job.reversed", entity=job, job_action=job.action,
                         undone=job.undone, **{f"undo_{k}": n for k, n in _counts(job.id, BulkJobEffect.undo).items()})
        db.session.commit()
        return True
    except LostLease:
        log.warning("bulk job %s: taken over by another runner", job_id)
        return False
    except Exception:
        db.session.rollback()
        # Let the next runner (the scheduler) try again at once rather than after the lease.
        db.session.execute(update(BulkJob).where(BulkJob.id == job_id, BulkJob.runner == runner)
                           .values(lease_until=utcnow()).execution_options(synchronize_session=False))
        db.session.commit()
        raise


def _run(job: BulkJob, runner: str, chunk_fn, actor: Actor):
    if job.started_at is None and job.status == "running":
        _save(job.id, runner, started_at=utcnow())
        db.session.commit()
    context = _context(job)
    while True:
        for attempt in range(1, TRIES + 1):
            try:
                more = chunk_fn(job, runner, actor, context)
                break
            except DBAPIError as exc:  # a deadlock with a till: the chunk is run again
                db.session.rollback()
                if attempt == TRIES or not locks.is_retryable(exc):
                    raise
        if not more:
            return


def _context(job: BulkJob) -> dict:
    """What every member's effect needs, read once per runner."""
    p = job.params
    if job.action == "points" and p.get("expires_on"):
        # Usable to the end of that day where the chain is.
        after = date.fromisoformat(p["expires_on"]) + timedelta(days=1)
        return {"expires_at": datetime.combine(after, time(), zone())}
    if job.action == "coupon":
        return {"definition_id": db.session.scalar(select(coupons.CouponDefinition.id).where(
            coupons.CouponDefinition.code == p["coupon_type"]))}
    if job.action == "level":
        return {"level_id": db.session.scalar(select(levels.MemberLevel.id).where(
            levels.MemberLevel.code == p["level"]))}
    return {}


def _chunk(job: BulkJob, where) -> list:
    rows = db.session.execute(select(BulkJobEffect).where(BulkJobEffect.job_id == job.id, *where)
                              .order_by(BulkJobEffect.member_id.desc()).limit(CHUNK)).scalars().all()
    # Every member lock first, lowest id first as a merge takes its two members (the module's
    # docstring says why); for a grant then their points accounts, highest id first.
    locks.lock_members([r.member_id for r in rows], points_accounts=job.action == "points")
    return rows


def _take(rows, where, values) -> list:
    """The chunk's rows this runner wins: one conditional UPDATE … RETURNING decides for all (a
    row another runner moved on meanwhile is not returned)."""
    won = set(db.session.scalars(update(BulkJobEffect).where(
        BulkJobEffect.id.in_([r.id for r in rows]), *where).values(**values)
        .returning(BulkJobEffect.id).execution_options(synchronize_session=False)))
    return [r for r in rows if r.id in won]


def _write_effects(changes: list[tuple[int, dict]]):
    """Each effect row's new values, as one executemany per set of columns."""
    groups = {}
    for effect_id, values in changes:
        if values:
            groups.setdefault(tuple(sorted(values)), []).append(
                {"effect": effect_id, **{f"new_{c}": v for c, v in values.items()}})
    table = BulkJobEffect.__table__
    for columns, params in groups.items():  # parameter names unlike the columns' (core/ledger.py says why)
        db.session.connection().execute(update(table).where(table.c.id == bindparam("effect")).values(
            {c: bindparam(f"new_{c}") for c in columns}), params)


def _apply_chunk(job: BulkJob, runner: str, actor: Actor, context: dict) -> bool:
    rows = _chunk(job, (BulkJobEffect.outcome == "pending",))
    if not rows:
        return False
    gone = _gone([r.member_id for r in rows])
    mine = _take(rows, (BulkJobEffect.outcome == "pending",), {"outcome": "applied", "applied_at": utcnow()})
    changes, skipped = [], 0
    for row in mine:
        values = {"skip_reason": "member_gone"} if row.member_id in gone else \
            _apply(job, actor, row.member_id, context)
        if "skip_reason" in values:
            values["outcome"] = "skipped"
            skipped += 1
        changes.append((row.id, values))
    _write_effects(changes)
    _save(job.id, runner, done=BulkJob.done + len(mine), applied=BulkJob.applied + len(mine) - skipped,
          skipped=BulkJob.skipped + skipped)
    db.session.commit()
    return True


def _gone(member_ids: list[int]) -> set[int]:
    """Those of the members merged away or anonymised."""
    return set(db.session.scalars(select(Member.id).where(
        Member.id.in_(member_ids), or_(Member.merged_into_id.is_not(None), Member.anonymised_at.is_not(None)))))


def _apply(job: BulkJob, actor: Actor, member_id: int, context: dict) -> dict:
    """Do the job's action to one member (whose lock is held); the effect row's new values."""
    p = job.params
    if job.action == "points":
        return {"points_entry_id": points.grant(actor, member_id, p["points"], job.reason,
                                                expires_at=context.get("expires_at"), bulk_job=job.id)}
    if job.action == "coupon":
        definition = db.session.get(coupons.CouponDefinition, context["definition_id"])
        try:
            with db.session.begin_nested():
                coupon = coupons.issue(actor, member_id, definition, source="manual", today=local_today(),
                                       source_ref=f"bulk:{job.id}")
        except coupons.OutOfStock:
            return {"skip_reason": "out_of_stock"}
        except DomainError as err:  # the type was retired meanwhile
            return {"skip_reason": err.code[:32]}
        return {"coupon_id": coupon.id}
    if job.action == "tag_add":
        return {"tag_changed": True} if _add_tag(member_id, p["tag"]) else {"skip_reason": "already_tagged"}
    if job.action == "tag_remove":
        return {"tag_changed": True} if _remove_tag(member_id, p["tag"]) else {"skip_reason": "not_tagged"}
    member = _member(member_id)
    if member.level_id == context["level_id"]:
        return {"skip_reason": "already_at_level"}
    previous = member.level_id
    levels.change_level(actor, member, db.session.get(levels.MemberLevel, context["level_id"]), reason="manual")
    db.session.flush()
    return {"previous_level_id": previous}


def _member(member_id: int) -> Member:
    return db.session.execute(select(Member).where(Member.id == member_id)
                              .execution_options(populate_existing=True)).scalar_one()


def _add_tag(member_id: int, tag: str) -> bool:
    if db.session.scalar(select(MemberTag.id).where(MemberTag.member_id == member_id, MemberTag.tag == tag)):
        return False
    try:
        with db.session.begin_nested():
            db.session.execute(insert(MemberTag).values(member_id=member_id, tag=tag))
    except IntegrityError:  # added at the desk a moment ago
        return False
    return True


def _remove_tag(member_id: int, tag: str) -> bool:
    return db.session.execute(delete(MemberTag).where(MemberTag.member_id == member_id, MemberTag.tag == tag)
                              .execution_options(synchronize_session=False)).rowcount > 0


def _undo_chunk(job: BulkJob, runner: str, actor: Actor, context: dict) -> bool:
    rows = _chunk(job, (BulkJobEffect.outcome == "applied", BulkJobEffect.undo.is_(None)))
    if not rows:
        return False
    mine = _take(rows, (BulkJobEffect.undo.is_(None),), {"undo": "reversed", "undone_at": utcnow()})
    if job.action in ("tag_add", "tag_remove"):  # an erased (or merged) member's tags stay gone
        context = {**context, "gone": _gone([r.member_id for r in mine])}
    _write_effects([(row.id, _undo(job, actor, row, context)) for row in mine])
    _save(job.id, runner, undone=BulkJob.undone + len(mine))
    db.session.commit()
    return True


def _undo(job: BulkJob, actor: Actor, row: BulkJobEffect, context: dict) -> dict:
    """Undo one member's effect; the effect row's new values ({} when fully reversed)."""
    reason = job.reverse_reason or ""
    if job.action == "points":
        entry, shortfall = points.take_back(actor, row.points_entry_id, reason, bulk_job=job.id)
        values = {"undo_entry_id": entry.id if entry else None, "shortfall": shortfall}
        return {**values, "undo": "partly"} if shortfall else values
    if job.action == "coupon":
        return {} if coupons.cancel_unused(row.coupon_id) else {"undo": "kept_used"}
    if job.action in ("tag_add", "tag_remove") and row.member_id in context["gone"]:
        return {"undo": "unchanged"}
    if job.action == "tag_add":
        return {} if _remove_tag(row.member_id, job.params["tag"]) else {"undo": "unchanged"}
    if job.action == "tag_remove":
        return {} if _add_tag(row.member_id, job.params["tag"]) else {"undo": "unchanged"}
    member = _member(row.member_id)
    if member.level_id != context["level_id"]:  # moved since (an upgrade, another manager): left alone
        return {"undo": "unchanged"}
    levels.change_level(actor, member, db.session.get(levels.MemberLevel, row.previous_level_id), reason="manual")
    db.session.flush()
    return {}


def _actor(staff_id: int | None, address: str | None) -> Actor:
    """Who created (or reversed) the job, for the entries and the audit log."""
    return Actor.of_staff(staff_id, address, otherwise="bulk")


def pending_ids() -> list[int]:
    """Jobs (or reversals) nobody is running."""
    ids = list(db.session.scalars(select(BulkJob.id).where(_unheld(utcnow())).order_by(BulkJob.id)))
    db.session.rollback()  # no read transaction left open while the jobs run
    return ids


def run_pending() -> int:
    """The scheduler's pick-up: run every job nobody is running; returns how many it finished."""
    return background.run_each(pending_ids(), run_job, "bulk job")
