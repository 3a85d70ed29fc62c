"""Levels: upgrade on top-ups over the level window, the yearly downgrade review, the history.

The review is given its time explicitly (`now=`): a 1 January two years after the
session clock's, so nothing the tests do "now" falls after it by accident.
"""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from crm.campaigns import jobs
from crm.campaigns.models import Delivery
from crm.checkout import service as checkout
from crm.core.timeutil import utcnow
from crm.extensions import db
from crm.members import levels
from crm.members.models import LevelReview, MemberLevelChange
from crm.stores import service as stores
from crm.wallet import service as wallet
from tests.conftest import SYSTEM, in_app
from tests.test_ui import text, ui_login

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def tiers(login_api):
    """银卡 at 1,000 spend or 5,000 topped up; 金卡 at 3,000 spend or 10,000 topped up."""
    admin = login_api("admin")
    for body in ({"code": "silver", "name": "银卡会员", "rank": 1, "upgrade_spend": "1000.00",
                  "upgrade_topup": "5000.00"},
                 {"code": "gold", "name": "金卡会员", "rank": 2, "upgrade_spend": "3000.00",
                  "upgrade_topup": "10000.00"}):
        assert admin.post("/api/v1/levels", json=body).status_code == 201
    return admin


@pytest.fixture
def review_time(app):
    """03:30 on 1 January in Shanghai, two years after the session clock's year."""
    return datetime(utcnow().astimezone(SH).year + 2, 1, 1, 3, 30, tzinfo=SH)


def level_of(api, member_id):
    return api.get(f"/api/v1/members/{member_id}").json["level"]["code"]


def top_up(api, member_id, amount):
    r = api.post(f"/api/v1/members/{member_id}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": amount, "payment_method": "cash"})
    assert r.status_code == 201, r.json
    return r


def top_up_at(app, member_id, yuan, at):
    """A top-up made at a given time (as the demo and imports backdate them)."""
    in_app(app, lambda: wallet.top_up(SYSTEM, member_id, store=stores.get_by_code("BJ01"), amount=yuan * 100,
                                      payment_method="cash", at=at))


def spend_at(app, member_id, lobsters, at):
    """A closed bill of `lobsters` × 328.00 (member price) at a given time."""
    in_app(app, lambda: checkout.close(SYSTEM, {"store_code": "BJ01", "member_id": member_id,
                                                "items": [{"sku": "LOBSTER", "qty": lobsters}]}, at=at))


def history(app, member_id):
    """[(from, to, reason, figures, review_year)] oldest first."""
    with app.app_context():
        rows = db.session.scalars(select(MemberLevelChange).where(MemberLevelChange.member_id == member_id)
                                  .order_by(MemberLevelChange.id)).all()
        return [(r.from_level.code, r.to_level.code, r.reason, r.figures, r.review_year) for r in rows]


def notices(app, member_id=None):
    with app.app_context():
        stmt = select(Delivery).order_by(Delivery.id)
        if member_id is not None:
            stmt = stmt.where(Delivery.member_id == member_id)
        return [(d.member_id, d.campaign_id, d.channel, d.status, d.marketing, d.occurrence, d.body)
                for d in db.session.scalars(stmt)]


# Upgrades ---------------------------------------------------------------------------------

def test_top_ups_reaching_a_threshold_move_the_member_up_and_are_recorded(app, tiers, member_factory, cashier):
    m = member_factory()
    top_up(cashier, m["id"], "5000.00")  # + 600 bonus, which does not count
    assert level_of(cashier, m["id"]) == "silver"
    top_up(cashier, m["id"], "4400.00")  # principal 9,400 (10,000 with the bonus): not yet gold
    assert level_of(cashier, m["id"]) == "silver"
    top_up(cashier, m["id"], "600.00")
    assert level_of(cashier, m["id"]) == "gold"
    assert history(app, m["id"]) == [
        ("standard", "silver", "topup", {"spend": None, "topup": 500_000, "window": 12}, None),
        ("silver", "gold", "topup", {"spend": None, "topup": 1_000_000, "window": 12}, None)]


def test_one_top_up_can_climb_several_levels(app, tiers, member_factory, cashier):
    m = member_factory()
    top_up(cashier, m["id"], "12000.00")
    assert level_of(cashier, m["id"]) == "gold"
    assert [h[:3] for h in history(app, m["id"])] == [("standard", "gold", "topup")]


def test_top_ups_outside_the_window_do_not_count_and_the_window_is_the_programme_rule(
        app, tiers, member_factory, cashier):
    m = member_factory()
    top_up_at(app, m["id"], 4000, utcnow() - timedelta(days=400))
    top_up(cashier, m["id"], "2000.00")  # 6,000 in all, but only 2,000 in the last 12 months
    assert level_of(cashier, m["id"]) == "standard" and history(app, m["id"]) == []
    assert tiers.patch("/api/v1/programme", json={"level_window_months": 24}).status_code == 200
    top_up(cashier, m["id"], "0.01")
    assert level_of(cashier, m["id"]) == "silver"
    assert history(app, m["id"])[0][3] == {"spend": None, "topup": 600_001, "window": 24}


def test_top_ups_change_nothing_without_a_top_up_threshold(app, login_api, member_factory, cashier):
    assert login_api("admin").post("/api/v1/levels", json={"code": "silver", "name": "银卡", "rank": 1,
                                                           "upgrade_spend": "1000.00"}).status_code == 201
    m = member_factory()
    top_up(cashier, m["id"], "50000.00")
    assert level_of(cashier, m["id"]) == "standard" and history(app, m["id"]) == []


def test_a_checkout_upgrade_is_recorded_too(app, tiers, catalogue, member_factory, checkout, cashier):
    m = member_factory()
    r = checkout([("LOBSTER", 4)], member_id=m["id"])  # 1,312.00
    assert r.status_code == 201, r.json
    assert level_of(cashier, m["id"]) == "silver"
    [(old, new, reason, figures, year)] = history(app, m["id"])
    assert (old, new, reason, year) == ("standard", "silver", "spend", None)
    assert figures["spend"] == 131_200 and figures["window"] == 12


# The yearly review ------------------------------------------------------------------------

@pytest.fixture
def reviewed_chain(app, tiers, catalogue, member_factory, review_time):
    """Members set up over the two years before the review, each through real top-ups and bills."""
    t = review_time
    ids = {key: member_factory(name=key)["id"] for key in ("keeps_gold", "to_silver", "to_standard",
                                                          "keeps_silver", "standard")}
    top_up_at(app, ids["keeps_gold"], 10_000, t - timedelta(days=100))
    top_up_at(app, ids["to_silver"], 10_000, t - timedelta(days=400))
    top_up_at(app, ids["to_silver"], 5_000, t - timedelta(days=100))
    top_up_at(app, ids["to_standard"], 20_000, t - timedelta(days=500))
    top_up_at(app, ids["keeps_silver"], 5_000, t - timedelta(days=400))
    spend_at(app, ids["keeps_silver"], 4, t - timedelta(days=30))  # 1,312.00: silver by spend
    top_up_at(app, ids["standard"], 100, t - timedelta(days=10))
    return ids


def test_the_review_moves_members_down_by_the_thresholds_and_queues_one_notice_each(
        app, reviewed_chain, review_time, desk):
    ids = reviewed_chain
    levels_before = {k: level_of(desk, i) for k, i in ids.items()}
    assert levels_before == {"keeps_gold": "gold", "to_silver": "gold", "to_standard": "gold",
                             "keeps_silver": "silver", "standard": "standard"}
    with app.app_context():
        result = levels.review_levels(SYSTEM, now=review_time)
    assert (result["reviewed"], result["moved_down"], result["year"]) == (4, 2, review_time.year)
    assert {k: level_of(desk, i) for k, i in ids.items()} == {
        "keeps_gold": "gold", "to_silver": "silver", "to_standard": "standard", "keeps_silver": "silver",
        "standard": "standard"}
    year = review_time.year
    assert history(app, ids["to_silver"])[-1] == (
        "gold", "silver", "review", {"spend": 0, "topup": 500_000, "window": 12}, year)
    assert history(app, ids["to_standard"])[-1] == (
        "gold", "standard", "review", {"spend": 0, "topup": 0, "window": 12}, year)
    assert history(app, ids["keeps_silver"])[-1][2] == "topup"  # no review row for those who still qualify
    sent = notices(app)
    assert [(n[0], n[1], n[2], n[3], n[4], n[5]) for n in sent] == [
        (ids[k], None, "outbox", "sent", False, f"level-review-{year}") for k in ("to_silver", "to_standard")]
    assert "由金卡会员调整为银卡会员" in sent[0][6] and "由金卡会员调整为普通会员" in sent[1][6]


def test_running_the_review_again_for_the_year_changes_nothing(app, reviewed_chain, review_time):
    with app.app_context():
        first = levels.review_levels(SYSTEM, now=review_time)
    changes_after_first = {k: history(app, i) for k, i in reviewed_chain.items()}
    with app.app_context():
        again = levels.review_levels(SYSTEM, review_time.year, now=review_time + timedelta(days=3))
        assert db.session.get(LevelReview, review_time.year).as_of == review_time  # the first run's time, kept
    assert again["moved_down"] == 0 and again["as_of"] == first["as_of"] == review_time
    assert {k: history(app, i) for k, i in reviewed_chain.items()} == changes_after_first
    assert len(notices(app)) == 2


def test_a_member_whose_level_changed_after_the_review_time_is_left_alone(app, tiers, member_factory, desk,
                                                                          review_time):
    """A review that stopped half-way and is run again later: its as-of time holds, and a
    member who was upgraded meanwhile keeps the new level."""
    t = review_time
    upgraded, idle = member_factory()["id"], member_factory()["id"]
    for member_id in (upgraded, idle):
        top_up_at(app, member_id, 5_000, t - timedelta(days=400))  # silver, long ago
    with app.app_context():
        levels._claim_review(t.year, t)  # the first run got this far
        db.session.commit()
    top_up_at(app, upgraded, 10_000, t + timedelta(hours=2))  # → gold, after the as-of time
    with app.app_context():
        result = levels.review_levels(SYSTEM, now=t + timedelta(hours=3))
    assert result["as_of"] == t and result["moved_down"] == 1
    assert (level_of(desk, upgraded), level_of(desk, idle)) == ("gold", "standard")
    assert [n[0] for n in notices(app)] == [idle]


def test_only_this_years_review_can_be_started(app, tiers, review_time):
    from crm.errors import Invalid
    with app.app_context(), pytest.raises(Invalid):
        levels.review_levels(SYSTEM, review_time.year + 1, now=review_time)


def test_cli_review_levels(app, tiers, member_factory, desk):
    m = member_factory()
    top_up_at(app, m["id"], 10_000, utcnow() - timedelta(days=500))
    assert level_of(desk, m["id"]) == "gold"
    runner = app.test_cli_runner()
    first = runner.invoke(args=["crm", "review-levels"])
    assert first.exit_code == 0, first.output
    year = utcnow().astimezone(SH).year
    assert first.output.startswith(f"Level review {year} (as of ") and "members reviewed: 1, moved down: 1" in \
        first.output
    assert level_of(desk, m["id"]) == "standard"
    again = runner.invoke(args=["crm", "review-levels", "--year", str(year)])
    assert again.exit_code == 0 and "moved down: 0" in again.output
    future = runner.invoke(args=["crm", "review-levels", "--year", str(year + 1)])
    assert future.exit_code != 0 and "this year" in future.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == 1


# The scheduler ----------------------------------------------------------------------------

def test_the_scheduler_runs_the_review_on_1_january_and_catches_up_a_missed_one(app, tiers, member_factory,
                                                                                review_time, desk):
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    with app.app_context():
        scheduler = jobs.build_scheduler(app, BackgroundScheduler)
        job = scheduler.get_job("levels.review")
        assert isinstance(job.trigger, CronTrigger) and str(job.trigger.timezone) == "Asia/Shanghai"
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["month"], fields["day"], fields["hour"], fields["minute"]) == ("1", "1", "3", "30")
    m = member_factory()
    top_up_at(app, m["id"], 5_000, review_time - timedelta(days=400))
    with app.app_context():
        assert not jobs.level_review_missed(review_time - timedelta(minutes=1))
        assert not jobs.level_review_missed(review_time + timedelta(days=3))  # too late to catch up
    assert jobs.catch_up_level_review(review_time + timedelta(hours=5))  # the scheduler was down at 03:30
    assert not jobs.catch_up_level_review(review_time + timedelta(hours=6))  # done: not again
    assert level_of(desk, m["id"]) == "standard" and len(notices(app)) == 1


# The member page --------------------------------------------------------------------------

def test_the_member_page_shows_the_level_history(app, tiers, staff, member_factory, cashier, review_time):
    m = member_factory()
    top_up(cashier, m["id"], "5000.00")
    with app.app_context():
        levels.review_levels(SYSTEM, now=review_time)  # nothing in the window by then: back to standard
    page = text(ui_login(app, "frontdesk", lang="en").get(f"/members/{m['id']}"))
    assert 'id="level-history"' in page
    assert "普通会员 → 银卡会员" in page and "银卡会员 → 普通会员" in page
    assert "Upgrade on top-ups" in page and f"Yearly review {review_time.year}" in page
    assert "Top-ups 5000.00" in page and "Spend 0.00" in page and "over 12 months" in page
    assert "您的会员等级已由银卡会员调整为普通会员" in page  # the notice, among the member's messages


def test_a_member_who_topped_up_after_the_review_began_keeps_the_level_those_top_ups_reach(
        app, tiers, member_factory, desk, review_time):
    """The review's as-of time is fixed, but a top-up made since (even while the review runs)
    can only keep a member up: a gold member who topped up 10,000 after it began stays gold."""
    t = review_time
    stays = member_factory()["id"]
    top_up_at(app, stays, 10_000, t - timedelta(days=400))  # gold, long ago
    with app.app_context():
        levels._claim_review(t.year, t)  # the review began …
        db.session.commit()
    top_up_at(app, stays, 10_000, t + timedelta(hours=1))  # … and the member topped up (no level change: already gold)
    with app.app_context():
        result = levels.review_levels(SYSTEM, now=t + timedelta(hours=2))
    assert result["moved_down"] == 0 and level_of(desk, stays) == "gold"
    assert notices(app) == []


def test_a_manager_setting_a_level_writes_history(app, tiers, member_factory, login_api):
    m = member_factory()
    manager = login_api("manager")
    assert manager.patch(f"/api/v1/members/{m['id']}", json={"level_code": "gold"}).status_code == 200
    assert manager.patch(f"/api/v1/members/{m['id']}", json={"level_code": "gold"}).status_code == 200  # no change
    assert [(old, new, reason) for old, new, reason, _f, _y in history(app, m["id"])] == [
        ("standard", "gold", "manual")]


def test_the_entry_level_keeps_rank_0_so_registration_keeps_working(login_api, member_factory):
    admin = login_api("admin")
    r = admin.patch("/api/v1/levels/standard", json={"rank": 7})
    assert r.status_code == 422 and r.json["error"]["code"] == "entry_level_rank"
    assert admin.get("/api/v1/levels").status_code == 200
    assert member_factory()["level"]["code"] == "standard"
