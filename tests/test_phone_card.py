"""The phone card: a private link shows a rotating code the till accepts for about a minute."""
import re

from crm.cards import codes
from crm.core.timeutil import now_ts
from tests.test_ui import text, ui_login


def phone_link(app, staff, member_id):
    ui = ui_login(app, staff["front_desk"], lang="en")
    ui.get(f"/members/{member_id}")
    r = ui.post(f"/members/{member_id}/phone-card", {})
    assert r.status_code == 200, text(r)[:500]
    return re.search(r'http://localhost(/m/[A-Za-z0-9_\-]+)', text(r))[1]


def test_phone_code_scans_at_the_till_and_expires(app, staff, member_factory, issue_card, cashier, client):
    m = member_factory(name="王芳")
    card_no = issue_card(m["id"]).json["card_no"]
    path = phone_link(app, staff, m["id"])
    page = client.get(path)  # Chinese by default  # no log-in: the link is the member's own
    assert page.status_code == 200 and "<svg" in text(page) and "王*" in text(page)
    assert page.headers["Cache-Control"] == "no-store"
    with app.app_context():
        from crm.cards.service import get_card
        card_id = get_card(card_no).id
        fresh = codes.dynamic_payload(card_id)
        stale = codes.dynamic_payload(card_id, now=now_ts() - 120)
        forged = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    assert card_no not in fresh  # a screenshot does not give away the number a cashier could type
    r = cashier.post("/api/v1/cards/scan", json={"code": fresh})
    assert r.status_code == 200 and r.json["id"] == m["id"], r.json
    found = cashier.get(f"/api/v1/members?q={fresh}").json["items"]  # scanned into the search box
    assert [x["id"] for x in found] == [m["id"]]
    for code in (stale, forged):
        r = cashier.post("/api/v1/cards/scan", json={"code": code})
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_code"


def test_a_new_link_revokes_the_old_and_a_lost_card_shows_no_code(app, staff, member_factory, issue_card, desk,
                                                                   client):
    m = member_factory()
    card_no = issue_card(m["id"]).json["card_no"]
    old = phone_link(app, staff, m["id"])
    new = phone_link(app, staff, m["id"])
    client.get("/lang/en")
    assert client.get(old).status_code == 404 and "no longer works" in text(client.get(old))
    assert client.get(new).status_code == 200
    assert desk.post(f"/api/v1/cards/{card_no}/lost", json={"reason": "丢了"}).status_code == 200
    page = text(client.get(new))
    assert "<svg" not in page and "No active card" in page
    assert client.get("/m/not-a-real-token").status_code == 404


def test_odd_digits_in_a_phone_code_are_an_invalid_code(cashier, stores):
    for code in ("CRM2.8600000000000001.²³.AAAA", "CRM2.8600000000000001." + "9" * 5000 + ".AAAA"):
        r = cashier.post("/api/v1/cards/scan", json={"code": code[:200]})
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_code"
    assert cashier.get("/api/v1/members?q=CRM2.8600000000000001.²³.AAAA").status_code == 200
