"""Stored value, coupons and the draw on the member page and at the till."""
import re

from tests.test_ui import text, ui_login


def test_top_up_shows_bonus_and_gift_before_confirming(app, staff, catalogue, member_factory, store_today, cashier):
    catalogue.post("/api/v1/coupon-types", json={"code": "OYSTER180", "name": "生蚝券", "kind": "item",
                                                 "face_value": "180.00", "sku": "LOBSTER"})
    catalogue.post("/api/v1/gift-rules", json={"name": "充2000送生蚝", "min_topup": "2000.00",
                                               "coupon_type": "OYSTER180", "starts_on": store_today,
                                               "ends_on": store_today, "stock": 1})
    m = member_factory()
    ui = ui_login(app, "cashier")
    ui.get(f"/members/{m['id']}")
    preview = ui.post(f"/members/{m['id']}/wallet/top-up", {"amount": "5000", "store_code": "BJ01",
                                                            "payment_method": "cash"})
    page = text(preview)
    assert 'id="topup-bonus">600.00<' in page and "生蚝券" in page
    assert cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "0.00"  # nothing yet
    done = ui.post(f"/members/{m['id']}/wallet/top-up", {"amount": "5000", "store_code": "BJ01",
                                                         "payment_method": "cash", "action": "confirm"})
    assert done.status_code == 302
    member_page = text(ui.get(done.location))
    assert 'id="wallet-balance">5600.00' in member_page and "生蚝券" in member_page
    bad = ui.post(f"/members/{m['id']}/wallet/top-up", {"amount": "-1", "store_code": "BJ01",
                                                        "payment_method": "cash", "action": "confirm"})
    assert bad.status_code == 302 and cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "5600.00"


def test_till_pays_from_wallet_with_pin_and_coupon(app, staff, catalogue, member_factory, cashier, login_api):
    catalogue.post("/api/v1/coupon-types", json={"code": "CASH50", "name": "满200减50", "kind": "cash",
                                                 "face_value": "50.00", "min_spend": "200.00"})
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    cashier.client.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "246810"}, headers=cashier._headers())
    code = login_api("manager").post(f"/api/v1/members/{m['id']}/coupons",
                                     json={"coupon_type": "CASH50", "reason": "vip"}).json["code"]
    ui = ui_login(app, "cashier")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
    form = {"card_code": m["mobile"], "store_code": "BJ01", "items": "LOBSTER 1", "coupon_codes": code,
            "wallet_amount": "278.00", "till_token": token, "action": "quote"}
    quote = text(ui.post("/till", form))
    assert 'id="wallet-paid">−278.00<' in quote and 'id="due">0.00<' in quote and "满200减50" in quote
    no_pin = ui.post("/till", {**form, "action": "close"})
    assert no_pin.status_code == 422 and 'id="e-pin"' in text(no_pin)
    closed = ui.post("/till", {**form, "action": "close", "pin": "246810"})
    assert closed.status_code == 302
    assert cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "722.00"


def test_manager_refunds_and_sees_liability(app, staff, member_factory, cashier):
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "5000.00", "payment_method": "cash"})
    ui = ui_login(app, "manager")
    page = text(ui.get("/reports/liability"))
    assert 'id="owed-principal">5000.00<' in page and 'id="owed-bonus">600.00<' in page
    ui.get(f"/members/{m['id']}")
    assert ui.post(f"/members/{m['id']}/wallet/refund", {"store_code": "BJ01", "reason": ""}).status_code == 302
    assert cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "5600.00"  # no reason, no refund
    r = ui.post(f"/members/{m['id']}/wallet/refund", {"store_code": "BJ01", "reason": "closing account"})
    assert r.status_code == 302 and "5000.00" in text(ui.get(r.location))
    assert cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "0.00"
