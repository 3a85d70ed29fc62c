"""Issue 17.3 in Chromium at 1366 and 390 px: a cashier signs a bill to a company account at the
till (the company rate on the line, the credit left beside the choice, the receipt naming the
company with a signature line), then a manager reads the company's account and its monthly
statement; no page scrolls sideways and axe finds nothing serious."""
import re

import pytest
from playwright.sync_api import expect

SIZES = pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])


def _company_with_signer(live_server, member):
    """A company with a 15% negotiated discount whose account (limit 1,000.00) this member signs for."""
    from crm.core.actor import Actor
    from crm.corporate import service as corporate
    from crm.extensions import db
    from crm.members import companies
    from crm.members.models import Member

    actor = Actor.system("browser-test")

    def build():
        company = companies.create(actor, name=f"签单公司{member['id']}", account_class="key_account",
                                   discount_bp=1500)
        db.session.get(Member, member["id"]).company_id = company.id
        db.session.flush()
        corporate.save_account(actor, company.id, credit_limit=100000)
        corporate.add_signer(actor, company.id, member["id"])
        return company.id
    return live_server.run(build)


def _fits(page, axe, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    found = axe(page)
    assert not found, str(found)


@SIZES
def test_a_bill_signed_to_the_company_then_its_statement(new_page, login, axe, live_server, new_member, shot,
                                                         width, height):
    m = new_member(name="签单人")
    company_id = _company_with_signer(live_server, m)
    page = new_page(width=width, height=height)
    login(page, "cashier")
    page.goto("/till")
    page.fill("#f-card_code", m["mobile"])
    page.fill("#f-scan", "TEA*2")
    page.locator("#f-scan").press("Enter")  # till.js prices the bill in place
    # TEA 20.00 at the company's 15% off: 17.00 a cup, 34.00 for two.
    expect(page.locator("#member-total")).to_have_text("34.00")
    expect(page.locator(".lines")).to_contain_text("company rate")
    choice = page.get_by_role("radio", name="Charge to company account")
    expect(page.locator("#company-credit")).to_contain_text("1000.00")
    page.locator("label.chip.method", has_text="Charge to company account").click()  # a tap on the chip
    expect(choice).to_be_checked()
    _fits(page, axe, width)
    shot(page, f"corporate-till-{width}")
    page.locator("#confirm").click()
    expect(page).to_have_url(re.compile(r"/till/receipts/\d+"))
    expect(page.locator("#signed-to")).to_contain_text(f"签单公司{m['id']}")
    expect(page.locator(".receipt")).to_contain_text("Charged to company account")
    _fits(page, axe, width)

    manager = new_page(width=width, height=height)
    login(manager, "manager")
    manager.goto(f"/corporate/{company_id}")
    expect(manager.locator("#owed")).to_have_text("34.00")
    expect(manager.locator("#available")).to_have_text("966.00")  # 1,000.00 − 34.00
    _fits(manager, axe, width)
    shot(manager, f"corporate-account-{width}", full_page=True)
    with manager.expect_navigation():
        manager.locator("#statement-link").click()
    expect(manager.locator("#closing")).to_have_text("34.00")
    expect(manager.locator("#statement")).to_contain_text("签单人")
    expect(manager.locator("#download-pdf")).to_be_visible()
    _fits(manager, axe, width)
    shot(manager, f"corporate-statement-{width}", full_page=True)
