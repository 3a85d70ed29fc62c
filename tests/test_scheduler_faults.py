"""The scheduler through faults: its leadership lease (take, renew, lose, expire, fencing),
sends interrupted after the gateway took them, and - PostgreSQL only - real scheduler
processes: the leader SIGKILLed mid fan-out, and the database going away under two."""
import os
import re
import signal
import subprocess
import time
from datetime import timedelta
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError

from crm.campaigns import dispatch, fanout, jobs
from crm.campaigns.leases import Lease, LostLeadership, fence
from crm.campaigns.models import CampaignRun, Delivery, SchedulerLease
from crm.core.timeutil import utcnow
from crm.extensions import db
from crm.members.models import Member
from tests.servers import ROOT, SECRET_KEY, VENV_BIN, free_port


def _in(app, fn):
    with app.app_context():
        try:
            return fn()
        finally:
            db.session.remove()


# The lease --------------------------------------------------------------------------------

def test_one_leader_renews_and_a_standby_takes_over_only_once_the_lease_expires(app, clock):
    a, b = Lease(holder="a", seconds=15), Lease(holder="b", seconds=15)
    assert _in(app, a.acquire) and a.generation == 1 and a.proves()
    assert not _in(app, b.acquire) and not b.proves()
    clock.set(utcnow() + timedelta(seconds=10))
    assert _in(app, a.acquire) and a.generation == 1  # renewed, not re-taken
    clock.set(utcnow() + timedelta(seconds=14))
    assert not _in(app, b.acquire)  # the renewal moved the expiry on
    clock.set(utcnow() + timedelta(seconds=2))
    assert _in(app, b.acquire) and b.generation == 2  # expired: taken, with the next generation
    assert not _in(app, a.acquire) and not a.proves()  # the old leader cannot renew, and stops
    row = _in(app, lambda: db.session.get(SchedulerLease, "scheduler").holder)
    assert row == "b"
    assert _in(app, jobs.scheduler_last_seen) is not None


def test_a_failed_renewal_ends_the_proof_at_once(app, monkeypatch):
    a = Lease(holder="a", seconds=15)
    assert _in(app, a.acquire) and a.proves()

    def down(*args, **kwargs):
        raise OperationalError("UPDATE", {}, Exception("server closed the connection unexpectedly"))
    with app.app_context():
        monkeypatch.setattr(db.session, "execute", down)
        with pytest.raises(OperationalError):
            a.acquire()
        monkeypatch.undo()
        db.session.remove()
    assert not a.proves()
    assert _in(app, a.acquire) and a.generation == 1  # nobody took it meanwhile: the same generation goes on


def test_a_released_lease_is_taken_at_once_and_fences_the_old_generation(app):
    a, b = Lease(holder="a", seconds=15), Lease(holder="b", seconds=15)
    assert _in(app, a.acquire)
    _in(app, a.release)
    assert not a.proves()
    assert _in(app, b.acquire) and b.generation == 2
    with app.app_context():
        fence(2)
        with pytest.raises(LostLeadership):
            fence(1)
        db.session.rollback()


def test_a_fan_out_of_a_lost_leader_is_taken_over_at_once_and_its_late_batch_is_refused(app, clock, marketing,
                                                                                         member_factory):
    member_factory()
    from tests.test_campaign_sending import campaign
    campaign_id = campaign(marketing, schedule="once", send_at="2020-01-01T10:00:00+08:00")
    now = utcnow()
    with app.app_context():
        from crm.campaigns.models import Campaign
        from crm.campaigns.schedule import Occurrence
        c = db.session.get(Campaign, campaign_id)
        occurrence = Occurrence(key="once")
        old = fanout.claim_run(c, occurrence, now, generation=1)
        db.session.commit()
        assert fanout.claim_run(c, occurrence, now, generation=1) is not None  # its own leader picks it up again
        db.session.commit()
        new = fanout.claim_run(c, occurrence, now, generation=2)  # no ten-minute wait for the next leader
        assert new is not None and new.lease_generation == 2
        db.session.commit()
        assert fanout.claim_run(c, occurrence, now, generation=1) is None  # the old one cannot take it back
        db.session.rollback()
        stale = SimpleNamespace(id=old.id, claimed_at=now, lease_generation=1, queued=0, skipped=0)  # its view
        with pytest.raises(fanout.TakenOver):  # the old leader's batch in flight is not committed
            fanout.record_batch(stale, 5, 1, 0, now)
        db.session.rollback()
        assert db.session.scalar(select(CampaignRun.after_member_id)) == 0
        db.session.remove()


# Sends interrupted after the gateway's accept -----------------------------------------------

def _die_after_the_gateway_took_it(monkeypatch):
    def die(*args):
        raise RuntimeError("the process died before it recorded the result")
    monkeypatch.setattr(dispatch, "_outcome", die)


@pytest.mark.clock_at("11:00")  # daytime in Beijing: no quiet hours
def test_an_sms_interrupted_after_the_gateway_took_it_is_resent_with_its_id_and_arrives_once(
        app, clock, marketing, member_factory, gateway, monkeypatch):
    from tests.test_campaign_sending import campaign
    m = member_factory(marketing_consent={"sms": True, "email": False})
    campaign(marketing, channel="sms", schedule="once", send_at="2020-01-01T10:00:00+08:00")
    a, b = Lease(holder="a", seconds=15), Lease(holder="b", seconds=15)
    assert _in(app, a.acquire)
    monkeypatch.setattr(jobs, "_lease", a)
    with monkeypatch.context() as patch:
        _die_after_the_gateway_took_it(patch)
        with pytest.raises(RuntimeError), app.app_context():
            jobs.tick(utcnow())
    (d,) = _in(app, lambda: db.session.scalars(select(Delivery)).all())
    assert d.status == "sending" and d.claimed_generation == 1 and len(gateway.requests) == 1
    clock.set(utcnow() + timedelta(seconds=16))  # the dead leader's lease runs out; the standby leads
    assert _in(app, b.acquire) and b.generation == 2
    monkeypatch.setattr(jobs, "_lease", b)
    with app.app_context():
        jobs.tick(utcnow())
    (d,) = _in(app, lambda: db.session.scalars(select(Delivery)).all())
    assert d.status == "sent" and d.attempts == 1
    assert gateway.requests == [d.send_id, d.send_id]  # the same id both times...
    assert list(gateway.delivered.values()) == [m["mobile"]]  # ...so the member got it once


@pytest.mark.clock_at("11:00")
def test_an_email_interrupted_mid_send_is_unknown_not_failed_and_the_outbox_says_so(
        app, clock, marketing, member_factory, monkeypatch, staff):
    from aiosmtpd.controller import Controller

    from tests.test_campaign_sending import Inbox, campaign
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
        monkeypatch.setitem(app.config, "MAIL_PORT", controller.port)
        member_factory(email="a@example.com", marketing_consent={"sms": False, "email": True})
        campaign(marketing, channel="email", schedule="once", send_at="2020-01-01T10:00:00+08:00", subject="hi")
        a, b = Lease(holder="a", seconds=15), Lease(holder="b", seconds=15)
        assert _in(app, a.acquire)
        monkeypatch.setattr(jobs, "_lease", a)
        with monkeypatch.context() as patch:
            _die_after_the_gateway_took_it(patch)
            with pytest.raises(RuntimeError), app.app_context():
                jobs.tick(utcnow())
        assert len(inbox.messages) == 1
        clock.set(utcnow() + timedelta(seconds=16))
        assert _in(app, b.acquire)
        monkeypatch.setattr(jobs, "_lease", b)
        with app.app_context():
            jobs.tick(utcnow())
        (d,) = _in(app, lambda: db.session.scalars(select(Delivery)).all())
        assert d.status == "unknown" and d.reason == "interrupted_unknown"
        assert len(inbox.messages) == 1  # not resent: SMTP cannot drop a repeat
        assert f"<{d.send_id}@" in inbox.messages[0].content.decode()  # the Message-ID is the send id
    finally:
        controller.stop()
    from tests.test_ui import text, ui_login
    page = text(ui_login(app, staff["marketing"], lang="en").get("/marketing/outbox"))
    assert "Unknown: may have been sent" in page and "may or may not have arrived" in page


@pytest.mark.clock_at("11:00")
def test_a_leader_that_loses_its_lease_mid_batch_gives_the_unsent_rest_back(app, marketing, member_factory, gateway):
    from tests.test_campaign_sending import campaign
    member_factory()
    _members(app, 6)
    campaign(marketing, channel="sms", schedule="once", send_at="2020-01-01T10:00:00+08:00", marketing=False)
    with app.app_context():
        jobs.run_campaigns(utcnow())
        db.session.commit()
        # it proves it leads until three messages have gone, then cannot (a missed renewal)
        sent = dispatch.dispatch(utcnow(), commit=db.session.commit, leading=lambda: len(gateway.delivered) < 3)
        db.session.remove()
    assert sent["sent"] == 3 and len(gateway.delivered) == 3
    statuses = _in(app, lambda: sorted(db.session.scalars(select(Delivery.status))))
    assert statuses == ["queued"] * 3 + ["sent"] * 3  # none left `sending` to be reconciled as interrupted
    with app.app_context():  # the next leader sends the rest, once each
        assert dispatch.dispatch(utcnow(), commit=db.session.commit)["sent"] == 3
        db.session.remove()
    assert len(gateway.delivered) == 6 and len(set(gateway.delivered.values())) == 6


# Real scheduler processes (PostgreSQL) ---------------------------------------------------------

LEADING = re.compile(r"scheduler leading: generation (\d+), holder (\S+), from ([\d.]+)")
STEPPED = re.compile(r"scheduler stepped down: generation (\S+), holder (\S+), proved until ([\d.]+)")


class Scheduler:
    """`flask --app wsgi crm scheduler` in its own process, its log in a file."""

    def __init__(self, env, path):
        self.path = path
        self.log = open(path, "w")
        self.proc = subprocess.Popen([str(VENV_BIN / "flask"), "--app", "wsgi", "crm", "scheduler"], cwd=ROOT,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.killed_at = None

    def text(self):
        return self.path.read_text()

    def kill(self):
        self.killed_at = time.time()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def _wait(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds}s: {what}")


@pytest.fixture
def pg_only(backend):
    if backend != "postgresql":
        pytest.skip("scheduler processes share a server database")


def _env(app, gateway, **extra):
    return {**os.environ, "SECRET_KEY": SECRET_KEY, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SMS_GATEWAY_URL": gateway.url, "SMS_RATE_LIMIT": "100000/second", "SCHEDULER_TICK_SECONDS": "2",
            "FLASK_DEBUG": "0", **{k: str(v) for k, v in extra.items()}}


def _members(app, n):
    """n members in one go (the API would take minutes): like the first, with their own mobiles."""
    with app.app_context():
        first = db.session.scalars(select(Member)).first()
        rows = [dict(name=f"会员{i}", mobile=f"137{i:08d}", mobile_last4=f"{i:08d}"[-4:], level_id=first.level_id,
                     store_id=first.store_id) for i in range(n - 1)]
        db.session.execute(insert(Member), rows)
        db.session.commit()
        ids = set(db.session.scalars(select(Member.id)))
        db.session.remove()
    return ids


def _leaderships(*schedulers):
    """[(generation, holder, start, end)] from the logs, in each process's order; a leadership
    still open ended when its process did."""
    spans = []
    for s in schedulers:
        open_span, end_of_process = None, s.killed_at or time.time()
        for line in s.text().splitlines():
            if m := LEADING.search(line):
                open_span = [int(m[1]), m[2], float(m[3]), end_of_process]
                spans.append(open_span)
            elif (m := STEPPED.search(line)) and open_span is not None:
                open_span[3] = float(m[3])
                open_span = None
    return sorted(tuple(s) for s in spans)


def _assert_never_two_leaders(spans):
    holders_by_generation = {}
    for gen, holder, *_ in spans:
        holders_by_generation.setdefault(gen, set()).add(holder)
    assert all(len(h) == 1 for h in holders_by_generation.values()), spans
    by_start = sorted(spans, key=lambda s: s[2])
    assert [s[0] for s in by_start] == sorted(s[0] for s in spans)  # generations never go back
    for earlier, later in zip(by_start, by_start[1:], strict=False):
        assert earlier[3] <= later[2], f"two leaders at once: {earlier} and {later}"


@pytest.mark.clock_at("11:00")
def test_the_leader_killed_mid_fan_out_the_standby_finishes_within_30_s_one_message_each(
        app, pg_only, marketing, member_factory, gateway, tmp_path):
    from tests.test_campaign_sending import campaign
    member_factory()
    members = _members(app, 2000)
    env = _env(app, gateway, FANOUT_BATCH=100)  # the default lease (15 s)
    first = Scheduler(env, tmp_path / "a.log")
    second = None
    try:
        _wait(lambda: LEADING.search(first.text()), 60, "the first scheduler leads")
        second = Scheduler(env, tmp_path / "b.log")
        _wait(lambda: "standby" in second.text(), 60, "the second scheduler waits as a standby")
        campaign(marketing, channel="sms", schedule="once", send_at="2020-01-01T10:00:00+08:00", marketing=False)

        def fanned_out():
            return _in(app, lambda: db.session.scalar(select(func.count()).select_from(Delivery)))
        _wait(lambda: fanned_out() >= 200, 60, "the fan-out is under way")
        first.kill()
        assert fanned_out() < len(members), "the fan-out finished before the kill: make the batches smaller"
        killed = time.monotonic()

        def run_done():
            return _in(app, lambda: db.session.scalar(select(CampaignRun.status))) == "done"
        _wait(run_done, 30, "the standby took over and finished the fan-out")
        took = time.monotonic() - killed
        rows = _in(app, lambda: db.session.execute(select(Delivery.member_id, Delivery.send_id)).all())
        assert sorted(r.member_id for r in rows) == sorted(members)  # one delivery per member
        assert len({r.send_id for r in rows}) == len(members)

        def all_sent():
            return _in(app, lambda: db.session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.status == "sent"))) == len(members)
        _wait(all_sent, 30 - (time.monotonic() - killed), "the standby sent every message")
        finished = time.monotonic() - killed
        delivered = sorted(gateway.delivered.values())
        assert len(delivered) == len(set(delivered)) == len(members)  # one message per member at the gateway
        assert LEADING.search(second.text()), second.text()[-2000:]
        print(f"standby finished the fan-out {took:.1f}s and the sending {finished:.1f}s after the leader was killed")
    finally:
        first.stop()
        if second:
            second.stop()


def _leads(schedulers):
    return sum(len(LEADING.findall(s.text())) for s in schedulers)


def _admin():
    from tests.conftest import _pg_admin_conninfo
    return psycopg.connect(_pg_admin_conninfo(), autocommit=True)


def test_a_database_restart_under_two_schedulers_never_makes_two_leaders_and_both_keep_running(
        app, pg_only, gateway, tmp_path):
    name = app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1]
    env = _env(app, gateway, SCHEDULER_LEASE_SECONDS=3)
    schedulers = [Scheduler(env, tmp_path / "a.log")]
    try:
        _wait(lambda: LEADING.search(schedulers[0].text()), 60, "the first scheduler leads")
        schedulers.append(Scheduler(env, tmp_path / "b.log"))
        _wait(lambda: "standby" in schedulers[1].text(), 60, "the second scheduler waits as a standby")
        with _admin() as admin:
            for _ in range(2):  # down for longer than the lease, twice
                try:
                    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline:
                        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
                        time.sleep(0.2)
                finally:
                    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                before = _leads(schedulers)
                _wait(lambda before=before: _leads(schedulers) > before, 30,
                      "a scheduler leads again after the database is back")
            try:  # then a write refusal (a failover to a replica, a full disk) for longer than the lease
                admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
                _wait(lambda: all("read-only transaction" in s.text() for s in schedulers), 30,
                      "both schedulers meet the write refusal")
                time.sleep(4)
            finally:
                admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
            before = _leads(schedulers)
            _wait(lambda: _leads(schedulers) > before, 30, "a scheduler leads again once writes are accepted")
        assert all(s.proc.poll() is None for s in schedulers), "a scheduler exited"
        assert all("database unavailable" in s.text() for s in schedulers)
    finally:
        for s in schedulers:
            s.stop()
    spans = _leaderships(*schedulers)
    assert len(spans) >= 3, spans
    _assert_never_two_leaders(spans)
