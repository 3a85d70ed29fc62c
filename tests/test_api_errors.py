"""Every /api/ answer is JSON in the contract's error shape; the OpenAPI document is complete."""


def _is_error(resp, status, code):
    assert resp.status_code == status, resp.data[:300]
    assert resp.is_json, resp.data[:300]
    assert set(resp.json) == {"error"} and set(resp.json["error"]) == {"code", "message", "details"}
    assert resp.json["error"]["code"] == code
    return resp.json["error"]


def test_unknown_path_is_json_404(client):
    _is_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_json_405(desk):
    _is_error(desk.delete("/api/v1/members"), 405, "method_not_allowed")


def test_malformed_json_is_400(desk):
    r = desk.post("/api/v1/members", data="{not json", headers={"Content-Type": "application/json"})
    _is_error(r, 400, "malformed_json")


def test_field_errors_are_422_with_each_field(desk):
    err = _is_error(desk.post("/api/v1/members", json={"mobile": "12", "birthday": "13-01", "colour": "red"}),
                    422, "validation_error")
    assert set(err["details"]["fields"]) == {"name", "mobile", "birthday", "store_code", "colour"}


def test_unexpected_exception_is_json_500_without_traceback(app, desk, monkeypatch):
    from crm.members import service

    def boom(*a, **k):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(service, "get_member", boom)
    err = _is_error(desk.get("/api/v1/members/1"), 500, "internal_error")
    assert "secret" not in err["message"] and "Traceback" not in err["message"]


def test_missing_resources_are_404_with_codes(desk):
    _is_error(desk.get("/api/v1/members/424242"), 404, "member_not_found")
    _is_error(desk.get("/api/v1/cards/8600000000000000"), 404, "card_not_found")
    _is_error(desk.get("/api/v1/stores/NOPE"), 404, "not_found")


def test_openapi_document_lists_the_contract(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    for path in ("/api/v1/auth/token", "/api/v1/members", "/api/v1/members/{member_id}",
                 "/api/v1/members/{member_id}/cards", "/api/v1/cards/scan", "/api/v1/cards/{card_no}/qr.png",
                 "/api/v1/cards/{card_no}/replace", "/api/v1/stores", "/api/v1/levels"):
        assert path in doc["paths"], path
    assert "bearerAuth" in doc["components"]["securitySchemes"]
    body = doc["paths"]["/api/v1/members"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("MemberCreate")


def test_docs_page_works_offline(client):
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.data.decode()
    assert "/api/v1/openapi.json" in html and "//cdn" not in html and "unpkg" not in html
    # Its scripts are served by us, not fetched from the internet.
    assert client.get("/api/v1/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/v1/docs/swagger-ui.css").status_code == 200
