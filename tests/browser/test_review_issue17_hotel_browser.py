"""Review of the hotel front desk (issue 17.2) in Chromium at 1366 and 390 px: a member with 20
preferences of 100 characters each (emoji, unbroken letters, right-to-left text) and PMS notes
of 1,000 characters without a space arriving today (and member notes of 2,000); the arrivals list and the member page do
not scroll sideways, and the member form keeps all 20 when saved unchanged twice."""
from datetime import timedelta

import pytest
from playwright.sync_api import expect

SIZES = pytest.mark.parametrize("width, height", [(1366, 768), (390, 844)])
PREFS = ([("😀" * 99 + str(i)) for i in range(7)] + [("W" * 99 + str(i)) for i in range(7)]
         + [("\u200f" + "مرحبا" * 19 + "م" * 3 + str(i)) for i in range(6)])


def _no_sideways_scroll(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@SIZES
def test_long_unbroken_preferences_and_notes_fit(new_page, login, live_server, new_member, shot, width, height):
    from crm.core.actor import Actor
    from crm.core.timeutil import local_today
    from crm.extensions import db
    from crm.frontdesk import service
    from crm.frontdesk.schemas import ReservationInSchema
    from crm.members.models import Member
    from crm.stores import service as stores

    member = new_member(name="名" * 30 + str(width), card=False)

    def build():
        hotel = stores.get_by_code("HT01")
        today = local_today(hotel.timezone)
        row = db.session.get(Member, member["id"])
        row.preferences, row.notes = PREFS, "n" * 2000
        service.save(Actor.system("review"), ReservationInSchema().load({
            "store_code": "HT01", "reservation_no": f"RVW{width}" + "9" * 50, "member_id": member["id"],
            "arrival": today.isoformat(), "departure": (today + timedelta(days=1)).isoformat(),
            "room_type": "K" * 64, "notes": "N" * 1000}))
        service.save(Actor.system("review"), ReservationInSchema().load({
            "store_code": "HT01", "reservation_no": f"RVG{width}", "guest_name": "G" * 100,
            "arrival": today.isoformat(), "departure": today.isoformat()}))
    live_server.run(build)

    page = new_page(width=width, height=height)
    login(page, "hotel_desk")
    page.goto("/frontdesk/arrivals?store_code=HT01&day=today")
    row = page.locator(f"tr[data-reservation='RVW{width}{'9' * 50}']")
    expect(row.get_by_text(PREFS[0])).to_be_visible()
    expect(row.get_by_text(PREFS[-1])).to_be_attached()
    shot(page, f"review-hotel-arrivals-{width}", full_page=True)
    _no_sideways_scroll(page, width)

    page.goto(f"/members/{member['id']}")
    expect(page.get_by_text(PREFS[7])).to_be_visible()
    _no_sideways_scroll(page, width)

    # The form saved unchanged twice (a resent form): the same 20, in their order.
    for _ in range(2):
        page.goto(f"/members/{member['id']}/edit")
        expect(page.get_by_label("Preferences")).to_have_value("\n".join(PREFS))
        _no_sideways_scroll(page, width)
        with page.expect_navigation():
            page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Changes saved.")).to_be_visible()
    assert live_server.run(lambda: list(db.session.get(Member, member["id"]).preferences)) == PREFS
