"""Stored value: tiered top-ups, proportional spending, PIN, refunds, voids, concurrency."""
import threading

import pytest

from tests.conftest import audit_problems


@pytest.fixture
def wallet_api(cashier):
    def top_up(member_id, amount, key=None, **extra):
        return cashier.post(f"/api/v1/members/{member_id}/wallet/top-ups", key=key,
                            json={"store_code": "BJ01", "amount": amount, "payment_method": "wechat", **extra})
    return top_up


def _wallet(api, member_id):
    return api.get(f"/api/v1/members/{member_id}/wallet").json


@pytest.mark.parametrize("amount, bonus", [("4999.00", "0.00"), ("5000.00", "600.00"), ("9999.99", "600.00"),
                                           ("10000.00", "1500.00"), ("30000.00", "1500.00")])
def test_seed_bonus_tiers(app, member_factory, wallet_api, cashier, amount, bonus):
    m = member_factory()
    r = wallet_api(m["id"], amount)
    assert r.status_code == 201, r.json
    assert (r.json["principal_added"], r.json["bonus_added"]) == (amount, bonus)
    assert r.json["wallet"]["principal"] == amount and r.json["wallet"]["bonus"] == bonus
    assert audit_problems(app) == []


@pytest.mark.parametrize("amount", ["0", "-100.00", "100.001", "abc", None])
def test_bad_top_ups_change_nothing(member_factory, wallet_api, cashier, amount):
    m = member_factory()
    r = wallet_api(m["id"], amount)
    assert r.status_code == 422 and r.json["error"]["code"] == "validation_error"
    assert _wallet(cashier, m["id"])["balance"] == "0.00"
    assert wallet_api(m["id"], "10.00", payment_method="gold").status_code == 422
    assert wallet_api(424242, "10.00").status_code == 404


def test_retried_top_up_adds_once(member_factory, wallet_api, cashier):
    m = member_factory()
    a, b = wallet_api(m["id"], "5000.00", key="tu-1"), wallet_api(m["id"], "5000.00", key="tu-1")
    assert a.json == b.json and _wallet(cashier, m["id"])["balance"] == "5600.00"
    assert wallet_api(m["id"], "6000.00", key="tu-1").json["error"]["code"] == "idempotency_key_reused"


def test_tiers_are_admin_editable_with_dates(login_api, member_factory, wallet_api, store_today):
    admin = login_api("admin")
    tiers = admin.get("/api/v1/wallet/bonus-tiers").json
    assert [(t["min_amount"], t["bonus"]) for t in tiers] == [("5000.00", "600.00"), ("10000.00", "1500.00")]
    r = admin.post("/api/v1/wallet/bonus-tiers", json={"min_amount": "2000.00", "bonus": "200.00",
                                                       "valid_from": store_today, "valid_to": store_today})
    assert r.status_code == 201
    assert admin.post("/api/v1/wallet/bonus-tiers", json={"min_amount": "0", "bonus": "1"}).status_code == 422
    m = member_factory()
    assert wallet_api(m["id"], "2000.00").json["bonus_added"] == "200.00"
    admin.patch(f"/api/v1/wallet/bonus-tiers/{r.json['id']}", json={"active": False})
    assert wallet_api(m["id"], "2000.00").json["bonus_added"] == "0.00"


def test_paying_from_the_wallet_splits_in_proportion_and_earns_on_principal(
        app, catalogue, member_factory, wallet_api, checkout, cashier):
    m = member_factory()
    wallet_api(m["id"], "5000.00")  # principal 5000 + bonus 600
    r = checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"], wallet_amount="156.00")
    assert r.status_code == 201, r.json
    # 156 × 600 / 5600 = 16.714… → 16.71 from bonus, 139.29 from principal.
    assert (r.json["wallet_paid"], r.json["wallet_bonus"], r.json["wallet_principal"]) == ("156.00", "16.71",
                                                                                       "139.29")
    assert r.json["due"] == "0.00" and r.json["points_earned"] == 13  # on 139.29 of principal
    w = _wallet(cashier, m["id"])
    assert (w["principal"], w["bonus"]) == ("4860.71", "583.29")
    assert audit_problems(app) == []


def test_principal_first_mode_and_points_on_bonus_setting(login_api, catalogue, member_factory, wallet_api, checkout):
    login_api("admin").patch("/api/v1/programme", json={"wallet_spend_mode": "principal_first",
                                                        "points_on_wallet_bonus": True})
    m = member_factory()
    wallet_api(m["id"], "5000.00")
    r = checkout([("LOBSTER", 1)], member_id=m["id"], wallet_amount="328.00").json
    assert (r["wallet_principal"], r["wallet_bonus"], r["points_earned"]) == ("328.00", "0.00", 32)
    assert login_api("admin").patch("/api/v1/programme", json={"wallet_spend_mode": "sometimes"}).status_code == 422


@pytest.mark.parametrize("extra, status, code", [
    ({"wallet_amount": "200.00"}, 422, "wallet_exceeds_bill"),
    ({"wallet_amount": "0.001"}, 422, "validation_error"),
    ({"wallet_amount": "-5"}, 422, "validation_error"),
])
def test_bad_wallet_payments_save_nothing(app, catalogue, member_factory, wallet_api, checkout, cashier,
                                          extra, status, code):
    m = member_factory()
    wallet_api(m["id"], "100.00")
    r = checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"], **extra)
    assert r.status_code == status and r.json["error"]["code"] == code
    assert _wallet(cashier, m["id"])["balance"] == "100.00"
    assert cashier.get("/api/v1/checkouts").json["total"] == 0


def test_insufficient_wallet_and_non_members(catalogue, member_factory, wallet_api, checkout, cashier):
    m = member_factory()
    wallet_api(m["id"], "100.00")
    r = checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"], wallet_amount="150.00")
    assert r.status_code == 409 and r.json["error"]["code"] == "insufficient_wallet"
    r = checkout([("TEA", 1)], wallet_amount="10.00")
    assert r.status_code == 422 and r.json["error"]["code"] == "wallet_needs_member"


def test_pin_guards_large_payments_and_locks_after_five_wrong_tries(
        app, login_api, catalogue, member_factory, wallet_api, checkout, cashier):
    m = member_factory()
    wallet_api(m["id"], "10000.00")
    url = f"/api/v1/members/{m['id']}/wallet/pin"
    assert cashier.client.put(url, json={"pin": "12ab56"}, headers=cashier._headers()).status_code == 422
    assert cashier.client.put(url, json={"pin": "123456"}, headers=cashier._headers()).json["pin_set"] is True
    change = cashier.client.put(url, json={"pin": "654321", "current_pin": "000000"}, headers=cashier._headers())
    assert change.status_code == 422 and change.json["error"]["code"] == "wrong_pin"
    small = checkout([("TEA", 1)], member_id=m["id"], wallet_amount="20.00")  # under the 200.00 threshold
    assert small.status_code == 201
    bill = [("LOBSTER", 1)]
    need = checkout(bill, member_id=m["id"], wallet_amount="328.00")
    assert need.status_code == 422 and need.json["error"]["code"] == "pin_required"
    for tries_left in (3, 2, 1, 0):  # the wrong change above was the first wrong try
        r = checkout(bill, member_id=m["id"], wallet_amount="328.00", pin="111111")
        assert r.status_code == 422 and r.json["error"]["details"]["tries_left"] == tries_left
    locked = checkout(bill, member_id=m["id"], wallet_amount="328.00", pin="123456")
    assert locked.status_code == 409 and locked.json["error"]["code"] == "wallet_locked"
    assert _wallet(cashier, m["id"])["pin_locked"] is True
    assert cashier.post(f"{url}/unlock").status_code == 403
    assert login_api("manager").post(f"{url}/unlock").json["pin_locked"] is False
    ok = checkout(bill, member_id=m["id"], wallet_amount="328.00", pin="123456")
    assert ok.status_code == 201
    assert cashier.get("/api/v1/checkouts").json["total"] == 2  # the small one and this one
    assert audit_problems(app) == []


def test_refund_returns_principal_forfeits_bonus_and_replays(app, login_api, catalogue, member_factory,
                                                             wallet_api, checkout, cashier):
    m = member_factory()
    wallet_api(m["id"], "5000.00")
    checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"], wallet_amount="156.00")
    url = f"/api/v1/members/{m['id']}/wallet/refunds"
    assert cashier.post(url, json={"store_code": "BJ01", "reason": "moving away"}).status_code == 403
    manager = login_api("manager")
    assert manager.post(url, json={"store_code": "BJ01"}).status_code == 422
    r = manager.post(url, json={"store_code": "BJ01", "reason": "moving away"}, key="refund-1")
    assert r.status_code == 201
    assert (r.json["refunded_principal"], r.json["forfeited_bonus"]) == ("4860.71", "583.29")
    assert r.json["wallet"]["balance"] == "0.00"
    assert manager.post(url, json={"store_code": "BJ01", "reason": "moving away"}, key="refund-1").json == r.json
    again = manager.post(url, json={"store_code": "BJ01", "reason": "again"})
    assert again.status_code == 409 and again.json["error"]["code"] == "wallet_empty"
    kinds = [(e["account"], e["kind"]) for e in cashier.get(f"/api/v1/members/{m['id']}/wallet/entries").json["items"]]
    assert kinds[:2] == [("bonus", "refund"), ("principal", "refund")]
    assert wallet_api(m["id"], "100.00").status_code == 201  # the wallet stays open
    assert audit_problems(app) == []


def test_void_gives_the_wallet_parts_back(app, login_api, catalogue, member_factory, wallet_api, checkout, cashier):
    m = member_factory()
    wallet_api(m["id"], "5000.00")
    bill = checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"], wallet_amount="156.00").json
    r = login_api("manager").post(f"/api/v1/checkouts/{bill['id']}/void", json={"reason": "wrong member"})
    assert r.json["wallet_restored"] == "156.00"
    w = _wallet(cashier, m["id"])
    assert (w["principal"], w["bonus"]) == ("5000.00", "600.00")
    assert audit_problems(app) == []


def test_fifty_concurrent_wallet_payments_never_overdraw(app, catalogue, member_factory, wallet_api, cashier):
    catalogue.post("/api/v1/items", json={"sku": "SET", "name": "套餐", "category": "set", "list_price": "33.00"})
    m = member_factory()
    wallet_api(m["id"], "5000.00")  # 5,600 in all; a 14-lobster dinner (4,592) leaves 1,008: 30 × 33 and 18 over
    drain = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01", "member_id": m["id"],
                                                    "wallet_amount": "4592.00",
                                                    "items": [{"sku": "LOBSTER", "qty": 14}]})
    assert drain.status_code == 201, drain.json
    before = _wallet(cashier, m["id"])
    assert before["balance"] == "1008.00"
    barrier, results = threading.Barrier(50), []
    body = {"store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "SET", "qty": 1}], "wallet_amount": "33.00"}

    def till(n):
        client = app.test_client()
        barrier.wait()
        r = client.post("/api/v1/checkouts", json=body,
                        headers={"Authorization": f"Bearer {cashier.token}", "Idempotency-Key": f"w-{n}"})
        results.append((r.status_code, (r.json or {}).get("error", {}).get("code")))

    threads = [threading.Thread(target=till, args=(n,)) for n in range(50)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    paid = [s for s, _ in results].count(201)
    assert {code for s, code in results if s != 201} <= {"insufficient_wallet"}
    after = _wallet(cashier, m["id"])
    assert paid == 30 and after["balance"] == "18.00"
    assert float(after["principal"]) >= 0 and float(after["bonus"]) >= 0
    assert audit_problems(app) == []


def test_liability_report(login_api, member_factory, wallet_api, give_points):
    m = member_factory()
    wallet_api(m["id"], "10000.00")
    give_points(m["id"], 250)
    r = login_api("manager").get("/api/v1/reports/liability").json
    assert r == {"wallet_principal": "10000.00", "wallet_bonus": "1500.00", "wallet_total": "11500.00",
                 "points_outstanding": 250, "points_value": "250.00", "coupons_face_value": "0.00"}
    assert login_api("cashier").get("/api/v1/reports/liability").status_code == 403


def test_two_managers_refunding_at_once_refund_once(app, login_api, member_factory, wallet_api, cashier):
    m = member_factory()
    wallet_api(m["id"], "5000.00")
    token, barrier, results = login_api("manager").token, threading.Barrier(2), []

    def refund(n):
        client = app.test_client()
        barrier.wait()
        r = client.post(f"/api/v1/members/{m['id']}/wallet/refunds", json={"store_code": "BJ01", "reason": "x"},
                        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"refund-{n}"})
        results.append((r.status_code, (r.json or {}).get("error", {}).get("code")))
    threads = [threading.Thread(target=refund, args=(n,)) for n in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == [(201, None), (409, "wallet_empty")]
    assert _wallet(cashier, m["id"])["balance"] == "0.00"
    assert audit_problems(app) == []


def test_two_cashiers_topping_up_one_member_at_once(app, member_factory, cashier):
    m = member_factory()
    barrier, results = threading.Barrier(8), []

    def top_up(n):
        client = app.test_client()
        barrier.wait()
        r = client.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                        json={"store_code": "BJ01", "amount": "5000.00", "payment_method": "cash"},
                        headers={"Authorization": f"Bearer {cashier.token}", "Idempotency-Key": f"tu-{n}"})
        results.append(r.status_code)
    threads = [threading.Thread(target=top_up, args=(n,)) for n in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == [201] * 8
    w = _wallet(cashier, m["id"])
    assert (w["principal"], w["bonus"]) == ("40000.00", "4800.00")
    assert audit_problems(app) == []
