"""The till without JavaScript: every scan and tap is a form submit that comes back priced.
A cashier scans an item or a member (code + Enter), finds items by name or pinyin initials,
taps tiles, + / −, a coupon, "Max" points; the PIN is never written into the page; errors say
what to do next; a split tender must add up; a form sent twice closes one bill."""
import re

import pytest
from sqlalchemy import select

from crm.catalog.models import Item
from crm.checkout.models import Checkout, CheckoutTender
from crm.extensions import db
from tests.conftest import audit_problems
from tests.test_ui import text, ui_login


def _till(app, role="cashier"):
    ui = ui_login(app, role, lang="en")
    page = ui.get("/till")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(page))[1]
    return ui, token


def _lines(page: str) -> dict:
    """{sku: qty} of the bill as the page shows it (the hidden sku and the qty box of each line)."""
    return {sku: int(qty) for sku, qty in re.findall(
        r'name="sku" value="([^"]+)">.*?name="qty" value="(\d+)"', page, re.S)}


def _resend(page: str, extra: dict, token: str) -> dict:
    """The form as the page now holds it (lines, coupons, card, tenders), plus what is pressed."""
    lines = _lines(page)
    form = {"sku": list(lines), "qty": [str(q) for q in lines.values()], "store_code": "BJ01",
            "till_token": token, "coupon_codes": re.findall(r'name="coupon_codes" value="([^"]+)"', page)}
    card = re.search(r'name="card_code" value="([^"]*)"', page)
    if card and card[1]:
        form["card_code"] = card[1]
    ref = re.search(r'name="member_ref" value="([^"]+)"', page)
    if ref:
        form["member_ref"] = ref[1]
    return {**form, **extra}


def _checkouts(app):
    with app.app_context():
        return [(c.id, c.due, c.wallet_paid, sorted((t.method, t.amount) for t in c.tenders))
                for c in db.session.scalars(select(Checkout).order_by(Checkout.id))]


def test_scanned_skus_land_on_the_bill_and_are_priced(app, staff, catalogue):
    ui, token = _till(app)
    r = ui.post("/till", {"scan": "salmon", "store_code": "BJ01", "till_token": token, "action": "quote"})
    page = text(r)
    assert r.status_code == 200 and _lines(page) == {"SALMON": 1}
    assert 'id="list-total">108.00<' in page  # priced at once, as a guest
    page = text(ui.post("/till", _resend(page, {"scan": "SALMON*2", "action": "quote"}, token)))
    assert _lines(page) == {"SALMON": 3}  # one line per item: the scan adds to it
    page = text(ui.post("/till", _resend(page, {"scan": "TEA"}, token)))  # Enter without a button name
    assert _lines(page) == {"SALMON": 3, "TEA": 1} and 'id="list-total">344.00<' in page
    # The scan field is empty again, ready for the next code.
    assert re.search(r'<input id="f-scan" name="scan" value=""', page)


def test_a_member_scanned_into_the_same_field_names_the_guest(app, staff, catalogue, member_factory, issue_card,
                                                                give_points):
    m = member_factory(name="Scan Guest")
    card = issue_card(m["id"]).json
    give_points(m["id"], 40)
    ui, token = _till(app)
    page = text(ui.post("/till", {"scan": "TEA", "store_code": "BJ01", "till_token": token}))
    page = text(ui.post("/till", _resend(page, {"scan": card["qr_payload"]}, token)))
    assert "Scan Guest" in page and 'id="points-available">40<' in page
    assert f'name="card_code" value="{card["qr_payload"]}"' in page and _lines(page) == {"TEA": 1}
    assert 'id="points-earned">' in page  # priced as the member


def test_items_are_found_by_name_or_pinyin_initials(app, staff, catalogue, cashier):
    assert [i["sku"] for i in cashier.get("/api/v1/items?q=swy").json["items"]] == ["SALMON"]
    assert [i["sku"] for i in cashier.get("/api/v1/items?q=longxia").json["items"]] == ["LOBSTER"]
    assert [i["sku"] for i in cashier.get("/api/v1/items?q=三文").json["items"]] == ["SALMON"]
    assert cashier.get("/api/v1/items?q=%25").json["total"] == 0  # a typed % is a character, not a wildcard
    ui, token = _till(app)
    # One match: Enter adds it.
    page = text(ui.post("/till", {"scan": "tgy", "store_code": "BJ01", "till_token": token}))
    assert _lines(page) == {"TEA": 1}
    # Several: they are listed to tap, the text stays in the field.
    with app.app_context():  # a second 龙 dish
        item = Item(sku="LONGJING", category="drinks", list_price=3000)
        item.name = "龙井茶"
        db.session.add(item)
        db.session.commit()
    page = text(ui.post("/till", _resend(page, {"scan": "long"}, token)))
    tiles = re.findall(r'<button name="add" value="([^"]+)"', page)
    assert set(tiles) == {"LOBSTER", "LONGJING"} and "2 items match" in page and _lines(page) == {"TEA": 1}
    # None: the error says what to try.
    r = ui.post("/till", _resend(page, {"scan": "zzzz"}, token))
    assert r.status_code == 422 and re.search(r'id="e-scan">[^<]*Nothing matches', text(r))


def test_pinyin_follows_the_name(app, staff, catalogue):
    r = catalogue.patch("/api/v1/items/TEA", json={"name": "龙井"})
    assert r.status_code == 200, r.json
    with app.app_context():
        assert db.session.scalar(select(Item.search_pinyin).where(Item.sku == "TEA")) == "lj longjing"


def test_tiles_plus_and_minus_by_touch(app, staff, catalogue):
    ui, token = _till(app)
    first = text(ui.get("/till"))
    assert re.search(r'<button name="add" value="SALMON" class="tile"', first)  # the grid, with categories
    assert re.search(r'<button name="category" value="sashimi"', first)
    page = text(ui.post("/till", {"add": "SALMON", "store_code": "BJ01", "till_token": token}))
    page = text(ui.post("/till", _resend(page, {"inc": "SALMON"}, token)))
    assert _lines(page) == {"SALMON": 2}
    page = text(ui.post("/till", _resend(page, {"add": "TEA"}, token)))
    page = text(ui.post("/till", _resend(page, {"dec": "SALMON"}, token)))
    assert _lines(page) == {"SALMON": 1, "TEA": 1}
    page = text(ui.post("/till", _resend(page, {"dec": "TEA"}, token)))
    assert _lines(page) == {"SALMON": 1}  # down to nothing: the line goes
    # A category chip shows only its items (without JavaScript, by the server).
    page = text(ui.post("/till", _resend(page, {"category": "drinks"}, token)))
    visible = re.findall(r'<button name="add" value="([^"]+)" class="tile" data-category="[^"]*"\s*'
                         r'data-search="[^"]*"\s*>', page)
    assert visible == ["TEA"]


def test_the_members_coupons_apply_with_one_tap(app, staff, catalogue, member_factory, login_api):
    catalogue.post("/api/v1/coupon-types", json={"code": "CASH20", "name": "Twenty off", "kind": "cash",
                                                 "face_value": "20.00", "min_spend": "100.00"})
    m = member_factory(mobile="13700003333")
    code = login_api("manager").post(f"/api/v1/members/{m['id']}/coupons",
                                     json={"coupon_type": "CASH20", "reason": "vip"}).json["code"]
    ui, token = _till(app)
    page = text(ui.post("/till", {"items": "SALMON 2", "card_code": "13700003333", "store_code": "BJ01",
                                  "till_token": token, "action": "quote"}))
    assert re.search(rf'<button name="coupon" value="{code}" class="chip coupon" aria-pressed="false"', page)
    page = text(ui.post("/till", _resend(page, {"coupon": code}, token)))
    assert 'id="coupon-discount">−20.00<' in page and 'id="due">116.00<' in page
    assert re.search(rf'<button name="coupon" value="{code}" class="chip coupon" aria-pressed="true"', page)
    page = text(ui.post("/till", _resend(page, {"coupon": code}, token)))  # tapped again: off
    assert 'id="coupon-discount"' not in page and 'id="due">136.00<' in page


def test_points_and_stored_value_show_their_maximum(app, staff, catalogue, member_factory, give_points, cashier):
    m = member_factory(mobile="13700004444")
    give_points(m["id"], 500)
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "100.00", "payment_method": "cash"})
    ui, token = _till(app)
    base = {"items": "TEA 2", "card_code": "13700004444", "store_code": "BJ01", "till_token": token}
    page = text(ui.post("/till", {**base, "action": "quote"}))
    # 40.00 at 0.01 a point... or whatever the programme says: the button carries the maximum.
    most = int(re.search(r'name="use_points" value="(\d+)" id="max-points"', page)[1])
    page = text(ui.post("/till", _resend(page, {"use_points": str(most)}, token)))
    assert 'id="due">0.00<' in page and f'name="redeem_points" value="{most}"' in page
    # Stored value over the bill: the message says the maximum allowed.
    r = ui.post("/till", {**base, "wallet_amount": "50.00", "action": "quote"})
    assert r.status_code == 422
    assert re.search(r'id="e-wallet_amount">[^<]*at most 40\.00', text(r))
    # Over the balance: says what is left and what to do.
    r = ui.post("/till", {**base, "items": "LOBSTER 1", "wallet_amount": "150.00", "action": "quote"})
    assert r.status_code == 422 and re.search(r'id="e-wallet_amount">Only 100\.00 stored value is left', text(r))


def test_the_pin_is_never_written_into_the_page(app, staff, catalogue, member_factory, cashier):
    m = member_factory(mobile="13700005555")
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    cashier.client.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "246810"}, headers=cashier._headers())
    ui, token = _till(app)
    form = {"card_code": "13700005555", "store_code": "BJ01", "items": "LOBSTER 1", "wallet_amount": "300.00",
            "till_token": token, "pin": "246810"}
    for action in ("quote", "close"):
        r = ui.post("/till", {**form, "action": action, "pin": "111111" if action == "close" else "246810"})
        page = text(r)
        pin_input = re.search(r'<input id="f-pin"[^>]*>', page)[0]
        assert "value=" not in pin_input and "246810" not in page and "111111" not in page
    assert r.status_code == 422 and re.search(r'id="e-pin">Wrong PIN: 4 tries left', page)


def test_the_fifth_wrong_pin_says_locked_and_ask_a_manager(app, staff, catalogue, member_factory, cashier):
    m = member_factory(mobile="13700006666")
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    cashier.client.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "246810"}, headers=cashier._headers())
    ui, token = _till(app)
    form = {"card_code": "13700006666", "store_code": "BJ01", "items": "LOBSTER 1", "wallet_amount": "300.00",
            "till_token": token, "pin": "000000", "action": "close"}
    for _try in range(4):
        ui.post("/till", form)
    fifth = text(ui.post("/till", form))
    message = re.search(r'id="e-pin">([^<]+)<', fifth)[1]
    assert "locked" in message and "manager" in message and "0 tries" not in message
    after = text(ui.post("/till", {**form, "pin": "246810"}))  # even the right PIN: still locked
    assert "manager" in re.search(r'id="e-pin">([^<]+)<', after)[1]
    assert _checkouts(app) == []


def test_a_split_tender_must_add_up_and_is_stored(app, staff, catalogue, member_factory):
    member_factory(mobile="13700007777")
    ui, token = _till(app)
    form = {"card_code": "13700007777", "store_code": "BJ01", "items": "SALMON 2\nTEA", "till_token": token,
            "split_cash": "100.00", "split_wechat_pay": "50.00"}
    r = ui.post("/till", {**form, "action": "close"})
    page = text(r)
    assert r.status_code == 422 and 'id="e-tenders"' in page
    assert re.search(r'id="e-tenders">[^<]*150\.00[^<]*156\.00[^<]*6\.00', page)
    assert 'id="due">156.00<' in page  # the bill stays on screen to correct
    assert _checkouts(app) == []
    closed = ui.post("/till", {**form, "split_wechat_pay": "56.00", "action": "close"})
    assert closed.status_code == 302
    [(checkout_id, due, _wallet, tenders)] = _checkouts(app)
    assert due == 15600 and tenders == [("cash", 10000), ("wechat_pay", 5600)]
    receipt = text(ui.get(closed.location))
    assert re.search(r'data-method="cash">100\.00<', receipt) and "WeChat Pay" in receipt


def test_one_method_pays_the_whole_bill(app, staff, catalogue):
    ui, token = _till(app)
    closed = ui.post("/till", {"items": "TEA 2", "store_code": "BJ01", "till_token": token, "pay_method": "alipay",
                               "action": "close"})
    assert closed.status_code == 302
    assert _checkouts(app)[0][3] == [("alipay", 4000)]
    assert audit_problems(app) == []


def test_a_scan_with_confirm_prices_again_instead_of_closing(app, staff, catalogue):
    """The bill on screen is what is closed: a code scanned into the page since it was priced
    (then Confirm pressed) adds the item and shows the new total; nothing closes."""
    ui, token = _till(app)
    r = ui.post("/till", {"items": "TEA", "scan": "SALMON", "store_code": "BJ01", "till_token": token,
                          "action": "close"})
    assert r.status_code == 200 and 'id="due">128.00<' in text(r)
    assert _checkouts(app) == []


def test_the_close_form_sent_twice_makes_one_bill(app, staff, catalogue):
    ui, token = _till(app)
    page = text(ui.post("/till", {"add": "SALMON", "store_code": "BJ01", "till_token": token}))
    form = _resend(page, {"action": "close", "pay_method": "cash"}, token)
    first = ui.post("/till", form)
    again = ui.post("/till", form)
    assert first.status_code == 302 and again.location == first.location
    assert len(_checkouts(app)) == 1


@pytest.mark.parametrize("path", ["/till"])
def test_the_till_loads_its_own_script_and_styles(app, staff, catalogue, path):
    ui, _token = _till(app)
    page = text(ui.get(path))
    assert '<script src="/static/till.js" defer></script>' in page and "/static/till.css" in page
    assert "onclick" not in page and "<script>" not in page  # the page's CSP allows script files only


def test_the_receipt_is_not_a_report_table(app, staff, catalogue, checkout, cashier):
    bill = checkout([("SALMON", 2), ("TEA", 1)], tenders=[{"method": "bank_card"}]).json
    ui, _token = _till(app)
    receipt = text(ui.get(f"/till/receipts/{bill['id']}"))
    assert 'class="receipt" data-roll' in receipt and 'class="rcpt"' in receipt
    assert 'table class="list' not in receipt  # the reports' 7 pt print rule is for `table.list`
    assert "Bank card" in receipt and 'id="paid">236.00<' in receipt
    with app.app_context():
        assert db.session.scalar(select(CheckoutTender.method).where(CheckoutTender.checkout_id == bill["id"])) \
            == "bank_card"


def test_taps_after_the_phone_code_expired_keep_the_member(app, staff, catalogue, member_factory, issue_card,
                                                           clock):
    """A guest shows a phone code (it expires within a minute); the cashier keeps adding dishes
    for a few minutes: the bill stays the member's, and closes for them."""
    from crm.cards import codes
    from crm.cards.service import get_card
    m = member_factory(name="Phone Guest")
    card = issue_card(m["id"]).json
    clock.set("12:00")
    with app.app_context():
        phone_code = codes.dynamic_payload(get_card(card["card_no"]).id)
    ui, token = _till(app)
    page = text(ui.post("/till", {"scan": phone_code, "items": "TEA", "store_code": "BJ01", "till_token": token}))
    assert "Phone Guest" in page
    clock.advance(seconds=240)
    page = text(ui.post("/till", _resend(page, {"add": "SALMON"}, token)))
    assert "Phone Guest" in page and 'id="member-total">88.00<' in page  # 68 member price + 20
    closed = ui.post("/till", _resend(page, {"action": "close"}, token))
    assert closed.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Checkout.member_id)) == m["id"]


def test_a_paper_coupon_scanned_is_applied(app, staff, catalogue, member_factory, login_api):
    catalogue.post("/api/v1/coupon-types", json={"code": "CASH20", "name": "Twenty off", "kind": "cash",
                                                 "face_value": "20.00", "min_spend": "100.00"})
    m = member_factory(mobile="13700008888")
    code = login_api("manager").post(f"/api/v1/members/{m['id']}/coupons",
                                     json={"coupon_type": "CASH20", "reason": "vip"}).json["code"]
    ui, token = _till(app)
    page = text(ui.post("/till", {"items": "SALMON 2", "card_code": "13700008888", "store_code": "BJ01",
                                  "till_token": token}))
    page = text(ui.post("/till", _resend(page, {"scan": code.lower()}, token)))
    assert 'id="coupon-discount">−20.00<' in page and _lines(page) == {"SALMON": 2}
