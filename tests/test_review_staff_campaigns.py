"""Review (issue 13): Pause pressed at the very moment the scheduler's fan-out ends."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crm.campaigns import fanout
from crm.campaigns.models import Campaign, CampaignRun
from crm.extensions import db
from tests.test_campaign_sending import SMS, at_shanghai, campaign, deliveries, tick
from tests.test_campaign_states import act

pytestmark = pytest.mark.clock_at(at_shanghai(2026, 12, 1, 10, 0))


def test_pause_as_the_last_batch_ends_holds_the_messages_and_resume_finishes_once(
        app, backend, marketing, member_factory, gateway, monkeypatch):  # noqa: F811
    if backend != "postgresql":
        pytest.skip("two sessions writing at once: SQLite would lock the second out (PostgreSQL is production's)")
    monkeypatch.setitem(app.config, "FANOUT_BATCH", 2)
    people = [member_factory(marketing_consent=SMS) for _ in range(3)]
    cid = campaign(marketing, channel="sms", schedule="once", send_at="2027-05-01T10:00:00+08:00")
    real_batch = fanout.queue_batch

    def pause_at_the_end(*args, **kwargs):
        """Marketing's Pause commits just as the scheduler finds nobody left to queue."""
        result = real_batch(*args, **kwargs)
        if result[0] is None:
            with app.app_context():  # another request: its own session, committed
                db.session.execute(update(Campaign).where(Campaign.id == cid).values(state="paused"))
                db.session.commit()
        return result
    monkeypatch.setattr(fanout, "queue_batch", pause_at_the_end)

    t0 = at_shanghai(2027, 5, 1, 10, 0)
    tick(app, t0)
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "paused"  # not overwritten by "done"
    assert gateway.received == []
    monkeypatch.setattr(fanout, "queue_batch", real_batch)
    assert act(marketing, cid, "resume").json["state"] == "running"
    tick(app, t0 + timedelta(minutes=15))
    tick(app, t0 + timedelta(minutes=30))
    assert gateway.to() == sorted(p["mobile"] for p in people)  # each once
    assert sorted(d.member_id for d in deliveries(app)) == sorted(p["id"] for p in people)
    assert marketing.get(f"/api/v1/campaigns/{cid}").json["state"] == "done"
    with app.app_context():
        run = db.session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == cid))
        assert (run.status, run.queued) == ("done", 3)
