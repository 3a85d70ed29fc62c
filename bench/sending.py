"""Sending: how fast the scheduler empties an SMS outbox, against a floor measured in the same run.

Loads N members (default 5,000, all agreeing to SMS), fans a once SMS campaign out to them
through the scheduler's own code, then times `dispatch` (what every tick runs) sending them
all to a loopback HTTP gateway, with the throttle lifted (SMS_RATE_LIMIT). It counts the SQL
statements per message.

The floor, measured in the same run, is what each message cannot do without: the same POST to
the same gateway from the same urllib code, then one bare UPDATE of its delivery row and a
COMMIT on a raw driver connection (a result must be durable before the next message goes, or
a crash could not tell sent from unsent). Goal: sending >= 0.5 x that floor, i.e. claiming,
fencing, consent checks and SQLAlchemy together cost no more than the floor itself.

Run from the repo root:
    make bench-sending                      # = .venv/bin/python bench/sending.py
    .venv/bin/python bench/sending.py --members 2000 --db postgresql
"""
import argparse
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaigns import DAY, MEMBER_COLS, POINTS_COLS, member_rows, points_rows  # noqa: E402
from lookup import bulk_load, scratch_database  # noqa: E402
from sqlalchemy import event, func, select  # noqa: E402

from crm import create_app  # noqa: E402
from crm.campaigns import jobs, messages  # noqa: E402
from crm.campaigns import service as campaigns  # noqa: E402
from crm.campaigns.dispatch import dispatch  # noqa: E402
from crm.campaigns.models import Delivery  # noqa: E402
from crm.core.actor import Actor  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.members.levels import entry_level  # noqa: E402
from crm.stores import service as stores  # noqa: E402

GOAL_RATIO = 0.5


class Gateway:
    """A loopback SMS gateway that counts distinct Idempotency-Keys."""

    def __init__(self):
        self.keys, self.lock = set(), threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.keys.add(self.headers.get("Idempotency-Key"))
                self.send_response(200)
                self.send_header("Content-Length", "12")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def floor(url, n, backend):
    """n POSTs like the SMS adapter's, each followed by a bare UPDATE + COMMIT of one delivery
    row on a raw driver connection: messages/s."""
    mark = "?" if backend == "sqlite" else "%s"
    ids = db.session.scalars(select(Delivery.id).order_by(Delivery.id).limit(n)).all()
    db.session.remove()
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        t0 = time.perf_counter()
        for i, delivery_id in enumerate(ids):
            payload = json.dumps({"to": f"13{i:09d}", "text": "您好", "sender": ""}).encode()
            req = urllib.request.Request(url, data=payload, method="POST", headers={
                "Content-Type": "application/json", "Authorization": "Bearer x", "Idempotency-Key": f"floor-{i}"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
            cur.execute(f"UPDATE deliveries SET attempts = attempts + 1 WHERE id = {mark}", (delivery_id,))
            raw.commit()
        return len(ids) / (time.perf_counter() - t0)
    finally:
        raw.close()


def run(backend, n):
    url, drop = scratch_database(backend)
    gateway = Gateway()
    app = create_app("config.Config", SQLALCHEMY_DATABASE_URI=url, CRM_ENV="development", SMS_GATEWAY_URL=gateway.url,
                     SMS_RATE_LIMIT="1000000/second", SCHEDULER_CATCH_UP_DAYS=0)
    try:
        with app.app_context():
            db.create_all()
            system = Actor.system("bench")
            store = stores.create_store(system, code="BENCH01", name="Bench store", kind="restaurant")
            level_id, store_id = entry_level().id, store.id
            db.session.commit()
            rows = lambda stamp: ((*r[:10], True, *r[11:]) for r in member_rows(n, level_id, store_id, stamp))  # noqa: E731
            bulk_load(backend, [("members", MEMBER_COLS, rows), ("points_accounts", POINTS_COLS,
                                                                  lambda stamp: points_rows(n, stamp))])
            body = "{{ name }}{{ title }}，您好！欢迎光临{{ store }}。"
            template = messages.save(system, {"name": "bench", "body": body})
            audience = campaigns.audiences.save(system, {"name": "bench", "filters": {"consent": "sms"}})
            once = campaigns.save(system, {"name": "bench", "template_id": template.id, "audience_id": audience.id,
                                           "channel": "sms", "schedule": "once", "send_at": DAY, "marketing": False})
            campaigns.transition(system, once, "schedule")
            db.session.commit()
            queued = jobs.run_campaigns(DAY)
            assert queued == n, (queued, n)
            db.session.remove()

            statements = [0]
            listener = lambda *args: statements.__setitem__(0, statements[0] + 1)  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            t0 = time.perf_counter()
            outcome = dispatch(DAY, commit=db.session.commit, budget_seconds=600)
            seconds = time.perf_counter() - t0
            event.remove(db.engine, "before_cursor_execute", listener)
            sent = db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent"))
            assert outcome["sent"] == sent == n == len(gateway.keys), (outcome, sent, n, len(gateway.keys))
            return n / seconds, statements[0] / n, floor(gateway.url, n, backend)
    finally:
        gateway.close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    print(f"\nSending {args.members:,} SMS through dispatch to a loopback gateway (throttle lifted)\n")
    head = f"{'database':<11} {'sent/s':>8} {'floor/s':>8} {'ratio':>6} {'SQL/msg':>8}  goal"
    print(head)
    print("-" * len(head))
    for backend in (("sqlite", "postgresql") if args.db == "both" else (args.db,)):
        rate, per_message, floor_rate = run(backend, args.members)
        ratio = rate / floor_rate
        print(f"{backend:<11} {rate:>8,.0f} {floor_rate:>8,.0f} {ratio:>6.2f} {per_message:>8.1f}  "
              f">= {GOAL_RATIO} x floor: {'met' if ratio >= GOAL_RATIO else 'NOT met'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
