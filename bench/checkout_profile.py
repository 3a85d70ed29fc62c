"""Where a checkout's CPU goes: the bench's mix of bills sent in-process (Flask test client,
one process, no HTTP server) on a scratch PostgreSQL database, under cProfile.

Prints the CPU per checkout, the SQL statements per checkout, the share of time by
package (SQLAlchemy ORM / SQL construction and compilation / engine, psycopg,
marshmallow, Flask and Werkzeug, this app) and the functions with the most own time.

    make bench-profile            # = .venv/bin/python bench/checkout_profile.py
    .venv/bin/python bench/checkout_profile.py --checkouts 2000 --members 2000
"""
import argparse
import cProfile
import os
import pstats
import sys
import time
from collections import Counter

from checkout_load import (
    CARD_SIGNING_KEY,
    PASSWORD,
    SECRET_KEY,
    STORE,
    USERNAME,
    flask_cli,
    request_bodies,
    scratch_database,
    seed,
)

from config import normalise_database_url
from crm import create_app
from crm.extensions import db

GROUPS = (("sqlalchemy/orm", "SQLAlchemy ORM"), ("sqlalchemy/sql", "SQLAlchemy SQL construction/compilation"),
          ("sqlalchemy/engine", "SQLAlchemy engine"), ("sqlalchemy", "SQLAlchemy other"), ("psycopg", "psycopg"),
          ("marshmallow", "marshmallow"), ("flask_smorest", "flask-smorest"), ("webargs", "webargs"),
          ("werkzeug", "Werkzeug"), ("flask", "Flask and extensions"), ("/crm/", "this app"),
          ("json", "json"))


def group_of(filename: str) -> str:
    for needle, label in GROUPS:
        if needle in filename:
            return label
    return "other (stdlib, interpreter)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkouts", type=int, default=1000)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with scratch_database("_profile") as url:
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "CARD_SIGNING_KEY": CARD_SIGNING_KEY}
        flask_cli(env, "db", "upgrade")
        payloads, coupon_codes = seed(url, args.members, args.seed)
        flask_cli(env, "crm", "create-staff", USERNAME, "--role", "cashier", "--password", PASSWORD,
                  "--store", STORE)
        app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=normalise_database_url(url),
                         SECRET_KEY=SECRET_KEY, CARD_SIGNING_KEY=CARD_SIGNING_KEY)
        client = app.test_client()
        token = client.post("/api/v1/auth/token", json={"username": USERNAME, "password": PASSWORD}).json["token"]
        bodies = request_bodies(payloads, coupon_codes, 2 * args.checkouts + 50, args.seed)
        statements = []
        with app.app_context():
            from sqlalchemy import event
            event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(1))

        def send(i, body):
            r = client.post("/api/v1/checkouts", json=body,
                            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"profile-{i}"})
            return r.status_code
        for i, (_kind, body) in enumerate(bodies[:50]):  # warm the caches and the compiled-statement cache
            send(i, body)
        # The same mix without the profiler first: the CPU a checkout really costs in-process.
        plain0 = time.process_time()
        for i, (_kind, body) in enumerate(bodies[50:50 + args.checkouts], 50):
            send(i, body)
        plain = time.process_time() - plain0
        bodies = bodies[args.checkouts:]
        statements.clear()
        profiler = cProfile.Profile()
        statuses = Counter()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        profiler.enable()
        for i, (_kind, body) in enumerate(bodies[50:], 50 + args.checkouts):
            statuses[send(i, body)] += 1
        profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        with app.app_context():
            db.engine.dispose()

    n = args.checkouts
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # own time of every function
    by_group = Counter()
    for (filename, _line, _name), row in stats.stats.items():
        by_group[group_of(filename)] += row[2]
    print(f"\nCheckout profile: {n:,} checkouts in-process on PostgreSQL (statuses {dict(statuses)})\n")
    print(f"  CPU per checkout      {plain / n * 1000:.2f} ms (without the profiler, client and server in one process)")
    print(f"                        {cpu / n * 1000:.2f} ms (under the profiler; wall {wall / n * 1000:.2f} ms)")
    print(f"  statements/checkout   {len(statements) / n:.1f}")
    print("\n  own time by package:")
    for label, seconds in by_group.most_common():
        print(f"    {label:<42} {seconds / total:6.1%}")
    print(f"\n  top {args.top} functions by own time:")
    top = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:args.top]
    for (filename, line, name), row in top:
        where = filename.split("site-packages/")[-1].split("/work/")[-1]
        print(f"    {row[2] / total:6.1%}  {row[1]:>8,} calls  {name}  ({where}:{line})")
    print("\n  this app's steps, cumulative time (share of all):")
    steps = [(row[3], filename, line, name) for (filename, line, name), row in stats.stats.items()
             if "/crm/" in filename and not name.startswith("<")]
    for cumulative, filename, line, name in sorted(steps, reverse=True)[:args.top]:
        print(f"    {cumulative / total:6.1%}  {name}  ({filename.split('/work/')[-1].split('main/')[-1]}:{line})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
