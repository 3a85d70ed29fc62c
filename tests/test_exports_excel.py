"""Downloads a manager can work with: Excel cells hold money and rates as numbers with number
formats (so SUM works), figures and columns are named in the page's language, and the bills
file gives each bill's local time to the second and words instead of codes."""
import re
from datetime import datetime
from io import BytesIO

import pytest
from openpyxl import load_workbook

from tests.test_reports import STAYS, post_csv
from tests.test_ui import text, ui_login

MARCH = "store_code=HT01&from=2026-03-01&to=2026-03-31"


@pytest.fixture
def manager(login_api):
    return login_api("manager")


def _sheet(response):
    assert response.status_code == 200 and response.data[:2] == b"PK", response.data[:200]
    return load_workbook(BytesIO(response.data)).active


def _by_label(sheet):
    return {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}


def test_room_kpis_in_excel_are_numbers_with_formats_and_named_in_the_page_language(app, staff, manager):
    post_csv(manager, "/api/v1/imports/stays", STAYS)
    ui = ui_login(app, staff["manager"], lang="en")
    sheet = _sheet(ui.get(f"/reports/rooms?{MARCH}&format=xlsx"))
    assert [c.value for c in sheet[1]] == ["Figure", "Value"]
    cells = _by_label(sheet)
    occupancy, revenue, adr = cells["Occupancy %"], cells["Room revenue"], cells["ADR"]
    assert (occupancy.data_type, occupancy.number_format) == ("n", "0.00%")
    assert occupancy.value == pytest.approx(0.0011)  # 0.11 %
    assert (revenue.data_type, revenue.number_format, revenue.value) == ("n", "#,##0.00", 1900)
    assert (adr.data_type, adr.value) == ("n", pytest.approx(271.43))
    assert cells["Rooms sold"].value == 5 and cells["Complimentary rooms"].value == 2
    csv = ui.get(f"/reports/rooms?{MARCH}&format=csv").data.decode("utf-8-sig").splitlines()
    assert csv[0] == "Figure,Value" and "Available rooms,6200" in csv and "Occupancy %,0.11" in csv


def test_every_table_download_types_its_money_and_rates(app, staff, manager):
    post_csv(manager, "/api/v1/imports/stays", STAYS)
    ui = ui_login(app, staff["manager"], lang="en")
    segments = _sheet(ui.get("/reports/segments?store_code=HT01&year=2026&month=3&format=xlsx"))
    header = [c.value for c in segments[1]]
    total = next(r for r in segments.iter_rows(min_row=2) if r[0].value == "Total")
    revenue = total[header.index("Actual · Room revenue")]
    occupancy = total[header.index("Actual · Occupancy %")]
    assert (revenue.data_type, revenue.number_format, revenue.value) == ("n", "#,##0.00", 1900)
    assert (occupancy.data_type, occupancy.number_format) == ("n", "0.00%")
    rival = manager.post("/api/v1/reports/competitors", json={"store_code": "HT01", "name": "竞品A", "rooms": 150})
    manager.put(f"/api/v1/reports/competitors/{rival.json['id']}/months", json={
        "year": 2026, "month": 3, "available_rooms": 4650, "rooms_sold": 3000, "room_revenue": "1200000.00"})
    for response in (ui.get("/reports/competitors?store_code=HT01&year=2026&month=3&format=xlsx"),
                     manager.get("/api/v1/reports/competitor-share?store_code=HT01&year=2026&month=3&format=xlsx")):
        share = _sheet(response)
        column = next(i for i, c in enumerate(share[1]) if c.value in ("Room revenue", "room_revenue"))
        revenue = [row[column] for row in share.iter_rows(min_row=2)]
        assert all(c.data_type == "n" and c.number_format == "#,##0.00" for c in revenue)
        assert sum(c.value for c in revenue[:-1]) == pytest.approx(revenue[-1].value)  # the rows add up to the total


def test_the_bills_file_has_local_times_to_the_second_and_words_not_codes(app, staff, manager, member_factory,
                                                                          catalogue, checkout, store_today):
    person = member_factory()
    assert checkout([("SALMON", 1)], member_id=person["id"], covers=2).status_code == 201
    post_csv(manager, "/api/v1/imports/checks", "check_no,store_code,closed_at,amount,covers,segment\n"
                                                "P1,BJ01,2026-03-05T11:00:00.123456Z,88.00,3,walk_in\n")
    ui = ui_login(app, staff["manager"], lang="en")
    lines = ui.get(f"/reports/bills?from=2026-03-01&to={store_today}&format=csv").data.decode(
        "utf-8-sig").splitlines()
    assert lines[0] == "Store,Closed at,Amount,Covers,Member no.,Joined here"
    assert lines[1] == "朝阳店,2026-03-05 19:00:00,88.00,3,,No"  # 11:00 UTC is 19:00 in Beijing
    assert re.fullmatch(rf"朝阳店,{store_today} \d\d:\d\d:\d\d,68.00,2,{person['id']},Yes", lines[2])  # joined today
    sheet = _sheet(ui.get(f"/reports/bills?from=2026-03-01&to={store_today}&format=xlsx"))
    first = list(sheet.iter_rows(min_row=2, max_row=2))[0]
    assert first[1].is_date and first[1].value == datetime(2026, 3, 5, 19, 0, 0)
    assert (first[2].data_type, first[2].number_format, first[2].value) == ("n", "#,##0.00", 88)


def test_report_pages_show_segment_names_not_keys(app, staff, manager):
    post_csv(manager, "/api/v1/imports/stays", STAYS)
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/reports/rankings?year=2026&segment=business_fit&by=revenue"))
    assert "Business FIT" in page and ">business_fit<" not in page and "· business_fit" not in page


def test_the_liability_page_downloads_as_csv_and_excel(app, staff, login_api, member_factory):
    person = member_factory()
    r = login_api("cashier").post(f"/api/v1/members/{person['id']}/wallet/top-ups",
                                  json={"store_code": "BJ01", "amount": "5000.00", "payment_method": "cash"})
    assert r.status_code == 201, r.json
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/reports/liability"))
    assert "/reports/liability/download?format=csv" in page and "/reports/liability/download?format=xlsx" in page
    lines = ui.get("/reports/liability/download?format=csv").data.decode("utf-8-sig").splitlines()
    assert lines[0] == "Figure,Value"
    assert "Stored value: principal,5000.00" in lines and "Stored value: bonus,600.00" in lines  # the 5,000 tier
    cells = _by_label(_sheet(ui.get("/reports/liability/download?format=xlsx")))
    assert (cells["Stored value: principal"].value, cells["Stored value: principal"].number_format) == (
        5000, "#,##0.00")
    assert ui.get("/reports/liability/download?format=pdf").status_code == 302
    assert ui_login(app, staff["cashier"]).get("/reports/liability/download?format=csv").status_code in (302, 403)
