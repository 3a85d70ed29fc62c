"""Concurrent cashiers through the real service: gunicorn with several workers."""
import os
import subprocess
import threading

import pytest
import requests

from tests.conftest import PASSWORD, scratch_database
from tests.servers import ROOT, SECRET_KEY, VENV_BIN, flask_cli, gunicorn


@pytest.fixture(params=["sqlite", "postgresql"])
def served_env(request, tmp_path):
    url, drop = scratch_database(request.param, tmp_path)
    env = {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY}
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "crm", "create-staff", "boss", "--role", "admin", "--password", PASSWORD)
    yield env
    drop()


def _token(base):
    return requests.post(base + "/api/v1/auth/token", json={"username": "boss", "password": PASSWORD}).json()["token"]


def test_twenty_concurrent_redemptions_through_gunicorn(served_env):
    with gunicorn(served_env, workers=4) as base:
        h = {"Authorization": f"Bearer {_token(base)}"}
        assert requests.post(base + "/api/v1/stores", headers=h,
                             json={"code": "BJ01", "name": "店", "kind": "restaurant"}).status_code == 201
        assert requests.post(base + "/api/v1/items", headers=h, json={
            "sku": "RICE", "name": "米饭", "category": "staple", "list_price": "10.00"}).status_code == 201
        member = requests.post(base + "/api/v1/members", headers=h,
                               json={"name": "并发", "mobile": "13600000000", "store_code": "BJ01"}).json()
        requests.post(base + f"/api/v1/members/{member['id']}/points/adjustments", headers=h,
                      json={"points": 100, "reason": "test"}).raise_for_status()
        body = {"store_code": "BJ01", "member_id": member["id"], "items": [{"sku": "RICE", "qty": 1}],
                "redeem_points": 10}
        barrier, results = threading.Barrier(20), []

        def till(n):
            barrier.wait()
            r = requests.post(base + "/api/v1/checkouts", json=body,
                              headers={**h, "Idempotency-Key": f"http-{n}"}, timeout=60)
            results.append((r.status_code, r.json().get("error", {}).get("code")))

        threads = [threading.Thread(target=till, args=(n,)) for n in range(20)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert [s for s, _ in results].count(201) == 10, results
        assert {code for s, code in results if s != 201} == {"insufficient_points"}
        points = requests.get(base + f"/api/v1/members/{member['id']}/points", headers=h).json()
        assert points["balance"] == 0
    audit = subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", "crm", "audit"], cwd=ROOT,
                           env={**os.environ, **served_env}, capture_output=True, text=True)
    assert audit.returncode == 0, audit.stderr
