"""The marketing pages: what a marketing user sees and does, errors beside their fields."""
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from crm.campaigns import jobs
from crm.campaigns.models import Campaign
from crm.extensions import db
from tests.test_ui import text, ui_login


def _error_beside(page: str, field: str) -> str:
    match = re.search(rf'id="e-{field}">([^<]+)<', page)
    return match[1] if match else ""


def test_a_template_error_shows_beside_the_message(app, staff):
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    r = ui.post("/marketing/templates", {"name": "坏", "subject": "", "body": "您好 {{ nickname }}"})
    assert r.status_code == 422
    assert "nickname" in _error_beside(text(r), "body")
    assert "您好 {{ nickname }}" in text(r)  # what was typed is kept
    r = ui.post("/marketing/templates", {"name": "好", "subject": "", "body": "{{ name }}{{ title }}，您好"})
    assert r.status_code == 302
    page = text(ui.get(r.headers["Location"]))
    assert "王芳女士，您好" in page  # rendered for the sample member


def test_audience_count_button_counts_without_saving(app, staff, member_factory):
    member_factory(birthday="1990-05-10", marketing_consent={"sms": True, "email": False})
    member_factory(birthday="1990-06-10")
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/audiences/new")
    r = ui.post("/marketing/audiences/new", {"name": "May", "birthday_month": "5", "levels": ["standard"],
                                             "op": "count"})
    assert "Champions" in text(ui.get("/marketing/audiences/new"))  # RFM groups are a filter too
    assert r.status_code == 200 and "1 members match now." in text(r)
    live = ui.post("/marketing/audiences/new", {"name": "", "birthday_month": "6", "op": "count"},
                   headers={"Accept": "application/json"})
    assert live.status_code == 200 and live.json == {"count": 1, "text": "1 members match now."}
    live = ui.post("/marketing/audiences/new", {"name": "", "spend_min": "x", "op": "count"},
                   headers={"Accept": "application/json"})
    assert live.status_code == 422 and live.json["error"]
    assert "No audiences yet." in text(ui.get("/marketing/audiences"))
    ui.get("/marketing/audiences/new")
    r = ui.post("/marketing/audiences/new", {"name": "May", "spend_min": "abc", "op": "save"})
    assert r.status_code == 422 and _error_beside(text(r), "spend_min")
    ui.get("/marketing/audiences/new")
    r = ui.post("/marketing/audiences/new", {"name": "May", "birthday_month": "5", "consent": "sms", "op": "save"})
    assert r.status_code == 302
    listing = text(ui.get("/marketing/audiences"))
    assert "May" in listing and re.search(r'class="num">1<', listing)
    assert "Birthday month: 5" in listing and "Agreed to: SMS" in listing


def test_campaign_from_form_to_outbox(app, staff, member_factory):
    member = member_factory(name="王芳", gender="female", marketing_consent={"sms": True, "email": False})
    member_factory(name="李雷")  # agreed to nothing
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    ui.post("/marketing/templates", {"name": "问候", "subject": "", "body": "{{ name }}{{ title }}，新品上市"})
    ui.get("/marketing/campaigns/new")
    r = ui.post("/marketing/campaigns/new", {"name": "新品", "template_id": "", "channel": "outbox",
                                             "schedule": "once", "send_at": "2027-05-01T10:00", "marketing": "on"})
    assert r.status_code == 422 and _error_beside(text(r), "template_id")
    with app.app_context():
        from crm.campaigns.models import MessageTemplate
        template_id = db.session.scalar(select(MessageTemplate.id).where(MessageTemplate.name == "问候"))
    r = ui.post("/marketing/campaigns/new", {"name": "新品", "template_id": str(template_id), "channel": "outbox",
                                             "schedule": "once", "send_at": "2027-05-01T10:00", "marketing": "on"})
    assert r.status_code == 302, text(r)[:2000]
    page = text(ui.get(r.headers["Location"]))
    assert "2 members in the audience now." in page and "王芳女士，新品上市" in page
    campaign_id = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    with app.app_context():
        saved = db.session.get(Campaign, campaign_id)
        assert saved.send_at.astimezone(timezone.utc) == datetime(2027, 5, 1, 2, 0, tzinfo=timezone.utc)
    r = ui.post(f"/marketing/campaigns/{campaign_id}/action", {"action": "schedule"})
    assert r.status_code == 302
    assert "Campaign scheduled." in text(ui.get(r.headers["Location"]))
    with app.app_context():
        jobs.tick(datetime(2027, 5, 1, 2, 1, tzinfo=timezone.utc))
    skipped = text(ui.get("/marketing/outbox?status=skipped"))
    assert "No consent for this channel" in skipped  # the member without consent, in words
    outbox = text(ui.get("/marketing/outbox?status=sent"))
    assert "王芳女士，新品上市" in outbox and member["mobile"][-4:] in outbox
    assert "No messages." in text(ui.get("/marketing/outbox?status=failed"))
    r = ui.post(f"/marketing/campaigns/{campaign_id}/action", {"action": "schedule"})
    assert "cannot be done now" in text(ui.get(r.headers["Location"]))


def test_holiday_calendar_page_and_one_off_dates(app, staff):
    ui = ui_login(app, staff["marketing"])  # Chinese by default
    page = text(ui.get("/marketing/holidays?year=2027"))
    assert "2027-09-15" in page and "中秋节" in page
    r = ui.post("/marketing/holidays?year=2027", {"name": "十周年店庆", "key": "Bad Key", "date": "2027-03-18"})
    assert r.status_code == 422 and _error_beside(text(r), "key")
    r = ui.post("/marketing/holidays?year=2027", {"name": "十周年店庆", "key": "anniversary", "date": "2027-03-18"})
    assert r.status_code == 302
    assert "十周年店庆" in text(ui.get("/marketing/holidays?year=2027"))


def test_the_marketing_tab_is_shown_to_marketing_not_to_cashiers(app, staff):
    assert "/marketing/" in text(ui_login(app, staff["marketing"]).get("/"))
    assert "/marketing/" not in text(ui_login(app, staff["cashier"]).get("/"))


def test_the_member_page_lists_the_messages_the_member_was_sent(app, staff, member_factory, login_api):
    m = member_factory(name="王芳", gender="female", marketing_consent={"sms": True, "email": False})
    marketing = login_api("marketing")
    t = marketing.post("/api/v1/message-templates",
                       json={"name": "问候", "body": "{{ name }}{{ title }}，新品上市"}).json
    c = marketing.post("/api/v1/campaigns", json={"name": "新品", "template_id": t["id"], "channel": "outbox",
                                                  "schedule": "once", "send_at": "2027-05-01T10:00:00+08:00"}).json
    marketing.post(f"/api/v1/campaigns/{c['id']}/actions", json={"action": "schedule"})
    with app.app_context():
        jobs.tick(datetime(2027, 5, 1, 2, 1, tzinfo=timezone.utc))
    page = text(ui_login(app, staff["front_desk"], lang="en").get(f"/members/{m['id']}"))
    assert "Messages" in page and "王芳女士，新品上市" in page and "Sent" in page


def test_marketing_pages_say_plainly_when_no_scheduler_is_running(app, staff, clock):
    from datetime import timedelta

    from crm.campaigns.leases import Lease
    from crm.core.timeutil import utcnow
    ui = ui_login(app, staff["marketing"], lang="en")
    page = text(ui.get("/marketing/"))
    assert "The scheduler is not running." in page and "It has never run on this database." in page
    with app.app_context():
        assert Lease(holder="sched-1", seconds=15).acquire()
        db.session.remove()
    for path in ("/marketing/", "/marketing/outbox", "/marketing/audiences"):
        assert "scheduler-down" not in text(ui.get(path))  # it renewed a moment ago
    clock.set(utcnow() + timedelta(seconds=59))
    assert "scheduler-down" not in text(ui.get("/marketing/"))  # a few missed renewals: a failover, no alarm
    clock.set(utcnow() + timedelta(seconds=2))
    page = text(ui.get("/marketing/outbox"))
    assert "The scheduler is not running." in page and "Last seen" in page
    assert ui.client.get("/readyz").json["scheduler"] == "not_running"


def _template(app, name):
    from crm.campaigns.models import MessageTemplate
    with app.app_context():
        return db.session.scalar(select(MessageTemplate.id).where(MessageTemplate.name == name))


def test_an_sms_gateway_nobody_set_up_is_said_in_plain_words(app, staff, member_factory, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_GATEWAY_URL", "")
    member_factory(marketing_consent={"sms": True, "email": False})
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    ui.post("/marketing/templates", {"name": "问候", "subject": "", "body": "{{ name }}{{ title }}，新品上市"})
    ui.get("/marketing/campaigns/new")
    r = ui.post("/marketing/campaigns/new", {"name": "新品", "template_id": str(_template(app, "问候")),
                                             "channel": "sms", "schedule": "once", "send_at": "2027-05-01T10:00"})
    assert r.status_code == 302, text(r)[:2000]
    campaign_id = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    r = ui.post(f"/marketing/campaigns/{campaign_id}/test-send", {"address": "13900001111"})
    page = text(ui.get(r.headers["Location"]))
    assert "SMS sending is not set up yet — ask your administrator." in page
    assert "SMS_GATEWAY_URL" not in page and "not configured" not in page
    ui.post(f"/marketing/campaigns/{campaign_id}/action", {"action": "schedule"})
    with app.app_context():
        jobs.tick(datetime(2027, 5, 1, 2, 1, tzinfo=timezone.utc))
    outbox = text(ui.get("/marketing/outbox?status=failed"))
    assert outbox.count("SMS sending is not set up yet") == 2  # the test and the member's message
    assert "SMS_GATEWAY_URL" not in outbox
    # The detail stays for whoever fixes the set-up: a manager's outbox, the API's reason, the stored row.
    manager_outbox = text(ui_login(app, staff["manager"], lang="en").get("/marketing/outbox?status=failed"))
    assert "SMS sending is not set up yet" in manager_outbox and "SMS_GATEWAY_URL" in manager_outbox


def test_a_template_error_says_what_is_wrong_and_on_which_line(app, staff):
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    r = ui.post("/marketing/templates", {"name": "坏", "subject": "",
                                         "body": "{{ name }}{{ title }}：\n{% if coupon %}送您{{ coupon.name }}"})
    assert r.status_code == 422
    error = _error_beside(text(r), "body")
    assert "(line 2)" in error and "is not closed" in error and "{% endif %}" in error, error
    assert "Jinja" not in text(r) and "Unexpected end of template" not in text(r)
    ui.get("/marketing/templates")
    r = ui.post("/marketing/templates", {"name": "坏", "subject": "{{ name }", "body": "{{ name }}"})
    error = _error_beside(text(r), "subject")
    assert r.status_code == 422 and "(line 1)" in error and "“}” is not expected here" in error, error


def test_the_campaign_form_shows_each_schedules_fields_under_its_heading_and_reads_only_the_chosen(app, staff):
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    ui.post("/marketing/templates", {"name": "问候", "subject": "", "body": "{{ name }}"})
    page = text(ui.get("/marketing/campaigns/new"))
    groups = re.findall(r'<fieldset class="schedule-group" data-schedules="([^"]+)">\s*<legend>([^<]+)</legend>', page)
    assert groups == [("once", "Once"), ("recurring", "Recurring"), ("holiday", "On a holiday"),
                      ("holiday birthday", "Holiday and birthday sends"),
                      ("recurring holiday birthday", "Recurring, holiday and birthday sends")]
    assert "/static/campaigns.js" in page  # hides the groups of the schedules not chosen
    assert len(re.findall(r'id="f-send_time"', page)) == 1  # each field once: labels point at the right one
    form = {"name": "每周问候", "template_id": str(_template(app, "问候")), "channel": "outbox",
            "schedule": "recurring", "recurrence": "weekly", "send_time": "10:00",
            "send_at": "not a date", "holiday_key": "no_such_day", "days_before": "many"}  # other schedules' leftovers
    r = ui.post("/marketing/campaigns/new", form)
    assert r.status_code == 302, _error_beside(text(r), "send_at") or text(r)[:2000]
    campaign_id = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    with app.app_context():
        saved = db.session.get(Campaign, campaign_id)
        assert (saved.recurrence, saved.send_at, saved.holiday_key, saved.days_before) == ("weekly", None, None, 0)
    r = ui.post(f"/marketing/campaigns/{campaign_id}", {**form, "schedule": "once", "send_at": "",
                                                        "recurrence": ""})
    assert r.status_code == 422 and _error_beside(text(r), "send_at")  # the chosen schedule's fields are checked


def test_an_sms_campaign_page_previews_no_email_subject(app, staff, member_factory):
    member_factory(name="王芳", gender="female")
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    ui.post("/marketing/templates", {"name": "问候", "subject": "邮件标题：新品",
                                     "body": "{{ name }}{{ title }}，新品上市"})
    ui.get("/marketing/campaigns/new")
    r = ui.post("/marketing/campaigns/new", {"name": "新品", "template_id": str(_template(app, "问候")),
                                             "channel": "sms", "schedule": "once", "send_at": "2027-05-01T10:00"})
    page = text(ui.get(r.headers["Location"]))
    assert "王芳女士，新品上市" in page and "邮件标题：新品" not in page


@pytest.mark.clock_at(datetime(2027, 4, 30, 2, 0, tzinfo=timezone.utc))  # 30 April, 10:00 in Beijing: a month's end
def test_the_template_pages_sample_coupon_does_not_expire_today(app, staff):
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    body = "{% if coupon %}{{ coupon.name }}：{{ coupon.valid_until }}前有效{% endif %}"
    r = ui.post("/marketing/templates", {"name": "券", "subject": "", "body": body})
    page = text(ui.get(r.headers["Location"]))
    assert "示例优惠券：2027-05-29前有效" in page and "2027-04-30" not in page
