"""Fault injection against the real service: gunicorn workers on the app's own private
PostgreSQL cluster, started by the test, which then stops, restarts and write-locks it, and
SIGKILLs workers under load. PostgreSQL only (needs the Debian PostgreSQL server binaries).

What a user must see: while the database is gone or refuses writes, every answer is a 503
with Retry-After (`database_unavailable` in JSON, an error page in the UI), never a 500;
/healthz (liveness) stays 200 while /readyz says 503; the first request after the database
is back succeeds (pooled connections are checked before use); killed workers lose nothing
and double nothing, and the service keeps answering.

The first tests run in-process on both databases and make the database fail at one chosen
point (the commit of a unit of work, an HTML form's commit, the session loader); the
rest run the real thing.
"""
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import exc as sa_exc

from tests.conftest import IN_CI, PASSWORD
from tests.servers import SECRET_KEY, flask_cli, free_port, gunicorn_process, worker_pids

# --- In-process: the database fails at one point ---------------------------------------------

def _lost():
    return sa_exc.OperationalError("COMMIT", None, psycopg.OperationalError(
        "consuming input failed: server closed the connection unexpectedly"))


def _read_only():  # a standby, or default_transaction_read_only: SQLSTATE 25006, an InternalError
    return sa_exc.InternalError("UPDATE wallet_accounts ...", None, psycopg.errors.ReadOnlySqlTransaction(
        "cannot execute UPDATE in a read-only transaction"))


FAILURES = {"lost": _lost, "read_only": _read_only,
            "raw_driver_error": lambda: psycopg.OperationalError("the connection is closed")}


@pytest.fixture
def failing_commit(monkeypatch):
    """failing_commit(make_error): every commit from now on raises make_error()."""
    from flask_sqlalchemy.session import Session

    def arm(make_error):
        def commit(self):
            raise make_error()
        monkeypatch.setattr(Session, "commit", commit)
    return arm


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_an_api_write_meeting_a_failing_database_is_503_database_unavailable(desk, member_factory,
                                                                             failing_commit, failure):
    member = member_factory()
    failing_commit(FAILURES[failure])
    r = desk.post(f"/api/v1/members/{member['id']}/wallet/top-ups", key="k-1",
                  json={"store_code": "BJ01", "amount": "10.00", "payment_method": "cash"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "10"
    assert r.json["error"]["code"] == "database_unavailable"


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_form_meeting_a_failing_database_shows_a_503_page(app, staff, member_factory, failing_commit, failure):
    from tests.test_ui import ui_login
    member = member_factory()
    ui = ui_login(app, "frontdesk")
    ui.get(f"/members/{member['id']}/edit")
    failing_commit(FAILURES[failure])
    r = ui.post(f"/members/{member['id']}/edit", {"name": "新名字", "mobile": member["mobile"]})
    assert r.status_code == 503 and r.headers["Retry-After"] == "10"
    assert r.mimetype == "text/html"


def test_the_session_loader_meeting_a_lost_database_is_a_503_page_not_a_logout(app, staff, monkeypatch):
    from crm.auth import sessions
    from tests.test_ui import ui_login
    ui = ui_login(app, "frontdesk")

    def lost(user_id):
        raise _lost()
    monkeypatch.setattr(sessions, "current_staff", lost)
    r = ui.get("/")
    assert r.status_code == 503 and r.mimetype == "text/html"
    monkeypatch.undo()
    assert ui.get("/").status_code == 200  # still logged in once the database is back


def test_readyz_checks_the_database_healthz_does_not(client, monkeypatch):
    from flask_sqlalchemy.session import Session
    assert client.get("/readyz").status_code == 200

    def lost(self, *args, **kwargs):
        raise _lost()
    monkeypatch.setattr(Session, "execute", lost)
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json == {"status": "unavailable", "database": "unreachable"}
    assert r.headers["Retry-After"] == "10"
    assert client.get("/healthz").status_code == 200


# --- The real thing: a private PostgreSQL cluster and gunicorn ---------------------------------

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
               if (p / "initdb").exists()), None) if Path("/usr/lib/postgresql").exists() else None
TIMEOUT = 15  # seconds for any one HTTP call: a hung request is a failure too, just not a slow one


class PrivateCluster:
    """A throw-away PostgreSQL cluster on a free loopback port, trust auth. As root it runs as
    the `postgres` user (initdb refuses root)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="crm-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args, timeout=60):
        return subprocess.run([*self.as_user, *map(str, args)], check=True, capture_output=True, text=True,
                              timeout=timeout)

    def init(self):
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8", "--locale=C")
        self.start()

    def start(self):
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "server.log", "-w", "-t", "30", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def kill(self):
        """Stop at once, as a crash would (no checkpoint, clients cut off)."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def destroy(self):
        with contextlib.suppress(Exception):
            self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def admin(self):
        return psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True)

    def url(self, db):
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="module")
def cluster():
    wanted = os.environ.get("CRM_TEST_BACKENDS", "")
    if wanted and "postgresql" not in wanted:
        pytest.skip("PostgreSQL-only test; CRM_TEST_BACKENDS leaves PostgreSQL out")
    if PG_BIN is None or not (os.geteuid() != 0 or shutil.which("runuser")):
        if IN_CI:
            pytest.fail("CI=true but the PostgreSQL server binaries (initdb, pg_ctl) are missing")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    pg = PrivateCluster()
    try:
        pg.init()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def template_db(cluster):
    """A migrated database with one admin, copied for each test (migrating costs seconds)."""
    with cluster.admin() as conn:
        conn.execute('CREATE DATABASE "crm_template"')
    env = {"DATABASE_URL": cluster.url("crm_template")}
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "crm", "create-staff", "boss", "--role", "admin", "--password", PASSWORD)
    return "crm_template"


@pytest.fixture
def served(cluster, template_db):
    """A fresh copy of the template database on the private cluster: (env, database name)."""
    name = f"crm_{uuid.uuid4().hex[:8]}"
    with cluster.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}" STRATEGY FILE_COPY')
    yield {"DATABASE_URL": cluster.url(name)}, name
    with cluster.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def call(method, url, token=None, key=None, **kw):
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    return requests.request(method, url, headers=headers, timeout=TIMEOUT, **kw)


def make_shop(base, members=1):
    """Log in through the API; make a store, two dishes and members. Returns (token, member ids)."""
    r = call("POST", base + "/api/v1/auth/token", json={"username": "boss", "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    r = call("POST", base + "/api/v1/stores", token, json={"code": "BJ01", "name": "朝阳店", "kind": "restaurant"})
    assert r.status_code == 201, r.text
    for item in ({"sku": "SALMON", "name": "三文鱼刺身", "category": "sashimi", "list_price": "108.00",
                  "member_price": "68.00"},
                 {"sku": "TEA", "name": "铁观音", "category": "drinks", "list_price": "20.00"}):
        r = call("POST", base + "/api/v1/items", token, json=item)
        assert r.status_code == 201, r.text
    ids = []
    for n in range(members):
        r = call("POST", base + "/api/v1/members", token,
                 json={"name": f"会员{n}", "mobile": f"139{n:08d}", "store_code": "BJ01"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return token, ids


def ui_login(base):
    ui = requests.Session()
    page = ui.get(base + "/login", timeout=TIMEOUT)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = ui.post(base + "/login", data={"username": "boss", "password": PASSWORD, "csrf_token": csrf},
                timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code in (302, 303), r.text
    assert ui.get(base + "/", timeout=TIMEOUT).status_code == 200
    return ui


def top_up(base, token, member_id, key, amount="10.00"):
    return call("POST", f"{base}/api/v1/members/{member_id}/wallet/top-ups", token, key,
                json={"store_code": "BJ01", "amount": amount, "payment_method": "cash"})


def close_bill(base, token, member_id, key):
    return call("POST", base + "/api/v1/checkouts", token, key,
                json={"store_code": "BJ01", "member_id": member_id, "items": [{"sku": "TEA", "qty": 1}]})


def assert_unavailable(r, ui=False):
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert int(r.headers["Retry-After"]) > 0
    if ui:
        assert r.headers["Content-Type"].startswith("text/html")
    else:
        assert r.json()["error"]["code"] == "database_unavailable"


@pytest.mark.postgres_only
def test_database_killed_and_restarted_answers_503_then_recovers(cluster, served):
    env, _name = served
    with gunicorn_process(env, workers=2, extra_args=["--preload"]) as (base, _proc):
        token, (member,) = make_shop(base)
        ui = ui_login(base)
        for n in range(6):  # every worker has a pooled connection now
            assert top_up(base, token, member, f"warm-{n}").status_code == 201

        # Restarted while idle: each worker's pooled connection is dead; checked before use, the
        # first request on every worker still succeeds.
        cluster.kill()
        cluster.start()
        for n in range(6):
            r = top_up(base, token, member, f"after-idle-restart-{n}")
            assert r.status_code == 201, r.text

        # Down: only 503s with Retry-After, API and UI; liveness stays up, readiness does not.
        cluster.kill()
        for n in range(3):
            assert_unavailable(call("GET", f"{base}/api/v1/members/{member}", token))
            assert_unavailable(top_up(base, token, member, f"while-down-{n}"))
            assert_unavailable(close_bill(base, token, member, f"bill-while-down-{n}"))
            assert_unavailable(ui.get(base + "/", timeout=TIMEOUT), ui=True)
            assert_unavailable(ui.get(f"{base}/members/{member}", timeout=TIMEOUT), ui=True)
            assert call("GET", base + "/healthz").status_code == 200
            r = call("GET", base + "/readyz")
            assert r.status_code == 503 and r.json() == {"status": "unavailable", "database": "unreachable"}
            assert "Retry-After" in r.headers

        # Back: the very first request succeeds, and the retried top-up runs once.
        cluster.start()
        r = top_up(base, token, member, "while-down-0")
        assert r.status_code == 201, r.text
        ready = [call("GET", base + "/readyz").status_code for _ in range(5)]
        assert ready[-1] == 200 and ready.count(503) <= 2, ready  # at most one stale connection per worker
        assert ui.get(f"{base}/members/{member}", timeout=TIMEOUT).status_code == 200
        assert top_up(base, token, member, "while-down-0").headers.get("Idempotent-Replayed") == "true"
        wallet = call("GET", f"{base}/api/v1/members/{member}/wallet", token).json()
        assert wallet["balance"] == "130.00"  # 6 warm-up + 6 after the idle restart + 1, 10.00 each


@pytest.mark.postgres_only
def test_a_read_only_database_answers_writes_503_and_reads_200(cluster, served):
    env, name = served
    with gunicorn_process(env, workers=2, extra_args=["--preload"]) as (base, _proc):
        token, (member,) = make_shop(base)
        ui = ui_login(base)
        assert top_up(base, token, member, "before").status_code == 201

        def read_only(on):
            with cluster.admin() as conn:
                conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}')
                if on:  # the setting applies to new sessions: end the pooled ones (pre-ping reconnects)
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))

        read_only(True)
        for n in range(4):
            assert_unavailable(top_up(base, token, member, f"read-only-{n}"))
            assert_unavailable(close_bill(base, token, member, f"bill-read-only-{n}"))
            r = call("GET", f"{base}/api/v1/members/{member}/wallet", token)
            assert r.status_code == 200 and r.json()["balance"] == "10.00"
            assert ui.get(f"{base}/members/{member}", timeout=TIMEOUT).status_code == 200
            assert call("GET", base + "/healthz").status_code == 200
            r = call("GET", base + "/readyz")
            assert r.status_code == 503 and r.json()["database"] == "read_only"

        # Switched back with nothing else done: a worker whose pooled connection was opened read-only
        # answers one more 503 and drops its pool, so a client retrying as Retry-After says gets through.
        read_only(False)
        for _attempt in range(5):
            r = top_up(base, token, member, "read-only-0")
            if r.status_code != 503:
                break
        assert r.status_code == 201, r.text
        ready = [call("GET", base + "/readyz").status_code for _ in range(5)]
        assert ready[-1] == 200 and ready.count(503) <= 2, ready  # at most one stale connection per worker


KILL_SECONDS = 15
CLIENTS = 8


@pytest.mark.postgres_only
def test_killed_workers_lose_nothing_double_nothing_and_service_keeps_answering(cluster, served):
    env, name = served
    with gunicorn_process(env, workers=4, extra_args=["--preload"]) as (base, proc):
        token, members = make_shop(base, members=CLIENTS)
        for member in members:  # enough stored value for nothing; bills are paid at the till
            assert top_up(base, token, member, f"opening-{member}").status_code == 201

        stop = threading.Event()
        lock = threading.Lock()
        successes = []  # monotonic times of 2xx answers
        answered = {}  # key -> (kind, id) of its 2xx answer
        unexpected = []  # (key, status, body) of anything not 2xx
        retried = [0]

        def client(idx):
            member = members[idx]
            rng = random.Random(idx)
            n = 0
            while not stop.is_set():
                n += 1
                kind = "topup" if rng.random() < 0.5 else "checkout"
                key = f"{kind}-{idx}-{n}"
                while True:  # a request cut off by a killed worker is sent again with its key
                    try:
                        r = (top_up(base, token, member, key) if kind == "topup"
                             else close_bill(base, token, member, key))
                    except requests.RequestException:
                        with lock:
                            retried[0] += 1
                        time.sleep(0.05)
                        continue
                    break
                with lock:
                    if 200 <= r.status_code < 300:
                        successes.append(time.monotonic())
                        answered[key] = (kind, r.json()["id"])
                    else:
                        unexpected.append((key, r.status_code, r.text[:200]))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        killed = 0
        rng = random.Random(12)
        try:
            while time.monotonic() - started < KILL_SECONDS:
                time.sleep(1)
                pids = worker_pids(proc.pid)
                if pids:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    killed += 1
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        ended = time.monotonic()

    assert killed >= KILL_SECONDS - 2
    assert not unexpected, unexpected[:5]
    assert retried[0] > 0  # some requests really were cut off
    times = [started, *sorted(successes), ended]
    longest_gap = max(b - a for a, b in zip(times, times[1:], strict=False))
    print(f"\nworker kills: {killed}, answers 2xx: {len(answered)}, requests cut off and resent: "
          f"{retried[0]}, longest gap without a 2xx: {longest_gap:.2f} s")
    assert longest_gap < 3.0

    # Every 2xx answer's effect is in the database exactly once, and nothing else is.
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/{name}") as conn:
        topups = [row[0] for row in conn.execute("SELECT id FROM wallet_topups")]
        bills = [row[0] for row in conn.execute("SELECT id FROM checkouts")]
        keys = {row[0]: row[1] for row in conn.execute("SELECT key, status FROM idempotency_keys")}
    want_topups = sorted(i for kind, i in answered.values() if kind == "topup")
    want_bills = sorted(i for kind, i in answered.values() if kind == "checkout")
    opening = len(members)
    assert len(set(topups)) == len(topups) and len(set(bills)) == len(bills)
    assert set(want_topups) <= set(topups) and len(topups) == opening + len(want_topups)
    assert sorted(bills) == want_bills
    assert {k for k in keys if not k.startswith("opening-")} == set(answered)
    assert all(200 <= status < 300 for status in keys.values())
    flask_cli(env, "crm", "audit")  # raises if any ledger does not balance


def test_a_locked_table_is_a_503_well_before_the_worker_timeout(app, backend, desk, member_factory):
    """A migration (or a stuck session) holding a table lock: the request gives up after
    DB_LOCK_TIMEOUT_MS and answers 503 database_unavailable, then works once the lock is gone."""
    if backend != "postgresql":
        pytest.skip("lock_timeout is a PostgreSQL setting; SQLite waits on its busy timeout")
    import psycopg

    from tests.conftest import make_app
    member = member_factory()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    impatient = make_app(url, DB_LOCK_TIMEOUT_MS=300)
    token = desk.token
    body = {"amount": "10.00", "payment_method": "cash", "store_code": "BJ01"}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as holder:
        holder.execute("LOCK TABLE wallet_accounts IN ACCESS EXCLUSIVE MODE")
        r = impatient.test_client().post(f"/api/v1/members/{member['id']}/wallet/top-ups", json=body,
                                         headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "locked"})
        assert r.status_code == 503 and r.json["error"]["code"] == "database_unavailable"
        assert r.headers["Retry-After"]
    r = impatient.test_client().post(f"/api/v1/members/{member['id']}/wallet/top-ups", json=body,
                                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "locked"})
    assert r.status_code == 201
    with impatient.app_context():
        from crm.extensions import db
        db.engine.dispose()


@pytest.mark.postgres_only
def test_the_database_killed_and_restarted_under_two_schedulers_never_makes_two_leaders(cluster, served, tmp_path):
    """The real thing for the scheduler lease: its PostgreSQL server crashes (immediate stop)
    and comes back, twice, for longer than the lease each time. Both scheduler processes keep
    running, one leads again within seconds of the restart, and their logs never show two
    leaders at once (generation by generation, span by span)."""
    from tests.test_scheduler_faults import LEADING, Scheduler, _assert_never_two_leaders, _leaderships, _wait
    env, _name = served
    env = {**os.environ, "SECRET_KEY": SECRET_KEY, "FLASK_DEBUG": "0", "SCHEDULER_TICK_SECONDS": "2",
           "SCHEDULER_LEASE_SECONDS": "3", **env}

    def leads():
        return sum(len(LEADING.findall(s.text())) for s in schedulers)

    schedulers = [Scheduler(env, tmp_path / "a.log")]
    try:
        _wait(lambda: LEADING.search(schedulers[0].text()), 60, "the first scheduler leads")
        schedulers.append(Scheduler(env, tmp_path / "b.log"))
        _wait(lambda: "standby" in schedulers[1].text(), 60, "the second scheduler waits as a standby")
        for _ in range(2):
            before = leads()
            cluster.kill()
            time.sleep(5)  # longer than the lease: the leader can no longer prove it leads
            assert all(s.proc.poll() is None for s in schedulers), "a scheduler exited while the database was down"
            cluster.start()
            restarted = time.monotonic()
            _wait(lambda before=before: leads() > before, 30, "a scheduler leads again after the restart")
            print(f"a scheduler led again {time.monotonic() - restarted:.1f}s after the database restarted")
        assert all(s.proc.poll() is None for s in schedulers), "a scheduler exited"
        assert all("database unavailable" in s.text() for s in schedulers)
    finally:
        for s in schedulers:
            s.stop()
    spans = _leaderships(*schedulers)
    assert len(spans) >= 3, spans
    _assert_never_two_leaders(spans)
