"""The scheduler on a fixed clock: birthdays, quiet hours, consent, real SMTP and SMS
gateway servers on loopback, retries, and two schedulers at once."""
import itertools
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text

from crm.campaigns import jobs
from crm.campaigns.models import Delivery
from crm.coupons.models import Coupon
from crm.extensions import db
from tests.conftest import SYSTEM, audit_problems, in_app
from tests.servers import free_port

UTC = timezone.utc


def at_shanghai(*args) -> datetime:
    """A Beijing wall-clock time as UTC."""
    return datetime(*args, tzinfo=UTC) - timedelta(hours=8)


# The campaigns are scheduled on this clock, before the dates the ticks below name (a run
# never catches up on sends from before its campaign was scheduled): not on today's date,
# which will one day be after them.
pytestmark = pytest.mark.clock_at(at_shanghai(2026, 12, 1, 10, 0))


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp(app, monkeypatch):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", controller.port)
    monkeypatch.setitem(app.config, "MAIL_FROM", "greetings@crm.example")
    yield inbox
    controller.stop()


def tick(app, now):
    with app.app_context():
        jobs.tick(now)


def deliveries(app, **where):
    with app.app_context():
        rows = db.session.scalars(select(Delivery).filter_by(**where).order_by(Delivery.id)).all()
        db.session.expunge_all()
        return rows


_names = itertools.count(1)


def campaign(api, *, body="{{ name }}{{ title }}，您好。回TD退订", subject="", **fields):
    t = api.post("/api/v1/message-templates", json={"name": f"模板{next(_names)}", "subject": subject,
                                                    "body": body})
    assert t.status_code == 201, t.json
    c = api.post("/api/v1/campaigns", json={"name": "c", "template_id": t.json["id"], **fields})
    assert c.status_code == 201, c.json
    s = api.post(f"/api/v1/campaigns/{c.json['id']}/actions", json={"action": "schedule"})
    assert s.status_code == 200, s.json
    return c.json["id"]


def birthday_greeting(marketing, login_api, **changes):
    manager = login_api("manager")
    r = manager.post("/api/v1/coupon-types", json={"code": "BDAY", "name": "生日蛋糕券", "kind": "gift",
                                                  "face_value": "88.00", "valid_days": 30})
    assert r.status_code == 201, r.json
    builtin = marketing.get("/api/v1/campaigns").json[0]
    r = marketing.patch(f"/api/v1/campaigns/{builtin['id']}", json={"channel": "sms", "coupon_type_code": "BDAY",
                                                                    **changes})
    assert r.status_code == 200, r.json
    assert marketing.post(f"/api/v1/campaigns/{builtin['id']}/actions",
                          json={"action": "schedule"}).status_code == 200
    return builtin["id"]


SMS = {"sms": True, "email": False}


def test_birthday_run_greets_the_right_members_once_with_a_birthday_month_coupon(
        app, marketing, login_api, member_factory, gateway):
    a = member_factory(name="王芳", gender="female", birthday="1990-02-28", marketing_consent=SMS)
    b = member_factory(name="李雷", gender="male", birthday="1992-02-29", marketing_consent=SMS)
    c = member_factory(name="韩梅", birthday="1993-02-28")  # no consent
    member_factory(name="张三", birthday="1994-03-01", marketing_consent=SMS)
    birthday_greeting(marketing, login_api)

    tick(app, at_shanghai(2027, 2, 28, 8, 30))  # before the morning send time: nothing yet
    assert deliveries(app) == [] and gateway.received == []

    tick(app, at_shanghai(2027, 2, 28, 9, 5))
    sent = {d.member_id: d for d in deliveries(app)}
    assert set(sent) == {a["id"], b["id"], c["id"]}
    assert (sent[c["id"]].status, sent[c["id"]].reason) == ("skipped", "no_consent")
    assert sent[a["id"]].status == sent[b["id"]].status == "sent"
    assert gateway.to() == sorted([a["mobile"], b["mobile"]])
    text_a = next(m["text"] for m in gateway.received if m["to"] == a["mobile"])
    assert text_a.startswith("王芳女士，朝阳店祝您生日快乐！送您一张生日蛋糕券")
    assert gateway.received[0]["auth"] == "Bearer gw-token"
    with app.app_context():
        coupons = db.session.scalars(select(Coupon).order_by(Coupon.member_id)).all()
        assert [(x.member_id, x.source, x.valid_from, x.valid_until) for x in coupons] == [
            (a["id"], "birthday", date(2027, 2, 1), date(2027, 2, 28)),
            (b["id"], "birthday", date(2027, 2, 1), date(2027, 2, 28))]
        assert coupons[0].code in text_a

    tick(app, at_shanghai(2027, 2, 28, 9, 6))  # the next beat, and a restart, change nothing
    tick(app, at_shanghai(2027, 2, 28, 15, 0))
    assert len(deliveries(app)) == 3 and len(gateway.received) == 2
    assert audit_problems(app) == []


def test_29_february_birthdays_wait_for_their_day_in_leap_years(app, marketing, login_api, member_factory, gateway):
    a = member_factory(birthday="1990-02-28", marketing_consent=SMS)
    b = member_factory(birthday="1992-02-29", marketing_consent=SMS)
    birthday_greeting(marketing, login_api)
    tick(app, at_shanghai(2028, 2, 28, 9, 30))
    assert gateway.to() == [a["mobile"]]
    tick(app, at_shanghai(2028, 2, 29, 9, 30))
    assert gateway.to() == sorted([a["mobile"], b["mobile"]])


def test_birthdays_follow_the_store_time_zone(app, marketing, login_api, member_factory, gateway):
    from crm.stores import service as stores
    in_app(app, stores.create_store, SYSTEM, code="LA01", name="洛杉矶店", kind="restaurant",
           timezone="America/Los_Angeles")
    la = member_factory(birthday="1990-07-04", store_code="LA01", marketing_consent=SMS)
    bj = member_factory(birthday="1990-07-04", marketing_consent=SMS)
    birthday_greeting(marketing, login_api)
    tick(app, at_shanghai(2027, 7, 4, 9, 30))  # Beijing morning; still 3 July evening in Los Angeles
    assert gateway.to() == [bj["mobile"]]
    tick(app, datetime(2027, 7, 4, 16, 30, tzinfo=UTC))  # 09:30 in Los Angeles
    assert gateway.to() == sorted([bj["mobile"], la["mobile"]])


def test_birthday_greeting_days_before(app, marketing, login_api, member_factory, gateway):
    a = member_factory(birthday="1990-03-10", marketing_consent=SMS)
    birthday_greeting(marketing, login_api, days_before=3)
    tick(app, at_shanghai(2027, 3, 7, 9, 30))
    assert gateway.to() == [a["mobile"]]
    d = deliveries(app)[0]
    assert d.occurrence == "2027-03-10"


def test_quiet_hours_hold_marketing_until_morning(app, marketing, member_factory, gateway):
    m = member_factory(marketing_consent=SMS)
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T22:30:00+08:00")
    tick(app, at_shanghai(2027, 5, 1, 22, 31))
    (d,) = deliveries(app)
    assert d.status == "queued" and gateway.received == []
    assert d.next_attempt_at.astimezone(UTC) == at_shanghai(2027, 5, 2, 8, 0)
    tick(app, at_shanghai(2027, 5, 2, 7, 59))
    assert gateway.received == []
    tick(app, at_shanghai(2027, 5, 2, 8, 0))
    assert gateway.to() == [m["mobile"]]
    assert deliveries(app)[0].status == "sent"


def test_service_messages_are_not_held_by_quiet_hours(app, marketing, member_factory, gateway):
    m = member_factory()  # no marketing consent: service messages do not need it
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T22:30:00+08:00", marketing=False)
    tick(app, at_shanghai(2027, 5, 1, 22, 31))
    assert gateway.to() == [m["mobile"]]


def test_a_real_email_arrives_with_the_rendered_text(app, marketing, member_factory, smtp, give_points):
    m = member_factory(name="王芳", gender="female", email="wangfang@example.com",
                       marketing_consent={"sms": False, "email": True})
    give_points(m["id"], 120)
    member_factory(name="无邮箱", marketing_consent={"sms": False, "email": True})
    campaign(marketing, channel="email", schedule="once", send_at="2027-05-01T10:00:00+08:00",
             subject="{{ name }}{{ title }}，母亲节快乐", body="{{ name }}{{ title }}：您有{{ points }}积分。")
    tick(app, at_shanghai(2027, 5, 1, 10, 1))
    assert len(smtp.messages) == 1
    envelope = smtp.messages[0]
    assert envelope.rcpt_tos == ["wangfang@example.com"]
    assert envelope.mail_from == "greetings@crm.example"
    import email
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert str(msg["Subject"]) == "王芳女士，母亲节快乐"
    assert msg.get_content().strip() == "王芳女士：您有120积分。"
    by_member = {d.member_id: d for d in deliveries(app)}
    assert by_member[m["id"]].status == "sent"
    assert [d.reason for d in by_member.values() if d.member_id != m["id"]] == ["no_email"]


def test_gateway_failures_retry_with_backoff_then_fail_with_the_reason(app, marketing, member_factory, gateway,
                                                                       monkeypatch):
    monkeypatch.setitem(app.config, "DELIVERY_MAX_ATTEMPTS", 3)
    member_factory(marketing_consent=SMS)
    gateway.fail_with = [503, 503, 503]
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    t0 = at_shanghai(2027, 5, 1, 10, 0)
    tick(app, t0)
    (d,) = deliveries(app)
    assert (d.status, d.attempts) == ("queued", 1) and "503" in d.reason
    assert d.next_attempt_at.astimezone(UTC) == t0 + timedelta(seconds=60)
    tick(app, t0 + timedelta(seconds=30))  # not due yet
    assert deliveries(app)[0].attempts == 1
    tick(app, t0 + timedelta(seconds=60))
    d = deliveries(app)[0]
    assert d.attempts == 2 and d.next_attempt_at.astimezone(UTC) == t0 + timedelta(seconds=180)
    tick(app, t0 + timedelta(seconds=180))
    d = deliveries(app)[0]
    assert (d.status, d.attempts) == ("failed", 3) and d.reason.startswith("gateway 503")
    assert gateway.received == []


def test_a_refused_message_is_not_retried(app, marketing, member_factory, gateway):
    member_factory(marketing_consent=SMS)
    gateway.fail_with = [400]
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    tick(app, at_shanghai(2027, 5, 1, 10, 0))
    (d,) = deliveries(app)
    assert (d.status, d.attempts) == ("failed", 1) and d.reason.startswith("gateway 400")


def test_an_unconfigured_channel_fails_with_a_clear_reason(app, marketing, member_factory, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_GATEWAY_URL", "")
    member_factory(marketing_consent=SMS)
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    tick(app, at_shanghai(2027, 5, 1, 10, 0))
    (d,) = deliveries(app)
    assert (d.status, d.reason) == ("failed", "sms not configured (SMS_GATEWAY_URL)")


def test_recurring_and_holiday_campaigns_send_once_per_occurrence(app, marketing, member_factory):
    member_factory(marketing_consent=SMS)
    campaign(marketing, channel="outbox", schedule="recurring", recurrence="weekly", starts_on="2027-05-03",
             send_time="10:00:00")  # Mondays
    campaign(marketing, channel="outbox", schedule="holiday", holiday_key="mothers_day", send_time="09:00:00",
             days_before=1)
    for day in range(1, 15):
        tick(app, at_shanghai(2027, 5, day, 12, 0))
        tick(app, at_shanghai(2027, 5, day, 12, 1))
    occurrences = sorted((d.campaign.schedule, d.occurrence) for d in deliveries(app))
    assert occurrences == [("holiday", "2027-05-09"), ("recurring", "2027-05-03"), ("recurring", "2027-05-10")]
    assert all(d.status == "sent" for d in deliveries(app))  # the outbox is the message


def test_two_schedulers_at_once_still_send_once(app, backend, marketing, login_api, member_factory, gateway,
                                                monkeypatch):
    if backend != "postgresql":
        pytest.skip("two scheduler processes share a server database; SQLite serialises writers anyway")
    monkeypatch.setitem(app.config, "FANOUT_BATCH", 4)
    people = [member_factory(birthday="1990-06-15", marketing_consent=SMS) for _ in range(25)]
    birthday_greeting(marketing, login_api)
    now = at_shanghai(2027, 6, 15, 9, 30)
    barrier, errors = threading.Barrier(2), []

    def scheduler():
        try:
            barrier.wait()
            for _ in range(3):
                tick(app, now)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gateway.to() == sorted(p["mobile"] for p in people)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == 25
        assert db.session.scalar(select(func.count()).select_from(Coupon)) == 25
    assert audit_problems(app) == []


@pytest.mark.clock_at("10:00")  # daytime in Beijing: the command goes by the clock, and this is not quiet hours
def test_scheduler_command_runs_a_tick_and_restarts_without_resending(app, marketing, member_factory, gateway):
    m = member_factory(marketing_consent=SMS)
    campaign(marketing, channel="sms", schedule="once", send_at="2020-01-01T10:00:00+08:00")
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["crm", "scheduler", "--once"])
        assert result.exit_code == 0, result.output
    assert gateway.to() == [m["mobile"]]
    c = marketing.get("/api/v1/campaigns").json
    assert [x["state"] for x in c if x["builtin"] is None] == ["done"]


@pytest.mark.clock_at("22:30")
def test_the_scheduler_command_holds_marketing_sms_through_the_night_by_its_clock(app, marketing, member_factory,
                                                                                 gateway, clock):
    night = clock.local_now()  # 22:30 in Beijing
    m = member_factory(marketing_consent=SMS)
    campaign(marketing, channel="sms", schedule="once", send_at="2020-01-01T10:00:00+08:00")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["crm", "scheduler", "--once"])
    assert result.exit_code == 0, result.output
    (d,) = deliveries(app)
    assert d.status == "queued" and gateway.received == []
    morning = (night + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)  # quiet hours end
    assert d.next_attempt_at.astimezone(UTC) == morning
    clock.set(morning - timedelta(minutes=1))
    assert runner.invoke(args=["crm", "scheduler", "--once"]).exit_code == 0
    assert gateway.received == []
    clock.set(morning)
    assert runner.invoke(args=["crm", "scheduler", "--once"]).exit_code == 0
    assert gateway.to() == [m["mobile"]]
    assert deliveries(app)[0].status == "sent"


def test_the_job_store_keeps_one_copy_of_each_job_across_restarts(app):
    from apscheduler.schedulers.background import BackgroundScheduler
    with app.app_context():
        for _ in range(2):
            scheduler = jobs.build_scheduler(app, BackgroundScheduler)
            scheduler.start(paused=True)
            scheduler.shutdown(wait=False)
        ids = sorted(db.session.execute(text("SELECT id FROM scheduler_jobs")).scalars())
        assert ids == ["campaigns.tick", "imports.resume", "levels.review", "pipl.retention", "points.expire"]
        db.session.execute(text("DELETE FROM scheduler_jobs"))
        db.session.commit()


def test_an_interrupted_sms_is_resent_with_its_id_and_an_interrupted_email_is_unknown(app, marketing, member_factory,
                                                                                     gateway, smtp):
    member_factory(marketing_consent={"sms": True, "email": True}, email="a@example.com")
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    campaign(marketing, channel="email", schedule="once", send_at="2027-05-01T10:00:00+08:00", subject="hi")
    t0 = at_shanghai(2027, 5, 1, 10, 0)
    with app.app_context():
        jobs.run_campaigns(t0)  # queued, then the process "dies" holding the claims
        db.session.execute(Delivery.__table__.update().values(status="sending", claimed_at=t0))
        db.session.commit()
    tick(app, t0 + timedelta(minutes=5))
    assert {d.status for d in deliveries(app)} == {"sending"}  # maybe still being sent: leave it
    tick(app, t0 + timedelta(minutes=11))
    sms, email = deliveries(app, channel="sms")[0], deliveries(app, channel="email")[0]
    assert sms.status == "sent" and len(gateway.received) == 1  # the gateway drops a repeat of its key
    assert email.status == "unknown" and email.reason == "interrupted_unknown" and smtp.messages == []


def test_a_test_send_reaches_the_staff_phone_and_is_not_counted_as_the_campaigns(app, marketing, gateway):
    cid = campaign(marketing, channel="sms", schedule="once", send_at="2030-05-01T10:00:00+08:00",
                   body="{{ name }}{{ title }}，您好{% if coupon %}{{ coupon.name }}{% endif %}回TD退订")
    bad = marketing.post(f"/api/v1/campaigns/{cid}/test-sends", json={"address": "not-a-number"})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_address"
    r = marketing.post(f"/api/v1/campaigns/{cid}/test-sends", json={"address": "139 0000 1111"})
    assert r.status_code == 201 and r.json["status"] == "sent", r.json
    assert gateway.received[0]["to"] == "13900001111" and gateway.received[0]["text"] == "王芳女士，您好回TD退订"
    with app.app_context():
        from crm.campaigns import fanout
        assert fanout.delivery_counts([cid]) == {}
    outbox = marketing.get(f"/api/v1/deliveries?campaign_id={cid}").json
    assert outbox["total"] == 1 and outbox["items"][0]["member_id"] is None


def test_the_channel_throttle_holds_the_rest_for_the_next_beat(app, marketing, member_factory, gateway, monkeypatch):
    from crm.campaigns import dispatch
    monkeypatch.setitem(app.config, "SMS_RATE_LIMIT", "2/minute")
    dispatch._limiter.storage.reset()
    people = [member_factory(marketing_consent=SMS) for _ in range(5)]
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    tick(app, at_shanghai(2027, 5, 1, 10, 0))
    assert len(gateway.received) == 2
    assert sorted(d.status for d in deliveries(app)) == ["queued", "queued", "queued", "sent", "sent"]
    dispatch._limiter.storage.reset()  # a minute later
    tick(app, at_shanghai(2027, 5, 1, 10, 1))
    dispatch._limiter.storage.reset()
    tick(app, at_shanghai(2027, 5, 1, 10, 2))
    assert gateway.to() == sorted(p["mobile"] for p in people)


def test_an_admin_moves_the_quiet_hours(app, login_api, marketing, member_factory, gateway):
    admin = login_api("admin")
    bad = admin.patch("/api/v1/programme", json={"quiet_hours_start": "25:00"})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_rule"
    r = admin.patch("/api/v1/programme", json={"quiet_hours_start": "23:00", "quiet_hours_end": "07:00"})
    assert r.status_code == 200 and r.json["quiet_hours_start"] == "23:00", r.json
    m = member_factory(marketing_consent=SMS)
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T22:30:00+08:00")
    tick(app, at_shanghai(2027, 5, 1, 22, 31))  # 22:31 is no longer quiet
    assert gateway.to() == [m["mobile"]]


def test_a_retired_coupon_type_does_not_stop_the_greetings(app, marketing, login_api, member_factory, gateway):
    a = member_factory(birthday="1990-02-28", marketing_consent=SMS)
    birthday_greeting(marketing, login_api)
    assert login_api("manager").patch("/api/v1/coupon-types/BDAY", json={"active": False}).status_code == 200
    tick(app, at_shanghai(2027, 2, 28, 9, 30))
    assert gateway.to() == [a["mobile"]]
    (d,) = deliveries(app)
    assert (d.status, d.reason, d.coupon_id) == ("sent", "coupon_not_issued", None)


def test_a_coupon_campaign_must_read_right_without_its_coupon(marketing, login_api, stores):
    login_api("manager").post("/api/v1/coupon-types", json={"code": "EGG", "name": "红鸡蛋", "kind": "gift",
                                                             "stock_total": 1})
    t = marketing.post("/api/v1/message-templates", json={"name": "券号", "body": "券号 {{ coupon.code }}"}).json
    r = marketing.post("/api/v1/campaigns", json={"name": "c", "template_id": t["id"], "coupon_type_code": "EGG",
                                                  "schedule": "once", "send_at": "2030-01-01T10:00:00+08:00"})
    assert r.status_code == 422 and r.json["error"]["code"] == "template_invalid"  # the stock can run out


def test_cancel_and_pause_hold_messages_that_are_still_waiting(app, marketing, member_factory, gateway):
    m = member_factory(marketing_consent=SMS)
    cancelled = campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T22:30:00+08:00")
    tick(app, at_shanghai(2027, 5, 1, 22, 31))  # queued, waiting out the quiet hours
    assert marketing.get(f"/api/v1/campaigns/{cancelled}").json["state"] == "done"
    r = marketing.post(f"/api/v1/campaigns/{cancelled}/actions", json={"action": "cancel"})
    assert r.status_code == 200 and r.json["state"] == "cancelled"
    tick(app, at_shanghai(2027, 5, 2, 8, 0))
    assert gateway.received == []
    assert [(d.status, d.reason) for d in deliveries(app, campaign_id=cancelled)] == [("skipped",
                                                                                        "campaign_cancelled")]
    again = marketing.post(f"/api/v1/campaigns/{cancelled}/actions", json={"action": "cancel"})
    assert again.status_code == 409

    paused = campaign(marketing, channel="sms", schedule="recurring", recurrence="daily", starts_on="2027-05-03",
                      send_time="22:00:00")
    tick(app, at_shanghai(2027, 5, 3, 22, 5))  # queued for the morning
    assert marketing.post(f"/api/v1/campaigns/{paused}/actions", json={"action": "pause"}).json["state"] == "paused"
    tick(app, at_shanghai(2027, 5, 4, 8, 1))
    assert gateway.received == []  # paused: it waits
    r = marketing.post(f"/api/v1/campaigns/{paused}/actions", json={"action": "resume"})
    assert r.status_code == 200 and r.json["state"] == "running"  # back to where it was
    tick(app, at_shanghai(2027, 5, 4, 8, 2))
    assert gateway.to() == [m["mobile"]]


def test_consent_withdrawn_while_a_message_waits_stops_it(app, marketing, desk, member_factory, gateway):
    m = member_factory(marketing_consent=SMS)
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T22:30:00+08:00")
    tick(app, at_shanghai(2027, 5, 1, 22, 31))
    r = desk.patch(f"/api/v1/members/{m['id']}", json={"marketing_consent": {"sms": False, "email": False}})
    assert r.status_code == 200, r.json
    tick(app, at_shanghai(2027, 5, 2, 8, 0))
    assert gateway.received == []
    assert [(d.status, d.reason) for d in deliveries(app)] == [("skipped", "no_consent")]


def test_the_outbox_masks_mobiles_for_marketing(app, marketing, login_api, member_factory, gateway):
    m = member_factory(marketing_consent=SMS)
    campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    tick(app, at_shanghai(2027, 5, 1, 10, 0))
    seen_by_marketing = marketing.get("/api/v1/deliveries").json["items"][0]["address"]
    assert seen_by_marketing == m["mobile"][:3] + "****" + m["mobile"][-4:]
    assert login_api("manager").get("/api/v1/deliveries").json["items"][0]["address"] == m["mobile"]


def test_a_scheduler_down_on_the_morning_still_greets_once_it_is_back(app, marketing, login_api, member_factory,
                                                                      gateway):
    a = member_factory(birthday="1990-03-10", marketing_consent=SMS)
    birthday_greeting(marketing, login_api)
    tick(app, at_shanghai(2027, 3, 11, 10, 0))  # nothing ran on the 10th
    assert gateway.to() == [a["mobile"]]
    tick(app, at_shanghai(2027, 3, 12, 10, 0))
    assert len(gateway.received) == 1
