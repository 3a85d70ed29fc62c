"""Review of issue 16 (legacy member import, merge duplicates): attacks that broke something,
each fixed in the module that owns it."""
import pytest

from crm.members import levels
from tests.conftest import SYSTEM, audit_problems, in_app
from tests.test_legacy_import import HEADER, csv_of, member_row, send, snapshot
from tests.test_member_merge import _merge


@pytest.fixture
def manager(login_api):
    return login_api("manager")


@pytest.fixture
def gold(app, stores):
    in_app(app, levels.create_level, SYSTEM, code="gold", name="金卡", rank=1)


def _member_id(api, mobile: str) -> int:
    items = api.get(f"/api/v1/members?q={mobile}").json["items"]
    assert len(items) == 1, items
    return items[0]["id"]


@pytest.mark.parametrize("take_mobile", [False, True], ids=["mobile_freed", "survivor_took_mobile"])
def test_the_same_file_again_after_two_of_its_members_were_merged_changes_nothing(app, manager, gold,
                                                                                  take_mobile):
    """Re-running a file is promised to change nothing. Once two imported members are merged, the
    duplicate's card belongs to a tombstone (or moved to the survivor) and its mobile is freed (or
    taken by the survivor): the row is still that member imported before, not a conflict that
    fails the whole file."""
    rows = [member_row(1), member_row(2), member_row(3)]
    assert send(manager, csv_of(rows)).json["imported"] == 3
    a, b = _member_id(manager, rows[0]["mobile"]), _member_id(manager, rows[1]["mobile"])
    assert _merge(manager, a, b, **({"mobile": "from"} if take_mobile else {})).status_code == 200
    before = snapshot(app)
    job = send(manager, csv_of(rows)).json
    assert (job["status"], job["imported"], job["skipped"], job["error_count"]) == ("done", 0, 3, 0), job
    assert snapshot(app) == {**before, "audit_rows": before["audit_rows"] + 1}
    assert audit_problems(app) == []


def test_a_new_row_with_a_merged_members_card_names_the_survivor(app, manager, gold):
    """A card of a merged member is the survivor's now: another row claiming it is an error that
    names the live member, not the tombstone nobody can open."""
    rows = [member_row(1), member_row(2)]
    assert send(manager, csv_of(rows)).json["imported"] == 2
    a, b = _member_id(manager, rows[0]["mobile"]), _member_id(manager, rows[1]["mobile"])
    assert _merge(manager, a, b).status_code == 200
    job = send(manager, csv_of([{**member_row(5), "card_no": rows[1]["card_no"]}])).json
    assert (job["status"], job["error_count"]) == ("failed", 1)
    assert f"belongs to member #{a}" in job["errors"][0]["message"]


@pytest.mark.parametrize("dry_run", ["false", "true"])
def test_an_expiry_date_at_the_end_of_the_calendar_is_a_line_error(app, manager, gold, dry_run):
    """points_expire_on 9999-12-31: the day after it cannot be computed. It was an OverflowError
    out of the row check: the upload answered a generic invalid_value (a background runner would
    fail and be retried) instead of listing the line like every other bad value."""
    rows = [member_row(1), {**member_row(2), "points_expire_on": "9999-12-31"}]
    job = send(manager, csv_of(rows), dry_run=dry_run).json
    assert job.get("status") in ("done", "failed"), job
    assert [e["line"] for e in job["errors"]] == [3], job
    assert "points_expire_on" in job["errors"][0]["message"]
    assert snapshot(app)["members"] == 0


def test_a_header_naming_a_column_twice_is_refused(app, manager, gold):
    """Two `mobile` columns: which one is the member's was a silent guess (the last one won)."""
    row = member_row(1)
    body = HEADER + ",mobile\n" + ",".join(row[c] for c in HEADER.split(",")) + ",13999999999\n"
    r = send(manager, body)
    assert r.status_code == 422 and r.json["error"]["code"] == "duplicate_columns", r.json
    assert r.json["error"]["details"]["duplicate"] == ["mobile"]
    assert snapshot(app)["members"] == 0
