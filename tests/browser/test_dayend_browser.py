"""The cashier's day-end (issue 17.4) in Chromium at 1366 and 390 px: a cashier's bill of today
shows in the manager's day-end for the store (total, per cashier, by tender), the page prints
without its forms, and the manager records that they checked the day; no page scrolls sideways
and axe finds nothing serious. A screenshot of each at both widths goes to artifacts/screenshots/."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS

SHOTS = SCREENSHOTS
SIZES = pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])


def _fits(page, axe, width, shot):
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    found = axe(page)
    assert not found, str(found)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{shot}-{width}.png"), full_page=True)


def _bill_by_the_cashier(page):
    """A bill closed by the demo cashier at BJ01 now, paid by Alipay, through the API."""
    token = page.request.post("/api/v1/auth/token", data={"username": "cashier", "password": "demo1234"}).json()
    r = page.request.post("/api/v1/checkouts", headers={"Authorization": f"Bearer {token['token']}"},
                          data={"store_code": "BJ01", "items": [{"sku": "TEA", "qty": 1}],
                                "tenders": [{"method": "alipay"}]})
    assert r.status == 201, r.text()
    return r.json()


@SIZES
def test_day_end_printed_and_checked(new_page, login, axe, width, height):
    page = new_page(width=width, height=height)
    _bill_by_the_cashier(page)
    login(page, "manager")
    page.goto("/day-end/")  # today at the manager's store
    expect(page.get_by_role("heading", level=1)).to_contain_text("Day-end")
    expect(page.get_by_role("heading", name="Store total")).to_be_visible()
    expect(page.get_by_role("heading", name="Cashier: 赵收银")).to_be_visible()
    expect(page.locator("tr[data-tender=alipay]").first).to_be_visible()
    _fits(page, axe, width, "dayend")

    page.emulate_media(media="print")
    expect(page.locator("form[method=get]")).to_be_hidden()
    expect(page.get_by_role("button", name="Record that I checked this day")).to_be_hidden()
    expect(page.locator(".print-only").first).to_be_visible()
    page.emulate_media(media="screen")

    page.fill("[name=note]", "drawer counted")
    with page.expect_navigation():
        page.get_by_role("button", name="Record that I checked this day").click()
    expect(page.get_by_text("Day-end checked.")).to_be_visible()
    expect(page.locator("#check-status")).to_contain_text("Checked by 王经理 at")
    expect(page.locator("#check-status")).to_contain_text("drawer counted")
    _fits(page, axe, width, "dayend-checked")
