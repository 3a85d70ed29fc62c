"""Monthly KPI targets per store (issue 17.6), beside the actual figures, worked by hand."""
import calendar
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def manager(login_api):
    return login_api("manager")


def _months(store_today):
    today = date.fromisoformat(store_today)
    y, m = today.year, today.month
    last = (y, m - 1) if m > 1 else (y - 1, 12)
    return (y, m), last, (y - 1, m)


def _row(rows, key):
    return next(r for r in rows if r["key"] == key)


def test_targets_beside_actuals_by_hand(app, staff, manager, member_factory, issue_card, cashier, catalogue, checkout,
                                        clock, store_today):
    (y, m), (ly, lm), (yy, ym) = _months(store_today)
    now = clock.now()
    a = member_factory()
    assert issue_card(a["id"]).status_code == 201

    def top_up(amount):
        r = cashier.post(f"/api/v1/members/{a['id']}/wallet/top-ups",
                         json={"store_code": "BJ01", "amount": amount, "payment_method": "cash"})
        assert r.status_code == 201, r.json
    clock.set(datetime(yy, ym, 10, 10, tzinfo=SHANGHAI))
    top_up("400.00")   # the same month last year (同比)
    clock.set(datetime(ly, lm, 10, 10, tzinfo=SHANGHAI))
    top_up("1000.00")  # last month
    clock.set(now)
    top_up("1500.00")  # this month
    assert checkout([("SALMON", 2)], member_id=a["id"], covers=2).status_code == 201  # 136.00, a joined here
    assert checkout([("TEA", 1)], covers=1).status_code == 201                        # non-member 20.00
    member_factory()  # b: the second new member

    body = {"months": [{"month": m, "new_members": 5, "stored_value_growth": "40.00", "card_issue_rate": "40.00",
                        "member_share": "62.50", "spend_per_head": "60.00"}]}
    r = manager.put(f"/api/v1/kpi-targets/BJ01/{y}", json=body)
    assert r.status_code == 200, r.json
    saved = r.json["months"]
    assert len(saved) == 12 and saved[m - 1] == {**body["months"][0]}
    assert all(v is None for line in saved if line["month"] != m for k, v in line.items() if k != "month")
    assert manager.get(f"/api/v1/kpi-targets/BJ01/{y}").json == r.json

    last_day = calendar.monthrange(y, m)[1]
    k = manager.get(f"/api/v1/reports/kpis?store_code=BJ01&from={y}-{m:02d}-01&to={y}-{m:02d}-{last_day}")
    assert k.status_code == 200, k.json
    assert (k.json["new_members"], k.json["card_issue_rate"], k.json["member_check_share"],
            k.json["spend_per_head"], k.json["topup_principal"]) == (2, "50.00", "50.00", "52.00", "1500.00")
    t = k.json["targets"]
    assert (t["store_code"], t["year"], t["month"]) == ("BJ01", y, m)
    rows = t["rows"]
    assert [r["key"] for r in rows] == ["new_members", "stored_value_growth_month_on_month",
                                        "stored_value_growth_year_on_year", "card_issue_rate", "member_share",
                                        "spend_per_head"]
    assert _row(rows, "new_members") == {"key": "new_members", "target": 5, "actual": 2, "gap": -3}
    mom = _row(rows, "stored_value_growth_month_on_month")
    assert (mom["target"], mom["actual"], mom["gap"], mom["this_period"], mom["compared_with"], mom["growth_rate"]) \
        == ("40.00", "50.00", "10.00", "1500.00", "1000.00", "50.00")  # growth % (the spec): 1500 ÷ 1000 − 1
    yoy = _row(rows, "stored_value_growth_year_on_year")
    assert (yoy["target"], yoy["actual"], yoy["gap"], yoy["compared_with"], yoy["growth_rate"]) \
        == ("40.00", "275.00", "235.00", "400.00", "275.00")  # 1500 ÷ 400 − 1 = 275 %, 235 points over 40
    # 1 joiner ÷ (1 non-member bill + 1 joiner); 1 member bill of 2; 156.00 ÷ 3 covers
    assert [(r["target"], r["actual"], r["gap"]) for r in rows[3:]] == [
        ("40.00", "50.00", "10.00"), ("62.50", "50.00", "-12.50"), ("60.00", "52.00", "-8.00")]

    # another store, no targets: every target and gap is empty
    other = manager.get(f"/api/v1/reports/kpis?store_code=BJ02&from={y}-{m:02d}-01&to={y}-{m:02d}-{last_day}").json
    assert all(r["target"] is None and r["gap"] is None for r in other["targets"]["rows"])
    # a period that is not one calendar month (or no store) gets no targets
    assert "targets" not in manager.get(f"/api/v1/reports/kpis?store_code=BJ01&from={y}-{m:02d}-01"
                                        f"&to={y}-{m:02d}-01").json

    # the page shows them, labelled, with "—" where a target is not set
    from tests.test_ui import text, ui_login
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get(f"/reports/?store_code=BJ01&from={y}-{m:02d}-01&to={y}-{m:02d}-{last_day}"))
    assert "month on month" in page and "year on year (同比" in page
    assert "235.00" in page and "275.00" in page and "-12.50" in page
    manager.put(f"/api/v1/kpi-targets/BJ01/{y}", json={"months": [{"month": m, "new_members": 5}]})
    page = text(ui.get(f"/reports/?store_code=BJ01&from={y}-{m:02d}-01&to={y}-{m:02d}-{last_day}"))
    spend = re.search(r'data-key="spend_per_head">.*?</tr>', page, re.S).group(0)
    assert spend.count("—") == 2 and "52.00" in spend  # target and gap empty, actual shown


@pytest.mark.parametrize("role", ["marketing", "cashier", "front_desk"])
def test_only_managers_set_targets(login_api, stores, role):
    r = login_api(role).put("/api/v1/kpi-targets/BJ01/2026", json={"months": [{"month": 1, "new_members": 3}]})
    assert r.status_code == 403


@pytest.mark.parametrize("line, field", [
    ({"month": 13}, "month"),
    ({"month": 0}, "month"),
    ({"month": 3, "new_members": -1}, "new_members"),
    ({"month": 3, "stored_value_growth": "-12.50"}, "stored_value_growth"),
    ({"month": 3, "spend_per_head": "12.345"}, "spend_per_head"),
    ({"month": 3, "card_issue_rate": "100.01"}, "card_issue_rate"),
    ({"month": 3, "member_share": "-1"}, "member_share"),
    ({"month": 3, "member_share": "abc"}, "member_share"),
])
def test_bad_targets_are_422_and_save_nothing(manager, stores, line, field):
    r = manager.put("/api/v1/kpi-targets/BJ01/2026", json={"months": [{"month": 2, "new_members": 7}, line]})
    assert r.status_code == 422, r.json
    assert field in str(r.json)
    assert manager.get("/api/v1/kpi-targets/BJ01/2026").json["months"][1]["new_members"] is None


def test_unknown_store_and_year_out_of_range_are_422(manager, stores):
    assert manager.put("/api/v1/kpi-targets/NOPE/2026", json={"months": [{"month": 1}]}).status_code in (404, 422)
    assert manager.get("/api/v1/kpi-targets/BJ01/1999").status_code == 422


def test_the_form_saves_a_year_and_shows_errors_beside_the_cell(app, staff, stores):
    from tests.test_ui import text, ui_login
    ui = ui_login(app, staff["manager"], lang="en")
    page = ui.get("/reports/targets?store_code=BJ01&year=2026")
    assert page.status_code == 200 and 'name="card_issue_rate_12"' in text(page)
    form = {"store_code": "BJ01", "year": "2026", "new_members_1": "10", "card_issue_rate_1": "12.5",
            "spend_per_head_2": "88.00", "member_share_3": "101"}
    r = ui.post("/reports/targets", form)
    assert r.status_code == 422
    cell = re.search(r'<td class="has-error"><input name="member_share_3".*?</td>', text(r), re.S)
    assert cell and "0 to 100" in cell.group(0) and 'value="101"' in cell.group(0)
    form["member_share_3"] = "45"
    r = ui.post("/reports/targets", form)
    assert r.status_code == 302, text(r)[:500]
    page = text(ui.get("/reports/targets?store_code=BJ01&year=2026"))
    for name, value in (("new_members_1", "10"), ("card_issue_rate_1", "12.50"), ("spend_per_head_2", "88.00"),
                        ("member_share_3", "45.00")):
        assert re.search(rf'name="{name}" value="{re.escape(value)}"', page), name


def test_two_managers_saving_the_same_new_month_at_once_both_land_on_one_row(app, manager, stores):
    """The first save of a month by two managers at once: neither is a 500 on the unique key;
    one row holds the targets of whichever came last."""
    from sqlalchemy import func, select

    from crm.extensions import db
    from crm.reports.models import KpiTarget
    from tests.test_races import api_call, race

    def save(i):
        body = {"months": [{"month": 5, "new_members": 10 + i, "member_share": "50.00"}]}
        return api_call(app, manager.token, "PUT", "/api/v1/kpi-targets/BJ01/2031", body)
    results = race(4, save)
    assert [status for status, _code, _body in results] == [200] * 4, results
    with app.app_context():
        rows = db.session.scalars(select(KpiTarget).where(KpiTarget.year == 2031)).all()
        assert len(rows) == 1 and rows[0].new_members in {10, 11, 12, 13} and rows[0].member_share == 5000
        assert db.session.scalar(select(func.count()).select_from(KpiTarget)) == 1
    got = manager.get("/api/v1/kpi-targets/BJ01/2031").json["months"][4]
    assert got["member_share"] == "50.00" and got["new_members"] == rows[0].new_members


def test_the_first_month_reports_cover_has_targets_and_nothing_to_compare_with(manager, stores):
    """January 2000, the first month a report covers: the KPIs with its targets answer 200 (the
    month before it is not a 422), with growth compared against nothing."""
    r = manager.get("/api/v1/reports/kpis?store_code=BJ01&from=2000-01-01&to=2000-01-31")
    assert r.status_code == 200, r.json
    rows = {row["key"]: row for row in r.json["targets"]["rows"]}
    assert rows["stored_value_growth_month_on_month"]["compared_with"] == "0.00"
    assert rows["stored_value_growth_year_on_year"]["compared_with"] == "0.00"
