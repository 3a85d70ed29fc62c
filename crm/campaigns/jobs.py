"""Scheduled work, run only by `flask crm scheduler` (never in web workers).

APScheduler keeps its jobs in the database (table `scheduler_jobs`) and calls four:
`tick` every SCHEDULER_TICK_SECONDS — fan out due campaign occurrences, then send what
is queued — `resume_imports` as often (CSV imports a web worker left unfinished),
`expire_points` nightly and `review_levels` on 1 January (a scheduler that
was down then runs it when it starts, up to SCHEDULER_CATCH_UP_DAYS late; the review is
idempotent per year, so a late or repeated run changes nothing more). Campaign state
lives in our own tables, so a restarted scheduler picks up exactly where the last one
stopped; the delivery key makes sure nothing is sent twice. On PostgreSQL a session advisory lock lets one scheduler
work while any other waits as a standby.
"""
import contextlib
import logging
import time as clock
from datetime import date, datetime, time, timedelta

from flask import current_app, has_app_context
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ..core.actor import Actor
from ..core.timeutil import default_tz_name, utcnow, zone
from ..errors import Conflict
from ..extensions import db
from ..members import levels
from ..points import service as points
from ..reports import import_jobs
from ..stores import service as stores
from . import fanout, service
from .dispatch import dispatch
from .models import Campaign
from .schedule import due

log = logging.getLogger("crm.scheduler")
LEVEL_REVIEW_AT = time(3, 30)  # on 1 January, in the chain's time zone
LOCK_KEY = 0x43524D5343  # "CRMSC": the one advisory lock the active scheduler holds
_app = None  # the Flask app the APScheduler jobs run in


def _commit():
    db.session.commit()


def run_campaigns(now: datetime) -> int:
    """Queue every due occurrence of every scheduled or running campaign; returns messages
    queued. A campaign that fails is logged and left for the next beat; the others go on."""
    tz = default_tz_name()
    zones = set(db.session.scalars(select(stores.Store.timezone).distinct()))
    total = 0
    for campaign_id in db.session.scalars(select(Campaign.id).where(Campaign.state.in_(("scheduled", "running")))):
        try:
            total += _run_campaign(db.session.get(Campaign, campaign_id), now, tz, zones)
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
        run = fanout.claim_run(campaign, occurrence, now)
        if run is None:
            db.session.rollback()
            continue
        if campaign.state == "scheduled":
            service.transition(None, campaign, "start")
        _commit()
        started, finished = clock.monotonic(), False
        while _still_running(campaign):
            try:
                last, queued, skipped = fanout.queue_batch(campaign, occurrence, after=run.after_member_id,
                                                           limit=batch_size, now=now, today=today)
                if last is None:
                    fanout.finish_run(run, now)
                    finished = True
                    break
                fanout.record_batch(run, last, queued, skipped, now + timedelta(seconds=clock.monotonic() - started))
                _commit()
                total += queued
            except IntegrityError:  # another scheduler took this run over after our lease lapsed
                db.session.rollback()
                log.warning("campaign %s occurrence %s: taken over by another scheduler", campaign.id, occurrence.key)
                break
        if not finished:
            db.session.rollback()
            continue  # paused, cancelled or taken over: the run resumes (or not) from where it stopped
        if campaign.schedule == "once":
            service.transition(None, campaign, "finish")
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
            queued = run_campaigns(now or utcnow())
            budget = 0 if now else max(app.config["SCHEDULER_TICK_SECONDS"] - 5, 0)
            sent = dispatch(now or utcnow(), commit=_commit, budget_seconds=budget)
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
            finished = import_jobs.run_pending()
            if finished:
                log.info("imports: %d job(s) taken over and finished", finished)
        finally:
            db.session.remove()


def expire_points():
    with _app.app_context():
        try:
            accounts, expired = points.expire_all(Actor.system("scheduler"))
            db.session.commit()
            log.info("expired %d points on %d accounts", expired, accounts)
        finally:
            db.session.remove()


def review_levels(now: datetime | None = None):
    """The yearly level review (1 January, 03:30 in the chain's zone)."""
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


@contextlib.contextmanager
def active_lock(engine, *, wait_seconds: float = 5.0, stop=lambda: False):
    """Hold the scheduler lock for as long as the block runs; wait as a standby until it is free.
    PostgreSQL only: on SQLite (one machine, development) there is nothing to take."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    conn = engine.connect()
    try:
        announced = False
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar():
            conn.rollback()
            if not announced:
                log.info("another scheduler is active; waiting as a standby")
                announced = True
            if stop():
                yield False
                return
            clock.sleep(wait_seconds)
        conn.commit()
        yield True
    finally:
        conn.invalidate()  # close the database session itself (not back to the pool): that releases the lock
        conn.close()


def build_scheduler(app, scheduler_class=None):
    """APScheduler with its jobs stored in the database (re-added, not duplicated, on restart)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.blocking import BlockingScheduler
    global _app
    _app = app
    store = SQLAlchemyJobStore(engine=db.engine, tablename="scheduler_jobs")
    scheduler = (scheduler_class or BlockingScheduler)(
        jobstores={"default": store}, timezone=default_tz_name(),
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    scheduler.add_job(f"{__name__}:tick", "interval", seconds=app.config["SCHEDULER_TICK_SECONDS"],
                      id="campaigns.tick", replace_existing=True)
    scheduler.add_job(f"{__name__}:resume_imports", "interval", seconds=app.config["SCHEDULER_TICK_SECONDS"],
                      id="imports.resume", replace_existing=True)
    scheduler.add_job(f"{__name__}:expire_points", "cron", hour=3, minute=5, id="points.expire",
                      replace_existing=True)
    scheduler.add_job(f"{__name__}:review_levels", "cron", month=1, day=1, hour=LEVEL_REVIEW_AT.hour,
                      minute=LEVEL_REVIEW_AT.minute, id="levels.review", replace_existing=True,
                      misfire_grace_time=86400 * max(app.config["SCHEDULER_CATCH_UP_DAYS"], 1))
    return scheduler


def run_scheduler(app, *, once: bool = False):
    """The `crm scheduler` process: wait to be the active one, catch up, then run the jobs."""
    global _app
    _app = app
    with active_lock(db.engine) as active:
        if not active:
            return
        tick()  # catch up at once after a restart
        if once:
            return
        catch_up_level_review(utcnow())
        scheduler = build_scheduler(app)
        log.info("scheduler active: tick every %ss, points expiry daily at 03:05, level review on 1 January at %s",
                 app.config["SCHEDULER_TICK_SECONDS"], LEVEL_REVIEW_AT.strftime("%H:%M"))
        scheduler.start()
