"""Tenders per bill: how a bill was paid (cash, bank card, WeChat Pay, Alipay, stored value),
through the API and stored with the checkout, so day-end figures exist."""
from datetime import date, datetime, timezone

import pytest
from flask_migrate import upgrade
from sqlalchemy import MetaData, select, text

from crm.checkout.models import CheckoutTender
from crm.checkout.service import tender_mismatches
from crm.extensions import db
from tests.conftest import audit_problems, make_app, scratch_database

SEED_BILL = [("SALMON", 2), ("TEA", 1)]  # a member pays 156.00


def _stored(app, checkout_id):
    with app.app_context():
        rows = db.session.scalars(select(CheckoutTender).where(CheckoutTender.checkout_id == checkout_id)
                                  .order_by(CheckoutTender.method)).all()
        return {r.method: r.amount for r in rows}


def _top_up(cashier, member_id, amount="100.00"):
    r = cashier.post(f"/api/v1/members/{member_id}/wallet/top-ups",
                     json={"store_code": "BJ01", "amount": amount, "payment_method": "cash"})
    assert r.status_code == 201, r.json


def test_split_tender_is_stored_and_returned(app, catalogue, member_factory, checkout, cashier):
    m = member_factory()
    r = checkout(SEED_BILL, member_id=m["id"], tenders=[{"method": "cash", "amount": "100.00"},
                                                        {"method": "wechat_pay", "amount": "56.00"}])
    assert r.status_code == 201, r.json
    assert r.json["tenders"] == [{"method": "cash", "amount": "100.00"}, {"method": "wechat_pay", "amount": "56.00"}]
    assert _stored(app, r.json["id"]) == {"cash": 10000, "wechat_pay": 5600}
    assert cashier.get(f"/api/v1/checkouts/{r.json['id']}").json["tenders"] == r.json["tenders"]
    assert audit_problems(app) == []


def test_tenders_that_do_not_add_up_are_refused_with_the_figures(app, catalogue, member_factory, checkout,
                                                                  cashier):
    m = member_factory()
    short = checkout(SEED_BILL, member_id=m["id"], tenders=[{"method": "cash", "amount": "100.00"},
                                                            {"method": "alipay", "amount": "50.00"}])
    assert short.status_code == 422
    error = short.json["error"]
    assert error["code"] == "tenders_do_not_add_up"
    assert (error["details"]["due"], error["details"]["tendered"], error["details"]["difference"]) == \
        ("156.00", "150.00", "6.00")
    assert "156.00" in error["message"] and "6.00" in error["message"]
    over = checkout(SEED_BILL, member_id=m["id"], tenders=[{"method": "bank_card", "amount": "200.00"}])
    assert over.status_code == 422 and over.json["error"]["details"]["difference"] == "-44.00"
    assert cashier.get("/api/v1/checkouts").json["total"] == 0  # nothing was saved
    # The quote checks them too, before the cashier closes.
    quote = cashier.post("/api/v1/checkouts/quote", json={
        "store_code": "BJ01", "member_id": m["id"], "items": [{"sku": "TEA", "qty": 1}],
        "tenders": [{"method": "cash", "amount": "1.00"}]})
    assert quote.status_code == 422 and quote.json["error"]["code"] == "tenders_do_not_add_up"


def test_one_tender_without_amount_pays_the_rest(app, catalogue, member_factory, checkout):
    m = member_factory()
    r = checkout(SEED_BILL, member_id=m["id"], tenders=[{"method": "cash", "amount": "6.00"},
                                                        {"method": "alipay"}])
    assert r.status_code == 201, r.json
    assert r.json["tenders"] == [{"method": "cash", "amount": "6.00"}, {"method": "alipay", "amount": "150.00"}]
    two_open = checkout(SEED_BILL, member_id=m["id"], tenders=[{"method": "cash"}, {"method": "alipay"}])
    assert two_open.status_code == 422 and two_open.json["error"]["code"] == "tender_amount_missing"


def test_stored_value_is_a_tender_given_either_way(app, catalogue, member_factory, checkout, cashier):
    m = member_factory()
    _top_up(cashier, m["id"], "100.00")
    by_tender = checkout(SEED_BILL, member_id=m["id"], tenders=[{"method": "stored_value", "amount": "50.00"},
                                                                {"method": "cash", "amount": "106.00"}])
    assert by_tender.status_code == 201, by_tender.json
    assert (by_tender.json["wallet_paid"], by_tender.json["due"]) == ("50.00", "106.00")
    by_field = checkout([("TEA", 1)], member_id=m["id"], wallet_amount="5.00", tenders=[{"method": "wechat_pay"}])
    assert by_field.status_code == 201, by_field.json
    assert by_field.json["tenders"] == [{"method": "stored_value", "amount": "5.00"},
                                        {"method": "wechat_pay", "amount": "15.00"}]
    clash = checkout([("TEA", 1)], member_id=m["id"], wallet_amount="5.00",
                     tenders=[{"method": "stored_value", "amount": "6.00"}, {"method": "cash"}])
    assert clash.status_code == 422 and clash.json["error"]["code"] == "tender_wallet_mismatch"
    assert cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "45.00"
    assert audit_problems(app) == []


def test_clients_that_send_no_tenders_keep_working(app, catalogue, member_factory, checkout, cashier):
    m = member_factory()
    _top_up(cashier, m["id"], "100.00")
    r = checkout(SEED_BILL, member_id=m["id"], wallet_amount="56.00")
    assert r.status_code == 201, r.json
    assert r.json["tenders"] == [{"method": "stored_value", "amount": "56.00"}, {"method": "other", "amount": "100.00"}]
    guest = checkout([("TEA", 1)])
    assert guest.json["tenders"] == [{"method": "other", "amount": "20.00"}]
    assert audit_problems(app) == []


def test_bad_tenders_are_422_naming_the_field(app, catalogue, checkout):
    for tenders in ([{"method": "cheque", "amount": "20.00"}], [{"method": "cash", "amount": "0.00"}],
                    [{"amount": "20.00"}]):
        r = checkout([("TEA", 1)], tenders=tenders)
        assert r.status_code == 422, tenders
        assert "tenders" in r.json["error"]["details"]["fields"], r.json


def test_the_openapi_document_describes_tenders(app, client):
    spec = client.get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    checkout_in = next(s for name, s in schemas.items() if name.startswith("CheckoutIn"))
    assert "tenders" in checkout_in["properties"] and "tenders_do_not_add_up" in \
        checkout_in["properties"]["tenders"]["description"]
    tender_in = next(s for name, s in schemas.items() if name.startswith("TenderIn"))
    assert "wechat_pay" in tender_in["properties"]["method"]["enum"]
    assert "tenders" in schemas["Checkout"]["properties"]


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request, tmp_path):
    url, drop = scratch_database(request.param, tmp_path)
    yield url
    drop()


def _required_values(table, given):
    """A row for `table` with `given` and a plain value in every other required column."""
    row = dict(given)
    for column in table.columns:
        if column.name in row or column.nullable or column.primary_key or column.server_default is not None:
            continue
        kind = column.type.python_type
        row[column.name] = {int: 0, str: "x", bool: False, datetime: datetime(2026, 1, 1, tzinfo=timezone.utc),
                            date: date(2026, 1, 1), dict: {}, list: []}[kind]
    return row


def test_migration_records_tenders_and_pinyin_for_what_existed(scratch_url):
    """Bills closed before tenders existed get their stored-value part and an `other` tender;
    items saved before get their pinyin."""
    app = make_app(scratch_url)
    with app.app_context():
        upgrade(revision="0013_import_encoding")
        meta = MetaData()
        meta.reflect(db.engine, only=["stores", "items", "checkouts"])
        stores, items, checkouts = (meta.tables[name] for name in ("stores", "items", "checkouts"))
        with db.engine.begin() as conn:
            store_id = conn.execute(stores.insert().values(_required_values(stores, {
                "code": "BJ01", "name": "s", "kind": "restaurant", "timezone": "Asia/Shanghai", "active": True})
            ).returning(stores.c.id)).scalar_one()
            conn.execute(items.insert().values(_required_values(items, {
                "sku": "SALMON", "name": "三文鱼刺身", "category": "sashimi", "list_price": 100, "active": True})))
            for wallet_paid, due in ((300, 700), (0, 1000), (1000, 0)):
                conn.execute(checkouts.insert().values(_required_values(checkouts, {
                    "store_id": store_id, "status": "closed", "list_total": 1000, "member_total": 1000,
                    "wallet_paid": wallet_paid, "wallet_principal": wallet_paid, "due": due})))
        upgrade()
        with db.engine.connect() as conn:
            tenders = conn.execute(text("SELECT checkout_id, method, amount FROM checkout_tenders "
                                        "ORDER BY checkout_id, method")).all()
            pinyin = conn.execute(text("SELECT search_pinyin FROM items")).scalar_one()
        assert [tuple(t) for t in tenders] == [(1, "other", 700), (1, "stored_value", 300), (2, "other", 1000),
                                               (3, "stored_value", 1000)]
        assert pinyin == "swycs sanwenyucishen"
        assert tender_mismatches() == []
        db.engine.dispose()
