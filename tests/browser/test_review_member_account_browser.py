"""Review (adversarial) of the member's account page in Chromium at 390 px: what happens to an
open page when the network drops, the link is replaced or the card frozen, long names, the
language switch and the busy page (the problems it found are fixed; the tests stay as guards)."""
from playwright.sync_api import expect

from crm.core.actor import Actor

PHONE = {"width": 390, "height": 844, "is_mobile": True, "has_touch": True}
ACTOR = Actor.system("review")


def _link(live_server, member_id):
    from crm.cards import phone
    return "/m/" + live_server.run(lambda: phone.issue_link(ACTOR, member_id))


def _open(new_page, path, clock=False, lang="en"):
    phone = new_page(**PHONE)
    if clock:
        phone.clock.install()  # the page's timers run when the test says so
    phone.goto(f"/lang/{lang}?next={path}")
    return phone


def _overflowing(page):
    return page.evaluate("""() => [...document.querySelectorAll('main *')]
        .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible'
                     || e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
        .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + e.textContent.trim().slice(0, 30))""")


def test_a_long_name_does_not_make_the_page_scroll_sideways(new_page, new_member, live_server, shot):
    member = new_member(name="Maria Fernanda Rodriguez de la Cruz Gonzalez")
    phone = _open(new_page, _link(live_server, member["id"]))
    expect(phone.locator(".phone-qr svg")).to_be_visible()
    shot(phone, "review-account-long-name", full_page=True)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"scrolls sideways ({width}px): {_overflowing(phone)}"


def test_a_network_blip_does_not_wipe_the_open_page(new_page, new_member, live_server, shot):
    member = new_member(name="地下室")
    phone = _open(new_page, _link(live_server, member["id"]), clock=True)
    expect(phone.locator(".phone-qr svg")).to_be_visible()
    phone.context.set_offline(True)
    phone.clock.run_for(35_000)  # the next code is due: its fetch fails
    phone.wait_for_timeout(1000)
    shot(phone, "review-account-offline")
    phone.context.set_offline(False)
    assert phone.url.startswith(live_server.url), f"the page was replaced by {phone.url}"
    expect(phone.get_by_test_id("points")).to_be_visible()


def test_a_replaced_link_turns_the_open_page_into_the_notice(new_page, new_member, live_server, shot, axe):
    member = new_member(name="换链接")
    phone = _open(new_page, _link(live_server, member["id"]), clock=True)
    expect(phone.locator(".phone-qr svg")).to_be_visible()
    _link(live_server, member["id"])  # the front desk issues a new link (the phone was lost)
    with phone.expect_navigation():
        phone.clock.run_for(35_000)
    expect(phone.get_by_role("heading", level=1)).to_contain_text("This link no longer works.")
    expect(phone.get_by_test_id("points")).to_have_count(0)
    assert "换" not in phone.content()
    shot(phone, "review-account-replaced")
    found = axe(phone)
    assert not found, str(found)


def test_a_card_frozen_while_the_page_is_open_hides_the_code(new_page, new_member, live_server):
    from crm.cards import service as cards
    member = new_member(name="冻结卡", points=30)
    phone = _open(new_page, _link(live_server, member["id"]), clock=True)
    expect(phone.locator(".phone-qr svg")).to_be_visible()
    live_server.run(lambda: cards.change_state(ACTOR, member["card_no"], "freeze", "review"))
    with phone.expect_navigation():
        phone.clock.run_for(35_000)
    expect(phone.locator(".phone-qr svg")).to_have_count(0)
    expect(phone.get_by_text("No active card: ask the front desk.")).to_be_visible()
    expect(phone.get_by_test_id("points")).to_have_text("30")  # the account itself still shows


def test_a_live_code_is_swapped_in_place(new_page, new_member, live_server):
    member = new_member(name="换码")
    phone = _open(new_page, _link(live_server, member["id"]), clock=True)
    phone.evaluate("window.scrollTo(0, 600); window.__notReloaded = true")
    with phone.expect_response("**/code.svg") as fetched:
        phone.clock.run_for(35_000)
    assert fetched.value.status == 200 and fetched.value.headers["cache-control"] == "no-store"
    expect(phone.locator(".phone-qr svg")).to_be_visible()
    assert phone.evaluate("window.__notReloaded === true && window.scrollY > 0")  # the reader keeps their place


def test_chinese_by_default_english_on_request_and_no_way_out(new_page, new_member, live_server):
    member = new_member(name="中英")
    path = _link(live_server, member["id"])
    phone = new_page(**PHONE)
    phone.goto(path)
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
    phone.get_by_role("link", name="English").click()
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    assert phone.url.endswith(path)
    for hostile in ("//example.org/", "/\\example.org", "/%5Cexample.org", "https://example.org"):
        phone.goto(f"/lang/en?next={hostile}")
        assert phone.url.startswith(live_server.url), (hostile, phone.url)


def test_the_busy_page_on_a_phone(new_page, new_member, live_server, shot, axe):
    from crm.selfservice import limit
    member = new_member(name="太快")
    path = _link(live_server, member["id"])
    app = live_server.app
    was = app.config.get("SELF_SERVICE_LIMIT")
    app.config["SELF_SERVICE_LIMIT"] = "2 per minute"
    limit.reset(app)
    try:
        phone = new_page(**PHONE)
        phone.goto(path)
        phone.reload()
        response = phone.reload()
        assert response.status == 429
        expect(phone.get_by_role("heading", level=1)).to_be_visible()
        assert "冻" not in phone.content() and "太" not in phone.content()  # nothing of the member
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        shot(phone, "review-account-busy")
        found = axe(phone)
        assert not found, str(found)
    finally:
        app.config["SELF_SERVICE_LIMIT"] = was
        limit.reset(app)


def test_withdrawing_twice_from_two_open_tabs(new_page, new_member, live_server):
    from crm.extensions import db
    from crm.members.models import Member
    member = new_member(name="两个标签")
    live_server.run(lambda: setattr(db.session.get(Member, member["id"]), "email_consent", True))
    path = _link(live_server, member["id"])
    one, two = _open(new_page, path), _open(new_page, path)
    for tab in (one, two):
        tab.locator("#consent li[data-channel=email]").get_by_role("button", name="Withdraw").tap()
        expect(tab.get_by_role("status")).to_contain_text("Email offers withdrawn")
    from sqlalchemy import func, select

    from crm.core.audit import AuditEntry
    assert live_server.run(lambda: db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "member.consent_withdrawn", AuditEntry.entity_id == str(member["id"])))) == 1
