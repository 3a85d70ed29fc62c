"""The manager's coupon page: types with stock, gift rules and draw prizes."""
import re

from tests.test_ui import text, ui_login


def test_manager_adds_a_coupon_type_a_gift_rule_and_a_prize(app, staff, login_api):
    ui = ui_login(app, staff["manager"], lang="en")
    ui.get("/catalog/coupons/")
    r = ui.post("/catalog/coupons/type", {"code": "OYSTER", "name": "生蚝券", "kind": "cash", "face_value": "-5",
                                          "valid_days": "30", "active": "on"})
    assert r.status_code == 422 and re.search(r'id="e-face_value">[^<]+<', text(r))
    r = ui.post("/catalog/coupons/type", {"code": "OYSTER", "name": "生蚝券", "kind": "cash", "face_value": "180.00",
                                          "min_spend": "300.00", "valid_days": "90", "stock_total": "3",
                                          "active": "on"})
    assert r.status_code == 302
    r = ui.post("/catalog/coupons/gift", {"name": "九月充值送生蚝", "min_topup": "2000.00", "coupon_type": "OYSTER",
                                          "starts_on": "2026-09-30", "ends_on": "2026-09-01", "stock": "2"})
    assert r.status_code == 422 and "The rule ends before it starts." in text(r)
    r = ui.post("/catalog/coupons/gift", {"name": "九月充值送生蚝", "min_topup": "2000.00", "coupon_type": "OYSTER",
                                          "starts_on": "2026-09-01", "ends_on": "2026-09-30", "stock": "2"})
    assert r.status_code == 302
    r = ui.post("/catalog/coupons/prize", {"name": "生蚝", "coupon_type": "OYSTER", "weight": "10", "stock": "1"})
    assert r.status_code == 302
    page = text(ui.get("/catalog/coupons/"))
    assert "九月充值送生蚝" in page and "3 / 3" in page and "1 / 1" in page
    ui.post("/catalog/coupons/types/OYSTER", {"add_stock": "5"})
    ui.post("/catalog/coupons/types/OYSTER", {"active": "0"})
    types = login_api("manager").get("/api/v1/coupon-types").json
    oyster = next(t for t in types if t["code"] == "OYSTER")
    assert (oyster["stock_left"], oyster["active"]) == (8, False)


def test_manager_ends_a_promotion_early(app, staff, login_api):
    manager = login_api("manager")
    r = manager.post("/api/v1/promotions", json={"code": "VAL", "name": "情人节7.7折", "rate": "77.00",
                                                 "categories": ["sashimi"], "starts_on": "2027-02-01",
                                                 "ends_on": "2027-02-28"})
    assert r.status_code == 201, r.json
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/catalog/promotions/VAL"))
    assert 'value="77.00"' in page and 'value="sashimi"' in page
    r = ui.post("/catalog/promotions/VAL", {"name": "情人节7.7折", "rate": "77.00", "categories": "sashimi",
                                            "starts_on": "2027-02-01", "ends_on": "2027-01-31", "auto_apply": "on"})
    assert r.status_code == 422 and "The promotion ends before it starts." in text(r)
    r = ui.post("/catalog/promotions/VAL", {"name": "情人节7.7折", "rate": "80.00", "categories": "sashimi, seafood",
                                            "starts_on": "2027-02-01", "ends_on": "2027-02-14", "auto_apply": "on"})
    assert r.status_code == 302
    promo = manager.get("/api/v1/promotions/VAL").json
    assert (promo["rate"], promo["ends_on"], promo["categories"]) == ("80.00", "2027-02-14", ["sashimi", "seafood"])
