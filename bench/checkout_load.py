"""Checkout throughput, measured beside its floor: a real gunicorn (several workers) on
PostgreSQL against a bare Flask app doing only the writes a checkout needs, and pgbench.

Builds a scratch PostgreSQL database with the app's migrations, one restaurant (BJ01),
the seed dishes (SALMON, TEA), N members (default 10,000), each with an active card,
1,000 points, 1,000.00 of stored value (a cash top-up) and 3 coupons of a cash coupon type
BENCH10 (10.00 off a bill of 100.00 or more, unlimited stock), and a cashier. Then, one
after the other so they never share the CPU:

  1. pgbench (TPC-B, `-i -s 10`, then `-c <clients> -j 2 -T <seconds> -n`) in a second
     scratch database: what this PostgreSQL on this machine does with trivial transactions;
  2. <rounds> rounds (default 3) of, back to back:
       floor – the same clients against bench/floor_app.py under the same gunicorn: Flask
               and one raw psycopg transaction of the twelve statements a member checkout
               needs at minimum (no ORM, validation or business rules), in a third database;
       real  – <clients> concurrent tills (a thread each, plain http.client, new
               Idempotency-Key per request) against `gunicorn --workers <workers> wsgi:app`,
               closing bills with POST /api/v1/checkouts:
               20 % non-members; 80 % members (half by scanned QR card code, half by member
               id), of which, each drawn independently, 30 % redeem 5 points, 30 % pay 50.00
               from the wallet (below the PIN threshold) and 20 % use one coupon (each coupon
               code handed out once, from a shared queue, to its owner's checkout);
     closed loop, 3 s warm-up, then <seconds> measured; ratio = real / floor of the round;
  3. open loop: the same mix offered at a fixed <rate>/s (default 100) for <seconds>, each
     request's latency measured from its *scheduled* start, so queueing is not hidden;
  4. statements per checkout, by kind of bill: the same mix sent in-process (Flask test
     client on the same database) with a counter on the engine;
  5. `flask --app wsgi crm audit` (points, wallet and coupon stock ledgers must balance).
Only 201s count as checkouts; anything else is reported with its status and error code.

Goals (printed, not asserted): ratio real/floor >= 0.50 (median of the rounds) and
p99 < 50 ms at the offered 100/s.

Run from the repo root:
    make bench-checkout                       # = .venv/bin/python bench/checkout_load.py
    .venv/bin/python bench/checkout_load.py --seconds 10 --rounds 1 --members 2000
PostgreSQL: scratch databases `crm_bench_<random>` (app, floor, pgbench) are created
through TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) and dropped
WITH (FORCE) at the end, also on error or Ctrl-C.
"""
import argparse
import contextlib
import http.client
import itertools
import json
import os
import queue
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from lookup import referral_code  # noqa: E402
from sqlalchemy import text  # noqa: E402

from config import normalise_database_url  # noqa: E402
from crm import create_app  # noqa: E402
from crm.cards.codes import luhn_check_digit, qr_payload  # noqa: E402
from crm.catalog import service as catalog  # noqa: E402
from crm.core.actor import Actor  # noqa: E402
from crm.core.timeutil import local_today, utcnow  # noqa: E402
from crm.coupons import service as coupons  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.members.levels import entry_level  # noqa: E402
from crm.points import service as points  # noqa: E402
from crm.stores import service as stores  # noqa: E402
from crm.wallet import service as wallet  # noqa: E402

GOAL_RATIO = 0.50  # real checkouts/s over the floor's, same run
GOAL_P99_MS = 50.0  # at the offered rate
OFFERED_RATE = 100.0  # checkouts/s, open loop
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test").replace(
    "postgresql+psycopg://", "postgresql://")
USERNAME, PASSWORD = "cashier", "bench-pass-1"
SECRET_KEY, CARD_SIGNING_KEY = "bench-only-7Hq2Lx9VbN4mRt6KwZp3Jc8Ys5D", "bench-only-card-Xr4Tn8Qw2Lp6Vz9Mb3Hk7S"
STORE = "BJ01"
BILL = [{"sku": "SALMON", "qty": 2}, {"sku": "TEA", "qty": 1}]
OPENING_POINTS, REDEEM = 1000, 5
OPENING_WALLET, WALLET_PAY = 100_000, "50.00"  # fen (1,000.00: no bonus tier); wire amount, < PIN threshold
COUPON_TYPE = {"code": "BENCH10", "name": "满100减10", "kind": "cash", "face_value": 1000, "min_spend": 10000,
               "valid_days": 365, "active": True}
COUPONS_PER_MEMBER = 3
NON_MEMBER_SHARE, CARD_SHARE, REDEEM_SHARE, WALLET_SHARE, COUPON_SHARE = 0.20, 0.50, 0.30, 0.30, 0.20
START = datetime(2023, 1, 1, tzinfo=timezone.utc)

MEMBER_COLS = ("id", "name", "mobile", "mobile_last4", "level_id", "store_id", "sales_rep",
               "sms_consent", "email_consent", "notes", "created_at", "updated_at", "referral_code")
CARD_COLS = ("id", "card_no", "member_id", "status", "issued_store_id", "issued_at", "status_changed_at")
ACCOUNT_COLS = ("id", "member_id", "balance", "updated_at")
ENTRY_COLS = ("id", "account_id", "kind", "points", "reason", "details", "created_at")
LOT_COLS = ("id", "account_id", "entry_id", "points", "remaining", "earned_at", "expires_at")
TOPUP_COLS = ("id", "member_id", "store_id", "amount", "bonus", "payment_method", "created_at")
WALLET_ACCOUNT_COLS = ("id", "member_id", "kind", "balance", "updated_at")
WALLET_ENTRY_COLS = ("id", "account_id", "kind", "amount", "topup_id", "store_id", "reason", "created_at")
COUPON_COLS = ("id", "code", "definition_id", "member_id", "source", "source_ref", "status", "valid_from",
               "valid_until", "issued_at")


def venv_bin(name: str) -> str:
    """A console script of the virtualenv running this file (else the repo's .venv)."""
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / "bin"):
        if (folder / name).exists():
            return str(folder / name)
    raise SystemExit(f"{name} not found next to {sys.executable} or in {ROOT / '.venv' / 'bin'}")


def pgbench_bin() -> str:
    found = shutil.which("pgbench") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"),
                                                        reverse=True)), None)
    if not found:
        raise SystemExit("pgbench not found on PATH or in /usr/lib/postgresql/*/bin")
    return str(found)


@contextlib.contextmanager
def scratch_database(suffix=""):
    """A fresh PostgreSQL database (plain postgresql:// URL), dropped WITH (FORCE) on exit."""
    name = f"crm_bench_{uuid.uuid4().hex[:10]}{suffix}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flask_cli(env, *args, check=True):
    """`flask --app wsgi ...`; returns the CompletedProcess (raises with its output if check fails)."""
    proc = subprocess.run([venv_bin("flask"), "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


# --- data -------------------------------------------------------------------------------

def mobile(i: int) -> str:
    """A unique, scattered mainland mobile for member i (a multiplicative permutation mod 10^9)."""
    return f"13{(i * 982451653 + 12345) % 10**9:09d}"


def card_no(i: int) -> str:
    body = f"86{i:013d}"
    return body + luhn_check_digit(body)


def coupon_code(j: int) -> str:
    return f"BENCH{j:09d}"


def copy_rows(cur, table, cols, rows, n):
    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n})")


def seed(url: str, n: int, rng_seed: int) -> tuple[dict, list]:
    """Store, dishes and the coupon type (through the services), then N members with a card,
    OPENING_POINTS, an OPENING_WALLET cash top-up and COUPONS_PER_MEMBER coupons each (bulk COPY,
    ledger rows consistent: points balance = entries = lots; wallet balance = Σ entries, one
    principal and one (empty) bonus account per member, as `wallet.top_up` leaves them).
    Returns ({member id: QR payload}, [(coupon code, member id)] in shuffled order)."""
    app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=normalise_database_url(url),
                     SECRET_KEY=SECRET_KEY, CARD_SIGNING_KEY=CARD_SIGNING_KEY)
    try:
        with app.app_context():
            system = Actor.system("bench")
            store = stores.create_store(system, code=STORE, name="朝阳店", kind="restaurant")
            for item in ({"sku": "SALMON", "name": "三文鱼刺身", "category": "sashimi", "list_price": 10800,
                          "member_price": 6800},
                         {"sku": "TEA", "name": "铁观音", "category": "drinks", "list_price": 2000}):
                catalog.create_item(system, item)
            definition_id = coupons.create_definition(system, dict(COUPON_TYPE)).id
            level_id, store_id, tz = entry_level().id, store.id, store.timezone
            db.session.commit()
            now = utcnow()
            expires = points.expiry_for(now, tz)
            today = local_today(tz)
            n_coupons = n * COUPONS_PER_MEMBER
            raw = db.engine.raw_connection()
            try:
                conn = raw.driver_connection
                with conn.cursor() as cur:
                    ids = range(1, n + 1)
                    copy_rows(cur, "members", MEMBER_COLS, (
                        (i, f"会员{i}", mobile(i), mobile(i)[-4:], level_id, store_id, "", False, False, "",
                         START + timedelta(seconds=30 * i), START + timedelta(seconds=30 * i), referral_code(i))
                        for i in ids), n)
                    copy_rows(cur, "cards", CARD_COLS, (
                        (i, card_no(i), i, "active", store_id, START + timedelta(seconds=30 * i + 5),
                         START + timedelta(seconds=30 * i + 5)) for i in ids), n)
                    copy_rows(cur, "points_accounts", ACCOUNT_COLS, ((i, i, OPENING_POINTS, now) for i in ids), n)
                    copy_rows(cur, "points_entries", ENTRY_COLS, (
                        (i, i, "adjust", OPENING_POINTS, "bench opening balance", "{}", now) for i in ids), n)
                    copy_rows(cur, "points_lots", LOT_COLS, (
                        (i, i, i, OPENING_POINTS, OPENING_POINTS, now, expires) for i in ids), n)
                    # wallet: top-up i for member i; account 2i-1 principal, 2i bonus (0, no entries)
                    copy_rows(cur, "wallet_topups", TOPUP_COLS, (
                        (i, i, store_id, OPENING_WALLET, 0, "cash", now) for i in ids), n)
                    copy_rows(cur, "wallet_accounts", WALLET_ACCOUNT_COLS, (
                        row for i in ids for row in ((2 * i - 1, i, "principal", OPENING_WALLET, now),
                                                     (2 * i, i, "bonus", 0, now))), 2 * n)
                    copy_rows(cur, "wallet_entries", WALLET_ENTRY_COLS, (
                        (i, 2 * i - 1, "topup", OPENING_WALLET, i, store_id, "", now) for i in ids), n)
                    copy_rows(cur, "coupons", COUPON_COLS, (
                        (j, coupon_code(j), definition_id, (j - 1) % n + 1, "manual", "", "issued", today,
                         today + timedelta(days=365), now) for j in range(1, n_coupons + 1)), n_coupons)
                conn.commit()
                conn.autocommit = True  # VACUUM cannot run in a transaction
                conn.execute("VACUUM (ANALYZE)")
                conn.autocommit = False
            finally:
                raw.close()
            members = db.session.scalar(text("SELECT count(*) FROM members"))
            assert members == n, f"loaded {members} members, expected {n}"
            problems = points.audit_mismatches()
            assert not problems, f"seeded points ledger does not balance: {problems[:3]}"
            problems = wallet.audit_mismatches() + coupons.audit_mismatches()
            assert not problems, f"seeded wallet / coupon ledgers do not balance: {problems[:3]}"
            assert wallet.liability() == {"principal": n * OPENING_WALLET, "bonus": 0}, wallet.liability()
            issued = [(coupon_code(j), (j - 1) % n + 1) for j in range(1, n_coupons + 1)]
            random.Random(rng_seed).shuffle(issued)
            return {i: qr_payload(card_no(i)) for i in range(1, n + 1)}, issued
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- pgbench ----------------------------------------------------------------------------

def run_pgbench(url: str, clients: int, seconds: int, scale: int) -> float:
    parts = urlsplit(url)
    env = {**os.environ}
    if parts.password:
        env["PGPASSWORD"] = parts.password
    base = [pgbench_bin(), "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
            "-U", parts.username or "postgres"]
    dbname = parts.path.lstrip("/")
    subprocess.run([*base, "-i", "-q", "-s", str(scale), dbname], env=env, check=True, capture_output=True,
                   timeout=600)
    out = subprocess.run([*base, "-c", str(clients), "-j", str(min(2, clients)), "-T", str(seconds), "-n",
                          dbname], env=env, check=True, capture_output=True, text=True, timeout=seconds + 120)
    match = re.search(r"^tps = ([0-9.]+)", out.stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no tps line in pgbench output:\n{out.stdout}{out.stderr}")
    return float(match.group(1))


# --- gunicorn ---------------------------------------------------------------------------

def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection: (status, parsed JSON or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            return resp.status, None
    finally:
        conn.close()


@contextlib.contextmanager
def gunicorn(env, workers, log, app="wsgi:app", cwd=ROOT):
    """Yield the port of `gunicorn --workers N <app>`, once /healthz answers 200."""
    port = free_port()
    proc = subprocess.Popen([venv_bin("gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
                             "--log-level", "warning", app], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(port, "GET", "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start (exit {proc.poll()}); log:\n{tail(log)}")
            time.sleep(0.2)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def tail(log, lines=30) -> str:
    log.flush()
    return "\n".join(Path(log.name).read_text(errors="replace").splitlines()[-lines:])


# --- load -------------------------------------------------------------------------------

def draw_body(rng, payloads, take_coupon):
    """One bill of the mix: (kind, body). take_coupon() gives a (code, member id) or None."""
    body = {"store_code": STORE, "items": BILL, "redeem_points": 0}
    if rng.random() < NON_MEMBER_SHARE:
        return "non-member", body
    coupon = take_coupon() if rng.random() < COUPON_SHARE else None
    i = coupon[1] if coupon else rng.randint(1, len(payloads))
    if rng.random() < CARD_SHARE:
        body["card_code"] = payloads[i]
    else:
        body["member_id"] = i
    kind = "member"
    if rng.random() < REDEEM_SHARE:
        body["redeem_points"], kind = REDEEM, kind + "+redeem"
    if rng.random() < WALLET_SHARE:
        body["wallet_amount"], kind = WALLET_PAY, kind + "+wallet"
    if coupon:
        body["coupon_codes"], kind = [coupon[0]], kind + "+coupon"
    return kind, body


def run_load(port, tokens, payloads, coupon_codes, seconds, warmup, max_requests, seed):
    """Each client closes bills back to back until the time is up (or the request cap is reached).

    Returns (measured records, window seconds, 201s overall incl. warm-up as a Counter with
    "all", "wallet" and "coupon", coupon draws that found the queue empty); a record is
    (latency ms, status, error code, kind) for each request started in the measured window."""
    unused = queue.SimpleQueue()  # (code, member id); each code goes to exactly one request
    for item in coupon_codes:
        unused.put(item)
    ran_out = itertools.count()
    issued = itertools.count()
    t_start = time.perf_counter()
    t_measure, t_end = t_start + warmup, t_start + warmup + seconds
    per_client = [[] for _ in tokens]
    finished = [0.0] * len(tokens)
    created = [Counter() for _ in tokens]

    def take_coupon():
        try:
            return unused.get_nowait()
        except queue.Empty:
            next(ran_out)
            return None

    def client(idx):
        rng = random.Random(seed * 1000 + idx)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out = per_client[idx]
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end or next(issued) >= max_requests:
                break
            kind, body = draw_body(rng, payloads, take_coupon)
            status, code, conn = post_checkout(conn, port, tokens[idx], body)
            t1 = time.perf_counter()
            if status == 201:
                created[idx].update(["all"] + [f for f in ("wallet", "coupon") if f"+{f}" in kind])
            if t0 >= t_measure:
                out.append(((t1 - t0) * 1000, status, code, kind))
                finished[idx] = max(finished[idx], t1)
        conn.close()

    run_threads(client, len(tokens))
    records = [r for rs in per_client for r in rs]
    window = max(max(finished) - t_measure, 1e-9) if records else 0.0
    return records, window, sum(created, Counter()), next(ran_out)


def run_threads(target, n):
    """target(0) … target(n - 1), each in a thread of its own; returns when all are done."""
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def percentile(values, p):
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# --- open loop ---------------------------------------------------------------------------

def run_open_loop(port, tokens, payloads, coupon_codes, rate, seconds, seed):
    """Requests offered at a fixed rate: request i is due at start + i/rate, whoever is free
    sends it (a pool of len(tokens) connections), and its latency counts from when it was due.
    Returns [(latency ms, status, error code, kind)]."""
    bodies = request_bodies(payloads, coupon_codes, int(rate * seconds), seed)
    slots = itertools.count()
    t0 = time.perf_counter() + 0.5
    out = []

    def sender(idx):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            i = next(slots)
            if i >= len(bodies):
                break
            due = t0 + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            kind, body = bodies[i]
            status, code, conn = post_checkout(conn, port, tokens[idx], body)
            out.append(((time.perf_counter() - due) * 1000, status, code, kind))
        conn.close()

    run_threads(sender, len(tokens))
    return out


def request_bodies(payloads, coupon_codes, n, seed):
    """n (kind, body) pairs of the mix, drawn up front (each coupon code used once)."""
    rng = random.Random(seed)
    unused = list(coupon_codes)
    out = []
    for _ in range(n):
        out.append(draw_body(rng, payloads, lambda: unused.pop() if unused else None))
    return out


def post_checkout(conn, port, token, body):
    """POST one checkout on `conn` (reopened when the server closed it): (status, error code, conn)."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"bench-{uuid.uuid4().hex}",
               "Content-Type": "application/json"}
    code = None
    try:
        conn.request("POST", "/api/v1/checkouts", body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        status = resp.status
        if resp.will_close:
            conn.close()
        if status != 201:
            try:
                code = json.loads(data)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = data[:80].decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        status, code = 0, type(exc).__name__
    return status, code, conn


# --- statements per checkout ----------------------------------------------------------------

def count_statements(url, payloads, coupon_codes, n, seed):
    """Send n checkouts of the mix in-process and count the SQL statements each one sends:
    {kind: (checkouts, mean statements, max statements)}."""
    from sqlalchemy import event
    app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=normalise_database_url(url),
                     SECRET_KEY=SECRET_KEY, CARD_SIGNING_KEY=CARD_SIGNING_KEY)
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": USERNAME, "password": PASSWORD}).json["token"]
    seen = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: seen.append(1)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    per_kind = {}
    try:
        for i, (kind, body) in enumerate(request_bodies(payloads, coupon_codes, n, seed)):
            seen.clear()
            r = client.post("/api/v1/checkouts", json=body, headers={
                "Authorization": f"Bearer {token}", "Idempotency-Key": f"count-{i}"})
            if r.status_code == 201 and i >= 20:  # after the worker's caches are warm
                per_kind.setdefault(kind.split("+coupon")[0] + ("+coupon" if "+coupon" in kind else ""),
                                    []).append(len(seen))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
        with app.app_context():
            db.engine.dispose()
    return {kind: (len(v), statistics.fmean(v), max(v)) for kind, v in sorted(per_kind.items())}


# --- main -------------------------------------------------------------------------------

def closed_loop(port, tokens, payloads, coupon_codes, args):
    records, window, created, ran_out = run_load(port, tokens, payloads, coupon_codes, args.seconds,
                                                 args.warmup, args.max_requests, args.seed)
    ok = [ms for ms, status, _code, _kind in records if status == 201]
    return {"rate": len(ok) / window if window else 0.0, "p50": percentile(ok, 50), "p99": percentile(ok, 99),
            "errors": Counter((status, code) for _ms, status, code, _kind in records if status != 201),
            "kinds": Counter(kind for _ms, status, _code, kind in records if status == 201),
            "created": created, "ran_out": ran_out}


def measure_floor(url, args):
    env = {**os.environ, "FLOOR_MODE": "txn", "FLOOR_DATABASE_URL": url, "FLOOR_MEMBERS": str(args.members)}
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(tempfile.NamedTemporaryFile("w+", prefix="crm_floor_", suffix=".log"))
        port, _proc = stack.enter_context(gunicorn(env, args.workers, log, app="floor_app:app",
                                                   cwd=ROOT / "bench"))
        members = {i: f"member-{i}" for i in range(1, args.members + 1)}
        return closed_loop(port, ["bench"] * args.clients, members, [], args)


def set_up(stack, suffix, members, rng_seed):
    """Two scratch databases for the run (dropped when `stack` closes): the app's, migrated and
    seeded with `members` and a cashier, and the floor's (floor_app.SCHEMA). Returns (app url,
    floor url, environment for the app's processes, QR payloads, coupon codes)."""
    url = stack.enter_context(scratch_database(suffix))
    floor_url = stack.enter_context(scratch_database(f"{suffix}_floor"))
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "CARD_SIGNING_KEY": CARD_SIGNING_KEY}
    print(f"[setup] {url.rsplit('/', 1)[1]}: migrating, loading {members:,} members ...", flush=True)
    t0 = time.perf_counter()
    flask_cli(env, "db", "upgrade")
    payloads, coupon_codes = seed(url, members, rng_seed)
    flask_cli(env, "crm", "create-staff", USERNAME, "--role", "cashier", "--password", PASSWORD, "--store", STORE)
    with psycopg.connect(floor_url, autocommit=True) as conn:
        from floor_app import SCHEMA
        conn.execute(SCHEMA.format(members=members))
        conn.execute("VACUUM ANALYZE")
    print(f"[setup] done in {time.perf_counter() - t0:.1f} s", flush=True)
    return url, floor_url, env, payloads, coupon_codes


def spread(values):
    return f"min {min(values):,.1f}  median {statistics.median(values):,.1f}  max {max(values):,.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds of each run (and pgbench)")
    parser.add_argument("--rounds", type=int, default=3, help="floor + real rounds")
    parser.add_argument("--clients", type=int, default=16, help="concurrent tills (and pgbench clients)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--members", type=int, default=10_000, help="members loaded (each with a card)")
    parser.add_argument("--rate", type=float, default=OFFERED_RATE, help="offered checkouts/s of the open loop")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each measurement")
    parser.add_argument("--max-requests", type=int, default=500_000, help="stop a run after this many requests")
    parser.add_argument("--pgbench-scale", type=int, default=10, help="pgbench -i -s")
    parser.add_argument("--count", type=int, default=300, help="checkouts sent in-process to count statements")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if min(args.seconds, args.rounds, args.clients, args.workers, args.members, args.max_requests,
           args.pgbench_scale, args.rate, args.count) <= 0:
        parser.error("every count, --seconds and --rate must be above 0")

    with contextlib.ExitStack() as stack:
        url, floor_url, env, payloads, coupon_codes = set_up(stack, "", args.members, args.seed)

        print(f"[pgbench] -i -s {args.pgbench_scale}, then -c {args.clients} -T {args.seconds} (TPC-B) ...",
              flush=True)
        tps = run_pgbench(stack.enter_context(scratch_database("_pgbench")), args.clients, args.seconds,
                          args.pgbench_scale)
        print(f"[pgbench] {tps:,.0f} tps", flush=True)

        log = stack.enter_context(tempfile.NamedTemporaryFile("w+", prefix="crm_bench_gunicorn_", suffix=".log"))
        coupons_per_round = len(coupon_codes) // (args.rounds + 1)  # every round and the open loop get their own
        floors, reals = [], []
        for rnd in range(1, args.rounds + 1):
            floor = measure_floor(floor_url, args)
            print(f"[round {rnd}] floor {floor['rate']:8,.1f}/s  p99 {floor['p99']:6.1f} ms  "
                  f"errors {sum(floor['errors'].values())}", flush=True)
            with gunicorn(env, args.workers, log) as (port, proc):
                tokens = login_tokens(port, args.clients)
                round_coupons = coupon_codes[(rnd - 1) * coupons_per_round:rnd * coupons_per_round]
                real = closed_loop(port, tokens, payloads, round_coupons, args)
                if proc.poll() is not None:
                    raise RuntimeError(f"gunicorn exited {proc.returncode} during the load; log:\n{tail(log)}")
            print(f"[round {rnd}] real  {real['rate']:8,.1f}/s  p99 {real['p99']:6.1f} ms  "
                  f"errors {sum(real['errors'].values())}  ratio {real['rate'] / floor['rate']:.3f}", flush=True)
            floors.append(floor)
            reals.append(real)

        print(f"[open loop] {args.rate:g} checkouts/s offered for {args.seconds} s ...", flush=True)
        with gunicorn(env, args.workers, log) as (port, proc):
            tokens = login_tokens(port, args.clients)
            warm = request_bodies(payloads, [], args.workers * 20, args.seed + 1)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _kind, body in warm:  # every worker's caches warm, as in a till's day
                _status, _code, conn = post_checkout(conn, port, tokens[0], body)
            conn.close()
            open_records = run_open_loop(port, tokens, payloads, coupon_codes[args.rounds * coupons_per_round:],
                                         args.rate, args.seconds, args.seed + 2)
        open_ok = [ms for ms, status, _code, _kind in open_records if status == 201]
        open_errors = Counter((status, code) for _ms, status, code, _kind in open_records if status != 201)

        print(f"[statements] {args.count} checkouts in-process ...", flush=True)
        statements = count_statements(url, payloads, [], args.count, args.seed + 3)

        with psycopg.connect(url) as conn:
            in_db = conn.execute("SELECT count(*) FROM checkouts").fetchone()[0]
            coupons_in_db = conn.execute("SELECT count(*) FROM coupons WHERE status = 'redeemed'").fetchone()[0]
        audit = flask_cli(env, "crm", "audit", check=False)

        ratios = [r["rate"] / f["rate"] for r, f in zip(reals, floors, strict=True)]
        ratio, open_p99 = statistics.median(ratios), percentile(open_ok, 99)
        created = sum((r["created"] for r in reals), Counter())
        print(f"\nCheckout throughput: POST /api/v1/checkouts, gunicorn x{args.workers} (sync) on PostgreSQL, "
              f"{args.members:,} members, {os.cpu_count()} CPUs, {args.clients} closed-loop clients, "
              f"{args.rounds} rounds of {args.seconds} s\n")
        print(f"  floor /s     {spread([f['rate'] for f in floors])}")
        print(f"  real /s      {spread([r['rate'] for r in reals])}")
        print(f"  real p50 ms  {spread([r['p50'] for r in reals])}")
        print(f"  real p99 ms  {spread([r['p99'] for r in reals])}   (closed loop: p99 ~ {args.clients} clients "
              f"/ rate)")
        print(f"  pgbench tps  {tps:,.1f}   (TPC-B -s {args.pgbench_scale} -c {args.clients} -j 2, same run)")
        print(f"  open loop    {args.rate:g}/s offered, {len(open_records):,} requests: p50 "
              f"{percentile(open_ok, 50):.1f} ms, p99 {open_p99:.1f} ms, max {max(open_ok, default=float('nan')):.1f}"
              f" ms, errors {sum(open_errors.values())}   (goal p99 < {GOAL_P99_MS:g} ms: "
              f"{'yes' if open_p99 < GOAL_P99_MS else 'NO'})")
        print("  statements per checkout (in-process, caches warm):")
        for kind, (n, mean, most) in statements.items():
            print(f"    {kind:<32} {mean:5.1f} mean, {most} max   ({n} checkouts)")
        kinds = sum((r["kinds"] for r in reals), Counter())
        print(f"  mix (201s, all rounds): {', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))}")
        for (status, code), count in (sum((r["errors"] for r in reals), Counter()) + open_errors).most_common():
            print(f"  error: {count:,} x {status or 'no response'} {code}")
        if any(r["ran_out"] for r in reals):
            print(f"  coupons ran out: {sum(r['ran_out'] for r in reals):,} coupon draws went without one")
        print(f"  checkouts in database: {in_db:,}; coupons redeemed {coupons_in_db:,} (closed-loop 201s with "
              f"a coupon: {created['coupon']:,})")
        print(f"  crm audit: exit status {audit.returncode}")
        for line in (audit.stdout + audit.stderr).strip().splitlines()[-10:]:
            print(f"    {line}")
        print(f"\n  ratio real/floor {ratio:.2f}   (rounds: {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"goal >= {GOAL_RATIO:.2f}: {'yes' if ratio >= GOAL_RATIO else 'NO'})")
    return 0


def login_tokens(port, n):
    tokens = []
    for _ in range(n):  # one login per till, as real tills would have
        status, body = call(port, "POST", "/api/v1/auth/token", {"username": USERNAME, "password": PASSWORD})
        if status != 200:
            raise RuntimeError(f"login failed: {status} {body}")
        tokens.append(body["token"])
    return tokens


if __name__ == "__main__":
    sys.exit(main())
