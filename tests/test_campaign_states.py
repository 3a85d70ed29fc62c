"""Pause and resume: a paused campaign is neither fanned out nor sent; resumed, it carries on
where it stopped and nobody gets a message twice. On a fixed clock, with the loopback SMS gateway."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crm.campaigns import fanout
from crm.campaigns.models import Campaign, CampaignRun
from crm.extensions import db
from tests.test_campaign_sending import SMS, at_shanghai, campaign, deliveries, tick
from tests.test_ui import text, ui_login

pytestmark = pytest.mark.clock_at(at_shanghai(2026, 12, 1, 10, 0))


def act(api, campaign_id, action):
    return api.post(f"/api/v1/campaigns/{campaign_id}/actions", json={"action": action})


def test_pausing_before_the_send_time_holds_it_and_resume_sends_it_once(app, marketing, member_factory, gateway):
    people = [member_factory(marketing_consent=SMS) for _ in range(3)]
    cid = campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    r = act(marketing, cid, "pause")
    assert r.status_code == 200 and r.json["state"] == "paused"
    assert marketing.get(f"/api/v1/campaigns/{cid}/preview").json["next_run"] is None  # nothing planned now

    tick(app, at_shanghai(2027, 5, 1, 10, 5))
    tick(app, at_shanghai(2027, 5, 1, 11, 0))
    assert deliveries(app) == [] and gateway.received == []  # not even queued

    r = act(marketing, cid, "resume")
    assert r.status_code == 200 and r.json["state"] == "scheduled"  # nothing of it had started
    tick(app, at_shanghai(2027, 5, 1, 11, 5))
    assert gateway.to() == sorted(p["mobile"] for p in people)
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "done"
    tick(app, at_shanghai(2027, 5, 1, 12, 0))
    assert len(gateway.received) == 3 and len(deliveries(app)) == 3


def test_a_campaign_paused_half_way_through_its_fan_out_resumes_after_the_last_member_it_queued(
        app, marketing, member_factory, gateway, monkeypatch):
    monkeypatch.setitem(app.config, "FANOUT_BATCH", 2)
    people = [member_factory(marketing_consent=SMS) for _ in range(5)]
    cid = campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    real_batch, calls = fanout.queue_batch, []

    def batch_then_pause(*args, **kwargs):
        """Marketing presses Pause while the first batch is being written."""
        calls.append(1)
        result = real_batch(*args, **kwargs)
        if len(calls) == 1:
            db.session.execute(update(Campaign).where(Campaign.id == cid).values(state="paused"))
        return result
    monkeypatch.setattr(fanout, "queue_batch", batch_then_pause)

    t0 = at_shanghai(2027, 5, 1, 10, 0)
    tick(app, t0)
    assert len(deliveries(app)) == 2  # one batch queued, then it stopped
    assert gateway.received == []  # and what was queued waits too
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "paused"
    tick(app, t0 + timedelta(minutes=30))
    assert len(deliveries(app)) == 2 and gateway.received == []

    r = act(marketing, cid, "resume")
    assert r.status_code == 200 and r.json["state"] == "running"  # an occurrence had started
    tick(app, t0 + timedelta(minutes=45))
    assert gateway.to() == sorted(p["mobile"] for p in people)  # each member once: the rest, then the queued
    assert sorted(d.member_id for d in deliveries(app)) == sorted(p["id"] for p in people)
    with app.app_context():
        run = db.session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == cid))
        assert (run.status, run.queued) == ("done", 5)
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "done"
    tick(app, t0 + timedelta(hours=2))
    assert len(gateway.received) == 5


def test_a_paused_recurring_campaign_skips_nothing_and_repeats_nothing(app, marketing, member_factory, gateway):
    m = member_factory(marketing_consent=SMS)
    cid = campaign(marketing, channel="sms", schedule="recurring", recurrence="daily", starts_on="2027-05-03",
                   send_time="10:00:00")
    tick(app, at_shanghai(2027, 5, 3, 10, 5))
    assert len(gateway.received) == 1
    assert act(marketing, cid, "pause").json["state"] == "paused"
    tick(app, at_shanghai(2027, 5, 4, 10, 5))  # the 4th falls due while paused
    assert len(gateway.received) == 1
    assert act(marketing, cid, "resume").json["state"] == "running"
    tick(app, at_shanghai(2027, 5, 4, 15, 0))  # sent once it is resumed, as after a scheduler outage
    tick(app, at_shanghai(2027, 5, 5, 10, 5))
    tick(app, at_shanghai(2027, 5, 5, 10, 6))
    assert [d.occurrence for d in deliveries(app)] == ["2027-05-03", "2027-05-04", "2027-05-05"]
    assert gateway.to() == [m["mobile"]] * 3


def test_cancelling_a_paused_campaign_drops_what_was_waiting(app, marketing, member_factory, gateway):
    member_factory(marketing_consent=SMS)
    cid = campaign(marketing, channel="sms", schedule="recurring", recurrence="daily", starts_on="2027-05-03",
                   send_time="22:00:00")
    tick(app, at_shanghai(2027, 5, 3, 22, 5))  # queued for after the quiet hours
    assert act(marketing, cid, "pause").json["state"] == "paused"
    assert act(marketing, cid, "schedule").json["error"]["code"] == "invalid_transition"
    assert act(marketing, cid, "cancel").json["state"] == "cancelled"
    r = marketing.post(f"/api/v1/campaigns/{cid}/actions", json={"action": "resume"}, headers={"Accept-Language": "en"})
    assert (r.status_code, r.json["error"]["message"]) == (409, "That cannot be done now: the campaign is “Cancelled”.")
    tick(app, at_shanghai(2027, 5, 4, 8, 5))
    assert gateway.received == []
    assert [(d.status, d.reason) for d in deliveries(app)] == [("skipped", "campaign_cancelled")]


def test_the_api_document_lists_the_paused_state_and_the_resume_action(client):
    doc = client.get("/api/v1/openapi.json").json
    schemas = doc["components"]["schemas"]
    assert "resume" in schemas["Action"]["properties"]["action"]["enum"]
    assert "paused" in schemas["Campaign"]["properties"]["state"]["enum"]
    assert "resume" in doc["paths"]["/api/v1/campaigns/{campaign_id}/actions"]["post"]["description"]


def test_marketing_pauses_and_resumes_on_the_campaign_page(app, staff, marketing, member_factory):
    cid = campaign(marketing, channel="outbox", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get(f"/marketing/campaigns/{cid}")
    r = ui.post(f"/marketing/campaigns/{cid}/action", {"action": "pause"})
    page = text(ui.get(r.headers["Location"]))
    assert "Campaign paused" in page and "Paused" in page and 'value="resume"' in page
    assert 'value="pause"' not in page and 'value="schedule"' not in page
    assert "nothing of this campaign is queued or sent until you resume it" in page
    assert not re.search(r'<fieldset class="bare"\s*disabled', page)  # paused to be fixed: still editable
    form = {"name": "改好了", "template_id": str(marketing.get(f"/api/v1/campaigns/{cid}").json["template_id"]),
            "channel": "outbox", "schedule": "once", "send_at": "2027-05-01T11:00"}
    assert ui.post(f"/marketing/campaigns/{cid}", form).status_code == 302
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "paused"  # an edit does not resume it
    assert "Paused" in text(ui.get("/marketing/"))  # the list says so too
    r = ui.post(f"/marketing/campaigns/{cid}/action", {"action": "resume"})
    page = text(ui.get(r.headers["Location"]))
    assert "Campaign resumed" in page and 'value="pause"' in page


def test_resume_says_why_when_the_template_broke_meanwhile(app, staff, marketing):
    from crm.campaigns.models import MessageTemplate
    cid = campaign(marketing, channel="outbox", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    assert act(marketing, cid, "pause").status_code == 200
    with app.app_context():  # changed behind the application's back (a restore, a hand edit)
        template_id = db.session.get(Campaign, cid).template_id
        db.session.execute(update(MessageTemplate).where(MessageTemplate.id == template_id)
                           .values(body="您好\n{{ nickname }}"))
        db.session.commit()
    ui = ui_login(app, staff["marketing"], lang="en")
    ui.get(f"/marketing/campaigns/{cid}")
    r = ui.post(f"/marketing/campaigns/{cid}/action", {"action": "resume"})
    page = text(ui.get(r.headers["Location"]))
    assert "The template cannot be used (line 2): “nickname” is not something a message can show." in page
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "paused"


def test_cancel_without_javascript_asks_on_a_page_first(app, staff, marketing):
    cid = campaign(marketing, channel="outbox", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    ui = ui_login(app, staff["marketing"], lang="en")
    page = text(ui.get(f"/marketing/campaigns/{cid}"))
    assert 'data-confirm-field="confirmed"' in page  # with JS the dialog answers for the page
    r = ui.post(f"/marketing/campaigns/{cid}/action", {"action": "cancel"})  # no JS: no dialog was shown
    assert r.status_code == 200 and "Cancel this campaign for good?" in text(r) and 'name="confirmed"' in text(r)
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "scheduled"  # nothing happened yet
    r = ui.post(f"/marketing/campaigns/{cid}/action", {"action": "cancel", "confirmed": "1"})
    assert "Campaign cancelled." in text(ui.get(r.headers["Location"]))
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "cancelled"
