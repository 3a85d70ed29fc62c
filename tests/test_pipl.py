"""PIPL requests (issue 16.3): a copy of a member's data, corrections, erasure by anonymisation,
the request log and the retention job."""
import json
import re
from datetime import timedelta

import pytest

from tests.conftest import audit_problems
from tests.test_ui import text, ui_login


def _top_up(cashier, member_id, amount):
    r = cashier.post(f"/api/v1/members/{member_id}/wallet/top-ups",
                     json={"store_code": "BJ01", "amount": amount, "payment_method": "wechat"})
    assert r.status_code == 201, r.json


def _reports(manager, day):
    q = f"from={day}&to={day}"
    return {name: manager.get(f"/api/v1/reports/{name}?{q}").json
            for name in ("kpis", "segments", "rankings")} | {
        "kpis_bj01": manager.get(f"/api/v1/reports/kpis?store_code=BJ01&{q}").json,
        "monthly": manager.get(f"/api/v1/reports/monthly?year={day[:4]}").json}


def _audience_size(app) -> int:
    """Members an audience of everyone selects (campaign fan-out uses the same conditions)."""
    from crm.campaigns import audiences
    with app.app_context():
        return audiences.count({})


@pytest.fixture
def rich_member(app, staff, login_api, member_factory, issue_card, catalogue, checkout, cashier):
    """A member with a card, consent given then withdrawn, two bills (points earned), a top-up
    (principal and bonus), a phone link and tags: {member, card_no}."""
    m = member_factory(name="李秀英", mobile="13812345678", email="lxy@example.com", birthday="1985-06-01",
                       gender="female", notes="喜欢靠窗", tags=["VIP"], marketing_consent={"sms": True, "email": True})
    card = issue_card(m["id"]).json
    desk = login_api("front_desk")
    assert desk.patch(f"/api/v1/members/{m['id']}", json={"marketing_consent": {"email": False}}).status_code == 200
    for items in ([("SALMON", 2)], [("LOBSTER", 1)]):
        assert checkout(items, member_id=m["id"], covers=2).status_code == 201
    _top_up(cashier, m["id"], "5000.00")  # +600.00 bonus (the default tiers)
    from tests.test_phone_card import phone_link
    return {"member": m, "card_no": card["card_no"], "link": phone_link(app, staff, m["id"])}


def test_export_json_has_consent_history_ledgers_bills_and_audit(login_api, rich_member):
    manager, m = login_api("manager"), rich_member["member"]
    r = manager.get(f"/api/v1/members/{m['id']}/export?reason=书面申请 2026-12-01")
    assert r.status_code == 200, r.json
    assert "attachment" in r.headers["Content-Disposition"]
    data = json.loads(r.data)
    assert data["member"]["name"] == "李秀英" and data["member"]["mobile"] == "13812345678"
    history = [(h["action"], h["details"]["channel"]) for h in data["consents"]["history"]]
    assert ("member.consent_granted", "sms") in history and ("member.consent_withdrawn", "email") in history
    assert len(data["bills"]) == 2 and all(b["lines"] and b["tenders"] for b in data["bills"])
    assert {e["kind"] for e in data["points"]["entries"]} == {"earn"} and data["points"]["lots"]
    assert {e["kind"] for e in data["wallet"]["entries"]} == {"topup"} and data["wallet"]["topups"][0]["amount"]
    assert data["cards"][0]["card_no"] == rich_member["card_no"]
    actions = {a["action"] for a in data["audit"]}
    assert {"member.register", "member.update", "card.issue"} <= actions, actions
    assert "token_hash" not in json.dumps(data)
    log = manager.get(f"/api/v1/privacy-requests?member_id={m['id']}").json
    assert [(x["kind"], x["username"], x["reason"]) for x in log["items"]] == [
        ("export", "manager", "书面申请 2026-12-01")]


def test_export_needs_a_manager_and_a_reason(login_api, member_factory):
    m = member_factory()
    assert login_api("front_desk").get(f"/api/v1/members/{m['id']}/export?reason=x").status_code == 403
    assert login_api("manager").get(f"/api/v1/members/{m['id']}/export").status_code == 422
    assert login_api("front_desk").get("/api/v1/privacy-requests").status_code == 403
    r = login_api("front_desk").post(f"/api/v1/members/{m['id']}/erasure", json={
        "reason": "x", "wallet_rule": "refund", "confirm": {"points": 0, "principal": "0", "bonus": "0"}})
    assert r.status_code == 403


def test_html_export_renders_and_is_logged(app, staff, rich_member):
    ui = ui_login(app, staff["manager"], lang="en")
    member_id = rich_member["member"]["id"]
    assert ui.get(f"/members/{member_id}/export").status_code == 200
    r = ui.post(f"/members/{member_id}/export", {"reason": ""})
    assert r.status_code == 422 and "Say why" in text(r)
    r = ui.post(f"/members/{member_id}/export", {"reason": "member asked at the desk", "format": "html"})
    page = text(r)
    assert r.status_code == 200 and "李秀英" in page and "Consent history" in page and "data-print" in page
    assert "member.consent_withdrawn" in page and "Audit trail" in page
    r = ui.post(f"/members/{member_id}/export", {"reason": "copy by email", "format": "json"})
    assert r.mimetype == "application/json" and json.loads(r.data)["member"]["id"] == member_id
    log = text(ui.get("/privacy-requests"))
    assert "member asked at the desk" in log and "copy by email" in log


def test_correction_through_the_edit_is_audited_and_logged(app, login_api, member_factory):
    desk, m = login_api("front_desk"), member_factory(name="王小明", email="old@example.com")
    r = desk.patch(f"/api/v1/members/{m['id']}", json={"email": "new@example.com", "pipl_correction": True})
    assert r.status_code == 422 and r.json["error"]["code"] == "reason_required", r.json
    assert r.json["error"]["details"]["field"] == "correction_reason", r.json
    assert login_api("manager").get(f"/api/v1/members/{m['id']}").json["email"] == "old@example.com"
    r = desk.patch(f"/api/v1/members/{m['id']}", json={"email": "new@example.com", "pipl_correction": True,
                                                        "correction_reason": "email was wrong"})
    assert r.status_code == 200 and r.json["email"] == "new@example.com"
    data = json.loads(login_api("manager").get(f"/api/v1/members/{m['id']}/export?reason=check").data)
    update = [a for a in data["audit"] if a["action"] == "member.update"][-1]
    assert update["details"]["changes"] == {"email": ["old@example.com", "new@example.com"]}
    kinds = [(x["kind"], x["reason"]) for x in data["privacy_requests"]]
    assert ("correction", "email was wrong") in kinds


def test_erasure_anonymises_keeps_reports_and_settles_balances(app, login_api, rich_member, store_today, staff):
    manager, desk, m = login_api("manager"), login_api("front_desk"), rich_member["member"]
    member_id = m["id"]
    before = _reports(manager, store_today)
    audience_before = _audience_size(app)
    preview = manager.get(f"/api/v1/members/{member_id}/erasure").json
    assert preview["anonymised_at"] is None and preview["points"] > 0
    assert (preview["principal"], preview["bonus"]) == ("5000.00", "600.00")
    body = {"reason": "会员书面要求删除", "wallet_rule": "refund",
            "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}}
    stale = {**body, "confirm": {**body["confirm"], "points": preview["points"] + 1}}
    r = manager.post(f"/api/v1/members/{member_id}/erasure", json=stale)
    assert r.status_code == 409 and r.json["error"]["code"] == "balances_changed"
    r = manager.post(f"/api/v1/members/{member_id}/erasure", json={**body, "reason": " "})
    assert r.status_code == 422
    r = manager.post(f"/api/v1/members/{member_id}/erasure", json=body)
    assert r.status_code == 200, r.json
    assert r.json["points_forfeited"] == preview["points"] and r.json["principal_refunded"] == preview["principal"]
    assert r.json["bonus_forfeited"] == preview["bonus"]

    # Found by no search: old mobile, name, last 4, card, phone link.
    for q in ("13812345678", "李秀英", "李", "5678", rich_member["card_no"], "anon"):
        assert desk.get(f"/api/v1/members?q={q}").json["total"] == 0, q
    ui = ui_login(app, staff["front_desk"], lang="en")
    for q in ("13812345678", "李秀英"):
        page = ui.get(f"/?q={q}")
        assert page.status_code == 200 and f"/members/{member_id}\"" not in text(page), q
    assert app.test_client().get(rich_member["link"]).status_code in (404, 410, 302)
    after = manager.get(f"/api/v1/members/{member_id}").json
    assert (after["name"], after["email"], after["birthday"], after["tags"], after["notes"]) == ("", None, None, [], "")
    assert after["mobile"] != "13812345678" and after["card"] is None and after["anonymised_at"]
    assert after["marketing_consent"]["sms"] is False and after["service_consent"] is False
    wallet = manager.get(f"/api/v1/members/{member_id}/wallet").json
    assert wallet["principal"] == wallet["bonus"] == "0.00"

    # Reports of the day: every count and sum the same; only what is still owed fell by what was settled.
    now = _reports(manager, store_today)
    owed = ("wallet_outstanding_principal", "wallet_outstanding_bonus", "points_outstanding")
    for name in ("kpis", "kpis_bj01"):
        assert {k: v for k, v in now[name].items() if k not in owed} == \
               {k: v for k, v in before[name].items() if k not in owed}
        assert now[name]["points_outstanding"] == before[name]["points_outstanding"] - preview["points"]
        assert now[name]["wallet_outstanding_principal"] == "0.00"
    assert now["segments"] == before["segments"] and now["rankings"] == before["rankings"]
    assert now["monthly"] == before["monthly"]
    assert audit_problems(app) == []
    r = app.test_cli_runner().invoke(args=["crm", "audit"])
    assert r.exit_code == 0 and "All ledgers balance." in r.output, r.output
    assert _audience_size(app) == audience_before - 1  # out of every audience, campaign and greeting
    # The mobile is free again: the same person may join afresh, as a new member.
    again = desk.post("/api/v1/members", json={"name": "李秀英", "mobile": "13812345678", "store_code": "BJ01"})
    assert again.status_code == 201 and again.json["id"] != member_id
    assert [x["id"] for x in desk.get("/api/v1/members?q=13812345678").json["items"]] == [again.json["id"]]

    # Done once: again is a clean 409 and nothing more is written; edits are refused.
    r = manager.post(f"/api/v1/members/{member_id}/erasure", json=body)
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised"
    r = desk.patch(f"/api/v1/members/{member_id}", json={"name": "回来了"})
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised"
    cashier = login_api("cashier")
    r = cashier.post(f"/api/v1/members/{member_id}/wallet/top-ups",
                     json={"store_code": "BJ01", "amount": "100.00", "payment_method": "wechat"})
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised"
    r = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01", "member_id": member_id,
                                                "items": [{"sku": "TEA", "qty": 1}]})
    assert r.status_code == 409 and r.json["error"]["code"] == "member_anonymised"
    # An old bill can still be voided: the points it earned were forfeited, so they are written off.
    bill = json.loads(manager.get(f"/api/v1/members/{member_id}/export?reason=before void").data)["bills"][0]
    r = manager.post(f"/api/v1/checkouts/{bill['id']}/void", json={"reason": "wrong table"})
    assert r.status_code == 201 and r.json["points_reclaimed"] == 0, r.json
    assert audit_problems(app) == []
    log = manager.get(f"/api/v1/privacy-requests?member_id={member_id}&kind=erasure").json
    assert log["total"] == 1 and log["items"][0]["reason"] == "会员书面要求删除"
    manager_ui = ui_login(app, staff["manager"], lang="en")
    page = text(manager_ui.get(f"/members/{member_id}"))
    assert "Anonymised on" in page and "李秀英" not in page and f"/members/{member_id}/edit" not in page
    r = manager_ui.get(f"/members/{member_id}/edit")
    assert r.status_code == 302 and "can no longer be changed" in text(manager_ui.get(r.location))
    assert manager_ui.get(f"/members/{member_id}/erase").status_code == 200  # says when, offers nothing


def test_erasure_can_forfeit_the_stored_value(app, login_api, member_factory, cashier):
    manager, m = login_api("manager"), member_factory()
    _top_up(cashier, m["id"], "500.00")
    preview = manager.get(f"/api/v1/members/{m['id']}/erasure").json
    r = manager.post(f"/api/v1/members/{m['id']}/erasure", json={
        "reason": "member gave it up in writing", "wallet_rule": "forfeit",
        "confirm": {k: preview[k] for k in ("points", "principal", "bonus")}})
    assert r.status_code == 200, r.json
    assert r.json["principal_forfeited"] == "500.00" and "principal_refunded" not in r.json
    assert r.json["bonus_forfeited"] == preview["bonus"]
    assert manager.get(f"/api/v1/members/{m['id']}/wallet").json["principal"] == "0.00"
    assert audit_problems(app) == []


def test_erasure_page_shows_balances_and_needs_a_reason(app, staff, login_api, member_factory, cashier):
    m = member_factory(name="赵六")
    _top_up(cashier, m["id"], "500.00")
    ui = ui_login(app, staff["manager"], lang="en")
    page = ui.get(f"/members/{m['id']}/erase")
    assert page.status_code == 200 and "500.00" in text(page)
    r = ui.post(f"/members/{m['id']}/erase", {"wallet_rule": "refund", "reason": "", "seen_points": "0",
                                              "seen_principal": "50000", "seen_bonus": "0"})
    assert r.status_code == 422 and "reason" in text(r).lower()
    ui.get(f"/members/{m['id']}/erase")
    bonus = login_api("manager").get(f"/api/v1/members/{m['id']}/erasure").json["bonus"]
    r = ui.post(f"/members/{m['id']}/erase", {"wallet_rule": "refund", "reason": "asked in person",
                                              "seen_points": "0", "seen_principal": "50000",
                                              "seen_bonus": str(int(float(bonus) * 100))})
    assert r.status_code == 302, text(r)[:2000]
    assert "Anonymised on" in text(ui.get(f"/members/{m['id']}"))
    assert ui_login(app, staff["front_desk"]).get(f"/members/{m['id']}/erase").status_code == 403


def test_retention_job_is_off_by_default_and_takes_only_the_inactive(app, staff, login_api, member_factory,
                                                                     catalogue, checkout, cashier, clock):
    from crm.members import pipl
    from tests.test_phone_card import phone_link
    old, active, linked, topped = (member_factory(name=n) for n in ("老会员", "常客", "手机卡", "储值"))
    _top_up(cashier, topped["id"], "100.00")  # holds stored value: settled by hand, never by the job
    clock.advance(minutes=10)
    bill_at = clock.now()
    assert checkout([("TEA", 1)], member_id=active["id"]).status_code == 201
    phone_link(app, staff, linked["id"])
    runner = app.test_cli_runner()
    r = runner.invoke(args=["crm", "anonymise-inactive"])
    assert r.exit_code == 0 and "off" in r.output, r.output
    with app.app_context():
        assert app.config["PIPL_RETENTION_YEARS"] == 0 and pipl.anonymise_inactive()["off"] is True
    # A year after just before the bill: registered before the cut-off, only `old` did nothing since.
    job_now = (bill_at - timedelta(minutes=5)).replace(year=bill_at.year + 1)
    with app.app_context():
        assert pipl.anonymise_inactive(1, dry_run=True, now=job_now)["inactive"] == 1
        done = pipl.anonymise_inactive(1, now=job_now, batch=1)
        again = pipl.anonymise_inactive(1, now=job_now)
    assert done["anonymised"] == 1 and again["anonymised"] == 0
    manager = login_api("manager")
    states = {x["name"]: manager.get(f"/api/v1/members/{x['id']}").json["anonymised_at"]
              for x in (old, active, linked, topped)}
    assert states["老会员"] and not states["常客"] and not states["手机卡"] and not states["储值"], states
    log = manager.get("/api/v1/privacy-requests?kind=erasure").json
    assert log["total"] == 1 and log["items"][0]["username"] == "pipl-retention"
    assert log["items"][0]["details"]["source"] == "retention"
    # From the command line, with the years configured: a dry run counts, nothing changes.
    app.config["PIPL_RETENTION_YEARS"] = 1
    try:
        r = runner.invoke(args=["crm", "anonymise-inactive", "--dry-run"])
    finally:
        app.config["PIPL_RETENTION_YEARS"] = 0
    assert r.exit_code == 0 and "would anonymise 0" in r.output.lower(), r.output
    assert audit_problems(app) == []


def test_correction_from_the_edit_form(app, staff, login_api, member_factory):
    m = member_factory(name="陈静", mobile="13900007777")
    ui = ui_login(app, staff["front_desk"], lang="en")
    page = ui.get(f"/members/{m['id']}/edit")
    assert "Correction request (PIPL)" in text(page)
    form = {"name": "陈晶", "mobile": "13900007777", "service_consent": "1",
            "shown_service_consent": "1", "shown_consent_sms": "0", "shown_consent_email": "0", "pipl_correction": "1"}
    r = ui.post(f"/members/{m['id']}/edit", form)
    assert r.status_code == 422 and "Say what the member asked to correct." in text(r), \
        re.findall(r'<li>.*?</li>', text(r))
    assert login_api("manager").get(f"/api/v1/members/{m['id']}").json["name"] == "陈静"
    r = ui.post(f"/members/{m['id']}/edit", {**form, "correction_reason": "name misspelt at sign-up"})
    assert r.status_code == 302
    log = login_api("manager").get(f"/api/v1/privacy-requests?member_id={m['id']}").json["items"]
    assert [(x["kind"], x["reason"], x["details"]["fields"]) for x in log] == [
        ("correction", "name misspelt at sign-up", ["name"])]
    # An edit without the box is audited (before and after) but is no request.
    assert ui.get(f"/members/{m['id']}/edit").status_code == 200
    plain = {k: v for k, v in form.items() if k != "pipl_correction"}
    r = ui.post(f"/members/{m['id']}/edit", {**plain, "name": "陈晶晶"})
    assert r.status_code == 302
    assert login_api("manager").get(f"/api/v1/privacy-requests?member_id={m['id']}").json["total"] == 1


def test_an_erasure_and_a_top_up_at_once_never_lose_money(app, login_api, member_factory, cashier):
    """Three erasures and a top-up of one member at once: one erasure wins; the top-up comes
    first (its money is then in the confirmed figures no more: 409 balances_changed) or is
    refused after (409 member_anonymised); never a 5xx, and the ledgers balance."""
    from tests.test_races import api_call, race
    manager, m = login_api("manager"), member_factory()
    _top_up(cashier, m["id"], "100.00")
    preview = manager.get(f"/api/v1/members/{m['id']}/erasure").json
    body = {"reason": "race", "wallet_rule": "refund", "confirm": {k: preview[k] for k in ("points", "principal",
                                                                                           "bonus")}}

    def act(i):
        if i == 3:
            return api_call(app, cashier.token, "POST", f"/api/v1/members/{m['id']}/wallet/top-ups",
                            {"store_code": "BJ01", "amount": "50.00", "payment_method": "wechat"})
        return api_call(app, manager.token, "POST", f"/api/v1/members/{m['id']}/erasure", body)
    results = race(4, act)
    erasures, top_up = results[:3], results[3]
    assert all(s < 500 for s, _, _ in results), results
    won = [r for r in erasures if r[0] == 200]
    assert len(won) <= 1 and all(c in ("member_anonymised", "balances_changed") for s, c, _ in erasures if s != 200)
    if top_up[0] == 201:  # the top-up came first: the erasures saw other balances than confirmed
        assert not won and manager.get(f"/api/v1/members/{m['id']}/wallet").json["principal"] == "150.00"
    else:
        assert top_up[1] == "member_anonymised" and len(won) == 1
        assert manager.get(f"/api/v1/members/{m['id']}/wallet").json["principal"] == "0.00"
    assert manager.get("/api/v1/privacy-requests?kind=erasure").json["total"] == len(won)
    assert audit_problems(app) == []
