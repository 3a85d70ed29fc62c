"""Review of the hot-path caches: changes made on one worker that another warm worker must see on
its next request, and hostile input on the cached lookups (coded 4xx, never 500)."""
import pytest

from tests.conftest import login_on

BILL = {"store_code": "BJ01", "items": [{"sku": "SALMON", "qty": 2}, {"sku": "TEA", "qty": 1}]}




def test_more_admin_changes_reach_a_warm_worker(app, second_worker, staff, catalogue, member_factory, store_today):
    m = member_factory()
    till = login_on(second_worker, staff["cashier"])
    admin = login_on(app, staff["admin"])
    quote = lambda **kw: till.post("/api/v1/checkouts/quote", json={**BILL, "member_id": m["id"], **kw})  # noqa: E731
    assert quote().status_code == 200
    level = till.get(f"/api/v1/members/{m['id']}").json["level"]
    level = level if isinstance(level, str) else level["code"]

    # a price for the member's level
    r = admin.patch("/api/v1/items/SALMON", json={"member_prices": {level: "50.00"}})
    assert r.status_code == 200, r.json
    assert quote().json["member_total"] == "120.00"  # 2 × 50 + 20
    # that level price removed again
    assert admin.patch("/api/v1/items/SALMON", json={"member_prices": {}}).status_code == 200
    assert quote().json["member_total"] == "156.00"

    # the dish's store list: no longer sold at BJ01
    assert admin.patch("/api/v1/items/TEA", json={"store_codes": ["BJ02"]}).status_code == 200
    r = quote()
    assert r.status_code == 422 and r.json["error"]["code"] == "item_unavailable", r.json
    assert admin.patch("/api/v1/items/TEA", json={"store_codes": []}).status_code == 200
    assert quote().status_code == 200
    # dish deactivated
    assert admin.patch("/api/v1/items/TEA", json={"active": False}).status_code == 200
    r = quote()
    assert r.status_code == 422 and r.json["error"]["code"] == "item_unavailable", r.json
    assert admin.patch("/api/v1/items/TEA", json={"active": True}).status_code == 200

    # the level's multiplier
    before = quote().json["points_earned"]
    assert admin.patch(f"/api/v1/levels/{level}", json={"points_multiplier": "3.00"}).status_code == 200
    assert quote().json["points_earned"] == 3 * before

    # staff role: the cashier becomes front desk; a cashier-only route must refuse on worker 2
    me = till.get("/api/v1/auth/me").json
    assert admin.patch(f"/api/v1/staff/{me['id']}", json={"role": "marketing"}).status_code == 200
    assert till.get("/api/v1/auth/me").json["role"] == "marketing"
    r = till.post("/api/v1/checkouts", json={**BILL})
    assert r.status_code == 403, r.json
    assert admin.patch(f"/api/v1/staff/{me['id']}", json={"role": "cashier"}).status_code == 200
    assert till.get("/api/v1/auth/me").json["role"] == "cashier"

    # the staff member's store moved: /auth/me on worker 2 shows the new one
    assert admin.patch(f"/api/v1/staff/{me['id']}", json={"store_code": "BJ02"}).status_code == 200
    got = till.get("/api/v1/auth/me").json
    assert "BJ02" in str(got), got


@pytest.mark.parametrize("body", [
    {"store_code": "BJ\x0001"},
    {"store_code": "x" * 100_000},
    {"store_code": "ＢＪ０１"},
    {"store_code": "bj01 ' OR 1=1 --"},
    {"store_code": 123},
    {"store_code": None},
    {"items": [{"sku": "SAL\x00MON", "qty": 1}]},
    {"items": [{"sku": "SALMON", "qty": 10 ** 30}]},
    {"items": [{"sku": "SALMON", "qty": 1.5}]},
    {"member_id": 10 ** 30},
    {"member_id": 2 ** 31},
    {"member_id": -1},
    {"member_id": 1.5},
    {"card_code": "\x00"},
    {"card_code": "9" * 200},
    {"wallet_amount": 1.005},
    {"wallet_amount": "1e308"},
    {"wallet_amount": "NaN"},
    {"redeem_points": 2 ** 63},
    {"promotion_codes": ["\x00"]},
    {"coupon_codes": ["\x00"]},
    {"card_id": "garbage\x00"},
])
@pytest.mark.parametrize("path", ["/api/v1/checkouts/quote", "/api/v1/checkouts"])
def test_hostile_bill_input_is_a_coded_4xx(app, catalogue, cashier, member_factory, path, body):
    member_factory()
    r = cashier.post(path, json={**BILL, **body})
    assert 400 <= r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:300])
    # and the same store/SKU still works afterwards (no poisoned cache)
    ok = cashier.post("/api/v1/checkouts/quote", json=BILL)
    assert ok.status_code == 200, ok.json
