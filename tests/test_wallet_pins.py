"""Payment PINs are kept as HMAC-SHA256 with a pepper outside the database: old scrypt
hashes and PINs made with a rotated-out pepper still work and are moved to the current
pepper on their next successful use; a PIN whose pepper is gone is a 503, not a wrong try."""
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from crm.extensions import db
from crm.wallet import pins
from crm.wallet.models import WalletPin

PEPPER_A = "pepper-A-kq3M9xTz7LwB2vN8rY4pHc6D"
PEPPER_B = "pepper-B-Jt5Rm2Qs8Xn4Wd7Fk3Gz9Lb6V"


def _stored(app, member_id):
    with app.app_context():
        return db.session.scalar(select(WalletPin.pin_hash).where(WalletPin.member_id == member_id))


def _set_stored(app, member_id, value):
    with app.app_context():
        db.session.get(WalletPin, member_id).pin_hash = value
        db.session.commit()


def _pay(checkout, member_id, pin):
    return checkout([("LOBSTER", 1)], member_id=member_id, wallet_amount="328.00", pin=pin)


def _with_peppers(app, monkeypatch, current, old=()):
    monkeypatch.setitem(app.config, "PIN_PEPPER", current)
    monkeypatch.setitem(app.config, "PIN_PEPPERS_OLD", list(old))


def test_pin_is_a_keyed_hash_that_names_its_pepper(app, monkeypatch, catalogue, member_factory, cashier, checkout):
    _with_peppers(app, monkeypatch, PEPPER_A)
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    assert cashier.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "246810"}).status_code == 200
    stored = _stored(app, m["id"])
    scheme, pepper_id, salt, mac = stored.split("$")
    assert scheme == "hmac-sha256" and len(salt) == 32 and len(mac) == 64
    assert "246810" not in stored
    with app.test_request_context():
        assert stored.startswith(pins.current_prefix())
        assert pins.hash_pin("246810") != pins.hash_pin("246810")  # salted: equal PINs look different
    assert _pay(checkout, m["id"], "246810").status_code == 201
    assert _stored(app, m["id"]) == stored  # current pepper: nothing rewritten


def test_rotated_pepper_and_old_scrypt_hash_migrate_on_next_successful_use(
        app, monkeypatch, catalogue, member_factory, cashier, checkout):
    _with_peppers(app, monkeypatch, PEPPER_A)
    a, b = member_factory(), member_factory()
    for m in (a, b):
        cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                     json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
        cashier.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "135790"})
    _set_stored(app, b["id"], generate_password_hash("135790"))  # as stored before this scheme
    made_with_a = _stored(app, a["id"])

    _with_peppers(app, monkeypatch, PEPPER_B, old=[PEPPER_A])  # rotation: B is new, A still verifies
    wrong = _pay(checkout, a["id"], "000000")
    assert wrong.status_code == 422 and wrong.json["error"]["code"] == "wrong_pin"
    assert _stored(app, a["id"]) == made_with_a  # a wrong try migrates nothing
    for m in (a, b):
        assert _pay(checkout, m["id"], "135790").status_code == 201
        with app.test_request_context():
            assert _stored(app, m["id"]).startswith(pins.current_prefix())  # now under pepper B

    _with_peppers(app, monkeypatch, PEPPER_B)  # A dropped: both still pay, the right PIN only
    for m in (a, b):
        assert _pay(checkout, m["id"], "135790").status_code == 201
        assert _pay(checkout, m["id"], "135791").json["error"]["code"] == "wrong_pin"


def test_pin_made_with_a_dropped_pepper_is_503_and_counts_no_try(
        app, monkeypatch, catalogue, member_factory, cashier, checkout):
    _with_peppers(app, monkeypatch, PEPPER_A)
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    cashier.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "112233"})
    _with_peppers(app, monkeypatch, PEPPER_B)  # A dropped too early
    for _ in range(6):
        r = _pay(checkout, m["id"], "112233")
        assert r.status_code == 503 and r.json["error"]["code"] == "pin_unverifiable"
    wallet = cashier.get(f"/api/v1/members/{m['id']}/wallet").json
    assert wallet["pin_locked"] is False and wallet["balance"] == "1000.00"
    _with_peppers(app, monkeypatch, PEPPER_A)  # the operator puts the pepper back
    assert _pay(checkout, m["id"], "112233").status_code == 201


def test_weak_pin_pepper_stops_production_start():
    import pytest

    from crm.auth import keys

    class App:
        testing = debug = False
        config = {"CRM_ENV": "production", "SECRET_KEY": "Zq8Wm3Tn6Rb2Yx9Lc4Vp7Hd5Kf1Gs0Ja",
                  "PIN_PEPPER": "changeme", "PIN_PEPPERS_OLD": ""}
    with pytest.raises(keys.InsecureConfiguration, match="PIN_PEPPER"):
        keys.check(App)


def test_pins_command_counts_pins_not_yet_moved(app, monkeypatch, member_factory, cashier):
    _with_peppers(app, monkeypatch, PEPPER_A)
    a, b = member_factory(), member_factory()
    for m in (a, b):
        cashier.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "135790"})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["crm", "pins"]).output.startswith("0 PINs")
    _set_stored(app, b["id"], generate_password_hash("135790"))
    _with_peppers(app, monkeypatch, PEPPER_B, old=[PEPPER_A])
    assert runner.invoke(args=["crm", "pins"]).output.startswith("2 PINs")
