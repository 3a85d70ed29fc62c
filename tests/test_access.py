"""Deny by default: every route × every role, against a policy written out by hand.

A route added without an entry here fails `test_policy_covers_every_route`, so access
is always decided on purpose."""
import re

import pytest

ALL = {"admin", "manager", "front_desk", "cashier", "marketing"}
DESK = {"admin", "manager", "front_desk"}
LOOKUP = DESK | {"cashier", "marketing"}
COUNTER = DESK | {"cashier"}
ADMIN = {"admin"}
MGR = {"admin", "manager"}
MKT = {"admin", "manager", "marketing"}
PUBLIC = "public"

POLICY = {
    ("GET", "/"): LOOKUP,
    ("GET", "/api/v1/auth/me"): ALL,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("DELETE", "/api/v1/auth/token"): ALL,
    ("GET", "/api/v1/cards/<card:card_no>"): LOOKUP,
    ("POST", "/api/v1/cards/<card:card_no>/cancel"): DESK,
    ("POST", "/api/v1/cards/<card:card_no>/freeze"): DESK,
    ("POST", "/api/v1/cards/<card:card_no>/lost"): DESK,
    ("GET", "/api/v1/cards/<card:card_no>/qr.png"): DESK,
    ("GET", "/api/v1/cards/<card:card_no>/qr.svg"): DESK,
    ("POST", "/api/v1/cards/<card:card_no>/replace"): DESK,
    ("POST", "/api/v1/cards/<card:card_no>/unfreeze"): DESK,
    ("POST", "/api/v1/cards/scan"): COUNTER,
    ("GET", "/api/v1/companies"): LOOKUP,
    ("POST", "/api/v1/companies"): DESK,
    ("GET", "/api/v1/companies/<int:company_id>"): LOOKUP,
    ("PATCH", "/api/v1/companies/<int:company_id>"): DESK,
    ("GET", "/api/v1/docs/"): PUBLIC,
    ("GET", "/api/v1/docs/<path:path>"): PUBLIC,
    ("GET", "/api/v1/levels"): ALL,
    ("POST", "/api/v1/levels"): ADMIN,
    ("PATCH", "/api/v1/levels/<code>"): ADMIN,
    ("GET", "/api/v1/members"): LOOKUP,
    ("POST", "/api/v1/members"): DESK,
    ("GET", "/api/v1/members/<int:member_id>"): LOOKUP,
    ("PATCH", "/api/v1/members/<int:member_id>"): DESK,
    ("GET", "/api/v1/members/<int:member_id>/cards"): LOOKUP,
    ("POST", "/api/v1/members/<int:member_id>/cards"): DESK,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/items"): ALL,
    ("POST", "/api/v1/items"): MGR,
    ("GET", "/api/v1/items/<sku>"): ALL,
    ("PATCH", "/api/v1/items/<sku>"): MGR,
    ("GET", "/api/v1/promotions"): ALL,
    ("POST", "/api/v1/promotions"): MGR,
    ("GET", "/api/v1/promotions/<code>"): ALL,
    ("PATCH", "/api/v1/promotions/<code>"): MGR,
    ("GET", "/api/v1/members/<int:member_id>/points"): COUNTER,
    ("GET", "/api/v1/members/<int:member_id>/points/entries"): COUNTER,
    ("POST", "/api/v1/members/<int:member_id>/points/adjustments"): MGR,
    ("POST", "/api/v1/checkouts/quote"): COUNTER,
    ("GET", "/api/v1/checkouts"): COUNTER,
    ("POST", "/api/v1/checkouts"): COUNTER,
    ("GET", "/api/v1/checkouts/<int:checkout_id>"): COUNTER,
    ("POST", "/api/v1/checkouts/<int:checkout_id>/void"): MGR,
    ("GET", "/api/v1/members/<int:member_id>/wallet"): COUNTER,
    ("POST", "/api/v1/members/<int:member_id>/wallet/top-ups"): COUNTER,
    ("POST", "/api/v1/members/<int:member_id>/wallet/refunds"): MGR,
    ("GET", "/api/v1/members/<int:member_id>/wallet/entries"): COUNTER,
    ("PUT", "/api/v1/members/<int:member_id>/wallet/pin"): COUNTER,
    ("POST", "/api/v1/members/<int:member_id>/wallet/pin/unlock"): MGR,
    ("GET", "/api/v1/wallet/bonus-tiers"): ALL,
    ("POST", "/api/v1/wallet/bonus-tiers"): ADMIN,
    ("PATCH", "/api/v1/wallet/bonus-tiers/<int:tier_id>"): ADMIN,
    ("GET", "/api/v1/reports/liability"): MGR,
    ("GET", "/api/v1/reports/prepaid"): MGR,
    # cashier's day-end (issue 17.4): the counter roles, a cashier or front desk for their home store only
    ("GET", "/api/v1/day-end"): COUNTER,
    ("POST", "/api/v1/day-end/checks"): COUNTER,
    ("GET", "/day-end/"): COUNTER,
    ("POST", "/day-end/check"): COUNTER,
    ("GET", "/api/v1/kpi-targets/<store_code>/<int:year>"): MGR,
    ("PUT", "/api/v1/kpi-targets/<store_code>/<int:year>"): MGR,
    ("GET", "/api/v1/coupon-types"): ALL,
    ("POST", "/api/v1/coupon-types"): MGR,
    ("PATCH", "/api/v1/coupon-types/<code>"): MGR,
    ("GET", "/api/v1/members/<int:member_id>/coupons"): COUNTER,
    ("POST", "/api/v1/members/<int:member_id>/coupons"): MGR,
    ("GET", "/api/v1/coupons/<code>"): COUNTER,
    ("GET", "/api/v1/gift-rules"): ALL,
    ("POST", "/api/v1/gift-rules"): MGR,
    ("PATCH", "/api/v1/gift-rules/<int:rule_id>"): MGR,
    ("GET", "/api/v1/draw-prizes"): ALL,
    ("POST", "/api/v1/draw-prizes"): MGR,
    ("PATCH", "/api/v1/draw-prizes/<int:prize_id>"): MGR,
    ("POST", "/api/v1/members/<int:member_id>/draws"): COUNTER,
    ("GET", "/api/v1/programme"): ALL,
    ("PATCH", "/api/v1/programme"): ADMIN,
    ("GET", "/api/v1/staff"): ADMIN,
    ("POST", "/api/v1/staff"): ADMIN,
    ("GET", "/api/v1/staff/<int:staff_id>"): ADMIN,
    ("PATCH", "/api/v1/staff/<int:staff_id>"): ADMIN,
    ("GET", "/api/v1/stores"): ALL,
    ("POST", "/api/v1/stores"): ADMIN,
    ("GET", "/api/v1/stores/<code>"): ALL,
    ("PATCH", "/api/v1/stores/<code>"): ADMIN,
    ("POST", "/cards/<card_no>/<action>"): DESK,
    ("GET", "/cards/<card_no>/print"): DESK,
    ("POST", "/members/<int:member_id>/phone-card"): DESK,
    ("GET", "/m/<token>"): PUBLIC,
    ("GET", "/m/<token>/code.svg"): PUBLIC,
    ("POST", "/m/<token>/consent/<channel>"): PUBLIC,
    ("POST", "/members/<int:member_id>/phone-card/revoke"): DESK,
    ("POST", "/api/v1/sms/inbound"): PUBLIC,
    ("GET", "/cards/<card_no>/qr.png"): DESK,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/lang/<code>"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): ALL,
    ("GET", "/members/<int:member_id>"): LOOKUP,
    ("POST", "/members/<int:member_id>/cards"): DESK,
    ("GET", "/members/<int:member_id>/edit"): DESK,
    ("POST", "/members/<int:member_id>/edit"): DESK,
    ("GET", "/members/new"): DESK,
    ("POST", "/members/new"): DESK,
    ("GET", "/static/<path:filename>"): PUBLIC,
    ("GET", "/catalog/"): MGR,
    ("GET", "/catalog/items/new"): MGR,
    ("POST", "/catalog/items/new"): MGR,
    ("GET", "/catalog/items/<sku>"): MGR,
    ("POST", "/catalog/items/<sku>"): MGR,
    ("GET", "/catalog/promotions"): MGR,
    ("GET", "/catalog/promotions/<code>"): MGR,
    ("POST", "/catalog/promotions/<code>"): MGR,
    ("GET", "/catalog/coupons/"): MGR,
    ("POST", "/catalog/coupons/<form_name>"): MGR,
    ("POST", "/catalog/coupons/types/<code>"): MGR,
    ("GET", "/catalog/coupons/gifts/<int:rule_id>"): MGR,
    ("POST", "/catalog/coupons/gifts/<int:rule_id>"): MGR,
    ("GET", "/catalog/coupons/prizes/<int:prize_id>"): MGR,
    ("POST", "/catalog/coupons/prizes/<int:prize_id>"): MGR,
    ("POST", "/catalog/promotions"): MGR,
    ("POST", "/members/<int:member_id>/wallet/top-up"): COUNTER,
    ("POST", "/members/<int:member_id>/wallet/refund"): MGR,
    ("POST", "/members/<int:member_id>/points/adjust"): MGR,
    ("POST", "/members/<int:member_id>/wallet/pin"): COUNTER,
    ("POST", "/members/<int:member_id>/wallet/pin/unlock"): MGR,
    ("POST", "/members/<int:member_id>/draw"): COUNTER,
    ("GET", "/reports/liability"): MGR,
    ("GET", "/reports/liability/download"): MGR,
    ("GET", "/reports/prepaid"): MGR,
    ("GET", "/reports/targets"): MGR,
    ("POST", "/reports/targets"): MGR,
    ("GET", "/reports/"): MGR,
    ("GET", "/admin/programme"): ADMIN,
    ("GET", "/admin/staff/"): ADMIN,
    ("GET", "/admin/stores/"): ADMIN,
    ("POST", "/admin/stores/"): ADMIN,
    ("GET", "/admin/stores/<code>"): ADMIN,
    ("POST", "/admin/stores/<code>"): ADMIN,
    ("GET", "/admin/levels/"): ADMIN,
    ("POST", "/admin/levels/"): ADMIN,
    ("GET", "/admin/levels/<code>"): ADMIN,
    ("POST", "/admin/levels/<code>"): ADMIN,
    ("POST", "/admin/staff/"): ADMIN,
    ("GET", "/admin/staff/<int:staff_id>"): ADMIN,
    ("POST", "/admin/staff/<int:staff_id>"): ADMIN,
    ("POST", "/admin/programme"): ADMIN,
    ("POST", "/admin/programme/tiers"): ADMIN,
    ("POST", "/admin/programme/tiers/<int:tier_id>/active"): ADMIN,
    ("GET", "/reports/rooms"): MGR,
    ("GET", "/reports/bills"): MGR,
    ("POST", "/reports/rooms"): MGR,
    ("GET", "/reports/segments"): MGR,
    ("GET", "/reports/monthly"): MGR,
    ("GET", "/reports/rankings"): MGR,
    ("GET", "/reports/competitors"): MGR,
    ("POST", "/reports/competitors"): MGR,
    ("GET", "/reports/plans"): MGR,
    ("POST", "/reports/plans"): MGR,
    ("GET", "/reports/rfm"): MKT,
    ("GET", "/reports/imports"): MGR,
    ("POST", "/reports/imports"): MGR,
    ("GET", "/reports/imports/<int:job_id>"): MGR,
    ("GET", "/reports/imports/<int:job_id>/progress"): MGR,
    ("GET", "/till"): COUNTER,
    ("POST", "/till"): COUNTER,
    ("GET", "/till/receipts/<int:checkout_id>"): COUNTER,
    ("POST", "/till/receipts/<int:checkout_id>/void"): MGR,
    ("GET", "/api/v1/holidays"): ALL,
    ("POST", "/api/v1/holidays"): MKT,
    ("DELETE", "/api/v1/holidays/<int:holiday_id>"): MKT,
    ("GET", "/api/v1/audiences"): MKT,
    ("POST", "/api/v1/audiences"): MKT,
    ("POST", "/api/v1/audiences/count"): MKT,
    ("GET", "/api/v1/audiences/<int:audience_id>"): MKT,
    ("PATCH", "/api/v1/audiences/<int:audience_id>"): MKT,
    ("DELETE", "/api/v1/audiences/<int:audience_id>"): MKT,
    ("GET", "/api/v1/message-templates"): MKT,
    ("POST", "/api/v1/message-templates"): MKT,
    ("GET", "/api/v1/message-templates/<int:template_id>"): MKT,
    ("PATCH", "/api/v1/message-templates/<int:template_id>"): MKT,
    ("GET", "/api/v1/campaigns"): MKT,
    ("POST", "/api/v1/campaigns"): MKT,
    ("GET", "/api/v1/campaigns/<int:campaign_id>"): MKT,
    ("PATCH", "/api/v1/campaigns/<int:campaign_id>"): MKT,
    ("POST", "/api/v1/campaigns/<int:campaign_id>/actions"): MKT,
    ("GET", "/api/v1/campaigns/<int:campaign_id>/preview"): MKT,
    ("GET", "/api/v1/campaigns/<int:campaign_id>/attribution"): MKT,
    ("POST", "/api/v1/campaigns/<int:campaign_id>/test-sends"): MKT,
    ("GET", "/api/v1/deliveries"): MKT,
    ("GET", "/api/v1/reports/kpis"): MGR,
    ("GET", "/api/v1/reports/referrals"): MGR,
    ("GET", "/api/v1/members/<int:member_id>/referrals"): LOOKUP,
    ("GET", "/reports/referrals"): MGR,
    ("GET", "/api/v1/reports/rooms"): MGR,
    ("GET", "/api/v1/reports/bills"): MGR,
    ("PUT", "/api/v1/reports/room-counts"): MGR,
    ("POST", "/api/v1/imports/checks"): MGR,
    ("POST", "/api/v1/imports/stays"): MGR,
    ("POST", "/api/v1/imports/members"): MGR,
    ("GET", "/api/v1/imports/<int:job_id>"): MGR,
    ("GET", "/api/v1/reports/segments"): MGR,
    ("PUT", "/api/v1/reports/plans"): MGR,
    ("GET", "/api/v1/reports/rankings"): MGR,
    ("GET", "/api/v1/reports/monthly"): MGR,
    ("GET", "/api/v1/reports/competitors"): MGR,
    ("POST", "/api/v1/reports/competitors"): MGR,
    ("PUT", "/api/v1/reports/competitors/<int:competitor_id>/months"): MGR,
    ("GET", "/api/v1/reports/competitor-share"): MGR,
    ("GET", "/api/v1/reports/rfm"): MKT,
    ("GET", "/marketing/"): MKT,
    ("GET", "/marketing/campaigns/new"): MKT,
    ("POST", "/marketing/campaigns/new"): MKT,
    ("GET", "/marketing/campaigns/<int:campaign_id>"): MKT,
    ("POST", "/marketing/campaigns/<int:campaign_id>"): MKT,
    ("POST", "/marketing/campaigns/<int:campaign_id>/action"): MKT,
    ("POST", "/marketing/campaigns/<int:campaign_id>/test-send"): MKT,
    ("GET", "/marketing/campaigns/<int:campaign_id>/attribution"): MKT,
    ("GET", "/marketing/audiences"): MKT,
    ("GET", "/marketing/audiences/new"): MKT,
    ("POST", "/marketing/audiences/new"): MKT,
    ("GET", "/marketing/audiences/<int:audience_id>"): MKT,
    ("POST", "/marketing/audiences/<int:audience_id>"): MKT,
    ("GET", "/marketing/templates"): MKT,
    ("POST", "/marketing/templates"): MKT,
    ("GET", "/marketing/templates/<int:template_id>"): MKT,
    ("POST", "/marketing/templates/<int:template_id>"): MKT,
    ("GET", "/marketing/outbox"): MKT,
    ("GET", "/marketing/holidays"): MKT,
    ("POST", "/marketing/holidays"): MKT,
    ("POST", "/marketing/holidays/<int:holiday_id>/delete"): MKT,
    # service notifications (issue 15.2): templates for admin and marketing, a member's list for lookups
    ("GET", "/api/v1/notification-templates"): MKT,
    ("PATCH", "/api/v1/notification-templates/<kind>/<channel>"): MKT,
    ("DELETE", "/api/v1/notification-templates/<kind>/<channel>"): MKT,
    ("GET", "/api/v1/members/<int:member_id>/notifications"): LOOKUP,
    ("GET", "/admin/notifications"): MKT,
    ("POST", "/admin/notifications/<kind>/<channel>"): MKT,
    ("POST", "/admin/notifications/<kind>/<channel>/reset"): MKT,
    # bulk work on an audience (issue 16.4): marketing and managers; a reversal is a manager's
    ("GET", "/api/v1/bulk-jobs"): MKT,
    ("POST", "/api/v1/bulk-jobs"): MKT,
    ("GET", "/api/v1/bulk-jobs/<int:job_id>"): MKT,
    ("POST", "/api/v1/bulk-jobs/<int:job_id>/reverse"): MGR,
    ("GET", "/bulk/"): MKT,
    ("POST", "/bulk/"): MKT,
    ("GET", "/bulk/<int:job_id>"): MKT,
    ("GET", "/bulk/<int:job_id>/progress"): MKT,
    ("POST", "/bulk/<int:job_id>/reverse"): MGR,
    # PIPL requests (issue 16.3): managers only
    ("GET", "/api/v1/members/<int:member_id>/export"): MGR,
    ("GET", "/api/v1/members/<int:member_id>/erasure"): MGR,
    ("POST", "/api/v1/members/<int:member_id>/erasure"): MGR,
    ("GET", "/api/v1/privacy-requests"): MGR,
    ("GET", "/members/<int:member_id>/export"): MGR,
    ("POST", "/members/<int:member_id>/export"): MGR,
    ("GET", "/members/<int:member_id>/erase"): MGR,
    ("POST", "/members/<int:member_id>/erase"): MGR,
    ("GET", "/privacy-requests"): MGR,
    # Merging duplicates (issue 16.2): managers; suggestions to anyone who looks members up
    ("POST", "/api/v1/members/<int:member_id>/merge"): MGR,
    ("GET", "/api/v1/members/<int:member_id>/duplicates"): LOOKUP,
    ("GET", "/members/<int:member_id>/merge"): MGR,
    ("POST", "/members/<int:member_id>/merge"): MGR,
    # Hotel front desk (issue 17.2): reservations from the PMS and the arrivals list, managers and front desk
    ("POST", "/api/v1/reservations"): DESK,
    ("POST", "/api/v1/imports/reservations"): DESK,
    ("GET", "/api/v1/arrivals"): DESK,
    ("GET", "/frontdesk/arrivals"): DESK,
    # Hotel stays in the programme (issue 17.1): the PMS posts a stay at check-out as front desk or a
    # manager; the stays' rates per segment are read by them and set by admins
    ("POST", "/api/v1/stays"): DESK,
    ("GET", "/api/v1/stays/rates"): DESK,
    ("PUT", "/api/v1/stays/rates"): ADMIN,
    ("POST", "/admin/programme/stay-rates"): ADMIN,
    # Corporate accounts at the till (issue 17.3): managers run the accounts; the till (counter) reads one
    ("GET", "/api/v1/companies/<int:company_id>/account"): COUNTER,
    ("PUT", "/api/v1/companies/<int:company_id>/account"): MGR,
    ("POST", "/api/v1/companies/<int:company_id>/signers/<int:member_id>"): MGR,
    ("DELETE", "/api/v1/companies/<int:company_id>/signers/<int:member_id>"): MGR,
    ("POST", "/api/v1/companies/<int:company_id>/account/payments"): MGR,
    ("GET", "/api/v1/companies/<int:company_id>/statements/<int:year>/<int:month>"): MGR,
    ("GET", "/api/v1/companies/ageing"): MGR,
    ("GET", "/corporate/"): MGR,
    ("POST", "/corporate/"): MGR,
    ("GET", "/corporate/<int:company_id>"): MGR,
    ("POST", "/corporate/<int:company_id>"): MGR,
    ("POST", "/corporate/<int:company_id>/signers"): MGR,
    ("POST", "/corporate/<int:company_id>/signers/<int:member_id>/remove"): MGR,
    ("POST", "/corporate/<int:company_id>/payments"): MGR,
    ("GET", "/corporate/<int:company_id>/statements/<int:year>/<int:month>"): MGR,
    ("GET", "/corporate/ageing"): MGR,
}


def _routes(app):
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            yield method, rule.rule


def _concrete(path):
    """Fill path parameters with values that reach the view (which may then 404)."""
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "999999" if m[1] in ("int", "card") else "X", path)


def test_policy_covers_every_route(app):
    assert set(_routes(app)) == set(POLICY)


def _api_status(client, method, url, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.open(url, method=method, headers=headers, json={}).status_code


@pytest.mark.parametrize("role", sorted(ALL))
def test_every_api_route_admits_exactly_its_roles(app, client, login_api, role):
    token = login_api(role).token
    wrong = []
    for (method, path), allowed in POLICY.items():
        if not path.startswith("/api/") or allowed == PUBLIC or path == "/api/v1/auth/token":
            continue
        status = _api_status(client, method, _concrete(path), token)
        if (role in allowed) == (status == 403) or status == 401:
            wrong.append((method, path, status))
    assert wrong == []


def test_api_routes_without_a_token_are_401_unless_public(app, client):
    for (method, path), allowed in POLICY.items():
        if path.startswith("/api/") and allowed != PUBLIC:
            r = client.open(_concrete(path), method=method, json={})
            assert r.status_code == 401, (method, path)
            assert r.json["error"]["code"] == "unauthorized"


def test_ui_routes_admit_exactly_their_roles(app, client, staff):
    from tests.test_ui import ui_login
    for role in sorted(ALL):
        ui = ui_login(app, staff[role])
        for (method, path), allowed in POLICY.items():
            if path.startswith(("/api/", "/static", "/login", "/lang", "/healthz", "/readyz")) or allowed == PUBLIC:
                continue
            if path == "/logout":
                continue  # would end the session used for the rest of the loop
            r = ui.open(_concrete(path), method=method, data={"csrf_token": ui.csrf})
            assert (r.status_code == 403) == (role not in allowed), (role, method, path, r.status_code)


def test_ui_routes_send_anonymous_visitors_to_login(app, client):
    for (method, path), allowed in POLICY.items():
        if path.startswith("/api/") or allowed == PUBLIC or method != "GET":
            continue
        r = client.get(_concrete(path))
        assert r.status_code == 302 and "/login" in r.location, path


def test_unmarked_route_is_closed_to_everyone(tmp_path):
    """A view someone forgot to mark is refused, even to admin."""
    from crm.auth import service
    from crm.extensions import db
    from tests.conftest import PASSWORD, SYSTEM, make_app
    from tests.test_ui import ui_login

    app = make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}")

    @app.route("/forgotten")
    def forgotten():
        return "should not be reachable"

    with app.app_context():
        db.create_all()
        service.create_staff(SYSTEM, username="boss", password=PASSWORD, role="admin")
        db.session.commit()
    ui = ui_login(app, "boss")
    resp = ui.get("/forgotten")
    assert resp.status_code == 403
    assert b"should not be reachable" not in resp.data
