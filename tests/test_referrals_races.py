"""Referral rewards under concurrency, with real threads (each a till or a manager on its own
connection): referees of one referrer closing their first bills at once never pass the
referrer's yearly cap and never deadlock (PostgreSQL's own deadlock count is checked); one
referee's bills at once, or one bill sent twice with one key, reward once; a void of the
qualifying bill racing the referee's next bill leaves every balance equal to its ledger."""
import time

import pytest
from sqlalchemy import text as sql

from crm.extensions import db
from crm.members import referrals
from tests.conftest import audit_problems
from tests.test_races import api_call, race
from tests.test_referrals import points_of, referee_of


@pytest.fixture
def rules(login_api):
    def set_rules(cap):
        r = login_api("admin").patch("/api/v1/programme", json={
            "referral_reward": "points", "referral_referrer_points": 100, "referral_referee_points": 50,
            "referral_min_spend": "50.00", "referral_yearly_cap": cap})
        assert r.status_code == 200, r.json
    return set_rules


def deadlocks(app, backend) -> int:
    """Deadlocks PostgreSQL has detected in this database so far (a deadlock retried by the unit of
    work would still answer 201, so the answers alone cannot tell). Backends report their
    statistics within a second, hence the wait."""
    if backend != "postgresql":
        return 0
    time.sleep(1.2)
    with app.app_context():
        db.session.execute(sql("SELECT pg_stat_clear_snapshot()"))
        n = db.session.execute(sql("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))
        value = n.scalar()
        db.session.rollback()
        return value


def bill(member_id, sku="SALMON"):
    return {"store_code": "BJ01", "member_id": member_id, "items": [{"sku": sku, "qty": 1}]}


def clean(app):
    assert audit_problems(app) == []
    with app.app_context():
        assert referrals.audit_mismatches() == []


def test_referees_closing_first_bills_at_once_never_pass_the_cap_nor_deadlock(app, backend, catalogue, member_factory,
                                                                            cashier, rules):
    rules(cap=2)
    a = member_factory()
    referees = [referee_of(member_factory, a) for _ in range(5)]
    before = deadlocks(app, backend)

    def close(i):  # five referees' first bills and the referrer's own bill, at once
        member_id = referees[i]["id"] if i < 5 else a["id"]
        return api_call(app, cashier.token, "POST", "/api/v1/checkouts", bill(member_id))
    results = race(6, close)
    assert [s for s, _c, _b in results] == [201] * 6, results
    assert points_of(cashier, a["id"]) == 2 * 100 + 6  # two rewards (cap 2) and the bill's own 6 points
    rewarded = [r for r in referees if points_of(cashier, r["id"]) == 6 + 50]
    assert len(rewarded) == 2
    assert cashier.get(f"/api/v1/members/{a['id']}/referrals").json["rewarded_this_year"] == 2
    assert deadlocks(app, backend) == before
    clean(app)


def test_one_referees_bills_at_once_and_one_key_twice_reward_once(app, backend, catalogue, member_factory, cashier,
                                                                  rules):
    rules(cap=0)  # no cap: only once-per-referee limits it
    a = member_factory()
    b, c = referee_of(member_factory, a), referee_of(member_factory, a)
    results = race(4, lambda i: api_call(app, cashier.token, "POST", "/api/v1/checkouts", bill(b["id"])))
    assert [s for s, _c, _b in results] == [201] * 4
    results = race(4, lambda i: api_call(app, cashier.token, "POST", "/api/v1/checkouts", bill(c["id"]),
                                         key="same-bill"))
    assert [s for s, _c, _b in results] == [201] * 4
    assert len({body["id"] for _s, _c, body in results}) == 1  # one bill, replayed
    assert points_of(cashier, a["id"]) == 200
    assert points_of(cashier, b["id"]) == 4 * 6 + 50 and points_of(cashier, c["id"]) == 6 + 50
    clean(app)


def test_void_of_the_qualifying_bill_racing_the_next_bill_keeps_ledgers_balanced(app, backend, catalogue,
                                                                                 member_factory, cashier, login_api,
                                                                                 rules):
    rules(cap=1)
    manager = login_api("manager").token
    a = member_factory()
    before = deadlocks(app, backend)
    for round_ in range(4):
        b = referee_of(member_factory, a)
        first = api_call(app, cashier.token, "POST", "/api/v1/checkouts", bill(b["id"]))
        assert first[0] == 201, first
        other = referee_of(member_factory, a)  # a second referee of a, closing too: the cap is 1

        def act(i, first=first, round_=round_, b=b, other=other):
            if i == 0:
                return api_call(app, manager, "POST", f"/api/v1/checkouts/{first[2]['id']}/void",
                                {"reason": f"round {round_}"})
            return api_call(app, cashier.token, "POST", "/api/v1/checkouts",
                            bill(b["id"] if i == 1 else other["id"]))
        results = race(3, act)
        assert [s for s, _c, _b in results] == [201] * 3, results
        clean(app)
        granted = cashier.get(f"/api/v1/members/{a['id']}/referrals").json
        standing = [r for r in granted["referees"] if r["reward"] and r["reward"]["status"] == "granted"]
        # Whatever the order: the void freed the slot (both closes first: nobody holds it; the void
        # first: one of the two took it), and the referrer holds exactly the standing rewards' points.
        assert len(standing) == granted["rewarded_this_year"] <= 1
        assert points_of(cashier, a["id"]) == 100 * len(standing)
        for row in standing:  # a clean slate for the next round
            assert api_call(app, manager, "POST", f"/api/v1/checkouts/{row['reward']['checkout_id']}/void",
                            {"reason": "reset"})[0] == 201
        assert points_of(cashier, a["id"]) == 0
    assert deadlocks(app, backend) == before
    clean(app)
