"""Referrals 老带新 (issue 15.4): a member's code, registering with it, the reward of the
referee's first qualifying bill (points or coupons) once per referee within the referrer's
yearly cap, its reversal by a void, the report — on SQLite and PostgreSQL."""
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crm.core.audit import AuditEntry
from crm.extensions import db
from crm.members import referrals
from crm.members.models import Member
from tests.conftest import audit_problems
from tests.test_ui import text, ui_login

CODE = re.compile(r"[A-HJ-NP-Z2-9]{8}")


def at_shanghai(*args) -> datetime:
    return datetime(*args, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def admin(login_api):
    return login_api("admin")


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def programme(admin):
    """programme(**rules): PATCH the referral rules (money as "12.34")."""
    def set_rules(**rules):
        r = admin.patch("/api/v1/programme", json=rules)
        assert r.status_code == 200, r.json
        return r.json
    return set_rules


@pytest.fixture
def points_reward(programme):
    return programme(referral_reward="points", referral_referrer_points=100, referral_referee_points=50,
                     referral_min_spend="100.00", referral_yearly_cap=10)


def points_of(api, member_id):
    return api.get(f"/api/v1/members/{member_id}/points").json["balance"]


def referee_of(member_factory, referrer, **fields):
    return member_factory(referral_code=referrer["referral_code"], **fields)


def audit_rows(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                  .order_by(AuditEntry.id)).all()


def ledgers_clean(app):
    assert audit_problems(app) == []
    with app.app_context():
        assert referrals.audit_mismatches() == []


# Codes and registration ------------------------------------------------------------------

def test_every_member_has_a_code_and_a_new_member_registered_with_it_is_linked(app, member_factory, desk):
    a = member_factory()
    assert CODE.fullmatch(a["referral_code"]) and a["referred_by_id"] is None
    typed = a["referral_code"].lower()
    b = member_factory(referral_code=f" {typed[:4]}-{typed[4:]} ")  # any case, spaces and a hyphen ignored
    assert b["referred_by_id"] == a["id"]
    assert CODE.fullmatch(b["referral_code"]) and b["referral_code"] != a["referral_code"]
    assert desk.get(f"/api/v1/members/{b['id']}").json["referred_by_id"] == a["id"]
    register = audit_rows(app, "member.register")[-1]
    assert register.entity_id == str(b["id"]) and register.details["referred_by"] == a["id"]
    got = desk.get(f"/api/v1/members/{a['id']}/referrals").json
    assert got["referral_code"] == a["referral_code"] and got["referred_by"] is None
    assert [(r["member_id"], r["reward"]) for r in got["referees"]] == [(b["id"], None)]
    assert desk.get(f"/api/v1/members/{b['id']}/referrals").json["referred_by"]["id"] == a["id"]
    with app.app_context():
        assert referrals.code_for(db.session.get(Member, a["id"])) == a["referral_code"]


@pytest.mark.parametrize("code", ["ZZZZZZZZ", "O0I1O0I1", "abc", "x" * 32])
def test_an_unknown_code_is_a_422_on_its_field_and_saves_nothing(app, member_factory, desk, code):
    member_factory()
    body = {"name": "新客", "mobile": "13700000001", "store_code": "BJ01", "referral_code": code}
    r = desk.post("/api/v1/members", json=body)
    assert r.status_code == 422, r.json
    assert r.json["error"]["code"] == "unknown_referral_code" and r.json["error"]["details"]["field"] == "referral_code"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Member)) == 1
    r = desk.post("/api/v1/members", json={**body, "referral_code": "y" * 33})  # schema: too long
    assert r.status_code == 422 and "referral_code" in str(r.json)


def test_the_link_is_set_at_registration_only(member_factory, desk):
    a, b = member_factory(), member_factory()
    r = desk.patch(f"/api/v1/members/{b['id']}", json={"referral_code": a["referral_code"]})
    assert r.status_code == 422
    assert desk.get(f"/api/v1/members/{b['id']}").json["referred_by_id"] is None


def test_registration_form_takes_the_code_and_says_beside_it_when_unknown(app, staff, member_factory):
    a = member_factory()
    ui = ui_login(app, staff["front_desk"], lang="en")
    page = text(ui.get("/members/new"))
    assert 'name="referral_code"' in page
    form = {"name": "Wang", "mobile": "13700000002", "store_code": "BJ01", "referral_code": "NOSUCH22",
            "form_token": re.search(r'name="form_token" value="([^"]+)"', page)[1]}
    r = ui.post("/members/new", form)
    assert r.status_code == 422 and re.search(r'id="e-referral_code">No member has the referral code NOSUCH22', text(r))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Member)) == 1
    page = text(ui.get("/members/new"))
    form.update(referral_code=a["referral_code"].lower(),
                form_token=re.search(r'name="form_token" value="([^"]+)"', page)[1])
    r = ui.post("/members/new", form)
    assert r.status_code == 302, text(r)[:2000]
    with app.app_context():
        wang = db.session.scalar(select(Member).where(Member.name == "Wang"))
        assert wang.referred_by_id == a["id"]
    detail = text(ui.get(f"/members/{wang.id}"))
    assert wang.referral_code in detail and "Referred by" in detail and a["name"] in detail
    assert "Wang" in text(ui.get(f"/members/{a['id']}"))  # the referrer's page lists the referee


# The reward ------------------------------------------------------------------------------

def test_first_qualifying_bill_rewards_both_once(app, catalogue, member_factory, checkout, cashier, points_reward):
    a = member_factory()
    b = referee_of(member_factory, a)
    small = checkout([("TEA", 1)], member_id=b["id"])  # 20.00, below the 100.00 minimum
    assert small.status_code == 201 and points_of(cashier, a["id"]) == 0
    first = checkout([("SALMON", 2)], member_id=b["id"])  # 136.00 for members
    assert first.status_code == 201, first.json
    assert points_of(cashier, a["id"]) == 100
    assert points_of(cashier, b["id"]) == 2 + 13 + 50  # both bills' own points, and the reward
    again = checkout([("SALMON", 2)], member_id=b["id"])
    assert again.status_code == 201 and points_of(cashier, a["id"]) == 100  # once per referee
    reward = cashier.get(f"/api/v1/members/{a['id']}/referrals").json
    assert reward["rewarded_this_year"] == 1 and reward["yearly_cap"] == 10
    [row] = reward["referees"]
    assert (row["reward"]["status"], row["reward"]["checkout_id"], row["reward"]["referrer_points"],
            row["reward"]["referee_points"]) == ("granted", first.json["id"], 100, 50)
    [audited] = audit_rows(app, "referral.reward")
    assert audited.details["referrer_id"] == a["id"] and audited.details["checkout_id"] == first.json["id"]
    ledgers_clean(app)


def test_a_member_without_referrer_or_a_programme_without_reward_gives_nothing(app, catalogue, member_factory,
                                                                              checkout, cashier, programme):
    a = member_factory()
    b = referee_of(member_factory, a)
    assert checkout([("SALMON", 2)], member_id=b["id"]).status_code == 201  # referral_reward is "none" by default
    assert points_of(cashier, a["id"]) == 0
    programme(referral_reward="points", referral_referrer_points=100)
    assert checkout([("SALMON", 2)], member_id=a["id"]).status_code == 201  # a has no referrer
    assert checkout([("SALMON", 2)], member_id=b["id"]).status_code == 201  # qualifies now (minimum 0)
    assert points_of(cashier, a["id"]) == 13 + 100


def test_a_retried_bill_with_the_same_key_rewards_once(app, catalogue, member_factory, checkout, cashier,
                                                       points_reward):
    a = member_factory()
    b = referee_of(member_factory, a)
    one = checkout([("SALMON", 2)], member_id=b["id"], key="bill-1")
    two = checkout([("SALMON", 2)], member_id=b["id"], key="bill-1")
    assert one.status_code == two.status_code == 201 and one.json["id"] == two.json["id"]
    assert points_of(cashier, a["id"]) == 100 and points_of(cashier, b["id"]) == 13 + 50
    assert len(audit_rows(app, "referral.reward")) == 1
    ledgers_clean(app)


def test_void_takes_the_reward_back_frees_the_cap_and_a_later_bill_qualifies(app, catalogue, member_factory, checkout,
                                                                             cashier, manager, programme):
    programme(referral_reward="points", referral_referrer_points=100, referral_referee_points=50,
              referral_min_spend="100.00", referral_yearly_cap=1)
    a = member_factory()
    b, c = referee_of(member_factory, a), referee_of(member_factory, a)
    first = checkout([("SALMON", 2)], member_id=b["id"]).json
    assert points_of(cashier, a["id"]) == 100
    capped = checkout([("SALMON", 2)], member_id=c["id"])
    assert capped.status_code == 201 and points_of(cashier, a["id"]) == 100  # the cap of 1 is reached
    r = manager.post(f"/api/v1/checkouts/{first['id']}/void", json={"reason": "wrong table"})
    assert r.status_code == 201, r.json
    assert points_of(cashier, a["id"]) == 0 and points_of(cashier, b["id"]) == 0
    kinds = [(e["kind"], e["points"]) for e in cashier.get(f"/api/v1/members/{a['id']}/points/entries").json["items"]]
    assert kinds == [("reversal", -100), ("earn", 100)]  # a ledger entry, not an edit
    got = cashier.get(f"/api/v1/members/{a['id']}/referrals").json
    assert got["rewarded_this_year"] == 0
    assert {r["member_id"]: r["reward"] and r["reward"]["status"] for r in got["referees"]} == {
        b["id"]: "reversed", c["id"]: None}
    [reversed_] = audit_rows(app, "referral.reverse")
    assert reversed_.details["referrer_points_reclaimed"] == 100 and reversed_.details["referee_points_reclaimed"] == 50
    assert checkout([("SALMON", 2)], member_id=c["id"]).status_code == 201  # the slot is free again
    assert points_of(cashier, a["id"]) == 100
    assert checkout([("SALMON", 2)], member_id=b["id"]).status_code == 201  # b could qualify again: cap full
    assert points_of(cashier, a["id"]) == 100
    ledgers_clean(app)


def test_void_after_the_referrer_spent_the_reward_writes_off_the_rest(app, catalogue, member_factory, checkout, cashier,
                                                                      manager, points_reward):
    a = member_factory()
    b = referee_of(member_factory, a)
    first = checkout([("SALMON", 2)], member_id=b["id"]).json
    assert checkout([("SALMON", 1)], member_id=a["id"], redeem_points=60).status_code == 201
    assert points_of(cashier, a["id"]) == 40
    assert manager.post(f"/api/v1/checkouts/{first['id']}/void", json={"reason": "x"}).status_code == 201
    assert points_of(cashier, a["id"]) == 0  # never below zero; 60 written off
    [reversed_] = audit_rows(app, "referral.reverse")
    details = reversed_.details
    assert (details["referrer_points_reclaimed"], details["referrer_points_written_off"]) == (40, 60)
    ledgers_clean(app)


@pytest.mark.clock_at(at_shanghai(2026, 12, 31, 23, 0))
def test_the_cap_counts_per_calendar_year_of_the_bills_store(app, catalogue, member_factory, checkout, cashier,
                                                             programme, clock):
    programme(referral_reward="points", referral_referrer_points=100, referral_yearly_cap=1)
    a = member_factory()
    b, c = referee_of(member_factory, a), referee_of(member_factory, a)
    assert checkout([("TEA", 1)], member_id=b["id"]).status_code == 201
    assert checkout([("TEA", 1)], member_id=c["id"]).status_code == 201
    assert points_of(cashier, a["id"]) == 100  # one in 2026
    clock.set(at_shanghai(2027, 1, 1, 0, 30))  # still 2026 in UTC, 2027 in Beijing
    assert checkout([("TEA", 1)], member_id=c["id"]).status_code == 201
    assert points_of(cashier, a["id"]) == 200
    got = cashier.get(f"/api/v1/members/{a['id']}/referrals").json
    assert (got["year"], got["rewarded_this_year"]) == (2027, 1)
    ledgers_clean(app)


@pytest.fixture
def coupon_types(catalogue):
    for body in ({"code": "REFA", "name": "推荐人券", "kind": "cash", "face_value": "30.00"},
                 {"code": "REFB", "name": "新人券", "kind": "cash", "face_value": "20.00", "stock_total": 5}):
        r = catalogue.post("/api/v1/coupon-types", json=body)
        assert r.status_code == 201, r.json
    return catalogue


def test_coupon_reward_and_its_void_cancels_the_unused_one(app, coupon_types, member_factory, checkout, cashier,
                                                           manager, programme):
    programme(referral_reward="coupon", referral_referrer_coupon="refa", referral_referee_coupon="REFB",
              referral_min_spend="50.00")
    a = member_factory()
    b = referee_of(member_factory, a)
    first = checkout([("SALMON", 1)], member_id=b["id"]).json
    [mine] = cashier.get(f"/api/v1/members/{a['id']}/coupons").json
    [theirs] = cashier.get(f"/api/v1/members/{b['id']}/coupons").json
    assert (mine["type"], mine["status"], theirs["type"], theirs["status"]) == ("REFA", "issued", "REFB", "issued")
    used = checkout([("SALMON", 1)], member_id=b["id"], coupon_codes=[theirs["code"]])  # b uses theirs
    assert used.status_code == 201, used.json
    assert manager.post(f"/api/v1/checkouts/{first['id']}/void", json={"reason": "x"}).status_code == 201
    statuses = {c["code"]: c["status"] for m in (a, b) for c in cashier.get(f"/api/v1/members/{m['id']}/coupons").json}
    assert statuses == {mine["code"]: "cancelled", theirs["code"]: "redeemed"}
    [reversed_] = audit_rows(app, "referral.reverse")
    assert (reversed_.details["referrer_coupon"], reversed_.details["referee_coupon"]) == ("cancelled", "kept_used")
    ledgers_clean(app)


def test_a_coupon_type_out_of_stock_gives_that_side_nothing_and_the_bill_closes(app, coupon_types, member_factory,
                                                                                checkout, cashier, programme):
    programme(referral_reward="coupon", referral_referrer_coupon="REFA", referral_referee_coupon="REFB")
    assert coupon_types.patch("/api/v1/coupon-types/REFB", json={"active": False}).status_code == 200
    a = member_factory()
    b = referee_of(member_factory, a)
    assert checkout([("TEA", 1)], member_id=b["id"]).status_code == 201
    assert len(cashier.get(f"/api/v1/members/{a['id']}/coupons").json) == 1
    assert cashier.get(f"/api/v1/members/{b['id']}/coupons").json == []
    [audited] = audit_rows(app, "referral.reward")
    assert audited.details["referee_coupon_refused"] == "coupon_type_inactive"


# Programme rules -------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"referral_reward": "cash"}, "referral_reward"),
    ({"referral_yearly_cap": -1}, "referral_yearly_cap"),
    ({"referral_referrer_coupon": "NOSUCH"}, "referral_referrer_coupon"),
    ({"referral_reward": "points"}, "referral_referrer_points"),  # points of nobody
    ({"referral_reward": "coupon"}, "referral_referrer_coupon"),  # coupons of no type
])
def test_bad_referral_rules_are_refused_on_their_field(admin, body, field):
    before = admin.get("/api/v1/programme").json
    r = admin.patch("/api/v1/programme", json=body)
    assert r.status_code == 422, r.json
    assert field in str(r.json)
    assert admin.get("/api/v1/programme").json == before


def test_admin_sets_the_referral_rules_on_the_programme_page(app, staff, login_api):
    ui = ui_login(app, staff["admin"], lang="en")
    page = text(ui.get("/admin/programme"))
    assert 'name="referral_reward"' in page and 'name="referral_yearly_cap"' in page
    r = ui.post("/admin/programme", {"referral_reward": "points", "referral_referrer_points": "200",
                                     "referral_referee_points": "0", "referral_min_spend": "88.00",
                                     "referral_yearly_cap": "5", "referral_referrer_coupon": ""})
    assert r.status_code == 302, text(r)[:3000]
    rules = login_api("manager").get("/api/v1/programme").json
    assert (rules["referral_reward"], rules["referral_referrer_points"], rules["referral_min_spend"],
            rules["referral_yearly_cap"]) == ("points", 200, "88.00", 5)
    assert "<option value=\"\"" in text(ui.get("/admin/programme"))  # a coupon type, or none
    r = ui.post("/admin/programme", {"referral_reward": "coupon", "referral_referrer_coupon": "nope"})
    assert r.status_code == 422
    assert re.search(r'id="e-referral_referrer_coupon">No coupon type has the code NOPE', text(r))


# The report --------------------------------------------------------------------------------

def test_report_per_referrer_and_store_with_export(app, staff, catalogue, member_factory, checkout, manager,
                                                   points_reward, store_today):
    a, z = member_factory(), member_factory()
    b = referee_of(member_factory, a)
    c = referee_of(member_factory, a, store_code="BJ02")
    d = referee_of(member_factory, z)
    first_b = checkout([("SALMON", 2)], member_id=b["id"]).json
    checkout([("SALMON", 2)], member_id=c["id"])
    assert manager.post(f"/api/v1/checkouts/{first_b['id']}/void", json={"reason": "x"}).status_code == 201
    del d
    r = manager.get(f"/api/v1/reports/referrals?from={store_today}&to={store_today}")
    assert r.status_code == 200, r.json
    assert (r.json["from"], r.json["to"]) == (store_today, store_today)
    rows = {row["member_id"]: row for row in r.json["referrers"]}
    assert (rows[a["id"]]["referees"], rows[a["id"]]["rewarded"], rows[a["id"]]["reversed"],
            rows[a["id"]]["referrer_points"], rows[a["id"]]["referee_points"]) == (2, 1, 1, 100, 50)
    assert (rows[z["id"]]["referees"], rows[z["id"]]["rewarded"]) == (1, 0)
    stores = {row["store_code"]: row for row in r.json["stores"]}
    assert (stores["BJ01"]["referees"], stores["BJ01"]["reversed"], stores["BJ02"]["rewarded"]) == (2, 1, 1)
    assert r.json["totals"]["referees"] == 3
    only = manager.get(f"/api/v1/reports/referrals?from={store_today}&to={store_today}&store_code=BJ02").json
    assert [row["member_id"] for row in only["referrers"]] == [a["id"]]
    csv = manager.get(f"/api/v1/reports/referrals?from={store_today}&to={store_today}&format=csv")
    assert csv.status_code == 200 and "referral_code" in csv.data.decode("utf-8-sig").splitlines()[0]
    bad = manager.get(f"/api/v1/reports/referrals?from={store_today}")
    assert bad.status_code == 422
    assert login_api_get(app, staff, "cashier", f"/api/v1/reports/referrals?from={store_today}&to={store_today}") == 403
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get(f"/reports/referrals?from={store_today}&to={store_today}"))
    assert a["referral_code"] in page and 'id="referrals-by-store"' in page
    assert ui.get(f"/reports/referrals?from={store_today}&to=1999-01-01").status_code == 422
    assert ui.get("/reports/referrals?utm=x").status_code == 200  # this year so far; stray parameters ignored
    xlsx = ui.get(f"/reports/referrals?from={store_today}&to={store_today}&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def login_api_get(app, staff, role, path):
    from tests.conftest import login_on
    return login_on(app, staff[role]).get(path).status_code


def test_member_pages_show_the_code_the_referees_and_the_rewards_in_the_history(app, staff, catalogue, member_factory,
                                                                                 checkout, points_reward):
    a = member_factory()
    b = referee_of(member_factory, a)
    checkout([("SALMON", 2)], member_id=b["id"])
    ui = ui_login(app, staff["front_desk"], lang="en")
    page = text(ui.get(f"/members/{a['id']}"))
    assert f'id="referral-code">{a["referral_code"]}<' in page
    assert "Rewarded this year: 1 of 10." in page and b["name"] in page
    assert page.count('class="referral-note"') == 1  # the referrer's +100 in the history
    page = text(ui.get(f"/members/{b['id']}"))
    assert page.count('class="referral-note"') == 1 and "Referred by" in page  # the referee's +50, not the bill's
    assert "Referral report" not in page  # managers only
