"""The report pages a manager uses: imports with line-numbered problems, KPIs with charts,
plans, the competitive set, downloads."""
import io
import re

from tests.test_reports import STAYS
from tests.test_ui import text, ui_login


def upload(ui, kind, body, skip=False):
    ui.get("/reports/imports")
    data = {"kind": kind, "file": (io.BytesIO(body.encode("utf-8")), "export.csv")}
    if skip:
        data["skip_bad_rows"] = "on"
    return ui.post("/reports/imports", data, content_type="multipart/form-data")


def test_import_page_lists_each_bad_line_and_imports_nothing(app, staff):
    ui = ui_login(app, staff["manager"], lang="en")
    bad = STAYS.replace("S3,HT01,2026-03-10,2026-03-10", "S3,HT01,2026-03-10,2026-03-01")
    r = upload(ui, "stays", bad)
    assert r.status_code == 303  # to the job's page (the test app runs the job before answering)
    page = text(ui.get(r.headers["Location"]))
    assert "Nothing was imported: 1 row has a problem." in page
    assert re.search(r'class="num">4</td><td><ul class="problems"><li>departure is before arrival.</li>'
                     r'<li>A day-use stay arrives and departs on the same day.</li></ul>', page)  # every problem
    r = upload(ui, "stays", bad, skip=True)
    assert r.status_code == 303 and "4 new rows, 0 updated, 1 skipped." in text(ui.get(r.headers["Location"]))
    rooms = text(ui.get("/reports/rooms?store_code=HT01&from=2026-03-01&to=2026-03-31"))
    assert "1600.00" in rooms  # S1's third (400) and S2's two thirds (1200); S3 was the bad row
    r = upload(ui, "stays", "")
    assert r.status_code == 422
    rooms_url = "/reports/rooms?store_code=HT01&from=2026-03-01&to=2026-03-31"
    ui.get(rooms_url)
    r = ui.post(rooms_url, {"store_code": "HT01", "effective_from": "2026-03-01", "rooms": "-5", "reason": "装修"})
    assert r.status_code == 422 and 'id="e-rooms"' in text(r) and 'value="装修"' in text(r)
    r = ui.post(rooms_url, {"store_code": "HT01", "effective_from": "2026-03-01", "rooms": "100", "reason": "装修"})
    assert r.status_code == 302
    page = text(ui.get(r.headers["Location"]))
    assert "Room count recorded." in page and "3100" in page  # 100 rooms × 31 days


def test_kpi_page_shows_the_figures_charts_and_downloads(app, staff):
    ui = ui_login(app, staff["manager"], lang="en")
    r = ui.get("/reports/", follow_redirects=True)
    assert r.status_code == 200
    page = text(r)
    assert "Walk-in card-issue rate %" in page and "<svg" in page and "Download Excel" in page
    bad = ui.get("/reports/?from=2026-03-31&to=2026-03-01")
    assert bad.status_code == 422 and "The period ends before it starts." in text(bad)
    csv = ui.get("/reports/?from=2026-03-01&to=2026-03-31&format=csv")
    lines = csv.data.decode("utf-8-sig").splitlines()
    assert csv.mimetype == "text/csv" and lines[0] == "Figure,Value" and "Members,0" in lines  # the page's words


def test_plans_form_feeds_the_segment_table(app, staff):
    ui = ui_login(app, staff["manager"], lang="en")
    ui.get("/reports/plans")
    r = ui.post("/reports/plans", {"store_code": "HT01", "year": "2026", "month": "3",
                                   "nights_business_fit": "10", "adr_business_fit": "450.00",
                                   "nights_online_fit": "x"})
    assert r.status_code == 422 and "Room nights are a whole number." in text(r)
    r = ui.post("/reports/plans", {"store_code": "HT01", "year": "2026", "month": "3",
                                   "nights_business_fit": "10", "adr_business_fit": "450.00"})
    assert r.status_code == 302
    page = text(ui.get(r.headers["Location"]))
    assert "4500.00" in page and "450.00" in page


def test_competitive_set_page(app, staff):
    ui = ui_login(app, staff["manager"], lang="en")
    page_url = "/reports/competitors?store_code=HT01&year=2026&month=3"
    ui.get(page_url)
    r = ui.post(page_url, {"op": "add", "store_code": "HT01", "name": "竞品A", "rooms": "150"})
    assert r.status_code == 302
    page = text(ui.get(page_url))
    assert "No figures for this period yet: 竞品A" in page
    competitor_id = re.search(r'<option value="(\d+)"[^>]*>竞品A', page)[1]
    r = ui.post(page_url, {"op": "month", "competitor_id": competitor_id, "year": "2026", "month": "3",
                           "available_rooms": "4650", "rooms_sold": "5000", "room_revenue": "100.00"})
    assert r.status_code == 422 and "More rooms sold than available." in text(r)
    r = ui.post(page_url, {"op": "month", "competitor_id": competitor_id, "year": "2026", "month": "3",
                           "available_rooms": "4650", "rooms_sold": "3000", "room_revenue": "1200000.00"})
    assert r.status_code == 302
    page = text(ui.get(page_url))
    assert "64.52" in page and "258.06" in page


def test_reports_tab_for_managers_only(app, staff):
    assert "/reports/" in text(ui_login(app, staff["manager"]).get("/"))
    assert "/reports/" not in text(ui_login(app, staff["front_desk"]).get("/"))


def test_year_reports_keep_their_filters(app, staff):
    ui = ui_login(app, staff["manager"], lang="en")
    r = ui.get("/reports/segments?store_code=HT01")
    assert r.status_code == 302 and "store_code=HT01" in r.headers["Location"] and "year=" in r.headers["Location"]
    page = text(ui.get("/reports/segments?store_code=HT01&year=2026&month=3"))
    assert 'name="year"' in page and 'name="month"' in page and 'name="from"' not in page
    assert "rooms" in text(ui.get("/reports/rooms?store_code=HT01", follow_redirects=True)).lower()
    r = ui.get("/reports/rooms?store_code=HT01")
    assert "store_code=HT01" in r.headers["Location"]


def test_month_by_month_page_charts_nights_by_month(app, staff, login_api):
    from tests.test_reports import post_csv
    post_csv(login_api("manager"), "/api/v1/imports/stays", STAYS)
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/reports/monthly?store_code=HT01&year=2026"))
    assert page.count("<svg") == 2
    assert "<title>02: 4</title>" in page  # February 2026: S1 on the 27th and 28th, S5 on the 1st and 2nd


def test_plan_form_refuses_odd_numbers_beside_their_fields(app, staff):
    ui = ui_login(app, staff["manager"], lang="en")
    ui.get("/reports/plans")
    r = ui.post("/reports/plans", {"store_code": "HT01", "year": "²⁰²⁶", "month": "3", "nights_business_fit": "²"})
    assert r.status_code == 422
    assert "Give a year such as 2026." in text(r) and "Room nights are a whole number." in text(r)
    r = ui.post("/reports/plans", {"store_code": "HT01", "year": "2026", "month": "13", "nights_business_fit": "5"})
    assert r.status_code == 422 and "A month is 1 to 12." in text(r)
