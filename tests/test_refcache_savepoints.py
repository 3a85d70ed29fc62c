"""A savepoint released or rolled back inside a transaction that changed a cached table does
not end that transaction's bypass of the cache: the uncommitted (later rolled back) rows are
never cached, so a later unrelated change cannot bring them back as current."""
from sqlalchemy import text

from crm.core.timeutil import local_today
from crm.extensions import db

BILL = {"store_code": "BJ01", "items": [{"sku": "SALMON", "qty": 1}]}


def test_rolled_back_change_after_savepoint_rollback_poisons_cache(app, catalogue, member_factory, cashier):
    from crm.catalog import service as catalog
    from crm.catalog.models import Item
    from crm.stores import service as stores
    assert cashier.post("/api/v1/checkouts/quote", json=BILL).json["list_total"] == "108.00"  # warm
    with app.test_request_context("/"):
        item = db.session.scalar(db.select(Item).where(Item.sku == "SALMON"))
        item.list_price = 100  # 1.00, never committed
        db.session.flush()      # bumps catalogue in this transaction
        try:
            with db.session.begin_nested():
                db.session.execute(text("SELECT * FROM no_such_table"))
        except Exception:
            pass
        store = stores.get_by_code("BJ01")
        catalog.items_for_bill(["SALMON"], store, local_today())  # reads & caches uncommitted price
        db.session.rollback()
    # an unrelated catalogue change is committed by the admin: catalogue version +1
    assert catalogue.patch("/api/v1/items/TEA", json={"list_price": "21.00"}).status_code == 200
    r = cashier.post("/api/v1/checkouts/quote", json=BILL)
    assert r.json["list_total"] == "108.00", r.json


def test_released_savepoint_also_ends_the_guard(app, catalogue, cashier):
    """SQLAlchemy fires after_commit for a savepoint RELEASE too: same poisoning, no error needed."""
    from crm.catalog import service as catalog
    from crm.catalog.models import Item
    from crm.stores import service as stores
    assert cashier.post("/api/v1/checkouts/quote", json=BILL).json["list_total"] == "108.00"  # warm
    with app.test_request_context("/"):
        item = db.session.scalar(db.select(Item).where(Item.sku == "SALMON"))
        item.list_price = 200  # 2.00, never committed
        db.session.flush()
        with db.session.begin_nested():  # e.g. _flush_unique_mobile, wallet/points account creation
            pass
        catalog.items_for_bill(["SALMON"], stores.get_by_code("BJ01"), local_today())
        db.session.rollback()  # the request fails later (a 4xx): nothing of it committed
    assert catalogue.patch("/api/v1/items/TEA", json={"list_price": "22.00"}).status_code == 200
    r = cashier.post("/api/v1/checkouts/quote", json=BILL)
    assert r.json["list_total"] == "108.00", r.json
