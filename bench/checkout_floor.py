"""The ceiling for checkout throughput on this machine, measured with the same load as
bench/checkout_load.py: how fast could *any* Flask checkout go here?

Runs the same clients (16 tills, same request bodies, same gunicorn settings) against
bench/floor_app.py in two modes, one after the other:
  http  – Flask answers 201 without touching the database (the HTTP + JSON floor);
  txn   – one transaction of the twelve statements a member checkout needs at minimum,
          raw psycopg, no ORM, no validation, no business rules (the database floor).
The real checkout does everything `txn` does and more (pricing, promotions, coupons,
wallet, FIFO lots, expiry, level upgrades, validation), so its throughput is below `txn`.

    .venv/bin/python bench/checkout_floor.py [--seconds 10] [--clients 16] [--workers 4]
"""
import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import psycopg
from checkout_load import GOAL_P99_MS, GOAL_RATE, gunicorn, percentile, run_load, scratch_database

HERE = Path(__file__).resolve().parent


def measure(mode, url, args):
    env = {**os.environ, "FLOOR_MODE": mode, "FLOOR_DATABASE_URL": url, "FLOOR_MEMBERS": str(args.members)}
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(tempfile.NamedTemporaryFile("w+", prefix="crm_floor_", suffix=".log"))
        port, _proc = stack.enter_context(gunicorn(env, args.workers, log, app="floor_app:app", cwd=HERE))
        members = {i: f"member-{i}" for i in range(1, args.members + 1)}
        records, window, _created, _ = run_load(port, ["bench"] * args.clients, members, [], args.seconds,
                                                args.warmup, 10**9, args.seed)
    ok = [ms for ms, status, _code, _kind in records if status == 201]
    return len(ok) / window if window else 0.0, percentile(ok, 50), percentile(ok, 99), len(records) - len(ok)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with scratch_database("_floor") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            from floor_app import SCHEMA
            conn.execute(SCHEMA)
            conn.execute("VACUUM ANALYZE")
        print(f"Checkout floor: {args.clients} clients -> gunicorn x{args.workers}, {os.cpu_count()} CPUs "
              f"(goal for the real checkout: >= {GOAL_RATE:g}/s, p99 < {GOAL_P99_MS:g} ms)\n")
        for mode in ("http", "txn"):
            rate, p50, p99, errors = measure(mode, url, args)
            print(f"  {mode:<5} {rate:8,.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   errors {errors}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
