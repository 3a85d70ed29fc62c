"""Review of issue 17.3 in Chromium, keyboard only, at 1366 and 390 px: a cashier picks
"Charge to company account" with the arrow keys, reaches Confirm with Tab and presses Enter; a
bill over the credit left is refused beside "Paid by" and nothing is signed; a split of signed +
cash typed into the split fields closes with both parts."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_corporate_browser import _company_with_signer

SIZES = pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])


def _tab_to(page, element_id, limit=80):
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with Tab")


def _owed(live_server, company_id):
    from crm.corporate import service
    return live_server.run(lambda: service.get_account(company_id).owed)


def _set_limit(live_server, company_id, fen):
    from crm.core.actor import Actor
    from crm.corporate import service
    live_server.run(lambda: service.save_account(Actor.system("browser-test"), company_id, credit_limit=fen) and None)


def _start_bill(page, mobile, scan):
    page.goto("/till")
    page.locator("#f-card_code").focus()
    page.keyboard.type(mobile)
    page.keyboard.press("Tab")
    page.locator("#f-scan").focus()
    page.keyboard.type(scan)
    page.keyboard.press("Enter")


@SIZES
def test_sign_for_bill_with_the_keyboard_only(new_page, login, live_server, new_member, width, height):
    m = new_member(name="键盘签单")
    company_id = _company_with_signer(live_server, m)
    page = new_page(width=width, height=height)
    login(page, "cashier")
    _start_bill(page, m["mobile"], "TEA*2")
    expect(page.locator("#member-total")).to_have_text("34.00")  # 2 × 17.00 at the company's 15% off
    cash = page.get_by_role("radio", name="Cash")
    choice = page.get_by_role("radio", name="Charge to company account")
    cash.focus()
    for _ in range(8):  # arrow keys move the choice within the radio group
        if choice.is_checked():
            break
        page.keyboard.press("ArrowRight")
    expect(choice).to_be_checked()
    # The radio itself is invisible inside its chip: the chip shows where the keyboard is.
    chip = page.locator("label.chip.method", has_text="Charge to company account")
    assert chip.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    _tab_to(page, "confirm")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/till/receipts/\d+"))
    expect(page.locator("#signed-to")).to_contain_text(f"签单公司{m['id']}")
    assert _owed(live_server, company_id) == 3400

    # Over the credit left (limit now 50.00, 34.00 owed: 16.00 left) for another 34.00: refused
    # beside "Paid by", the page stays, nothing more is owed.
    _set_limit(live_server, company_id, 5000)
    _start_bill(page, m["mobile"], "TEA*2")
    expect(page.locator("#member-total")).to_have_text("34.00")
    expect(page.locator("#company-credit")).to_contain_text("16.00")
    choice.focus()
    page.keyboard.press("Space")
    expect(choice).to_be_checked()
    _tab_to(page, "confirm")
    page.keyboard.press("Enter")
    expect(page.locator("#e-tenders")).to_contain_text("16.00 is available")
    expect(page).to_have_url(re.compile(r"/till(\?.*)?$"))
    assert _owed(live_server, company_id) == 3400
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # The split: 16.00 signed, the 18.00 rest typed as cash, all from the keyboard.
    expect(page.locator("details.split")).to_have_attribute("open", "")  # opened beside the error
    # Entering an empty part fills it with what is still due (till.js), selected, so the amount the
    # cashier types replaces it. The cash part then fills with the 18.00 rest.
    page.locator("#f-split_company_account").focus()
    expect(page.locator("#f-split_company_account")).to_have_value("34.00")
    page.keyboard.type("16.00")
    expect(page.locator("#f-split_company_account")).to_have_value("16.00")
    page.locator("#f-split_cash").focus()
    expect(page.locator("#f-split_cash")).to_have_value("18.00")
    _tab_to(page, "confirm")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/till/receipts/\d+"))
    expect(page.locator(".receipt")).to_contain_text("16.00")
    expect(page.locator(".receipt")).to_contain_text("18.00")
    assert _owed(live_server, company_id) == 5000
