"""Hotel front desk (issue 17.2): reservations from the PMS (one by one and as a CSV), members'
preferences, and the arrivals list the desk greets frequent guests from. Both databases."""
import contextlib
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select

from crm.extensions import db
from crm.frontdesk.service import birthday_in_stay
from tests.conftest import in_app
from tests.test_ui import text, ui_login

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YEARS_EVE = datetime(2026, 12, 31, 10, 0, tzinfo=SHANGHAI)


def _reservation(**fields):
    return {"reservation_no": "R1", "store_code": "HT01", "guest_name": "王先生", "arrival": "2026-12-31",
            "departure": "2027-01-02", **fields}


def _count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _add_stays(app, stores, member_id, arrivals, **extra):
    from crm.reports.models import Stay

    def add():
        for i, day in enumerate(arrivals):
            day = date.fromisoformat(day)
            db.session.add(Stay(**{"stay_no": f"S{member_id}-{i}", **extra}, store_id=stores["HT01"], arrival=day,
                                departure=day.replace(day=day.day + 1) if day.day < 28 else day, rooms=1,
                                room_revenue=50000, member_id=member_id))
    in_app(app, add)


# Reservations ---------------------------------------------------------------------------------

def test_a_reservation_sent_again_is_updated_not_duplicated(app, login_api, member_factory):
    from crm.frontdesk.models import Reservation
    desk, m = login_api("front_desk"), member_factory(mobile="13900001111")
    r = desk.post("/api/v1/reservations", json=_reservation(member_mobile="139 0000 1111", room_type="King"))
    assert r.status_code == 201, r.json
    assert r.json["member_id"] == m["id"] and r.json["nights"] == 2 and r.json["status"] == "booked"
    first = r.json["id"]
    # The PMS changes the room type and then checks the guest in: the same row, 200 each time.
    r = desk.post("/api/v1/reservations", json=_reservation(member_mobile="13900001111", room_type="Twin"))
    assert (r.status_code, r.json["id"], r.json["room_type"]) == (200, first, "Twin")
    r = desk.post("/api/v1/reservations", json=_reservation(status="checked_in", departure="2027-01-03"))
    assert (r.status_code, r.json["id"], r.json["status"], r.json["nights"]) == (200, first, "checked_in", 3)
    assert r.json["member_id"] is None  # this send named no member: the PMS's word stands
    # Another hotel's R1 would be another reservation; the same number is one per hotel.
    assert _count(app, Reservation) == 1
    # A keyed post sent twice (a retry after a timeout) is answered once, the second a replay.
    body = _reservation(reservation_no="R2")
    one = desk.post("/api/v1/reservations", json=body, key="pms-R2-1")
    two = desk.post("/api/v1/reservations", json=body, key="pms-R2-1")
    assert one.status_code == two.status_code == 201 and two.headers.get("Idempotent-Replayed") == "true"
    assert one.json == two.json and _count(app, Reservation) == 2


@pytest.mark.parametrize("fields, code, field", [
    ({"member_id": 2**40}, "invalid_value", "member_id"),
    ({"member_id": 2**31 - 1}, "unknown_member", "member_id"),
    ({"guest_name": "王\x00"}, "invalid_value", None),
    ({"reservation_no": "R\x00"}, "invalid_value", None),
    ({"departure": "2026-12-30"}, "departure_before_arrival", "departure"),
    ({"store_code": "XX99"}, "unknown_store", "store_code"),
    ({"store_code": "BJ01"}, "not_a_hotel", "store_code"),
    ({"rooms": 1.5}, None, "rooms"),
    ({"rooms": "2"}, None, "rooms"),
    ({"arrival": "99999-01-01"}, None, "arrival"),
    ({"status": "no_show"}, None, "status"),
    ({"member_mobile": "13900009999"}, "unknown_member", "member_mobile"),
    ({"card_no": "8600000000000000"}, "unknown_member", "card_no"),
    ({"guest_name": "", "member_id": None}, "guest_name_required", "guest_name"),
    ({"reservation_no": "   "}, "reservation_no_required", "reservation_no"),
    ({"room_type": "x" * 65}, None, "room_type"),
    ({"surprise": 1}, None, "surprise"),
])
def test_hostile_or_wrong_reservations_are_422_and_save_nothing(app, login_api, fields, code, field):
    from crm.frontdesk.models import Reservation
    r = login_api("front_desk").post("/api/v1/reservations", json=_reservation(**fields))
    assert r.status_code == 422, r.json
    if code and code != "invalid_value":
        assert r.json["error"]["code"] == code
    if field:
        assert field in str(r.json)
    assert _count(app, Reservation) == 0


def test_cashiers_and_marketing_cannot_post_reservations_or_see_arrivals(app, login_api, staff):
    for role in ("cashier", "marketing"):
        api = login_api(role)
        assert api.post("/api/v1/reservations", json=_reservation()).status_code == 403
        assert api.get("/api/v1/arrivals?store_code=HT01").status_code == 403
    assert ui_login(app, "cashier").get("/frontdesk/arrivals").status_code == 403
    assert login_api("manager").get("/api/v1/arrivals?store_code=HT01").status_code == 200


CSV = ("reservation_no,store_code,arrival,departure,guest_name,member_mobile,room_type,notes\n"
       "C1,HT01,2026-12-31,2027-01-01,张三,,King,late arrival\n"      # line 2: good
       "C2,HT01,2027-01-02,2027-01-01,李四,,,\n"                      # line 3: departs before it arrives
       "C3,XX99,2026-12-31,2027-01-01,王五,13900008888,,\n"           # line 4: no such hotel, no such member
       "C1,HT01,2026-12-31,2027-01-02,张三,,,\n"                      # line 5: C1 twice in the file
       "C4,HT01,2026-12-31,2027-01-03,赵六,,Suite,\"a, b\"\n")        # line 6: good


def test_csv_with_bad_lines_saves_nothing_unless_told_to_skip_them(app, login_api):
    from crm.frontdesk.models import Reservation
    desk = login_api("front_desk")
    r = desk.post("/api/v1/imports/reservations", data=CSV.encode("gb18030"), content_type="text/csv")
    assert r.status_code == 422 and r.json["error"]["code"] == "bad_rows", r.json
    errors = {e["line"]: e for e in r.json["error"]["details"]["errors"]}
    assert sorted(errors) == [3, 4, 5]
    assert "departure" in errors[3]["message"]
    assert len(errors[4]["problems"]) == 2 and "XX99" in errors[4]["message"]  # both problems, not the first
    assert "twice" in errors[5]["message"]
    assert _count(app, Reservation) == 0
    # Skipping the bad rows: C1 and C4 are saved (2 new, 3 skipped), the GBK file read as such.
    r = desk.post("/api/v1/imports/reservations?skip_bad_rows=true", data=CSV.encode("gb18030"),
                  content_type="text/csv")
    assert r.status_code == 200, r.json
    assert (r.json["imported"], r.json["updated"], r.json["skipped"], r.json["encoding"]) == (2, 0, 3, "gb18030")
    # The same rows again as a form upload (UTF-8): both known, so 2 updated and no new row.
    good = "\n".join(CSV.splitlines()[i] for i in (0, 1, 5)) + "\n"
    r = desk.client.post("/api/v1/imports/reservations", headers=desk._headers(),
                         data={"file": (io.BytesIO(good.encode()), "pms.csv")}, content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert (r.json["imported"], r.json["updated"], r.json["skipped"]) == (0, 2, 0)
    assert _count(app, Reservation) == 2
    # A header the import does not know is 422 at once.
    r = desk.post("/api/v1/imports/reservations", data=b"reservation_no,store_code,arrival\n",
                  content_type="text/csv")
    assert r.status_code == 422 and r.json["error"]["code"] == "missing_columns"


# The arrivals list ----------------------------------------------------------------------------

def test_birthday_in_stay_by_hand():
    # arrival ≤ birthday < departure, the departure day itself not in the stay
    assert birthday_in_stay(12, 31, date(2026, 12, 31), date(2027, 1, 2)) == date(2026, 12, 31)
    assert birthday_in_stay(1, 1, date(2026, 12, 31), date(2027, 1, 2)) == date(2027, 1, 1)  # across 31 Dec
    assert birthday_in_stay(1, 2, date(2026, 12, 31), date(2027, 1, 2)) is None  # the day they leave
    assert birthday_in_stay(12, 30, date(2026, 12, 31), date(2027, 1, 2)) is None  # the day before
    # 29 February: kept on 28 February in a common year, on the 29th in a leap year
    assert birthday_in_stay(2, 29, date(2027, 2, 28), date(2027, 3, 1)) == date(2027, 2, 28)
    assert birthday_in_stay(2, 29, date(2028, 2, 28), date(2028, 2, 29)) is None
    assert birthday_in_stay(2, 29, date(2028, 2, 29), date(2028, 3, 1)) == date(2028, 2, 29)
    # a day-use stay (arrives and leaves the same day) on the birthday counts
    assert birthday_in_stay(5, 1, date(2026, 5, 1), date(2026, 5, 1)) == date(2026, 5, 1)
    assert birthday_in_stay(None, None, date(2026, 5, 1), date(2026, 5, 2)) is None
    assert birthday_in_stay(12, 31, date(2999, 12, 31), date(2999, 12, 31)) == date(2999, 12, 31)


@pytest.fixture
def gold(login_api):
    r = login_api("admin").post("/api/v1/levels", json={"code": "gold", "name": "Gold", "rank": 2})
    assert r.status_code == 201, r.json
    return "gold"


@pytest.mark.clock_at(NEW_YEARS_EVE)
def test_arrivals_today_and_tomorrow_frequent_guests_first(app, stores, login_api, member_factory, gold):
    manager, desk = login_api("manager"), login_api("front_desk")
    # A: gold, born 1 January, 3 stays this year (and one last year, not counted) → frequent guest.
    a = member_factory(name="Alice", birthday="1980-01-01")
    assert manager.patch(f"/api/v1/members/{a['id']}", json={"level_code": "gold", "preferences": [
        "High floor", "Feather-free pillow", "Allergic to peanuts"], "notes": "Likes a quiet room"}).status_code == 200
    _add_stays(app, stores, a["id"], ["2025-11-02", "2026-01-10", "2026-06-05", "2026-12-20"])
    _add_stays(app, stores, a["id"], ["2026-09-09"], cancelled=True, stay_no="X-A")  # cancelled in the PMS
    # B: entry level, born 31 December, 1 stay this year.
    b = member_factory(name="Bob", birthday="12-31")
    _add_stays(app, stores, b["id"], ["2026-03-03"])
    # D: a member with 5 stays this year, but their reservation today was cancelled → not listed.
    d = member_factory(name="Dora")
    _add_stays(app, stores, d["id"], ["2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01"])
    # E: a member arriving tomorrow, 1 January 2027: their 2 stays of 2026 are last year's then.
    e = member_factory(name="Eve", birthday="02-29")
    _add_stays(app, stores, e["id"], ["2026-07-01", "2026-08-01"])
    posts = [
        _reservation(reservation_no="R-C", guest_name="Walk-in Wang", room_type="Twin", notes="Airport pickup"),
        _reservation(reservation_no="R-B", member_id=b["id"], guest_name="", departure="2027-01-01"),
        _reservation(reservation_no="R-A", card_no=None, member_mobile=a["mobile"], room_type="King Suite",
                     notes="VIP amenity"),
        _reservation(reservation_no="R-D", member_id=d["id"], status="cancelled"),
        _reservation(reservation_no="R-E", member_id=e["id"], arrival="2027-01-01", departure="2027-01-04"),
    ]
    for body in posts:
        assert desk.post("/api/v1/reservations", json=body).status_code == 201
    today = desk.get("/api/v1/arrivals?store_code=HT01").json
    assert (today["date"], today["today"]) == ("2026-12-31", "2026-12-31")
    # Order: Alice (gold, rank 2), Bob (entry, rank 0), then the guest who is not a member. Dora is out.
    assert [i["reservation_no"] for i in today["items"]] == ["R-A", "R-B", "R-C"]
    alice, bob, wang = today["items"]
    # Alice: stays of 2026 before 31 Dec: 10 Jan, 5 Jun, 20 Dec = 3 (2 Nov 2025 is last year, 9 Sep was
    # cancelled) → frequent.
    assert (alice["stays_this_year"], alice["frequent"], alice["level"]["code"]) == (3, True, "gold")
    # Her birthday, 1 January, falls in 31 Dec → 2 Jan: 2027-01-01.
    assert alice["birthday_in_stay"] == "2027-01-01" and alice["nights"] == 2 and alice["guest_name"] == "Alice"
    assert alice["preferences"] == ["High floor", "Feather-free pillow", "Allergic to peanuts"]
    assert (alice["member_notes"], alice["pms_notes"], alice["room_type"]) == (
        "Likes a quiet room", "VIP amenity", "King Suite")
    # Bob: 1 stay (3 Mar); born 31 Dec, arriving 31 Dec for one night: birthday on the day he arrives.
    assert (bob["stays_this_year"], bob["frequent"], bob["birthday_in_stay"], bob["nights"]) == (
        1, False, "2026-12-31", 1)
    assert bob["guest_name"] == "Bob"  # the PMS sent no name: the member's
    assert (wang["member_id"], wang["level"], wang["guest_name"], wang["stays_this_year"]) == (
        None, None, "Walk-in Wang", 0)
    tomorrow = desk.get("/api/v1/arrivals?store_code=HT01&date=2027-01-01").json
    # Eve on 1 January 2027: stays of 2027 before that day: none (her two are of 2026); born 29 Feb: not in stay.
    assert [(i["reservation_no"], i["stays_this_year"], i["birthday_in_stay"]) for i in tomorrow["items"]] == [
        ("R-E", 0, None)]
    # The same lists on the page, today's by default and tomorrow's on its tab.
    ui = ui_login(app, "frontdesk")
    page = text(ui.get("/frontdesk/arrivals?store_code=HT01"))
    assert page.index("Alice") < page.index("Bob") < page.index("Walk-in Wang") and "Dora" not in page
    assert "Allergic to peanuts" in page and "Airport pickup" in page and f"/members/{a['id']}" in page
    assert page.count('class="badge frequent"') == 1 and page.count('class="badge birthday"') == 2
    page = text(ui.get("/frontdesk/arrivals?store_code=HT01&day=tomorrow"))
    assert "Eve" in page and "Alice" not in page
    assert ui.get("/frontdesk/arrivals?day=yesterday").status_code == 422
    # The front desk's home store (BJ01) is a restaurant: the page and the API default to the hotel.
    assert "Alice" in text(ui.get("/frontdesk/arrivals"))
    assert desk.get("/api/v1/arrivals").json["store_code"] == "HT01"
    assert desk.get("/api/v1/arrivals?store_code=BJ01").json["error"]["code"] == "not_a_hotel"


@contextlib.contextmanager
def _statements(app):
    seen = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.mark.clock_at(NEW_YEARS_EVE)
def test_the_arrivals_list_asks_the_same_number_of_queries_for_one_guest_or_many(
        app, stores, login_api, member_factory):
    desk = login_api("front_desk")

    def statements():
        desk.get("/api/v1/arrivals?store_code=HT01")  # warms the worker's caches
        with _statements(app) as seen:
            r = desk.get("/api/v1/arrivals?store_code=HT01")
        assert r.status_code == 200
        return len(seen), len(r.json["items"])
    m = member_factory(preferences=["Quiet room"])
    _add_stays(app, stores, m["id"], ["2026-05-05"])
    desk.post("/api/v1/reservations", json=_reservation(reservation_no="Q0", member_id=m["id"]))
    one, listed = statements()
    assert listed == 1
    for i in range(1, 6):
        other = member_factory()
        _add_stays(app, stores, other["id"], ["2026-05-05", "2026-06-06"])
        desk.post("/api/v1/reservations", json=_reservation(reservation_no=f"Q{i}", member_id=other["id"]))
    many, listed = statements()
    assert listed == 6 and many == one


# Preferences ---------------------------------------------------------------------------------

def test_preferences_edited_through_the_api_are_shown_audited_and_bounded(app, login_api, member_factory):
    from crm.core.audit import AuditEntry
    desk, m = login_api("front_desk"), member_factory()
    assert m["preferences"] == []
    r = desk.patch(f"/api/v1/members/{m['id']}", json={"preferences": [" Non-smoking  room ", "", "Extra towels",
                                                                       "Extra towels"]})
    assert r.status_code == 200, r.json
    assert r.json["preferences"] == ["Non-smoking room", "Extra towels"]  # trimmed; blanks and repeats dropped
    assert desk.get(f"/api/v1/members/{m['id']}").json["preferences"] == ["Non-smoking room", "Extra towels"]
    for bad in (["x"] * 21, ["x" * 101], "High floor", [1], ["a\x00"]):
        r = desk.patch(f"/api/v1/members/{m['id']}", json={"preferences": bad})
        assert r.status_code == 422, (bad, r.json)
    assert desk.patch(f"/api/v1/members/{m['id']}", json={"preferences": ["x" * 100] * 20}).status_code == 200
    assert desk.patch(f"/api/v1/members/{m['id']}", json={"preferences": None}).json["preferences"] == []
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "member.update",
                                                           AuditEntry.entity_id == str(m["id"]))
                                  .order_by(AuditEntry.id)).all()
        assert rows[0].details["changes"]["preferences"] == [[], ["Non-smoking room", "Extra towels"]]


def test_preferences_edited_in_the_form_one_a_line(app, staff, member_factory):
    m = member_factory(name="Carol")
    ui = ui_login(app, "frontdesk")
    form = text(ui.get(f"/members/{m['id']}/edit"))
    assert 'name="preferences"' in form
    r = ui.post(f"/members/{m['id']}/edit", {"name": "Carol", "mobile": m["mobile"],
                                             "preferences": "Feather-free, firm pillow\r\n\r\nNo lilies\n"})
    assert r.status_code == 302, text(r)[:2000]
    page = text(ui.get(f"/members/{m['id']}"))
    assert "<li>Feather-free, firm pillow</li>" in page and "<li>No lilies</li>" in page
    # An over-long line comes back beside the field, with what was typed.
    r = ui.post(f"/members/{m['id']}/edit", {"name": "Carol", "mobile": m["mobile"], "preferences": "y" * 101})
    assert r.status_code == 422 and 'id="e-preferences"' in text(r) and "y" * 101 in text(r)
    assert "<li>No lilies</li>" in text(ui.get(f"/members/{m['id']}"))  # the bad edit saved nothing


def test_preferences_are_in_the_pipl_copy_and_gone_after_erasure(app, login_api, member_factory):
    import json

    from crm.frontdesk.models import Reservation
    manager, m = login_api("manager"), member_factory()
    manager.patch(f"/api/v1/members/{m['id']}", json={"preferences": ["Allergic to shellfish"]})
    login_api("front_desk").post("/api/v1/reservations", json=_reservation(member_id=m["id"], notes="anniversary"))
    data = json.loads(manager.get(f"/api/v1/members/{m['id']}/export?reason=written request").data)
    assert data["member"]["preferences"] == ["Allergic to shellfish"]
    assert data["reservations"][0]["notes"] == "anniversary"
    preview = manager.get(f"/api/v1/members/{m['id']}/erasure").json
    r = manager.post(f"/api/v1/members/{m['id']}/erasure", json={
        "reason": "member asked", "wallet_rule": "forfeit",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200, r.json
    with app.app_context():
        from crm.members.models import Member
        assert db.session.get(Member, m["id"]).preferences == []
        kept = db.session.scalars(select(Reservation)).one()
        assert (kept.guest_name, kept.notes, kept.arrival) == ("", "", date(2026, 12, 31))


def test_the_same_new_reservation_posted_six_times_at_once_is_one_row(app, login_api, stores):
    """The PMS retries while the first post is in flight: the unique key decides, so exactly one
    answer is 201 (new) and the other five 200 (updated), and one row exists."""
    import threading

    from crm.frontdesk.models import Reservation
    from tests.test_races import api_call
    token, results = login_api("front_desk").token, []
    start = threading.Barrier(6)

    def post():
        start.wait()
        results.append(api_call(app, token, "POST", "/api/v1/reservations", _reservation(reservation_no="RACE")))
    threads = [threading.Thread(target=post) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(status for status, _code, _body in results) == [200, 200, 200, 200, 200, 201], results
    assert len({body["id"] for _status, _code, body in results}) == 1
    assert _count(app, Reservation) == 1


@pytest.mark.clock_at(NEW_YEARS_EVE)
def test_a_merge_keeps_both_members_preferences_and_moves_the_reservations(app, login_api, member_factory):
    manager, desk = login_api("manager"), login_api("front_desk")
    keep, dup = member_factory(name="Kim"), member_factory(name="Kim Dup")
    desk.patch(f"/api/v1/members/{keep['id']}", json={"preferences": ["High floor"]})
    desk.patch(f"/api/v1/members/{dup['id']}", json={"preferences": ["High floor", "Buckwheat pillow"]})
    desk.post("/api/v1/reservations", json=_reservation(reservation_no="M1", member_id=dup["id"]))
    r = manager.post(f"/api/v1/members/{keep['id']}/merge", json={"from_member_id": dup["id"], "reason": "same guest"})
    assert r.status_code == 200, r.json
    assert len(r.json["moved"]["reservations"]) == 1
    assert desk.get(f"/api/v1/members/{keep['id']}").json["preferences"] == ["High floor", "Buckwheat pillow"]
    [arrival] = desk.get("/api/v1/arrivals?store_code=HT01").json["items"]
    assert (arrival["member_id"], arrival["guest_name"]) == (keep["id"], "Kim")
    # The PMS, still holding the duplicate's id, sends the reservation again: it stays the survivor's.
    r = desk.post("/api/v1/reservations", json=_reservation(reservation_no="M1", member_id=dup["id"]))
    assert (r.status_code, r.json["member_id"]) == (200, keep["id"])
