"""The cashier's day-end (日结): a seeded day at two stores with two cashiers, every figure worked
by hand, the local-day boundary, checking the day (once per form, changes since shown), the
downloads and who may see what."""
import csv
import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import PASSWORD, SYSTEM, audit_problems, in_app, login_on
from tests.test_ui import text, ui_login

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = "2026-03-10"


def at(*parts):
    return datetime(*parts, tzinfo=SHANGHAI)


@pytest.fixture
def issued_at(clock):
    """The clock at the tests' last moment while the API fixtures issue their tokens, so going back
    to March 9 and 10 keeps them valid under any CRM_TEST_CLOCK."""
    return clock.freeze(at(2026, 3, 11, 10))


@pytest.fixture
def day(issued_at, app, stores, staff, clock, login_api, catalogue, member_factory, issue_card, give_points):
    """March 10 2026 (Asia/Shanghai). Catalogue: salmon 108.00 (members 68.00), tea 20.00.
    Staff: `cashier` (c1) and `cashier2` (c2) at BJ01, the manager voids and refunds, the front desk
    issues a card. Tiers: 5,000.00 top-up → 600.00 bonus.

    March 9 (the day before)
      B0  19:00 c1 BJ01 guest 2 tea   40.00 cash            → voided Mar 10 12:00 "wrong table"
      B1  23:59 c1 BJ01 guest 1 tea   20.00 cash            (the day before: not counted)
    March 10
      B2  00:01 c1 BJ01 guest 1 tea   20.00 bank card
      T1  09:00 c1 tops up M 5,000.00 by WeChat: bonus 600.00
      T2  09:30 c2 tops up N   200.00 in cash: no bonus
      B3  10:00 c1 BJ01 guest 1 salmon 108.00 WeChat Pay, 2 covers
      F1  10:30 front desk issues P a card: fee 20.00 cash
      B4  11:00 c2 BJ01 guest salmon + tea 128.00 Alipay, 3 covers
      B9  11:00 c1 BJ02 guest 1 salmon 108.00 cash          (the other store)
      B5  12:30 c2 BJ01 M 2 salmon 136.00: stored value 100.00 + cash 36.00, 2 covers
      V0  12:00 manager voids B0 "wrong table"
      B6  13:00 c1 BJ01 P 3 tea 60.00: 10 points (10.00) + cash 50.00
      B7  14:00 c2 BJ01 Q 1 salmon 68.00: coupon 20.00 + WeChat Pay 48.00
      B8  15:00 c1 BJ01 guest 1 tea 20.00 cash              → voided 15:30 "rang twice"
      R1  16:00 manager refunds N's wallet "moving away": 200.00 paid back, no bonus
      B11 23:59 c2 BJ01 guest 1 tea 20.00 bank card          (the last minute: counted)"""
    from crm.auth import service as auth
    in_app(app, lambda: auth.create_staff(SYSTEM, username="cashier2", password=PASSWORD, role="cashier",
                                          store_id=stores["BJ01"]))
    c1, c2, manager = login_api("cashier"), login_on(app, "cashier2"), login_api("manager")
    clock.freeze(at(2026, 3, 1, 10))
    m, n, p, q = (member_factory() for _ in range(4))
    give_points(p["id"], 10)
    r = manager.post("/api/v1/coupon-types", json={"code": "CASH20", "name": "立减20", "kind": "cash",
                                                   "face_value": "20.00"})
    assert r.status_code == 201, r.json
    coupon = manager.post(f"/api/v1/members/{q['id']}/coupons", json={"coupon_type": "CASH20", "reason": "x"})
    assert coupon.status_code == 201, coupon.json
    bills = {}

    def bill(name, who, when, items, store="BJ01", **body):
        clock.freeze(when)
        r = who.post("/api/v1/checkouts", json={"store_code": store, "items": [{"sku": s, "qty": k} for s, k in items],
                                                **body})
        assert r.status_code == 201, r.json
        bills[name] = r.json
        return r.json

    def void(name, when, reason):
        clock.freeze(when)
        r = manager.post(f"/api/v1/checkouts/{bills[name]['id']}/void", json={"reason": reason})
        assert r.status_code == 201, r.json

    def top_up(who, member, when, amount, method):
        clock.freeze(when)
        r = who.post(f"/api/v1/members/{member['id']}/wallet/top-ups",
                     json={"store_code": "BJ01", "amount": amount, "payment_method": method})
        assert r.status_code == 201, r.json
        return r.json

    cash, card, wechat, alipay = ([{"method": k}] for k in ("cash", "bank_card", "wechat_pay", "alipay"))
    bill("B0", c1, at(2026, 3, 9, 19), [("TEA", 2)], tenders=cash)
    bill("B1", c1, at(2026, 3, 9, 23, 59), [("TEA", 1)], tenders=cash)
    bill("B2", c1, at(2026, 3, 10, 0, 1), [("TEA", 1)], tenders=card)
    assert top_up(c1, m, at(2026, 3, 10, 9), "5000.00", "wechat")["bonus_added"] == "600.00"
    assert top_up(c2, n, at(2026, 3, 10, 9, 30), "200.00", "cash")["bonus_added"] == "0.00"
    bill("B3", c1, at(2026, 3, 10, 10), [("SALMON", 1)], tenders=wechat, covers=2)
    clock.freeze(at(2026, 3, 10, 10, 30))
    assert issue_card(p["id"]).status_code == 201
    bill("B4", c2, at(2026, 3, 10, 11), [("SALMON", 1), ("TEA", 1)], tenders=alipay, covers=3)
    bill("B9", c1, at(2026, 3, 10, 11), [("SALMON", 1)], store="BJ02", tenders=cash)
    void("B0", at(2026, 3, 10, 12), "wrong table")
    b5 = bill("B5", c2, at(2026, 3, 10, 12, 30), [("SALMON", 2)], member_id=m["id"], wallet_amount="100.00",
              tenders=cash, covers=2)
    assert b5["tenders"] == [{"method": "stored_value", "amount": "100.00"}, {"method": "cash", "amount": "36.00"}]
    b6 = bill("B6", c1, at(2026, 3, 10, 13), [("TEA", 3)], member_id=p["id"], redeem_points=10, tenders=cash)
    assert (b6["points_value"], b6["tenders"]) == ("10.00", [{"method": "cash", "amount": "50.00"}])
    b7 = bill("B7", c2, at(2026, 3, 10, 14), [("SALMON", 1)], member_id=q["id"],
              coupon_codes=[coupon.json["code"]], tenders=wechat)
    assert (b7["coupon_discount"], b7["tenders"]) == ("20.00", [{"method": "wechat_pay", "amount": "48.00"}])
    bill("B8", c1, at(2026, 3, 10, 15), [("TEA", 1)], tenders=cash)
    void("B8", at(2026, 3, 10, 15, 30), "rang twice")
    clock.freeze(at(2026, 3, 10, 16))
    r = manager.post(f"/api/v1/members/{n['id']}/wallet/refunds", json={"store_code": "BJ01", "reason": "moving away"})
    assert r.status_code == 201 and r.json["refunded_principal"] == "200.00", r.json
    bill("B11", c2, at(2026, 3, 10, 23, 59), [("TEA", 1)], tenders=card)
    clock.freeze(at(2026, 3, 10, 23, 59, 30))
    assert audit_problems(app) == []
    return {"c1": c1, "c2": c2, "manager": manager, "bills": bills, "members": (m, n, p, q), "clock": clock,
            "bill": bill, "void": void}


def _bills(section):
    return {k: section[k] for k in ("bills", "covers", "sales", "coupon_discount", "points_value", "paid", "tenders")}


def fig(bills, covers, sales, coupons, points, paid, tenders):
    return {"bills": bills, "covers": covers, "sales": sales, "coupon_discount": coupons, "points_value": points,
            "paid": paid, "tenders": tenders}


NONE = fig(0, 0, "0.00", "0.00", "0.00", "0.00", {})


def test_every_figure_of_the_day_by_hand(day):
    r = day["manager"].get(f"/api/v1/day-end?store_code=BJ01&date={DAY}")
    assert r.status_code == 200, r.json
    d = r.json
    assert (d["store_code"], d["date"], d["timezone"]) == ("BJ01", DAY, "Asia/Shanghai")
    assert (d["from"], d["to"]) == ("2026-03-09T16:00:00+00:00", "2026-03-10T16:00:00+00:00")  # the local day in UTC
    assert [m["method"] for m in d["methods"]] == ["cash", "bank_card", "wechat_pay", "alipay", "stored_value"]
    assert [m["label"] for m in d["methods"]] == ["Cash", "Bank card", "WeChat Pay", "Alipay", "Stored value"]

    # Store total. Closed Mar 10 at BJ01: B2 B3 B4 B5 B6 B7 B8 B11 = 8 bills, covers 2 + 3 + 2 = 7,
    # sales 20 + 108 + 128 + 136 + 60 + 68 + 20 + 20 = 560.00; coupons 20.00 (B7), points 10.00 (B6);
    # cash 36 (B5) + 50 (B6) + 20 (B8) = 106.00; bank card 20 (B2) + 20 (B11) = 40.00;
    # WeChat 108 (B3) + 48 (B7) = 156.00; Alipay 128.00 (B4); stored value 100.00 (B5);
    # paid 106 + 40 + 156 + 128 + 100 = 530.00 = 560 − 20 − 10.
    total = d["total"]
    assert _bills(total["closed"]) == fig(8, 7, "560.00", "20.00", "10.00", "530.00", {
        "cash": "106.00", "bank_card": "40.00", "wechat_pay": "156.00", "alipay": "128.00", "stored_value": "100.00"})
    # Voided Mar 10: B0 (closed the day before, 40.00 cash) and B8 (20.00 cash).
    assert _bills(total["voided"]) == fig(2, 0, "60.00", "0.00", "0.00", "60.00", {"cash": "60.00"})
    # Net: 6 bills, 500.00 sales; cash 106 − 60 = 46.00; paid 530 − 60 = 470.00.
    assert _bills(total["net"]) == fig(6, 7, "500.00", "20.00", "10.00", "470.00", {
        "cash": "46.00", "bank_card": "40.00", "wechat_pay": "156.00", "alipay": "128.00", "stored_value": "100.00"})
    assert total["card_fees"] == {"count": 1, "amount": "20.00", "by_method": {"cash": "20.00"}}
    assert total["top_ups"] == {"count": 2, "principal": "5200.00", "bonus": "600.00", "by_method": {
        "wechat": {"count": 1, "principal": "5000.00", "bonus": "600.00"},
        "cash": {"count": 1, "principal": "200.00", "bonus": "0.00"}}}
    assert total["refunds"] == {"count": 1, "principal": "200.00", "bonus": "0.00"}
    # Money taken: cash 46 (bills) + 200 (top-up) + 20 (card fee) = 266.00; WeChat 156 + 5,000 = 5,156.00;
    # stored value is not money taken.
    assert d["takings"] == {"cash": "266.00", "bank_card": "40.00", "wechat_pay": "5156.00", "alipay": "128.00"}

    by = {(c["staff"] or {}).get("username"): c for c in d["cashiers"]}
    assert list(by) == ["cashier", "cashier2", "frontdesk", "manager"]
    # c1 closed B2 B3 B6 B8: 20 + 108 + 60 + 20 = 208.00, points 10.00, cash 50 + 20 = 70.00,
    # paid 20 + 108 + 70 = 198.00; the voids of B0 and B8 count against c1, who closed them.
    assert _bills(by["cashier"]["closed"]) == fig(4, 2, "208.00", "0.00", "10.00", "198.00", {
        "cash": "70.00", "bank_card": "20.00", "wechat_pay": "108.00"})
    assert _bills(by["cashier"]["voided"]) == fig(2, 0, "60.00", "0.00", "0.00", "60.00", {"cash": "60.00"})
    assert _bills(by["cashier"]["net"]) == fig(2, 2, "148.00", "0.00", "10.00", "138.00", {
        "cash": "10.00", "bank_card": "20.00", "wechat_pay": "108.00"})
    assert by["cashier"]["top_ups"]["principal"] == "5000.00" and by["cashier"]["refunds"]["count"] == 0
    # c2 closed B4 B5 B7 B11: 128 + 136 + 68 + 20 = 352.00, coupons 20.00, paid 352 − 20 = 332.00.
    assert _bills(by["cashier2"]["closed"]) == fig(4, 5, "352.00", "20.00", "0.00", "332.00", {
        "cash": "36.00", "bank_card": "20.00", "wechat_pay": "48.00", "alipay": "128.00", "stored_value": "100.00"})
    assert _bills(by["cashier2"]["voided"]) == NONE
    assert by["cashier2"]["net"] == by["cashier2"]["closed"]
    assert by["cashier2"]["top_ups"]["by_method"] == {"cash": {"count": 1, "principal": "200.00", "bonus": "0.00"}}
    assert _bills(by["frontdesk"]["net"]) == NONE and by["frontdesk"]["card_fees"]["amount"] == "20.00"
    assert _bills(by["manager"]["net"]) == NONE and by["manager"]["refunds"]["principal"] == "200.00"

    bills = day["bills"]
    assert [(v["checkout_id"], v["closed_on"], v["closed_by"]["username"], v["voided_by"]["username"], v["reason"],
             v["sales"], v["paid"], v["tenders"]) for v in d["voids"]] == [
        (bills["B0"]["id"], "2026-03-09", "cashier", "manager", "wrong table", "40.00", "40.00", {"cash": "40.00"}),
        (bills["B8"]["id"], DAY, "cashier", "manager", "rang twice", "20.00", "20.00", {"cash": "20.00"})]
    assert d["voids"][0]["voided_at"] == "2026-03-10T04:00:00+00:00"  # 12:00 in Shanghai
    m, n, p, q = day["members"]
    assert [(x["staff"]["username"], x["member_id"], x["reason"], x["principal"], x["bonus"]) for x in d["refunds"]] \
        == [("manager", n["id"], "moving away", "200.00", "0.00")]
    assert d["checks"] == [] and d["changed_since_check"] is None

    # The other store's day holds only its own bill.
    other = day["manager"].get(f"/api/v1/day-end?store_code=BJ02&date={DAY}").json
    assert _bills(other["total"]["net"]) == fig(1, 0, "108.00", "0.00", "0.00", "108.00", {"cash": "108.00"})
    assert other["takings"] == {"cash": "108.00"} and other["voids"] == [] and other["refunds"] == []


def test_tenders_equal_the_sum_of_the_bills_to_the_fen(day):
    """Summed independently from each bill as the API shows it: the day-end's per-tender totals."""
    manager, bills = day["manager"], day["bills"]
    closed, voided = {}, {}
    for name in ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B11"):
        for t in manager.get(f"/api/v1/checkouts/{bills[name]['id']}").json["tenders"]:
            closed[t["method"]] = closed.get(t["method"], 0) + Decimal(t["amount"])
    for name in ("B0", "B8"):
        for t in manager.get(f"/api/v1/checkouts/{bills[name]['id']}").json["tenders"]:
            voided[t["method"]] = voided.get(t["method"], 0) + Decimal(t["amount"])
    d = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["total"]
    assert {k: Decimal(v) for k, v in d["closed"]["tenders"].items()} == closed
    assert {k: Decimal(v) for k, v in d["voided"]["tenders"].items()} == voided
    assert {k: Decimal(v) for k, v in d["net"]["tenders"].items()} == {
        k: closed.get(k, 0) - voided.get(k, 0) for k in closed}
    # and the cashiers' sections add up to the store's
    cashiers = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["cashiers"]
    for method, amount in d["net"]["tenders"].items():
        assert sum(Decimal(c["net"]["tenders"].get(method, "0")) for c in cashiers) == Decimal(amount)


def test_the_local_day_boundary(day):
    """23:59 on the 9th is the 9th (B1), 00:01 on the 10th the 10th (B2); 23:59 on the 10th is the
    10th (B11), 00:01 on the 11th the 11th — though in UTC all four are on the 9th and 10th."""
    manager = day["manager"]
    day["bill"]("B12", day["c2"], at(2026, 3, 11, 0, 1), [("SALMON", 1)], tenders=[{"method": "alipay"}])
    ninth = manager.get("/api/v1/day-end?store_code=BJ01&date=2026-03-09").json["total"]
    # B0 (19:00, voided on the 10th, so still closed on the 9th) and B1: 40 + 20 cash.
    assert _bills(ninth["closed"]) == fig(2, 0, "60.00", "0.00", "0.00", "60.00", {"cash": "60.00"})
    assert _bills(ninth["voided"]) == NONE
    tenth = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["total"]
    assert tenth["closed"]["bills"] == 8 and tenth["closed"]["tenders"]["bank_card"] == "40.00"  # B2 and B11
    eleventh = manager.get("/api/v1/day-end?store_code=BJ01&date=2026-03-11").json["total"]
    assert _bills(eleventh["net"]) == fig(1, 0, "108.00", "0.00", "0.00", "108.00", {"alipay": "108.00"})


def test_checking_the_day_records_once_and_shows_what_changed(app, staff, day):
    manager, clock = day["manager"], day["clock"]
    ui = ui_login(app, staff["manager"], lang="en")
    page = ui.get(f"/day-end/?store_code=BJ01&date={DAY}")
    assert page.status_code == 200 and "Nobody has checked this day yet." in text(page)
    token = ui.form_tokens["/day-end/check"]
    form = {"store_code": "BJ01", "date": DAY, "note": "drawer counted", "form_token": token}
    first = ui.post("/day-end/check", form)
    again = ui.post("/day-end/check", form)  # the browser resends the form
    assert first.status_code == 302 and again.status_code == 302
    checks = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["checks"]
    assert [(c["checked_by"]["username"], c["note"], c["checked_at"]) for c in checks] == [
        ("manager", "drawer counted", "2026-03-10T15:59:30+00:00")]
    assert checks[0]["totals"]["net.paid"] == "470.00" and checks[0]["totals"]["net.bills"] == 6
    shown = text(ui.get(f"/day-end/?store_code=BJ01&date={DAY}"))
    assert "Checked by manager at 2026-03-10 23:59." in shown and "The figures are as they were checked." in shown

    # A void in the day's last seconds, after the check: B11 (20.00 by bank card).
    clock.freeze(at(2026, 3, 10, 23, 59, 50))
    assert manager.post(f"/api/v1/checkouts/{day['bills']['B11']['id']}/void",
                        json={"reason": "guest left"}).status_code == 201
    d = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert d["changed_since_check"] == [
        {"figure": "net.bills", "then": 6, "now": 5, "difference": -1},
        {"figure": "net.paid", "then": "470.00", "now": "450.00", "difference": "-20.00"},
        {"figure": "net.sales", "then": "500.00", "now": "480.00", "difference": "-20.00"},
        {"figure": "net.tender.bank_card", "then": "40.00", "now": "20.00", "difference": "-20.00"},
        {"figure": "takings.bank_card", "then": "40.00", "now": "20.00", "difference": "-20.00"},
        {"figure": "voided.bills", "then": 2, "now": 3, "difference": 1}]
    shown = text(ui.get(f"/day-end/?store_code=BJ01&date={DAY}"))
    assert "The figures changed since this check:" in shown and "Net · Bank card: 40.00 → 20.00 (-20.00)" in shown

    # A void on a later day counts on that day: the checked day stays as it is now.
    clock.freeze(at(2026, 3, 11, 9))
    assert manager.post(f"/api/v1/checkouts/{day['bills']['B4']['id']}/void",
                        json={"reason": "late"}).status_code == 201
    assert manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["changed_since_check"] == \
        d["changed_since_check"]

    # Checking again adds a record (the API, once per Idempotency-Key); nothing is locked.
    body = {"store_code": "BJ01", "date": DAY, "note": "void of B11 seen"}
    one = manager.post("/api/v1/day-end/checks", json=body, key="check-1")
    two = manager.post("/api/v1/day-end/checks", json=body, key="check-1")
    assert one.status_code == 201 and two.status_code == 201 and one.json["id"] == two.json["id"]
    assert one.json["totals"]["net.paid"] == "450.00"
    d = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert [c["note"] for c in d["checks"]] == ["void of B11 seen", "drawer counted"] and d["changed_since_check"] == []
    # Bad input is 422 naming the field; a day not begun cannot be checked.
    for bad, field in (({**body, "date": "2026-03-12"}, "date"), ({**body, "date": "x"}, "date"),
                       ({**body, "store_code": "NOPE"}, "store_code"), ({**body, "note": "n" * 201}, "note"),
                       ({**body, "extra": 1}, "extra")):
        r = manager.post("/api/v1/day-end/checks", json=bad)
        assert r.status_code == 422 and field in str(r.json["error"]["details"]), (bad, r.json)
    r = manager.post("/api/v1/day-end/checks", json={**body, "date": "2026-03-12"})
    assert r.json["error"]["code"] == "day_not_begun"


def test_downloads_hold_the_figures(day):
    manager = day["manager"]
    r = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}&format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0] == ["Section", "Cashier", "Figure", "Closed", "Voided", "Net", "Detail"]
    assert ["Tenders", "Store total", "Cash", "106.00", "60.00", "46.00", ""] in rows
    assert ["Tenders", "Store total", "Paid (all tenders)", "530.00", "60.00", "470.00", ""] in rows
    assert ["Bills", "cashier", "Points", "10.00", "0.00", "10.00", ""] in rows
    assert ["Top-ups", "cashier", "WeChat Pay", "", "", "5000.00", "1 top-ups, bonus 600.00"] in rows
    assert ["Money taken", "Store total", "Cash", "", "", "266.00", ""] in rows
    voids = [row for row in rows if row[0] == "Voids"]
    assert [row[3:5] for row in voids] == [["40.00", "40.00"], ["20.00", "20.00"]]
    assert voids[0][6] == "closed 2026-03-09 19:00, voided 2026-03-10 12:00 by manager: wrong table"
    refunds = [row for row in rows if row[0] == "Refunds" and row[2].startswith("Member")]
    assert refunds[0][5:] == ["200.00", "2026-03-10 16:00, bonus forfeited 0.00: moving away"]

    x = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}&format=xlsx")
    assert x.status_code == 200
    from openpyxl import load_workbook
    sheet = load_workbook(io.BytesIO(x.data)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    cash = next(row for row in cells if row[:3] == ["Tenders", "Store total", "Cash"])
    assert cash[3:6] == [Decimal("106"), Decimal("60"), Decimal("46")] or cash[3:6] == [106, 60, 46]


def test_the_page(app, staff, day):
    ui = ui_login(app, staff["manager"], lang="en")
    r = ui.get("/day-end/")  # today where the manager's store is, at their store
    assert r.status_code == 302 and "store_code=BJ01" in r.location and "date=2026-03-10" in r.location
    page = text(ui.get(f"/day-end/?store_code=BJ01&date={DAY}"))
    for shown in ("Store total", "Cashier: cashier", "Cashier: cashier2", "wrong table", "rang twice",
                  "moving away", "5156.00", "470.00"):
        assert shown in page, shown
    csv_file = ui.get(f"/day-end/?store_code=BJ01&date={DAY}&format=csv")
    assert csv_file.status_code == 200 and "46.00" in csv_file.data.decode("utf-8-sig")
    xlsx = ui.get(f"/day-end/?store_code=BJ01&date={DAY}&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    bad = ui.get("/day-end/?store_code=BJ01&date=2026-02-30")
    assert bad.status_code == 422 and 'aria-invalid="true"' in text(bad)
    unknown = ui.get(f"/day-end/?store_code=NOPE&date={DAY}")
    assert unknown.status_code == 422 and "Unknown store code NOPE." in text(unknown)


def test_a_cashier_sees_their_store_and_their_own_figures(app, staff, day):
    c2 = day["c2"]
    d = c2.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert d["total"]["net"]["paid"] == "470.00"  # the store's totals
    assert [c["staff"]["username"] for c in d["cashiers"]] == ["cashier2"]
    assert d["voids"] == [] and d["refunds"] == []  # c2 closed no voided bill and refunded nothing
    c1 = day["c1"].get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert [c["staff"]["username"] for c in c1["cashiers"]] == ["cashier"] and len(c1["voids"]) == 2
    other = c2.get(f"/api/v1/day-end?store_code=BJ02&date={DAY}")
    assert other.status_code == 403 and other.json["error"]["code"] == "other_store"
    r = c2.post("/api/v1/day-end/checks", json={"store_code": "BJ02", "date": DAY})
    assert r.status_code == 403 and r.json["error"]["code"] == "other_store"
    assert c2.post("/api/v1/day-end/checks", json={"store_code": "BJ01", "date": DAY}).status_code == 201
    ui = ui_login(app, staff["cashier"], lang="en")
    page = ui.get(f"/day-end/?store_code=BJ02&date={DAY}")
    assert page.status_code == 403 and "You see the day-end of your own store only." in text(page)
    assert ui.get(f"/day-end/?store_code=BJ01&date={DAY}").status_code == 200
    marketing = ui_login(app, staff["marketing"], lang="en")
    assert marketing.get(f"/day-end/?store_code=BJ01&date={DAY}").status_code == 403


def test_a_cashier_without_a_home_store_sees_no_stores_day(app, stores, day):
    """A counter account with no home store answers for no drawer: it sees no store's day-end (it
    saw every store's, the first one's by default)."""
    from crm.auth import service as auth
    in_app(app, lambda: auth.create_staff(SYSTEM, username="floater", password=PASSWORD, role="cashier"))
    floater = login_on(app, "floater")
    r = floater.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}")
    assert (r.status_code, r.json["error"]["code"]) == (403, "no_home_store")
    r = floater.post("/api/v1/day-end/checks", json={"store_code": "BJ01", "date": DAY})
    assert (r.status_code, r.json["error"]["code"]) == (403, "no_home_store")


def test_bad_input_is_422_never_500(app, staff, login_api):
    manager = login_api("manager")
    for query in ("store_code=BJ01&date=1999-12-31", "store_code=BJ01&date=2101-01-01", "store_code=BJ01&date=x",
                  "store_code=%00&date=2026-03-10", "store_code=" + "B" * 33 + "&date=2026-03-10",
                  "store_code=BJ01&date=2026-03-10&format=pdf",
                  "date=2026-03-10"):
        r = manager.get(f"/api/v1/day-end?{query}")
        assert r.status_code == 422, (query, r.json)
    for body in ({"store_code": "BJ01", "date": "2026-03-10", "note": "a\x00b"},
                 {"store_code": "BJ\x0001", "date": "2026-03-10"}, {"store_code": 1.5, "date": "2026-03-10"},
                 {"store_code": "BJ01", "date": 20260310}, {"store_code": "BJ01", "date": "1999-12-31"}):
        r = manager.post("/api/v1/day-end/checks", json=body)
        assert r.status_code == 422, (body, r.json)
    ui = ui_login(app, staff["manager"], lang="en")
    for query in ("store_code=BJ01&date=1800-01-01", "store_code=%00&date=2026-03-10",
                  "store_code=BJ01&date=2026-03-10&format=pdf"):
        assert ui.get(f"/day-end/?{query}").status_code == 422, query
    r = ui.post("/day-end/check", {"store_code": "BJ01", "date": "2026-03-10", "note": "a\x00b"})
    assert r.status_code == 422
    r = ui.post("/day-end/check", {"store_code": "BJ01", "date": "nope", "note": ""})
    assert r.status_code == 422 and "Not a valid date." in text(r)


def test_an_erasure_write_off_is_listed_but_not_a_refund(day):
    """M (5,000.00 + 600.00 bonus, paid 100.00 on B5: bonus part 100 × 600 / 5,600 = 10.71, principal
    89.29) is erased at 20:00 with the wallet forfeited: 4,910.71 principal and 589.29 bonus are
    written off at BJ01 (the manager's store) and nothing is paid back, so the refunds stay 200.00."""
    manager, clock = day["manager"], day["clock"]
    m = day["members"][0]
    clock.freeze(at(2026, 3, 10, 20))
    preview = manager.get(f"/api/v1/members/{m['id']}/erasure").json
    assert (preview["principal"], preview["bonus"]) == ("4910.71", "589.29")
    r = manager.post(f"/api/v1/members/{m['id']}/erasure", json={
        "reason": "member asked", "wallet_rule": "forfeit",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200, r.json
    clock.freeze(at(2026, 3, 10, 23, 59, 40))
    d = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert d["total"]["refunds"] == {"count": 1, "principal": "200.00", "bonus": "0.00"}
    assert [(x["member_id"], x["principal"], x["bonus"], x["written_off"]) for x in d["refunds"]] == [
        (day["members"][1]["id"], "200.00", "0.00", False), (m["id"], "4910.71", "589.29", True)]
    assert d["takings"]["cash"] == "266.00"
