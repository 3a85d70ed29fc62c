"""The member's own account behind the private phone-card link: what they see, what they may
change (withdraw consent, nothing else), and how the link is protected."""
import re
from datetime import timedelta

from sqlalchemy import select

from crm.core.audit import AuditEntry
from crm.extensions import db
from tests.test_phone_card import phone_link
from tests.test_races import race
from tests.test_ui import text


def page_text(client, path):
    """What the member reads: the page without its tags, spaces collapsed."""
    r = client.get(path)
    assert r.status_code == 200, r.status_code
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text(r))).replace(" · ", " · ")


def test_the_account_shows_balances_coupons_bills_level_and_rules(app, account, login_api, catalogue, checkout,
                                                                   give_points, cashier):
    m, path, phone = account
    admin = login_api("admin")
    assert admin.post("/api/v1/levels", json={"code": "silver", "name": "银卡", "rank": 1, "points_multiplier": "1.20",
                                              "upgrade_spend": "1000.00"}).status_code == 201
    tier = {"min_amount": "1000.00", "bonus": "100.00"}
    assert admin.post("/api/v1/wallet/bonus-tiers", json=tier).status_code == 201
    give_points(m["id"], 150)
    assert cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups", json={
        "store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"}).status_code == 201  # the tier: +100
    assert catalogue.post("/api/v1/coupon-types", json={"code": "CASH50", "name": "满200减50", "kind": "cash",
                                                       "face_value": "50.00", "min_spend": "200.00"}).status_code == 201
    coupon = login_api("manager").post(f"/api/v1/members/{m['id']}/coupons",
                                       json={"coupon_type": "CASH50", "reason": "goodwill"}).json
    assert checkout([("LOBSTER", 1)], member_id=m["id"]).status_code == 201  # 328.00, 32 points
    voided = checkout([("TEA", 1)], member_id=m["id"]).json
    assert login_api("manager").post(f"/api/v1/checkouts/{voided['id']}/void",
                                     json={"reason": "wrong table"}).status_code == 201

    with app.app_context():
        from crm.points import service as points
        from crm.selfservice.account import local
        first_lot = points.open_lots(m["id"])[0]
        expiring = sum(lot.remaining for lot in points.open_lots(m["id"]) if lot.expires_at == first_lot.expires_at)
        expiry_day = (local(first_lot.expires_at, "Asia/Shanghai") - timedelta(microseconds=1)).date().isoformat()
    page = page_text(phone, path)
    balances = cashier.get(f"/api/v1/members/{m['id']}/points").json
    assert f"Points {balances['balance']}" in page and balances["balance"] == 150 + 32
    assert f"{expiring} usable until {expiry_day}" in page
    assert "Stored value 1100.00" in page and "principal 1000.00 · bonus 100.00" in page
    assert "满200减50" in page and coupon["code"] in page and f"to {coupon['valid_until']}" in page
    assert "328.00" in page and "+32 points" in page and "voided" in page
    assert "My level: " in page and "Next level: 银卡" in page
    assert "Spend in the last 12 months: 328.00 of 1000.00" in page and "672.00 more to go." in page
    assert "Every 10.00 you pay earns 1 point" in page and "a point is worth 1.00" in page
    assert "Top up 1000.00 or more and get 100.00 extra." in page
    assert m["mobile"] not in page and "王*" in page  # the link shows nothing a finder could misuse
    assert "<svg" in text(phone.get(path))


def test_chinese_by_default_and_private(app, staff, member_factory, issue_card, client):
    m = member_factory(name="李雷")
    issue_card(m["id"])
    path = phone_link(app, staff, m["id"])
    r = client.get(path)
    assert r.status_code == 200 and "积分" in text(r) and "储值" in text(r)
    assert r.headers["Cache-Control"] == "no-store" and r.headers["Referrer-Policy"] == "no-referrer"
    svg = client.get(path + "/code.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and svg.headers["Cache-Control"] == "no-store"
    assert 1 <= int(svg.headers["X-Refresh-In"]) <= 31
    assert client.post(path).status_code == 405  # read-only, bar consent


def consent_audit(app, member_id):
    with app.app_context():
        return db.session.execute(select(AuditEntry.role, AuditEntry.username, AuditEntry.details).where(
            AuditEntry.action == "member.consent_withdrawn", AuditEntry.entity_id == str(member_id))).all()


def test_the_member_withdraws_a_consent_recorded_as_theirs(app, account, desk):
    m, path, phone = account
    assert "Account messages: yes" in page_text(phone, path)  # service messages are on by default
    r = phone.post(path + "/consent/sms")
    assert r.status_code == 303 and r.headers["Location"].endswith("withdrawn=sms#consent")
    page = page_text(phone, r.headers["Location"])
    assert "Done: SMS offers withdrawn." in page and "SMS offers: no" in page and "Email offers: yes" in page
    member = desk.get(f"/api/v1/members/{m['id']}").json
    assert member["marketing_consent"]["sms"] is False and member["marketing_consent"]["email"] is True
    [(role, username, details)] = consent_audit(app, m["id"])
    assert (role, username, details["channel"], details["source"]) == ("member", "member", "sms", "member")
    assert phone.post(path + "/consent/sms").status_code == 303  # sent twice: one change, one record
    assert len(consent_audit(app, m["id"])) == 1
    assert phone.post(path + "/consent/service").status_code == 303
    with app.app_context():
        from crm.members.models import Member
        assert db.session.get(Member, m["id"]).service_consent is False


def test_taps_at_once_withdraw_once(app, account):
    m, path, _phone = account
    statuses = race(5, lambda i: app.test_client().post(path + "/consent/email").status_code)
    assert statuses == [303] * 5 and len(consent_audit(app, m["id"])) == 1


def test_nothing_else_can_be_changed_and_bad_links_show_nothing(app, account, desk):
    m, path, phone = account
    assert phone.post(path + "/consent/phone").status_code == 404
    assert phone.post(path + "/consent/level").status_code == 404
    for bad in ("/m/not-a-real-token", "/m/" + "x" * 5000):
        assert phone.get(bad).status_code == 404
        assert phone.post(bad + "/consent/sms").status_code == 404
    assert phone.get("/m/%00abc").status_code == 422  # control characters are refused everywhere
    assert desk.get(f"/api/v1/members/{m['id']}").json["marketing_consent"]["sms"] is True
    assert consent_audit(app, m["id"]) == []


def test_the_front_desk_revokes_the_link(app, account, staff, login_api):
    from tests.test_ui import ui_login
    m, path, phone = account
    ui = ui_login(app, staff["front_desk"], lang="en")
    assert "Cancel phone card link" in text(ui.get(f"/members/{m['id']}"))
    r = ui.post(f"/members/{m['id']}/phone-card/revoke", {})
    assert r.status_code == 302
    page = text(ui.get(r.headers["Location"]))
    assert "The phone card link is cancelled." in page and "Cancel phone card link" not in page
    assert phone.get(path).status_code == 404 and "no longer works" in text(phone.get(path))
    assert phone.get(path + "/code.svg").status_code == 404
    assert phone.post(path + "/consent/sms").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.username).where(
            AuditEntry.action == "card.phone_link_revoked")) == staff["front_desk"]
    till = ui_login(app, staff["cashier"], lang="en")
    till.get("/")
    assert till.post(f"/members/{m['id']}/phone-card/revoke", {}).status_code == 403  # front desk and up only


def test_requests_per_address_are_limited(app, account, monkeypatch):
    _m, path, phone = account
    monkeypatch.setitem(app.config, "SELF_SERVICE_LIMIT", "3 per minute")
    assert [phone.get(path).status_code for _ in range(3)] == [200] * 3
    r = phone.get(path)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and r.headers["Cache-Control"] == "no-store"
    other = app.test_client()
    assert other.get(path, environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200  # per address


def test_no_card_shows_no_code(app, account, desk):
    m, path, phone = account
    card_no = desk.get(f"/api/v1/members/{m['id']}/cards").json[0]["card_no"]
    assert desk.post(f"/api/v1/cards/{card_no}/lost", json={"reason": "丢了"}).status_code == 200
    page = page_text(phone, path)
    assert "No active card" in page and "<svg" not in text(phone.get(path)) and "Balances" in page
    assert phone.get(path + "/code.svg").status_code == 404


def test_a_member_at_the_top_level_sees_no_progress(app, account):
    _m, path, phone = account
    assert "You are at the top level." in page_text(phone, path)
