"""The manual's tables, each figure worked out by hand: segments with plan and last year,
repeat guests, rankings, the monthly comparison, the competitive set and RFM groups."""
from datetime import timedelta

import pytest

from crm.core.timeutil import utcnow
from tests.test_reports import post_csv


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def hotel_year(manager, member_factory):
    m1, m2 = member_factory(), member_factory()
    csv = ("stay_no,store_code,arrival,departure,rooms,room_revenue,segment,member_mobile,company,sales_rep\n"
           f"R1,HT01,2025-12-20,2025-12-22,1,600.00,business_fit,{m1['mobile']},华为,张三\n"
           f"R2,HT01,2026-03-05,2026-03-07,1,800.00,business_fit,{m1['mobile']},华为,张三\n"
           f"R3,HT01,2026-03-10,2026-03-11,2,1000.00,online_fit,{m2['mobile']},,\n"
           "R4,HT01,2026-03-20,2026-03-23,1,1500.00,business_fit,,中石油,李四\n"
           "R5,HT01,2025-03-15,2025-03-17,1,700.00,business_fit,,中石油,李四\n")
    r = post_csv(manager, "/api/v1/imports/stays", csv)
    assert r.status_code == 200 and r.json["imported"] == 5, r.json
    return m1, m2


def rows_of(table):
    return {row["key"]: row["values"] for row in table["rows"]}


def test_segment_table_for_a_month(manager, hotel_year):
    t = manager.get("/api/v1/reports/segments?store_code=HT01&year=2026&month=3")
    assert t.status_code == 200, t.json
    assert t.json["columns"] == ["last_year_actual", "plan", "actual"]
    rows = rows_of(t.json)
    assert rows["total"]["actual"] == {"room_revenue": "3300.00", "occupancy": "0.11", "adr": "471.43",
                                       "revpar": "0.53", "room_nights": 7}
    assert rows["business_fit"]["actual"] == {"room_nights": 5, "adr": "460.00", "share": "71.43"}
    assert rows["online_fit"]["actual"] == {"room_nights": 2, "adr": "500.00", "share": "28.57"}
    # m1 stayed in December 2025 and March 2026: two arrivals within the 365 days ending 31 March
    assert rows["repeat_guests"]["actual"] == {"room_nights": 2, "adr": "400.00", "share": "28.57"}
    assert rows["total"]["last_year_actual"]["room_nights"] == 2
    assert rows["business_fit"]["last_year_actual"] == {"room_nights": 2, "adr": "350.00", "share": "100.00"}
    assert rows["repeat_guests"]["last_year_actual"] == {"room_nights": 0, "adr": None, "share": "0.00"}
    assert rows["total"]["plan"] == {"room_revenue": None, "occupancy": None, "adr": None, "revpar": None,
                                     "room_nights": None}  # no plan entered
    r = manager.put("/api/v1/reports/plans", json={"store_code": "HT01", "year": 2026, "month": 3, "plans": [
        {"segment": "business_fit", "nights": 10, "adr": "450.00"},
        {"segment": "online_fit", "nights": 5, "adr": "500.00"}]})
    assert r.status_code == 200, r.json
    plan = rows_of(manager.get("/api/v1/reports/segments?store_code=HT01&year=2026&month=3").json)
    assert plan["total"]["plan"] == {"room_revenue": "7000.00", "occupancy": "0.24", "adr": "466.67",
                                     "revpar": "1.13", "room_nights": 15}
    assert plan["business_fit"]["plan"] == {"room_nights": 10, "adr": "450.00", "share": "66.67"}
    year = rows_of(manager.get("/api/v1/reports/segments?store_code=HT01&year=2026").json)
    assert year["total"]["plan"]["room_nights"] == 15  # no yearly plan: the months' plans add up


def test_rankings_with_last_years_rank(manager, hotel_year):
    r = manager.get("/api/v1/reports/rankings?store_code=HT01&year=2026&segment=business_fit&by=revenue")
    assert r.status_code == 200, r.json
    assert r.json == [
        {"rank": 1, "name": "中石油", "kind": "company", "revenue": "1500.00", "nights": 3, "average_rate": "500.00",
         "sales_rep": "李四", "last_year_rank": 1},
        {"rank": 2, "name": "华为", "kind": "company", "revenue": "800.00", "nights": 2, "average_rate": "400.00",
         "sales_rep": "张三", "last_year_rank": 2}]
    online = manager.get("/api/v1/reports/rankings?store_code=HT01&year=2026&segment=online_fit&by=nights").json
    assert [(x["rank"], x["kind"], x["nights"], x["last_year_rank"]) for x in online] == [(1, "member", 2, None)]
    bad = manager.get("/api/v1/reports/rankings?store_code=HT01&year=2026&segment=tourists")
    assert bad.status_code == 422


def test_monthly_comparison_with_differences(manager, hotel_year):
    rows = manager.get("/api/v1/reports/monthly?store_code=HT01&year=2026").json
    march = next(r for r in rows if r["month"] == 3 and r["segment"] == "business_fit")
    assert march["this_year"] == {"nights": 5, "revenue": "2300.00", "average_rate": "460.00"}
    assert march["last_year"] == {"nights": 2, "revenue": "700.00", "average_rate": "350.00"}
    assert march["difference"] == {"nights": 3, "revenue": "1600.00", "average_rate": "110.00"}
    december = next(r for r in rows if r["month"] == 12)
    assert december["difference"] == {"nights": -2, "revenue": "-600.00", "average_rate": None}
    csv = manager.get("/api/v1/reports/monthly?store_code=HT01&year=2026&format=csv")
    header = csv.data.decode("utf-8-sig").splitlines()[0]
    assert header.startswith("month,segment,this_year.nights,this_year.revenue")


def test_competitive_set_shares(manager, hotel_year):
    c = manager.post("/api/v1/reports/competitors", json={"store_code": "HT01", "name": "竞品A", "rooms": 150})
    assert c.status_code == 201, c.json
    manager.post("/api/v1/reports/competitors", json={"store_code": "HT01", "name": "竞品B", "rooms": 90})
    m = manager.put(f"/api/v1/reports/competitors/{c.json['id']}/months",
                    json={"year": 2026, "month": 3, "available_rooms": 4650, "rooms_sold": 3000,
                          "room_revenue": "1200000.00"})
    assert m.status_code == 200, m.json
    t = manager.get("/api/v1/reports/competitor-share?store_code=HT01&year=2026&month=3").json
    own, rival = t["rows"]
    assert own == {"hotel": "王府井酒店", "available_rooms": 6200, "fair_share": "57.14", "rooms_occupied": 7,
                   "rooms_sold": 7,  # kept for existing clients (no complimentary rooms this month)
                   "occupancy": "0.11", "actual_share": "0.23", "adr": "471.43", "room_revenue": "3300.00",
                   "revenue_share": "0.27", "revpar": "0.53"}
    assert (rival["occupancy"], rival["adr"], rival["revpar"], rival["fair_share"]) == (
        "64.52", "400.00", "258.06", "42.86")
    assert t["total"]["available_rooms"] == 10850 and t["total"]["fair_share"] == "100.00"
    assert t["missing"] == ["竞品B"]
    dup = manager.post("/api/v1/reports/competitors", json={"store_code": "HT01", "name": "竞品A", "rooms": 1})
    assert dup.status_code == 409
    oversold = manager.put(f"/api/v1/reports/competitors/{c.json['id']}/months",
                           json={"year": 2026, "month": 4, "available_rooms": 10, "rooms_sold": 11,
                                 "room_revenue": "1.00"})
    assert oversold.status_code == 422


def test_rfm_groups_and_their_use_as_an_audience(manager, login_api, member_factory):
    people = [member_factory(marketing_consent={"sms": True, "email": False}) for _ in range(5)]
    now = utcnow()
    lines = ["check_no,store_code,closed_at,amount,covers,segment,member_mobile"]
    for i, person in enumerate(people):  # person i: i+1 bills, the last one i*10 days more recent, bigger
        for j in range(i + 1):
            when = (now - timedelta(days=200 - i * 40 + j)).isoformat()
            lines.append(f"K{i}-{j},BJ01,{when},{(i + 1) * 100}.00,2,walk_in,{person['mobile']}")
    assert post_csv(manager, "/api/v1/imports/checks", "\n".join(lines) + "\n").json["imported"] == 15
    counts = manager.get("/api/v1/reports/rfm").json  # person i scores i+1 on R, F and M
    assert counts == {"champions": 2, "loyal": 0, "new": 0, "at_risk": 0, "lost": 2, "others": 1}
    champs = manager.get("/api/v1/reports/rfm?group=champions").json
    assert [c["member_id"] for c in champs] == [people[4]["id"], people[3]["id"]]
    assert (champs[0]["r"], champs[0]["f"], champs[0]["m"], champs[0]["frequency"]) == (5, 5, 5, 5)
    marketing = login_api("marketing")
    r = marketing.post("/api/v1/audiences/count", json={"rfm": ["champions", "lost"]})
    assert r.status_code == 200 and r.json["count"] == 4
    assert marketing.post("/api/v1/audiences/count", json={"rfm": ["vip"]}).status_code == 422


def test_rfm_scores_equal_figures_alike(manager, member_factory):
    people = [member_factory() for _ in range(6)]
    when = utcnow().replace(microsecond=0).isoformat()
    lines = ["check_no,store_code,closed_at,amount,covers,segment,member_mobile"]
    lines += [f"T{i},BJ01,{when},100.00,2,walk_in,{p['mobile']}" for i, p in enumerate(people)]
    assert post_csv(manager, "/api/v1/imports/checks", "\n".join(lines) + "\n").json["imported"] == 6
    counts = manager.get("/api/v1/reports/rfm").json
    assert sorted(counts.values()) == [0, 0, 0, 0, 0, 6]  # one group for all: no split by member number


def test_monthly_comparison_lists_a_stay_without_a_segment_last(app, manager, hotel_year):
    """The stays table allows a NULL segment (a PMS row without one); the month-by-month page and API
    answered 500 sorting it among the named segments."""
    from datetime import date

    from crm.extensions import db
    from crm.reports.models import Stay
    from crm.stores.models import Store
    from tests.conftest import in_app

    def add():
        hotel = db.session.query(Store).filter_by(code="HT01").one()
        db.session.add(Stay(stay_no="R-NOSEG", store_id=hotel.id, arrival=date(2026, 3, 1), departure=date(2026, 3, 2),
                            rooms=1, room_revenue=30000, segment=None))
        db.session.commit()
    in_app(app, add)
    rows = manager.get("/api/v1/reports/monthly?store_code=HT01&year=2026")
    assert rows.status_code == 200, rows.json
    march = [r["segment"] for r in rows.json if r["month"] == 3]
    assert march[-1] is None and "business_fit" in march
