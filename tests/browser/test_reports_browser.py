"""Report pages in Chromium (issue 13, reports): the segment table fits a 1366 px laptop with
this year's actual figures in view, report pages print on A4, and a page's Excel download
opens with money and rates as numbers."""
from io import BytesIO

import pytest
from openpyxl import load_workbook

A4 = (210, 297)


def _year(live_server):
    from crm.core.timeutil import local_today
    return live_server.run(local_today).year


def test_the_segment_table_fits_a_laptop_with_the_actual_figures_in_view(page, login, live_server, shot):
    login(page, "manager")
    page.goto(f"/reports/segments?store_code=HT01&year={_year(live_server)}")
    shot(page, "reports-segments-1366")
    for table in ("#segment-totals", "#segment-rows"):
        box = page.locator(table).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1366, (table, box)
        overflow = page.locator(table).evaluate("t => t.parentElement.scrollWidth - t.parentElement.clientWidth")
        assert overflow <= 0, (table, overflow)  # no sideways scrolling inside the table's frame
    actual = page.locator("#segment-rows thead th.group").last
    assert actual.inner_text().strip() == "Actual" and actual.is_visible()
    box = actual.bounding_box()
    assert box["x"] + box["width"] <= 1366
    hotel_nights = page.locator("#segment-totals tbody tr").nth(4).locator("td").last.inner_text()
    assert int(hotel_nights) > 0  # the demo hotel's room nights this year


@pytest.mark.parametrize("path, size", [("/reports/?store_code=&from={y}-01-01&to={y}-01-31", A4),
                                        ("/reports/segments?store_code=HT01&year={y}", A4[::-1])])
def test_report_pages_print_on_a4(page, login, live_server, pdf, path, size):
    login(page, "manager")
    page.goto(path.format(y=_year(live_server)))
    _path, sizes = pdf(page, "report-" + path.split("?")[0].strip("/").replace("/", "-") or "kpis")
    assert sizes and all(abs(w - size[0]) < 1 and abs(h - size[1]) < 1 for w, h in sizes), sizes


def test_the_excel_download_of_a_page_has_numbers(page, login, live_server):
    login(page, "manager")
    year = _year(live_server)
    page.goto(f"/reports/rooms?store_code=HT01&from={year}-01-01&to={year}-12-31")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download Excel").click()
    sheet = load_workbook(BytesIO(open(download.value.path(), "rb").read())).active
    cells = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    assert cells["Occupancy %"].data_type == "n" and cells["Occupancy %"].number_format == "0.00%"
    assert 0 < cells["Occupancy %"].value < 1
    assert cells["Room revenue"].data_type == "n" and cells["Room revenue"].number_format == "#,##0.00"
