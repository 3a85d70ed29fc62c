"""Imports and KPIs, each figure computed by hand from a small fixture."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from crm.core.timeutil import utcnow

STAYS = """\ufeffroom_revenue,stay_no,store_code,arrival,departure,rooms,segment,company,complimentary,day_use
1200.00,S1,HT01,2026-02-27,2026-03-02,1,business_fit,华为,,
1800.00,S2,HT01,2026-03-30,2026-04-02,2,conference,,0,0
300.00,S3,HT01,2026-03-10,2026-03-10,1,walk_in,,,1
0.00,S4,HT01,2026-03-15,2026-03-17,1,business_fit,,1,
500.00,S5,HT01,2026-02-01,2026-02-03,1,online_fit,,,
"""


@pytest.fixture
def manager(login_api):
    return login_api("manager")


def post_csv(api, path, body, **query):
    """Send a CSV import; once accepted (202) the answer is its job's status, read from its
    status URL (the test app runs a job before answering: IMPORT_RUN_INLINE)."""
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    r = api.post(f"{path}{'?' + qs if qs else ''}", data=body.encode("utf-8"), headers={"Content-Type": "text/csv"})
    if r.status_code != 202:
        return r
    assert r.headers["Location"] == r.json["status_url"]
    return api.get(r.json["status_url"])


def test_room_kpis_follow_the_manual(manager):
    r = post_csv(manager, "/api/v1/imports/stays", STAYS)
    assert r.status_code == 200, r.json
    assert (r.json["imported"], r.json["errors"]) == (5, [])
    march = manager.get("/api/v1/reports/rooms?store_code=HT01&from=2026-03-01&to=2026-03-31")
    assert march.status_code == 200, march.json
    assert march.json == {
        "available_rooms": 200 * 31,
        "rooms_sold": 1 + 2 * 2,         # S1's night of 1 March; S2's nights of 30 and 31 March, two rooms
        "complimentary_rooms": 2,        # S4
        "rooms_occupied": 7,             # sold + complimentary
        "day_use_rooms": 1,              # S3: its revenue counts, the room is not sold
        "room_revenue": "1900.00",       # 1200 × 1/3 + 1800 × 2/3 + 300 + 0
        "occupancy": "0.11",             # (5 + 2) ÷ 6200
        "adr": "271.43",                 # 1900 ÷ 7
        "revpar": "0.31",                # 1900 ÷ 6200
    }
    empty = manager.get("/api/v1/reports/rooms?store_code=HT01&from=2030-01-01&to=2030-01-31").json
    assert (empty["rooms_sold"], empty["occupancy"], empty["adr"], empty["revpar"]) == (0, "0.00", None, "0.00")
    restaurant = manager.get("/api/v1/reports/rooms?store_code=BJ01&from=2026-03-01&to=2026-03-31").json
    assert (restaurant["available_rooms"], restaurant["occupancy"], restaurant["adr"]) == (0, None, None)


def test_reimporting_updates_and_never_duplicates(manager):
    assert post_csv(manager, "/api/v1/imports/stays", STAYS).json["imported"] == 5
    again = STAYS.replace("1800.00,S2", "2100.00,S2")
    r = post_csv(manager, "/api/v1/imports/stays", again)
    assert (r.json["imported"], r.json["updated"]) == (0, 5)
    march = manager.get("/api/v1/reports/rooms?store_code=HT01&from=2026-03-01&to=2026-03-31").json
    assert march["room_revenue"] == "2100.00" and march["rooms_sold"] == 5  # 400 + 2100 × 2/3 + 300


BAD_CHECKS = """check_no,store_code,closed_at,amount,covers,segment
C1,BJ01,2026-03-01T19:00:00+08:00,120.00,2,walk_in
C2,NOPE,2026-03-01T19:00:00+08:00,120.00,2,walk_in
C3,BJ01,yesterday,120.00,2,walk_in
C4,BJ01,2026-03-01T19:00:00+08:00,12.345,2,walk_in
C5,BJ01,2026-03-01T19:00:00+08:00,50.00,-1,walk_in
C6,BJ01,2026-03-01T19:00:00+08:00,50.00,1,tourists
C1,BJ01,2026-03-01T20:00:00+08:00,60.00,1,walk_in
"""


def test_a_file_with_bad_rows_imports_nothing_and_names_every_line(manager):
    r = post_csv(manager, "/api/v1/imports/checks", BAD_CHECKS)
    assert (r.json["status"], r.json["failure"], r.json["error_count"]) == ("failed", "bad_rows", 6)
    assert r.json["imported"] == 0
    assert [e["line"] for e in r.json["errors"]] == [3, 4, 5, 6, 7, 8]
    assert "NOPE" in r.json["errors"][0]["message"] and "tourists" in r.json["errors"][4]["message"]
    kpis = manager.get("/api/v1/reports/kpis?store_code=BJ01&from=2026-03-01&to=2026-03-31").json
    assert kpis["checks"] == 0
    r = post_csv(manager, "/api/v1/imports/checks", BAD_CHECKS, skip_bad_rows="true")
    assert r.status_code == 200 and (r.json["imported"], r.json["skipped"]) == (1, 6)
    kpis = manager.get("/api/v1/reports/kpis?store_code=BJ01&from=2026-03-01&to=2026-03-31").json
    assert (kpis["checks"], kpis["revenue"], kpis["covers"]) == (1, "120.00", 2)


@pytest.mark.parametrize("body, code", [
    ("check_no,store_code,amount\nC1,BJ01,1.00\n", "missing_columns"),
    ("check_no,store_code,closed_at,amount,covers,segment,tip\n", "unknown_columns"),
])
def test_a_file_with_the_wrong_columns_is_refused(manager, stores, body, code):
    r = post_csv(manager, "/api/v1/imports/checks", body)
    assert r.status_code == 422 and r.json["error"]["code"] == code


def test_member_kpis_by_hand(app, manager, member_factory, issue_card, catalogue, checkout, store_today):
    a = member_factory()
    b = member_factory()
    issue_card(a["id"])
    assert checkout([("SALMON", 2)], member_id=a["id"], covers=2).status_code == 201  # 136.00, a joined today
    assert checkout([("TEA", 1)], covers=1).status_code == 201                        # non-member 20.00
    now = utcnow().astimezone(timezone(timedelta(hours=8))).isoformat()
    imported = (f"check_no,store_code,closed_at,amount,covers,segment,member_mobile,joined_at_visit\n"
                f"P1,BJ01,{now},100.00,2,walk_in,,\n"
                f"P2,BJ01,{now},50.00,1,walk_in,{b['mobile']},1\n")
    assert post_csv(manager, "/api/v1/imports/checks", imported).json["imported"] == 2
    day = store_today
    k = manager.get(f"/api/v1/reports/kpis?store_code=BJ01&from={day}&to={day}")
    assert k.status_code == 200, k.json
    assert k.json == {
        "members_total": 2, "new_members": 2, "member_growth_rate": None,  # nobody before today
        "checks": 4, "member_checks": 2,
        "card_issue_rate": "50.00",        # 2 joined ÷ (2 non-member bills + 2 joiners)
        "member_check_share": "50.00", "member_revenue_share": "60.78",  # 186 ÷ 306
        "revenue": "306.00", "covers": 6, "spend_per_head": "51.00",
        "spend_per_head_members": "62.00", "spend_per_head_non_members": "40.00",
        "topup_principal": "0.00", "topup_bonus": "0.00", "stored_value_growth": None,
        "wallet_outstanding_principal": "0.00", "wallet_outstanding_bonus": "0.00",
        "points_earned": 13, "points_redeemed": 0, "points_expired": 0, "points_outstanding": 13,
    }
    group = manager.get(f"/api/v1/reports/kpis?from={day}&to={day}").json
    assert group["checks"] == 4 and group["revenue"] == "306.00"
    other = manager.get(f"/api/v1/reports/kpis?store_code=BJ02&from={day}&to={day}").json
    assert (other["checks"], other["spend_per_head"], other["member_check_share"]) == (0, None, None)


def test_kpis_export_as_csv_and_excel(manager, stores):
    r = manager.get("/api/v1/reports/kpis?from=2026-03-01&to=2026-03-31&format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = r.data.decode("utf-8-sig").splitlines()
    assert lines[0] == "field,value" and "checks,0" in lines
    x = manager.get("/api/v1/reports/rooms?from=2026-03-01&to=2026-03-31&format=xlsx")
    assert x.status_code == 200 and x.data[:2] == b"PK"
    from io import BytesIO

    from openpyxl import load_workbook
    sheet = load_workbook(BytesIO(x.data)).active
    assert [c.value for c in sheet[1]] == ["field", "value"] and sheet["A2"].value == "available_rooms"


@pytest.mark.parametrize("query", ["from=2026-03-31&to=2026-03-01", "from=2026-03-01", "from=x&to=y",
                                   "from=2020-01-01&to=2026-01-01", "from=2026-03-01&to=2026-03-31&format=pdf"])
def test_bad_periods_are_422(manager, stores, query):
    r = manager.get(f"/api/v1/reports/kpis?{query}")
    assert r.status_code == 422, r.json


def test_unknown_store_is_422(manager, stores):
    r = manager.get("/api/v1/reports/kpis?store_code=NOPE&from=2026-03-01&to=2026-03-31")
    assert r.status_code in (404, 422)




def test_every_bill_of_a_period_as_a_file(manager, member_factory, catalogue, checkout, store_today):
    a = member_factory()
    assert checkout([("SALMON", 2)], member_id=a["id"], covers=2).status_code == 201
    earlier = datetime.fromisoformat(store_today).date() - timedelta(days=270)  # within the longest period
    post_csv(manager, "/api/v1/imports/checks", "check_no,store_code,closed_at,amount,covers,segment\n"
                                                 f"P1,BJ01,{earlier}T19:00:00+08:00,88.00,3,walk_in\n")
    r = manager.get(f"/api/v1/reports/bills?from={earlier}&to={store_today}")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = r.data.decode("utf-8-sig").splitlines()
    assert lines[0] == "store,closed_at,amount,covers,member_id,joined_at_visit"
    assert lines[1] == f"BJ01,{earlier} 19:00:00,88.00,3,,0"  # the store's own time, as its till showed it
    assert re.fullmatch(rf"BJ01,{store_today} \d\d:\d\d:\d\d,136.00,2,{a['id']},1", lines[2])  # to the second
    assert len(lines) == 3


def test_a_recorded_change_of_room_count_changes_available_rooms(manager):
    assert post_csv(manager, "/api/v1/imports/stays", STAYS).json["imported"] == 5
    r = manager.put("/api/v1/reports/room-counts", json={"store_code": "HT01", "effective_from": "2026-03-16",
                                                         "rooms": 150, "reason": "5楼装修"})
    assert r.status_code == 200, r.json
    march = manager.get("/api/v1/reports/rooms?store_code=HT01&from=2026-03-01&to=2026-03-31").json
    assert march["available_rooms"] == 200 * 15 + 150 * 16
    assert march["occupancy"] == "0.13"  # 7 ÷ 5400
    april = manager.get("/api/v1/reports/rooms?store_code=HT01&from=2026-04-01&to=2026-04-30").json
    assert april["available_rooms"] == 150 * 30
    bad = manager.put("/api/v1/reports/room-counts", json={"store_code": "BJ01", "effective_from": "2026-03-16",
                                                           "rooms": 10})
    assert bad.status_code == 422 and bad.json["error"]["code"] == "not_a_hotel"


def test_a_companys_annual_spend_counts_its_stays_and_its_members_bills(manager, desk, member_factory, catalogue,
                                                                        checkout, store_today):
    company = desk.post("/api/v1/companies", json={"name": "华为", "account_class": "key_account"})
    assert company.status_code == 201, company.json
    person = member_factory(company="华为")
    assert checkout([("SALMON", 1)], member_id=person["id"]).status_code == 201  # 68.00
    recent = datetime.fromisoformat(store_today).date() - timedelta(days=10)
    old = recent - timedelta(days=400)
    csv = ("stay_no,store_code,arrival,departure,rooms,room_revenue,segment,company\n"
           f"A1,HT01,{recent},{recent + timedelta(days=2)},1,900.00,business_fit,华为\n"
           f"A2,HT01,{old},{old + timedelta(days=1)},1,500.00,business_fit,华为\n"
           f"A3,HT01,{recent},{recent + timedelta(days=1)},1,300.00,business_fit,别家\n")
    assert post_csv(manager, "/api/v1/imports/stays", csv).json["imported"] == 3
    one = desk.get(f"/api/v1/companies/{company.json['id']}").json
    assert one["annual_spend"] == "968.00"  # the recent stay and the member's bill
    listed = desk.get("/api/v1/companies?q=华为").json["items"]
    assert [c["annual_spend"] for c in listed] == ["968.00"]


@pytest.mark.parametrize("amount, covers", [("1e30", "2"), ("99999999999", "2"), ("120.00", "²"),
                                            ("120.00", "9" * 5000)])
def test_absurd_numbers_in_a_file_are_line_errors_not_crashes(manager, stores, amount, covers):
    body = ("check_no,store_code,closed_at,amount,covers,segment\n"
            f"C1,BJ01,2026-03-01T19:00:00+08:00,{amount},{covers},walk_in\n")
    r = post_csv(manager, "/api/v1/imports/checks", body)
    assert r.json["status"] == "failed" and [e["line"] for e in r.json["errors"]] == [2], r.json


@pytest.mark.parametrize("query", ["from=0001-01-01&to=0001-01-05", "from=9999-01-01&to=9999-01-02"])
def test_periods_outside_the_calendar_are_422(manager, stores, query):
    assert manager.get(f"/api/v1/reports/kpis?{query}").status_code == 422


def test_exports_quote_formulas_and_write_times_excel_can_hold(manager, login_api, member_factory):
    body = ("stay_no,store_code,arrival,departure,rooms,room_revenue,segment,company\n"
            "F1,HT01,2026-03-05,2026-03-07,1,800.00,business_fit,=HYPERLINK(1)\n")
    assert post_csv(manager, "/api/v1/imports/stays", body).json["imported"] == 1
    csv = manager.get("/api/v1/reports/rankings?store_code=HT01&year=2026&segment=business_fit&format=csv")
    assert "'=HYPERLINK" in csv.data.decode("utf-8-sig")
    person = member_factory()
    now = utcnow().isoformat()
    post_csv(manager, "/api/v1/imports/checks", "check_no,store_code,closed_at,amount,covers,segment,member_mobile\n"
                                                f"K1,BJ01,{now},-0.00,1,walk_in,{person['mobile']}\n")
    for group in ("champions", "loyal", "new", "at_risk", "lost", "others"):
        r = manager.get(f"/api/v1/reports/rfm?group={group}&format=xlsx")
        assert r.status_code == 200 and r.data[:2] == b"PK"
