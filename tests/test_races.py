"""Races between different operations on one member or one bill, on both databases, with
real threads: each thread is a till or a manager with its own connection. Whatever the
interleaving, the answers are 2xx or a coded 4xx (never 5xx) and the ledgers balance."""
import re
import threading
import time

import pytest
from sqlalchemy import text as sql
from sqlalchemy.exc import OperationalError

from crm.extensions import db
from tests.conftest import audit_problems
from tests.test_ui import text, ui_login


def race(n, fn):
    """Run fn(i) for i in range(n) in n threads released at once; return their results in order."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        results[i] = fn(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return results


def api_call(app, token, method, url, json=None, key=None):
    """(status, error code, body) of one API call from a fresh connection."""
    headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}
    r = app.test_client().open(url, method=method, json=json, headers=headers)
    body = r.get_json(silent=True) or {}
    return r.status_code, (body.get("error") or {}).get("code"), body


def queued_in_order(app, lock_sql: str, params: dict, calls) -> dict:
    """Hold a row lock (`lock_sql`), start each API call (token, method, url, body) in turn and
    wait until it queues behind the lock, so they reach the row in this order once it is let go
    (PostgreSQL: pg_stat_activity shows who waits). Returns {url: (status, code, body)}."""
    results, threads = {}, []
    with app.app_context():
        holder = db.engine.connect()
        hold = holder.begin()
        holder.execute(sql(lock_sql), params)

        def waiting() -> int:
            with db.engine.connect() as conn:
                return conn.execute(sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND datname = current_database()")).scalar()
        for n, call in enumerate(calls, 1):
            t = threading.Thread(target=lambda call=call: results.__setitem__(call[2], api_call(app, *call)))
            t.start()
            threads.append(t)
            deadline = time.monotonic() + 10
            while waiting() < n and time.monotonic() < deadline:
                time.sleep(0.02)
            assert waiting() >= n, "the request never queued behind the lock"
        hold.rollback()
        holder.close()
        [t.join() for t in threads]
    return results


def wallet_of(api, member_id):
    return api.get(f"/api/v1/members/{member_id}/wallet").json


def points_of(api, member_id):
    return api.get(f"/api/v1/members/{member_id}/points").json["balance"]


@pytest.fixture
def rich_member(member_factory, cashier, give_points):
    """A member with 400.00 of stored value (no bonus tier reached) and 300 points."""
    m = member_factory()
    assert cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                        json={"store_code": "BJ01", "amount": "400.00", "payment_method": "cash"}).status_code == 201
    give_points(m["id"], 300)
    return m


def test_six_concurrent_voids_of_one_bill_reverse_it_once(app, catalogue, rich_member, checkout, cashier, login_api):
    m = rich_member
    bill = checkout([("LOBSTER", 1)], member_id=m["id"], wallet_amount="100.00", redeem_points=28)
    assert bill.status_code == 201, bill.json
    assert wallet_of(cashier, m["id"])["balance"] == "300.00"
    token = login_api("manager").token
    results = race(6, lambda i: api_call(app, token, "POST", f"/api/v1/checkouts/{bill.json['id']}/void",
                                         {"reason": "double click"}))
    assert sorted((s, c) for s, c, _ in results) == [(201, None)] + [(409, "already_voided")] * 5
    assert {b["error"]["details"]["status"] for s, _, b in results if s == 409} == {"voided"}
    assert wallet_of(cashier, m["id"])["balance"] == "400.00"  # given back once, not five times
    assert points_of(cashier, m["id"]) == 300
    assert audit_problems(app) == []


def test_closes_and_voids_of_one_member_at_once_never_fail_or_deadlock(app, catalogue, rich_member, checkout,
                                                                       cashier, login_api):
    m = rich_member
    bills = []
    for _ in range(8):
        r = checkout([("TEA", 1)], member_id=m["id"], wallet_amount="10.00", redeem_points=5)
        assert r.status_code == 201, r.json
        bills.append(r.json["id"])
    manager = login_api("manager").token

    def act(i):
        if i % 2:  # a void of an earlier bill ...
            return api_call(app, manager, "POST", f"/api/v1/checkouts/{bills[i // 2]}/void", {"reason": "redo"})
        return api_call(app, cashier.token, "POST", "/api/v1/checkouts",  # ... while other tills close new ones
                        {"store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "TEA", "qty": 1}],
                         "wallet_amount": "10.00", "redeem_points": 5}, key=f"close-{i}")
    results = race(16, act)
    assert all(s < 500 for s, _, _ in results), results
    assert [s for s, _, _ in results] == [201] * 16, results
    # 8 old bills voided, 8 new ones closed: the wallet and points are as if only the new ones happened.
    assert wallet_of(cashier, m["id"])["balance"] == "320.00"
    assert points_of(cashier, m["id"]) == 300 - 8 * 5 + 8 * 1  # each bill: 5 redeemed, 1 earned on 15.00 paid
    assert audit_problems(app) == []


def test_twelve_parallel_wrong_pins_get_exactly_five_tries(app, catalogue, rich_member, cashier, login_api):
    m = rich_member
    pin_url = f"/api/v1/members/{m['id']}/wallet/pin"
    assert cashier.put(pin_url, json={"pin": "246810"}).status_code == 200
    body = {"store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "LOBSTER", "qty": 1}],
            "wallet_amount": "250.00", "pin": "111111"}
    results = race(12, lambda i: api_call(app, cashier.token, "POST", "/api/v1/checkouts", body, key=f"pin-{i}"))
    codes = sorted(c for _, c, _ in results)
    assert codes == ["wallet_locked"] * 7 + ["wrong_pin"] * 5, codes
    assert sorted(b["error"]["details"]["tries_left"] for _, c, b in results if c == "wrong_pin") == [0, 1, 2, 3, 4]
    assert wallet_of(cashier, m["id"])["pin_locked"] is True
    assert wallet_of(cashier, m["id"])["balance"] == "400.00"
    # Locked means locked: the right PIN and a payment under the PIN threshold are refused too.
    right = cashier.post("/api/v1/checkouts", json={**body, "pin": "246810"})
    small = cashier.post("/api/v1/checkouts", json={**{k: v for k, v in body.items() if k != "pin"},
                                                    "items": [{"sku": "TEA", "qty": 1}], "wallet_amount": "20.00"})
    assert (right.json["error"]["code"], small.json["error"]["code"]) == ("wallet_locked", "wallet_locked")
    assert login_api("manager").post(f"{pin_url}/unlock").status_code == 200
    assert cashier.post("/api/v1/checkouts", json={**body, "pin": "246810"}).status_code == 201
    assert audit_problems(app) == []


def test_a_right_pin_after_wrong_ones_starts_the_count_again(app, catalogue, rich_member, checkout, cashier):
    m = rich_member
    assert cashier.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "246810"}).status_code == 200
    pay = dict(member_id=m["id"], wallet_amount="250.00")
    for left in (4, 3):
        r = checkout([("LOBSTER", 1)], pin="000000", **pay)
        assert r.json["error"]["details"]["tries_left"] == left
    assert checkout([("LOBSTER", 1)], pin="246810", **pay).status_code == 201
    r = checkout([("TEA", 1)], pin="000000", member_id=m["id"], wallet_amount="20.00")
    assert r.status_code == 201  # under the threshold no PIN is asked, so a wrong one is not counted
    assert cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups", json={
        "store_code": "BJ01", "amount": "400.00", "payment_method": "cash"}).status_code == 201
    assert checkout([("LOBSTER", 1)], pin="000000", **pay).json["error"]["details"]["tries_left"] == 4


def test_two_item_coupons_need_two_units_of_their_item(app, catalogue, member_factory, checkout, login_api):
    manager = login_api("manager")
    assert manager.post("/api/v1/coupon-types", json={"code": "LOB180", "name": "龙虾券", "kind": "item",
                                                      "face_value": "180.00", "sku": "LOBSTER"}).status_code == 201
    m = member_factory()
    codes = [manager.post(f"/api/v1/members/{m['id']}/coupons",
                          json={"coupon_type": "LOB180", "reason": "test"}).json["code"] for _ in range(2)]
    one = checkout([("LOBSTER", 1)], member_id=m["id"], coupon_codes=codes)
    assert one.status_code == 422 and one.json["error"]["code"] == "too_many_item_coupons"
    assert one.json["error"]["details"]["sku"] == "LOBSTER"
    two = checkout([("LOBSTER", 2)], member_id=m["id"], coupon_codes=codes)
    assert two.status_code == 201 and two.json["coupon_discount"] == "360.00"
    assert two.json["due"] == "296.00"  # 2 × 328.00 member price − 2 × 180.00


def test_a_forged_second_reversal_is_named_by_crm_audit(app, catalogue, rich_member, checkout, login_api):
    m = rich_member
    bill = checkout([("LOBSTER", 1)], member_id=m["id"], wallet_amount="100.00").json
    assert login_api("manager").post(f"/api/v1/checkouts/{bill['id']}/void",
                                     json={"reason": "test"}).status_code == 201
    runner = app.test_cli_runner()
    assert runner.invoke(args=["crm", "audit"]).exit_code == 0
    with app.app_context():
        # Give the 100.00 back a second time, with the balance moved to match, so only the
        # void rules (not the balance check) can see it.
        db.session.execute(sql(
            "INSERT INTO wallet_entries (account_id, kind, amount, checkout_id, reason, created_at) "
            "SELECT account_id, 'reversal', -amount, checkout_id, 'forged', created_at FROM wallet_entries "
            "WHERE checkout_id = :c AND kind = 'spend'"), {"c": bill["id"]})
        db.session.execute(sql("UPDATE wallet_accounts SET balance = balance + 10000 WHERE member_id = :m "
                               "AND kind = 'principal'"), {"m": m["id"]})
        db.session.commit()
    result = runner.invoke(args=["crm", "audit"])
    assert result.exit_code == 1
    assert re.search(rf"wallet entry \d+ \(checkout {bill['id']}\) is a reversal that names no entry", result.output)
    with app.app_context():
        # A database from before the unique index could hold a true duplicate: named too.
        db.session.execute(sql("DROP INDEX uq_wallet_entries_reverses_id"))
        db.session.execute(sql(
            "UPDATE wallet_entries SET reverses_id = (SELECT id FROM wallet_entries WHERE checkout_id = :c "
            "AND kind = 'spend') WHERE reason = 'forged'"), {"c": bill["id"]})
        db.session.commit()
    try:
        result = runner.invoke(args=["crm", "audit"])
        assert result.exit_code == 1 and re.search(r"wallet entry \d+ is reversed 2 times", result.output)
    finally:
        with app.app_context():
            db.session.execute(sql("DELETE FROM wallet_entries WHERE reason = 'forged'"))
            db.session.execute(sql("CREATE UNIQUE INDEX uq_wallet_entries_reverses_id "
                                   "ON wallet_entries (reverses_id)"))
            db.session.commit()


def test_a_reversal_of_a_bill_that_is_not_voided_is_named(app, catalogue, rich_member, checkout):
    m = rich_member
    bill = checkout([("TEA", 1)], member_id=m["id"], redeem_points=5).json
    with app.app_context():
        db.session.execute(sql(
            "INSERT INTO points_entries (account_id, kind, points, checkout_id, reverses_id, reason, details, "
            "created_at) SELECT account_id, 'reversal', -points, checkout_id, id, 'forged', '{}', created_at "
            "FROM points_entries WHERE checkout_id = :c AND kind = 'redeem'"), {"c": bill["id"]})
        db.session.commit()
    problems = [p for p in audit_problems(app) if "not voided" in p]
    assert len(problems) == 1 and f"checkout {bill['id']}" in problems[0]


def test_a_deadlock_is_retried_then_answered_409_not_500(app, catalogue, member_factory, cashier, monkeypatch):
    from crm.checkout import service

    class Deadlock(Exception):
        sqlstate = "40P01"
    real_close, calls = service.close, []

    def flaky_close(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # lose the first race, win the retry
            raise OperationalError("UPDATE …", {}, Deadlock("deadlock detected"))
        return real_close(*args, **kwargs)
    monkeypatch.setattr(service, "close", flaky_close)
    m = member_factory()
    body = {"store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "TEA", "qty": 1}]}
    assert cashier.post("/api/v1/checkouts", json=body).status_code == 201 and len(calls) == 2

    def always(*args, **kwargs):
        raise OperationalError("UPDATE …", {}, Deadlock("deadlock detected"))
    monkeypatch.setattr(service, "close", always)
    r = cashier.post("/api/v1/checkouts", json=body)
    assert r.status_code == 409 and r.json["error"]["code"] == "concurrent_change"
    assert cashier.get(f"/api/v1/checkouts?member_id={m['id']}").json["total"] == 1


def test_two_desks_changing_one_card_at_once(app, member_factory, issue_card, desk):
    card = issue_card(member_factory()["id"]).json
    results = race(2, lambda i: api_call(app, desk.token, "POST",
                                         f"/api/v1/cards/{card['card_no']}/{('freeze', 'lost')[i]}",
                                         {"reason": "race"}))
    statuses = sorted(s for s, _, _ in results)
    assert statuses in ([200, 200], [200, 409]), results  # lost may follow freeze; freeze never follows lost
    final = desk.get(f"/api/v1/cards/{card['card_no']}").json["status"]
    if statuses == [200, 409]:
        loser = next(b for s, _, b in results if s == 409)
        assert loser["error"]["code"] == "card_state" and loser["error"]["details"]["status"] == final == "lost"


# UI forms: the same form sent four times at once (a double tap, a resend, four tabs).

def _same_browser(ui, app, n):
    """n test clients sharing one logged-in browser's session cookie."""
    cookie = ui.client.get_cookie("session")
    clients = []
    for _ in range(n):
        c = app.test_client()
        c.set_cookie("session", cookie.value, domain=cookie.domain or "localhost")
        clients.append(c)
    return clients


def test_the_top_up_confirm_form_sent_four_times_tops_up_once(app, staff, member_factory, cashier):
    m = member_factory()
    ui = ui_login(app, "cashier")
    form = {"amount": "100", "store_code": "BJ01", "payment_method": "cash"}
    confirm = text(ui.post(f"/members/{m['id']}/wallet/top-up", form))
    token = re.search(r'name="form_token" value="([0-9a-f]{32})"', confirm)[1]
    sent = {**form, "action": "confirm", "form_token": token, "csrf_token": ui.csrf}
    clients = _same_browser(ui, app, 4)
    results = race(4, lambda i: clients[i].post(f"/members/{m['id']}/wallet/top-up", data=sent).status_code)
    assert results == [302] * 4
    assert wallet_of(cashier, m["id"])["balance"] == "100.00"
    # Sent again later (the browser's back and resend): still one top-up.
    assert ui.post(f"/members/{m['id']}/wallet/top-up", sent).status_code == 302
    assert wallet_of(cashier, m["id"])["balance"] == "100.00"
    assert "已提交过" in text(ui.get(f"/members/{m['id']}"))


def test_the_till_close_form_sent_four_times_closes_one_bill(app, staff, catalogue, member_factory, cashier):
    m = member_factory(mobile="13700009999")
    ui = ui_login(app, "cashier")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
    form = {"card_code": "13700009999", "store_code": "BJ01", "items": "SALMON 2", "till_token": token,
            "action": "close", "csrf_token": ui.csrf}
    clients = _same_browser(ui, app, 4)
    results = race(4, lambda i: clients[i].post("/till", data=form))
    assert [r.status_code for r in results] == [302] * 4
    assert len({r.location for r in results}) == 1 and "/till/receipts/" in results[0].location
    assert cashier.get(f"/api/v1/checkouts?member_id={m['id']}").json["total"] == 1
    assert audit_problems(app) == []


def test_the_void_form_sent_twice_voids_once(app, staff, catalogue, rich_member, checkout, cashier):
    bill = checkout([("LOBSTER", 1)], member_id=rich_member["id"], wallet_amount="100.00").json
    ui = ui_login(app, "manager")
    page = text(ui.get(f"/till/receipts/{bill['id']}"))
    token = re.search(r'name="form_token" value="([0-9a-f]{32})"', page)[1]
    sent = {"confirmed": "1", "reason": "wrong table", "form_token": token, "csrf_token": ui.csrf}
    clients = _same_browser(ui, app, 2)
    results = race(2, lambda i: clients[i].post(f"/till/receipts/{bill['id']}/void", data=sent).status_code)
    assert results == [302, 302]
    assert wallet_of(cashier, rich_member["id"])["balance"] == "400.00"
    assert audit_problems(app) == []


def test_a_form_without_its_token_saves_nothing_and_says_why(app, staff, member_factory, cashier):
    m = member_factory()
    ui = ui_login(app, "cashier")
    r = ui.post(f"/members/{m['id']}/wallet/top-up", {"amount": "100", "store_code": "BJ01",
                                                      "payment_method": "cash", "action": "confirm",
                                                      "form_token": "forged"})
    assert r.status_code == 302
    assert "页面已过期" in text(ui.get(r.location)) or "重新加载" in text(ui.get(r.location))
    assert wallet_of(cashier, m["id"])["balance"] == "0.00"


def test_the_till_closes_with_the_card_it_priced_after_the_phone_code_expired(app, staff, catalogue, member_factory,
                                                                             issue_card, login_api, clock):
    from crm.cards import codes
    from crm.cards.service import get_card
    m, other = member_factory(), member_factory()
    card, other_card = issue_card(m["id"]).json, issue_card(other["id"]).json
    clock.set("12:00")

    def phone_code():
        with app.app_context():
            return codes.dynamic_payload(get_card(card["card_no"]).id)

    def priced(code):
        token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
        form = {"card_code": code, "store_code": "BJ01", "items": "SALMON 2", "till_token": token}
        quote = ui.post("/till", {**form, "action": "quote"})
        return form, re.search(r'name="member_ref" value="([^"]+)"', text(quote))[1]

    def bills(member_id):  # read by the manager: a cashier sees card numbers masked
        return login_api("manager").get(f"/api/v1/checkouts?member_id={member_id}").json["items"]
    ui = ui_login(app, "cashier")
    form, ref = priced(phone_code())
    clock.advance(seconds=150)  # the guest took two and a half minutes to pay: the code has expired
    rescanned = ui.post("/till", {**form, "action": "quote"})
    assert rescanned.status_code == 422 and 'id="e-card_code"' in text(rescanned)  # a fresh scan is refused …
    # A tampered reference is ignored, so the expired code is looked at, and refused.
    # (A character of the signature's middle is changed: its last characters may carry padding bits only,
    # so "xx" in their place was now and then the same signature and the tampered reference held.)
    tampered = ref[:-8] + ("A" if ref[-8] != "A" else "B") + ref[-7:]
    assert ui.post("/till", {**form, "action": "close", "member_ref": tampered}).status_code == 422
    closed = ui.post("/till", {**form, "action": "close", "member_ref": ref})
    assert closed.status_code == 302, text(closed)  # … but the bill that was priced closes for that member
    assert [b["card_no"] for b in bills(m["id"])] == [card["card_no"]]
    # A reference stands only for the code it was made with: another card typed into the field
    # (a new guest at the same till) is looked up afresh and billed to its own member.
    form, ref = priced(phone_code())
    assert ui.post("/till", {**form, "card_code": other_card["card_no"], "action": "close",
                             "member_ref": ref}).status_code == 302
    assert len(bills(m["id"])) == 1 and [b["card_no"] for b in bills(other["id"])] == [other_card["card_no"]]


def test_a_bill_and_a_top_up_crossing_different_levels_at_once_leave_the_higher(app, catalogue, member_factory,
                                                                                  checkout, cashier, login_api):
    admin = login_api("admin")
    for body in ({"code": "silver", "name": "银卡会员", "rank": 1, "upgrade_spend": "300.00"},
                 {"code": "gold", "name": "金卡会员", "rank": 2, "upgrade_topup": "1000.00"}):
        assert admin.post("/api/v1/levels", json=body).status_code == 201
    members = [member_factory()["id"] for _ in range(4)]

    def act(i):
        member_id = members[i // 2]
        if i % 2:  # the bill that crosses silver's spend …
            return api_call(app, cashier.token, "POST", "/api/v1/checkouts", {
                "store_code": "BJ01", "member_id": member_id, "items": [{"sku": "LOBSTER", "qty": 1}]})
        return api_call(app, cashier.token, "POST", f"/api/v1/members/{member_id}/wallet/top-ups",  # … and gold
                        {"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    results = race(8, act)
    assert [s for s, _, _ in results] == [201] * 8, results
    assert [cashier.get(f"/api/v1/members/{i}").json["level"]["code"] for i in members] == ["gold"] * 4


@pytest.mark.parametrize("action", ["lost", "freeze"])
def test_a_card_reported_lost_while_its_bill_waits_is_refused(app, backend, catalogue, member_factory, issue_card,
                                                             cashier, desk, action):
    """The till waits for the member's lock (another operation of theirs is running); meanwhile
    the card is reported lost. The bill is then priced with the card as it is: refused."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no bill starts while another operation of the member runs")
    m = member_factory()
    card = issue_card(m["id"]).json
    with app.app_context():
        holder = db.engine.connect()
        tx = holder.begin()
        holder.execute(sql("SELECT id FROM members WHERE id = :id FOR NO KEY UPDATE"), {"id": m["id"]})
    results = []
    till = threading.Thread(target=lambda: results.append(api_call(
        app, cashier.token, "POST", "/api/v1/checkouts",
        {"store_code": "BJ01", "card_code": card["qr_payload"], "items": [{"sku": "TEA", "qty": 1}]})))
    till.start()
    till.join(0.5)
    assert till.is_alive()  # waiting for the member
    holder.execute(sql(f"UPDATE cards SET status = '{'lost' if action == 'lost' else 'frozen'}' "
                       "WHERE card_no = :no"), {"no": card["card_no"]})
    tx.commit()
    holder.close()
    till.join(10)
    [(status, code, _body)] = results
    assert (status, code) == (409, "card_not_active")
    assert cashier.get(f"/api/v1/checkouts?member_id={m['id']}").json["total"] == 0


def test_a_void_or_refund_reason_past_200_characters_is_a_field_error(app, staff, catalogue, rich_member, checkout,
                                                                      login_api, cashier):
    bill = checkout([("TEA", 1)], member_id=rich_member["id"], wallet_amount="10.00").json
    manager = login_api("manager")
    r = manager.post(f"/api/v1/members/{rich_member['id']}/points/adjustments", json={"points": 5, "reason": "x" * 201})
    assert r.status_code == 422
    ui = ui_login(app, "manager")
    ui.get(f"/till/receipts/{bill['id']}")
    page = ui.post(f"/till/receipts/{bill['id']}/void", {"confirmed": "1", "reason": "长" * 201})
    assert page.status_code == 422 and "200" in text(page)
    assert cashier.get(f"/api/v1/checkouts/{bill['id']}").json["status"] == "closed"
    ui.get(f"/members/{rich_member['id']}")
    refund = ui.post(f"/members/{rich_member['id']}/wallet/refund", {"store_code": "BJ01", "reason": "长" * 201})
    assert refund.status_code == 302 and "200" in text(ui.get(refund.location))
    assert wallet_of(cashier, rich_member["id"])["balance"] == "390.00"


def test_a_form_token_answers_only_the_form_it_came_with(app, staff, catalogue, rich_member, checkout, cashier):
    """A token replays its own form's result only: used on another form, another member or
    the same page with other details (the Back button), it is refused, never a 500 and never
    another form's answer."""
    m = rich_member
    bills = [checkout([("TEA", 1)], member_id=m["id"]).json["id"] for _ in range(2)]
    ui = ui_login(app, "manager")
    token = re.search(r'name="form_token" value="([0-9a-f]{32})"', text(ui.get(f"/till/receipts/{bills[0]}")))[1]
    first = {"confirmed": "1", "reason": "first", "form_token": token}
    assert ui.post(f"/till/receipts/{bills[0]}/void", first).status_code == 302
    other_bill = ui.post(f"/till/receipts/{bills[1]}/void", {"confirmed": "1", "reason": "first", "form_token": token})
    assert other_bill.status_code == 422 and "其他内容" in text(other_bill)
    assert cashier.get(f"/api/v1/checkouts/{bills[1]}").json["status"] == "closed"
    top_up = ui.post(f"/members/{m['id']}/wallet/top-up", {"amount": "100", "store_code": "BJ01",
                                                           "payment_method": "cash", "action": "confirm",
                                                           "form_token": token})
    assert top_up.status_code == 302 and "其他内容" in text(ui.get(top_up.location))
    assert wallet_of(cashier, m["id"])["balance"] == "400.00"
    # The till: a page reached again with Back carries the first guest's till token.
    till_token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
    first = {"card_code": "", "store_code": "BJ01", "items": "TEA", "till_token": till_token, "action": "close"}
    assert ui.post("/till", first).status_code == 302
    second = ui.post("/till", {**first, "items": "SALMON 2"})
    assert second.status_code == 422 and "其他内容" in text(second)
    # Without its till token a close is refused rather than made without protection.
    assert ui.post("/till", {**first, "till_token": ""}).status_code == 422


def test_the_priced_card_closes_that_bill_only(app, staff, catalogue, member_factory, issue_card, cashier, clock):
    from crm.cards import codes
    from crm.cards.service import get_card
    m = member_factory()
    card = issue_card(m["id"]).json
    clock.set("12:00")
    with app.app_context():
        phone_code = codes.dynamic_payload(get_card(card["card_no"]).id)
    ui = ui_login(app, "cashier")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
    form = {"card_code": phone_code, "store_code": "BJ01", "items": "TEA", "till_token": token}
    ref = re.search(r'name="member_ref" value="([^"]+)"', text(ui.post("/till", {**form, "action": "quote"})))[1]
    clock.advance(seconds=150)
    assert ui.post("/till", {**form, "action": "close", "member_ref": ref}).status_code == 302
    # The same reference on a new bill (a new till token) does not stand in for a fresh scan.
    next_bill = ui.post("/till", {**form, "items": "SALMON", "action": "close", "member_ref": ref,
                                  "till_token": "2" * 32})
    assert next_bill.status_code == 422
    assert cashier.get(f"/api/v1/checkouts?member_id={m['id']}").json["total"] == 1


def test_top_ups_whose_gift_rules_share_a_coupon_type_never_deadlock(app, login_api, member_factory, cashier,
                                                                     store_today):
    """Two rules (≥ 5,000 and ≥ 1,000) give the same limited coupon type: a big top-up takes
    both rules' units, a small one the second's. Units are taken rules first, then types, so
    no two top-ups wait on each other crosswise; the stock is never overdrawn."""
    manager = login_api("manager")
    assert manager.post("/api/v1/coupon-types", json={"code": "TEN", "name": "十元券", "kind": "cash",
                                                      "face_value": "10.00", "stock_total": 6}).status_code == 201
    for name, minimum in (("大额", "5000.00"), ("小额", "1000.00")):
        assert manager.post("/api/v1/gift-rules", json={"name": name, "min_topup": minimum, "coupon_type": "TEN",
                                                        "starts_on": store_today, "ends_on": store_today,
                                                        "stock": 20}).status_code == 201
    members = [member_factory()["id"] for _ in range(8)]
    results = race(8, lambda i: api_call(app, cashier.token, "POST", f"/api/v1/members/{members[i]}/wallet/top-ups",
                                         {"store_code": "BJ01", "amount": ("5000.00", "1000.00")[i % 2],
                                          "payment_method": "cash"}))
    assert [s for s, _, _ in results] == [201] * 8, results
    given = sum(len(b["coupons"]) for _, _, b in results)
    missed = [g["reason"] for _, _, b in results for g in b["gifts_unavailable"]]
    assert given == 6 and len(missed) == 12 - 6 and set(missed) == {"out_of_stock"}
    assert audit_problems(app) == []


def test_a_pin_change_sent_twice_counts_no_wrong_try(app, staff, member_factory, cashier):
    m = member_factory()
    url = f"/api/v1/members/{m['id']}/wallet/pin"
    assert cashier.put(url, json={"pin": "135790"}).status_code == 200
    change = {"pin": "246810", "current_pin": "135790"}
    first = cashier.client.put(url, json=change, headers=cashier._headers(key="pin-change-1"))
    again = cashier.client.put(url, json=change, headers=cashier._headers(key="pin-change-1"))  # a retried PUT
    assert (first.status_code, again.status_code) == (200, 200) and again.headers["Idempotent-Replayed"] == "true"
    ui = ui_login(app, "cashier")
    page = text(ui.get(f"/members/{m['id']}"))
    token = re.search(r'wallet/pin"[^>]*>\s*<input type="hidden" name="csrf_token" value="[^"]+">'
                      r'<input type="hidden" name="form_token" value="([0-9a-f]{32})"', page)[1]
    sent = {"current_pin": "246810", "pin": "112233", "form_token": token}
    assert ui.post(f"/members/{m['id']}/wallet/pin", sent).status_code == 302
    assert ui.post(f"/members/{m['id']}/wallet/pin", sent).status_code == 302  # a double tap
    with app.app_context():
        from crm.wallet.models import WalletPin
        assert db.session.get(WalletPin, m["id"]).failures == 0
    assert cashier.put(url, json={"pin": "999999", "current_pin": "112233"}).status_code == 200


def test_adding_stock_from_a_form_sent_twice_adds_it_once(app, staff, login_api, store_today):
    manager = login_api("manager")
    egg = {"code": "EGG", "name": "红鸡蛋", "kind": "gift"}
    assert manager.post("/api/v1/coupon-types", json=egg).status_code == 201
    rule = manager.post("/api/v1/gift-rules", json={"name": "送蛋", "min_topup": "100.00", "coupon_type": "EGG",
                                                    "starts_on": store_today, "ends_on": store_today,
                                                    "stock": 5}).json
    ui = ui_login(app, "manager")
    ui.get(f"/catalog/coupons/gifts/{rule['id']}")
    sent = {"name": "送蛋", "min_topup": "100.00", "starts_on": store_today, "ends_on": store_today, "add_stock": "10"}
    assert [ui.post(f"/catalog/coupons/gifts/{rule['id']}", sent).status_code for _ in range(2)] == [302, 302]
    [found] = [r for r in manager.get("/api/v1/gift-rules").json if r["id"] == rule["id"]]
    assert (found["stock_total"], found["stock_left"]) == (15, 15)


def test_a_till_page_whose_bill_was_closed_links_to_that_receipt(app, staff, catalogue, member_factory, cashier):
    ui = ui_login(app, "cashier")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
    first = {"card_code": "", "store_code": "BJ01", "items": "TEA", "till_token": token, "action": "close"}
    receipt = ui.post("/till", first).location
    page = ui.post("/till", {**first, "items": "SALMON"})  # the same page, another bill typed in
    assert page.status_code == 422 and f'href="{receipt}"' in text(page)
    fresh = re.search(r'name="till_token" value="([0-9a-f]+)"', text(page))[1]
    assert fresh != token and ui.post("/till", {**first, "items": "SALMON", "till_token": fresh}).status_code == 302


def test_a_top_up_previewed_again_from_a_reloaded_page_still_tops_up_once(app, staff, member_factory, cashier):
    """Back, 'confirm form resubmission', confirm again: the top-up form's token comes from the
    member page and is carried through the preview, so the second confirm is the first one's."""
    m = member_factory()
    ui = ui_login(app, "cashier")
    page = text(ui.get(f"/members/{m['id']}"))
    token = re.search(r'wallet/top-up" class="panel">\s*<input type="hidden" name="csrf_token" value="[^"]+">'
                      r'<input type="hidden" name="form_token" value="([0-9a-f]{32})"', page)[1]
    form = {"amount": "100", "store_code": "BJ01", "payment_method": "cash", "form_token": token}
    for _ in range(2):  # the preview, then the same page posted again by a reload
        preview = text(ui.post(f"/members/{m['id']}/wallet/top-up", form))
        assert f'name="form_token" value="{token}"' in preview
        done = ui.post(f"/members/{m['id']}/wallet/top-up", {**form, "action": "confirm"})
        assert done.status_code == 302
    assert wallet_of(cashier, m["id"])["balance"] == "100.00"
    member_page = text(ui.get(done.location))
    assert "已提交过" in member_page and "第一次的结果" in member_page


def test_the_till_never_writes_the_pin_back_into_the_page(app, staff, catalogue, rich_member, cashier):
    assert cashier.put(f"/api/v1/members/{rich_member['id']}/wallet/pin", json={"pin": "246810"}).status_code == 200
    mobile = cashier.get(f"/api/v1/members/{rich_member['id']}").json["mobile"]
    ui = ui_login(app, "manager")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
    form = {"card_code": mobile, "store_code": "BJ01", "items": "LOBSTER", "wallet_amount": "250.00",
            "pin": "135799", "till_token": token}
    for action in ("quote", "close"):
        page = text(ui.post("/till", {**form, "action": action}))
        assert "135799" not in page


def test_a_split_tender_close_sent_four_times_at_once_with_one_key_is_one_bill(app, catalogue, rich_member,
                                                                               cashier):
    """A till retrying a split-tender close (a timeout, a double tap): one bill, one set of
    tenders, one wallet payment; every answer that succeeded is the same bill."""
    body = {"store_code": "BJ01", "member_id": rich_member["id"], "items": [{"sku": "LOBSTER", "qty": 1}],
            "tenders": [{"method": "stored_value", "amount": "100.00"}, {"method": "cash", "amount": "200.00"},
                        {"method": "wechat_pay"}]}  # the rest: 28.00
    results = race(4, lambda i: api_call(app, cashier.token, "POST", "/api/v1/checkouts", body, key="split-1"))
    assert all(s in (201, 409) for s, _, _ in results), results
    bills = {b["id"] for s, _, b in results if s == 201}
    assert len(bills) == 1, results
    replay = cashier.post("/api/v1/checkouts", json=body, key="split-1")
    assert replay.status_code == 201 and replay.json["id"] in bills
    assert replay.json["tenders"] == [{"method": "stored_value", "amount": "100.00"},
                                      {"method": "cash", "amount": "200.00"},
                                      {"method": "wechat_pay", "amount": "28.00"}]
    assert cashier.get("/api/v1/checkouts").json["total"] == 1
    assert wallet_of(cashier, rich_member["id"])["balance"] == "300.00"
    assert audit_problems(app) == []


def test_a_points_adjustment_and_a_redeeming_close_of_one_member_at_once_never_overdraw(
        app, catalogue, rich_member, cashier, login_api):
    """A manager takes points back while a till redeems them: together they ask for more than
    the member has, so exactly one wins (either one) and the balance never goes below zero."""
    manager = login_api("manager").token

    def act(i):
        if i == 0:
            return api_call(app, manager, "POST", f"/api/v1/members/{rich_member['id']}/points/adjustments",
                            {"points": -250, "reason": "duplicate grant"})
        return api_call(app, cashier.token, "POST", "/api/v1/checkouts",
                        {"store_code": "BJ01", "member_id": rich_member["id"], "items": [{"sku": "LOBSTER", "qty": 1}],
                         "redeem_points": 250}, key="redeem-1")
    results = race(2, act)
    assert sorted(s for s, _, _ in results) == [201, 409], results
    assert [code for s, code, _ in results if s == 409] == ["insufficient_points"]
    balance = points_of(cashier, rich_member["id"])
    assert balance >= 0
    adjusted = results[0][0] == 201
    # 300 - 250 taken, plus what the bill earned if the close won (on 328.00 - 250.00 paid)
    assert balance == (50 if adjusted else 50 + results[1][2]["points_earned"]), (results, balance)
    assert audit_problems(app) == []
