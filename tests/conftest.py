"""Every test runs on SQLite and on PostgreSQL (each in a database of its own, dropped after).

PostgreSQL comes from TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test),
which is only used to create and drop a scratch database. With CI=true an unreachable
PostgreSQL fails the run; elsewhere its tests are skipped with a reason.

Time comes from one clock, crm.core.timeutil. CRM_TEST_CLOCK runs the whole suite at a
simulated time: "23:30" starts it at the next (or today's) 23:30 Asia/Shanghai, an ISO
datetime ("2026-12-31T23:59", naive = Asia/Shanghai) at that moment; either way the clock
keeps ticking from there, and the gunicorn and `flask` processes the tests start run on the
same shifted clock. CRM_TEST_BACKENDS=sqlite (comma-separated) runs only those backends'
variants of the backend-parametrised tests. A test that needs a time of day says so:
@pytest.mark.clock_at("10:00") starts it then (before its fixtures log in), and the `clock`
fixture moves, freezes or reads the time within it.
"""
import os
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
import redis
from sqlalchemy import text

from config import TestConfig, normalise_database_url
from crm import create_app
from crm.core import timeutil
from crm.core.actor import Actor
from crm.extensions import db
from crm.members import search_limit
from crm.selfservice import limit as self_service_limit

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PASSWORD = "correct-horse-1"


def _pg_admin_conninfo():
    return ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


def _pg_available():
    try:
        with psycopg.connect(_pg_admin_conninfo(), connect_timeout=3):
            return True, ""
    except Exception as exc:  # noqa: BLE001
        return False, str(exc).strip()


PG_OK, PG_WHY = _pg_available()
if IN_CI and not PG_OK:
    raise pytest.UsageError(f"CI=true but PostgreSQL is unreachable at {ADMIN_URL}: {PG_WHY}")


def create_scratch_pg_database():
    """A fresh PostgreSQL database; returns (sqlalchemy_url, drop_function)."""
    name = f"crm_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = _pg_admin_conninfo().rsplit("/", 1)[0]

    def drop():
        with psycopg.connect(_pg_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return normalise_database_url(f"{base}/{name}"), drop


def scratch_database(backend: str, directory):
    """(url, drop) of an empty database of this backend; skips the test if PostgreSQL is away."""
    if backend == "postgresql":
        if not PG_OK:
            pytest.skip(f"PostgreSQL unreachable ({PG_WHY})")
        return create_scratch_pg_database()
    return f"sqlite:///{directory / 'crm.sqlite3'}", lambda: None


def make_app(url, **overrides):
    return create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url, **overrides)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def app(request, tmp_path_factory):
    url, drop = scratch_database(request.param, tmp_path_factory.mktemp("db"))
    application = make_app(url)
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    drop()


@pytest.fixture(autouse=True)
def _clean(request):
    """Empty every table after each test so tests never see each other's rows; the emptying
    bypasses the session, so every worker cache is invalidated by hand (core/refcache.py)."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name != "cache_versions"]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))
            conn.execute(text("UPDATE cache_versions SET version = version + 1"))
        search_limit.reset(application)
        self_service_limit.reset(application)


@pytest.fixture
def backend(app):
    return "postgresql" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") else "sqlite"


@pytest.fixture
def client(app):
    return app.test_client()


SYSTEM = Actor.system("test")


class Api:
    """A test client that sends a staff member's Bearer token."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def _headers(self, key=None, headers=None):
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if key:
            h["Idempotency-Key"] = key
        h.update(headers or {})
        return h

    def get(self, path, **kw):
        return self.client.get(path, headers=self._headers(headers=kw.pop("headers", None)), **kw)

    def post(self, path, json=None, key=None, **kw):
        return self.client.post(path, json=json, headers=self._headers(key, kw.pop("headers", None)), **kw)

    def put(self, path, json=None, **kw):
        return self.client.put(path, json=json, headers=self._headers(headers=kw.pop("headers", None)), **kw)

    def patch(self, path, json=None, **kw):
        return self.client.patch(path, json=json, headers=self._headers(headers=kw.pop("headers", None)), **kw)

    def delete(self, path, **kw):
        return self.client.delete(path, headers=self._headers(headers=kw.pop("headers", None)), **kw)


def in_app(app, fn, *args, **kwargs):
    """Run fn inside an app context and commit (for setting up data through services)."""
    with app.app_context():
        result = fn(*args, **kwargs)
        db.session.commit()
        return result


@pytest.fixture
def stores(app):
    """The three stores, on a database as `flask db upgrade` leaves it (with the entry level)."""
    from crm.members import levels
    from crm.stores import service
    from crm.wallet import service as wallet
    def make():
        levels.entry_level()
        wallet.ensure_default_tiers()
        return {s.code: s.id for s in (
            service.create_store(SYSTEM, code="BJ01", name="朝阳店", kind="restaurant"),
            service.create_store(SYSTEM, code="BJ02", name="海淀店", kind="restaurant"),
            service.create_store(SYSTEM, code="HT01", name="王府井酒店", kind="hotel", rooms=200),
        )}
    return in_app(app, make)


@pytest.fixture
def staff(app, stores):
    """One account per role, each with home store BJ01: {role: username}."""
    from crm.auth import service
    def make():
        for role in ("admin", "manager", "front_desk", "cashier", "marketing"):
            service.create_staff(SYSTEM, username=role.replace("_", ""), password=PASSWORD, role=role,
                                 store_id=stores["BJ01"])
    in_app(app, make)
    return {role: role.replace("_", "") for role in ("admin", "manager", "front_desk", "cashier", "marketing")}


def login_on(flask_app, username, password=PASSWORD) -> "Api":
    """An Api logged in on this app instance (for tests with two workers)."""
    client = flask_app.test_client()
    r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert r.status_code == 200, r.json
    return Api(client, r.json["token"])


@pytest.fixture
def second_worker(app):
    """A second app instance on the same database: another gunicorn worker, with caches of
    its own (core/refcache.py)."""
    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"])
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def login_api(client, staff):
    """login_api(role) -> Api authenticated as that role."""
    cache = {}

    def login(role):
        if role not in cache:
            r = client.post("/api/v1/auth/token", json={"username": staff[role], "password": PASSWORD})
            assert r.status_code == 200, r.json
            cache[role] = Api(client, r.json["token"])
        return cache[role]
    return login


@pytest.fixture
def desk(login_api):
    return login_api("front_desk")


@pytest.fixture
def member_factory(desk):
    counter = iter(range(10_000))

    def make(**fields):
        n = next(counter)
        body = {"name": f"会员{n}", "mobile": f"139{n:08d}", "store_code": "BJ01", **fields}
        r = desk.post("/api/v1/members", json=body)
        assert r.status_code == 201, r.json
        return r.json
    return make


@pytest.fixture
def issue_card(desk):
    def issue(member_id, key=None, **body):
        payload = {"store_code": "BJ01", "fee_paid": "20.00", "payment_method": "cash", **body}
        return desk.post(f"/api/v1/members/{member_id}/cards", json=payload, key=key)
    return issue


@pytest.fixture
def account(app, staff, member_factory, issue_card, client):
    """A member's own page (issue 15): (member, path of their account page, an English-speaking phone)."""
    from tests.test_phone_card import phone_link
    m = member_factory(name="王芳", marketing_consent={"sms": True, "email": True})
    issue_card(m["id"])
    path = phone_link(app, staff, m["id"])
    client.get("/lang/en")
    return m, path, client


@pytest.fixture
def catalogue(login_api):
    """The seed programme's dishes: salmon sashimi 108 → 68 for members, tea 20."""
    manager = login_api("manager")
    for body in ({"sku": "SALMON", "name": "三文鱼刺身", "category": "sashimi", "list_price": "108.00",
                  "member_price": "68.00"},
                 {"sku": "TEA", "name": "铁观音", "category": "drinks", "list_price": "20.00"},
                 {"sku": "LOBSTER", "name": "龙虾", "category": "seafood", "list_price": "388.00",
                  "member_price": "328.00"}):
        r = manager.post("/api/v1/items", json=body)
        assert r.status_code == 201, r.json
    return manager


@pytest.fixture
def marketing(login_api):
    return login_api("marketing")


@pytest.fixture
def gateway(app, monkeypatch):
    """A loopback SMS gateway (tests/servers.Gateway) the app sends to, throttle at 1,000/s and
    a fresh throttle window, so no earlier test's sends count against this one's."""
    from crm.campaigns import dispatch
    from tests.servers import Gateway
    gw = Gateway()
    monkeypatch.setitem(app.config, "SMS_GATEWAY_URL", gw.url)
    monkeypatch.setitem(app.config, "SMS_GATEWAY_TOKEN", "gw-token")
    monkeypatch.setitem(app.config, "SMS_RATE_LIMIT", "1000/second")
    dispatch._limiter.storage.reset()
    yield gw
    gw.close()


@pytest.fixture
def cashier(login_api):
    return login_api("cashier")


@pytest.fixture
def checkout(cashier):
    """checkout(items=[("SALMON", 2)], **body) -> response of POST /api/v1/checkouts."""
    def close(items, key=None, **body):
        payload = {"store_code": "BJ01", "items": [{"sku": s, "qty": q} for s, q in items], **body}
        return cashier.post("/api/v1/checkouts", json=payload, key=key)
    return close


@pytest.fixture
def give_points(login_api):
    def give(member_id, points, reason="opening balance"):
        r = login_api("manager").post(f"/api/v1/members/{member_id}/points/adjustments",
                                      json={"points": points, "reason": reason})
        assert r.status_code == 201, r.json
    return give


def audit_problems(app):
    """What `crm audit` would report: every ledger that does not balance."""
    from crm.checkout import service as checkout
    from crm.coupons import service as coupons
    from crm.points import service as points
    from crm.wallet import service as wallet
    with app.app_context():
        return (points.audit_mismatches() + wallet.audit_mismatches() + coupons.audit_mismatches()
                + checkout.audit_mismatches())


@pytest.fixture
def store_today(app):
    """Today's date where the demo stores are (Asia/Shanghai), as promotions and validity see it."""
    from crm.core.timeutil import local_today
    with app.app_context():
        return local_today("Asia/Shanghai").isoformat()


# --- The clock -------------------------------------------------------------------------------

CLOCK_ZONE = ZoneInfo("Asia/Shanghai")
BACKENDS = ("sqlite", "postgresql")


def clock_start(spec: str, real_now: datetime) -> datetime:
    """Where CRM_TEST_CLOCK puts the start of the run: "HH:MM" is the next such time in
    Asia/Shanghai (today's if it is still ahead), anything else an ISO datetime."""
    if re.fullmatch(r"\d{1,2}:\d{2}", spec):
        hour, minute = map(int, spec.split(":"))
        local = real_now.astimezone(CLOCK_ZONE)
        start = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return start if start >= local else start + timedelta(days=1)
    at = datetime.fromisoformat(spec)
    return at if at.tzinfo else at.replace(tzinfo=CLOCK_ZONE)


def clock_env() -> dict:
    """What a child process needs in its environment to run on the tests' clock."""
    return {k: os.environ[k] for k in (timeutil.OFFSET_ENV, "PYTEST_VERSION") if k in os.environ}


def _install_session_clock(config):
    spec = os.environ.get("CRM_TEST_CLOCK", "").strip()
    if spec:
        real = timeutil.system_clock()
        try:
            offset = clock_start(spec, real) - real
        except ValueError as exc:
            raise pytest.UsageError(f"CRM_TEST_CLOCK={spec!r}: give HH:MM or an ISO datetime ({exc})") from None
        os.environ[timeutil.OFFSET_ENV] = repr(offset.total_seconds())  # for gunicorn and `flask`
        config._crm_clock = timeutil.offset_clock(offset)
    else:
        os.environ.pop(timeutil.OFFSET_ENV, None)  # a stale shell export must not move only the children
        config._crm_clock = timeutil.system_clock
    timeutil.set_clock(config._crm_clock)
    # servers.flask_cli hands its child only the variables it is given: add the clock's.
    from tests import servers
    run = servers.flask_cli
    if not getattr(run, "on_test_clock", False):
        def flask_cli(env, *args):
            return run({**clock_env(), **env}, *args)
        flask_cli.on_test_clock = True
        servers.flask_cli = flask_cli


def _compile_catalogues():
    """Plain `pytest` (without `make test`) still runs on the compiled catalogue: the .mo files are
    build output (git-ignored), so make any that is missing or older than its .po, as `make translations` would."""
    from pathlib import Path

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (Path(__file__).resolve().parent.parent / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as f:
                catalog = read_po(f)
            tmp = mo.with_suffix(f".mo.{os.getpid()}")
            with tmp.open("wb") as f:
                write_mo(f, catalog)
            tmp.replace(mo)  # atomic, so a concurrent run never reads half a file


def pytest_configure(config):
    _compile_catalogues()
    config.addinivalue_line("markers", "clock_at(when): start the test's clock (ticking) at this time, \"HH:MM\" "
                                       "(today in Asia/Shanghai) or an aware datetime, before its fixtures run")
    _install_session_clock(config)


def pytest_report_header(config):
    spec = os.environ.get("CRM_TEST_CLOCK", "").strip()
    if not spec:
        return "clock: the system clock (set CRM_TEST_CLOCK=HH:MM to simulate another time)"
    start = timeutil.utcnow().astimezone(CLOCK_ZONE)
    return f"clock: CRM_TEST_CLOCK={spec}: the run starts at {start:%Y-%m-%d %H:%M:%S} Asia/Shanghai and ticks on"


def pytest_collection_modifyitems(config, items):
    wanted = {b.strip() for b in os.environ.get("CRM_TEST_BACKENDS", "").split(",") if b.strip()}
    if not wanted:
        return
    if wanted - set(BACKENDS):
        raise pytest.UsageError(f"CRM_TEST_BACKENDS: choose from {', '.join(BACKENDS)}")
    unwanted = set(BACKENDS) - wanted

    def other_backend(item):
        params = getattr(getattr(item, "callspec", None), "params", {})
        return any(isinstance(v, str) and v in unwanted for v in params.values())
    dropped = [item for item in items if other_backend(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not other_backend(item)]


@pytest.fixture(autouse=True)
def _session_clock(request):
    """A test starts on the session's clock, or at its @pytest.mark.clock_at time: set here,
    before the test's other fixtures run, so its staff log in (and tokens start) at that time
    too. Whatever the test does to the clock is undone after it."""
    env_before = os.environ.get(timeutil.OFFSET_ENV)
    marker = request.node.get_closest_marker("clock_at")
    if marker is not None:
        TestClock().set(*marker.args)
    yield
    timeutil.set_clock(request.config._crm_clock)
    if env_before is None:
        os.environ.pop(timeutil.OFFSET_ENV, None)
    else:
        os.environ[timeutil.OFFSET_ENV] = env_before


class TestClock:
    """A test's hand on the one clock. Times are aware datetimes, or "HH:MM" for that time
    today (the clock's date in Asia/Shanghai). `set` keeps the clock ticking from there
    (gunicorn/`flask` started afterwards follow it); `freeze` stops it."""

    __test__ = False

    def __init__(self):
        self.zone = CLOCK_ZONE
        self._frozen = False

    def now(self) -> datetime:
        return timeutil.utcnow()

    def local_now(self) -> datetime:
        return self.now().astimezone(self.zone)

    def at(self, when) -> datetime:
        if isinstance(when, str):
            hour, minute = map(int, when.split(":"))
            return self.local_now().replace(hour=hour, minute=minute, second=0, microsecond=0)
        if when.tzinfo is None:
            raise ValueError("give the clock an aware datetime (or 'HH:MM' for today in Asia/Shanghai)")
        return when

    def set(self, when) -> datetime:
        at = self.at(when)
        clock = timeutil.ticking_from(at)
        timeutil.set_clock(clock)
        os.environ[timeutil.OFFSET_ENV] = repr(clock.offset.total_seconds())
        self._frozen = False
        return at

    def freeze(self, when=None) -> datetime:
        at = self.now() if when is None else self.at(when)
        timeutil.set_clock(lambda: at)
        self._frozen = True
        return at

    def advance(self, delta: timedelta | None = None, **kwargs) -> datetime:
        to = self.now() + (delta or timedelta(**kwargs))
        return self.freeze(to) if self._frozen else self.set(to)


@pytest.fixture
def clock():
    """Set the time within this test: clock.set("10:00"), clock.freeze(dt), clock.advance(minutes=5).
    Staff fixtures log in before the test body runs and API tokens last API_TOKEN_HOURS: to
    start a test at another time of day use @pytest.mark.clock_at("HH:MM") instead."""
    return TestClock()


def redis_ok() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own on the test Redis (required in CI), deleted afterwards."""
    if not redis_ok():
        if IN_CI:
            pytest.fail(f"CI=true but Redis is unreachable at {REDIS_URL}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    prefix = f"crm-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
