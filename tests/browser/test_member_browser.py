"""The member pages in a real browser (issue 13): what is in view after an action, the
confirmation of card actions with and without JavaScript, the registration form's fee at
1366x768, and the search results on a 390 px phone."""
import re

from playwright.sync_api import expect

from crm.extensions import db


def _in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    view = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= view["height"]


def test_top_up_message_is_in_view_after_the_redirect(page, login, new_member):
    m = new_member(name="余额在眼前")
    login(page, "cashier")
    page.goto(f"/members/{m['id']}")
    form = page.locator("form", has=page.get_by_role("button", name="Show bonus and gifts"))
    form.get_by_label("Amount").fill("300")
    form.get_by_label("Paid by").select_option("cash")
    form.get_by_role("button", name="Show bonus and gifts").click()
    page.get_by_role("button", name="Money received, top up").click()
    expect(page).to_have_url(re.compile(r"/members/\d+#wallet$"))
    notice = page.locator("#wallet-notice")
    expect(notice).to_contain_text("Topped up 300.00")
    assert _in_viewport(page, notice), notice.bounding_box()
    assert _in_viewport(page, page.locator("#wallet-balance"))  # and the new balance beside it


def test_freeze_asks_once_with_javascript(page, login, new_member, live_server):
    m = new_member(name="冻结有确认")
    login(page, "front_desk")
    page.goto(f"/members/{m['id']}")
    page.once("dialog", lambda d: d.accept())
    page.locator("#cards").get_by_role("button", name="Freeze").click()
    expect(page).to_have_url(re.compile(r"/members/\d+#cards$"))  # straight back: the dialog was the question
    expect(page.locator("#cards-notice")).to_have_text("Card frozen.")
    assert _in_viewport(page, page.locator("#cards-notice"))
    from crm.cards.models import Card
    assert live_server.run(lambda: Card.query.filter_by(card_no=m["card_no"]).one().status) == "frozen"


def test_report_lost_asks_on_a_page_without_javascript(new_page, login, new_member, live_server):
    from crm.cards.models import Card
    m = new_member(name="无脚本挂失")
    page = new_page(java_script_enabled=False)
    login(page, "front_desk")
    page.goto(f"/members/{m['id']}")
    page.locator("#cards").get_by_role("button", name="Report lost").click()
    expect(page.locator("#confirm-question")).to_contain_text("lost?")
    assert live_server.run(lambda: Card.query.filter_by(card_no=m["card_no"]).one().status) == "active"
    page.get_by_label("Reason (optional)").fill("left in a taxi")
    page.get_by_role("button", name="Yes, report it lost").click()
    expect(page.locator("#cards-notice")).to_have_text("Card reported lost.")
    assert live_server.run(lambda: Card.query.filter_by(card_no=m["card_no"]).one().status) == "lost"


def test_registration_fee_method_is_in_view_above_the_sticky_bar(page, login):
    login(page, "front_desk")
    page.goto("/members/new")
    method = page.locator("#f-payment_method")
    assert _in_viewport(page, method), method.bounding_box()
    bar = page.locator(".actions.sticky").bounding_box()
    box = method.bounding_box()
    assert box["y"] + box["height"] <= bar["y"], (box, bar)  # not hidden under the button bar
    assert method.evaluate("e => e.value") != ""  # a default is chosen


def test_member_search_and_page_fit_a_390px_phone(new_page, login, new_member, live_server):
    for n in range(3):
        new_member(name=f"窄屏会员{n}")
    page = new_page(width=390, height=844)
    login(page, "front_desk")
    page.goto("/?q=窄屏会员")
    expect(page.get_by_text("3 members found")).to_be_visible()
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    expect(page.get_by_role("link", name="窄屏会员0")).to_be_visible()
    # The member page too (history and recent bills): each row a block, the change in view without
    # scrolling sideways.
    m = new_member(name="窄屏历史", top_up="500", points=80)
    page.goto(f"/members/{m['id']}#history")
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    from sqlalchemy import func, select

    from crm.checkout.models import Checkout
    busiest = live_server.run(lambda: db.session.scalar(
        select(Checkout.member_id).where(Checkout.member_id.is_not(None))
        .group_by(Checkout.member_id).order_by(func.count().desc()).limit(1)))
    page.goto(f"/members/{busiest}")
    expect(page.locator("table.recent-bills")).to_be_visible()
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    page.goto(f"/members/{m['id']}#history")
    change = page.locator("table.history tr[data-kind=wallet] td.num").first
    box = change.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    expect(change).to_contain_text("+500.00")


def test_no_duplicate_ids_on_the_member_and_coupon_pages(page, login, new_member):
    m = new_member(name="编号唯一", top_up="100", points=50)
    login(page, "manager")
    for path in (f"/members/{m['id']}", "/catalog/coupons/", "/members/new", f"/members/{m['id']}/edit"):
        page.goto(path)
        found = page.evaluate("""() => {
            const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
            const dupes = ids.filter((id, i) => ids.indexOf(id) !== i);
            const orphans = [...document.querySelectorAll('label[for]')]
                .filter(l => !document.getElementById(l.htmlFor)).map(l => l.htmlFor);
            return {dupes, orphans};
        }""")
        assert found == {"dupes": [], "orphans": []}, (path, found)
