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
