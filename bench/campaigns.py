"""Campaign scale: birthday selection over 1,000,000 members, and fan-out to the outbox.

Loads N members (default 1,000,000; birthdays spread over the year, 70 % agreeing to
SMS, each with a points account, one in ten with stored value) into a scratch database,
then through the scheduler's own code (`jobs.run_campaigns`, the function each tick runs):

  birthday  the built-in birthday greeting (outbox channel, no coupon) on one morning:
            find the day's birthdays among all members and queue one message each.
            Goal: < 5 s to queue.
  fan-out   a once campaign to an audience (consent = SMS, birthday month = 1, about
            6 % of the members) on the outbox channel: render and write each message.
            Goal: >= 5,000 messages/s.

Run from the repo root:
    make bench-campaigns                      # = .venv/bin/python bench/campaigns.py
    .venv/bin/python bench/campaigns.py --members 100000 --db sqlite
PostgreSQL: a scratch database `crm_bench_<random>` through TEST_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test), dropped at the end; SQLite: a temporary file.
"""
import argparse
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lookup import bulk_load, referral_code, scratch_database  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from crm import create_app  # noqa: E402
from crm.campaigns import jobs, messages  # noqa: E402
from crm.campaigns import service as campaigns  # noqa: E402
from crm.campaigns.models import Delivery  # noqa: E402
from crm.core.actor import Actor  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.members.levels import entry_level  # noqa: E402
from crm.stores import service as stores  # noqa: E402

GOAL_BIRTHDAY_S, GOAL_FANOUT_RATE = 5.0, 5000.0
START = datetime(2023, 1, 1, tzinfo=timezone.utc)
DAY = datetime(2027, 5, 20, 1, 30, tzinfo=timezone.utc)  # 09:30 in Beijing on 20 May
MEMBER_COLS = ("id", "name", "mobile", "mobile_last4", "birthday_month", "birthday_day", "gender", "level_id",
               "store_id", "sales_rep", "sms_consent", "email_consent", "notes", "created_at", "updated_at",
               "referral_code")
POINTS_COLS = ("id", "member_id", "balance", "updated_at")
WALLET_COLS = ("id", "member_id", "kind", "balance", "updated_at")


def member_rows(n, level_id, store_id, stamp):
    t = stamp(START)
    for i in range(1, n + 1):
        day_of_year = (i * 7919) % 365  # spread evenly, not in id order
        born = datetime(2001, 1, 1) + timedelta(days=day_of_year)
        mobile = f"13{(i * 982451653 + 12345) % 10**9:09d}"
        yield (i, f"会员{i}", mobile, mobile[-4:], born.month, born.day, ("male", "female")[i % 2], level_id,
               store_id, "", i % 10 < 7, False, "", t, t, referral_code(i))


def points_rows(n, stamp):
    t = stamp(START)
    return ((i, i, i % 500, t) for i in range(1, n + 1))


def wallet_rows(n, stamp):
    t = stamp(START)
    return ((i // 10, i, "principal", 50_000, t) for i in range(10, n + 1, 10))


def load(backend, n, level_id, store_id):
    bulk_load(backend, [("members", MEMBER_COLS, lambda stamp: member_rows(n, level_id, store_id, stamp)),
                        ("points_accounts", POINTS_COLS, lambda stamp: points_rows(n, stamp)),
                        ("wallet_accounts", WALLET_COLS, lambda stamp: wallet_rows(n, stamp))])


def timed_run(now):
    """One scheduler beat's fan-out: (messages queued, seconds, the process's peak RSS in MiB so far)."""
    t0 = time.perf_counter()
    queued = jobs.run_campaigns(now)
    seconds = time.perf_counter() - t0
    return queued, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(backend, n):
    url, drop = scratch_database(backend)
    # one morning's birthdays: no catch-up of the days before (the campaign is scheduled "now")
    app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=url, SCHEDULER_CATCH_UP_DAYS=0, CRM_ENV="development")
    try:
        with app.app_context():
            db.create_all()
            system = Actor.system("bench")
            store = stores.create_store(system, code="BENCH01", name="Bench store", kind="restaurant")
            level_id, store_id = entry_level().id, store.id
            db.session.commit()
            print(f"[{backend}] loading {n:,} members ...", flush=True)
            t0 = time.perf_counter()
            load(backend, n, level_id, store_id)
            print(f"[{backend}] loaded in {time.perf_counter() - t0:.1f} s", flush=True)

            birthday = campaigns.birthday_campaign()
            campaigns.save(system, {"channel": "outbox"}, birthday.id)
            campaigns.transition(system, birthday, "schedule")
            db.session.commit()
            expected = db.session.scalar(db.text(
                "SELECT count(*) FROM members WHERE birthday_month = 5 AND birthday_day = 20 AND sms_consent"))
            queued_b, seconds_b, peak_b = timed_run(DAY)
            assert queued_b == expected, f"queued {queued_b} birthday messages, expected {expected}"
            campaigns.transition(system, birthday, "pause")

            body = "{{ name }}{{ title }}，您好！您有 {{ points }} 积分，储值 {{ wallet }} 元，欢迎光临{{ store }}。"
            template = messages.save(system, {"name": "bench", "body": body})
            audience = campaigns.audiences.save(system, {"name": "bench", "filters": {"consent": "sms",
                                                                                     "birthday_month": 1}})
            once = campaigns.save(system, {"name": "bench", "template_id": template.id, "audience_id": audience.id,
                                           "channel": "outbox", "schedule": "once", "send_at": DAY})
            campaigns.transition(system, once, "schedule")
            db.session.commit()
            queued_f, seconds_f, peak_f = timed_run(DAY + timedelta(minutes=1))
            in_db = db.session.scalar(select(func.count()).select_from(Delivery))
            assert in_db == queued_b + queued_f, (in_db, queued_b, queued_f)
            return (queued_b, seconds_b, peak_b), (queued_f, seconds_f, peak_f)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    rows = []
    for backend in (("sqlite", "postgresql") if args.db == "both" else (args.db,)):
        (qb, sb, pb), (qf, sf, pf) = run(backend, args.members)
        rows.append((backend, "birthday (one day)", qb, sb, pb, f"{sb:.2f} s < {GOAL_BIRTHDAY_S:g} s",
                     sb < GOAL_BIRTHDAY_S))
        rows.append((backend, "fan-out to outbox", qf, sf, pf, f"{qf / sf:,.0f}/s >= {GOAL_FANOUT_RATE:,.0f}/s",
                     qf / sf >= GOAL_FANOUT_RATE))
    print(f"\nCampaigns over {args.members:,} members (scheduler code path, outbox channel)\n")
    head = f"{'database':<11} {'run':<19} {'messages':>9} {'seconds':>8} {'max RSS MiB':>12}  goal"
    print(head)
    print("-" * len(head))
    for backend, what, queued, seconds, peak, goal, met in rows:
        print(f"{backend:<11} {what:<19} {queued:>9,} {seconds:>8.2f} {peak:>12.0f}  {goal}: "
              f"{'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
