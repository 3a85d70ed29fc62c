"""Checkout throughput: a real gunicorn (several workers) on PostgreSQL, beside pgbench.

Builds a scratch PostgreSQL database with the app's migrations, one restaurant (BJ01),
the seed dishes (SALMON, TEA), N members (default 10,000), each with an active card,
1,000 points, 1,000.00 of stored value (a cash top-up) and 3 coupons of a cash coupon type
BENCH10 (10.00 off a bill of 100.00 or more, unlimited stock), and a cashier. Then, one
after the other so they don't share the CPU:

  1. pgbench (TPC-B, `-i -s 10`, then `-c <clients> -j 2 -T <seconds> -n`) in a second
     scratch database: what this PostgreSQL on this machine does with trivial transactions;
  2. <clients> concurrent tills (a thread each, plain http.client, new Idempotency-Key per
     request) against `gunicorn --workers <workers> wsgi:app`, 3 s warm-up, then <seconds>
     measured, closing bills with POST /api/v1/checkouts:
       20 % non-members; 80 % members (half by scanned QR card code, half by member id),
       of which, each drawn independently, 30 % redeem 5 points, 30 % pay 50.00 from the
       wallet (below the PIN threshold) and 20 % use one coupon (each coupon code is
       handed out once, from a shared queue; that checkout is for the coupon's owner).
Only 201s count as checkouts; anything else is reported with its status and error code.
Afterwards `flask --app wsgi crm audit` (points, wallet and coupon stock ledgers) runs if
the app has that command.

Goals (printed, not asserted): >= 500 checkouts/s and p99 < 50 ms at 16 clients.

Run from the repo root:
    make bench-checkout                       # = .venv/bin/python bench/checkout_load.py
    .venv/bin/python bench/checkout_load.py --seconds 10 --workers 2 --members 2000
PostgreSQL: scratch databases `crm_bench_<random>` (app) and `crm_bench_<random>_pgbench`
are created through TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test)
and dropped WITH (FORCE) at the end, also on error or Ctrl-C.
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

GOAL_RATE = 500.0  # checkouts/s
GOAL_P99_MS = 50.0
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
               "sms_consent", "email_consent", "notes", "created_at", "updated_at")
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
                         START + timedelta(seconds=30 * i), START + timedelta(seconds=30 * i)) for i in ids), n)
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

def run_load(port, tokens, payloads, coupon_codes, seconds, warmup, max_requests, seed):
    """Each client closes bills back to back until the time is up (or the request cap is reached).

    Returns (measured records, window seconds, 201s overall incl. warm-up as a Counter with
    "all", "wallet" and "coupon", coupon draws that found the queue empty); a record is
    (latency ms, status, error code, kind) for each request started in the measured window."""
    n_members = len(payloads)
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

    def client(idx):
        rng = random.Random(seed * 1000 + idx)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        auth = f"Bearer {tokens[idx]}"
        out = per_client[idx]
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end or next(issued) >= max_requests:
                break
            body = {"store_code": STORE, "items": BILL, "redeem_points": 0}
            if rng.random() < NON_MEMBER_SHARE:
                kind = "non-member"
            else:
                coupon = None
                if rng.random() < COUPON_SHARE:
                    try:
                        coupon = unused.get_nowait()
                    except queue.Empty:
                        next(ran_out)
                i = coupon[1] if coupon else rng.randint(1, n_members)
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
            headers = {"Authorization": auth, "Idempotency-Key": f"bench-{uuid.uuid4().hex}",
                       "Content-Type": "application/json"}
            code = None
            try:
                conn.request("POST", "/api/v1/checkouts", body=json.dumps(body), headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                if resp.will_close:  # gunicorn's sync workers close after every response
                    conn.close()
                if status != 201:
                    try:
                        code = json.loads(data)["error"]["code"]
                    except (ValueError, KeyError, TypeError):
                        code = data[:80].decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status, code = 0, type(exc).__name__
            t1 = time.perf_counter()
            if status == 201:
                created[idx].update(["all"] + [f for f in ("wallet", "coupon") if f"+{f}" in kind])
            if t0 >= t_measure:
                out.append(((t1 - t0) * 1000, status, code, kind))
                finished[idx] = max(finished[idx], t1)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = [r for rs in per_client for r in rs]
    window = max(max(finished) - t_measure, 1e-9) if records else 0.0
    return records, window, sum(created, Counter()), next(ran_out)


def percentile(values, p):
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# --- main -------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="measured seconds (checkouts and pgbench each)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent tills (and pgbench clients)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--members", type=int, default=10_000, help="members loaded (each with a card)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before the measurement")
    parser.add_argument("--max-requests", type=int, default=500_000, help="stop after this many requests")
    parser.add_argument("--pgbench-scale", type=int, default=10, help="pgbench -i -s")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if min(args.seconds, args.clients, args.workers, args.members, args.max_requests, args.pgbench_scale) < 1:
        parser.error("--seconds, --clients, --workers, --members, --max-requests and --pgbench-scale must be >= 1")

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(scratch_database())
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "CARD_SIGNING_KEY": CARD_SIGNING_KEY}
        print(f"[setup] {url.rsplit('/', 1)[1]}: migrating, loading {args.members:,} members ...", flush=True)
        t0 = time.perf_counter()
        flask_cli(env, "db", "upgrade")
        payloads, coupon_codes = seed(url, args.members, args.seed)
        flask_cli(env, "crm", "create-staff", USERNAME, "--role", "cashier", "--password", PASSWORD,
                  "--store", STORE)
        print(f"[setup] done in {time.perf_counter() - t0:.1f} s", flush=True)

        print(f"[pgbench] -i -s {args.pgbench_scale}, then -c {args.clients} -T {args.seconds} (TPC-B) ...",
              flush=True)
        tps = run_pgbench(stack.enter_context(scratch_database("_pgbench")), args.clients, args.seconds,
                          args.pgbench_scale)
        print(f"[pgbench] {tps:,.0f} tps", flush=True)

        log = stack.enter_context(tempfile.NamedTemporaryFile("w+", prefix="crm_bench_gunicorn_", suffix=".log"))
        port, proc = stack.enter_context(gunicorn(env, args.workers, log))
        tokens = []
        for _ in range(args.clients):  # one login per till, as real tills would have
            status, body = call(port, "POST", "/api/v1/auth/token", {"username": USERNAME, "password": PASSWORD})
            if status != 200:
                raise RuntimeError(f"login failed: {status} {body}")
            tokens.append(body["token"])
        print(f"[load] {args.clients} clients -> gunicorn x{args.workers} on :{port}, "
              f"{args.warmup:g} s warm-up + {args.seconds} s ...", flush=True)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        records, window, created, ran_out = run_load(port, tokens, payloads, coupon_codes, args.seconds,
                                                     args.warmup, args.max_requests, args.seed)
        client_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited {proc.returncode} during the load; log:\n{tail(log)}")

        with psycopg.connect(url) as conn:
            in_db = conn.execute("SELECT count(*) FROM checkouts").fetchone()[0]
            wallet_in_db = conn.execute("SELECT count(*) FROM checkouts WHERE wallet_paid > 0").fetchone()[0]
            coupons_in_db = conn.execute("SELECT count(*) FROM coupons WHERE status = 'redeemed'").fetchone()[0]
        listing = flask_cli(env, "crm", "--help", check=False)
        has_audit = listing.returncode == 0 and any(
            line.split()[:1] == ["audit"] for line in listing.stdout.split("Commands:", 1)[-1].splitlines())
        audit = flask_cli(env, "crm", "audit", check=False) if has_audit else None

        ok = [ms for ms, status, _code, _kind in records if status == 201]
        errors = Counter((status, code) for _ms, status, code, _kind in records if status != 201)
        kinds = Counter(kind for _ms, status, _code, kind in records if status == 201)
        rate = len(ok) / window if window else 0.0
        p50, p99 = percentile(ok, 50), percentile(ok, 99)
        met_rate, met_p99 = rate >= GOAL_RATE, p99 < GOAL_P99_MS

        print(f"\nCheckout load: POST /api/v1/checkouts, gunicorn (sync) on PostgreSQL, {args.members:,} members,"
              f" {os.cpu_count()} CPUs\n")
        rows = [("workers", f"{args.workers}"), ("clients", f"{args.clients}"),
                ("duration", f"{window:.1f} s (+{args.warmup:g} s warm-up)"),
                ("requests", f"{len(records):,}"),
                ("checkouts/s", f"{rate:,.1f}   (goal >= {GOAL_RATE:g}: {'yes' if met_rate else 'NO'})"),
                ("p50 ms", f"{p50:.1f}"),
                ("p99 ms", f"{p99:.1f}   (goal < {GOAL_P99_MS:g}: {'yes' if met_p99 else 'NO'})"),
                ("mean ms", f"{statistics.fmean(ok) if ok else float('nan'):.1f}"),
                ("errors", f"{sum(errors.values())}"),
                ("pgbench tps", f"{tps:,.1f}   (TPC-B -s {args.pgbench_scale} -c {args.clients} -j 2)"),
                ("ratio", f"{rate / tps:.3f}   (checkouts/s / pgbench tps)"),
                ("goals met", "yes" if met_rate and met_p99 else "NO")]
        for label, value in rows:
            print(f"  {label:<12} {value}")
        print(f"\n  mix (201s): {', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))}")
        members_ok = sum(v for k, v in kinds.items() if k.startswith("member"))
        share = Counter()
        for k, v in kinds.items():
            share.update({f: v for f in k.split("+")[1:]})
        print(f"  by case (201s): member {members_ok:,}" + "".join(
            f", +{f} {share[f]:,} ({share[f] / members_ok if members_ok else 0:.0%})"
            for f in ("redeem", "wallet", "coupon")) + f", non-member {kinds['non-member']:,} "
              f"({kinds['non-member'] / len(ok) if ok else 0:.0%})")
        if ran_out:
            print(f"  coupons ran out: {ran_out:,} coupon draws went without one")
        for (status, code), count in errors.most_common():
            print(f"  error: {count:,} x {status or 'no response'} {code}")
        print(f"  checkouts in database: {in_db:,} (201s incl. warm-up: {created['all']:,}); with wallet "
              f"payment {wallet_in_db:,} ({created['wallet']:,}); coupons redeemed {coupons_in_db:,} "
              f"({created['coupon']:,})")
        print(f"  load generator used {client_cpu:.0%} of one CPU (it shares the machine with gunicorn and "
              f"PostgreSQL)")
        if audit is None:
            print("  crm audit: command not available, skipped")
        else:
            print(f"  crm audit: exit status {audit.returncode}")
            for line in (audit.stdout + audit.stderr).strip().splitlines()[-10:]:
                print(f"    {line}")
        if errors:
            print(f"\n  gunicorn log (tail):\n{tail(log, 15)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
