"""Adversarial review of issue 17 points 5 (the prepaid-card report, 单用途商业预付卡) and 6 (KPI
targets): hostile input never answers 500, the figures hold to the fen against the wallet
liability, the definitions are the spec's, and the pages say what is wrong next to the field."""
import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import SYSTEM, audit_problems, in_app
from tests.test_ui import text, ui_login

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(*parts):
    return datetime(*parts, tzinfo=SHANGHAI)


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def issued_at(request, clock):
    """Name it before the API fixtures: the clock stands at the test's last moment (Shanghai) while
    their tokens are issued, so going back in time keeps them valid under any CRM_TEST_CLOCK."""
    return clock.freeze(at(*request.param))


# --- hostile input: a 422 (or 404 for a path that is no route), never a 500 -----------------------

GETS = [
    "/api/v1/reports/prepaid?year=99999999999999999999", "/api/v1/reports/prepaid?year=0",
    "/api/v1/reports/prepaid?year=10000", "/api/v1/reports/prepaid?year=2026.5", "/api/v1/reports/prepaid?year=",
    "/api/v1/reports/prepaid?year=2026&store_code=%00", "/api/v1/reports/prepaid?year=2026&store_code=NOPE",
    "/api/v1/reports/prepaid?year=2026&store_code=%20", "/api/v1/reports/prepaid?year=2026&format=%00",
    "/api/v1/kpi-targets/BJ01/99999999999999999999", "/api/v1/kpi-targets/BJ01/0", "/api/v1/kpi-targets/BJ01/10000",
    "/api/v1/kpi-targets/%00/2026", "/api/v1/kpi-targets/NOPE/2026", "/api/v1/kpi-targets/BJ01/-1",
    "/api/v1/reports/kpis?store_code=BJ01&from=9999-12-01&to=9999-12-31",
    "/api/v1/reports/kpis?store_code=%00&from=2026-01-01&to=2026-01-31",
]


@pytest.mark.parametrize("path", GETS)
def test_hostile_queries_are_refused_without_a_500(manager, stores, path):
    r = manager.get(path)
    assert r.status_code in (404, 422), (r.status_code, r.data[:300])
    assert r.is_json and "error" in r.json


BODIES = [
    ({"month": 1, "new_members": 1.5}, "new_members"), ({"month": 1, "new_members": "5"}, "new_members"),
    ({"month": 1, "new_members": 10**30}, "new_members"), ({"month": 1, "spend_per_head": 12.5}, "spend_per_head"),
    ({"month": 1, "spend_per_head": "12.345"}, "spend_per_head"),
    ({"month": 1, "spend_per_head": "1e5"}, "spend_per_head"),
    ({"month": 1, "spend_per_head": "NaN"}, "spend_per_head"),
    ({"month": 1, "spend_per_head": "9" * 400}, "spend_per_head"),
    ({"month": 1, "spend_per_head": "\x00"}, "spend_per_head"),
    ({"month": 1, "card_issue_rate": "sNaN"}, "card_issue_rate"),
    ({"month": 1, "card_issue_rate": "--5"}, "card_issue_rate"),
    ({"month": 1, "card_issue_rate": "9" * 5000}, "card_issue_rate"),
    ({"month": 1, "card_issue_rate": True}, "card_issue_rate"),
    ({"month": 1, "stored_value_growth": "1e400"}, "stored_value_growth"),
    ({"month": 1, "stored_value_growth": "99999999.99"}, "stored_value_growth"),
    ({"month": 1.0}, "month"), ({"month": "1"}, "month"), ({"month": 10**30}, "month"),
    ({"month": 1, "extra": 1}, "extra"),
]


@pytest.mark.parametrize("line, field", BODIES)
def test_hostile_targets_are_422_naming_the_field(manager, stores, line, field):
    r = manager.put("/api/v1/kpi-targets/BJ01/2026", json={"months": [line]})
    assert r.status_code == 422, r.json
    assert field in str(r.json["error"]["details"])


# --- KPI targets ----------------------------------------------------------------------------------

def test_a_bad_target_in_the_api_names_its_month(manager, stores):
    """The second month sent (March) has a bad amount: the error's field says which line, as the
    form shows it beside March's cell, not just the figure's name (12 cells share it)."""
    r = manager.put("/api/v1/kpi-targets/BJ01/2026", json={"months": [{"month": 2, "new_members": 7},
                                                                     {"month": 3, "spend_per_head": "12.345"}]})
    assert r.status_code == 422
    assert r.json["error"]["code"] == "invalid_target"
    assert r.json["error"]["details"]["field"] == "months.1.spend_per_head"


@pytest.mark.parametrize("value", ["１２", "1e2", "1E+1", "12.5\u0663", "0x10", "12_5"])
def test_a_rate_is_written_in_plain_digits(manager, stores, value):
    """"１２" (full-width, from an IME) and "1e2" were stored as 12.00 % and 100.00 %: a rate is
    written as the hint shows it, 12.50, as money already is."""
    r = manager.put("/api/v1/kpi-targets/BJ01/2026", json={"months": [{"month": 1, "card_issue_rate": value}]})
    assert r.status_code == 422, r.json
    assert r.json["error"]["details"]["field"] == "months.0.card_issue_rate"
    assert manager.get("/api/v1/kpi-targets/BJ01/2026").json["months"][0]["card_issue_rate"] is None


def _top_up(cashier, member_id, amount, store="BJ01"):
    r = cashier.post(f"/api/v1/members/{member_id}/wallet/top-ups",
                     json={"store_code": store, "amount": amount, "payment_method": "cash"})
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("issued_at", [(2026, 4, 2, 10)], indirect=True)
def test_stored_value_growth_is_a_percentage_as_the_spec_defines(issued_at, app, staff, manager, cashier,
                                                                 member_factory, clock):
    """Stored-value growth = top-up principal this month ÷ the same figure in the month compared
    with − 1 (docs/rules.md, the spec), so its target is a per cent (over 100 is a doubling and
    more) and the gap is in percentage points.
    March 2026 at BJ01: 1,500.00 topped up; February 1,000.00; March 2025 400.00.
      month on month 1500 ÷ 1000 − 1 = 50.00 %, target 40.00 → gap +10.00 points
      year on year  1500 ÷  400 − 1 = 275.00 %, target 40.00 → gap +235.00 points"""
    clock.freeze(at(2025, 3, 5, 10))
    a = member_factory(store_code="BJ01")
    _top_up(cashier, a["id"], "400.00")
    clock.freeze(at(2026, 2, 10, 10))
    _top_up(cashier, a["id"], "1000.00")
    clock.freeze(at(2026, 3, 10, 10))
    _top_up(cashier, a["id"], "1500.00")
    clock.freeze(at(2026, 4, 2, 10))
    r = manager.put("/api/v1/kpi-targets/BJ01/2026", json={"months": [{"month": 3, "stored_value_growth": "40.00"},
                                                                     {"month": 4, "stored_value_growth": "150.00"}]})
    assert r.status_code == 200, r.json
    assert [m["stored_value_growth"] for m in r.json["months"][2:4]] == ["40.00", "150.00"]  # 150 %: allowed
    k = manager.get("/api/v1/reports/kpis?store_code=BJ01&from=2026-03-01&to=2026-03-31").json
    assert k["stored_value_growth"] == "50.00"  # the KPI itself, against February
    rows = {row["key"]: row for row in k["targets"]["rows"]}
    mom, yoy = rows["stored_value_growth_month_on_month"], rows["stored_value_growth_year_on_year"]
    assert (mom["target"], mom["actual"], mom["gap"], mom["this_period"], mom["compared_with"]) == \
        ("40.00", "50.00", "10.00", "1500.00", "1000.00")
    assert (yoy["target"], yoy["actual"], yoy["gap"], yoy["this_period"], yoy["compared_with"]) == \
        ("40.00", "275.00", "235.00", "1500.00", "400.00")
    # April: nothing topped up against March's 1,500.00: −100.00 %, gap −250.00 points
    k = manager.get("/api/v1/reports/kpis?store_code=BJ01&from=2026-04-01&to=2026-04-30").json
    mom = next(r for r in k["targets"]["rows"] if r["key"] == "stored_value_growth_month_on_month")
    assert (mom["actual"], mom["gap"]) == ("-100.00", "-250.00")
    # nothing to compare with (April 2025 had no top-up): no growth, no gap
    yoy = next(r for r in k["targets"]["rows"] if r["key"] == "stored_value_growth_year_on_year")
    assert (yoy["actual"], yoy["gap"], yoy["compared_with"]) == (None, None, "0.00")

    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/reports/?store_code=BJ01&from=2026-03-01&to=2026-03-31"))
    assert "235.00" in page and "275.00" in page
    form = text(ui.get("/reports/targets?store_code=BJ01&year=2026"))
    assert 'name="stored_value_growth_3" value="40.00"' in form


@pytest.mark.parametrize("value", ["-5.00", "12.345", "abc"])
def test_a_growth_target_is_a_percentage_of_0_or_more(manager, stores, value):
    r = manager.put("/api/v1/kpi-targets/BJ01/2026", json={"months": [{"month": 1, "stored_value_growth": value}]})
    assert r.status_code == 422, r.json
    assert r.json["error"]["details"]["field"] == "months.0.stored_value_growth"


def test_the_kpi_page_of_a_month_in_2000_shows_its_figures(app, staff, manager, stores):
    """The first year reports cover: the API answers 200 with the targets, but the page fell over
    on its 12-month chart, which reached back into 1999 (a bare 422 page "Give a year from 2001")."""
    manager.put("/api/v1/kpi-targets/BJ01/2000", json={"months": [{"month": 3, "new_members": 4}]})
    ui = ui_login(app, staff["manager"], lang="en")
    for query in ("from=2000-01-01&to=2000-01-31", "from=2000-03-01&to=2000-03-31"):
        r = ui.get(f"/reports/?store_code=BJ01&{query}")
        assert r.status_code == 200, text(r)[:2000]
        assert 'data-key="new_members"' in text(r)
    assert "2000-03" in text(ui.get("/reports/?store_code=BJ01&from=2000-03-01&to=2000-03-31"))


# --- the prepaid-card report ----------------------------------------------------------------------

FIGURES = ("sold", "bonus_given", "spent", "refunded", "opening", "outstanding", "bonus_outstanding", "cards")


def _fen(text_):
    sign = -1 if text_.startswith("-") else 1
    yuan, _dot, cents = text_.lstrip("-").partition(".")
    return sign * (int(yuan) * 100 + int(cents))


@pytest.mark.parametrize("issued_at", [(2026, 1, 1, 0, 1)], indirect=True)
def test_the_chain_total_is_the_liability_through_imports_voids_merges_and_erasures(
        issued_at, app, manager, cashier, member_factory, catalogue, checkout, clock):
    """2025 (Asia/Shanghai), principal unless said:
    Q1 02-01       E brought in by the legacy import at HT01: 300.00 and 30.00 bonus
       03-31 23:30 A (BJ01) tops up 1,000.00 at BJ01 (15:30 UTC: Q1 either way)
    Q2 04-01 00:30 C (BJ01) tops up 2,000.00 at BJ02 (still March 31 in UTC)
       05-10       D (BJ02) tops up 500.00 at BJ01
       06-30 23:50 A pays a 156.00 bill at BJ02 from the wallet (no bonus to share)
    Q3 07-01 00:10 the bill is voided: 156.00 back at BJ02, in Q3 (Q2 as filed stays)
       08-10       D merged into A: 500.00 moves as transfers (no store)
       09-10       C erased (PIPL), the 2,000.00 refunded
    Q4 12-31 23:59 B (BJ02) tops up 100.00 at BJ02 (15:59 UTC)
    2026-01-01 00:00:30: B tops up 50.00 more, in no quarter of 2025.
    Chain:   sold    spent    refunded opening  outstanding           cards
      Q1   1000.00    0.00      0.00   300.00   1300.00 (bonus 30)    A, E         2
      Q2   2500.00  156.00      0.00     0.00   3644.00               A, C, D, E   4
      Q3      0.00 -156.00   2000.00     0.00   1800.00               A, E         2
      Q4    100.00    0.00      0.00     0.00   1900.00 (bonus 30)    A, B, E      3
    and 1,900.00 / 30.00 is the wallet liability at 2026-01-01 00:00:10."""
    from tests.test_legacy_import import HEADER, send
    clock.freeze(at(2025, 1, 5, 10))
    a, b = member_factory(store_code="BJ01"), member_factory(store_code="BJ02")
    c, d = member_factory(store_code="BJ01"), member_factory(store_code="BJ02")
    clock.freeze(at(2025, 2, 1, 10))
    row = {"mobile": "13799990001", "name": "老会员", "card_no": "88000001", "store_code": "HT01",
           "opening_principal": "300.00", "opening_bonus": "30.00"}
    job = send(manager, HEADER + "\n" + ",".join(row.get(col, "") for col in HEADER.split(",")) + "\n")
    assert job.status_code == 200 and job.json["status"] == "done", job.json
    clock.freeze(at(2025, 3, 31, 23, 30))
    _top_up(cashier, a["id"], "1000.00")
    clock.freeze(at(2025, 4, 1, 0, 30))
    _top_up(cashier, c["id"], "2000.00", store="BJ02")
    clock.freeze(at(2025, 5, 10, 12))
    _top_up(cashier, d["id"], "500.00")
    clock.freeze(at(2025, 6, 30, 23, 50))
    bill = checkout([("SALMON", 2), ("TEA", 1)], store_code="BJ02", member_id=a["id"], wallet_amount="156.00")
    assert bill.status_code == 201 and bill.json["wallet_principal"] == "156.00", bill.json
    clock.freeze(at(2025, 7, 1, 0, 10))
    r = manager.post(f"/api/v1/checkouts/{bill.json['id']}/void", json={"reason": "wrong member"})
    assert r.status_code == 201 and r.json["wallet_restored"] == "156.00", r.json
    clock.freeze(at(2025, 8, 10, 12))
    r = manager.post(f"/api/v1/members/{a['id']}/merge", json={"from_member_id": d["id"], "reason": "same guest"})
    assert r.status_code == 200 and r.json["moved"]["principal"] == "500.00", r.json
    clock.freeze(at(2025, 9, 10, 12))
    preview = manager.get(f"/api/v1/members/{c['id']}/erasure").json
    r = manager.post(f"/api/v1/members/{c['id']}/erasure", json={
        "reason": "会员书面要求删除", "wallet_rule": "refund",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200 and r.json["principal_refunded"] == "2000.00", r.json
    clock.freeze(at(2025, 12, 31, 23, 59))
    _top_up(cashier, b["id"], "100.00", store="BJ02")
    clock.freeze(at(2026, 1, 1, 0, 0, 10))
    liability = manager.get("/api/v1/reports/liability").json
    assert (liability["wallet_principal"], liability["wallet_bonus"]) == ("1900.00", "30.00")
    clock.freeze(at(2026, 1, 1, 0, 0, 30))
    _top_up(cashier, b["id"], "50.00", store="BJ02")
    assert audit_problems(app) == []

    report = manager.get("/api/v1/reports/prepaid?year=2025").json
    chain = [(q["total"]["sold"], q["total"]["spent"], q["total"]["refunded"], q["total"]["opening"],
              q["total"]["outstanding"], q["total"]["bonus_outstanding"], q["total"]["cards"])
             for q in report["quarters"]]
    assert chain == [("1000.00", "0.00", "0.00", "300.00", "1300.00", "30.00", 2),
                     ("2500.00", "156.00", "0.00", "0.00", "3644.00", "30.00", 4),
                     ("0.00", "-156.00", "2000.00", "0.00", "1800.00", "30.00", 2),
                     ("100.00", "0.00", "0.00", "0.00", "1900.00", "30.00", 3)]
    # Every store's outstanding moves by sold + opening − spent − refunded; the stores' cards add
    # up to the chain's; the stores' outstanding adds up to the chain's (transfers net to zero).
    before = {}
    for q in report["quarters"]:
        for row in q["stores"]:
            f = {k: _fen(row[k]) for k in FIGURES[:-1]}
            assert f["outstanding"] == before.get(row["store_code"], 0) + f["sold"] + f["opening"] - f["spent"] \
                - f["refunded"], (q["quarter"], row)
            before[row["store_code"]] = f["outstanding"]
        assert sum(_fen(r["outstanding"]) for r in q["stores"]) == _fen(q["total"]["outstanding"])
        assert sum(r["cards"] for r in q["stores"]) == q["total"]["cards"]
    q2 = {r["store_code"]: r for r in report["quarters"][1]["stores"]}
    assert (q2["BJ01"]["sold"], q2["BJ02"]["sold"], q2["BJ02"]["spent"]) == ("500.00", "2000.00", "156.00")
    assert report["quarters"][0]["stores"][2]["opening"] == "300.00"  # HT01, the hotel
    assert manager.get("/api/v1/reports/prepaid?year=2026").json["quarters"][0]["total"]["sold"] == "50.00"


@pytest.mark.parametrize("issued_at", [(2026, 6, 1, 10)], indirect=True)
def test_an_export_of_a_year_not_begun_still_has_its_header(issued_at, manager, stores, clock):
    """A year whose quarters have not begun: the file still names its columns (it was a BOM and an
    empty line), so a spreadsheet or a script reading it by column sees an empty report."""
    clock.freeze(at(2026, 6, 1, 10))
    r = manager.get("/api/v1/reports/prepaid?year=2027&format=csv")
    assert r.status_code == 200
    lines = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines == [["quarter", "store", *FIGURES]]


@pytest.mark.parametrize("issued_at", [(2025, 2, 11, 12)], indirect=True)
def test_a_store_name_a_spreadsheet_would_run_is_quoted_and_figures_are_numbers(issued_at, app, manager, stores,
                                                                              clock, cashier, member_factory):
    """A store named "=HYPERLINK(…)" is text in the CSV and in Excel (a leading '), while "-16.71"
    stays a figure; in Excel money is a number formatted #,##0.00 and cards a whole number."""
    from openpyxl import load_workbook

    from crm.stores import service
    in_app(app, service.create_store, SYSTEM, code="EVIL", name='=HYPERLINK("http://x","y")', kind="restaurant")
    clock.freeze(at(2025, 2, 10, 12))
    a = member_factory(store_code="EVIL")
    _top_up(cashier, a["id"], "1234.56", store="EVIL")
    clock.freeze(at(2025, 2, 11, 12))
    r = manager.get("/api/v1/reports/prepaid?year=2025&store_code=EVIL&format=csv")
    lines = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[1][:3] == ["2025 Q1", "'=HYPERLINK(\"http://x\",\"y\")", "1234.56"]
    book = load_workbook(io.BytesIO(manager.get("/api/v1/reports/prepaid?year=2025&format=xlsx").data))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    evil = next(row for row in sheet.iter_rows(min_row=2) if str(row[1].value).endswith('"y")'))
    assert evil[1].value.startswith("'=") and evil[1].data_type == "s"
    sold, cards = evil[header.index("sold")], evil[header.index("cards")]
    assert sold.value == 1234.56 and sold.number_format == "#,##0.00"
    assert cards.value == 1 and isinstance(cards.value, int)


@pytest.mark.parametrize("role", ["front_desk", "cashier", "marketing"])
def test_only_managers_see_the_prepaid_report_and_targets(app, login_api, staff, role):
    api = login_api(role)
    assert api.get("/api/v1/reports/prepaid?year=2025").status_code == 403
    assert api.get("/api/v1/kpi-targets/BJ01/2025").status_code == 403
    ui = ui_login(app, staff[role])
    for path in ("/reports/prepaid?year=2025", "/reports/targets?store_code=BJ01&year=2025"):
        assert ui.get(path).status_code == 403, path
    assert ui.post("/reports/targets", {"store_code": "BJ01", "year": "2025", "new_members_1": "3"}).status_code == 403


def test_the_admin_sees_them_too(app, login_api, staff):
    assert login_api("admin").get("/api/v1/reports/prepaid?year=2025").status_code == 200
    assert ui_login(app, staff["admin"]).get("/reports/targets?store_code=BJ01&year=2025").status_code == 200


def test_a_targets_form_sent_without_its_store_or_year_saves_nothing(app, staff, manager, stores):
    """The form's store and year are what the twelve months are saved to: a POST without them (a
    page cut short, a hand-made request) used the first store and this year, and every month it
    left out was cleared there; now it is a 422 naming the missing field."""
    from crm.core.timeutil import local_today
    year = in_app(app, local_today).year
    assert manager.put(f"/api/v1/kpi-targets/BJ01/{year}", json={"months": [{"month": 5, "new_members": 9}]}
                       ).status_code == 200
    ui = ui_login(app, staff["manager"], lang="en")
    for form, field in (({"year": str(year), "new_members_1": "3"}, "store_code"),
                        ({"store_code": "BJ01", "new_members_1": "3"}, "year")):
        r = ui.post("/reports/targets", form)
        assert r.status_code == 422, (form, r.status_code)
        assert f'id="e-{field}"' in text(r)
        assert 'name="new_members_1" value="3"' in text(r)  # what was typed stays in its cell
    months = manager.get(f"/api/v1/kpi-targets/BJ01/{year}").json["months"]
    assert months[4]["new_members"] == 9 and months[0]["new_members"] is None


@pytest.mark.parametrize("issued_at", [(2025, 6, 1, 10)], indirect=True)
def test_a_closed_store_keeps_its_row_and_its_targets(issued_at, app, manager, cashier, member_factory, clock):
    """BJ02 sold 800.00 in Q1 2025 and then closed: its row stays in the report (the chain total
    still counts its money, and the rows still add up to it), and its targets can still be read."""
    from crm.stores import service
    clock.freeze(at(2025, 2, 1, 10))
    _top_up(cashier, member_factory(store_code="BJ02")["id"], "800.00", store="BJ02")
    clock.freeze(at(2025, 6, 1, 10))
    in_app(app, service.update_store, SYSTEM, "BJ02", active=False)
    q1 = manager.get("/api/v1/reports/prepaid?year=2025").json["quarters"][0]
    bj02 = next(r for r in q1["stores"] if r["store_code"] == "BJ02")
    assert (bj02["sold"], bj02["outstanding"], bj02["cards"]) == ("800.00", "800.00", 1)
    assert q1["total"]["outstanding"] == "800.00"
    assert manager.get("/api/v1/reports/prepaid?year=2025&store_code=BJ02").status_code == 200
    assert manager.get("/api/v1/kpi-targets/BJ02/2025").status_code == 200


@pytest.mark.parametrize("issued_at", [(2026, 4, 2, 10)], indirect=True)
def test_targets_beside_part_of_a_past_month_say_their_actuals_are_the_whole_months(
        issued_at, app, staff, manager, member_factory, clock):
    """KPIs of 1–15 March with targets beside them: the figures above count the fortnight (1 new
    member), the targets table the whole month (2): the page says so, rather than two different
    'new members' side by side unexplained. Month to date (the page's default) needs no note."""
    clock.freeze(at(2026, 3, 10, 10))
    member_factory(store_code="BJ01")
    clock.freeze(at(2026, 3, 20, 10))
    member_factory(store_code="BJ01")
    clock.freeze(at(2026, 4, 2, 10))
    manager.put("/api/v1/kpi-targets/BJ01/2026", json={"months": [{"month": 3, "new_members": 3},
                                                                 {"month": 4, "new_members": 3}]})
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/reports/?store_code=BJ01&from=2026-03-01&to=2026-03-15"))
    assert "the whole month" in page
    for query in ("from=2026-03-01&to=2026-03-31", "from=2026-04-01&to=2026-04-02"):
        assert "the whole month" not in text(ui.get(f"/reports/?store_code=BJ01&{query}")), query


def test_targets_answer_with_the_store_code_as_stored(manager, stores):
    """A path with "bj01" finds BJ01 (codes are matched without case); the answer names it BJ01, as
    the KPI API's targets do, not as typed."""
    r = manager.put("/api/v1/kpi-targets/bj01/2026", json={"months": [{"month": 1, "new_members": 4}]})
    assert r.status_code == 200 and r.json["store_code"] == "BJ01"
    r = manager.get("/api/v1/kpi-targets/%20bj01%20/2026")
    assert r.status_code == 200 and r.json["store_code"] == "BJ01" and r.json["months"][0]["new_members"] == 4


def test_two_saves_of_the_same_months_in_opposite_orders_do_not_deadlock(app, backend, manager, stores):
    """Manager A sends March then April, manager B April then March, at once. Each month's row is
    locked as it is saved, so A held March and waited for April while B held April and waited for
    March: PostgreSQL's deadlock detector failed one of them after deadlock_timeout (1 s) and the
    unit of work ran it again. Saved in month order, B simply waits for A: both land at once (200),
    the last one's figures standing."""
    if backend != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    import threading
    import time

    from sqlalchemy import text as sql

    from crm.extensions import db
    from tests.test_races import api_call
    assert manager.put("/api/v1/kpi-targets/BJ01/2031", json={"months": [
        {"month": 3, "new_members": 1}, {"month": 4, "new_members": 1}]}).status_code == 200
    a = {"months": [{"month": 3, "new_members": 30}, {"month": 4, "new_members": 40}]}
    b = {"months": [{"month": 4, "new_members": 44}, {"month": 3, "new_members": 33}]}
    results, threads = [], []
    with app.app_context():
        holder = db.engine.connect()
        hold = holder.begin()
        holder.execute(sql("SELECT 1 FROM kpi_targets WHERE year = 2031 AND month = 3 FOR UPDATE"))

        def waiting():
            with db.engine.connect() as conn:
                return conn.execute(sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND datname = current_database()")).scalar()
        # A queues on the held March row; then B (April first, before the fix) queues on March too.
        for n, body in enumerate((a, b), 1):
            t = threading.Thread(target=lambda body=body: results.append(
                api_call(app, manager.token, "PUT", "/api/v1/kpi-targets/BJ01/2031", body)))
            t.start()
            threads.append(t)
            deadline = time.monotonic() + 10
            while waiting() < n and time.monotonic() < deadline:
                time.sleep(0.02)
            assert waiting() >= n
        released = time.monotonic()
        hold.rollback()
        holder.close()
        [t.join() for t in threads]
        took = time.monotonic() - released
    assert [status for status, _code, _body in results] == [200, 200], results
    assert took < 0.9, f"{took:.2f} s: a deadlock was detected and a save run again"
    months = manager.get("/api/v1/kpi-targets/BJ01/2031").json["months"]
    assert (months[2]["new_members"], months[3]["new_members"]) == (33, 44)  # B came last


@pytest.mark.parametrize("path, field", [
    ("/reports/prepaid?year=2025&store_code=NOPE", "store_code"), ("/reports/prepaid?year=10000", "year"),
    ("/reports/targets?store_code=NOPE&year=2025", "store_code"),
    ("/reports/targets?store_code=BJ01&year=99999999999999999999", "year"),
    ("/reports/targets?store_code=BJ01&year=1999", "year"),
])
def test_a_bad_query_is_shown_beside_its_field(app, staff, path, field):
    r = ui_login(app, staff["manager"], lang="en").get(path)
    assert r.status_code == 422
    assert f'id="e-{field}"' in text(r)


def test_two_managers_editing_different_months_on_the_form_both_keep_their_targets(app, staff, manager, stores):
    """Two managers open BJ01's targets for 2026 at once; one sets March's new members to 30, the
    other April's to 40, and both save. The form sent all twelve months as the page showed them, so
    the second save put March back to empty: the first manager's target was lost without a word.
    A cell the manager did not change keeps what is saved now."""
    import re
    manager.put("/api/v1/kpi-targets/BJ01/2026", json={"months": [{"month": 5, "spend_per_head": "80.00"}]})
    first, second = (ui_login(app, staff["manager"], lang="en") for _ in range(2))

    def form_of(page):  # every input of the page's targets form, as a browser would send it
        body = text(page).split('<form method="post" novalidate', 1)[1].split("</form>", 1)[0]
        return {name: value for name, value in re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', body)}
    a = form_of(first.get("/reports/targets?store_code=BJ01&year=2026"))
    b = form_of(second.get("/reports/targets?store_code=BJ01&year=2026"))
    assert a["spend_per_head_5"] == "80.00"
    a["new_members_3"], b["new_members_4"] = "30", "40"
    assert first.post("/reports/targets", a).status_code == 302
    assert second.post("/reports/targets", b).status_code == 302
    months = manager.get("/api/v1/kpi-targets/BJ01/2026").json["months"]
    assert (months[2]["new_members"], months[3]["new_members"], months[4]["spend_per_head"]) == (30, 40, "80.00")
    # a cell cleared on purpose is cleared
    b = form_of(second.get("/reports/targets?store_code=BJ01&year=2026"))
    b["spend_per_head_5"] = ""
    assert second.post("/reports/targets", b).status_code == 302
    months = manager.get("/api/v1/kpi-targets/BJ01/2026").json["months"]
    assert (months[2]["new_members"], months[4]["spend_per_head"]) == (30, None)


def test_two_managers_editing_different_cells_of_one_month_both_keep_them(app, staff, manager, stores):
    """The same race within one month: one manager sets March's new members, the other March's
    spend per head, from pages opened together. Each save writes only the cells its manager
    changed, so March ends with both (before, the second save wrote back the first cell as its
    page had shown it: empty)."""
    import re
    first, second = (ui_login(app, staff["manager"], lang="en") for _ in range(2))

    def form_of(page):
        body = text(page).split('<form method="post" novalidate', 1)[1].split("</form>", 1)[0]
        return {name: value for name, value in re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', body)}
    a = form_of(first.get("/reports/targets?store_code=BJ01&year=2026"))
    b = form_of(second.get("/reports/targets?store_code=BJ01&year=2026"))
    a["new_members_3"], b["spend_per_head_3"] = "30", "85.00"
    assert first.post("/reports/targets", a).status_code == 302
    assert second.post("/reports/targets", b).status_code == 302
    march = manager.get("/api/v1/kpi-targets/BJ01/2026").json["months"][2]
    assert (march["new_members"], march["spend_per_head"]) == (30, "85.00")


def test_a_bad_cell_in_a_month_the_page_sent_alone_is_named_in_its_own_cell(app, staff, stores):
    """With only the changed months sent, a bad value in June (the first and only month sent) is
    shown beside June's cell, not January's."""
    import re
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/reports/targets?store_code=BJ01&year=2026"))
    body = page.split('<form method="post" novalidate', 1)[1].split("</form>", 1)[0]
    form = dict(re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', body))
    form["member_share_6"] = "101"
    r = ui.post("/reports/targets", form)
    assert r.status_code == 422
    cell = re.search(r'<td class="has-error"><input name="([a-z_]+_\d+)"', text(r))
    assert cell and cell.group(1) == "member_share_6"
    assert 'name="was_member_share_6" value=""' in text(r)  # what the page showed goes round again


@pytest.mark.parametrize("issued_at", [(2025, 9, 1, 10)], indirect=True)
def test_a_void_after_a_forfeit_erasure_is_paid_back_and_the_chain_owes_nothing(
        issued_at, app, manager, cashier, member_factory, catalogue, checkout, clock):
    """Q1 2025: A (BJ01) tops up 1,000.00 at BJ01 and pays a 156.00 bill at BJ02 from it.
    Q2: A is erased and gives the money up (forfeit): 844.00 written off, counted as refunded.
    Q3: the Q1 bill is voided at BJ02: 156.00 comes back to a wallet nobody can reach and is paid
    back at once (refunded). Chain: Q1 sold 1000, spent 156, owes 844; Q2 refunded 844, owes 0;
    Q3 spent −156, refunded 156, owes 0: the liability, 0.00."""
    clock.freeze(at(2025, 1, 5, 10))
    a = member_factory(store_code="BJ01")
    _top_up(cashier, a["id"], "1000.00")
    clock.freeze(at(2025, 3, 31, 23, 45))
    bill = checkout([("SALMON", 2), ("TEA", 1)], store_code="BJ02", member_id=a["id"], wallet_amount="156.00")
    assert bill.status_code == 201, bill.json
    clock.freeze(at(2025, 4, 1, 0, 15))
    preview = manager.get(f"/api/v1/members/{a['id']}/erasure").json
    r = manager.post(f"/api/v1/members/{a['id']}/erasure", json={
        "reason": "会员书面要求删除", "wallet_rule": "forfeit",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200 and r.json["principal_forfeited"] == "844.00", r.json
    clock.freeze(at(2025, 7, 1, 0, 5))
    r = manager.post(f"/api/v1/checkouts/{bill.json['id']}/void", json={"reason": "wrong bill"})
    assert r.status_code == 201 and r.json["wallet_paid_back"] == "156.00", r.json
    clock.freeze(at(2025, 9, 1, 10))
    assert audit_problems(app) == []
    report = manager.get("/api/v1/reports/prepaid?year=2025").json
    assert [(q["total"]["sold"], q["total"]["spent"], q["total"]["refunded"], q["total"]["outstanding"],
             q["total"]["cards"]) for q in report["quarters"]] == [
        ("1000.00", "156.00", "0.00", "844.00", 1), ("0.00", "0.00", "844.00", "0.00", 0),
        ("0.00", "-156.00", "156.00", "0.00", 0)]
    assert manager.get("/api/v1/reports/liability").json["wallet_principal"] == "0.00"
