"""Idempotency keys: a retry replays, a changed body is refused, a burst has one effect."""
import threading

from sqlalchemy import func, select

from crm.cards.models import Card, CardFee
from crm.extensions import db


def _count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_replay_returns_the_same_response_and_changes_nothing(app, member_factory, issue_card):
    m = member_factory()
    first = issue_card(m["id"], key="issue-1")
    again = issue_card(m["id"], key="issue-1")
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert _count(app, Card) == 1 and _count(app, CardFee) == 1


def test_same_key_other_body_is_422(app, member_factory, issue_card):
    m = member_factory()
    assert issue_card(m["id"], key="issue-2").status_code == 201
    r = issue_card(m["id"], key="issue-2", payment_method="wechat")
    assert r.status_code == 422 and r.json["error"]["code"] == "idempotency_key_reused"
    assert _count(app, CardFee) == 1


def test_keys_belong_to_their_caller(app, member_factory, issue_card, login_api):
    """Another desk using the same key string does not get someone else's response."""
    m1, m2 = member_factory(), member_factory()
    assert issue_card(m1["id"], key="shared").status_code == 201
    manager = login_api("manager")
    r = manager.post(f"/api/v1/members/{m2['id']}/cards",
                     json={"store_code": "BJ01", "fee_paid": "20.00", "payment_method": "cash"}, key="shared")
    assert r.status_code == 201 and r.json["member_id"] == m2["id"]


def test_failed_request_is_not_remembered(app, member_factory, issue_card):
    m = member_factory()
    assert issue_card(m["id"], key="k", fee_paid="5.00").status_code == 422
    assert issue_card(m["id"], key="k", fee_paid="5.00").status_code == 422
    assert _count(app, Card) == 0


def test_twenty_concurrent_requests_with_one_key_have_one_effect(app, member_factory, desk):
    m = member_factory()
    body = {"store_code": "BJ01", "fee_paid": "20.00", "payment_method": "cash"}
    results, barrier = [], threading.Barrier(20)

    def call():
        client = app.test_client()
        barrier.wait()
        r = client.post(f"/api/v1/members/{m['id']}/cards", json=body,
                        headers={"Authorization": f"Bearer {desk.token}", "Idempotency-Key": "burst"})
        results.append((r.status_code, r.json))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _ in results] == [201] * 20
    assert len({body["card_no"] for _, body in results}) == 1
    assert _count(app, Card) == 1 and _count(app, CardFee) == 1


def test_a_wrong_pin_keeps_its_try_but_not_the_key(app, catalogue, member_factory, cashier, checkout):
    """A wrong PIN commits the counted try (and nothing else): the cashier retries with the same
    Idempotency-Key and the right PIN (the PIN is not part of the request's fingerprint) and the
    bill closes, instead of replaying an answer that was never given."""
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    assert cashier.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "246810"}).status_code == 200
    pay = {"member_id": m["id"], "wallet_amount": "328.00"}
    wrong = checkout([("LOBSTER", 1)], key="pin-retry", pin="135791", **pay)
    assert wrong.status_code == 422 and wrong.json["error"]["code"] == "wrong_pin"
    right = checkout([("LOBSTER", 1)], key="pin-retry", pin="246810", **pay)
    assert right.status_code == 201, right.json
    assert "Idempotent-Replayed" not in right.headers
    again = checkout([("LOBSTER", 1)], key="pin-retry", pin="246810", **pay)
    assert again.status_code == 201 and again.json == right.json and again.headers["Idempotent-Replayed"] == "true"
    wallet = cashier.get(f"/api/v1/members/{m['id']}/wallet").json
    assert wallet["balance"] == "672.00"
