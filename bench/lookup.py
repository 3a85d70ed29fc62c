"""Lookup latency at scale: find a member by mobile, and scan a member card.

Loads N members (default 1,000,000), each with an active card, into a scratch
database, then times requests through the whole Flask stack (Bearer-token auth,
routing, argument parsing, queries, serialisation) with the app's test client:

  lookup  GET  /api/v1/members?q=<11-digit mobile>
  scan    POST /api/v1/cards/scan {"code": "<signed QR payload>"}

Goal: p99 < 10 ms for both, on SQLite and on PostgreSQL.

Run from the repo root:
    make bench-lookup                         # = .venv/bin/python bench/lookup.py
    .venv/bin/python bench/lookup.py --members 20000 --db sqlite
PostgreSQL: a scratch database `crm_bench_<random>` is created through
TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) and dropped
at the end; SQLite uses a temporary file, deleted at the end.
"""
import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from config import normalise_database_url  # noqa: E402
from crm import create_app  # noqa: E402
from crm.auth import service as auth  # noqa: E402
from crm.cards.codes import luhn_check_digit, qr_payload  # noqa: E402
from crm.core.actor import Actor  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.members.levels import entry_level  # noqa: E402
from crm.members.models import REFERRAL_ALPHABET, REFERRAL_CODE_LENGTH  # noqa: E402
from crm.stores import service as stores  # noqa: E402

GOAL_MS = 10.0
WARMUP = 200
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test").replace(
    "postgresql+psycopg://", "postgresql://")
USERNAME, PASSWORD = "benchdesk", "bench-password-1"
START = datetime(2023, 1, 1, tzinfo=timezone.utc)

MEMBER_COLS = ("id", "name", "mobile", "mobile_last4", "level_id", "store_id", "sales_rep",
               "sms_consent", "email_consent", "notes", "created_at", "updated_at", "referral_code")
CARD_COLS = ("id", "card_no", "member_id", "status", "issued_store_id", "issued_at", "status_changed_at")


def mobile(i: int) -> str:
    """A unique, scattered mainland mobile for member i (a multiplicative permutation mod 10^9)."""
    return f"13{(i * 982451653 + 12345) % 10**9:09d}"


def card_no(i: int) -> str:
    body = f"86{i:013d}"
    return body + luhn_check_digit(body)


def referral_code(i: int) -> str:
    """Member i's referral code, unique per id (every member has one; bulk loads skip the
    service that draws them at random)."""
    code = ""
    for _ in range(REFERRAL_CODE_LENGTH):
        i, digit = divmod(i, len(REFERRAL_ALPHABET))
        code += REFERRAL_ALPHABET[digit]
    return code


def member_rows(n, level_id, store_id, stamp):
    for i in range(1, n + 1):
        m, t = mobile(i), stamp(START + timedelta(seconds=30 * i))
        yield (i, f"会员{i}", m, m[-4:], level_id, store_id, "", False, False, "", t, t, referral_code(i))


def card_rows(n, store_id, stamp):
    for i in range(1, n + 1):
        t = stamp(START + timedelta(seconds=30 * i + 5))
        yield (i, card_no(i), i, "active", store_id, t, t)


def bulk_load(backend, tables):
    """Insert many rows fast: one executemany transaction on SQLite (then ANALYZE), COPY on
    PostgreSQL (then VACUUM ANALYZE). `tables`: [(table, columns, rows(stamp))], where stamp
    writes a datetime the way the backend's driver expects it."""
    raw = db.engine.raw_connection()
    try:
        if backend == "sqlite":
            # SQLAlchemy's SQLite DateTime storage format (UTC, no offset)
            stamp = lambda dt: dt.strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731
            cur = raw.cursor()  # the app's engine runs pysqlite in autocommit mode: BEGIN by hand
            cur.execute("BEGIN IMMEDIATE")
            for table, cols, rows in tables:
                cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                rows(stamp))
            cur.execute("COMMIT")
            cur.execute("ANALYZE")
            return
        conn = raw.driver_connection
        with conn.cursor() as cur:
            for table, cols, rows in tables:
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows(lambda dt: dt):
                        copy.write_row(row)
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT coalesce(max(id), 1) FROM {table}))")
        conn.commit()
        conn.autocommit = True  # VACUUM cannot run in a transaction; it also sets hint bits
        conn.execute("VACUUM (ANALYZE)")
        conn.autocommit = False
    finally:
        raw.close()


def setup(app, backend, n):
    """Schema, one store, the entry level, a front-desk login; then the bulk rows. Returns load seconds."""
    with app.app_context():
        db.create_all()
        system = Actor.system("bench")
        store = stores.create_store(system, code="BENCH01", name="Bench store", kind="restaurant")
        level_id = entry_level().id
        auth.create_staff(system, username=USERNAME, password=PASSWORD, role="front_desk", store_id=store.id)
        db.session.commit()
        store_id = store.id
        db.session.remove()
        t0 = time.perf_counter()
        bulk_load(backend, [("members", MEMBER_COLS, lambda stamp: member_rows(n, level_id, store_id, stamp)),
                            ("cards", CARD_COLS, lambda stamp: card_rows(n, store_id, stamp))])
        seconds = time.perf_counter() - t0
        count = db.session.scalar(text("SELECT count(*) FROM cards"))
        assert count == n, f"loaded {count} cards, expected {n}"
        db.session.remove()
        return seconds


def timed(fn, check, requests):
    """Latencies in ms of fn(arg) over requests; each response is checked (untimed) afterwards."""
    out = []
    for arg in requests:
        t0 = time.perf_counter()
        resp = fn(arg)
        out.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, (arg, resp.status_code, resp.get_data(as_text=True)[:300])
        check(arg, resp.get_json())
    return out


def measure(app, n, lookups, rng):
    client = app.test_client()
    resp = client.post("/api/v1/auth/token", json={"username": USERNAME, "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    headers = {"Authorization": f"Bearer {resp.get_json()['token']}"}

    def lookup(i):
        return client.get("/api/v1/members", query_string={"q": mobile(i)}, headers=headers)

    def lookup_ok(i, body):
        assert body["total"] == 1 and body["items"][0]["id"] == i, (i, body)

    def scan(i):
        return client.post("/api/v1/cards/scan", json={"code": payloads[i]}, headers=headers)

    def scan_ok(i, body):
        assert body["id"] == i and body["card_no"] == card_no(i), (i, body)

    mobile_ids = [rng.randint(1, n) for _ in range(WARMUP + lookups)]
    card_ids = [rng.randint(1, n) for _ in range(WARMUP + lookups)]
    with app.app_context():
        payloads = {i: qr_payload(card_no(i)) for i in card_ids}
    results = {}
    for name, fn, check, ids in (("lookup by mobile", lookup, lookup_ok, mobile_ids),
                                 ("card scan", scan, scan_ok, card_ids)):
        timed(fn, check, ids[:WARMUP])
        results[name] = timed(fn, check, ids[WARMUP:])
    return results


def scratch_database(backend):
    """(SQLAlchemy URL, drop function) of an empty scratch database of this backend."""
    if backend == "postgresql":
        name = f"crm_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop():
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return normalise_database_url(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"), drop
    tmpdir = tempfile.TemporaryDirectory(prefix="crm_bench_")
    return f"sqlite:///{tmpdir.name}/crm.sqlite3", tmpdir.cleanup


def run(backend, n, lookups, seed):
    url, drop = scratch_database(backend)
    app = None
    try:
        # One desk account times thousands of look-ups: lift its search budget (the check still runs).
        app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=url, CRM_ENV="development",
                         MEMBER_SEARCH_LIMIT="1000000 per minute")
        print(f"[{backend}] loading {n:,} members and cards ...", flush=True)
        load_s = setup(app, backend, n)
        print(f"[{backend}] loaded in {load_s:.1f} s; timing {lookups:,} requests each ...", flush=True)
        return load_s, measure(app, n, lookups, random.Random(seed))
    finally:
        if app is not None:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        drop()


def summary(ms):
    p = statistics.quantiles(ms, n=100, method="inclusive")
    return p[49], p[98], statistics.fmean(ms)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000, help="members (and cards) to load")
    parser.add_argument("--lookups", type=int, default=2000, help="timed requests per operation")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.members < 1 or args.lookups < 2:
        parser.error("--members must be >= 1 and --lookups >= 2")

    rows, loads = [], []
    for backend in (("sqlite", "postgresql") if args.db == "both" else (args.db,)):
        load_s, results = run(backend, args.members, args.lookups, args.seed)
        loads.append((backend, load_s))
        rows += [(backend, op, len(ms), *summary(ms)) for op, ms in results.items()]

    print(f"\nLookup latency, {args.members:,} members, Flask test client (goal: p99 < {GOAL_MS:g} ms)\n")
    head = f"{'database':<11} {'operation':<17} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}  goal met"
    print(head)
    print("-" * len(head))
    for backend, op, count, p50, p99, mean in rows:
        met = "yes" if p99 < GOAL_MS else "NO"
        print(f"{backend:<11} {op:<17} {count:>6} {p50:>8.2f} {p99:>8.2f} {mean:>8.2f}  {met}")
    print()
    for backend, load_s in loads:
        print(f"load time {backend}: {load_s:.1f} s ({args.members:,} members + {args.members:,} cards, "
              f"incl. {'ANALYZE' if backend == 'sqlite' else 'VACUUM ANALYZE'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
