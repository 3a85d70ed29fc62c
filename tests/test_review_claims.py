"""Review of 63cc0e7: Idempotency-Key claimed by INSERT … ON CONFLICT DO NOTHING at the start
of the transaction and filled in at the end; hot-path statements built once (functools.cache).

A claim row (status 0, body '') must never be committed and replayed as an answer, twins must
wait for the first and then replay it, or run if the first failed, and a cached statement must
not freeze a value that varies per call."""
import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from crm.cards.models import Card, CardFee
from crm.core.idempotency import IdempotencyKey
from crm.errors import Invalid
from crm.extensions import db

CARD = {"store_code": "BJ01", "fee_paid": "20.00", "payment_method": "cash"}


def _keys(app):
    with app.app_context():
        return [tuple(r) for r in db.session.execute(
            select(IdempotencyKey.key, IdempotencyKey.status, IdempotencyKey.body)).all()]


def _count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _waiting_on_a_lock(app, at_least=1, timeout=10.0):
    """True once `at_least` backends wait on a heavyweight lock (a twin blocked on the key's index)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            n = db.session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND datname = current_database()"))
            db.session.rollback()
        if n >= at_least:
            return True
        time.sleep(0.05)
    return False


def _post_in_thread(app, token, path, body, key, out, name):
    def run():
        client = app.test_client()
        r = client.post(path, json=body, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
        out[name] = (r.status_code, r.get_data(as_text=True), r.headers.get("Idempotent-Replayed"))
    t = threading.Thread(target=run)
    t.start()
    return t


def _hold_first_call(monkeypatch, module, name, *, then=None):
    """Patch module.name so that its first call stops until released (then runs `then`, or the original)."""
    original = getattr(module, name)
    entered, release, calls = threading.Event(), threading.Event(), []

    def patched(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            assert release.wait(20)
            if then is not None:
                return then(original, *args, **kwargs)
        return original(*args, **kwargs)
    monkeypatch.setattr(module, name, patched)
    return entered, release


# --- A claim must never be committed unanswered ---------------------------------------------------

def test_wrong_current_pin_on_a_keyed_pin_change_leaves_no_unanswered_claim(app, member_factory, cashier):
    """PUT /wallet/pin is keyed (unit_of_work(idempotent=True)) and a wrong current PIN is a
    keep_work DomainError: the error handler commits the transaction — with the claim row in it
    (status 0, body ''). The retry with the right current PIN (PINs are not in the fingerprint)
    was then 'replayed' as a status-0 response with an empty body."""
    m = member_factory()
    path = f"/api/v1/members/{m['id']}/wallet/pin"
    assert cashier.put(path, json={"pin": "246810"}).status_code == 200
    key = {"Idempotency-Key": "pin-change-1"}
    wrong = cashier.put(path, json={"pin": "135790", "current_pin": "111111"}, headers=key)
    assert wrong.status_code == 422 and wrong.json["error"]["code"] == "wrong_pin"
    assert [k for k in _keys(app) if k[1] == 0] == []  # no claim committed without its answer
    right = cashier.put(path, json={"pin": "135790", "current_pin": "246810"}, headers=key)
    assert right.status_code == 200, (right.status_code, right.get_data(as_text=True))
    assert "Idempotent-Replayed" not in right.headers
    again = cashier.put(path, json={"pin": "135790", "current_pin": "246810"}, headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == right.json


def test_wrong_pin_at_the_till_leaves_no_unanswered_claim(app, catalogue, member_factory, cashier, checkout):
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    assert cashier.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "246810"}).status_code == 200
    wrong = checkout([("LOBSTER", 1)], key="till-pin", pin="135791", member_id=m["id"], wallet_amount="328.00")
    assert wrong.status_code == 422 and wrong.json["error"]["code"] == "wrong_pin"
    assert [k for k in _keys(app) if k[1] == 0] == []
    # the cashier gives up on the wallet and retries the same key with another body: a new request
    cash = checkout([("LOBSTER", 1)], key="till-pin", member_id=m["id"])
    assert cash.status_code == 201, (cash.status_code, cash.get_data(as_text=True))


# --- Twins on PostgreSQL ------------------------------------------------------------------------

@pytest.fixture
def pg(backend):
    if backend != "postgresql":
        pytest.skip("twins wait on the unique index on PostgreSQL only (SQLite runs one writer at a time)")


def test_twin_with_another_body_waits_for_the_first_and_is_refused(app, pg, member_factory, desk, monkeypatch):
    from crm.cards import service as cards
    m = member_factory()
    entered, release = _hold_first_call(monkeypatch, cards, "issue")
    out, path = {}, f"/api/v1/members/{m['id']}/cards"
    first = _post_in_thread(app, desk.token, path, CARD, "twin-other-body", out, "first")
    assert entered.wait(10)
    twin = _post_in_thread(app, desk.token, path, {**CARD, "payment_method": "wechat"}, "twin-other-body", out, "twin")
    assert _waiting_on_a_lock(app), "the twin should wait on the key's unique index"
    release.set()
    first.join(20), twin.join(20)
    assert out["first"][0] == 201, out
    assert out["twin"][0] == 422 and "idempotency_key_reused" in out["twin"][1], out
    assert _count(app, Card) == 1 and _count(app, CardFee) == 1


def test_twin_with_the_same_body_replays_the_first(app, pg, member_factory, desk, monkeypatch):
    from crm.cards import service as cards
    m = member_factory()
    entered, release = _hold_first_call(monkeypatch, cards, "issue")
    out, path = {}, f"/api/v1/members/{m['id']}/cards"
    first = _post_in_thread(app, desk.token, path, CARD, "twin-same", out, "first")
    assert entered.wait(10)
    twin = _post_in_thread(app, desk.token, path, CARD, "twin-same", out, "twin")
    assert _waiting_on_a_lock(app)
    release.set()
    first.join(20), twin.join(20)
    assert out["first"][0] == out["twin"][0] == 201, out
    assert out["twin"][1] == out["first"][1] and out["twin"][2] == "true"
    assert _count(app, Card) == 1


def test_twin_runs_when_the_first_fails_with_a_4xx(app, pg, member_factory, desk, monkeypatch):
    from crm.cards import service as cards

    def refuse(original, *args, **kwargs):
        raise Invalid("refused for the test", code="test_refused")
    m = member_factory()
    entered, release = _hold_first_call(monkeypatch, cards, "issue", then=refuse)
    out, path = {}, f"/api/v1/members/{m['id']}/cards"
    first = _post_in_thread(app, desk.token, path, CARD, "twin-after-fail", out, "first")
    assert entered.wait(10)
    twin = _post_in_thread(app, desk.token, path, CARD, "twin-after-fail", out, "twin")
    assert _waiting_on_a_lock(app)
    release.set()
    first.join(20), twin.join(20)
    assert out["first"][0] == 422 and "test_refused" in out["first"][1], out
    assert out["twin"][0] == 201 and out["twin"][2] is None, out  # ran, not a replay, not 409
    assert _count(app, Card) == 1 and [k[1] for k in _keys(app)] == [201]


def test_twin_runs_when_the_first_keeps_its_work(app, pg, catalogue, member_factory, cashier, monkeypatch):
    """The first request's wrong PIN is committed (keep_work) while its twin, with the right PIN
    and the same key, waits on the key: the twin must close the bill, not replay status 0."""
    from crm.wallet import service as wallet
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    assert cashier.put(f"/api/v1/members/{m['id']}/wallet/pin", json={"pin": "246810"}).status_code == 200
    entered, release = _hold_first_call(monkeypatch, wallet, "_count_failure")
    body = {"store_code": "BJ01", "items": [{"sku": "LOBSTER", "qty": 1}], "member_id": m["id"],
            "wallet_amount": "328.00"}
    out = {}
    path = "/api/v1/checkouts"
    first = _post_in_thread(app, cashier.token, path, {**body, "pin": "135791"}, "twin-pin", out, "first")
    assert entered.wait(10)
    twin = _post_in_thread(app, cashier.token, path, {**body, "pin": "246810"}, "twin-pin", out, "twin")
    assert _waiting_on_a_lock(app)
    release.set()
    first.join(20), twin.join(20)
    assert out["first"][0] == 422 and "wrong_pin" in out["first"][1], out
    assert out["twin"][0] == 201 and out["twin"][2] is None, out
    assert cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "672.00"


def test_twin_on_another_worker_replays_the_first(app, pg, second_worker, member_factory, desk, staff,
                                                   monkeypatch):
    from crm.cards import service as cards
    from tests.conftest import login_on
    m = member_factory()
    other = login_on(second_worker, staff["front_desk"])
    entered, release = _hold_first_call(monkeypatch, cards, "issue")
    out, path = {}, f"/api/v1/members/{m['id']}/cards"
    first = _post_in_thread(app, desk.token, path, CARD, "two-workers", out, "first")
    assert entered.wait(10)
    twin = _post_in_thread(second_worker, other.token, path, CARD, "two-workers", out, "twin")
    # a token belongs to one staff member whichever worker checks it: the same (staff, key)
    assert _waiting_on_a_lock(app)
    release.set()
    first.join(20), twin.join(20)
    assert out["first"][0] == out["twin"][0] == 201, out
    assert out["twin"][2] == "true" and out["twin"][1] == out["first"][1]
    assert _count(app, Card) == 1


# --- Retries, key shapes ------------------------------------------------------------------------

class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_deadlock_retry_claims_the_key_again_and_stores_the_answer(app, member_factory, issue_card, monkeypatch):
    from crm.cards import service as cards

    def deadlock(original, *args, **kwargs):
        raise OperationalError("UPDATE …", {}, _Deadlock("deadlock detected"))
    m = member_factory()
    entered, release = _hold_first_call(monkeypatch, cards, "issue", then=deadlock)
    release.set()
    r = issue_card(m["id"], key="after-deadlock")
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert _keys(app) == [("after-deadlock", 201, r.get_data(as_text=True))]
    again = issue_card(m["id"], key="after-deadlock")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true" and again.json == r.json
    assert _count(app, Card) == 1


def test_a_key_of_128_characters_is_claimed_and_replayed(app, member_factory, issue_card):
    m = member_factory()
    key = "k" * 127 + "é"  # 128 characters (more bytes)
    first = issue_card(m["id"], key=key)
    assert first.status_code == 201
    again = issue_card(m["id"], key=key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert issue_card(m["id"], key="k" * 129).status_code == 422


def test_the_same_key_from_two_staff_at_once_runs_twice(app, pg, member_factory, desk, login_api, monkeypatch):
    from crm.cards import service as cards
    m1, m2 = member_factory(), member_factory()
    manager = login_api("manager")
    entered, release = _hold_first_call(monkeypatch, cards, "issue")
    out = {}
    first = _post_in_thread(app, desk.token, f"/api/v1/members/{m1['id']}/cards", CARD, "shared", out, "first")
    assert entered.wait(10)
    other = _post_in_thread(app, manager.token, f"/api/v1/members/{m2['id']}/cards", CARD, "shared", out, "other")
    other.join(20)  # not blocked by the desk's claim: another caller's key
    release.set()
    first.join(20)
    assert out["first"][0] == out["other"][0] == 201 and out["other"][2] is None, out
    assert _count(app, Card) == 2


# --- Cached statements --------------------------------------------------------------------------

def test_cached_account_lock_takes_now_per_call_and_sets_nothing_else(app, member_factory, cashier, clock):
    from crm.core import ledger
    from crm.wallet.models import WalletAccount
    m = member_factory()
    cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                 json={"store_code": "BJ01", "amount": "100.00", "payment_method": "cash"})
    seen = []
    for _ in range(2):
        clock.advance(minutes=5)
        with app.app_context():
            accounts = ledger.lock_members_accounts(WalletAccount, m["id"])
            seen.append({a.kind: (a.balance, a.updated_at) for a in accounts})
            db.session.commit()
    assert seen[0]["principal"][0] == seen[1]["principal"][0] == 10000
    assert seen[0]["principal"][1] < seen[1]["principal"][1]  # `now` is a parameter, not frozen


def test_cached_available_points_reads_now_per_call(app, member_factory, give_points, clock):
    from datetime import timedelta

    from crm.points import service as points
    m = member_factory()
    give_points(m["id"], 500)
    with app.app_context():
        far = clock.now() + timedelta(days=3650)
        assert points.available(m["id"]) == 500
        lots = points.open_lots(m["id"])
        expiring = [x.expires_at for x in (lots.all() if hasattr(lots, "all") else lots) if x.expires_at]
        if expiring:
            assert points.available(m["id"], far) == 0  # the later `now` counts the lot as past expiry
        assert points.available(m["id"]) == 500


def test_twin_runs_when_the_first_raises(app, pg, member_factory, desk, monkeypatch):
    """An unexpected exception (a 500) rolls the first back at teardown: the twin then runs."""
    from crm.cards import service as cards

    def crash(original, *args, **kwargs):
        raise RuntimeError("boom for the test")
    m = member_factory()
    entered, release = _hold_first_call(monkeypatch, cards, "issue", then=crash)
    out, path = {}, f"/api/v1/members/{m['id']}/cards"

    def first_call():
        try:
            r = app.test_client().post(path, json=CARD, headers={"Authorization": f"Bearer {desk.token}",
                                                                 "Idempotency-Key": "after-crash"})
            out["first"] = (r.status_code, r.get_data(as_text=True), None)
        except RuntimeError:
            out["first"] = (500, "raised", None)
    first = threading.Thread(target=first_call)
    first.start()
    assert entered.wait(10)
    twin = _post_in_thread(app, desk.token, path, CARD, "after-crash", out, "twin")
    assert _waiting_on_a_lock(app)
    release.set()
    first.join(20), twin.join(20)
    assert out["first"][0] == 500, out
    assert out["twin"][0] == 201 and out["twin"][2] is None, out
    assert _count(app, Card) == 1 and [k[1] for k in _keys(app)] == [201]


def test_a_key_pruned_between_claim_and_replay_is_claimed_again(app, pg, member_factory, issue_card, monkeypatch):
    """A claim refused by a row that is gone by the time it is read is claimed again and the
    request runs (it used to answer 409 concurrent_change without running). Here
    the row goes as `crm prune` (another process) would delete an expired key at that moment
    (PostgreSQL: on SQLite the request's BEGIN IMMEDIATE keeps the pruner out)."""
    from crm.core import idempotency
    m = member_factory()
    assert issue_card(m["id"], key="pruned").status_code == 201
    original, calls = idempotency._replay, []

    def pruned_meanwhile(staff_id, key, req_hash):
        calls.append(key)
        if len(calls) == 1:
            with db.engine.begin() as conn:  # another connection: the pruning process
                conn.execute(IdempotencyKey.__table__.delete())
        return original(staff_id, key, req_hash)
    monkeypatch.setattr(idempotency, "_replay", pruned_meanwhile)
    r = issue_card(m["id"], key="pruned")
    assert calls, "the claim should have been refused by the stored key"
    # Ran again, as a new request: the member has the card the first request issued.
    assert r.status_code == 409 and r.json["error"]["code"] == "card_exists", (r.status_code, r.json)
