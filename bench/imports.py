"""Large CSV imports through the API: 100,000 checks imported, then re-imported, on gunicorn.

For each database (a scratch PostgreSQL database and a SQLite file): migrates it, adds two
restaurants, 10,000 members and a manager, writes a file of N checks (default 100,000;
30 % name a member by mobile) and starts `gunicorn --workers 2` with its default 30 s
worker timeout. Then sends the file to POST /api/v1/imports/checks, follows the job on
GET /api/v1/imports/{id} until it is done, and sends the file again with other amounts
(every row updated in place). Prints, per run, how long the upload took to be answered,
the whole import, and rows per second; then checks that the table holds N rows and that
gunicorn never killed a worker (no WORKER TIMEOUT in its log).

    make bench-imports                        # = .venv/bin/python bench/imports.py
    .venv/bin/python bench/imports.py --rows 20000 --db sqlite
PostgreSQL: a scratch database `crm_bench_<random>` is created through TEST_DATABASE_URL
(default postgresql://postgres@127.0.0.1:5432/test) and dropped at the end.
"""
import argparse
import http.client
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lookup import bulk_load, referral_code, scratch_database  # noqa: E402

from crm import create_app  # noqa: E402
from crm.auth import service as auth  # noqa: E402
from crm.core.actor import Actor  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.members.levels import entry_level  # noqa: E402
from crm.stores import service as stores  # noqa: E402

MEMBERS = 10_000
MEMBER_COLS = ("id", "name", "mobile", "mobile_last4", "level_id", "store_id", "sales_rep", "sms_consent",
               "email_consent", "notes", "created_at", "updated_at", "referral_code")
USERNAME, PASSWORD = "importer", "bench-pass-1"
KEYS = {"SECRET_KEY": secrets.token_urlsafe(32), "CARD_SIGNING_KEY": secrets.token_urlsafe(32)}


def venv_bin(name: str) -> str:
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / "bin"):
        if (folder / name).exists():
            return str(folder / name)
    raise SystemExit(f"{name} not found next to {sys.executable} or in {ROOT / '.venv' / 'bin'}")


def checks_file(n: int, amount_offset: int, seed: int = 7) -> bytes:
    """A POS export: N checks over March 2026 at two restaurants, 30 % by members."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 1, 11, tzinfo=timezone(timedelta(hours=8)))
    lines = ["check_no,store_code,closed_at,amount,covers,segment,member_mobile,joined_at_visit"]
    for i in range(n):
        member = f"13{rng.randint(1, MEMBERS):09d}" if rng.random() < 0.3 else ""
        at = start + timedelta(seconds=rng.randrange(31 * 86400))
        fen = rng.randint(3000, 80000) + amount_offset
        lines.append(f"P{i:07d},BJ0{1 + i % 2},{at.isoformat()},{fen // 100}.{fen % 100:02d},{rng.randint(1, 8)},"
                     f"walk_in,{member},{int(bool(member) and rng.random() < 0.05)}")
    return ("\n".join(lines) + "\n").encode()


def setup(url: str, backend: str):
    """Schema by the migrations (as production gets it), then stores, members and a manager."""
    env = {**os.environ, **KEYS, "DATABASE_URL": url}
    subprocess.run([venv_bin("flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=url, **KEYS)
    with app.app_context():
        system = Actor.system("bench")
        store = stores.create_store(system, code="BJ01", name="朝阳店", kind="restaurant")
        stores.create_store(system, code="BJ02", name="海淀店", kind="restaurant")
        level_id, store_id = entry_level().id, store.id
        auth.create_staff(system, username=USERNAME, password=PASSWORD, role="manager", store_id=store_id)
        db.session.commit()
        joined = datetime(2025, 6, 1, tzinfo=timezone.utc)
        bulk_load(backend, [("members", MEMBER_COLS, lambda stamp: (
            (i, f"会员{i}", f"13{i:09d}", f"{i:09d}"[-4:], level_id, store_id, "", False, False, "", stamp(joined),
             stamp(joined), referral_code(i)) for i in range(1, MEMBERS + 1)))])
        db.session.remove()
        db.engine.dispose()
    return env


def call(port, method, path, body=None, headers=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env, log):
    port = free_port()
    proc = subprocess.Popen([venv_bin("gunicorn"), "--workers", "2", "--timeout", "30", "--bind",
                             f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if call(port, "GET", "/healthz", timeout=5)[0] == 200:
                return port, proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start (exit {proc.poll()}); see {log.name}")
        time.sleep(0.2)


def import_once(port, token, body: bytes, label: str) -> dict:
    auth_header = {"Authorization": f"Bearer {token}"}
    t0 = time.perf_counter()
    status, job = call(port, "POST", "/api/v1/imports/checks", body, {**auth_header, "Content-Type": "text/csv"})
    answered = time.perf_counter() - t0
    if status != 202:
        raise RuntimeError(f"upload answered {status}: {job}")
    shown = 0.0
    while job["status"] not in ("done", "failed"):
        time.sleep(0.5)
        status, job = call(port, "GET", job["status_url"], headers=auth_header)
        if status != 200:
            raise RuntimeError(f"status answered {status}: {job}")
        if time.perf_counter() - shown > 5:
            shown = time.perf_counter()
            print(f"    {label}: {job['status']}, {job['phase']}: checked {job['checked']:,}, written "
                  f"{job['done']:,} of {job['total']:,}", flush=True)
    total = time.perf_counter() - t0
    if job["status"] != "done":
        raise RuntimeError(f"the job failed: {job['failure']} {job['errors'][:3]}")
    return {"label": label, "answered": answered, "seconds": total, "rows": job["total"],
            "imported": job["imported"], "updated": job["updated"], "skipped": job["skipped"]}


def run(backend: str, n: int):
    url, drop = scratch_database(backend)
    proc = None
    try:
        print(f"[{backend}] migrating, loading {MEMBERS:,} members, writing {n:,} checks ...", flush=True)
        env = setup(url, backend)
        files = [checks_file(n, 0), checks_file(n, 7)]
        print(f"[{backend}] file of {len(files[0]) / 1024 / 1024:.1f} MiB; starting gunicorn --workers 2 "
              f"--timeout 30 ...", flush=True)
        with tempfile.NamedTemporaryFile("w+", prefix="crm_bench_imports_", suffix=".log", delete=False) as log:
            port, proc = start_gunicorn(env, log)
            status, login = call(port, "POST", "/api/v1/auth/token",
                                 json.dumps({"username": USERNAME, "password": PASSWORD}).encode(),
                                 {"Content-Type": "application/json"})
            if status != 200:
                raise RuntimeError(f"login answered {status}: {login}")
            results = [import_once(port, login["token"], files[0], "import"),
                       import_once(port, login["token"], files[1], "re-import")]
            alive = proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log.flush()
            timeouts = Path(log.name).read_text(errors="replace").count("WORKER TIMEOUT")
        app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=url, **KEYS)
        with app.app_context():
            from sqlalchemy import func, select

            from crm.reports.models import Check
            stored = db.session.scalar(select(func.count()).select_from(Check))
            db.session.remove()
            db.engine.dispose()
        return results, {"stored": stored, "worker_timeouts": timeouts, "gunicorn_alive": alive, "log": log.name}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        drop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="checks in the file")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    backends = ("postgresql", "sqlite") if args.db == "both" else (args.db,)
    report = []
    for backend in backends:
        results, checks = run(backend, args.rows)
        report.append((backend, results, checks))
    print()
    print("| database | run | rows | upload answered s | whole import s | rows/s | new | updated |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for backend, results, _checks in report:
        for r in results:
            print(f"| {'PostgreSQL' if backend == 'postgresql' else 'SQLite'} | {r['label']} | {r['rows']:,} | "
                  f"{r['answered']:.2f} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | "
                  f"{r['imported']:,} | {r['updated']:,} |")
    ok = True
    for backend, _results, checks in report:
        fine = checks["stored"] == args.rows and checks["worker_timeouts"] == 0 and checks["gunicorn_alive"]
        ok &= fine
        print(f"[{backend}] checks stored: {checks['stored']:,}; gunicorn worker timeouts: "
              f"{checks['worker_timeouts']}; {'ok' if fine else 'PROBLEM, see ' + checks['log']}")
        if fine:
            os.unlink(checks["log"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
