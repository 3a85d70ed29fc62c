"""The prepaid-card report (单用途商业预付卡): stored value sold, spent, refunded and outstanding per
quarter and store, with the cards holding a balance, worked by hand over one year."""
import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import audit_problems
from tests.test_ui import text, ui_login

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIGURES = ("sold", "bonus_given", "spent", "refunded", "opening", "outstanding", "bonus_outstanding", "cards")


def at(*parts):
    return datetime(*parts, tzinfo=SHANGHAI)


def figures(*values):
    return dict(zip(FIGURES, values, strict=True))


ZERO = figures("0.00", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00", 0)


@pytest.fixture
def year_of_stored_value(app, clock, login_api, catalogue, member_factory, checkout):
    """2025 at two restaurants (Asia/Shanghai):
    Q1 2-10  A (joined at BJ01) tops up 5,000.00 at BJ01: bonus 600.00 (the seed tier).
    Q2 4-01 00:30 local (still March 31 in UTC) B (joined at BJ02) tops up 1,000.00 at BJ02: no bonus.
    Q2 5-10  A pays a 156.00 bill at BJ02 from stored value: bonus part 156 × 600 / 5,600 = 16.71,
             principal 139.29.
    Q3 8-01  that bill is voided: 139.29 principal and 16.71 bonus come back, at BJ02.
    Q4 11-20 A pays 20.00 at BJ01: bonus 20 × 600 / 5,600 = 2.14, principal 17.86.
    Q4 11-25 B's 1,000.00 is refunded at BJ02."""
    cashier, manager = login_api("cashier"), login_api("manager")
    clock.freeze(at(2025, 1, 5, 10))
    a = member_factory(store_code="BJ01")
    b = member_factory(store_code="BJ02")

    def top_up(member, store, amount):
        r = cashier.post(f"/api/v1/members/{member['id']}/wallet/top-ups",
                         json={"store_code": store, "amount": amount, "payment_method": "wechat"})
        assert r.status_code == 201, r.json
        return r.json

    clock.freeze(at(2025, 2, 10, 12))
    assert top_up(a, "BJ01", "5000.00")["bonus_added"] == "600.00"
    clock.freeze(at(2025, 4, 1, 0, 30))
    assert top_up(b, "BJ02", "1000.00")["bonus_added"] == "0.00"
    clock.freeze(at(2025, 5, 10, 19))
    bill = checkout([("SALMON", 2), ("TEA", 1)], store_code="BJ02", member_id=a["id"], wallet_amount="156.00")
    assert bill.status_code == 201, bill.json
    assert (bill.json["wallet_principal"], bill.json["wallet_bonus"]) == ("139.29", "16.71")
    clock.freeze(at(2025, 8, 1, 11))
    r = manager.post(f"/api/v1/checkouts/{bill.json['id']}/void", json={"reason": "wrong member"})
    assert r.status_code == 201 and r.json["wallet_restored"] == "156.00", r.json
    clock.freeze(at(2025, 11, 20, 13))
    tea = checkout([("TEA", 1)], store_code="BJ01", member_id=a["id"], wallet_amount="20.00")
    assert (tea.json["wallet_principal"], tea.json["wallet_bonus"]) == ("17.86", "2.14"), tea.json
    clock.freeze(at(2025, 11, 25, 15))
    r = manager.post(f"/api/v1/members/{b['id']}/wallet/refunds", json={"store_code": "BJ02", "reason": "moving"})
    assert r.status_code == 201 and r.json["refunded_principal"] == "1000.00", r.json
    clock.freeze(at(2026, 1, 10, 9))
    assert audit_problems(app) == []
    return manager


def _cells(report):
    """{(quarter, store code or 'chain'): figures}."""
    out = {}
    for q in report["quarters"]:
        for row in q["stores"]:
            out[(q["quarter"], row["store_code"])] = {k: row[k] for k in FIGURES}
        if q["total"] is not None:
            out[(q["quarter"], "chain")] = q["total"]
    return out


def test_each_cell_by_hand(year_of_stored_value):
    manager = year_of_stored_value
    r = manager.get("/api/v1/reports/prepaid?year=2025")
    assert r.status_code == 200, r.json
    assert [(q["quarter"], q["from"], q["to"]) for q in r.json["quarters"]] == [
        (1, "2025-01-01", "2025-03-31"), (2, "2025-04-01", "2025-06-30"), (3, "2025-07-01", "2025-09-30"),
        (4, "2025-10-01", "2025-12-31")]
    cells = _cells(r.json)
    #                     sold       bonus     spent      refunded   opening  outstanding  bonus out  cards
    assert cells == {
        (1, "BJ01"): figures("5000.00", "600.00", "0.00", "0.00", "0.00", "5000.00", "600.00", 1),
        (1, "BJ02"): ZERO, (1, "HT01"): ZERO,
        (1, "chain"): figures("5000.00", "600.00", "0.00", "0.00", "0.00", "5000.00", "600.00", 1),
        (2, "BJ01"): figures("0.00", "0.00", "0.00", "0.00", "0.00", "5000.00", "600.00", 1),
        # B's top-up at 00:30 on April 1 is Q2 where the chain is, though it was still March in UTC
        (2, "BJ02"): figures("1000.00", "0.00", "139.29", "0.00", "0.00", "860.71", "-16.71", 1),
        (2, "HT01"): ZERO,
        (2, "chain"): figures("1000.00", "0.00", "139.29", "0.00", "0.00", "5860.71", "583.29", 2),
        (3, "BJ01"): figures("0.00", "0.00", "0.00", "0.00", "0.00", "5000.00", "600.00", 1),
        # the void is counted when and where it happened: Q2 as filed stays as filed
        (3, "BJ02"): figures("0.00", "0.00", "-139.29", "0.00", "0.00", "1000.00", "0.00", 1),
        (3, "HT01"): ZERO,
        (3, "chain"): figures("0.00", "0.00", "-139.29", "0.00", "0.00", "6000.00", "600.00", 2),
        (4, "BJ01"): figures("0.00", "0.00", "17.86", "0.00", "0.00", "4982.14", "597.86", 1),
        (4, "BJ02"): figures("0.00", "0.00", "0.00", "1000.00", "0.00", "0.00", "0.00", 0),
        (4, "HT01"): ZERO,
        (4, "chain"): figures("0.00", "0.00", "17.86", "1000.00", "0.00", "4982.14", "597.86", 1),
    }
    liability = manager.get("/api/v1/reports/liability").json  # what is owed now, nothing since
    assert (liability["wallet_principal"], liability["wallet_bonus"]) == ("4982.14", "597.86")

    one = manager.get("/api/v1/reports/prepaid?year=2025&store_code=BJ02").json
    assert one["store_code"] == "BJ02" and all(q["total"] is None for q in one["quarters"])
    assert _cells(one) == {k: v for k, v in cells.items() if k[1] == "BJ02"}


def test_download_and_page(app, staff, year_of_stored_value):
    manager = year_of_stored_value
    r = manager.get("/api/v1/reports/prepaid?year=2025&format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[0] == ["quarter", "store", *FIGURES]
    assert ["2025 Q4", "Total", "0.00", "0.00", "17.86", "1000.00", "0.00", "4982.14", "597.86", "1"] in lines
    assert len(lines) == 1 + 4 * 4  # three stores and the chain, four quarters
    xlsx = manager.get("/api/v1/reports/prepaid?year=2025&store_code=BJ01&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"

    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/reports/prepaid?year=2025"))
    assert "Prepaid cards" in page and "2025 Q3" in page and "-139.29" in page and "Chain total" in page
    assert 'href="/reports/prepaid"' in text(ui.get("/reports/rfm"))  # a tab beside Liability
    download = ui.get("/reports/prepaid?year=2025&store_code=BJ02&format=csv")
    assert download.status_code == 200 and "860.71" in download.get_data(as_text=True)
    assert ui.get("/reports/prepaid").status_code == 302  # opens on this year
    bad = ui.get("/reports/prepaid?year=1999")
    assert bad.status_code == 422 and 'id="e-year"' in text(bad)
    assert ui.get("/reports/liability/download?format=xlsx").data[:2] == b"PK"  # the liability page's download


@pytest.mark.parametrize("query", ["year=1999", "year=abc", "year=2101", "", "year=2025&format=pdf",
                                   "year=2025&store_code=NOPE"])
def test_bad_queries_are_422(login_api, stores, query):
    r = login_api("manager").get(f"/api/v1/reports/prepaid?{query}")
    assert r.status_code == 422, r.json


def test_managers_only(app, login_api, staff):
    assert login_api("cashier").get("/api/v1/reports/prepaid?year=2025").status_code == 403
    assert ui_login(app, staff["cashier"]).get("/reports/prepaid?year=2025").status_code == 403


def test_a_year_not_begun_has_no_quarters(login_api, stores, clock):
    clock.freeze(at(2026, 3, 31, 23, 59))
    r = login_api("manager").get("/api/v1/reports/prepaid?year=2026")
    assert [q["quarter"] for q in r.json["quarters"]] == [1]
    assert login_api("manager").get("/api/v1/reports/prepaid?year=2027").json["quarters"] == []
