"""Quote, card scan and top-up, each measured beside a floor of its own (as bench/checkout_load.py
does for the checkout).

The same scratch PostgreSQL database, members and gunicorn as the checkout bench; for each
path, <rounds> rounds (default 3) of, back to back, 16 closed-loop clients against:

  floor – bench/floor_app.py under the same gunicorn: Flask and one raw psycopg transaction
          of the statements the path needs at the least (no ORM, validation or rules);
  real  – `gunicorn wsgi:app`:
            quote   POST /api/v1/checkouts/quote, a member's bill (SALMON x2, TEA) by member id;
            scan    POST /api/v1/cards/scan with a member's rotating QR code;
            top-up  POST /api/v1/members/<id>/wallet/top-ups, 100.00 cash, a new Idempotency-Key each.

Prints, per path, floor and real requests/s (min / median / max) and `real/floor` (median of
the rounds); the issue's goal for these paths is to stop optimising once a path is within 2x
of its own floor (ratio >= 0.50). Then `crm audit` on the result.

    make bench-paths                          # = .venv/bin/python bench/paths_load.py
    .venv/bin/python bench/paths_load.py --seconds 5 --rounds 1 --members 2000
"""
import argparse
import contextlib
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter

from checkout_load import (
    BILL,
    ROOT,
    STORE,
    flask_cli,
    gunicorn,
    login_tokens,
    percentile,
    run_threads,
    set_up,
    spread,
)

PATHS = ("quote", "scan", "top-up")
EXPECTED = {"quote": 200, "scan": 200, "top-up": 201}


def request_for(path, rng, members, payloads):
    """(url path, body, idempotency key or None) of one request of `path`."""
    i = rng.randint(1, members)
    if path == "quote":
        return "/api/v1/checkouts/quote", {"store_code": STORE, "items": BILL, "member_id": i}, None
    if path == "scan":
        return "/api/v1/cards/scan", {"code": payloads[i]}, None
    return (f"/api/v1/members/{i}/wallet/top-ups", {"store_code": STORE, "amount": "100.00", "payment_method": "cash"},
            f"bench-{uuid.uuid4().hex}")


def closed_loop(port, tokens, path, members, payloads, seconds, warmup, seed_):
    """Each client sends requests of `path` back to back: {rate, p99, errors}."""
    t_measure = time.perf_counter() + warmup
    t_end = t_measure + seconds
    per_client = [[] for _ in tokens]

    def client(idx):
        rng = random.Random(seed_ * 1000 + idx)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (t0 := time.perf_counter()) < t_end:
            url, body, key = request_for(path, rng, members, payloads)
            headers = {"Authorization": f"Bearer {tokens[idx]}", "Content-Type": "application/json",
                       **({"Idempotency-Key": key} if key else {})}
            try:
                conn.request("POST", url, body=json.dumps(body), headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status, data = 0, type(exc).__name__.encode()
            if t0 >= t_measure:
                per_client[idx].append(((time.perf_counter() - t0) * 1000, status, data[:80]))
        conn.close()

    run_threads(client, len(tokens))
    records = [r for rs in per_client for r in rs]
    ok = [ms for ms, status, _data in records if status == EXPECTED[path]]
    return {"rate": len(ok) / seconds, "p99": percentile(ok, 99),
            "errors": Counter((status, data) for _ms, status, data in records if status != EXPECTED[path])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds of each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    paths = [p for p in args.paths.split(",") if p]
    if min(args.seconds, args.rounds, args.clients, args.workers, args.members) <= 0 or not paths \
            or set(paths) - set(PATHS):
        parser.error(f"counts and --seconds must be above 0; --paths of {', '.join(PATHS)}")

    with contextlib.ExitStack() as stack:
        _url, floor_url, env, payloads, _coupons = set_up(stack, "_paths", args.members, args.seed)
        floor_env = {**os.environ, "FLOOR_MODE": "txn", "FLOOR_DATABASE_URL": floor_url,
                     "FLOOR_MEMBERS": str(args.members)}
        floor_members = {i: f"member-{i}" for i in range(1, args.members + 1)}
        log = stack.enter_context(tempfile.NamedTemporaryFile("w+", prefix="crm_paths_", suffix=".log"))
        results = {}
        for path in paths:
            for rnd in range(1, args.rounds + 1):
                with gunicorn(floor_env, args.workers, log, app="floor_app:app", cwd=ROOT / "bench") as (port, _p):
                    floor = closed_loop(port, ["bench"] * args.clients, path, args.members, floor_members,
                                        args.seconds, args.warmup, args.seed + rnd)
                with gunicorn(env, args.workers, log) as (port, _p):
                    real = closed_loop(port, login_tokens(port, args.clients), path, args.members, payloads,
                                       args.seconds, args.warmup, args.seed + rnd)
                print(f"[{path} {rnd}] floor {floor['rate']:8,.1f}/s  real {real['rate']:8,.1f}/s  "
                      f"ratio {real['rate'] / floor['rate']:.3f}  errors {sum(floor['errors'].values())} / "
                      f"{sum(real['errors'].values())}", flush=True)
                results.setdefault(path, []).append((floor, real))
        audit = flask_cli(env, "crm", "audit", check=False)

        print(f"\nPaths beside their floors: gunicorn x{args.workers} (sync) on PostgreSQL, {args.members:,} members, "
              f"{os.cpu_count()} CPUs, {args.clients} closed-loop clients, {args.rounds} rounds of {args.seconds} s\n")
        for path, runs in results.items():
            ratios = [real["rate"] / floor["rate"] for floor, real in runs]
            ratio = statistics.median(ratios)
            print(f"  {path:<7} floor /s {spread([f['rate'] for f, _r in runs])}")
            print(f"          real /s  {spread([r['rate'] for _f, r in runs])}   p99 "
                  f"{statistics.median([r['p99'] for _f, r in runs]):.1f} ms")
            print(f"          real/floor {ratio:.2f}   (rounds: {', '.join(f'{x:.2f}' for x in ratios)}; "
                  f"within 2x of its floor: {'yes' if ratio >= 0.5 else 'NO'})")
            for (status, data), count in sum((r["errors"] for _f, r in runs), Counter()).most_common(5):
                print(f"          error: {count:,} x {status or 'no response'} {data!r}")
        print(f"\n  crm audit: exit status {audit.returncode}")
        for line in (audit.stdout + audit.stderr).strip().splitlines()[-5:]:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
