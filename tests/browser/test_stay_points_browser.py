"""Issue 17.1 (hotel stays in the programme) in Chromium at 1366 and 390 px: an admin sets a
segment's stay points on the programme page (a bad value is named beside its field, nothing
saved), a stay posted by the PMS earns at that rate, and the front desk sees on the member's
history which stay at which hotel earned the points; no page scrolls sideways and axe finds
nothing serious. A screenshot of each at 1366 px goes to artifacts/screenshots/ for review."""
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS

SHOTS = SCREENSHOTS
SIZES = pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])


def _fits(page, axe, width, shot):
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    found = axe(page)
    assert not found, str(found)
    if width == 1366:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)


def _post_stay(member_id, stay_no):
    """A 3-night conference stay at 688.00 a night that checked out today, as the PMS posts it."""
    from crm.core.actor import Actor
    from crm.core.timeutil import local_today
    from crm.stays import service
    out = local_today()
    _stay, outcome, _new = service.post_stay(Actor.system("pms"), {
        "stay_no": stay_no, "store_code": "HT01", "arrival": out - timedelta(days=3), "departure": out,
        "rooms": 1, "room_revenue": 206400, "fb_revenue": 0, "segment": "conference", "member_id": member_id})
    return outcome.earned


def _reset_rates():
    from crm.core.actor import Actor
    from crm.stays import service
    service.set_rates(Actor.system("test"), {"conference": 1})


@SIZES
def test_stay_points_set_by_the_admin_then_seen_on_the_member_page(new_page, login, axe, live_server, new_member,
                                                                   width, height):
    page = new_page(width=width, height=height)
    login(page, "admin")
    page.goto("/admin/programme#stay-rates")
    page.fill("[name=rate_conference]", "2.5")
    with page.expect_navigation():
        page.get_by_role("button", name="Save stay points").click()
    expect(page.locator("#e-rate_conference")).to_be_visible()
    expect(page.locator("[name=rate_conference]")).to_have_attribute("aria-invalid", "true")
    _fits(page, axe, width, "stay-rates-error")
    page.fill("[name=rate_conference]", "2")
    with page.expect_navigation():
        page.get_by_role("button", name="Save stay points").click()
    expect(page.get_by_text("Stay points saved.")).to_be_visible()
    expect(page.locator("[name=rate_conference]")).to_have_value("2")
    try:
        member = new_member(name="住店客人", card=False)
        stay_no = f"BR{width}"
        # 2064.00: 206 full tens × 2 points (conference, as just set) × 1.00 (entry level) = 412.
        assert live_server.run(_post_stay, member["id"], stay_no) == 412
    finally:
        live_server.run(_reset_rates)
    desk = new_page(width=width, height=height)
    login(desk, "front_desk")
    desk.goto(f"/members/{member['id']}#history")
    row = desk.locator('tr[data-event="stay"]')
    expect(row).to_contain_text("Points earned by a hotel stay")
    expect(row).to_contain_text(f"Stay {stay_no}")
    expect(row).to_contain_text("412")
    _fits(desk, axe, width, "stay-points-member-history")
