"""Review of the day-end (issue 17.4) in Chromium at 1366 and 390 px: a bill signed to a company
shows as "Charged to company account" and stays out of the money taken; a void while the manager
has the page open is not signed off unseen (the check is refused, the new figures shown, the
second press records); printing hides the forms and keeps the figures. No page scrolls sideways
and axe finds nothing serious."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_corporate_browser import _company_with_signer

SIZES = pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])


def _fits(page, axe, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    found = axe(page)
    assert not found, str(found)


def _api(page, username):
    token = page.request.post("/api/v1/auth/token", data={"username": username, "password": "demo1234"}).json()
    return {"Authorization": f"Bearer {token['token']}"}


def _bill(page, headers, **body):
    r = page.request.post("/api/v1/checkouts", headers=headers,
                          data={"store_code": "BJ01", "items": [{"sku": "TEA", "qty": 1}], **body})
    assert r.status == 201, r.text()
    return r.json()


@SIZES
def test_sign_for_bill_and_a_void_while_the_page_is_open(new_page, login, axe, live_server, new_member,
                                                         width, height):
    m = new_member(name="日结签单")
    _company_with_signer(live_server, m)
    page = new_page(width=width, height=height)
    cashier, manager = _api(page, "cashier"), _api(page, "manager")
    signed = _bill(page, cashier, member_id=m["id"], tenders=[{"method": "company_account"}])
    assert signed["tenders"][0]["method"] == "company_account"
    cash = _bill(page, cashier, tenders=[{"method": "cash"}])

    login(page, "manager")
    page.goto("/day-end/")
    row = page.locator("tr[data-tender=company_account]").first
    expect(row.get_by_role("rowheader")).to_have_text("Charged to company account")
    expect(page.locator("#takings")).not_to_contain_text("company")
    _fits(page, axe, width)

    # While the manager counts the drawer, the cash bill is voided.
    r = page.request.post(f"/api/v1/checkouts/{cash['id']}/void", headers=manager, data={"reason": "rang twice"})
    assert r.status == 201, r.text()
    page.fill("[name=note]", "drawer counted")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Record that I checked this day").click()
    assert nav.value.status == 409
    expect(page.locator("#check-status")).to_contain_text("The figures changed while you had the page open")
    expect(page.locator("#voids")).to_contain_text("rang twice")
    expect(page.locator("[name=note]")).to_have_value("drawer counted")
    _fits(page, axe, width)
    with page.expect_navigation():
        page.get_by_role("button", name="Record that I checked this day").click()
    expect(page.get_by_text("Day-end checked.")).to_be_visible()
    expect(page.locator("#check-status")).to_contain_text("drawer counted")

    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Record that I checked this day")).to_be_hidden()
    expect(page.locator("#voids")).to_be_visible()
    expect(page.locator("#takings")).to_be_visible()
    if width > 1000:  # a print goes to paper, not to the phone's 390 px; an A4 page is about 720 px wide
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.pdf(format="A4")[:4] == b"%PDF"
    assert re.search(r"\d", page.locator("#takings").inner_text())
