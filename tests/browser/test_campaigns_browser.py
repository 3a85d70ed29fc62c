"""The campaign form in a real browser: only the chosen schedule's settings are shown, and
switching the schedule shows the other's (static/campaigns.js; without it every group stays
visible under its heading, see tests/test_campaigns_ui.py)."""
import re

from playwright.sync_api import expect


def _visible_groups(page) -> list[str]:
    return [g.get_attribute("data-schedules") for g in page.locator("fieldset[data-schedules]").all()
            if g.is_visible()]


def test_the_campaign_form_shows_only_the_chosen_schedules_fields(page, login, shot, new_page):
    login(page, "marketing")
    page.goto("/marketing/campaigns/new")
    schedule = page.get_by_label("When")
    assert schedule.input_value() == "once"
    assert _visible_groups(page) == ["once"]
    expect(page.get_by_label("Send at")).to_be_visible()
    expect(page.get_by_label("Holiday", exact=True)).to_be_hidden()

    schedule.select_option("holiday")
    shot(page, "campaign-form-holiday", full_page=True)
    assert _visible_groups(page) == ["holiday", "holiday birthday", "recurring holiday birthday"]
    expect(page.get_by_label("Send at")).to_be_hidden()
    schedule.select_option("birthday")
    assert _visible_groups(page) == ["holiday birthday", "recurring holiday birthday"]
    schedule.select_option("recurring")
    assert _visible_groups(page) == ["recurring", "recurring holiday birthday"]

    page.get_by_label("Campaign name").fill("每周新品")
    page.get_by_label("Message template").select_option(index=1)
    page.get_by_label("Channel").select_option("outbox")
    page.get_by_label("Repeats").select_option("weekly")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/marketing/campaigns/\d+$"))
    expect(page.locator(".flash.success")).to_contain_text("Campaign saved as a draft")
    page.wait_for_load_state()  # the URL changes before the new page's script has run
    assert _visible_groups(page) == ["recurring", "recurring holiday birthday"]  # the saved schedule's


def test_the_campaign_form_fits_a_phone(new_page, login, shot):
    phone = new_page(width=390, height=844)
    login(phone, "marketing")
    phone.goto("/marketing/campaigns/new")
    phone.get_by_label("When").select_option("birthday")
    shot(phone, "campaign-form-phone", full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
