"""The member's own account on a phone (390 px): readable without zooming or sideways scrolling,
the code in view first, and a consent withdrawn with one tap."""
from playwright.sync_api import expect


def _link(live_server, member_id):
    from crm.cards import phone
    from crm.core.actor import Actor
    return "/m/" + live_server.run(lambda: phone.issue_link(Actor.system("test"), member_id))


def test_a_member_reads_their_account_and_withdraws_sms_offers_on_a_phone(new_page, new_member, live_server, shot,
                                                                           axe):
    member = new_member(name="周手机", top_up="500", points=120, coupons=("CASH50",))
    path = _link(live_server, member["id"])
    phone = new_page(width=390, height=844, is_mobile=True, has_touch=True)
    phone.goto(f"/lang/en?next={path}")
    expect(phone.locator(".phone-qr svg")).to_be_visible()
    assert phone.locator(".phone-qr svg").bounding_box()["y"] < 400  # the code first, above the fold
    expect(phone.get_by_test_id("points")).to_have_text("120")
    expect(phone.get_by_test_id("stored-value")).to_contain_text("500.00")
    expect(phone.locator("#coupons")).to_contain_text(member["coupon_codes"][0])
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways on a phone"
    shot(phone, "member-account-top")
    shot(phone, "member-account-full", full_page=True)
    found = axe(phone)
    assert not found, str(found)

    sms = phone.locator("#consent li[data-channel=sms]")
    if sms.get_by_role("button", name="Withdraw").count() == 0:  # registered without SMS consent: agree first
        live_server.run(_set_sms_consent, member["id"], True)
        phone.reload()
    sms.get_by_role("button", name="Withdraw").tap()
    expect(phone.get_by_role("status")).to_contain_text("SMS offers withdrawn")
    expect(sms).to_contain_text("no")
    expect(sms.get_by_role("button", name="Withdraw")).to_have_count(0)
    shot(phone, "member-account-consent")
    assert live_server.run(_set_sms_consent, member["id"]) is False


def _set_sms_consent(member_id, value=None):
    """The member's SMS consent (set first if `value` is given)."""
    from crm.extensions import db
    from crm.members.models import Member
    member = db.session.get(Member, member_id)
    if value is not None:
        member.sms_consent = value
    return member.sms_consent
