"""Campaign holdout and attribution (issue 15.5): a share of each send's reachable audience is
held out at random — reproducibly, recorded, never sent the message or its coupon — and the
report compares the two groups' visits, spend and coupon redemptions over N days after the send."""
import csv
import io
import itertools
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, func, insert, select, update

from crm.campaigns import attribution, fanout, jobs
from crm.campaigns.models import Campaign, CampaignRun, Delivery
from crm.campaigns.schedule import Occurrence
from crm.checkout.models import Checkout
from crm.core.audit import AuditEntry
from crm.coupons.models import Coupon
from crm.extensions import db
from crm.members import levels
from crm.members.models import Member
from tests.conftest import audit_problems
from tests.test_ui import text, ui_login

UTC = timezone.utc


def at_shanghai(*args) -> datetime:
    return datetime(*args, tzinfo=UTC) - timedelta(hours=8)


pytestmark = pytest.mark.clock_at(at_shanghai(2026, 12, 1, 10, 0))
SEND = at_shanghai(2026, 12, 1, 10, 5)  # when the tick fans the once-campaign out
SMS = {"sms": True, "email": False}


def tick(app, now=SEND):
    with app.app_context():
        jobs.tick(now)


_names = itertools.count(1)


def campaign(api, *, body="{{ name }}，您好{% if coupon %}，送您{{ coupon.name }}{% endif %}。回TD退订", **fields):
    t = api.post("/api/v1/message-templates", json={"name": f"模板{next(_names)}", "body": body})
    assert t.status_code == 201, t.json
    c = api.post("/api/v1/campaigns", json={"name": "冬季回访", "template_id": t.json["id"], "channel": "outbox",
                                            "schedule": "once", "send_at": "2026-12-01T10:00:00+08:00", **fields})
    assert c.status_code == 201, c.json
    s = api.post(f"/api/v1/campaigns/{c.json['id']}/actions", json={"action": "schedule"})
    assert s.status_code == 200, s.json
    return c.json["id"]


def draft(api, **fields) -> tuple[int, int]:
    """(template id, campaign id) of a draft once-campaign."""
    t = api.post("/api/v1/message-templates", json={"name": "t", "body": "您好"})
    c = api.post("/api/v1/campaigns", json={"name": "x", "template_id": t.json["id"],
                                            "send_at": "2026-12-02T10:00:00+08:00", **fields})
    assert c.status_code == 201, c.json
    return t.json["id"], c.json["id"]


def arms(app, campaign_id, occurrence="once") -> dict:
    """{member id: (status, arm, coupon id)} of an occurrence."""
    with app.app_context():
        return {d.member_id: (d.status, d.arm, d.coupon_id) for d in db.session.execute(
            select(Delivery.member_id, Delivery.status, Delivery.arm, Delivery.coupon_id).where(
                Delivery.campaign_id == campaign_id, Delivery.occurrence == occurrence))}


def held_out(app, campaign_id, occurrence="once") -> list[int]:
    return sorted(m for m, (status, arm, _c) in arms(app, campaign_id, occurrence).items() if status == "held_out")


def seed_members(app, stores, n: int, *, consent=True):
    """n members straight into the table (10,000 through the API would take minutes)."""
    with app.app_context():
        level = levels.entry_level()
        db.session.execute(insert(Member), [
            {"name": f"会员{i}", "mobile": f"138{i:08d}", "mobile_last4": f"{i:04d}"[-4:], "level_id": level.id,
             "store_id": stores["BJ01"], "sms_consent": consent} for i in range(n)])
        db.session.commit()


# --- The holdout: exact, reproducible, recorded, never sent --------------------------------------

def test_ten_percent_of_10000_members_is_held_out_exactly_and_again_when_recomputed(app, stores, marketing):
    seed_members(app, stores, 10_000)
    campaign_id = campaign(marketing, holdout_percent=10)
    tick(app)
    recorded = arms(app, campaign_id)
    held = held_out(app, campaign_id)
    assert len(recorded) == 10_000
    assert len(held) == 1_000  # exactly round(10,000 × 10 %): well within ±1 % of the setting
    treated = [m for m, (status, arm, _c) in recorded.items() if arm == "treated"]
    assert len(treated) == 9_000 and all(recorded[m][0] == "sent" for m in treated)
    assert {recorded[m][1] for m in held} == {"holdout"}

    with app.app_context():
        c = db.session.get(Campaign, campaign_id)
        assert fanout.holdout(c, Occurrence("once")) == (10_000, held)  # recomputed: the same members
        other = fanout.holdout(c, Occurrence("2026-12-08"))[1]  # another send draws afresh
        assert len(other) == 1_000 and 30 < len(set(other) & set(held)) < 200  # about 10 % overlap
        # The occurrence worked out again from scratch (its record gone) holds out the very same members.
        db.session.execute(delete(Delivery).where(Delivery.campaign_id == campaign_id))
        db.session.execute(delete(CampaignRun).where(CampaignRun.campaign_id == campaign_id))
        after = 0
        while after is not None:
            after, _q, _s = fanout.queue_batch(c, Occurrence("once"), after=after, limit=3_000, now=SEND,
                                               today=date(2026, 12, 1))
        db.session.commit()
    assert held_out(app, campaign_id) == held
    tick(app, SEND + timedelta(minutes=1))  # a later beat changes nothing
    assert held_out(app, campaign_id) == held and len(arms(app, campaign_id)) == 10_000


def test_held_out_members_get_neither_the_message_nor_the_coupon(app, marketing, login_api, member_factory, gateway):
    manager = login_api("manager")
    assert manager.post("/api/v1/coupon-types", json={"code": "TEA", "name": "茶饮券", "kind": "gift",
                                                      "face_value": "20.00", "valid_days": 30}).status_code == 201
    people = [member_factory(marketing_consent=SMS) for _ in range(7)]
    member_factory()  # no consent: reachable by nobody, in neither group
    campaign_id = campaign(marketing, channel="sms", coupon_type_code="TEA", holdout_percent=30)
    tick(app)
    tick(app, SEND + timedelta(minutes=1))
    recorded = arms(app, campaign_id)
    held = held_out(app, campaign_id)
    assert len(held) == 2  # round(7 × 30 %) = 2.1 → 2
    treated = sorted(m for m, v in recorded.items() if v[1] == "treated")
    assert sorted(held + treated) == sorted(p["id"] for p in people)
    mobiles = {p["id"]: p["mobile"] for p in people}
    assert gateway.to() == sorted(mobiles[m] for m in treated)  # nothing went to a held-out member
    with app.app_context():
        coupons = dict(db.session.execute(select(Coupon.member_id, Coupon.source_ref)).all())
    assert sorted(coupons) == treated  # their coupon is not given either
    assert all(recorded[m][2] is None for m in held)
    outbox = marketing.get(f"/api/v1/deliveries?campaign_id={campaign_id}&status=held_out")
    assert outbox.status_code == 200 and sorted(d["member_id"] for d in outbox.json["items"]) == held
    assert {d["arm"] for d in outbox.json["items"]} == {"holdout"}
    assert audit_problems(app) == []


def test_a_half_holdout_rounds_half_up_and_nobody_is_held_out_by_default(app, marketing, member_factory):
    for _ in range(5):
        member_factory(marketing_consent=SMS)
    half = campaign(marketing, holdout_percent=50)
    none = campaign(marketing)
    tick(app)
    assert len(held_out(app, half)) == 3  # 2.5 → 3
    assert held_out(app, none) == [] and {v[1] for v in arms(app, none).values()} == {"treated"}
    assert marketing.get(f"/api/v1/campaigns/{none}").json["holdout_percent"] == 0


def test_two_schedulers_at_once_hold_out_the_same_members_once(app, backend, marketing, member_factory,
                                                               monkeypatch):
    if backend != "postgresql":
        pytest.skip("two scheduler processes share a server database; SQLite serialises writers anyway")
    monkeypatch.setitem(app.config, "FANOUT_BATCH", 4)
    people = [member_factory(marketing_consent=SMS) for _ in range(25)]
    campaign_id = campaign(marketing, holdout_percent=30)
    with app.app_context():
        expected = fanout.holdout(db.session.get(Campaign, campaign_id), Occurrence("once"))[1]
    barrier, errors = threading.Barrier(2), []

    def scheduler():
        try:
            barrier.wait()
            for _ in range(3):
                tick(app)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    recorded = arms(app, campaign_id)
    assert sorted(recorded) == sorted(p["id"] for p in people)  # one row each: nobody twice
    assert held_out(app, campaign_id) == expected and len(expected) == 8  # 7.5 → 8


# --- The setting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [51, -1, 100, "ten", 10.5, None])
def test_a_holdout_share_outside_0_to_50_is_refused_and_nothing_is_written(app, marketing, stores, value):
    t = marketing.post("/api/v1/message-templates", json={"name": "t", "body": "您好"})
    r = marketing.post("/api/v1/campaigns", json={"name": "x", "template_id": t.json["id"], "holdout_percent": value,
                                                  "send_at": "2026-12-02T10:00:00+08:00"})
    assert r.status_code == 422 and "holdout_percent" in str(r.json["error"]["details"]), r.json
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Campaign).where(Campaign.builtin.is_(None))) == 0


def test_a_retried_change_of_the_holdout_share_answers_the_same(app, marketing, stores):
    """Setting the share is naturally idempotent (PATCH of a value): a retry answers the same and
    leaves the same campaign; each save is audited with the share it set."""
    _t, campaign_id = draft(marketing)
    assert marketing.get(f"/api/v1/campaigns/{campaign_id}").json["holdout_percent"] == 0
    first = marketing.patch(f"/api/v1/campaigns/{campaign_id}", json={"holdout_percent": 15},
                            headers={"Idempotency-Key": "hold-15"})
    again = marketing.patch(f"/api/v1/campaigns/{campaign_id}", json={"holdout_percent": 15},
                            headers={"Idempotency-Key": "hold-15"})
    assert first.status_code == again.status_code == 200 and first.json == again.json
    assert marketing.get(f"/api/v1/campaigns/{campaign_id}").json["holdout_percent"] == 15
    with app.app_context():
        saves = db.session.scalars(select(AuditEntry.details).where(AuditEntry.action == "campaign.save")
                                   .order_by(AuditEntry.id)).all()
    assert [s.get("holdout_percent") for s in saves] == [0, 15, 15]


def test_the_campaign_page_sets_and_shows_the_holdout(app, staff, marketing):
    template_id, campaign_id = draft(marketing, holdout_percent=10)
    ui = ui_login(app, staff["marketing"], lang="en")
    page = ui.get(f"/marketing/campaigns/{campaign_id}")
    assert 'name="holdout_percent"' in text(page) and 'value="10"' in text(page)
    assert "Holdout report" in text(page)
    form = {"name": "x", "template_id": str(template_id), "channel": "outbox", "schedule": "once",
            "send_at": "2026-12-02T10:00", "holdout_percent": "60"}
    r = ui.post(f"/marketing/campaigns/{campaign_id}", form)
    assert r.status_code == 422 and 'id="e-holdout_percent"' in text(r)
    assert marketing.get(f"/api/v1/campaigns/{campaign_id}").json["holdout_percent"] == 10
    r = ui.post(f"/marketing/campaigns/{campaign_id}", {**form, "holdout_percent": "20"})
    assert r.status_code == 302
    assert marketing.get(f"/api/v1/campaigns/{campaign_id}").json["holdout_percent"] == 20


# --- The report ----------------------------------------------------------------------------------

def bill(app, member_id, at, total_fen, *, coupon_fen=0, status="closed"):
    """A closed (or voided) bill straight into the table, at a given time."""
    with app.app_context():
        store_id = db.session.scalar(select(Member.store_id).where(Member.id == member_id))
        db.session.execute(insert(Checkout), [dict(
            store_id=store_id, member_id=member_id, status=status, list_total=total_fen, member_total=total_fen,
            coupon_discount=coupon_fen, due=total_fen - coupon_fen, created_at=at)])
        db.session.commit()


def redeem(app, member_id, definition_code, at, *, source="campaign"):
    """The member's coupon of this type redeemed at a time (one issued by hand if they have none)."""
    from crm.coupons.models import CouponDefinition
    with app.app_context():
        definition = db.session.scalar(select(CouponDefinition).where(CouponDefinition.code == definition_code))
        coupon_id = db.session.scalar(select(Coupon.id).where(Coupon.member_id == member_id,
                                                              Coupon.definition_id == definition.id))
        if coupon_id is None:
            coupon_id = db.session.execute(insert(Coupon).returning(Coupon.id), [dict(
                code=f"HAND{member_id:08d}", definition_id=definition.id, member_id=member_id, source="manual",
                valid_from=date(2026, 11, 1), valid_until=date(2027, 1, 31))]).scalar()
        db.session.execute(update(Coupon).where(Coupon.id == coupon_id).values(status="redeemed", redeemed_at=at))
        db.session.commit()


def test_the_report_compares_the_groups_with_figures_worked_by_hand(app, marketing, login_api, member_factory):
    manager = login_api("manager")
    assert manager.post("/api/v1/coupon-types", json={"code": "TEA", "name": "茶饮券", "kind": "gift",
                                                      "face_value": "20.00", "valid_days": 30}).status_code == 201
    for _ in range(6):
        member_factory(marketing_consent=SMS)
    campaign_id = campaign(marketing, coupon_type_code="TEA", holdout_percent=50)
    tick(app)
    groups = arms(app, campaign_id)
    t1, t2, t3 = sorted(m for m, v in groups.items() if v[1] == "treated")
    h1, h2, h3 = sorted(m for m, v in groups.items() if v[1] == "holdout")
    day = timedelta(days=1)
    bill(app, t1, SEND + day, 200_00)
    bill(app, t1, SEND + 3 * day, 100_00)
    bill(app, t2, SEND + 2 * day, 120_00, coupon_fen=20_00)  # 100.00 after the coupon
    bill(app, t3, SEND + day, 500_00, status="voided")  # voided: does not count
    bill(app, t3, SEND + 15 * day, 80_00)  # after the 14 days
    bill(app, h1, SEND + 5 * day, 100_00)
    bill(app, h3, SEND - day, 300_00)  # before the send
    redeem(app, t1, "TEA", SEND + day)  # the campaign's coupon
    redeem(app, h2, "TEA", SEND + 4 * day)  # one of the same type got elsewhere
    redeem(app, t2, "TEA", SEND + 20 * day)  # too late

    r = marketing.get(f"/api/v1/campaigns/{campaign_id}/attribution?occurrence=once&days=14")
    assert r.status_code == 200, r.json
    report = r.json
    # treated: 300.00, 100.00, 0 → 400.00 over 3 = 133.33; 2 of 3 visited; 1 of 3 redeemed
    assert report["treated"] == {"members": 3, "visitors": 2, "visit_rate": "66.67", "spend": "400.00",
                                 "spend_per_member": "133.33", "coupon_redemptions": 1,
                                 "coupon_redemption_rate": "33.33"}
    # holdout: 100.00, 0, 0 → 100.00 over 3 = 33.33; 1 of 3 visited; 1 of 3 redeemed
    assert report["holdout"] == {"members": 3, "visitors": 1, "visit_rate": "33.33", "spend": "100.00",
                                 "spend_per_member": "33.33", "coupon_redemptions": 1,
                                 "coupon_redemption_rate": "33.33"}
    # difference 133.33… − 33.33… = 100.00 per member; × 3 treated = 300.00
    assert (report["holdout_share"], report["difference_per_member"], report["incremental_revenue"]) == (
        "50.00", "100.00", "300.00")
    # variances (fen²): treated (16,666.67² + 3,333.33² + 13,333.33²) / 2 = 233,333,333.3;
    # holdout (6,666.67² + 3,333.33² + 3,333.33²) / 2 = 33,333,333.3;
    # standard error √(233,333,333.3 / 3 + 33,333,333.3 / 3) = 9,428.09 fen; × 1.96 = 18,478.72;
    # (10,000 ± 18,478.72) × 3 → −25,436.15 … 85,436.15 fen
    assert report["confidence_interval"] == {"low": "-254.36", "high": "854.36", "level": "95"}
    assert report["note"] is None and report["window_complete"] is False  # the clock is still on the send day
    assert report["occurrences"] == [{"occurrence": "once", "sent_at": "2026-12-01T02:05:00+00:00",
                                      "window_ends": "2026-12-15T02:05:00+00:00", "treated": 3, "holdout": 3}]
    week = marketing.get(f"/api/v1/campaigns/{campaign_id}/attribution?days=2").json
    assert (week["treated"]["spend"], week["holdout"]["spend"]) == ("200.00", "0.00")  # only t1's day-1 bill
    assert week["incremental_revenue"] == "200.00"

    csv_file = marketing.get(f"/api/v1/campaigns/{campaign_id}/attribution?days=14&format=csv")
    assert csv_file.status_code == 200 and csv_file.mimetype == "text/csv"
    rows = dict(csv.reader(io.StringIO(csv_file.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows["treated.spend_per_member"] == "133.33" and rows["incremental_revenue"] == "300.00"
    assert rows["confidence_interval.low"] == "-254.36"
    xlsx = marketing.get(f"/api/v1/campaigns/{campaign_id}/attribution?format=xlsx")
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    cells = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    assert float(cells["incremental_revenue"].value) == 300.0
    assert cells["incremental_revenue"].number_format == "#,##0.00"
    assert cells["treated.members"].value == 3


def test_without_a_holdout_the_report_says_so_instead_of_dividing_by_zero(app, marketing, member_factory):
    a = member_factory(marketing_consent=SMS)
    member_factory(marketing_consent=SMS)
    campaign_id = campaign(marketing)
    tick(app)
    bill(app, a["id"], SEND + timedelta(hours=2), 88_00)
    report = marketing.get(f"/api/v1/campaigns/{campaign_id}/attribution").json
    assert report["treated"]["members"] == 2 and report["treated"]["spend_per_member"] == "44.00"
    assert report["holdout"]["members"] == 0 and report["holdout"]["spend_per_member"] is None
    assert report["holdout"]["visit_rate"] is None
    assert report["treated"]["coupon_redemption_rate"] is None  # the campaign gives no coupon
    assert (report["incremental_revenue"], report["confidence_interval"], report["note"]) == (None, None, "no_holdout")


def test_too_few_members_give_an_estimate_without_an_interval():
    effect = attribution.incremental([100_00], [0, 50_00])
    assert effect["incremental"] == 75_00 and effect["low"] is None and effect["note"] == "too_few"
    assert attribution.incremental([], [0, 0])["incremental"] is None


@pytest.mark.parametrize("query, status, field", [
    ("days=0", 422, "days"), ("days=367", 422, "days"), ("days=x", 422, "days"), ("format=pdf", 422, "format"),
    ("occurrence=2020-01-01", 404, "occurrence"),
])
def test_bad_report_queries_are_clear_errors(app, marketing, member_factory, query, status, field):
    member_factory(marketing_consent=SMS)
    campaign_id = campaign(marketing, holdout_percent=10)
    tick(app)
    r = marketing.get(f"/api/v1/campaigns/{campaign_id}/attribution?{query}")
    assert r.status_code == status and field in str(r.json)


def test_the_report_is_for_marketing_and_of_a_real_campaign(app, marketing, login_api, stores):
    assert marketing.get("/api/v1/campaigns/999/attribution").status_code == 404
    assert login_api("cashier").get("/api/v1/campaigns/999/attribution").status_code == 403


def test_the_report_page_shows_the_groups_and_downloads_them(app, staff, marketing, member_factory):
    people = [member_factory(marketing_consent=SMS) for _ in range(4)]
    campaign_id = campaign(marketing, holdout_percent=50)
    tick(app)
    for p in people:
        bill(app, p["id"], SEND + timedelta(hours=3), 50_00)
    ui = ui_login(app, staff["marketing"], lang="en")
    page = ui.get(f"/marketing/campaigns/{campaign_id}/attribution")
    assert page.status_code == 200
    body = text(page)
    assert "Incremental revenue" in body and "Spend per member" in body and "Treated" in body
    assert "50.00" in body  # each group spent 50.00 per member
    bad = ui.get(f"/marketing/campaigns/{campaign_id}/attribution?days=0")
    assert bad.status_code == 422 and 'id="e-days"' in text(bad)
    f = ui.get(f"/marketing/campaigns/{campaign_id}/attribution?occurrence=once&days=14&format=csv")
    assert f.status_code == 200 and "Incremental revenue" in f.get_data(as_text=True)
    assert "attachment" in f.headers["Content-Disposition"]


def test_a_run_resumed_mid_way_keeps_its_holdout_even_if_the_share_changed(app, marketing, member_factory):
    people = [member_factory(marketing_consent=SMS) for _ in range(6)]
    campaign_id = campaign(marketing, holdout_percent=50)
    occurrence = Occurrence("once")
    with app.app_context():
        c = db.session.get(Campaign, campaign_id)
        last, _q, _s = fanout.queue_batch(c, occurrence, after=0, limit=2, now=SEND, today=date(2026, 12, 1))
        db.session.commit()
    held = held_out(app, campaign_id)
    assert len(held) == 3
    # Marketing lowers the share while the send is half-way: the members already held out stay so.
    assert marketing.patch(f"/api/v1/campaigns/{campaign_id}", json={"holdout_percent": 0}).status_code == 200
    with app.app_context():
        c = db.session.get(Campaign, campaign_id)
        while last is not None:
            last, _q, _s = fanout.queue_batch(c, occurrence, after=last, limit=2, now=SEND, today=date(2026, 12, 1))
        db.session.commit()
    recorded = arms(app, campaign_id)
    assert sorted(recorded) == sorted(p["id"] for p in people)
    assert held_out(app, campaign_id) == held
    assert all(recorded[m][0] == "sent" for m in recorded if m not in held)


def test_a_campaign_report_pools_its_sends_each_member_once_per_send(app, marketing, member_factory):
    people = [member_factory(marketing_consent=SMS) for _ in range(4)]
    campaign_id = campaign(marketing, schedule="recurring", recurrence="daily", starts_on="2026-12-02",
                           send_time="10:00:00", send_at=None, holdout_percent=50)
    first, second = at_shanghai(2026, 12, 2, 10, 5), at_shanghai(2026, 12, 3, 10, 5)
    tick(app, first)
    tick(app, second)
    assert len(held_out(app, campaign_id, "2026-12-02")) == len(held_out(app, campaign_id, "2026-12-03")) == 2
    for p in people:
        bill(app, p["id"], second + timedelta(hours=1), 30_00)  # inside both sends' windows
    pooled = marketing.get(f"/api/v1/campaigns/{campaign_id}/attribution").json
    assert [o["occurrence"] for o in pooled["occurrences"]] == ["2026-12-02", "2026-12-03"]
    assert pooled["treated"]["members"] == pooled["holdout"]["members"] == 4  # 2 per send
    assert pooled["treated"]["spend"] == pooled["holdout"]["spend"] == "120.00"
    assert pooled["incremental_revenue"] == "0.00"
    one = marketing.get(f"/api/v1/campaigns/{campaign_id}/attribution?occurrence=2026-12-03").json
    assert (one["treated"]["members"], one["holdout"]["members"], one["treated"]["spend"]) == (2, 2, "60.00")
