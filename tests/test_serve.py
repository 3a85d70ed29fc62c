"""`make serve` (README "Running in production"): on a fresh PostgreSQL database with Redis it migrates,
then runs gunicorn and the scheduler under supervisord; a crashed scheduler is started again, and
SIGTERM stops everything. PostgreSQL only: that is what production runs on."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import IN_CI, PG_OK, PG_WHY, REDIS_URL, create_scratch_pg_database, redis_ok
from tests.servers import ROOT, SECRET_KEY, free_port

VENV = Path(sys.executable).parent.parent


def _children(pid):
    """{pid: command line} of the direct children of pid."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(line.split(None, 1)[0]): line.split(None, 1)[1] for line in out.splitlines() if line.strip()}


def _wait(what, check, seconds, extra=lambda: ""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}{extra()}")


def _scheduler_pid(supervisord):
    found = [pid for pid, args in _children(supervisord).items() if "crm scheduler" in args]
    return found[0] if len(found) == 1 else None


@pytest.fixture
def serve_env(tmp_path):
    if not PG_OK:
        pytest.skip(f"PostgreSQL unreachable ({PG_WHY})")
    if not redis_ok():
        if IN_CI:
            pytest.fail(f"CI=true but Redis is unreachable at {REDIS_URL}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    url, drop = create_scratch_pg_database()
    prefix = f"crm-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_ENV", "FLASK_DEBUG", "BIND", "PORT")}
    env.update(DATABASE_URL=url, SECRET_KEY=SECRET_KEY, RATELIMIT_STORAGE_URI=REDIS_URL,
               RATELIMIT_KEY_PREFIX=prefix, WEB_CONCURRENCY="2", SCHEDULER_TICK_SECONDS="5")
    yield env
    drop()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)


def test_make_serve_runs_web_and_scheduler_and_stops_cleanly(serve_env, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    # -o: the virtualenv the tests run in counts as installed (no pip during the test)
    with open(log, "ab") as out:
        make = subprocess.Popen(["make", "--no-print-directory", "-o", f"{VENV}/.installed", "serve",
                                 f"VENV={VENV}", f"SERVE_PORT={port}", f"RUN_DIR={tmp_path}"],
                                cwd=ROOT, env=serve_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy():
            if make.poll() is not None:
                raise AssertionError(f"make serve exited {make.returncode}:\n{log.read_text()}")
            try:
                return requests.get(base + "/healthz", timeout=5)
            except requests.ConnectionError:
                return None
        answer = _wait("/healthz", lambda: (r := healthy()) is not None and r.status_code == 200 and r, 90)
        assert answer.headers["X-Request-ID"]  # gunicorn.conf.py logs it with each request

        pidfile = tmp_path / "supervisord.pid"
        supervisord = int(_wait("the supervisord pid file", lambda: pidfile.exists() and pidfile.read_text(), 10))
        children = _children(supervisord)
        assert any("gunicorn" in args for args in children.values()), children
        first = _wait("the scheduler process", lambda: _scheduler_pid(supervisord), 10, lambda: f"\n{log.read_text()}")
        _wait("the scheduler to stay up", lambda: b"success: scheduler entered RUNNING" in log.read_bytes(), 30)

        assert requests.get(base + "/readyz", timeout=10).status_code == 200  # the database reads and writes
        # the migrations ran: a login against the served database is refused for a bad password, not a 500
        r = requests.post(base + "/api/v1/auth/token", json={"username": "nobody", "password": "x"}, timeout=10)
        assert r.status_code == 401

        os.kill(first, signal.SIGKILL)  # a crashed scheduler is started again
        _wait("a new scheduler", lambda: _scheduler_pid(supervisord) not in (None, first), 20)

        os.kill(supervisord, signal.SIGTERM)
        assert make.wait(timeout=40) == 0, log.read_text()
        assert not _children(supervisord)
        with pytest.raises(requests.ConnectionError):
            requests.get(base + "/healthz", timeout=5)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)


def test_every_answer_carries_a_request_id(client):
    """The id in the access log (gunicorn.conf.py) is the one the client and a proxy see."""
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a.42"
    first, second = client.get("/healthz"), client.get("/no-such-page")
    assert second.status_code == 404
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    for unsafe in ("a b", "x" * 65, "<script>"):  # not echoed into logs or headers as sent
        answer = client.get("/healthz", headers={"X-Request-ID": unsafe})
        assert answer.headers["X-Request-ID"] != unsafe and len(answer.headers["X-Request-ID"]) == 32
