"""Report speed at scale: 1,000,000 restaurant checks and 1,000,000 hotel stay-nights.

Loads, into a scratch database, two restaurants and a 500-room hotel, 100,000 members,
N checks (default 1,000,000) over two years (40 % by members) and stays adding up to N
room nights over the same two years (segments, companies, repeat members, day use and
complimentary rooms among them). Then times each report the way the API computes it, for
one month and for a whole year, and streams the period's bills as CSV (every row) while
measuring the process's peak memory.

Goals: each report < 1 s on PostgreSQL and < 3 s on SQLite; the CSV export's memory
stays flat (peak RSS barely above what the process held before it).

    make bench-reports                        # = .venv/bin/python bench/reports.py
    .venv/bin/python bench/reports.py --rows 100000 --db sqlite
"""
import argparse
import random
import resource
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lookup import bulk_load, referral_code, scratch_database  # noqa: E402

from crm import create_app  # noqa: E402
from crm.core.actor import Actor  # noqa: E402
from crm.core.segments import SEGMENT_KEYS  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.members.levels import entry_level  # noqa: E402
from crm.reports import competitors, exports, kpis, monthly, rankings, rfm, rooms, segments  # noqa: E402
from crm.reports.figures import period  # noqa: E402
from crm.stores import service as stores  # noqa: E402

GOALS = {"postgresql": 1.0, "sqlite": 3.0}
MEMBERS = 100_000
FIRST = date(2025, 1, 1)
DAYS = 730
CHECK_COLS = ("id", "check_no", "store_id", "closed_at", "amount", "covers", "segment", "member_id",
              "joined_at_visit", "imported_at")
STAY_COLS = ("id", "stay_no", "store_id", "arrival", "departure", "rooms", "room_revenue", "segment", "member_id",
             "company_name", "sales_rep", "complimentary", "day_use", "imported_at")
MEMBER_COLS = ("id", "name", "mobile", "mobile_last4", "level_id", "store_id", "sales_rep", "sms_consent",
               "email_consent", "notes", "created_at", "updated_at", "referral_code")
COMPANIES = [f"公司{i:03d}" for i in range(300)]


def check_rows(n, restaurants, rng, stamp):
    now = stamp(datetime(2026, 1, 1, tzinfo=timezone.utc))
    for i in range(1, n + 1):
        at = datetime(2025, 1, 1, 3, tzinfo=timezone.utc) + timedelta(seconds=rng.randrange(DAYS * 86400))
        member = rng.randint(1, MEMBERS) if rng.random() < 0.4 else None
        yield (i, f"C{i}", rng.choice(restaurants), stamp(at), rng.randint(3000, 80000), rng.randint(1, 8),
               "walk_in", member, member is not None and rng.random() < 0.05, now)


def stay_rows(nights_target, hotel, rng, stamp):
    now = stamp(datetime(2026, 1, 1, tzinfo=timezone.utc))
    i = nights = 0
    while nights < nights_target:
        i += 1
        segment = rng.choice(SEGMENT_KEYS)
        arrival = FIRST + timedelta(days=rng.randrange(DAYS))
        day_use = rng.random() < 0.02
        length = 0 if day_use else rng.choice((1, 1, 2, 2, 3, 4, 7))
        count = 1 if rng.random() < 0.9 else rng.randint(2, 10)
        nights += length * count
        member = rng.randint(1, MEMBERS) if rng.random() < 0.3 else None
        company = rng.choice(COMPANIES) if rng.random() < 0.5 else ""
        yield (i, f"S{i}", hotel, arrival, arrival + timedelta(days=length), count,
               rng.randint(30000, 90000) * max(length, 1) * count, segment, member, company,
               rng.choice(("孙", "周", "")), segment == "complimentary", day_use, now)


def member_rows(level_id, store_id, stamp):
    joined = stamp(datetime(2024, 6, 1, tzinfo=timezone.utc))
    return ((i, f"会员{i}", f"13{i:09d}", f"{i:09d}"[-4:], level_id, store_id, "", False, False, "", joined, joined,
             referral_code(i)) for i in range(1, MEMBERS + 1))


def load(backend, n, restaurants, hotel, level_id, rng):
    bulk_load(backend, [("members", MEMBER_COLS, lambda stamp: member_rows(level_id, restaurants[0], stamp)),
                        ("checks", CHECK_COLS, lambda stamp: check_rows(n, restaurants, rng, stamp)),
                        ("stays", STAY_COLS, lambda stamp: stay_rows(n, hotel, rng, stamp))])


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(backend, n):
    url, drop = scratch_database(backend)
    app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=url, CRM_ENV="development")
    rng = random.Random(7)
    try:
        with app.app_context():
            db.create_all()
            system = Actor.system("bench")
            r1 = stores.create_store(system, code="R1", name="R1", kind="restaurant").id
            r2 = stores.create_store(system, code="R2", name="R2", kind="restaurant").id
            hotel = stores.create_store(system, code="H1", name="H1", kind="hotel", rooms=500).id
            level_id = entry_level().id
            rival = competitors.add_competitor(system, "H1", "Rival", 400)
            for m in range(1, 13):
                competitors.set_month(system, rival.id, 2026, m, available_rooms=12000, rooms_sold=9000,
                                      room_revenue=450_000_000)
            segments.save_plans(system, "H1", 2026, None, {k: (10000, 50000) for k in SEGMENT_KEYS})
            db.session.commit()
            print(f"[{backend}] loading {n:,} checks and {n:,} room nights ...", flush=True)
            t0 = time.perf_counter()
            load(backend, n, [r1, r2], hotel, level_id, rng)
            print(f"[{backend}] loaded in {time.perf_counter() - t0:.1f} s", flush=True)
            month, year = period(date(2026, 3, 1), date(2026, 3, 31)), period(date(2026, 1, 1), date(2026, 12, 31))
            cases = [
                ("kpis, one month, group", lambda: kpis.member_kpis(None, month)),
                ("kpis, a year, one store", lambda: kpis.member_kpis("R1", year)),
                ("rooms, one month", lambda: rooms.room_kpis("H1", month)),
                ("rooms, a year", lambda: rooms.room_kpis("H1", year)),
                ("segments, one month", lambda: segments.segment_table("H1", 2026, 3)),
                ("segments, a year", lambda: segments.segment_table("H1", 2026)),
                ("top 30, a year", lambda: rankings.rankings("H1", 2026, "business_fit", "revenue")),
                ("month by month, a year", lambda: monthly.monthly_comparison("H1", 2026)),
                ("competitive set, a year", lambda: competitors.competitor_table("H1", 2026)),
                ("RFM groups", lambda: rfm.group_counts(datetime(2026, 12, 31, tzinfo=timezone.utc))),
            ]
            results = [(name, timed(fn)) for name, fn in cases]
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            written = 0
            t0 = time.perf_counter()
            with app.test_request_context():
                response = exports.download("csv", "bills", kpis.BILL_COLUMNS,
                                            kpis.bill_rows(None, period(date(2025, 1, 1), date(2026, 12, 31))))
                for chunk in response.response:
                    written += len(chunk)
            export_s = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            return results, (export_s, written, before, after)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="checks, and room nights")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    out = []
    for backend in (("sqlite", "postgresql") if args.db == "both" else (args.db,)):
        out.append((backend, *run(backend, args.rows)))
    print(f"\nReports over {args.rows:,} checks and {args.rows:,} room nights (goal: < 1 s PostgreSQL, "
          f"< 3 s SQLite)\n")
    print(f"{'database':<11} {'report':<26} {'seconds':>8}  goal")
    for backend, results, (export_s, written, before, after) in out:
        for name, seconds in results:
            print(f"{backend:<11} {name:<26} {seconds:>8.3f}  {'met' if seconds < GOALS[backend] else 'NOT met'}")
        print(f"{backend:<11} {'CSV of every bill':<26} {export_s:>8.2f}  {written / 2**20:.0f} MiB written; "
              f"peak RSS {before:.0f} MiB before, {after:.0f} MiB after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
