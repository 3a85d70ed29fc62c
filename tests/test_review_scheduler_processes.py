"""Adversarial review (issue 12), PostgreSQL only: real `crm scheduler` processes SIGKILLed
while a message is in the hands of the channel (the SMTP server or the SMS gateway has taken
it and not yet answered), with the rest of the claimed batch waiting behind it."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from crm.campaigns.models import Delivery
from crm.extensions import db
from tests.servers import free_port
from tests.test_campaign_sending import campaign
from tests.test_scheduler_faults import LEADING, Scheduler, _env, _wait

N = 6
HOLD_AT = 3  # the channel takes this message, then holds its answer until the sender is dead


class HoldingGateway:
    """An SMS gateway that delivers each Idempotency-Key once and holds its answer to the
    HOLD_AT-th request (taken: delivered) until `release` is set."""

    def __init__(self):
        self.delivered, self.requests, self.lock = {}, [], threading.Lock()
        self.holding, self.release = threading.Event(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                with outer.lock:
                    outer.requests.append(key)
                    outer.delivered.setdefault(key, body["to"])
                    hold = len(outer.requests) == HOLD_AT
                if hold:
                    outer.holding.set()
                    outer.release.wait(60)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class HoldingInbox:
    """An SMTP server that keeps every message it is given and holds its 250 to the HOLD_AT-th."""

    def __init__(self):
        self.messages, self.holding, self.release = [], threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        self.messages.append(envelope)
        if len(self.messages) == HOLD_AT:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return "250 OK"


@pytest.fixture
def pg_only(backend):
    if backend != "postgresql":
        pytest.skip("scheduler processes share a server database")


def _rows(app):
    with app.app_context():
        try:
            return db.session.execute(select(Delivery.channel, Delivery.address, Delivery.status)
                                      .order_by(Delivery.id)).all()
        finally:
            db.session.remove()


def test_review_schedulers_killed_while_the_channel_holds_a_message_lose_and_double_nothing(
        app, pg_only, login_api, member_factory, tmp_path):
    gateway, inbox = HoldingGateway(), HoldingInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    schedulers = []
    try:
        mobiles = []
        for i in range(N):
            m = member_factory(email=f"m{i}@example.com", marketing_consent={"sms": True, "email": True})
            mobiles.append(m["mobile"])
        env = _env(app, gateway, SCHEDULER_LEASE_SECONDS=3, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port,
                   MAIL_FROM="crm@example.com", EMAIL_RATE_LIMIT="100000/second")
        schedulers.append(Scheduler(env, tmp_path / "a.log"))
        _wait(lambda: LEADING.search(schedulers[0].text()), 60, "the first scheduler leads")
        schedulers.append(Scheduler(env, tmp_path / "b.log"))
        _wait(lambda: "standby" in schedulers[1].text(), 60, "the second scheduler waits as a standby")
        marketing = login_api("marketing")
        for channel in ("email", "sms"):
            campaign(marketing, channel=channel, schedule="once", send_at="2020-01-01T10:00:00+08:00",
                     marketing=False, subject="hi")

        # the leader is killed while the SMTP server holds its answer to the third email
        assert inbox.holding.wait(60), schedulers[0].text()[-2000:]
        schedulers[0].kill()
        inbox.release.set()
        # the standby takes over and is killed while the gateway holds its answer to the third SMS
        assert gateway.holding.wait(60), schedulers[1].text()[-2000:]
        assert LEADING.search(schedulers[1].text())
        schedulers[1].kill()
        gateway.release.set()
        schedulers.append(Scheduler(env, tmp_path / "c.log"))

        def settled():
            return not {"queued", "sending"} & {r.status for r in _rows(app)}
        _wait(settled, 90, "the third scheduler settled every delivery")
    finally:
        for s in schedulers:
            s.stop()
        smtp.stop()
        gateway.close()
    rows = _rows(app)
    emails = [(r.address, r.status) for r in rows if r.channel == "email"]
    sms = [r.status for r in rows if r.channel == "sms"]
    # the email the server took while its sender died may have arrived: `unknown`, not resent; the rest went
    assert [s for _, s in emails] == ["sent"] * (HOLD_AT - 1) + ["unknown"] + ["sent"] * (N - HOLD_AT), emails
    got = sorted(a for m in inbox.messages for a in m.rcpt_tos)
    assert got == sorted(f"m{i}@example.com" for i in range(N)), got  # each once
    # the SMS it took was sent again with its id and dropped by the gateway: every member got one
    assert sms == ["sent"] * N
    assert sorted(gateway.delivered.values()) == sorted(mobiles)
    assert len(gateway.requests) == N + 1 and len(set(gateway.requests)) == N
