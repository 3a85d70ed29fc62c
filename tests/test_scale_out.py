"""Scale-out: several gunicorn workers share one failed-login budget through Redis."""
import uuid

import pytest
import redis
import requests

from tests.conftest import IN_CI, PASSWORD, REDIS_URL, redis_ok
from tests.servers import SECRET_KEY, flask_cli, gunicorn


@pytest.fixture
def shared_env(tmp_path):
    if not redis_ok():
        if IN_CI:
            pytest.fail(f"CI=true but Redis is unreachable at {REDIS_URL}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    prefix = f"crm-test-{uuid.uuid4().hex[:8]}"
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'served.sqlite3'}", "SECRET_KEY": SECRET_KEY,
           "RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "crm", "create-staff", "desk", "--role", "front_desk", "--password", PASSWORD)
    yield env
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)


def test_failed_logins_are_counted_across_workers(shared_env):
    with gunicorn(shared_env, workers=3) as base:
        for _ in range(5):  # new connections, so the failures land on different workers
            r = requests.post(base + "/api/v1/auth/token", json={"username": "desk", "password": "bad"})
            assert r.status_code == 401
        for _ in range(3):
            r = requests.post(base + "/api/v1/auth/token", json={"username": "desk", "password": PASSWORD})
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
