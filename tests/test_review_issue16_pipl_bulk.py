"""Review of issue 16 (PIPL requests and bulk work): attacks that found bugs, with the fixes'
tests, and attacks that held."""
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEntry
from crm.extensions import db
from tests.conftest import audit_problems
from tests.test_bulk_jobs import audience, create, finished, tags_of
from tests.test_coupons import coupon_types  # noqa: F401 (a fixture)
from tests.test_gifts_prizes import member_with_draws, prize, types  # noqa: F401 (fixtures)


def _erase(manager, member_id, rule="refund"):
    preview = manager.get(f"/api/v1/members/{member_id}/erasure").json
    r = manager.post(f"/api/v1/members/{member_id}/erasure", json={
        "reason": "会员书面要求删除", "wallet_rule": rule,
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200, r.json
    return r.json


def _audit_text(app, member_id) -> str:
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "members",
                                                           AuditEntry.entity_id == str(member_id))).all()
        return json.dumps([r.details for r in rows], ensure_ascii=False)


def test_erasure_removes_the_old_profile_from_the_members_audit_rows(app, login_api, member_factory):
    """An edit's audit row holds the profile before and after (name, email, notes, birthday):
    after an erasure the member's history page and the audit log must not show them."""
    manager, desk = login_api("manager"), login_api("front_desk")
    m = member_factory(name="赵小红", email="zxh@example.com", notes="对花生过敏", birthday="1990-02-03")
    r = desk.patch(f"/api/v1/members/{m['id']}", json={"name": "赵晓红", "email": "zxh2@example.com",
                                                       "notes": "花生过敏，靠窗"})
    assert r.status_code == 200, r.json
    assert "赵小红" in _audit_text(app, m["id"])  # what the edit logged
    _erase(manager, m["id"])
    shown = _audit_text(app, m["id"])
    for old in ("赵小红", "赵晓红", "zxh@example.com", "zxh2@example.com", "对花生过敏", "花生过敏，靠窗",
                "1990-02-03"):
        assert old not in shown, old
    assert not audit_problems(app)


def test_erasure_of_a_survivor_erases_the_duplicate_merged_into_it(app, login_api, member_factory, issue_card):
    """The tombstone of a duplicate merged into the member is the same person: its name, email,
    notes and birthday, and the merge row's copy of its profile (full mobile), go too."""
    from crm.members.merge_models import MemberMerge
    from crm.members.models import Member
    manager = login_api("manager")
    a = member_factory(name="钱多多", email="qdd@example.com")
    b = member_factory(name="钱多多", email="qdd-old@example.com", notes="旧卡", birthday="1979-09-09",
                       mobile="13911112222")
    assert issue_card(b["id"]).status_code == 201  # the welcome message, to the duplicate's mobile
    with app.app_context():
        from crm.notifications.models import Notification
        assert db.session.scalar(select(Notification.address).where(Notification.member_id == b["id"])) == \
            "13911112222"
    r = manager.post(f"/api/v1/members/{a['id']}/merge", json={"from_member_id": b["id"], "reason": "同一人"})
    assert r.status_code in (200, 201), r.json
    _erase(manager, a["id"])
    with app.app_context():
        dup = db.session.get(Member, b["id"])
        assert (dup.name, dup.email, dup.notes, dup.birthday_month) == ("", None, "", None)
        assert dup.anonymised_at is not None
        profiles = json.dumps([x.from_profile for x in db.session.scalars(select(MemberMerge))], ensure_ascii=False)
        sent = db.session.execute(select(Notification.address, Notification.body)
                                  .where(Notification.member_id == b["id"])).all()
        assert sent and all(row == ("", "") for row in sent), sent
    for old in ("钱多多", "qdd-old@example.com", "13911112222", "旧卡"):
        assert old not in profiles, old
    assert "钱多多" not in _audit_text(app, b["id"])
    assert not audit_problems(app)


def test_reversing_a_tag_removal_does_not_tag_an_erased_member_again(app, marketing, login_api, member_factory):
    manager = login_api("manager")
    ids = [member_factory(tags=["VIP"])["id"] for _ in range(2)]
    job = finished(marketing, create(marketing, audience(marketing, tags=["VIP"]), "tag_remove", tag="VIP"))
    assert job["applied"] == 2
    _erase(manager, ids[0])
    r = manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "搞错了"})
    assert r.status_code == 202, r.json
    assert tags_of(app, ids[0]) == []  # erased: no tag comes back
    assert tags_of(app, ids[1]) == ["VIP"]
    assert not audit_problems(app)


def test_erasure_api_with_a_huge_id_or_floats_is_a_coded_4xx(login_api, member_factory):
    manager = login_api("manager")
    m = member_factory()
    body = {"reason": "x", "wallet_rule": "refund", "confirm": {"points": 0, "principal": "0.00", "bonus": "0.00"}}
    for path in ("/api/v1/members/99999999999999999999/erasure", "/api/v1/members/2147483648/erasure"):
        assert manager.get(path).status_code == 404
        r = manager.post(path, json=body)
        assert r.status_code == 404, r.json
    assert manager.get("/api/v1/members/99999999999999999999/export?reason=x").status_code == 404
    for bad in ({"points": 0.5, "principal": "0.00", "bonus": "0.00"},
                {"points": 0, "principal": 0.0, "bonus": "0.00"},
                {"points": 0, "principal": "0.00\x00", "bonus": "0.00"},
                {"points": 10**30, "principal": "0.00", "bonus": "0.00"}):
        r = manager.post(f"/api/v1/members/{m['id']}/erasure", json={**body, "confirm": bad})
        assert 400 <= r.status_code < 500 and r.json["error"]["code"], (bad, r.status_code)
    for bad in ({"reason": "x" * 10_000}, {"reason": "a\x00b"}, {"store_code": "BJ01\x00"}, {"wallet_rule": 1.5}):
        r = manager.post(f"/api/v1/members/{m['id']}/erasure", json={**body, **bad})
        assert 400 <= r.status_code < 500 and r.json["error"]["code"], (bad, r.status_code)


def test_bulk_job_hostile_parameters_are_coded_4xx_and_change_nothing(app, marketing, member_factory, login_api):
    from crm.bulk.models import BulkJob
    member_factory(tags=["VIP"])
    aud = audience(marketing, tags=["VIP"])
    good = {"audience_id": aud, "action": "points", "reason": "x", "points": 10}
    for bad in ({"audience_id": 99999999999999999999}, {"audience_id": 2147483648}, {"audience_id": str(aud)},
                {"audience_id": float(aud)}, {"audience_id": [aud]}, {"audience_id": True},
                {"points": 10.0}, {"points": "10"}, {"points": 10**30}, {"points": 12.5},
                {"expires_on": "9999-12-31"}, {"expires_on": "1970-01-01"}, {"expires_on": 20270101},
                {"reason": "x" * 10_000}, {"reason": "a\x00b"}, {"action": "coupon", "coupon_type": "A\x00"},
                {"action": "coupon", "coupon_type": 12.34}, {"action": "tag_add", "tag": "a\x00"},
                {"action": "tag_add", "tag": 5}, {"action": "level", "level": "gold"}):
        r = marketing.post("/api/v1/bulk-jobs", json={**good, **bad})
        assert 400 <= r.status_code < 500 and r.json["error"]["code"], (bad, r.status_code, r.json)
    manager = login_api("manager")
    for path in ("/api/v1/bulk-jobs/99999999999999999999", "/api/v1/bulk-jobs/2147483648"):
        assert manager.get(path).status_code == 404
        assert manager.post(path + "/reverse", json={"reason": "x"}).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(BulkJob)) == 0


def test_a_bulk_job_sent_twice_with_one_key_is_one_job(app, marketing, member_factory):
    ids = [member_factory(tags=["VIP"])["id"] for _ in range(3)]
    aud = audience(marketing, tags=["VIP"])
    first = finished(marketing, create(marketing, aud, "points", key="k-1", points=50))
    again = create(marketing, aud, "points", key="k-1", points=50)
    assert again.status_code == 202 and again.json["id"] == first["id"]
    other = create(marketing, aud, "points", key="k-1", points=60)
    assert other.status_code in (409, 422)
    from tests.test_bulk_jobs import balances
    assert balances(app, ids) == [50, 50, 50]


def _stay(member_id, departure, store_id=1):
    from crm.reports.models import Stay
    return Stay(stay_no=f"S-{member_id}-{departure}", store_id=store_id, arrival=departure, departure=departure,
                room_revenue=0, member_id=member_id)


def test_retention_leaves_a_member_active_through_a_hotel_stay_only(app, staff, member_factory, clock):
    from crm.members import pipl
    from crm.members.models import Member
    stayed, idle = member_factory(name="住店客")["id"], member_factory(name="沉睡客")["id"]
    job_now = clock.now().replace(year=clock.now().year + 2)
    with app.app_context():
        from crm.stores.models import Store
        store_id = db.session.scalar(select(Store.id).limit(1))
        db.session.add(_stay(stayed, (job_now - timedelta(days=30)).date(), store_id))
        db.session.commit()
        assert pipl.anonymise_inactive(1, now=job_now)["anonymised"] == 1
        assert db.session.get(Member, stayed).anonymised_at is None
        assert db.session.get(Member, idle).anonymised_at is not None


def test_retention_does_not_erase_a_member_who_came_back_while_the_batch_ran(app, staff, member_factory, clock,
                                                                            monkeypatch):
    """The batch's members are picked first and erased one by one: a stay or bill that lands for
    a later member meanwhile must save them (checked again under the member's lock)."""
    from crm.members import pipl
    from crm.members.models import Member
    first, back = member_factory(name="甲")["id"], member_factory(name="乙")["id"]
    job_now = clock.now().replace(year=clock.now().year + 2)
    real = pipl.anonymise

    def anonymise(actor, member_id, **kw):
        if member_id == first:  # while the first is erased, the second checks in at a hotel
            from crm.stores.models import Store
            store_id = db.session.scalar(select(Store.id).limit(1))
            db.session.add(_stay(back, (job_now - timedelta(days=1)).date(), store_id))
            db.session.flush()
        return real(actor, member_id, **kw)
    monkeypatch.setattr(pipl, "anonymise", anonymise)
    with app.app_context():
        done = pipl.anonymise_inactive(1, now=job_now)
        assert db.session.get(Member, back).anonymised_at is None
        assert db.session.get(Member, first).anonymised_at is not None
    assert done["anonymised"] == 1


def test_a_job_given_up_half_way_can_still_be_reversed(app, marketing, login_api, member_factory, monkeypatch):
    """A job whose runners kept stopping is failed after some members got their points: the
    manager must be able to take back what it did (it was reversible only once `done`)."""
    from crm.bulk import service as bulk
    from tests.test_bulk_jobs import balances
    manager = login_api("manager")
    monkeypatch.setattr(bulk, "CHUNK", 2)
    ids = [member_factory(tags=["VIP"])["id"] for _ in range(5)]
    monkeypatch.setitem(app.config, "BULK_RUN_INLINE", False)
    monkeypatch.setattr(bulk, "start", lambda job_id: None)
    job_id = create(marketing, audience(marketing, tags=["VIP"]), "points", points=10).json["id"]
    real_apply = bulk._apply

    def breaks_on_the_first(job, actor, member_id, context):
        if member_id == ids[0]:  # the last chunk (highest ids go first) fails every time
            raise RuntimeError("broken")
        return real_apply(job, actor, member_id, context)
    monkeypatch.setattr(bulk, "_apply", breaks_on_the_first)
    with app.app_context():
        for _ in range(bulk.MAX_ATTEMPTS + 1):
            bulk.run_pending()
    job = marketing.get(f"/api/v1/bulk-jobs/{job_id}").json
    assert job["status"] == "failed" and job["applied"] == 4, job
    assert balances(app, ids) == [0, 10, 10, 10, 10]
    monkeypatch.setattr(bulk, "_apply", real_apply)
    r = manager.post(f"/api/v1/bulk-jobs/{job_id}/reverse", json={"reason": "半途而废，撤销"})
    assert r.status_code == 202, r.json
    with app.app_context():
        bulk.run_pending()
    job = marketing.get(f"/api/v1/bulk-jobs/{job_id}").json
    assert job["status"] == "reversed" and job["undone"] == 4, job
    assert balances(app, ids) == [0] * 5
    assert not audit_problems(app)


def test_pipl_queries_with_hostile_values_are_coded_4xx(login_api, member_factory):
    manager = login_api("manager")
    m = member_factory()
    for q in ("member_id=99999999999999999999", "member_id=2147483648", "member_id=-1", "member_id=1.5",
              "kind=erasure%00", "page=99999999999999999999", "per_page=0"):
        r = manager.get(f"/api/v1/privacy-requests?{q}")
        ok = r.json["total"] == 0 if r.status_code == 200 else 400 <= r.status_code < 500 and r.json["error"]["code"]
        assert ok, (q, r.status_code)
    for q in ("reason=a%00b", "reason=" + "x" * 10_000, "reason=%20"):
        r = manager.get(f"/api/v1/members/{m['id']}/export?{q}")
        assert 400 <= r.status_code < 500 and r.json["error"]["code"], (q, r.status_code)
    assert manager.get("/api/v1/privacy-requests").json["total"] == 0


def test_an_erasure_while_a_bulk_grant_runs_over_the_member_leaves_no_points_on_them(
        app, backend, marketing, login_api, member_factory, monkeypatch):
    """PostgreSQL row locks: the grant's chunk holds its members' locks; the erasure either comes
    first (the member is then skipped as gone) or after (the confirmed points moved: 409
    balances_changed). Never points on an anonymised member, never a 5xx."""
    import time

    from crm.bulk import service as bulk
    from tests.test_bulk_jobs import balances
    from tests.test_races import api_call, race
    if backend != "postgresql":
        pytest.skip("row locks race on PostgreSQL; SQLite serialises writers")
    manager = login_api("manager")
    ids = [member_factory(tags=["VIP"])["id"] for _ in range(4)]
    monkeypatch.setitem(app.config, "BULK_RUN_INLINE", False)
    monkeypatch.setattr(bulk, "start", lambda job_id: None)
    job_id = create(marketing, audience(marketing, tags=["VIP"]), "points", points=10).json["id"]
    real_apply = bulk._apply

    def slow(*args):
        time.sleep(0.15)
        return real_apply(*args)
    monkeypatch.setattr(bulk, "_apply", slow)
    target = ids[1]
    body = {"reason": "race", "wallet_rule": "forfeit", "confirm": {"points": 0, "principal": "0.00", "bonus": "0.00"}}

    def act(i):
        if i == 0:
            with app.app_context():
                return bulk.run_job(job_id)
        time.sleep(0.2)  # the chunk holds the locks by now
        return api_call(app, manager.token, "POST", f"/api/v1/members/{target}/erasure", body)
    ran, erased = race(2, act)
    assert ran is True and erased[0] in (200, 409), erased
    job = marketing.get(f"/api/v1/bulk-jobs/{job_id}").json
    assert job["status"] == "done" and job["done"] == 4
    if erased[0] == 200:
        assert balances(app, [target]) == [0] and job["skipped_by_reason"] == {"member_gone": 1}
    else:
        assert erased[1] == "balances_changed" and balances(app, [target]) == [10]
    assert not audit_problems(app)


def test_erasing_a_merged_duplicate_points_to_the_survivor_and_changes_nothing(app, login_api, member_factory):
    """The person's record lives on in the survivor: "anonymised" on the tombstone would tell
    the manager it was done while their name and mobile stay on the survivor."""
    manager = login_api("manager")
    a, b = member_factory(name="孙悟空"), member_factory(name="孙悟空", mobile="13933334444")
    r = manager.post(f"/api/v1/members/{a['id']}/merge", json={"from_member_id": b["id"], "reason": "同一人",
                                                                "fields": {"mobile": "from"}})
    assert r.status_code in (200, 201), r.json
    r = manager.post(f"/api/v1/members/{b['id']}/erasure", json={
        "reason": "要求删除", "wallet_rule": "refund", "confirm": {"points": 0, "principal": "0.00", "bonus": "0.00"}})
    assert r.status_code == 410 and r.json["error"]["code"] == "member_merged", r.json
    assert r.json["error"]["details"]["survivor_id"] == a["id"]
    assert manager.get("/api/v1/privacy-requests?kind=erasure").json["total"] == 0


def test_the_export_of_a_survivor_holds_what_was_merged_into_it(app, login_api, member_factory):
    """The duplicate merged into the member is the same person: its old profile (the merge row)
    is data held about them, in the JSON file and on the printable page."""
    manager = login_api("manager")
    a, b = member_factory(name="周芷若"), member_factory(name="周芷若", email="zzr-old@example.com",
                                                         notes="旧卡会员")
    r = manager.post(f"/api/v1/members/{a['id']}/merge", json={"from_member_id": b["id"], "reason": "同一人"})
    assert r.status_code in (200, 201), r.json
    data = json.loads(manager.get(f"/api/v1/members/{a['id']}/export?reason=书面申请").data)
    assert [(x["from_member_id"], x["from_profile"]["email"]) for x in data["merges"]] == [
        (b["id"], "zzr-old@example.com")]
    from tests.test_ui import ui_login
    ui = ui_login(app, "manager")
    page = ui.post(f"/members/{a['id']}/export", {"reason": "书面申请", "format": "json"})
    assert page.status_code == 200 and json.loads(page.data)["merges"][0]["from_profile"]["notes"] == "旧卡会员"


def test_reversing_a_grant_after_one_member_was_erased_takes_back_only_what_is_left(app, marketing, login_api,
                                                                                    member_factory):
    from tests.test_bulk_jobs import balances
    manager = login_api("manager")
    ids = [member_factory(tags=["VIP"])["id"] for _ in range(2)]
    job = finished(marketing, create(marketing, audience(marketing, tags=["VIP"]), "points", points=40))
    assert _erase(manager, ids[0], rule="forfeit")["points_forfeited"] == 40
    r = manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "撤销"})
    assert r.status_code == 202, r.json
    job = manager.get(f"/api/v1/bulk-jobs/{job['id']}").json
    assert job["status"] == "reversed" and job["shortfall"] == 40, job
    assert balances(app, ids) == [0, 0]
    assert not audit_problems(app)


def test_a_void_after_the_erasure_leaves_no_points_on_the_anonymised_member(app, login_api, member_factory,
                                                                             give_points, catalogue, checkout):
    """A bill that redeemed points is voided after the erasure: the points go back to lots
    nobody can use again (no bill, top-up or erasure takes the anonymised member)."""
    manager = login_api("manager")
    m = member_factory()
    give_points(m["id"], 100)
    bill = checkout([("SALMON", 2)], member_id=m["id"], redeem_points=30)
    assert bill.status_code == 201, bill.json
    _erase(manager, m["id"], rule="forfeit")
    r = manager.post(f"/api/v1/checkouts/{bill.json['id']}/void", json={"reason": "wrong table"})
    assert r.status_code == 201, r.json
    assert manager.get(f"/api/v1/members/{m['id']}/points").json["balance"] == 0
    assert not audit_problems(app)


def test_a_void_after_the_erasure_leaves_no_stored_value_on_the_anonymised_member(app, login_api, member_factory,
                                                                                   catalogue, checkout, cashier):
    manager = login_api("manager")
    m = member_factory()
    r = cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                     json={"store_code": "BJ01", "amount": "100.00", "payment_method": "wechat"})
    assert r.status_code == 201, r.json
    bill = checkout([("TEA", 1)], member_id=m["id"], wallet_amount="5.00", tenders=[{"method": "wechat_pay"}])
    assert bill.status_code == 201, bill.json
    _erase(manager, m["id"], rule="refund")
    r = manager.post(f"/api/v1/checkouts/{bill.json['id']}/void", json={"reason": "wrong table"})
    assert r.status_code == 201, r.json
    # The 5.00 the bill took came back with the void and is paid back to the guest at once (the
    # top-up had no bonus, so nothing is forfeited); the cashier is told how much.
    assert (r.json["wallet_restored"], r.json["wallet_paid_back"]) == ("5.00", "5.00"), r.json
    wallet = manager.get(f"/api/v1/members/{m['id']}/wallet").json
    assert (wallet["principal"], wallet["bonus"]) == ("0.00", "0.00"), wallet
    assert not audit_problems(app)


def test_an_erased_members_referral_code_refers_no_one_and_earns_them_nothing(app, login_api, member_factory,
                                                                               desk, catalogue, checkout):
    """The erased person's code is theirs no more: a new guest cannot give it, and a guest they
    referred before brings them no reward on points nobody can use."""
    admin, manager = login_api("admin"), login_api("manager")
    r = admin.patch("/api/v1/programme", json={"referral_reward": "points", "referral_referrer_points": 100,
                                               "referral_referee_points": 50, "referral_min_spend": "10.00"})
    assert r.status_code == 200, r.json
    referrer = member_factory()
    referee = member_factory(referral_code=referrer["referral_code"])
    _erase(manager, referrer["id"])
    r = desk.post("/api/v1/members", json={"name": "新客", "mobile": "13955556666", "store_code": "BJ01",
                                           "referral_code": referrer["referral_code"]})
    assert r.status_code == 422 and r.json["error"]["code"] == "unknown_referral_code", r.json
    assert checkout([("SALMON", 2)], member_id=referee["id"]).status_code == 201
    assert manager.get(f"/api/v1/members/{referrer['id']}/points").json["balance"] == 0
    assert not audit_problems(app)
    with app.app_context():
        from crm.members import referrals
        assert referrals.audit_mismatches() == []


def test_two_reversals_at_once_and_a_reversal_of_a_running_job(app, backend, marketing, login_api, member_factory,
                                                              monkeypatch):
    from crm.bulk import service as bulk
    from tests.test_bulk_jobs import balances
    from tests.test_races import api_call, race
    if backend != "postgresql":
        pytest.skip("row locks race on PostgreSQL; SQLite serialises writers")
    manager = login_api("manager")
    ids = [member_factory(tags=["VIP"])["id"] for _ in range(3)]
    monkeypatch.setitem(app.config, "BULK_RUN_INLINE", False)
    monkeypatch.setattr(bulk, "start", lambda job_id: None)
    job_id = create(marketing, audience(marketing, tags=["VIP"]), "points", points=7).json["id"]
    url = f"/api/v1/bulk-jobs/{job_id}/reverse"
    r = manager.post(url, json={"reason": "太早"})  # queued: not finished
    assert r.status_code == 409 and r.json["error"]["code"] == "bulk_job_not_finished"
    with app.app_context():
        assert bulk.run_job(job_id)
    results = race(3, lambda i: api_call(app, manager.token, "POST", url, {"reason": f"撤销 {i}"}))
    assert sorted(s for s, _, _ in results) == [202, 409, 409], results
    assert {c for s, c, _ in results if s == 409} == {"bulk_job_already_reversed"}
    with app.app_context():
        bulk.run_pending()
    job = manager.get(f"/api/v1/bulk-jobs/{job_id}").json
    assert job["status"] == "reversed" and job["undone"] == 3
    assert balances(app, ids) == [0, 0, 0]
    assert not audit_problems(app)


def test_erasure_with_a_store_that_does_not_exist_is_refused_and_changes_nothing(login_api, member_factory):
    manager = login_api("manager")
    m = member_factory(name="吴用")
    body = {"reason": "x", "wallet_rule": "refund", "confirm": {"points": 0, "principal": "0.00", "bonus": "0.00"}}
    for code in ("NOPE", "x" * 5000):
        r = manager.post(f"/api/v1/members/{m['id']}/erasure", json={**body, "store_code": code})
        assert r.status_code in (404, 422) and r.json["error"]["code"], (code, r.status_code)
    assert manager.get(f"/api/v1/members/{m['id']}").json["name"] == "吴用"


def test_the_pages_answer_404_for_huge_ids(app, staff):
    from tests.test_ui import ui_login
    ui = ui_login(app, "manager")
    for path in ("/members/99999999999999999999/erase", "/members/2147483648/export", "/bulk/2147483648",
                 "/bulk/99999999999999999999/progress"):
        assert ui.get(path).status_code == 404, path


def test_the_bulk_form_sent_twice_makes_one_job(app, staff, marketing, member_factory):
    from crm.bulk.models import BulkJob
    from tests.test_bulk_jobs import balances
    from tests.test_ui import ui_login
    ids = [member_factory(tags=["VIP"])["id"] for _ in range(2)]
    aud = audience(marketing, tags=["VIP"])
    ui = ui_login(app, staff["marketing"])
    ui.get("/bulk/")
    token = ui.form_tokens["/bulk/"]
    form = {"audience_id": str(aud), "action": "points", "points": "25", "reason": "店庆", "form_token": token}
    first, again = ui.post("/bulk/", form), ui.post("/bulk/", form)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert balances(app, ids) == [25, 25]
    other = ui.post("/bulk/", {**form, "points": "30"})  # the same token, other details
    assert other.status_code in (409, 422)
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(BulkJob)) == 1


def test_no_points_or_coupon_by_hand_to_an_erased_member(app, login_api, member_factory, coupon_types):  # noqa: F811
    manager = login_api("manager")
    m = member_factory()
    _erase(manager, m["id"])
    r = manager.post(f"/api/v1/members/{m['id']}/points/adjustments", json={"points": 500, "reason": "补偿"})
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised", r.json
    r = manager.post(f"/api/v1/members/{m['id']}/coupons", json={"coupon_type": "OFF12", "reason": "补偿"})
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised", r.json
    assert manager.get(f"/api/v1/members/{m['id']}/points").json["balance"] == 0
    assert not audit_problems(app)


def test_no_new_card_phone_link_or_pin_for_an_erased_member(app, staff, login_api, member_factory, issue_card):
    manager = login_api("manager")
    m = member_factory()
    _erase(manager, m["id"])
    r = issue_card(m["id"])
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised", r.json
    r = manager.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "135790", "current_pin": None})
    assert 400 <= r.status_code < 500 and r.status_code != 404, r.json
    from tests.test_ui import ui_login
    ui = ui_login(app, staff["front_desk"], lang="en")
    ui.get(f"/members/{m['id']}")
    r = ui.post(f"/members/{m['id']}/phone-card", {})
    assert r.status_code != 200 or "/m/" not in r.data.decode(), r.data[:300]
    with app.app_context():
        from crm.cards.models import Card, PhoneLink
        from crm.wallet.models import WalletPin
        assert db.session.scalar(select(db.func.count()).select_from(PhoneLink)) == 0
        assert db.session.scalar(select(db.func.count()).select_from(WalletPin)) == 0
        assert db.session.scalar(select(db.func.count()).select_from(Card).where(Card.status == "active")) == 0


def test_retention_goes_on_past_a_member_merged_while_the_batch_ran(app, staff, member_factory, clock, monkeypatch):
    from sqlalchemy import update

    from crm.members import pipl
    from crm.members.models import Member
    first, merged, last = (member_factory(name=n)["id"] for n in ("甲", "乙", "丙"))
    job_now = clock.now().replace(year=clock.now().year + 2)
    real = pipl.anonymise

    def anonymise(actor, member_id, **kw):
        if member_id == first:  # meanwhile a manager merges the second into the third
            db.session.execute(update(Member).where(Member.id == merged).values(merged_into_id=last))
        return real(actor, member_id, **kw)
    monkeypatch.setattr(pipl, "anonymise", anonymise)
    with app.app_context():
        done = pipl.anonymise_inactive(1, now=job_now)
        assert db.session.get(Member, last).anonymised_at is not None  # and with it its tombstone
        assert db.session.get(Member, merged).name == ""
    assert done["anonymised"] == 2  # the first and the survivor; the tombstone is not counted


def test_an_erased_members_draws_win_nothing(app, login_api, types, prize, member_with_draws,  # noqa: F811
                                             cashier):
    """A draw left over from before the erasure would spend a prize's limited stock on a coupon
    nobody can use."""
    manager = login_api("manager")
    big = prize("生蚝", "OYSTER", stock=1)
    m = member_with_draws(1)
    _erase(manager, m["id"])
    r = cashier.post(f"/api/v1/members/{m['id']}/draws")
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised", r.json
    assert next(p for p in types.get("/api/v1/draw-prizes").json if p["id"] == big["id"])["stock_left"] == 1
    assert not audit_problems(app)


def test_the_retention_command_refuses_absurd_years_with_a_message(app):
    runner = app.test_cli_runner()
    for years in ("5000", "-3"):
        r = runner.invoke(args=["crm", "anonymise-inactive", "--dry-run", "--years", years])
        assert r.exit_code == 2 and "years" in r.output.lower() and r.exception.__class__ is SystemExit, \
            (years, r.output, r.exception)
