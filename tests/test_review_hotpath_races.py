"""Review of the checkout hot path under races between different operations on one member,
and of the per-worker caches shared by the threads of one app while an admin changes prices."""
from tests.conftest import audit_problems
from tests.test_races import api_call, points_of, race, rich_member, wallet_of  # noqa: F401


def test_two_closes_redeeming_the_last_points_and_a_void_and_top_up_at_once(
        app, catalogue, rich_member, checkout, cashier, login_api):  # noqa: F811
    m = rich_member
    first = checkout([("TEA", 1)], member_id=m["id"], redeem_points=20)
    assert first.status_code == 201, first.json
    left = points_of(cashier, m["id"])  # 200 + what TEA earned
    manager = login_api("manager").token
    bill = {"store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "LOBSTER", "qty": 1}],
            "redeem_points": left, "wallet_amount": "20.00"}

    def act(i):
        if i < 2:
            return api_call(app, cashier.token, "POST", "/api/v1/checkouts", bill, key=f"last-{i}")
        if i == 2:
            return api_call(app, manager, "POST", f"/api/v1/checkouts/{first.json['id']}/void", {"reason": "redo"})
        if i == 3:
            return api_call(app, cashier.token, "POST", f"/api/v1/members/{m['id']}/wallet/top-ups",
                            {"store_code": "BJ01", "amount": "100.00", "payment_method": "cash"}, key="tu")
        return api_call(app, manager, "POST", f"/api/v1/members/{m['id']}/points/adjustments",
                        {"points": -5, "reason": "fix"})
    results = race(5, act)
    assert all(s < 500 for s, _, _ in results), results
    closes = sorted(s for s, _, _ in results[:2])
    assert 201 in closes or all(c == "insufficient_points" for s, c, _ in results[:2]), results
    assert closes.count(201) <= 1, results
    assert points_of(cashier, m["id"]) >= 0
    assert audit_problems(app) == []


def test_threads_quoting_while_prices_change_never_fail_and_settle_on_the_new_price(
        app, catalogue, cashier, member_factory):
    m = member_factory()
    admin_token = catalogue.token
    bill = {"store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "SALMON", "qty": 1}]}

    def act(i):
        if i % 4 == 0:
            return api_call(app, admin_token, "PATCH", "/api/v1/items/SALMON",
                            {"member_price": f"{60 + i}.00"})
        return api_call(app, cashier.token, "POST", "/api/v1/checkouts/quote", bill)
    for _ in range(3):
        results = race(12, act)
        assert all(s < 500 for s, _, _ in results), results
    final = catalogue.get("/api/v1/items/SALMON").json["member_price"]
    r = cashier.post("/api/v1/checkouts/quote", json=bill)
    assert r.json["member_total"] == final, (r.json, final)
