"""Transactional (service) notifications, issue 15.2: a welcome on card issue, top-up receipts,
stored-value payment alerts, points earned (off by default), points about to expire and level
changes. Each is written in the event's own transaction, once per event however often the
request is retried, needs the member's service consent (not marketing consent), and is sent by
the campaigns dispatcher: payment alerts at any hour, the rest after the quiet hours."""
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from crm.campaigns import jobs
from crm.campaigns.models import Delivery
from crm.extensions import db
from crm.members.models import Member
from crm.notifications import service as notifications
from crm.notifications.models import Notification, NotificationTemplate
from tests.conftest import audit_problems
from tests.test_campaign_sending import smtp  # noqa: F401  (the loopback SMTP server fixture)
from tests.test_ui import text, ui_login


def at_shanghai(*args) -> datetime:
    return datetime(*args, tzinfo=UTC) - timedelta(hours=8)


def sent_to(app, member_id, kind=None):
    """The member's service messages, oldest first, as (kind, channel, status, body)."""
    with app.app_context():
        rows = notifications.for_member(member_id, limit=200)
        db.session.rollback()
    return [(n["kind"], n["channel"], n["status"], n["body"]) for n in reversed(rows)
            if kind is None or n["kind"] == kind]


def count(app, model, **where):
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model).filter_by(**where))
        db.session.rollback()
        return n


def top_up(cashier, member_id, amount, key=None, **extra):
    return cashier.post(f"/api/v1/members/{member_id}/wallet/top-ups", key=key,
                        json={"store_code": "BJ01", "amount": amount, "payment_method": "cash", **extra})


def tick(app, now):
    with app.app_context():
        jobs.tick(now)


# The receipt, once --------------------------------------------------------------------------

def test_a_retried_top_up_produces_exactly_one_receipt(app, member_factory, cashier):
    m = member_factory(name="王芳", gender="female")
    first = top_up(cashier, m["id"], "100.00", key="topup-once")
    again = top_up(cashier, m["id"], "100.00", key="topup-once")  # the till did not hear the answer
    assert first.status_code == again.status_code == 201 and again.json == first.json
    receipts = sent_to(app, m["id"], "topup")
    assert len(receipts) == 1, receipts
    kind, channel, status, body = receipts[0]
    assert (channel, status) == ("sms", "queued")
    assert body == "王芳女士您好，您已成功充值100.00元，赠送0.00元，当前储值余额100.00元。"
    assert count(app, Notification, kind="topup") == 1
    with app.app_context():  # the scheduler's beat hands it to the outbox: one message, to the member's mobile
        assert notifications.hand_over(commit=db.session.commit) == 1
        assert notifications.hand_over(commit=db.session.commit) == 0
        (d,) = db.session.scalars(select(Delivery).where(Delivery.member_id == m["id"])).all()
        assert d.address == m["mobile"] and d.campaign_id is None and d.channel == "sms" and d.status == "queued"
        assert d.body == body and d.marketing  # a receipt waits out the quiet hours
    # A second top-up (another key) is another event: a second receipt.
    assert top_up(cashier, m["id"], "50.00", key="topup-two").status_code == 201
    assert [r[3][-14:] for r in sent_to(app, m["id"], "topup")] == ["当前储值余额100.00元。", "当前储值余额150.00元。"]


def test_the_receipt_names_the_bonus_and_the_balance(app, member_factory, cashier, login_api):
    admin = login_api("admin")
    assert admin.post("/api/v1/wallet/bonus-tiers", json={"min_amount": "1000.00", "bonus": "100.00"}).status_code \
        == 201
    m = member_factory(name="李雷", gender="male")
    assert top_up(cashier, m["id"], "1000.00", key="bonus").status_code == 201
    [(_k, _c, _s, body)] = sent_to(app, m["id"], "topup")
    assert "充值1000.00元，赠送100.00元，当前储值余额1100.00元" in body and body.startswith("李雷先生")


def test_parallel_twins_of_one_top_up_write_one_receipt(app, member_factory, cashier):
    m = member_factory()
    barrier, answers = threading.Barrier(4), []

    def send():
        client = app.test_client()
        barrier.wait()
        r = client.post(f"/api/v1/members/{m['id']}/wallet/top-ups", headers={
            "Authorization": f"Bearer {cashier.token}", "Idempotency-Key": "twins"},
            json={"store_code": "BJ01", "amount": "88.00", "payment_method": "cash"})
        answers.append(r.status_code)
    threads = [threading.Thread(target=send) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert set(answers) <= {201, 409} and 201 in answers, answers
    assert len(sent_to(app, m["id"], "topup")) == 1
    assert cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "88.00"


def test_a_refused_top_up_writes_no_message(app, member_factory, cashier):
    m = member_factory()
    r = top_up(cashier, m["id"], "0.00", key="zero")
    assert r.status_code == 422
    r = top_up(cashier, m["id"], "abc", key="bad")
    assert r.status_code == 422
    assert sent_to(app, m["id"]) == [] and count(app, Notification) == 0


def test_the_same_event_noted_twice_writes_one_message(app, member_factory):
    """The unique key (kind, event_ref, channel) decides, whoever calls."""
    m = member_factory(email="a@example.com")
    with app.app_context():
        member = db.session.get(Member, m["id"])
        for _ in range(2):
            notifications.notify("topup", member, "T-1", {"amount": "1.00", "bonus": "0.00", "balance": "1.00"})
        db.session.commit()
    assert sorted(c for _k, c, _s, _b in sent_to(app, m["id"])) == ["email", "sms"]


# Welcome, payment alerts, points, levels ------------------------------------------------------

def test_a_new_card_welcomes_the_member_once(app, member_factory, issue_card, desk):
    m = member_factory(name="张三")
    card = issue_card(m["id"], key="card-1")
    assert card.status_code == 201
    assert issue_card(m["id"], key="card-1").json == card.json  # a retry
    [(kind, channel, status, body)] = sent_to(app, m["id"])
    assert kind == "welcome" and channel == "sms" and body.startswith("张三")
    # a message is read by whoever holds the phone (and shown on staff pages): the card number only by its end
    assert card.json["card_no"] not in body and f"尾号{card.json['card_no'][-4:]}" in body
    # A card issued again after a cancel does not welcome them a second time.
    assert desk.post(f"/api/v1/cards/{card.json['card_no']}/cancel", json={"reason": "test"}).status_code in (200,
                                                                                                            201)
    assert issue_card(m["id"], key="card-2").status_code == 201
    assert len(sent_to(app, m["id"], "welcome")) == 1


@pytest.mark.clock_at(at_shanghai(2027, 5, 1, 22, 30))  # quiet hours (21:00–08:00 by default)
def test_a_payment_alert_goes_at_once_even_in_quiet_hours(app, catalogue, member_factory, cashier, checkout,
                                                          gateway, clock):
    m = member_factory(name="王芳", gender="female")
    assert top_up(cashier, m["id"], "500.00", key="pay-topup").status_code == 201
    r = checkout([("SALMON", 1)], key="pay-bill", member_id=m["id"], wallet_amount="68.00")
    assert r.status_code == 201, r.json
    assert checkout([("SALMON", 1)], key="pay-bill", member_id=m["id"], wallet_amount="68.00").json == r.json
    alerts = sent_to(app, m["id"], "payment")
    assert len(alerts) == 1 and "使用储值支付68.00元，当前余额432.00元" in alerts[0][3]
    tick(app, clock.now())
    # The alert left at 22:30; the top-up receipt waits for the end of the quiet hours.
    assert [x["text"] for x in gateway.received] == [alerts[0][3]]
    assert [s for _k, _c, s, _b in sent_to(app, m["id"])] == ["queued", "sent"]
    tick(app, at_shanghai(2027, 5, 2, 8, 0))
    assert len(gateway.received) == 2 and [s for _k, _c, s, _b in sent_to(app, m["id"])] == ["sent", "sent"]
    tick(app, at_shanghai(2027, 5, 2, 9, 0))  # nothing is sent twice
    assert len(gateway.received) == 2


def test_points_earned_is_off_until_switched_on(app, catalogue, member_factory, checkout, login_api):
    m = member_factory()
    assert checkout([("SALMON", 2)], key="earn-1", member_id=m["id"]).status_code == 201
    assert sent_to(app, m["id"], "points_earned") == []
    admin = login_api("admin")
    r = admin.patch("/api/v1/notification-templates/points_earned/sms", json={"enabled": True})
    assert r.status_code == 200 and r.json["enabled"] is True and r.json["customised"] is True
    bill = checkout([("SALMON", 2)], key="earn-2", member_id=m["id"])
    assert bill.status_code == 201
    [(_k, _c, _s, body)] = sent_to(app, m["id"], "points_earned")
    assert f"获得{bill.json['points_earned']}积分" in body


def test_a_level_change_tells_the_member_up_or_down_with_why(app, member_factory, login_api, desk):
    admin = login_api("admin")
    assert admin.post("/api/v1/levels", json={"code": "gold", "name": "金卡", "rank": 1}).status_code == 201
    m = member_factory(name="赵六")
    manager = login_api("manager")
    assert manager.patch(f"/api/v1/members/{m['id']}", json={"level_code": "gold"}).status_code == 200
    assert manager.patch(f"/api/v1/members/{m['id']}", json={"level_code": "standard"}).status_code == 200
    bodies = [b for _k, _c, _s, b in sent_to(app, m["id"], "level_change")]
    assert len(bodies) == 2
    assert "由普通会员升级为金卡" in bodies[0] and "门店人工调整" in bodies[0]
    assert "由金卡调整为普通会员" in bodies[1]


def test_points_about_to_expire_are_announced_once_per_expiry_date(app, member_factory, give_points, clock):
    m = member_factory(name="孙七")
    other = member_factory()
    give_points(m["id"], 120)
    give_points(other["id"], 5)
    with app.app_context():  # expiring in 10 days; the other member's in 60 days
        from crm.points.models import PointsAccount, PointsLot
        now = clock.now()
        for member_id, days in ((m["id"], 10), (other["id"], 60)):
            account = select(PointsAccount.id).where(PointsAccount.member_id == member_id).scalar_subquery()
            db.session.execute(update(PointsLot).where(PointsLot.account_id == account)
                               .values(expires_at=now + timedelta(days=days)))
        db.session.commit()
        assert notifications.queue_expiry_notices(now, commit=db.session.commit) == 1
        db.session.commit()
        assert notifications.queue_expiry_notices(now + timedelta(days=1)) == 0  # tomorrow's run: already told
        db.session.commit()
    [(_k, _c, _s, body)] = sent_to(app, m["id"], "points_expiring")
    assert "您有120积分将于" in body
    assert sent_to(app, other["id"]) == []


def test_the_nightly_job_queues_the_expiry_notices(app, member_factory, give_points, clock, monkeypatch):
    m = member_factory()
    give_points(m["id"], 30)
    with app.app_context():
        from crm.points.models import PointsLot
        db.session.execute(update(PointsLot).values(expires_at=clock.now() + timedelta(days=3)))
        db.session.commit()
    monkeypatch.setattr(jobs, "_app", app, raising=False)
    monkeypatch.setattr(jobs, "leading", lambda: True)
    jobs.expire_points()
    jobs.expire_points()  # a second run (another scheduler, a restart) adds nothing
    assert len(sent_to(app, m["id"], "points_expiring")) == 1


# Consent and addresses -------------------------------------------------------------------------

@pytest.mark.clock_at("12:00")
def test_no_service_consent_means_no_message_recorded_as_skipped(app, member_factory, cashier, gateway, clock):
    m = member_factory()
    with app.app_context():
        db.session.execute(update(Member).where(Member.id == m["id"]).values(service_consent=False))
        db.session.commit()
    assert top_up(cashier, m["id"], "20.00", key="no-consent").status_code == 201
    [(_k, _c, status, _b)] = sent_to(app, m["id"])
    assert status == "skipped"
    with app.app_context():
        assert notifications.for_member(m["id"])[0]["reason"] == "no_consent"
    tick(app, clock.now())
    assert gateway.received == []


@pytest.mark.clock_at("12:00")
def test_consent_withdrawn_before_sending_stops_the_message(app, member_factory, cashier, gateway, clock):
    """Marketing consent does not matter; service consent is asked again when it is sent."""
    m = member_factory(marketing_consent={"sms": False, "email": False})
    assert top_up(cashier, m["id"], "20.00", key="withdraw").status_code == 201
    with app.app_context():
        db.session.execute(update(Member).where(Member.id == m["id"]).values(service_consent=False))
        db.session.commit()
    tick(app, clock.now())
    assert gateway.received == [] and sent_to(app, m["id"])[0][2] == "skipped"


@pytest.mark.clock_at("12:00")
def test_marketing_consent_is_not_needed(app, member_factory, cashier, gateway, clock):
    m = member_factory(marketing_consent={"sms": False, "email": False})
    assert top_up(cashier, m["id"], "20.00", key="no-marketing").status_code == 201
    tick(app, clock.now())
    assert [x["to"] for x in gateway.received] == [m["mobile"]]


def test_email_goes_only_to_members_with_an_address(app, member_factory, cashier):
    with_email = member_factory(email="wang@example.com")
    without = member_factory()
    for m in (with_email, without):
        assert top_up(cashier, m["id"], "20.00", key=f"mail-{m['id']}").status_code == 201
    assert sorted(c for _k, c, _s, _b in sent_to(app, with_email["id"])) == ["email", "sms"]
    assert [c for _k, c, _s, _b in sent_to(app, without["id"])] == ["sms"]


@pytest.mark.clock_at("12:00")
def test_a_receipt_by_email_arrives_with_its_subject(app, member_factory, cashier, smtp, gateway, clock):  # noqa: F811
    import email
    m = member_factory(name="王芳", gender="female", email="wangfang@example.com")
    assert top_up(cashier, m["id"], "66.00", key="by-mail").status_code == 201
    tick(app, clock.now())
    assert len(smtp.messages) == 1 and smtp.messages[0].rcpt_tos == ["wangfang@example.com"]
    msg = email.message_from_bytes(smtp.messages[0].content, policy=email.policy.default)
    assert msg["Subject"] == "充值成功通知" and "充值66.00元" in msg.get_content()
    assert [x["to"] for x in gateway.received] == [m["mobile"]]
    assert sorted(s for _k, _c, s, _b in sent_to(app, m["id"])) == ["sent", "sent"]


# Templates --------------------------------------------------------------------------------------

def test_templates_are_listed_edited_and_switched_off(app, member_factory, cashier, login_api):
    admin = login_api("admin")
    listed = admin.get("/api/v1/notification-templates")
    assert listed.status_code == 200 and len(listed.json) == 12
    topup_sms = next(t for t in listed.json if (t["kind"], t["channel"]) == ("topup", "sms"))
    assert topup_sms["enabled"] and set(topup_sms["placeholders"]) >= {"name", "amount", "bonus", "balance"}
    r = admin.patch("/api/v1/notification-templates/topup/sms", json={"body": "充值{amount}元，余额{balance}元"})
    assert r.status_code == 200 and r.json["body"] == "充值{amount}元，余额{balance}元"
    m = member_factory()
    assert top_up(cashier, m["id"], "30.00", key="edited").status_code == 201
    assert sent_to(app, m["id"])[0][3] == "充值30.00元，余额30.00元"
    assert admin.patch("/api/v1/notification-templates/topup/sms", json={"enabled": False}).status_code == 200
    assert top_up(cashier, m["id"], "30.00", key="switched-off").status_code == 201
    assert len(sent_to(app, m["id"])) == 1
    reset = admin.delete("/api/v1/notification-templates/topup/sms")
    assert reset.status_code == 200 and reset.json["enabled"] and not reset.json["customised"]
    assert top_up(cashier, m["id"], "30.00", key="reset").status_code == 201
    assert sent_to(app, m["id"])[-1][3].endswith("当前储值余额90.00元。")
    with app.app_context():
        from crm.core.audit import AuditEntry
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("notification%"))
                                     .order_by(AuditEntry.id)).all()
    assert actions == ["notification_template.update", "notification_template.update",
                       "notification_template.reset"]


@pytest.mark.parametrize("body, code, message", [
    ({"body": "您好{nmae}"}, "unknown_placeholder", "{nmae}"),
    ({"body": "充值{amount:>10}元"}, "unknown_placeholder", "{amount}"),
    ({"body": "余额{balance"}, "invalid_template", "brace"),
    ({"subject": "{points}"}, "unknown_placeholder", "{points}"),
    ({"body": ""}, None, None),
    ({"body": "ok", "colour": "red"}, None, None),
    ({"enabled": "maybe"}, None, None),
])
def test_a_bad_template_is_refused_on_its_field_and_nothing_is_saved(app, login_api, body, code, message):
    admin = login_api("admin")
    r = admin.patch("/api/v1/notification-templates/topup/email", json=body)
    assert r.status_code == 422, r.json
    if code:
        assert r.json["error"]["code"] == code
        field = next(iter(body))
        assert r.json["error"]["details"]["field"] == field and message in r.json["error"]["message"]
    assert count(app, NotificationTemplate) == 0


def test_unknown_kinds_and_other_roles_are_refused(app, login_api, member_factory):
    admin = login_api("admin")
    assert admin.patch("/api/v1/notification-templates/birthday/sms", json={"enabled": False}).status_code == 404
    assert admin.patch("/api/v1/notification-templates/topup/fax", json={"enabled": False}).status_code == 404
    assert login_api("cashier").patch("/api/v1/notification-templates/topup/sms",
                                      json={"enabled": False}).status_code == 403
    assert login_api("cashier").get("/api/v1/notification-templates").status_code == 403
    assert login_api("marketing").patch("/api/v1/notification-templates/topup/sms",
                                        json={"enabled": False}).status_code == 200
    m = member_factory()
    assert login_api("cashier").get(f"/api/v1/members/{m['id']}/notifications").json == []
    assert admin.get("/api/v1/members/999999/notifications").status_code in (403, 404)
    assert login_api("front_desk").get("/api/v1/members/999999/notifications").status_code == 404


def test_the_member_notifications_api(app, member_factory, cashier, login_api):
    m = member_factory()
    for i in range(3):
        assert top_up(cashier, m["id"], "10.00", key=f"list-{i}").status_code == 201
    r = login_api("front_desk").get(f"/api/v1/members/{m['id']}/notifications?limit=2")
    assert r.status_code == 200 and len(r.json) == 2
    assert r.json[0]["kind"] == "topup" and r.json[0]["status"] == "queued" and "30.00" in r.json[0]["body"]
    assert set(r.json[0]) >= {"kind", "channel", "status", "created_at", "sent_at", "body", "reason"}
    assert login_api("front_desk").get(f"/api/v1/members/{m['id']}/notifications?limit=0").status_code == 422


def test_the_api_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").json
    assert "/api/v1/notification-templates" in doc["paths"]
    assert {"patch", "delete"} <= set(doc["paths"]["/api/v1/notification-templates/{kind}/{channel}"])
    assert "/api/v1/members/{member_id}/notifications" in doc["paths"]


# Staff page ------------------------------------------------------------------------------------

def test_the_staff_page_edits_a_template_and_shows_a_bad_placeholder_on_its_field(app, staff):
    ui = ui_login(app, "admin")
    page = ui.get("/admin/notifications")
    assert page.status_code == 200 and "{amount}" in text(page)
    bad = ui.post("/admin/notifications/topup/sms", {"body": "充值{amout}元", "enabled": "on"})
    assert bad.status_code == 422 and "amout" in text(bad) and 'aria-invalid="true"' in text(bad)
    assert count(app, NotificationTemplate) == 0
    good = ui.post("/admin/notifications/topup/sms", {"body": "充值{amount}元"})  # switched off too
    assert good.status_code == 302
    with app.app_context():
        row = db.session.scalar(select(NotificationTemplate))
        assert (row.kind, row.channel, row.body, row.enabled) == ("topup", "sms", "充值{amount}元", False)
    assert ui.post("/admin/notifications/topup/sms/reset", {}).status_code == 302
    assert count(app, NotificationTemplate) == 0
    assert ui_login(app, "cashier").get("/admin/notifications").status_code in (302, 403)


def test_the_member_list_partial_renders(app, member_factory, cashier):
    m = member_factory()
    assert top_up(cashier, m["id"], "10.00", key="partial").status_code == 201
    with app.test_request_context():
        from flask import render_template
        html = render_template("notifications/_member_list.html", notifications=notifications.for_member(m["id"]))
    assert "10.00" in html and "service-messages" in html
    assert notifications_text(app, m["id"]).endswith("当前储值余额10.00元。")
    assert audit_problems(app) == []


# Two schedulers at once --------------------------------------------------------------------------

def _race(n, fn):
    barrier, results, errors = threading.Barrier(n), [None] * n, []

    def run(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    return results


def test_two_schedulers_hand_each_message_over_once(app, member_factory, cashier):
    members = [member_factory() for _ in range(6)]
    for m in members:
        assert top_up(cashier, m["id"], "10.00", key=f"race-{m['id']}").status_code == 201

    def beat(_i):
        with app.app_context():
            try:
                return notifications.hand_over(batch=2, commit=db.session.commit)
            finally:
                db.session.remove()
    assert sum(_race(3, beat)) == 6
    assert count(app, Delivery) == 6
    with app.app_context():
        assert sorted(db.session.scalars(select(Delivery.member_id))) == sorted(m["id"] for m in members)


def test_two_expiry_runs_at_once_write_one_notice(app, member_factory, give_points, clock):
    members = [member_factory() for _ in range(3)]
    for m in members:
        give_points(m["id"], 40)
    with app.app_context():
        from crm.points.models import PointsLot
        db.session.execute(update(PointsLot).values(expires_at=clock.now() + timedelta(days=5)))
        db.session.commit()
    now = clock.now()

    def run(_i):
        with app.app_context():
            try:
                queued = notifications.queue_expiry_notices(now, batch=1, commit=db.session.commit)
                db.session.commit()
                return queued
            finally:
                db.session.remove()
    _race(3, run)
    assert count(app, Notification, kind="points_expiring") == 3
    for m in members:
        assert len(sent_to(app, m["id"], "points_expiring")) == 1


def notifications_text(app, member_id):
    """What the member's own page shows (`text`)."""
    with app.app_context():
        return notifications.for_member(member_id, limit=1)[0]["text"]
