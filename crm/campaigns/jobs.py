"""Scheduled work, run only by `flask crm scheduler` (never in web workers).

APScheduler keeps its jobs in the database (table `scheduler_jobs`) and calls four:
`tick` every SCHEDULER_TICK_SECONDS — fan out due campaign occurrences, then send what
is queued — `resume_imports` as often (CSV imports a web worker left unfinished),
`expire_points` nightly and `review_levels` on 1 January (a scheduler that
was down then runs it when it starts, up to SCHEDULER_CATCH_UP_DAYS late; the review is
idempotent per year, so a late or repeated run changes nothing more). Campaign state
lives in our own tables, so a restarted scheduler picks up exactly where the last one
stopped; the delivery key makes sure nothing is sent twice.

Leadership is a heartbeat lease of SCHEDULER_LEASE_SECONDS in the database (leases.py):
any number of `crm scheduler` processes may run; one leads and runs the jobs, the others
wait as standbys and take over within one lease when it stops renewing. Every fan-out
batch and every message first asks whether this process can still prove it leads, and
the leader's writes are fenced by its lease generation; a fan-out left by a dead leader
is resumed by the next one at once. The process never exits on a database error: it
logs it, steps down, and reconnects with backoff.
"""
import contextlib
import logging
import signal
import threading
import time as clock
from datetime import date, datetime, time, timedelta, timezone

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..core.actor import Actor
from ..core.timeutil import default_tz_name, utcnow, zone
from ..errors import Conflict
from ..extensions import db
from ..members import levels
from ..notifications import service as notifications
from ..points import service as points
from ..reports import import_jobs
from ..stores import service as stores
from . import fanout, service
from .dispatch import dispatch
from .leases import Lease, LostLeadership, fence, last_seen
from .models import Campaign
from .schedule import due

log = logging.getLogger("crm.scheduler")
LEVEL_REVIEW_AT = time(3, 30)  # on 1 January, in the chain's time zone
_app = None  # the Flask app the APScheduler jobs run in
_lease: Lease | None = None  # this process's scheduler lease; None: jobs called directly (tests, replays)


def leading() -> bool:
    """Whether this process may act now: it proves it holds the lease (or runs outside one)."""
    return _lease is None or _lease.proves()


def _generation() -> int | None:
    return None if _lease is None else _lease.generation


def scheduler_last_seen():
    """When a scheduler last showed it was alive and leading (aware UTC), or None if none
    ever ran: for health checks and a "no scheduler running" banner. Needs an app context."""
    seen = last_seen()
    return None if seen is None else seen["heartbeat_at"]


def scheduler_down(now: datetime | None = None) -> dict | None:
    """None while a scheduler is running; else {"last_seen": when one last renewed its lease,
    or None if none ever ran}. A few missed renewals are allowed, so a failover does not
    flash a warning: no heartbeat for 4 leases (at least a minute) means none is running."""
    seen = scheduler_last_seen()
    grace = timedelta(seconds=max(4 * current_app.config["SCHEDULER_LEASE_SECONDS"], 60))
    if seen is not None and (now or utcnow()) - seen <= grace:
        return None
    return {"last_seen": seen}


def _commit():
    db.session.commit()


def run_campaigns(now: datetime) -> int:
    """Queue every due occurrence of every scheduled or running campaign; returns messages
    queued. A campaign that fails is logged and left for the next beat; the others go on."""
    tz = default_tz_name()
    zones = set(db.session.scalars(select(stores.Store.timezone).distinct()))
    total = 0
    for campaign_id in db.session.scalars(select(Campaign.id).where(Campaign.state.in_(("scheduled", "running")))):
        if not leading():
            break
        try:
            total += _run_campaign(db.session.get(Campaign, campaign_id), now, tz, zones)
        except LostLeadership as exc:
            db.session.rollback()
            log.warning("campaign %s: stopped, this scheduler no longer leads (%s)", campaign_id, exc)
            break
        except Conflict as exc:  # paused or cancelled by marketing while this beat was starting it
            db.session.rollback()
            log.info("campaign %s: left alone, its state changed meanwhile (%s)", campaign_id, exc.details)
        except Exception:  # noqa: BLE001 — one campaign's fault must not stop the others, or the sending
            db.session.rollback()
            log.exception("campaign %s: fan-out failed; it will be tried again next beat", campaign_id)
    return total


def _still_running(campaign) -> bool:
    """Re-read the state: marketing may have paused or cancelled the campaign mid-run."""
    db.session.refresh(campaign, attribute_names=["state"])
    return campaign.state == "running"


def _run_campaign(campaign, now: datetime, tz: str, zones) -> int:
    batch_size = current_app.config["FANOUT_BATCH"]
    today = now.astimezone(zone(tz)).date()
    if campaign.ends_on is not None and today > campaign.ends_on:
        service.transition(None, campaign, "finish")
        _commit()
        return 0
    total = 0
    for occurrence in due(campaign, now, tz=tz, zones=zones, holiday_date=service.holiday_date_fn(campaign),
                          catch_up_days=current_app.config["SCHEDULER_CATCH_UP_DAYS"]):
        if not leading():
            break
        generation = _generation()
        run = fanout.claim_run(campaign, occurrence, now, generation)
        if run is None:
            db.session.rollback()
            continue
        if campaign.state == "scheduled":
            service.transition(None, campaign, "start")
        fence(generation)
        _commit()
        started, finished = clock.monotonic(), False
        while leading() and _still_running(campaign):  # the lease is re-checked before every batch
            try:
                last, queued, skipped = fanout.queue_batch(campaign, occurrence, after=run.after_member_id,
                                                           limit=batch_size, now=now, today=today)
                if last is None:
                    fanout.finish_run(run, now)
                    finished = True
                    break
                fanout.record_batch(run, last, queued, skipped, now + timedelta(seconds=clock.monotonic() - started))
                fence(generation)
                _commit()
                total += queued
            except (IntegrityError, fanout.TakenOver):  # another scheduler took this run over
                db.session.rollback()
                log.warning("campaign %s occurrence %s: taken over by another scheduler", campaign.id, occurrence.key)
                break
        if not finished:
            db.session.rollback()
            continue  # paused, cancelled, taken over or no longer leading: resumed (or not) from where it stopped
        if campaign.schedule == "once":
            service.transition(None, campaign, "finish")
        fence(generation)
        _commit()
        log.info("campaign %s occurrence %s%s: %d queued, %d skipped", campaign.id, occurrence.key,
                 f" ({occurrence.scope})" if occurrence.scope else "", run.queued, run.skipped)
    return total


def tick(now: datetime | None = None):
    """One beat of the scheduler: fan out, then send. Safe to run in two processes at once.
    With a given `now` (tests, replays) sending makes one pass; a real beat keeps sending,
    within the channels' throttles, for most of the interval until the next beat."""
    app = current_app._get_current_object() if has_app_context() else _app
    with app.app_context():
        try:
            if not leading():
                return
            queued = run_campaigns(now or utcnow())
            queued += notifications.hand_over(now or utcnow(), commit=_commit)  # service messages to the outbox
            budget = 0 if now else max(app.config["SCHEDULER_TICK_SECONDS"] - 5, 0)
            try:
                sent = dispatch(now or utcnow(), commit=_commit, budget_seconds=budget, leading=leading,
                                generation=_generation())
            except LostLeadership as exc:
                db.session.rollback()
                log.warning("sending stopped: this scheduler no longer leads (%s)", exc)
                return
            if queued or sent:
                log.info("tick: %d queued, sent %s", queued, dict(sent))
        finally:
            db.session.remove()


def resume_imports():
    """CSV import jobs nobody is running: still queued, or left by a web worker that stopped
    mid-import (its lease lapsed); each resumes after its last committed chunk."""
    app = current_app._get_current_object() if has_app_context() else _app
    with app.app_context():
        try:
            if not leading():
                return
            finished = import_jobs.run_pending()
            if finished:
                log.info("imports: %d job(s) taken over and finished", finished)
            from ..bulk import service as bulk  # bulk jobs (and reversals) nobody is running
            finished = bulk.run_pending()
            if finished:
                log.info("bulk jobs: %d taken over and finished", finished)
        finally:
            db.session.remove()


def expire_points():
    if not leading():
        return
    with _app.app_context():
        try:
            try:
                accounts, expired = points.expire_all(Actor.system("scheduler"))
                db.session.commit()
                log.info("expired %d points on %d accounts", expired, accounts)
            except DBAPIError:  # the rest waits for the next run (it expires what is due then); tell members anyway
                db.session.rollback()
                log.exception("points expiry stopped; the next run goes on")
            notices = notifications.queue_expiry_notices(commit=_commit)  # points expiring within N days
            db.session.commit()
            log.info("points expiring soon: %d notices queued", notices)
        finally:
            db.session.remove()


def anonymise_inactive():
    """PIPL retention (nightly, after the points expiry): off unless PIPL_RETENTION_YEARS is set."""
    if not leading():
        return
    with _app.app_context():
        try:
            from ..members import pipl
            if pipl.retention_years() > 0:
                result = pipl.anonymise_inactive(commit=_commit)
                log.info("retention: %d inactive members anonymised", result["anonymised"])
        except DBAPIError:  # what is left waits for the next night
            db.session.rollback()
            log.exception("retention stopped; the next run goes on")
        finally:
            db.session.remove()


def review_levels(now: datetime | None = None):
    """The yearly level review (1 January, 03:30 in the chain's zone)."""
    if not leading():
        return
    with _app.app_context():
        try:
            result = levels.review_levels(Actor.system("scheduler"), now=now)
            log.info("level review %d: %d members reviewed, %d moved down", result["year"], result["reviewed"],
                     result["moved_down"])
        finally:
            db.session.remove()


def level_review_missed(now: datetime) -> bool:
    """This year's review was due at most SCHEDULER_CATCH_UP_DAYS ago and has not finished
    (the scheduler was down, or stopped half-way through it)."""
    tz = zone(default_tz_name())
    local = now.astimezone(tz)
    due_at = datetime.combine(date(local.year, 1, 1), LEVEL_REVIEW_AT, tz)
    late = timedelta(days=current_app.config["SCHEDULER_CATCH_UP_DAYS"])
    return due_at <= now <= due_at + late and not levels.review_finished(local.year)


def catch_up_level_review(now: datetime) -> bool:
    """At start-up: run the review the scheduler missed. Returns whether it was missed."""
    with _app.app_context():
        try:
            missed = level_review_missed(now)
        finally:
            db.session.remove()  # no read transaction left open (SQLite would make the review wait on it)
    if missed:
        try:
            review_levels(now)
        except Exception:  # noqa: BLE001 — the campaigns must go on; the next start tries again
            log.exception("level review: catching up failed")
    return missed


def build_scheduler(app, scheduler_class=None, *, beat_now=False):
    """APScheduler with its jobs stored in the database (re-added, not duplicated, on restart)."""
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.blocking import BlockingScheduler
    global _app
    _app = app
    store = SQLAlchemyJobStore(engine=db.engine, tablename="scheduler_jobs")
    scheduler = (scheduler_class or BlockingScheduler)(
        jobstores={"default": store, "memory": MemoryJobStore()}, timezone=default_tz_name(),
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    # The beat it may have missed, at once: "now" on APScheduler's own clock, which is the
    # system's (the app's clock may be moved in tests; a first beat hours ahead would never run).
    first = {"next_run_time": datetime.now(timezone.utc)} if beat_now else {}
    scheduler.add_job(f"{__name__}:tick", "interval", seconds=app.config["SCHEDULER_TICK_SECONDS"],
                      id="campaigns.tick", replace_existing=True, **first)
    scheduler.add_job(f"{__name__}:resume_imports", "interval", seconds=app.config["SCHEDULER_TICK_SECONDS"],
                      id="imports.resume", replace_existing=True)
    scheduler.add_job(f"{__name__}:expire_points", "cron", hour=3, minute=5, id="points.expire",
                      replace_existing=True)
    scheduler.add_job(f"{__name__}:anonymise_inactive", "cron", hour=3, minute=20, id="pipl.retention",
                      replace_existing=True)
    scheduler.add_job(f"{__name__}:review_levels", "cron", month=1, day=1, hour=LEVEL_REVIEW_AT.hour,
                      minute=LEVEL_REVIEW_AT.minute, id="levels.review", replace_existing=True,
                      misfire_grace_time=86400 * max(app.config["SCHEDULER_CATCH_UP_DAYS"], 1))
    return scheduler


def catch_up():
    """Run by a scheduler as soon as it leads (beside the first beat): a missed level review."""
    if leading():
        catch_up_level_review(utcnow())


def _with_db(app, fn):
    with app.app_context():
        try:
            return fn()
        finally:
            db.session.remove()


def run_scheduler(app, *, once: bool = False, stop: threading.Event | None = None):
    """The `crm scheduler` process: lead or wait as a standby, for as long as it runs.
    The main thread keeps the lease (renewing every third of it) and starts the jobs when
    it leads, stops them when it cannot prove it does; a database error is logged and
    retried with backoff, never the end of the process. SIGTERM stops it cleanly."""
    global _app, _lease
    _app = app
    seconds = app.config["SCHEDULER_LEASE_SECONDS"]
    _lease = lease = Lease(seconds=seconds)
    if once:  # one beat, if no other scheduler leads, renewing the lease meanwhile
        try:
            if not _with_db(app, lease.acquire):
                log.info("another scheduler leads; --once did nothing")
                return
            done = threading.Event()
            keeper = threading.Thread(target=_keep, args=(app, lease, done), daemon=True)
            keeper.start()
            try:
                tick()
            finally:
                done.set()
                keeper.join()
                _with_db(app, lease.release)
        finally:
            _lease = None
        return
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    every = max(seconds / 3, 0.2)
    backoff, scheduler, standby_said = every, None, False
    log.info("scheduler %s started: lease %ss", lease.holder, seconds)
    try:
        while not stop.is_set():
            generation, wait = lease.generation, every
            try:
                _with_db(app, lease.acquire)
                backoff = every
            except Exception as exc:  # noqa: BLE001 — outage, restart, read-only: step down, retry, never exit
                wait, backoff = backoff, min(backoff * 2, max(every, 5.0))
                log.warning("scheduler: database unavailable (%s: %s); retrying in %.1fs", type(exc).__name__,
                            (str(exc).strip().splitlines() or [""])[0][:200], wait)
                with app.app_context(), contextlib.suppress(Exception):
                    db.engine.dispose()  # reconnect afresh: a pooled session may be dead or stuck read-only
            if lease.proves() and scheduler is None:
                try:
                    scheduler = _lead(app, lease)
                except Exception:  # noqa: BLE001 — e.g. the job store is unreachable: try again next beat
                    log.exception("scheduler: could not start the jobs; retrying")
                    lease.lapse()
            elif not lease.proves() and scheduler is not None:
                _step_down(scheduler, lease, generation)
                scheduler = None
            if not lease.proves() and not standby_said:
                log.info("scheduler %s: standby (another scheduler leads, or the database is away)", lease.holder)
            standby_said = not lease.proves()
            stop.wait(wait)
    finally:
        if scheduler is not None:
            _step_down(scheduler, lease, lease.generation, why="stopping")
        try:
            _with_db(app, lease.release)
        except Exception:  # noqa: BLE001 — the lease simply expires
            pass
        _lease = None
        log.info("scheduler %s stopped", lease.holder)


def _keep(app, lease: Lease, done: threading.Event):
    while not done.wait(max(lease.seconds / 3, 0.2)):
        try:
            _with_db(app, lease.acquire)
        except Exception as exc:  # noqa: BLE001 — the beat stops at its next check
            log.warning("scheduler: could not renew the lease (%s)", exc)


def _lead(app, lease: Lease):
    from apscheduler.schedulers.background import BackgroundScheduler
    with app.app_context():
        scheduler = build_scheduler(app, BackgroundScheduler, beat_now=True)
        scheduler.add_job(f"{__name__}:catch_up", id="catch_up", replace_existing=True, jobstore="memory")
        scheduler.start()
    log.info("scheduler leading: generation %d, holder %s, from %.3f", lease.generation, lease.holder, clock.time())
    log.info("scheduler jobs: tick every %ss, points expiry daily at 03:05, level review on 1 January at %s",
             app.config["SCHEDULER_TICK_SECONDS"], LEVEL_REVIEW_AT.strftime("%H:%M"))
    return scheduler


def _step_down(scheduler, lease: Lease, generation, why="cannot prove it still leads"):
    """Stop the jobs; any still running stop themselves at their next check."""
    if why == "stopping":
        lease.lapse()
    log.warning("scheduler stepped down: generation %s, holder %s, proved until %.3f (%s)", generation, lease.holder,
                lease.proof_end(), why)
    try:
        scheduler.shutdown(wait=False)
    except Exception:  # noqa: BLE001
        log.exception("scheduler: stopping the jobs failed")
