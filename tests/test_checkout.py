"""The cashier's checkout: member prices, points earned and redeemed, voids."""
import pytest
from sqlalchemy import func, select

from crm.checkout.models import Checkout
from crm.extensions import db
from tests.conftest import audit_problems

SEED_BILL = [("SALMON", 2), ("TEA", 1)]


def _count_checkouts(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Checkout))


def _balance(api, member_id):
    return api.get(f"/api/v1/members/{member_id}/points").json["balance"]


def test_seed_programme_end_to_end(app, catalogue, member_factory, issue_card, checkout, cashier):
    m = member_factory()
    card = issue_card(m["id"]).json
    quote = cashier.post("/api/v1/checkouts/quote", json={
        "store_code": "BJ01", "card_code": card["qr_payload"], "items": [{"sku": "SALMON", "qty": 2},
                                                                         {"sku": "TEA", "qty": 1}]}).json
    assert (quote["list_total"], quote["member_total"], quote["savings"]) == ("236.00", "156.00", "80.00")
    assert quote["points_earned"] == 15 and quote["due"] == "156.00" and quote["member"]["id"] == m["id"]
    assert quote["lines"][0] == {"sku": "SALMON", "name": "三文鱼刺身", "qty": 2, "list_price": "108.00",
                                 "unit_price": "68.00", "amount": "136.00", "promotion": None}
    assert _count_checkouts(app) == 0  # a quote saves nothing

    first = checkout(SEED_BILL, card_code=card["qr_payload"], covers=2, segment="walk_in")
    assert first.status_code == 201, first.json
    assert (first.json["member_total"], first.json["points_earned"], first.json["points_balance"]) == ("156.00", 15, 15)
    # The cashier sees the card masked (only the roles that print cards see its number).
    assert first.json["card_no"] == "86**********" + card["card_no"][-4:] and first.json["covers"] == 2

    # Next visit: the 15 points pay 15 yuan, and the guest earns on what they paid.
    second = checkout(SEED_BILL, card_code=card["card_no"], redeem_points=15)
    assert second.status_code == 201, second.json
    assert (second.json["points_redeemed"], second.json["points_value"], second.json["due"]) == (15, "15.00",
                                                                                              "141.00")
    assert second.json["points_earned"] == 14 and second.json["points_balance"] == 14
    assert audit_problems(app) == []


def test_points_earned_are_not_usable_on_the_same_bill(catalogue, member_factory, checkout):
    m = member_factory()
    r = checkout(SEED_BILL, member_id=m["id"], redeem_points=15)
    assert r.status_code == 409 and r.json["error"]["code"] == "insufficient_points"


def test_non_member_pays_list_prices_and_earns_nothing(app, catalogue, checkout, cashier):
    r = checkout(SEED_BILL)
    assert r.status_code == 201
    assert (r.json["member_total"], r.json["savings"], r.json["points_earned"]) == ("236.00", "0.00", 0)
    assert r.json["member_id"] is None
    r = checkout(SEED_BILL, redeem_points=5)
    assert r.status_code == 422 and r.json["error"]["code"] == "redeem_needs_member"


@pytest.mark.parametrize("body, status, code", [
    ({"items": [{"sku": "NOPE", "qty": 1}]}, 422, "unknown_sku"),
    ({"items": [{"sku": "TEA", "qty": 0}]}, 422, "validation_error"),
    ({"items": [{"sku": "TEA", "qty": -2}]}, 422, "validation_error"),
    ({"items": [{"sku": "TEA", "qty": 1.5}]}, 422, "validation_error"),
    ({"items": []}, 422, "validation_error"),
    ({"redeem_points": 11}, 409, "insufficient_points"),
    ({"redeem_points": 2}, 422, "redeem_exceeds_bill"),
    ({"redeem_points": -1}, 422, "validation_error"),
    ({"promotion_codes": ["XMAS2020"]}, 422, "promotion_expired"),
    ({"promotion_codes": ["NOSUCH"]}, 422, "unknown_promotion"),
    ({"store_code": "NOPE"}, 422, "unknown_store"),
    ({"segment": "vip"}, 422, "validation_error"),
])
def test_bad_checkouts_are_refused_and_save_nothing(app, catalogue, member_factory, issue_card, checkout,
                                                    give_points, cashier, body, status, code):
    m = member_factory()
    card = issue_card(m["id"]).json
    give_points(m["id"], 10)
    catalogue.post("/api/v1/promotions", json={"code": "XMAS2020", "name": "圣诞", "rate": "80", "starts_on":
                                               "2020-12-20", "ends_on": "2020-12-26", "auto_apply": False})
    payload = {"store_code": "BJ01", "card_code": card["qr_payload"], "items": [{"sku": "TEA", "qty": 1}],
               "redeem_points": 0, **body}
    if body.get("redeem_points") == 2:
        payload["items"] = [{"sku": "TEA", "qty": 1}]
        catalogue.patch("/api/v1/items/TEA", json={"list_price": "1.50"})
    r = cashier.post("/api/v1/checkouts", json=payload)
    assert r.status_code == status and r.json["error"]["code"] == code, r.json
    assert _count_checkouts(app) == 0 and _balance(cashier, m["id"]) == 10
    assert audit_problems(app) == []


def test_frozen_card_cannot_check_out(app, catalogue, member_factory, issue_card, desk, checkout):
    m = member_factory()
    card = issue_card(m["id"]).json
    desk.post(f"/api/v1/cards/{card['card_no']}/freeze")
    for ref in ({"card_code": card["qr_payload"]}, {"member_id": m["id"]}):
        r = checkout(SEED_BILL, **ref)
        assert r.status_code == 409 and r.json["error"]["code"] == "card_not_active"
    assert _count_checkouts(app) == 0


def test_retried_checkout_returns_the_same_bill_and_earns_once(app, catalogue, member_factory, checkout, cashier):
    m = member_factory()
    a = checkout(SEED_BILL, key="till-1-0001", member_id=m["id"])
    b = checkout(SEED_BILL, key="till-1-0001", member_id=m["id"])
    assert a.status_code == b.status_code == 201 and a.json == b.json
    assert _count_checkouts(app) == 1 and _balance(cashier, m["id"]) == 15
    c = checkout([("TEA", 1)], key="till-1-0001", member_id=m["id"])
    assert c.status_code == 422 and c.json["error"]["code"] == "idempotency_key_reused"


def test_level_multiplier_and_member_level_prices(login_api, catalogue, member_factory, checkout):
    admin = login_api("admin")
    admin.post("/api/v1/levels", json={"code": "gold", "name": "金卡", "rank": 2, "points_multiplier": "1.50"})
    catalogue.patch("/api/v1/items/SALMON", json={"member_prices": {"gold": "60.00"}})
    m = member_factory()
    login_api("manager").patch(f"/api/v1/members/{m['id']}", json={"level_code": "gold"})
    r = checkout(SEED_BILL, member_id=m["id"])
    assert r.json["member_total"] == "140.00"  # 2 × 60 + 20
    assert r.json["points_earned"] == 21  # 14 full tens × 1.5
    plain = member_factory()
    assert checkout(SEED_BILL, member_id=plain["id"]).json["member_total"] == "156.00"


def test_promotion_takes_the_lower_price_and_never_stacks(catalogue, member_factory, checkout, store_today):
    today = store_today
    r = catalogue.post("/api/v1/promotions", json={"code": "VAL", "name": "情人节7.7折", "rate": "77.00",
                                                   "categories": ["sashimi", "seafood"], "starts_on": today,
                                                   "ends_on": today, "members_only": False})
    assert r.status_code == 201 and r.json["rate"] == "77.00"
    guest = checkout([("SALMON", 1), ("LOBSTER", 1), ("TEA", 1)]).json
    # Everyone: 108 × 0.77 = 83.16; 388 × 0.77 = 298.76; tea not in the categories.
    assert [line["unit_price"] for line in guest["lines"]] == ["83.16", "298.76", "20.00"]
    assert guest["lines"][0]["promotion"] == "VAL"
    member = member_factory()
    bill = checkout([("SALMON", 1), ("LOBSTER", 1)], member_id=member["id"]).json
    # Member prices 68 and 328; the promotion beats only the lobster's (298.76 < 328).
    assert [line["unit_price"] for line in bill["lines"]] == ["68.00", "298.76"]


def test_members_only_promotion_and_rounding(catalogue, member_factory, checkout, store_today):
    catalogue.post("/api/v1/items", json={"sku": "SOUP", "name": "汤", "category": "soup", "list_price": "33.33"})
    today = store_today
    catalogue.post("/api/v1/promotions", json={"code": "M88", "name": "会员88折", "rate": "88", "categories": ["soup"],
                                               "starts_on": today, "ends_on": today, "members_only": True})
    assert checkout([("SOUP", 3)]).json["lines"][0]["unit_price"] == "33.33"
    line = checkout([("SOUP", 3)], member_id=member_factory()["id"]).json["lines"][0]
    assert (line["unit_price"], line["amount"]) == ("29.33", "87.99")  # 33.33 × 0.88 = 29.3304 → 29.33 per unit


def test_redeeming_uses_oldest_points_first(app, catalogue, member_factory, checkout, cashier, give_points):
    from datetime import timedelta

    from sqlalchemy import update

    from crm.points.models import PointsLot
    m = member_factory()
    give_points(m["id"], 10, "old")
    give_points(m["id"], 10, "new")
    with app.app_context():
        lots = db.session.scalars(select(PointsLot).order_by(PointsLot.id)).all()
        db.session.execute(update(PointsLot).where(PointsLot.id == lots[1].id)
                           .values(expires_at=lots[0].expires_at - timedelta(days=40)))
        db.session.commit()
    checkout(SEED_BILL, member_id=m["id"], redeem_points=12)
    summary = cashier.get(f"/api/v1/members/{m['id']}/points").json
    remaining = sorted((lot["remaining"] for lot in summary["lots"]))
    assert remaining == [8, 14]  # the sooner-expiring lot (the 'new' one) went first; 14 just earned


def test_void_reverses_everything_and_twice_is_409(app, login_api, catalogue, member_factory, checkout, cashier,
                                                   give_points):
    m = member_factory()
    give_points(m["id"], 20)
    bill = checkout(SEED_BILL, member_id=m["id"], redeem_points=20).json
    assert _balance(cashier, m["id"]) == 13  # 20 − 20 + 13 earned on 136
    manager = login_api("manager")
    assert cashier.post(f"/api/v1/checkouts/{bill['id']}/void", json={"reason": "x"}).status_code == 403
    assert manager.post(f"/api/v1/checkouts/{bill['id']}/void", json={}).status_code == 422
    r = manager.post(f"/api/v1/checkouts/{bill['id']}/void", json={"reason": "wrong table"}, key="void-1")
    assert r.status_code == 201, r.json
    assert (r.json["points_restored"], r.json["points_reclaimed"], r.json["points_written_off"]) == (20, 13, 0)
    assert r.json["checkout"]["status"] == "voided" and r.json["checkout"]["void_reason"] == "wrong table"
    assert _balance(cashier, m["id"]) == 20
    replay = manager.post(f"/api/v1/checkouts/{bill['id']}/void", json={"reason": "wrong table"}, key="void-1")
    assert replay.json == r.json
    again = manager.post(f"/api/v1/checkouts/{bill['id']}/void", json={"reason": "again"})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_voided"
    entries = cashier.get(f"/api/v1/members/{m['id']}/points/entries").json["items"]
    assert [e["kind"] for e in entries][:2] == ["reversal", "reversal"]  # new entries; nothing edited
    assert audit_problems(app) == []


def test_void_after_earned_points_were_spent_writes_off_and_never_goes_negative(
        app, login_api, catalogue, member_factory, checkout, cashier):
    m = member_factory()
    earned = checkout(SEED_BILL, member_id=m["id"]).json  # earns 15
    checkout(SEED_BILL, member_id=m["id"], redeem_points=15)  # spends them, earns 14
    checkout([("TEA", 1)], member_id=m["id"], redeem_points=10)  # spends 10 more, earns 1 → 5 left
    assert _balance(cashier, m["id"]) == 5
    r = login_api("manager").post(f"/api/v1/checkouts/{earned['id']}/void", json={"reason": "dispute"})
    assert (r.json["points_reclaimed"], r.json["points_written_off"]) == (5, 10)
    assert _balance(cashier, m["id"]) == 0
    assert audit_problems(app) == []


def test_rolling_spend_moves_a_member_up(login_api, catalogue, member_factory, checkout):
    login_api("admin").post("/api/v1/levels", json={"code": "silver", "name": "银卡", "rank": 1,
                                                     "points_multiplier": "1.20", "upgrade_spend": "500.00"})
    m = member_factory()
    for _ in range(3):
        checkout([("LOBSTER", 1)], member_id=m["id"])  # 328 each
    assert login_api("front_desk").get(f"/api/v1/members/{m['id']}").json["level"]["code"] == "silver"
    fourth = checkout([("LOBSTER", 1)], member_id=m["id"]).json
    assert fourth["points_earned"] == 38  # 32 full tens × 1.2 = 38.4, rounded down: the new level's multiplier


def test_checkout_lists_and_reads(catalogue, member_factory, checkout, cashier):
    m = member_factory()
    bill = checkout(SEED_BILL, member_id=m["id"]).json
    assert cashier.get(f"/api/v1/checkouts/{bill['id']}").json["due"] == "156.00"
    listing = cashier.get(f"/api/v1/checkouts?member_id={m['id']}").json
    assert listing["total"] == 1 and listing["items"][0]["id"] == bill["id"]
    assert cashier.get("/api/v1/checkouts/999999").status_code == 404
