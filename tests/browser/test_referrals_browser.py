"""Referrals in a real browser at 1366x768: registering with a friend's code typed in lower
case, the member page's code and referees, the admin's referral rules and the manager's
report, each without a serious or critical axe finding."""
import re

from playwright.sync_api import expect

from crm.extensions import db


def test_register_with_a_code_and_see_it_on_both_member_pages(page, login, new_member, unique_mobile, live_server,
                                                             shot, axe):
    from crm.members.models import Member
    friend = new_member(name="老会员")
    code = live_server.run(lambda: db.session.get(Member, friend["id"]).referral_code)
    login(page, "front_desk")
    page.goto("/members/new")
    page.get_by_label("Name").fill("新会员")
    page.get_by_label("Mobile").fill(unique_mobile())
    page.get_by_label("Referred by (referral code)").fill("nosuch22")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#e-referral_code")).to_contain_text("No member has the referral code nosuch22")
    page.get_by_label("Referred by (referral code)").fill(code.lower())
    page.get_by_role("button", name="Register").click()
    expect(page).to_have_url(re.compile(r"/members/\d+\?new=1"))
    expect(page.get_by_text("Referred by")).to_be_visible()
    page.goto(f"/members/{friend['id']}")
    expect(page.locator("#referral-code")).to_have_text(code)
    page.locator("#referrals").scroll_into_view_if_needed()
    expect(page.locator("#referrals")).to_contain_text("新会员")
    shot(page, "member-referrals")
    found = axe(page)
    assert not found, str(found)


def test_admin_rules_and_manager_report(page, new_page, login, shot, axe):
    login(page, "admin")
    page.goto("/admin/programme")
    page.get_by_label("Referral reward").select_option("points")
    page.get_by_label("Points for the referrer").fill("100")
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator(".flash.success")).to_contain_text("Programme rules saved.")
    page.locator("#referrals").scroll_into_view_if_needed()
    shot(page, "programme-referrals")
    manager = new_page()
    login(manager, "manager")
    manager.goto("/reports/referrals")
    expect(manager.locator("#referrals-by-store")).to_be_visible()
    shot(manager, "referral-report")
    found = axe(manager)
    assert not found, str(found)
