"""The demo chain (`flask crm demo`) looks like a real one on every report: the oyster coupon
pays for a dozen oysters, the walk-in card-issue rate has figures for each of the last 12
months, last year's hotel occupancy is a full year at a realistic level, and the demo's
calendar is the chain's (Asia/Shanghai), not UTC's."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm.extensions import db

NEW_YEAR_NIGHT = datetime(2027, 1, 1, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # still 2026 in UTC


@pytest.fixture
def demo(app, clock):
    """The demo loaded in the small hours of 1 January 2027, Beijing time (31 December in UTC)."""
    from crm.demo import load_demo
    clock.set(NEW_YEAR_NIGHT)
    with app.app_context():
        assert load_demo(member_count=120, history_days=365)
    return app


def test_the_demo_reports_look_like_a_real_chains(demo, client):
    from crm.catalog.models import Promotion
    from crm.reports.kpis import member_kpis
    from crm.reports.models import SegmentPlan
    from crm.reports.rooms import room_kpis
    from crm.reports.segments import report_period
    with demo.app_context():
        # the chain's calendar: on its New Year's night the plan is for 2027, not UTC's 2026
        assert set(db.session.scalars(select(SegmentPlan.year))) == {2027}
        assert "VAL2028" in set(db.session.scalars(select(Promotion.code)))
        last_year = room_kpis("HT01", report_period(2026, None))
        assert 55 <= float(last_year["occupancy"]) <= 85, last_year  # a full year of stays, not one month
        for month in range(1, 13):
            occupancy = room_kpis("HT01", report_period(2026, month))["occupancy"]
            assert 45 <= float(occupancy) <= 95, (month, occupancy)
            rate = member_kpis(None, report_period(2026, month))["card_issue_rate"]
            assert rate is not None and 5 <= float(rate) <= 80, (month, rate)  # the chart has every month
    token = client.post("/api/v1/auth/token", json={"username": "manager", "password": "demo1234"}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    member = client.get("/api/v1/members?q=1", headers=headers).json["items"][0]
    coupon = client.post(f"/api/v1/members/{member['id']}/coupons", headers=headers,
                         json={"coupon_type": "OYSTER180", "reason": "demo check"})
    assert coupon.status_code == 201, coupon.json

    def quote(sku):
        return client.post("/api/v1/checkouts/quote", headers=headers, json={
            "store_code": "BJ01", "member_id": member["id"], "coupon_codes": [coupon.json["code"]],
            "items": [{"sku": sku, "qty": 1}]})
    one = quote("OYSTER")
    assert one.status_code == 422 and one.json["error"]["code"] == "coupon_item_missing"  # not one 12.00 oyster
    dozen = quote("OYSTER12").json
    assert (dozen["coupon_discount"], dozen["due"]) == ("180.00", "0.00")  # a dozen at the member price
