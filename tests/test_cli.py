"""Command-line operations: create-staff, demo."""
from sqlalchemy import func, select

from crm.auth.models import Staff
from crm.cards.models import Card
from crm.catalog.models import Item
from crm.checkout.models import Checkout
from crm.extensions import db
from crm.members.models import Member
from crm.stores.models import Store


def test_create_staff_then_log_in(app, client):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["crm", "create-staff", "Alice", "--role", "manager", "--password", "long-pass-1"])
    assert r.exit_code == 0, r.output
    assert client.post("/api/v1/auth/token", json={"username": "alice", "password": "long-pass-1"}).json["role"] == \
        "manager"
    again = runner.invoke(args=["crm", "create-staff", "alice", "--role", "manager", "--password", "long-pass-1"])
    assert again.exit_code != 0 and "taken" in again.output
    weak = runner.invoke(args=["crm", "create-staff", "bob", "--role", "cashier", "--password", "x"])
    assert weak.exit_code != 0 and "8" in weak.output


def test_demo_loads_a_chain_once(app, client):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["crm", "demo", "--members", "40", "--history-days", "30"])
    assert r.exit_code == 0 and "loaded" in r.output
    with app.app_context():
        kinds = sorted(db.session.scalars(select(Store.kind)).all())
        assert kinds == ["hotel", "restaurant", "restaurant"]
        assert db.session.scalar(select(func.count()).select_from(Member)) == 40
        assert db.session.scalar(select(func.count()).select_from(Card)) > 0
        roles = set(db.session.scalars(select(Staff.role)).all())
        assert roles == {"admin", "manager", "front_desk", "cashier", "marketing"}
        assert db.session.scalar(select(func.count()).select_from(Item)) >= 20
        assert db.session.scalar(select(func.count()).select_from(Checkout)) > 30
    assert runner.invoke(args=["crm", "audit"]).exit_code == 0
    assert runner.invoke(args=["crm", "demo"]).output.startswith("Demo data already present")
    from crm.demo import DEMO_PASSWORD
    token = client.post("/api/v1/auth/token", json={"username": "frontdesk", "password": DEMO_PASSWORD})
    assert token.status_code == 200
