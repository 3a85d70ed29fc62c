"""Review of issue 17 (prepaid-card report, KPI targets) in Chromium: at 1366×768 every column of the
prepaid-card report is in view inside its frame (no sideways scrolling of the table, even with a
store's outstanding in the millions), and a bad target's message sits in its cell at 390 px."""
import pytest
from playwright.sync_api import expect


def _frame(page):
    """(scrollWidth, clientWidth) of the table's scrolling frame, and its last column's right edge
    against the frame's."""
    return page.evaluate("""() => {
        const frame = document.querySelector('.table-scroll');
        const last = frame.querySelector('thead th:last-child').getBoundingClientRect();
        const box = frame.getBoundingClientRect();
        return {scroll: frame.scrollWidth, client: frame.clientWidth, last: last.right, right: box.right};
    }""")


def test_every_prepaid_column_is_in_view_at_1366(new_page, login, live_server, axe):
    from crm.core.timeutil import local_today
    year = live_server.run(local_today).year
    page = new_page(width=1366, height=768)
    login(page, "manager")
    page.goto(f"/reports/prepaid?year={year}")
    expect(page.get_by_text("Chain total").first).to_be_visible()
    # the figures as wide as they get: a chain owing millions
    page.evaluate("""() => document.querySelectorAll('td.num').forEach(td => {
        if (/\\d\\.\\d\\d$/.test(td.textContent)) td.textContent = '-12345678.90'; })""")
    got = _frame(page)
    assert got["scroll"] <= got["client"], got
    assert got["last"] <= got["right"] + 0.5, got
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    found = axe(page)
    assert not found, str(found)


@pytest.mark.parametrize("width, height", [(390, 844)])
def test_a_bad_growth_target_is_named_in_its_cell(new_page, login, live_server, width, height):
    from crm.core.timeutil import local_today
    year = live_server.run(local_today).year
    page = new_page(width=width, height=height)
    login(page, "manager")
    page.goto(f"/reports/targets?store_code=BJ02&year={year}")
    page.fill("[name=stored_value_growth_2]", "-5")
    with page.expect_navigation():
        page.get_by_role("button", name="Save targets").click()
    cell = page.locator("td:has([name=stored_value_growth_2])")
    expect(cell.locator(".error")).to_contain_text("0 or more, in per cent")
    expect(page.locator("[name=stored_value_growth_2]")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_every_target_column_is_in_view_at_1366(new_page, login):
    """The 12 × 5 targets grid: its last column (spend per head) was cut off inside the table's
    frame at 1366 px (1147 px of table in 1020), its long headings kept on one line each."""
    page = new_page(width=1366, height=768)
    login(page, "manager")
    page.goto("/reports/targets?store_code=BJ01&year=2026")
    got = _frame(page)
    assert got["scroll"] <= got["client"], got
    assert got["last"] <= got["right"] + 0.5, got
    box = page.locator("[name=spend_per_head_1]").bounding_box()
    assert box["x"] + box["width"] <= got["right"] + 0.5 and box["width"] >= 80, box
