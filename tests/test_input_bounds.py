"""Hostile input is a coded 4xx on both databases, never a 500: ids past their column,
NUL characters, numbers the database cannot hold, JSON nested without end."""
import re

import pytest

from crm.core.bounds import MAX_ID, json_too_deep
from tests.test_ui import ui_login

HUGE = MAX_ID + 1


def _coded(r, *statuses):
    assert r.status_code in statuses, (r.status_code, r.get_data(as_text=True)[:300])
    if r.status_code >= 400:
        assert set(r.json["error"]) == {"code", "message", "details"}
    return r


@pytest.mark.parametrize("path", [f"/api/v1/members/{HUGE}", f"/api/v1/checkouts/{HUGE}",
                                  f"/api/v1/members/{10**30}/wallet", f"/api/v1/members/{HUGE}/points"])
def test_ids_past_the_column_range_are_404(cashier, path):
    assert _coded(cashier.get(path), 404).json["error"]["code"] == "not_found"


def test_money_routes_with_huge_ids_are_404(login_api):
    manager = login_api("manager")
    _coded(manager.post(f"/api/v1/checkouts/{HUGE}/void", json={"reason": "x"}), 404)
    _coded(manager.post(f"/api/v1/members/{HUGE}/wallet/top-ups",
                        json={"store_code": "BJ01", "amount": "1.00", "payment_method": "cash"}), 404)
    _coded(manager.post(f"/api/v1/members/{HUGE}/points/adjustments", json={"points": 1, "reason": "x"}), 404)


def test_ui_pages_with_huge_ids_are_404(app, staff):
    ui = ui_login(app, "manager")
    assert ui.get(f"/members/{HUGE}").status_code == 404
    assert ui.get(f"/till/receipts/{HUGE}").status_code == 404


def test_values_the_database_cannot_hold_are_422(catalogue, cashier, login_api, member_factory):
    m = member_factory()
    close = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01", "member_id": 10**12,
                                                    "items": [{"sku": "TEA", "qty": 1}]})
    _coded(close, 422)
    nul_store = cashier.post("/api/v1/checkouts", json={"store_code": "BJ\u000001",
                                                        "items": [{"sku": "TEA", "qty": 1}]})
    _coded(nul_store, 422)
    bill = cashier.post("/api/v1/checkouts", json={"store_code": "BJ01", "member_id": m["id"],
                                                   "items": [{"sku": "TEA", "qty": 1}]}).json
    void = login_api("manager").post(f"/api/v1/checkouts/{bill['id']}/void", json={"reason": "a\u0000b"})
    _coded(void, 201, 422)  # SQLite stores a NUL; PostgreSQL cannot, and says so
    _coded(cashier.get(f"/api/v1/checkouts?member_id={10**12}"), 200, 422)
    _coded(cashier.get("/api/v1/members?q=a%00"), 200, 422)


def test_json_nested_without_end_is_400_even_before_login(client, staff):
    deep = "[" * 1000 + "]" * 1000
    r = client.post("/api/v1/auth/token", data=deep, content_type="application/json")
    assert r.status_code == 400 and r.json["error"]["code"] == "malformed_json"


def test_the_depth_check_reads_brackets_only_outside_strings():
    assert not json_too_deep(b'{"a": "' + b"[" * 500 + b'"}', limit=3)
    assert not json_too_deep(b'{"a": "\\"[[[[[["}', limit=3)
    assert json_too_deep(b'{"a": [[[1]]]}', limit=3)
    assert not json_too_deep(b'{"a": [[1]]}', limit=3)


def test_staff_pages_refuse_framing_and_inline_scripts(app, staff, client, cashier):
    page = ui_login(app, "manager").get("/till")
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["X-Frame-Options"] == "DENY"
    assert "onclick=" not in page.get_data(as_text=True)
    assert client.get("/login").headers["Content-Security-Policy"] == csp  # before login too
    api = cashier.get("/api/v1/members")
    assert api.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" not in api.headers


def test_no_page_template_carries_an_inline_script_handler():
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "templates"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.html")
                 if re.search(r"\son[a-z]+=|<script>(?!</script>)", p.read_text())]
    assert offenders == []
