"""Per-worker caches of reference data (core/refcache.py): two app instances on one
database stand for two gunicorn workers. What one caches, a change made through the other
invalidates for the very next request: prices, promotions, programme rules, levels, stores,
revoked tokens and deactivated staff. And the cache is really used: a warm worker does
not read the catalogue again."""
from sqlalchemy import event

from crm.extensions import db
from tests.conftest import Api, login_on

BILL = {"store_code": "BJ01", "items": [{"sku": "SALMON", "qty": 2}, {"sku": "TEA", "qty": 1}]}




def _statements(flask_app, fn):
    seen = []
    with flask_app.app_context():
        engine = db.engine
    listener = lambda conn, cursor, statement, *rest: seen.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return seen


def test_a_change_on_one_worker_reaches_the_other_on_its_next_request(
        app, second_worker, staff, catalogue, member_factory, store_today):
    m = member_factory()
    till = login_on(second_worker, staff["cashier"])  # the till talks to worker 2
    admin = login_on(app, staff["admin"])  # the admin's browser to worker 1
    quote = lambda: till.post("/api/v1/checkouts/quote", json={**BILL, "member_id": m["id"]})  # noqa: E731

    first = quote().json
    assert (first["member_total"], first["points_earned"]) == ("156.00", 15)
    reads = _statements(second_worker, lambda: quote())
    assert not [s for s in reads if "FROM items" in s or "FROM programme_settings" in s
                or "FROM promotions" in s or "FROM api_tokens" in s], "a warm worker read reference data again"

    assert admin.patch("/api/v1/items/SALMON", json={"member_price": "78.00"}).status_code == 200
    assert quote().json["member_total"] == "176.00"  # 2 × 78 + 20

    assert admin.post("/api/v1/promotions", json={"code": "HALF", "name": "半价", "rate": "50.00",
                                                  "categories": ["drinks"], "starts_on": store_today,
                                                  "ends_on": store_today, "auto_apply": True}).status_code == 201
    assert quote().json["member_total"] == "166.00"  # the tea at half price

    assert admin.patch("/api/v1/programme", json={"points_earn_unit": "5.00"}).status_code == 200
    assert quote().json["points_earned"] == 33  # one point per 5.00 of 166.00

    assert admin.patch("/api/v1/stores/BJ01", json={"active": False}).status_code == 200
    r = quote()
    assert r.status_code == 422 and r.json["error"]["code"] == "unknown_store"


def test_a_revoked_token_or_deactivated_cashier_is_refused_at_once_by_a_warm_worker(app, second_worker, staff):
    till = login_on(second_worker, staff["cashier"])
    assert till.get("/api/v1/auth/me").status_code == 200  # worker 2 now holds the token
    assert till.get("/api/v1/auth/me").json["username"] == staff["cashier"]

    same_token_elsewhere = Api(app.test_client(), till.token)
    assert same_token_elsewhere.delete("/api/v1/auth/token").status_code == 204  # logged out on worker 1
    r = till.get("/api/v1/auth/me")
    assert r.status_code == 401

    till = login_on(second_worker, staff["cashier"])
    assert till.get("/api/v1/auth/me").status_code == 200
    admin = login_on(app, staff["admin"])
    cashier_id = till.get("/api/v1/auth/me").json["id"]
    assert admin.patch(f"/api/v1/staff/{cashier_id}", json={"active": False}).status_code == 200
    assert till.get("/api/v1/auth/me").status_code == 401


def test_refresh_caches_command_covers_changes_made_in_raw_sql(app, second_worker, staff, catalogue, member_factory):
    from sqlalchemy import text
    m = member_factory()
    till = login_on(second_worker, staff["cashier"])
    quote = lambda: till.post("/api/v1/checkouts/quote", json={**BILL, "member_id": m["id"]})  # noqa: E731
    assert quote().json["member_total"] == "156.00"
    with app.app_context():
        db.session.execute(text("UPDATE items SET member_price = 7800 WHERE sku = 'SALMON'"))
        db.session.commit()
    assert quote().json["member_total"] == "156.00"  # raw SQL bypasses the version rows: still cached
    assert "re-reads" in app.test_cli_runner().invoke(args=["crm", "refresh-caches"]).output
    assert quote().json["member_total"] == "176.00"
