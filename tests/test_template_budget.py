"""Message templates are user code run once per member: one that would hold a worker (loops,
recursion) or fill its memory ('x' * 10**8) is refused with a 422 when it is saved, in the API
and in the form, and fails only its own deliveries at send time, even when it was written
straight into the database. Ordinary greetings still read as before."""
import re

import pytest
from sqlalchemy import select, update

from crm.campaigns import messages
from crm.campaigns.models import Campaign, Delivery, MessageTemplate
from crm.errors import Invalid
from crm.extensions import db
from tests.test_campaign_sending import at_shanghai, campaign, deliveries, tick
from tests.test_ui import text, ui_login

pytestmark = pytest.mark.clock_at(at_shanghai(2026, 12, 1, 10, 0))  # campaigns scheduled before their send

COSTLY, LONG = "template_too_costly", "template_too_long"
OVER_BUDGET = [
    ("{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}", COSTLY),
    ("{{ 'x'*100000000 }}", LONG),
    ('{{ "x" * 10**9 }}', COSTLY),
    ("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}", COSTLY),  # recursion, doubling each level
    ("{% for i in range(100000) %}{{ name }}{{ 'x' * 1000 }}{% endfor %}", COSTLY),  # huge output by a loop
    ("{{ " + " ~ ".join(["'x' * 1000"] * 30) + " }}", LONG),  # 30,000 characters without a loop
    ("{{ name|center(1000000000) }}", COSTLY),  # a filter that pads
    ("{{ name.ljust(1000000000) }}", COSTLY),  # a method that pads
    ("{{ '%0999999999d' % points }}", COSTLY),  # printf padding
    ("{% set a = name ~ name %}{% set b = a ~ a %}{{ b ~ b }}", COSTLY),  # doubling through variables
    ("{% if coupon %}" * 60 + "x" + "{% endif %}" * 60, COSTLY),  # nested too deep
    ("您好" * 6000, LONG),  # longer than a template may be
    ('{{ ((("a",)*1000,)*1000,)*1000 == ((("a",)*1000,)*1000,)*1000 }}', COSTLY),  # nested sequences multiply
    ("{{ ((('xxxxxxxxxx',)*1000,)*1000,)*1000 }}", COSTLY),  # gigabytes of tuples
    ("{% if name in ['王芳', '李雷'] %}x{% endif %}", COSTLY),  # no list literals at all
    ("{{ name.format }}", COSTLY),  # a method's repr, memory address included
]


def _error_beside(page: str, field: str) -> str:
    match = re.search(rf'id="e-{field}">([^<]+)<', page)
    return match[1] if match else ""


def test_ordinary_greetings_still_render_with_every_field(app, marketing, member_factory):
    m = member_factory(name="王芳", gender="female", marketing_consent={"sms": True, "email": False})
    body = ("{{ name }}{{ title }}，{{ store }}{{ level }}{% if points > 1000 %}贵宾{% elif points is even %}，"
            "积分 {{ points }}{% endif %}，余额 {{ wallet }}元 {{ '★' * 3 }} {{ name|first }}"
            "{% if coupon %}{{ coupon.name|upper }}{% else %}{{ coupon|default('无券', true) }}{% endif %}")
    r = marketing.post("/api/v1/message-templates", json={"name": "日常", "subject": "{{ name|truncate(9) }}",
                                                          "body": body})
    assert r.status_code == 201, r.json
    c = marketing.post("/api/v1/campaigns", json={"name": "c", "template_id": r.json["id"], "schedule": "once",
                                                  "send_at": "2030-01-01T10:00:00+08:00"}).json
    preview = marketing.get(f"/api/v1/campaigns/{c['id']}/preview").json
    (sample,) = preview["samples"]
    assert sample["member_id"] == m["id"] and sample["subject"] == "王芳"
    assert sample["body"].startswith("王芳女士，朝阳店") and sample["body"].endswith("，积分 0，余额 0.00元 ★★★ 王无券")


@pytest.mark.parametrize("create", [True, False], ids=["create", "update"])
def test_a_template_over_budget_is_refused_by_the_api(marketing, stores, create):
    good = marketing.post("/api/v1/message-templates", json={"name": "好", "body": "{{ name }}，您好"}).json
    for body, code in OVER_BUDGET:
        r = (marketing.post("/api/v1/message-templates", json={"name": "坏", "body": body}) if create else
             marketing.patch(f"/api/v1/message-templates/{good['id']}", json={"body": body}))
        assert r.status_code == 422, (body[:60], r.json)
        assert (r.json["error"]["code"], r.json["error"]["details"]["field"]) == (code, "body"), body[:60]
    saved = marketing.get("/api/v1/message-templates").json
    assert [(t["name"], t["body"]) for t in saved] == [("好", "{{ name }}，您好")]
    r = marketing.post("/api/v1/message-templates", json={"name": "题", "subject": "{{ 'x' * 100000 }}", "body": "x"})
    assert (r.status_code, r.json["error"]["code"], r.json["error"]["details"]["field"]) == (422, LONG, "subject")


def test_a_template_over_budget_shows_its_error_beside_the_message_in_the_form(app, staff):
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get("/marketing/templates")
    for body, _code in OVER_BUDGET:
        r = ui.post("/marketing/templates", {"name": "坏", "subject": "", "body": body})
        assert r.status_code == 422, body[:60]
        assert _error_beside(text(r), "body").startswith("The template cannot be used"), body[:60]
    loop = ui.post("/marketing/templates", {"name": "坏", "subject": "", "body": OVER_BUDGET[0][0]})
    assert "loops" in _error_beside(text(loop), "body")  # says what to take out
    with app.app_context():
        assert db.session.scalars(select(MessageTemplate)).all() == []


def _write_in_database(app, template_id, body):
    """What no form lets through: a template changed behind the application's back."""
    with app.app_context():
        db.session.execute(update(MessageTemplate).where(MessageTemplate.id == template_id).values(body=body))
        db.session.commit()


def test_a_costly_template_in_the_database_fails_only_its_own_deliveries(app, marketing, member_factory):
    people = [member_factory(marketing_consent={"sms": True, "email": False}) for _ in range(2)]
    bad = campaign(marketing, channel="outbox", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    good = campaign(marketing, channel="outbox", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    with app.app_context():
        bad_template = db.session.get(Campaign, bad).template_id
    _write_in_database(app, bad_template, OVER_BUDGET[0][0])  # nested loops: 10^10 steps if they ran

    tick(app, at_shanghai(2027, 5, 1, 10, 0))  # the scheduler comes back, and the other campaign goes out
    failed = deliveries(app, campaign_id=bad)
    assert sorted(d.member_id for d in failed) == sorted(p["id"] for p in people)
    assert {d.status for d in failed} == {"failed"}
    assert all(d.reason.startswith("template_too_costly: ") and d.body == "" for d in failed)
    assert {(d.status, d.body) for d in deliveries(app, campaign_id=good)} == {("sent", f"{p['name']}，您好。回TD退订")
                                                                                for p in people}
    assert marketing.get(f"/api/v1/deliveries?campaign_id={bad}").json["items"][0]["status"] == "failed"


@pytest.mark.parametrize("body, code", [OVER_BUDGET[1], OVER_BUDGET[3], OVER_BUDGET[-1]])
def test_preview_test_send_and_the_template_page_refuse_a_costly_template_from_the_database(
        app, staff, marketing, member_factory, body, code):
    member_factory()
    cid = campaign(marketing, channel="outbox", schedule="once", send_at="2030-05-01T10:00:00+08:00")
    with app.app_context():
        template_id = db.session.get(Campaign, cid).template_id
    _write_in_database(app, template_id, body)

    r = marketing.get(f"/api/v1/campaigns/{cid}/preview")
    assert (r.status_code, r.json["error"]["code"], r.json["error"]["details"]["field"]) == (422, code,
                                                                                           "template.body")
    r = marketing.post(f"/api/v1/campaigns/{cid}/test-sends", json={"address": "139 0000 1111"})
    assert (r.status_code, r.json["error"]["code"]) == (422, code)
    assert marketing.post(f"/api/v1/campaigns/{cid}/actions", json={"action": "pause"}).status_code == 200
    assert marketing.post(f"/api/v1/campaigns/{cid}/actions", json={"action": "resume"}).json["error"]["code"] \
        == code  # nor can it be resumed
    ui = ui_login(app, staff["marketing"], lang="en")
    page = ui.get(f"/marketing/templates/{template_id}")
    assert page.status_code == 200 and _error_beside(text(page), "body").startswith("The template cannot be used")
    page = ui.get(f"/marketing/campaigns/{cid}")
    assert page.status_code == 200 and "The template cannot be used" in text(page)
    with app.app_context():
        assert db.session.scalars(select(Delivery).where(Delivery.campaign_id == cid)).all() == []


def test_the_render_has_a_wall_clock_budget(app, monkeypatch):
    """The last line of defence, for what the language still allows: a negative budget is always spent."""
    with app.test_request_context():
        assert messages.render("{{ name }}，您好", messages.sample_context(False)) == "王芳，您好"
        monkeypatch.setattr(messages, "RENDER_SECONDS", -1.0)
        with pytest.raises(Invalid) as caught:
            messages.render("{{ name }}，您好", messages.sample_context(False))
        assert caught.value.code == COSTLY


def test_output_is_counted_as_it_streams(app, monkeypatch):
    monkeypatch.setattr(messages, "MAX_OUTPUT", 10)
    with app.test_request_context():
        assert messages.render("{{ name }}" * 5, messages.sample_context(False)) == "王芳" * 5
        with pytest.raises(Invalid) as caught:
            messages.render("{{ name }}" * 6, messages.sample_context(False))
        assert caught.value.code == LONG
