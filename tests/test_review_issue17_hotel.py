"""Adversarial review of issue 17.1 (hotel stays in the programme) and 17.2 (the front desk)."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import audit_problems
from tests.test_reports import post_csv
from tests.test_stay_points import IMPORT, _balance, _days, _stay

NEW_YEARS_EVE = datetime(2026, 12, 31, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def gold(login_api):
    """Reached at 2000.00 of spend over the window, ×1.5 points (as tests/test_stay_points.py)."""
    r = login_api("admin").post("/api/v1/levels", json={"code": "gold", "name": "金卡", "rank": 1,
                                                       "points_multiplier": "1.50", "upgrade_spend": "2000.00"})
    assert r.status_code == 201, r.json
    return r.json


# --- Figures at the edges ---------------------------------------------------------------------

def test_a_unit_boundary_fb_only_and_day_use(app, desk, member_factory, store_today):
    m = member_factory()
    # 9.99: no full ten, 0 points, nothing written.
    r = _stay(desk, store_today, stay_no="B1", member_id=m["id"], room_revenue="9.99")
    assert r.status_code == 201 and r.json["points"]["earned"] == 0, r.json
    # Corrected to exactly 10.00: one full ten, 1 point; nothing to take back.
    r = _stay(desk, store_today, stay_no="B1", member_id=m["id"], room_revenue="10.00")
    assert r.json["points"] == {"earned": 1, "reversed": 0, "shortfall": 0, "changed": True, "total": 1}
    # F&B only: 0.00 room + 19.99 F&B = 1 point; day use (arrival = departure) earns as any stay.
    r = _stay(desk, store_today, stay_no="B2", member_id=m["id"], room_revenue="0.00", fb_revenue="19.99",
              arrival=store_today, departure=store_today)
    assert r.status_code == 201 and r.json["stay"]["day_use"] is True and r.json["points"]["earned"] == 1
    # 5.00 room + 5.00 F&B = 10.00: one unit together.
    r = _stay(desk, store_today, stay_no="B3", member_id=m["id"], room_revenue="5.00", fb_revenue="5.00")
    assert r.json["points"]["earned"] == 1
    assert _balance(desk, m["id"]) == 3
    assert audit_problems(app) == []


def test_huge_revenues_are_422_not_500(app, desk, manager, member_factory, store_today):
    m = member_factory()
    # 19,999,999.99 of room + as much F&B: each fits, their sum (3,999,999,998 fen) does not fit a
    # 32-bit column.
    r = _stay(desk, store_today, stay_no="H1", member_id=m["id"], room_revenue="19999999.99",
              fb_revenue="19999999.99")
    assert r.status_code == 422, (r.status_code, r.json)
    assert (r.json["error"]["code"], r.json["error"]["details"]["field"]) == ("revenue_too_large", "fb_revenue")
    arrival, departure = _days(store_today)
    rows = f"H2,HT01,{arrival},{departure},1,19999999.99,business_fit,{m['mobile']},19999999.99,\n"
    r = post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=rows))
    assert r.status_code in (200, 422), (r.status_code, r.json)
    if r.status_code == 200:
        assert r.json["imported"] == 0 and "fb_revenue" in r.json["errors"][0]["message"], r.json
    assert _balance(desk, m["id"]) == 0
    assert audit_problems(app) == []


def test_a_huge_rate_on_a_huge_stay_is_not_500(app, desk, login_api, member_factory, store_today):
    m = member_factory()
    admin = login_api("admin")
    assert admin.put("/api/v1/stays/rates", json={"rates": {"business_fit": 1000}}).status_code == 200
    # 19,999,999.99 is 1,999,999 full tens × 1000 = 1,999,999,000 points: fits; twice that does not.
    r = _stay(desk, store_today, stay_no="H3", member_id=m["id"], room_revenue="19999999.99")
    assert r.status_code == 201, r.json
    r = _stay(desk, store_today, stay_no="H4", member_id=m["id"], room_revenue="19999999.99")
    assert r.status_code in (201, 409, 422), (r.status_code, r.json)
    assert audit_problems(app) == []


@pytest.mark.parametrize("flag", ["TRUE", "Yes", "是", "Y", "t"])
def test_a_cancelled_flag_in_odd_spellings(app, manager, desk, member_factory, store_today, flag):
    m = member_factory()
    arrival, departure = _days(store_today)
    row = f"C1,HT01,{arrival},{departure},1,2064.00,business_fit,{m['mobile']},,{{}}\n"
    assert post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=row.format(""))).json["imported"] == 1
    assert _balance(desk, m["id"]) == 206
    r = post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=row.format(flag)))
    assert r.json["updated"] == 1, r.json
    assert _balance(desk, m["id"]) == 0
    assert audit_problems(app) == []


def test_an_unknown_cancelled_spelling_is_a_bad_row_not_a_guess(app, manager, desk, member_factory, store_today):
    m = member_factory()
    arrival, departure = _days(store_today)
    row = f"C2,HT01,{arrival},{departure},1,2064.00,business_fit,{m['mobile']},,cancelled\n"
    r = post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=row))
    assert r.status_code in (200, 422)
    assert _balance(desk, m["id"]) == 0


# --- Corrections ------------------------------------------------------------------------------

def test_a_stay_moved_to_another_member_after_the_first_spent_it(app, desk, member_factory, store_today, checkout,
                                                                  catalogue):
    a, b = member_factory(), member_factory()
    _stay(desk, store_today, member_id=a["id"])  # 206 to A
    bill = checkout([("SALMON", 3)], member_id=a["id"], redeem_points=200)  # 204.00, 200 points off
    assert bill.status_code == 201, bill.json
    a_left = _balance(desk, a["id"])  # 6 + what the 4.00 paid earned (0)
    r = _stay(desk, store_today, member_id=b["id"])
    # A: what is left (6) taken, 200 written off; B earns the 206 anew.
    assert r.json["points"] == {"earned": 206, "reversed": a_left, "shortfall": 206 - a_left, "changed": True,
                                "total": 206}
    assert _balance(desk, a["id"]) == 0 and _balance(desk, b["id"]) == 206
    assert audit_problems(app) == []


def test_a_rate_change_between_postings(app, desk, login_api, member_factory, store_today):
    m = member_factory()
    _stay(desk, store_today, member_id=m["id"])  # 206 at rate 1
    assert login_api("admin").put("/api/v1/stays/rates", json={"rates": {"business_fit": 2}}).status_code == 200
    again = _stay(desk, store_today, member_id=m["id"])
    assert again.json["points"]["changed"] is False and again.json["points"]["total"] == 206  # keeps what it earned
    fixed = _stay(desk, store_today, member_id=m["id"], room_revenue="1032.00")
    # Corrected: 206 taken back, 103 tens × 2 = 206 earned at the rate now.
    assert fixed.json["points"] == {"earned": 206, "reversed": 206, "shortfall": 0, "changed": True, "total": 206}
    assert audit_problems(app) == []


def test_merged_between_postings_a_correction_comes_off_the_survivor(app, desk, manager, member_factory,
                                                                      store_today):
    dup, survivor = member_factory(), member_factory()
    _stay(desk, store_today, member_id=dup["id"])  # 206 on the duplicate
    r = manager.post(f"/api/v1/members/{survivor['id']}/merge", json={"from_member_id": dup["id"],
                                                                       "reason": "same guest"})
    assert r.status_code == 200, r.json
    fixed = _stay(desk, store_today, member_id=survivor["id"], room_revenue="1032.00")
    assert fixed.json["points"] == {"earned": 103, "reversed": 206, "shortfall": 0, "changed": True, "total": 103}
    assert _balance(desk, survivor["id"]) == 103
    # And by mobile after the merge: the duplicate's old mobile finds the survivor, unchanged.
    again = _stay(desk, store_today, member_mobile=dup["mobile"], room_revenue="1032.00")
    assert again.status_code == 200, again.json
    assert again.json["points"]["changed"] is False
    assert audit_problems(app) == []


def test_an_erased_member_s_stay_corrected(app, desk, manager, member_factory, store_today):
    m = member_factory()
    _stay(desk, store_today, member_id=m["id"])
    preview = manager.get(f"/api/v1/members/{m['id']}/erasure").json
    r = manager.post(f"/api/v1/members/{m['id']}/erasure", json={
        "reason": "member asked", "wallet_rule": "forfeit",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200, r.json
    assert _stay(desk, store_today, member_id=m["id"]).status_code == 409
    # The CSV still names the stay's member by the old mobile: it no longer finds anyone, a bad row.
    arrival, departure = _days(store_today)
    rows = f"R1001,HT01,{arrival},{departure},1,1032.00,business_fit,,,1\n"
    r = post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=rows))
    assert r.json["updated"] == 1, r.json
    assert _balance(desk, m["id"]) == 0
    assert audit_problems(app) == []


# --- The front desk ---------------------------------------------------------------------------

def _reservation(**fields):
    return {"reservation_no": "R1", "store_code": "HT01", "guest_name": "王先生", "arrival": "2026-12-31",
            "departure": "2027-01-02", **fields}


@pytest.fixture
def second_hotel(app, stores):
    from crm.core.actor import Actor
    from crm.stores import service
    from tests.conftest import in_app
    return in_app(app, lambda: service.create_store(Actor.system("test"), code="HT02", name="外滩酒店",
                                                    kind="hotel", rooms=120).id)


@pytest.mark.clock_at(NEW_YEARS_EVE)
def test_one_number_in_two_hotels_is_two_reservations(app, login_api, member_factory, second_hotel):
    desk = login_api("front_desk")
    a, b = member_factory(name="Ann"), member_factory(name="Bob")
    assert desk.post("/api/v1/reservations", json=_reservation(member_id=a["id"])).status_code == 201
    r = desk.post("/api/v1/reservations", json=_reservation(store_code="HT02", member_id=b["id"]))
    assert r.status_code == 201, r.json
    [one] = desk.get("/api/v1/arrivals?store_code=HT01").json["items"]
    [two] = desk.get("/api/v1/arrivals?store_code=HT02").json["items"]
    assert (one["member_id"], two["member_id"]) == (a["id"], b["id"])
    # Moved to Bob in HT01: the HT01 row changes, HT02's does not.
    r = desk.post("/api/v1/reservations", json=_reservation(member_id=b["id"]))
    assert (r.status_code, r.json["member_id"]) == (200, b["id"])
    [one] = desk.get("/api/v1/arrivals?store_code=HT01").json["items"]
    assert (one["member_id"], one["guest_name"]) == (b["id"], "Bob")
    # Moved to no member at all (the PMS dropped the link): the guest's own name, no member.
    r = desk.post("/api/v1/reservations", json=_reservation(guest_name="Walk In"))
    assert (r.status_code, r.json["member_id"]) == (200, None)
    [one] = desk.get("/api/v1/arrivals?store_code=HT01").json["items"]
    assert (one["member_id"], one["guest_name"], one["level"]) == (None, "Walk In", None)


@pytest.mark.clock_at(NEW_YEARS_EVE)
def test_checked_in_back_to_booked_and_cancelled_leave_the_list(app, login_api):
    desk = login_api("front_desk")
    for status, listed in (("checked_in", 1), ("booked", 1), ("cancelled", 0), ("booked", 1)):
        r = desk.post("/api/v1/reservations", json=_reservation(status=status))
        assert r.status_code in (200, 201), r.json
        items = desk.get("/api/v1/arrivals?store_code=HT01").json["items"]
        assert len(items) == listed and all(i["status"] == status for i in items)


@pytest.mark.parametrize("query", ["store_code=%00", "store_code=HT%00", "date=9999-12-31", "date=0001-01-01",
                                   "store_code=" + "x" * 17, "date=2026-02-30", "store_code=BJ01"])
def test_hostile_arrivals_queries_are_not_500(app, login_api, staff, query):
    from tests.test_ui import ui_login
    r = login_api("front_desk").get(f"/api/v1/arrivals?{query}")
    assert r.status_code in (200, 422), (query, r.status_code)
    page = ui_login(app, "frontdesk").get(f"/frontdesk/arrivals?{query}")
    assert page.status_code in (200, 422), (query, page.status_code)


@pytest.mark.parametrize("cells", [
    "R9,HT\x00,2026-12-31,2027-01-01,x,,,,,,,",
    "R9,HT01,2026-12-31,2027-01-01,x,99999999999999999999,,,,,,",
    "R9,HT01,2026-12-31,2027-01-01,x,-1,,,,,,",
    "R9,HT01,2026-12-31,2027-01-01,x,,,1390000000\x00,,,,",
    "R9,HT01,0001-01-01,9999-12-31,x,,,,,,,",
    "R9,HT01,2026-12-31,2027-01-01,x,,,,99999999999,,,",
    "R9,HT01,2026-12-31,2027-01-01,x,,\x00,,,,,",
    "R9,HT01,2026-12-31,2027-01-01,x,,,,,,checked in,",
    "R9,HT01,2026-12-31,2027-01-01,x,1.5,,,,,,",
])
def test_hostile_reservation_csv_rows_are_bad_rows(app, login_api, stores, cells):
    header = "reservation_no,store_code,arrival,departure,guest_name,member_id,card_no,member_mobile,rooms," \
             "room_type,status,notes\n"
    r = login_api("front_desk").post("/api/v1/imports/reservations", data=(header + cells + "\n").encode(),
                                     content_type="text/csv")
    assert r.status_code == 422 and r.json["error"]["code"] == "bad_rows", (r.status_code, r.json)


def test_preferences_of_emoji_rtl_marks_and_nul(app, login_api, member_factory, staff):
    from tests.test_ui import ui_login
    desk, m = login_api("front_desk"), member_factory(name="Eve")
    prefs = [("😀" * 99 + str(i % 10)) for i in range(10)] + [("\u200f" + "أ" * 98 + str(i)) for i in range(10)]
    r = desk.patch(f"/api/v1/members/{m['id']}", json={"preferences": prefs})
    assert r.status_code == 200, r.json
    assert desk.get(f"/api/v1/members/{m['id']}").json["preferences"] == prefs
    ui = ui_login(app, "frontdesk")
    assert ui.get(f"/members/{m['id']}").status_code == 200
    assert ui.get(f"/members/{m['id']}/edit").status_code == 200
    # A NUL typed in the form: shown beside the field, not a 500, and nothing saved.
    r = ui.post(f"/members/{m['id']}/edit", {"name": "Eve", "mobile": m["mobile"], "preferences": "a\x00b\nc"})
    assert r.status_code == 422, r.status_code
    assert desk.get(f"/api/v1/members/{m['id']}").json["preferences"] == prefs
    # A preference of other control characters via the API too.
    for bad in (["a\x01b"], ["\x7f"], ["a\u2028b"], ["\u202eevil"]):
        r = desk.patch(f"/api/v1/members/{m['id']}", json={"preferences": bad})
        assert r.status_code in (200, 422), (bad, r.status_code)


def test_the_preferences_form_resent_twice(app, login_api, member_factory, staff):
    from tests.test_ui import ui_login
    desk, m = login_api("front_desk"), member_factory(name="Dan")
    ui = ui_login(app, "frontdesk")
    for _ in range(2):
        r = ui.post(f"/members/{m['id']}/edit", {"name": "Dan", "mobile": m["mobile"],
                                                 "preferences": "High floor\nNo lilies"})
        assert r.status_code == 302, r.status_code
    assert desk.get(f"/api/v1/members/{m['id']}").json["preferences"] == ["High floor", "No lilies"]
    # 21 lines in the form: 422 beside the field, nothing saved.
    r = ui.post(f"/members/{m['id']}/edit", {"name": "Dan", "mobile": m["mobile"],
                                             "preferences": "\n".join(f"p{i}" for i in range(21))})
    assert r.status_code == 422
    assert desk.get(f"/api/v1/members/{m['id']}").json["preferences"] == ["High floor", "No lilies"]


def test_a_stays_csv_with_a_nul_in_its_store_code_is_a_bad_row(app, manager, member_factory, store_today):
    arrival, departure = _days(store_today)
    rows = f"N1,HT\x00,{arrival},{departure},1,100.00,business_fit,,,\n"
    r = post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=rows))
    assert r.status_code in (200, 422), r.status_code
    assert r.status_code == 422 or (r.json["imported"] == 0 and r.json["errors"][0]["line"] == 2), r.json


# --- PostgreSQL races -------------------------------------------------------------------------

def _pg_only(backend):
    if backend != "postgresql":
        pytest.skip("SQLite serialises every writer: no race to lose")


def _deadlocks(app) -> int:
    from sqlalchemy import text as sql

    from crm.extensions import db
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(sql("SELECT pg_stat_clear_snapshot()"))
        return conn.execute(sql("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")).scalar()


def test_a_merge_while_the_stay_is_corrected_does_not_deadlock(app, backend, desk, manager, member_factory,
                                                               store_today):
    """The merge waits for the duplicate's lock first, the corrected stay second (it holds its
    stay row by then). Let go, the merge locks both members and moves the duplicate's stays,
    whose row the posting holds while it waits for the duplicate: a cycle, unless the merge
    takes the stays rows first (core/locks.py: stays rows, then members)."""
    import time

    from tests.test_races import queued_in_order
    _pg_only(backend)
    dup, survivor = member_factory(), member_factory()
    _stay(desk, store_today, member_id=dup["id"])  # 206 on the duplicate
    arrival, departure = _days(store_today)
    corrected = {"stay_no": "R1001", "store_code": "HT01", "arrival": arrival, "departure": departure,
                 "room_revenue": "1032.00", "segment": "business_fit", "member_id": dup["id"]}
    before, started = _deadlocks(app), time.monotonic()
    results = queued_in_order(app, "SELECT id FROM members WHERE id = :id FOR UPDATE", {"id": dup["id"]}, [
        (manager.token, "POST", f"/api/v1/members/{survivor['id']}/merge",
         {"from_member_id": dup["id"], "reason": "same guest"}),
        (desk.token, "POST", "/api/v1/stays", corrected)])
    merged, posted = results[f"/api/v1/members/{survivor['id']}/merge"], results["/api/v1/stays"]
    assert merged[0] == 200 and posted[0] == 200, results
    # Whatever the order: the stay earns 103 (1032.00) and the survivor holds exactly that.
    assert _balance(desk, survivor["id"]) == 103 and _balance(desk, dup["id"]) == 0
    assert _deadlocks(app) == before, f"a deadlock (resolved by a retry after {time.monotonic() - started:.1f} s)"
    assert audit_problems(app) == []


def test_a_stay_moved_to_another_member_while_the_first_spends_at_the_till(app, backend, desk, cashier, catalogue,
                                                                           member_factory, store_today):
    from tests.test_races import api_call, race
    _pg_only(backend)
    a, b = member_factory(), member_factory()
    _stay(desk, store_today, member_id=a["id"])  # 206 to A
    arrival, departure = _days(store_today)
    moved = {"stay_no": "R1001", "store_code": "HT01", "arrival": arrival, "departure": departure,
             "room_revenue": "2064.00", "segment": "business_fit", "member_id": b["id"]}

    def act(i):
        if i == 0:
            return api_call(app, desk.token, "POST", "/api/v1/stays", moved, key="move")
        return api_call(app, cashier.token, "POST", "/api/v1/checkouts",  # a tea of 20.00 paid with 20 points
                        {"store_code": "BJ01", "member_id": a["id"], "items": [{"sku": "TEA", "qty": 1}],
                         "redeem_points": 20}, key=f"tea-{i}")
    results = race(5, act)
    assert results[0][0] == 200, results
    paid = sum(1 for s, _, _ in results[1:] if s == 201)
    # A tea that queued behind the move finds A with nothing left: 409 insufficient_points.
    refused = [(s, b) for s, _, b in results[1:] if s != 201]
    assert all(s == 422 or (s == 409 and b["error"]["code"] == "insufficient_points") for s, b in refused), refused
    # B holds the 206; A's 206 was taken back, what A had spent (20 a tea) written off: A ends at 0.
    assert _balance(desk, b["id"]) == 206 and _balance(desk, a["id"]) == 0
    assert results[0][2]["points"]["reversed"] + results[0][2]["points"]["shortfall"] == 206
    assert results[0][2]["points"]["shortfall"] == 20 * paid
    assert audit_problems(app) == []


def test_the_nightly_expiry_while_a_stays_import_takes_points_back(app, backend, desk, manager, member_factory,
                                                                   store_today):
    """The expiry locks points accounts highest id first; the import locks its stays, then the
    members lowest id first, then their accounts highest id first: no cycle, so no deadlock."""
    from datetime import timedelta as td

    from crm.core.actor import Actor
    from crm.core.timeutil import utcnow
    from crm.extensions import db
    from crm.points import service as points
    from tests.test_races import race
    _pg_only(backend)
    people = [member_factory() for _ in range(24)]
    arrival, departure = _days(store_today)
    rows = "".join(f"E{i},HT01,{arrival},{departure},1,2064.00,business_fit,{m['mobile']},,{{flag}}\n"
                   for i, m in enumerate(people))
    assert post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=rows.format(flag=""))).json["imported"] == 24
    before = _deadlocks(app)

    def act(i):
        if i == 0:
            with app.app_context():
                try:
                    return points.expire_all(Actor.system("review"), now=utcnow() + td(days=800), batch=5)
                finally:
                    db.session.remove()
        r = app.test_client().post("/api/v1/imports/stays", data=IMPORT.format(rows=rows.format(flag="1")).encode(),
                                   headers={"Authorization": f"Bearer {manager.token}", "Content-Type": "text/csv"})
        return r.status_code, r.get_json()
    results = race(2, act)
    assert results[1][0] == 202, results
    assert _deadlocks(app) == before
    # Each stay's 206 either expired first (then the cancel takes nothing: 206 short) or was taken back.
    assert all(_balance(desk, m["id"]) == 0 for m in people)
    assert audit_problems(app) == []


# --- Pages and forms --------------------------------------------------------------------------

@pytest.mark.clock_at(NEW_YEARS_EVE)
def test_the_arrivals_page_with_200_reservations_asks_no_more_than_with_one(app, login_api, member_factory, staff):
    from tests.test_frontdesk import _statements
    from tests.test_ui import text, ui_login
    desk = login_api("front_desk")
    ui = ui_login(app, "frontdesk", lang="en")

    def statements():
        ui.get("/frontdesk/arrivals?store_code=HT01")  # warms the worker's caches
        with _statements(app) as seen:
            r = ui.get("/frontdesk/arrivals?store_code=HT01")
        assert r.status_code == 200
        return len(seen), text(r).count("data-reservation=")
    m = member_factory(preferences=["Quiet room"])
    desk.post("/api/v1/reservations", json=_reservation(reservation_no="P0", member_id=m["id"]))
    one, listed = statements()
    assert listed == 1
    mobiles = [member_factory()["mobile"] for _ in range(20)]
    rows = "".join(f"P{i},HT01,2026-12-31,2027-01-0{1 + i % 5},Guest {i},{mobiles[i % 20] if i % 3 else ''}\n"
                   for i in range(1, 200))
    r = desk.post("/api/v1/imports/reservations", data=(
        "reservation_no,store_code,arrival,departure,guest_name,member_mobile\n" + rows).encode(),
        content_type="text/csv")
    assert r.status_code == 200 and r.json["imported"] == 199, r.json
    many, listed = statements()
    assert listed == 200 and many == one, (one, many)


def test_an_idempotency_key_reused_with_another_stay(app, desk, member_factory, store_today):
    m = member_factory()
    first = _stay(desk, store_today, key="pms-k", member_id=m["id"])
    assert first.status_code == 201
    other = _stay(desk, store_today, key="pms-k", member_id=m["id"], room_revenue="1032.00")
    assert other.status_code in (409, 422), other.json
    assert _balance(desk, m["id"]) == 206
    r = desk.post("/api/v1/reservations", json=_reservation(reservation_no="K1"), key="res-k")
    assert r.status_code == 201
    r = desk.post("/api/v1/reservations", json=_reservation(reservation_no="K2"), key="res-k")
    assert r.status_code in (409, 422), r.json


@pytest.mark.parametrize("value", ["", "-1", "abc", "1e3", "a\x00", "99999999999999999999", " 2 ", "１"])
def test_hostile_stay_rates_in_the_programme_form(app, staff, desk, value):
    from crm.core.segments import SEGMENT_KEYS
    from tests.test_ui import ui_login
    ui = ui_login(app, staff["admin"], lang="en")
    form = {f"rate_{k}": "1" for k in SEGMENT_KEYS}
    r = ui.post("/admin/programme/stay-rates", {**form, "rate_conference": value})
    assert r.status_code in (302, 422), (value, r.status_code)
    assert desk.get("/api/v1/stays/rates").json["rates"]["conference"] in (1, 2)


@pytest.mark.parametrize("over", [
    {"arrival": "0001-01-01", "departure": "9999-12-31"}, {"arrival": "9999-12-31", "departure": "9999-12-31"},
    {"rooms": 2 ** 31}, {"rooms": 2 ** 63}, {"member_id": 2 ** 63}, {"card_code": "9" * 128},
    {"card_code": "\u202e1"}, {"member_mobile": "+86 139 0000 0000"}, {"room_revenue": "12.345"},
    {"room_revenue": 12.5}, {"fb_revenue": None}, {"segment": None}, {"stay_no": " " * 10},
    {"company": "C" * 201}, {"stay_no": "x" * 65}, {"cancelled": None}])
def test_hostile_stays_are_not_500(app, desk, member_factory, store_today, over):
    r = _stay(desk, store_today, **{"stay_no": "HX", **over})
    assert r.status_code in (201, 409, 422), (over, r.status_code, r.json)
    assert audit_problems(app) == []


@pytest.mark.parametrize("over", [{"card_no": "9" * 128}, {"card_no": "0"}, {"card_no": "abc def"},
                                  {"member_mobile": "1" * 32}, {"member_id": 2 ** 31}, {"rooms": 2 ** 63},
                                  {"arrival": "0001-01-01"}, {"departure": "9999-12-31"}, {"status": "CHECKED_IN"},
                                  {"guest_name": "", "member_id": None}, {"notes": "n" * 1001}])
def test_hostile_reservations_are_not_500(app, login_api, stores, over):
    r = login_api("front_desk").post("/api/v1/reservations", json=_reservation(reservation_no="HX", **over))
    assert r.status_code in (201, 422), (over, r.status_code, r.json)


def test_a_stay_written_for_a_member_merged_meanwhile_lands_on_the_survivor(app, desk, manager, gold,
                                                                             member_factory, store_today):
    """An import job reads each mobile once per file: a merge committed while it runs leaves it
    holding the duplicate's id for the rest of the file. The stay it writes then names the
    tombstone: its points go to the survivor, and so must the stay itself, or the survivor's level
    spend, stay count and member page never see it."""
    from crm.core.actor import Actor
    from crm.extensions import db
    from crm.members import levels
    from crm.reports import imports
    from crm.reports.models import Stay
    dup, survivor = member_factory(), member_factory()
    with app.app_context():
        look = imports.Lookups(Actor.system("review"))
        look.prefetch([(2, {"member_mobile": dup["mobile"]})])  # the job read the file's mobiles
        db.session.rollback()
    r = manager.post(f"/api/v1/members/{survivor['id']}/merge", json={"from_member_id": dup["id"],
                                                                       "reason": "same guest"})
    assert r.status_code == 200, r.json
    arrival, departure = _days(store_today)
    fields = {"stay_no": "J1", "store_code": "HT01", "arrival": arrival, "departure": departure, "rooms": "1",
              "room_revenue": "2064.00", "segment": "business_fit", "member_mobile": dup["mobile"]}
    with app.app_context():
        assert imports.write_chunk("stays", [(2, fields)], look)[:2] == (1, 0)
        db.session.commit()
        stay = db.session.scalars(db.select(Stay).where(Stay.stay_no == "J1")).one()
        assert stay.member_id == survivor["id"]
        # 2064.00 of stay spend on the survivor: gold's 2000.00 reached.
        assert levels.rolling_spend(survivor["id"], 12) == 206400
    assert _balance(desk, survivor["id"]) == 206
    assert desk.get(f"/api/v1/members/{survivor['id']}").json["level"]["code"] == "gold"
    assert audit_problems(app) == []


@pytest.mark.parametrize("erasure_first", [True, False])
def test_an_erasure_while_the_stay_is_corrected(app, backend, desk, manager, member_factory, store_today,
                                               erasure_first):
    from tests.test_races import queued_in_order
    _pg_only(backend)
    m = member_factory()
    _stay(desk, store_today, member_id=m["id"])  # 206
    preview = manager.get(f"/api/v1/members/{m['id']}/erasure").json
    arrival, departure = _days(store_today)
    corrected = {"stay_no": "R1001", "store_code": "HT01", "arrival": arrival, "departure": departure,
                 "room_revenue": "1032.00", "segment": "business_fit", "member_id": m["id"]}
    erase = (manager.token, "POST", f"/api/v1/members/{m['id']}/erasure", {
        "reason": "member asked", "wallet_rule": "forfeit",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    post = (desk.token, "POST", "/api/v1/stays", corrected)
    before = _deadlocks(app)
    results = queued_in_order(app, "SELECT id FROM members WHERE id = :id FOR UPDATE", {"id": m["id"]},
                              [erase, post] if erasure_first else [post, erase])
    erased, posted = results[erase[2]], results["/api/v1/stays"]
    assert _deadlocks(app) == before
    if erasure_first:
        # Erased first: the correction names an erased member (it read it before): it earns nothing.
        assert erased[0] == 200 and posted[0] in (200, 409), results
    else:
        # Corrected first (206 → 103): the erasure's confirmed 206 no longer holds, so it is refused
        # or it forfeits what is there now; either way nothing is left.
        assert posted[0] == 200 and erased[0] in (200, 409, 422), results
    assert _balance(desk, m["id"]) in (0, 103) and (erased[0] != 200 or _balance(desk, m["id"]) == 0)
    assert audit_problems(app) == []


@pytest.mark.clock_at(datetime(2027, 1, 1, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai")))  # 2026-12-31 16:30 UTC
def test_arrivals_just_after_midnight_on_new_year_in_the_hotel(app, login_api, member_factory, staff):
    from tests.test_ui import text, ui_login
    desk, m = login_api("front_desk"), member_factory(name="Nora")
    for no, day in (("Y0", "2026-12-31"), ("Y1", "2027-01-01"), ("Y2", "2027-01-02")):
        r = desk.post("/api/v1/reservations", json=_reservation(reservation_no=no, member_id=m["id"], arrival=day,
                                                                departure="2027-01-03"))
        assert r.status_code == 201, r.json
    r = desk.get("/api/v1/arrivals?store_code=HT01").json
    assert (r["date"], r["today"], [i["reservation_no"] for i in r["items"]]) == ("2027-01-01", "2027-01-01", ["Y1"])
    ui = ui_login(app, "frontdesk", lang="en")
    today = text(ui.get("/frontdesk/arrivals?store_code=HT01"))
    assert 'data-reservation="Y1"' in today and 'data-reservation="Y0"' not in today
    tomorrow = text(ui.get("/frontdesk/arrivals?store_code=HT01&day=tomorrow"))
    assert 'data-reservation="Y2"' in tomorrow and 'data-reservation="Y1"' not in tomorrow
    # The stays of December do not count for 2027 (stays this calendar year, before the day).
    r = desk.get("/api/v1/arrivals?store_code=HT01&date=2027-01-02").json
    assert [(i["reservation_no"], i["stays_this_year"]) for i in r["items"]] == [("Y2", 0)]


def test_two_reservation_files_in_opposite_orders_at_once_do_not_deadlock(app, backend, login_api, stores):
    """The PMS sends the day's changes twice (a retry, the rows in another order): each file's
    upsert locks its rows in its own order, a cycle unless both lock them in one order."""
    from tests.test_races import race
    _pg_only(backend)
    desk = login_api("front_desk")
    header = "reservation_no,store_code,arrival,departure,guest_name\n"
    rows = [f"D{i:04d},HT01,2026-12-31,2027-01-02,Guest {i}\n" for i in range(1500)]
    assert desk.post("/api/v1/imports/reservations", data=(header + "".join(rows)).encode(),
                     content_type="text/csv").json["imported"] == 1500
    files = [header + "".join(rows), header + "".join(reversed(rows))]
    before = _deadlocks(app)

    def act(i):
        r = app.test_client().post("/api/v1/imports/reservations", data=files[i].encode(),
                                   headers={"Authorization": f"Bearer {desk.token}", "Content-Type": "text/csv"})
        return r.status_code, r.get_json()
    for _ in range(3):
        results = race(2, act)
        assert [s for s, _ in results] == [200, 200], results
    assert _deadlocks(app) == before


def test_two_stays_files_in_opposite_orders_at_once_do_not_deadlock(app, backend, desk, manager, member_factory,
                                                                    store_today):
    from tests.test_races import race
    _pg_only(backend)
    people = [member_factory() for _ in range(6)]
    arrival, departure = _days(store_today)
    rows = [f"O{i:04d},HT01,{arrival},{departure},1,100.00,business_fit,{people[i % 6]['mobile'] if i < 60 else ''},,\n"
            for i in range(1500)]
    assert post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows="".join(rows))).json["imported"] == 1500
    # Both files: the first 60 (the members') now 200.00, so each file settles them anew.
    changed = [r.replace(",100.00,", ",200.00,") if i < 60 else r for i, r in enumerate(rows)]
    files = [IMPORT.format(rows="".join(changed)), IMPORT.format(rows="".join(reversed(changed)))]
    before = _deadlocks(app)

    def act(i):
        r = app.test_client().post("/api/v1/imports/stays", data=files[i].encode(),
                                   headers={"Authorization": f"Bearer {manager.token}", "Content-Type": "text/csv"})
        return r.status_code, r.get_json()
    results = race(2, act)
    assert [s for s, _ in results] == [202, 202], results
    assert _deadlocks(app) == before
    # Each member: 10 stays of 200.00, 20 points each.
    assert [_balance(desk, m["id"]) for m in people] == [200] * 6
    assert audit_problems(app) == []
