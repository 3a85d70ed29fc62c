"""Members from a legacy system (issue 16): POST /api/v1/imports/members and the imports page
run crm/members/legacy_import.py through the import jobs. A file with bad lines saves nothing
and lists every problem of every line; the fixed file saves every member with their card and
opening balances as `opening` ledger entries (audit clean); the same file again changes
nothing. Legacy card numbers (no check digit of ours) are found at the till and in search."""
import io
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from crm.cards import codes
from crm.cards.models import Card
from crm.core.audit import AuditEntry
from crm.core.timeutil import utcnow, zone
from crm.extensions import db
from crm.members import levels
from crm.members.models import Member, MemberLevelChange
from crm.points.models import PointsAccount, PointsEntry, PointsLot
from crm.wallet.models import WalletAccount, WalletEntry
from tests.conftest import SYSTEM, audit_problems, in_app
from tests.test_ui import text, ui_login

PATH = "/api/v1/imports/members"
HEADER = ("mobile,name,card_no,level,birthday,gender,email,store_code,sms_consent,email_consent,"
          "opening_points,points_expire_on,opening_principal,opening_bonus")


def our_card_no(i: int) -> str:
    body = f"86{i:013d}"
    return body + codes.luhn_check_digit(body)


def member_row(i: int) -> dict:
    """Member i of a legacy file: every 10th carries a card number of ours, the rest legacy numbers."""
    return {"mobile": f"137{i:08d}", "name": f"会员{i}", "card_no": our_card_no(i) if i % 10 == 0 else f"8800{i:06d}",
            "level": ("", "gold", "金卡")[i % 3], "birthday": ("", "1985-03-14", "07-15")[i % 3],
            "gender": ("", "male", "女")[i % 3], "email": f"m{i}@example.com" if i % 4 == 0 else "",
            "store_code": ("BJ01", "BJ02", "HT01")[i % 3], "sms_consent": "1" if i % 2 else "0",
            "email_consent": "yes" if i % 4 == 0 else "", "opening_points": str(i * 7 % 5000),
            "points_expire_on": "2099-12-31" if i % 5 else "",
            "opening_principal": f"{i % 300}.{i % 100:02d}" if i % 3 else "",
            "opening_bonus": f"{i % 50}.50" if i % 6 == 1 else "0"}


def csv_of(rows) -> str:
    cols = HEADER.split(",")
    return HEADER + "\n" + "".join(",".join(r[c] for c in cols) + "\n" for r in rows)


def fen(value: str) -> int:
    if not value:
        return 0
    yuan, _dot, cents = value.partition(".")
    return int(yuan) * 100 + int((cents + "00")[:2])


def totals(rows) -> dict:
    return {"points": sum(int(r["opening_points"]) for r in rows),
            "principal": sum(fen(r["opening_principal"]) for r in rows),
            "bonus": sum(fen(r["opening_bonus"]) for r in rows)}


# (column changes, how many problems the line has): each breaks a line of the 1,000-member file.
BAD = [({"mobile": "12345"}, 1), ({"name": ""}, 1), ({"card_no": "ABC"}, 1), ({"store_code": "XX99"}, 1),
       ({"level": "platinum"}, 1), ({"birthday": "1985-02-30"}, 1),
       ({"opening_principal": "12.345", "opening_points": "-5"}, 2), ({"points_expire_on": "2020-01-01"}, 1),
       ({"mobile": "13700000003"}, 1),  # the mobile of data row 3 (line 5), again
       ({"gender": "x", "email": "nope", "sms_consent": "maybe"}, 3)]
BAD_AT = [17, 101, 222, 333, 404, 505, 606, 707, 808, 999]  # data rows (line = row + 2)


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def gold(app, stores):
    in_app(app, levels.create_level, SYSTEM, code="gold", name="金卡", rank=1)


def send(api, body: str | bytes, **query):
    """Send a file; once accepted (202) answer its job's status (the test app runs it inline)."""
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    data = body.encode("utf-8") if isinstance(body, str) else body
    r = api.post(f"{PATH}{'?' + qs if qs else ''}", data=data, headers={"Content-Type": "text/csv"})
    if r.status_code != 202:
        return r
    return api.get(r.json["status_url"])


def snapshot(app) -> dict:
    """Counts and sums a second import must leave as they are."""
    with app.app_context():
        count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
        wallet = dict(db.session.execute(select(WalletAccount.kind, func.sum(WalletAccount.balance))
                                         .group_by(WalletAccount.kind)).all())
        return {"members": count(Member), "cards": count(Card), "legacy_cards": db.session.scalar(
                    select(func.count()).select_from(Card).where(Card.legacy.is_(True))),
                "points_entries": count(PointsEntry), "lots": count(PointsLot), "wallet_entries": count(WalletEntry),
                "points": db.session.scalar(select(func.coalesce(func.sum(PointsAccount.balance), 0))),
                "points_opening": db.session.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0))
                                                    .where(PointsEntry.kind == "opening")),
                "principal": wallet.get("principal", 0) or 0, "bonus": wallet.get("bonus", 0) or 0,
                "wallet_opening": db.session.scalar(select(func.coalesce(func.sum(WalletEntry.amount), 0))
                                                    .where(WalletEntry.kind == "opening")),
                "audit_rows": count(AuditEntry)}


def test_a_thousand_members_bad_lines_then_fixed_then_again(app, manager, gold):
    good = [member_row(i) for i in range(1000)]
    broken = [dict(r) for r in good]
    for at, (changes, _n) in zip(BAD_AT, BAD, strict=True):
        broken[at].update(changes)

    job = send(manager, csv_of(broken)).json
    assert (job["status"], job["failure"], job["error_count"], job["total"]) == ("failed", "bad_rows", 10, 1000)
    assert [e["line"] for e in job["errors"]] == [at + 2 for at in BAD_AT]
    assert [len(e["problems"]) for e in job["errors"]] == [n for _c, n in BAD]
    assert "line 5" in job["errors"][8]["message"]  # the duplicate names where the mobile came first
    assert all(v == 0 for k, v in snapshot(app).items() if k != "audit_rows")  # nothing saved

    job = send(manager, csv_of(good)).json
    assert (job["status"], job["imported"], job["skipped"], job["error_count"]) == ("done", 1000, 0, 0)
    first = snapshot(app)
    want = totals(good)
    assert (first["members"], first["cards"], first["legacy_cards"]) == (1000, 1000, 900)
    assert (first["points"], first["points_opening"]) == (want["points"], want["points"])
    assert (first["principal"], first["bonus"]) == (want["principal"], want["bonus"])
    assert first["wallet_opening"] == want["principal"] + want["bonus"]
    assert audit_problems(app) == []
    with app.app_context():
        assert set(db.session.scalars(select(PointsEntry.kind).distinct())) == {"opening"}
        assert set(db.session.scalars(select(WalletEntry.kind).distinct())) <= {"opening"}
        codes_ = db.session.scalars(select(Member.referral_code)).all()
        assert len(set(codes_)) == 1000 and all(codes_)
        m = db.session.scalar(select(Member).where(Member.mobile == "13700000004"))
        assert (m.name, m.birthday, m.gender, m.level.code, m.store.code) == ("会员4", "1985-03-14", "male", "gold",
                                                                                "BJ02")
        assert m.email_consent and m.email_consent_at is not None and m.sms_consent is False
        lot = db.session.scalar(select(PointsLot).join(PointsAccount, PointsAccount.id == PointsLot.account_id)
                                .where(PointsAccount.member_id == m.id))
        assert lot.points == lot.remaining == 28
        assert lot.expires_at == datetime(2100, 1, 1, tzinfo=zone())  # valid through 2099-12-31
        consents = db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "member.consent_granted"))
        assert consents == sum(r["sms_consent"] == "1" for r in good) + sum(r["email_consent"] == "yes" for r in good)
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "import.members")) == 1

    job = send(manager, csv_of(good)).json
    assert (job["status"], job["imported"], job["skipped"], job["error_count"]) == ("done", 0, 1000, 0)
    again = snapshot(app)
    assert again == {**first, "audit_rows": first["audit_rows"] + 1}  # only the job's own audit row
    assert audit_problems(app) == []


def test_a_row_naming_another_members_mobile_or_card_is_an_error(app, manager, member_factory, gold):
    other = member_factory(mobile="13900000001")
    rows = [member_row(1), {**member_row(2), "mobile": "13900000001"}]
    assert send(manager, csv_of(rows[:1])).json["imported"] == 1
    rows.append({**member_row(3), "card_no": rows[0]["card_no"]})  # member 1's card on someone else
    job = send(manager, csv_of(rows)).json
    assert (job["status"], job["error_count"]) == ("failed", 2)
    assert [e["line"] for e in job["errors"]] == [3, 4]
    assert f"member #{other['id']}" in job["errors"][0]["message"]
    assert "Card 8800000001 belongs to member" in job["errors"][1]["message"]


def test_gb18030_file(app, manager, gold):
    rows = [{**member_row(i), "name": f"张伟{i}", "level": "金卡"} for i in range(1, 4)]
    job = send(manager, csv_of(rows).encode("gb18030")).json
    assert (job["status"], job["encoding"], job["imported"]) == ("done", "gb18030", 3)
    with app.app_context():
        assert sorted(db.session.scalars(select(Member.name))) == ["张伟1", "张伟2", "张伟3"]


def test_dry_run_saves_nothing_and_says_what_would_happen(app, manager, gold):
    rows = [member_row(i) for i in range(1, 6)]
    rows[2]["store_code"] = "NOPE"
    job = send(manager, csv_of(rows), dry_run="true").json
    assert (job["status"], job["dry_run"], job["checked"], job["error_count"]) == ("done", True, 5, 1)
    assert (job["imported"], job["skipped"], job["errors"][0]["line"]) == (4, 1, 4)
    assert snapshot(app)["members"] == 0
    assert send(manager, csv_of(rows), skip_bad_rows="true").json["imported"] == 4
    job = send(manager, csv_of(rows), dry_run="true").json
    assert (job["imported"], job["skipped"]) == (0, 5)  # four imported before, one bad
    assert snapshot(app)["members"] == 4


def test_skip_bad_rows_saves_the_good_ones(app, manager, gold):
    rows = [member_row(i) for i in range(1, 8)]
    rows[1]["birthday"] = "13-45"
    rows[4]["opening_bonus"] = "abc"
    job = send(manager, csv_of(rows), skip_bad_rows="true").json
    assert (job["status"], job["imported"], job["skipped"], job["error_count"]) == ("done", 5, 2, 2)
    assert [e["line"] for e in job["errors"]] == [3, 6]
    want = totals([r for i, r in enumerate(rows) if i not in (1, 4)])
    got = snapshot(app)
    assert (got["members"], got["points"], got["principal"], got["bonus"]) == (
        5, want["points"], want["principal"], want["bonus"])
    assert audit_problems(app) == []


def test_a_legacy_card_is_found_by_its_number_at_the_till_and_in_search(app, manager, login_api, gold):
    rows = [{**member_row(1), "card_no": "0001-2345"}, {**member_row(2), "card_no": "8612345678901235"}]
    assert not codes.luhn_valid("8612345678901235")  # our shape, a wrong check digit: a legacy system's number
    assert send(manager, csv_of(rows)).json["imported"] == 2
    cashier = login_api("cashier")
    for code, mobile in (("00012345", "13700000001"), ("0001 2345", "13700000001"),
                         ("8612345678901235", "13700000002")):
        r = cashier.post("/api/v1/cards/scan", json={"code": code})
        assert r.status_code == 200, r.json
        assert r.json["id"] == snapshot_member_id(app, mobile)
    # A number of our shape with a wrong check digit that no legacy card carries is still a typo.
    r = cashier.post("/api/v1/cards/scan", json={"code": "8612345678901236"})
    assert (r.status_code, r.json["error"]["code"]) == (422, "invalid_code")
    assert r.json["error"]["details"].get("reason") == "check_digit"
    r = cashier.post("/api/v1/cards/scan", json={"code": "00012346"})
    assert (r.status_code, r.json["error"]["code"]) == (422, "invalid_code")
    found = login_api("front_desk").get("/api/v1/members?q=00012345").json
    assert [m["id"] for m in found["items"]] == [snapshot_member_id(app, "13700000001")]
    with app.app_context():
        assert dict(db.session.execute(select(Card.card_no, Card.legacy)).all()) == {
            "00012345": True, "8612345678901235": True}


def snapshot_member_id(app, mobile):
    with app.app_context():
        return db.session.scalar(select(Member.id).where(Member.mobile == mobile))


@pytest.mark.parametrize("body, code", [
    ("mobile,name,store_code\n13700000001,x,BJ01\n", "missing_columns"),
    (HEADER + ",shoe_size\n", "unknown_columns"),
    (b"\xff\xfe\x00mobile", "invalid_encoding"),
])
def test_a_bad_header_or_encoding_is_422_at_once(app, manager, stores, body, code):
    r = send(manager, body)
    assert r.status_code == 422
    assert r.json["error"]["code"] == code and r.json["error"]["message"]
    assert r.json["error"]["details"]["field"] == "file"


def test_a_multipart_upload(app, manager, gold):
    r = manager.post(PATH + "?dry_run=1", data={"file": (io.BytesIO(csv_of([member_row(1)]).encode()), "old.csv")},
                     content_type="multipart/form-data")
    assert r.status_code == 202, r.json
    assert (r.json["filename"], r.json["dry_run"], r.json["kind"]) == ("old.csv", True, "members")
    r = manager.post(PATH, data={}, content_type="multipart/form-data")
    assert (r.status_code, r.json["error"]["code"]) == (422, "missing_file")


@pytest.mark.parametrize("role, status", [("front_desk", 403), ("cashier", 403), ("marketing", 403),
                                          ("admin", 202), ("manager", 202)])
def test_only_managers_and_admins_import_members(app, login_api, gold, role, status):
    r = login_api(role).post(PATH, data=csv_of([member_row(1)]).encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == status, r.json


def test_the_imports_page_takes_a_member_file_as_a_dry_run(app, staff, gold):
    ui = ui_login(app, staff["manager"], lang="en")
    page = text(ui.get("/reports/imports"))
    assert "Members (legacy system)" in page and "Dry run" in page
    r = ui.post("/reports/imports", {"kind": "members", "dry_run": "y",
                                     "file": (io.BytesIO(csv_of([member_row(1), member_row(2)]).encode()), "a.csv")})
    assert r.status_code == 303
    job_page = text(ui.get(r.headers["Location"]))
    assert re.search(r"Dry run, nothing saved: 2 rows checked, 0 with problems; 2 would be\s+new", job_page)
    assert snapshot(app)["members"] == 0


class Killed(BaseException):
    """A runner killed mid-chunk (not an Exception: nothing catches it on the way)."""


def test_a_runner_killed_mid_import_is_finished_by_the_scheduler_without_a_second_opening(
        app, gold, clock, monkeypatch):
    from crm.campaigns import jobs
    from crm.members import legacy_import
    from crm.reports import import_jobs
    app.config["IMPORT_CHUNK_ROWS"], before = 3, app.config["IMPORT_CHUNK_ROWS"]
    try:
        rows = [member_row(i) for i in range(1, 11)]
        job_id = in_app(app, lambda: import_jobs.create(SYSTEM, "members", csv_of(rows)).id)
        real, calls = legacy_import.write_chunk, []

        def third_chunk_kills(*args):
            calls.append(1)
            if len(calls) == 3:
                raise Killed()
            return real(*args)
        monkeypatch.setattr(legacy_import, "write_chunk", third_chunk_kills)
        with app.app_context():
            with pytest.raises(Killed):
                import_jobs.run_job(job_id)
            db.session.remove()
        assert snapshot(app)["members"] == 6  # two chunks committed, the third rolled back
        clock.advance(seconds=app.config["IMPORT_LEASE_SECONDS"] + 1)
        with app.app_context():
            jobs.resume_imports()
            job = import_jobs.get(job_id)
            assert (job.status, job.done, job.imported, job.skipped, job.attempts) == ("done", 10, 10, 0, 2)
    finally:
        app.config["IMPORT_CHUNK_ROWS"] = before
    got, want = snapshot(app), totals(rows)
    assert (got["members"], got["points"], got["principal"], got["bonus"]) == (
        10, want["points"], want["principal"], want["bonus"])
    assert got["points_entries"] == sum(1 for r in rows if r["opening_points"] != "0")
    assert audit_problems(app) == []


def test_an_imported_level_is_kept_until_the_member_has_had_a_whole_window_here(app, manager, gold):
    """A gold member from the old system has no spend here yet: the first yearly review inside
    the level window leaves them gold (a member set to gold by hand is reviewed as ever); the
    review after a whole window moves them down like anyone else."""
    rows = [member_row(i) for i in (1, 2, 3)]  # 1 and 2: gold ("gold", "金卡"); 3: entry level
    assert send(manager, csv_of(rows)).json["imported"] == 3
    with app.app_context():
        by_mobile = {m.mobile: m for m in db.session.scalars(select(Member))}
        imported = [by_mobile[r["mobile"]].id for r in rows[:2]]
        by_hand = by_mobile[rows[2]["mobile"]]
        levels.change_level(SYSTEM, by_hand, db.session.scalar(
            select(levels.MemberLevel).where(levels.MemberLevel.code == "gold")), reason="manual")
        db.session.commit()
        by_hand = by_hand.id
        start = utcnow()

    def review(at):
        with app.app_context():
            result = levels.review_levels(SYSTEM, now=at)
            codes_now = {i: db.session.get(Member, i).level.code for i in (*imported, by_hand)}
            return result["moved_down"], codes_now

    entry = in_app(app, lambda: levels.entry_level().code)
    moved, now_at = review(start + timedelta(days=30))
    assert moved == 1 and now_at == {imported[0]: "gold", imported[1]: "gold", by_hand: entry}
    moved, now_at = review(start + timedelta(days=400))
    assert moved == 2 and set(now_at.values()) == {entry}
    with app.app_context():
        reasons = [c.reason for c in db.session.scalars(select(MemberLevelChange).where(
            MemberLevelChange.member_id == imported[0]).order_by(MemberLevelChange.id))]
    assert reasons == ["import", "review"]
