"""Bulk work on an audience (crm/bulk): grant points, issue a coupon, add or remove a tag, set a
level for every member of a saved audience, as a background job with progress; each member
done once however often the job runs, and the whole job reversible once by a manager. The
test app runs a job inside the request that creates it (BULK_RUN_INLINE)."""
import threading
import time as time_module
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from crm.bulk import service as bulk
from crm.bulk.models import BulkJob, BulkJobEffect
from crm.campaigns import jobs
from crm.core.timeutil import utcnow
from crm.extensions import db
from crm.members.models import Member, MemberLevelChange, MemberTag
from crm.points.models import PointsAccount, PointsEntry, PointsLot
from tests.conftest import audit_problems, make_app
from tests.test_ui import text, ui_login

REASON = "周年庆"
SH = ZoneInfo("Asia/Shanghai")  # the chain's time zone in the tests
LONG_AGO = datetime(2000, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 2)


def audience(marketing, name="VIP", **filters):
    r = marketing.post("/api/v1/audiences", json={"name": name, "filters": filters})
    assert r.status_code == 201, r.json
    return r.json["id"]


def vip_members(member_factory, n, tag="VIP"):
    return [member_factory(tags=[tag])["id"] for _ in range(n)]


def create(api, audience_id, action, key=None, **params):
    return api.post("/api/v1/bulk-jobs", json={"audience_id": audience_id, "action": action, "reason": REASON,
                                               **params}, key=key)


def finished(api, r):
    assert r.status_code == 202, r.json
    return api.get(r.json["status_url"]).json


def balances(app, ids):
    with app.app_context():
        found = dict(db.session.execute(select(PointsAccount.member_id, PointsAccount.balance)
                                        .where(PointsAccount.member_id.in_(ids))).all())
        return [found.get(i, 0) for i in ids]


def tags_of(app, member_id):
    with app.app_context():
        return sorted(db.session.scalars(select(MemberTag.tag).where(MemberTag.member_id == member_id)))


def test_points_with_an_expiry_reach_every_member_once_with_a_lot_expiring_that_day(
        app, marketing, member_factory, small_chunks, store_today):
    ids = vip_members(member_factory, 5)
    member_factory(tags=["其他"])  # not in the audience
    gone = vip_members(member_factory, 2)
    with app.app_context():  # a merged and an anonymised member: left out of the snapshot
        db.session.execute(update(Member).where(Member.id == gone[0]).values(merged_into_id=ids[0]))
        db.session.execute(update(Member).where(Member.id == gone[1]).values(anonymised_at=utcnow()))
        db.session.commit()
    until = date.fromisoformat(store_today) + timedelta(days=90)
    job = finished(marketing, create(marketing, audience(marketing, tags=["VIP"]), "points", points=300,
                                     expires_on=until.isoformat()))
    assert job["status"] == "done" and (job["total"], job["done"], job["applied"], job["skipped"]) == (5, 5, 5, 0)
    assert balances(app, ids + gone) == [300] * 5 + [0, 0]
    with app.app_context():
        lots = db.session.execute(select(PointsLot.expires_at, PointsEntry.kind, PointsEntry.reason)
                                  .join(PointsEntry, PointsEntry.id == PointsLot.entry_id)).all()
        assert len(lots) == 5
        assert {(e.astimezone(SH), k, r) for e, k, r in lots} == {
            (datetime.combine(until + timedelta(days=1), time(), SH), "adjust", REASON)}
    assert audit_problems(app) == []
    # Running the finished job again, or the scheduler's pick-up, changes nothing.
    with app.app_context():
        assert bulk.run_job(job["id"]) is False
        assert bulk.run_pending() == 0
    assert balances(app, ids) == [300] * 5
    listed = marketing.get("/api/v1/bulk-jobs").json
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]


def test_a_job_taken_over_after_its_runner_died_applies_each_member_once(app, marketing, member_factory,
                                                                          small_chunks, monkeypatch):
    ids = vip_members(member_factory, 5)
    monkeypatch.setitem(app.config, "BULK_RUN_INLINE", False)
    monkeypatch.setattr(bulk, "start", lambda job_id: None)  # nobody runs it: the runner "died" at once
    job_id = create(marketing, audience(marketing, tags=["VIP"]), "points", points=10).json["id"]
    # A runner does one chunk, then stops without finishing (killed mid-job).
    real_chunk = bulk._apply_chunk
    calls = []

    def dies_after_one(*args):
        if calls:
            raise SystemExit("killed")
        calls.append(1)
        return real_chunk(*args)
    monkeypatch.setattr(bulk, "_apply_chunk", dies_after_one)
    with app.app_context(), pytest.raises(SystemExit):
        bulk.run_job(job_id, runner="first")
    monkeypatch.setattr(bulk, "_apply_chunk", real_chunk)
    assert marketing.get(f"/api/v1/bulk-jobs/{job_id}").json["done"] == 2
    with app.app_context():  # its lease lapses; the scheduler's beat takes the job over
        db.session.execute(update(BulkJob).values(lease_until=LONG_AGO))
        db.session.commit()
    with app.app_context():
        jobs.resume_imports()
    job = marketing.get(f"/api/v1/bulk-jobs/{job_id}").json
    assert job["status"] == "done" and job["applied"] == 5
    assert balances(app, ids) == [10] * 5
    assert audit_problems(app) == []


def test_a_reversal_whose_runner_died_is_finished_by_the_scheduler_taking_each_grant_back_once(
        app, marketing, manager, member_factory, small_chunks, monkeypatch):
    ids = vip_members(member_factory, 5)
    job = finished(marketing, create(marketing, audience(marketing, tags=["VIP"]), "points", points=30))
    monkeypatch.setattr(bulk, "start", lambda job_id: None)
    assert manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "撤销"}).status_code == 202
    real_chunk, calls = bulk._undo_chunk, []

    def dies_after_one(*args):
        if calls:
            raise SystemExit("killed")
        calls.append(1)
        return real_chunk(*args)
    monkeypatch.setattr(bulk, "_undo_chunk", dies_after_one)
    with app.app_context(), pytest.raises(SystemExit):
        bulk.run_job(job["id"], runner="first")
    monkeypatch.setattr(bulk, "_undo_chunk", real_chunk)
    halfway = marketing.get(job["status_url"]).json
    assert (halfway["status"], halfway["undone"]) == ("reversing", 2)
    assert sorted(balances(app, ids)) == [0, 0, 30, 30, 30]
    with app.app_context():
        db.session.execute(update(BulkJob).values(lease_until=LONG_AGO))
        db.session.commit()
        jobs.resume_imports()
    back = marketing.get(job["status_url"]).json
    assert (back["status"], back["undone"], back["undo_counts"]) == ("reversed", 5, {"reversed": 5})
    assert balances(app, ids) == [0] * 5
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PointsEntry).where(PointsEntry.points < 0)) == 5
    assert audit_problems(app) == []


def test_the_same_request_twice_makes_one_job(app, marketing, member_factory):
    ids = vip_members(member_factory, 3)
    aud = audience(marketing, tags=["VIP"])
    first = create(marketing, aud, "points", key="bulk-1", points=50)
    again = create(marketing, aud, "points", key="bulk-1", points=50)
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json["id"] == first.json["id"]
    assert balances(app, ids) == [50] * 3


def test_a_coupon_for_more_members_than_its_stock_never_exceeds_it(app, marketing, manager, member_factory):
    assert manager.post("/api/v1/coupon-types", json={"code": "TEA", "name": "茶饮券", "kind": "gift",
                                                      "face_value": "20.00", "stock_total": 3}).status_code == 201
    vip_members(member_factory, 5)
    job = finished(marketing, create(marketing, audience(marketing, tags=["VIP"]), "coupon", coupon_type="tea"))
    assert (job["applied"], job["skipped"], job["skipped_by_reason"]) == (3, 2, {"out_of_stock": 2})
    assert manager.get("/api/v1/coupon-types").json[0]["stock_left"] == 0
    assert audit_problems(app) == []
    # Reversed: the unused coupons are cancelled (one was used meanwhile and is kept).
    with app.app_context():
        from crm.coupons.models import Coupon
        used = db.session.scalars(select(Coupon.id).order_by(Coupon.id)).first()
        db.session.execute(update(Coupon).where(Coupon.id == used).values(status="redeemed"))
        db.session.commit()
    r = manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "发错了"})
    back = finished(manager, r)
    assert back["status"] == "reversed" and back["undo_counts"] == {"reversed": 2, "kept_used": 1}
    with app.app_context():
        assert sorted(db.session.scalars(select(Coupon.status))) == ["cancelled", "cancelled", "redeemed"]
    assert audit_problems(app) == []


def test_a_tag_added_then_reversed_leaves_members_who_had_it_with_it(app, marketing, manager, member_factory):
    had = member_factory(tags=["VIP", "海鲜"])["id"]
    new = [member_factory(tags=["VIP"])["id"] for _ in range(2)]
    job = finished(marketing, create(marketing, audience(marketing, tags=["VIP"]), "tag_add", tag="海鲜"))
    assert (job["applied"], job["skipped_by_reason"]) == (2, {"already_tagged": 1})
    assert [tags_of(app, m) for m in new] == [["VIP", "海鲜"]] * 2
    back = finished(manager, manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "撤销"}))
    assert back["status"] == "reversed" and back["undo_counts"] == {"reversed": 2}
    assert tags_of(app, had) == ["VIP", "海鲜"]
    assert [tags_of(app, m) for m in new] == [["VIP"]] * 2
    # Once: a second reversal is a 409 with a code, and changes nothing.
    again = manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "再撤销"})
    assert again.status_code == 409 and again.json["error"]["code"] == "bulk_job_already_reversed"


def test_a_tag_removed_then_reversed_comes_back_only_where_it_was_removed(app, marketing, manager, member_factory):
    tagged = member_factory(tags=["VIP", "旧"])["id"]
    untagged = member_factory(tags=["VIP"])["id"]
    job = finished(marketing, create(marketing, audience(marketing, tags=["VIP"]), "tag_remove", tag="旧"))
    assert (job["applied"], job["skipped_by_reason"]) == (1, {"not_tagged": 1})
    assert tags_of(app, tagged) == ["VIP"]
    finished(manager, manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "撤销"}))
    assert tags_of(app, tagged) == ["VIP", "旧"] and tags_of(app, untagged) == ["VIP"]


def test_a_level_set_then_reversed_restores_only_members_still_at_it(app, manager, login_api, member_factory, desk):
    admin = login_api("admin")
    for code, rank in (("silver", 1), ("gold", 2)):
        assert admin.post("/api/v1/levels", json={"code": code, "name": code, "rank": rank}).status_code == 201
    ids = vip_members(member_factory, 3)
    assert manager.patch(f"/api/v1/members/{ids[2]}", json={"level_code": "gold"}).status_code == 200
    job = finished(manager, create(manager, audience(manager, tags=["VIP"]), "level", level="silver"))
    assert (job["applied"], job["skipped"]) == (3, 0)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MemberLevelChange).where(
            MemberLevelChange.reason == "manual", MemberLevelChange.to_level.has(code="silver"))) == 3
    # Someone moves one member on meanwhile: the reversal leaves that member alone.
    assert manager.patch(f"/api/v1/members/{ids[0]}", json={"level_code": "gold"}).status_code == 200
    back = finished(manager, manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "撤销"}))
    assert back["undo_counts"] == {"reversed": 2, "unchanged": 1}
    levels = [desk.get(f"/api/v1/members/{i}").json["level"]["code"] for i in ids]
    assert levels == ["gold", "standard", "gold"]


def test_reversing_points_already_partly_spent_reports_the_shortfall(app, marketing, manager, member_factory):
    ids = vip_members(member_factory, 2)
    job = finished(marketing, create(marketing, audience(marketing, tags=["VIP"]), "points", points=100))
    r = manager.post(f"/api/v1/members/{ids[0]}/points/adjustments", json={"points": -70, "reason": "兑换礼品"})
    assert r.status_code == 201, r.json
    back = finished(manager, manager.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "发错了"}))
    assert back["status"] == "reversed" and back["shortfall"] == 70
    assert back["undo_counts"] == {"reversed": 1, "partly": 1}
    assert balances(app, ids) == [0, 0]
    assert audit_problems(app) == []


def test_reversal_before_the_job_finished_is_refused(app, marketing, manager, member_factory, monkeypatch):
    vip_members(member_factory, 2)
    monkeypatch.setattr(bulk, "start", lambda job_id: None)
    job_id = create(marketing, audience(marketing, tags=["VIP"]), "points", points=5).json["id"]
    r = manager.post(f"/api/v1/bulk-jobs/{job_id}/reverse", json={"reason": "撤销"})
    assert r.status_code == 409 and r.json["error"]["code"] == "bulk_job_not_finished"


def test_roles_and_bad_parameters(app, marketing, manager, cashier, member_factory, store_today):
    vip_members(member_factory, 1)
    aud = audience(marketing, tags=["VIP"])
    assert create(cashier, aud, "points", points=5).status_code == 403
    assert cashier.get("/api/v1/bulk-jobs").status_code == 403
    r = create(marketing, aud, "level", level="standard")
    assert r.status_code == 403 and r.json["error"]["code"] == "level_change_forbidden"
    yesterday = (date.fromisoformat(store_today) - timedelta(days=1)).isoformat()
    for action, params, status, code, field in (
            ("points", {}, 422, "invalid_points", "points"),
            ("points", {"points": 0}, 422, "validation_error", None),
            ("points", {"points": 5, "expires_on": yesterday}, 422, "invalid_expiry", "expires_on"),
            ("points", {"points": 5, "expires_on": "9999-12-31"}, 422, "invalid_expiry", "expires_on"),
            ("coupon", {"coupon_type": "NOPE"}, 422, "unknown_coupon_type", "coupon_type"),
            ("tag_add", {"tag": "   "}, 422, "invalid_tag", "tag"),
            ("tag_add", {"tag": "a\u0001b"}, 422, "invalid_characters", "tag"),
            ("explode", {}, 422, "validation_error", None)):
        r = create(marketing, aud, action, **params)
        assert r.status_code == status and r.json["error"]["code"] == code, (action, r.json)
        if field:
            assert r.json["error"]["details"]["field"] == field
    r = create(manager, aud, "level", level="platinum")
    assert r.status_code == 422 and r.json["error"]["code"] == "unknown_level"
    r = create(marketing, 999, "tag_add", tag="x")
    assert r.status_code == 422 and r.json["error"]["code"] == "audience_not_found"
    r = create(marketing, audience(marketing, "nobody", tags=["无人"]), "tag_add", tag="x")
    assert r.status_code == 422 and r.json["error"]["code"] == "audience_empty"
    job = finished(marketing, create(marketing, aud, "tag_add", tag="x"))
    r = marketing.post(f"/api/v1/bulk-jobs/{job['id']}/reverse", json={"reason": "撤销"})
    assert r.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BulkJob)) == 1


def test_the_staff_pages_start_show_and_reverse_a_job(app, staff, marketing, member_factory):
    ids = vip_members(member_factory, 2)
    aud = audience(marketing, tags=["VIP"])
    ui = ui_login(app, staff["manager"], lang="en")
    assert "Bulk work on an audience" in text(ui.get("/bulk/"))
    r = ui.post("/bulk/", {"audience_id": str(aud), "action": "points", "points": "abc", "reason": REASON})
    assert r.status_code == 422 and 'id="e-points"' in text(r)
    r = ui.post("/bulk/", {"audience_id": str(aud), "action": "points", "points": "40", "reason": REASON})
    assert r.status_code == 303, text(r)[:500]
    assert balances(app, ids) == [40, 40]
    job_id = int(r.headers["Location"].rstrip("/").split("/")[-1])
    detail = ui.get(f"/bulk/{job_id}")
    assert detail.status_code == 200 and "Reverse this job" in text(detail) and "2 of 2 members" in text(detail)
    r = ui.post(f"/bulk/{job_id}/reverse", {"reason": ""})
    assert r.status_code == 422 and 'id="e-reason"' in text(r)
    r = ui.post(f"/bulk/{job_id}/reverse", {"reason": "撤销"})
    assert r.status_code == 303, text(r)[:500]
    assert balances(app, ids) == [0, 0]
    assert ui.get(f"/bulk/{job_id}/progress").json["status"] == "reversed"
    assert "Reverse this job" not in text(ui.get(f"/bulk/{job_id}"))
    cashier = ui_login(app, staff["cashier"])
    assert cashier.get("/bulk/").status_code == 403
    marketer = ui_login(app, staff["marketing"])  # the default language; may start jobs, not reverse them
    page = marketer.get("/bulk/")
    assert page.status_code == 200 and f'value="{aud}"' in text(page) and 'value="level"' not in text(page)
    assert marketer.get(f"/bulk/{job_id}").status_code == 200
    assert marketer.post(f"/bulk/{job_id}/reverse", {"reason": "x"}).status_code == 403


def test_two_runners_on_one_job_never_apply_a_member_twice(app, backend, marketing, member_factory, small_chunks,
                                                            monkeypatch):
    if backend != "postgresql":
        pytest.skip("a real race needs PostgreSQL's row locks (SQLite runs one writer at a time)")
    ids = vip_members(member_factory, 12)
    monkeypatch.setattr(bulk, "start", lambda job_id: None)
    slow = bulk.points.grant  # each member takes a moment, so the two runners overlap
    monkeypatch.setattr(bulk.points, "grant", lambda *a, **kw: (time_module.sleep(0.02), slow(*a, **kw))[1])
    job_id = create(marketing, audience(marketing, tags=["VIP"]), "points", points=7).json["id"]
    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"])
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run(flask_app, name):
        with flask_app.app_context():
            try:
                barrier.wait(10)
                # Both claim: the second only after forcing the lease to lapse, so both run at once.
                db.session.execute(update(BulkJob).where(BulkJob.id == job_id).values(
                    status="running", runner=None, lease_until=LONG_AGO))
                db.session.commit()
                results.append(bulk.run_job(job_id, runner=name))
            except Exception as exc:  # noqa: BLE001 — reported below
                errors.append(exc)
            finally:
                db.session.remove()
    threads = [threading.Thread(target=run, args=(a, n)) for a, n in ((app, "one"), (other, "two"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with other.app_context():
        db.session.remove()
        db.engine.dispose()
    assert not errors, errors
    with app.app_context():  # whoever lost the job on the way, the scheduler finishes it
        bulk.run_pending()
    assert balances(app, ids) == [7] * 12
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PointsEntry)) == 12
        assert db.session.scalar(select(func.count()).select_from(BulkJobEffect).where(
            BulkJobEffect.outcome == "applied")) == 12
    assert marketing.get(f"/api/v1/bulk-jobs/{job_id}").json["applied"] == 12
    assert audit_problems(app) == []
