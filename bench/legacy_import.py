"""A 100,000-member legacy import (issue 16): time and peak memory of the import job.

Migrates a scratch database (a SQLite file by default; PostgreSQL with --db postgresql, a
scratch database `crm_bench_<random>` created through TEST_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/test, and dropped at the end), adds three stores, a
second level and a manager, writes a legacy file of N members (default 100,000: cards with
and without our check digit, levels, birthdays, consents, opening points with an expiry,
principal and bonus), and runs it as the background job runs it (import_jobs.run_job, in
this process, IMPORT_CHUNK_ROWS a chunk): once (every member new), then again (every row
skipped, nothing written). Prints each run's time and the process's peak memory (maxrss),
then checks that the balances equal the file's totals and that `crm audit` is clean.

    make bench-legacy-import                  # = .venv/bin/python bench/legacy_import.py
    .venv/bin/python bench/legacy_import.py --rows 20000 --db postgresql
"""
import argparse
import os
import resource
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lookup import scratch_database  # noqa: E402

from crm import create_app  # noqa: E402
from crm.auth import service as auth  # noqa: E402
from crm.cards.codes import luhn_check_digit  # noqa: E402
from crm.core.actor import Actor  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.members import levels  # noqa: E402
from crm.stores import service as stores  # noqa: E402

KEYS = {"SECRET_KEY": secrets.token_urlsafe(32), "CARD_SIGNING_KEY": secrets.token_urlsafe(32)}
HEADER = ("mobile,name,card_no,level,birthday,gender,email,store_code,sms_consent,email_consent,"
          "opening_points,points_expire_on,opening_principal,opening_bonus")


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def legacy_file(n: int) -> tuple[bytes, dict]:
    """(the CSV, its totals): every 10th member carries a card number of ours, the rest legacy ones."""
    lines, points, principal, bonus = [HEADER], 0, 0, 0
    for i in range(n):
        card = f"86{i:013d}" + luhn_check_digit(f"86{i:013d}") if i % 10 == 0 else f"7700{i:08d}"
        p, pr, bo = i * 7 % 5000, (i % 3000) * 100 + i % 100, (i % 50) * 100 if i % 6 == 1 else 0
        points, principal, bonus = points + p, principal + pr, bonus + bo
        lines.append(f"136{i:08d},会员{i},{card},{('', 'gold', '金卡')[i % 3]},{('', '1985-03-14', '07-15')[i % 3]},"
                     f"{('', 'male', '女')[i % 3]},{f'm{i}@example.com' if i % 4 == 0 else ''},"
                     f"{('BJ01', 'BJ02', 'HT01')[i % 3]},{i % 2},{int(i % 4 == 0)},{p},"
                     f"{'2099-12-31' if i % 5 else ''},{pr // 100}.{pr % 100:02d},{bo // 100}.{bo % 100:02d}")
    return ("\n".join(lines) + "\n").encode(), {"points": points, "principal": principal, "bonus": bonus}


def setup(url: str):
    env = {**os.environ, **KEYS, "DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=url, **KEYS)
    with app.app_context():
        system = Actor.system("bench")
        bj01 = stores.create_store(system, code="BJ01", name="朝阳店", kind="restaurant")
        stores.create_store(system, code="BJ02", name="海淀店", kind="restaurant")
        stores.create_store(system, code="HT01", name="王府井酒店", kind="hotel", rooms=200)
        levels.entry_level()
        levels.create_level(system, code="gold", name="金卡", rank=1)
        staff = auth.create_staff(system, username="importer", password="bench-pass-1", role="manager",
                                  store_id=bj01.id)
        db.session.commit()
        actor = Actor(staff_id=staff.id, username=staff.username, role=staff.role, store_id=bj01.id)
    return app, actor


def import_once(app, actor, body: bytes, label: str) -> dict:
    from crm.reports import import_jobs
    with app.app_context():
        t0 = time.perf_counter()
        job = import_jobs.create(actor, "members", body, filename=f"{label}.csv")
        db.session.commit()
        job_id = job.id
        import_jobs.run_job(job_id)
        seconds = time.perf_counter() - t0
        job = import_jobs.get(job_id)
        result = {"label": label, "seconds": seconds, "status": job.status, "rows": job.total,
                  "imported": job.imported, "skipped": job.skipped, "errors": job.error_count,
                  "maxrss": maxrss_mib()}
        db.session.remove()
    if result["status"] != "done":
        raise RuntimeError(f"the job failed: {result}")
    return result


def verify(app, totals: dict) -> dict:
    from sqlalchemy import func, select

    from crm.members.models import Member
    from crm.points import service as points
    from crm.points.models import PointsAccount
    from crm.wallet import service as wallet
    with app.app_context():
        held = wallet.liability()
        found = {"members": db.session.scalar(select(func.count()).select_from(Member)),
                 "points": db.session.scalar(select(func.coalesce(func.sum(PointsAccount.balance), 0))),
                 "principal": held["principal"], "bonus": held["bonus"],
                 "audit": len(points.audit_mismatches() + wallet.audit_mismatches())}
        db.session.remove()
        db.engine.dispose()
    return {**found, "totals_match": all(found[k] == totals[k] for k in ("points", "principal", "bonus"))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="members in the file")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    url, drop = scratch_database(args.db)
    try:
        print(f"[{args.db}] migrating; writing a file of {args.rows:,} members ...", flush=True)
        app, actor = setup(url)
        body, totals = legacy_file(args.rows)
        print(f"[{args.db}] file of {len(body) / 1024 / 1024:.1f} MiB; peak memory before the import "
              f"{maxrss_mib():.0f} MiB; chunks of {app.config['IMPORT_CHUNK_ROWS']:,} rows", flush=True)
        runs = [import_once(app, actor, body, "import"), import_once(app, actor, body, "again")]
        checks = verify(app, totals)
        with app.app_context():
            db.engine.dispose()
    finally:
        drop()
    print()
    print("| database | run | rows | seconds | rows/s | new | skipped | peak memory (maxrss) MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {args.db} | {r['label']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | "
              f"{r['imported']:,} | {r['skipped']:,} | {r['maxrss']:.0f} |")
    print(f"\nmembers {checks['members']:,}; balances = file totals: {checks['totals_match']} "
          f"(points {checks['points']:,}, principal {checks['principal'] / 100:,.2f}, "
          f"bonus {checks['bonus'] / 100:,.2f}); "
          f"audit mismatches: {checks['audit']}")
    if not checks["totals_match"] or checks["audit"] or checks["members"] != args.rows:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
