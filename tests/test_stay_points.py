"""Hotel stays in the programme (issue 17.1): a member's stay earns points at its segment's rate
and counts toward level spend; a corrected or cancelled stay takes them back by entries."""
import re
from datetime import date, timedelta

import pytest

from tests.conftest import audit_problems
from tests.test_reports import post_csv


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def gold(login_api):
    """A level above the entry one, reached at 2000.00 of spend over the window, ×1.5 points."""
    r = login_api("admin").post("/api/v1/levels", json={"code": "gold", "name": "金卡", "rank": 1,
                                                       "points_multiplier": "1.50", "upgrade_spend": "2000.00"})
    assert r.status_code == 201, r.json
    return r.json


def _days(store_today):
    """(arrival, departure) of a 3-night stay that checked out today."""
    out = date.fromisoformat(store_today)
    return (out - timedelta(days=3)).isoformat(), out.isoformat()


def _stay(desk, store_today, key=None, **over):
    arrival, departure = _days(store_today)
    body = {"stay_no": "R1001", "store_code": "HT01", "arrival": arrival, "departure": departure, "rooms": 1,
            "room_revenue": "2064.00", "segment": "business_fit", **over}
    return desk.post("/api/v1/stays", json=body, key=key)


def _entries(api, member_id):
    return api.get(f"/api/v1/members/{member_id}/points/entries?per_page=100").json["items"]


def _balance(api, member_id):
    return api.get(f"/api/v1/members/{member_id}/points").json["balance"]


def _level(api, member_id):
    return api.get(f"/api/v1/members/{member_id}").json["level"]["code"]


def test_three_nights_at_688_earn_and_lift_the_level(app, desk, gold, member_factory, store_today, checkout,
                                                      catalogue):
    m = member_factory()
    r = _stay(desk, store_today, member_id=m["id"])
    assert r.status_code == 201, r.json
    # 3 nights × 688.00 = 2064.00: 206 full tens × 1 point (business FIT, the bills' rate) × 1.00 (entry
    # level, the level the member had when the stay was posted) = 206 points.
    assert r.json["points"] == {"earned": 206, "reversed": 0, "shortfall": 0, "changed": True, "total": 206}
    # 2064.00 of stay spend crosses gold's 2000.00 at once.
    assert r.json["member"]["level"] == "gold" and _level(desk, m["id"]) == "gold"
    entries = _entries(desk, m["id"])
    assert [(e["kind"], e["points"], e["details"]["stay_no"], e["details"]["store_code"]) for e in entries] == \
        [("stay", 206, "R1001", "HT01")]
    # Usable at the next bill: two salmon at 68 = 136.00, 100 points (1 point = 1.00) off it.
    bill = checkout([("SALMON", 2)], member_id=m["id"], redeem_points=100)
    assert bill.status_code == 201, bill.json
    assert bill.json["points_redeemed"] == 100
    # 36.00 paid at gold: 3 full tens × 1.5 = 4.5 → 4 points; 206 − 100 + 4 = 110.
    assert _balance(desk, m["id"]) == 110
    assert audit_problems(app) == []


def test_posting_again_is_idempotent_and_unchanged_writes_nothing(app, desk, member_factory, store_today):
    m = member_factory()
    first = _stay(desk, store_today, key="pms-1", member_id=m["id"])
    again = _stay(desk, store_today, key="pms-1", member_id=m["id"])
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    other_key = _stay(desk, store_today, key="pms-2", member_id=m["id"])
    assert other_key.status_code == 200  # the same stay again: an update that changes nothing
    assert other_key.json["points"] == {"earned": 0, "reversed": 0, "shortfall": 0, "changed": False,
                                        "total": 206}
    assert len(_entries(desk, m["id"])) == 1 and _balance(desk, m["id"]) == 206


def test_corrected_revenue_and_cancel_reverse_by_entries(app, desk, gold, member_factory, store_today, manager):
    m = member_factory()
    _stay(desk, store_today, member_id=m["id"])
    # Corrected to 1500.00 room + 120.00 F&B posted to the room = 1620.00 at the member's level now
    # (gold, ×1.5): the 206 are taken back and 162 × 1.5 = 243 earned anew.
    r = _stay(desk, store_today, member_id=m["id"], room_revenue="1500.00", fb_revenue="120.00")
    assert r.status_code == 200, r.json
    assert r.json["points"] == {"earned": 243, "reversed": 206, "shortfall": 0, "changed": True, "total": 243}
    assert _balance(desk, m["id"]) == 243
    spend_before = _level_spend(app, m["id"])
    assert spend_before == 162000
    cancelled = _stay(desk, store_today, member_id=m["id"], room_revenue="1500.00", fb_revenue="120.00",
                      cancelled=True)
    assert cancelled.json["points"] == {"earned": 0, "reversed": 243, "shortfall": 0, "changed": True, "total": 0}
    assert [(e["kind"], e["points"]) for e in _entries(desk, m["id"])] == \
        [("stay_undo", -243), ("stay", 243), ("stay_undo", -206), ("stay", 206)]
    assert _balance(desk, m["id"]) == 0 == 206 - 206 + 243 - 243
    assert _level_spend(app, m["id"]) == 0  # the cancelled stay no longer counts
    assert _level(desk, m["id"]) == "gold"  # levels go down only at the yearly review
    assert audit_problems(app) == []


def _level_spend(app, member_id):
    from crm.members import levels
    with app.app_context():
        return levels.rolling_spend(member_id, 12)


def test_points_already_spent_are_a_shortfall(app, desk, member_factory, store_today, checkout, catalogue):
    m = member_factory()
    _stay(desk, store_today, member_id=m["id"])  # 206
    checkout([("LOBSTER", 1)], member_id=m["id"], redeem_points=200)  # 328.00, 200 points off: 128 paid → 12
    assert _balance(desk, m["id"]) == 18  # 206 − 200 + 12
    r = _stay(desk, store_today, member_id=m["id"], cancelled=True)
    # Only the 18 the member holds can be taken; 188 were spent and are written off.
    assert r.json["points"] == {"earned": 0, "reversed": 18, "shortfall": 188, "changed": True, "total": 0}
    assert _balance(desk, m["id"]) == 0
    assert audit_problems(app) == []


def test_segments_earn_by_their_rate(app, desk, login_api, member_factory, store_today):
    m = member_factory()
    for no, segment in (("C1", "complimentary"), ("L1", "long_stay"), ("H1", "house_use")):
        r = _stay(desk, store_today, stay_no=no, member_id=m["id"], segment=segment)
        assert r.json["points"]["earned"] == 0, segment
    rates = desk.get("/api/v1/stays/rates").json
    assert rates["rates"]["long_stay"] == 0 and rates["rates"]["walk_in"] == 1
    assert desk.put("/api/v1/stays/rates", json={"rates": {"long_stay": 3}}).status_code == 403
    admin = login_api("admin")
    r = admin.put("/api/v1/stays/rates", json={"rates": {"long_stay": 3, "ta_group": 2}})
    assert r.status_code == 200, r.json
    assert (r.json["rates"]["long_stay"], r.json["rates"]["ta_group"], r.json["rates"]["complimentary"]) == (3, 2, 0)
    # 2064.00 long stay at 3 points per 10.00: 206 × 3 = 618.
    assert _stay(desk, store_today, stay_no="L2", member_id=m["id"], segment="long_stay").json["points"][
        "earned"] == 618
    # A complimentary flag earns nothing whatever the segment's rate.
    assert _stay(desk, store_today, stay_no="W1", member_id=m["id"], complimentary=True).json["points"][
        "earned"] == 0
    for bad in ({"rates": {"nope": 1}}, {"rates": {"walk_in": -1}}, {"rates": {"walk_in": 1.5}},
                {"rates": {"walk_in": "2"}}, {"rates": []}):
        assert admin.put("/api/v1/stays/rates", json=bad).status_code == 422, bad


IMPORT = """stay_no,store_code,arrival,departure,rooms,room_revenue,segment,member_mobile,fb_revenue,cancelled
{rows}"""


def test_the_csv_import_earns_and_a_reimported_cancel_reverses(app, manager, desk, gold, member_factory,
                                                               store_today):
    m, other = member_factory(), member_factory()
    arrival, departure = _days(store_today)
    rows = (f"K1,HT01,{arrival},{departure},1,2064.00,business_fit,{m['mobile']},,\n"
            f"K2,HT01,{arrival},{departure},1,800.00,complimentary,{other['mobile']},,\n"
            f"K3,HT01,{arrival},{departure},1,500.00,walk_in,,,\n")
    r = post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=rows))
    assert (r.json["imported"], r.json["errors"]) == (3, [])
    assert _balance(desk, m["id"]) == 206 and _level(desk, m["id"]) == "gold"
    assert _balance(desk, other["id"]) == 0  # complimentary
    # The same file again: nothing changes, no entry is written.
    assert post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=rows)).json["updated"] == 3
    assert len(_entries(desk, m["id"])) == 1
    # K1 cancelled in the PMS, K3 now the member's with F&B 100.00: 600.00 × gold 1.5 = 90.
    rows = (f"K1,HT01,{arrival},{departure},1,2064.00,business_fit,{m['mobile']},,1\n"
            f"K3,HT01,{arrival},{departure},1,500.00,walk_in,{m['mobile']},100.00,0\n")
    assert post_csv(manager, "/api/v1/imports/stays", IMPORT.format(rows=rows)).json["updated"] == 2
    assert sorted((e["kind"], e["points"], e["details"]["stay_no"]) for e in _entries(desk, m["id"])) == \
        [("stay", 90, "K3"), ("stay", 206, "K1"), ("stay_undo", -206, "K1")]
    assert _balance(desk, m["id"]) == 90
    assert _level_spend(app, m["id"]) == 60000
    assert audit_problems(app) == []


def test_synchronous_import_earns_too(app, member_factory, store_today):
    from crm.core.actor import Actor
    from crm.extensions import db
    from crm.points import service as points
    from crm.reports import imports
    m = member_factory()
    arrival, departure = _days(store_today)
    rows = f"Y1,HT01,{arrival},{departure},2,1376.00,walk_in,{m['mobile']},,\n"
    with app.app_context():
        result = imports.run(Actor.system("test"), "stays", IMPORT.format(rows=rows))
        db.session.commit()
        assert result["imported"] == 1
        assert points.balance(m["id"]) == 137  # 1376.00: 137 full tens


def test_bad_input_is_422(desk, member_factory, store_today, login_api):
    m = member_factory()
    for over in ({"room_revenue": 2064}, {"room_revenue": "1e9"}, {"room_revenue": "-1.00"},
                 {"stay_no": "A\x00B"}, {"stay_no": ""}, {"member_id": 2 ** 40}, {"member_id": 999999},
                 {"segment": "vip"}, {"rooms": 0}, {"rooms": "2"}, {"arrival": "yesterday"},
                 {"departure": "2000-01-01"}, {"unknown": 1}, {"store_code": "BJ01"}, {"store_code": "NOPE"},
                 {"member_id": m["id"], "member_mobile": m["mobile"]}, {"member_mobile": "13900000000x"},
                 {"cancelled": "yes"}, {"fb_revenue": "99999999999999.00"}):
        r = _stay(desk, store_today, **over)
        assert r.status_code == 422, (over, r.status_code, r.json)
    assert login_api("cashier").post("/api/v1/stays", json={}).status_code == 403
    assert login_api("marketing").get("/api/v1/stays/rates").status_code == 403


def test_merged_member_stay_goes_to_the_survivor(app, desk, manager, member_factory, store_today):
    dup, survivor = member_factory(), member_factory()
    _stay(desk, store_today, member_id=dup["id"])  # 206 on the duplicate
    r = manager.post(f"/api/v1/members/{survivor['id']}/merge", json={"from_member_id": dup["id"],
                                                                       "reason": "same guest"})
    if r.status_code == 404:
        pytest.skip("merge endpoint differs")
    assert r.status_code in (200, 201), r.json
    assert _balance(desk, survivor["id"]) == 206
    # The stay re-posted naming the duplicate lands on the survivor, unchanged: nothing written.
    again = _stay(desk, store_today, member_id=dup["id"])
    assert again.json["stay"]["member_id"] == survivor["id"]
    assert again.json["points"]["changed"] is False
    # Cancelled: taken back from the survivor, who holds the points now.
    gone = _stay(desk, store_today, member_id=dup["id"], cancelled=True)
    assert gone.json["points"]["reversed"] == 206
    assert _balance(desk, survivor["id"]) == 0
    assert audit_problems(app) == []


def test_the_member_page_names_the_stay(app, staff, desk, member_factory, store_today):
    from tests.test_ui import text, ui_login
    m = member_factory()
    _stay(desk, store_today, member_id=m["id"])
    _stay(desk, store_today, member_id=m["id"], cancelled=True)
    page = text(ui_login(app, "frontdesk", lang="en").get(f"/members/{m['id']}"))
    assert "Points earned by a hotel stay" in page and "Points taken back (stay corrected or cancelled)" in page
    assert page.count("Stay R1001") == 2 and "王府井酒店" in page


# --- PostgreSQL races ------------------------------------------------------------------------

def _pg_only(backend):
    if backend != "postgresql":
        pytest.skip("SQLite serialises every writer: no race to lose")


def test_one_stay_posted_six_times_at_once_earns_once(app, backend, desk, member_factory, store_today):
    from tests.test_races import api_call, race
    _pg_only(backend)
    m = member_factory()
    arrival, departure = _days(store_today)
    body = {"stay_no": "R7", "store_code": "HT01", "arrival": arrival, "departure": departure,
            "room_revenue": "2064.00", "segment": "business_fit", "member_id": m["id"]}
    results = race(6, lambda i: api_call(app, desk.token, "POST", "/api/v1/stays", body, key=f"pms-{i}"))
    assert sorted(s for s, _, _ in results) == [200] * 5 + [201], results  # one inserted it, five updated it
    assert sum(b["points"]["earned"] for _, _, b in results) == 206
    assert [(e["kind"], e["points"]) for e in _entries(desk, m["id"])] == [("stay", 206)]
    assert audit_problems(app) == []


def test_a_posting_and_an_import_of_one_stay_at_once_earn_once(app, backend, desk, manager, member_factory,
                                                               store_today):
    from tests.test_races import api_call, race
    _pg_only(backend)
    m = member_factory()
    arrival, departure = _days(store_today)
    body = {"stay_no": "R8", "store_code": "HT01", "arrival": arrival, "departure": departure,
            "room_revenue": "2064.00", "segment": "business_fit", "member_mobile": m["mobile"]}
    csv = IMPORT.format(rows=f"R8,HT01,{arrival},{departure},1,2064.00,business_fit,{m['mobile']},,\n")

    def act(i):
        if i == 0:
            return api_call(app, desk.token, "POST", "/api/v1/stays", body, key="pms-r8")
        r = app.test_client().post("/api/v1/imports/stays", data=csv.encode(),
                                   headers={"Authorization": f"Bearer {manager.token}",
                                            "Content-Type": "text/csv"})
        return r.status_code, None, r.get_json()
    results = race(2, act)
    assert results[0][0] in (200, 201) and results[1][0] == 202, results
    assert post_csv(manager, "/api/v1/imports/stays", csv).json["status"] == "done"  # and again: nothing new
    assert [(e["kind"], e["points"]) for e in _entries(desk, m["id"])] == [("stay", 206)]
    assert _balance(desk, m["id"]) == 206
    assert audit_problems(app) == []


def test_a_corrected_stay_while_the_member_spends_at_the_till(app, backend, desk, cashier, catalogue, give_points,
                                                              member_factory, store_today):
    from tests.test_races import api_call, race
    _pg_only(backend)
    m = member_factory()
    give_points(m["id"], 500)
    _stay(desk, store_today, member_id=m["id"])  # 206: 706 in all
    arrival, departure = _days(store_today)
    corrected = {"stay_no": "R1001", "store_code": "HT01", "arrival": arrival, "departure": departure,
                 "room_revenue": "1032.00", "segment": "business_fit", "member_id": m["id"]}

    def act(i):
        if i == 0:
            return api_call(app, desk.token, "POST", "/api/v1/stays", corrected, key="fix")
        return api_call(app, cashier.token, "POST", "/api/v1/checkouts",  # a tea of 20.00 paid with 20 points
                        {"store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "TEA", "qty": 1}],
                         "redeem_points": 20}, key=f"tea-{i}")
    results = race(5, act)
    assert [s for s, _, _ in results] == [200, 201, 201, 201, 201], results
    assert results[0][2]["points"] == {"earned": 103, "reversed": 206, "shortfall": 0, "changed": True,
                                       "total": 103}
    # 706 − 4 × 20 redeemed − 206 taken back + 103 (1032.00: 103 full tens) = 523, whatever the order.
    assert _balance(desk, m["id"]) == 523
    assert audit_problems(app) == []


def test_admin_sets_stay_rates_on_the_programme_page(app, staff, desk, member_factory, store_today):
    from crm.core.segments import SEGMENT_KEYS
    from tests.test_ui import text, ui_login
    ui = ui_login(app, staff["admin"], lang="en")
    page = text(ui.get("/admin/programme"))
    assert 'id="f-rate_long_stay"' in page and 'name="rate_walk_in" type="number" value="1"' in page
    form = {f"rate_{k}": "1" for k in SEGMENT_KEYS}
    r = ui.post("/admin/programme/stay-rates", {**form, "rate_conference": "2.5", "rate_ta_group": "1001"})
    assert r.status_code == 422
    assert re.search(r'id="e-rate_conference">[^<]+<', text(r)) and re.search(r'id="e-rate_ta_group">[^<]+<', text(r))
    assert desk.get("/api/v1/stays/rates").json["rates"]["conference"] == 1  # nothing saved
    r = ui.post("/admin/programme/stay-rates", {**form, "rate_conference": "2", "rate_complimentary": "0"})
    assert r.status_code == 302
    m = member_factory()
    # 2064.00 conference at 2 points per 10.00: 206 × 2 = 412.
    assert _stay(desk, store_today, member_id=m["id"], segment="conference").json["points"]["earned"] == 412
    # Long stay set to 1 by the form too: 206.
    assert _stay(desk, store_today, stay_no="L9", member_id=m["id"], segment="long_stay").json["points"][
        "earned"] == 206


def test_member_by_card_or_mobile_and_an_erased_member_is_refused(app, desk, login_api, member_factory, issue_card,
                                                                   store_today):
    m = member_factory()
    card = issue_card(m["id"]).json
    r = _stay(desk, store_today, stay_no="CARD1", card_code=card["card_no"])
    assert r.status_code == 201 and r.json["stay"]["member_id"] == m["id"], r.json
    r = _stay(desk, store_today, stay_no="MOB1", member_mobile=m["mobile"])
    assert r.status_code == 201 and r.json["member"]["points_balance"] == 412, r.json  # 206 + 206
    r = _stay(desk, store_today, stay_no="ANON", room_revenue="300.00")  # no member: stored, earns nothing
    assert r.status_code == 201 and r.json["member"] is None and r.json["points"]["earned"] == 0
    gone = member_factory()
    manager = login_api("manager")
    preview = manager.get(f"/api/v1/members/{gone['id']}/erasure").json
    r = manager.post(f"/api/v1/members/{gone['id']}/erasure", json={
        "reason": "会员书面要求删除", "wallet_rule": "refund",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200, r.json
    r = _stay(desk, store_today, stay_no="GONE", member_id=gone["id"])
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised", r.json
    assert audit_problems(app) == []


def test_a_cancelled_stay_leaves_the_room_figures(app, desk, manager, member_factory, store_today):
    arrival, departure = _days(store_today)
    _stay(desk, store_today, stay_no="X1")
    _stay(desk, store_today, stay_no="X2", room_revenue="900.00")
    url = f"/api/v1/reports/rooms?store_code=HT01&from={arrival}&to={departure}"
    before = manager.get(url).json
    assert (before["rooms_sold"], before["room_revenue"]) == (6, "2964.00")  # 3 + 3 nights; 2064.00 + 900.00
    _stay(desk, store_today, stay_no="X2", room_revenue="900.00", cancelled=True)
    after = manager.get(url).json
    assert (after["rooms_sold"], after["room_revenue"]) == (3, "2064.00")


def test_a_bill_that_takes_stays_and_bills_over_the_threshold_lifts_the_level(app, desk, gold, member_factory,
                                                                               store_today, checkout, catalogue):
    """Level spend is bills + stays wherever it is measured: the till's upgrade check counts the stay."""
    m = member_factory()
    r = _stay(desk, store_today, member_id=m["id"], room_revenue="1800.00")
    assert r.status_code == 201, r.json
    assert r.json["member"]["level"] != "gold"  # 1800.00 of 2000.00
    # Two lobsters at the member price 328.00 = 656.00: 1800.00 + 656.00 = 2456.00 ≥ 2000.00.
    bill = checkout([("LOBSTER", 2)], member_id=m["id"])
    assert bill.status_code == 201, bill.json
    assert _level(desk, m["id"]) == "gold"
    assert audit_problems(app) == []


def test_a_guest_stay_sent_again_with_another_segment_changes_nothing(desk, member_factory, store_today):
    """A stay whose member was taken off it earns nothing whatever its segment: re-sending it with
    another segment settles nothing (it counted as a change, rewrote its earning row and audited
    0 points)."""
    m = member_factory()
    assert _stay(desk, store_today, stay_no="G1", member_id=m["id"]).json["points"]["earned"] == 206
    off = _stay(desk, store_today, stay_no="G1")  # the PMS corrects it: not this member's stay
    assert off.json["points"]["reversed"] == 206 and off.json["points"]["changed"] is True
    again = _stay(desk, store_today, stay_no="G1", segment="conference")
    assert again.status_code == 200, again.json
    assert again.json["points"] == {"earned": 0, "reversed": 0, "shortfall": 0, "changed": False, "total": 0}
