"""Holidays, audiences, templates and campaign states through the API."""
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.conftest import audit_problems

# Checked by hand against the State Council / Hong Kong Observatory published calendars.
LUNAR = {  # year: (春节, 元宵, 端午, 七夕, 中秋, 重阳)
    2024: ("2024-02-10", "2024-02-24", "2024-06-10", "2024-08-10", "2024-09-17", "2024-10-11"),
    2025: ("2025-01-29", "2025-02-12", "2025-05-31", "2025-08-29", "2025-10-06", "2025-10-29"),
    2026: ("2026-02-17", "2026-03-03", "2026-06-19", "2026-08-19", "2026-09-25", "2026-10-18"),
    2027: ("2027-02-06", "2027-02-20", "2027-06-09", "2027-08-08", "2027-09-15", "2027-10-08"),
    2028: ("2028-01-26", "2028-02-09", "2028-05-28", "2028-08-26", "2028-10-03", "2028-10-26"),
    2029: ("2029-02-13", "2029-02-27", "2029-06-16", "2029-08-16", "2029-09-22", "2029-10-16"),
    2030: ("2030-02-03", "2030-02-17", "2030-06-05", "2030-08-05", "2030-09-12", "2030-10-05"),
}
MOTHERS_FATHERS = {2024: ("2024-05-12", "2024-06-16"), 2025: ("2025-05-11", "2025-06-15"),
                   2026: ("2026-05-10", "2026-06-21"), 2027: ("2027-05-09", "2027-06-20"),
                   2028: ("2028-05-14", "2028-06-18"), 2029: ("2029-05-13", "2029-06-17"),
                   2030: ("2030-05-12", "2030-06-16")}
LUNAR_KEYS = ("spring_festival", "lantern", "dragon_boat", "qixi", "mid_autumn", "double_ninth")


@pytest.mark.parametrize("year", sorted(LUNAR))
def test_holiday_calendar_matches_the_published_dates(marketing, year):
    r = marketing.get(f"/api/v1/holidays?year={year}")
    assert r.status_code == 200, r.json
    by_key = {h["key"]: h["date"] for h in r.json}
    assert [by_key[k] for k in LUNAR_KEYS] == list(LUNAR[year])
    assert (by_key["mothers_day"], by_key["fathers_day"]) == MOTHERS_FATHERS[year]
    assert (by_key["new_year"], by_key["valentines"], by_key["labour_day"], by_key["national_day"]) == (
        f"{year}-01-01", f"{year}-02-14", f"{year}-05-01", f"{year}-10-01")
    assert [h["date"] for h in r.json] == sorted(h["date"] for h in r.json)


def test_one_off_holidays_join_their_year_only(marketing):
    r = marketing.post("/api/v1/holidays", json={"key": "store_anniversary", "name": "十周年店庆",
                                                 "date": "2027-03-18"})
    assert r.status_code == 201, r.json
    assert any(h["key"] == "store_anniversary" and h["date"] == "2027-03-18"
               for h in marketing.get("/api/v1/holidays?year=2027").json)
    assert not any(h["key"] == "store_anniversary" for h in marketing.get("/api/v1/holidays?year=2026").json)
    again = marketing.post("/api/v1/holidays", json={"key": "store_anniversary", "name": "x", "date": "2027-05-01"})
    assert again.status_code == 409 and again.json["error"]["code"] == "holiday_exists"
    clash = marketing.post("/api/v1/holidays", json={"key": "mid_autumn", "name": "x", "date": "2027-05-01"})
    assert clash.status_code == 409
    bad = marketing.post("/api/v1/holidays", json={"key": "Bad Key!", "name": "x", "date": "2027-05-01"})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_key"


@pytest.mark.parametrize("query", ["year=1800", "year=abc", ""])
def test_holidays_need_a_sensible_year(marketing, query):
    r = marketing.get(f"/api/v1/holidays?{query}")
    assert r.status_code == 422


def test_audience_filters_count_the_right_members(app, marketing, member_factory, catalogue, issue_card, checkout,
                                                  store_today):
    a = member_factory(birthday="1990-05-10", marketing_consent={"sms": True, "email": False}, tags=["vip"])
    b = member_factory(birthday="1985-05-20", marketing_consent={"sms": False, "email": True},
                       email="b@example.com", store_code="BJ02")
    member_factory(birthday="1991-06-01")
    issue_card(a["id"])
    assert checkout([("SALMON", 2)], member_id=a["id"]).status_code == 201  # spends 136.00

    def count(**filters):
        r = marketing.post("/api/v1/audiences/count", json=filters)
        assert r.status_code == 200, r.json
        return r.json["count"]

    assert count() == 3
    assert count(birthday_month=5) == 2
    assert count(consent="sms") == 1 and count(consent="email") == 1 and count(consent="any") == 2
    assert count(tags=["vip"]) == 1
    assert count(stores=["BJ02"]) == 1
    assert count(spend_min="100.00") == 1
    assert count(spend_max="100.00") == 2  # b and the third member never spent
    assert count(last_visit_after=(date.fromisoformat(store_today) - timedelta(days=365)).isoformat()) == 1
    assert count(levels=["standard"], birthday_month=5, consent="any") == 2
    saved = marketing.post("/api/v1/audiences", json={"name": "五月寿星", "filters": {"birthday_month": 5}})
    assert saved.status_code == 201 and saved.json["count"] == 2
    assert b["id"]


@pytest.mark.parametrize("filters, field", [
    ({"birthday_month": 13}, "birthday_month"),
    ({"levels": ["platinum"]}, "levels"),
    ({"stores": ["NOPE"]}, "stores"),
    ({"consent": "fax"}, "consent"),
    ({"spend_min": "-1.00"}, "spend_min"),
    ({"spend_min": "50.00", "spend_max": "10.00"}, "spend_max"),
])
def test_bad_audience_filters_are_422_naming_the_filter(marketing, stores, filters, field):
    r = marketing.post("/api/v1/audiences/count", json=filters)
    assert r.status_code == 422, r.json
    assert field in str(r.json["error"]["details"]) or r.json["error"].get("field", "").endswith(field)


@pytest.mark.parametrize("body, code", [
    ("{{ name }", "template_invalid"),              # syntax error
    ("您好 {{ nickname }}", "template_invalid"),     # not a member field
    ("{{ name.__class__.__mro__ }}", "template_invalid"),  # the sandbox refuses internals
    ("{% for x in range(10**9) %}{% endfor %}", "template_too_costly"),  # no loops in a message
])
def test_template_errors_are_caught_when_saved(marketing, stores, body, code):
    r = marketing.post("/api/v1/message-templates", json={"name": "坏模板", "body": body})
    assert r.status_code == 422, r.json
    assert r.json["error"]["code"] == code
    assert marketing.get("/api/v1/message-templates").json == []


def test_campaign_states_follow_the_transition_table(marketing, stores):
    t = marketing.post("/api/v1/message-templates", json={
        "name": "新品", "subject": "新品上市", "body": "{{ name }}{{ title }}，{{ store }}新品上市。回TD退订"})
    assert t.status_code == 201, t.json
    body = {"name": "新品推广", "template_id": t.json["id"], "channel": "sms", "schedule": "once",
            "send_at": "2030-01-01T10:00:00+08:00"}
    c = marketing.post("/api/v1/campaigns", json=body)
    assert c.status_code == 201 and c.json["state"] == "draft", c.json
    cid = c.json["id"]
    act = lambda action: marketing.post(f"/api/v1/campaigns/{cid}/actions", json={"action": action})  # noqa: E731
    assert act("pause").status_code == 409
    assert act("schedule").json["state"] == "scheduled"
    assert act("schedule").json["error"]["code"] == "invalid_transition"
    assert act("resume").status_code == 409  # only a paused campaign resumes
    assert act("pause").json["state"] == "paused"
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "paused"
    assert act("schedule").json["error"]["code"] == "invalid_transition"  # a paused campaign is resumed, not re-planned
    assert act("pause").status_code == 409
    assert act("resume").json["state"] == "scheduled"  # nothing of it had started
    assert act("pause").json["state"] == "paused"
    assert marketing.patch(f"/api/v1/campaigns/{cid}", json={"name": "新品推广（改）"}).status_code == 200
    assert act("cancel").json["state"] == "cancelled"
    assert marketing.patch(f"/api/v1/campaigns/{cid}", json={"name": "x"}).json["error"]["code"] == "campaign_closed"


@pytest.mark.parametrize("change, field", [
    ({"schedule": "once", "send_at": None}, "send_at"),
    ({"schedule": "recurring"}, "recurrence"),
    ({"schedule": "holiday", "holiday_key": "no_such_day"}, "holiday_key"),
    ({"send_at": "2030-01-01T10:00:00"}, "send_at"),
    ({"coupon_type_code": "NOPE"}, None),
])
def test_bad_campaigns_are_refused(marketing, stores, change, field):
    t = marketing.post("/api/v1/message-templates", json={"name": "t", "body": "{{ name }}"}).json
    body = {"name": "c", "template_id": t["id"], "schedule": "once", "send_at": "2030-01-01T10:00:00+08:00", **change}
    r = marketing.post("/api/v1/campaigns", json=body)
    assert r.status_code in (404, 422), r.json
    if field:
        assert field in str(r.json["error"])


def test_a_template_that_needs_a_coupon_is_refused_for_a_campaign_without_one(marketing, stores):
    t = marketing.post("/api/v1/message-templates", json={"name": "券", "body": "送您{{ coupon.name }}"}).json
    r = marketing.post("/api/v1/campaigns", json={"name": "c", "template_id": t["id"], "schedule": "once",
                                                  "send_at": "2030-01-01T10:00:00+08:00"})
    assert r.status_code == 422 and r.json["error"]["code"] == "template_invalid"


def test_preview_shows_the_count_and_rendered_messages(marketing, member_factory):
    member_factory(name="王芳", gender="female", marketing_consent={"sms": True, "email": False})
    member_factory(name="李雷", gender="male")
    t = marketing.post("/api/v1/message-templates", json={
        "name": "问候", "body": "{{ name }}{{ title }}您好，您有{{ points }}积分，储值余额{{ wallet }}元。"}).json
    c = marketing.post("/api/v1/campaigns", json={"name": "问候", "template_id": t["id"], "schedule": "once",
                                                  "send_at": "2030-01-01T10:00:00+08:00"}).json
    p = marketing.get(f"/api/v1/campaigns/{c['id']}/preview")
    assert p.status_code == 200, p.json
    assert p.json["count"] == 2
    assert p.json["samples"][0]["body"] == "王芳女士您好，您有0积分，储值余额0.00元。"
    assert p.json["samples"][1]["body"].startswith("李雷先生您好")


def test_the_birthday_greeting_is_built_in_and_off_until_scheduled(app, marketing, stores):
    listed = marketing.get("/api/v1/campaigns").json
    assert listed[0]["builtin"] == "birthday" and listed[0]["state"] == "draft"
    again = marketing.get("/api/v1/campaigns").json
    assert [c["id"] for c in again] == [c["id"] for c in listed]
    r = marketing.patch(f"/api/v1/campaigns/{listed[0]['id']}", json={"schedule": "once"})
    assert r.status_code == 422
    assert audit_problems(app) == []


def test_a_holiday_a_campaign_plans_on_cannot_be_removed(marketing, stores):
    h = marketing.post("/api/v1/holidays", json={"key": "anniversary", "name": "店庆", "date": "2027-03-18"}).json
    t = marketing.post("/api/v1/message-templates", json={"name": "t", "body": "{{ name }}"}).json
    c = marketing.post("/api/v1/campaigns", json={"name": "店庆问候", "template_id": t["id"], "schedule": "holiday",
                                                  "holiday_key": "anniversary"})
    assert c.status_code == 201, c.json
    r = marketing.delete(f"/api/v1/holidays/{h['id']}")
    assert r.status_code == 409 and r.json["error"]["code"] == "holiday_in_use"
    marketing.post(f"/api/v1/campaigns/{c.json['id']}/actions", json={"action": "cancel"})
    assert marketing.delete(f"/api/v1/holidays/{h['id']}").status_code == 204


def test_send_time_cannot_be_cleared(marketing, stores):
    t = marketing.post("/api/v1/message-templates", json={"name": "t", "body": "{{ name }}"}).json
    c = marketing.post("/api/v1/campaigns", json={"name": "c", "template_id": t["id"], "schedule": "recurring",
                                                  "recurrence": "weekly"}).json
    assert c["send_time"] == "09:00:00"
    r = marketing.patch(f"/api/v1/campaigns/{c['id']}", json={"send_time": None})
    assert r.status_code == 422


@pytest.mark.clock_at(datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc))  # 10:00 in Beijing
def test_preview_and_test_send_carry_this_campaigns_coupon_with_the_expiry_the_send_gives(app, marketing, login_api,
                                                                                         member_factory):
    """The Mother's Day test send once showed the birthday coupon's name, and previews gave today as the expiry."""
    member_factory(name="王芳", gender="female", birthday="1990-03-10")
    manager = login_api("manager")
    for code, name, days in (("BDAY", "生日蛋糕券", 30), ("MUM", "母亲节鲜花券", 7)):
        r = manager.post("/api/v1/coupon-types", json={"code": code, "name": name, "kind": "gift", "valid_days": days})
        assert r.status_code == 201, r.json
    body = ("{{ name }}{{ title }}{% if coupon %}：{{ coupon.name }}，{{ coupon.valid_until }}前有效{% endif %}"
            "。回TD退订")
    t = marketing.post("/api/v1/message-templates", json={"name": "送券", "body": body}).json
    birthday = marketing.get("/api/v1/campaigns").json[0]  # the built-in greeting, with the birthday coupon
    assert marketing.patch(f"/api/v1/campaigns/{birthday['id']}", json={"coupon_type_code": "BDAY",
                                                                       "template_id": t["id"]}).status_code == 200
    mum = marketing.post("/api/v1/campaigns", json={
        "name": "母亲节", "template_id": t["id"], "channel": "outbox", "coupon_type_code": "MUM",
        "schedule": "holiday", "holiday_key": "mothers_day", "days_before": 1, "send_time": "09:00:00"}).json

    # Mother's Day 2027 is 9 May: sent on the 8th, the flower coupon is good for 7 days from then.
    sample = marketing.get(f"/api/v1/campaigns/{mum['id']}/preview").json["samples"][0]
    assert sample["body"] == "王芳女士：母亲节鲜花券，2027-05-14前有效。回TD退订"
    sent = marketing.post(f"/api/v1/campaigns/{mum['id']}/test-sends", json={"address": "139 0000 1111"})
    assert sent.status_code == 201, sent.json
    assert sent.json["body"] == "王芳女士：母亲节鲜花券，2027-05-14前有效。回TD退订"

    # The birthday greeting: the member's next birthday month (March 2027), not today.
    sample = marketing.get(f"/api/v1/campaigns/{birthday['id']}/preview").json["samples"][0]
    assert sample["body"] == "王芳女士：生日蛋糕券，2027-03-31前有效。回TD退订"


def test_sms_previews_have_no_email_subject(app, marketing, member_factory):
    member_factory(name="王芳", gender="female")
    t = marketing.post("/api/v1/message-templates", json={"name": "新品", "subject": "新品上市（邮件标题）",
                                                          "body": "{{ name }}{{ title }}，新品上市。回TD退订"}).json

    def sample(channel):
        c = marketing.post("/api/v1/campaigns", json={"name": channel, "template_id": t["id"], "channel": channel,
                                                      "schedule": "once", "send_at": "2030-01-01T10:00:00+08:00"})
        return marketing.get(f"/api/v1/campaigns/{c.json['id']}/preview").json["samples"][0], c.json["id"]

    sms, sms_id = sample("sms")
    assert (sms["subject"], sms["body"]) == ("", "王芳女士，新品上市。回TD退订")
    email, _ = sample("email")
    assert email["subject"] == "新品上市（邮件标题）"
    sent = marketing.post(f"/api/v1/campaigns/{sms_id}/test-sends", json={"address": "139 0000 1111"}).json
    assert sent["subject"] == ""


@pytest.mark.parametrize("body, said, line", [
    ("您好\n{% if coupon %}送您{{ coupon.name }}", "“{% if %}” is not closed: add “{% endif %}”", 2),
    ("{{ name }", "“}” is not expected here", 1),
    ("您好\n\n{{ nickname }}", "“nickname” is not something a message can show", 3),
    ("{{ name|shout }}", "There is no filter called “shout”", 1),
    ("{% endif %}", "“{% endif %}” has no “{% if … %}” before it", 1),
])
def test_template_errors_are_said_in_plain_words_with_their_line(marketing, stores, body, said, line):
    r = marketing.post("/api/v1/message-templates", json={"name": "坏模板", "body": body},
                       headers={"Accept-Language": "en"})
    assert r.status_code == 422 and r.json["error"]["code"] == "template_invalid", r.json
    message = r.json["error"]["message"]
    assert said in message and f"(line {line})" in message, message
    for jinja_words in ("Jinja", "unexpected '", "is undefined", "No filter named", "Encountered unknown tag"):
        assert jinja_words not in message


def test_switching_schedule_leaves_none_of_the_old_schedules_settings(marketing, stores):
    h = marketing.post("/api/v1/holidays", json={"key": "anniversary", "name": "店庆", "date": "2027-03-18"}).json
    t = marketing.post("/api/v1/message-templates", json={"name": "t", "body": "{{ name }}"}).json
    c = marketing.post("/api/v1/campaigns", json={"name": "店庆问候", "template_id": t["id"], "schedule": "holiday",
                                                  "holiday_key": "anniversary", "days_before": 2}).json
    r = marketing.patch(f"/api/v1/campaigns/{c['id']}", json={"schedule": "once",
                                                              "send_at": "2030-01-01T10:00:00+08:00"})
    assert r.status_code == 200 and (r.json["holiday_key"], r.json["days_before"]) == (None, 0), r.json
    assert marketing.delete(f"/api/v1/holidays/{h['id']}").status_code == 204  # no longer planned on


def test_a_paused_campaign_still_holds_its_holiday(marketing, stores):
    h = marketing.post("/api/v1/holidays", json={"key": "anniversary", "name": "店庆", "date": "2027-03-18"}).json
    t = marketing.post("/api/v1/message-templates", json={"name": "t", "body": "{{ name }}"}).json
    c = marketing.post("/api/v1/campaigns", json={"name": "店庆问候", "template_id": t["id"], "schedule": "holiday",
                                                  "holiday_key": "anniversary"}).json
    for action in ("schedule", "pause"):
        assert marketing.post(f"/api/v1/campaigns/{c['id']}/actions", json={"action": action}).status_code == 200
    r = marketing.delete(f"/api/v1/holidays/{h['id']}")
    assert r.status_code == 409 and r.json["error"]["code"] == "holiday_in_use"  # it will send again on resume
