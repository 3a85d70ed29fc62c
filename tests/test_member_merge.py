"""Merging a duplicate member into a survivor (issue 16, members/merge.py): what moves, the
tombstone, a void of a moved bill, duplicate suggestions, who may merge, and races."""
import pytest

from crm.extensions import db
from tests.conftest import audit_problems
from tests.test_coupons import coupon_types, give_coupon  # noqa: F401 (fixtures)
from tests.test_races import api_call, queued_in_order, race
from tests.test_ui import ui_login


def _top_up(cashier, member_id, amount):
    r = cashier.post(f"/api/v1/members/{member_id}/wallet/top-ups",
                     json={"store_code": "BJ01", "amount": amount, "payment_method": "cash"})
    assert r.status_code == 201, r.json


def _balances(api, member_id):
    w = api.get(f"/api/v1/members/{member_id}/wallet").json
    return api.get(f"/api/v1/members/{member_id}/points").json["balance"], w["principal"], w["bonus"]


def _merge(api, into_id, from_id, reason="same guest, two cards", **fields):
    return api.post(f"/api/v1/members/{into_id}/merge",
                    json={"from_member_id": from_id, "reason": reason, "fields": fields})


@pytest.fixture
def pair(app, coupon_types, member_factory, give_points, give_coupon, checkout, cashier):  # noqa: F811
    """A (survivor): 100 points, 1,000.00 principal, coupon OFF12. B (duplicate): 50 points,
    5,000.00 + 600.00 bonus, coupons CASH50 (used on bill X) and EGG, and bill X:
    lobster 328 + tea 20 = 348, −50 CASH50 = 298, −20 points (20.00) = 278 from stored value:
    bonus 278 × 600 / 5600 = 29.79, principal 248.21; 24 points earned on the principal."""
    a = member_factory(name="王芳", email="wang@example.com")
    b = member_factory(name="王芳")
    give_points(a["id"], 100)
    give_points(b["id"], 50)
    _top_up(cashier, a["id"], "1000.00")
    _top_up(cashier, b["id"], "5000.00")
    off12 = give_coupon(a["id"], "OFF12").json["code"]
    cash50 = give_coupon(b["id"], "CASH50").json["code"]
    egg = give_coupon(b["id"], "EGG").json["code"]
    bill = checkout([("LOBSTER", 1), ("TEA", 1)], member_id=b["id"], coupon_codes=[cash50], redeem_points=20,
                    wallet_amount="278.00")
    assert bill.status_code == 201, bill.json
    assert (bill.json["wallet_principal"], bill.json["wallet_bonus"], bill.json["points_earned"]) == (
        "248.21", "29.79", 24)
    assert _balances(cashier, b["id"]) == (54, "4751.79", "570.21")
    return {"a": a, "b": b, "bill": bill.json, "coupons": {"OFF12": off12, "CASH50": cash50, "EGG": egg}}


def test_merge_moves_everything_and_a_void_of_a_moved_bill_lands_on_the_survivor(app, pair, login_api, cashier,
                                                                                  give_coupon):  # noqa: F811
    manager = login_api("manager")
    a, b = pair["a"]["id"], pair["b"]["id"]
    r = _merge(manager, a, b)
    assert r.status_code == 200, r.json
    assert r.json["moved"]["points"] == 54 and r.json["moved"]["principal"] == "4751.79"
    assert r.json["moved"]["checkouts"] == [pair["bill"]["id"]]
    # A holds both members' value; B holds nothing.
    assert _balances(cashier, a) == (154, "5751.79", "570.21")
    assert _balances(cashier, b) == (0, "0.00", "0.00")
    assert audit_problems(app) == []
    # Both lots of B moved with their expiry: A has its own 100 and B's 30 (adjust) and 24 (earned).
    lots = manager.get(f"/api/v1/members/{a}/points").json["lots"]
    assert sorted(lot["remaining"] for lot in lots) == [24, 30, 100]
    coupons = {c["code"]: c for c in manager.get(f"/api/v1/members/{a}/coupons").json}
    assert {pair["coupons"]["OFF12"], pair["coupons"]["EGG"]} <= set(coupons)
    # The bill appears under the survivor.
    bills = manager.get(f"/api/v1/checkouts?member_id={a}").json
    assert pair["bill"]["id"] in [x["id"] for x in bills["items"]]
    # B is a tombstone naming A.
    gone = manager.get(f"/api/v1/members/{b}")
    assert gone.status_code == 410 and gone.json["error"]["code"] == "member_merged"
    assert gone.json["error"]["details"]["survivor_id"] == a
    r = manager.patch(f"/api/v1/members/{b}", json={"name": "改名"})
    assert r.status_code == 409 and r.json["error"]["code"] == "member_merged"
    # Nothing more is given to the tombstone by hand.
    r = manager.post(f"/api/v1/members/{b}/points/adjustments", json={"points": 10, "reason": "goodwill"})
    assert r.status_code == 409 and r.json["error"]["code"] == "member_merged"
    r = give_coupon(b, "EGG")
    assert r.status_code == 409 and r.json["error"]["code"] == "member_merged"

    # Void the moved bill: 20 points and 278.00 (248.21 principal, 29.79 bonus) come back to A,
    # the 24 earned points are taken from A, and CASH50 is A's to use again.
    v = manager.post(f"/api/v1/checkouts/{pair['bill']['id']}/void", json={"reason": "wrong table"})
    assert v.status_code == 201, v.json
    assert (v.json["points_restored"], v.json["points_reclaimed"], v.json["wallet_restored"]) == (20, 24, "278.00")
    assert _balances(cashier, a) == (100 + 50, "6000.00", "600.00")  # 154 + 20 − 24; 5751.79 + 248.21; + 29.79
    assert _balances(cashier, b) == (0, "0.00", "0.00")
    cash50 = manager.get(f"/api/v1/coupons/{pair['coupons']['CASH50']}").json
    assert (cash50["status"], cash50["member_id"]) == ("issued", a)
    assert audit_problems(app) == []
    ran = app.test_cli_runner().invoke(args=["crm", "audit"])  # the whole `crm audit`, referrals included
    assert ran.exit_code == 0 and "All ledgers balance." in ran.output, ran.output
    with app.app_context():
        from crm.core.audit import AuditEntry
        row = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "member.merge"))
        assert row.details["reason"] == "same guest, two cards" and row.details["from_member_id"] == b


def test_the_survivor_keeps_the_chosen_fields_and_the_duplicates_card(app, member_factory, issue_card, login_api,
                                                                     catalogue, checkout):
    manager = login_api("manager")
    a = member_factory(name="王芳", email="old@example.com")
    b = member_factory(name="王 芳", email="new@example.com", birthday="1990-05-01")
    issue_card(a["id"])
    card_b = issue_card(b["id"]).json
    r = _merge(manager, a["id"], b["id"], email="from", birthday="from", mobile="from")
    assert r.status_code == 200, r.json
    assert r.json["moved"]["card"]["moved"] is False  # A has a live card: B's stays live on the tombstone
    now = manager.get(f"/api/v1/members/{a['id']}").json
    assert (now["name"], now["email"], now["birthday"], now["mobile"]) == (
        "王芳", "new@example.com", "1990-05-01", b["mobile"])
    # B is found by no search, but its card (and its old mobile, now A's) find A.
    assert manager.get("/api/v1/members", query_string={"q": "王 芳"}).json["total"] == 0
    found = manager.get("/api/v1/members", query_string={"q": card_b["card_no"]}).json["items"]
    assert [m["id"] for m in found] == [a["id"]]
    scanned = login_api("cashier").post("/api/v1/cards/scan", json={"code": card_b["card_no"]}).json
    assert scanned["id"] == a["id"]
    # A bill on B's card lands on A; one naming B by id is refused.
    bill = checkout([("TEA", 1)], card_code=card_b["card_no"])
    assert bill.status_code == 201 and bill.json["member_id"] == a["id"], bill.json
    refused = checkout([("TEA", 1)], member_id=b["id"])
    assert refused.status_code == 409 and refused.json["error"]["code"] == "member_merged"


def test_who_may_merge_and_what_cannot_be_merged(member_factory, login_api):
    manager = login_api("manager")
    a, b, c = member_factory(), member_factory(), member_factory()
    for role in ("front_desk", "cashier", "marketing"):
        assert _merge(login_api(role), a["id"], b["id"]).status_code == 403
    r = _merge(manager, a["id"], b["id"], reason=" ")
    assert r.status_code == 422 and r.json["error"]["code"] == "reason_required"
    r = _merge(manager, a["id"], a["id"])
    assert r.status_code == 422 and r.json["error"]["code"] == "merge_same_member"
    assert _merge(manager, a["id"], b["id"]).status_code == 200
    r = _merge(manager, b["id"], c["id"])  # into the tombstone
    assert r.status_code == 409 and r.json["error"]["code"] == "member_merged"
    r = _merge(manager, c["id"], b["id"])  # the tombstone again
    assert r.status_code == 409 and r.json["error"]["code"] == "already_merged"
    # The tombstone's referral code refers new guests to the survivor.
    code = manager.get(f"/api/v1/members/{a['id']}/referrals").json["referral_code"]
    tomb_code = login_api("front_desk").get(f"/api/v1/members/{b['id']}/referrals").json["referral_code"]
    assert code != tomb_code
    d = member_factory(referral_code=tomb_code)
    assert manager.get(f"/api/v1/members/{d['id']}/referrals").json["referred_by"]["id"] == a["id"]
    # A later merge of the survivor carries the older tombstone with it.
    assert _merge(manager, c["id"], a["id"]).status_code == 200
    assert manager.get(f"/api/v1/members/{b['id']}").json["error"]["details"]["survivor_id"] == c["id"]


def test_duplicate_suggestions_by_each_rule(app, member_factory, login_api):
    manager = login_api("manager")
    m = member_factory(name="李雷", birthday="1988-03-01", email="Li.Lei@Example.com", mobile="13912345678")
    twin = member_factory(name="李雷", birthday="1988-03-01")
    other_year = member_factory(name="李雷", birthday="1989-03-01")
    mail = member_factory(name="L. Lei", email="li.lei@example.com")
    with app.app_context():  # a legacy row kept the number as it was typed
        from crm.members.models import Member
        legacy = Member(name="Lei Li", mobile="+86 139 1234 5678", mobile_last4="5678", level_id=1,
                        store_id=db.session.scalar(db.select(Member.store_id).limit(1)))
        db.session.add(legacy)
        db.session.commit()
        legacy_id = legacy.id
    found = {d["id"]: d["reasons"] for d in manager.get(f"/api/v1/members/{m['id']}/duplicates").json}
    assert found == {twin["id"]: ["name_birthday"], mail["id"]: ["email"], legacy_id: ["mobile"]}
    assert other_year["id"] not in found
    assert _merge(manager, m["id"], twin["id"]).status_code == 200  # a tombstone is not suggested
    assert twin["id"] not in {d["id"] for d in manager.get(f"/api/v1/members/{m['id']}/duplicates").json}


@pytest.mark.parametrize("what", ["bill", "top_up", "void"])
def test_a_merge_racing_a_bill_top_up_or_void_of_the_duplicate_never_loses_or_doubles_value(
        app, backend, catalogue, member_factory, give_points, cashier, login_api, what):
    if backend != "postgresql":
        pytest.skip("row locks race on PostgreSQL; SQLite serialises writers")
    manager = login_api("manager")
    for _round in range(3):
        a, b = member_factory(), member_factory()
        _top_up(cashier, b["id"], "400.00")
        give_points(b["id"], 30)
        if what == "bill":
            call = ("POST", "/api/v1/checkouts", {"store_code": "BJ01", "member_id": b["id"],
                                                  "items": [{"sku": "LOBSTER", "qty": 1}], "wallet_amount": "100.00"})
        elif what == "top_up":
            call = ("POST", f"/api/v1/members/{b['id']}/wallet/top-ups",
                    {"store_code": "BJ01", "amount": "100.00", "payment_method": "cash"})
        else:  # a bill of B's (328.00, 100.00 of it stored value: 32 points) voided while B is merged
            bill = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01", "member_id": b["id"],
                                                           "items": [{"sku": "LOBSTER", "qty": 1}],
                                                           "wallet_amount": "100.00"})
            assert bill.status_code == 201 and bill.json["points_earned"] == 32, bill.json
            call = ("POST", f"/api/v1/checkouts/{bill.json['id']}/void", {"reason": "wrong table"})
        merge = ("POST", f"/api/v1/members/{a['id']}/merge", {"from_member_id": b["id"], "reason": "duplicate"})
        calls = ((manager.token, *merge), ((manager if what == "void" else cashier).token, *call))
        results = race(2, lambda i, calls=calls: api_call(app, *calls[i]))
        assert results[0][0] == 200, results[0]
        status, code, body = results[1]
        assert status in (201, 409), results[1]
        points, principal, bonus = _balances(manager, a["id"])
        assert _balances(manager, b["id"]) == (0, "0.00", "0.00")
        if what == "void":  # in either order, the void puts B's value back and it ends with A
            assert status == 201 and (points, principal) == (30, "400.00"), results
        elif status == 409:  # the merge went first: nothing landed on the tombstone, nothing was taken
            assert code == "member_merged"
            assert (points, principal) == (30, "400.00")
        elif what == "bill":  # the bill went first and moved with everything else
            assert (points, principal) == (30 + body["points_earned"], "300.00")
        else:
            assert (points, principal) == (30, "500.00")
        assert audit_problems(app) == []


def test_the_merge_page_side_by_side_and_the_tombstone_page(app, staff, member_factory):
    a = member_factory(name="张伟", email="zhang@example.com")
    b = member_factory(name="张伟", email="ZHANG@example.com")
    ui = ui_login(app, staff["manager"])
    page = ui.get(f"/members/{a['id']}").get_data(as_text=True)
    assert 'id="duplicates"' in page and f"/members/{a['id']}/merge?from={b['id']}" in page
    side = ui.get(f"/members/{a['id']}/merge?from={b['id']}").get_data(as_text=True)
    assert 'name="field_email"' in side and "ZHANG@example.com" in side
    path = f"/members/{a['id']}/merge"
    token = ui.form_tokens[path]
    r = ui.post(path, {"from": b["id"], "reason": "", "field_email": "from", "form_token": token})
    assert r.status_code == 422 and 'id="e-reason"' in r.get_data(as_text=True)  # the error next to the field
    r = ui.post(path, {"from": b["id"], "reason": "one guest", "field_email": "from"})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    tomb = ui.get(f"/members/{b['id']}").get_data(as_text=True)
    assert 'id="merged-into"' in tomb and f'href="/members/{a["id"]}"' in tomb
    assert f'href="/members/{b["id"]}/edit"' not in tomb
    survivor = ui.get(f"/members/{a['id']}").get_data(as_text=True)
    assert "ZHANG@example.com" in survivor and 'id="duplicates"' not in survivor
    assert 'id="merged-members"' in survivor and f'href="/members/{b["id"]}"' in survivor  # its messages are there


def test_the_duplicates_bills_count_towards_the_survivors_level(app, catalogue, member_factory, login_api, checkout):
    assert login_api("admin").post("/api/v1/levels", json={"code": "silver", "name": "银卡会员", "rank": 1,
                                                           "upgrade_spend": "500.00"}).status_code == 201
    a, b = member_factory(), member_factory()
    for m in (a, b):  # 328.00 each: neither reaches 500.00 alone
        assert checkout([("LOBSTER", 1)], member_id=m["id"]).status_code == 201
    manager = login_api("manager")
    assert manager.get(f"/api/v1/members/{a['id']}").json["level"]["code"] != "silver"
    assert _merge(manager, a["id"], b["id"]).status_code == 200
    assert manager.get(f"/api/v1/members/{a['id']}").json["level"]["code"] == "silver"


@pytest.mark.parametrize("what", ["bill", "top_up", "void"])
@pytest.mark.parametrize("first", ["merge", "other"])
def test_whichever_of_a_merge_and_a_bill_or_top_up_on_the_duplicate_waits_first_no_value_is_lost(
        app, backend, catalogue, member_factory, give_points, cashier, login_api, what, first):
    """The duplicate's row is held by a third connection while the two line up behind it in a
    chosen order, so both orders are seen: the merge first (the bill or top-up is refused
    `member_merged`, nothing taken) or the other first (its effect moves with the merge)."""
    if backend != "postgresql":
        pytest.skip("row locks queue on PostgreSQL; SQLite serialises writers")
    manager = login_api("manager")
    a, b = member_factory(), member_factory()
    _top_up(cashier, b["id"], "400.00")
    give_points(b["id"], 30)
    if what == "bill":
        call = (cashier.token, "POST", "/api/v1/checkouts", {"store_code": "BJ01", "member_id": b["id"],
                                                             "items": [{"sku": "LOBSTER", "qty": 1}],
                                                             "wallet_amount": "100.00"})
    elif what == "top_up":
        call = (cashier.token, "POST", f"/api/v1/members/{b['id']}/wallet/top-ups",
                {"store_code": "BJ01", "amount": "100.00", "payment_method": "cash"})
    else:  # the void of a bill of B's (100.00 from stored value, 32 points) waits while the merge moves it
        bill = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01", "member_id": b["id"],
                                                       "items": [{"sku": "LOBSTER", "qty": 1}],
                                                       "wallet_amount": "100.00"})
        assert bill.status_code == 201 and bill.json["points_earned"] == 32, bill.json
        call = (manager.token, "POST", f"/api/v1/checkouts/{bill.json['id']}/void", {"reason": "wrong table"})
    merge = (manager.token, "POST", f"/api/v1/members/{a['id']}/merge", {"from_member_id": b["id"], "reason": "dup"})
    order = (merge, call) if first == "merge" else (call, merge)
    results = queued_in_order(app, "SELECT id FROM members WHERE id = :id FOR UPDATE", {"id": b["id"]}, order)
    merged, other = results[merge[2]], results[call[2]]
    assert merged[0] == 200, merged
    points, principal, _bonus = _balances(manager, a["id"])
    assert _balances(manager, b["id"]) == (0, "0.00", "0.00")
    if what == "void":  # either way the bill's value is back, and with A
        assert other[0] == 201 and (points, principal) == (30, "400.00"), other
    elif first == "merge":
        assert other[:2] == (409, "member_merged"), other
        assert (points, principal) == (30, "400.00")
    else:
        assert other[0] == 201, other
        assert (points, principal) == ((30 + other[2]["points_earned"], "300.00") if what == "bill"
                                       else (30, "500.00"))
    assert audit_problems(app) == []


def test_the_duplicates_settled_messages_move_to_the_survivor_unless_the_survivor_got_that_send(
        app, member_factory, login_api):
    """Messages already sent are the guest's history and move; one whose campaign send the
    survivor also got stays on the duplicate (one delivery per send and member), and one still
    waiting to go stays there too, where the dispatcher skips it (no consent, no mobile)."""
    from crm.campaigns.models import Delivery
    manager, marketing = login_api("manager"), login_api("marketing")

    def draft(name):
        t = marketing.post("/api/v1/message-templates", json={"name": name, "body": "您好"})
        c = marketing.post("/api/v1/campaigns", json={"name": name, "template_id": t.json["id"],
                                                      "send_at": "2026-12-02T10:00:00+08:00"})
        assert c.status_code == 201, c.json
        return c.json["id"]
    first, second = draft("合并前的活动一"), draft("合并前的活动二")
    a, b = member_factory(name="李雷"), member_factory(name="李雷")

    def delivery(member_id, campaign_id, status):
        d = Delivery(campaign_id=campaign_id, occurrence="once", member_id=member_id, channel="outbox",
                     body="您好", status=status)
        db.session.add(d)
        db.session.flush()
        return d.id

    with app.app_context():
        mine = delivery(a["id"], first, "sent")
        clash = delivery(b["id"], first, "sent")  # both got the first campaign
        sent = delivery(b["id"], second, "sent")
        waiting = delivery(b["id"], None, "queued")
        service = delivery(b["id"], None, "sent")
        db.session.commit()
    r = _merge(manager, a["id"], b["id"])
    assert r.status_code == 200, r.json
    assert sorted(r.json["moved"]["deliveries"]) == sorted([sent, service])
    with app.app_context():
        owner = {d.id: d.member_id for d in db.session.query(Delivery)}
    assert owner[mine] == owner[sent] == owner[service] == a["id"]
    assert owner[clash] == owner[waiting] == b["id"]


def test_search_results_mark_members_that_look_like_the_same_guest(app, member_factory, staff):
    """Two 张伟 with the same birthday among the results are marked; a third 张伟 with another
    birthday and no shared mobile or email is not."""
    twins = [member_factory(name="张伟", birthday="1980-06-01") for _ in range(2)]
    other = member_factory(name="张伟", birthday="1991-02-03")
    desk = ui_login(app, "frontdesk", lang="en")
    page = desk.get("/?q=张伟")
    assert page.status_code == 200
    rows = {int(r.split("/members/")[1].split('"')[0]): r.split("</td>")[0] for r in
            page.get_data(as_text=True).split("<tr data-href=")[1:]}
    assert sorted(rows) == sorted([*(t["id"] for t in twins), other["id"]])
    assert all("Possible duplicate" in rows[t["id"]] for t in twins)
    assert "Possible duplicate" not in rows[other["id"]]


def test_searching_a_merged_duplicates_old_mobile_opens_the_survivor(app, member_factory, login_api, staff):
    """The survivor kept its own mobile, so the duplicate's was freed; a guest who gives the old
    number at the desk is found as the survivor, not registered a second time."""
    manager = login_api("manager")
    a, b = member_factory(name="韩梅梅"), member_factory(name="韩梅梅")
    assert _merge(manager, a["id"], b["id"]).status_code == 200
    desk = ui_login(app, "frontdesk", lang="en")
    r = desk.get(f"/?q={b['mobile']}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/members/{a['id']}"), r.status_code
    assert "merged into this member" in desk.get(r.headers["Location"]).get_data(as_text=True)
    assert desk.get("/?q=13999999999").status_code == 200  # an unknown mobile is still "no member"
