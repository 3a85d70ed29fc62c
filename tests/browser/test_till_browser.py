"""The till in a real browser at 1366x768: a cashier with a keyboard and a scanner (and touch)."""
import re

import pytest
from playwright.sync_api import expect


def _scan(page, code):
    """A keyboard-wedge scanner: the code typed fast, then Enter, into whatever has focus."""
    page.keyboard.type(code, delay=2)
    page.keyboard.press("Enter")


def _in_view(page, selector):
    """The element can be seen as the page is now, without scrolling anything: it lies inside
    the window, and what is drawn near its top-left and bottom-right corners (inside any
    rounding) is the element, not something scrolled over it or clipping it."""
    return page.locator(selector).first.evaluate("""e => {
      const r = e.getBoundingClientRect();
      if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth || !r.height) return false;
      const at = (x, y) => {
        const hit = document.elementFromPoint(x, y);
        return hit && (hit === e || e.contains(hit));
      };
      const dx = Math.min(12, r.width / 4), dy = Math.min(6, r.height / 4);
      return at(r.left + dx, r.top + dy) && at(r.right - dx, r.bottom - dy);
    }""")


def _overlaps(a, b):
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def _checkouts(live_server, member_id):
    from crm.checkout.models import Checkout

    return live_server.run(lambda: [(c.id, c.due, c.wallet_paid, c.points_redeemed, c.coupon_discount,
                                     sorted((t.method, t.amount) for t in c.tenders))
                                    for c in Checkout.query.filter_by(member_id=member_id)])


def test_keyboard_and_scanner_journey_to_an_80mm_receipt(page, login, shot, pdf, new_member, live_server):
    from crm.programme import service as programme

    m = new_member(name="扫码顾客", top_up="500", pin="246810", points=300, coupons=("CASH50",))
    point_fen = live_server.run(programme.get, "point_value")
    login(page, "cashier")
    page.goto("/till")
    scan = page.locator("#f-scan")
    expect(scan).to_be_focused()  # ready for the scanner
    assert page.evaluate("document.documentElement.scrollHeight") <= 768  # the till fits the laptop's window
    shot(page, "till-before")

    # The scanner: an item's SKU + Enter lands on the bill; a member's card + Enter names the guest.
    _scan(page, "LOBSTER")
    expect(page.locator(".lines tr[data-sku=LOBSTER]")).to_be_visible()
    expect(scan).to_be_focused()
    _scan(page, m["card_no"])
    expect(page.locator(".member-strip")).to_contain_text("扫码顾客")
    expect(page.locator("#points-available")).to_have_text("300")
    # Pinyin initials find 三文鱼刺身 (SALMON) by keyboard; one match + Enter adds it.
    _scan(page, "swycs")
    expect(page.locator(".lines tr[data-sku=SALMON]")).to_be_visible()
    # Touch: + on a line, a tile in the catalogue.
    page.locator(".lines tr[data-sku=SALMON] button[name=inc]").click()
    expect(page.locator(".lines tr[data-sku=SALMON] input.qty")).to_have_value("2")
    page.locator(".tile[value=TEA]").click()
    expect(page.locator(".lines tr[data-sku=TEA]")).to_be_visible()
    # 328 + 2 x 68 + 20 = 484 at member prices.
    expect(page.locator("#member-total")).to_have_text("484.00")

    # One tap applies the member's coupon (no code typed).
    page.locator("button.coupon").first.click()
    expect(page.locator("#coupon-discount")).to_have_text("−50.00")
    # Points: the maximum usable is shown; redeem 100 with the keyboard.
    expect(page.locator("#max-points")).to_contain_text("300")
    page.locator("#f-redeem_points").fill("100")
    page.keyboard.press("Enter")
    points_off = 100 * point_fen  # fen
    expect(page.locator("#points-value")).to_have_text(f"−{points_off / 100:.2f}")
    # Stored value above the bill says the maximum allowed.
    most = 48400 - 5000 - points_off
    page.locator("#f-wallet_amount").fill("999")
    page.keyboard.press("Enter")
    expect(page.locator("#e-wallet_amount")).to_contain_text(f"{most / 100:.2f}")
    page.locator("#f-wallet_amount").fill("300")  # above the 200.00 the PIN is needed from
    page.keyboard.press("Enter")
    expect(page.locator("#wallet-paid")).to_have_text("−300.00")
    due = most - 30000
    expect(page.locator("#due")).to_have_text(f"{due / 100:.2f}")
    # The rest by WeChat Pay.
    page.get_by_label("WeChat Pay").first.check()
    page.locator("#f-redeem_points").press("Enter")
    expect(page.locator("#due")).to_have_text(f"{due / 100:.2f}")

    # After pricing: lines, savings, points and the confirm button are in view without scrolling,
    # and the confirm button covers no field.
    shot(page, "till-after")
    for selector in (".lines tr[data-sku=LOBSTER]", ".lines tr[data-sku=TEA]", "#savings", "#points-earned",
                     "#due", "#confirm"):
        assert _in_view(page, selector), selector
    assert page.evaluate("document.documentElement.scrollHeight") <= 768
    confirm = page.locator("#confirm").bounding_box()
    for control in page.locator("form.till input:visible, form.till select:visible, form.till textarea:visible").all():
        box = control.bounding_box()
        if box and box["height"] > 0:
            assert not _overlaps(confirm, box), control.evaluate("e => e.outerHTML")
    shot(page, "till-after")

    # A wrong PIN: refused, the field emptied, the PIN never in the page.
    page.locator("#f-pin").fill("111111")
    page.locator("#confirm").click()
    expect(page.locator("#e-pin")).to_contain_text("tries left")
    expect(page.locator("#f-pin")).to_have_value("")
    assert "111111" not in page.content()
    assert _checkouts(live_server, m["id"]) == []

    page.locator("#f-pin").fill("246810")
    with page.expect_navigation():
        page.locator("#confirm").click()
    expect(page).to_have_url(re.compile(r"/till/receipts/\d+"))
    assert "246810" not in page.content()
    [(_id, closed_due, wallet_paid, redeemed, coupon, tenders)] = _checkouts(live_server, m["id"])
    assert (closed_due, wallet_paid, redeemed, coupon) == (due, 30000, 100, 5000)
    assert tenders == [("stored_value", 30000), ("wechat_pay", due)]
    expect(page.locator(".receipt")).to_contain_text("WeChat Pay")

    # The receipt prints on an 80 mm roll, its item lines at 9 pt or more.
    page.emulate_media(media="print")
    sizes = page.locator(".receipt .rcpt-line td").evaluate_all(
        "cells => cells.map(c => parseFloat(getComputedStyle(c).fontSize))")
    assert sizes and min(sizes) >= 12, sizes  # 9 pt = 12 CSS px
    shot(page, "receipt-print", full_page=True)
    _path, pages = pdf(page, "receipt-80mm")
    assert pages and all(width == pytest.approx(80, abs=0.5) for width, _height in pages), pages
    assert len(pages) == 1, pages


def test_the_till_works_without_javascript(new_page, login, live_server):
    page = new_page(java_script_enabled=False)
    login(page, "cashier")
    page.goto("/till")
    page.locator("#f-scan").fill("TEA")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".lines tr[data-sku=TEA] input.qty")).to_have_value("1")
    with page.expect_navigation():
        page.locator(".tile[value=SALMON]").click()
    with page.expect_navigation():
        page.locator(".lines tr[data-sku=SALMON] button[name=inc]").click()
    expect(page.locator(".lines tr[data-sku=SALMON] input.qty")).to_have_value("2")
    expect(page.locator("#list-total")).to_have_text("236.00")  # a guest: 2 x 108 + 20
    page.get_by_label("Bank card").first.check()
    with page.expect_navigation():
        page.locator("#confirm").click()
    expect(page).to_have_url(re.compile(r"/till/receipts/\d+"))
    expect(page.locator(".receipt")).to_contain_text("Bank card")


@pytest.mark.parametrize("width, height", [(768, 1024), (390, 844)])
def test_the_till_fits_a_tablet_and_a_phone(new_page, login, shot, axe, width, height):
    page = new_page(width=width, height=height)
    login(page, "cashier")
    page.goto("/till")
    page.locator(".tile[value=SALMON]").click()
    expect(page.locator("#list-total")).to_have_text("108.00")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing runs off the side
    spilling = page.evaluate("[...document.querySelectorAll('.tile')].filter(t => t.scrollWidth > t.clientWidth + 1)"
                             ".map(t => t.value)")
    assert spilling == []  # nor out of its tile
    page.locator("#confirm").scroll_into_view_if_needed()
    assert _in_view(page, "#confirm")
    shot(page, f"till-{width}", full_page=True)
    found = axe(page)
    assert not found, str(found)


def test_scans_in_quick_succession_all_land(page, login):
    """A scanner does not wait for the page: three codes + Enter typed back to back."""
    login(page, "cashier")
    page.goto("/till")
    for code in ("TEA", "BEER", "SALMON", "TEA"):
        _scan(page, code)
    expect(page.locator(".lines tr[data-sku=SALMON]")).to_be_visible()
    expect(page.locator(".lines tr[data-sku=TEA] input.qty")).to_have_value("2")
    expect(page.locator(".lines tr[data-sku=BEER] input.qty")).to_have_value("1")
    expect(page.locator("#list-total")).to_have_text("163.00")  # 2 x 20 + 15 + 108
    expect(page.locator("#f-scan")).to_have_value("")


@pytest.mark.parametrize("javascript", [True, False])
def test_confirm_pressed_twice_closes_one_bill(new_page, login, new_member, live_server, javascript):
    m = new_member(name="双击顾客")
    page = new_page(java_script_enabled=javascript)
    login(page, "cashier")
    page.goto("/till")
    page.locator("#f-card_code").fill(m["card_no"])
    page.locator("#f-scan").fill("TEA")
    page.locator("#f-scan").press("Enter")
    expect(page.locator("#confirm")).to_be_visible()
    page.locator("#confirm").dblclick()
    expect(page).to_have_url(re.compile(r"/till/receipts/\d+"))
    page.wait_for_load_state("networkidle")
    assert len(_checkouts(live_server, m["id"])) == 1
