"""The cashier's screen: scan, bill, quote, redeem, close, receipt, void — with the keyboard."""
import re

from tests.test_ui import text, ui_login


def _till(app, role="cashier"):
    ui = ui_login(app, role)
    page = ui.get("/till")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(page))[1]
    return ui, token


def test_scan_alone_shows_the_member_and_points(app, staff, catalogue, member_factory, issue_card, give_points):
    m = member_factory(name="扫码客")
    card = issue_card(m["id"]).json
    give_points(m["id"], 42)
    ui, token = _till(app)
    r = ui.post("/till", {"card_code": card["qr_payload"], "store_code": "BJ01", "items": "", "till_token": token})
    assert r.status_code == 200
    page = text(r)
    assert "扫码客" in page and 'id="points-available">42<' in page


def test_quote_then_close_then_receipt(app, staff, catalogue, member_factory, issue_card):
    m = member_factory()
    card = issue_card(m["id"]).json
    ui, token = _till(app)
    form = {"card_code": card["card_no"], "store_code": "BJ01", "items": "SALMON 2\nTEA", "covers": "2",
            "till_token": token, "action": "quote"}
    quote = text(ui.post("/till", form))
    assert 'id="list-total">236.00<' in quote and 'id="member-total">156.00<' in quote
    assert 'id="savings">80.00<' in quote and 'id="points-earned">15<' in quote
    # Enter in any single-line field presses the first button: pricing, never closing.
    assert re.search(r'<button[^>]*name="action"[^>]*>', quote)[0].count('value="quote"') == 1
    closed = ui.post("/till", {**form, "action": "close"})
    assert closed.status_code == 302 and "/till/receipts/" in closed.location
    receipt = text(ui.get(closed.location))
    assert 'id="points-earned">15<' in receipt and 'id="points-balance">15<' in receipt and "156.00" in receipt
    # The same form sent again (a double tap, a retry) shows the same receipt and closes nothing new.
    again = ui.post("/till", {**form, "action": "close"})
    assert again.location == closed.location
    assert catalogue.get(f"/api/v1/checkouts?member_id={m['id']}").json["total"] == 1


def test_guest_by_mobile_and_paste_formats(app, staff, catalogue, member_factory):
    m = member_factory(mobile="13700001111")
    ui, token = _till(app)
    r = ui.post("/till", {"card_code": "137 0000 1111", "store_code": "BJ01", "items": "salmon×2\n\nTEA x 1",
                          "till_token": token, "action": "quote"})
    assert 'id="member-total">156.00<' in text(r) and m["name"] in text(r)


def test_errors_appear_next_to_fields_and_nothing_is_saved(app, staff, catalogue, member_factory, give_points):
    m = member_factory(mobile="13700002222")
    give_points(m["id"], 5)
    ui, token = _till(app)
    base = {"card_code": "13700002222", "store_code": "BJ01", "till_token": token, "action": "close"}
    r = ui.post("/till", {**base, "items": "SALMON two"})
    assert r.status_code == 422 and 'id="e-items"' in text(r) and "SALMON two" in text(r)
    r = ui.post("/till", {**base, "items": "SALMON 1", "redeem_points": "50"})
    assert r.status_code == 422 and 'id="e-redeem_points"' in text(r)
    r = ui.post("/till", {**base, "items": "CAVIAR 1"})
    assert r.status_code == 422 and "CAVIAR" in text(r)
    assert catalogue.get("/api/v1/checkouts").json["total"] == 0


def test_manager_voids_from_the_receipt(app, staff, catalogue, member_factory, checkout):
    m = member_factory()
    bill = checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"]).json
    cashier_ui, _ = _till(app)
    assert f"/till/receipts/{bill['id']}/void" not in text(cashier_ui.get(f"/till/receipts/{bill['id']}"))
    assert cashier_ui.post(f"/till/receipts/{bill['id']}/void", {"confirmed": "1", "reason": "x"}).status_code == 403
    manager_ui, _ = _till(app, "manager")
    receipt = text(manager_ui.get(f"/till/receipts/{bill['id']}"))
    assert 'data-confirm-field="confirmed"' in receipt  # with JS the dialog answers for the page
    ask = manager_ui.post(f"/till/receipts/{bill['id']}/void", {"reason": "录错桌"})  # no JS: no dialog was shown
    assert ask.status_code == 200 and 'id="confirm-question"' in text(ask) and 'name="confirmed"' in text(ask)
    assert catalogue.get(f"/api/v1/checkouts/{bill['id']}").json["status"] == "closed"  # nothing done yet
    assert manager_ui.post(f"/till/receipts/{bill['id']}/void", {"confirmed": "1", "reason": ""}).status_code == 422
    r = manager_ui.post(f"/till/receipts/{bill['id']}/void", {"confirmed": "1", "reason": "录错桌"})
    assert r.status_code == 302
    page = text(manager_ui.get(r.location))
    assert "已作废" in page and "录错桌" in page and "积分已冲回" in page
    assert catalogue.get(f"/api/v1/members/{m['id']}/points").json["balance"] == 0


def test_receipt_keeps_the_balance_it_was_printed_with(app, staff, catalogue, member_factory, checkout):
    m = member_factory()
    first = checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"]).json
    checkout([("LOBSTER", 1)], member_id=m["id"])
    ui, _ = _till(app)
    receipt = text(ui.get(f"/till/receipts/{first['id']}"))
    assert 'id="points-balance">15<' in receipt  # not today's 47


def test_member_page_shows_points_wallet_and_recent_bills(app, staff, catalogue, member_factory, checkout, cashier):
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "5000.00", "payment_method": "cash"})
    bill = checkout([("SALMON", 2), ("TEA", 1)], member_id=m["id"]).json
    ui, _ = _till(app)
    page = text(ui.get(f"/members/{m['id']}"))
    assert 'id="points-available">15<' in page and 'id="wallet-balance">5600.00' in page
    assert f'/till/receipts/{bill["id"]}' in page


def test_unknown_sku_is_reported_at_the_items_field(app, staff, catalogue):
    ui, token = _till(app)
    r = ui.post("/till", {"card_code": "", "store_code": "BJ01", "items": "CAVIAR 1", "till_token": token})
    assert r.status_code == 422 and 'id="e-items"' in text(r) and "CAVIAR" in text(r)
    r = ui.post("/till", {"card_code": "CRM1.8600000000000000.XXXX", "store_code": "BJ01", "items": "",
                          "till_token": token})
    assert 'id="e-card_code"' in text(r)
