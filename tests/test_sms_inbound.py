"""SMS replies: the gateway posts a member's TD / 退订 / STOP and their SMS marketing consent is
withdrawn, audited as the member's own choice; anything else changes nothing."""
import pytest
from sqlalchemy import select

from crm.core.audit import AuditEntry
from crm.extensions import db
from tests.test_races import race

TOKEN = "gateway-inbound-secret"


@pytest.fixture
def inbound(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_INBOUND_TOKEN", TOKEN)

    def post(body, token=TOKEN, client=client):
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return client.post("/api/v1/sms/inbound", json=body, headers=headers)
    return post


def consent_rows(app, member_id):
    with app.app_context():
        return db.session.execute(select(AuditEntry.role, AuditEntry.details).where(
            AuditEntry.action == "member.consent_withdrawn", AuditEntry.entity_id == str(member_id))).all()


def sms_consent(desk, member_id):
    return desk.get(f"/api/v1/members/{member_id}").json["marketing_consent"]["sms"]


@pytest.mark.parametrize("reply", ["TD", "td", "T", "退订", "STOP", "Stop!", "ＴＤ", " 退订。"])
def test_an_opt_out_reply_withdraws_sms_consent_once(app, desk, member_factory, inbound, reply):
    m = member_factory(mobile="13900001111", marketing_consent={"sms": True, "email": True})
    r = inbound({"mobile": "+86 139 0000 1111", "text": reply, "message_id": "gw-1"})
    assert r.status_code == 200 and r.json == {"result": "withdrawn"}
    assert sms_consent(desk, m["id"]) is False
    assert desk.get(f"/api/v1/members/{m['id']}").json["marketing_consent"]["email"] is True  # SMS only
    again = inbound({"mobile": "13900001111", "text": reply})  # the gateway retries, or the member replies twice
    assert again.json == {"result": "already_withdrawn"}
    [(role, details)] = consent_rows(app, m["id"])
    assert role == "system" and details["channel"] == "sms" and details["source"] == "sms_reply"
    assert details["message_id"] == "gw-1"


@pytest.mark.parametrize("reply", ["T恤有货吗", "TDX", "谢谢", "", "STOP SENDING ME WINE? no, keep them"])
def test_other_replies_change_nothing(app, desk, member_factory, inbound, reply):
    m = member_factory(mobile="13900002222", marketing_consent={"sms": True})
    r = inbound({"mobile": "13900002222", "text": reply})
    assert r.status_code == 200 and r.json == {"result": "not_an_opt_out"}
    assert sms_consent(desk, m["id"]) is True and consent_rows(app, m["id"]) == []


def test_an_unknown_or_malformed_number_is_acknowledged_without_a_change(inbound, member_factory, desk):
    m = member_factory(mobile="13900003333", marketing_consent={"sms": True})
    for mobile in ("13900009999", "not a phone", "+1"):
        r = inbound({"mobile": mobile, "text": "TD"})
        assert r.status_code == 200 and r.json == {"result": "unknown_mobile"}, r.json
    assert sms_consent(desk, m["id"]) is True


def test_only_the_gateway_token_is_accepted(app, inbound, member_factory, desk, monkeypatch):
    m = member_factory(mobile="13900004444", marketing_consent={"sms": True})
    body = {"mobile": "13900004444", "text": "TD"}
    for token in (None, "", "wrong", desk.token):  # a staff token is not the gateway's
        r = inbound(body, token=token)
        assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    monkeypatch.setitem(app.config, "SMS_INBOUND_TOKEN", "")  # not configured: nothing gets in
    assert inbound(body, token="").status_code == 401
    assert sms_consent(desk, m["id"]) is True


@pytest.mark.parametrize("body, field", [
    ({"text": "TD"}, "mobile"),
    ({"mobile": "13900005555"}, "text"),
    ({"mobile": "1390000\x005555", "text": "TD"}, "mobile"),
    ({"mobile": "13900005555", "text": "T\x00D"}, "text"),
    ({"mobile": 13900005555, "text": "TD"}, "mobile"),
    ({"mobile": "13900005555", "text": "TD", "message_id": "id with spaces"}, "message_id"),
    ({"mobile": "13900005555", "text": "x" * 1001}, "text"),
])
def test_bad_bodies_are_422_naming_the_field(inbound, member_factory, desk, body, field):
    m = member_factory(mobile="13900005555", marketing_consent={"sms": True})
    r = inbound(body)
    assert r.status_code == 422 and field in str(r.json["error"]["details"]), r.json
    assert sms_consent(desk, m["id"]) is True


def test_replies_at_once_withdraw_once(app, inbound, member_factory, desk):
    m = member_factory(mobile="13900006666", marketing_consent={"sms": True})
    results = race(6, lambda i: inbound({"mobile": "13900006666", "text": "退订"}, client=app.test_client()))
    assert sorted(r.json["result"] for r in results) == ["already_withdrawn"] * 5 + ["withdrawn"]
    assert len(consent_rows(app, m["id"])) == 1 and sms_consent(desk, m["id"]) is False


def test_the_endpoint_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").json
    op = doc["paths"]["/api/v1/sms/inbound"]["post"]
    assert op["security"] == [] and "401" in op["responses"] and "SMS_INBOUND_TOKEN" in op["description"]


@pytest.mark.parametrize("body, ok", [
    ("新品上市，欢迎光临！回TD退订", True), ("{{ name }}，生日快乐。回复T退订。", True),
    ("Hi {{ name }}, reply STOP to opt out", True),
    ("欢迎光临{{ store }}", False), ("回TD退订，欢迎光临", False), ("拒收请回复R", False)])
def test_a_marketing_sms_must_end_with_the_opt_out_hint(marketing, stores, body, ok):
    t = marketing.post("/api/v1/message-templates", json={"name": "t", "body": body}).json
    c = marketing.post("/api/v1/campaigns", json={"name": "c", "template_id": t["id"], "channel": "sms",
                                                  "schedule": "once", "send_at": "2030-01-01T10:00:00+08:00"})
    if ok:
        assert c.status_code == 201, c.json
        return
    assert c.status_code == 422 and c.json["error"]["code"] == "sms_opt_out_missing"
    assert c.json["error"]["details"]["field"] == "template_id" and "回TD退订" in c.json["error"]["message"]
    assert all(x["name"] != "c" for x in marketing.get("/api/v1/campaigns").json)
    for channel in ("email", "outbox"):  # only SMS carries the hint
        assert marketing.post("/api/v1/campaigns", json={"name": channel, "template_id": t["id"], "channel": channel,
                                                         "schedule": "once", "send_at": "2030-01-01T10:00:00+08:00"}
                              ).status_code == 201


def test_the_hint_cannot_be_edited_out_of_a_template_an_sms_campaign_uses(marketing, stores):
    t = marketing.post("/api/v1/message-templates", json={"name": "t", "body": "新品上市。回TD退订"}).json
    assert marketing.post("/api/v1/campaigns", json={"name": "c", "template_id": t["id"], "channel": "sms",
                                                     "schedule": "once", "send_at": "2030-01-01T10:00:00+08:00"}
                          ).status_code == 201
    r = marketing.patch(f"/api/v1/message-templates/{t['id']}", json={"body": "新品上市"})
    assert r.status_code == 422 and r.json["error"]["code"] == "sms_opt_out_missing"
    assert r.json["error"]["details"]["field"] == "body"
    assert marketing.get("/api/v1/message-templates").json[0]["body"] == "新品上市。回TD退订"
    r = marketing.patch(f"/api/v1/message-templates/{t['id']}", json={"body": "新品八折。回T退订"})
    assert r.status_code == 200
