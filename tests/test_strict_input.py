"""Strict input at the edge (issue 11): numbers are what they say, money is a decimal string,
ids fit their columns, control characters never reach the database, and the OpenAPI document
is valid 3.1 and tells callers the errors each operation gives."""
import json

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.test_ui import ui_login


def _fields(r):
    return r.get_json()["error"]["details"].get("fields", {})


@pytest.fixture
def member(member_factory):
    return member_factory()


@pytest.mark.parametrize("points", [1.5, "12", True, 1e3])
def test_points_must_be_a_json_integer(login_api, member, points):
    r = login_api("manager").post(f"/api/v1/members/{member['id']}/points/adjustments",
                                  json={"points": points, "reason": "goodwill"})
    assert r.status_code == 422 and "points" in _fields(r)
    entries = login_api("manager").get(f"/api/v1/members/{member['id']}/points/entries").get_json()
    assert entries["total"] == 0  # nothing was booked, not even a truncated 1


@pytest.mark.parametrize("amount", [100.5, 100, "1e3", "１００", "100.005", "1,000", " ", "NaN"])
def test_money_is_only_an_ascii_decimal_string(desk, member, amount):
    r = desk.post(f"/api/v1/members/{member['id']}/wallet/top-ups",
                  json={"amount": amount, "payment_method": "cash", "store_code": "BJ01"})
    assert r.status_code == 422 and "amount" in _fields(r)
    assert desk.get(f"/api/v1/members/{member['id']}/wallet").get_json()["balance"] == "0.00"


def test_a_plain_decimal_string_tops_up(desk, member):
    r = desk.post(f"/api/v1/members/{member['id']}/wallet/top-ups",
                  json={"amount": "100.50", "payment_method": "cash", "store_code": "BJ01"})
    assert r.status_code == 201 and r.get_json()["principal_added"] == "100.50"


def test_money_limits_are_stated_in_money_not_fen(desk, member):
    r = desk.post(f"/api/v1/members/{member['id']}/wallet/top-ups",
                  json={"amount": "0.00", "payment_method": "cash", "store_code": "BJ01"})
    assert r.status_code == 422
    message = " ".join(_fields(r)["amount"])
    assert "0.01" in message and "100" not in message.replace("1000000", "")  # no fen integers


def test_a_wallet_payment_over_the_bill_names_the_limit_as_money(desk, member, catalogue, checkout):
    desk.post(f"/api/v1/members/{member['id']}/wallet/top-ups",
              json={"amount": "500.00", "payment_method": "cash", "store_code": "BJ01"})
    r = checkout([("TEA", 1)], member_id=member["id"], wallet_amount="30.00")
    assert r.status_code == 422
    assert r.get_json()["error"]["code"] == "wallet_exceeds_bill"
    assert r.get_json()["error"]["details"]["max"] == "20.00"


@pytest.mark.parametrize("query", ["page=１", "page=1.5", "page=99999999999", "member_id=2147483648",
                                   "per_page=0x10"])
def test_query_numbers_are_ascii_digits_within_range(cashier, query):
    r = cashier.get(f"/api/v1/checkouts?{query}")
    assert r.status_code == 422
    assert query.split("=")[0] in _fields(r)


def test_an_id_in_a_body_beyond_its_column_is_refused_by_name(login_api, member):
    r = login_api("marketing").post("/api/v1/campaigns", json={
        "name": "x", "audience_id": 2147483648, "template_id": 2147483648, "channel": "sms"})
    assert r.status_code == 422
    assert {"template_id"} <= set(_fields(r))


def test_nul_in_the_anonymous_login_is_a_coded_422(client):
    r = client.post("/api/v1/auth/token", json={"username": "a\u0000", "password": "x"})
    assert r.status_code == 422
    assert r.get_json()["error"] == {"code": "invalid_characters", "details": {"field": "username"},
                                     "message": r.get_json()["error"]["message"]}


@pytest.mark.parametrize("path", ["/api/v1/members?q=a%00", "/api/v1/members?q=%1b%5b2J"])
def test_control_characters_in_a_query_are_refused(desk, path):
    r = desk.get(path)
    assert r.status_code == 422 and r.get_json()["error"]["details"]["field"] == "q"


def test_control_characters_deep_in_a_body_name_their_field(desk, member):
    r = desk.patch(f"/api/v1/members/{member['id']}", json={"name": "张\u0007三"})
    assert r.status_code == 422 and r.get_json()["error"]["details"]["field"] == "name"
    assert desk.get(f"/api/v1/members/{member['id']}").get_json()["name"] == member["name"]


def test_tabs_and_new_lines_are_ordinary_text(desk, member):
    r = desk.patch(f"/api/v1/members/{member['id']}", json={"notes": "line one\nline two\tend"})
    assert r.status_code == 200, r.get_json()


def test_a_staff_form_with_a_control_character_says_so_beside_the_field(app, staff, member):
    ui = ui_login(app, "frontdesk")
    page = ui.get(f"/members/{member['id']}/edit")
    assert page.status_code == 200
    r = ui.post(f"/members/{member['id']}/edit", {"name": "李\u0000四", "mobile": member["mobile"]})
    assert r.status_code == 422
    assert "控制字符" in r.data.decode() or "control characters" in r.data.decode()


def test_a_body_that_is_not_json_is_415_not_an_empty_body(desk, member):
    r = desk.client.patch(f"/api/v1/members/{member['id']}", data="name=x",
                          headers={**desk._headers(), "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.get_json()["error"]["code"] == "unsupported_media_type"


def test_405_lists_the_allowed_methods(desk):
    r = desk.get("/api/v1/cards/scan")
    assert r.status_code == 405 and r.headers["Allow"].replace(" ", "").split(",").count("POST") == 1
    assert r.get_json()["error"]["code"] == "method_not_allowed"


def test_the_bearer_scheme_is_case_insensitive(desk):
    for scheme in ("bearer", "BEARER"):
        r = desk.client.get("/api/v1/auth/me", headers={"Authorization": f"{scheme} {desk.token}"})
        assert r.status_code == 200


@pytest.mark.parametrize("prize", [{"coupon_type": {}}, {"coupon_type": 7}, {"coupon_type": ["A"]}])
def test_a_coupon_type_is_named_by_a_string(login_api, prize):
    r = login_api("manager").post("/api/v1/draw-prizes", json={"name": "x", "weight": 1, "stock": 1, **prize})
    assert r.status_code == 422 and "coupon_type" in _fields(r)


def test_the_openapi_document_is_valid_3_1_and_lists_errors(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert list(OpenAPIV31SpecValidator(doc).iter_errors()) == []
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            codes = set(op["responses"])
            assert {"400", "404", "422", "503"} <= codes, (method, path)
            if op.get("security") != []:
                assert {"401", "403"} <= codes, (method, path)
            if method != "get":
                assert {"409", "415"} <= codes, (method, path)
    top_up = doc["paths"]["/api/v1/members/{member_id}/wallet/top-ups"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in top_up["parameters"])
    amount = doc["components"]["schemas"]["TopUpIn"]["properties"]["amount"]
    assert amount["type"] == "string" and amount["pattern"]
    bills = doc["paths"]["/api/v1/reports/bills"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in bills
    assert doc["paths"]["/api/v1/auth/token"]["post"]["security"] == []
    json.dumps(doc)  # serialisable as served


def test_an_unreachable_rate_limit_store_is_503_with_retry_after(app, staff):
    from crm import create_app
    down = create_app("config.TestConfig", SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                      RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    r = down.test_client().post("/api/v1/auth/token", json={"username": "cashier", "password": "wrong"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "10"
    assert r.get_json()["error"]["code"] == "service_unavailable"


@pytest.mark.parametrize("amount", [" 12.50", "12.50 ", "\t12.50\n"])
def test_json_money_is_exactly_the_documented_pattern(desk, member, amount):
    r = desk.post(f"/api/v1/members/{member['id']}/wallet/top-ups",
                  json={"amount": amount, "payment_method": "cash", "store_code": "BJ01"})
    assert r.status_code == 422 and "amount" in _fields(r)


@pytest.mark.parametrize("pin", ["１２３４５６", "١٢٣٤٥٦"])
def test_a_pin_is_six_ascii_digits(desk, member, pin):
    r = desk.put(f"/api/v1/members/{member['id']}/wallet/pin", json={"pin": pin})
    assert r.status_code == 422


@pytest.mark.parametrize("path", ["/api/v1/members/%EF%BC%91", "/api/v1/staff/%D9%A1"])
def test_path_ids_are_ascii_digits(login_api, member, path):
    assert login_api("admin").get(path).status_code == 404


def test_bidi_overrides_are_refused_in_names(desk, member):
    r = desk.patch(f"/api/v1/members/{member['id']}", json={"name": "张\u202e三"})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "invalid_characters"


def test_an_anonymous_body_is_small(client):
    r = client.post("/api/v1/auth/token", json={"username": "a", "password": "x", "pad": "y" * 20000})
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"


def test_field_errors_are_capped_so_a_body_is_not_echoed_back(desk, member):
    body = {f"k{i}": i for i in range(500)}
    r = desk.patch(f"/api/v1/members/{member['id']}", json=body)
    assert r.status_code == 422
    details = r.get_json()["error"]["details"]
    assert len(details["fields"]) == 20 and details["more_fields"] == 480


def test_lists_in_a_body_are_bounded(cashier, login_api, catalogue):
    r = cashier.post("/api/v1/checkouts/quote", json={
        "store_code": "BJ01", "items": [{"sku": "TEA", "qty": 1}],
        "promotion_codes": [f"P{i}" for i in range(70_000)]})
    assert r.status_code == 422 and "promotion_codes" in _fields(r)
    r = login_api("marketing").post("/api/v1/audiences/count", json={"tags": [f"x{i}" for i in range(70_000)]})
    assert r.status_code == 422 and "tags" in _fields(r)
