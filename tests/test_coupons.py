"""Coupons at the till, limited stock under concurrency, top-up gifts and the lucky draw."""
import threading

import pytest

from tests.conftest import audit_problems


@pytest.fixture
def coupon_types(catalogue):
    m = catalogue
    for body in ({"code": "CASH50", "name": "满200减50", "kind": "cash", "face_value": "50.00", "min_spend": "200.00"},
                 {"code": "OYSTER180", "name": "生蚝券", "kind": "item", "face_value": "180.00", "sku": "LOBSTER"},
                 {"code": "OFF12", "name": "88折券", "kind": "percent", "rate": "88.00"},
                 {"code": "EGG", "name": "红鸡蛋", "kind": "gift"},
                 {"code": "LIMITED", "name": "限量券", "kind": "cash", "face_value": "10.00", "stock_total": 3}):
        r = m.post("/api/v1/coupon-types", json=body)
        assert r.status_code == 201, r.json
    return m


@pytest.fixture
def give_coupon(login_api):
    def give(member_id, coupon_type, key=None):
        r = login_api("manager").post(f"/api/v1/members/{member_id}/coupons", key=key,
                                      json={"coupon_type": coupon_type, "reason": "goodwill"})
        return r
    return give


def test_coupon_type_rules(coupon_types):
    m = coupon_types
    for body, code in (({"code": "P", "name": "p", "kind": "percent"}, "rate_required"),
                       ({"code": "I", "name": "i", "kind": "item", "face_value": "5.00"}, "sku_required"),
                       ({"code": "C", "name": "c", "kind": "cash"}, "face_value_required"),
                       ({"code": "CASH50", "name": "dup", "kind": "gift"}, "coupon_code_taken"),
                       ({"code": "X", "name": "x", "kind": "voucher"}, "validation_error")):
        r = m.post("/api/v1/coupon-types", json=body)
        assert r.status_code in (409, 422) and r.json["error"]["code"] == code, body


def test_quote_shows_the_coupons_and_checkout_uses_them_once(app, coupon_types, member_factory, give_coupon,
                                                             checkout, cashier):
    m = member_factory()
    cash = give_coupon(m["id"], "CASH50").json["code"]
    item = give_coupon(m["id"], "OYSTER180").json["code"]
    body = {"store_code": "BJ01", "member_id": m["id"], "coupon_codes": [cash, item],
            "items": [{"sku": "LOBSTER", "qty": 1}, {"sku": "TEA", "qty": 1}]}
    quote = cashier.post("/api/v1/checkouts/quote", json=body).json
    # Member total 328 + 20 = 348; the item coupon pays 180 of the lobster, then 50 off.
    assert quote["coupon_discount"] == "230.00" and quote["due"] == "118.00"
    assert [(c["code"], c["discount"]) for c in quote["coupons"]] == [(item, "180.00"), (cash, "50.00")]
    assert quote["points_earned"] == 11  # on 118 actually paid
    bill = checkout([("LOBSTER", 1), ("TEA", 1)], member_id=m["id"], coupon_codes=[cash, item]).json
    assert bill["coupon_discount"] == "230.00"
    again = checkout([("LOBSTER", 1), ("TEA", 1)], member_id=m["id"], coupon_codes=[cash])
    assert again.status_code == 409 and again.json["error"]["code"] == "coupon_used"
    statuses = {c["code"]: c["status"] for c in cashier.get(f"/api/v1/members/{m['id']}/coupons").json}
    assert statuses == {cash: "redeemed", item: "redeemed"}


def test_percent_and_gift_coupons(coupon_types, member_factory, give_coupon, checkout):
    m = member_factory()
    pct, egg = give_coupon(m["id"], "OFF12").json["code"], give_coupon(m["id"], "EGG").json["code"]
    bill = checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"], coupon_codes=[pct, egg]).json
    assert bill["coupon_discount"] == "18.72" and bill["due"] == "137.28"  # 156 × 12%


@pytest.mark.parametrize("case, code", [("other", "coupon_not_yours"), ("below", "coupon_min_spend"),
                                        ("unknown", "unknown_coupon"), ("twice", "duplicate_coupon"),
                                        ("item_missing", "coupon_item_missing"), ("guest", "coupon_needs_member")])
def test_bad_coupons_are_refused_and_nothing_is_saved(coupon_types, member_factory, give_coupon, checkout,
                                                      cashier, case, code):
    m, other = member_factory(), member_factory()
    mine = give_coupon(m["id"], "CASH50").json["code"]
    theirs = give_coupon(other["id"], "CASH50").json["code"]
    item = give_coupon(m["id"], "OYSTER180").json["code"]
    args = {"other": ([("LOBSTER", 1)], {"member_id": m["id"], "coupon_codes": [theirs]}),
            "below": ([("TEA", 1)], {"member_id": m["id"], "coupon_codes": [mine]}),
            "unknown": ([("LOBSTER", 1)], {"member_id": m["id"], "coupon_codes": ["QNOPE"]}),
            "twice": ([("LOBSTER", 1)], {"member_id": m["id"], "coupon_codes": [mine, mine]}),
            "item_missing": ([("SALMON", 3)], {"member_id": m["id"], "coupon_codes": [item]}),
            "guest": ([("LOBSTER", 1)], {"coupon_codes": [mine]})}[case]
    r = checkout(args[0], **args[1])
    assert r.status_code == 422 and r.json["error"]["code"] == code, r.json
    assert cashier.get("/api/v1/checkouts").json["total"] == 0
    assert all(c["status"] == "issued" for c in cashier.get(f"/api/v1/members/{m['id']}/coupons").json)


def test_expired_coupon_is_refused(app, coupon_types, member_factory, give_coupon, checkout):
    from datetime import date

    from sqlalchemy import update

    from crm.coupons.models import Coupon
    from crm.extensions import db
    m = member_factory()
    code = give_coupon(m["id"], "CASH50").json["code"]
    with app.app_context():
        db.session.execute(update(Coupon).values(valid_until=date(2020, 1, 1)))
        db.session.commit()
    r = checkout([("LOBSTER", 1)], member_id=m["id"], coupon_codes=[code])
    assert r.status_code == 422 and r.json["error"]["code"] == "coupon_expired"


def test_void_gives_the_coupon_back(login_api, coupon_types, member_factory, give_coupon, checkout, cashier):
    m = member_factory()
    code = give_coupon(m["id"], "CASH50").json["code"]
    bill = checkout([("LOBSTER", 1)], member_id=m["id"], coupon_codes=[code]).json
    r = login_api("manager").post(f"/api/v1/checkouts/{bill['id']}/void", json={"reason": "wrong"})
    assert r.json["coupons_restored"] == 1
    assert cashier.get(f"/api/v1/coupons/{code}").json["status"] == "issued"
    assert checkout([("LOBSTER", 1)], member_id=m["id"], coupon_codes=[code]).status_code == 201


def _burst(app, n, call):
    barrier, results = threading.Barrier(n), []

    def run(i):
        client = app.test_client()
        barrier.wait()
        results.append(call(client, i))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return results


def test_limited_stock_never_goes_below_zero(app, coupon_types, member_factory, login_api):
    m = member_factory()
    token = login_api("manager").token

    def issue(client, i):
        r = client.post(f"/api/v1/members/{m['id']}/coupons", json={"coupon_type": "LIMITED", "reason": "x"},
                        headers={"Authorization": f"Bearer {token}"})
        return r.status_code, (r.json or {}).get("error", {}).get("code")
    results = _burst(app, 10, issue)
    assert sorted(s for s, _ in results) == [201] * 3 + [409] * 7
    assert {c for s, c in results if s == 409} == {"out_of_stock"}
    assert [t["stock_left"] for t in coupon_types.get("/api/v1/coupon-types").json if t["code"] == "LIMITED"] == [0]
    assert audit_problems(app) == []


def test_oyster_gift_rule_with_stock_three_and_ten_concurrent_top_ups(app, coupon_types, member_factory, cashier,
                                                                      store_today):
    r = coupon_types.post("/api/v1/gift-rules", json={"name": "充2000送生蚝", "min_topup": "2000.00",
                                                      "coupon_type": "OYSTER180", "starts_on": store_today,
                                                      "ends_on": store_today, "stock": 3})
    assert r.status_code == 201, r.json
    members = [member_factory()["id"] for _ in range(10)]

    def top_up(client, i):
        r = client.post(f"/api/v1/members/{members[i]}/wallet/top-ups",
                        json={"store_code": "BJ01", "amount": "2000.00", "payment_method": "cash"},
                        headers={"Authorization": f"Bearer {cashier.token}"})
        return r.status_code, r.json
    results = _burst(app, 10, top_up)
    assert [s for s, _ in results] == [201] * 10  # every top-up succeeds
    gifted = [body for _, body in results if body["coupons"]]
    assert len(gifted) == 3 and all(b["coupons"][0]["type"] == "OYSTER180" for b in gifted)
    told = [body for _, body in results if body["gifts_unavailable"]]
    assert len(told) == 7 and told[0]["gifts_unavailable"] == [{"rule": "充2000送生蚝", "reason": "out_of_stock"}]
    assert cashier.post(f"/api/v1/members/{members[0]}/wallet/top-ups", json={
        "store_code": "BJ01", "amount": "1999.99", "payment_method": "cash"}).json["gifts_unavailable"] == []
    assert audit_problems(app) == []


def test_qualifying_checkout_grants_a_draw_and_the_prize_is_a_coupon(app, coupon_types, member_factory, checkout,
                                                                     cashier):
    coupon_types.post("/api/v1/draw-prizes", json={"name": "88折券", "coupon_type": "OFF12", "weight": 1,
                                                   "stock": 1})
    m = member_factory()
    checkout([("TEA", 1)], member_id=m["id"])  # 20.00: below the 100.00 that earns a draw
    none = cashier.post(f"/api/v1/members/{m['id']}/draws")
    assert none.status_code == 409 and none.json["error"]["code"] == "no_draws"
    checkout([("LOBSTER", 1)], member_id=m["id"])
    checkout([("LOBSTER", 1)], member_id=m["id"])
    won = cashier.post(f"/api/v1/members/{m['id']}/draws", key="draw-1")
    assert won.status_code == 201 and won.json["prize"] == "88折券" and won.json["draws_left"] == 1
    assert won.json["coupon"]["source"] == "draw" and won.json["coupon"]["status"] == "issued"
    assert cashier.post(f"/api/v1/members/{m['id']}/draws", key="draw-1").json == won.json  # replay
    out = cashier.post(f"/api/v1/members/{m['id']}/draws")
    assert out.status_code == 409 and out.json["error"]["code"] == "no_prizes_left"
    assert audit_problems(app) == []


def test_coupon_stock_audit_names_a_mismatch(app, coupon_types):
    from sqlalchemy import update

    from crm.coupons.models import CouponDefinition
    from crm.extensions import db
    with app.app_context():
        db.session.execute(update(CouponDefinition).where(CouponDefinition.code == "LIMITED").values(stock_left=1))
        db.session.commit()
    assert audit_problems(app) == ["coupon type LIMITED: stock 3 − left 1 ≠ 0 issued"]


def test_liability_counts_unused_coupon_face_value(coupon_types, member_factory, give_coupon, login_api):
    m = member_factory()
    give_coupon(m["id"], "CASH50")
    give_coupon(m["id"], "OYSTER180")
    give_coupon(m["id"], "EGG")
    assert login_api("manager").get("/api/v1/reports/liability").json["coupons_face_value"] == "230.00"
