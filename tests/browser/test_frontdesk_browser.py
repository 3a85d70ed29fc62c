"""Hotel front desk (issue 17.2) in Chromium at 1366 and 390 px: the hotel's desk opens today's
arrivals (a frequent member with a birthday in the stay first, with their preferences and the
PMS's notes; a walk-in guest after), edits a member's preferences on the member form and sees
them on the list; no page scrolls sideways, axe finds nothing serious, and the list prints."""
from datetime import timedelta

import pytest
from playwright.sync_api import expect

SIZES = pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])


def _fits(page, axe, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    found = axe(page)
    assert not found, str(found)


def _arrivals(live_server, new_member, width):
    """A member born today with 3 stays earlier this year arriving today for 2 nights, and a
    walk-in guest; their reservation numbers carry the width (the demo database is shared)."""
    from crm.core.actor import Actor
    from crm.core.timeutil import local_today
    from crm.extensions import db
    from crm.frontdesk import service
    from crm.frontdesk.schemas import ReservationInSchema
    from crm.members.models import Member
    from crm.reports.models import Stay
    from crm.stores import service as stores

    member = new_member(name=f"常客{width}", card=False)

    def build():
        actor, hotel = Actor.system("browser-test"), stores.get_by_code("HT01")
        today = local_today(hotel.timezone)
        row = db.session.get(Member, member["id"])
        row.birthday_month, row.birthday_day = today.month, today.day
        row.preferences = ["High floor, away from the lift", "Buckwheat pillow", "Allergic to peanuts"]
        row.notes = "Prefers Chinese newspapers"
        for i in range(3):
            day = today - timedelta(days=1 + i) if today.timetuple().tm_yday > 3 else today
            db.session.add(Stay(stay_no=f"FD{width}-{i}", store_id=hotel.id, arrival=day, departure=day,
                                rooms=1, room_revenue=60000, member_id=member["id"]))
        for body in ({"reservation_no": f"FDW{width}", "guest_name": f"散客{width}", "room_type": "Twin",
                      "notes": "Arrives by the late train, keep the room"},
                     {"reservation_no": f"FDM{width}", "member_id": member["id"], "room_type": "Executive King",
                      "notes": "Anniversary: flowers in the room " * 3}):
            service.save(actor, ReservationInSchema().load({
                "store_code": "HT01", "arrival": today.isoformat(),
                "departure": (today + timedelta(days=2)).isoformat(), **body}))
    live_server.run(build)
    member["stays_before_today"] = live_server.run(lambda: local_today("Asia/Shanghai").timetuple().tm_yday > 3)
    return member


@SIZES
def test_the_desk_sees_todays_arrivals_and_edits_preferences(new_page, login, axe, live_server, new_member,
                                                              pdf, shot, width, height):
    member = _arrivals(live_server, new_member, width)
    page = new_page(width=width, height=height)
    login(page, "hotel_desk")
    page.goto("/frontdesk/arrivals")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Arrivals")
    row = page.locator(f"tr[data-reservation='FDM{width}']")
    expect(row.get_by_role("link", name=member["name"])).to_be_visible()
    expect(row.locator(".badge.birthday")).to_be_visible()
    if member["stays_before_today"]:  # 3 stays this year: not on 1 to 3 January
        expect(row.locator(".badge.frequent")).to_be_visible()
    expect(row.get_by_text("Buckwheat pillow")).to_be_visible()
    expect(row.get_by_text("Executive King")).to_be_visible()
    walk_in = page.locator(f"tr[data-reservation='FDW{width}']")
    expect(walk_in.get_by_text("not a member")).to_be_visible()
    # The member comes before the walk-in guest.
    order = page.locator("tr[data-reservation]").evaluate_all("rows => rows.map(r => r.dataset.reservation)")
    assert order.index(f"FDM{width}") < order.index(f"FDW{width}")
    _fits(page, axe, width)
    shot(page, f"frontdesk-arrivals-{width}", full_page=True)
    if width == 1366:
        _path, sizes = pdf(page, "frontdesk-arrivals")
        assert sizes and sizes[0][0] > sizes[0][1]  # A4 landscape, as the wide reports print
    page.get_by_role("link", name="Tomorrow").first.click()
    expect(page.locator(f"tr[data-reservation='FDM{width}']")).to_have_count(0)

    # Edit the preferences on the member form: one a line.
    page.goto(f"/members/{member['id']}/edit")
    box = page.get_by_label("Preferences")
    expect(box).to_have_value("High floor, away from the lift\nBuckwheat pillow\nAllergic to peanuts")
    box.fill("x" * 101)
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(page.locator("#e-preferences")).to_be_visible()
    _fits(page, axe, width)
    page.get_by_label("Preferences").fill("Feather-free pillow\nAllergic to peanuts")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    expect(page.get_by_text("Feather-free pillow")).to_be_visible()
    page.goto("/frontdesk/arrivals?store_code=HT01&day=today")
    row = page.locator(f"tr[data-reservation='FDM{width}']")
    expect(row.get_by_text("Feather-free pillow")).to_be_visible()
    expect(row.get_by_text("Buckwheat pillow")).to_have_count(0)
    _fits(page, axe, width)
