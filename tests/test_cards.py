"""Cards: issue with fee, Luhn numbers, signed QR, scan, lost / replace / freeze."""
import io
import threading

import pytest
from PIL import Image
from sqlalchemy import select

from crm.cards import codes
from crm.cards.models import CardFee
from crm.extensions import db


def test_luhn_check_digit_matches_the_standard_examples():
    assert codes.luhn_check_digit("7992739871") == "3"
    assert codes.luhn_valid("79927398713") and not codes.luhn_valid("79927398710")
    assert codes.luhn_valid("4539578763621486")  # a well-known valid test card number
    for _ in range(200):
        n = codes.new_card_no()
        assert len(n) == 16 and n.startswith("86") and codes.luhn_valid(n)


def test_every_single_digit_typo_is_caught():
    number = "8612345678901234"
    number = number[:-1] + codes.luhn_check_digit(number[:-1])
    for i in range(16):
        for d in "0123456789":
            if d != number[i]:
                assert not codes.luhn_valid(number[:i] + d + number[i + 1:])


def test_issue_records_fee_as_revenue_of_the_issuing_store(app, member_factory, issue_card, stores):
    m = member_factory()
    r = issue_card(m["id"], store_code="BJ02", payment_method="alipay")
    assert r.status_code == 201
    card = r.json
    assert card["status"] == "active" and card["issued_store_code"] == "BJ02" and codes.luhn_valid(card["card_no"])
    assert card["qr_payload"].startswith(f"CRM1.{card['card_no']}.")
    with app.app_context():
        fee = db.session.scalar(select(CardFee))
        assert (fee.amount, fee.store_id, fee.kind, fee.payment_method) == (2000, stores["BJ02"], "issue", "alipay")


@pytest.mark.parametrize("body, code", [
    ({"fee_paid": "10.00"}, "card_fee_mismatch"), ({"fee_paid": "20.001"}, "validation_error"),
    ({"fee_paid": "-20.00"}, "validation_error"), ({"payment_method": "bitcoin"}, "validation_error"),
    ({"store_code": "NOPE"}, "unknown_store"),
])
def test_bad_issue_requests_change_nothing(app, member_factory, issue_card, body, code):
    m = member_factory()
    r = issue_card(m["id"], **body)
    assert r.status_code == 422 and r.json["error"]["code"] == code
    with app.app_context():
        assert db.session.scalar(select(CardFee)) is None


def test_card_fee_follows_the_programme_rule(login_api, member_factory, issue_card):
    assert login_api("admin").patch("/api/v1/programme", json={"card_fee": "30.00"}).json["card_fee"] == "30.00"
    m = member_factory()
    assert issue_card(m["id"]).status_code == 422
    assert issue_card(m["id"], fee_paid="30.00").status_code == 201


def test_one_live_card_per_member(member_factory, issue_card):
    m = member_factory()
    first = issue_card(m["id"]).json
    r = issue_card(m["id"])
    assert r.status_code == 409 and r.json["error"]["code"] == "card_exists"
    assert r.json["error"]["details"]["card_no"] == first["card_no"]
    assert issue_card(424242).status_code == 404


def test_concurrent_issues_for_one_member_make_one_card(app, desk, member_factory):
    m = member_factory()
    results, barrier = [], threading.Barrier(8)

    def call():
        client = app.test_client()
        barrier.wait()
        r = client.post(f"/api/v1/members/{m['id']}/cards", headers={"Authorization": f"Bearer {desk.token}"},
                        json={"store_code": "BJ01", "fee_paid": "20.00", "payment_method": "cash"})
        results.append(r.status_code)
    threads = [threading.Thread(target=call) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == [201] + [409] * 7
    assert len(desk.get(f"/api/v1/members/{m['id']}/cards").json) == 1


def test_scan_signed_payload_and_typed_card_number(login_api, member_factory, issue_card):
    m = member_factory(name="扫码", birthday="1990-01-01")
    card = issue_card(m["id"]).json
    cashier = login_api("cashier")
    for code in (card["qr_payload"], card["qr_payload"].lower(), card["card_no"]):
        r = cashier.post("/api/v1/cards/scan", json={"code": code})
        assert r.status_code == 200, code
        assert r.json["id"] == m["id"] and r.json["name"] == "扫码" and r.json["level"]["code"] == "standard"
        assert r.json["birthday_today"] is False


@pytest.mark.parametrize("tamper", [
    lambda c: c["qr_payload"][:-2] + ("AA" if not c["qr_payload"].endswith("AA") else "BB"),  # forged signature
    lambda c: c["qr_payload"].replace(c["card_no"], codes.new_card_no()),  # signature of another card
    lambda c: c["card_no"][:-1] + str((int(c["card_no"][-1]) + 1) % 10),  # mistyped number
    lambda c: "hello", lambda c: "CRM1..", lambda c: codes.new_card_no(),  # a valid-looking unknown number
])
def test_forged_or_mistyped_codes_are_invalid_code(login_api, member_factory, issue_card, tamper):
    card = issue_card(member_factory()["id"]).json
    r = login_api("cashier").post("/api/v1/cards/scan", json={"code": tamper(card)})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_code"


def test_birthday_flag_on_scan(app, login_api, member_factory, issue_card):
    from crm.core.timeutil import local_today
    with app.app_context():
        today = local_today()
    m = member_factory(birthday=f"{today.month:02d}-{today.day:02d}")
    card = issue_card(m["id"]).json
    r = login_api("cashier").post("/api/v1/cards/scan", json={"code": card["qr_payload"]})
    assert r.json["birthday_today"] is True


def test_feb_29_birthday_is_celebrated_on_feb_28_in_common_years(app, monkeypatch):
    from datetime import date
    from types import SimpleNamespace

    from crm.cards import service
    member = SimpleNamespace(birthday_month=2, birthday_day=29)
    with app.app_context():
        for day, expected in ((date(2027, 2, 28), True), (date(2028, 2, 28), False), (date(2028, 2, 29), True)):
            monkeypatch.setattr(service, "local_today", lambda tz=None, d=day: d)
            assert service.birthday_today(member) is expected, day


def test_qr_images_decode_to_the_payload(desk, member_factory, issue_card):
    card = issue_card(member_factory()["id"]).json
    png = desk.get(f"/api/v1/cards/{card['card_no']}/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    image = Image.open(io.BytesIO(png.data))
    assert image.size[0] == image.size[1] > 100
    svg = desk.get(f"/api/v1/cards/{card['card_no']}/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    # The same payload renders the same modules: the image really encodes this card.
    from crm.cards.images import png as render_png
    assert png.data == render_png(card["qr_payload"])


def test_freeze_unfreeze_lost_transitions(login_api, desk, member_factory, issue_card):
    card = issue_card(member_factory()["id"]).json
    no = card["card_no"]
    cashier = login_api("cashier")

    def scan():
        return cashier.post("/api/v1/cards/scan", json={"code": card["qr_payload"]})
    assert desk.post(f"/api/v1/cards/{no}/freeze", json={"reason": "会员要求"}).json["status"] == "frozen"
    r = scan()
    assert r.status_code == 409 and r.json["error"]["code"] == "card_not_active"
    assert r.json["error"]["details"]["status"] == "frozen"
    again = desk.post(f"/api/v1/cards/{no}/freeze")
    assert again.status_code == 409 and again.json["error"]["code"] == "card_state"
    assert desk.post(f"/api/v1/cards/{no}/unfreeze").json["status"] == "active"
    assert scan().status_code == 200
    assert desk.post(f"/api/v1/cards/{no}/lost").json["status"] == "lost"
    assert scan().status_code == 409
    assert desk.post(f"/api/v1/cards/{no}/unfreeze").status_code == 409
    assert desk.post("/api/v1/cards/8600000000000000/lost").status_code == 404


def test_replace_kills_old_card_at_once_and_keeps_the_member(app, login_api, desk, member_factory, issue_card):
    m = member_factory(name="补卡")
    old = issue_card(m["id"]).json
    assert desk.post(f"/api/v1/cards/{old['card_no']}/lost").status_code == 200
    r = desk.post(f"/api/v1/cards/{old['card_no']}/replace", key="rep-1",
                  json={"store_code": "HT01", "fee_paid": "20.00", "payment_method": "cash", "reason": "遗失"})
    assert r.status_code == 201
    new = r.json
    assert new["card_no"] != old["card_no"] and new["member_id"] == m["id"] and new["replaces"] == old["card_no"]
    assert desk.post(f"/api/v1/cards/{old['card_no']}/replace", key="rep-1",
                     json={"store_code": "HT01", "fee_paid": "20.00", "payment_method": "cash",
                           "reason": "遗失"}).json == new  # a retried replacement issues nothing new
    cashier = login_api("cashier")
    dead = cashier.post("/api/v1/cards/scan", json={"code": old["qr_payload"]})
    assert dead.status_code == 409 and dead.json["error"]["details"]["status"] == "replaced"
    assert cashier.post("/api/v1/cards/scan", json={"code": new["qr_payload"]}).json["id"] == m["id"]
    statuses = {c["card_no"]: c["status"] for c in desk.get(f"/api/v1/members/{m['id']}/cards").json}
    assert statuses == {old["card_no"]: "replaced", new["card_no"]: "active"}
    assert desk.get(f"/api/v1/members/{m['id']}").json["card"]["card_no"] == new["card_no"]
    twice = desk.post(f"/api/v1/cards/{old['card_no']}/replace",
                      json={"store_code": "HT01", "fee_paid": "20.00", "payment_method": "cash"})
    assert twice.status_code == 409
    with app.app_context():
        fees = db.session.scalars(select(CardFee).order_by(CardFee.id)).all()
        assert [f.kind for f in fees] == ["issue", "replace"]


def test_replace_with_wrong_fee_leaves_old_card_working(login_api, desk, member_factory, issue_card):
    old = issue_card(member_factory()["id"]).json
    r = desk.post(f"/api/v1/cards/{old['card_no']}/replace",
                  json={"store_code": "BJ01", "fee_paid": "1.00", "payment_method": "cash"})
    assert r.status_code == 422
    assert login_api("cashier").post("/api/v1/cards/scan", json={"code": old["qr_payload"]}).status_code == 200


def test_scan_does_not_wait_for_a_writer_on_sqlite(app, backend, login_api, member_factory, issue_card):
    """A scan only reads: on SQLite it must not queue for the write lock behind a long checkout."""
    if backend != "sqlite":
        pytest.skip("only SQLite has a database-wide write lock")
    import sqlite3
    card = issue_card(member_factory()["id"]).json
    cashier = login_api("cashier")
    writer = sqlite3.connect(app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):], isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another worker in the middle of a write
    try:
        result = {}
        t = threading.Thread(target=lambda: result.setdefault(
            "r", cashier.post("/api/v1/cards/scan", json={"code": card["qr_payload"]})))
        t.start()
        t.join(timeout=5)
        assert not t.is_alive(), "scan waited for the write lock"
        assert result["r"].status_code == 200
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        t.join()
