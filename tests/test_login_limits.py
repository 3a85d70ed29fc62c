"""Failed logins are counted once for the API and the UI, per username (5 in 15 minutes) and
per address (30), shared by every worker: in the database by default, in Redis when set."""

import pytest
import redis
import requests
from sqlalchemy import func, select

from crm.auth.models import LoginFailure
from crm.extensions import db
from tests.conftest import PASSWORD, REDIS_URL, make_app, scratch_database
from tests.servers import flask_cli, gunicorn
from tests.test_ui import CSRF

TILL_PC = "10.1.1.10"


def api_login(client, username, password, addr=TILL_PC):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": addr})


def ui_login(client, username, password, addr=TILL_PC):
    page = client.get("/login", environ_base={"REMOTE_ADDR": addr})
    token = CSRF.search(page.data)[1].decode()
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": addr})


def test_api_and_ui_failures_count_together_and_lock_only_that_user(app, staff):
    api, browser = app.test_client(), app.test_client()
    for _ in range(3):
        assert api_login(api, "cashier", "wrong-pass").status_code == 401
    for _ in range(2):
        r = ui_login(browser, "cashier", "wrong-pass")
        assert r.status_code == 200 and "用户名或密码错误" in r.data.decode()
    # The 6th attempt is refused even with the right password, on both doors.
    r = api_login(api, "cashier", PASSWORD)
    assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
    assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert r.json["error"]["details"]["retry_after"] == int(r.headers["Retry-After"])
    r = ui_login(browser, "cashier", PASSWORD)
    page = r.data.decode()
    assert r.status_code == 429 and "失败次数过多" in page and 'name="password"' in page  # on the login form
    assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    # A colleague at the same till PC logs in: one typist's mistakes lock only their own account.
    assert api_login(api, "frontdesk", PASSWORD).status_code == 200
    assert ui_login(app.test_client(), "manager", PASSWORD).status_code == 302


def test_a_lock_lifts_when_the_failures_age_out(app, staff, clock):
    clock.freeze()
    client = app.test_client()
    for _ in range(5):
        assert api_login(client, "cashier", "wrong-pass").status_code == 401
        clock.advance(minutes=1)
    r = api_login(client, "cashier", PASSWORD)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 10 * 60  # when the first failure ages out
    clock.advance(minutes=10, seconds=1)
    assert api_login(client, "cashier", PASSWORD).status_code == 200


def test_the_address_limit_is_higher_and_then_locks_everyone_at_that_address(app, staff):
    client = app.test_client()
    for n in range(30):
        assert api_login(client, f"guess{n // 5}", "wrong-pass", addr="10.6.6.6").status_code == 401
    r = api_login(client, "manager", PASSWORD, addr="10.6.6.6")
    assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
    assert ui_login(client, "manager", PASSWORD, addr="10.6.6.6").status_code == 429
    assert api_login(client, "manager", PASSWORD, addr="10.6.6.7").status_code == 200


def test_counts_are_shared_by_app_instances_on_one_database(app, staff):
    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"])  # another worker, or another host
    try:
        one, two = app.test_client(), other.test_client()
        for client in (one, two, one, two, one):
            assert api_login(client, "cashier", "wrong-pass").status_code == 401
        assert api_login(two, "cashier", PASSWORD).status_code == 429
        assert ui_login(one, "cashier", PASSWORD).status_code == 429
    finally:
        with other.app_context():
            db.engine.dispose()


def test_counts_live_in_redis_when_it_is_configured(app, staff, redis_prefix):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    instances = [make_app(url, RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=redis_prefix) for _ in (1, 2)]
    try:
        one, two = (a.test_client() for a in instances)
        for client in (one, two, one, two, one):
            assert api_login(client, "cashier", "wrong-pass").status_code == 401
        r = api_login(two, "cashier", PASSWORD)
        assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 15 * 60
        assert ui_login(one, "cashier", PASSWORD).status_code == 429
        assert api_login(one, "frontdesk", PASSWORD).status_code == 200
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(LoginFailure)) == 0
        assert any(redis.Redis.from_url(REDIS_URL).scan_iter(f"*{redis_prefix}*"))
    finally:
        for a in instances:
            with a.app_context():
                db.engine.dispose()


@pytest.fixture(params=["postgresql"])  # the production shape; SQLite shares the same table (test above)
def served(request, tmp_path):
    url, drop = scratch_database(request.param, tmp_path)
    env = {"DATABASE_URL": url, "RATELIMIT_STORAGE_URI": "memory://"}
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "crm", "create-staff", "desk", "--role", "front_desk", "--password", PASSWORD)
    yield env
    drop()


def test_gunicorn_workers_share_counts_without_redis(served):
    with gunicorn(served, workers=3) as base:
        for _ in range(5):  # a new connection each time: the failures land on different workers
            r = requests.post(base + "/api/v1/auth/token", json={"username": "desk", "password": "bad"})
            assert r.status_code == 401
        for _ in range(3):
            r = requests.post(base + "/api/v1/auth/token", json={"username": "desk", "password": PASSWORD})
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
