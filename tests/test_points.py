"""Points ledger: adjustments, expiry, the audit command, and concurrent cashiers."""
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, update

from crm.extensions import db
from crm.points.models import PointsAccount, PointsLot
from tests.conftest import audit_problems


def test_adjustments_need_a_manager_and_a_reason(login_api, member_factory, cashier):
    m = member_factory()
    url = f"/api/v1/members/{m['id']}/points/adjustments"
    manager = login_api("manager")
    assert cashier.post(url, json={"points": 50, "reason": "gift"}).status_code == 403
    assert manager.post(url, json={"points": 50}).status_code == 422
    assert manager.post(url, json={"points": 50, "reason": "  "}).json["error"]["code"] == "reason_required"
    assert manager.post(url, json={"points": 0, "reason": "x"}).json["error"]["code"] == "invalid_points"
    r = manager.post(url, json={"points": 50, "reason": "complaint goodwill"}, key="adj-1")
    assert r.status_code == 201 and r.json["kind"] == "adjust" and r.json["reason"] == "complaint goodwill"
    assert manager.post(url, json={"points": 50, "reason": "complaint goodwill"}, key="adj-1").json == r.json
    too_much = manager.post(url, json={"points": -51, "reason": "correction"})
    assert too_much.status_code == 409 and too_much.json["error"]["code"] == "insufficient_points"
    assert manager.post(url, json={"points": -20, "reason": "correction"}).status_code == 201
    summary = cashier.get(f"/api/v1/members/{m['id']}/points").json
    assert summary["balance"] == 30 and summary["lots"][0]["remaining"] == 30
    assert manager.post("/api/v1/members/999999/points/adjustments",
                        json={"points": 5, "reason": "x"}).status_code == 404


def test_expiry_date_is_end_of_twelfth_month_after_earning(app):
    from crm.points.service import expiry_for
    with app.app_context():
        # Earned 15 March 2026 in Shanghai -> valid through 31 March 2027 there.
        earned = datetime(2026, 3, 15, 4, 0, tzinfo=timezone.utc)
        assert expiry_for(earned, "Asia/Shanghai") == datetime(2027, 3, 31, 16, 0, tzinfo=timezone.utc)
        # 23:30 on 31 Dec in Shanghai is still December there, though it is 15:30 UTC.
        late = datetime(2025, 12, 31, 15, 30, tzinfo=timezone.utc)
        assert expiry_for(late, "Asia/Shanghai") == datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc)


def _age_lots(app, expires_at):
    with app.app_context():
        db.session.execute(update(PointsLot).values(expires_at=expires_at))
        db.session.commit()


def test_expire_points_job_is_idempotent(app, member_factory, give_points, cashier):
    m = member_factory()
    give_points(m["id"], 40)
    _age_lots(app, datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert cashier.get(f"/api/v1/members/{m['id']}/points").json["available"] == 0
    runner = app.test_cli_runner()
    first = runner.invoke(args=["crm", "expire-points"])
    assert first.exit_code == 0 and "Expired 40 points on 1 accounts" in first.output
    second = runner.invoke(args=["crm", "expire-points"])
    assert "Expired 0 points on 0 accounts" in second.output
    assert cashier.get(f"/api/v1/members/{m['id']}/points").json["balance"] == 0
    kinds = [e["kind"] for e in cashier.get(f"/api/v1/members/{m['id']}/points/entries").json["items"]]
    assert kinds == ["expire", "adjust"]
    assert audit_problems(app) == []


def test_redeeming_expires_due_points_first(app, catalogue, member_factory, give_points, checkout):
    m = member_factory()
    give_points(m["id"], 40)
    _age_lots(app, datetime(2020, 1, 1, tzinfo=timezone.utc))
    r = checkout([("TEA", 1)], member_id=m["id"], redeem_points=5)
    assert r.status_code == 409 and r.json["error"]["details"]["balance"] == 0


def test_audit_command_names_each_mismatch(app, member_factory, give_points):
    m = member_factory()
    give_points(m["id"], 25)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["crm", "audit"])
    assert ok.exit_code == 0 and "balance" in ok.output
    with app.app_context():  # someone edits a balance behind the ledger's back
        db.session.execute(update(PointsAccount).values(balance=PointsAccount.balance + 7))
        db.session.commit()
    bad = runner.invoke(args=["crm", "audit"])
    assert bad.exit_code == 1
    assert f"member {m['id']}: balance 32, entries sum 25, lots remaining 25" in bad.output


def test_twenty_cashiers_redeeming_ten_from_a_hundred(app, catalogue, member_factory, give_points, cashier):
    """Exactly ten succeed; the rest are refused with a code; the balance ends at 0."""
    catalogue.post("/api/v1/items", json={"sku": "RICE", "name": "米饭", "category": "staple", "list_price": "10.00"})
    m = member_factory()
    give_points(m["id"], 100)
    barrier, results = threading.Barrier(20), []
    # A 10-yuan bill paid wholly with 10 points earns nothing, so exactly ten can succeed.
    body = {"store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "RICE", "qty": 1}], "redeem_points": 10}

    def till(n):
        client = app.test_client()
        barrier.wait()
        r = client.post("/api/v1/checkouts", json=body,
                        headers={"Authorization": f"Bearer {cashier.token}", "Idempotency-Key": f"till-{n}"})
        results.append((r.status_code, (r.json or {}).get("error", {}).get("code")))

    threads = [threading.Thread(target=till, args=(n,)) for n in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(s for s, _ in results).count(201) == 10
    assert all(code in ("insufficient_points",) for s, code in results if s != 201), results
    assert cashier.get(f"/api/v1/members/{m['id']}/points").json["balance"] == 0
    with app.app_context():
        assert [lot.remaining for lot in db.session.scalars(select(PointsLot))] == [0]
    assert audit_problems(app) == []


@pytest.mark.parametrize("n", [3])
def test_scan_shows_points_and_wallet_balance(login_api, member_factory, issue_card, give_points, n):
    m = member_factory()
    card = issue_card(m["id"]).json
    give_points(m["id"], n)
    cashier = login_api("cashier")
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "5000.00", "payment_method": "cash"})
    r = cashier.post("/api/v1/cards/scan", json={"code": card["qr_payload"]})
    assert (r.json["points_balance"], r.json["wallet_balance"]) == (n, "5600.00")
