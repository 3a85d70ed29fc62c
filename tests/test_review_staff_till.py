"""Review (issue 13): the till under hostile or hurried use. Confirm closes the bill the
cashier was shown — a field edited after pricing (points, stored value, the member, a typed
quantity) prices again instead of closing at a figure nobody saw."""
import re

from tests.conftest import audit_problems
from tests.test_till_flow import _checkouts, _lines, _till
from tests.test_till_flow import _resend as _resend_fields
from tests.test_ui import text


def _resend(page: str, extra: dict, token: str) -> dict:
    """The form as a browser sends it back, with the page's record of what it priced."""
    priced = re.search(r'name="priced" value="([^"]+)"', page)
    return {**_resend_fields(page, extra, token), **({"priced": priced[1]} if priced else {})}


def _due_on_confirm(page: str) -> str:
    return re.search(r'id="confirm"[^>]*>[^<]*?([0-9]+\.[0-9]{2})<', page)[1]


def test_confirm_after_editing_points_prices_again_instead_of_closing(app, staff, catalogue, member_factory,
                                                                      give_points):
    m = member_factory(mobile="13700005555")
    give_points(m["id"], 50)
    ui, token = _till(app)
    page = text(ui.post("/till", {"scan": "SALMON", "card_code": "13700005555", "store_code": "BJ01",
                                  "till_token": token, "action": "quote"}))
    shown = _due_on_confirm(page)
    # The cashier types 50 points into the box and clicks Confirm (the button still says `shown`).
    r = ui.post("/till", _resend(page, {"redeem_points": "50", "action": "close"}, token))
    assert _checkouts(app) == [], "a bill was closed at a due the Confirm button did not show"
    assert r.status_code in (200, 422)
    again = text(r)
    assert _due_on_confirm(again) != shown  # priced again with the points: confirm now shows the new due
    closed = ui.post("/till", _resend(again, {"redeem_points": "50", "action": "close"}, token))
    assert closed.status_code == 302
    assert [c[1] for c in _checkouts(app)] == [int(round(float(_due_on_confirm(again)) * 100))]
    assert not audit_problems(app)


def test_confirm_after_changing_the_member_prices_again_instead_of_closing(app, staff, catalogue, member_factory):
    member_factory(mobile="13700006666", name="甲客")
    member_factory(mobile="13700007777", name="乙客")
    ui, token = _till(app)
    page = text(ui.post("/till", {"scan": "SALMON", "card_code": "13700006666", "store_code": "BJ01",
                                  "till_token": token, "action": "quote"}))
    assert "甲客" in page
    r = ui.post("/till", _resend(page, {"card_code": "13700007777", "action": "close"}, token))
    assert _checkouts(app) == [], "the bill was closed for a member it was never priced for"
    assert "乙客" in text(r)


def test_choosing_how_the_guest_pays_after_pricing_still_closes_at_once(app, staff, catalogue):
    ui, token = _till(app)
    page = text(ui.post("/till", {"scan": "SALMON", "store_code": "BJ01", "till_token": token, "action": "quote"}))
    r = ui.post("/till", _resend(page, {"pay_method": "wechat_pay", "action": "close"}, token))
    assert r.status_code == 302
    assert [c[3] for c in _checkouts(app)] == [[("wechat_pay", 10800)]]


def test_a_quantity_in_superscript_or_circled_digits_is_named_beside_the_line(app, staff, catalogue):
    # "²" and "①" are digits to str.isdigit() but not to int(): the till answered 500.
    ui, token = _till(app)
    for qty in ("²", "①"):
        r = ui.post("/till", {"store_code": "BJ01", "sku": "SALMON", "qty": qty, "till_token": token,
                              "action": "close"})
        assert r.status_code == 422, qty
        assert 'id="e-items"' in text(r)
    assert _checkouts(app) == []


def test_a_scan_that_is_both_an_items_sku_and_a_members_mobile_or_card_is_not_guessed(app, staff, catalogue,
                                                                                     member_factory, issue_card):
    # A catalogue SKU equal to a member's mobile (or card number): the scan added the dish and
    # never named the guest. The cashier is told which field settles it.
    m = member_factory(mobile="13700009999", name="撞号客")
    card = issue_card(m["id"]).json
    for sku in ("13700009999", card["card_no"]):
        assert catalogue.post("/api/v1/items", json={"sku": sku, "name": "撞号菜", "category": "drinks",
                                                     "list_price": "5.00"}).status_code == 201
    ui, token = _till(app)
    for scanned in ("13700009999", card["card_no"]):
        r = ui.post("/till", {"store_code": "BJ01", "scan": scanned, "till_token": token})
        page = text(r)
        assert r.status_code == 422 and _lines(page) == {}
        assert re.search(r'id="e-scan">[^<]*Member card', page)
    # The member card field (or a tap on the tile) settles it.
    page = text(ui.post("/till", {"store_code": "BJ01", "card_code": "13700009999", "add": "13700009999",
                                  "till_token": token}))
    assert "撞号客" in page and _lines(page) == {"13700009999": 1}


def test_two_tills_spending_one_wallet_at_once_take_it_once_and_say_what_is_left(app, staff, catalogue,
                                                                                  member_factory, cashier):
    from tests.test_races import race

    m = member_factory(mobile="13700003333")
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "100.00", "payment_method": "cash"})
    tills = []
    for _tab in range(2):  # two tabs (two tills), each with its own priced bill paying 68.00 from stored value
        ui, token = _till(app)
        page = text(ui.post("/till", {"scan": "SALMON", "card_code": "13700003333", "wallet_amount": "68.00",
                                      "store_code": "BJ01", "till_token": token, "action": "quote"}))
        assert 'id="wallet-paid">−68.00<' in page
        tills.append((ui, _resend(page, {"wallet_amount": "68.00", "action": "close"}, token)))
    results = race(2, lambda i: tills[i][0].post("/till", tills[i][1]))
    assert sorted(r.status_code for r in results) == [302, 422]
    refused = text(next(r for r in results if r.status_code == 422))
    assert re.search(r'id="e-wallet_amount">Only 32\.00 stored value is left', refused)
    assert [c[2] for c in _checkouts(app)] == [6800]
    assert not audit_problems(app)
