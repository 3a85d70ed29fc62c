"""Top-up gifts and draw prizes degrade gracefully when their coupon type is retired or
runs out, and managers edit, stop and restock them (API and the coupon page)."""
import re

import pytest

from tests.conftest import audit_problems
from tests.test_ui import text, ui_login


@pytest.fixture
def types(catalogue):
    """Coupon types: OYSTER (unlimited), ONE (a single one in stock), EGG (unlimited)."""
    for body in ({"code": "OYSTER", "name": "生蚝券", "kind": "item", "face_value": "180.00", "sku": "LOBSTER"},
                 {"code": "ONE", "name": "限量券", "kind": "cash", "face_value": "10.00", "stock_total": 1},
                 {"code": "EGG", "name": "红鸡蛋", "kind": "gift"}):
        r = catalogue.post("/api/v1/coupon-types", json=body)
        assert r.status_code == 201, r.json
    return catalogue


@pytest.fixture
def gift_rule(types, store_today):
    """gift_rule(coupon_type, stock=3, **fields) -> the created rule (a top-up of 2000.00 qualifies today)."""
    def make(coupon_type, stock=3, **fields):
        body = {"name": f"充2000送{coupon_type}", "min_topup": "2000.00", "coupon_type": coupon_type,
                "starts_on": store_today, "ends_on": store_today, "stock": stock, **fields}
        r = types.post("/api/v1/gift-rules", json=body)
        assert r.status_code == 201, r.json
        return r.json
    return make


@pytest.fixture
def prize(types):
    def make(name, coupon_type, weight=1, stock=3):
        r = types.post("/api/v1/draw-prizes", json={"name": name, "coupon_type": coupon_type, "weight": weight,
                                                    "stock": stock})
        assert r.status_code == 201, r.json
        return r.json
    return make


@pytest.fixture
def top_up(cashier):
    def post(member_id, amount="2000.00"):
        return cashier.post(f"/api/v1/members/{member_id}/wallet/top-ups",
                            json={"store_code": "BJ01", "amount": amount, "payment_method": "cash"})
    return post


@pytest.fixture
def member_with_draws(member_factory, checkout):
    """member_with_draws(n) -> a member whose n lobster bills each earned one draw."""
    def make(n=1):
        m = member_factory()
        for _ in range(n):
            assert checkout([("LOBSTER", 1)], member_id=m["id"]).status_code == 201
        return m
    return make


def _rule(api, rule_id):
    return next(r for r in api.get("/api/v1/gift-rules").json if r["id"] == rule_id)


def _prize(api, prize_id):
    return next(p for p in api.get("/api/v1/draw-prizes").json if p["id"] == prize_id)


def _draws_left(app, member_id):
    from crm.coupons import service
    with app.app_context():
        return service.tickets_left(member_id)


def _audit_actions(app, entity_type):
    from sqlalchemy import select

    from crm.core.audit import AuditEntry
    from crm.extensions import db
    with app.app_context():
        return db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == entity_type)
                                  .order_by(AuditEntry.id)).all()


# Top-up gifts whose coupon type cannot be given -------------------------------------------

def test_retired_gift_type_top_up_succeeds_and_says_why(app, types, gift_rule, member_factory, top_up):
    rule = gift_rule("OYSTER", stock=2)
    assert types.patch("/api/v1/coupon-types/OYSTER", json={"active": False}).status_code == 200
    m = member_factory()
    r = top_up(m["id"])
    assert r.status_code == 201, r.json
    assert r.json["coupons"] == []
    assert r.json["gifts_unavailable"] == [{"rule": rule["name"], "reason": "coupon_type_inactive"}]
    assert r.json["wallet"]["principal"] == "2000.00"
    assert _rule(types, rule["id"])["stock_left"] == 2  # the rule's stock is untouched
    assert audit_problems(app) == []


def test_out_of_stock_gift_type_top_up_succeeds_and_says_why(app, types, gift_rule, member_factory, top_up):
    rule = gift_rule("ONE", stock=5)
    first, second = member_factory(), member_factory()
    assert top_up(first["id"]).json["coupons"][0]["type"] == "ONE"  # the type's only one
    r = top_up(second["id"])
    assert r.status_code == 201 and r.json["coupons"] == []
    assert r.json["gifts_unavailable"] == [{"rule": rule["name"], "reason": "out_of_stock"}]
    assert _rule(types, rule["id"])["stock_left"] == 4  # only the gift actually given
    assert audit_problems(app) == []


def test_type_that_runs_out_mid_top_up_gives_the_rules_unit_back(app, types, gift_rule, member_factory):
    """The coupon type looked in stock when read, but another till took the last one."""
    from sqlalchemy import update
    from sqlalchemy.orm.attributes import set_committed_value

    from crm.coupons import service
    from crm.coupons.models import CouponDefinition
    from crm.extensions import db
    from tests.conftest import SYSTEM
    rule = gift_rule("ONE", stock=5)
    m = member_factory()
    with app.app_context():
        db.session.execute(update(CouponDefinition).where(CouponDefinition.code == "ONE").values(stock_left=0,
                                                                                                stock_total=0))
        loaded = service.get_gift_rule(rule["id"])
        set_committed_value(loaded.definition, "stock_left", 1)  # what this till read a moment earlier
        issued, missed = service.gifts_for_topup(SYSTEM, m["id"], 200000, loaded.starts_on, topup_id=1)
        db.session.commit()
    assert issued == [] and missed == [{"rule": rule["name"], "reason": "out_of_stock"}]
    assert _rule(types, rule["id"])["stock_left"] == 5
    assert audit_problems(app) == []


def test_preview_shows_a_gift_that_cannot_be_given(app, types, gift_rule, store_today):
    from datetime import date

    from crm.coupons import service
    retired, limited, fine = gift_rule("OYSTER")["name"], gift_rule("ONE")["name"], gift_rule("EGG")["name"]
    types.patch("/api/v1/coupon-types/OYSTER", json={"active": False})
    with app.app_context():
        from crm.coupons.models import CouponDefinition
        from crm.extensions import db
        db.session.query(CouponDefinition).filter_by(code="ONE").update({"stock_left": 0, "stock_total": 0})
        db.session.commit()
        preview = service.gift_preview(200000, date.fromisoformat(store_today))
    assert [(p["rule"], p["in_stock"], p["reason"]) for p in preview] == [
        (retired, False, "coupon_type_inactive"), (limited, False, "out_of_stock"), (fine, True, None)]


def test_till_flash_says_a_retired_gift_is_no_longer_given(app, staff, types, gift_rule, member_factory,
                                                           cashier):
    gift_rule("OYSTER")
    types.patch("/api/v1/coupon-types/OYSTER", json={"active": False})
    m = member_factory()
    ui = ui_login(app, staff["cashier"], lang="en")
    ui.get(f"/members/{m['id']}")
    form = {"amount": "2000.00", "store_code": "BJ01", "payment_method": "cash"}
    confirm = text(ui.post(f"/members/{m['id']}/wallet/top-up", form))
    assert "Gift: 生蚝券" not in confirm  # the preview does not promise it
    token = re.search(r'name="form_token" value="([^"]*)"', confirm)
    done = ui.post(f"/members/{m['id']}/wallet/top-up", {**form, "action": "confirm",
                                                         **({"form_token": token[1]} if token else {})})
    assert done.status_code == 302
    assert "The gift “充2000送OYSTER” is no longer given." in text(ui.get(done.location))
    assert cashier.get(f"/api/v1/members/{m['id']}/wallet").json["balance"] == "2000.00"
    assert audit_problems(app) == []


# The draw --------------------------------------------------------------------------------

def test_draw_skips_a_prize_whose_coupon_type_was_retired(app, types, prize, member_with_draws, cashier):
    big = prize("生蚝", "OYSTER", weight=1_000_000)
    small = prize("红鸡蛋", "EGG", weight=1)
    types.patch("/api/v1/coupon-types/OYSTER", json={"active": False})
    m = member_with_draws(1)
    r = cashier.post(f"/api/v1/members/{m['id']}/draws")
    assert r.status_code == 201, r.json
    assert r.json["prize"] == "红鸡蛋" and r.json["coupon"]["type"] == "EGG" and r.json["draws_left"] == 0
    assert _prize(types, big["id"])["stock_left"] == 3 and _prize(types, small["id"])["stock_left"] == 2
    assert audit_problems(app) == []


def test_draw_skips_a_prize_whose_coupon_type_ran_out(app, types, prize, member_with_draws, cashier):
    limited = prize("限量券", "ONE", weight=1_000_000)
    prize("红鸡蛋", "EGG", weight=1)
    first, second = member_with_draws(1), member_with_draws(1)
    assert cashier.post(f"/api/v1/members/{first['id']}/draws").json["prize"] == "限量券"  # the type's only one
    r = cashier.post(f"/api/v1/members/{second['id']}/draws")
    assert r.status_code == 201 and r.json["prize"] == "红鸡蛋"
    assert _prize(types, limited["id"])["stock_left"] == 2
    assert audit_problems(app) == []


def test_prize_whose_type_runs_out_mid_draw_keeps_its_unit(app, types, prize, member_with_draws, cashier,
                                                           monkeypatch):
    """Chosen while its coupon type still looked in stock: the prize's unit goes back, another is tried."""
    from crm.coupons import service
    from crm.coupons.models import DrawPrize
    from crm.extensions import db
    limited = prize("限量券", "ONE", weight=1_000_000)
    prize("红鸡蛋", "EGG", weight=1)
    give = types.post(f"/api/v1/members/{member_with_draws(0)['id']}/coupons",
                      json={"coupon_type": "ONE", "reason": "the last one"})
    assert give.status_code == 201
    monkeypatch.setattr(service, "_drawable_prizes", lambda: list(db.session.scalars(
        db.select(DrawPrize).order_by(DrawPrize.id))))  # as if read before the last one went
    m = member_with_draws(1)
    r = cashier.post(f"/api/v1/members/{m['id']}/draws")
    assert r.status_code == 201 and r.json["prize"] == "红鸡蛋"
    assert _prize(types, limited["id"])["stock_left"] == 3
    assert audit_problems(app) == []


def test_nothing_to_win_is_409_and_the_member_keeps_the_draw(app, types, prize, member_with_draws, cashier):
    prize("生蚝", "OYSTER")
    types.patch("/api/v1/coupon-types/OYSTER", json={"active": False})
    m = member_with_draws(1)
    r = cashier.post(f"/api/v1/members/{m['id']}/draws")
    assert r.status_code == 409 and r.json["error"]["code"] == "no_prizes_left"
    assert _draws_left(app, m["id"]) == 1
    assert cashier.get(f"/api/v1/members/{m['id']}/coupons").json == []
    types.patch("/api/v1/coupon-types/OYSTER", json={"active": True})
    again = cashier.post(f"/api/v1/members/{m['id']}/draws")
    assert again.status_code == 201 and again.json["prize"] == "生蚝" and again.json["draws_left"] == 0
    assert audit_problems(app) == []


# Editing, stopping and restocking gift rules ---------------------------------------------

def test_manager_edits_stops_and_restocks_a_gift_rule(app, types, gift_rule, member_factory, top_up, store_today):
    rule = gift_rule("OYSTER", stock=1)
    url = f"/api/v1/gift-rules/{rule['id']}"
    r = types.patch(url, json={"name": "充3000送生蚝", "min_topup": "3000.00", "ends_on": "2099-12-31"})
    assert r.status_code == 200, r.json
    assert (r.json["name"], r.json["min_topup"], r.json["starts_on"], r.json["ends_on"]) == (
        "充3000送生蚝", "3000.00", store_today, "2099-12-31")
    m = member_factory()
    assert top_up(m["id"], "2000.00").json["coupons"] == []  # below the new threshold
    assert len(top_up(m["id"], "3000.00").json["coupons"]) == 1  # the only one
    assert top_up(m["id"], "3000.00").json["gifts_unavailable"] == [{"rule": "充3000送生蚝", "reason": "out_of_stock"}]
    r = types.patch(url, json={"add_stock": 2})
    assert (r.status_code, r.json["stock_total"], r.json["stock_left"]) == (200, 3, 2)
    r = types.patch(url, json={"active": False})
    assert r.status_code == 200 and r.json["active"] is False
    stopped = top_up(m["id"], "3000.00").json
    assert stopped["coupons"] == [] and stopped["gifts_unavailable"] == []  # a stopped rule does not apply
    assert types.patch(url, json={"active": True}).json["active"] is True
    assert len(top_up(m["id"], "3000.00").json["coupons"]) == 1
    assert _rule(types, rule["id"])["stock_left"] == 1
    assert _audit_actions(app, "gift_rules") == ["gift_rule.create"] + ["gift_rule.update"] * 4
    assert audit_problems(app) == []


@pytest.mark.parametrize("body, code", [({"ends_on": "2000-01-01"}, "invalid_dates"),
                                        ({"starts_on": "2099-01-01"}, "invalid_dates"),
                                        ({"add_stock": 0}, "validation_error"),
                                        ({"min_topup": "0"}, "validation_error"),
                                        ({"stock": 10}, "validation_error"),
                                        ({"name": ""}, "validation_error")])
def test_bad_gift_rule_edits_change_nothing(app, types, gift_rule, body, code):
    rule = gift_rule("OYSTER", stock=2)
    r = types.patch(f"/api/v1/gift-rules/{rule['id']}", json=body)
    assert r.status_code == 422 and r.json["error"]["code"] == code, r.json
    assert _rule(types, rule["id"]) == rule
    assert _audit_actions(app, "gift_rules") == ["gift_rule.create"]


def test_unknown_rule_or_prize_is_404(types):
    r = types.patch("/api/v1/gift-rules/4242", json={"active": False})
    assert r.status_code == 404 and r.json["error"]["code"] == "gift_rule_not_found"
    r = types.patch("/api/v1/draw-prizes/4242", json={"active": False})
    assert r.status_code == 404 and r.json["error"]["code"] == "draw_prize_not_found"


def test_cashier_may_not_edit_rules_or_prizes(types, gift_rule, prize, cashier):
    rule, p = gift_rule("OYSTER"), prize("生蚝", "OYSTER")
    r = cashier.patch(f"/api/v1/gift-rules/{rule['id']}", json={"add_stock": 100})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert cashier.patch(f"/api/v1/draw-prizes/{p['id']}", json={"add_stock": 100}).status_code == 403
    assert _rule(types, rule["id"])["stock_total"] == 3 and _prize(types, p["id"])["stock_total"] == 3


# Editing, stopping and restocking prizes -------------------------------------------------

def test_manager_edits_stops_and_restocks_a_prize(app, types, prize, member_with_draws, cashier):
    oyster, egg = prize("生蚝", "OYSTER", weight=5, stock=1), prize("红鸡蛋", "EGG", weight=5, stock=1)
    url = f"/api/v1/draw-prizes/{oyster['id']}"
    r = types.patch(url, json={"name": "大生蚝", "weight": 1_000_000})
    assert (r.status_code, r.json["name"], r.json["weight"]) == (200, "大生蚝", 1_000_000)
    types.patch(f"/api/v1/draw-prizes/{egg['id']}", json={"active": False})
    m = member_with_draws(3)
    assert cashier.post(f"/api/v1/members/{m['id']}/draws").json["prize"] == "大生蚝"
    out = cashier.post(f"/api/v1/members/{m['id']}/draws")
    assert out.status_code == 409 and out.json["error"]["code"] == "no_prizes_left"
    r = types.patch(url, json={"add_stock": 4})
    assert (r.json["stock_total"], r.json["stock_left"]) == (5, 4)
    assert types.patch(url, json={"active": False}).json["active"] is False
    assert cashier.post(f"/api/v1/members/{m['id']}/draws").status_code == 409  # every prize stopped
    types.patch(f"/api/v1/draw-prizes/{egg['id']}", json={"active": True})
    won = cashier.post(f"/api/v1/members/{m['id']}/draws").json
    assert won["prize"] == "红鸡蛋" and won["draws_left"] == 1
    assert _audit_actions(app, "draw_prizes") == ["draw_prize.create"] * 2 + ["draw_prize.update"] * 5
    assert audit_problems(app) == []


@pytest.mark.parametrize("body", [{"weight": 0}, {"add_stock": -1}, {"name": ""}, {"stock_left": 9}])
def test_bad_prize_edits_change_nothing(types, prize, body):
    p = prize("生蚝", "OYSTER")
    r = types.patch(f"/api/v1/draw-prizes/{p['id']}", json=body)
    assert r.status_code == 422 and r.json["error"]["code"] == "validation_error"
    assert _prize(types, p["id"]) == p


def test_openapi_describes_the_edits(client):
    spec = client.get("/api/v1/openapi.json").json
    for path, schema in (("/api/v1/gift-rules/{rule_id}", "GiftRuleUpdate"),
                         ("/api/v1/draw-prizes/{prize_id}", "PrizeUpdate")):
        patch = spec["paths"][path]["patch"]
        assert patch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(schema)
        assert "200" in patch["responses"]
        assert "add_stock" in spec["components"]["schemas"][schema]["properties"]


# The manager's coupon page ---------------------------------------------------------------

def test_manager_page_edits_stops_and_restocks_a_gift_rule(app, staff, types, gift_rule, store_today):
    rule = gift_rule("OYSTER", stock=2)
    types.patch("/api/v1/coupon-types/OYSTER", json={"active": False})
    ui = ui_login(app, staff["manager"], lang="en")
    listing = text(ui.get("/catalog/coupons/"))
    assert "This coupon type is no longer issued." in listing  # why the rule gives nothing
    edit = f"/catalog/coupons/gifts/{rule['id']}"
    page = text(ui.get(edit))
    assert 'value="2000.00"' in page and f'value="{store_today}"' in page
    form = {"name": "充3000送生蚝", "min_topup": "3000.00", "starts_on": store_today, "ends_on": "2000-01-01",
            "active": "1", "add_stock": ""}
    r = ui.post(edit, form)
    assert r.status_code == 422 and re.search(r'id="e-ends_on">The rule ends before it starts\.<', text(r))
    assert 'value="充3000送生蚝"' in text(r)  # what was typed is kept
    r = ui.post(edit, {**form, "add_stock": "0", "ends_on": "2099-12-31"})
    assert r.status_code == 422 and 'id="e-add_stock"' in text(r)
    r = ui.post(edit, {**form, "add_stock": "5", "ends_on": "2099-12-31", "active": "0"})
    assert r.status_code == 302
    assert "Gift rule 充3000送生蚝 saved." in text(ui.get(r.location))
    saved = _rule(types, rule["id"])
    assert (saved["name"], saved["min_topup"], saved["ends_on"], saved["stock_total"], saved["stock_left"],
            saved["active"]) == ("充3000送生蚝", "3000.00", "2099-12-31", 7, 7, False)
    listing = text(ui.get("/catalog/coupons/"))
    row = re.search(rf'<tr id="gift-{rule["id"]}" class="muted">.*?</tr>', listing, re.S)[0]
    assert "Stopped" in row and "Use again" in row and "7 / 7" in row
    assert ui.post(edit, {"active": "1"}).status_code == 302  # the row's resume button
    assert _rule(types, rule["id"])["active"] is True
    assert ui.get("/catalog/coupons/gifts/4242").status_code == 404


def test_manager_page_edits_and_stops_a_prize(app, staff, types, prize):
    p = prize("生蚝", "OYSTER", weight=10, stock=1)
    ui = ui_login(app, staff["manager"], lang="en")
    edit = f"/catalog/coupons/prizes/{p['id']}"
    assert 'value="10"' in text(ui.get(edit))
    r = ui.post(edit, {"name": "大生蚝", "weight": "0", "active": "1", "add_stock": "2"})
    assert r.status_code == 422 and 'id="e-weight"' in text(r)
    assert _prize(types, p["id"]) == p
    r = ui.post(edit, {"name": "大生蚝", "weight": "20", "active": "1", "add_stock": "2"})
    assert r.status_code == 302 and "Prize 大生蚝 saved." in text(ui.get(r.location))
    ui.get("/catalog/coupons/")
    assert ui.post(edit, {"active": "0"}).status_code == 302  # the row's stop button
    saved = _prize(types, p["id"])
    assert (saved["name"], saved["weight"], saved["stock_total"], saved["stock_left"], saved["active"]) == (
        "大生蚝", 20, 3, 3, False)
    row = re.search(rf'<tr id="prize-{p["id"]}" class="muted">.*?</tr>', text(ui.get("/catalog/coupons/")), re.S)[0]
    assert "Stopped" in row and "Use again" in row


def test_cashier_cannot_open_the_edit_pages(app, staff, types, gift_rule, prize):
    rule, p = gift_rule("OYSTER"), prize("生蚝", "OYSTER")
    ui = ui_login(app, staff["cashier"])
    assert ui.get(f"/catalog/coupons/gifts/{rule['id']}").status_code == 403
    assert ui.post(f"/catalog/coupons/prizes/{p['id']}", {"active": "0"}).status_code == 403
    assert _prize(types, p["id"])["active"] is True


def test_emptying_a_required_field_on_the_edit_page_is_an_error_not_ignored(app, staff, gift_rule, store_today, types):
    rule = gift_rule("EGG")
    ui = ui_login(app, "manager")
    ui.get(f"/catalog/coupons/gifts/{rule['id']}")
    r = ui.post(f"/catalog/coupons/gifts/{rule['id']}", {"name": "", "min_topup": "2000.00", "starts_on": store_today,
                                                         "ends_on": store_today, "active": "1", "add_stock": ""})
    assert r.status_code == 422 and 'id="e-name"' in text(r)
    assert [g["name"] for g in types.get("/api/v1/gift-rules").json if g["id"] == rule["id"]] == [rule["name"]]
