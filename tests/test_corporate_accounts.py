"""Corporate accounts at the till (issue 17 point 3): the company's negotiated discount as one more
price in the pricing function, sign-for-bill (挂账) up to a credit limit that concurrent closes
never pass, voids, payments, monthly statements and ageing — figures worked by hand."""
import io
import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crm.catalog.pricing import PriceItem, price_bill, unit_price
from crm.extensions import db
from tests.conftest import audit_problems
from tests.test_races import api_call, race
from tests.test_ui import text, ui_login

# --- pricing (pure) ----------------------------------------------------------------------------

def test_company_price_is_list_less_the_discount_when_lower_than_the_member_price():
    steak = PriceItem("STEAK", "牛排", "grill", 19800, member_price=17800)
    # 198.00 × (1 − 15%) = 168.30 < member price 178.00: the company price, marked "company".
    assert unit_price(steak, level="entry", company_discount_bp=1500) == (16830, "company")
    salmon = PriceItem("SALMON", "三文鱼", "sashimi", 10800, member_price=6800)
    # 108.00 × 0.85 = 91.80 > member price 68.00: the member price stays, unmarked.
    assert unit_price(salmon, level="entry", company_discount_bp=1500) == (6800, None)
    # Half-up to the fen: 0.05 × 0.70 = 0.035 → 0.04.
    assert unit_price(PriceItem("X", "x", "c", 5), level="entry", company_discount_bp=3000) == (4, "company")
    # Not a member (no company to speak of): list price.
    assert unit_price(steak, level=None, company_discount_bp=1500) == (19800, None)
    bill = price_bill([(steak, 2), (salmon, 1)], level="entry", company_discount_bp=1500)
    assert (bill.list_total, bill.member_total) == (2 * 19800 + 10800, 2 * 16830 + 6800)  # 504.00, 404.60


# --- the API ----------------------------------------------------------------------------------

@pytest.fixture
def corp(catalogue, desk, login_api, member_factory):
    """华为 with a 15% negotiated discount, an account with a 500.00 limit, signer 张总 (member of 华为),
    a colleague 李四 of 华为 who is not a signer, and STEAK 198.00 / member 178.00."""
    manager = login_api("manager")
    r = manager.post("/api/v1/items", json={"sku": "STEAK", "name": "牛排", "category": "grill",
                                            "list_price": "198.00", "member_price": "178.00"})
    assert r.status_code == 201, r.json
    r = desk.post("/api/v1/companies", json={"name": "华为", "negotiated_discount": "15.00",
                                             "account_class": "key_account"})
    assert r.status_code == 201, r.json
    company = r.json["id"]
    signer = member_factory(name="张总", company="华为")
    other = member_factory(name="李四", company="华为")
    r = manager.put(f"/api/v1/companies/{company}/account", json={"credit_limit": "500.00"})
    assert r.status_code == 201, r.json
    r = manager.post(f"/api/v1/companies/{company}/signers/{signer['id']}")
    assert r.status_code == 201, r.json
    return {"company": company, "signer": signer, "other": other, "manager": manager}


def account(api, company):
    r = api.get(f"/api/v1/companies/{company}/account")
    assert r.status_code == 200, r.json
    return r.json


def signed(checkout, member, items, amount=None, key=None, **body):
    tender = {"method": "company_account", **({"amount": amount} if amount else {})}
    return checkout(items, member_id=member["id"], tenders=[tender, *body.pop("more", [])], key=key, **body)


def ledger_sum(app, company):
    from sqlalchemy import func, select

    from crm.corporate.models import CompanyAccount, CompanyAccountEntry
    with app.app_context():
        owed = db.session.scalar(select(CompanyAccount.owed).where(CompanyAccount.company_id == company))
        total = db.session.scalar(select(func.coalesce(func.sum(CompanyAccountEntry.amount), 0))
                                  .join(CompanyAccount, CompanyAccount.id == CompanyAccountEntry.account_id)
                                  .where(CompanyAccount.company_id == company))
        return owed, total


def corporate_problems(app):
    from crm.corporate import service
    with app.app_context():
        return service.audit_mismatches()


def test_a_company_member_pays_the_company_price_where_it_is_lower(corp, checkout):
    r = checkout([("STEAK", 2), ("SALMON", 1), ("TEA", 1)], member_id=corp["other"]["id"])
    assert r.status_code == 201, r.json
    lines = {line["sku"]: line for line in r.json["lines"]}
    # STEAK 198.00 × 0.85 = 168.30 (below member 178.00); SALMON member 68.00 (below 91.80);
    # TEA 20.00 × 0.85 = 17.00 (no member price). Total 2 × 168.30 + 68.00 + 17.00 = 421.60.
    assert (lines["STEAK"]["unit_price"], lines["STEAK"]["promotion"]) == ("168.30", "company")
    assert (lines["SALMON"]["unit_price"], lines["SALMON"]["promotion"]) == ("68.00", None)
    assert (lines["TEA"]["unit_price"], lines["TEA"]["promotion"]) == ("17.00", "company")
    assert r.json["member_total"] == "421.60"
    assert r.json["list_total"] == "524.00"  # 396.00 + 108.00 + 20.00


def test_sign_for_bill_charges_the_account_and_a_void_gives_it_back(app, corp, checkout, login_api):
    manager = corp["manager"]
    r = signed(checkout, corp["signer"], [("STEAK", 2)])
    assert r.status_code == 201, r.json
    assert r.json["tenders"] == [{"method": "company_account", "amount": "336.60"}]  # 2 × 168.30
    acc = account(manager, corp["company"])
    assert (acc["owed"], acc["available"], acc["credit_limit"]) == ("336.60", "163.40", "500.00")
    assert [s["name"] for s in acc["signers"]] == ["张总"]
    # Another STEAK (168.30) is more than the 163.40 left: 409 naming what is available.
    over = signed(checkout, corp["signer"], [("STEAK", 1)])
    assert over.status_code == 409, over.json
    assert over.json["error"]["code"] == "credit_limit_exceeded"
    assert over.json["error"]["details"]["available"] == "163.40"
    # Split: 163.40 signed, the 4.90 rest in cash → owed exactly the limit, 500.00.
    split = signed(checkout, corp["signer"], [("STEAK", 1)], amount="163.40", more=[{"method": "cash"}])
    assert split.status_code == 201, split.json
    assert split.json["tenders"] == [{"method": "company_account", "amount": "163.40"},
                                     {"method": "cash", "amount": "4.90"}]
    assert account(manager, corp["company"])["owed"] == "500.00"
    # Voiding the first bill gives its 336.60 back: owed 163.40.
    v = manager.post(f"/api/v1/checkouts/{r.json['id']}/void", json={"reason": "wrong table"})
    assert v.status_code == 201, v.json
    assert v.json["company_account_reversed"] == "336.60"
    assert account(manager, corp["company"])["owed"] == "163.40"
    again = manager.post(f"/api/v1/checkouts/{r.json['id']}/void", json={"reason": "again"})
    assert again.status_code == 409
    assert account(manager, corp["company"])["owed"] == "163.40"
    assert ledger_sum(app, corp["company"]) == (16340, 16340)
    assert audit_problems(app) == [] and corporate_problems(app) == []


def test_who_may_sign_and_when(corp, checkout, login_api, member_factory):
    manager = corp["manager"]
    r = signed(checkout, corp["other"], [("TEA", 1)])  # a colleague, not a signer
    assert (r.status_code, r.json["error"]["code"]) == (422, "not_a_signer")
    r = checkout([("TEA", 1)], tenders=[{"method": "company_account"}])  # a guest
    assert (r.status_code, r.json["error"]["code"]) == (422, "company_account_needs_member")
    stranger = member_factory(name="外人")
    r = manager.post(f"/api/v1/companies/{corp['company']}/signers/{stranger['id']}")
    assert (r.status_code, r.json["error"]["code"]) == (422, "signer_not_of_company")
    r = manager.put(f"/api/v1/companies/{corp['company']}/account", json={"credit_limit": "500.00", "active": False})
    assert r.status_code == 200 and r.json["available"] == "0.00"
    r = signed(checkout, corp["signer"], [("TEA", 1)])
    assert (r.status_code, r.json["error"]["code"]) == (409, "company_account_suspended")
    # A limit change that leaves `active` out keeps the suspension; only active: true lifts it.
    r = manager.put(f"/api/v1/companies/{corp['company']}/account", json={"credit_limit": "600.00"})
    assert (r.status_code, r.json["active"], r.json["available"]) == (200, False, "0.00")
    manager.put(f"/api/v1/companies/{corp['company']}/account", json={"credit_limit": "500.00", "active": True})
    assert signed(checkout, corp["signer"], [("TEA", 1)]).status_code == 201  # 17.00
    # The limit lowered below what is owed (17.00): allowed; nothing more can be signed.
    r = manager.put(f"/api/v1/companies/{corp['company']}/account", json={"credit_limit": "10.00"})
    assert (r.status_code, r.json["owed"], r.json["available"]) == (200, "17.00", "0.00")
    r = signed(checkout, corp["signer"], [("TEA", 1)])
    assert (r.status_code, r.json["error"]["code"]) == (409, "credit_limit_exceeded")
    r = manager.delete(f"/api/v1/companies/{corp['company']}/signers/{corp['signer']['id']}")
    assert r.status_code == 200 and r.json["signers"] == []
    assert manager.delete(f"/api/v1/companies/{corp['company']}/signers/{corp['signer']['id']}").status_code == 404


@pytest.mark.parametrize("body", [{"credit_limit": "-1.00"}, {"credit_limit": 100.5}, {"credit_limit": "1.005"},
                                  {"credit_limit": "10.00", "owed": "0.00"}, {"credit_limit": "1\x00"}, {}])
def test_hostile_account_bodies_are_422(corp, body):
    r = corp["manager"].put(f"/api/v1/companies/{corp['company']}/account", json=body)
    assert r.status_code == 422, r.json


def test_unknown_company_or_member_is_404_not_500(corp):
    manager = corp["manager"]
    assert manager.get("/api/v1/companies/999999999999/account").status_code == 404
    assert manager.put("/api/v1/companies/99999999/account", json={"credit_limit": "1.00"}).status_code == 404
    assert manager.post(f"/api/v1/companies/{corp['company']}/signers/99999999").status_code == 404


def test_twenty_concurrent_sign_for_bill_closes_never_pass_the_limit(app, corp, cashier, member_factory):
    """20 tills close a bill of a different 华为 signer each at once; the limit (595.00) allows
    exactly 7 bills of TEA × 5 (100.00 list × 0.85 = 85.00 each: 7 × 85.00 = 595.00)."""
    manager = corp["manager"]
    manager.put(f"/api/v1/companies/{corp['company']}/account", json={"credit_limit": "595.00"})
    signers = [member_factory(name=f"签单{i}", company="华为") for i in range(20)]
    for m in signers:
        assert manager.post(f"/api/v1/companies/{corp['company']}/signers/{m['id']}").status_code == 201
    results = race(20, lambda i: api_call(app, cashier.token, "POST", "/api/v1/checkouts",
                                          {"store_code": "BJ01", "member_id": signers[i]["id"],
                                           "items": [{"sku": "TEA", "qty": 5}],
                                           "tenders": [{"method": "company_account"}]}, key=f"race-{i}"))
    codes = sorted((s, c) for s, c, _ in results)
    assert codes == [(201, None)] * 7 + [(409, "credit_limit_exceeded")] * 13, codes
    acc = account(manager, corp["company"])
    assert (acc["owed"], acc["available"]) == ("595.00", "0.00")
    assert ledger_sum(app, corp["company"]) == (59500, 59500)
    assert audit_problems(app) == [] and corporate_problems(app) == []


def test_a_void_racing_a_close_keeps_the_account_consistent(app, corp, cashier, member_factory):
    manager = corp["manager"]
    manager.put(f"/api/v1/companies/{corp['company']}/account", json={"credit_limit": "170.00"})
    second = member_factory(name="王二", company="华为")
    manager.post(f"/api/v1/companies/{corp['company']}/signers/{second['id']}")
    cashier_api = cashier
    first = cashier_api.post("/api/v1/checkouts", json={"store_code": "BJ01", "member_id": corp["signer"]["id"],
                                                         "items": [{"sku": "TEA", "qty": 5}],
                                                         "tenders": [{"method": "company_account"}]})
    assert first.status_code == 201  # owed 85.00
    # A new bill of TEA × 6 (120.00 × 0.85 = 102.00) fits only once the first is voided (85 + 102 > 170).
    results = race(2, lambda i: api_call(app, manager.token, "POST", f"/api/v1/checkouts/{first.json['id']}/void",
                                         {"reason": "moved table"}) if i == 0 else
                   api_call(app, cashier.token, "POST", "/api/v1/checkouts",
                            {"store_code": "BJ01", "member_id": second["id"], "items": [{"sku": "TEA", "qty": 6}],
                             "tenders": [{"method": "company_account"}]}))
    (void_status, _, _), (close_status, close_code, _) = results
    assert void_status == 201
    owed = account(manager, corp["company"])["owed"]
    if close_status == 201:
        assert owed == "102.00"
    else:
        assert (close_status, close_code, owed) == (409, "credit_limit_exceeded", "0.00")
    assert ledger_sum(app, corp["company"])[0] == ledger_sum(app, corp["company"])[1]
    assert corporate_problems(app) == []


def test_a_void_racing_a_payment_keeps_the_account_consistent(app, corp, checkout):
    manager = corp["manager"]
    bill = signed(checkout, corp["signer"], [("TEA", 5)])  # 85.00
    assert bill.status_code == 201
    results = race(2, lambda i: api_call(app, manager.token, "POST", f"/api/v1/checkouts/{bill.json['id']}/void",
                                         {"reason": "redo"}) if i == 0 else
                   api_call(app, manager.token, "POST", f"/api/v1/companies/{corp['company']}/account/payments",
                            {"amount": "85.00", "method": "bank_transfer", "reference": "HW-001"}, key="pay-1"))
    (void_status, _, _), (pay_status, pay_code, _) = results
    assert void_status == 201
    owed = account(manager, corp["company"])["owed"]
    if pay_status == 201:  # paid first, then voided: the company is 85.00 in credit
        assert owed == "-85.00"
    else:  # voided first: nothing owed, so the payment was too much
        assert (pay_status, pay_code, owed) == (422, "payment_exceeds_owed", "0.00")
    assert corporate_problems(app) == []


# --- payments, statements, ageing ----------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def backdate(app, where_sql, params, day):
    """Move entries to noon of a day in Shanghai (tests cannot wait months for bills to age)."""
    from sqlalchemy import text as sql
    with app.app_context():
        db.session.execute(sql(f"UPDATE company_account_entries SET created_at = :at WHERE {where_sql}"),
                           {**params, "at": datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI)})
        db.session.commit()


@pytest.fixture
def history(app, corp, checkout):
    """华为's 2025: A 100.00 signed 10 Aug, B 200.00 on 15 Sep, D 30.00 on 20 Sep voided on 21 Sep,
    C 50.00 on 20 Oct, a 150.00 bank transfer on 5 Nov. Each bill is TEA at the company's 17.00,
    the signed part exact and the rest in cash."""
    manager = corp["manager"]
    manager.put(f"/api/v1/companies/{corp['company']}/account", json={"credit_limit": "1000.00"})
    bills = {}
    for name, qty, amount, cash, day in (("A", 6, "100.00", "2.00", date(2025, 8, 10)),
                                         ("B", 12, "200.00", "4.00", date(2025, 9, 15)),
                                         ("D", 2, "30.00", "4.00", date(2025, 9, 20)),
                                         ("C", 3, "50.00", "1.00", date(2025, 10, 20))):
        r = signed(checkout, corp["signer"], [("TEA", qty)], amount=amount,
                   more=[{"method": "cash", "amount": cash}])
        assert r.status_code == 201, r.json
        bills[name] = r.json["id"]
        backdate(app, "checkout_id = :id AND kind = 'charge'", {"id": r.json["id"]}, day)
    assert manager.post(f"/api/v1/checkouts/{bills['D']}/void", json={"reason": "wrong company"}).status_code == 201
    backdate(app, "checkout_id = :id AND kind = 'reversal'", {"id": bills["D"]}, date(2025, 9, 21))
    r = manager.post(f"/api/v1/companies/{corp['company']}/account/payments", key="hw-nov",
                     json={"amount": "150.00", "method": "bank_transfer", "reference": "HW-2025-11",
                           "received_on": "2025-11-05"})
    assert r.status_code == 201, r.json
    assert (r.json["payment"]["amount"], r.json["account"]["owed"]) == ("-150.00", "200.00")  # 350 − 150
    backdate(app, "kind = 'payment'", {}, date(2025, 11, 5))
    return bills


def test_a_payment_is_once_per_key_and_never_more_than_owed(app, corp, checkout):
    manager, path = corp["manager"], f"/api/v1/companies/{corp['company']}/account/payments"
    assert signed(checkout, corp["signer"], [("TEA", 5)]).status_code == 201  # 85.00 owed
    body = {"amount": "50.00", "method": "cash"}
    first, again = manager.post(path, json=body, key="p1"), manager.post(path, json=body, key="p1")
    assert first.status_code == again.status_code == 201
    assert account(manager, corp["company"])["owed"] == "35.00"  # 85.00 − 50.00, once
    too_much = manager.post(path, json={"amount": "35.01", "method": "cash"})
    assert (too_much.status_code, too_much.json["error"]["code"]) == (422, "payment_exceeds_owed")
    assert too_much.json["error"]["details"]["owed"] == "35.00"
    for bad in ({"amount": "0.00", "method": "cash"}, {"amount": "-5.00", "method": "cash"},
                {"amount": 5, "method": "cash"}, {"amount": "5.00", "method": "iou"},
                {"amount": "5.00", "method": "cash", "received_on": "2999-01-01"},
                {"amount": "5.00", "method": "cash", "reference": "x" * 101},
                {"amount": "5.00", "method": "cash", "extra": 1}, {"amount": "5\x00", "method": "cash"}):
        r = manager.post(path, json=bad)
        assert r.status_code == 422, (bad, r.json)
    assert account(manager, corp["company"])["owed"] == "35.00"
    assert corp["manager"].post("/api/v1/companies/99999999/account/payments", json=body).status_code == 404


def test_monthly_statement_figures(corp, history):
    manager, base = corp["manager"], f"/api/v1/companies/{corp['company']}/statements"
    sep = manager.get(f"{base}/2025/9")
    assert sep.status_code == 200, sep.json
    # Opening: A 100.00. B +200.00 → 300.00, D +30.00 → 330.00, D's void −30.00 → 300.00.
    assert sep.json["opening"] == "100.00" and sep.json["closing"] == "300.00"
    assert [(x["date"], x["kind"], x["amount"], x["balance"], x["signer"], x["store"]) for x in sep.json["lines"]] == [
        ("2025-09-15", "charge", "200.00", "300.00", "张总", "朝阳店"),
        ("2025-09-20", "charge", "30.00", "330.00", "张总", "朝阳店"),
        ("2025-09-21", "reversal", "-30.00", "300.00", "张总", "朝阳店")]
    assert sep.json["lines"][0]["bill_no"] == history["B"]
    assert (sep.json["charges"], sep.json["reversals"], sep.json["payments"]) == ("230.00", "-30.00", "0.00")
    nov = manager.get(f"{base}/2025/11").json
    # Opening 300.00 + C 50.00 in October = 350.00; the 150.00 transfer leaves 200.00.
    assert (nov["opening"], nov["payments"], nov["closing"]) == ("350.00", "-150.00", "200.00")
    assert "HW-2025-11" in nov["lines"][0]["reference"]
    xlsx = manager.get(f"{base}/2025/9?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    from openpyxl import load_workbook
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][-1] == Decimal("100") and rows[-1][-1] == Decimal("300")  # opening, closing
    assert rows[2][4] == "张总" and rows[2][6] == Decimal("200")
    pdf = manager.get(f"{base}/2025/9?format=pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    for bad in ("2025/13", "1999/12", "2999/1", "2025/0"):
        assert manager.get(f"{base}/{bad}").status_code in (404, 422), bad
    assert manager.get(f"{base}/2025/9?format=doc").status_code == 422


def test_ageing_allocates_payments_to_the_oldest_bills_first(corp, history):
    manager = corp["manager"]
    r = manager.get("/api/v1/companies/ageing?as_of=2025-11-30")
    assert r.status_code == 200, r.json
    [row] = r.json["companies"]
    # The 150.00 pays A (100.00, 112 days old) and 50.00 of B (76 days): B's 150.00 is 61–90 days,
    # C's 50.00 (41 days) is 31–60; D was voided. Owed 200.00.
    assert (row["current"], row["days_31_60"], row["days_61_90"], row["over_90"], row["credit"], row["owed"]) == \
        ("0.00", "50.00", "150.00", "0.00", "0.00", "200.00")
    assert r.json["totals"]["owed"] == "200.00"
    sep = manager.get("/api/v1/companies/ageing?as_of=2025-09-30").json["companies"][0]
    # At the end of September: A 100.00 is 51 days old, B 200.00 15 days; nothing paid yet.
    assert (sep["current"], sep["days_31_60"], sep["owed"]) == ("200.00", "100.00", "300.00")
    csv = manager.get("/api/v1/companies/ageing?as_of=2025-11-30&format=csv")
    assert csv.status_code == 200 and "华为" in csv.data.decode("utf-8-sig")
    for bad in ("as_of=2999-01-01", "as_of=yesterday", "format=pdf", "as_of=2025-02-30"):
        assert manager.get(f"/api/v1/companies/ageing?{bad}").status_code == 422, bad


# --- pages ---------------------------------------------------------------------------------------

def test_the_till_offers_sign_for_bill_to_a_signer_and_the_receipt_says_it(app, corp, cashier):
    ui = ui_login(app, "cashier", lang="en")
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
    mobile = corp["signer"]["mobile"]
    form = {"card_code": mobile, "store_code": "BJ01", "items": "STEAK 1", "till_token": token,
            "pay_method": "company_account", "csrf_token": ui.csrf}
    quote = ui.post("/till", {**form, "action": "quote"})
    page = text(quote)
    assert quote.status_code == 200, page[:2000]
    assert "Charge to company account" in page and "华为: 500.00 available to sign" in page
    assert "company rate" in page  # 198.00 → 168.30
    closed = ui.post("/till", {**form, "action": "close"})
    assert closed.status_code == 302, text(closed)[:3000]
    receipt = text(ui.get(closed.location))
    assert "Charged to the account of 华为" in receipt and "Signature" in receipt and "168.30" in receipt
    assert account(corp["manager"], corp["company"])["owed"] == "168.30"
    # Two more STEAKs (336.60) are over the 331.70 left: said beside "Paid by", nothing closed.
    token = re.search(r'name="till_token" value="([0-9a-f]+)"', text(ui.get("/till")))[1]
    over = ui.post("/till", {**form, "items": "STEAK 2", "till_token": token, "action": "close"})
    assert over.status_code == 422
    assert re.search(r'id="e-tenders">Over the company&#39;s credit limit: 331.70 is available', text(over))
    assert account(corp["manager"], corp["company"])["owed"] == "168.30"
    # A colleague who is not a signer is not offered it.
    other = ui.post("/till", {**form, "card_code": corp["other"]["mobile"], "action": "quote"})
    assert "Charge to company account" not in text(other)


def test_the_account_pages_for_a_manager(app, corp, history):
    ui = ui_login(app, "manager", lang="en")
    listing = text(ui.get("/corporate/"))
    assert "华为" in listing and "1,000.00" in listing or "1000.00" in listing
    page = ui.get(f"/corporate/{corp['company']}")
    assert page.status_code == 200 and "张总" in text(page) and 'id="owed">200.00' in text(page)
    bad = ui.post(f"/corporate/{corp['company']}/payments", {"amount": "999.00", "method": "cash"})
    assert bad.status_code == 422 and "owes 200.00" in text(bad)
    ok = ui.post(f"/corporate/{corp['company']}/payments", {"amount": "20.00", "method": "cash"})
    assert ok.status_code == 302
    assert account(corp["manager"], corp["company"])["owed"] == "180.00"
    st = ui.get(f"/corporate/{corp['company']}/statements/2025/9")
    assert st.status_code == 200 and 'id="closing">300.00' in text(st)
    assert ui.get(f"/corporate/{corp['company']}/statements/2025/9?format=pdf").data.startswith(b"%PDF")
    ageing = ui.get("/corporate/ageing?as_of=2025-11-30")
    assert ageing.status_code == 200 and "150.00" in text(ageing)
    assert ui.get("/corporate/ageing?as_of=nonsense").status_code == 422


def test_crm_audit_names_an_account_that_does_not_add_up(app, corp, checkout):
    from sqlalchemy import text as sql
    bill = signed(checkout, corp["signer"], [("TEA", 5)])  # 85.00
    assert bill.status_code == 201 and audit_problems(app) == []
    with app.app_context():  # a hand edit behind the ledger's back
        db.session.execute(sql("UPDATE company_accounts SET owed = owed + 10000"))
        db.session.execute(sql("UPDATE company_account_entries SET amount = 8000 WHERE kind = 'charge'"))
        db.session.commit()
    problems = audit_problems(app)
    assert any("owed 185.00 but its entries add up to 80.00" in p for p in problems), problems
    assert any(f"checkout {bill.json['id']}: company account tender 85.00 but charge 80.00" in p
               for p in problems), problems
