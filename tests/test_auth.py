"""Tokens, failed-login limits (429, audited), staff accounts."""
from datetime import timedelta

from sqlalchemy import select, update

from crm.auth.models import ApiToken
from crm.core.audit import AuditEntry
from crm.core.timeutil import utcnow
from crm.extensions import db
from tests.conftest import PASSWORD, Api


def test_token_grants_access_and_logout_revokes_it(client, staff):
    r = client.post("/api/v1/auth/token", json={"username": "FrontDesk", "password": PASSWORD})
    assert r.status_code == 200
    assert r.json["role"] == "front_desk" and r.json["expires_at"].endswith("+00:00")
    api = Api(client, r.json["token"])
    assert api.get("/api/v1/auth/me").json["username"] == "frontdesk"
    assert api.delete("/api/v1/auth/token").status_code == 204
    r = api.get("/api/v1/auth/me")
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"


def test_wrong_password_and_unknown_user_look_the_same(client, staff):
    a = client.post("/api/v1/auth/token", json={"username": "frontdesk", "password": "wrong-pass"})
    b = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "wrong-pass"})
    assert a.status_code == b.status_code == 401
    assert a.json == b.json and a.json["error"]["code"] == "invalid_credentials"


def test_expired_token_is_refused(app, client, login_api):
    api = login_api("cashier")
    with app.app_context():
        db.session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert api.get("/api/v1/auth/me").status_code == 401


def test_garbage_bearer_token_is_401(client, staff):
    r = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401


def _fail(client, username, addr="10.0.0.1"):
    return client.post("/api/v1/auth/token", json={"username": username, "password": "wrong-pass"},
                       environ_base={"REMOTE_ADDR": addr})


def test_five_failures_per_user_then_429_even_with_right_password_and_audited(app, client, staff):
    for i in range(5):
        assert _fail(client, "cashier", addr=f"10.0.0.{i + 1}").status_code == 401
    r = client.post("/api/v1/auth/token", json={"username": "cashier", "password": PASSWORD},
                    environ_base={"REMOTE_ADDR": "10.0.0.99"})
    assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
    # Another user from those addresses is not locked out by cashier's failures.
    ok = client.post("/api/v1/auth/token", json={"username": "manager", "password": PASSWORD},
                     environ_base={"REMOTE_ADDR": "10.0.0.6"})
    assert ok.status_code == 200
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.rate_limited")).all()
        assert rows and rows[0].entity_id == "cashier" and rows[0].address == "10.0.0.99"


def test_successful_logins_do_not_count_toward_the_limit(client, staff):
    for _ in range(8):
        r = client.post("/api/v1/auth/token", json={"username": "manager", "password": PASSWORD})
        assert r.status_code == 200


def test_ui_login_failures_are_limited_too(app, client, staff):
    from tests.test_ui import CSRF
    token = CSRF.search(client.get("/login").data)[1].decode()
    for _ in range(5):
        r = client.post("/login", data={"username": "frontdesk", "password": "x", "csrf_token": token})
        assert r.status_code == 200
    r = client.post("/login", data={"username": "frontdesk", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429 and "失败次数过多" in r.data.decode()


def test_admin_manages_staff_and_deactivation_revokes_tokens(client, login_api):
    admin = login_api("admin")
    r = admin.post("/api/v1/staff", json={"username": "newdesk", "password": "short", "role": "front_desk"})
    assert r.status_code == 422 and r.json["error"]["code"] == "weak_password"
    r = admin.post("/api/v1/staff", json={"username": "newdesk", "password": "long-enough-1",
                                          "role": "front_desk", "store_code": "HT01"})
    assert r.status_code == 201 and r.json["store_code"] == "HT01"
    dup = admin.post("/api/v1/staff", json={"username": "NewDesk", "password": "long-enough-1", "role": "cashier"})
    assert dup.status_code == 409 and dup.json["error"]["code"] == "username_taken"
    bad_role = admin.post("/api/v1/staff", json={"username": "x1", "password": "long-enough-1", "role": "chef"})
    assert bad_role.status_code == 422
    tok = client.post("/api/v1/auth/token", json={"username": "newdesk", "password": "long-enough-1"}).json["token"]
    newdesk = Api(client, tok)
    assert newdesk.get("/api/v1/auth/me").status_code == 200
    assert admin.patch(f"/api/v1/staff/{r.json['id']}", json={"active": False}).status_code == 200
    assert newdesk.get("/api/v1/auth/me").status_code == 401
    assert client.post("/api/v1/auth/token", json={"username": "newdesk",
                                                   "password": "long-enough-1"}).status_code == 401


def test_staff_actions_are_audited_with_who_role_and_store(app, desk, stores):
    r = desk.post("/api/v1/members", json={"name": "审计", "mobile": "13711112222", "store_code": "BJ02"})
    assert r.status_code == 201
    with app.app_context():
        row = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "member.register"))
        assert (row.username, row.role, row.store_id) == ("frontdesk", "front_desk", stores["BJ02"])
        assert row.details["mobile"] == "137****2222"  # never the full number in logs
        assert row.created_at is not None
