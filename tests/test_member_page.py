"""The member page as the front desk uses it (issue 13): one history of bills, points, stored
value, coupons and card events that answers "where did my points go?", filtered and paged;
a manager's points adjustment with a reason; the outcome of a top-up, a draw or a card
action shown next to the form that acted; a mistyped card number called a typo."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEntry
from crm.extensions import db
from crm.members import history
from crm.points import service as points
from tests.conftest import SYSTEM, in_app
from tests.test_ui import text, ui_login


def _rows(page: str) -> list[tuple[str, str]]:
    """(kind, event) of each history row, top to bottom."""
    return re.findall(r'<tr class="history-\w+" data-kind="(\w+)" data-event="(\w+)">', page)


def _section(page: str, section_id: str) -> str:
    return re.search(rf'<section class="card" id="{section_id}">(.*?)</section>', page, re.S)[1]


@pytest.fixture
def busy_member(member_factory, issue_card, give_points, catalogue, checkout, cashier, clock):
    """A member with a card, an opening balance, a bill that redeemed and earned points, and a top-up,
    a minute apart each, so the history has one of each in a known order."""
    m = member_factory(name="王芳")
    card = issue_card(m["id"]).json
    clock.advance(minutes=1)
    give_points(m["id"], 500, reason="moved from the old system")
    clock.advance(minutes=1)
    bill = checkout([("SALMON", 2)], card_code=card["qr_payload"], redeem_points=100)
    assert bill.status_code == 201, bill.json
    clock.advance(minutes=1)
    r = cashier.post(f"/api/v1/members/{m['id']}/wallet/top-ups",
                     json={"store_code": "BJ01", "amount": "1000.00", "payment_method": "cash"})
    assert r.status_code == 201, r.json
    return {**m, "card": card, "bill": bill.json}


def test_history_shows_where_the_points_went_newest_first(app, staff, busy_member):
    ui = ui_login(app, "frontdesk", lang="en")
    page = text(ui.get(f"/members/{busy_member['id']}"))
    history_html = _section(page, "history")
    rows = _rows(history_html)
    # Newest first: the top-up, then the bill with its points, then the manager's opening balance, then the card.
    assert rows[0] == ("wallet", "topup")
    assert ("points", "redeem") in rows and ("points", "earn") in rows and ("bill", "closed") in rows
    assert rows.index(("bill", "closed")) < rows.index(("points", "adjust")) < rows.index(("card", "issue"))
    assert rows[-1] == ("card", "issue")
    redeem = re.search(r'data-event="redeem">(.*?)</tr>', history_html, re.S)[1]
    assert "−100" in redeem or "-100" in redeem
    assert f"Bill #{busy_member['bill']['id']}" in redeem  # which bill took them
    adjust = re.search(r'data-event="adjust">(.*?)</tr>', history_html, re.S)[1]
    assert "+500" in adjust and "moved from the old system" in adjust and "Points adjusted by a manager" in adjust


def test_history_pages_are_exact_across_sources(app, staff, busy_member, give_points, clock):
    clock.freeze()  # more events than one page holds, all at one instant: ties must page stably too
    for n in range(17):
        give_points(busy_member["id"], n + 1, reason=f"goodwill {n}")
    with app.app_context():
        everything, total = history.page(busy_member["id"], per_page=100)
        assert total == len(everything) >= 23
        paged, seen_total = [], None
        for page_no in range(1, 10):
            events, seen_total = history.page(busy_member["id"], page_no=page_no, per_page=4)
            paged += events
            if not events:
                break
        keys = [(e.kind, e.event, e.obj.id) for e in paged]
        assert keys == [(e.kind, e.event, e.obj.id) for e in everything]  # no row lost or shown twice
        assert seen_total == total
        times = [e.at for e in everything]
        assert times == sorted(times, reverse=True)
    ui = ui_login(app, "frontdesk", lang="en")
    first = text(ui.get(f"/members/{busy_member['id']}"))
    assert f"{total} events" in first and 'rel="next"' in first
    older = re.search(r'rel="next" href="([^"]+)"', first)[1].replace("&amp;", "&")
    assert older.endswith("#history")
    second = text(ui.get(older))
    assert 'rel="prev"' in second and len(_rows(_section(second, "history"))) == total - 20


def test_history_filters_by_kind_and_by_date(app, staff, busy_member, clock):
    clock.advance(days=3)  # the API token has expired by then: adjust as the system does
    in_app(app, points.adjust, SYSTEM, busy_member["id"], 30, "three days later")
    today = clock.local_now().date()
    ui = ui_login(app, "frontdesk", lang="en")
    url = f"/members/{busy_member['id']}"
    points_only = _rows(_section(text(ui.get(url, query_string={"kind": "points"})), "history"))
    assert points_only and {kind for kind, _event in points_only} == {"points"}
    just_today = _section(text(ui.get(url, query_string={"from": today.isoformat(), "to": today.isoformat()})),
                          "history")
    assert _rows(just_today) == [("points", "adjust")] and "three days later" in just_today
    before = _rows(_section(text(ui.get(url, query_string={"to": (today - timedelta(days=1)).isoformat()})),
                            "history"))
    assert ("points", "adjust") in before and len(before) > 1 and "three days later" not in str(before)
    bad = ui.get(url, query_string={"from": "2026-13-45", "kind": "nonsense"})
    assert bad.status_code == 200
    assert 'id="history-e-from">Give a date as YYYY-MM-DD.<' in text(bad)


def test_manager_adjusts_points_with_a_reason_and_sees_it_at_once(app, staff, member_factory, login_api):
    m = member_factory()
    manager = ui_login(app, "manager", lang="en")
    page = text(manager.get(f"/members/{m['id']}"))
    assert f'action="/members/{m["id"]}/points/adjust"' in page
    url = f"/members/{m['id']}/points/adjust"
    no_reason = manager.post(url, {"points": "200", "reason": "  ", "store_code": "BJ01"})
    assert no_reason.status_code == 422
    assert re.search(r'id="adjust-e-reason">Give a reason for the adjustment\.<', text(no_reason))
    assert 'id="adjust-points" name="points" inputmode="numeric" required value="200"' in text(no_reason)  # kept
    done = manager.post(url, {"points": "+200", "reason": "complaint about slow service", "store_code": "BJ01"})
    assert done.status_code == 302 and done.location.endswith(f"/members/{m['id']}#wallet")
    wallet = _section(text(manager.get(done.location)), "wallet")
    assert 'id="wallet-notice">Points adjusted by +200.<' in wallet and 'id="points-available">200<' in wallet
    taken = manager.post(url, {"points": "-50", "reason": "double counted", "store_code": "BJ01"})
    assert taken.status_code == 302
    manager.get(taken.location)  # the page again, with a fresh form
    assert login_api("manager").get(f"/api/v1/members/{m['id']}/points").json["balance"] == 150
    too_many = manager.post(url, {"points": "-999", "reason": "typo", "store_code": "BJ01"})
    assert too_many.status_code == 422 and "Not enough points: 150 available." in text(too_many)
    with app.app_context():
        audited = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "points.adjust")
                                     .order_by(AuditEntry.id)).all()
        assert [(a.username, a.details["points"], a.details["reason"]) for a in audited] == [
            ("manager", 200, "complaint about slow service"), ("manager", -50, "double counted")]
    # The front desk neither sees the form nor may send it.
    desk = ui_login(app, "frontdesk", lang="en")
    assert "/points/adjust" not in text(desk.get(f"/members/{m['id']}"))
    assert desk.post(url, {"points": "100000", "reason": "me"}).status_code == 403


def test_top_up_and_draw_outcomes_show_next_to_their_forms(app, staff, member_factory):
    m = member_factory()
    ui = ui_login(app, "cashier", lang="en")
    ui.get(f"/members/{m['id']}")
    ui.post(f"/members/{m['id']}/wallet/top-up", {"amount": "500", "store_code": "BJ01", "payment_method": "cash"})
    done = ui.post(f"/members/{m['id']}/wallet/top-up", {"amount": "500", "store_code": "BJ01",
                                                         "payment_method": "cash", "action": "confirm"})
    assert done.status_code == 302 and done.location.endswith("#wallet")
    page = text(ui.get(done.location))
    wallet = _section(page, "wallet")
    assert re.search(r'id="wallet-notice">Topped up 500\.00; bonus [0-9.]+\.<', wallet)
    # Not at the top of the page, where the jump to #wallet would scroll it away.
    assert page.index('id="wallet-notice"') > page.index('<section class="card" id="wallet">')
    assert "Topped up" not in page[:page.index('<section class="card" id="wallet">')]
    # Shown once: a reload does not repeat it.
    assert "Topped up" not in text(ui.get(done.location))
    bad = ui.post(f"/members/{m['id']}/wallet/top-up", {"amount": "abc", "store_code": "BJ01",
                                                        "payment_method": "cash"})
    assert bad.location.endswith("#wallet")
    assert 'id="wallet-notice"' in _section(text(ui.get(bad.location)), "wallet")


def test_card_action_outcome_and_confirmation_without_javascript(app, staff, member_factory, issue_card, login_api):
    m = member_factory()
    card_no = issue_card(m["id"]).json["card_no"]
    ui = ui_login(app, "frontdesk", lang="en")
    page = text(ui.get(f"/members/{m['id']}"))
    # The freeze and lost forms ask with a dialog when JS runs, and tell the server it was answered.
    assert page.count('data-confirm-field="confirmed"') == 2
    asked = ui.post(f"/cards/{card_no}/lost")
    assert asked.status_code == 200
    assert "Report card" in text(asked) and "lost?" in text(asked) and "Yes, report it lost" in text(asked)
    assert login_api("front_desk").get(f"/api/v1/cards/{card_no}").json["status"] == "active"  # nothing yet
    done = ui.post(f"/cards/{card_no}/lost", {"confirmed": "1", "reason": "left in a taxi"})
    assert done.status_code == 302 and done.location.endswith("#cards")
    cards = _section(text(ui.get(done.location)), "cards")
    assert 'id="cards-notice">Card reported lost.<' in cards
    assert login_api("front_desk").get(f"/api/v1/cards/{card_no}").json["status"] == "lost"
    # The history names the card event and its reason.
    history_html = _section(text(ui.get(f"/members/{m['id']}", query_string={"kind": "card"})), "history")
    assert _rows(history_html) == [("card", "lost"), ("card", "issue")] and "left in a taxi" in history_html


def _mistype(card_no: str) -> str:
    return card_no[:-1] + str((int(card_no[-1]) + 1) % 10)


def test_a_mistyped_card_number_says_check_digit_not_no_member(app, staff, member_factory, issue_card, cashier):
    m = member_factory()
    card_no = issue_card(m["id"]).json["card_no"]
    ui = ui_login(app, "frontdesk", lang="en")
    typo = text(ui.get("/", query_string={"q": _mistype(card_no)}))
    assert "Check digit wrong — mistyped?" in typo and "No member matches" not in typo
    spaced = text(ui.get("/", query_string={"q": " ".join([card_no[:4], card_no[4:8], card_no[8:12],
                                                           _mistype(card_no)[12:]])}))
    assert "Check digit wrong — mistyped?" in spaced
    assert ui.get("/", query_string={"q": card_no}).status_code == 302  # the right number still jumps there
    # The till's scan says the same.
    r = cashier.post("/api/v1/cards/scan", json={"code": _mistype(card_no)})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_code"
    assert "Check digit wrong" in r.json["error"]["message"]
    forged = cashier.post("/api/v1/cards/scan", json={"code": "CRM1.8600000000000000.AAAA"})
    assert forged.status_code == 422 and "Check digit" not in forged.json["error"]["message"]


def test_lucky_draw_prize_shows_next_to_the_coupons(app, staff, catalogue, member_factory, checkout):
    egg = {"code": "EGG", "name": "红鸡蛋", "kind": "gift"}
    assert catalogue.post("/api/v1/coupon-types", json=egg).status_code == 201
    assert catalogue.post("/api/v1/draw-prizes", json={"name": "红鸡蛋一枚", "coupon_type": "EGG", "weight": 1,
                                                       "stock": 3}).status_code == 201
    m = member_factory()
    assert checkout([("LOBSTER", 1)], member_id=m["id"]).status_code == 201  # a bill that earns a draw
    ui = ui_login(app, "cashier", lang="en")
    ui.get(f"/members/{m['id']}")
    done = ui.post(f"/members/{m['id']}/draw")
    assert done.status_code == 302 and done.location.endswith("#coupons")
    coupons = _section(text(ui.get(done.location)), "coupons")
    assert 'id="coupons-notice">Prize: 红鸡蛋一枚 — issued as a coupon.<' in coupons and "红鸡蛋" in coupons


def test_a_page_past_the_end_of_the_history_links_back_to_the_newest(app, staff, member_factory, give_points):
    m = member_factory()
    give_points(m["id"], 10)
    ui = ui_login(app, "frontdesk", lang="en")
    history_html = _section(text(ui.get(f"/members/{m['id']}", query_string={"page": 9, "kind": "points"})), "history")
    assert _rows(history_html) == [] and "past the end of the history" in history_html
    assert f'href="/members/{m["id"]}?kind=points' in history_html
